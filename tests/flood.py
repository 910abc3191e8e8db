"""A connection flood from one address, and a normal client from another, for tests/test_front.py and bench/bench_front.py.

    python tests/flood.py --port 8050 --token TOKEN [--websockets 200] [--slow 2500] [--seconds 30]

The flood (this script, in a process of its own so it never steals the measuring client's GIL): one
event loop (selectors/epoll) holding, from --source (127.0.0.1),
- WEBSOCKETS Socket.IO clients on namespace /live over raw WebSockets (the token in the namespace
  CONNECT packet, engine.io pings answered), kept open;
- SLOW clients, two thirds of them dribbling one header byte every few seconds (never ending the
  request head), one third sending the head of a sign-in POST and never its body.
A connection the server closes or answers is opened again a second later: the flood comes in waves
for as long as it runs. It prints `ready` once everything was opened, then one JSON line of counts.

`normal_client()` is the user who must still be served: GET /healthz and an authenticated
GET /api/v1/events?per_page=20, alternately, on a fixed schedule (each on a new connection, from
--source 127.0.0.2 by default), timed from the scheduled start.
"""
from __future__ import annotations

import argparse
import base64
import errno
import http.client
import json
import os
import resource
import selectors
import socket
import statistics
import struct
import sys
import threading
import time
from collections import Counter

NS = "/live"


