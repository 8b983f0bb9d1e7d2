#!/usr/bin/env bash
# Gateway overhead on the real engine (make bench-gateway): the same POSTs
# sent from a probe container straight to a shared service (the example log
# sink) and through a `moat gateway` container in front of it, in the same
# run, alternating, ROUNDS rounds of N sequential requests each (one
# keep-alive connection, 100-byte bodies). Prints requests/s and p50/p99
# latency per round and the median of the rounds.
#
#   scripts/bench-gateway.sh [N] [ROUNDS]     defaults: 2000 5
#
# Everything it creates is named moatbench-<random> and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
ROUNDS=${2:-5}
bash scripts/build-images.sh logsink probe moat >/dev/null

run=moatbench-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
net=$run-net
cleanup() {
  docker rm -f "$run-sink" "$run-gw" "$run-client" >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
hard=(--read-only --cap-drop ALL --security-opt no-new-privileges:true --user 65534:65534 --label "org.moat.bench=$run")
docker network create --internal --label "org.moat.bench=$run" "$net" >/dev/null
docker run -d --name "$run-sink" --network "$net" "${hard[@]}" --memory 64m -e LISTEN=:8080 \
  localhost/moat-examples/logsink:1 >/dev/null
docker run -d --name "$run-gw" --network "$net" "${hard[@]}" --memory 32m localhost/moat/moat:1 \
  gateway --tenant=bench --service=logging --mode=write-only --listen=:8080 --upstream="$run-sink:8080" \
  --metrics-listen=:9090 --rps=1000000000 --burst=1000000000 --max-conns=1024 >/dev/null
docker run -d --name "$run-client" --network "$net" "${hard[@]}" localhost/moat-examples/probe:1 serve >/dev/null
sleep 1

flood() { docker exec -e PROBE_TIMEOUT=10s "$run-client" /app flood POST "$1" "$N" 100 | tail -n 1; }
declare -a d50 d99 drps g50 g99 grps
field() { sed -E "s|.*$1=([0-9]+).*|\1|" <<<"$2"; }
for r in $(seq "$ROUNDS"); do
  d=$(flood "http://$run-sink:8080/logs")
  g=$(flood "http://$run-gw:8080/logs")
  echo "round $r direct:  $d"
  echo "round $r gateway: $g"
  d50+=("$(field p50 "$d")"); d99+=("$(field p99 "$d")"); drps+=("$(field req/s "$d")")
  g50+=("$(field p50 "$g")"); g99+=("$(field p99 "$g")"); grps+=("$(field req/s "$g")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md50=$(median "${d50[@]}"); mg50=$(median "${g50[@]}")
echo
echo "median of $ROUNDS rounds of $N requests:"
printf '  direct:  %6s req/s  p50 %5s us  p99 %6s us\n' "$(median "${drps[@]}")" "$md50" "$(median "${d99[@]}")"
printf '  gateway: %6s req/s  p50 %5s us  p99 %6s us\n' "$(median "${grps[@]}")" "$mg50" "$(median "${g99[@]}")"
echo "  added p50: $((mg50 - md50)) us ($(( (mg50 - md50) * 100 / md50 ))%)"
