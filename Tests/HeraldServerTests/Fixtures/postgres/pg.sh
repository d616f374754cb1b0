#!/usr/bin/env bash
# A throwaway PostgreSQL for the cluster tests, on 127.0.0.1 only.
#   pg.sh start DIR PORT   initdb in DIR (if empty) and start on PORT; prints "ready" when it accepts
#   pg.sh stop DIR         fast shutdown
#   pg.sh kill DIR         immediate shutdown (as a crash)
# Debian's postgresql package; as root it runs as the postgres user (initdb refuses root).
set -euo pipefail
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 2; }
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cmd="$1"; dir="$2"
case "$cmd" in
  start)
    port="$3"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; chmod o+x "$(dirname "$dir")"; fi
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir" -U herald --auth=trust -E UTF8 --no-instructions >/dev/null
    fi
    # The server outlives this script: it must not inherit the caller's pipes (a test
    # reading this script's output to its end would wait for the server to exit).
    for fd in /proc/$$/fd/*; do n="${fd##*/}"; [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null || true; done
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=100" start >/dev/null
    echo ready
    ;;
  stop) as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null ;;
  kill) as_owner "$bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null ;;
  *) echo "usage: pg.sh start DIR PORT | stop DIR | kill DIR" >&2; exit 2 ;;
esac
