#!/usr/bin/env bash
# make demo: validate, plan and apply the example platform to the local
# engine, then show that the next plan is empty. `demo.sh clean` removes
# what the demo created (objects labelled for instance "demo" only).
set -euo pipefail
cd "$(dirname "$0")/.."
MOAT=./bin/moat
# make demo INSTANCE=alice POOL=10.96.0.0/12: two users of one engine each
# get their own instance (names) and pool (subnets). POOL is a 10.x.0.0/12.
INSTANCE=${INSTANCE:-demo}
POOL=${POOL:-10.80.0.0/12}
STATE=demo-state/$INSTANCE
CONFIG=$STATE/config

if [[ ! "$INSTANCE" =~ ^[a-z0-9]([-a-z0-9]{0,28}[a-z0-9])?$ ]]; then
  echo "demo: INSTANCE must be a name (1-30 lowercase letters, digits, '-')" >&2; exit 2
fi
if [[ ! "$POOL" =~ ^10\.([0-9]+)\.0\.0/12$ ]] || (( BASH_REMATCH[1] % 16 != 0 || BASH_REMATCH[1] > 240 )); then
  echo "demo: POOL must be a 10.x.0.0/12 with x a multiple of 16 (10.80.0.0/12, 10.96.0.0/12, ...)" >&2; exit 2
fi
SECOND=${BASH_REMATCH[1]}

# The example platform, renamed to INSTANCE and moved into POOL: every
# 10.80-10.95 address shifts by the same amount.
mkdir -p "$STATE"
rm -rf "$CONFIG"
cp -r examples/platform "$CONFIG"
find "$CONFIG" -name '*.yaml' -print0 | xargs -0 perl -pi -e "
  s/^name: demo\b/name: $INSTANCE/ if \$ARGV =~ m{/platform\.yaml\$};
  s/\b10\.(8[0-9]|9[0-5])\./'10.'.(\$1-80+$SECOND).'.'/ge;"

if [[ "${1:-}" == clean ]]; then
  $MOAT destroy --instance "$INSTANCE" --allow-mass-delete
  echo "volumes kept: docker volume ls --filter label=org.moat.instance=$INSTANCE (moat destroy --instance $INSTANCE --allow-mass-delete --allow-volume-delete removes them)"
  exit 0
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The secret store lives outside the repo: moat writes its digest key there.
cp -r examples/platform-secrets/. "$STATE/secrets/" 2>/dev/null || { mkdir -p "$STATE/secrets"; cp -r examples/platform-secrets/. "$STATE/secrets/"; }

step "moat validate $CONFIG"
$MOAT validate "$CONFIG"

step "moat plan $CONFIG"
$MOAT plan "$CONFIG" --secrets "$STATE/secrets"

step "moat apply $CONFIG"
$MOAT apply "$CONFIG" --secrets "$STATE/secrets"

step "moat plan --detailed-exitcode --stats (expect: no changes, exit 0, at most 3 API calls)"
set +e
$MOAT plan "$CONFIG" --secrets "$STATE/secrets" --detailed-exitcode --stats
code=$?
set -e
echo "exit code: $code"
[[ $code == 0 ]] || { echo "demo: the second plan was not empty" >&2; exit 1; }

step "live containers of instance $INSTANCE"
docker ps --filter label=org.moat.instance=$INSTANCE --format 'table {{.Names}}\t{{.Status}}\t{{.Networks}}'

# Shared services are reached only through each tenant's gateway. acme's
# worker (the probe image, on acme's backend LAN) tries both modes of both
# services: the allowed one passes, the other is refused by the gateway.
WORKER=$INSTANCE.acme.worker.1
probe() { docker exec "$WORKER" /app "$@" | head -n 2 || true; }
step "shared services through gateways, as acme's worker sees them"
echo "--- master data is granted read-only: a read passes ..."
probe http GET http://masterdata-api:8080/records
echo "--- ... and a write is denied by acme's gateway (403):"
probe http POST http://masterdata-api:8080/records overwrite
echo "--- the log sink is granted write-only: a write passes (status only) ..."
probe http POST http://logging:8080/logs "hello from acme"
echo "--- ... and a read is denied by acme's gateway (403):"
probe http GET http://logging:8080/logs
echo "--- the sink itself is on no tenant LAN: its own networks are"
docker inspect --format '{{range $n, $_ := .NetworkSettings.Networks}}{{$n}} {{end}}' "$INSTANCE.shared.logging"
echo "--- acme's gateways logged the denials:"
docker logs "$INSTANCE.acme.masterdata-api.gateway" 2>&1 | grep '"denied"' | tail -n 1
docker logs "$INSTANCE.acme.logging.gateway" 2>&1 | grep '"denied"' | tail -n 1

step "summary"
echo "instance $INSTANCE, pool $POOL (config: $CONFIG, generated from examples/platform)"
echo "  containers: $(docker ps -q --filter label=org.moat.instance=$INSTANCE | wc -l) running"
echo "  LANs:       $(docker network ls -q --filter label=org.moat.instance=$INSTANCE | wc -l) networks"
echo "  volumes:    $(docker volume ls -q --filter label=org.moat.instance=$INSTANCE | wc -l)"
echo "  the second plan was empty: moat converged in one apply"
echo "Try: docker stop $INSTANCE.acme.api.1; $MOAT plan $CONFIG --secrets $STATE/secrets"
echo "Clean up with: make demo-clean INSTANCE=$INSTANCE (volumes kept unless asked)"
