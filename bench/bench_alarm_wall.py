"""Benchmark: alarm → wall latency, idle and under a sustained telemetry load over MQTT, in the same run.

The app runs as the hall runs it (`python app.py`, the embedded default, its MQTT consumer on a private Mosquitto),
over the demo city and its fleet (no cases' history, no simulators). A wall client holds the live stream (the real
python-socketio client, WebSocket, a wall token). Each probe publishes one lifted cover over MQTT (two readings,
tilt past 15° for 3 s: the cover_tilt rule, critical) and times publish → `alarm_event` of that device at the wall
client. First idle (the baseline), then while a flood of normal readings from other covers runs at --rate msg/s.
Printed: p50/p95/max of both, the ratio, the flood's published rate and what the server stored meanwhile.

    python bench/bench_alarm_wall.py [--rate 5000] [--seconds 40] [--probes 40] [--url DATABASE_URL]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import socketio  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bench.bench_telemetry import free_port, start_broker  # noqa: E402

TOPIC = "ucc/devices/{}/telemetry"


def build(url: str) -> tuple[list[str], str, str]:
    """The demo city and fleet in `url`; (the covers' ids, a wall token, an admin token)."""
    from sqlalchemy import select

    from data.db import Database
    from data.models import Device
    from data.schema import init_db
    from data.tokens import create_token
    from demo.seed import seed_demo

    db = Database(url)
    init_db(db)
    seed_demo(db, progress=lambda _m: None)
    with db.session() as s:
        # not those in maintenance: their test values raise nothing (docs/devices.md)
        covers = list(s.scalars(select(Device.id).where(Device.type == "manhole_cover", Device.status != "maintenance")
                                .order_by(Device.id)))
        wall, admin = create_token(s, "wall", label="bench"), create_token(s, "admin", label="bench")
    db.dispose()
    return covers, wall, admin


def start_app(url: str, mqtt_port: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, UCC_MQTT_URL=f"mqtt://127.0.0.1:{mqtt_port}", UCC_PORT=str(port),
               UCC_HOST="127.0.0.1", UCC_SIMULATE="0", UCC_SEED_HISTORY="0", UCC_SECRET_KEY="bench",
               UCC_MQTT_CLIENT_ID="bench-ucc")
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the app did not start: see {log}")


def stored(base: str, admin: str) -> int:
    req = urllib.request.Request(base + "/api/v1/telemetry/stats", headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(json.load(r).get("stored", 0))


class Wall:
    """The wall's live stream: when each device's first active alarm arrived (time.time())."""

    def __init__(self, base: str, token: str):
        self.heard: dict[str, float] = {}
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("alarm_event", self._alarm, namespace="/live")
        self.sio.connect(base, auth={"token": token}, namespaces=["/live"], transports=["websocket"])
        self.sio.call("resync", {"since": None}, namespace="/live", timeout=30)

    def _alarm(self, msg):
        a = (msg or {}).get("alarm") or {}
        if a.get("status") == "active" and a.get("device") not in self.heard:
            self.heard[a["device"]] = time.time()

    def close(self):
        self.sio.disconnect()


class Publisher:
    def __init__(self, port: int, client_id: str):
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.max_inflight_messages_set(1000)
        self.window = threading.Semaphore(2000)
        self.acked = 0
        self.c.on_publish = self._acked
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _acked(self, *_):
        self.acked += 1
        self.window.release()

    def send(self, device: str, payload) -> None:
        self.window.acquire()
        self.c.publish(TOPIC.format(device), json.dumps(payload, separators=(",", ":")), qos=1)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def probe(pub: Publisher, wall: Wall, device: str, timeout: float = 20.0) -> float | None:
    now = int(time.time() * 1000)
    sent = time.time()
    pub.send(device, [{"ts": now - 3000, "values": {"tilt_deg": 33.0}}, {"ts": now, "values": {"tilt_deg": 36.0}}])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if device in wall.heard:
            return wall.heard[device] - sent
        time.sleep(0.002)
    return None


def flood(port: int, devices: list[str], rate: int, stop: threading.Event, sent: list[int]) -> None:
    """Normal readings from `devices` at `rate` messages a second, paced in 20 ms ticks."""
    pub = Publisher(port, "bench-flood")
    ts = {d: int(time.time() * 1000) - 3_600_000 for d in devices}  # each device's own increasing clock
    k, t0 = 0, time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - t0) * rate)
        while sent[0] < due and not stop.is_set():
            d = devices[k % len(devices)]
            k += 1
            ts[d] += 1000
            pub.send(d, {"ts": ts[d], "values": {"tilt_deg": 1.0 + (k % 7) * 0.1, "battery_pct": 80.0}})
            sent[0] += 1
        time.sleep(0.02)
    pub.close()


