#!/usr/bin/env python3
"""Opens N Bayeux WebSocket subscribers on /bench/** that never read after subscribing.

usage: stuck-subscribers.py PORT N SECONDS
Loopback only. Used with wsbench's fanout scenario to check that subscribers that never read
do not slow the others down or make the server's memory grow (see README, Performance).
"""
import base64, json, os, socket, sys, time

port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])

def frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    n = len(payload)
    header += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

def read_json(sock):
    data = b""
    while True:
        data += sock.recv(65536)
        if len(data) >= 2:
            n = data[1] & 0x7F
            start = 2 if n < 126 else 4
            if n == 126 and len(data) >= 4:
                n = int.from_bytes(data[2:4], "big")
            if len(data) >= start + n:
                return json.loads(data[start:start + n])

socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(4096)
    s.sendall(frame(json.dumps([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"], "id": "1"}])))
    cid = read_json(s)[0]["clientId"]
    s.sendall(frame(json.dumps([{"channel": "/meta/connect", "clientId": cid, "connectionType": "websocket", "id": "2", "advice": {"timeout": 0}},
                                {"channel": "/meta/subscribe", "clientId": cid, "subscription": "/bench/**", "id": "3"}])))
    socks.append(s)
print(f"{count} stuck subscribers ready", flush=True)
time.sleep(seconds)   # never read again
