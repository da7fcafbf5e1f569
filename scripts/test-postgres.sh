#!/usr/bin/env bash
# Run tests against a throwaway PostgreSQL cluster: initdb in a temporary
# folder, a server on a free loopback port, IDTX_TEST_POSTGRES pointing at
# it, and the cluster stopped and removed at exit, whatever happens.
#
#   scripts/test-postgres.sh                      # go test ./...
#   scripts/test-postgres.sh ./consent/... ./cmd/ # go test those packages
#   scripts/test-postgres.sh go test ./...        # any command, as given
#
# Needs PostgreSQL's server binaries (initdb, pg_ctl): on PATH, or in
# /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql). As root,
# the cluster runs as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=""
if command -v initdb >/dev/null 2>&1; then
	bin="$(dirname "$(command -v initdb)")"
else
	bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	echo "test-postgres: no initdb on PATH nor in /usr/lib/postgresql/*/bin; install PostgreSQL" >&2
	exit 1
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/idtx-pg.XXXXXX")"
chmod 755 "$dir"
as=()
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
	as=(runuser -u postgres --)
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 54329)"

stop() {
	"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT

"${as[@]}" "$bin/initdb" -D "$dir/data" -U idtx --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
	-o "-p $port -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null ||
	{ cat "$dir/log" >&2; exit 1; }

export IDTX_TEST_POSTGRES="postgres://idtx@127.0.0.1:$port/postgres?sslmode=disable"
echo "test-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $IDTX_TEST_POSTGRES" >&2
case "${1:-}" in
"") set -- go test ./... ;;
./* | -*) set -- go test "$@" ;;
esac
"$@"
