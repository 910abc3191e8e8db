"""The sensing pipeline wired as the app wires it (app.create_app): telemetry stored → the alarm engine → an alarm →
its case through the intake; a silent device's offline alarm cleared by its next message; and the demo feed's
runner driving the same ingest in-process. SQLite and the real PostgreSQL."""
from __future__ import annotations

import copy
from datetime import timedelta

from sqlalchemy import func, select

from data import files
from data.models import Alarm, Case, Device, Telemetry
from demo.device_feed import FeedRunner
from sensing.alarms import AlarmService
from sensing.registry import DeviceRegistry
from sensing.telemetry import Message, TelemetryIngest
from tests.sensing.test_alarms import NOW, add_devices, at
from tests.factories import small_world


def _wired(db):
    cases, clock = small_world(db, NOW)
    add_devices(db)
    registry = DeviceRegistry(db, cases.areas)
    alarms = AlarmService(db, cases.areas, cases, registry, clock=clock)
    ingest = TelemetryIngest(db, registry.types, on_stored=alarms.on_stored, clock=clock)
    return cases, alarms, ingest, clock


def _ms(seconds):
    return int(at(seconds).timestamp() * 1000)


def test_a_lifted_cover_over_telemetry_raises_its_alarm_and_opens_one_case(empty_db):
    _cases, _alarms, ingest, _clock = _wired(empty_db)
    msgs = [Message("JG-1", {"ts": _ms(s), "values": {"tilt_deg": v, "battery_pct": 80}}, at(s))
            for s, v in ((0, 1.0), (1, 30.0), (2, 31.0), (4, 32.0), (5, 33.0))]
    ingest.ingest(msgs)
    ingest.ingest(msgs)  # the broker's redelivery: stored once, raised once
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Telemetry).where(Telemetry.device_id == "JG-1")) == 5
        alarm = s.scalars(select(Alarm).where(Alarm.device_id == "JG-1")).one()
        assert (alarm.rule_code, alarm.severity, alarm.status) == ("cover_tilt", "critical", "active")
        case = s.get(Case, alarm.case_id)
        assert case.source == "iot" and case.category_code == "010151"
        assert s.get(Device, "JG-1").status == "alarm"
        assert s.scalar(select(func.count()).select_from(Case)) == 1


def test_an_offline_device_comes_back_with_its_next_message(empty_db):
    _cases, alarms, ingest, clock = _wired(empty_db)
    later = NOW + timedelta(hours=4)  # past the gas detector's 15 minutes of allowed silence
    assert alarms.offline_round(now=later) >= 1
    with empty_db.session() as s:
        assert s.get(Device, "RQ-1").status == "offline"
    ingest.ingest([Message("RQ-1", {"ts": int(later.timestamp() * 1000) + 1000, "values": {"gas_lel_pct": 0.5}},
                           later)])
    with empty_db.session() as s:
        device = s.get(Device, "RQ-1")
        offline = s.scalars(select(Alarm).where(Alarm.device_id == "RQ-1", Alarm.rule_code == "offline")).one()
        assert device.status == "online" and offline.status == "cleared"


def test_the_demo_feed_runs_through_the_ingest_and_the_engine(empty_db):
    _cases, _alarms, ingest, clock = _wired(empty_db)
    settings = copy.deepcopy(files.demo_device_feed())
    for f in settings["faults"]:
        f["per_device_day"] = 0
    settings["faults"].append({"type": "gas_detector", "name": "燃气浓度二级报警", "per_device_day": 5000,
                               "minutes": [10, 10], "values": {"gas_lel_pct": [60, 70]}})
    settings["silence"]["per_device_day"] = 0
    runner = FeedRunner(empty_db, ingest, clock, settings=settings, seed=5)
    assert {d.id for d in runner.feed.devices} == {"JG-1", "RQ-1", "JS-1"}
    sent = sum(runner.step(NOW + timedelta(seconds=30 * k)) for k in range(6))
    assert sent >= 6  # the gas detector reports every round while its fault lasts
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Telemetry)) == sent
        gas = s.scalars(select(Alarm).where(Alarm.device_id == "RQ-1", Alarm.rule_code == "gas_level2")).one()
        case = s.get(Case, gas.case_id)
        assert case.kind == "emergency" and case.category_code == "040102"


def test_a_batch_hook_breaks_a_run_under_way_beside_quiet_devices(empty_db):
    """on_stored skips the devices that can change nothing (found in one read), not one with a run under way:
    a normal reading there breaks the run, so the cover lifted again is timed from its new start."""
    _cases, alarms, ingest, _clock = _wired(empty_db)

    def batch(s, tilt):
        ingest.ingest([Message("JG-1", {"ts": _ms(s), "values": {"tilt_deg": tilt}}, at(s)),
                       Message("RQ-1", {"ts": _ms(s), "values": {"gas_lel_pct": 0.5}}, at(s)),
                       Message("JS-1", {"ts": _ms(s), "values": {"water_level_cm": 0}}, at(s))])

    batch(0, 30.0)   # a run starts on the cover
    batch(1, 1.0)    # a normal reading: the run is broken (the cover is not quiet: its run is under way)
    batch(2.5, 30.0)  # 2.5 s after the first lift, 0 s into the new run: no alarm yet
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alarm)) == 0
    batch(5, 30.0)   # 2.5 s into the new run: raised
    with empty_db.session() as s:
        assert [a.rule_code for a in s.scalars(select(Alarm))] == ["cover_tilt"]


def test_a_batch_stored_but_not_yet_taken_by_the_engine_raises_its_alarm_when_redelivered(empty_db):
    """A crash between the batch's commit and the engine's run (the consumer acknowledges only after both): the
    broker redelivers the batch, stored once already, and the engine takes what it had not taken."""
    _cases, _alarms, ingest, _clock = _wired(empty_db)
    msgs = [Message("JG-1", {"ts": _ms(s), "values": {"tilt_deg": v, "battery_pct": 80}}, at(s))
            for s, v in ((0, 1.0), (1, 30.0), (2, 31.0), (4, 32.0))]
    lost: list = []
    ingest.ingest(msgs, defer=lost.append)  # stored; the engine's call never runs (the process died)
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Telemetry)) == 4
        assert s.scalar(select(func.count()).select_from(Alarm)) == 0
    out = ingest.ingest(msgs)  # the redelivery
    assert sum(o.duplicates for o in out) == 4 and sum(o.stored for o in out) == 0
    with empty_db.session() as s:
        alarm = s.scalars(select(Alarm).where(Alarm.device_id == "JG-1")).one()
        assert alarm.rule_code == "cover_tilt" and alarm.case_id is not None
    ingest.ingest(msgs)  # and once more: nothing twice
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alarm)) == 1
        assert s.scalar(select(func.count()).select_from(Case)) == 1
