#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL 15 server on 127.0.0.1 (port 55432 unless PGPORT_LOCAL is set; user
# postgres, trust authentication, loopback only) for tests and local runs.
#   scripts/postgres-local.sh start   # prints the server's data folder
#   scripts/postgres-local.sh stop
# Connection string for Pipeline:Ledger:ConnectionString: Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres
# The Debian package (apt-get install postgresql) puts its programs in /usr/lib/postgresql/15/bin and starts nothing
# by itself in containers; the server refuses to run as root, so it runs as the postgres user.
set -euo pipefail
port=${PGPORT_LOCAL:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
state=/tmp/pipeline-postgres-$port
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    if [ -f "$state/data/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$state/data" status >/dev/null 2>&1; then
      echo "PostgreSQL already running on 127.0.0.1:$port (data in $state/data)"; exit 0
    fi
    rm -rf "$state" && mkdir -p "$state"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$state"
    as_postgres "$bin/initdb" -D "$state/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 \
      || { cat "$state/initdb.log" >&2; exit 1; }
    as_postgres "$bin/pg_ctl" -D "$state/data" -l "$state/server.log" -w -t 60 \
      -o "-p $port -k $state -h 127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
      || { cat "$state/server.log" >&2; exit 1; }
    echo "PostgreSQL running on 127.0.0.1:$port (data in $state/data)"
    ;;
  stop)
    [ -d "$state/data" ] && as_postgres "$bin/pg_ctl" -D "$state/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
