#!/usr/bin/env bash
# The Swift SDK beside aiocometd-ng and Faye's Ruby client, against ONE `herald serve`
# (docs/performance.md, "The Swift SDK"). Run from the repository root after building:
#
#   HERALD_CLIENT_BENCH=1 swift build -c release --scratch-path .build-bench --product herald-client-bench
#   HERALD_CLIENT_BENCH=1 swift build -c release --scratch-path .build-bench --product herald
#   BUILD=.build-bench/release Benchmarks/ClientThroughput/compare.sh [REPS] [SECONDS]
#
# (BUILD defaults to .build/release; this script builds nothing.) Needs python3 with
# aiocometd-ng (PyPI) and Ruby with Faye (Debian ruby-faye).
#
# One herald serve on 127.0.0.1 (ports picked by the OS: --port 0, --admin-port 0), with
# slowConsumer "dropOldest" on /bench/** so that a subscriber slower than the feed is not
# disconnected. Then, REPS times (default 3), each client in turn, the order rotated every
# repetition:
#   subscribers: FEEDS (default 1) feed.py processes publish {"s":"AAPL","px":189.25,"n":1}
#     to /bench/feed as fast as the server takes it (raw WebSocket, 100 publishes per frame,
#     one connection each); one subscriber client
#     counts messages for SECONDS (default 5) after a 1 s warm-up: the SDK raw
#     (HeraldMessage<ByteBuffer>), the SDK decoded (a 3-field Decodable struct),
#     aiocometd-ng, Faye.
#   publishers (no feed, no subscriber): each client publishes the same payload to
#     /bench/pub with 256 publishes in flight and counts acknowledgements per second.
# Prints every run and a markdown table of medians. Every process is bounded by `timeout`
# and killed on exit.
set -euo pipefail

REPS=${1:-3}
SECS=${2:-5}
WARMUP=1
WINDOW=${WINDOW:-256}
FEEDS=${FEEDS:-1}                  # feed connections (processes); more than one slowed every subscriber here
BUILD=${BUILD:-.build/release}
HERE=$(cd "$(dirname "$0")" && pwd)
HERALD="$BUILD/herald"
BENCH="$BUILD/herald-client-bench"
for binary in "$HERALD" "$BENCH"; do
    [ -x "$binary" ] || { echo "compare.sh: $binary is missing; build it first (see the top of this script)" >&2; exit 2; }
done
python3 -c 'import aiocometd_ng' || { echo "compare.sh: aiocometd-ng is not installed" >&2; exit 2; }
ruby -e "require 'faye'" || { echo "compare.sh: ruby-faye is not installed" >&2; exit 2; }

WORK=$(mktemp -d -t herald-client-compare.XXXXXX)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    # Every client and feed ran under `timeout` in the foreground or was waited for; kill
    # whatever of ours may still run (by PID, children of this shell only).
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$WORK/herald.json" <<'JSON'
{"channels": {"/bench/**": {"slowConsumer": "dropOldest"}}}
JSON
mkdir "$WORK/data"
"$HERALD" serve --host 127.0.0.1 --port 0 --admin-port 0 --data-dir "$WORK/data" \
    --config "$WORK/herald.json" --log-level warning > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 100); do
    PORT=$(sed -n 's/.*herald listening data=http:\/\/127\.0\.0\.1:\([0-9]*\)\/bayeux.*/\1/p' "$WORK/server.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "compare.sh: herald did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
WS="ws://127.0.0.1:$PORT/bayeux"
HTTP="http://127.0.0.1:$PORT/bayeux"
echo "herald serve pid $SERVER_PID on 127.0.0.1:$PORT; $REPS reps x ${SECS} s (+${WARMUP} s warm-up); $FEEDS feed connections; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

LIMIT=$((WARMUP + SECS + 30))     # seconds any one client may take, start-up included
RESULTS="$WORK/results.tsv"        # figure <tab> rep <tab> rate <tab> feed rate <tab> line
: > "$RESULTS"

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< " $2" | head -1; }

client_command() {  # figure -> the command that measures it
    case "$1" in
        sdk-raw)       echo "$BENCH --url $WS --mode subscribe-raw --seconds $SECS --warmup $WARMUP" ;;
        sdk-decoded)   echo "$BENCH --url $WS --mode subscribe-decoded --seconds $SECS --warmup $WARMUP" ;;
        aiocometd-sub) echo "python3 $HERE/aiocometd_bench.py --url $HTTP --mode subscribe --seconds $SECS --warmup $WARMUP" ;;
        faye-sub)      echo "ruby $HERE/faye_bench.rb --url $HTTP --mode subscribe --seconds $SECS --warmup $WARMUP" ;;
        sdk-pub)       echo "$BENCH --url $WS --mode publish --channel /bench/pub --window $WINDOW --seconds $SECS --warmup $WARMUP" ;;
        aiocometd-pub) echo "python3 $HERE/aiocometd_bench.py --url $HTTP --mode publish --channel /bench/pub --window $WINDOW --seconds $SECS --warmup $WARMUP" ;;
        faye-pub)      echo "ruby $HERE/faye_bench.rb --url $HTTP --mode publish --channel /bench/pub --window $WINDOW --seconds $SECS --warmup $WARMUP" ;;
    esac
}

