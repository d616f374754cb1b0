#!/usr/bin/env bash
# The admin API at the issue's scale, on a release build: 100,000 channels (each with a
# retained value and history, made through admin publishes) and 10,000 WebSocket
# subscribers taking a saturating fan-out, while /v1/stats and /v1/channels pages are read.
# Needs the harness built (docs/performance.md) and root for `chrt` (see below).
#
#   Benchmarks/admin-scale.sh [BIN] [HARNESS_DIR]
#
# The server is pinned to CPU 0, the fan-out generator to CPU 1. The prober is a Python
# client with a keep-alive connection, as a Prometheus scraper is, run under SCHED_FIFO
# (`chrt -f 10`) so that its own wait for the loaded CPU is not counted as the server's.
set -euo pipefail
BIN=${1:-.build/release/herald}
HARNESS=${2:-/tmp/herald-bench}
CHANNELS=${CHANNELS:-100000}
SUBS=${SUBS:-10000}
DATA=$(mktemp -d); WORK=$(mktemp -d)
SERVER=""; GEN=""
trap 'kill $SERVER $GEN 2>/dev/null || true; rm -rf "$DATA" "$WORK"' EXIT
ulimit -n "$(ulimit -Hn)"
cat > "$WORK/herald.json" <<'JSON'
{ "channels": { "/scale/**": { "retain": true, "historySize": 10 } } }
JSON
HERALD_ADMIN_TOKEN=bench taskset -c 0 "$BIN" serve --host 127.0.0.1 --port 19420 --admin-port 19421 \
  --data-dir "$DATA" --config "$WORK/herald.json" --log-level error >/dev/null 2>&1 &
SERVER=$!
sleep 1
cat > "$WORK/probe.py" <<'PY'
import http.client, json, sys, time
mode = sys.argv[1]
conn = http.client.HTTPConnection("127.0.0.1", 19421)
H = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
def call(method, path, body=None):
    conn.request(method, path, body=body, headers=H)
    r = conn.getresponse(); data = r.read()
    assert r.status == 200, (r.status, data[:200])
    return data
if mode == "fill":
    n = int(sys.argv[2]); t0 = time.time()
    for start in range(0, n, 1000):
        msgs = [{"channel": "/scale/%d/%d" % (i // 1000, i % 1000), "data": {"px": i}} for i in range(start, min(n, start + 1000))]
        call("POST", "/v1/publish", json.dumps({"messages": msgs}))
    stats = json.loads(call("GET", "/v1/stats"))
    print(f"made {n} channels in {time.time() - t0:.1f} s; /v1/stats says {stats['channels']} channels")
else:
    paths = sys.argv[2:]
    for path in paths:
        times = []
        for _ in range(200):
            t0 = time.perf_counter(); body = call("GET", path); times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.1)
        t = sorted(times)
        print(f"{path}: p50 {t[100]:.2f} ms, p99 {t[197]:.2f} ms, max {t[-1]:.2f} ms ({len(body)} bytes)")
PY
echo "== making $CHANNELS channels through admin publishes (batches of 1,000)"
python3 "$WORK/probe.py" fill "$CHANNELS"
echo "== idle, $CHANNELS channels"
chrt -f 10 python3 "$WORK/probe.py" probe /v1/stats "/v1/channels?limit=100"
echo "== while $SUBS WebSocket subscribers take a fan-out"
taskset -c 1 "$HARNESS/bin/wsbench" --scenario fanout --proto bayeux --url ws://127.0.0.1:19420/bayeux \
  --subs "$SUBS" --duration 130 --warmup 1 --pid "$SERVER" >"$WORK/fanout.json" 2>"$WORK/fanout.err" &
GEN=$!
# Wait until every subscriber is connected and the publisher runs.
for _ in $(seq 120); do
  n=$(curl -s -H "Authorization: Bearer bench" http://127.0.0.1:19421/v1/stats | python3 -c "import json,sys; print(json.load(sys.stdin)['connections']['total'])" 2>/dev/null || echo 0)
  [ "$n" -ge "$SUBS" ] && break
  sleep 1
done
sleep 5
echo "connections: $n"
chrt -f 10 python3 "$WORK/probe.py" probe /v1/stats "/v1/channels?limit=100" "/v1/channels?limit=100&cursor=/scale/50/500" \
  "/v1/channels?pattern=/scale/99/**&limit=100" "/v1/channels/scale/42/42"
grep VmRSS /proc/$SERVER/status
wait $GEN || true
python3 -c "import json,sys; r=json.load(open('$WORK/fanout.json')); print(f\"fan-out meanwhile: {r['deliveries_per_s']/1e6:.2f} M deliveries/s\")" 2>/dev/null \
  || tail -5 "$WORK/fanout.err"
