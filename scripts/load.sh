#!/usr/bin/env bash
# load.sh: drive `idtx serve --mock` and ../shared/bench/limitsrv (the least
# an STS can do per exchange) with the same load over loopback, one after
# the other in the same run, and print idtx's throughput and p99 as ratios.
#
#   scripts/load.sh [seconds] [connections]      # default 10 s, 32 connections
#
# Needs wrk (apt-get install wrk) and openssl. Both servers verify the same
# RS256 subject token (the mock IDP's) and sign ES256; idtx also
# authenticates the client, checks consent in SQLite and writes a trace and
# an audit line per exchange.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
limitsrv_src=${LIMITSRV:-../shared/bench/limitsrv}
command -v wrk >/dev/null || { echo "load.sh: wrk is needed (apt-get install wrk)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

go build -o "$tmp/idtx" .
(cd "$limitsrv_src" && go build -o "$tmp/limitsrv" .)
openssl pkey -in fixtures/mock-idp-key.pem -pubout -out "$tmp/rsa.pub" 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" -X POST 2>/dev/null && return; curl -s -o /dev/null "$1" && return; sleep 0.05; done; echo "load.sh: $1 did not start" >&2; exit 1; }

token=$("$tmp/idtx" mock token --sub alice --ttl 1h)
cat > "$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %AUTH%"
wrk.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&audience=billing-api&scope=billing%3Aread&subject_token=$token"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
LUA
sed "s/%AUTH%/$(printf 'bench-client:bench-secret' | base64)/" "$tmp/post.lua" > "$tmp/limit.lua"
sed "s/%AUTH%/$(printf 'demo-client:demo-secret' | base64)/" "$tmp/post.lua" > "$tmp/idtx.lua"

lport=$(free_port)
"$tmp/limitsrv" -listen "127.0.0.1:$lport" -pub "$tmp/rsa.pub" 2>"$tmp/limitsrv.log" &
iport=$(free_port)
IDTX_HOME="$tmp/home" "$tmp/idtx" serve --mock --listen "127.0.0.1:$iport" 2>"$tmp/idtx.log" &
wait_up "http://127.0.0.1:$lport/token"
wait_up "http://127.0.0.1:$iport/healthz"

run() { wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$2" "$1/token" | grep '^RESULT'; }
echo "warm-up" >&2
run "http://127.0.0.1:$lport" "$tmp/limit.lua" >/dev/null
run "http://127.0.0.1:$iport" "$tmp/idtx.lua" >/dev/null
read -r _ l_rps l_p50 l_p99 l_err l_n < <(run "http://127.0.0.1:$lport" "$tmp/limit.lua")
read -r _ i_rps i_p50 i_p99 i_err i_n < <(run "http://127.0.0.1:$iport" "$tmp/idtx.lua")
printf '%-9s %10s %9s %9s %7s\n' server "req/s" "p50 ms" "p99 ms" errors
printf '%-9s %10s %9s %9s %7s\n' limitsrv "$l_rps" "$l_p50" "$l_p99" "$l_err"
printf '%-9s %10s %9s %9s %7s\n' idtx "$i_rps" "$i_p50" "$i_p99" "$i_err"
python3 - "$l_rps" "$l_p99" "$i_rps" "$i_p99" <<'PY'
import sys
l_rps, l_p99, i_rps, i_p99 = map(float, sys.argv[1:])
print(f"idtx/limitsrv throughput {i_rps / l_rps:.2f} (target >= 0.40), p99 {i_p99 / l_p99:.2f}x (target <= 2.0)")
PY
if [ "$i_err" != 0 ]; then echo "load.sh: idtx answered $i_err errors" >&2; tail -3 "$tmp/idtx.log" >&2; exit 1; fi
