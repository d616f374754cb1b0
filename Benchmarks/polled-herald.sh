#!/usr/bin/env bash
# Starts herald as `compare` expects (the launcher becomes the server: exec), with a poller
# that reads what the dashboard (GET /) reads once a second: /v1/stats, the ten busiest
# channels and the first 50 clients, for
# as long as the server runs. Used to measure what an operator's polling costs the data plane:
#
#   compare --targets herald=bayeux:ws://127.0.0.1:19401/bayeux,polled=bayeux:ws://127.0.0.1:19402/bayeux \
#     --launch "herald=BIN serve --host 127.0.0.1 --port 19401 --admin-port 19411 --data-dir DIR1" \
#     --launch "polled=Benchmarks/polled-herald.sh BIN 19412 serve --host 127.0.0.1 --port 19402 --admin-port 19412 --data-dir DIR2" \
#     --baseline herald --scenarios fanout --reps 3
set -euo pipefail
BIN=$1; ADMIN_PORT=$2; shift 2
SERVER=$$
(
  sleep 1
  while kill -0 "$SERVER" 2>/dev/null; do
    for path in /v1/stats "/v1/channels?sort=subscribers&limit=10" "/v1/clients?limit=50"; do
      curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT$path" || true
    done
    sleep 1
  done
) &
exec "$BIN" "$@"
