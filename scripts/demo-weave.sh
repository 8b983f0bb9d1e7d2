#!/usr/bin/env bash
# make demo-weave: the example platform on a real Weave Net router. Starts
# the router (scripts/weave.sh, built from the vendored source, cached) and
# a peer router in a namespace, writes a Weave variant of examples/platform
# (instance "demoweave": driver weave, the router's API, the peer, a mesh
# password file), validates, plans, applies, shows that the next plan is
# empty and what `moat state export` holds of the router.
# `demo-weave.sh clean` removes the demo's objects and stops the routers.
set -euo pipefail
cd "$(dirname "$0")/.."
MOAT=./bin/moat
STATE=demo-weave-state
CONFIG=$STATE/config
INSTANCE=demoweave

if [[ "${1:-}" == clean ]]; then
  ids=$(docker ps -aq --filter label=org.moat.managed-by=moat --filter label=org.moat.instance=$INSTANCE)
  [[ -n "$ids" ]] && docker rm -f $ids >/dev/null
  nets=$(docker network ls -q --filter label=org.moat.managed-by=moat --filter label=org.moat.instance=$INSTANCE)
  [[ -n "$nets" ]] && docker network rm $nets >/dev/null
  [[ -d "$CONFIG" ]] && { $MOAT state rm-host-rules "$CONFIG" 2>/dev/null || true; }
  bash scripts/weave.sh stop
  rm -rf "$STATE"
  exit 0
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

mkdir -p "$STATE"
rm -rf "$CONFIG" && cp -r examples/platform "$CONFIG"
mkdir -p "$STATE/secrets" && cp -r examples/platform-secrets/. "$STATE/secrets/"
PW="$(pwd)/$STATE/weave.password"
[[ -f "$PW" ]] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PW"; chmod 600 "$PW"; }
# The Weave variant: only the platform's network section differs.
python3 - "$CONFIG/platform.yaml" "$PW" <<'PY'
import re, sys
p, pw = sys.argv[1], sys.argv[2]
s = open(p).read()
s = re.sub(r'(?m)^name: demo\b', 'name: demoweave', s)
s = re.sub(r'(?m)^  driver: bridge.*$', f'''  driver: weave
  weave:
    api: 127.0.0.1:16784          # scripts/weave.sh's router
    plugin: moatweavemesh         # its plugin socket's name
    bridge: moatweave
    range: 10.64.0.0/10           # the router's --ipalloc-range; the pool lies inside
    passwordFile: {pw}
    peers: ["169.254.77.2:6783"]  # the peer router in its namespace''', s)
open(p, 'w').write(s)
PY

step "start the Weave router and a peer (scripts/weave.sh)"
bash scripts/weave.sh start --password "$PW"
bash scripts/weave.sh peer-start link --password "$PW"

step "moat validate $CONFIG"
$MOAT validate "$CONFIG"
step "moat plan $CONFIG"
$MOAT plan "$CONFIG" --secrets "$STATE/secrets"
step "moat apply $CONFIG"
$MOAT apply "$CONFIG" --secrets "$STATE/secrets"

step "wait for the encrypted connection to the peer"
for _ in $(seq 1 60); do
  curl -fsS -m 2 http://127.0.0.1:16784/status/connections 2>/dev/null | grep -q 'established' && break
  sleep 1
done
curl -fsS -m 2 http://127.0.0.1:16784/status/connections

step "moat plan --detailed-exitcode (expect: no changes, exit 0)"
set +e
$MOAT plan "$CONFIG" --secrets "$STATE/secrets" --detailed-exitcode
code=$?
set -e
echo "exit code: $code"
[[ $code == 0 ]] || { echo "demo-weave: the second plan was not empty" >&2; exit 1; }

step "moat state export: the router's peers, IPAM and DNS"
$MOAT state export "$CONFIG" -o "$STATE/live.json"
python3 - "$STATE/live.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))["observed"]["weave"]
print("router", w["name"], "encryption", w["encryption"], "targets", w["targets"])
for c in w["connections"]:
    print("  connection", c["address"], c["state"], "encrypted" if c["encrypted"] else "UNENCRYPTED")
print("peers:", ", ".join(p["name"] + "(" + p.get("nickName", "") + ")" for p in w["peers"]))
ipam = w.get("ipam") or {}
print("ipam range", ipam.get("range"), "default subnet", ipam.get("defaultSubnet"), "active IPs", ipam.get("activeIPs"))
for e in ipam.get("entries", []):
    print("  ring", e["token"], e["size"], e["peer"])
print("dns entries:", len(w["dns"]))
for e in w["dns"]:
    print("  ", e["hostname"], e["address"], e["containerID"][:12])
PY

step "LANs on the plugin"
docker network ls --filter label=org.moat.instance=$INSTANCE --format 'table {{.Name}}\t{{.Driver}}'
echo
echo "Clean up with: make demo-weave-clean"
