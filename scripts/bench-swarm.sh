#!/usr/bin/env bash
# make bench-swarm: moat on Swarm against `docker stack deploy`, both in one
# run on the same Swarm, on the 50-container workload of make bench-compose
# (scripts/bench/workload.sh: 5 tenants x 10 apps, two LANs per tenant),
# here as 50 services on 10 overlay networks. Not a timed test: it measures
# and prints a table (and the same as Markdown for docs/BENCHMARKS.md).
#
#   scripts/bench-swarm.sh          run it (the engine must be a Swarm manager or in no
#                                   Swarm: then scripts/swarm.sh makes one and leaves it)
#   scripts/bench-swarm.sh clean    remove what an interrupted run left (moatbench-<hex> only)
#
# Measured, each tool on its own objects:
#   1. first deploy from empty: moat apply           vs docker stack deploy + wait
#   2. no-op:                   moat apply, moat plan vs docker stack deploy + wait
#   3. one-service change:      moat apply           vs docker stack deploy + wait
# moat apply returns when every service runs its task (creates) or the
# rolling update completed (updates); docker stack deploy returns as soon as
# the manager accepted the specs, so its time is "until the same is true":
# every service 1/1 with the right spec (polled every 0.2 s), and the
# command's own return time is printed beside it. API calls: moat --stats;
# docker stack deploy through the counting proxy (scripts/bench/countproxy.go),
# without the polling (which is the benchmark's, not the tool's).
#
# The two stacks are equivalent: the same image, env, user, read-only root,
# cap-drop ALL, /tmp tmpfs, limits (0.25 CPU, 32 MiB), restart on-failure x5,
# endpoint mode dnsrr, start-first updates watched for 3 s with rollback on
# failure (moat's update config; Swarm's default monitor is 5 s), one overlay per LAN (lan1
# internal), the app name as alias; neither encrypts (one node). Compose-file
# options the stack cannot express (no-new-privileges, pids) are left out
# on the stack side; moat sets what API 1.41 lets it.
#
# Knobs: REPS_FIRST (1), REPS_NOOP (3), REPS_CHANGE (2), BENCH_TENANTS (5),
# BENCH_APPS (10), BENCH_MOAT_FLAGS ("": extra flags for every moat apply).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MOAT="$ROOT/bin/moat"
WORKLOAD="$ROOT/scripts/bench/workload.sh"
REPS_FIRST=${REPS_FIRST:-1}
REPS_NOOP=${REPS_NOOP:-3}
REPS_CHANGE=${REPS_CHANGE:-2}
TENANTS=${BENCH_TENANTS:-5}
APPS=${BENCH_APPS:-10}
BENCH_MOAT_FLAGS=${BENCH_MOAT_FLAGS:-}
SERVICES=$((TENANTS * APPS))
NETWORKS=$((TENANTS * 2))
CHANGE_TENANT=t$((TENANTS / 2))
CHANGE_APP=$(printf 'app%03d' $((APPS / 2)))

