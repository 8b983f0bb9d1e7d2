#!/usr/bin/env bash
# make demo-swarm: the example platform on Docker Swarm. Derives the Swarm
# variant of examples/platform (engine: swarm, overlay LANs, encrypted; as
# examples/platform/README.md says), applies it, shows that the next plan is
# empty and what it cost in API calls, changes one app's env and shows that
# only its service updates, with a running task at every moment, then tears
# everything down (moat destroy) and leaves the Swarm again if it made it.
#
#   scripts/demo-swarm.sh           the demo (KEEP=1: leave the instance running)
#   scripts/demo-swarm.sh clean     destroy what a KEEP=1 run left (volumes too)
#
# INSTANCE (default demo-swarm) and POOL (default 10.80.0.0/12, a
# 10.x.0.0/12 with x a multiple of 16) as for make demo. When the engine is
# in no Swarm, scripts/swarm.sh makes it a single-node one and the demo
# leaves it at the end; a Swarm that exists already is used as it is (the
# demo touches only its own instance's objects).
set -euo pipefail
cd "$(dirname "$0")/.."
MOAT=./bin/moat
INSTANCE=${INSTANCE:-demo-swarm}
POOL=${POOL:-10.80.0.0/12}
# Outside the repository: moat warns about config that differs from the
# git HEAD of the repository that holds it.
STATE=${TMPDIR:-/tmp}/moat-$INSTANCE
CONFIG=$STATE/config
SECRETS=$STATE/secrets

if [[ ! "$INSTANCE" =~ ^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$ || "$INSTANCE" == *--* ]]; then
	echo "demo-swarm: INSTANCE must be a name (1-20 lowercase letters, digits, single '-')" >&2; exit 2
fi
if [[ ! "$POOL" =~ ^10\.([0-9]+)\.0\.0/12$ ]] || (( BASH_REMATCH[1] % 16 != 0 || BASH_REMATCH[1] > 240 )); then
	echo "demo-swarm: POOL must be a 10.x.0.0/12 with x a multiple of 16 (10.80.0.0/12, 10.96.0.0/12, ...)" >&2; exit 2
fi
SECOND=${BASH_REMATCH[1]}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
services() { docker service ls --filter "label=org.moat.instance=$INSTANCE" --format '{{.Name}}' | sort; }
# versions: "name version" of every service of the instance.
versions() {
	local s
	s=$(services)
	[[ -z "$s" ]] || docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' $s | sort
}

# The Swarm variant of the examples, renamed to INSTANCE and moved into POOL.
derive() {
	mkdir -p "$STATE"
	rm -rf "$CONFIG"
	cp -r examples/platform "$CONFIG"
	sed -i -e 's/^network:$/engine: swarm\nnetwork:/' \
		-e 's/^  driver: bridge .*/  driver: overlay\n  encrypted: true/' "$CONFIG/platform.yaml"
	find "$CONFIG" -name '*.yaml' -print0 | xargs -0 perl -pi -e "
	  s/^name: demo\b/name: $INSTANCE/ if \$ARGV =~ m{/platform\.yaml\$};
	  s/\b10\.(8[0-9]|9[0-5])\./'10.'.(\$1-80+$SECOND).'.'/ge;"
	# Host protection on Swarm needs the node's docker_gwbridge made for
	# moat (docs/SWARM.md; scripts/swarm.sh up makes it so). On a Swarm
	# made otherwise, the demo runs without it and says so.
	if [[ "$(docker network inspect --format '{{index .Options "com.docker.network.bridge.name"}}' docker_gwbridge 2>/dev/null)" != moat-gwbridge ]]; then
		echo "note: this node's docker_gwbridge was not made for moat (interface moat-gwbridge, docs/SWARM.md): the demo sets hostProtection: false"
		sed -i 's/^  hostProtection: true\b/  hostProtection: false/' "$CONFIG/platform.yaml"
	fi
	rm -rf "$SECRETS"
	mkdir -p "$SECRETS"
	cp -r examples/platform-secrets/. "$SECRETS/"
}

if [[ "${1:-}" == clean ]]; then
	[[ -d "$CONFIG" ]] || derive
	$MOAT destroy "$CONFIG" --allow-mass-delete --allow-volume-delete
	exit 0
