#!/usr/bin/env python3
"""Abuse soak: well-behaved subscribers on a steady feed while abusive clients hammer Herald.

usage: abuse-soak.py --herald PATH [--duration 60] [--subscribers 50] [--rate 200]
                     [--warmup 5] [--settle 5] [--only KINDS] [--skip KINDS]
                     [--malloc-trim-probe] [--server-env NAME=VALUE] [--keep] [--auth]

KINDS are a, b, bf, c, d, e, f, g, h (the sections below), or d1…d5 for one never-read case.

Starts `herald serve` on 127.0.0.1 (free ports) with tight limits, then for --duration seconds:

- the well-behaved side: --subscribers WebSocket subscribers on /stocks/* from 127.0.0.1 and a
  publisher that sends --rate messages/s through the admin API (POST /v1/publish) to
  /stocks/S00…S09, each message carrying its per-channel sequence number and send time;
- the abusive side (from --warmup until --settle seconds before the end), each kind from its
  own loopback address (127.0.0.11…) so the per-IP limits hit only the abusers, one connection
  at a time per case unless said: (a) malformed WebSocket and HTTP input, (b) connect-and-drop
  loops, (bf) 150 connections at once from one address, (c) oversized messages, frames and
  bodies, (d) clients that never read (d1 pings, d2 pipelined POSTs, d3 a /stocks/*
  subscriber, d4 a subscriber to an 800 KB/s channel, d5 5,000 pings a second), (e) handshake
  floods, batched and not, (f) 10,000 subscriptions on one session, (g) made-up and stolen
  clientIds, (h) client publishes to the server-only /stocks/**.

With --auth, Herald requires tokens (a random HS256 secret) and every channel is open to
anonymous sessions, so the same roles run unchanged while each session is bound to the
connection that opened it: (g) then expects every use of a stolen clientId to be refused.

At the end it checks that the subscribers lost nothing (no gap, duplicate or foreign message),
that their p99 publish-to-receive latency is under 50 ms, that the server's RSS is within 20%
of its post-warm-up figure, that every abusive input was refused or closed as documented
(Protocol/PROTOCOL.md §6, §8, §9; docs/configuration.md), and that the broker still serves. It
prints a markdown report and exits 1 if a criterion failed (2 on a harness error).

Loopback only (127.0.0.0/8, Linux). Python 3.11, standard library only. Results: docs/reliability.md.
"""
import argparse
import asyncio
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

# ---------------------------------------------------------------------------------------------
# Settings

GOOD_SRC = "127.0.0.1"          # the well-behaved subscribers
VICTIM_SRC = "127.0.0.20"       # the session whose clientId the abuser uses (g)
PROBE_SRC = "127.0.0.30"        # the final "still serving" probe
SRC = {                         # one loopback address per abuse kind
    "a": "127.0.0.11", "b": "127.0.0.12", "bf": "127.0.0.19", "c": "127.0.0.13", "d": "127.0.0.14",
    "e": "127.0.0.15", "f": "127.0.0.16", "g": "127.0.0.17", "h": "127.0.0.18",
}
LIMITS = {                      # herald serve flags: tight enough that the abuse trips them
    "max-message-bytes": 16384,
    "max-batch-bytes": 65536,
    "max-connections-per-ip": 100,
    "handshakes-per-second": 10,
    "handshakes-per-second-per-ip": 50,
    "max-subscriptions": 1024,
    "max-outbound-bytes": 1048576,
    "max-pending-bytes": 262144,
    "write-stall-timeout-s": 10,
    "request-timeout-s": 10,
    "max-interval-ms": 4000,
}
CONFIG = {"channels": {"/stocks/**": {"publish": "server", "retain": True}}}
# --auth: tokens required, and every channel open to anonymous sessions, so that the same
# roles run unchanged while sessions are bound to their connection (docs/security.md).
AUTH_CONFIG = {"channels": {"/**": {"publish": "anyone", "subscribe": "anyone"},
                            "/stocks/**": {"publish": "server", "subscribe": "anyone", "retain": True}}}
CHANNELS = [f"/stocks/S{i:02d}" for i in range(10)]
IP_BIND_ADDRESS_NO_PORT = 24    # Linux: pick the source port at connect, per destination


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def mono():
    return time.monotonic()


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Raw TCP, WebSocket and HTTP on asyncio streams (full control of frames, source address, RST)

async def tcp_open(src, port, rcvbuf=None, timeout=5.0):
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((src, 0))
        s.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), timeout)
        r, w = await asyncio.open_connection(sock=s, limit=1 << 20)
    except BaseException:
        s.close()
        raise
    return r, w


def rst(w):
    """Closes with a TCP RST (SO_LINGER 0)."""
    try:
        w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    w.transport.abort()


def xor_mask(data, key):
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def ws_frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + xor_mask(payload, key)


def upgrade_request(port, path="/bayeux", version="13", key=True, origin=None):
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Version: {version}"]
    if key:
        lines.append("Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode())
    if origin:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class UpgradeRefused(Exception):
    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status = status


class Closed(Exception):
    """The server sent a close frame (code, reason) or the connection ended (code None)."""

    def __init__(self, code, reason):
        super().__init__(f"close {code} {reason}")
        self.code, self.reason = code, reason


class WS:
    def __init__(self, r, w):
        self.r, self.w = r, w

    @classmethod
    async def open(cls, src, port, rcvbuf=None, timeout=5.0):
        r, w = await tcp_open(src, port, rcvbuf, timeout)
        try:
            w.write(upgrade_request(port))
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
            status = int(head.split(b" ", 2)[1])
            if status != 101:
                raise UpgradeRefused(status)
        except BaseException:
            rst(w)
            raise
        return cls(r, w)

    def send(self, messages):
        self.w.write(ws_frame(1, dumps(messages).encode()))

    def raw(self, data):
        self.w.write(data)

    async def frame(self):
        b0, b1 = await self.r.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.r.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.r.readexactly(8), "big")
        if b1 & 0x80:
            key = await self.r.readexactly(4)
            payload = xor_mask(await self.r.readexactly(n), key)
        else:
            payload = await self.r.readexactly(n) if n else b""
        return b0 & 0x0F, payload

    async def messages(self):
        """The next text frame's JSON; answers pings; raises Closed on a close frame or EOF."""
        while True:
            try:
                op, payload = await self.frame()
            except (asyncio.IncompleteReadError, ConnectionError) as e:
                raise Closed(None, type(e).__name__)
            if op == 1:
                return json.loads(payload)
            if op == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode("utf-8", "replace"))
            if op == 9:
                self.w.write(ws_frame(10, payload))

    async def reply(self, ident, timeout=5.0):
        """Reads until the reply whose id is ident; deliveries on the way are dropped."""
        async def find():
            while True:
                for m in await self.messages():
                    if m.get("id") == ident:
                        return m
        return await asyncio.wait_for(find(), timeout)

    async def replies(self, idents, timeout=10.0):
        want, got = set(idents), {}
        async def find():
            while len(got) < len(want):
                for m in await self.messages():
                    if m.get("id") in want:
                        got[m["id"]] = m
        await asyncio.wait_for(find(), timeout)
        return got

    async def close_frame(self, timeout=5.0):
        """Reads until the server's close frame: (code, reason), ('eof', exc) or ('timeout', '')."""
        try:
            while True:
                await asyncio.wait_for(self.messages(), timeout)
        except Closed as c:
            return (c.code, c.reason) if c.code is not None else ("eof", c.reason)
        except asyncio.TimeoutError:
            return ("timeout", "")
        except (ValueError, UnicodeDecodeError):
            return ("non-JSON text frame", "")

    def close(self):
        rst(self.w)


CLIENT_IDS = set()     # every clientId a role obtained, to look for in the server's log


async def handshake(ws, ident="h", timeout=5.0):
    ws.send([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"], "id": ident}])
    reply = await ws.reply(ident, timeout)
    if reply.get("clientId"):
        CLIENT_IDS.add(reply["clientId"])
    return reply


async def read_http_response(r, timeout=5.0):
    """(status, headers, body); body read by Content-Length, chunked, or to EOF."""
    async def read():
        head = await r.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await r.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await r.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await r.readuntil(b"\r\n")
                    break
                body += await r.readexactly(size)
                await r.readexactly(2)
        else:
            body = await r.read()
        return status, headers, body
    return await asyncio.wait_for(read(), timeout)


def http_post_bytes(port, body, path="/bayeux", ctype="application/json", extra=""):
    if isinstance(body, str):
        body = body.encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


async def raw_exchange(src, port, data, timeout=5.0):
    """Sends data on a plain socket (a send error is kept, not raised), then reads to EOF or timeout.

    Not through asyncio streams: a StreamReader raises the connection's error even when the
    server's answer is already in the socket, so a refusal sent while we were still writing
    would be lost. Returns (bytes received, send error or None, closed by the server)."""
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((src, 0))
    s.setblocking(False)
    got, send_error, closed = b"", None, False
    try:
        await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), timeout)
        try:
            await asyncio.wait_for(loop.sock_sendall(s, data), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            send_error = type(e).__name__
        deadline = mono() + timeout
        while mono() < deadline:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(s, 65536), deadline - mono())
            except asyncio.TimeoutError:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    return got, send_error, closed


async def wait_eof(r, timeout):
    """True if the server closed (EOF or RST) within timeout, without sending anything we expect."""
    try:
        data = await asyncio.wait_for(r.read(65536), timeout)
        return data == b""
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        return True


# ---------------------------------------------------------------------------------------------
# Roles: subscribers, publisher, abuse (run as child processes of the orchestrator)

def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


