#!/usr/bin/env bash
# make demo: validate, plan and apply the example platform to the local
# engine, then show that the next plan is empty. `demo.sh clean` removes
# what the demo created (objects labelled for instance "demo" only).
set -euo pipefail
cd "$(dirname "$0")/.."
MOAT=./bin/moat
CONFIG=examples/platform
STATE=demo-state
INSTANCE=demo

if [[ "${1:-}" == clean ]]; then
  ids=$(docker ps -aq --filter label=org.moat.managed-by=moat --filter label=org.moat.instance=$INSTANCE)
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null
  nets=$(docker network ls -q --filter label=org.moat.managed-by=moat --filter label=org.moat.instance=$INSTANCE)
  [[ -n "$nets" ]] && docker network rm $nets >/dev/null
  $MOAT state rm-host-rules "$CONFIG" || true
  echo "removed the demo's containers and networks (volumes kept: docker volume ls --filter label=org.moat.instance=$INSTANCE)"
  exit 0
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The secret store lives outside the repo: moat writes its digest key there.
mkdir -p "$STATE"
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

echo
echo "Done. Try: docker stop <one of them>; $MOAT plan $CONFIG --secrets $STATE/secrets"
echo "Clean up with: make demo-clean"
