"""Telemetry through a real Mosquitto: publish → stored → the device's last values (SQLite and PostgreSQL, on the
machine's broker); malformed and duplicate messages counted and stored once while the consumer carries on; and a
private broker restarted while messages are in flight — every message the broker acknowledged to its publisher is
stored (QoS 1, a persistent session, acknowledgements only after the batch commits)."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from data import files
from data.devices import write_devices
from data.models import Device, Telemetry
from sensing.telemetry import TelemetryIngest
from sensing_mqtt.consumer import TelemetryConsumer
from tests.factories import small_world
from tests.sensing.mqtt_broker import OwnMosquitto, require_shared_broker

pytestmark = pytest.mark.mqtt  # CI counts these: a run with no broker test passed fails (tests/conftest.py)

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


def make_fleet(db, ids):
    from data.area_directory import AreaDirectory

    small_world(db, NOW)
    chain = AreaDirectory(db).locator().locate(119.905, 31.705)
    with db.session() as s:
        write_devices(s, [{"id": i, "type": "manhole_cover", "name": i, "lon": 119.905, "lat": 31.705,
                           "grid_code": chain[0].code, "district_code": chain[3].code,
                           "unit_code": "U-320402-water_affairs"} for i in ids])


class Publisher:
    """A paho publisher at QoS 1 with its own persistent session: it resends what the broker has not acknowledged
    after a reconnect; `acked` holds the payload ids whose PUBACK came back."""

    def __init__(self, url: str):
        host, port = url.removeprefix("mqtt://").split(":")
        self.acked: set[int] = set()
        self._ids: dict[int, int] = {}
        self._early: set[int] = set()  # PUBACKs that came back before publish() returned their mid
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub-" + uuid.uuid4().hex[:8],
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        self.client.connect(host, int(port), clean_start=False, properties=props)
        self.client.loop_start()

    def _on_publish(self, _c, _u, mid, _rc, _p):
        # paho calls this holding its own message lock: never publish while holding ours (a deadlock)
        with self._lock:
            n = self._ids.pop(mid, None)
            if n is None:
                self._early.add(mid)
            else:
                self.acked.add(n)

    def publish(self, device_id: str, payload, n: int | None = None):
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        info = self.client.publish(f"ucc/devices/{device_id}/telemetry", data, qos=1)
        if n is not None:
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self.acked.add(n)
                else:
                    self._ids[info.mid] = n
        return info

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def stored(db, device_id=None) -> list:
    from sqlalchemy import select

    with db.session() as s:
        q = select(Telemetry.device_id, Telemetry.ts, Telemetry.values)
        if device_id:
            q = q.where(Telemetry.device_id == device_id)
        return list(s.execute(q.order_by(Telemetry.ts)))


def test_publish_store_and_last_values_on_the_machines_broker(empty_db):
    url = require_shared_broker()
    tag = uuid.uuid4().hex[:8]
    ids = [f"JG-{tag}-{i}" for i in range(3)]
    make_fleet(empty_db, ids)
    ingest = TelemetryIngest(empty_db, files.device_types)
    consumer = TelemetryConsumer(ingest, url, client_id=f"test-{tag}", session_expiry=60).start()
    try:
        assert consumer.wait_connected()
        time.sleep(0.3)  # the subscription is in place
        pub = Publisher(url)
        now_ms = int(time.time() * 1000)
        infos = [pub.publish(ids[0], {"ts": now_ms - 1000, "values": {"tilt_deg": 1.0, "battery_pct": 77}}),
                 pub.publish(ids[0], {"ts": now_ms, "values": {"tilt_deg": 3.5}}),
                 pub.publish(ids[1], [{"ts": now_ms - 5, "values": {"water_level_cm": -40}},
                                      {"ts": now_ms, "values": {"water_level_cm": -35}}]),
                 pub.publish(ids[2], {"displacement_mm": 4})]
        for info in infos:
            info.wait_for_publish(5)
        assert wait_for(lambda: len(stored(empty_db)) == 5), stored(empty_db)
        with empty_db.session() as s:
            first = s.get(Device, ids[0])
            assert first.status == "online" and first.last_values == {"tilt_deg": 3.5, "battery_pct": 77}
            assert s.get(Device, ids[1]).last_values == {"water_level_cm": -35}
            assert s.get(Device, ids[2]).last_values == {"displacement_mm": 4}
        assert wait_for(lambda: consumer.state()["acked"] >= 4)
        pub.close()
    finally:
        consumer.stop()


def test_malformed_and_duplicate_messages(tmp_path):
    from tests.conftest import make_database
    from data.schema import init_db

    broker = OwnMosquitto(tmp_path / "broker").start()
    db, _ = make_database("sqlite", tmp_path)
    init_db(db)
    make_fleet(db, ["JG-1"])
    ingest = TelemetryIngest(db, files.device_types)
    consumer = TelemetryConsumer(ingest, broker.url, client_id="test-dup").start()
    try:
        assert consumer.wait_connected()
        time.sleep(0.2)
        pub = Publisher(broker.url)
        reading = {"ts": int(time.time() * 1000), "values": {"tilt_deg": 2.0}}
        for payload in (b"\x00\xffnot json", reading, reading, b"[]", {"ts": "x", "values": {}},
                        {"tilt_deg": 999}, reading):
            pub.publish("JG-1", payload).wait_for_publish(5)
        pub.publish("GHOST-1", reading).wait_for_publish(5)
        pub.publish("JG-1", {"battery_pct": 50}).wait_for_publish(5)  # after all that: still consuming
        assert wait_for(lambda: len(stored(db, "JG-1")) == 2)
        assert wait_for(lambda: ingest.stats()["messages"] == 9)
        stats = ingest.stats()
        assert (stats["stored"], stats["duplicates"], stats["malformed"], stats["unknown_device"],
                stats["out_of_range"]) == (2, 2, 3, 1, 1)
        assert stats["mqtt"]["connected"] is True
        assert wait_for(lambda: consumer.state()["acked"] == 9)  # refused messages are acknowledged too: never resent
        pub.close()
    finally:
        consumer.stop()
        db.dispose()
        broker.stop()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_broker_restart_loses_nothing_acknowledged(tmp_path, kind):
    from tests.conftest import make_database
    from data.schema import init_db

    broker = OwnMosquitto(tmp_path / "broker").start()
    db, schema = make_database(kind, tmp_path)
    init_db(db)
    ids = [f"JG-{i}" for i in range(20)]
    make_fleet(db, ids)
    # each commit is followed by a little work before the acknowledgements: messages are stored but not yet
    # acknowledged when the broker goes down, and received ones not yet stored
    ingest = TelemetryIngest(db, files.device_types, on_stored=lambda _items: time.sleep(0.0005))
    consumer = TelemetryConsumer(ingest, broker.url, client_id="test-restart", batch_size=50,
                                 receive_maximum=200).start()
    pub = None
    try:
        assert consumer.wait_connected()
        time.sleep(0.2)
        pub = Publisher(broker.url)
        total = 3000
        base = int(time.time() * 1000) - total - 10_000

        def publish_all():
            for n in range(total):
                pub.publish(ids[n % len(ids)], {"ts": base + n, "values": {"tilt_deg": float(n % 10)}}, n)
                if n % 100 == 0:
                    time.sleep(0.01)

        t = threading.Thread(target=publish_all)
        t.start()
        assert wait_for(lambda: len(pub.acked) >= total // 3, timeout=30)
        broker.restart()  # SIGTERM with messages in flight both ways, then the same broker again
        t.join(60)
        assert wait_for(lambda: len(pub.acked) == total, timeout=60), len(pub.acked)
        # every acknowledged message stored, each once
        assert wait_for(lambda: len(stored(db)) == total, timeout=60), len(stored(db))
        keys = {(d, int(ts.timestamp() * 1000)) for d, ts, _ in stored(db)}
        assert keys == {(ids[n % len(ids)], base + n) for n in range(total)}
        state = consumer.state()
        assert state["connects"] >= 2 and state["connected"]
    finally:
        if pub is not None:
            pub.close()
        consumer.stop()
        db.dispose()
        if schema:
            schema.drop()
        broker.stop()
