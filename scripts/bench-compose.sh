#!/usr/bin/env bash
# make bench-compose: a whole-process benchmark of moat against
# docker-compose 1.29 on the local engine, both tools in one run, on an
# equivalent 50-container workload (see scripts/bench/workload.sh and
# docs/BENCHMARKS.md).
#
#   scripts/bench-compose.sh            run the benchmark (needs root only to
#                                       apt-get install docker-compose if missing)
#   scripts/bench-compose.sh clean      remove what interrupted runs left behind
#                                       (objects of moatbench-<hex> runs only)
#
# It measures, each tool on its own objects, each several times (median):
#   1. first apply from empty:  moat apply            vs docker-compose up -d
#   2. no-op:                   moat apply, moat plan vs docker-compose up -d
#      plus the Engine API calls of each (moat --stats; compose through a
#      counting proxy, scripts/bench/countproxy.go)
#   3. one-container change:    moat apply            vs docker-compose up -d -t 0
# and prints a table and the same as Markdown on stdout (progress on stderr).
#
# Everything it creates is named and labelled for one run, RUN=moatbench-<hex>:
# moat's instance (labels org.moat.managed-by=moat, org.moat.instance=RUN,
# addresses from 10.240.0.0/16) and the compose project RUN (label
# com.docker.compose.project=RUN, addresses from 10.241.0.0/16). A trap on
# EXIT removes exactly those, by label, and nothing else.
#
# Knobs (environment): REPS_FIRST (5), REPS_NOOP (5), REPS_CHANGE (3),
# BENCH_TENANTS (5), BENCH_APPS (10), BENCH_MOAT_PARALLEL ("": extra rows
# for the first apply with moat apply --parallel N for each N listed, e.g.
# "1 8 16"), BENCH_GO (1: also run the pure Compute benchmark),
# BENCH_STRICT (0; 1: exit 3 when a target is missed), BENCH_MOAT_FLAGS
# ("": extra flags for every moat apply). `make bench-compose-200`
# runs it at 200 containers on 20 LANs (BENCH_TENANTS=10 BENCH_APPS=20) with
# fewer repetitions.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MOAT="$ROOT/bin/moat"
WORKLOAD="$ROOT/scripts/bench/workload.sh"

REPS_FIRST=${REPS_FIRST:-5}
REPS_NOOP=${REPS_NOOP:-5}
REPS_CHANGE=${REPS_CHANGE:-3}
TENANTS=${BENCH_TENANTS:-5}
APPS=${BENCH_APPS:-10}
MOAT_PARALLEL_SWEEP=${BENCH_MOAT_PARALLEL:-}
BENCH_GO=${BENCH_GO:-1}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_MOAT_FLAGS=${BENCH_MOAT_FLAGS:-}
CONTAINERS=$((TENANTS * APPS))
NETWORKS=$((TENANTS * 2))
# The container whose environment the change benchmark edits.
CHANGE_TENANT=t$((TENANTS / 2))
CHANGE_APP=$(printf 'app%03d' $((APPS / 2)))

