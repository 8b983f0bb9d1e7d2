package swarm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// noopCallBound is the most API calls a no-op plan may make on Swarm,
// whatever the number of services: ping, one list each of services,
// networks, secrets, containers (hand-started ones on tenant overlays),
// images and volumes, and the info call that checks the engine is a
// Swarm manager (docs/SWARM.md, "Observe and plan").
const noopCallBound = 8

// exampleServices are the services of the Swarm-derived examples: nine
// app replicas (globex/nightly has none), two shared services and one
// gateway per (tenant, shared service) in use.
var exampleServices = []string{
	"acme--api--1", "acme--web--1", "acme--web--2", "acme--worker--1",
	"globex--catalog--1", "globex--orders--1", "globex--shop--1",
	"initech--ledger--1", "initech--reports--1",
	"shared--logging", "shared--masterdata-api",
	"acme--logging--gateway", "acme--masterdata-api--gateway",
	"globex--logging--gateway", "globex--masterdata-api--gateway",
	"initech--logging--gateway",
}

// TestSwarmLifecycle walks the examples on Swarm: first apply, the no-op
// and its API calls, a one-app change with no moment without a running
// task, secrets (nowhere on disk, rotation), and hand-made drift of
// services and overlays, each reported, reverted and converged.
func TestSwarmLifecycle(t *testing.T) {
	e := newExamplesEnv(t)
	start := time.Now()
	e.apply()
	t.Logf("first apply of the examples: %s", time.Since(start).Round(time.Millisecond))
	e.waitConverged(len(exampleServices))
	got := e.services()
	for _, s := range exampleServices {
		if _, ok := got[e.instance+"--"+s]; !ok {
			t.Errorf("service %s--%s missing; have %v", e.instance, s, keys(got))
		}
	}

	t.Run("LANs are encrypted, non-attachable overlays with the configured subnets", func(t *testing.T) {
		e := e.with(t)
		for _, l := range []struct {
			tenant, lan, subnet string
			internal            bool
		}{
			{"acme", "frontend", "0.0/24", false}, {"acme", "backend", "1.0/24", true},
			{"globex", "storefront", "4.0/24", false}, {"globex", "internal", "5.0/24", true},
			{"initech", "office", "8.0/24", true}, {"initech", "batch", "9.0/24", true},
		} {
			n := e.name(l.tenant, l.lan)
			got := docker(t, "network", "inspect", "--format",
				`{{.Driver}} {{.Scope}} internal={{.Internal}} attachable={{.Attachable}} {{range .IPAM.Config}}{{.Subnet}}{{end}}`, n)
			want := fmt.Sprintf("overlay swarm internal=%v attachable=false 10.%s.%s", l.internal, e.octet, l.subnet)
			if got != want {
				t.Errorf("network %s: %q, want %q", n, got, want)
			}
			// "encrypted" is an option without a value: present or not.
			if opts := docker(t, "network", "inspect", "--format", `{{range $k, $v := .Options}}{{$k}} {{end}}`, n); !slices.Contains(strings.Fields(opts), "encrypted") {
				t.Errorf("network %s is not encrypted: options %q", n, opts)
			}
		}
	})

	t.Run("update order: start-first, stop-first where a writable volume is mounted", func(t *testing.T) {
		e := e.with(t)
		for s, want := range map[string]string{
			"globex--shop--1": "start-first", "acme--web--1": "start-first",
			"acme--api--1": "stop-first", "globex--orders--1": "stop-first", "initech--ledger--1": "stop-first",
		} {
			if got := docker(t, "service", "inspect", "--format", "{{.Spec.UpdateConfig.Order}}", e.instance+"--"+s); got != want {
				t.Errorf("%s: update order %q, want %q", s, got, want)
			}
		}
	})

	t.Run("no-op: the plan is empty, with a bounded number of API calls", func(t *testing.T) {
		e := e.with(t)
		out, errs, code := e.moat("plan", e.config, "--secrets", e.secrets, "--detailed-exitcode", "--stats")
		if code != 0 || !strings.Contains(out, "No changes") {
			t.Fatalf("exit %d, want 0 (no changes)\n%s\n%s", code, out, errs)
		}
		n, breakdown := apiCalls(t, errs)
		t.Logf("no-op plan of %d services: %s", len(exampleServices), breakdown)
		if n > noopCallBound {
			t.Errorf("no-op plan made %d API calls, want at most %d (one list per kind, none per service)", n, noopCallBound)
		}
		// apply audits too: one more service list and container list and
		// one inspect per task container (moat audit's checks).
		out, errs, code = e.moat("apply", e.config, "--secrets", e.secrets, "--stats")
		if code != 0 || !strings.Contains(out, "No changes") {
			t.Fatalf("no-op apply: exit %d\n%s\n%s", code, out, errs)
		}
		bound := noopCallBound + 3 + len(exampleServices)
		n, breakdown = apiCalls(t, errs)
		t.Logf("no-op apply (with the audit): %d API calls", n)
		if n > bound {
			t.Errorf("no-op apply made %d API calls, want at most %d (the plan's %d, the audit's lists and one inspect per task):\n%s", n, bound, noopCallBound, breakdown)
		}
	})

	// envMarker is a value that goes into a service's env: env lands on
	// disk (the task container's config), so it is the control that the
	// secret search below can find a value in Docker's directory at all.
	envMarker := "moatsw-env-" + randHex(6)

	t.Run("one-app env change: a rolling update of that service only, never without a running task", func(t *testing.T) {
		e := e.with(t)
		before := e.services()
		shop := e.name("globex", "shop", "1")
		oldTask := task(t, shop)
		e.edit("tenants/globex/apps.yaml", func(s string) string {
			return strings.Replace(s, "  APP_NAME: shop\n", "  APP_NAME: shop\n  GREETING: "+envMarker+"\n", 1)
		})
		out := e.plan(2)
		changes := planChanges(out)
		if len(changes) != 1 || !regexp.MustCompile(`~\s+service\s+`+regexp.QuoteMeta(shop)+`\s+update\b.*env`).MatchString(changes[0]) {
			t.Fatalf("want exactly one change, an update of %s for its env; got %q\n%s", shop, changes, out)
		}
		p := pollRunning(t, shop)
		start := time.Now()
		e.apply()
		took := time.Since(start)
		p.finish()
		t.Logf("apply (rolling update of %s): %s; %s", shop, took.Round(time.Millisecond), p)
		if p.samples < 5 {
			t.Errorf("only %d samples of %s's tasks during the update", p.samples, shop)
		}
		if p.zero > 0 {
			t.Errorf("%s had no running task in %d of %d samples:\n%s", shop, p.zero, p.samples, strings.Join(p.zeroLog, "\n"))
		}
		newTask := task(t, shop)
		if newTask == oldTask {
			t.Errorf("%s still runs task container %s: not updated", shop, oldTask)
		}
		if env := docker(t, "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", newTask); !strings.Contains(env, "GREETING="+envMarker) {
			t.Errorf("the new task of %s lacks the new env:\n%s", shop, env)
		}
		after := e.services()
		for name, v := range before {
			if changed := after[name] != v; changed != (name == shop) {
				t.Errorf("service %s: version %d -> %d; only %s may change", name, v, after[name], shop)
			}
		}
		e.plan(0)
	})

	t.Run("secrets: the value only in the Swarm store, rotation updates exactly its mounts", func(t *testing.T) {
		e := e.with(t)
		testSecrets(t, e, envMarker)
	})

	t.Run("drift: --cap-add by hand is reported as a security change and reverted", func(t *testing.T) {
		e := e.with(t)
		svc := e.name("acme", "web", "1")
		docker(t, "service", "update", "--detach=false", "--cap-add", "NET_ADMIN", svc)
		e.expectDrift(svc, `~\s+service\s+`+regexp.QuoteMeta(svc)+`\s+update\b.*security`)
		if got := docker(t, "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.CapabilityAdd}}", svc); strings.Contains(got, "NET_ADMIN") {
			t.Errorf("%s still adds %s", svc, got)
		}
	})

	t.Run("drift: limits removed by hand are reported and restored", func(t *testing.T) {
		e := e.with(t)
		svc := e.name("globex", "catalog", "1")
		limits := `{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}} {{.Spec.TaskTemplate.Resources.Limits.NanoCPUs}}`
		want := docker(t, "service", "inspect", "--format", limits, svc)
		if want != "67108864 250000000" {
			t.Fatalf("%s: limits %q before the drift, want 64MiB and 0.25 CPUs", svc, want)
		}
		docker(t, "service", "update", "--detach=false", "--limit-memory", "0", "--limit-cpu", "0", svc)
		if got := docker(t, "service", "inspect", "--format", limits, svc); got != "0 0" {
			t.Fatalf("the hand-made drift did not take: limits %q", got)
		}
		e.expectDrift(svc, `~\s+service\s+`+regexp.QuoteMeta(svc)+`\s+update\b.*limits`)
		if got := docker(t, "service", "inspect", "--format", limits, svc); got != want {
			t.Errorf("%s: limits %q after apply, want %q", svc, got, want)
		}
	})

	t.Run("drift: another tenant's overlay added by hand is reported and removed", func(t *testing.T) {
		e := e.with(t)
		svc := e.name("initech", "reports", "1")
		other := e.name("globex", "storefront")
		otherID := docker(t, "network", "inspect", "--format", "{{.ID}}", other)
		docker(t, "service", "update", "--detach=false", "--network-add", other, svc)
		nets := `{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}`
		if got := docker(t, "service", "inspect", "--format", nets, svc); !strings.Contains(got, otherID) {
			t.Fatalf("the hand-made drift did not take: networks %s", got)
		}
		e.expectDrift(svc, regexp.QuoteMeta(svc)+`.*`+regexp.QuoteMeta(other)+`|`+regexp.QuoteMeta(other)+`.*`+regexp.QuoteMeta(svc))
		if got := docker(t, "service", "inspect", "--format", nets, svc); strings.Contains(got, otherID) {
			t.Errorf("%s is still on %s after apply", svc, other)
		}
		// The task, not just the spec: its container is off the overlay.
		if got := docker(t, "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", task(t, svc)); strings.Contains(got, other) {
			t.Errorf("%s's task is still on %s: %s", svc, other, got)
		}
	})

	t.Run("drift: an overlay replaced by an attachable one and a container started on it by hand", func(t *testing.T) {
		e := e.with(t)
		testAttachableOverlay(t, e)
	})
}

