#!/usr/bin/env bash
# client-timing.sh: wall time of one `idtx exchange` against the local mock
# beside the same exchange done with curl plus a JWT decode (base64 + jq),
# and the start-up time of `idtx --help`. Needs hyperfine, curl and jq
# (apt-get install hyperfine curl jq). Targets (issue 3): idtx exchange no
# slower than curl + decode; idtx --help under 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/idtx" .
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sts="http://127.0.0.1:$port"
IDTX_HOME="$tmp/home" "$tmp/idtx" serve --mock --listen "127.0.0.1:$port" 2>/dev/null &
for _ in $(seq 100); do curl -fs -o /dev/null "$sts/healthz" && break; sleep 0.05; done
"$tmp/idtx" mock token --sub alice > "$tmp/alice.jwt"

cat > "$tmp/curl.sh" <<SH
#!/bin/sh
# The same exchange by hand: POST the form, take access_token, decode its claims.
tok=\$(curl -s -u demo-client:demo-secret "$sts/token" \
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  -d subject_token_type=urn:ietf:params:oauth:token-type:jwt \
  --data-urlencode subject_token@$tmp/alice.jwt \
  -d audience=billing-api -d scope=billing:read | jq -r .access_token)
echo "\$tok" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null | jq . >/dev/null
SH
chmod +x "$tmp/curl.sh"

hyperfine -N --warmup 5 --runs 50 --export-markdown "$tmp/exchange.md" \
  -n 'idtx exchange -o claims' "$tmp/idtx exchange --sts $sts/token --subject-token @$tmp/alice.jwt --audience billing-api --scope billing:read -o claims" \
  -n 'idtx exchange, endpoint discovered' "$tmp/idtx exchange --sts $sts --subject-token @$tmp/alice.jwt --audience billing-api --scope billing:read -o claims" \
  -n 'curl + jq decode' "$tmp/curl.sh" 2>&1 | grep -v '^$'
hyperfine -N --warmup 5 --runs 50 -n 'idtx --help' "$tmp/idtx --help" 2>&1 | grep -v '^$'
