#!/usr/bin/env bash
# A single-node Docker Swarm for moat's Swarm tests, made and removed
# without touching a Swarm anyone else made.
#
#   scripts/swarm.sh up        make the engine a single-node Swarm manager, but only
#                              when it is in no Swarm (LocalNodeState inactive);
#                              creates docker_gwbridge first as moat's host protection
#                              wants it (interface moat-gwbridge, ICC off) unless it
#                              exists; records what existed before and what it created
#   scripts/swarm.sh down      leave (--force) a Swarm this script created, remove the
#                              docker_gwbridge it created, then prove that the engine's
#                              networks and Swarm state equal the recorded "before"
#   scripts/swarm.sh status    the engine's Swarm state and the state file
#   scripts/swarm.sh test [GO TEST ARGS...]
#                              up; MOAT_SWARM=1 go test the Swarm suite (extra
#                              arguments are appended, e.g. -v -run TestSwarmDrift);
#                              down (always, also when the tests fail)
#
# Exit codes: 0 done; 1 failed (down: the engine differs from "before", the
# diff is printed); 2 refused (the engine is in a Swarm this script did not
# create, or in an unusable Swarm state).
#
# The Swarm listens and advertises on 127.0.0.1:2377 only, and its default
# address pool (overlay networks without an explicit subnet: ingress) is
# 10.250.0.0/16 in /24s, a range no moat test or example uses.
#
# State: one file per engine (keyed by the engine's ID and data root, so a private
# dockerd under another DOCKER_HOST has its own), in $MOAT_SWARM_STATE_DIR
# (default /var/tmp/moat-swarm). It holds the node and cluster this script
# created and the network list before `up`. Without that file, `down`
# refuses to leave a Swarm: it is someone else's.
#
# Environment:
#   MOAT_SWARM_ADDR           listen/advertise address (127.0.0.1:2377)
#   MOAT_SWARM_POOL           default address pool (10.250.0.0/16)
#   MOAT_SWARM_STATE_DIR      where the state files live (/var/tmp/moat-swarm)
#   MOAT_SWARM_USE_EXISTING   1: `test` runs the suite on a Swarm this script did not
#                             create (and neither inits nor leaves it); the tests
#                             touch only objects of their own run
#   MOAT_SWARM_PKGS           the packages `test` runs
#                             ("./test/swarm/... ./engine/docker/")
#   MOAT_SWARM_NODES          2: a two-node Swarm (scripts/swarm-node.sh): `up` first
#                             makes the link to the second node's network namespace
#                             (veth moat-sw0, 10.251.255.1/30) and advertises
#                             10.251.255.1:2377 instead of 127.0.0.1 (a worker in the
#                             namespace cannot reach the host's loopback); `test` runs
#                             the suite single-node as always, then joins the worker
#                             (swarm-node.sh add), runs TestSwarmMultiNode and removes
#                             the worker; `down` removes the worker and the link (and
#                             proves it) before it leaves
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODES=${MOAT_SWARM_NODES:-1}
[[ "$NODES" == 1 || "$NODES" == 2 ]] || { echo "swarm.sh: MOAT_SWARM_NODES is 1 or 2, not '$NODES'" >&2; exit 2; }
if [[ "$NODES" == 2 ]]; then
	ADDR=${MOAT_SWARM_ADDR:-10.251.255.1:2377}
else
	ADDR=${MOAT_SWARM_ADDR:-127.0.0.1:2377}
fi
NODE_SH="$ROOT/scripts/swarm-node.sh"
POOL=${MOAT_SWARM_POOL:-10.250.0.0/16}
POOL_MASK=24
GWBRIDGE=moat-gwbridge # the interface moat's host protection on Swarm expects (docs/SWARM.md)
STATE_DIR=${MOAT_SWARM_STATE_DIR:-/var/tmp/moat-swarm}
PKGS=${MOAT_SWARM_PKGS:-./test/swarm/... ./engine/docker/}
DOCKER_TIMEOUT=60

log() { printf 'swarm.sh: %s\n' "$*" >&2; }
die() { printf 'swarm.sh: %s\n' "$*" >&2; exit 1; }
refuse() { printf 'swarm.sh: refused: %s\n' "$*" >&2; exit 2; }