// expectDrift: the plan reports the drift (one change line matches want),
// apply reverts it, the next plan is empty.
func (e *env) expectDrift(svc, want string) {
	e.t.Helper()
	out := e.plan(2)
	re := regexp.MustCompile(want)
	var hit []string
	for _, l := range planChanges(out) {
		if re.MatchString(l) {
			hit = append(hit, l)
		}
	}
	if len(hit) == 0 {
		e.t.Fatalf("the plan does not report the drift of %s (want a change matching %q):\n%s", svc, want, out)
	}
	e.t.Logf("plan: %s", strings.Join(hit, "; "))
	e.apply()
	e.plan(0)
}

// testAttachableOverlay replaces initech's office LAN by hand with an
// attachable overlay of the same name, labels, subnet and flags, and
// starts a container on it: the plan reports the unmanaged container and
// replaces the network; apply --evict-unmanaged puts the container off the
// LAN (it keeps running: moat never removes what it did not create) and
// the LAN is again not attachable.
func testAttachableOverlay(t *testing.T, e *env) {
	lan := e.name("initech", "office")
	svc := e.name("initech", "reports", "1")
	intruder := e.instance + "-intruder"
	format := `{{.Internal}}|{{index .Options "encrypted"}}|{{range .IPAM.Config}}{{.Subnet}}|{{.Gateway}}{{end}}|{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}`
	f := strings.Split(docker(t, "network", "inspect", "--format", format, lan), "|")
	if len(f) != 5 || f[0] != "true" {
		t.Fatalf("%s: unexpected %q", lan, f)
	}
	args := []string{"network", "create", "--driver", "overlay", "--attachable", "--internal", "--subnet", f[2], "--gateway", f[3], "--opt", "encrypted"}
	for _, l := range strings.Split(strings.TrimSuffix(f[4], ";"), ";") {
		args = append(args, "--label", l)
	}
	// Every service on the LAN (reports and initech's gateway to the log
	// sink) leaves it first, as the operator had to.
	lanID := docker(t, "network", "inspect", "--format", "{{.ID}}", lan)
	var onLan []string
	for name := range e.services() {
		if strings.Contains(docker(t, "service", "inspect", "--format", `{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}`, name), lanID) {
			onLan = append(onLan, name)
			docker(t, "service", "update", "--detach=false", "--network-rm", lan, name)
		}
	}
	sort.Strings(onLan)
	if !slices.Contains(onLan, svc) {
		t.Fatalf("%s is not on %s (services on it: %v)", svc, lan, onLan)
	}
	var rmOut string
	removed := false
	for i := 0; i < 30 && !removed; i++ { // task endpoints go asynchronously
		var code int
		rmOut, code = run(t, "docker", "network", "rm", lan)
		removed = code == 0
		if !removed {
			time.Sleep(time.Second)
		}
	}
	if !removed {
		t.Fatalf("could not remove %s by hand: %s", lan, rmOut)
	}
	// The name stays taken for a moment after the removal.
	var createOut string
	created := false
	for i := 0; i < 30 && !created; i++ {
		var code int
		createOut, code = run(t, "docker", append(args, lan)...)
		created = code == 0
		if !created {
			time.Sleep(time.Second)
		}
	}
	if !created {
		t.Fatalf("could not create the attachable %s by hand: %s", lan, createOut)
	}
	docker(t, "run", "-d", "--name", intruder, "--label", "org.moat.test.run="+e.instance, "--network", lan,
		"--read-only", "--cap-drop", "ALL", "--user", "65534:65534", "localhost/moat-examples/probe:1")

	// By default the hand-started container is reported, and it keeps the
	// attachable LAN from being replaced (moat does not disconnect what it
	// did not create unless asked).
	out := e.plan(2)
	report := regexp.MustCompile(`(?m)^\s*!\s+\S+\s+` + regexp.QuoteMeta(intruder) + `\s.*unmanaged.*attachable`)
	if !report.MatchString(out) {
		t.Errorf("the plan does not report the unmanaged container %s on the attachable LAN:\n%s", intruder, out)
	}
	// Asked to evict: the container leaves, the LAN is replaced, the
	// services go back on it.
	out = e.plan(2, "--evict-unmanaged")
	changes := strings.Join(planChanges(out), "\n")
	if !regexp.MustCompile(`-/\+\s+network\s+` + regexp.QuoteMeta(lan) + `\s.*attachable`).MatchString(changes) {
		t.Errorf("the plan does not replace the attachable %s:\n%s", lan, out)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(intruder) + `\s+disconnect\s+` + regexp.QuoteMeta(lan)).MatchString(changes) {
		t.Errorf("the plan does not disconnect %s from %s:\n%s", intruder, lan, out)
	}
	for _, s := range onLan {
		if !strings.Contains(changes, s) {
			t.Errorf("the plan does not put %s back on %s:\n%s", s, lan, out)
		}
	}
	e.apply("--evict-unmanaged")
	if got := docker(t, "network", "inspect", "--format", "{{.Attachable}}", lan); got != "false" {
		t.Errorf("%s attachable=%s after apply", lan, got)
	}
	if nets := docker(t, "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", intruder); strings.Contains(nets, lan) {
		t.Errorf("the unmanaged %s is still on %s", intruder, lan)
	}
	if st := docker(t, "inspect", "--format", "{{.State.Status}}", intruder); st != "running" {
		t.Errorf("moat changed the unmanaged container's state to %s", st)
	}
	lanID = docker(t, "network", "inspect", "--format", "{{.ID}}", lan)
	for _, s := range onLan {
		if got := docker(t, "service", "inspect", "--format", `{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}`, s); !strings.Contains(got, lanID) {
			t.Errorf("%s is not back on %s (%s): %s", s, lan, lanID, got)
		}
	}
	e.plan(0)
	docker(t, "rm", "-f", intruder)
}

