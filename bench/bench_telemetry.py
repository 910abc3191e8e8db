"""Benchmark of telemetry ingest over MQTT into storage, against a bare paho-mqtt subscriber that only counts the same messages."""
from __future__ import annotations

# python bench/bench_telemetry.py [--messages 100000] [--devices 1000] [--pg URL] [--batch 1000] [--receive-max 2000]
#                                 [--alarms]
#
# A private mosquitto (a free port, no queue cap) holds the messages: both subscribers first register their
# persistent sessions (QoS 1, clean_start False), then one publisher sends the same `messages` readings at QoS 1
# while both are away, so the broker queues a copy for each. Each subscriber then connects in turn and drains its
# copy: the bare one counts in on_message (paho acknowledges on return), the platform's consumer
# (sensing_mqtt.TelemetryConsumer) parses, checks, stores in batches and acknowledges after each commit. Each
# rate is messages over the time from its connect to its last message handled (stored and acknowledged, for the
# consumer), in the same run, so the machine's load is shared alike. The targets: the consumer at
# >= 50 % of the bare subscriber's rate and >= 5,000 msg/s. With --alarms the ingest calls the alarm engine after each
# batch (AlarmService.on_stored), as app.create_app wires it. Also printed: this process's CPU time a message in each
# drain (all its threads, not the broker's), a measure the machine's other load moves less than the wall-clock rates.
import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

TOPIC = "ucc/devices/{}/telemetry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(directory: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = directory / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
                    f"max_queued_messages 0\nmax_queued_bytes 0\nlog_dest none\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("mosquitto did not start")
            time.sleep(0.05)