def summary(name: str, lat: list[float]) -> str:
    if not lat:
        return f"{name}: no alarm arrived"
    q = statistics.quantiles(lat, n=20, method="inclusive") if len(lat) >= 2 else [lat[0]] * 19
    return (f"{name}: n={len(lat)} p50 {statistics.median(lat) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms, "
            f"max {max(lat) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=5000, help="flood messages a second")
    ap.add_argument("--seconds", type=float, default=40.0, help="how long the flood runs")
    ap.add_argument("--probes", type=int, default=40, help="lifted covers per phase")
    ap.add_argument("--flood-devices", type=int, default=2000)
    ap.add_argument("--url", help="a database URL (default: a new SQLite file)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_alarm_wall_"))
    url = args.url or f"sqlite:///{tmp / 'app.db'}"
    t = time.perf_counter()
    covers, wall_token, admin = build(url)
    print(f"demo city and fleet in {time.perf_counter() - t:.0f} s: {len(covers):,} covers ({url.split(':')[0]})")
    need = args.flood_devices + 2 * args.probes
    if len(covers) < need:
        raise SystemExit(f"{len(covers)} covers, {need} needed")
    flood_devices, probes = covers[:args.flood_devices], covers[args.flood_devices:need]
    broker, port = start_broker(tmp)
    app, base = start_app(url, port, tmp / "app.log")
    try:
        wall = Wall(base, wall_token)
        pub = Publisher(port, "bench-probe")
        idle = [x for x in (probe(pub, wall, d) for d in probes[:args.probes]) if x is not None]
        print(summary("idle", idle))
        stop, sent = threading.Event(), [0]
        before = stored(base, admin)
        t0 = time.perf_counter()
        flooder = threading.Thread(target=flood, args=(port, flood_devices, args.rate, stop, sent), daemon=True)
        flooder.start()
        time.sleep(min(5.0, args.seconds / 4))  # the load settles first
        loaded, lost = [], 0
        gap = max(0.2, (args.seconds - 5.0) / args.probes)
        for d in probes[args.probes:]:
            x = probe(pub, wall, d)
            if x is None:
                lost += 1
            else:
                loaded.append(x)
            if time.perf_counter() - t0 >= args.seconds:
                break
            time.sleep(gap)
        stop.set()
        flooder.join()
        took = time.perf_counter() - t0
        time.sleep(3.0)
        after = stored(base, admin)
        print(f"flood: {sent[0]:,} messages published in {took:.1f} s ({sent[0] / took:,.0f} msg/s asked {args.rate:,}); "
              f"the server stored {after - before:,} readings meanwhile and in the 3 s after "
              f"({(after - before) / (took + 3.0):,.0f} /s)")
        print(summary(f"under load ({args.rate:,} msg/s)", loaded) + (f"; {lost} not heard within 20 s" if lost else ""))
        if idle and loaded:
            p95 = lambda v: statistics.quantiles(v, n=20, method="inclusive")[18]  # noqa: E731
            print(f"ratio under load / idle: p50 {statistics.median(loaded) / statistics.median(idle):.1f}x, "
                  f"p95 {p95(loaded) / p95(idle):.1f}x; target p95 <= 1000 ms: "
                  f"{'met' if p95(loaded) <= 1.0 else 'MISSED'}")
        pub.close()
        wall.close()
    finally:
        app.terminate()
        app.wait(30)
        broker.terminate()


if __name__ == "__main__":
    main()