measure() {  # figure rep
    local figure=$1 rep=$2 feed_pids=() line feed_rate="-" i pid
    if [[ $figure != *-pub ]]; then
        # The feed runs from before the subscriber starts until after it ends.
        for ((i = 1; i <= FEEDS; i++)); do
            timeout -s KILL $((LIMIT + 10)) python3 "$HERE/feed.py" --url "$WS" --channel /bench/feed \
                --seconds $((LIMIT + 5)) --warmup 1 > "$WORK/feed.$i.out" 2> "$WORK/feed.$i.err" &
            feed_pids+=($!)
        done
        sleep 1
    fi
    line=$(timeout -s KILL "$LIMIT" $(client_command "$figure") 2> "$WORK/$figure.$rep.err" | grep '^RESULT' || true)
    if [ ${#feed_pids[@]} -gt 0 ]; then
        for pid in "${feed_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        for pid in "${feed_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
        # The feed's rate: acknowledged publishes per second, all feed connections together.
        feed_rate=$(cat "$WORK"/feed.*.out | sed -n 's/^FEED rate=\([0-9]*\).*/\1/p' | awk '{ s += $1; n++ } END { if (n == '"$FEEDS"') print s; else print "-" }')
        rm -f "$WORK"/feed.*.out
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "compare.sh: herald serve died" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
    local rate
    rate=$(field rate "$line")
    if [ -z "$rate" ]; then
        rate="-"
        line="FAILED: $(tail -3 "$WORK/$figure.$rep.err" | tr '\n' ' ')"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$figure" "$rep" "$rate" "$feed_rate" "$line" >> "$RESULTS"
    printf '  rep %s %-14s %10s /s   feed %8s /s   %s\n' "$rep" "$figure" "$rate" "$feed_rate" "${line#RESULT }"
    sleep 1
}

rotate() {  # rep items... -> the items rotated by rep
    local rep=$1; shift
    local items=("$@") n=$# i
    for ((i = 0; i < n; i++)); do echo "${items[$(((i + rep - 1) % n))]}"; done
}

SUBSCRIBERS=(sdk-raw sdk-decoded aiocometd-sub faye-sub)
PUBLISHERS=(sdk-pub aiocometd-pub faye-pub)
for rep in $(seq "$REPS"); do
    echo "repetition $rep (load $(cut -d' ' -f1 /proc/loadavg))"
    for figure in $(rotate "$rep" "${SUBSCRIBERS[@]}"); do measure "$figure" "$rep"; done
    for figure in $(rotate "$rep" "${PUBLISHERS[@]}"); do measure "$figure" "$rep"; done
done

median() {  # figure column -> median of that column over the reps (numbers only)
    awk -F'\t' -v f="$1" -v c="$2" '$1 == f && $c != "-" { print $c }' "$RESULTS" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
all_reps() { awk -F'\t' -v f="$1" '$1 == f { printf "%s%s", (n++ ? " / " : ""), $3 }' "$RESULTS"; }
fmt() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<< "$1"; }

echo
echo "| figure | client | median | all reps | feed median (acks/s) |"
echo "|---|---|---:|---|---:|"
row() { echo "| $1 | $2 | $(fmt "$(median "$3" 3)") | $(all_reps "$3") | $(fmt "$(median "$3" 4)") |"; }
row "one subscriber, raw" "Swift SDK (\`HeraldMessage<ByteBuffer>\`)" sdk-raw
row "one subscriber, decoded" "Swift SDK (3-field \`Decodable\`)" sdk-decoded
row "one subscriber" "aiocometd-ng (dict)" aiocometd-sub
row "one subscriber" "Faye Ruby client (Hash)" faye-sub
row "one publisher, $WINDOW in flight" "Swift SDK (task group of \`publish\`)" sdk-pub
row "one publisher, $WINDOW in flight" "aiocometd-ng (\`asyncio.gather\` windows)" aiocometd-pub
row "one publisher, $WINDOW in flight" "Faye Ruby client (publication callbacks)" faye-pub
