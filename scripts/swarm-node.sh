#!/usr/bin/env bash
# A second Swarm node for moat's multi-node tests: a private dockerd in a
# network namespace of its own, joined to a manager as a worker, and
# removed again with a proof that nothing of it remains.
#
#   scripts/swarm-node.sh link      only the network namespace and the veth pair
#                                   (scripts/swarm.sh up runs it with MOAT_SWARM_NODES=2,
#                                   before `swarm init`, to advertise the host end)
#   scripts/swarm-node.sh add       link; start dockerd in the namespace; load moat's
#                                   images (localhost/moat*:1) into it; join it to the
#                                   manager as a worker (labels nothing)
#   scripts/swarm-node.sh remove    the node leaves (and is removed from the manager's
#                                   node list), dockerd stops, its data and exec roots,
#                                   the namespace and the veth pair go; then the proof
#   scripts/swarm-node.sh status    what exists of it, and the state file
#   scripts/swarm-node.sh test [GO TEST ARGS...]
#                                   add; MOAT_SWARM=1 MOAT_SWARM_NODES=2 go test
#                                   -run SwarmMultiNode ./test/swarm/; remove (always)
#
# The manager (MOAT_SWARM_NODE_MANAGER):
#   host      the engine of DOCKER_HOST (the machine's), which must be an active
#             Swarm manager advertising 10.251.255.1: scripts/swarm.sh up makes it
#             so with MOAT_SWARM_NODES=2. A manager advertising 127.0.0.1 cannot be
#             reached from the namespace; `add` refuses and explains.
#   private   a throwaway manager: a second private dockerd in namespace
#             moat-swarm-n1, which holds the "host" end of the veth pair (so the
#             machine's network stack and engine are not touched at all), with a
#             single-manager Swarm of its own. `test` points DOCKER_HOST at it.
#
# Everything on the host carries moat's names and is recorded in the state file:
#   netns     moat-swarm-n2 (worker), moat-swarm-n1 (private manager)
#   veth      moat-sw0 10.251.255.1/30 (host or n1) <-> moat-sw0p 10.251.255.2/30 (n2)
#   per node  data root /var/lib/moat-swarm-nN (daemon.json, dockerd.log, docker/),
#             exec root /run/moat-swarm-nN, socket /run/moat-swarm-nN.sock,
#             pidfile /run/moat-swarm-nN.pid
# Each dockerd runs its own containerd (under its exec root), the vfs storage
# driver and its own iptables (the namespace's, not the host's); it reads no
# /etc/docker/daemon.json. 10.251.255.0/30 is used by no moat test or example
# (examples 10.80/12, e2e 10.96-10.223, swarm tests 10.224-10.239, benchmarks
# 10.240-10.241, the Swarm address pool 10.250/16). Traffic: only between the
# host (or n1) and n2 over the veth pair.
#
# Exit codes: 0 done; 1 failed (remove: something remains, listed); 2 refused.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE=${MOAT_SWARM_NODE_MANAGER:-host}
STATE_DIR=${MOAT_SWARM_STATE_DIR:-/var/tmp/moat-swarm}
STATE="$STATE_DIR/node2.state"
VETH=moat-sw0
VETHP=moat-sw0p
MGR_IP=10.251.255.1
N2_IP=10.251.255.2
PREFIX=30
DOCKER_TIMEOUT=60

log() { printf 'swarm-node.sh: %s\n' "$*" >&2; }
die() { printf 'swarm-node.sh: %s\n' "$*" >&2; exit 1; }
refuse() { printf 'swarm-node.sh: refused: %s\n' "$*" >&2; exit 2; }

ns() { echo "moat-swarm-$1"; }
sock() { echo "unix:///run/moat-swarm-$1.sock"; }
dataroot() { echo "/var/lib/moat-swarm-$1"; }
execroot() { echo "/run/moat-swarm-$1"; }
pidfile() { echo "/run/moat-swarm-$1.pid"; }

# dk NODE ARGS: the docker CLI against node n1/n2, or "mgr": the manager.
dk() {
	local n=$1
	shift
	case "$n" in
	mgr) if [[ "$(get mode)" == private ]]; then n=n1; else timeout "$DOCKER_TIMEOUT" docker "$@"; return; fi ;;
	esac
	DOCKER_HOST=$(sock "$n") timeout "$DOCKER_TIMEOUT" docker "$@"
}

get() { [[ -f "$STATE" ]] && sed -n "s/^$1=//p" "$STATE" | tail -1 || true; }
put() {
	mkdir -p "$STATE_DIR"
	{ grep -v "^$1=" "$STATE" 2>/dev/null || true; echo "$1=$2"; } >"$STATE.tmp"
	mv "$STATE.tmp" "$STATE"
}

