"""Benchmark of a server's memory with a large registered fleet (100,000 devices), and its telemetry ingest with that fleet."""
from __future__ import annotations

# python bench/bench_devices_memory.py [--devices 100000] [--pg URL] [--messages 50000] [--rate 0]
#
# The parent registers the fleet through import-devices' own path (sensing.importer.import_devices, a CSV of
# `devices` rows: covers, lights, gauges, gas detectors, bridge sensors, cameras in the demo fleet's shares) into a
# fresh database, and marks it online as the demo fleet is seeded (demo/devices.py: the in-process feed reports
# the devices heard from). A child process then starts the services as a server does and prints its RSS
# (/proc/self/status VmRSS; VmHWM the peak) after each step: the interpreter with the app's modules, create_app
# (serving: the API, pages, live), the demo feed over the whole fleet (scheduler.start_device_feed's FeedRunner)
# and one of its rounds through the ingest, the offline round, the MQTT consumer. The parent then publishes
# `messages` readings over the fleet with the MQTT device simulator (sensing_mqtt.simulator, load mode: every
# device in turn) to a private mosquitto, and the child reports the ingest's rate and its RSS after it. The per-device
# figures are a step's growth over the fleet's size.
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the demo fleet's shares (demo/devices.py places ~6,000 devices in these proportions, roughly)
SHARES = (("manhole_cover", 0.45), ("street_light", 0.30), ("water_gauge", 0.08), ("gas_detector", 0.08),
          ("bridge_sensor", 0.04), ("video_ai", 0.05))
UNITS = {"manhole_cover": "U-320402-water_affairs", "water_gauge": "U-320402-water_affairs",
         "gas_detector": "U-320400-gas", "street_light": "U-320402-water_affairs",
         "bridge_sensor": "U-320402-water_affairs", "video_ai": "U-320402-water_affairs"}


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    got = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            got[key] = int(value.split()[0]) / 1024
    return got["VmRSS"], got["VmHWM"]


def write_csv(path: Path, n: int) -> None:
    import random

    rng = random.Random(100_000)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("device_id", "type", "name", "lon", "lat", "unit_code"))
        i = 0
        for code, share in SHARES:
            for _ in range(round(n * share) if code != SHARES[-1][0] else n - i):
                # inside district 320402 of the test city (tests.factories.rect_city: 119.90-119.98, 31.70-31.78)
                w.writerow((f"D{i:07d}", code, f"{code}-{i}", f"{119.902 + rng.random() * 0.036:.6f}",
                            f"{31.702 + rng.random() * 0.076:.6f}", UNITS[code]))
                i += 1


def setup(url: str, directory: Path, n: int) -> dict:
    from sqlalchemy import update

    from data import files
    from data.db import Database
    from data.models import Device
    from data.schema import init_db
    from sensing.importer import import_devices
    from tests.factories import small_world

    db = Database(url)
    init_db(db)
    cases, _clock = small_world(db, datetime.now(timezone.utc))
    path = directory / "devices.csv"
    write_csv(path, n)
    t0 = time.perf_counter()
    report = import_devices(db, cases.areas, files.device_types(), path)
    took = time.perf_counter() - t0
    now = datetime.now(timezone.utc)
    with db.session() as s:  # heard from a minute ago, as the seeded demo fleet is
        s.execute(update(Device).values(status="online", last_seen=now, last_values={}))
        s.commit()
    db.dispose()
    return {"import_s": took, "summary": report.summary()}


def serve(url: str, broker: str, expect: int, devices: int) -> None:
    """The child: the services as a server starts them, RSS after each step, one JSON line at the end."""
    steps = []

    def mark(name):
        rss, hwm = rss_mb()
        steps.append({"step": name, "rss_mb": round(rss, 1), "hwm_mb": round(hwm, 1)})

    import gc

    os.environ["DATABASE_URL"] = url
    mark("interpreter")
    from app import create_app
    from web.services import services

    mark("modules imported")
    app = create_app(serve=True)
    svc = services(app)
    gc.collect()
    mark("create_app (serving)")
    from demo.device_feed import FeedRunner

    runner = FeedRunner(svc.db, svc.telemetry, svc.cases.clock)
    gc.collect()
    mark(f"demo feed over the fleet ({len(runner.feed.devices)} devices)")
    t0 = time.perf_counter()
    sent = runner.step()
    round_s = time.perf_counter() - t0
    gc.collect()
    mark(f"one feed round ({sent} readings, {round_s:.2f} s)")
    t0 = time.perf_counter()
    svc.alarms.offline_round()
    offline_s = time.perf_counter() - t0
    gc.collect()
    mark(f"offline round ({offline_s:.2f} s)")
    from sensing_mqtt.consumer import TelemetryConsumer

    before, heard = svc.telemetry.counts["stored"], svc.telemetry.counts["messages"]
    consumer = TelemetryConsumer(svc.telemetry, broker, client_id="bench-memory").start()
    if not consumer.wait_connected():
        raise SystemExit("consumer: no broker")
    time.sleep(0.3)
    mark("MQTT consumer")
    print("READY", flush=True)
    first = None
    deadline, report = time.monotonic() + 600, time.monotonic() + 10
    while svc.telemetry.counts["messages"] - heard < expect:
        if svc.telemetry.counts["stored"] > before and first is None:
            first = time.perf_counter()
        if time.monotonic() > deadline:
            raise SystemExit(f"consumer: {consumer.state()}")
        if time.monotonic() > report:
            print("  consumer:", consumer.state(), svc.telemetry.stats(), file=sys.stderr)
            report += 10
        time.sleep(0.005)
    took = time.perf_counter() - (first or time.perf_counter())
    consumer.stop()
    gc.collect()
    mark(f"after ingesting {expect} messages")
    print(json.dumps({"steps": steps, "stored": svc.telemetry.counts["stored"] - before, "ingest_s": took,
                      "devices": devices}), flush=True)