log() { printf 'bench-swarm: %s\n' "$*" >&2; }
die() { printf 'bench-swarm: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup

# remove_run RUN: both stacks of one run, by label; waits until their
# networks are gone (a service's tasks hold its networks for a while).
remove_run() {
	local run=$1 ids i
	[[ "$run" =~ ^moatbench-[0-9a-f]{8}$ ]] || { log "refusing to clean '$run': not a benchmark run name"; return 1; }
	for i in $(seq 1 60); do
		ids=$( { docker service ls -q --filter "label=org.moat.instance=$run"; docker service ls -q --filter "label=com.docker.stack.namespace=$run"; } | sort -u)
		[[ -z "$ids" ]] || docker service rm $ids >/dev/null 2>&1 || true
		ids=$( { docker network ls -q --filter "label=org.moat.instance=$run"; docker network ls -q --filter "label=com.docker.stack.namespace=$run"; } | sort -u)
		[[ -z "$ids" ]] || docker network rm $ids >/dev/null 2>&1 || true
		[[ $(left_of "$run") == 0 ]] && return 0
		sleep 1
	done
	return 0
}

left_of() {
	local run=$1
	{
		docker service ls -q --filter "label=org.moat.instance=$run"
		docker network ls -q --filter "label=org.moat.instance=$run"
		docker service ls -q --filter "label=com.docker.stack.namespace=$run"
		docker network ls -q --filter "label=com.docker.stack.namespace=$run"
		docker ps -aq --filter "label=com.docker.stack.namespace=$run"
		docker ps -aq --filter "label=org.moat.instance=$run"
		# moat's host-rule chain of the run (firewall.ChainsOf: 8 hex of
		# the instance name's sha256)
		iptables-save 2>/dev/null | grep -m1 "^:MOAT-INPUT-$(printf %s "$run" | sha256sum | cut -c1-8) " || true
	} | grep -c . || true
}

if [[ "${1:-}" == clean ]]; then
	runs=$( {
		docker service ls --filter label=org.moat.managed-by=moat --format '{{.Label "org.moat.instance"}}'
		docker service ls --filter label=com.docker.stack.namespace --format '{{.Label "com.docker.stack.namespace"}}'
		docker network ls --filter label=com.docker.stack.namespace --format '{{.Label "com.docker.stack.namespace"}}'
	} | grep -E '^moatbench-[0-9a-f]{8}$' | sort -u || true)
	[[ -n "$runs" ]] || { log "nothing to clean"; exit 0; }
	for r in $runs; do log "removing the objects of run $r"; remove_run "$r"; done
	exit 0
elif [[ $# -gt 0 ]]; then
	die "usage: $0 [clean]"
fi

# ---------------------------------------------------------------- preflight

timeout 10 docker info >/dev/null 2>&1 || die "the Docker engine is unreachable"
[[ -x "$MOAT" ]] || { log "building bin/moat"; make -s build >&2; }
docker image inspect localhost/moat-examples/echo:1 >/dev/null 2>&1 ||
	{ log "building the echo image"; bash scripts/build-images.sh echo >&2; }
in_use=$(docker network inspect $(docker network ls -q) --format '{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null |
	grep -E ' 10\.24[01]\.' || true)
[[ -z "$in_use" ]] || die "10.240.0.0/16 or 10.241.0.0/16 is in use by a Docker network (run '$0 clean' if it is a leftover benchmark):
$in_use"

BROUGHT=0
case "$(docker info --format '{{.Swarm.LocalNodeState}}')" in
inactive) bash scripts/swarm.sh up; BROUGHT=1 ;;
active) [[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" == true ]] || die "the engine is a Swarm worker; run on a manager" ;;
*) die "the engine's Swarm state is $(docker info --format '{{.Swarm.LocalNodeState}}')" ;;
esac

RUN="moatbench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$RUN.XXXXXX")
REPO="$WORK/repo"
CF2="$WORK/compose/docker-compose.yml" # workload.sh's compose file (not used, but set-rev edits it)
SF="$WORK/stack/stack.yml"
PROXY_PID=""

cleanup() {
	local rc=$?
	set +e
	[[ -n "$PROXY_PID" ]] && { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; }
	remove_run "$RUN"
	# moat's host rules of the run (host protection on a node whose
	# docker_gwbridge is moat's): not Docker objects, so not removed above.
	[[ -d "$REPO" ]] && "$MOAT" state rm-host-rules "$REPO" >/dev/null 2>&1
	local left
	left=$(left_of "$RUN")
	if [[ "$left" != 0 ]]; then log "WARNING: $left object(s) of run $RUN are left; remove them with: $0 clean"; else log "removed every object of run $RUN"; fi
	rm -rf "$WORK"
	if ((BROUGHT)); then bash scripts/swarm.sh down || rc=1; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "run $RUN, work dir $WORK"
"$WORKLOAD" "$RUN" "$TENANTS" "$APPS" "$REPO" "$CF2"
# The moat repo on Swarm: the same platform with engine swarm and overlays.
sed -i -e 's/^network:$/engine: swarm\nnetwork:/' -e 's/^  driver: bridge$/  driver: overlay/' "$REPO/platform.yaml"
grep -q '^engine: swarm$' "$REPO/platform.yaml" && grep -q '^  driver: overlay$' "$REPO/platform.yaml" ||
	die "could not derive the Swarm platform from workload.sh's platform.yaml"
# Host protection needs the node's docker_gwbridge made for moat (docs/SWARM.md;
# scripts/swarm.sh up makes it so); on a Swarm made otherwise it is off.
HOSTPROT=on
if [[ "$(docker network inspect --format '{{index .Options "com.docker.network.bridge.name"}}' docker_gwbridge 2>/dev/null)" != moat-gwbridge ]]; then
	HOSTPROT="off (this node's docker_gwbridge is not moat-gwbridge)"
	log "host protection $HOSTPROT"
	sed -i 's/^network:$/network:\n  hostProtection: false/' "$REPO/platform.yaml"
fi
"$MOAT" validate "$REPO" >&2

# The stack file: the same workload for docker stack deploy (compose v3.8).
# BENCH_REV lines carry workload.sh's "# rev:T/APP" markers at the same
# indentation as its compose file, so that set-rev edits this file too.
gen_stack() {
	local i j t a l
	echo "# moat bench-swarm workload; generated by scripts/bench-swarm.sh."
	echo 'version: "3.8"'
	echo "services:"
	for ((i = 0; i < TENANTS; i++)); do
		t="t$i"
		for ((j = 0; j < APPS; j++)); do
			a=$(printf 'app%03d' "$j")
			cat <<YAML
  $t-$a:
    image: localhost/moat-examples/echo:1
    read_only: true
    user: "65534:65534"
    cap_drop: [ALL]
    volumes:
      - {type: tmpfs, target: /tmp, tmpfs: {size: 16777216}}
    environment:
      APP_NAME: $a
      BENCH_REV: "0" # rev:$t/$a
      MOAT_TENANT: $t
      MOAT_APP: $a
      MOAT_REPLICA: "1"
    deploy:
      replicas: 1
      endpoint_mode: dnsrr
      resources: {limits: {cpus: "0.25", memory: 32M}}
      restart_policy: {condition: on-failure, max_attempts: 5}
      update_config: {order: start-first, parallelism: 1, monitor: 3s, failure_action: rollback}
      rollback_config: {order: start-first, parallelism: 1, monitor: 3s, failure_action: pause}
      labels: {org.moatbench.run: $run_label, org.moatbench.tenant: $t, org.moatbench.app: $a}
    networks:
YAML
			if ((j == 0)); then l="lan0 lan1"; else l="lan$((j % 2))"; fi
			for n in $l; do printf '      %s-%s:\n        aliases: [%s]\n' "$t" "$n" "$a"; done
		done
	done
	echo "networks:"
	for ((i = 0; i < TENANTS; i++)); do
		for k in 0 1; do
			cat <<YAML
  t$i-lan$k:
    driver: overlay
    internal: $([[ $k == 1 ]] && echo true || echo false)
    ipam: {config: [{subnet: 10.241.$((4 * i + k)).0/24}]}
    labels: {org.moatbench.run: $run_label}
YAML
		done
	done
}
mkdir -p "$(dirname "$SF")"
run_label=$RUN gen_stack >"$SF"
set_rev() { # set_rev VALUE: the change, in the moat repo and the stack file
	"$WORKLOAD" set-rev "$REPO" "$CF2" "$CHANGE_TENANT" "$CHANGE_APP" "$1"
	sed -i -E "s|^(      BENCH_REV: )\"[0-9]+\"( # rev:$CHANGE_TENANT/$CHANGE_APP)\$|\1\"$1\"\2|" "$SF"
	grep -q "BENCH_REV: \"$1\" # rev:$CHANGE_TENANT/$CHANGE_APP\$" "$SF" || die "set-rev of the stack file failed"
}

moat() { "$MOAT" "$@" $BENCH_MOAT_FLAGS; }
stack() { docker stack deploy --prune -c "$SF" "$RUN"; }

timed() { # timed NAME CMD...: T_US, T_RC; output in $WORK/NAME.{out,err}
	local name=$1 s e
	shift
	s=$(date +%s%N)
	if "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then T_RC=0; else T_RC=$?; fi
	e=$(date +%s%N)
	T_US=$(((e - s) / 1000))
}
fail_with() { log "$2"; sed 's/^/  | /' "$WORK/$1.out" "$WORK/$1.err" | tail -40 >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else printf "%d\n", (a[NR/2]+a[NR/2+1])/2}'; }
secs() { awk -v u="$1" 'BEGIN {printf "%.2f", u/1e6}'; }
list_secs() { local o="" v; for v in "$@"; do o+="$(secs "$v") "; done; echo "${o% }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b<=0) print "n/a"; else printf "%.2f", a/b}'; }
stats_total() { sed -n 's/^engine API calls: \([0-9]*\)$/\1/p' "$1" | tail -1; }
now_us() { echo $(($(date +%s%N) / 1000)); }

# all_running LABEL_FILTER: every service of the filter runs its task
# ("1/1"; "2/1" while a start-first update's old task is still stopping).
all_running() {
	local r
	r=$(docker service ls --filter "$1" --format '{{.Replicas}}')
	[[ $(grep -c . <<<"$r") == "$SERVICES" ]] && ! grep -qvE '^[1-9][0-9]*/1$' <<<"$r"
}
# stack_wait START_US [SERVICE]: wait until the stack runs every service
# (and, for SERVICE, the rolling update completed and its task runs the
# new spec); sets T_US from START_US.
stack_wait() {
	local start=$1 svc=${2:-} st
	for _ in $(seq 1 3000); do
		if all_running "label=com.docker.stack.namespace=$RUN"; then
			if [[ -z "$svc" ]]; then break; fi
			st=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$svc")
			[[ "$st" == completed ]] && break
		fi
		sleep 0.2
	done
	T_US=$(($(now_us) - start))
	all_running "label=com.docker.stack.namespace=$RUN" || die "docker stack deploy: the stack did not converge"
}
moat_running() { all_running "label=org.moat.instance=$RUN" || die "moat: not every service runs 1/1 after apply"; }
expect_converged() {
	"$MOAT" plan "$REPO" --detailed-exitcode >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; die "moat: the plan after apply is not empty"; }
}
teardown() { remove_run "$RUN"; }

# The counting proxy, for docker stack deploy's API calls.
UPSTREAM=/var/run/docker.sock
case "${DOCKER_HOST:-}" in "") ;; unix://*) UPSTREAM=${DOCKER_HOST#unix://} ;; *) UPSTREAM="" ;; esac
PROXY_SOCK="$WORK/docker-count.sock" PROXY_LOG="$WORK/calls.log"
if [[ -n "$UPSTREAM" ]] && go build -o "$WORK/countproxy" scripts/bench/countproxy.go 2>"$WORK/proxy-build.err"; then
	"$WORK/countproxy" -listen "$PROXY_SOCK" -upstream "$UPSTREAM" -log "$PROXY_LOG" 2>"$WORK/proxy.err" &
	PROXY_PID=$!
	for _ in $(seq 50); do [[ -S "$PROXY_SOCK" ]] && break; sleep 0.1; done
	[[ -S "$PROXY_SOCK" ]] || { log "the counting proxy did not start"; PROXY_PID=""; }
fi
counted_stack() { # counted_stack NAME: stack deploy through the proxy; sets CALLS
	CALLS=n/a
	[[ -n "$PROXY_PID" ]] || return 0
	: >"$PROXY_LOG"
	DOCKER_HOST="unix://$PROXY_SOCK" docker stack deploy --prune -c "$SF" "$RUN" >"$WORK/$1.out" 2>"$WORK/$1.err" || fail_with "$1" "counted stack deploy failed"
	sleep 0.2
	CALLS=$(grep -c . "$PROXY_LOG" || true)
	awk '{k=$1" "$2; n[k]++} END {for (k in n) printf "%5d  %s\n", n[k], k}' "$PROXY_LOG" | sort -rn >"$WORK/$1.calls"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
OTHER_SERVICES=$(docker service ls -q | grep -c . || true)

# ---------------------------------------------------------------- 1. first deploy

log "1/3 first deploy of $SERVICES services on $NETWORKS overlays, $REPS_FIRST repetition(s) each"
first_moat=() first_stack=() first_stack_ret=() first_moat_calls=""
for ((r = 1; r <= REPS_FIRST; r++)); do
	teardown
	timed first-moat moat apply "$REPO" --stats
	((T_RC == 0)) || fail_with first-moat "moat apply failed"
	first_moat+=("$T_US")
	first_moat_calls=$(stats_total "$WORK/first-moat.err")
	moat_running
	expect_converged
	log "  moat apply                    #$r  $(secs "$T_US") s"
	s=$(now_us)
	timed first-stack stack
	((T_RC == 0)) || fail_with first-stack "docker stack deploy failed"
	first_stack_ret+=("$T_US")
	stack_wait "$s"
	first_stack+=("$T_US")
	log "  docker stack deploy (+ wait)  #$r  $(secs "$T_US") s (the command returned after $(secs "${first_stack_ret[-1]}") s)"
done
teardown
counted_stack first-stack-count
first_stack_calls=$CALLS
stack_wait "$(now_us)"
"$MOAT" apply "$REPO" $BENCH_MOAT_FLAGS >"$WORK/setup.out" 2>&1 || { cat "$WORK/setup.out" >&2; die "moat apply failed"; }
moat_running
expect_converged

# ---------------------------------------------------------------- 2. no-op

log "2/3 no-op, $REPS_NOOP repetitions each"
noop_apply=() noop_plan=() noop_stack=()
for ((r = 1; r <= REPS_NOOP; r++)); do
	timed noop-plan moat plan "$REPO" --detailed-exitcode
	((T_RC == 0)) || fail_with noop-plan "moat plan --detailed-exitcode: exit $T_RC, expected 0 (no changes)"
	noop_plan+=("$T_US")
	timed noop-apply moat apply "$REPO"
	((T_RC == 0)) || fail_with noop-apply "moat apply (no-op) failed"
	grep -q '^No changes' "$WORK/noop-apply.out" || fail_with noop-apply "moat apply was not a no-op"
	noop_apply+=("$T_US")
	s=$(now_us)
	timed noop-stack stack
	((T_RC == 0)) || fail_with noop-stack "docker stack deploy (no-op) failed"
	stack_wait "$s"
	noop_stack+=("$T_US")
	log "  #$r  moat plan $(secs "${noop_plan[-1]}") s  moat apply $(secs "${noop_apply[-1]}") s  docker stack deploy $(secs "$T_US") s"
done
"$MOAT" plan "$REPO" --stats >/dev/null 2>"$WORK/noop-plan-stats.err"
noop_plan_calls=$(stats_total "$WORK/noop-plan-stats.err")
"$MOAT" apply "$REPO" --stats $BENCH_MOAT_FLAGS >/dev/null 2>"$WORK/noop-apply-stats.err"
noop_apply_calls=$(stats_total "$WORK/noop-apply-stats.err")
counted_stack noop-stack-count
noop_stack_calls=$CALLS
stack_wait "$(now_us)"

# ---------------------------------------------------------------- 3. change

SVC_MOAT="$RUN--$CHANGE_TENANT--$CHANGE_APP--1"
SVC_STACK="${RUN}_$CHANGE_TENANT-$CHANGE_APP"
log "3/3 one-service change ($CHANGE_TENANT/$CHANGE_APP's env), $REPS_CHANGE repetitions each"
change_moat=() change_stack=() change_moat_calls=""
rev=0
for ((r = 1; r <= REPS_CHANGE; r++)); do
	rev=$((rev + 1))
	set_rev "$rev"
	timed change-moat moat apply "$REPO" --stats
	((T_RC == 0)) || fail_with change-moat "moat apply (change) failed"
	grep -q '^Apply finished: 1 updated\.$' "$WORK/change-moat.out" || fail_with change-moat "moat apply did not update exactly one service"
	change_moat+=("$T_US")
	change_moat_calls=$(stats_total "$WORK/change-moat.err")
	moat_running
	expect_converged
	docker service inspect --format '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}' "$SVC_MOAT" | grep -qx "BENCH_REV=$rev" ||
		die "moat: $SVC_MOAT does not have BENCH_REV=$rev"
	before=$(docker service ls --filter "label=com.docker.stack.namespace=$RUN" -q | xargs docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' | sort)
	s=$(now_us)
	timed change-stack stack
	((T_RC == 0)) || fail_with change-stack "docker stack deploy (change) failed"
	stack_wait "$s" "$SVC_STACK"
	change_stack+=("$T_US")
	after=$(docker service ls --filter "label=com.docker.stack.namespace=$RUN" -q | xargs docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' | sort)
	n=$(diff <(echo "$before") <(echo "$after") | grep -c '^>' || true)
	log "  #$r  moat apply $(secs "${change_moat[-1]}") s  docker stack deploy (+ wait) $(secs "$T_US") s ($n stack service versions changed)"
done
rev=$((rev + 1))
set_rev "$rev"
counted_stack change-stack-count
change_stack_calls=$CALLS
stack_wait "$(now_us)" "$SVC_STACK"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

m_first=$(median "${first_moat[@]}") s_first=$(median "${first_stack[@]}") s_first_ret=$(median "${first_stack_ret[@]}")
m_noop=$(median "${noop_apply[@]}") m_plan=$(median "${noop_plan[@]}") s_noop=$(median "${noop_stack[@]}")
m_change=$(median "${change_moat[@]}") s_change=$(median "${change_stack[@]}")
rows=(
	"first deploy, $SERVICES services + $NETWORKS overlays|moat apply|docker stack deploy + wait|$(secs "$m_first")|$(secs "$s_first")|$(ratio "$s_first" "$m_first")"
	"no-op|moat apply|docker stack deploy + wait|$(secs "$m_noop")|$(secs "$s_noop")|$(ratio "$s_noop" "$m_noop")"
	"no-op|moat plan|docker stack deploy + wait|$(secs "$m_plan")|$(secs "$s_noop")|$(ratio "$s_noop" "$m_plan")"
	"one-service change (env)|moat apply|docker stack deploy + wait|$(secs "$m_change")|$(secs "$s_change")|$(ratio "$s_change" "$m_change")"
)
calls=(
	"first deploy|moat apply|${first_moat_calls:-n/a}|docker stack deploy|$first_stack_calls"
	"no-op|moat plan|${noop_plan_calls:-n/a}|docker stack deploy|$noop_stack_calls"
	"no-op|moat apply|${noop_apply_calls:-n/a}|docker stack deploy|$noop_stack_calls"
	"one-service change|moat apply|${change_moat_calls:-n/a}|docker stack deploy|$change_stack_calls"
)
{
	echo
	echo "moat vs docker stack deploy on Swarm: $SERVICES services, $NETWORKS overlays; medians; ratio = stack / moat"
	printf '%-40s %-12s %-28s %9s %9s %7s\n' measurement moat stack "moat s" "stack s" ratio
	for row in "${rows[@]}"; do
		IFS='|' read -r a b c d e f <<<"$row"
		printf '%-40s %-12s %-28s %9s %9s %7s\n' "$a" "$b" "$c" "$d" "$e" "$f"
	done
	echo
	for row in "${calls[@]}"; do
		IFS='|' read -r a b c d e <<<"$row"
		printf 'API calls  %-20s %-12s %6s   %-22s %s\n' "$a" "$b" "$c" "$d" "$e"
	done
	echo
} >&2

SERVER=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo unknown)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "### Results of run $RUN ($(date -u +%Y-%m-%d))"
echo
echo "Machine: $(nproc) CPUs ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Docker Engine $SERVER, a single-node Swarm (moat's host protection $HOSTPROT), moat $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')${BENCH_MOAT_FLAGS:+, moat flags \`$BENCH_MOAT_FLAGS\`}. Load average $LOAD_START at the start, $LOAD_END at the end; $OTHER_SERVICES other services on the Swarm."
echo
echo "Workload: $TENANTS tenants x $APPS apps = $SERVICES services (one task each), $NETWORKS overlay networks ($TENANTS internal); the change edits one app's env. Repetitions: first deploy $REPS_FIRST, no-op $REPS_NOOP, change $REPS_CHANGE; medians; ratio = stack / moat (higher is better for moat). \`docker stack deploy\` returns before its tasks run; its time runs until every service is 1/1 (and the changed one's rolling update completed), the point at which \`moat apply\` returns; the command alone returned after $(secs "$s_first_ret") s on the first deploy."
echo
echo "| measurement | moat | stack | moat (s) | stack (s) | ratio |"
echo "|---|---|---|---:|---:|---:|"
for row in "${rows[@]}"; do
	IFS='|' read -r a b c d e f <<<"$row"
	echo "| $a | \`$b\` | \`$c\` | $d | $e | $f |"
done
echo
echo "Samples (s): first deploy moat $(list_secs "${first_moat[@]}"), stack $(list_secs "${first_stack[@]}") (command alone $(list_secs "${first_stack_ret[@]}")); no-op moat apply $(list_secs "${noop_apply[@]}"), moat plan $(list_secs "${noop_plan[@]}"), stack $(list_secs "${noop_stack[@]}"); change moat $(list_secs "${change_moat[@]}"), stack $(list_secs "${change_stack[@]}")."
echo
echo "| Engine API calls | moat | stack |"
echo "|---|---:|---:|"
for row in "${calls[@]}"; do
	IFS='|' read -r a b c d e <<<"$row"
	echo "| $a (\`$b\` / \`$d\`) | $c | $e |"
done
if [[ -n "$PROXY_PID" ]]; then
	echo
	echo "\`docker stack deploy\` by endpoint (no-op):"
	echo
	echo '```'
	head -8 "$WORK/noop-stack-count.calls"
	echo '```'
fi