log() { printf 'bench-compose: %s\n' "$*" >&2; }
die() { printf 'bench-compose: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup

# remove_run RUN: remove the objects of one benchmark run, by label only.
remove_run() {
	local run=$1 ids
	[[ "$run" =~ ^moatbench-[0-9a-f]{8}$ ]] || { log "refusing to clean '$run': not a benchmark run name"; return 1; }
	# moat's instance.
	ids=$(docker ps -aq --filter label=org.moat.managed-by=moat --filter "label=org.moat.instance=$run")
	[[ -z "$ids" ]] || docker rm -f $ids >/dev/null
	ids=$(docker network ls -q --filter label=org.moat.managed-by=moat --filter "label=org.moat.instance=$run")
	[[ -z "$ids" ]] || docker network rm $ids >/dev/null
	ids=$(docker volume ls -q --filter label=org.moat.managed-by=moat --filter "label=org.moat.instance=$run")
	[[ -z "$ids" ]] || docker volume rm $ids >/dev/null
	# The compose project (the same as docker-compose down -v, by label).
	ids=$(docker ps -aq --filter "label=com.docker.compose.project=$run")
	[[ -z "$ids" ]] || docker rm -f $ids >/dev/null
	ids=$(docker network ls -q --filter "label=com.docker.compose.project=$run")
	[[ -z "$ids" ]] || docker network rm $ids >/dev/null
	ids=$(docker volume ls -q --filter "label=com.docker.compose.project=$run")
	[[ -z "$ids" ]] || docker volume rm $ids >/dev/null
	return 0
}

# left_of RUN: how many objects of the run still exist.
left_of() {
	local run=$1
	{
		docker ps -aq --filter "label=org.moat.instance=$run"
		docker network ls -q --filter "label=org.moat.instance=$run"
		docker volume ls -q --filter "label=org.moat.instance=$run"
		docker ps -aq --filter "label=com.docker.compose.project=$run"
		docker network ls -q --filter "label=com.docker.compose.project=$run"
		docker volume ls -q --filter "label=com.docker.compose.project=$run"
	} | grep -c . || true
}

if [[ "${1:-}" == clean ]]; then
	runs=$({
		docker ps -a --filter label=org.moat.managed-by=moat --format '{{.Label "org.moat.instance"}}'
		docker network ls --filter label=org.moat.managed-by=moat --format '{{.Label "org.moat.instance"}}'
		docker ps -a --filter label=org.moatbench.run --format '{{.Label "com.docker.compose.project"}}'
		docker network ls --filter label=org.moatbench.run --format '{{.Label "com.docker.compose.project"}}'
	} | grep -E '^moatbench-[0-9a-f]{8}$' | sort -u || true)
	if [[ -z "$runs" ]]; then
		log "nothing to clean"
		exit 0
	fi
	for r in $runs; do
		log "removing the objects of run $r"
		remove_run "$r"
	done
	exit 0
elif [[ $# -gt 0 ]]; then
	die "usage: $0 [clean]"
fi

# ---------------------------------------------------------------- preflight

command -v docker >/dev/null || die "the docker CLI is not on PATH (scripts/ensure-docker.sh)"
timeout 10 docker info >/dev/null 2>&1 || die "the Docker engine is unreachable"
if ! command -v docker-compose >/dev/null; then
	[[ $EUID == 0 ]] || die "docker-compose is missing; install it (apt-get install docker-compose) or run as root"
	log "installing Debian's docker-compose"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2
fi
COMPOSE_VERSION=$(docker-compose version --short 2>/dev/null || docker-compose --version)
[[ -x "$MOAT" ]] || { log "building bin/moat"; make -s build >&2; }
docker image inspect localhost/moat-examples/echo:1 >/dev/null 2>&1 ||
	{ log "building the echo image"; bash scripts/build-images.sh echo >&2; }

# Refuse to run where our address ranges are in use (another network, or a
# host route), rather than fail halfway or shadow someone's route.
in_use=$(docker network inspect $(docker network ls -q) --format '{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null |
	grep -E ' 10\.24[01]\.' || true)
[[ -z "$in_use" ]] || die "10.240.0.0/16 or 10.241.0.0/16 is in use by a Docker network (run '$0 clean' if it is a leftover benchmark):
$in_use"
if command -v ip >/dev/null && ip -4 route show | grep -qE '^10\.24[01]\.'; then
	die "the host has a route into 10.240.0.0/16 or 10.241.0.0/16; the benchmark would shadow it"
fi

RUN="moatbench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$RUN.XXXXXX")
REPO="$WORK/repo"
CF="$WORK/compose/docker-compose.yml"
PROXY_PID=""

cleanup() {
	local rc=$?
	set +e
	if [[ -n "$PROXY_PID" ]]; then
		kill "$PROXY_PID" 2>/dev/null
		wait "$PROXY_PID" 2>/dev/null
	fi
	# moat's host protection rules of the run (iptables, not labelled).
	[[ -d "$REPO" && -x "$MOAT" ]] && "$MOAT" state rm-host-rules "$REPO" >/dev/null
	remove_run "$RUN"
	local left
	left=$(left_of "$RUN")
	if [[ "$left" != 0 ]]; then
		log "WARNING: $left object(s) of run $RUN are left; remove them with: $0 clean"
	else
		log "removed every object of run $RUN"
	fi
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "run $RUN, work dir $WORK"
"$WORKLOAD" "$RUN" "$TENANTS" "$APPS" "$REPO" "$CF"
"$MOAT" validate "$REPO" >&2
(cd "$(dirname "$CF")" && docker-compose -p "$RUN" -f "$CF" config -q)

# BENCH_MOAT_FLAGS go to every moat apply (e.g. a longer --engine-write-timeout
# on a host so loaded that a container start takes over a minute).
moat() { "$MOAT" "$@" $BENCH_MOAT_FLAGS; }
compose() { docker-compose -p "$RUN" -f "$CF" "$@"; }

# ---------------------------------------------------------------- helpers

# timed NAME CMD...: run CMD with its output in $WORK/NAME.{out,err}; sets
# T_US (wall time in microseconds) and T_RC.
timed() {
	local name=$1 s e
	shift
	s=$(date +%s%N)
	if "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then T_RC=0; else T_RC=$?; fi
	e=$(date +%s%N)
	T_US=$(((e - s) / 1000))
}

fail_with() { # fail_with NAME MESSAGE
	log "$2"
	sed 's/^/  | /' "$WORK/$1.out" "$WORK/$1.err" | tail -40 >&2
	exit 1
}

# running_moat / running_compose: running containers of each tool's stack.
running_moat() {
	docker ps -q --filter label=org.moat.managed-by=moat --filter "label=org.moat.instance=$RUN" --filter status=running | grep -c . || true
}
running_compose() {
	docker ps -q --filter "label=com.docker.compose.project=$RUN" --filter status=running | grep -c . || true
}

expect_running() { # expect_running moat|compose
	local n
	n=$("running_$1")
	[[ "$n" == "$CONTAINERS" ]] || die "$1: $n containers running, expected $CONTAINERS"
}

expect_converged() { # moat's plan is empty
	"$MOAT" plan "$REPO" --detailed-exitcode >"$WORK/check.out" 2>&1 ||
		{ cat "$WORK/check.out" >&2; die "moat: the plan after apply is not empty"; }
}

teardown() { remove_run "$RUN"; }

# median of integers (microseconds); the mean of the middle two for even n.
median() {
	printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print a[(NR+1)/2]} else {printf "%d\n", (a[NR/2]+a[NR/2+1])/2}}'
}
secs() { awk -v u="$1" 'BEGIN {printf "%.3f", u/1e6}'; }
list_secs() { local out="" v; for v in "$@"; do out+="$(secs "$v") "; done; echo "${out% }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b<=0) print "n/a"; else printf "%.2f", a/b}'; }
# stats_total FILE: the "engine API calls: N" line of moat --stats.
stats_total() { sed -n 's/^engine API calls: \([0-9]*\)$/\1/p' "$1" | tail -1; }

# The counting proxy, for compose's API calls (moat counts its own with
# --stats, and is sent through the proxy once as a cross-check).
UPSTREAM=/var/run/docker.sock
case "${DOCKER_HOST:-}" in
"") ;;
unix://*) UPSTREAM=${DOCKER_HOST#unix://} ;;
*) UPSTREAM="" ;;
esac
PROXY_SOCK="$WORK/docker-count.sock"
PROXY_LOG="$WORK/calls.log"
if [[ -n "$UPSTREAM" ]] && command -v go >/dev/null &&
	go build -o "$WORK/countproxy" scripts/bench/countproxy.go 2>"$WORK/proxy-build.err"; then
	"$WORK/countproxy" -listen "$PROXY_SOCK" -upstream "$UPSTREAM" -log "$PROXY_LOG" 2>"$WORK/proxy.err" &
	PROXY_PID=$!
	for _ in $(seq 50); do [[ -S "$PROXY_SOCK" ]] && break; sleep 0.1; done
	[[ -S "$PROXY_SOCK" ]] || { log "the counting proxy did not start; compose's API calls are not counted"; PROXY_PID=""; }
