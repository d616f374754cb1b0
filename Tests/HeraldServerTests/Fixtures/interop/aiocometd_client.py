#!/usr/bin/env python3
"""Herald interop client built on aiocometd-ng (third-party Python Bayeux client).

Speaks the line protocol described in README.md beside this file:
stdout carries READY / RESULT <json> / UNSUBSCRIBED / AFTER <json> / DONE or
ERROR <message>; stdin carries GO and GO2.  Everything else goes to stderr.

usage: aiocometd_client.py --url http://127.0.0.1:PORT/bayeux --name a
       --transport websocket|long-polling --prefix /interop/RUNID --peer b
       [--count 20]
"""
import argparse
import asyncio
import json
import logging
import os
import sys
import threading
import time

TEXT = 'h\u00e9 \u2603 "quoted"'          # hé ☃ "quoted"
BIG = 12345678901234567                   # 17 digits, not representable as a double
FLOAT = 0.1
OVERALL_TIMEOUT = 60.0
RECEIVE_TIMEOUT = 20.0
META_TIMEOUT = 15.0
AFTER_WAIT = 1.5

_OUT_LOCK = threading.Lock()
_PHASE = ["start"]


def emit(line):
    with _OUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(msg):
    sys.stderr.write("[aiocometd_client] %s\n" % msg)
    sys.stderr.flush()


def fatal(msg):
    """Print ERROR <msg> and exit 1 immediately (callable from any thread)."""
    text = " ".join(str(msg).split())
    try:
        emit("ERROR %s (phase: %s)" % (text, _PHASE[0]))
        sys.stderr.flush()
    finally:
        os._exit(1)


def phase(name):
    _PHASE[0] = name
    log("phase: " + name)


def same(a, b):
    """Deep equality that also requires equal JSON types (1 != 1.0 != True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def msg_data(sender, seq):
    return {"from": sender, "seq": seq, "text": TEXT, "big": BIG, "f": FLOAT}


class Recorder:
    """Records what arrives: meta replies (via the extension) and deliveries
    (via client.receive(), i.e. what the library hands to the application)."""

    def __init__(self, args):
        self.a = args
        self.p = args.prefix
        self.counting_after = False
        self.received = {}          # sender -> [seq, ...] in arrival order
        self.exact = []             # froms on PREFIX/exact/NAME
        self.exact_peer = []        # froms on PREFIX/exact/PEER (seen via PREFIX/**)
        self.top = []               # froms on PREFIX/top
        self.seen = {}              # key -> count
        self.errors = []
        self.data_ok = True
        self.deliveries = 0
        self.delivery_fields = set()
        self.after = []             # channels of deliveries after unsubscribing
        self.meta = []              # /meta/* replies seen on the wire
        self.changed = asyncio.Event()

    def expected_keys(self):
        n, me, peer = self.a.count, self.a.name, self.a.peer
        keys = set()
        for s in (me, peer):
            keys.update("msgs/%s/%d" % (s, i) for i in range(n))
        keys.add("exact/%s" % peer)        # peer's message on PREFIX/exact/NAME
        keys.add("exactpeer/%s" % me)      # my message on PREFIX/exact/PEER
        keys.add("top/%s" % me)
        keys.add("top/%s" % peer)
        return keys

    def missing(self):
        return sorted(self.expected_keys() - set(self.seen))

    def on_meta(self, message):
        self.meta.append(message)
        self.changed.set()

    def on_delivery(self, message):
        self.changed.set()
        ch = message.get("channel")
        self.delivery_fields.update(message.keys())
        if self.counting_after:
            self.after.append(ch)
            log("delivery AFTER unsubscribe: %s" % ascii(message))
            return
        self.deliveries += 1
        data = message.get("data")
        frm = data.get("from") if isinstance(data, dict) else None
        me, peer, p = self.a.name, self.a.peer, self.p
        expected = None
        key = None
        if isinstance(ch, str) and ch.startswith(p + "/msgs/"):
            sender = ch[len(p + "/msgs/"):]
            seq = data.get("seq") if isinstance(data, dict) else None
            if sender not in (me, peer):
                self.errors.append("delivery on unexpected channel %s" % ch)
                return
            self.received.setdefault(sender, []).append(seq)
            key = "msgs/%s/%s" % (sender, seq)
            if type(seq) is int and 0 <= seq < self.a.count:
                expected = msg_data(sender, seq)
        elif ch == "%s/exact/%s" % (p, me):
            self.exact.append(frm)
            key = "exact/%s" % frm
            expected = {"from": peer, "exact": True}
        elif ch == "%s/exact/%s" % (p, peer):
            self.exact_peer.append(frm)
            key = "exactpeer/%s" % frm
            expected = {"from": me, "exact": True}
        elif ch == "%s/top" % p:
            self.top.append(frm)
            key = "top/%s" % frm
            if frm in (me, peer):
                expected = {"from": frm, "top": True}
        else:
            self.errors.append("delivery on unexpected channel %s: %s" % (ch, ascii(data)))
            return
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] == 2:
            self.errors.append("duplicate delivery %s on %s" % (key, ch))
        if expected is None or not same(expected, data):
            self.data_ok = False
            self.errors.append("data mismatch on %s: got %s expected %s"
                               % (ch, ascii(data), ascii(expected)))

    async def wait_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if pred():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def wait_meta(self, channel, subscription=None):
        """Wait for the wire reply on `channel` (echoing `subscription`) and
        require successful == true."""
        def find():
            for m in self.meta:
                if m.get("channel") == channel and (
                        subscription is None or m.get("subscription") == subscription):
                    return m
            return None
        what = channel + ("" if subscription is None else " " + subscription)
        if not await self.wait_until(lambda: find() is not None, META_TIMEOUT):
            fatal("no %s reply (echoing the subscription) within %ss; meta replies seen: %s"
                  % (what, META_TIMEOUT, ascii(self.meta[-6:])))
        reply = find()
        if reply.get("successful") is not True:
            fatal("%s reply not successful: %s" % (what, ascii(reply)))
        return reply


def make_tap(rec):
    from aiocometd_ng import Extension

    class WireTap(Extension):
        async def outgoing(self, payload, headers):
            return None

        async def incoming(self, payload, headers=None):
            for m in payload:
                ch = m.get("channel", "") if isinstance(m, dict) else ""
                if isinstance(ch, str) and ch.startswith("/meta/"):
                    rec.on_meta(m)

    return WireTap()


def make_bearer():
    """With HERALD_TOKEN set, every request and the WebSocket upgrade carry it as
    `Authorization: Bearer`: aiohttp's cookie jar keeps no cookie from an IP address,
    so the token presented again is what shows Herald the session is this client's."""
    from aiocometd_ng import Extension
    token = os.environ.get("HERALD_TOKEN")
    if not token:
        return []

    class Bearer(Extension):
        async def outgoing(self, payload, headers):
            headers["Authorization"] = "Bearer " + token

        async def incoming(self, payload, headers=None):
            return None

    return [Bearer()]


