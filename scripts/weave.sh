#!/usr/bin/env bash
# Weave Net test harness: builds the router from the vendored source archive
# (cached), runs it on this host for moat's tests and demo, and removes
# everything it created.
#
#   scripts/weave.sh build            build (or reuse) the cached weaver binary; prints its path
#   scripts/weave.sh start [--password FILE]
#                                     start the host router (plugin mode) and the peer link
#   scripts/weave.sh peer-start NAME [--password FILE]
#                                     start a second router in namespace moatw-NAME, not yet connected
#   scripts/weave.sh peer-stop NAME   stop it and remove its namespace and veth pair
#   scripts/weave.sh stop             remove every Docker network on the plugin, then every object
#                                     the harness created; fails when anything is left behind
#   scripts/weave.sh status           print the router's address, driver and peers, or fail
#   scripts/weave.sh env              print the shell variables tests use
#
# Everything runs as root. The router never calls home (CHECKPOINT_DISABLE=1),
# every API listener is on 127.0.0.1, discovery is off, the fast datapath is
# off (no openvswitch here). The mesh port listens only on the link-local
# address of the harness's own veth pair, whose other end is in a namespace
# the harness owns, so no outside host can reach it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"

# Names are moat's own so that the harness never touches another Weave.
BRIDGE="${MOAT_WEAVE_BRIDGE:-moatweave}"
DRIVER="${MOAT_WEAVE_DRIVER:-moatweavemesh}"        # Docker driver = socket file name
SOCKET="/run/docker/plugins/${DRIVER}.sock"
HTTP_ADDR="${MOAT_WEAVE_HTTP:-127.0.0.1:16784}"
STATUS_ADDR="${MOAT_WEAVE_STATUS:-127.0.0.1:16782}"
DNS_ADDR="${MOAT_WEAVE_DNS:-127.0.0.1:16753}"
# The allocation range covers the example pool (10.80.0.0/12); the default
# subnet (the plugin's own "weave" network) lies outside the pool, so no
# container on that network can hold a tenant's address.
RANGE="${MOAT_WEAVE_RANGE:-10.64.0.0/10}"
DEFAULT_SUBNET="${MOAT_WEAVE_DEFAULT_SUBNET:-10.64.0.0/16}"
LINK_HOST="${MOAT_WEAVE_LINK_HOST:-moatwl0}"          # host end of the peer link
LINK_NET="169.254.77"                                 # link-local: never routed
RUN="${MOAT_WEAVE_RUN:-/run/moat-weave}"
PATCH="$repo/scripts/weave/moat.patch"
DOCKER_TIMEOUT=30

die() { echo "weave.sh: $*" >&2; exit 1; }
log() { echo "weave.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (the router creates a bridge and iptables rules)"

find_archive() {
  local c
  for c in "${MOAT_WEAVE_ARCHIVE:-}" "$repo/../shared/third_party/weave-2.8.1-src.tar.gz" \
           "$repo/../../shared/third_party/weave-2.8.1-src.tar.gz" \
           /work/shared/third_party/weave-2.8.1-src.tar.gz; do
    if [ -n "$c" ] && [ -f "$c" ]; then echo "$c"; return; fi
  done
  die "weave-2.8.1-src.tar.gz not found (set MOAT_WEAVE_ARCHIVE)"
}

cache_root() { echo "${MOAT_WEAVE_CACHE:-${XDG_CACHE_HOME:-/var/cache}/moat-weave}"; }

ensure_libpcap() {
  if [ -f /usr/include/pcap.h ] || [ -f /usr/include/pcap/pcap.h ]; then return; fi
  log "installing libpcap-dev"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpcap-dev >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpcap-dev >/dev/null; } ||
    die "cannot install libpcap-dev"
}

