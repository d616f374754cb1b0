#!/usr/bin/env python3
"""Retained-value check with aiocometd-ng (third-party Python Bayeux client).

usage: retained_aiocometd.py URL CHANNEL TRANSPORT      (TRANSPORT: websocket | long-polling)

Subscribes to CHANNEL and prints the first message it receives as
  FIRST {"channel":...,"data":...,"ext":...,"transport":...}
then publishes {"live":true,"client":"aiocometd-ng"} to CHANNEL, prints the next message as
  NEXT {...}
closes the client (/meta/disconnect) and exits 0. Any failure prints ERROR <message> and
exits 1; the whole run is capped at 20 s. Logging goes to stderr.
"""
import asyncio
import json
import logging
import os
import sys
import threading

OVERALL_TIMEOUT = 20.0
RECEIVE_TIMEOUT = 10.0
LIVE_DATA = {"live": True, "client": "aiocometd-ng"}


def emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fatal(message):
    emit("ERROR " + " ".join(str(message).split()))
    sys.stderr.flush()
    os._exit(1)


def summary(message, client):
    return json.dumps({"channel": message.get("channel"), "data": message.get("data"),
                       "ext": message.get("ext"), "transport": client.connection_type.value},
                      sort_keys=True)


async def main(url, channel, transport):
    from aiocometd_ng import Client, ConnectionType

    loop = asyncio.get_running_loop()

    def on_loop_exception(_loop, context):
        if isinstance(context.get("exception"), asyncio.CancelledError):
            return              # aiocometd's done-callbacks on close; harmless
        sys.stderr.write("asyncio: %s %r\n" % (context.get("message"), context.get("exception")))
    loop.set_exception_handler(on_loop_exception)

    ct = ConnectionType.WEBSOCKET if transport == "websocket" else ConnectionType.LONG_POLLING
    # connection_timeout=0: the reconnect watchdog crashes on Python >= 3.10.
    client = Client(url, connection_types=[ct], connection_timeout=0, max_pending_count=0)
    await client.open()
    if client.connection_type != ct:
        fatal("negotiated connection type %s, wanted %s" % (client.connection_type, ct))
    await client.subscribe(channel)

    first = await asyncio.wait_for(client.receive(), RECEIVE_TIMEOUT)
    emit("FIRST " + summary(first, client))

    ack = await client.publish(channel, LIVE_DATA)
    if not (isinstance(ack, dict) and ack.get("successful") is True and ack.get("channel") == channel):
        fatal("publish reply is not a successful ack: %r" % (ack,))
    following = await asyncio.wait_for(client.receive(), RECEIVE_TIMEOUT)
    emit("NEXT " + summary(following, client))

    await client.close()


def entry():
    if len(sys.argv) != 4 or sys.argv[3] not in ("websocket", "long-polling"):
        fatal("usage: retained_aiocometd.py URL CHANNEL websocket|long-polling")
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    watchdog = threading.Timer(OVERALL_TIMEOUT, lambda: fatal("overall timeout of %ss" % OVERALL_TIMEOUT))
    watchdog.daemon = True
    watchdog.start()
    try:
        asyncio.run(main(*sys.argv[1:]))
    except BaseException as exc:                        # noqa: BLE001
        fatal("%s: %s" % (type(exc).__name__, exc))
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    entry()
