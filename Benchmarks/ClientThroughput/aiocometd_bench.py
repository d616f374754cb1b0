#!/usr/bin/env python3
"""aiocometd-ng (PyPI) beside herald-client-bench, for compare.sh: one figure per run, over
WebSocket, printed as one line

    RESULT client=aiocometd-ng mode=<mode> rate=<n/s> count=<n> seconds=<s> peak_rss_kib=<KiB>

usage: aiocometd_bench.py --url http://127.0.0.1:PORT/bayeux --mode subscribe|publish
                          [--seconds 5] [--warmup 1] [--channel /bench/feed] [--window 256]

subscribe: counts the messages received on --channel (someone else feeds it) during
           --seconds after --warmup. aiocometd always parses each message into a dict; the
           client's defaults are kept (max_pending_count=100: it stops reading the socket
           while 100 messages wait to be consumed).
publish:   publishes {"s":"AAPL","px":189.25,"n":1} in windows of --window concurrent
           client.publish() calls (asyncio.gather), each of which waits for its
           acknowledgement, and counts acknowledgements the same way.
"""
import argparse
import asyncio
import os
import resource
import sys
import time

from aiocometd_ng import Client, ConnectionType


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def run(args: argparse.Namespace) -> None:
    count = 0
    failure = ""
    async with Client(args.url, ConnectionType.WEBSOCKET) as client:

        async def consume() -> None:
            nonlocal count, failure
            try:
                async for message in client:
                    if "data" in message:
                        count += 1
            except Exception as error:  # noqa: BLE001 (reported in the result line)
                failure = type(error).__name__

        async def publish() -> None:
            nonlocal count, failure
            data = {"s": "AAPL", "px": 189.25, "n": 1}
            try:
                while True:
                    await asyncio.gather(*(client.publish(args.channel, data) for _ in range(args.window)))
                    count += args.window
            except Exception as error:  # noqa: BLE001
                failure = type(error).__name__

        if args.mode == "subscribe":
            await client.subscribe(args.channel)
            work = asyncio.ensure_future(consume())
        else:
            work = asyncio.ensure_future(publish())
        await asyncio.sleep(args.warmup)
        start, first = time.monotonic(), count
        await asyncio.sleep(args.seconds)
        counted, elapsed = count - first, time.monotonic() - start
        line = "RESULT client=aiocometd-ng mode=%s rate=%d count=%d seconds=%.2f peak_rss_kib=%d" % (
            args.mode, counted / elapsed, counted, elapsed, peak_rss_kib())
        if args.mode == "publish":
            line += " window=%d" % args.window
        if failure:
            line += " error=" + failure
        print(line, flush=True)
        work.cancel()
        # Do not wait for a graceful disconnect behind a backlog.
        os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["subscribe", "publish"], required=True)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--channel", default="/bench/feed")
    parser.add_argument("--window", type=int, default=256)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