def connect_props(receive_max: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = receive_max
    return props


def register_session(port: int, client_id: str, receive_max: int) -> None:
    """Connect, subscribe at QoS 1 and leave: the broker keeps the session and queues for it."""
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, *_: cl.subscribe("ucc/devices/+/telemetry", qos=1)
    c.on_subscribe = lambda *_: done.set()
    c.connect("127.0.0.1", port, clean_start=False, properties=connect_props(receive_max))
    c.loop_start()
    if not done.wait(10):
        raise SystemExit(f"{client_id}: no SUBACK")
    c.disconnect()
    c.loop_stop()


def publish(port: int, payloads: list[tuple[str, bytes]]) -> float:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    acked = [0]
    done = threading.Event()
    # at most 2,000 outstanding: paho scans its whole outgoing queue on every PUBACK once the in-flight window is
    # full, so 100,000 queued messages at once publish quadratically slowly
    window = threading.Semaphore(2000)

    def on_publish(*_):
        acked[0] += 1
        window.release()
        if acked[0] == len(payloads):
            done.set()

    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    for device_id, data in payloads:
        window.acquire()
        c.publish(TOPIC.format(device_id), data, qos=1)
    if not done.wait(300):
        raise SystemExit(f"publisher: {acked[0]} of {len(payloads)} acknowledged")
    took = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return took


def drain_bare(port: int, n: int, receive_max: int) -> float:
    count = [0]
    done = threading.Event()

    def on_message(*_):
        count[0] += 1
        if count[0] == n:
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    t0 = time.perf_counter()
    c.connect("127.0.0.1", port, clean_start=False, properties=connect_props(receive_max))
    c.loop_start()
    if not done.wait(300):
        raise SystemExit(f"bare subscriber: {count[0]} of {n}")
    took = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return took


def drain_consumer(port: int, n: int, ingest, batch: int, receive_max: int) -> tuple[float, dict]:
    from sensing_mqtt.consumer import TelemetryConsumer

    t0 = time.perf_counter()
    consumer = TelemetryConsumer(ingest, f"mqtt://127.0.0.1:{port}", client_id="bench-ingest", batch_size=batch,
                                 receive_maximum=receive_max).start()
    deadline, report = time.monotonic() + 300, time.monotonic() + 10
    while consumer.counts["acked"] < n or not consumer.hooks_done():  # stored, acknowledged, the engine run
        if time.monotonic() > deadline:
            raise SystemExit(f"consumer: {consumer.state()}")
        if time.monotonic() > report:
            print("  consumer:", consumer.state(), file=sys.stderr)
            report += 10
        time.sleep(0.002)
    took = time.perf_counter() - t0
    consumer.stop()
    return took, consumer.state()


def build_db(url: str | None, directory: Path, devices: int):
    """The database with a small world and `devices` covers; (db, the case service) of that world."""
    from data.db import Database
    from data.area_directory import AreaDirectory
    from data.devices import write_devices
    from data.schema import init_db
    from tests.factories import small_world

    db = Database(url or f"sqlite:///{directory / 'bench.db'}")
    init_db(db)
    now = datetime.now(timezone.utc)
    cases, _clock = small_world(db, now)
    chain = AreaDirectory(db).locator().locate(119.905, 31.705)
    with db.session() as s:
        write_devices(s, [{"id": f"JG-{i:06d}", "type": "manhole_cover", "name": f"井盖{i}", "lon": 119.905,
                           "lat": 31.705, "grid_code": chain[0].code, "district_code": chain[3].code,
                           "unit_code": "U-320402-water_affairs"} for i in range(devices)])
    return db, cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--receive-max", type=int, default=2000)
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL (an empty database or schema) instead of SQLite")
    ap.add_argument("--alarms", action="store_true", help="the alarm engine wired after each batch, as the app runs it")
    args = ap.parse_args()

    from data import files
    from data.telemetry import telemetry_count
    from sensing.telemetry import TelemetryIngest

    work = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
    broker, port = start_broker(work)
    try:
        db, cases = build_db(args.pg, work, args.devices)
        rng = random.Random(16)
        base = int(time.time() * 1000) - args.messages * 10
        payloads = [(f"JG-{i % args.devices:06d}",
                     orjson.dumps({"ts": base + i, "values": {"tilt_deg": round(rng.uniform(0, 3), 2),
                                                              "battery_pct": rng.randint(30, 100)}}))
                    for i in range(args.messages)]
        for client_id in ("bench-bare", "bench-ingest"):
            register_session(port, client_id, args.receive_max)
        took_pub = publish(port, payloads)
        print(f"published {args.messages} messages at QoS 1 in {took_pub:.2f} s ({args.messages / took_pub:,.0f} msg/s);"
              f" {args.devices} devices, {'PostgreSQL' if args.pg else 'SQLite'}, batch {args.batch},"
              f" receive maximum {args.receive_max}, alarm engine {'wired' if args.alarms else 'off'}")
        cpu0 = time.process_time()
        took_bare = drain_bare(port, args.messages, args.receive_max)
        cpu_bare = time.process_time() - cpu0
        on_stored = None
        if args.alarms:
            from sensing.alarms import AlarmService
            from sensing.registry import DeviceRegistry

            registry = DeviceRegistry(db, cases.areas)
            on_stored = AlarmService(db, cases.areas, cases, registry).on_stored
        ingest = TelemetryIngest(db, files.device_types, on_stored=on_stored)
        cpu0 = time.process_time()
        took_ingest, state = drain_consumer(port, args.messages, ingest, args.batch, args.receive_max)
        cpu_ingest = time.process_time() - cpu0
        with db.session() as s:
            stored = telemetry_count(s)
        bare_rate, ingest_rate = args.messages / took_bare, args.messages / took_ingest
        print(f"bare paho subscriber (counts only): {bare_rate:,.0f} msg/s ({took_bare:.2f} s)")
        print(f"ingest into storage (parse, check, store, ack after commit): {ingest_rate:,.0f} msg/s "
              f"({took_ingest:.2f} s; {stored} rows stored, {ingest.stats()['batches']} batches, acked {state['acked']})")
        print(f"ratio ingest / bare: {ingest_rate / bare_rate:.2f}")
        # this process's CPU (every thread; not the broker's) per message: less moved by the machine's other load
        # than the rates, which are wall-clock and measured one after the other
        print(f"CPU a message: bare {cpu_bare / args.messages * 1e6:.1f} us, ingest {cpu_ingest / args.messages * 1e6:.1f} us"
              f" (bare / ingest {cpu_bare / cpu_ingest:.2f})")
        db.dispose()
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("UCC_SEED_HISTORY", "0")
    main()
