#!/usr/bin/env bash
# test.sh — builds the container image from the repo's Dockerfile with podman and checks it:
# the image config (non-root user, entrypoint, port), a single static binary in it, and that
# binary serving the embedded demo (/readyz 200, the dashboard at /) as the image's user.
#
# This machine and CI reach no image registry, only the package registries, so the build
# stage's base is an empty image with the host's Go toolchain, module cache and build cache
# mounted at the paths the official golang image uses; the runtime base is empty too. The
# Dockerfile is the one users build with `make image`, unchanged. Running a container needs a
# cgroup setup that this sandbox does not give podman, so the binary is started from the
# mounted image instead, under the image's user.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf 'test-image: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

command -v podman >/dev/null || die "podman is not installed (make test-image installs it)"
image="localhost/tickstream:test-$$"
version="test-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
tmp=$(mktemp -d)
mnt=""
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	[ -z "$mnt" ] || podman image unmount "$image" >/dev/null 2>&1 || true
	podman rmi -f "$image" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

log "podman build ($version)"
t0=$(date +%s)
podman build --isolation chroot --layers=false \
	--build-arg GO_IMAGE=scratch --build-arg RUNTIME_IMAGE=scratch --build-arg VERSION="$version" \
	-v "$(go env GOROOT)":/usr/local/go:ro \
	-v "$(go env GOMODCACHE)":/go/pkg/mod \
	-v "$(go env GOCACHE)":/root/.cache/go-build \
	-v "$tmp":/tmp \
	-t "$image" . >"$tmp/build.log" 2>&1 || { tail -n 40 "$tmp/build.log" >&2; die "podman build failed"; }
log "built in $(($(date +%s) - t0))s"

cfg=$(podman image inspect "$image" --format '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{json .Config.ExposedPorts}}')
want='65532:65532|["/usr/local/bin/tickstream"]|["serve","--listen","0.0.0.0:8080"]|{"8080/tcp":{}}'
[ "$cfg" = "$want" ] || die "image config $cfg, want $want"

mnt=$(podman image mount "$image")
files=$(cd "$mnt" && find . -type f | sort | tr '\n' ' ')
[ "$files" = "./usr/local/bin/tickstream " ] || die "the image holds $files, want only ./usr/local/bin/tickstream"
bin="$mnt/usr/local/bin/tickstream"
# Each output is read whole before it is searched: with pipefail, grep -q leaving early would
# fail the writer with SIGPIPE and the check with it.
info=$(go version -m "$bin")
grep -q 'CGO_ENABLED=0' <<<"$info" || die "the binary was built with cgo: it needs a libc the image does not have"
grep -q -- '-trimpath=true' <<<"$info" || die "the binary was not built with -trimpath"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "serving the demo from the image's binary as uid 65532 on 127.0.0.1:$port"
setpriv --reuid 65532 --regid 65532 --clear-groups "$bin" serve --listen "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do
	if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ]; then break; fi
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; die "the binary exited"; }
	sleep 0.2
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] || { tail -n 20 "$tmp/serve.log" >&2; die "/readyz is not 200 after 30 s"; }
symbols=$(curl -sf "http://127.0.0.1:$port/api/v1/symbols?limit=1") || die "/api/v1/symbols does not answer"
grep -q '"total"' <<<"$symbols" || die "/api/v1/symbols answers $symbols"
[ -f web/dist/app/index.html ] || die "web/dist/app is not built: run make web first (make test-image does)"
index=$(curl -sf "http://127.0.0.1:$port/") || die "/ does not answer"
grep -qi '<script' <<<"$index" || die "the dashboard is not embedded in the image's binary"
printed=$("$bin" --version 2>&1)
grep -q "$version" <<<"$printed" || die "--version prints $printed, want $version (the build argument)"
log "ok: $image is $(podman image inspect "$image" --format '{{.Size}}') bytes, runs as 65532, serves the demo"