def main() -> None:
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # kill -USR1 PID: where a stuck run is
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--rate", type=float, default=0, help="the simulator's rate (0: as fast as the broker takes it)")
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL (an empty database) instead of SQLite")
    ap.add_argument("--serve", nargs=3, metavar=("URL", "BROKER", "EXPECT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("UCC_SEED_HISTORY", "0")
    os.environ["UCC_SIMULATE"] = "0"
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]), args.devices)
        return

    from bench.bench_telemetry import start_broker

    work = Path(tempfile.mkdtemp(prefix="bench-devices-memory-"))
    url = args.pg or f"sqlite:///{work / 'bench.db'}"
    broker, port = start_broker(work)
    child = None
    try:
        done = setup(url, work, args.devices)
        print(f"{'PostgreSQL' if args.pg else 'SQLite'}: import-devices of {args.devices:,} devices in "
              f"{done['import_s']:.1f} s ({args.devices / done['import_s']:,.0f} rows/s): {done['summary']}")
        child = subprocess.Popen([sys.executable, __file__, "--devices", str(args.devices), "--serve", url,
                                  f"mqtt://127.0.0.1:{port}", str(args.messages)], stdout=subprocess.PIPE, text=True,
                                 cwd=ROOT)
        line = child.stdout.readline()
        if line.strip() != "READY":
            raise SystemExit(f"child: {line}")
        from data import files
        from data.db import Database
        from data.devices import reporting_fleet
        from demo.device_feed import DeviceFeed
        from sensing_mqtt.simulator import DeviceSimulator

        db = Database(url)
        with db.session() as s:
            fleet = reporting_fleet(s, offline_too=True)
        db.dispose()
        feed = DeviceFeed(fleet, files.demo_device_feed(), datetime.now(timezone.utc), seed=1)
        sim = DeviceSimulator(feed, f"mqtt://127.0.0.1:{port}").connect()
        t0 = time.perf_counter()
        if args.rate:
            sim.run(duration=args.messages / args.rate, rate=args.rate)
        else:
            while sim.report.published < args.messages:
                sim.publish(feed.flood(datetime.now(timezone.utc), min(5000, args.messages - sim.report.published)))
        sim.flush(60)
        pub_s = time.perf_counter() - t0
        sim.close()
        result = json.loads(child.stdout.readline())
        child.wait(60)
        n = args.devices
        print(f"simulator: {sim.report.published:,} messages over {len(feed.devices):,} devices published in "
              f"{pub_s:.1f} s ({sim.report.published / pub_s:,.0f} msg/s)")
        prev = None
        for i, st in enumerate(result["steps"]):
            grow = "" if prev is None else f"  (+{st['rss_mb'] - prev:,.1f} MB"
            if i >= 3:  # the steps that hold or touch the fleet (the first ones are the code's own)
                grow += f", {(st['rss_mb'] - prev) * 1024 * 1024 / n:,.0f} B/device"
            grow += ")" if grow else ""
            print(f"  {st['step']:<48} RSS {st['rss_mb']:>7,.1f} MB  peak {st['hwm_mb']:>7,.1f} MB{grow}")
            prev = st["rss_mb"]
        print(f"ingest with the fleet: {result['stored']:,} stored in {result['ingest_s']:.1f} s "
              f"({result['stored'] / max(result['ingest_s'], 1e-9):,.0f} msg/s, from the first stored to the last)")
    finally:
        if child is not None and child.poll() is None:
            child.kill()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