else
	log "no counting proxy (DOCKER_HOST is not a unix socket, or go build failed); compose's API calls are not counted"
fi
# counted NAME CMD...: run CMD with DOCKER_HOST at the proxy; sets CALLS and
# writes the per-endpoint breakdown to $WORK/NAME.calls.
counted() {
	local name=$1
	shift
	CALLS="n/a"
	[[ -n "$PROXY_PID" ]] || return 0
	: >"$PROXY_LOG"
	if ! DOCKER_HOST="unix://$PROXY_SOCK" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
		fail_with "$name" "counted run $name failed"
	fi
	sleep 0.2 # the proxy logs before forwarding; nothing is in flight now
	CALLS=$(grep -c . "$PROXY_LOG" || true)
	# count, endpoint, summed and mean latency as the client saw it
	awk '{k=$1" "$2; n[k]++; t[k]+=$3} END {for (k in n) printf "%5d  %-34s %8.3f s %8.1f ms\n", n[k], k, t[k]/1e6, t[k]/n[k]/1e3}' "$PROXY_LOG" |
		sort -k4,4rn >"$WORK/$name.calls"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
OTHER_CONTAINERS=$(docker ps -q | grep -c . || true)

# ---------------------------------------------------------------- 1. first apply

log "1/3 first apply of $CONTAINERS containers and $NETWORKS networks, $REPS_FIRST repetitions each (torn down in between)"
first_moat=() first_compose=() first_moat_calls=""
declare -A first_sweep=()
first_moat_run() {
	teardown
	timed first-moat moat apply "$REPO" --stats
	((T_RC == 0)) || fail_with first-moat "moat apply failed"
	first_moat+=("$T_US")
	first_moat_calls=$(stats_total "$WORK/first-moat.err")
	expect_running moat
	expect_converged
	log "  moat apply            #$1  $(secs "$T_US") s"
}
first_compose_run() {
	teardown
	timed first-compose compose up -d
	((T_RC == 0)) || fail_with first-compose "docker-compose up -d failed"
	first_compose+=("$T_US")
	expect_running compose
	log "  docker-compose up -d  #$1  $(secs "$T_US") s"
}
for ((r = 1; r <= REPS_FIRST; r++)); do
	# Alternate which tool goes first, so that a drift in the machine's
	# load does not favour one of them.
	if ((r % 2)); then
		first_moat_run "$r"
		first_compose_run "$r"
	else
		first_compose_run "$r"
		first_moat_run "$r"
	fi
	for p in $MOAT_PARALLEL_SWEEP; do
		teardown
		timed first-moat-p moat apply "$REPO" --parallel "$p"
		((T_RC == 0)) || fail_with first-moat-p "moat apply --parallel $p failed"
		expect_running moat
		first_sweep[$p]+="$T_US "
		log "  moat apply --parallel $p  #$r  $(secs "$T_US") s"
	done
done
# Where the time of a first apply goes: each tool once more, untimed,
# through the counting proxy (calls and their latency by endpoint).
teardown
counted first-moat-count "$MOAT" apply "$REPO" $BENCH_MOAT_FLAGS
expect_running moat
teardown
counted first-compose-count compose up -d
first_compose_calls=$CALLS
expect_running compose
# Both stacks up for the next phases.
"$MOAT" apply "$REPO" $BENCH_MOAT_FLAGS >"$WORK/setup.out" 2>&1 || { cat "$WORK/setup.out" >&2; die "moat apply failed"; }
expect_running moat
expect_converged

# ---------------------------------------------------------------- 2. no-op

log "2/3 no-op, $REPS_NOOP repetitions each"
noop_apply=() noop_plan=() noop_compose=()
for ((r = 1; r <= REPS_NOOP; r++)); do
	timed noop-plan moat plan "$REPO" --detailed-exitcode
	((T_RC == 0)) || fail_with noop-plan "moat plan --detailed-exitcode: exit $T_RC, expected 0 (no changes)"
	noop_plan+=("$T_US")
	timed noop-apply moat apply "$REPO"
	((T_RC == 0)) || fail_with noop-apply "moat apply (no-op) failed"
	grep -q '^No changes' "$WORK/noop-apply.out" || fail_with noop-apply "moat apply was not a no-op"
	noop_apply+=("$T_US")
	timed noop-compose compose up -d
	((T_RC == 0)) || fail_with noop-compose "docker-compose up -d (no-op) failed"
	if grep -qE '^(Creating|Recreating|Starting) ' "$WORK/noop-compose.err" "$WORK/noop-compose.out"; then
		fail_with noop-compose "docker-compose up -d was not a no-op"
	fi
	noop_compose+=("$T_US")
	log "  #$r  moat plan $(secs "${noop_plan[-1]}") s  moat apply $(secs "${noop_apply[-1]}") s  docker-compose up -d $(secs "$T_US") s"
done
"$MOAT" plan "$REPO" --stats >/dev/null 2>"$WORK/noop-plan-stats.err"
noop_plan_calls=$(stats_total "$WORK/noop-plan-stats.err")
"$MOAT" apply "$REPO" --stats >/dev/null 2>"$WORK/noop-apply-stats.err"
noop_apply_calls=$(stats_total "$WORK/noop-apply-stats.err")
counted noop-compose-count compose up -d
noop_compose_calls=$CALLS
counted noop-moat-count "$MOAT" apply "$REPO" $BENCH_MOAT_FLAGS
noop_moat_proxy_calls=$CALLS

# ---------------------------------------------------------------- 3. change

log "3/3 one-container change ($CHANGE_TENANT/$CHANGE_APP's env), $REPS_CHANGE repetitions each"
change_moat=() change_compose=() change_moat_calls=""
rev=0
for ((r = 1; r <= REPS_CHANGE; r++)); do
	rev=$((rev + 1))
	"$WORKLOAD" set-rev "$REPO" "$CF" "$CHANGE_TENANT" "$CHANGE_APP" "$rev"
	timed change-moat moat apply "$REPO" --stats
	((T_RC == 0)) || fail_with change-moat "moat apply (change) failed"
	grep -q '^Apply finished: 1 replaced\.$' "$WORK/change-moat.out" || fail_with change-moat "moat apply did not replace exactly one container"
	change_moat+=("$T_US")
	change_moat_calls=$(stats_total "$WORK/change-moat.err")
	expect_running moat
	expect_converged
	timed change-compose compose up -d -t 0
	((T_RC == 0)) || fail_with change-compose "docker-compose up -d -t 0 (change) failed"
	n=$(cat "$WORK/change-compose.out" "$WORK/change-compose.err" | grep -E '^Recreating .* done' | grep -c . || true)
	[[ "$n" == 1 ]] || fail_with change-compose "docker-compose recreated $n containers, expected 1"
	change_compose+=("$T_US")
	expect_running compose
	log "  #$r  moat apply $(secs "${change_moat[-1]}") s  docker-compose up -d -t 0 $(secs "$T_US") s"
done
rev=$((rev + 1))
"$WORKLOAD" set-rev "$REPO" "$CF" "$CHANGE_TENANT" "$CHANGE_APP" "$rev"
counted change-compose-count compose up -d -t 0
change_compose_calls=$CALLS

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- Go benchmark

compute_lines=""
if [[ "$BENCH_GO" == 1 ]]; then
	log "pure Compute benchmark (go test ./reconcile -run '^\$' -bench Compute -benchmem)"
	if go test ./reconcile -run '^$' -bench Compute -benchmem >"$WORK/gobench.out" 2>&1; then
		compute_lines=$(grep -E '^BenchmarkCompute' "$WORK/gobench.out" || true)
	else
		log "the Go benchmark failed:"
		tail -20 "$WORK/gobench.out" >&2
	fi
fi

# ---------------------------------------------------------------- report

m_first=$(median "${first_moat[@]}")
c_first=$(median "${first_compose[@]}")
m_noop=$(median "${noop_apply[@]}")
m_plan=$(median "${noop_plan[@]}")
c_noop=$(median "${noop_compose[@]}")
m_change=$(median "${change_moat[@]}")
c_change=$(median "${change_compose[@]}")

verdict() { # verdict COMPOSE_US MOAT_US NEED: met when compose >= NEED x moat (unrounded)
	awk -v c="$1" -v m="$2" -v n="$3" 'BEGIN {print (c >= n * m) ? "met" : "MISSED"}'
}
r_first=$(ratio "$c_first" "$m_first")
r_noop=$(ratio "$c_noop" "$m_noop")
r_plan=$(ratio "$c_noop" "$m_plan")
r_change=$(ratio "$c_change" "$m_change")
v_first=$(verdict "$c_first" "$m_first" 1)
v_noop=$(verdict "$c_noop" "$m_noop" 10)
v_change=$(verdict "$c_change" "$m_change" 1)

SERVER=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo unknown)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
STORAGE=$(docker info --format 'storage driver {{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}})' 2>/dev/null || echo 'storage driver unknown')

