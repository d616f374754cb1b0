#!/bin/bash
# usage: commit-rate.sh CONFIG  -> publishes as fast as one subscriber takes them, samples committed offsets
# HERALD: the release binary (default .build/release/herald); WSBENCH: the harness load generator
# (default /tmp/herald-bench/bin/wsbench, see ../shared/bench). Loopback only, ports 19410.
set -e
CFG=$1; DIR=$(mktemp -d /tmp/herald-rate.XXXX)
taskset -c 0 ${HERALD:-.build/release/herald} serve --host 127.0.0.1 --port 19410 --data-dir $DIR --config $CFG --log-level warning > $DIR/out.log 2>&1 &
PID=$!
sleep 1
taskset -c 1 ${WSBENCH:-/tmp/herald-bench/bin/wsbench} --proto bayeux --url ws://127.0.0.1:19410/bayeux --scenario fanout --subs 1 --duration 10 --window 4000 > $DIR/bench.json 2>/dev/null &
B=$!
sleep 3
S1=$(python3 -c "import sqlite3,time;c=sqlite3.connect('$DIR/herald.sqlite');print(time.time(), c.execute('select coalesce(sum(last_offset),0) from channel').fetchone()[0])")
sleep 6
S2=$(python3 -c "import sqlite3,time;c=sqlite3.connect('$DIR/herald.sqlite');print(time.time(), c.execute('select coalesce(sum(last_offset),0) from channel').fetchone()[0])")
wait $B
kill -INT $PID; wait $PID || true
python3 - "$S1" "$S2" "$DIR/bench.json" <<'PY'
import sys, json
t1, n1 = map(float, sys.argv[1].split()); t2, n2 = map(float, sys.argv[2].split())
b = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
print(f"committed/s={(n2-n1)/(t2-t1):.0f} published/s={b['pub_rate']:.0f} lost={b['lost']}")
PY
grep "message store closed" $DIR/out.log || true
rm -rf $DIR