def check_ack(resp, channel, what):
    if not (isinstance(resp, dict) and resp.get("successful") is True
            and resp.get("channel") == channel):
        fatal("publish of %s to %s: reply is not a successful publish ack: %s"
              % (what, channel, ascii(resp)))


def start_stdin_reader(loop, queue):
    def reader():
        while True:
            line = sys.stdin.readline()
            loop.call_soon_threadsafe(queue.put_nowait, line if line else None)
            if not line:
                return
    threading.Thread(target=reader, name="stdin", daemon=True).start()


async def expect_line(queue, word):
    line = await queue.get()
    if line is None:
        fatal("stdin closed while waiting for %s" % word)
    if line.strip() != word:
        fatal("expected %s on stdin, got %r" % (word, line.strip()))


async def main(args):
    from aiocometd_ng import Client, ConnectionType
    from aiocometd_ng.exceptions import ClientInvalidOperation

    loop = asyncio.get_running_loop()

    def on_loop_exception(_loop, context):
        exc = context.get("exception")
        if isinstance(exc, asyncio.CancelledError):
            return          # aiocometd's done-callbacks on close; harmless
        log("asyncio: %s %r" % (context.get("message"), exc))
    loop.set_exception_handler(on_loop_exception)

    stdin_q = asyncio.Queue()
    start_stdin_reader(loop, stdin_q)

    rec = Recorder(args)
    ct = (ConnectionType.WEBSOCKET if args.transport == "websocket"
          else ConnectionType.LONG_POLLING)
    p, me, peer, n = args.prefix, args.name, args.peer, args.count

    # connection_timeout=0: the reconnect watchdog crashes on Python >= 3.10.
    # max_pending_count=0: unbounded delivery queue (we drain it anyway).
    client = Client(args.url, connection_types=[ct], connection_timeout=0,
                    max_pending_count=0, extensions=[make_tap(rec)] + make_bearer())

    phase("open (handshake + first /meta/connect)")
    await client.open()
    await rec.wait_meta("/meta/handshake")
    if client.connection_type != ct:
        fatal("negotiated connection type %s, wanted %s" % (client.connection_type, ct))

    consumer_done = asyncio.Event()

    async def consume():
        try:
            while True:
                try:
                    message = await client.receive()
                except ClientInvalidOperation:
                    return
                rec.on_delivery(message)
        except Exception as exc:                       # noqa: BLE001
            if not consumer_done.is_set():
                fatal("receive failed: %r" % (exc,))
    consumer = asyncio.ensure_future(consume())

    subs = ["%s/**" % p, "%s/exact/%s" % (p, me), "%s/*" % p]
    phase("subscribe")
    for s in subs:
        await client.subscribe(s)
        await rec.wait_meta("/meta/subscribe", s)
    emit("READY")

    phase("wait GO")
    await expect_line(stdin_q, "GO")

    phase("publish")
    mine = "%s/msgs/%s" % (p, me)
    for i in range(n):
        check_ack(await client.publish(mine, msg_data(me, i)), mine, "seq %d" % i)
    ch = "%s/exact/%s" % (p, peer)
    check_ack(await client.publish(ch, {"from": me, "exact": True}), ch, "exact")
    ch = "%s/top" % p
    check_ack(await client.publish(ch, {"from": me, "top": True}), ch, "top")

    phase("receive")
    if not await rec.wait_until(lambda: not rec.missing(), RECEIVE_TIMEOUT):
        miss = rec.missing()
        rec.errors.append("timed out after %ss; %d expected deliveries missing: %s"
                          % (RECEIVE_TIMEOUT, len(miss), " ".join(miss[:12])))
    errors = list(rec.errors)
    for s in (me, peer):
        got = rec.received.get(s, [])
        if got != list(range(n)):
            errors.append("messages from %s not exactly seq 0..%d in order: %s"
                          % (s, n - 1, ascii(got)))
    if rec.exact != [peer]:
        errors.append("exact channel: expected [%s], got %s" % (peer, ascii(rec.exact)))
    if rec.exact_peer != [me]:
        errors.append("PREFIX/exact/%s via PREFIX/**: expected [%s], got %s"
                      % (peer, me, ascii(rec.exact_peer)))
    if sorted(x for x in rec.top if isinstance(x, str)) != sorted([me, peer]) \
            or len(rec.top) != 2:
        errors.append("top: expected one each from %s and %s, got %s"
                      % (me, peer, ascii(rec.top)))
    distinct_top = []
    for x in rec.top:
        if x not in distinct_top:
            distinct_top.append(x)
    result = {
        "name": me,
        "client": "aiocometd-ng",
        "transport": client.connection_type.value,
        "received": rec.received,
        "exact": rec.exact,
        "exact_peer_channel": rec.exact_peer,
        "top": distinct_top,
        "wire": {"deliveries": rec.deliveries,
                 "top_deliveries": len(rec.top),
                 "delivery_fields": sorted(rec.delivery_fields)},
        "data_ok": rec.data_ok,
        "errors": errors,
    }
    emit("RESULT " + json.dumps(result, sort_keys=True))

    phase("unsubscribe")
    rec.counting_after = True          # nothing may arrive from here on
    for s in subs:
        await client.unsubscribe(s)
        await rec.wait_meta("/meta/unsubscribe", s)
    emit("UNSUBSCRIBED")

    phase("wait GO2")
    await expect_line(stdin_q, "GO2")
    phase("publish after unsubscribe")
    check_ack(await client.publish(mine, {"from": me, "after": True}), mine, "after")
    await asyncio.sleep(AFTER_WAIT)
    emit("AFTER " + json.dumps({"received_after_unsubscribe": len(rec.after),
                                "channels": rec.after}, sort_keys=True))

    phase("disconnect")
    consumer_done.set()
    await client.close()
    await rec.wait_meta("/meta/disconnect")
    consumer.cancel()
    emit("DONE")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--transport", required=True, choices=["websocket", "long-polling"])
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--count", type=int, default=20)
    return ap.parse_args(argv)


def entry():
    try:
        sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    except Exception:                                   # noqa: BLE001
        pass
    try:
        args = parse_args(sys.argv[1:])
    except SystemExit:
        fatal("bad command line: %s" % " ".join(sys.argv[1:]))
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="[aiocometd_client %s] %%(name)s: %%(message)s" % args.name)
    watchdog = threading.Timer(OVERALL_TIMEOUT,
                               lambda: fatal("overall timeout of %ss" % OVERALL_TIMEOUT))
    watchdog.daemon = True
    watchdog.start()
    try:
        asyncio.run(main(args))
    except SystemExit:
        raise
    except BaseException as exc:                        # noqa: BLE001
        fatal("%s: %s" % (type(exc).__name__, exc))
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    entry()