rows=(
	"first apply, $CONTAINERS containers + $NETWORKS networks|moat apply|docker-compose up -d|$(secs "$m_first")|$(secs "$c_first")|$r_first|>= 1.0|$v_first"
	"no-op|moat apply|docker-compose up -d|$(secs "$m_noop")|$(secs "$c_noop")|$r_noop|>= 10|$v_noop"
	"no-op|moat plan|docker-compose up -d|$(secs "$m_plan")|$(secs "$c_noop")|$r_plan|-|-"
	"one-container change|moat apply|docker-compose up -d -t 0|$(secs "$m_change")|$(secs "$c_change")|$r_change|>= 1.0|$v_change"
)
for p in $MOAT_PARALLEL_SWEEP; do
	# shellcheck disable=SC2086
	m=$(median ${first_sweep[$p]})
	rows+=("first apply, $CONTAINERS containers + $NETWORKS networks|moat apply --parallel $p|docker-compose up -d|$(secs "$m")|$(secs "$c_first")|$(ratio "$c_first" "$m")|-|-")
done
calls=(
	"first apply|moat apply|${first_moat_calls:-n/a}|docker-compose up -d|$first_compose_calls"
	"no-op|moat plan|${noop_plan_calls:-n/a}|docker-compose up -d|$noop_compose_calls"
	"no-op|moat apply|${noop_apply_calls:-n/a} (proxy: $noop_moat_proxy_calls)|docker-compose up -d|$noop_compose_calls"
	"one-container change|moat apply|${change_moat_calls:-n/a}|docker-compose up -d -t 0|$change_compose_calls"
)