# ---- the normal client ---------------------------------------------------------------------------
def normal_client(host: str, port: int, token: str, seconds: float, rate: float = 5.0,
                  source: str = "127.0.0.2", timeout: float = 10.0) -> dict:
    """Requests at `rate`/s for `seconds`, each started on schedule in its own thread (a stalled one
    does not delay the next). Returns the latencies of the answered ones and the failures."""
    results: list[tuple[str, float | None, str]] = []
    lock = threading.Lock()

    def one(path: str, scheduled: float) -> None:
        headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
        try:
            conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            took = time.monotonic() - scheduled
            outcome = (path, took, "ok") if resp.status == 200 else (path, None, f"HTTP {resp.status}")
        except OSError as exc:
            outcome = (path, None, type(exc).__name__)
        with lock:
            results.append(outcome)

    threads = []
    start = time.monotonic()
    n = int(seconds * rate)
    for i in range(n):
        scheduled = start + i / rate
        time.sleep(max(0.0, scheduled - time.monotonic()))
        path = "/healthz" if i % 2 == 0 else "/api/v1/events?per_page=20"
        t = threading.Thread(target=one, args=(path, scheduled), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout + 1)
    latencies = sorted(took for _p, took, what in results if what == "ok")
    failures = Counter(what for _p, _t, what in results if what != "ok")
    failures["no answer"] = n - len(results)
    return {
        "requests": n, "answered": len(latencies), "failures": sum(failures.values()),
        "failure_kinds": {k: v for k, v in failures.items() if v},
        "p50_ms": _ms(_quantile(latencies, 0.50)), "p95_ms": _ms(_quantile(latencies, 0.95)),
        "max_ms": _ms(latencies[-1] if latencies else None),
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def describe(normal: dict) -> str:
    return (f"{normal['answered']}/{normal['requests']} answered, p50 {normal['p50_ms']} ms, "
            f"p95 {normal['p95_ms']} ms, max {normal['max_ms']} ms, failures {normal['failures']} "
            f"{normal['failure_kinds'] or ''}").rstrip()


# ---- the flood ----------------------------------------------------------------------------------------
class _Conn:
    __slots__ = ("kind", "sock", "state", "buf", "next_byte")

    def __init__(self, kind: str, sock: socket.socket):
        self.kind, self.sock, self.state, self.buf, self.next_byte = kind, sock, "connecting", b"", 0.0


def _ws_frame(text: str, opcode: int = 0x1) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws_frames(buf: bytes):
    """(opcode, payload) of each whole server frame (unmasked) in buf, and the rest."""
    frames = []
    while len(buf) >= 2:
        opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < at + n:
            break
        frames.append((opcode, buf[at:at + n]))
        buf = buf[at + n:]
    return frames, buf


class Flood:
    REOPEN_AFTER = 1.0  # seconds before a closed or refused connection is opened again
    DRIBBLE_EVERY = 3.0  # seconds between two header bytes of a slow client

    def __init__(self, host: str, port: int, token: str, websockets: int, slow: int, source: str = "127.0.0.1"):
        self.host, self.port, self.token, self.source = host, port, token, source
        self.want = {"ws": websockets, "head": slow - slow // 3, "body": slow // 3}
        self.sel = selectors.DefaultSelector()
        self.conns: set[_Conn] = set()
        self.reopen_at: list[tuple[float, str]] = []
        self.stats: Counter = Counter()
        self.peak_open = 0
        self.ws_live_peak = 0

    # -- opening ---------------------------------------------------------------------------------
    def open(self, kind: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((self.source, 0))
            err = sock.connect_ex((self.host, self.port))
        except OSError as exc:
            err = exc.errno
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.stats[f"{kind}_connect_failed"] += 1
            self.reopen_at.append((time.monotonic() + self.REOPEN_AFTER, kind))
            return
        conn = _Conn(kind, sock)
        self.conns.add(conn)
        self.sel.register(sock, selectors.EVENT_WRITE, conn)
        self.stats[f"{kind}_opened"] += 1

    def _connected(self, conn: _Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._close(conn, "refused")
            return
        host = f"{self.host}:{self.port}"
        if conn.kind == "ws":
            key = base64.b64encode(os.urandom(16)).decode()
            first = (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
                     f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n").encode()
            conn.state = "upgrading"
        elif conn.kind == "head":
            first = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode()
            conn.state = "dribbling"
            conn.next_byte = time.monotonic() + self.DRIBBLE_EVERY
        else:
            # The sign-in form: the app reads its body (CSRF check) before it can answer anything.
            first = (f"POST /login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     "Content-Length: 4096\r\n\r\n").encode()
            conn.state = "waiting"
        try:
            conn.sock.send(first)
        except OSError:
            self._close(conn, "reset")
            return
        self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
        self.stats[f"{conn.kind}_connected"] += 1

    def _close(self, conn: _Conn, why: str) -> None:
        self.stats[f"{conn.kind}_{why}"] += 1
        if conn.state == "live":
            self.stats["ws_live"] -= 1
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        self.conns.discard(conn)
        self.reopen_at.append((time.monotonic() + self.REOPEN_AFTER, conn.kind))

    # -- reading ---------------------------------------------------------------------------------
    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, "reset")
            return
        if not data:
            self._close(conn, "closed_by_server")
            return
        conn.buf += data
        if conn.kind != "ws":
            # Any answer to a slow client is the server giving up on it (408, 429, 400…).
            status = conn.buf[9:12].decode(errors="replace") if conn.buf.startswith(b"HTTP/") else "?"
            self._close(conn, f"answered_{status}")
            return
        if conn.state == "upgrading":
            end = conn.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, conn.buf = conn.buf[:end], conn.buf[end + 4:]
            if not head.startswith(b"HTTP/1.1 101"):
                self._close(conn, f"answered_{head[9:12].decode(errors='replace')}")
                return
            conn.state = "open"
        frames, conn.buf = _ws_frames(conn.buf)
        for opcode, payload in frames:
            if opcode == 0x8:
                self._close(conn, "closed_by_server")
                return
            if opcode == 0x9:
                self._send(conn, _ws_frame(payload.decode(errors="replace"), 0xA))
                continue
            text = payload.decode(errors="replace")
            if text.startswith("0"):  # engine.io OPEN: connect to the namespace with the token
                self._send(conn, _ws_frame(f"40{NS}," + json.dumps({"token": self.token})))
            elif text.startswith(f"40{NS},"):
                conn.state = "live"
                self.stats["ws_live"] += 1
                self.stats["ws_namespace_connected"] += 1
                self.ws_live_peak = max(self.ws_live_peak, self.stats["ws_live"])
            elif text.startswith(f"44{NS},"):
                self._close(conn, "namespace_refused")
                return
            elif text == "2":  # engine.io PING
                self._send(conn, _ws_frame("3"))

    def _send(self, conn: _Conn, data: bytes) -> None:
        try:
            conn.sock.send(data)
        except OSError:
            self._close(conn, "reset")

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, seconds: float, ready=lambda: None) -> dict:
        for _ in range(self.want["ws"]):
            self.open("ws")
        slow = ["head"] * self.want["head"] + ["body"] * self.want["body"]
        slow = slow[::2] + slow[1::2]  # interleaved
        ramp_until = time.monotonic() + 3.0
        while time.monotonic() < ramp_until and (slow or self.stats["ws_live"] < self.want["ws"]):
            for kind in slow[:250]:
                self.open(kind)
            del slow[:250]
            self._poll(0.1)
        for kind in slow:
            self.open(kind)
        ready()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._poll(0.2)
        counts = dict(self.stats)
        counts["ws_live_at_end"] = self.stats["ws_live"]
        counts["ws_live_peak"] = self.ws_live_peak
        counts["peak_open"] = self.peak_open
        for conn in list(self.conns):
            conn.sock.close()
        return counts

    def _poll(self, timeout: float) -> None:
        for key, mask in self.sel.select(timeout):
            conn = key.data
            if conn not in self.conns:
                continue
            if conn.state == "connecting":
                self._connected(conn)
            elif mask & selectors.EVENT_READ:
                self._readable(conn)
        now = time.monotonic()
        for conn in list(self.conns):
            if conn.state == "dribbling" and now >= conn.next_byte:
                conn.next_byte = now + self.DRIBBLE_EVERY
                self._send(conn, b"a")
        due = [kind for at, kind in self.reopen_at if at <= now]
        self.reopen_at = [(at, kind) for at, kind in self.reopen_at if at > now]
        for kind in due:
            self.open(kind)
        self.peak_open = max(self.peak_open, len(self.conns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True, help="a bearer token for the WebSockets' /live namespace")
    parser.add_argument("--websockets", type=int, default=200)
    parser.add_argument("--slow", type=int, default=2500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--source", default="127.0.0.1", help="the flooder's address")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.websockets + args.slow + 1000
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))
    flood = Flood(args.host, args.port, args.token, args.websockets, args.slow, args.source)
    counts = flood.run(args.seconds, ready=lambda: print("ready", flush=True))
    print(json.dumps(counts, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