has_ns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# link: the namespace(s) and the veth pair, idempotent.
link() {
	local mode=${1:-$MODE} hostns=""
	[[ "$(get mode)" == "" || "$(get mode)" == "$mode" ]] ||
		refuse "the node was made with manager '$(get mode)'; remove it first"
	put mode "$mode"
	if ! has_ns "$(ns n2)"; then
		ip netns add "$(ns n2)"
		put netns_n2 "$(ns n2)"
	fi
	ip -n "$(ns n2)" link set lo up
	if [[ "$mode" == private ]]; then
		if ! has_ns "$(ns n1)"; then
			ip netns add "$(ns n1)"
			put netns_n1 "$(ns n1)"
		fi
		ip -n "$(ns n1)" link set lo up
		hostns="-n $(ns n1)"
	fi
	# shellcheck disable=SC2086
	if ! ip $hostns link show "$VETH" >/dev/null 2>&1; then
		ip link show "$VETH" >/dev/null 2>&1 && refuse "a link $VETH exists on the host (manager mode host?); remove it first"
		ip link add "$VETH" type veth peer name "$VETHP"
		put veth "$VETH"
		ip link set "$VETHP" netns "$(ns n2)"
		[[ -n "$hostns" ]] && ip link set "$VETH" netns "$(ns n1)"
		ip $hostns addr add "$MGR_IP/$PREFIX" dev "$VETH"
		ip $hostns link set "$VETH" up
		ip -n "$(ns n2)" addr add "$N2_IP/$PREFIX" dev "$VETHP"
		ip -n "$(ns n2)" link set "$VETHP" up
	fi
	local where=host
	[[ -n "$hostns" ]] && where="netns $(ns n1)"
	log "link: $VETH $MGR_IP/$PREFIX ($where) <-> $VETHP $N2_IP/$PREFIX (netns $(ns n2))"
}

# start_dockerd NODE: a private dockerd inside the node's namespace.
# nsenter enters only the network namespace: `ip netns exec` would also
# remount /sys, which hides the cgroup mounts dockerd needs.
start_dockerd() {
	local n=$1 dr er
	dr=$(dataroot "$n") er=$(execroot "$n")
	if [[ -S "/run/moat-swarm-$n.sock" ]] && DOCKER_HOST=$(sock "$n") timeout 5 docker version >/dev/null 2>&1; then
		log "dockerd $n is running already"
		return 0
	fi
	mkdir -p "$dr"
	put "dataroot_$n" "$dr"
	put "execroot_$n" "$er"
	cat >"$dr/daemon.json" <<EOF
{
  "data-root": "$dr/docker",
  "exec-root": "$er",
  "pidfile": "$(pidfile "$n")",
  "hosts": ["$(sock "$n")"],
  "storage-driver": "vfs",
  "bridge": "none",
  "iptables": true,
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "2"},
  "no-new-privileges": true
}
EOF
	put "dockerd_$n" started
	nsenter --net="/run/netns/$(ns "$n")" -- setsid dockerd --config-file "$dr/daemon.json" \
		</dev/null >>"$dr/dockerd.log" 2>&1 &
	local i
	for ((i = 0; i < 150; i++)); do
		DOCKER_HOST=$(sock "$n") timeout 5 docker version >/dev/null 2>&1 && break
		sleep 0.2
	done
	DOCKER_HOST=$(sock "$n") timeout 5 docker version >/dev/null 2>&1 ||
		die "dockerd $n did not start; its log: $dr/dockerd.log
$(tail -20 "$dr/dockerd.log")"
	put "pid_$n" "$(cat "$(pidfile "$n")")"
	log "dockerd $n: pid $(cat "$(pidfile "$n")"), $(sock "$n"), data root $dr/docker"
}

# load_images NODE: moat's images (localhost/moat*:1) from the machine's
# engine (not the other tags that tests make and remove).
load_images() {
	local n=$1 imgs
	imgs=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/moat.*:1$' | sort || true)
	[[ -n "$imgs" ]] || die "the machine's engine has no localhost/moat* images (scripts/build-images.sh)"
	# shellcheck disable=SC2086
	docker save $imgs | DOCKER_HOST=$(sock "$n") docker load -q >/dev/null
	log "images loaded into $n: $(echo "$imgs" | tr '\n' ' ')"
}

