#!/usr/bin/env bash
# Smoke test of the container image, run by .ci/run after the Go tests:
# build the image (scripts/image.sh), run `serve --mock` in it on the
# host's loopback (--network host, a free port, a read-only root
# filesystem, IDTX_HOME on a volume), exchange a token from the host
# against it, both with a mock token and as a GitHub Actions job would
# (--subject-token-from github-actions against the mock's Actions token
# endpoint), and wait for Docker's health status (the image's
# HEALTHCHECK, `idtx healthcheck`) to turn healthy.
#
# Docker comes from Debian's packages when missing (docker.io). When no
# daemon runs, it starts one of its own (private socket and folders, no
# bridge or iptables: the test uses the host's network) and stops only
# that one. Where no daemon can run, it prints SKIPPED and why, and exits
# 0: never a silent pass. Names and ports are its own, so two runs at once
# do not collide.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "image-smoke: $*" >&2; }
skip() {
	say "SKIPPED: $*"
	exit 0
}
fail() {
	say "FAILED: $*"
	exit 1
}

run_id="$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
tag="idtx:smoke-$run_id"
name="idtx-smoke-$run_id"
work="$(mktemp -d "${TMPDIR:-/tmp}/idtx-smoke.XXXXXX")"
daemon_dir=""
built=""

cleanup() {
	set +e
	if [ -n "$built" ]; then
		docker rm -f -v "$name" >/dev/null 2>&1
		docker rmi -f "$tag" >/dev/null 2>&1
	fi
	if [ -n "$daemon_dir" ] && [ -f "$daemon_dir/pid" ]; then
		pid="$(cat "$daemon_dir/pid")"
		kill "$pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
		# dockerd leaves its network namespace mounted.
		grep -o " $daemon_dir/[^ ]*" /proc/mounts | sort -r | xargs -r -n 1 umount 2>/dev/null
		rm -rf "$daemon_dir"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v docker >/dev/null 2>&1; then
	if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		say "installing docker.io from Debian's packages"
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io) >"$work/apt.log" 2>&1 ||
			skip "docker is not installed and apt-get install docker.io failed: $(tail -n 3 "$work/apt.log" | tr '\n' ' ')"
	else
		skip "docker is not installed, and cannot be here (no apt-get, or not root)"
	fi
fi

if ! docker info >/dev/null 2>&1; then
	command -v dockerd >/dev/null 2>&1 || skip "no Docker daemon answers and there is no dockerd to start (docker info: $(docker info 2>&1 | tail -n 1))"
	[ "$(id -u)" = 0 ] || skip "no Docker daemon answers, and only root can start dockerd"
	# A short path: the daemon's sockets must fit in sun_path.
	daemon_dir="$(mktemp -d /tmp/idtxd.XXXXXX)"
	say "no Docker daemon answers: starting one in $daemon_dir"
	dockerd --data-root "$daemon_dir/data" --exec-root "$daemon_dir/exec" --pidfile "$daemon_dir/pid" \
		-H "unix://$daemon_dir/sock" --iptables=false --ip-masq=false --bridge=none >"$daemon_dir/log" 2>&1 &
	export DOCKER_HOST="unix://$daemon_dir/sock"
	for _ in $(seq 300); do
		docker info >/dev/null 2>&1 && break
		kill -0 $! 2>/dev/null || break
		sleep 0.2
	done
	docker info >/dev/null 2>&1 || skip "the Docker daemon could not start: $(tail -n 3 "$daemon_dir/log" | tr '\n' ' ')"
fi
say "Docker $(docker version -f '{{.Server.Version}}')"

scripts/image.sh "$tag" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "image build"; }
built=1
say "built $tag: $(docker image inspect -f '{{.Size}}' "$tag") bytes, user $(docker image inspect -f '{{.Config.User}}' "$tag")"
[ "$(docker image inspect -f '{{.Config.User}}' "$tag")" = "65532:65532" ] || fail "the image does not run as 65532:65532"

# The same build flags as image.sh's: the host's idtx comes from the cache.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/idtx" .
idtx="$work/idtx"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
	echo $((20000 + RANDOM % 40000)))"
base="http://127.0.0.1:$port"

# --read-only: only the volume on /data (IDTX_HOME) is writable, and it
# must be the image user's own for the store and the keys to be written.
docker run -d --name "$name" --network host --read-only -v /data \
	-e IDTX_LISTEN="127.0.0.1:$port" --health-interval 2s \
	"$tag" serve --mock >/dev/null || fail "docker run"

logs() { docker logs "$name" 2>&1 | tail -n 40 >&2; }
ready=""
for _ in $(seq 300); do
	if docker logs "$name" 2>&1 | grep -q "^idtx STS ready at $base\$"; then
		ready=1
		break
	fi
	[ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || { logs; fail "the container exited"; }
	sleep 0.2
done
[ -n "$ready" ] || { logs; fail "no 'idtx STS ready at $base' line within 60s"; }
say "$(docker logs "$name" 2>&1 | grep '^idtx STS ready at')"

token="$("$idtx" exchange --sts "$base" --subject-token "$("$idtx" mock token --sub alice)" \
	--audience billing-api --scope billing:read)" || { logs; fail "exchange from the host"; }
case "$token" in eyJ*) ;; *) fail "exchange printed $token" ;; esac
iss="$(printf '%s' "$token" | "$idtx" inspect - -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["claims"]["iss"])' 2>/dev/null || echo "?")"
say "exchange from the host: issued a token of $iss"

ACTIONS_ID_TOKEN_REQUEST_URL="$base/mock/github-actions/token?api-version=2.0" ACTIONS_ID_TOKEN_REQUEST_TOKEN=smoke \
	"$idtx" exchange --sts "$base" --subject-token-from github-actions --audience orders-api --scope orders:write \
	>"$work/gha.token" || { logs; fail "exchange of a GitHub Actions token from the mock"; }
say "exchange as a GitHub Actions job: issued a token for orders-api (orders:write)"

status=""
for _ in $(seq 600); do
	status="$(docker inspect -f '{{.State.Health.Status}}' "$name")"
	case "$status" in
	healthy) break ;;
	unhealthy) docker inspect -f '{{json .State.Health}}' "$name" >&2; fail "health status unhealthy" ;;
	esac
	sleep 0.2
done
[ "$status" = healthy ] || { docker inspect -f '{{json .State.Health}}' "$name" >&2; fail "health status $status after 120s"; }
say "health: $status ($(docker inspect -f '{{(index .State.Health.Log 0).Output}}' "$name" | tr -d '\n'))"
say "PASSED"
