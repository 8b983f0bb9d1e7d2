# moat: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/moat
PKGS  := ./...
FUZZTIME ?= 10s

.PHONY: help build test test-unit test-swarm lint image images demo demo-clean demo-swarm demo-swarm-clean bench bench-compose bench-compose-200 bench-gateway bench-swarm fuzz docs tidy isolation demo-weave demo-weave-clean weave

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# moat --version: the version and commit, set at build time (moat falls
# back to the Go toolchain's build info when built without these).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build: ## Build bin/moat (version and commit from git)
	@echo "building bin/moat (the first build downloads and compiles the Go modules: a few minutes)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/moat

images: ## Build the example images locally (FROM scratch, no registry)
	bash scripts/build-images.sh

.PHONY: image
image: ## Build moat's own image localhost/moat/moat:1 (FROM scratch, non-root): watch and gateways
	bash scripts/build-images.sh moat

lint: ## go vet + gofmt check + go.mod tidy
	$(GO) vet $(PKGS)
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

test: lint images ## Every test: lint, unit, CLI scripts, real engine (needs dockerd), the Swarm suite, short fuzz
	MOAT_REQUIRE_DOCKER=$${MOAT_REQUIRE_DOCKER:-1} $(GO) test -race -count=1 -timeout 50m $(PKGS)
	$(MAKE) test-swarm
	$(MAKE) fuzz FUZZTIME=5s

# The engine becomes a single-node Swarm for the suite and leaves it after
# (scripts/swarm.sh refuses an engine that is in a Swarm it did not make;
# MOAT_SWARM_USE_EXISTING=1 runs the suite on such a Swarm as it is).
# Two nodes by default: the suite single-node, then the worker joined for
# TestSwarmMultiNode (placement, cross-node LAN, encrypted fails closed);
# about 45 s more than one node. MOAT_SWARM_NODES=1 for the suite alone.
MOAT_SWARM_NODES ?= 2
test-swarm: images ## The Swarm suite on a real Swarm, two nodes (scripts/swarm.sh test; part of make test; MOAT_SWARM_NODES=1 for one)
	GO=$(GO) MOAT_SWARM_NODES=$(MOAT_SWARM_NODES) bash scripts/swarm.sh test

test-unit: ## Tests that need no engine (engine tests skip)
	MOAT_REQUIRE_DOCKER=0 $(GO) test -count=1 $(PKGS)

isolation: images ## The isolation matrix on the real engine, printed as a table (also part of make test)
	MOAT_REQUIRE_DOCKER=1 $(GO) test -count=1 -timeout 15m -v -run '^TestIsolationMatrix$$' ./test/e2e 2>&1 | \
	  awk '/isolation matrix \(instance/{on=1} on{sub(/^        /,""); print} /paths tried/{on=0} /^(--- |FAIL|ok)/{print}'; \
	  exit $${PIPESTATUS[0]}

fuzz: ## Short fuzz runs of the loader, the schema and the whole validator (FUZZTIME=60s for longer)
	$(GO) test ./config -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME)
	$(GO) test ./schema -run='^$$' -fuzz=FuzzCheck -fuzztime=$(FUZZTIME)
	$(GO) test ./validate -run='^$$' -fuzz=FuzzValidate -fuzztime=$(FUZZTIME)

bench: ## Go benchmarks: validate, compile, plan at scale
	$(GO) test -run='^$$' -bench=. -benchmem ./validate ./schema ./policy ./compile ./reconcile

bench-gateway: ## Gateway overhead on the real engine: direct vs through a gateway (see docs/BENCHMARKS.md)
	bash scripts/bench-gateway.sh

bench-compose: build images ## Whole-process comparison against docker-compose (see docs/BENCHMARKS.md)
	bash scripts/bench-compose.sh

# 10 tenants x 20 apps = 200 containers on 20 LANs; fewer repetitions, since
# one first apply of each tool takes minutes on a loaded 2-core host.
# Override any knob: make bench-compose-200 REPS_FIRST=3
REPS_FIRST_200 ?= 1
REPS_NOOP_200  ?= 3
REPS_CHANGE_200 ?= 2
bench-compose-200: build images ## The same comparison at 200 containers on 20 LANs (first apply, no-op, one-container change)
	BENCH_TENANTS=10 BENCH_APPS=20 REPS_FIRST=$${REPS_FIRST:-$(REPS_FIRST_200)} \
	  REPS_NOOP=$${REPS_NOOP:-$(REPS_NOOP_200)} REPS_CHANGE=$${REPS_CHANGE:-$(REPS_CHANGE_200)} \
	  BENCH_GO=0 bash scripts/bench-compose.sh

bench-swarm: build images ## moat on Swarm vs docker stack deploy, 50 services (see docs/BENCHMARKS.md)
	bash scripts/bench-swarm.sh

docs: build ## Regenerate docs/RULES.md from the rule catalogue
	./$(BIN) rules -o markdown > docs/RULES.md

demo: build images ## Validate, plan and apply the example platform (INSTANCE=demo POOL=10.80.0.0/12 by default)
	bash scripts/demo.sh

demo-clean: ## Remove everything the demo created (moat destroy; INSTANCE=demo by default; volumes kept)
	bash scripts/demo.sh clean

demo-swarm: build images ## The example platform on Docker Swarm: apply, empty no-op plan, a zero-downtime one-app update, teardown
	bash scripts/demo-swarm.sh

demo-swarm-clean: ## Remove what demo-swarm KEEP=1 left running (INSTANCE=demo-swarm by default)
	bash scripts/demo-swarm.sh clean

demo-weave: build images ## The example platform on a real Weave Net router (built from the vendored source; root)
	bash scripts/demo-weave.sh

demo-weave-clean: ## Remove what demo-weave created and stop the routers (nothing left behind)
	bash scripts/demo-weave.sh clean

weave: ## Build (or reuse) the cached Weave Net router for the tests
	bash scripts/weave.sh build