elif [[ $# -gt 0 ]]; then
	echo "usage: $0 [clean]" >&2; exit 2
fi

BROUGHT=0
teardown() {
	local rc=$?
	trap - EXIT
	set +e
	if [[ "${KEEP:-0}" == 1 && $rc == 0 ]]; then
		echo "KEEP=1: instance $INSTANCE stays; remove it with: scripts/demo-swarm.sh clean"
		((BROUGHT)) && echo "the Swarm scripts/swarm.sh made stays too; leave it with: scripts/swarm.sh down"
		exit 0
	fi
	step "teardown: moat destroy $CONFIG"
	$MOAT destroy "$CONFIG" --allow-mass-delete --allow-volume-delete | tail -n 3
	local left
	left=$( { docker service ls -q --filter "label=org.moat.instance=$INSTANCE"; docker network ls -q --filter "label=org.moat.instance=$INSTANCE";
		docker secret ls -q --filter "label=org.moat.instance=$INSTANCE"; docker volume ls -q --filter "label=org.moat.instance=$INSTANCE"; } | grep -c . || true)
	echo "objects of $INSTANCE left: $left"
	[[ $left == 0 ]] || rc=1
	rm -rf "$STATE"
	if ((BROUGHT)); then
		step "scripts/swarm.sh down (the demo made the Swarm)"
		bash scripts/swarm.sh down || rc=1
	fi
	exit $rc
}

step "the engine as a Swarm"
case "$(docker info --format '{{.Swarm.LocalNodeState}}')" in
inactive)
	bash scripts/swarm.sh up
	BROUGHT=1
	;;
active)
	[[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" == true ]] || { echo "demo-swarm: this engine is a Swarm worker; run the demo on a manager" >&2; exit 2; }
	echo "the engine is a Swarm manager already (node $(docker info --format '{{.Swarm.NodeID}}')): the demo uses it as it is and leaves it up"
	;;
*)
	echo "demo-swarm: the engine's Swarm state is $(docker info --format '{{.Swarm.LocalNodeState}}'); see scripts/swarm.sh status" >&2; exit 2
	;;
esac
trap teardown EXIT

derive
step "the Swarm variant of examples/platform ($CONFIG)"
diff -u examples/platform/platform.yaml "$CONFIG/platform.yaml" | grep -E '^[-+][^-+]' || true

step "moat validate"
$MOAT validate "$CONFIG"

step "moat plan"
$MOAT plan "$CONFIG" --secrets "$SECRETS"

step "moat apply"
start=$(date +%s%N)
$MOAT apply "$CONFIG" --secrets "$SECRETS" --stats 2>"$STATE/apply.stats"
echo "first apply: $(( ($(date +%s%N) - start) / 1000000 )) ms, $(sed -n 's/^engine API calls: //p' "$STATE/apply.stats") API calls"

step "services of instance $INSTANCE"
docker service ls --filter "label=org.moat.instance=$INSTANCE" --format 'table {{.Name}}\t{{.Replicas}}\t{{.Image}}'
echo "LANs (overlay, encrypted, not attachable):"
docker network ls --filter "label=org.moat.instance=$INSTANCE" --format '{{.Name}}' | sort | while read -r n; do
	docker network inspect --format '  {{.Name}}  internal={{.Internal}} attachable={{.Attachable}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{range $k, $v := .Options}}{{if eq $k "encrypted"}}encrypted{{end}}{{end}}' "$n"
done

step "moat plan --detailed-exitcode --stats (expect: no changes, exit 0)"
set +e
$MOAT plan "$CONFIG" --secrets "$SECRETS" --detailed-exitcode --stats
code=$?
set -e
echo "exit code: $code (the API calls above are one list per kind of object, none per service)"
[[ $code == 0 ]] || { echo "demo-swarm: the second plan was not empty" >&2; exit 1; }

SHOP=$INSTANCE--globex--shop--1
step "change one app's env (globex/shop: GREETING=hello): the plan updates only its service"
perl -pi -e 's/^  APP_NAME: shop$/  APP_NAME: shop\n  GREETING: hello/' "$CONFIG/tenants/globex/apps.yaml"
set +e
$MOAT plan "$CONFIG" --secrets "$SECRETS" --detailed-exitcode
code=$?
set -e
[[ $code == 2 ]] || { echo "demo-swarm: the plan shows no change (exit $code)" >&2; exit 1; }

step "moat apply, while a poller samples $SHOP's running tasks"
before=$(versions)
POLL=$STATE/poll.log
: >"$POLL"
(
	while :; do
		n=$(docker service ps "$SHOP" --format '{{.CurrentState}}' 2>/dev/null | grep -c '^Running' || true)
		echo "$(date +%H:%M:%S.%3N) $n" >>"$POLL"
		sleep 0.05
	done
) &
poller=$!
$MOAT apply "$CONFIG" --secrets "$SECRETS"
sleep 0.5
kill "$poller" 2>/dev/null; wait "$poller" 2>/dev/null || true
after=$(versions)
samples=$(grep -c . "$POLL" || true)
zero=$(awk '$2 == 0' "$POLL" | grep -c . || true)
echo "running tasks of $SHOP: $samples samples during the update, min $(awk 'NR==1{m=$2} $2<m{m=$2} END{print m}' "$POLL"), max $(awk '$2>m{m=$2} END{print m+0}' "$POLL"), $zero with none"
echo "services whose version changed:"
diff <(echo "$before") <(echo "$after") | sed -n 's/^> /  /p' || true
changed=$(diff <(echo "$before") <(echo "$after") | grep -c '^>' || true)
[[ $changed == 1 && $zero == 0 ]] || { echo "demo-swarm: expected exactly one updated service and no moment without a running task" >&2; exit 1; }
docker service ps "$SHOP" --format 'table {{.Name}}\t{{.CurrentState}}\t{{.DesiredState}}' | head -n 3

step "moat plan --detailed-exitcode (expect: no changes)"
$MOAT plan "$CONFIG" --secrets "$SECRETS" --detailed-exitcode

step "shared services through gateways, as acme's worker sees them"
WORKER=$(docker ps -q --filter "label=com.docker.swarm.service.name=$INSTANCE--acme--worker--1" --filter status=running | head -n 1)
probe() { docker exec "$WORKER" /app "$@" | head -n 1 || true; }
echo "--- master data, granted read-only: GET passes, POST is refused"
probe http GET http://masterdata-api:8080/records
probe http POST http://masterdata-api:8080/records overwrite
echo "--- log sink, granted write-only: POST passes, GET is refused"
probe http POST http://logging:8080/logs "hello from acme"
probe http GET http://logging:8080/logs