async def subscribers_role(cfg):
    port, n, end = cfg["port"], cfg["subscribers"], cfg["end"]
    latencies = []
    per_second = {}                       # second since start → [count, max latency ms]
    t0 = cfg["start"]
    subs = []

    class Sub:
        def __init__(self, i):
            self.i, self.cid, self.ready = i, None, False
            self.last, self.count = {}, {}
            self.gaps = self.dups = self.foreign = self.received = 0
            self.closes, self.errors = [], []
            self.connects = 0
            self.lat = []

    async def run(sub):
        try:
            ws = await WS.open(GOOD_SRC, port)
            sub.cid = (await handshake(ws))["clientId"]
            ws.send([{"channel": "/meta/connect", "clientId": sub.cid, "connectionType": "websocket", "id": "c"},
                     {"channel": "/meta/subscribe", "clientId": sub.cid, "subscription": "/stocks/*", "id": "s"}])
            got = await ws.replies(["c", "s"])
            if not got["s"].get("successful"):
                sub.errors.append(f"subscribe: {got['s'].get('error')}")
                return
            ws.send([{"channel": "/meta/connect", "clientId": sub.cid, "connectionType": "websocket"}])
            sub.ready = True
            while True:
                op, payload = await ws.frame()
                t = now_ns()
                if op == 9:
                    ws.raw(ws_frame(10, payload))
                    continue
                if op == 8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    sub.closes.append(f"close {code} {payload[2:].decode('utf-8', 'replace')}")
                    return
                if op != 1:
                    continue
                for m in json.loads(payload):
                    ch = m.get("channel", "")
                    if ch == "/meta/connect":
                        sub.connects += 1
                        if m.get("successful"):
                            ws.send([{"channel": "/meta/connect", "clientId": sub.cid, "connectionType": "websocket"}])
                        else:
                            sub.errors.append(f"connect: {m.get('error')}")
                        continue
                    if "data" not in m or m.get("successful") is not None:
                        continue
                    sub.received += 1
                    data = m["data"]
                    if not (ch.startswith("/stocks/") and isinstance(data, dict) and "seq" in data and "t" in data):
                        sub.foreign += 1
                        continue
                    seq = data["seq"]
                    last = sub.last.get(ch, 0)
                    if seq == last + 1:
                        sub.last[ch] = seq
                    elif seq > last + 1:
                        sub.gaps += seq - last - 1
                        sub.last[ch] = seq
                    else:
                        sub.dups += 1
                    sub.count[ch] = sub.count.get(ch, 0) + 1
                    ms = (t - data["t"]) / 1e6
                    latencies.append(ms)
                    sub.lat.append(ms)
                    sec = int(t / 1e9 - t0)
                    slot = per_second.setdefault(sec, [0, 0.0])
                    slot[0] += 1
                    slot[1] = max(slot[1], ms)
        except asyncio.CancelledError:
            raise
        except Closed as c:
            sub.closes.append(f"close {c.code} {c.reason}")
        except Exception as e:  # noqa: BLE001 - recorded, judged by the orchestrator
            sub.errors.append(f"{type(e).__name__}: {e}")

    subs = [Sub(i) for i in range(n)]
    tasks = []
    for s in subs:                        # at most 40 handshakes a second: under the per-IP rate
        tasks.append(asyncio.create_task(run(s)))
        await asyncio.sleep(0.025)
    deadline = mono() + 15
    while sum(s.ready for s in subs) < n and mono() < deadline and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    print("READY %d" % sum(s.ready for s in subs), flush=True)
    await asyncio.sleep(max(0.0, end - mono()))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    return {
        "subscribers": n, "ready": sum(s.ready for s in subs),
        "received": sum(s.received for s in subs),
        "gaps": sum(s.gaps for s in subs), "dups": sum(s.dups for s in subs),
        "foreign": sum(s.foreign for s in subs),
        "last": [s.last for s in subs], "count": [s.count for s in subs],
        "closes": [c for s in subs for c in s.closes], "errors": [e for s in subs for e in s.errors],
        "latency_ms": {"n": len(latencies), "p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                       "p99": percentile(latencies, 99), "p999": percentile(latencies, 99.9),
                       "max": latencies[-1] if latencies else None},
        "per_second": {str(k): v for k, v in sorted(per_second.items())},
        "sub_p99": [percentile(sorted(s.lat), 99) for s in subs],
    }


