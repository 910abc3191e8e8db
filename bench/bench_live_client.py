"""Helper of bench_live.py: the processes that play the clients.

`socket_clients` runs in a process of its own (several of them, so that the clients' own CPU work
is spread and does not queue behind one GIL): it opens its share of the real python-socketio
clients (namespace /live, WebSocket only), sends each one's `resync {"since": null}`, says it is
ready, then records every `case_event` until told to hand the records over.

Two receive times are taken per message, both with time.time() (the same host clock as the poster):
`wire`, in the engine.io read loop right after the WebSocket frame is read and decoded into an
engine.io packet (the earliest point a Python client can see it; nothing is parsed there: the raw
string is kept and parsed when the records are handed over), and `handler`, in the `case_event`
handler, which python-socketio runs in a new thread per message.

`pollers` plays the polling baseline: threads that GET /api/v1/events?per_page=N every INTERVAL
seconds, each at its own phase, recording when each poll was sent, when it came back and which case
ids it listed.
"""
from __future__ import annotations

import http.client
import json
import logging
import threading
import time

NS = "/live"
PREFIX = f"2{NS},"


def _silence() -> None:
    for name in ("socketio", "engineio", "socketio.client", "engineio.client", "websocket", "urllib3"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def socket_clients(conn, proc_no: int, urls: list[str], token: str, lean: bool = True) -> None:
    """One client process. `urls[k]` is the server client k connects to. Commands on `conn`:
    ("dump",) → ("records", wire, handler, cpu_seconds, connected); ("close",) → disconnect and exit.

    lean (the default of bench_live.py): the same python-socketio client, configured so that its own
    CPU does not starve the server on a small machine: websocket-client's pure-Python UTF-8
    validation of every text frame is skipped (`websocket_extra_options`, a documented option; the
    payloads carry Chinese text, and without the optional wsaccel package this check alone costs
    about half the client's CPU), and a case_event is dispatched by python-socketio's own
    `_handle_eio_message` right in the read loop instead of in a new thread per message (Thread
    start is the other half). A browser does neither. Measured on this machine: ~1.0 ms of client CPU
    per message stock, ~0.15 ms lean."""
    _silence()
    import socketio

    wire: list[tuple[int, float, str]] = []  # (client, time, raw packet data)
    handler: list[tuple[int, int, float]] = []  # (client, seq, time)
    clients = []
    errors: list[str] = []
    connect_s: list[float] = []

    def make(k: int, url: str):
        options = {"websocket_extra_options": {"skip_utf8_validation": True}} if lean else {}
        sio = socketio.Client(reconnection=False, **options)
        receive = sio.eio._receive_packet
        dispatch = sio._handle_eio_message
        now = time.time
        append = wire.append

        def _receive_packet(pkt, _k=k):
            data = pkt.data
            if type(data) is str and data.startswith(PREFIX):
                append((_k, now(), data))
                if lean:
                    return dispatch(data)
            return receive(pkt)

        sio.eio._receive_packet = _receive_packet

        def on_case_event(data, _k=k):
            handler.append((_k, data.get("seq"), now()))

        sio.on("case_event", on_case_event, namespace=NS)
        t = time.perf_counter()
        sio.connect(url, auth={"token": token}, namespaces=[NS], transports=["websocket"], wait_timeout=30)
        ack = sio.call("resync", {"since": None}, namespace=NS, timeout=30)
        if not (isinstance(ack, dict) and ack.get("ok")):
            raise RuntimeError(f"resync refused: {ack}")
        connect_s.append(time.perf_counter() - t)
        return sio

    for k, url in enumerate(urls):
        try:
            clients.append(make(k, url))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"client {proc_no}.{k} → {url}: {type(exc).__name__}: {exc}")
            clients.append(None)
    conn.send(("ready", sum(c is not None for c in clients), errors, connect_s))
    cpu0 = time.process_time()
    while True:
        cmd = conn.recv()
        if cmd[0] == "dump":
            taken_wire, taken_handler = wire[:], handler[:]
            del wire[:len(taken_wire)]
            del handler[:len(taken_handler)]
            parsed = []
            for k, t, data in taken_wire:
                try:
                    name, payload = json.loads(data[len(PREFIX):])[:2]
                except (ValueError, TypeError):
                    continue
                if name == "case_event":
                    parsed.append((k, payload["seq"], payload["case"]["id"], t))
            cpu = time.process_time() - cpu0
            cpu0 = time.process_time()
            connected = sum(1 for c in clients if c is not None and c.connected)
            conn.send(("records", parsed, taken_handler, cpu, connected))
        elif cmd[0] == "close":
            closers = [threading.Thread(target=c.disconnect) for c in clients if c is not None]
            for th in closers:
                th.start()
            for th in closers:
                th.join(5)
            conn.send(("closed",))
            return


def pollers(conn, port: int, token: str, n: int, interval: float, per_page: int, start_at: float,
            stop_at: float) -> None:
    """n polling clients, poller i polls at start_at + i*interval/n + k*interval until stop_at (like a
    page's setInterval, each page opened at another moment). Sends back every poll as
    (poller, t_sent, t_answered, status, bytes, [case ids])."""
    path = f"/api/v1/events?per_page={per_page}"
    headers = {"Authorization": f"Bearer {token}"}
    out: list[list] = [[] for _ in range(n)]

    def run(i: int) -> None:
        t_next = start_at + i * interval / n
        while t_next < stop_at:
            delay = t_next - time.time()
            if delay > 0:
                time.sleep(delay)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.connect()
            t0 = time.time()
            c.request("GET", path, headers=headers)
            resp = c.getresponse()
            body = resp.read()
            t1 = time.time()
            c.close()
            ids = [item["id"] for item in json.loads(body)["items"]] if resp.status == 200 else []
            out[i].append((i, t0, t1, resp.status, len(body), ids))
            t_next += interval

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    conn.send([p for part in out for p in part])