// testSecrets: a marker value in the test's own store copy. worker (the
// probe image, which can read files) mounts acme's db-password too; then
// the value rotates to the marker: the plan creates the new version,
// updates exactly api and worker (the two services that mount it) and
// removes the old version; the marker is readable at the mount path but
// nowhere on disk under Docker's or moat's directories.
func testSecrets(t *testing.T, e *env, envMarker string) {
	api, worker := e.name("acme", "api", "1"), e.name("acme", "worker", "1")
	e.edit("tenants/acme/worker.yaml", func(s string) string {
		return strings.Replace(s, "secrets: [api-token]", "secrets: [api-token, db-password]", 1)
	})
	before := e.services()
	out := e.plan(2)
	if c := planChanges(out); len(c) != 1 || !strings.Contains(c[0], worker) {
		t.Fatalf("mounting an existing secret in %s: want one update, got %q\n%s", worker, c, out)
	}
	e.apply()
	e.plan(0)
	if after := e.services(); after[worker] == before[worker] {
		t.Errorf("%s was not updated to mount db-password", worker)
	}

	marker := "moatsw-secret-" + randHex(8)
	store := filepath.Join(e.secrets, "acme", "db-password")
	if err := os.WriteFile(store, []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	before = e.services()
	out = e.plan(2)
	changes := planChanges(out)
	var updated []string
	creates, removes := 0, 0
	for _, l := range changes {
		switch {
		case regexp.MustCompile(`^\s*~\s+service\s`).MatchString(l):
			updated = append(updated, strings.Fields(l)[2])
		case regexp.MustCompile(`^\s*\+\s+secret\s+` + regexp.QuoteMeta(e.name("acme", "db-password")) + `--[0-9a-f]{12}\b`).MatchString(l):
			creates++
		case regexp.MustCompile(`^\s*-\s+secret\s+` + regexp.QuoteMeta(e.name("acme", "db-password")) + `--[0-9a-f]{12}\b`).MatchString(l):
			removes++
		default:
			t.Errorf("unexpected change in the rotation: %q", l)
		}
	}
	sort.Strings(updated)
	if want := []string{api, worker}; strings.Join(updated, " ") != strings.Join(want, " ") || creates != 1 || removes != 1 {
		t.Errorf("rotation: updates %v (want %v), %d secret creates, %d removes (want 1, 1):\n%s", updated, want, creates, removes, out)
	}
	if strings.Contains(out, marker) {
		t.Errorf("the plan shows the secret's value")
	}
	e.apply()
	after := e.services()
	for name, v := range before {
		if changed := after[name] != v; changed != (name == api || name == worker) {
			t.Errorf("service %s: version %d -> %d; only %s and %s may change", name, v, after[name], api, worker)
		}
	}
	e.plan(0)

	// Control: the app reads the new value at its mount path.
	if got, code := run(t, "docker", "exec", task(t, worker), "/app", "read", "/run/secrets/db-password"); code != 0 || !strings.Contains(got, marker) {
		t.Errorf("%s does not read the rotated value at /run/secrets/db-password (exit %d): %q", worker, code, got)
	}
	// Only the services that declare it mount it.
	ver := lines(docker(t, "secret", "ls", "--filter", "label=org.moat.instance="+e.instance, "--filter", "name="+e.name("acme", "db-password"), "--format", "{{.Name}}"))
	if len(ver) != 1 {
		t.Fatalf("acme's db-password: %d versions after the rotation, want 1: %v", len(ver), ver)
	}
	var mounting []string
	for name := range after {
		if strings.Contains(docker(t, "service", "inspect", "--format", "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}", name), ver[0]) {
			mounting = append(mounting, name)
		}
	}
	sort.Strings(mounting)
	if strings.Join(mounting, " ") != api+" "+worker {
		t.Errorf("services mounting %s: %v, want %s and %s", ver[0], mounting, api, worker)
	}

	// Snapshots and saved plans are moat's files too.
	e.mustMoat(0, "state", "export", e.config, "--out", filepath.Join(e.work, "live.json"))
	e.mustMoat(0, "plan", e.config, "--secrets", e.secrets, "--out", filepath.Join(e.work, "plan.json"))

	dirs := []string{"/var/lib/docker", e.config, filepath.Join(e.work, "live.json"), filepath.Join(e.work, "plan.json")}
	for _, d := range []string{"/run/lock/moat", cacheDir()} {
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	if found := grepMarker(t, marker, dirs...); len(found) > 0 {
		t.Errorf("the secret's value is on disk outside the Swarm store: %v", found)
	}
	// Controls: the same search finds the value in the store it came from,
	// and finds an env value (which a task's config does keep on disk) in
	// Docker's directory.
	if found := grepMarker(t, marker, e.secrets); len(found) != 1 {
		t.Errorf("control: the search finds the marker in %v, want the store file %s", found, store)
	}
	if found := grepMarker(t, envMarker, "/var/lib/docker"); len(found) == 0 {
		t.Errorf("control: the search does not find the env value %s under /var/lib/docker", envMarker)
	}
	t.Logf("secret marker searched in %v (one file system each): not found; found in the store and the env control found under /var/lib/docker", dirs)
}

func cacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return "/nonexistent"
	}
	return filepath.Join(d, "moat")
}