dk() { timeout "$DOCKER_TIMEOUT" docker "$@"; }

# info FIELD: one field of `docker info` (Go template).
info() { dk info --format "$1" 2>/dev/null; }

engine_id() {
	local id
	id=$(info '{{.ID}}') || die "the Docker engine is unreachable (DOCKER_HOST=${DOCKER_HOST:-default})"
	[[ -n "$id" ]] || die "the engine reported no ID"
	echo "$id"
}
node_state() { info '{{.Swarm.LocalNodeState}}'; }
node_id() { info '{{.Swarm.NodeID}}'; }
cluster_id() { info '{{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{end}}'; }

# networks: the engine's network list, one "name driver scope id" a line,
# sorted; the proof compares this list before and after.
networks() { dk network ls --no-trunc --format '{{.Name}} {{.Driver}} {{.Scope}} {{.ID}}' | sort; }

# state_file: the engine's record. The engine ID alone does not tell two
# engines apart (dockerd derives it from /etc/docker/key.json, which a
# second dockerd on the same host shares), its data root does.
state_file() {
	local key
	key=$(info '{{.ID}} {{.DockerRootDir}}') || die "the Docker engine is unreachable (DOCKER_HOST=${DOCKER_HOST:-default})"
	echo "$STATE_DIR/$(printf '%s' "$key" | sha256sum | cut -c1-16).state"
}

# get KEY FILE: a value of the state file (key=value lines).
get() { [[ -f "$2" ]] || return 0; sed -n "s/^$1=//p" "$2" | tail -1; }

# put KEY VALUE FILE: set a key, atomically (write a copy, rename).
put() {
	local key=$1 val=$2 f=$3
	{ grep -v "^$key=" "$f" 2>/dev/null || true; echo "$key=$val"; } >"$f.tmp"
	mv "$f.tmp" "$f"
}

# ours FILE: true when the engine's current Swarm is the one recorded.
ours() {
	local f=$1
	[[ -f "$f" ]] || return 1
	[[ "$(get phase "$f")" == up ]] || return 1
	[[ -n "$(get node_id "$f")" && "$(get node_id "$f")" == "$(node_id)" ]]
}

explain_foreign() {
	local managers nodes
	managers=$(info '{{.Swarm.Managers}}') nodes=$(info '{{.Swarm.Nodes}}')
	cat >&2 <<EOF
swarm.sh: this engine is already part of a Swarm that this script did not create:
  node $(node_id), cluster $(cluster_id), state $(node_state), $nodes node(s), $managers manager(s)
  (no state file of this script records it: $(state_file)).
swarm.sh: it may be someone's development or production Swarm: this script never
  inits over it and never leaves it. Either
  - run the Swarm tests on it as they are (they touch only objects of their own run):
      MOAT_SWARM_USE_EXISTING=1 scripts/swarm.sh test
  - or leave it yourself if you own it (docker swarm leave --force), then: scripts/swarm.sh up
EOF
}

# pool_free: no Docker network and no host route uses the pool already.
pool_free() {
	local prefix in_use
	prefix=$(echo "$POOL" | cut -d. -f1-2)
	in_use=$(dk network inspect $(dk network ls -q) --format '{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null |
		grep -F " $prefix." || true)
	[[ -z "$in_use" ]] || die "the pool $POOL is in use by a Docker network:
$in_use"
	if command -v ip >/dev/null && [[ -z "${DOCKER_HOST:-}" ]] && ip -4 route show | grep -qF "$prefix."; then
		die "the host has a route into $POOL; pick another pool with MOAT_SWARM_POOL"
	fi
}

wait_state() { # wait_state WANT SECONDS
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		[[ "$(node_state)" == "$1" ]] && return 0
		sleep 0.2
	done
	return 1
}

has_network() { dk network inspect "$1" >/dev/null 2>&1; }

