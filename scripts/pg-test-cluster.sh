#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for herald's tests.
#   scripts/pg-test-cluster.sh start   # prints the HERALD_TEST_POSTGRES URL to export
#   scripts/pg-test-cluster.sh stop
# Needs Debian's `postgresql` package (its server binaries). As root, the cluster runs as
# the `postgres` user, since PostgreSQL refuses to run as root. It trusts loopback
# connections and skips fsync: it holds nothing but test data.
set -euo pipefail
dir=${HERALD_PG_DIR:-/tmp/herald-test-pg}
port=${HERALD_PG_PORT:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
    echo "pg-test-cluster: no PostgreSQL server found (apt-get install postgresql)" >&2
    exit 1
fi
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
case "${1:-}" in
start)
    if [ ! -f "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        as_owner "$bin/initdb" -D "$dir" -A trust -U herald --no-sync -E UTF8 >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o \
            "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
            start >/dev/null
    fi
    echo "postgres://herald@127.0.0.1:$port/postgres"
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: scripts/pg-test-cluster.sh start|stop" >&2
    exit 2
    ;;
esac
