"""Helper of bench_live.py: `python app.py` with timing probes on the live emit path.

    DATABASE_URL=... UCC_PORT=... python bench/bench_live_server.py

Builds and serves the app exactly as app.py's main() does (create_app, init_db, seed_demo, the
background jobs, socketio.run on Werkzeug's threaded server), after wrapping, in this process only,
the steps an intake's live event goes through. Each probe appends (seq, time.time(), ...) to a list:

  after_commit   CaseService._after_commit entered: the intake transaction has just committed
  listener       LiveBus.committed called (after the 201's case was shaped)
  emitter        LiveBus.emit_seqs entered by the emitter thread (woken by the queue) / left
  emit           the bus's emit to the rooms (the manager's emit) entered / left
  admit          the delivery gate's admit (per-connection bookkeeping under its lock)
  encode         socketio Packet.encode (JSON of the payload, once per emit)
  fanout         socketio.Manager.emit (encode + one queue.put per connection) entered / left
  publish        the Redis publish (with REDIS_URL)
  send           each connection's writer thread: SimpleWebSocketWSGI.send (wsproto framing and the
                 socket write) entered / left, with the writer's thread id

GET /__bench/live_probe returns the lists and empties them (it is added to the page guard's open
paths, in this process). Nothing in the project is changed.

Experiment knobs (environment): UCC_BENCH_SWITCH_INTERVAL=SECONDS sets sys.setswitchinterval;
UCC_BENCH_LIMITER_HEADERS=0 turns off Flask-Limiter's X-RateLimit-* headers (with REDIS_URL each
one costs a Redis round trip after the view, i.e. after the commit).
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE: dict[str, list] = {k: [] for k in ("after_commit", "listener", "emitter", "emit", "admit", "encode",
                                          "fanout", "publish", "send")}


def _seq_of_message(message) -> int | None:
    """The top-level seq of an encoded case_event packet ('42/live,["case_event",{...,"seq":N,...}]').
    The app's JSON provider sorts keys: "seq" comes after "case" and the case has no "seq" key."""
    if not isinstance(message, str):
        return None
    i = message.rfind('"seq":')
    if i < 0:
        return None
    j = i + 6
    while j < len(message) and message[j] == " ":
        j += 1
    k = j
    while k < len(message) and message[k].isdigit():
        k += 1
    return int(message[j:k]) if k > j else None


def install(server) -> None:
    import socketio
    from engineio.async_drivers import _websocket_wsgi
    from flask import jsonify

    now = time.time
    services = server.extensions["ucc"]
    live = server.extensions["ucc_live"]
    cases = services.cases

    original_after_commit = cases._after_commit

    def after_commit(job):
        t = now()
        PROBE["after_commit"].append((list(job.seqs or []), t))
        return original_after_commit(job)

    cases._after_commit = after_commit

    original_committed = live.committed

    def committed(seqs):
        PROBE["listener"].append((list(seqs), now()))
        return original_committed(seqs)

    cases.listeners[cases.listeners.index(original_committed)] = committed
    live.committed = committed

    original_emit_seqs = live.emit_seqs

    def emit_seqs(seqs):
        t = now()
        try:
            return original_emit_seqs(seqs)
        finally:
            PROBE["emitter"].append((list(seqs), t, now(), threading.get_ident()))

    live.emit_seqs = emit_seqs

    manager = live.manager
    original_manager_emit = manager.emit

    def manager_emit(event, data, *args, **kwargs):
        t = now()
        try:
            return original_manager_emit(event, data, *args, **kwargs)
        finally:
            if isinstance(data, dict) and "seq" in data:
                PROBE["emit"].append((data["seq"], t, now()))

    manager.emit = manager_emit

    gate = live.gate
    original_admit = gate.admit

    def admit(seq, payload, sids):
        t = now()
        targets = original_admit(seq, payload, sids)
        PROBE["admit"].append((seq, t, now(), len(targets)))
        return targets

    gate.admit = admit

    if hasattr(manager, "_publish"):
        original_publish = manager._publish

        def publish(data):
            t = now()
            try:
                return original_publish(data)
            finally:
                payload = (data.get("data") or [None])[0] if isinstance(data, dict) else None
                seq = payload.get("seq") if isinstance(payload, dict) else None
                PROBE["publish"].append((seq, t, now()))

        manager._publish = publish

    packet_class = live.socketio.server.packet_class
    original_encode = packet_class.encode

    def encode(self):
        t = now()
        out = original_encode(self)
        data = self.data
        if isinstance(data, list) and len(data) == 2 and data[0] == "case_event" and isinstance(data[1], dict):
            PROBE["encode"].append((data[1].get("seq"), t, now(), len(out) if isinstance(out, str) else 0))
        return out

    packet_class.encode = encode

    original_fanout = socketio.Manager.emit

    def fanout(self, event, data, namespace, room=None, **kwargs):
        t = now()
        try:
            return original_fanout(self, event, data, namespace, room=room, **kwargs)
        finally:
            if event == "case_event" and isinstance(data, dict) and "seq" in data:
                n = len(room) if isinstance(room, list) else 1
                PROBE["fanout"].append((data["seq"], t, now(), n))

    socketio.Manager.emit = fanout

    original_send = _websocket_wsgi.SimpleWebSocketWSGI.send

    def send(self, message):
        t = now()
        try:
            return original_send(self, message)
        finally:
            seq = _seq_of_message(message) if isinstance(message, str) and '"case_event"' in message[:40] else None
            if seq is not None:
                PROBE["send"].append((seq, t, now(), threading.get_ident()))

    _websocket_wsgi.SimpleWebSocketWSGI.send = send

    def probe_view():
        out = {}
        for key, items in PROBE.items():
            n = len(items)
            out[key] = items[:n]
            del items[:n]
        out["switch_interval"] = sys.getswitchinterval()
        out["threads"] = threading.active_count()
        return jsonify(out)

    server.add_url_rule("/__bench/live_probe", "bench_live_probe", probe_view)
    # The page guard (auth._guard) sends every path it does not know as open to /login; the probe
    # is read by bench_live.py without a session, so it is opened here, in this process only.
    import auth

    auth.OPEN_PATHS = (*auth.OPEN_PATHS, "/__bench/live_probe")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import os

    if os.environ.get("UCC_BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["UCC_BENCH_SWITCH_INTERVAL"]))
    from app import create_app

    server = create_app()
    install(server)
    if os.environ.get("UCC_BENCH_LIMITER_HEADERS") == "0":  # experiment: no X-RateLimit-* headers
        for limiter in server.extensions.get("limiter", ()):
            limiter._headers_enabled = False
    services = server.extensions["ucc"]
    from data.schema import init_db
    from demo.seed import seed_demo

    init_db(services.db)
    seed_demo(services.db, progress=lambda m: logging.getLogger("ucc").info(m))
    from scheduler import start_background_jobs

    start_background_jobs(services)
    s = services.settings
    from live import run_server

    run_server(server, host=s.host, port=s.port)


if __name__ == "__main__":
    main()