up() {
	local f state
	f=$(state_file)
	state=$(node_state)
	case "$state" in
	active)
		if ours "$f"; then
			log "already up: node $(node_id) was created by this script ($f)"
			return 0
		fi
		explain_foreign
		exit 2
		;;
	inactive) ;;
	*) refuse "the engine's Swarm state is '$state' (pending, error or locked): fix or leave it by hand first" ;;
	esac
	if [[ -f "$f" ]]; then
		case "$(get phase "$f")" in
		initializing) log "an earlier 'up' stopped halfway; its record of 'before' is kept" ;;
		*) refuse "the state file $f is left from a Swarm whose 'down' did not prove a clean engine; see '$0 status', fix the engine, then remove the file" ;;
		esac
	else
		pool_free
		mkdir -p "$STATE_DIR"
		# "before" first, so that a failure halfway still leaves a record
		# that down can work from.
		networks >"$f.networks"
		{
			echo "phase=initializing"
			echo "engine_id=$(engine_id)"
			echo "data_root=$(info '{{.DockerRootDir}}')"
			echo "docker_host=${DOCKER_HOST:-}"
			echo "before_state=$state"
			echo "before_gwbridge=$(has_network docker_gwbridge && echo yes || echo no)"
			echo "before_ingress=$(has_network ingress && echo yes || echo no)"
			echo "addr=$ADDR"
			echo "nodes=$NODES"
			echo "pool=$POOL/$POOL_MASK"
			echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		} >"$f.tmp"
		mv "$f.tmp" "$f"
	fi
	if [[ "$(get nodes "$f")" == 2 ]]; then
		# The address to advertise must exist before init.
		MOAT_SWARM_NODE_MANAGER=host "$NODE_SH" link || die "could not make the link to the second node"
	fi
	# docker_gwbridge leads from every task with a route out to the host;
	# moat's host protection matches it by its interface name, which Docker
	# fixes when it creates the bridge at init: so it goes first, made as
	# docs/SWARM.md says (interface moat-gwbridge, ICC off).
	if ! has_network docker_gwbridge; then
		log "docker network create docker_gwbridge (interface $GWBRIDGE, ICC off, masquerade on)"
		dk network create --driver bridge \
			-o com.docker.network.bridge.name="$GWBRIDGE" \
			-o com.docker.network.bridge.enable_icc=false \
			-o com.docker.network.bridge.enable_ip_masquerade=true \
			docker_gwbridge >/dev/null
	else
		local ifname
		ifname=$(dk network inspect --format '{{index .Options "com.docker.network.bridge.name"}}' docker_gwbridge)
		[[ "$ifname" == "$GWBRIDGE" ]] ||
			log "warning: docker_gwbridge exists already (interface '${ifname:-default}', not $GWBRIDGE): moat refuses host protection on this node; remove it (docker network rm docker_gwbridge) before '$0 up' to have it made for moat"
	fi
	log "docker swarm init (listen and advertise $ADDR, default address pool $POOL /$POOL_MASK)"
	dk swarm init --advertise-addr "$ADDR" --listen-addr "$ADDR" \
		--default-addr-pool "$POOL" --default-addr-pool-mask-length "$POOL_MASK" >/dev/null
	wait_state active 30 || die "the engine did not become an active Swarm manager"
	put node_id "$(node_id)" "$f"
	put cluster_id "$(cluster_id)" "$f"
	# The engine creates ingress and docker_gwbridge shortly after init.
	local i created=swarm
	for ((i = 0; i < 100; i++)); do
		has_network ingress && has_network docker_gwbridge && break
		sleep 0.2
	done
	[[ "$(get before_gwbridge "$f")" == no ]] && has_network docker_gwbridge && created+=" docker_gwbridge"
	[[ "$(get before_ingress "$f")" == no ]] && has_network ingress && created+=" ingress"
	put created "$created" "$f"
	put phase up "$f"
	log "up: node $(node_id), created: $created (state: $f)"
}