# build prints the path of a weaver binary built from archive+patch, building
# it once per (archive, patch) pair. A lock serialises concurrent callers.
build() {
  local archive key dir bin
  archive="$(find_archive)"
  key="$( (sha256sum "$archive" | cut -c1-64; sha256sum "$PATCH" | cut -c1-64; go env GOVERSION) | sha256sum | cut -c1-16)"
  dir="$(cache_root)/$key"
  bin="$dir/weaver"
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock -w 900 9 || die "timed out waiting for another build of $dir"
  if [ -x "$bin" ]; then echo "$bin"; return; fi
  ensure_libpcap
  local t0=$SECONDS
  rm -rf "$dir/src" && mkdir -p "$dir/src"
  tar xzf "$archive" -C "$dir/src"
  (cd "$dir/src/weave-2.8.1" && patch -p1 --quiet <"$PATCH") || die "patch does not apply"
  log "building weaver (cold build, about 1.5 minutes on 2 cores)"
  (cd "$dir/src/weave-2.8.1" &&
    GOFLAGS=-mod=vendor CGO_ENABLED=1 GOCACHE="$(cache_root)/gocache" \
      go build -trimpath -ldflags "-X main.version=2.8.1-moat" -o "$bin.tmp" ./prog/weaver) ||
    die "weaver build failed"
  mv "$bin.tmp" "$bin"
  # The Go build cache stays (shared by all keys): a changed patch then
  # rebuilds in seconds instead of minutes.
  rm -rf "$dir/src"
  log "built $bin in $((SECONDS - t0))s"
  echo "$bin"
}

# --- snapshots of host state, for the before/after proof -----------------

snap_links() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }
# iptables rules minus counters; Docker's own chains churn while others' tests
# run, so the proof compares the rules that are not Docker's.
snap_rules() { iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | grep -vE 'DOCKER|^:|^\*|^COMMIT' | sort || true; }
snap_chains() { iptables-save 2>/dev/null | grep '^:' | awk '{print $1}' | grep -v DOCKER | sort || true; }
snap_plugins() { ls -1 /run/docker/plugins 2>/dev/null | sort || true; }
snap_netns() { ip netns list 2>/dev/null | awk '{print $1}' | sort || true; }

snapshot() { # dir
  snap_links >"$1/links"; snap_rules >"$1/rules"; snap_chains >"$1/chains"
  snap_plugins >"$1/plugins"; snap_netns >"$1/netns"
}

dk() { timeout "$DOCKER_TIMEOUT" docker "$@"; }

router_pid() { [ -f "$RUN/host/pid" ] && kill -0 "$(cat "$RUN/host/pid")" 2>/dev/null && cat "$RUN/host/pid"; }

wait_http() { # addr pid [netns]
  local i addr="$1" pid="$2"; shift 2
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || return 1 # the router died: its log says why
    if [ -n "${1:-}" ]; then
      ip netns exec "$1" curl -fsS -m 2 "http://$addr/status" >/dev/null 2>&1 && return 0
    else
      curl -fsS -m 2 "http://$addr/status" >/dev/null 2>&1 && return 0
    fi
    sleep 0.2
  done
  return 1
}

start() {
  local password=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --password) password="$2"; shift 2 ;;
      *) die "start: unknown argument $1" ;;
    esac
  done
  if router_pid >/dev/null; then log "router already running (pid $(router_pid))"; return; fi
  [ -e "$RUN/host" ] && die "$RUN/host exists from an earlier run: run '$0 stop' first"
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already: another Weave on this host?"
  iptables -S WEAVE >/dev/null 2>&1 && die "iptables chain WEAVE exists: another Weave router runs on this host"
  [ -e "$SOCKET" ] && die "$SOCKET exists already"
  local bin; bin="$(build)"
  command -v curl >/dev/null || die "curl is required"
  mkdir -p "$RUN/host/before" "$RUN/host/db"
  snapshot "$RUN/host/before"
  dk network ls -q --no-trunc | sort >"$RUN/host/before/networks"

  # The peer link: a veth pair into a namespace the harness owns, link-local
  # addresses only, so the mesh port is reachable from that namespace alone.
  ip netns add moatw-link
  echo moatw-link >"$RUN/host/netns"
  ip link add "$LINK_HOST" type veth peer name moatwl1 netns moatw-link
  ip addr add "$LINK_NET.1/24" dev "$LINK_HOST"
  ip link set "$LINK_HOST" up
  ip -n moatw-link link set lo up
  ip -n moatw-link addr add "$LINK_NET.2/24" dev moatwl1
  ip -n moatw-link link set moatwl1 up

  local args=(--name 7a:00:00:00:00:01 --nickname moat-host
    --host "$LINK_NET.1" --port 6783
    --http-addr "$HTTP_ADDR" --status-addr "$STATUS_ADDR" --dns-listen-address "$DNS_ADDR"
    --no-discovery --no-fastdp --weave-bridge "$BRIDGE"
    --plugin --plugin-socket "" --plugin-mesh-socket "$SOCKET"
    --docker-api unix:///var/run/docker.sock
    --ipalloc-range "$RANGE" --ipalloc-default-subnet "$DEFAULT_SUBNET" --ipalloc-init seed=7a:00:00:00:00:01
    --db-prefix "$RUN/host/db/weave" --log-level info)
  if [ -n "$password" ]; then
    [ -r "$password" ] || die "password file $password not readable"
    args+=(--password "$(cat "$password")")
  fi
  CHECKPOINT_DISABLE=1 setsid "$bin" "${args[@]}" >"$RUN/host/log" 2>&1 </dev/null &
  echo $! >"$RUN/host/pid"
  if ! wait_http "$HTTP_ADDR" "$(cat "$RUN/host/pid")"; then
    tail -20 "$RUN/host/log" >&2
    die "router did not answer on $HTTP_ADDR (log: $RUN/host/log)"
  fi
  local i
  for i in $(seq 1 100); do [ -S "$SOCKET" ] && break; sleep 0.2; done
  [ -S "$SOCKET" ] || die "plugin socket $SOCKET did not appear"
  # The plugin creates its default network "weave" asynchronously.
  for i in $(seq 1 100); do dk network inspect weave >/dev/null 2>&1 && break; sleep 0.2; done
  log "router up: pid $(cat "$RUN/host/pid"), api http://$HTTP_ADDR, driver $DRIVER, bridge $BRIDGE"
}

