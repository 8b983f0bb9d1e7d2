#!/usr/bin/env bash
# Build the moat example images from static Go binaries, on the local engine.
#
#   scripts/build-images.sh [APP...]     APP in: echo logsink masterdata probe moat
#                                        (default: all five)
#
# For each app the binary is compiled on the host (CGO_ENABLED=0, -trimpath,
# -ldflags='-s -w', no VCS stamping, so identical sources give an identical
# binary), put into a temporary build context together with
# examples/images/Dockerfile, and built as
#
#   localhost/moat-examples/<app>:1
#
# except "moat", moat's own static binary (./cmd/moat), which is built as
#
#   localhost/moat/moat:1
#
# the one image moat itself runs from: the per-(tenant, shared service)
# gateways (`moat gateway`) and `moat watch` on a host.
#
# with the labels org.moat.example=true, org.moat.example.app=<app> and
# org.moat.bin-sha256=<sha256 of the binary>. If the existing image already
# carries the same org.moat.bin-sha256 the docker build is skipped, so the
# script is idempotent and cheap to re-run. Set FORCE=1 to rebuild anyway.
#
# Nothing is pulled: the images are FROM scratch. If `docker buildx` is not
# installed, DOCKER_BUILDKIT=0 selects the legacy builder.
set -euo pipefail

readonly ALL_APPS=(echo logsink masterdata probe moat)
readonly REPO_PREFIX="localhost/moat-examples"
# moat's own image (see the header).
readonly MOAT_IMAGE="localhost/moat/moat"
readonly TAG="1"
readonly SHA_LABEL="org.moat.bin-sha256"

die() { echo "build-images: ERROR: $*" >&2; exit 1; }
log() { echo "build-images: $*"; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dockerfile="$root/examples/images/Dockerfile"
[[ -f "$dockerfile" ]] || die "missing $dockerfile"

# Which apps to build.
apps=("$@")
if [[ ${#apps[@]} -eq 0 ]]; then
	apps=("${ALL_APPS[@]}")
fi
for app in "${apps[@]}"; do
	[[ " ${ALL_APPS[*]} " == *" $app "* ]] || die "unknown app '$app' (expected one of: ${ALL_APPS[*]})"
done

# Tooling and engine checks.
command -v go >/dev/null 2>&1 || die "the go toolchain is not on PATH"
command -v docker >/dev/null 2>&1 || die "the docker CLI is not on PATH (run scripts/ensure-docker.sh)"
if ! timeout 10 docker info >/dev/null 2>&1; then
	die "the Docker engine is unreachable (docker info failed or timed out${DOCKER_HOST:+, DOCKER_HOST=$DOCKER_HOST}); start it with scripts/ensure-docker.sh"
fi
if ! docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=0 # no buildx plugin: use the legacy builder
fi

# Build for the engine's platform (normally the same as the host).
goos="$(docker version --format '{{.Server.Os}}' 2>/dev/null || true)"
goarch="$(docker version --format '{{.Server.Arch}}' 2>/dev/null || true)"
goos="${goos:-linux}"
goarch="${goarch:-$(go env GOARCH)}"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/moat-images.XXXXXX")"
trap 'rm -rf "$workdir"' EXIT

built=0
skipped=0
for app in "${apps[@]}"; do
	image="$REPO_PREFIX/$app:$TAG"
	pkg="./examples/images/$app"
	if [[ "$app" == moat ]]; then
		image="$MOAT_IMAGE:$TAG"
		pkg="./cmd/moat"
	fi
	ctx="$workdir/$app"
	mkdir -p "$ctx"

	(cd "$root" && CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" \
		go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$ctx/$app" "$pkg") ||
		die "go build of $app failed"
	sha="$(sha256sum "$ctx/$app" | cut -d' ' -f1)"

	old_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
	old_sha="$(docker image inspect --format "{{ index .Config.Labels \"$SHA_LABEL\" }}" "$image" 2>/dev/null || true)"
	if [[ "${FORCE:-0}" != 1 && -n "$old_id" && "$old_sha" == "$sha" ]]; then
		log "$image is up to date"
		skipped=$((skipped + 1))
		continue
	fi

	cp "$dockerfile" "$ctx/Dockerfile"
	labels=(--label "org.moat.example=true" --label "org.moat.example.app=$app")
	if [[ "$app" == moat ]]; then
		labels=(--label "org.moat.image=moat")
	fi
	# Build to a tag of this run only, then move the real tag onto it: two
	# concurrent builds of one image each end with a tagged image, and the
	# loser's is removed with its private tag instead of left dangling.
	# The builder's output (step by step, and the legacy builder's
	# deprecation notice) goes to a log shown only on failure.
	private="$image-build-$$-$RANDOM"
	if ! docker build -q \
		--build-arg "BIN=$app" \
		"${labels[@]}" \
		--label "$SHA_LABEL=$sha" \
		--tag "$private" \
		"$ctx" >"$workdir/$app.log" 2>&1; then
		cat "$workdir/$app.log" >&2
		docker image rm "$private" >/dev/null 2>&1 || true
		die "docker build of $image failed"
	fi
	docker tag "$private" "$image" || die "docker tag $private $image failed"
	docker image rm "$private" >/dev/null 2>&1 || true
	log "built $image"
	built=$((built + 1))

	# The previous image of this tag may now be dangling: remove it if
	# nothing uses it (a running container keeps it, which is fine). Only
	# when it has no tag left: `docker image rm ID` removes every tag of
	# one repository, and a test run's own tag of the old image (test/swarm
	# pins ":<instance>" tags) must keep it.
	new_id="$(docker image inspect --format '{{.Id}}' "$image")"
	if [[ -n "$old_id" && "$old_id" != "$new_id" ]] &&
		[[ "$(docker image inspect --format '{{len .RepoTags}}' "$old_id" 2>/dev/null)" == 0 ]]; then
		docker image rm "$old_id" >/dev/null 2>&1 || true
	fi
done

log "done: $built built, $skipped up to date"
for app in "${apps[@]}"; do
	if [[ "$app" == moat ]]; then
		echo "  $MOAT_IMAGE:$TAG"
	else
		echo "  $REPO_PREFIX/$app:$TAG"
	fi
done
