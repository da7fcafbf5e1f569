#!/usr/bin/env bash
# Build the idtx container image (Dockerfile): a static idtx first (CGO
# off; the embedded SQLite is pure Go), then `docker build` FROM scratch
# around it, from a context holding only what the image copies. No base
# image is pulled.
#
#   scripts/image.sh            # tags idtx:dev
#   scripts/image.sh idtx:1.2   # any tag
#
# GOOS/GOARCH are taken from the environment (linux and the host's
# architecture by default).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-idtx:dev}"

ctx="$(mktemp -d "${TMPDIR:-/tmp}/idtx-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

CGO_ENABLED=0 GOOS="${GOOS:-linux}" go build -trimpath -ldflags "-s -w" -o "$ctx/idtx" .
mkdir -p "$ctx/data" "$ctx/etc/ssl/certs"
# FROM scratch has no CA certificates: a configured server fetching an
# IDP's JWKS over https needs them. Take the build machine's bundle.
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
else
	echo "image.sh: warning: no /etc/ssl/certs/ca-certificates.crt here: the image trusts no CA (https JWKS will fail)" >&2
fi
# A minimal passwd names the unprivileged user the image runs as.
printf 'root:x:0:0:root:/:/sbin/nologin\nidtx:x:65532:65532:idtx:/data:/sbin/nologin\n' >"$ctx/etc/passwd"
printf 'root:x:0:\nidtx:x:65532:\n' >"$ctx/etc/group"

docker build -f Dockerfile -t "$tag" "$ctx"
echo "image.sh: built $tag" >&2
