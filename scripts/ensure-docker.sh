#!/usr/bin/env bash
# Make sure a Docker engine is answering on this machine (used by CI).
#
#   scripts/ensure-docker.sh
#
# 1. If `docker info` answers within 5 s: nothing to do.
# 2. If the dockerd binary is missing: apt-get update && apt-get install
#    docker.io (needs root; this is the only case where anything is
#    installed).
# 3. Start the engine: `service docker start` if that works, otherwise
#    `dockerd` in the background with its log in $DOCKERD_LOG
#    (default /tmp/dockerd.log). Root is required to start the engine.
# 4. Wait up to $DOCKER_WAIT_SECONDS (default 60) for `docker info`; on
#    failure print the tail of the daemon log and exit 1.
#
# The script is idempotent: running it again while the engine is up is a
# no-op, and it never starts a second dockerd while one is still running.
set -euo pipefail

readonly DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
readonly WAIT_SECONDS="${DOCKER_WAIT_SECONDS:-60}"

log() { echo "ensure-docker: $*"; }
die() {
	echo "ensure-docker: ERROR: $*" >&2
	exit 1
}

# engine_up: true if the engine answers within 5 s.
engine_up() {
	command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1
}

# dockerd_path: where the daemon binary is (sbin may be missing from PATH).
dockerd_path() {
	local p
	for p in "$(command -v dockerd 2>/dev/null || true)" /usr/sbin/dockerd /usr/bin/dockerd /usr/local/bin/dockerd; do
		if [[ -n "$p" && -x "$p" ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# dockerd_running: true if a dockerd process exists (read-only check).
dockerd_running() {
	pgrep -x dockerd >/dev/null 2>&1
}

# fail_with_log: report failure with the daemon log tail and exit.
fail_with_log() {
	echo "ensure-docker: ERROR: $*" >&2
	if [[ -s "$DOCKERD_LOG" ]]; then
		echo "---- last 50 lines of $DOCKERD_LOG ----" >&2
		tail -n 50 "$DOCKERD_LOG" >&2
		echo "---- end of $DOCKERD_LOG ----" >&2
	else
		echo "(no daemon log at $DOCKERD_LOG; if the engine was started by the service manager, see journalctl -u docker or /var/log/docker.log)" >&2
	fi
	exit 1
}

# wait_up SECONDS: poll until the engine answers or SECONDS have passed.
wait_up() {
	local deadline=$((SECONDS + $1))
	while ((SECONDS < deadline)); do
		if engine_up; then
			return 0
		fi
		sleep 1
	done
	engine_up
}

if engine_up; then
	log "Docker engine is up ($(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null || echo 'version unknown'))"
	exit 0
fi
log "docker info did not answer within 5 s; trying to bring the engine up"

if [[ "$(id -u)" -ne 0 ]]; then
	die "the Docker engine is not reachable and this script is not running as root, so it cannot start it (check DOCKER_HOST or start dockerd yourself)"
fi

# Install only when the daemon binary is missing.
if ! dockerd_path >/dev/null; then
	log "dockerd not found; installing docker.io with apt-get"
	command -v apt-get >/dev/null 2>&1 || die "dockerd is missing and apt-get is not available to install docker.io"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update || die "apt-get update failed"
	apt-get install -y --no-install-recommends docker.io || die "apt-get install docker.io failed"
	dockerd_path >/dev/null || die "docker.io was installed but no dockerd binary was found"
fi
command -v docker >/dev/null 2>&1 || die "the docker CLI is not on PATH (dockerd is at $(dockerd_path)); install the docker CLI (docker.io / docker-cli)"

deadline=$((SECONDS + WAIT_SECONDS))

# First choice: the service manager, if it works in this environment.
if ! dockerd_running && command -v service >/dev/null 2>&1; then
	if service docker start >/dev/null 2>&1; then
		log "started the engine with 'service docker start'"
		wait_up 15 || true
	else
		log "'service docker start' did not work; starting dockerd directly"
	fi
fi

# Fallback: run dockerd ourselves, detached from this shell, unless one is
# already running (e.g. still starting up, or started by the service).
if ! engine_up && ! dockerd_running; then
	dockerd_bin="$(dockerd_path)"
	log "starting $dockerd_bin in the background (log: $DOCKERD_LOG)"
	nohup setsid "$dockerd_bin" >"$DOCKERD_LOG" 2>&1 </dev/null &
	sleep 1
	if ! dockerd_running && ! engine_up; then
		fail_with_log "dockerd exited right after starting"
	fi
fi

remaining=$((deadline - SECONDS))
((remaining > 0)) || remaining=1
log "waiting up to ${remaining}s for the engine to answer"
if ! wait_up "$remaining"; then
	fail_with_log "the Docker engine did not come up within ${WAIT_SECONDS}s"
fi
log "Docker engine is up ($(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null || echo 'version unknown'))"
