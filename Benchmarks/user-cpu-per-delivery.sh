#!/usr/bin/env bash
# User and system CPU per delivery of a Herald binary in the harness's channels scenario:
# steadier than throughput on a shared VM, so small changes can be compared in interleaved
# pairs (old new old new ...). Needs the harness built (see README "Performance").
#
#   Benchmarks/user-cpu-per-delivery.sh BIN [HARNESS_DIR]
#
# Starts BIN pinned to CPU 0 on 127.0.0.1:19409, runs wsbench's channels scenario pinned to
# CPU 1 (10 s + 1 s warm-up), reads utime/stime of the server from /proc over 5 s in the
# middle, and divides by the deliveries in that time.
set -euo pipefail
BIN=${1:?usage: $0 BIN [HARNESS_DIR]}
HARNESS=${2:-/tmp/herald-bench}
DATA=$(mktemp -d)
OUT=$(mktemp)
trap 'rm -rf "$DATA" "$OUT"' EXIT
taskset -c 0 "$BIN" serve --host 127.0.0.1 --port 19409 --admin-port 0 --data-dir "$DATA" --log-level error >/dev/null 2>&1 &
SERVER=$!
sleep 1
taskset -c 1 "$HARNESS/bin/wsbench" --scenario channels --proto bayeux --url ws://127.0.0.1:19409/bayeux \
  --duration 10 --warmup 1 --drain 60 --channels 10000 --pid "$SERVER" >"$OUT" 2>/dev/null &
GENERATOR=$!
sleep 5
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$SERVER/stat")
sleep 5
read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$SERVER/stat")
wait "$GENERATOR"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
TICK=$(getconf CLK_TCK)
python3 - "$OUT" "$((u2 - u1))" "$((s2 - s1))" "$TICK" "$(basename "$BIN")" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
rate = run["deliveries_per_s"]
user, system, tick, name = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
per = lambda ticks: ticks / tick * 1e6 / (rate * 5)
print(f"{name}: {rate:.0f} deliveries/s, user {per(user):.2f} µs, system {per(system):.2f} µs per delivery")
PY