# manager_ready: the manager is an active Swarm manager reachable on
# MGR_IP from n2.
manager_ready() {
	local st addr
	st=$(dk mgr info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
	[[ "$st" == "active true" ]] || refuse "the manager ($(get mode)) is no active Swarm manager (state/manager: $st)"
	addr=$(dk mgr info --format '{{.Swarm.NodeAddr}}')
	if [[ "$addr" != "$MGR_IP" ]]; then
		cat >&2 <<EOF
swarm-node.sh: refused: the manager advertises $addr, which the worker's namespace
  cannot reach; it must advertise $MGR_IP (the host end of $VETH).
  - a Swarm made by scripts/swarm.sh: MOAT_SWARM_NODES=2 scripts/swarm.sh up
    (creates the link first and advertises $MGR_IP)
  - a Swarm made by hand: this script never re-inits it; develop against a
    private manager instead: MOAT_SWARM_NODE_MANAGER=private $0 add
EOF
		exit 2
	fi
}

add() {
	[[ -f "$STATE" && "$(get mode)" != "$MODE" ]] && refuse "a node made with manager '$(get mode)' exists; remove it first"
	# The machine's manager is checked before anything is made.
	[[ "$MODE" == host ]] && manager_ready
	link "$MODE"
	if [[ "$MODE" == private ]]; then
		start_dockerd n1
		load_images n1
		if [[ "$(dk n1 info --format '{{.Swarm.LocalNodeState}}')" == inactive ]]; then
			dk n1 swarm init --advertise-addr "$MGR_IP" --listen-addr "$MGR_IP:2377" \
				--default-addr-pool 10.250.0.0/16 --default-addr-pool-mask-length 24 >/dev/null
			put swarm_n1 "$(dk n1 info --format '{{.Swarm.NodeID}}')"
		fi
	fi
	manager_ready
	start_dockerd n2
	load_images n2
	if [[ "$(dk n2 info --format '{{.Swarm.LocalNodeState}}')" == inactive ]]; then
		local token
		token=$(dk mgr swarm join-token -q worker)
		dk n2 swarm join --token "$token" --advertise-addr "$N2_IP" --listen-addr "$N2_IP:2377" \
			--data-path-addr "$N2_IP" "$MGR_IP:2377" >/dev/null
	fi
	local id
	id=$(dk n2 info --format '{{.Swarm.NodeID}}')
	[[ -n "$id" ]] || die "n2 joined no Swarm"
	put node_id "$id"
	local i
	for ((i = 0; i < 100; i++)); do
		[[ "$(dk mgr node inspect -f '{{.Status.State}}' "$id" 2>/dev/null)" == ready ]] && break
		sleep 0.3
	done
	[[ "$(dk mgr node inspect -f '{{.Status.State}}' "$id")" == ready ]] || die "worker $id is not ready on the manager"
	put phase added
	log "added: worker $id ($N2_IP) joined the manager at $MGR_IP ($(get mode)); $(dk mgr info --format '{{.Swarm.Nodes}}') nodes"
	[[ "$MODE" == private ]] && log "the manager's engine: DOCKER_HOST=$(sock n1)"
	return 0
}

# stop_dockerd NODE: TERM, then wait; KILL its own leftovers by pid.
stop_dockerd() {
	local n=$1 pid i
	pid=$(cat "$(pidfile "$n")" 2>/dev/null || get "pid_$n")
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(dataroot "$n")/daemon.json"; then
		kill -TERM "$pid"
		for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$pid" 2>/dev/null && { log "dockerd $n ($pid) ignored TERM: KILL"; kill -KILL "$pid"; }
	fi
	# Its containerd and shims exit with it; any still running (found by
	# our exec root in their arguments) are ours.
	for pid in $(procs "$n"); do kill -KILL "$pid" 2>/dev/null || true; done
	sleep 0.2
}

# procs NODE: pids whose command line names the node's roots or socket.
procs() {
	local n=$1 p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qE "/(run|var/lib)/moat-swarm-$n([./ ]|$)" && echo "${p#/proc/}"
	done || true
}

# mounts NODE: mount points under the node's roots (host mount namespace).
mounts() { awk -v a="$(dataroot "$1")" -v b="$(execroot "$1")" 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r; }

remove_node() {
	local n=$1 m
	stop_dockerd "$n"
	for m in $(mounts "$n"); do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$(dataroot "$n")" "$(execroot "$n")" "/run/moat-swarm-$n.sock" "$(pidfile "$n")"
	has_ns "$(ns "$n")" && ip netns del "$(ns "$n")"
	return 0
}

remove() {
	[[ -f "$STATE" ]] || { log "nothing recorded ($STATE)"; prove; return; }
	local id mode
	id=$(get node_id) mode=$(get mode)
	if [[ -S /run/moat-swarm-n2.sock ]] && dk n2 version >/dev/null 2>&1; then
		[[ "$(dk n2 info --format '{{.Swarm.LocalNodeState}}')" != inactive ]] && { dk n2 swarm leave --force >/dev/null || log "n2: swarm leave failed"; }
	fi
	if [[ -n "$id" && "$mode" == host ]] && dk mgr node inspect "$id" >/dev/null 2>&1; then
		local i
		# A node that left shows "down" after a moment; rm --force either way.
		for ((i = 0; i < 25; i++)); do
			[[ "$(dk mgr node inspect -f '{{.Status.State}}' "$id" 2>/dev/null)" == down ]] && break
			sleep 0.2
		done
		dk mgr node rm --force "$id" >/dev/null || log "manager: node rm $id failed"
	fi
	remove_node n2
	if [[ "$mode" == private ]]; then
		# The whole private Swarm goes with its one manager.
		remove_node n1
	fi
	ip link show "$VETH" >/dev/null 2>&1 && ip link del "$VETH"
	prove
}

# prove: none of the recorded host state remains; exit 1 listing what does.
prove() {
	local left=() n nodes=n2
	# n1 exists only with a private manager (never made in host mode).
	[[ "$(get mode)" == private ]] && nodes="n1 n2"
	for n in $nodes; do
		has_ns "$(ns "$n")" && left+=("netns $(ns "$n")")
		[[ -e "$(dataroot "$n")" ]] && left+=("data root $(dataroot "$n")")
		[[ -e "$(execroot "$n")" ]] && left+=("exec root $(execroot "$n")")
		[[ -e "/run/moat-swarm-$n.sock" ]] && left+=("socket /run/moat-swarm-$n.sock")
		[[ -e "$(pidfile "$n")" ]] && left+=("pidfile $(pidfile "$n")")
		[[ -n "$(procs "$n")" ]] && left+=("processes of $n: $(procs "$n" | tr '\n' ' ')")
		[[ -n "$(mounts "$n")" ]] && left+=("mounts of $n: $(mounts "$n" | tr '\n' ' ')")
	done
	ip link show "$VETH" >/dev/null 2>&1 && left+=("link $VETH")
	ip -4 addr show | grep -qF " $MGR_IP/" && left+=("address $MGR_IP on the host")
	local id
	id=$(get node_id)
	if [[ -n "$id" && "$(get mode)" == host ]] && docker node inspect "$id" >/dev/null 2>&1; then
		left+=("node $id in the manager's node list")
	fi
	if ((${#left[@]})); then
		printf 'swarm-node.sh: remove: still there:\n' >&2
		printf '  %s\n' "${left[@]}" >&2
		log "the record stays in $STATE"
		exit 1
	fi
	rm -f "$STATE" "$STATE.tmp"
	log "remove: proven: no netns, link $VETH, data or exec root, socket, pidfile, process or mount of $nodes${id:+, node $id not in the node list of the manager}"
}

status() {
	local n
	echo "manager mode:  $(get mode) (state file $STATE$([[ -f "$STATE" ]] || echo ': none'))"
	echo "netns:         $(ip netns list | awk '{print $1}' | grep '^moat-swarm-' | tr '\n' ' ')"
	echo "link:          $(ip -br addr show "$VETH" 2>/dev/null || ip -n "$(ns n1)" -br addr show "$VETH" 2>/dev/null || echo none)"
	for n in n1 n2; do
		if [[ -S "/run/moat-swarm-$n.sock" ]] && dk "$n" version >/dev/null 2>&1; then
			echo "dockerd $n:    pid $(cat "$(pidfile "$n")" 2>/dev/null), $(sock "$n"), swarm $(dk "$n" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} {{.Swarm.NodeAddr}}')"
		fi
	done
	[[ -f "$STATE" ]] && sed 's/^/  /' "$STATE"
	return 0
}

run_tests() {
	local rc=0
	# The images on the machine's engine first: add copies them to the
	# node(s), and the suite's own build-images.sh only reaches the manager.
	DOCKER_HOST= "$ROOT/scripts/build-images.sh" >&2
	add
	finish() {
		local rc=$?
		trap - EXIT INT TERM
		set +e
		remove
		local r=$?
		((rc == 0)) && rc=$r
		exit "$rc"
	}
	trap finish EXIT
	trap 'exit 130' INT TERM
	cd "$ROOT"
	[[ "$MODE" == private ]] && export DOCKER_HOST=$(sock n1)
	log "MOAT_SWARM=1 MOAT_SWARM_NODES=2 ${DOCKER_HOST:+DOCKER_HOST=$DOCKER_HOST }go test -count=1 -timeout 20m ./test/swarm/ -run SwarmMultiNode $*"
	MOAT_SWARM=1 MOAT_SWARM_NODES=2 "${GO:-go}" test -count=1 -timeout 20m ./test/swarm/ -run SwarmMultiNode "$@" || rc=$?
	return "$rc"
}

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, a second dockerd)"
case "${1:-}" in
link) link ;;
add) add ;;
remove) remove ;;
status) status ;;
test) shift; run_tests "$@" ;;
*)
	echo "usage: $0 link|add|remove|status|test [GO TEST ARGS...]" >&2
	exit 2
	;;
esac