{
	echo
	echo "moat vs docker-compose $COMPOSE_VERSION: $CONTAINERS containers, $NETWORKS networks; medians; ratio = compose / moat"
	printf '%-44s %-28s %-28s %9s %9s %7s %7s %s\n' measurement moat compose "moat s" "compose s" ratio target result
	for row in "${rows[@]}"; do
		IFS='|' read -r what mc cc mv cv ra ta ve <<<"$row"
		printf '%-44s %-28s %-28s %9s %9s %7s %7s %s\n' "$what" "$mc" "$cc" "$mv" "$cv" "$ra" "$ta" "$ve"
	done
	echo
	printf '%-22s %-14s %-16s %-26s %s\n' "API calls" moat calls compose calls
	for row in "${calls[@]}"; do
		IFS='|' read -r what mc mn cc cn <<<"$row"
		printf '%-22s %-14s %-16s %-26s %s\n' "$what" "$mc" "$mn" "$cc" "$cn"
	done
	echo
}

# The same as Markdown, for docs/BENCHMARKS.md.
echo "### Results of run $RUN ($(date -u +%Y-%m-%d))"
echo
echo "Machine: $(nproc) CPUs ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Docker Engine $SERVER, $STORAGE, docker-compose $COMPOSE_VERSION, moat $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)'). Load average $LOAD_START at the start, $LOAD_END at the end; $OTHER_CONTAINERS other containers running on the engine."
echo
echo "Workload: $TENANTS tenants x $APPS apps x 1 replica = $CONTAINERS containers (no shared services, so no gateway containers), $NETWORKS networks ($TENANTS internal). Repetitions: first apply $REPS_FIRST, no-op $REPS_NOOP, change $REPS_CHANGE; medians; ratio = compose / moat (higher is better for moat)."
echo
echo "| measurement | moat | compose | moat (s) | compose (s) | ratio | target | result |"
echo "|---|---|---|---:|---:|---:|---|---|"
for row in "${rows[@]}"; do
	IFS='|' read -r what mc cc mv cv ra ta ve <<<"$row"
	[[ "$ve" == MISSED ]] && ve="**MISSED**"
	echo "| $what | \`$mc\` | \`$cc\` | $mv | $cv | $ra | $ta | $ve |"