// grepMarker lists the regular files under paths that contain marker,
// staying on each path's own file system (find -xdev: a task's secrets
// are on a tmpfs, memory rather than disk).
func grepMarker(t *testing.T, marker string, paths ...string) []string {
	t.Helper()
	// grep exits 1 for no match and 2 when a file vanished or could not
	// be read (others' containers come and go meanwhile): the listed
	// matches are the answer either way.
	script := `find "$@" -xdev -type f -print0 | xargs -0 -r grep -lFs -e "$MARKER" -- || true`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, paths...)...)
	cmd.Env = append(os.Environ(), "MARKER="+marker)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("search %v: %v", paths, err)
	}
	return lines(string(out))
}

// planChanges are the change lines of a rendered plan ("~ service ...").
func planChanges(out string) []string {
	re := regexp.MustCompile(`^\s*(-/\+|\+|-|~)\s+(service|container|network|secret|volume)\s`)
	var c []string
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			c = append(c, strings.TrimSpace(l))
		}
	}
	return c
}

// poller samples a service's running tasks until finish: the Swarm's
// task list (docker service ps: tasks whose current state is Running)
// and the engine's containers of the service that run.
type poller struct {
	service               string
	stop, done            chan struct{}
	mu                    sync.Mutex
	samples, zero, errors int
	min, max              int
	tasks                 map[string]bool
	zeroLog               []string
}