peer_start() { # name [--password FILE]
  local name="$1"; shift
  local password="" ns="moatw-$name"
  while [ $# -gt 0 ]; do
    case "$1" in
      --password) password="$2"; shift 2 ;;
      *) die "peer-start: unknown argument $1" ;;
    esac
  done
  [ -d "$RUN/host" ] || die "start the host router first"
  [ "$ns" = moatw-link ] || die "only one peer namespace (moatw-link) exists; use name 'link'"
  local bin; bin="$(build)"
  mkdir -p "$RUN/peer-$name/db"
  local args=(--name 7a:00:00:00:00:02 --nickname "moat-peer-$name"
    --host "$LINK_NET.2" --port 6783
    --http-addr 127.0.0.1:6784 --status-addr "" --no-dns
    --no-discovery --no-fastdp --weave-bridge moatweavep
    --docker-api "" --ipalloc-range "$RANGE" --ipalloc-default-subnet "$DEFAULT_SUBNET" --ipalloc-init observer
    --db-prefix "$RUN/peer-$name/db/weave" --log-level info)
  if [ -n "$password" ]; then args+=(--password "$(cat "$password")"); fi
  CHECKPOINT_DISABLE=1 ip netns exec "$ns" setsid "$bin" "${args[@]}" >"$RUN/peer-$name/log" 2>&1 </dev/null &
  echo $! >"$RUN/peer-$name/pid"
  wait_http 127.0.0.1:6784 "$(cat "$RUN/peer-$name/pid")" "$ns" || { tail -20 "$RUN/peer-$name/log" >&2; die "peer router did not start"; }
  log "peer $name up in namespace $ns at $LINK_NET.2:6783"
}

peer_stop() { # name
  local name="$1"
  local d="$RUN/peer-$name"
  [ -d "$d" ] || return 0
  if [ -f "$d/pid" ]; then
    local pid; pid="$(cat "$d/pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # Everything the peer router created lives in its namespace, which stop
  # removes; the namespace's own bridge goes with it.
  ip netns exec moatw-link ip link del moatweavep 2>/dev/null || true
  rm -rf "$d"
}

# remove_rules deletes the iptables rules and chains the router added: those
# present now, absent before start, and naming a Weave chain or the bridge.
remove_rules() {
  local before="$RUN/host/before"
  local table line c
  for table in filter nat mangle raw; do
    # Rules first (newest first), then the chains they jumped to.
    while read -r line; do
      [ -n "$line" ] || continue
      grep -qxF -- "$line" "$before/rules" && continue
      # -A CHAIN spec -> -D CHAIN spec (eval keeps the comment's quotes).
      eval "iptables -t $table -D ${line#-A }" || log "could not delete rule: $line"
    done < <(iptables-save -t "$table" 2>/dev/null | grep '^-A' | sed 's/\[[0-9]*:[0-9]*\]//' | grep -i weave | tac || true)
    local chains
    chains="$(iptables-save -t "$table" 2>/dev/null | grep '^:WEAVE' | awk '{print substr($1,2)}' || true)"
    for c in $chains; do
      grep -qx ":$c" "$before/chains" || iptables -t "$table" -F "$c" 2>/dev/null || true
    done
    for c in $chains; do
      grep -qx ":$c" "$before/chains" || iptables -t "$table" -X "$c" || log "could not delete chain $table/$c"
    done
  done
  if command -v ipset >/dev/null && ipset list -n 2>/dev/null | grep -qx weaver-no-masq-local; then
    ipset destroy weaver-no-masq-local || true
  fi
}

