#!/bin/sh
# Starts the Faye server of faye_server.ru under Puma on 127.0.0.1:PORT (single process,
# no cluster workers) and execs it, so the caller's PID is Puma's: SIGTERM stops it.
# usage: faye_server.sh PORT
# Ready when Puma logs "* Listening on http://127.0.0.1:PORT" (stdout).
set -eu
[ $# -eq 1 ] || { echo "usage: faye_server.sh PORT" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
exec "${PUMA:-puma}" --no-config -e production -b "tcp://127.0.0.1:$1" -t 1:4 -w 0 faye_server.ru