def publisher_role(cfg):
    rate, start, end = cfg["rate"], cfg["start"], cfg["pub_end"]
    conn = http.client.HTTPConnection("127.0.0.1", cfg["admin_port"], timeout=5)
    seq = {c: 0 for c in CHANNELS}
    failures, uncertain, behind, rtts = [], 0, 0.0, []
    i = 0
    while True:
        target = start + i / rate
        if target >= end:
            break
        delay = target - mono()
        if delay > 0:
            time.sleep(delay)
        behind = max(behind, mono() - target)
        ch = CHANNELS[i % len(CHANNELS)]
        i += 1
        seq[ch] += 1
        t = now_ns()
        body = dumps({"channel": ch, "data": {"seq": seq[ch], "t": t}})
        try:
            conn.request("POST", "/v1/publish", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = resp.read()
            rtts.append((now_ns() - t) / 1e6)
            result = json.loads(answer).get("results", [{}])[0] if resp.status == 200 else {}
            if resp.status != 200 or "offset" not in result:
                seq[ch] -= 1              # not published: the next one takes this number
                failures.append(f"{resp.status} {answer[:120]!r}")
        except Exception as e:  # noqa: BLE001
            uncertain += 1                # may or may not have been published
            failures.append(f"{type(e).__name__}: {e}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", cfg["admin_port"], timeout=5)
    rtts.sort()
    return {"published": sum(seq.values()), "seq": seq, "failures": failures[:20], "failure_count": len(failures),
            "uncertain": uncertain, "max_behind_ms": behind * 1000,
            "admin_rtt_ms": {"p50": percentile(rtts, 50), "p99": percentile(rtts, 99), "max": rtts[-1] if rtts else None}}


# ---- the abusive side ------------------------------------------------------------------------

KIND_NAMES = {
    "a": "a. malformed input",
    "b": "b. connect and drop",
    "bf": "b. connection flood (one address)",
    "c": "c. oversized",
    "d": "d. never reads",
    "e": "e. handshake flood",
    "f": "f. 10,000 subscriptions",
    "g": "g. other clients' clientIds",
    "h": "h. publish to a server-only channel",
}


class Recorder:
    def __init__(self):
        self.rows = {}          # (kind, case, outcome) → [count, verdict]; verdict ok | BAD | known | info
        self.attempts = {}
        self.notes = []

    def attempt(self, kind, n=1):
        self.attempts[kind] = self.attempts.get(kind, 0) + n

    def add(self, kind, case, outcome, verdict, n=1):
        row = self.rows.setdefault((kind, case, outcome), [0, verdict])
        row[0] += n


async def paced(end, interval, body):
    """Runs body() every interval seconds (or back to back if it is slower) until end."""
    while mono() < end:
        t = mono()
        await body()
        await asyncio.sleep(max(0.0, min(interval - (mono() - t), end - mono())))


def err_of(m):
    return m.get("error") if not m.get("successful") else None


async def abuse_malformed(cfg, rec, end):
    port, src = cfg["port"], SRC["a"]
    big_len = bytes([0x81, 0xFF]) + ((1 << 63) | 5).to_bytes(8, "big") + b"abcd"
    ws_cases = [
        ("text: invalid JSON", lambda: ws_frame(1, b'[{"channel":'), 1007, "invalid JSON at byte"),
        ("text: invalid UTF-8", lambda: ws_frame(1, b'[{"channel":"/a\xff\xfe"}]'), 1007, "invalid JSON at byte"),
        ("text: JSON, not messages ([1])", lambda: ws_frame(1, b"[1]"), 1007, "expected a JSON array of message objects"),
        ("text: JSON nested 71 deep", lambda: ws_frame(1, ('[{"channel":"/a","data":' + "[" * 70 + "]" * 70 + "}]").encode()), 1007, "invalid JSON at byte"),
        ("binary frame", lambda: ws_frame(2, b"[]"), 1003, "binary frames are not Bayeux"),
        ("close code 1005", lambda: ws_frame(8, (1005).to_bytes(2, "big")), 1002, "invalid close code 1005"),
        ("close code 999", lambda: ws_frame(8, (999).to_bytes(2, "big")), 1002, "invalid close code 999"),
        ("close code 2999", lambda: ws_frame(8, (2999).to_bytes(2, "big")), 1002, "invalid close code 2999"),
        ("close code 5000", lambda: ws_frame(8, (5000).to_bytes(2, "big")), 1002, "invalid close code 5000"),
        ("close, 1-byte payload", lambda: ws_frame(8, b"\x03"), 1002, "close frame with a 1-byte payload"),
        ("close reason not UTF-8", lambda: ws_frame(8, (1000).to_bytes(2, "big") + b"\xff\xfe"), 1007, "close reason is not UTF-8"),
        ("unmasked frame", lambda: ws_frame(1, b"[]", mask=False), 1002, "unmasked client frame"),
        ("reserved bits set", lambda: ws_frame(1, b"[]", rsv=4), 1002, "reserved bits set"),
        ("unknown opcode 3", lambda: ws_frame(3, b""), 1002, "unknown opcode 3"),
        ("continuation, no message", lambda: ws_frame(0, b"[]"), 1002, "continuation without a message"),
        ("fragmented ping", lambda: ws_frame(9, b"", fin=False), 1002, "fragmented control frame"),
        ("ping over 125 bytes", lambda: ws_frame(9, b"x" * 126), 1002, "control frame over 125 bytes"),
        ("64-bit length, top bit set", lambda: big_len, 1002, "invalid payload length"),
        ("text inside fragmented message", lambda: ws_frame(1, b"[", fin=False) + ws_frame(1, b"]"), 1002, "new message inside a fragmented one"),
    ]
    # HTTP: (case, request bytes, expected status, server closes the connection after it)
    http_cases = [
        ("POST invalid JSON", lambda: http_post_bytes(port, b'[{"channel":'), 400, False),
        ("POST JSON, not messages", lambda: http_post_bytes(port, b"[1]"), 400, False),
        ("POST invalid UTF-8", lambda: http_post_bytes(port, b'[{"channel":"/a\xff"}]'), 400, False),
        ("garbage instead of HTTP", lambda: b"\x16\x03\x01\x00\xff NOT HTTP\r\n\r\n", 400, True),
        ("upgrade, version 8", lambda: upgrade_request(port, version="8"), 426, True),
        ("upgrade, no key", lambda: upgrade_request(port, key=False), 400, True),
        ("upgrade, foreign Origin", lambda: upgrade_request(port, origin="https://evil.example"), 403, True),
    ]
    i = 0

    async def one():
        nonlocal i
        k = i % (len(ws_cases) + len(http_cases))
        i += 1
        rec.attempt("a")
        if k < len(ws_cases):
            case, make, code, reason = ws_cases[k]
            case = "ws " + case
            try:
                ws = await WS.open(src, port)
            except Exception as e:  # noqa: BLE001
                rec.add("a", case, f"could not open: {type(e).__name__} {e}", "BAD")
                return
            ws.raw(make())
            got, why = await ws.close_frame(5)
            ws.close()
            ok = got == code and why.startswith(reason)
            outcome = f"close {got}" + (f" `{why[:48]}`" if why else "") if isinstance(got, int) else f"{got} {why}".strip()
            if not ok and isinstance(got, int):
                outcome += f" (documented: {code} `{reason}`)"
            rec.add("a", case, outcome if not ok else f"close {code} `{reason}`", "ok" if ok else "BAD")
        else:
            case, make, status, closes = http_cases[k - len(ws_cases)]
            case = "http " + case
            try:
                r, w = await tcp_open(src, port)
            except Exception as e:  # noqa: BLE001
                rec.add("a", case, f"could not open: {type(e).__name__}", "BAD")
                return
            try:
                w.write(make())
                got, headers, _ = await read_http_response(r)
                closed = headers.get("connection", "").lower() == "close" or await wait_eof(r, 0.5 if closes else 0.05)
                ok = got == status and (closed or not closes)
                outcome = f"HTTP {got}" + (", closed" if closed else ", kept open")
                rec.add("a", case, outcome, "ok" if ok else "BAD")
            except Exception as e:  # noqa: BLE001
                rec.add("a", case, f"no response: {type(e).__name__}", "BAD")
            finally:
                rst(w)

    await paced(end, 1 / 40, one)


async def abuse_connect_drop(cfg, rec, end):
    port, src = cfg["port"], SRC["b"]
    cases = ["tcp connect, FIN", "tcp connect, RST", "half a request line, RST", "ws upgrade sent, FIN before 101",
             "ws upgraded, RST", "ws upgraded + handshake, RST", "ws handshake + held connect, RST",
             "long-poll connect held, RST"]
    i = 0

    async def one():
        nonlocal i
        case = cases[i % len(cases)]
        i += 1
        rec.attempt("b")
        try:
            if case.startswith("tcp") or case.startswith("half") or case.startswith("ws upgrade sent"):
                r, w = await tcp_open(src, port)
                if case == "tcp connect, FIN":
                    w.close()
                elif case == "tcp connect, RST":
                    rst(w)
                elif case.startswith("half"):
                    w.write(b"POST /bay")
                    await asyncio.sleep(0)
                    rst(w)
                else:
                    w.write(upgrade_request(port))
                    await asyncio.sleep(0)
                    w.close()
            elif case == "long-poll connect held, RST":
                r, w = await tcp_open(src, port)
                w.write(http_post_bytes(port, dumps([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}])))
                status, _, body = await read_http_response(r)
                reply = json.loads(body)[0]
                if not reply.get("successful"):
                    rec.add("b", case, f"handshake refused: {reply.get('error')}", "ok")
                    rst(w)
                    return
                cid = reply["clientId"]
                w.write(http_post_bytes(port, dumps([{"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}])))
                await read_http_response(r)   # the first connect is answered at once
                w.write(http_post_bytes(port, dumps([{"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}])))
                await asyncio.sleep(0.05)     # held
                rst(w)
            else:
                ws = await WS.open(src, port)
                if case == "ws upgraded + handshake, RST":
                    ws.send([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"]}])
                    await asyncio.sleep(0)
                elif case == "ws handshake + held connect, RST":
                    reply = await handshake(ws)
                    if reply.get("successful"):
                        cid = reply["clientId"]
                        ws.send([{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket", "id": "c"}])
                        await ws.reply("c")
                        ws.send([{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket"}])
                        await asyncio.sleep(0.05)
                    else:
                        rec.add("b", case, f"handshake refused: {reply.get('error')}", "ok")
                        ws.close()
                        return
                ws.close()
            rec.add("b", case, "dropped by the client", "ok")
        except Exception as e:  # noqa: BLE001
            rec.add("b", case, f"failed before the drop: {type(e).__name__} {e}"[:90], "BAD")

    await paced(end, 1 / 60, one)


async def abuse_connection_flood(cfg, rec, end):
    """Opens 1.5 × --max-connections-per-ip connections from one address and holds them."""
    port, src, limit = cfg["port"], SRC["bf"], LIMITS["max-connections-per-ip"]
    count = limit + limit // 2
    rnd = 0
    while mono() + 8 < end:
        rnd += 1
        websocket = rnd % 2 == 0
        case = ("WebSocket upgrades" if websocket else "idle TCP connections") + f", {count} at once"
        rec.attempt("bf", count)
        conns = []

        async def open_one():
            try:
                r, w = await tcp_open(src, port)
            except Exception as e:  # noqa: BLE001
                return ("connect failed: " + type(e).__name__, None)
            if websocket:
                w.write(upgrade_request(port))
                try:
                    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 3)
                    return ("upgraded" if b" 101 " in head.split(b"\r\n")[0] else "refused with HTTP", (r, w))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return ("closed at accept", (r, w))
                except asyncio.TimeoutError:
                    return ("no answer in 3 s", (r, w))
            return ("closed at accept" if await wait_eof(r, 1.0) else "open", (r, w))

        results = await asyncio.gather(*[open_one() for _ in range(count)])
        conns = [c for _, c in results if c]
        tally = {}
        for outcome, _ in results:
            tally[outcome] = tally.get(outcome, 0) + 1
        kept = tally.get("upgraded" if websocket else "open", 0)
        refused = tally.get("closed at accept", 0)
        ok = kept == limit and refused == count - limit
        rec.add("bf", case, f"{kept} accepted, {refused} closed at accept"
                + "".join(f", {n} {o}" for o, n in tally.items() if o not in ("open", "upgraded", "closed at accept")),
                "ok" if ok else "BAD")
        if not websocket:
            # The accepted ones send nothing: --request-timeout-s closes them (1–1.5 timeouts).
            t = mono()
            open_ones = [c for o, c in results if o == "open"]
            waits = await asyncio.gather(*[wait_eof(r, max(0.1, min(end - mono(), LIMITS["request-timeout-s"] * 1.5 + 3))) for r, _ in open_ones])
            closed = sum(waits)
            secs = mono() - t
            if closed == len(open_ones):
                rec.add("bf", "idle TCP connections (accepted ones)", f"closed by the server (request timeout), all within {secs + 1:.0f} s of accept", "ok")
            elif mono() >= end - 0.5:
                rec.add("bf", "idle TCP connections (accepted ones)", f"{len(open_ones) - closed} still open when the abuse window ended", "info")
            else:
                rec.add("bf", "idle TCP connections (accepted ones)", f"{len(open_ones) - closed} still open after {secs:.0f} s", "BAD")
        else:
            await asyncio.sleep(min(3, max(0, end - mono())))
        for _, w in conns:
            rst(w)
        await asyncio.sleep(0.5)


async def abuse_oversized(cfg, rec, end):
    port, src = cfg["port"], SRC["c"]
    mmb, mbb = LIMITS["max-message-bytes"], LIMITS["max-batch-bytes"]
    state = {"ws": None, "cid": None}

    async def session():
        if state["ws"] is None:
            ws = await WS.open(src, port)
            reply = await handshake(ws)
            if not reply.get("successful"):
                ws.close()
                return None, reply.get("error")
            state["ws"], state["cid"] = ws, reply["clientId"]
        return state["ws"], state["cid"]

    async def ws_close_case(case, data, code, reason):
        try:
            ws = await WS.open(src, port)
        except Exception as e:  # noqa: BLE001
            rec.add("c", case, f"could not open: {type(e).__name__}", "BAD")
            return
        try:
            ws.raw(data)
            await ws.w.drain()
        except ConnectionError:
            pass
        got, why = await ws.close_frame(5)
        ws.close()
        ok = got == code and why.startswith(reason)
        rec.add("c", case, f"close {got}" + (f" `{why[:50]}`" if why else ""), "ok" if ok else "BAD")

    async def http_case(case, request, status, closes):
        try:
            r, w = await tcp_open(src, port)
        except Exception as e:  # noqa: BLE001
            rec.add("c", case, f"could not open: {type(e).__name__}", "BAD")
            return
        try:
            w.write(request)
            try:
                await asyncio.wait_for(w.drain(), 5)
            except ConnectionError:
                pass
            got, headers, body = await read_http_response(r)
            closed = headers.get("connection", "").lower() == "close" or await wait_eof(r, 0.5 if closes else 0.05)
            if status == 200:
                reply = json.loads(body)
                errors = [err_of(m) for m in reply]
                ok = got == 200 and errors[0] == f"413:{mmb}:Message too large" and errors[1] is None
                rec.add("c", case, f"HTTP {got}: `{errors[0]}`, the next message " + ("processed" if errors[1] is None else f"`{errors[1]}`"), "ok" if ok else "BAD")
            else:
                ok = got == status and (closed or not closes)
                rec.add("c", case, f"HTTP {got}" + (", closed" if closed else ", kept open"), "ok" if ok else "BAD")
        except Exception as e:  # noqa: BLE001
            rec.add("c", case, f"no response: {type(e).__name__}", "BAD")
        finally:
            rst(w)

    async def raw_case(case, request):
        try:
            got, send_error, closed = await raw_exchange(src, port, request)
        except Exception as e:  # noqa: BLE001
            rec.add("c", case, f"could not connect: {type(e).__name__}", "BAD")
            return
        status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else None
        ok = status == 413 and closed
        outcome = (f"HTTP {status}" if status else "no response") + (", closed" if closed else ", kept open")
        rec.add("c", case, outcome, "ok" if ok else "BAD")

    big = "x" * (mmb + 100)
    cases = ["ws message", "ws frame", "ws fragments", "ws 1025 fragments", "ws 1025 messages", "ws id", "http message",
             "http body", "http chunked", "http 1025 messages"]
    i = 0

    async def one():
        nonlocal i
        case = cases[i % len(cases)]
        i += 1
        rec.attempt("c")
        if case == "ws message" or case == "ws id":
            try:
                ws, cid = await session()
                if ws is None:
                    rec.add("c", f"ws {case}", f"handshake refused: {cid}", "BAD")
                    return
                if case == "ws message":
                    ws.send([{"channel": "/abuse/big", "clientId": cid, "data": big, "id": "big"},
                             {"channel": "/abuse/small", "clientId": cid, "data": 1, "id": "small"}])
                    got = await ws.replies(["big", "small"])
                    e1, e2 = err_of(got["big"]), err_of(got["small"])
                    ok = e1 == f"413:{mmb}:Message too large" and e2 is None
                    rec.add("c", f"ws message over --max-message-bytes ({mmb + 150} B) + a small one",
                            f"`{e1}`, the small one " + ("processed" if e2 is None else f"`{e2}`"), "ok" if ok else "BAD")
                else:
                    long_id = "i" * 300
                    ws.send([{"channel": "/abuse/small", "clientId": cid, "data": 1, "id": long_id},
                             {"channel": "/abuse/small", "clientId": cid, "data": 1, "id": "after"}])
                    found = []

                    async def collect():
                        while True:
                            for m in await ws.messages():
                                if m.get("channel") == "/abuse/small" and "successful" in m:
                                    found.append(m)
                                if m.get("id") == "after":
                                    return
                    await asyncio.wait_for(collect(), 5)
                    first = found[0] if found else {}
                    ok = err_of(first) == "400:id:Invalid parameter" and first.get("id") is None
                    rec.add("c", "ws message id over 256 bytes", f"`{err_of(first)}`" + (", id not echoed" if first.get("id") is None else ", id ECHOED"), "ok" if ok else "BAD")
            except Closed as c:
                rec.add("c", f"ws {case}", f"closed {c.code} {c.reason}", "BAD")
                state["ws"] = None
            except Exception as e:  # noqa: BLE001
                rec.add("c", f"ws {case}", f"error: {type(e).__name__} {e}"[:80], "BAD")
                if state["ws"]:
                    state["ws"].close()
                state["ws"] = None
        elif case == "ws frame":
            await ws_close_case(f"ws frame over --max-batch-bytes ({mbb + 10} B)", ws_frame(1, b"[" + b" " * (mbb + 8) + b"]"),
                                1009, f"message larger than {mbb} bytes")
        elif case == "ws fragments":
            half = b" " * (mbb // 2 + 100)
            await ws_close_case(f"ws fragmented message over --max-batch-bytes (2 × {len(half) + 1} B)",
                                ws_frame(1, b"[" + half, fin=False) + ws_frame(0, half + b"]"), 1009, f"message larger than {mbb} bytes")
        elif case == "ws 1025 fragments":
            data = ws_frame(1, b"[", fin=False) + b"".join(ws_frame(0, b" ", fin=False) for _ in range(1023)) + ws_frame(0, b"]")
            await ws_close_case("ws message in 1025 fragments", data, 1009, "message in more than 1024 fragments")
        elif case == "ws 1025 messages":
            await ws_close_case("ws 1025 messages in one frame", ws_frame(1, dumps([{"channel": "/a"}] * 1025).encode()), 1009, "")
        elif case == "http message":
            await http_case(f"http message over --max-message-bytes + a small one",
                            http_post_bytes(port, dumps([{"channel": "/abuse/big", "data": big}, {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}])),
                            200, False)
        elif case == "http body":
            await raw_case(f"http body over --max-batch-bytes (Content-Length {mbb + 10}), sent whole",
                           http_post_bytes(port, b"[" + b" " * (mbb + 8) + b"]"))
        elif case == "http chunked":
            chunk = b" " * 16000
            body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
            req = (f"POST /bayeux HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n").encode() + body
            await raw_case("http chunked body over --max-batch-bytes (5 × 16,000 B)", req)
        else:
            await http_case("http 1025 messages in one body", http_post_bytes(port, dumps([{"channel": "/a"}] * 1025)), 413, False)

    await paced(end, 1 / 12, one)
    if state["ws"]:
        state["ws"].close()


async def abuse_never_reads(cfg, rec, end):
    port, src = cfg["port"], SRC["d"]
    limit_s = LIMITS["write-stall-timeout-s"]

    async def flood(case, open_conn, payload, interval=0.0):
        """Writes payload in a loop without reading until the server closes the connection."""
        while mono() + 1 < end:
            rec.attempt("d")
            try:
                r, w, pre = await open_conn()
            except Exception as e:  # noqa: BLE001
                rec.add("d", case, f"could not open: {type(e).__name__} {e}"[:80], "BAD")
                await asyncio.sleep(1)
                continue
            w.transport.pause_reading()   # never read again
            t, sent, closed = mono(), 0, False
            if pre:
                w.write(pre)
            while mono() < end:
                try:
                    if payload:
                        w.write(payload)
                        sent += len(payload)
                    else:
                        w.write(ws_frame(9, b"p"))   # a ping a second, to notice the close
                    await asyncio.wait_for(w.drain(), 1.0)
                    if not payload:
                        await asyncio.sleep(1.0)
                    elif interval:
                        await asyncio.sleep(interval)
                except asyncio.TimeoutError:
                    pass                          # our send buffer is full: the server stopped reading
                except (ConnectionError, OSError):
                    closed = True
                    break
                if w.transport.is_closing():
                    closed = True
                    break
            secs = mono() - t
            if closed:
                when = "within 1 s" if secs < 1 else "after 1–10 s" if secs < 10 else "after 10–30 s" if secs < 30 else "after 30 s or more"
                rec.add("d", case, f"closed by the server {when} of its open", "ok")
                rec.notes.append(f"d: {case}: closed after {secs:.1f} s, {sent} bytes sent")
            else:
                # The kernel's socket buffers (up to net.ipv4.tcp_wmem's 4 MB here) absorb a slow
                # feed for a long time before the server's own buffers fill: not concluded.
                rec.add("d", case, f"still open when the window ended ({secs:.0f} s)", "info")
            rst(w)

    async def ws_open(subscribe):
        ws = await WS.open(src, port, rcvbuf=4096)
        pre = b""
        if subscribe:
            reply = await handshake(ws)
            cid = reply["clientId"]
            ws.send([{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket", "id": "c"},
                     {"channel": "/meta/subscribe", "clientId": cid, "subscription": subscribe, "id": "s"}])
            await ws.replies(["c", "s"])
            pre = ws_frame(1, dumps([{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket"}]).encode())
        return ws.r, ws.w, pre

    async def http_open():
        r, w = await tcp_open(src, port, rcvbuf=4096)
        return r, w, b""

    async def fat_publisher():
        """Publishes 8 KiB messages to /abuse/fat, 100 a second, for the subscriber that never reads."""
        ws = await WS.open(src, port)
        cid = (await handshake(ws))["clientId"]
        blob = "f" * 8192
        n = 0
        try:
            while mono() < end:
                n += 1
                ws.send([{"channel": "/abuse/fat", "clientId": cid, "data": blob},
                         {"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket", "advice": {"timeout": 0}, "id": str(n)}])
                await ws.reply(str(n))
                await asyncio.sleep(0.01)
        finally:
            ws.close()

    pings = b"".join(ws_frame(9, b"p" * 125) for _ in range(256))
    posts = http_post_bytes(port, dumps([{"channel": "/abuse/never-reads", "data": 0, "id": "i" * 250}])) * 64
    cases = {
        "d1": lambda: flood("ws pings, 125-byte payloads, pongs never read", lambda: ws_open(None), pings),
        "d2": lambda: flood("http pipelined POSTs, responses never read", http_open, posts),
        "d3": lambda: flood("ws subscriber to /stocks/*, deliveries never read", lambda: ws_open("/stocks/*"), b""),
        "d5": lambda: flood("ws pings, 5,000 a second, pongs never read", lambda: ws_open(None), pings[:len(pings) // 256 * 50], 0.01),
        "d4": lambda: flood("ws subscriber to /abuse/fat (800 KB/s), deliveries never read", lambda: ws_open("/abuse/fat"), b""),
    }
    chosen = [k for k in cases if k in cfg.get("only", [])] or list(cases)
    chosen = [k for k in chosen if k not in cfg.get("skip", [])]
    tasks = [cases[k]() for k in chosen]
    if "d4" in chosen:
        tasks.append(fat_publisher())
    await asyncio.gather(*tasks)


async def abuse_handshakes(cfg, rec, end):
    port, src = cfg["port"], SRC["e"]
    per_ip = LIMITS["handshakes-per-second-per-ip"]
    hs = {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket", "long-polling"]}
    expected = {"429:handshake_rate_connection:Too many handshakes", "429:handshake_rate_ip:Too many handshakes",
                "429:handshakes_per_batch:One handshake per message batch"}
    accepted = [0]
    t_start = mono()

    def classify(case, reply):
        if reply.get("successful"):
            accepted[0] += 1
            rec.add("e", case, "accepted (within the rates)", "ok")
        else:
            e = reply.get("error")
            advice = reply.get("advice") or {}
            ok = e in expected and advice.get("reconnect") == "handshake" and advice.get("interval") == 1000
            rec.add("e", case, f"`{e}`" + ("" if ok or e not in expected else f" advice {dumps(advice)}"), "ok" if ok else "BAD")

    async def ws_loop(case, batch, interval):
        ws = None
        n = 0
        while mono() < end:
            try:
                if ws is None:
                    ws = await WS.open(src, port)
                ids = [f"{n}.{k}" for k in range(batch)]
                n += 1
                ws.send([dict(hs, id=i) for i in ids])
                rec.attempt("e", batch)
                got = await ws.replies(ids)
                for i in ids:
                    classify(case, got[i])
            except Closed as c:
                rec.add("e", case, f"connection closed {c.code} {c.reason}", "BAD")
                ws = None
            except Exception as e:  # noqa: BLE001
                rec.add("e", case, f"error {type(e).__name__}", "BAD")
                if ws:
                    ws.close()
                ws = None
            await asyncio.sleep(interval)
        if ws:
            ws.close()

    async def http_loop(case, batch, keepalive, interval):
        conn = None
        while mono() < end:
            try:
                if conn is None:
                    conn = await tcp_open(src, port)
                r, w = conn
                w.write(http_post_bytes(port, dumps([hs] * batch)))
                rec.attempt("e", batch)
                status, _, body = await read_http_response(r)
                if status != 200:
                    rec.add("e", case, f"HTTP {status}", "BAD")
                else:
                    for m in json.loads(body):
                        classify(case, m)
                if not keepalive:
                    rst(w)
                    conn = None
            except Exception as e:  # noqa: BLE001
                rec.add("e", case, f"error {type(e).__name__}", "BAD")
                if conn:
                    rst(conn[1])
                conn = None
            await asyncio.sleep(interval)
        if conn:
            rst(conn[1])

    await asyncio.gather(
        ws_loop("ws, one handshake a frame, back to back", 1, 0.0),
        ws_loop("ws, 4 handshakes in one frame", 4, 0.02),
        *[http_loop("http, one handshake a POST, new connection each (3 loops)", 1, False, 0.01) for _ in range(3)],
        http_loop("http, 3 handshakes in one POST, keep-alive", 3, True, 0.02),
    )
    secs = mono() - t_start
    allowance = per_ip * secs + 2 * per_ip
    rec.add("e", "all of them (one address)", f"{accepted[0]} accepted in {secs:.0f} s; per-IP allowance {allowance:.0f}",
            "ok" if accepted[0] <= allowance * 1.05 else "BAD")


async def abuse_subscriptions(cfg, rec, end):
    port, src, limit = cfg["port"], SRC["f"], LIMITS["max-subscriptions"]
    rnd = 0

    async def one():
        nonlocal rnd
        rnd += 1
        rec.attempt("f")
        case = f"10,000 subscribes in frames of 250, then " + ("/meta/disconnect" if rnd % 2 else "RST (session expires)")
        try:
            ws = await WS.open(src, port)
            reply = await handshake(ws)
            if not reply.get("successful"):
                rec.add("f", case, f"handshake refused: {reply.get('error')}", "BAD")
                ws.close()
                return
            cid = reply["clientId"]
            tally = {}
            t = mono()
            for b in range(40):
                ids = [f"{b}.{k}" for k in range(250)]
                ws.send([{"channel": "/meta/subscribe", "clientId": cid, "subscription": f"/abuse/many/r{rnd}/c{b * 250 + k}", "id": i}
                         for k, i in enumerate(ids)])
                got = await ws.replies(ids, 10)
                for m in got.values():
                    key = "successful" if m.get("successful") else f"`{m.get('error')}`"
                    tally[key] = tally.get(key, 0) + 1
            secs = mono() - t
            ok = tally.get("successful", 0) == limit and tally.get(f"`403:{limit}:Too many subscriptions`", 0) == 10000 - limit
            rec.add("f", case, ", ".join(f"{n} {k}" for k, n in sorted(tally.items())), "ok" if ok else "BAD")
            rec.notes.append(f"f: round {rnd}: 10,000 subscribes answered in {secs:.2f} s")
            if rnd % 2:
                ws.send([{"channel": "/meta/disconnect", "clientId": cid, "id": "d"}])
                await ws.reply("d")
            ws.close()
        except Exception as e:  # noqa: BLE001
            rec.add("f", case, f"error {type(e).__name__} {e}"[:80], "BAD")

    await paced(end, 4.0, one)


async def abuse_client_ids(cfg, rec, end):
    port, src, admin = cfg["port"], SRC["g"], cfg["admin_port"]
    victim = {"cid": None, "events": [], "closed": None, "connect_replies": []}
    victim_ready = asyncio.Event()

    async def run_victim():
        try:
            ws = await WS.open(VICTIM_SRC, port)
            victim["cid"] = (await handshake(ws))["clientId"]
            ws.send([{"channel": "/meta/connect", "clientId": victim["cid"], "connectionType": "websocket", "id": "c"},
                     {"channel": "/meta/subscribe", "clientId": victim["cid"], "subscription": "/victim/feed", "id": "s"}])
            await ws.replies(["c", "s"])
            ws.send([{"channel": "/meta/connect", "clientId": victim["cid"], "connectionType": "websocket"}])
            victim_ready.set()
            while True:
                for m in await ws.messages():
                    if m.get("channel") == "/meta/connect":
                        victim["connect_replies"].append(m.get("error") or "successful")
                        if m.get("successful"):
                            ws.send([{"channel": "/meta/connect", "clientId": victim["cid"], "connectionType": "websocket"}])
                    elif "data" in m:
                        victim["events"].append(m["data"])
        except Closed as c:
            victim["closed"] = f"{c.code} {c.reason}"
        except asyncio.CancelledError:
            ws.close()
            raise
        except Exception as e:  # noqa: BLE001
            victim["closed"] = f"error {type(e).__name__}"
        finally:
            victim_ready.set()

    victim_task = asyncio.create_task(run_victim())

    # g1: made-up clientIds, all operations
    async def made_up():
        cid = "%040x" % random.getrandbits(160)
        rec.attempt("g")
        try:
            ws = await WS.open(src, port)
            msgs = [{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket", "id": "connect", "advice": {"timeout": 0}},
                    {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/victim/feed", "id": "subscribe"},
                    {"channel": "/victim/feed", "clientId": cid, "data": {"forged": True}, "id": "publish"},
                    {"channel": "/meta/unsubscribe", "clientId": cid, "subscription": "/victim/feed", "id": "unsubscribe"},
                    {"channel": "/meta/disconnect", "clientId": cid, "id": "disconnect"}]
            ws.send(msgs)
            got = await ws.replies([m["id"] for m in msgs])
            for op, m in got.items():
                e = err_of(m)
                rec.add("g", f"made-up 40-hex clientId: {op}", f"`{e}`" if e else "ACCEPTED", "ok" if e == "402::Unknown client" else "BAD")
            ws.close()
        except Exception as e:  # noqa: BLE001
            rec.add("g", "made-up 40-hex clientId", f"error {type(e).__name__} {e}"[:80], "BAD")

    async def stolen():
        """Another session's real clientId, found through the admin API, used from another address."""
        await asyncio.wait_for(victim_ready.wait(), 10)
        url = f"http://127.0.0.1:{admin}/v1/clients?channel=/victim/feed"
        listed = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read()))
        ids = [c.get("clientId") or c.get("id") for c in listed.get("clients", [])]
        if not ids:
            rec.add("g", "real clientId (from GET /v1/clients)", "not listed", "info")
            return
        cid = ids[0]
        rec.notes.append(f"g: GET /v1/clients?channel=/victim/feed listed {len(ids)} client(s); the first is the victim: {cid == victim['cid']}")
        ws = await WS.open(src, port)
        rec.attempt("g", 5)
        steps = [
            ("publish as the victim", {"channel": "/victim/feed", "clientId": cid, "data": {"forged": True}}),
            ("subscribe the victim to /victim/secret", {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/victim/secret"}),
            ("/meta/connect on another socket", {"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket", "advice": {"timeout": 0}}),
        ]
        for k, (case, m) in enumerate(steps):
            ws.send([dict(m, id=f"s{k}")])
            e = err_of(await ws.reply(f"s{k}"))
            if cfg.get("auth"):
                verdict = "ok" if e == "402::Unknown client" else "BAD"
            else:
                verdict = "ok" if e else "known"
            rec.add("g", f"real clientId: {case}", f"`{e}`" if e else "accepted", verdict)
        # Who gets the victim's next delivery now: the victim's socket or the thief's?
        before = len(victim["events"])
        body = dumps({"channel": "/victim/feed", "data": {"probe": 1}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{admin}/v1/publish", body, {"Content-Type": "application/json"})
        await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=5).read())
        thief_got = []

        async def collect():
            while True:
                for m in await ws.messages():
                    if m.get("channel") == "/victim/feed" and "data" in m:
                        thief_got.append(m["data"])
        try:
            await asyncio.wait_for(collect(), 1.0)
        except (asyncio.TimeoutError, Closed):
            pass
        victim_got = victim["events"][before:]
        rec.add("g", "real clientId: admin publish to the victim's channel after that",
                f"delivered to the thief's socket: {bool(thief_got)}; to the victim's: {any(d == {'probe': 1} for d in victim_got)}",
                ("BAD" if cfg.get("auth") else "known") if thief_got else "ok")
        ws.send([{"channel": "/meta/disconnect", "clientId": cid, "id": "d"}])
        e = err_of(await ws.reply("d"))
        await asyncio.sleep(0.5)
        rec.add("g", "real clientId: /meta/disconnect the victim", f"`{e}`" if e else f"accepted; the victim's socket: {victim['closed'] or 'still open'}, its connect replies: {victim['connect_replies'][-2:]}",
                "ok" if e else ("BAD" if cfg.get("auth") else "known"))
        ws.close()

    try:
        await asyncio.sleep(2)
        try:
            await stolen()
        except Exception as e:  # noqa: BLE001
            rec.add("g", "real clientId", f"harness error {type(e).__name__} {e}"[:80], "info")
        await paced(end, 0.25, made_up)
    finally:
        victim_task.cancel()
        await asyncio.gather(victim_task, return_exceptions=True)


async def abuse_forbidden_publish(cfg, rec, end):
    port, src = cfg["port"], SRC["h"]
    ws = None
    lp = None
    n = 0

    async def one():
        nonlocal ws, lp, n
        n += 1
        try:
            if ws is None:
                ws = await WS.open(src, port)
                reply = await handshake(ws)
                ws.cid = reply.get("clientId")
                if not ws.cid:
                    rec.add("h", "ws handshake", f"refused `{reply.get('error')}`", "BAD")
                    ws.close()
                    ws = None
                    return
            ch = CHANNELS[n % len(CHANNELS)]
            msgs = [{"channel": "/meta/connect", "clientId": ws.cid, "connectionType": "websocket", "advice": {"timeout": 0}},
                    {"channel": ch, "clientId": ws.cid, "data": {"fake": True, "price": 0}, "id": "p"},
                    {"channel": ch + "/deeper", "clientId": ws.cid, "data": {"fake": True}, "id": "q"},
                    {"channel": "/stocks/**", "clientId": ws.cid, "data": {"fake": True}, "id": "w"}]
            ws.send(msgs)
            rec.attempt("h", 3)
            got = await ws.replies(["p", "q", "w"])
            for ident, case, want in (("p", "ws publish to /stocks/Snn", f"403:{ch}:Publish not allowed"),
                                      ("q", "ws publish to /stocks/Snn/deeper", f"403:{ch}/deeper:Publish not allowed"),
                                      ("w", "ws publish to /stocks/** (a wildcard)", "405:/stocks/**:Invalid channel")):
                e = err_of(got[ident])
                shown = (e or "ACCEPTED").replace(ch, "/stocks/Snn")
                rec.add("h", case, f"`{shown}`" if e else shown, "ok" if e == want else "BAD")
            if n % 5 == 0:   # the same over long-polling
                if lp is None:
                    r, w = await tcp_open(src, port)
                    w.write(http_post_bytes(port, dumps([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}])))
                    _, headers, body = await read_http_response(r)
                    # With --auth, the session is bound to the cookie its handshake set (a
                    # keep-alive connection is no proof: proxies pool them).
                    cookie = headers.get("set-cookie", "").split(";")[0]
                    lp = (r, w, json.loads(body)[0].get("clientId"), f"Cookie: {cookie}\r\n" if cookie else "")
                r, w, cid, cookie = lp
                w.write(http_post_bytes(port, dumps([{"channel": ch, "clientId": cid, "data": {"fake": True}, "id": "p"},
                                                     {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}]), extra=cookie))
                rec.attempt("h")
                status, _, body = await read_http_response(r)
                e = err_of([m for m in json.loads(body) if m.get("id") == "p"][0]) if status == 200 else f"HTTP {status}"
                rec.add("h", "long-poll publish to /stocks/Snn", f"`{(e or 'ACCEPTED').replace(ch, '/stocks/Snn')}`",
                        "ok" if e == f"403:{ch}:Publish not allowed" else "BAD")
        except Exception as e:  # noqa: BLE001
            rec.add("h", "publish", f"error {type(e).__name__} {e}"[:80], "BAD")
            if ws:
                ws.close()
            ws = None
            if lp:
                rst(lp[1])
            lp = None

    await paced(end, 1 / 20, one)
    if ws:
        ws.close()
    if lp:
        rst(lp[1])


async def abuse_role(cfg):
    rec = Recorder()
    start = cfg["abuse_start"]
    end = cfg["abuse_end"]
    await asyncio.sleep(max(0.0, start - mono()))
    kinds = {"a": abuse_malformed, "b": abuse_connect_drop, "bf": abuse_connection_flood, "c": abuse_oversized,
             "d": abuse_never_reads, "e": abuse_handshakes, "f": abuse_subscriptions, "g": abuse_client_ids,
             "h": abuse_forbidden_publish}
    only = cfg.get("only")

    async def guarded(k, fn):
        try:
            await asyncio.wait_for(fn(cfg, rec, end), end - mono() + 2)
        except asyncio.TimeoutError:
            rec.notes.append(f"{k}: still running 2 s after the window, cancelled")
        except Exception as e:  # noqa: BLE001
            rec.add(k, "harness", f"crashed: {type(e).__name__} {e}"[:100], "BAD")

    chosen = [k for k in kinds if (not only or k in only or any(o.startswith(k) and o[len(k):].isdigit() for o in only))
              and k not in cfg.get("skip", [])]
    await asyncio.gather(*[guarded(k, kinds[k]) for k in chosen])
    return {"rows": [[k, case, outcome, n, v] for (k, case, outcome), (n, v) in rec.rows.items()],
            "attempts": rec.attempts, "notes": rec.notes, "window_s": end - start}


# ---------------------------------------------------------------------------------------------
# Orchestrator

def proc_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return None


def admin_get(admin_port, path, timeout=3):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{path}", timeout=timeout) as r:
        return r.status, r.read()


def stats(admin_port):
    try:
        return json.loads(admin_get(admin_port, "/v1/stats")[1])
    except Exception:  # noqa: BLE001
        return None


def delivery_latency_quantiles(metrics_text):
    """p50/p99 upper bounds from herald_delivery_latency_seconds buckets."""
    buckets = []
    for line in metrics_text.splitlines():
        m = re.match(r'herald_delivery_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    out = {"n": int(total)}
    for p in (50, 99, 99.9):
        out[f"p{p:g}"] = next(le for le, c in buckets if c >= total * p / 100) * 1000
    return out


def spawn_role(role, cfg, tmp):
    path = os.path.join(tmp, f"{role}.json")
    with open(path + ".in", "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role", role, "--role-io", path],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, f"{role}.err"), "w"), text=True)
    return p, path


def read_result(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


async def probe(port, admin_port):
    """Still serving: a new WebSocket client gets the retained prices and an admin publish."""
    out = {}
    ws = await WS.open(PROBE_SRC, port)
    cid = (await handshake(ws))["clientId"]
    ws.send([{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket", "id": "c"},
             {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/stocks/*", "id": "s"},
             {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/probe/alive", "id": "p"}])
    retained = set()
    got = {}

    async def until_subscribed():
        while "s" not in got or "p" not in got:
            for m in await ws.messages():
                if m.get("id") in ("c", "s", "p"):
                    got[m["id"]] = m
                elif m.get("channel", "").startswith("/stocks/"):
                    retained.add(m["channel"])
    await asyncio.wait_for(until_subscribed(), 5)
    body = dumps({"channel": "/probe/alive", "data": {"ok": True}}).encode()
    t = mono()
    req = urllib.request.Request(f"http://127.0.0.1:{admin_port}/v1/publish", body, {"Content-Type": "application/json"})
    await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=5).read())

    async def until_alive():
        while True:
            for m in await ws.messages():
                if m.get("channel") == "/probe/alive":
                    return
                if m.get("channel", "").startswith("/stocks/"):
                    retained.add(m["channel"])
    await asyncio.wait_for(until_alive(), 5)
    out["publish_to_receive_ms"] = (mono() - t) * 1000
    out["retained_channels"] = len(retained)
    ws.close()
    out["ok"] = got["s"].get("successful") and got["p"].get("successful") and len(retained) == len(CHANNELS)
    return out


def run(args):
    t_begin = mono()
    hard_stop = t_begin + args.duration + 30
    herald = os.path.abspath(args.herald)
    if not os.access(herald, os.X_OK):
        print(f"abuse-soak: {herald} is not executable", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="herald-abuse-soak-")
    children = []
    server = None
    report = {"args": vars(args), "tmp": tmp}
    try:
        with open(os.path.join(tmp, "herald.json"), "w") as f:
            json.dump(AUTH_CONFIG if args.auth else CONFIG, f)
        cmd = [herald, "serve", "--host", "127.0.0.1", "--port", str(args.port), "--admin-port", str(args.admin_port),
               "--data-dir", os.path.join(tmp, "data"), "--config", os.path.join(tmp, "herald.json"),
               "--rate-limit-loopback", "--log-level", args.log_level]
        if args.auth:
            cmd += ["--jwt-hs256-secret", base64.b64encode(os.urandom(33)).decode()]
        for k, v in LIMITS.items():
            cmd += [f"--{k}", str(v)]
        report["command"] = re.sub(r"--jwt-hs256-secret \S+", "--jwt-hs256-secret <random>", " ".join(cmd).replace(tmp, "$TMP"))
        report["load_before"] = os.getloadavg()
        log = open(os.path.join(tmp, "herald.log"), "w")
        env = dict(os.environ)
        for kv in args.server_env:
            k, _, v = kv.partition("=")
            env[k] = v
        report["server_env"] = args.server_env
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        line = ""
        deadline = mono() + 30
        while mono() < deadline:
            line = server.stdout.readline()
            if line.startswith("herald listening") or not line:
                break
        m = re.search(r"data=http://[^:]+:(\d+)/\S* admin=http://[^:]+:(\d+)", line)
        if not m:
            print(f"abuse-soak: herald did not start: {line!r}; log in {tmp}/herald.log", file=sys.stderr)
            return 2
        port, admin_port = int(m.group(1)), int(m.group(2))
        pid = server.pid
        report["rss_start_kb"] = proc_rss_kb(pid)

        # well-behaved side
        t0 = mono()
        good_end = t0 + args.duration
        # The subscribers stay connected a while after the last publish: for the last deliveries,
        # and so that the end figures are taken with them still connected.
        base = {"auth": args.auth, "port": port, "admin_port": admin_port, "start": t0, "end": good_end + 6.0, "pub_end": good_end,
                "rate": args.rate, "subscribers": args.subscribers}
        subs, subs_out = spawn_role("subscribers", base, tmp)
        children.append(subs)
        ready_line = ""
        while mono() < t0 + 20:
            ready_line = subs.stdout.readline()
            if ready_line.startswith("READY") or not ready_line:
                break
        ready = int(ready_line.split()[1]) if ready_line.startswith("READY") else 0
        report["subscribers_ready"] = ready
        if ready < args.subscribers:
            print(f"abuse-soak: only {ready} of {args.subscribers} subscribers ready", file=sys.stderr)
        pub_start = mono()
        pub, pub_out = spawn_role("publisher", dict(base, start=pub_start), tmp)
        children.append(pub)
        # keep the good side's measured window aligned with the publisher's
        abuse_start = pub_start + args.warmup
        abuse_end = good_end - args.settle
        samples = []
        cpu0, wall0 = proc_cpu_s(pid), mono()

        def sample(tag=""):
            st = stats(admin_port)
            samples.append({"t": round(mono() - pub_start, 1), "rss_kb": proc_rss_kb(pid), "cpu_s": proc_cpu_s(pid),
                            "load1": os.getloadavg()[0], "conns": st and st["connections"]["total"],
                            "sessions": st and st["sessions"], "tag": tag})
            return st

        while mono() < abuse_start:
            time.sleep(min(1.0, max(0.0, abuse_start - mono())))
            sample()
        report["rss_warm_kb"] = proc_rss_kb(pid)
        report["stats_before"] = sample("warm")
        abuse, abuse_out = spawn_role("abuse", dict(base, abuse_start=mono(), abuse_end=abuse_end, only=args.only, skip=args.skip), tmp)
        children.append(abuse)
        cpu_abuse0, t_abuse0 = proc_cpu_s(pid), mono()
        last = mono()
        while abuse.poll() is None and mono() < abuse_end + 5:
            time.sleep(0.1)
            if mono() - last >= 1.0:
                last = mono()
                sample()
        if abuse.poll() is None:
            abuse.kill()
            report["abuse_killed"] = True
        report["herald_cpu_abuse"] = (proc_cpu_s(pid) - cpu_abuse0) / max(0.001, mono() - t_abuse0)
        report["abuse_exit"] = abuse.wait()
        abuse_stopped = mono()
        end_at = max(good_end, abuse_stopped + args.settle)
        while mono() < end_at:
            time.sleep(min(1.0, max(0.0, end_at - mono())))
            sample()
        report["rss_end_kb"] = proc_rss_kb(pid)
        report["stats_after"] = sample("end")
        report["settle_s"] = mono() - abuse_stopped
        # Abusers' sessions expire --max-interval-ms after their last message, then the sweep
        # (every second) removes them: allow that much past the abusers' exit.
        base_conns = report["stats_before"]["connections"]["total"] if report["stats_before"] else None
        base_sessions = report["stats_before"]["sessions"] if report["stats_before"] else None
        st = report["stats_after"]
        while st and (st["connections"]["total"] > base_conns or st["sessions"] > base_sessions) \
                and mono() < abuse_stopped + LIMITS["max-interval-ms"] / 1000 + 2.5:
            time.sleep(0.25)
            st = stats(admin_port)
        report["left_over"] = {"connections": st and st["connections"]["total"] - base_conns,
                               "sessions": st and st["sessions"] - base_sessions,
                               "after_s": mono() - abuse_stopped}
        for p in (pub, subs):
            try:
                p.wait(timeout=max(1.0, min(hard_stop - mono(), 15)))
            except subprocess.TimeoutExpired:
                p.kill()
        report["herald_cpu_total"] = (proc_cpu_s(pid) - cpu0) / max(0.001, mono() - wall0)
        try:
            report["metrics_latency"] = delivery_latency_quantiles(admin_get(admin_port, "/metrics")[1].decode())
        except Exception:  # noqa: BLE001
            report["metrics_latency"] = None
        try:
            report["probe"] = asyncio.run(asyncio.wait_for(probe(port, admin_port), 10))
        except Exception as e:  # noqa: BLE001
            report["probe"] = {"ok": False, "error": f"{type(e).__name__} {e}"}
        try:
            report["health"] = admin_get(admin_port, "/v1/health")[0]
        except Exception as e:  # noqa: BLE001
            report["health"] = f"{type(e).__name__}"
        report["alive_before_stop"] = server.poll() is None
        if args.malloc_trim_probe and shutil.which("gdb"):
            # Diagnostic: is the end figure memory in use, or freed memory malloc keeps?
            try:
                subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (int)malloc_trim(0)"],
                               capture_output=True, timeout=30)
                report["rss_after_trim_kb"] = proc_rss_kb(pid)
            except Exception as e:  # noqa: BLE001
                report["rss_after_trim_kb"] = f"{type(e).__name__}"
        report["load_after"] = os.getloadavg()
        server.send_signal(signal.SIGTERM)
        try:
            report["exit_code"] = server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            report["exit_code"] = "killed after 15 s"
        report["samples"] = samples
        report["subscribers"] = read_result(subs_out)
        report["publisher"] = read_result(pub_out)
        report["abuse"] = read_result(abuse_out)
        log.close()
        with open(os.path.join(tmp, "herald.log")) as f:
            lines = f.read().splitlines()
        report["log_lines"] = len(lines)
        known = set()
        for part in (report["subscribers"], report["abuse"]):
            known |= set((part or {}).get("client_ids", []))
        for part in (report["subscribers"], report["abuse"]):
            if part:
                part.pop("client_ids", None)
        leaked = [l for l in lines if any(tok in known for tok in re.findall(r"[0-9A-Za-z]{16,}", l))]
        report["log_client_ids"] = {"known": len(known), "lines": len(leaked), "examples": [re.sub(r"session\.id=\S+", "session.id=<a clientId>", l) for l in leaked[:3]]}
        report["log_notable"] = [l for l in lines if re.search(r"\b(error|critical|fatal|Fatal error|crash)\b", l, re.I)][:20]
        report["log_levels"] = {}
        for l in lines:
            m = re.match(r"\S+ (\w+) ", l)
            if m:
                report["log_levels"][m.group(1)] = report["log_levels"].get(m.group(1), 0) + 1
        report["log_warnings"] = sorted({re.sub(r"\d+", "N", l.split(" ", 2)[2])[:160] for l in lines if " warning " in l})[:20]
        report["wall_s"] = mono() - t_begin
        report["hard_stopped"] = mono() > hard_stop
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
        if server and server.poll() is None:
            server.kill()
    ok = print_report(report, args)
    with open(os.path.join(tmp, "report.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    if not args.keep:
        shutil.rmtree(os.path.join(tmp, "data"), ignore_errors=True)
    print(f"\n(raw report and logs: {tmp})")
    return 0 if ok else 1


def fmt(v, unit="", nd=1):
    if v is None:
        return "n/a"
    return f"{v:.{nd}f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def print_report(r, args):
    subs, pub, abuse = r.get("subscribers") or {}, r.get("publisher") or {}, r.get("abuse") or {}
    lat = subs.get("latency_ms") or {}
    crit = []

    # 1. nothing lost
    expected_total = (pub.get("published", 0)) * args.subscribers
    tail_missing = 0
    for last in subs.get("last", []):
        for ch, n in (pub.get("seq") or {}).items():
            tail_missing += max(0, n - last.get(ch, 0))
    lost_ok = (subs.get("ready") == args.subscribers and subs.get("gaps") == 0 and subs.get("dups") == 0
               and subs.get("foreign") == 0 and tail_missing == 0 and not subs.get("closes") and not subs.get("errors")
               and pub.get("failure_count") == 0 and subs.get("received") == expected_total)
    crit.append(("well-behaved subscribers lost nothing (no gap, duplicate, foreign message or disconnect)", lost_ok,
                 f"{subs.get('received')} of {expected_total} deliveries; gaps {subs.get('gaps')}, duplicates {subs.get('dups')}, "
                 f"foreign {subs.get('foreign')}, missing at the end {tail_missing}, disconnects {len(subs.get('closes') or [])}, "
                 f"errors {len(subs.get('errors') or [])}, publish failures {pub.get('failure_count')}"))
    # 2. latency
    p99 = lat.get("p99")
    crit.append(("subscribers' p99 publish-to-receive latency < 50 ms", p99 is not None and p99 < 50,
                 f"p50 {fmt(lat.get('p50'), ' ms', 2)}, p99 {fmt(p99, ' ms', 2)}, max {fmt(lat.get('max'), ' ms', 1)}"))
    # 3. memory
    warm, endkb = r.get("rss_warm_kb"), r.get("rss_end_kb")
    growth = (endkb - warm) / warm if warm and endkb else None
    crit.append(("server RSS at the end within 20% of post-warm-up", growth is not None and abs(growth) <= 0.20,
                 f"{fmt(warm and warm / 1024, ' MiB')} → {fmt(endkb and endkb / 1024, ' MiB')} ({fmt(growth and growth * 100, '%', 1)}); "
                 f"peak {fmt(max((s['rss_kb'] or 0) for s in r.get('samples', [{'rss_kb': 0}])) / 1024, ' MiB')}"))
    # 4. abuse outcomes
    rows = abuse.get("rows") or []
    bad = [row for row in rows if row[4] == "BAD"]
    sb, sa = r.get("stats_before") or {}, r.get("stats_after") or {}
    lo = r.get("left_over") or {}
    left = lo.get("connections") is None or lo.get("connections") > 0 or lo.get("sessions") > 0
    crit.append(("every abusive input refused or closed as documented; no abusive connection or session left "
                 f"{LIMITS['max-interval-ms'] / 1000 + 2.5:g} s after the abusers stopped",
                 bool(rows) and not bad and not left,
                 f"{sum(r_[3] for r_ in rows)} outcomes recorded, {sum(r_[3] for r_ in bad)} not as documented; "
                 f"{lo.get('connections')} connections and {lo.get('sessions')} sessions over the warm-up figures "
                 f"{fmt(lo.get('after_s'), ' s', 1)} after the abusers stopped"))
    # 5. still serving
    probe_ = r.get("probe") or {}
    serving = bool(probe_.get("ok")) and r.get("health") == 200 and r.get("alive_before_stop") and r.get("exit_code") == 0
    crit.append(("broker still serving (new client gets retained prices and a publish; /v1/health 200; clean exit on SIGTERM)", serving,
                 f"probe {probe_}, health {r.get('health')}, exit code {r.get('exit_code')}"))
    if r.get("hard_stopped"):
        crit.append(("finished within DURATION + 30 s", False, f"{r.get('wall_s'):.0f} s"))

    out = []
    p = out.append
    p(f"# Herald abuse soak, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    p(f"- duration {args.duration} s (abuse window {fmt(abuse.get('window_s'), ' s', 0)}, after {args.warmup} s of warm-up; "
      f"{fmt(r.get('settle_s'), ' s', 0)} settle), {args.subscribers} subscribers on `/stocks/*`, {args.rate} messages/s through the admin API")
    p(f"- machine: {os.cpu_count()} CPUs; load average before {', '.join(f'{x:.2f}' for x in r.get('load_before', []))}, "
      f"after {', '.join(f'{x:.2f}' for x in r.get('load_after', []))}; peak 1-min load during the run "
      f"{fmt(max((s['load1'] for s in r.get('samples', [])), default=None), '', 2)}")
    p(f"- herald CPU: {fmt(r.get('herald_cpu_abuse') and r['herald_cpu_abuse'] * 100, '%', 0)} of one core during the abuse, "
      f"{fmt(r.get('herald_cpu_total') and r['herald_cpu_total'] * 100, '%', 0)} over the run")
    wall = max(1.0, r.get("wall_s") or 1.0)
    p(f"- harness CPU (share of one core over the run): subscribers {fmt(subs.get('cpu_s') and subs['cpu_s'] / wall * 100, '%', 0)}, "
      f"publisher {fmt(pub.get('cpu_s') and pub['cpu_s'] / wall * 100, '%', 0)}, abusers {fmt(abuse.get('cpu_s') and abuse['cpu_s'] / wall * 100, '%', 0)}")
    p(f"- server: `{r.get('command')}`" + (f" with {' '.join(r['server_env'])}" if r.get("server_env") else ""))
    p("")
    p("## Criteria\n")
    p("| criterion | result | figures |")
    p("|---|---|---|")
    for name, passed, detail in crit:
        p(f"| {name} | {'PASS' if passed else 'FAIL'} | {detail} |")
    p("")
    p("## Well-behaved side\n")
    p(f"- published {pub.get('published')} messages ({', '.join(f'{k[-3:]} {v}' for k, v in (pub.get('seq') or {}).items())}); "
      f"publisher at most {fmt(pub.get('max_behind_ms'), ' ms', 1)} behind schedule; admin publish round trip p50 "
      f"{fmt((pub.get('admin_rtt_ms') or {}).get('p50'), ' ms', 2)}, p99 {fmt((pub.get('admin_rtt_ms') or {}).get('p99'), ' ms', 2)}, "
      f"max {fmt((pub.get('admin_rtt_ms') or {}).get('max'), ' ms', 1)}")
    p(f"- latency (publish call to subscriber's read, {lat.get('n')} samples): p50 {fmt(lat.get('p50'), ' ms', 2)}, "
      f"p90 {fmt(lat.get('p90'), ' ms', 2)}, p99 {fmt(lat.get('p99'), ' ms', 2)}, p99.9 {fmt(lat.get('p999'), ' ms', 2)}, max {fmt(lat.get('max'), ' ms', 1)}")
    ml = r.get("metrics_latency")
    if ml:
        p(f"- herald's own `herald_delivery_latency_seconds` (publish to socket write, bucket upper bounds): "
          f"p50 ≤ {ml['p50']:.2f} ms, p99 ≤ {ml['p99']:.2f} ms, p99.9 ≤ {ml['p99.9']:.2f} ms ({ml['n']} flush passes)")
    sp = [x for x in (subs.get("sub_p99") or []) if x is not None]
    if sp:
        p(f"- per subscriber p99: {sum(1 for x in sp if x >= 50)} of {len(sp)} at or over 50 ms; lowest {min(sp):.1f} ms, highest {max(sp):.1f} ms")
    worst = sorted(((int(k), v) for k, v in (subs.get("per_second") or {}).items()), key=lambda kv: -kv[1][1])[:5]
    if worst:
        p("- worst seconds (second of the run: max latency): " + ", ".join(f"{k} s: {v[1]:.1f} ms" for k, v in sorted(worst)))
    for what in ("closes", "errors"):
        if subs.get(what):
            p(f"- subscriber {what}: {subs[what][:10]}")
    if pub.get("failures"):
        p(f"- publish failures: {pub['failures'][:5]}")
    p("")
    p("## Server\n")
    p(f"- RSS: start {fmt(r.get('rss_start_kb') and r['rss_start_kb'] / 1024, ' MiB')}, after warm-up {fmt(warm and warm / 1024, ' MiB')}, "
      f"end {fmt(endkb and endkb / 1024, ' MiB')}"
      + (f"; after `malloc_trim(0)` (gdb, after the end figure) {fmt(r['rss_after_trim_kb'] / 1024 if isinstance(r['rss_after_trim_kb'], int) else r['rss_after_trim_kb'], ' MiB')}"
         if "rss_after_trim_kb" in r else ""))
    ss = r.get("samples", [])
    if ss:
        p("- every 5 s (s: RSS MiB / connections / sessions / 1-min load): " + "; ".join(
            f"{s['t']:.0f}: {(s['rss_kb'] or 0) / 1024:.0f} / {s['conns']} / {s['sessions']} / {s['load1']:.1f}" for s in ss[::5]))
    p(f"- connections after warm-up {((sb.get('connections') or {}).get('total'))}, at the end {((sa.get('connections') or {}).get('total'))}; "
      f"sessions {sb.get('sessions')} → {sa.get('sessions')}; slow-consumer disconnects "
      f"{(sb.get('drops') or {}).get('slowConsumerDisconnects')} → {(sa.get('drops') or {}).get('slowConsumerDisconnects')}")
    p(f"- log: {r.get('log_lines')} lines {r.get('log_levels')}; warnings: {r.get('log_warnings')}")
    lc = r.get("log_client_ids") or {}
    if lc.get("lines"):
        p(f"- clientIds in the server log: {lc['lines']} line(s) hold one of the {lc['known']} clientIds the harness was given, e.g. {lc['examples'][:2]}")
    if r.get("log_notable"):
        p(f"- notable log lines: {r['log_notable'][:5]}")
    d_closed = sum(row[3] for row in rows if row[0] == "d" and row[2].startswith("closed by the server"))
    if d_closed:
        lim_b, lim_a = sb.get("limits") or {}, sa.get("limits") or {}
        delta = lambda k: (lim_a.get(k) or 0) - (lim_b.get(k) or 0)
        scd = ((sa.get("drops") or {}).get("slowConsumerDisconnects") or 0) - ((sb.get("drops") or {}).get("slowConsumerDisconnects") or 0)
        p(f"- never-reading connections the server closed: {d_closed}; over the same time `outbound_bytes` {delta('outbound_bytes')}, "
          f"`write_stall` {delta('write_stall')}, slow-consumer disconnects {scd}")
    p("")
    p("`/v1/stats` `limits`, after warm-up → at the end:\n")
    p("| limit | before | after |")
    p("|---|---|---|")
    for k in sorted(set((sb.get("limits") or {})) | set((sa.get("limits") or {}))):
        p(f"| `{k}` | {(sb.get('limits') or {}).get(k)} | {(sa.get('limits') or {}).get(k)} |")
    p("")
    p("## Abuse outcomes\n")
    p("`ok`: refused or closed as documented; `BAD`: not as documented (accepted, or another code); "
      "`known`: accepted, a known limitation reported, not a soak failure; `info`: not concluded in the window.\n")
    p("| kind (attempts) | case | outcome | count | verdict |")
    p("|---|---|---|---|---|")
    attempts = abuse.get("attempts") or {}
    for row in sorted(rows, key=lambda x: (list(KIND_NAMES).index(x[0]) if x[0] in KIND_NAMES else 99, x[1], x[2])):
        k, case, outcome, n, verdict = row
        p(f"| {KIND_NAMES.get(k, k)} ({attempts.get(k, '?')}) | {case} | {outcome.replace('|', '/')} | {n} | {verdict} |")
    if abuse.get("notes"):
        p("\nNotes:\n")
        notes = abuse["notes"]
        shown = [n for n in notes if not n.startswith(("d:", "f:"))] + [n for n in notes if n.startswith("d:")][:6] + [n for n in notes if n.startswith("f:")][:3]
        for n in shown:
            p(f"- {n}")
    if not abuse:
        p("(no abuse result: the abuse process failed; see its .err file)")
    all_ok = all(c[1] for c in crit)
    p(f"\n**{'PASS' if all_ok else 'FAIL'}**")
    print("\n".join(out))
    return all_ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--herald", default=".build/release/herald", help="the herald binary")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--rate", type=float, default=200, help="messages/s published, over 10 channels")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--admin-port", type=int, default=0)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--only", default="", help="abuse kinds to run, e.g. 'a,c' or 'd1,d2' (default: all)")
    ap.add_argument("--skip", default="", help="abuse kinds or never-read cases (d1…d5) to leave out")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--auth", action="store_true",
                    help="require tokens (a random HS256 secret), with every channel open to anonymous sessions: "
                         "sessions are then bound to their connection, and (g) expects stolen clientIds refused")
    ap.add_argument("--malloc-trim-probe", action="store_true",
                    help="at the end, call malloc_trim(0) in herald through gdb and report RSS again (diagnostic)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for herald, e.g. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536")
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--role-io", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role:
        with open(args.role_io + ".in") as f:
            cfg = json.load(f)
        if args.role == "publisher":
            result = publisher_role(cfg)
        elif args.role == "subscribers":
            result = asyncio.run(subscribers_role(cfg))
        else:
            # The abusers stand for other machines: on this one they yield the CPU to the broker
            # and to the well-behaved clients rather than compete with them.
            os.nice(10)
            result = asyncio.run(abuse_role(cfg))
        result["cpu_s"] = time.process_time()
        result["client_ids"] = sorted(CLIENT_IDS)
        with open(args.role_io, "w") as f:
            json.dump(result, f)
        return 0
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    args.skip = [k.strip() for k in args.skip.split(",") if k.strip()]
    if args.warmup + args.settle + 10 > args.duration:
        ap.error("--duration must be at least --warmup + --settle + 10")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