func pollRunning(t *testing.T, service string) *poller {
	p := &poller{service: service, stop: make(chan struct{}), done: make(chan struct{}), min: 1 << 30, tasks: map[string]bool{}}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			p.sample()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return p
}

func (p *poller) sample() {
	at := time.Now().Format("15:04:05.000")
	ps, err1 := exec.Command("docker", "service", "ps", p.service, "--no-trunc", "--format", "{{.ID}} {{.CurrentState}}").Output()
	ctr, err2 := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+p.service, "--filter", "status=running").Output()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err1 != nil || err2 != nil {
		p.errors++
		return
	}
	running := 0
	for _, l := range lines(string(ps)) {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "Running" {
			running++
			p.tasks[f[0]] = true
		}
	}
	n := len(lines(string(ctr)))
	if n < running {
		running = n // the stricter of the two views
	}
	p.samples++
	if running == 0 {
		p.zero++
		p.zeroLog = append(p.zeroLog, fmt.Sprintf("%s  tasks:\n%s  running containers: %d", at, ps, n))
	}
	p.min = min(p.min, running)
	p.max = max(p.max, running)
}

func (p *poller) finish() {
	time.Sleep(300 * time.Millisecond) // one more sample after the apply
	close(p.stop)
	<-p.done
}

func (p *poller) String() string {
	return fmt.Sprintf("%d samples of %s's task list: running tasks min %d, max %d, %d distinct running tasks, %d samples with none, %d failed samples",
		p.samples, p.service, p.min, p.max, len(p.tasks), p.zero, p.errors)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func keys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
