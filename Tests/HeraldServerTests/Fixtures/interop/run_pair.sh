#!/bin/sh
# Manual driver for the interop clients: plays the coordinator role (the Swift
# test does the same thing) for one pair of clients against a running server.
#
# usage: run_pair.sh URL CLIENT_A:TRANSPORT CLIENT_B:TRANSPORT [COUNT]
#   URL        e.g. http://127.0.0.1:19031/bayeux (loopback only)
#   CLIENT     faye | aiocometd
#   TRANSPORT  websocket | long-polling   (ws / lp accepted)
#   COUNT      messages per client (default 20)
# env: RUBY (default ruby), PYTHON (default python3)
# Exit status 0 and a final "PASS" line when every check holds, else 1 / "FAIL".
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
export HERE
exec "${PYTHON:-python3}" - "$@" <<'PYEOF'
import json, os, secrets, subprocess, sys, threading, time, queue

def usage():
    sys.stderr.write("usage: run_pair.sh URL CLIENT_A:TRANSPORT CLIENT_B:TRANSPORT [COUNT]\n")
    sys.exit(2)

args = sys.argv[1:]
if len(args) not in (3, 4):
    usage()
url = args[0]
count = int(args[3]) if len(args) == 4 else 20
here = os.environ["HERE"]
ALIASES = {"ws": "websocket", "websocket": "websocket", "lp": "long-polling",
           "long-polling": "long-polling"}

def command(spec, name, peer, prefix):
    client, _, transport = spec.partition(":")
    if transport not in ALIASES:
        usage()
    if client == "faye":
        base = [os.environ.get("RUBY", "ruby"), os.path.join(here, "faye_client.rb")]
    elif client == "aiocometd":
        base = [os.environ.get("PYTHON", "python3"), os.path.join(here, "aiocometd_client.py")]
    else:
        usage()
    return base + ["--url", url, "--name", name, "--transport", ALIASES[transport],
                   "--prefix", prefix, "--peer", peer, "--count", str(count)]

prefix = "/interop/" + secrets.token_hex(6)
STEP_TIMEOUT = 70.0
failures = []

class Child:
    def __init__(self, name, peer, spec):
        self.name, self.spec = name, spec
        self.cmd = command(spec, name, peer, prefix)
        self.lines = queue.Queue()
        self.stderr = []
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                     errors="backslashreplace")
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            print("  [%s %s] %s" % (self.name, self.spec, line), flush=True)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def expect(self, word, deadline):
        """Next stdout line must start with `word`; returns the rest."""
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError("%s: timed out waiting for %s" % (self.name, word))
        if line is None:
            raise RuntimeError("%s: exited (rc=%s) while waiting for %s"
                               % (self.name, self.proc.wait(), word))
        if line.startswith("ERROR"):
            raise RuntimeError("%s: %s (while waiting for %s)" % (self.name, line, word))
        if line != word and not line.startswith(word + " "):
            raise RuntimeError("%s: expected %s, got %r" % (self.name, word, line))
        return line[len(word):].strip()

    def send(self, word):
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

def check_result(me, peer, res):
    where = "%s RESULT" % me
    for sender in (me, peer):
        got = res.get("received", {}).get(sender)
        if got != list(range(count)):
            failures.append("%s: from %s expected seq 0..%d in order, got %s"
                            % (where, sender, count - 1, got))
    if res.get("exact") != [peer]:
        failures.append("%s: exact expected [%s], got %s" % (where, peer, res.get("exact")))
    if sorted(res.get("top", [])) != sorted([me, peer]):
        failures.append("%s: top expected both, got %s" % (where, res.get("top")))
    if res.get("data_ok") is not True:
        failures.append("%s: data_ok is %s" % (where, res.get("data_ok")))
    if res.get("errors"):
        failures.append("%s: errors %s" % (where, res.get("errors")))

print("run_pair: url=%s prefix=%s count=%d a=%s b=%s" % (url, prefix, count, args[1], args[2]),
      flush=True)
children = []
try:
    children = [Child("a", "b", args[1]), Child("b", "a", args[2])]
    deadline = time.monotonic() + STEP_TIMEOUT
    for c in children:
        c.expect("READY", deadline)
    for c in children:
        c.send("GO")
    results = {}
    for c in children:
        results[c.name] = json.loads(c.expect("RESULT", deadline))
    for c in children:
        c.expect("UNSUBSCRIBED", deadline)
    check_result("a", "b", results["a"])
    check_result("b", "a", results["b"])
    for c in children:
        c.send("GO2")
    for c in children:
        after = json.loads(c.expect("AFTER", deadline))
        if after.get("received_after_unsubscribe") != 0:
            failures.append("%s: received after unsubscribe: %s" % (c.name, after))
    for c in children:
        c.expect("DONE", deadline)
    for c in children:
        rc = c.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        if rc != 0:
            failures.append("%s: exit code %s" % (c.name, rc))
except Exception as exc:                               # noqa: BLE001
    failures.append(str(exc))
finally:
    for c in children:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()

if failures:
    for c in children:
        tail = c.stderr[-15:]
        if tail:
            print("--- stderr of %s (%s), last %d lines:" % (c.name, c.spec, len(tail)))
            print("\n".join(tail))
    for f in failures:
        print("FAIL: " + f)
    print("FAIL")
    sys.exit(1)
print("PASS")
PYEOF