# drain: empty the Swarm this script made before leaving it. Leaving with
# services and overlays in it leaves their overlays in the engine's network
# list (a task starting at that moment holds its network), which the proof
# then finds. Services still there may be another run's on this Swarm
# (MOAT_SWARM_USE_EXISTING) cleaning up: wait for them (bounded), then
# remove what is left, naming it (a test's cleanup failed: its log names
# the instance), then the overlays (ingress goes with the Swarm).
drain() {
	local i names nets
	for ((i = 0; i < ${MOAT_SWARM_DRAIN_WAIT:-120}; i += 5)); do
		[[ -z "$(dk service ls -q 2>/dev/null)" ]] && break
		((i == 0)) && log "services still exist (another run cleaning up?), waiting up to ${MOAT_SWARM_DRAIN_WAIT:-120}s: $(dk service ls --format '{{.Name}}' | tr '\n' ' ')"
		sleep 5
	done
	names=$(dk service ls --format '{{.Name}}' 2>/dev/null | sort | tr '\n' ' ')
	if [[ -n "${names// /}" ]]; then
		log "warning: removing services left in the Swarm (a test's cleanup left them): $names"
		# shellcheck disable=SC2086
		dk service rm $names >/dev/null || true
		for ((i = 0; i < 60; i++)); do
			[[ -z "$(dk ps -aq --filter label=com.docker.swarm.service.name)" ]] && break
			sleep 1
		done
	fi
	nets=$(dk network ls --filter scope=swarm --format '{{.Name}}' | grep -vx ingress | sort | tr '\n' ' ' || true)
	if [[ -n "${nets// /}" ]]; then
		log "warning: removing overlays left in the Swarm: $nets"
		for ((i = 0; i < 30; i++)); do
			# shellcheck disable=SC2086
			dk network rm $nets >/dev/null 2>&1 && break
			nets=$(dk network ls --filter scope=swarm --format '{{.Name}}' | grep -vx ingress | tr '\n' ' ' || true)
			[[ -z "${nets// /}" ]] && break
			sleep 1
		done
	fi
}

down() {
	local f state
	f=$(state_file)
	state=$(node_state)
	if [[ ! -f "$f" ]]; then
		if [[ "$state" == inactive ]]; then
			log "nothing to do: the engine is in no Swarm and this script recorded none"
			return 0
		fi
		explain_foreign
		exit 2
	fi
	if [[ "$(get nodes "$f")" == 2 ]]; then
		# The worker and the link first (it proves they are gone).
		MOAT_SWARM_NODE_MANAGER=host "$NODE_SH" remove || die "the second node is not removed (see '$NODE_SH status'); not leaving"
	fi
	if [[ "$state" != inactive ]]; then
		local rec
		rec=$(get node_id "$f")
		if [[ -n "$rec" && "$rec" != "$(node_id)" ]]; then
			refuse "the engine is in Swarm node $(node_id), but this script created node $rec: not leaving someone else's Swarm"
		fi
		if [[ -z "$rec" && "$(get phase "$f")" == initializing && "$state" == active ]]; then
			# init ran but the record stopped before the node id: the
			# engine was inactive when the record began, so it is ours.
			log "the record stopped halfway through 'up'; the Swarm began after it"
		fi
		drain
		log "docker swarm leave --force (node $(node_id))"
		dk swarm leave --force >/dev/null
		wait_state inactive 30 || die "the engine did not leave the Swarm"
	fi
	put phase left "$f"
	# ingress goes with the Swarm, asynchronously.
	local i
	if [[ "$(get before_ingress "$f")" == no ]]; then
		for ((i = 0; i < 100; i++)); do has_network ingress || break; sleep 0.2; done
	fi
	if [[ "$(get before_gwbridge "$f")" == no ]] && has_network docker_gwbridge; then
		# Task containers may still be detaching from it.
		for ((i = 0; i < 30; i++)); do
			dk network rm docker_gwbridge >/dev/null 2>&1 && break
			sleep 1
		done
		has_network docker_gwbridge && log "could not remove docker_gwbridge: $(dk network inspect -f '{{range .Containers}}{{.Name}} {{end}}' docker_gwbridge 2>/dev/null)"
	fi
	prove "$f"
}

# prove FILE: the engine's network list and Swarm state equal "before".
prove() {
	local f=$1 bad=0 now diff
	now=$(mktemp)
	networks >"$now"
	if ! diff=$(diff -u --label "before up" --label "after down" "$f.networks" "$now"); then
		echo "swarm.sh: the engine's networks differ from before 'up':" >&2
		echo "$diff" >&2
		bad=1
	fi
	rm -f "$now"
	local state
	state=$(node_state)
	if [[ "$state" != "$(get before_state "$f")" ]]; then
		echo "swarm.sh: Swarm state is '$state', was '$(get before_state "$f")' before 'up'" >&2
		bad=1
	fi
	if ((bad)); then
		log "down: the engine is NOT as it was; the record stays in $f (see '$0 status')"
		exit 1
	fi
	rm -f "$f" "$f.networks"
	log "down: proven: Swarm state '$state' and $(networks | grep -c .) networks, exactly as before 'up'"
}