stop() {
  [ -d "$RUN/host" ] || { log "nothing to stop"; return 0; }
  local d
  for d in "$RUN"/peer-*; do [ -d "$d" ] && peer_stop "${d##*/peer-}"; done
  # Networks on the plugin go first, while the router still answers the
  # engine; the engine refuses to remove a network with endpoints, so the
  # containers on them go before (tests remove theirs; this catches leftovers).
  local net c
  if router_pid >/dev/null; then
    for net in $(dk network ls -q --filter driver="$DRIVER" 2>/dev/null); do
      for c in $(dk network inspect -f '{{range $k, $v := .Containers}}{{$k}} {{end}}' "$net" 2>/dev/null); do
        dk network disconnect -f "$net" "$c" >/dev/null 2>&1 || true
      done
      dk network rm "$net" >/dev/null || log "could not remove network $net"
    done
  fi
  if router_pid >/dev/null; then
    local pid; pid="$(router_pid)"
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # A network the router could not remove (router died early): the engine
  # cannot ask the plugin any more, so force its record away.
  for net in $(dk network ls -q --filter driver="$DRIVER" 2>/dev/null); do
    dk network rm "$net" >/dev/null 2>&1 || log "network $net left behind"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  local l
  for l in $(snap_links | grep -E '^vethwe' || true); do
    grep -qx "$l" "$RUN/host/before/links" || ip link del "$l" 2>/dev/null || true
  done
  ip link del "$LINK_HOST" 2>/dev/null || true
  [ -f "$RUN/host/netns" ] && ip netns del "$(cat "$RUN/host/netns")" 2>/dev/null || true
  remove_rules
  rm -f "$SOCKET"
  verify
}

# verify compares the host with the snapshot taken before start.
verify() {
  local before="$RUN/host/before" after
  after="$(mktemp -d)"
  snapshot "$after"
  local bad=0 f
  for f in links rules chains plugins netns; do
    # Only additions count: others' tests remove their own objects meanwhile.
    local added
    added="$(comm -13 "$before/$f" "$after/$f" | grep -E 'weave|WEAVE|vethwe|moatw|'"$BRIDGE" || true)"
    if [ -n "$added" ]; then echo "left behind ($f):" >&2; echo "$added" >&2; bad=1; fi
  done
  local nets
  nets="$(dk network ls --format '{{.Name}} {{.Driver}}' | awk -v d="$DRIVER" '$1=="weave" || $2==d' || true)"
  if [ -n "$nets" ]; then echo "left behind (docker networks):" >&2; echo "$nets" >&2; bad=1; fi
  rm -rf "$after"
  [ "$bad" = 0 ] || die "cleanup incomplete"
  mv "$RUN/host/log" "$RUN/last-host.log" 2>/dev/null || true
  rm -rf "$RUN/host"
  log "stopped; nothing left behind"
}

status() {
  router_pid >/dev/null || die "router not running"
  echo "pid=$(router_pid) api=http://$HTTP_ADDR driver=$DRIVER bridge=$BRIDGE"
  curl -fsS -m 5 "http://$HTTP_ADDR/status/peers" || true
}

envvars() {
  cat <<EOF
MOAT_WEAVE_API=$HTTP_ADDR
MOAT_WEAVE_DRIVER=$DRIVER
MOAT_WEAVE_BRIDGE=$BRIDGE
MOAT_WEAVE_RANGE=$RANGE
MOAT_WEAVE_PEER_ADDR=$LINK_NET.2
MOAT_WEAVE_PEER_NAME=7a:00:00:00:00:02
EOF
}

cmd="${1:-}"; shift || true
case "$cmd" in
  build) build ;;
  start) start "$@" ;;
  stop) stop ;;
  peer-start) peer_start "$@" ;;
  peer-stop) peer_stop "$@" ;;
  status) status ;;
  env) envvars ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
