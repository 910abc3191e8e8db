"""The MQTT device simulator through a real Mosquitto into the server's consumer, wired as the app wires it: a forced
fault (a cover lifted) raises its alarm and opens its case, a silenced device sends nothing, every published message
is stored; the load mode at a rate; and the consumer's own bound on its buffer while its writer is slow."""
from __future__ import annotations

import copy
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from data import files
from data.devices import reporting_fleet
from data.models import Alarm, Case, Device, Telemetry
from demo.device_feed import DeviceFeed
from sensing.alarms import AlarmService
from sensing.registry import DeviceRegistry
from sensing.telemetry import TelemetryIngest
from sensing_mqtt.consumer import TelemetryConsumer
from sensing_mqtt.simulator import DeviceSimulator
from tests.factories import small_world
from tests.sensing.mqtt_broker import OwnMosquitto
from tests.sensing.test_alarms import DEVICES, add_devices
from tests.sensing.test_mqtt import wait_for

pytestmark = pytest.mark.mqtt  # CI counts these: a run with no broker test passed fails (tests/conftest.py)

FLEET = DEVICES + [("JG-2", "manhole_cover", DEVICES[0][2], "U-320402-water_affairs"),
                   ("JS-2", "water_gauge", DEVICES[2][2], "U-320403-water_affairs")]


@pytest.fixture
def broker(tmp_path):
    b = OwnMosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def _wired(db, **consumer_options):
    now = datetime.now(timezone.utc)
    cases, clock = small_world(db, now)
    add_devices(db, FLEET, now=now)
    registry = DeviceRegistry(db, cases.areas)
    alarms = AlarmService(db, cases.areas, cases, registry, clock=clock)
    ingest = TelemetryIngest(db, registry.types, on_stored=alarms.on_stored)
    return ingest, consumer_options


def _feed(db, round_s):
    settings = copy.deepcopy(files.demo_device_feed())
    settings["round_seconds"] = round_s
    with db.session() as s:
        fleet = reporting_fleet(s, offline_too=True)
    return DeviceFeed(fleet, settings, datetime.now(timezone.utc), seed=16)


def _count(db, device_id=None):
    with db.session() as s:
        q = select(func.count()).select_from(Telemetry)
        if device_id:
            q = q.where(Telemetry.device_id == device_id)
        return s.scalar(q)


def test_a_lifted_cover_published_by_the_simulator_raises_its_alarm(empty_db, broker):
    ingest, _ = _wired(empty_db)
    consumer = TelemetryConsumer(ingest, broker.url, client_id="test-sim", batch_size=100).start()
    sim = None
    try:
        assert consumer.wait_connected()
        time.sleep(0.2)  # the subscription is in place
        feed = _feed(empty_db, round_s=0.25)
        now = datetime.now(timezone.utc)
        assert feed.force("JG-1", "cover_lifted", now, minutes=10) == "JG-1"
        feed.force("JS-2", "silence", now, minutes=10)
        sim = DeviceSimulator(feed, broker.url).connect()
        report = sim.run(duration=3.5)  # the cover's tilt rule holds for 2 s: reported every 0.25 s meanwhile
        assert report.published >= 12 and report.acked == report.published
        assert wait_for(lambda: _count(empty_db) == report.published, timeout=20), (_count(empty_db), report)
        assert _count(empty_db, "JG-1") >= 12 and _count(empty_db, "JS-2") == 0
        assert wait_for(consumer.hooks_done)  # the alarm engine runs on the consumer's own thread after each commit
        with empty_db.session() as s:
            alarm = s.scalars(select(Alarm).where(Alarm.device_id == "JG-1", Alarm.rule_code == "cover_tilt")).one()
            assert (alarm.severity, alarm.status) == ("critical", "active")
            assert s.get(Case, alarm.case_id).source == "iot"
            assert s.get(Device, "JG-1").status == "alarm"
            assert s.scalar(select(func.count()).select_from(Alarm).where(Alarm.device_id != "JG-1")) == 0
    finally:
        if sim is not None:
            sim.close()
        consumer.stop()


def test_the_load_mode_publishes_at_its_rate_and_everything_is_stored(empty_db, broker):
    ingest, _ = _wired(empty_db)
    consumer = TelemetryConsumer(ingest, broker.url, client_id="test-sim-load", batch_size=200).start()
    sim = None
    try:
        assert consumer.wait_connected()
        time.sleep(0.2)
        sim = DeviceSimulator(_feed(empty_db, round_s=30), broker.url).connect()
        report = sim.run(duration=2.0, rate=400)
        assert 600 <= report.published <= 820, report
        assert wait_for(lambda: _count(empty_db) == report.published, timeout=30), (_count(empty_db), report)
        assert ingest.stats()["duplicates"] == 0  # each device's readings at distinct milliseconds
    finally:
        if sim is not None:
            sim.close()
        consumer.stop()


def test_the_consumer_bounds_its_buffer_when_the_writer_is_slow(tmp_path, broker):
    from data.schema import init_db
    from tests.conftest import make_database

    db, _ = make_database("sqlite", tmp_path)
    init_db(db)
    ingest, _ = _wired(db)
    slow = ingest.on_stored
    ingest.on_stored = lambda items: (time.sleep(0.05), slow(items))
    # the broker is asked for far more than the bound: the bound is the consumer's own
    consumer = TelemetryConsumer(ingest, broker.url, client_id="test-bound", batch_size=20, max_buffered=50,
                                 receive_maximum=5000).start()
    sim = None
    try:
        assert consumer.wait_connected()
        time.sleep(0.2)
        sim = DeviceSimulator(_feed(db, round_s=30), broker.url, window=5000).connect()
        sim.start(duration=1.0, rate=1500)
        peak = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            peak = max(peak, consumer.state()["buffered"])
            if not sim.running() and _count(db) == sim.report.published:
                break
            time.sleep(0.005)
        assert sim.report.published >= 1000
        assert _count(db) == sim.report.published  # nothing lost while the network thread waited
        assert peak <= 50 and consumer.state()["waits_full"] > 0
    finally:
        if sim is not None:
            sim.stop()
            sim.close()
        consumer.stop()
        db.dispose()
