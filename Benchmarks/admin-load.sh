#!/usr/bin/env bash
# The admin API under load, on a release build: publish throughput (single messages with
# keep-alive, and batches of 100), and /v1/stats and /v1/channels latency while a fan-out
# runs. Needs wrk (Debian) and the harness built (docs/performance.md).
#
#   Benchmarks/admin-load.sh [BIN] [HARNESS_DIR]
#
# The server is pinned to CPU 0; wrk and the fan-out generator to CPU 1.
set -euo pipefail
BIN=${1:-.build/release/herald}
HARNESS=${2:-/tmp/herald-bench}
DATA=$(mktemp -d); WORK=$(mktemp -d)
SERVER=""; GEN=""
trap 'kill $SERVER $GEN 2>/dev/null || true; rm -rf "$DATA" "$WORK"' EXIT
HERALD_ADMIN_TOKEN=bench taskset -c 0 "$BIN" serve --host 127.0.0.1 --port 19410 --admin-port 19411 --data-dir "$DATA" --log-level error >/dev/null 2>&1 &
SERVER=$!
sleep 1
A=http://127.0.0.1:19411
cat > "$WORK/single.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer bench"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"channel":"/bench/admin","data":{"px":189.5,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}'
LUA
python3 - "$WORK/batch.lua" <<'PY'
import sys
messages = ",".join('{"channel":"/bench/admin/%d","data":{"px":189.5,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}' % i for i in range(100))
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer bench"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = \'{"messages":[%s]}\'\n' % messages)
PY
echo "== single-message publishes, keep-alive, 4 connections, 10 s"
taskset -c 1 wrk -t1 -c4 -d10s -s "$WORK/single.lua" "$A/v1/publish" | grep -E "Requests/sec|Latency|requests in"
echo "== batches of 100, 4 connections, 10 s (messages/s = requests/s x 100)"
taskset -c 1 wrk -t1 -c4 -d10s -s "$WORK/batch.lua" "$A/v1/publish" | grep -E "Requests/sec|Latency|requests in"
echo "== /v1/stats and /v1/channels latency (200 requests each, 10/s) while 1,000 WebSocket subscribers take a fan-out"
taskset -c 1 "$HARNESS/bin/wsbench" --scenario fanout --proto bayeux --url ws://127.0.0.1:19410/bayeux --duration 50 --warmup 1 --pid "$SERVER" >"$WORK/fanout.json" 2>/dev/null &
GEN=$!
sleep 4
for path in /v1/stats "/v1/channels?limit=100"; do
  for _ in $(seq 200); do
    curl -s -o /dev/null -w "%{time_total}\n" -H "Authorization: Bearer bench" "$A$path"
    sleep 0.1
  done > "$WORK/times"
  python3 - "$path" "$WORK/times" <<'PY'
import sys
t = sorted(float(x) * 1000 for x in open(sys.argv[2]))
print(f"{sys.argv[1]}: p50 {t[len(t)//2]:.2f} ms, p99 {t[int(len(t)*0.99)-1]:.2f} ms, max {t[-1]:.2f} ms")
PY
done
wait $GEN
python3 -c "import json,sys; r=json.load(open('$WORK/fanout.json')); print(f\"fan-out meanwhile: {r['deliveries_per_s']/1e6:.2f} M deliveries/s\")"
