#!/bin/bash
# usage: stuck-compare.sh SCENARIO [PAIRS]
# Runs wsbench's SCENARIO (fanout or latency: 1,000 subscribers on one channel) against a
# fresh Herald, alternately without and with 100 more subscribers that never read
# (stuck-subscribers.py), on a channel with slowConsumer: conflate, PAIRS times (default 2).
# Prints the fast subscribers' deliveries/s, latency and loss, and the server's RSS before and
# after the run. A 3 s fanout burst of 8,000-byte messages first fills the stuck subscribers'
# socket buffers, so that they are congested during the measured run (the steady state). HERALD: the release binary (default .build/release/herald); WSBENCH: the
# harness load generator (default /tmp/herald-bench/bin/wsbench, see ../shared/bench).
# Server on CPU 0, generator on CPU 1; loopback only, port 19430.
set -e
SCENARIO=${1:-fanout}; PAIRS=${2:-2}
BIN=${HERALD:-.build/release/herald}; GEN=${WSBENCH:-/tmp/herald-bench/bin/wsbench}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d /tmp/herald-stuck.XXXX)
echo '{"channels":{"/bench/**":{"slowConsumer":"conflate"}}}' > $DIR/stuck.json
for pair in $(seq 1 $PAIRS); do
  for stuck in 0 100; do
    rm -rf $DIR/data
    taskset -c 0 $BIN serve --host 127.0.0.1 --port 19430 --data-dir $DIR/data --config $DIR/stuck.json --log-level error > $DIR/server.log 2>&1 &
    PID=$!; sleep 1.5
    SP=
    if [ $stuck -gt 0 ]; then python3 "$HERE/stuck-subscribers.py" 19430 $stuck 60 > $DIR/stuck.out 2>&1 & SP=$!; sleep 4; fi
    # Fill the stuck subscribers' socket buffers first, with a burst of large messages: the
    # kernel's send-buffer autotuning lets each stuck connection take up to tcp_wmem's maximum
    # (4 MiB by default; about 2.7 MB was seen queued per connection) before a write fails,
    # which at the fanout rate of 100-byte messages would take most of a 10 s run. The run
    # without them gets the same burst.
    taskset -c 1 $GEN --proto bayeux --url ws://127.0.0.1:19430/bayeux --scenario fanout --duration 3 --payload 8000 > /dev/null 2>&1; sleep 1
    R0=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
    OUT=$(taskset -c 1 $GEN --proto bayeux --url ws://127.0.0.1:19430/bayeux --scenario $SCENARIO --duration 10 --pid $PID 2>/dev/null | tail -1)
    R1=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
    echo "$OUT" | python3 -c "
import sys, json
d = json.loads(sys.stdin.read())
print('$SCENARIO stuck=$stuck deliveries/s=%.0f p50=%.2fms p99=%.2fms lost=%s rss=%.1f->%.1fMB' % (
    d['deliveries_per_s'], d['lat_p50_us'] / 1000, d['lat_p99_us'] / 1000, d['lost'], $R0 / 1024, $R1 / 1024))"
    [ -n "$SP" ] && kill $SP 2>/dev/null || true
    kill $PID; wait $PID 2>/dev/null || true
    sleep 1
  done
done
rm -rf $DIR
