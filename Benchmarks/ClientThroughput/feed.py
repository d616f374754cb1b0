#!/usr/bin/env python3
"""The feed for compare.sh: publishes {"s":"AAPL","px":189.25,"n":1} to one channel as fast as
the server takes it, with as little client work per message as possible, so that it outruns
every subscriber client being measured.

Bayeux over a raw WebSocket (no client library): one handshake, one connect, then the same
pre-built, pre-masked text frame holding --batch publish messages is written again and again
(TCP back-pressure is the only flow control). A second thread reads and discards the replies,
counting the publish acknowledgements. Ends after --seconds, or at SIGTERM, and prints one line:

    FEED rate=<acks/s after --warmup> sent_rate=<publishes written/s> acks=<n> seconds=<s>

usage: feed.py --url ws://127.0.0.1:PORT/bayeux [--channel /bench/feed] [--seconds 10]
               [--warmup 1] [--batch 100]
"""
import argparse
import base64
import os
import re
import signal
import socket
import sys
import threading
import time

PAYLOAD = '{"s":"AAPL","px":189.25,"n":1}'
ACK = b'"successful":true'  # Herald writes its replies without blanks


def frame(text: bytes, mask: bytes) -> bytes:
    """A masked, final text frame (client frames must be masked)."""
    n = len(text)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    repeated = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(text, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
    return head + mask + masked


def read_exact(sock: socket.socket, n: int, pending: bytearray) -> bytes:
    while len(pending) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        pending += chunk
    data = bytes(pending[:n])
    del pending[:n]
    return data


def read_frame(sock: socket.socket, pending: bytearray) -> bytes:
    head = read_exact(sock, 2, pending)
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(read_exact(sock, 2, pending), "big")
    elif n == 127:
        n = int.from_bytes(read_exact(sock, 8, pending), "big")
    return read_exact(sock, n, pending)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--channel", default="/bench/feed")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    match = re.match(r"ws://([0-9.]+):(\d+)(/.*)", args.url)
    if not match:
        sys.exit("feed.py: --url must be ws://ADDRESS:PORT/PATH")
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    pending = bytearray()
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit("feed.py: the upgrade was refused")
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n")[0]:
        sys.exit(f"feed.py: upgrade refused: {head[:200]!r}")
    pending = bytearray(rest)
    mask = os.urandom(4)

    sock.sendall(frame(b'[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"h"}]', mask))
    reply = read_frame(sock, pending)
    found = re.search(rb'"clientId"\s*:\s*"([^"]+)"', reply)
    if not found:
        sys.exit(f"feed.py: handshake failed: {reply[:300]!r}")
    client_id = found.group(1).decode()
    connect = frame(('[{"channel":"/meta/connect","clientId":"%s","connectionType":"websocket",'
                     '"advice":{"timeout":0},"id":"c"}]' % client_id).encode(), mask)
    sock.sendall(connect)
    read_frame(sock, pending)  # the connect reply
    held_connect = frame(('[{"channel":"/meta/connect","clientId":"%s","connectionType":"websocket","id":"k"}]'
                          % client_id).encode(), mask)
    sock.sendall(held_connect)  # held by the server; keeps the session alive

    batch = ",".join('{"channel":"%s","clientId":"%s","data":%s,"id":"%d"}' % (args.channel, client_id, PAYLOAD, i)
                     for i in range(args.batch))
    publishes = frame(("[" + batch + "]").encode(), mask)

    acks = [0]
    stop = threading.Event()

    def reader() -> None:
        carry = bytes(pending)
        while not stop.is_set():
            try:
                chunk = sock.recv(1 << 20)
            except OSError:
                return
            if not chunk:
                return
            # Keep a short tail so an acknowledgement split between reads is counted once.
            data = carry + chunk
            acks[0] += data.count(ACK) - carry.count(ACK)
            carry = data[-len(ACK):]

    stopping = [False]
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__(0, True))
    sock.settimeout(None)
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    start = time.monotonic()
    end = start + args.seconds
    measured_from = start + args.warmup
    acks_at_warmup = None
    sent = 0
    sent_at_warmup = 0
    next_connect = start + 20
    while True:
        now = time.monotonic()
        if acks_at_warmup is None and now >= measured_from:
            acks_at_warmup, sent_at_warmup = acks[0], sent
        if now >= end or stopping[0]:
            break
        if now >= next_connect:
            sock.sendall(held_connect)
            next_connect = now + 20
        sock.sendall(publishes)
        sent += args.batch
    elapsed = time.monotonic() - measured_from
    if acks_at_warmup is None:
        acks_at_warmup, sent_at_warmup = 0, 0
    counted = acks[0] - acks_at_warmup
    print("FEED rate=%d sent_rate=%d acks=%d seconds=%.2f batch=%d" % (
        counted / elapsed, (sent - sent_at_warmup) / elapsed, counted, elapsed, args.batch), flush=True)
    stop.set()
    os._exit(0)


if __name__ == "__main__":
    main()