done
echo
echo "Samples (s): first apply moat $(list_secs "${first_moat[@]}"), compose $(list_secs "${first_compose[@]}"); no-op moat apply $(list_secs "${noop_apply[@]}"), moat plan $(list_secs "${noop_plan[@]}"), compose $(list_secs "${noop_compose[@]}"); change moat $(list_secs "${change_moat[@]}"), compose $(list_secs "${change_compose[@]}")."
for p in $MOAT_PARALLEL_SWEEP; do
	# shellcheck disable=SC2086
	echo "First apply with moat apply --parallel $p: $(list_secs ${first_sweep[$p]})."
done
echo
echo "| Engine API calls | moat | compose |"
echo "|---|---:|---:|"
for row in "${calls[@]}"; do
	IFS='|' read -r what mc mn cc cn <<<"$row"
	echo "| $what (\`$mc\` / \`$cc\`) | $mn | $cn |"
done
if [[ -n "$PROXY_PID" ]]; then
	echo
	echo "Engine API calls by endpoint (counting proxy; count, summed and mean latency as the client waited for it, costliest first; calls run concurrently, so the sums exceed the wall time):"
	for pair in "first-moat-count|first apply, moat apply" "first-compose-count|first apply, docker-compose up -d" \
		"noop-compose-count|no-op, docker-compose up -d" "change-compose-count|one-container change, docker-compose up -d -t 0"; do
		IFS='|' read -r f title <<<"$pair"
		echo
		echo "$title:"
		echo
		echo '```'
		head -10 "$WORK/$f.calls"
		echo '```'
	done
fi
if [[ -n "$compute_lines" ]]; then
	echo
	echo "Pure \`reconcile.Compute\` (\`go test ./reconcile -run '^\$' -bench Compute -benchmem\`):"
	echo
	echo '```'
	echo "$compute_lines"
	echo '```'
fi

if [[ "$BENCH_STRICT" == 1 && ("$v_first" != met || "$v_noop" != met || "$v_change" != met) ]]; then
	log "a target was missed"
	exit 3
fi
