#!/usr/bin/env bash
# load.sh: drive `idtx serve` and a baseline STS (the least an STS can do
# per exchange: verify one RS256 subject, sign one ES256 token;
# scripts/baseline) with the same load over loopback, one after the other
# in the same run, and print idtx's throughput and p99 as ratios to the
# baseline's, idtx's peak RSS and the machine's load average.
#
#   scripts/load.sh [seconds] [connections] [scenario...]
#
# Defaults: 10 s a run, 32 connections, every scenario, three rounds
# (IDTX_LOAD_ROUNDS) of the baseline then idtx, the median reported. Scenarios (bodies
# written by scripts/load/main.go, mock IDP tokens minted offline):
#
#   distinct        1,000 distinct JWTs in rotation, for billing-api (consent
#                   checked in SQLite); idtx's validation cache holds them all
#                   after the first round
#   distinct-cold   12,000 distinct JWTs in rotation: more than the validation
#                   cache holds (4,096 by default), so every token is verified again
#   audiences       one JWT exchanged for billing-api, orders-api and
#                   inventory-api in turn (the mesh case)
#   saml            400 distinct SAML 2.0 assertions in rotation, for billing-api
#   saml-cold       12,000 distinct SAML 2.0 assertions: none cached
#
# The baseline is sent the JWT bodies of the scenario (distinct JWTs for
# the SAML ones: it knows no SAML). IDTX_BIN=path runs a prebuilt idtx (to
# measure another commit with the same script); LIMITSRV=dir builds the
# baseline from another main package that takes the same -listen and -pub
# flags and client (bench-client:bench-secret); IDTX_LOAD_STORE=postgres://... keeps the consents in
# PostgreSQL instead of SQLite, e.g. over a throwaway cluster:
#
#   scripts/test-postgres.sh sh -c 'IDTX_LOAD_STORE=$IDTX_TEST_POSTGRES scripts/load.sh 10 32 distinct-cold'
# Needs wrk (apt-get install wrk), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
rounds=${IDTX_LOAD_ROUNDS:-3}
[ "$rounds" -ge 1 ] || { echo "load.sh: IDTX_LOAD_ROUNDS must be at least 1" >&2; exit 2; }
shift $(( $# > 2 ? 2 : $# )) || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(distinct distinct-cold audiences saml saml-cold)
command -v wrk >/dev/null || { echo "load.sh: wrk is needed (apt-get install wrk)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

if [ -n "${IDTX_BIN:-}" ]; then cp "$IDTX_BIN" "$tmp/idtx"; else go build -o "$tmp/idtx" .; fi
if [ -n "${LIMITSRV:-}" ]; then (cd "$LIMITSRV" && go build -o "$tmp/limitsrv" .); else go build -o "$tmp/limitsrv" ./scripts/baseline; fi
go build -o "$tmp/bodies" ./scripts/load
openssl pkey -in fixtures/mock-idp-key.pem -pubout -out "$tmp/rsa.pub" 2>/dev/null

echo "load.sh: minting subject tokens" >&2
"$tmp/bodies" -scenario distinct -n 1000 >"$tmp/distinct.txt"
"$tmp/bodies" -scenario audiences >"$tmp/audiences.txt"
"$tmp/bodies" -scenario saml -n 400 >"$tmp/saml.txt"
for s in "${scenarios[@]}"; do
	case $s in
	distinct-cold) "$tmp/bodies" -scenario distinct -n 12000 >"$tmp/distinct-cold.txt" ;;
	saml-cold) "$tmp/bodies" -scenario saml -n 12000 >"$tmp/saml-cold.txt" ;;
	esac
done

# The mock's JWT and SAML IDPs, its two services and a third, and its
# demo client; consents in SQLite, as a configured server keeps them.
fx=$PWD/fixtures
cat >"$tmp/sts.yaml" <<YAML
idps:
  - {name: mock, type: jwt, issuer: https://mock-idp.idtx.test, jwks_file: $fx/mock-idp.jwks.json, audiences: [idtx-sts]}
  - {name: mock-saml, type: saml, issuer: https://mock-idp.idtx.test/saml, certificate_file: $fx/mock-saml-cert.pem,
     audiences: [idtx-sts], claims: {scope: scope}}
services:
  - {name: billing-api, scopes: {billing:read: {consent: true}}, default_scopes: [billing:read]}
  - {name: orders-api, scopes: {orders:read: {}}, default_scopes: [orders:read]}
  - {name: inventory-api, scopes: {inventory:read: {}}, default_scopes: [inventory:read]}
clients:
  - {id: demo-client, secret: demo-secret, services: ["*"]}
YAML
export IDTX_HOME="$tmp/home"
store="${IDTX_LOAD_STORE:-sqlite:$tmp/idtx.db}"
# A store shared by replicas needs the one iss they all issue (docs/config.md).
case $store in postgres://* | postgresql://*) echo "issuer: https://idtx.load.test" >>"$tmp/sts.yaml" ;; esac
for i in mock mock-saml; do
	if ! "$tmp/idtx" consent grant --store "$store" --idp $i --user alice --service billing-api --scope billing:read >/dev/null 2>"$tmp/grant.err"; then
		# an idtx from before consents named their IDP (IDTX_BIN) has no --idp
		grep -q 'unknown flag: --idp' "$tmp/grant.err" || { cat "$tmp/grant.err" >&2; exit 1; }
		"$tmp/idtx" consent grant --store "$store" --user alice --service billing-api --scope billing:read >/dev/null
	fi
done

cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %AUTH%"
local bodies, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  i = math.random(#bodies) -- threads start apart in the rotation
end
function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
LUA
sed "s/%AUTH%/$(printf 'bench-client:bench-secret' | base64)/" "$tmp/post.lua" >"$tmp/limit.lua"
sed "s/%AUTH%/$(printf 'demo-client:demo-secret' | base64)/" "$tmp/post.lua" >"$tmp/idtx.lua"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return; sleep 0.05; done; echo "load.sh: $1 did not start" >&2; exit 1; }

lport=$(free_port)
"$tmp/limitsrv" -listen "127.0.0.1:$lport" -pub "$tmp/rsa.pub" 2>"$tmp/limitsrv.log" &
iport=$(free_port)
"$tmp/idtx" serve --config "$tmp/sts.yaml" --store "$store" --listen "127.0.0.1:$iport" 2>"$tmp/idtx.log" &
ipid=$!
wait_up "http://127.0.0.1:$lport/token"
wait_up "http://127.0.0.1:$iport/healthz"

run() { wrk -t2 -c"$conns" -d"$3" --latency -s "$2" "$1/token" -- "$4" | grep '^RESULT'; }
printf '%-14s %-9s %9s %8s %8s %6s\n' scenario server "req/s" "p50 ms" "p99 ms" errors
errors=0
for s in "${scenarios[@]}"; do
	ibodies="$tmp/$s.txt"
	lbodies=$ibodies
	case $s in saml) lbodies="$tmp/distinct.txt" ;; saml-cold) lbodies="$tmp/distinct-cold.txt" ;; esac
	[ -f "$lbodies" ] || "$tmp/bodies" -scenario distinct -n 12000 >"$lbodies"
	run "http://127.0.0.1:$lport" "$tmp/limit.lua" 3s "$lbodies" >/dev/null # warm-up
	run "http://127.0.0.1:$iport" "$tmp/idtx.lua" 3s "$ibodies" >/dev/null
	# Rounds alternate the two servers, so that a burst of other work on
	# the machine falls on both; the median round is reported.
	ratios=()
	for _ in $(seq "$rounds"); do
		read -r _ l_rps l_p50 l_p99 l_err _ < <(run "http://127.0.0.1:$lport" "$tmp/limit.lua" "${secs}s" "$lbodies")
		read -r _ i_rps i_p50 i_p99 i_err _ < <(run "http://127.0.0.1:$iport" "$tmp/idtx.lua" "${secs}s" "$ibodies")
		printf '%-14s %-9s %9s %8s %8s %6s\n' "$s" baseline "$l_rps" "$l_p50" "$l_p99" "$l_err"
		printf '%-14s %-9s %9s %8s %8s %6s\n' "$s" idtx "$i_rps" "$i_p50" "$i_p99" "$i_err"
		ratios+=("$l_rps $l_p99 $i_rps $i_p99")
		errors=$((errors + i_err))
	done
	python3 - "$s" "${ratios[@]}" <<'PY'
import statistics, sys
s = sys.argv[1]
rounds = [tuple(map(float, r.split())) for r in sys.argv[2:]]
tput = [i / l for l, _, i, _ in rounds]
p99 = [ip / lp for _, lp, _, ip in rounds]
target = {"distinct": ">= 0.90, p99 <= 1.2x", "distinct-cold": ">= 0.90, p99 <= 1.2x",
          "audiences": ">= 1.10", "saml": ">= 0.33", "saml-cold": ">= 0.33"}.get(s, "")
each = " ".join(f"{t:.2f}" for t in tput)
print(f"{s:<14} idtx/baseline throughput {statistics.median(tput):.2f} (rounds {each}), "
      f"p99 {statistics.median(p99):.2f}x   (target {target})")
PY
done
echo "idtx peak RSS $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$ipid/status); load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$errors" != 0 ]; then echo "load.sh: idtx answered $errors errors" >&2; tail -3 "$tmp/idtx.log" >&2; exit 1; fi