status() {
	local f
	f=$(state_file)
	echo "engine:       ${DOCKER_HOST:-unix:///var/run/docker.sock} (id $(engine_id))"
	echo "swarm state:  $(node_state)"
	if [[ "$(node_state)" != inactive ]]; then
		echo "node:         $(node_id) ($(info '{{.Swarm.NodeAddr}}')), cluster $(cluster_id), $(info '{{.Swarm.Nodes}}') node(s), manager: $(info '{{.Swarm.ControlAvailable}}')"
		echo "services:     $(dk service ls -q 2>/dev/null | grep -c . || true)"
		echo "networks:     $(dk network ls --filter scope=swarm --format '{{.Name}}' | tr '\n' ' ')"
	fi
	if [[ -f "$f" ]]; then
		if ours "$f"; then echo "created by:   this script"; else echo "created by:   see the record (phase $(get phase "$f"))"; fi
		echo "state file:   $f"
		sed 's/^/  /' "$f"
	else
		echo "state file:   none ($f): this script created no Swarm on this engine"
	fi
}

# BROUGHT: 1 when `test` made the Swarm (the EXIT trap, which runs after
# run_tests returned, then leaves it again).
BROUGHT=0

run_tests() {
	local f
	f=$(state_file)
	if [[ "$(node_state)" == active ]] && ! ours "$f"; then
		if [[ "${MOAT_SWARM_USE_EXISTING:-0}" != 1 ]]; then
			explain_foreign
			exit 2
		fi
		[[ "$(info '{{.Swarm.ControlAvailable}}')" == true ]] || refuse "the engine is a Swarm worker; the tests need a manager"
		log "MOAT_SWARM_USE_EXISTING=1: running on the existing Swarm (node $(node_id)); not leaving it afterwards"
	elif ours "$f"; then
		log "the Swarm this script created is up already; it stays up afterwards"
	else
		up
		BROUGHT=1
	fi
	# down runs whatever happens to the tests; its failure fails the run.
	finish() {
		local rc=$?
		trap - EXIT INT TERM
		set +e
		if ((BROUGHT)); then
			down
			local drc=$?
			((rc == 0)) && rc=$drc
		fi
		exit "$rc"
	}
	trap finish EXIT
	trap 'exit 130' INT TERM
	cd "$ROOT"
	local go=${GO:-go}
	# Every Swarm test is named TestSwarm*, so one -run selects them in
	# every package (the engine package has other, non-Swarm tests).
	log "MOAT_SWARM=1 $go test -count=1 -race -timeout 30m $PKGS -run Swarm $*"
	# shellcheck disable=SC2086
	local rc=0
	MOAT_SWARM=1 MOAT_SWARM_NODES= "$go" test -count=1 -race -timeout 30m $PKGS -run Swarm "$@" || rc=$?
	if [[ "$(get nodes "$f")" == 2 ]]; then
		# The worker joins only now, so that no unpinned service of the
		# single-node suite is scheduled onto it.
		MOAT_SWARM_NODE_MANAGER=host "$NODE_SH" add || return 1
		log "MOAT_SWARM=1 MOAT_SWARM_NODES=2 $go test -count=1 -timeout 20m ./test/swarm/ -run SwarmMultiNode $*"
		MOAT_SWARM=1 MOAT_SWARM_NODES=2 "$go" test -count=1 -timeout 20m ./test/swarm/ -run SwarmMultiNode "$@" || rc=$?
		MOAT_SWARM_NODE_MANAGER=host "$NODE_SH" remove || rc=1
	fi
	return "$rc"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
test) shift; run_tests "$@" ;;
*)
	echo "usage: $0 up|down|status|test [GO TEST ARGS...]" >&2
	exit 2
	;;
esac
