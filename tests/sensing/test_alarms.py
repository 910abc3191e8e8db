"""Alarms on SQLite and the real PostgreSQL: the lifecycle (raise → update → acknowledge → clear, each recorded), one
open alarm per device and rule, the engine's state across a restart, alarms → cases through the real intake (once,
joined while open, noted on clear, emergencies), retries, offline, and the device's status."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from data.alarms import history
from data.area_directory import AreaDirectory
from data.devices import write_devices
from data.models import Alarm, Case, CaseHistory, Device
from data.tokens import Principal
from sensing.alarms import AlarmService
from sensing.registry import DeviceRegistry
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
P_A = (119.905, 31.705)   # district 320402 of rect_city
P_B = (119.965, 31.765)   # district 320403
DEVICES = [("JG-1", "manhole_cover", P_A, "U-320402-water_affairs"),
           ("RQ-1", "gas_detector", P_A, "U-320400-gas"),
           ("JS-1", "water_gauge", P_B, "U-320403-water_affairs")]
ADMIN = Principal(kind="token", ident="token:1", role="admin", area_code="320400")


def add_devices(db, rows=DEVICES, now=NOW):
    loc = AreaDirectory(db).locator()
    with db.session() as s:
        for i, type_, (lon, lat), unit in rows:
            chain = loc.locate(lon, lat)
            write_devices(s, [{"id": i, "type": type_, "name": f"设备{i}", "lon": lon, "lat": lat,
                               "grid_code": chain[0].code, "district_code": chain[3].code, "unit_code": unit,
                               "status": "online", "last_seen": now, "last_values": {}}], now=now)


@pytest.fixture
def world(empty_db):
    cases, clock = small_world(empty_db, NOW)
    add_devices(empty_db)
    alarms = AlarmService(empty_db, cases.areas, cases, DeviceRegistry(empty_db, cases.areas), clock=clock)
    return empty_db, alarms, clock


def at(seconds):
    return NOW + timedelta(seconds=seconds)


def tilt(*pairs):
    return [(at(s), {"tilt_deg": v}) for s, v in pairs]


def gas(*pairs):
    return [(at(s), {"gas_lel_pct": v}) for s, v in pairs]


def alarms_of(db, device=None):
    with db.session() as s:
        q = select(Alarm).order_by(Alarm.id)
        if device:
            q = q.where(Alarm.device_id == device)
        return list(s.scalars(q))


def status_of(db, device):
    with db.session() as s:
        return s.get(Device, device).status


def steps(db, alarm_id):
    with db.session() as s:
        return [(h.action, h.actor, h.from_status, h.to_status) for h in history(s, alarm_id)]


def case_of(db, case_id):
    with db.session() as s:
        case = s.get(Case, case_id)
        notes = [h.note for h in s.scalars(select(CaseHistory).where(CaseHistory.case_id == case_id)
                                           .order_by(CaseHistory.id))]
        return case, notes


def case_count(db):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Case))


def test_the_lifecycle_each_step_recorded(world):
    db, alarms, clock = world
    clock.now = at(5)
    events = alarms.on_readings("JG-1", "manhole_cover", tilt((0, 20), (1, 20), (2, 20), (3, 25)))
    assert [(e.kind, e.rule) for e in events] == [("raise", "cover_tilt"), ("update", "cover_tilt")]
    [alarm] = alarms_of(db)
    assert (alarm.rule_code, alarm.severity, alarm.status) == ("cover_tilt", "critical", "active")
    assert alarm.started_at == at(2) and alarm.updated_at == at(3)
    assert alarm.first_values == {"tilt_deg": 20} and alarm.values == {"tilt_deg": 25}
    assert status_of(db, "JG-1") == "alarm"
    # the dispatching rule opened its case through the intake: source iot, its category, the device's point
    assert alarm.case_id is not None
    case, notes = case_of(db, alarm.case_id)
    assert (case.source, case.category_code, case.state, case.severity) == ("iot", "010151", "reported", None)
    assert (case.lon, case.lat) == P_A and "JG-1" in case.description and "tilt_deg=20" in case.description
    assert case.idempotency_key == f"alarm-{alarm.id}"

    out = alarms.act(ADMIN, alarm.id, "acknowledge")
    assert out["status"] == "acknowledged" and out["acknowledged_by"] == "token:1"
    clock.now = at(30)
    events = alarms.on_readings("JG-1", "manhole_cover", tilt((4, 4), (10, 4), (13, 4)))
    assert events == []  # 9 s at <= 5°: not yet
    events = alarms.on_readings("JG-1", "manhole_cover", tilt((14, 3)))
    assert [e.kind for e in events] == ["clear"]
    [alarm] = alarms_of(db)
    assert (alarm.status, alarm.cleared_by, alarm.cleared_at) == ("cleared", "auto", at(14))
    assert steps(db, alarm.id) == [("raise", "auto", None, "active"), ("update", "auto", "active", "active"),
                                   ("case", "auto", "active", "active"),
                                   ("acknowledge", "token:1", "active", "acknowledged"),
                                   ("clear", "auto", "acknowledged", "cleared")]
    assert status_of(db, "JG-1") == "online"
    # the clear notes the case and leaves it open: the unit still reports, the center verifies
    case, notes = case_of(db, alarm.case_id)
    assert case.state == "reported" and "已解除" in notes[-1]


def test_one_open_alarm_per_device_and_rule(world):
    db, alarms, _ = world
    alarms.on_readings("RQ-1", "gas_detector", gas((0, 60)))
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.add(Alarm(device_id="RQ-1", rule_code="gas_level2", severity="critical", status="acknowledged",
                        started_at=NOW, updated_at=NOW))
    with db.session() as s:  # a cleared one beside it is fine
        s.add(Alarm(device_id="RQ-1", rule_code="gas_level2", severity="critical", status="cleared",
                    started_at=NOW, updated_at=NOW))


def test_gas_level_2_opens_an_emergency_once_and_a_retry_changes_nothing(world):
    db, alarms, clock = world
    clock.now = at(60)
    readings = gas((0, 60), (10, 65))
    alarms.on_readings("RQ-1", "gas_detector", readings)
    by_rule = {a.rule_code: a for a in alarms_of(db)}
    assert set(by_rule) == {"gas_level1", "gas_level2"}  # level 1 too: >= 20 twice in a row
    level2 = by_rule["gas_level2"]
    case, _ = case_of(db, level2.case_id)
    assert (case.category_code, case.kind, case.severity) == ("040102", "emergency", 4)
    n = case_count(db)
    alarms.on_readings("RQ-1", "gas_detector", readings)  # the telemetry side retried the same readings
    assert len(alarms_of(db)) == 2 and case_count(db) == n
    assert [s[0] for s in steps(db, level2.id)] == ["raise", "update", "case"]


def test_water_over_the_main_road_threshold_is_an_emergency(world):
    db, alarms, clock = world
    clock.now = at(600)
    alarms.on_readings("JS-1", "water_gauge", [(at(s), {"water_level_cm": 35}) for s in (0, 60, 120)])
    by_rule = {a.rule_code: a for a in alarms_of(db)}
    assert set(by_rule) == {"water_ponding", "water_flooding"}
    case, _ = case_of(db, by_rule["water_flooding"].case_id)
    assert (case.category_code, case.kind, case.severity) == ("040201", "emergency", 4)
    case, _ = case_of(db, by_rule["water_ponding"].case_id)
    assert (case.category_code, case.kind) == ("020406", "event")


def test_a_rule_that_fires_again_while_its_case_is_open_opens_no_second_case(world):
    db, alarms, clock = world
    clock.now = at(100)
    alarms.on_readings("JG-1", "manhole_cover", tilt((0, 30), (2, 30), (3, 2), (13, 2)))
    first = alarms_of(db)[0]
    assert first.status == "cleared" and first.case_id is not None
    n = case_count(db)
    alarms.on_readings("JG-1", "manhole_cover", tilt((20, 30), (22, 30)))
    second = alarms_of(db)[-1]
    assert second.id != first.id and second.status == "active"
    assert second.case_id == first.case_id and case_count(db) == n
    _, notes = case_of(db, first.case_id)
    assert any("再次触发" in note for note in notes)
    assert steps(db, second.id)[-1][0] == "case"


def test_the_engine_state_survives_a_restart(world):
    db, alarms, clock = world
    clock.now = at(60)
    alarms.on_readings("JG-1", "manhole_cover", tilt((0, 20), (1, 20)))
    assert alarms_of(db) == []
    again = AlarmService(db, alarms.areas, alarms.cases, DeviceRegistry(db, alarms.areas), clock=clock)
    events = again.on_readings("JG-1", "manhole_cover", tilt((2, 20)))
    assert [e.kind for e in events] == ["raise"]  # the run that began at 0 s, read back from alarm_states


def test_a_manual_clear_notes_the_case_and_waits_for_the_condition_anew(world):
    db, alarms, clock = world
    clock.now = at(60)
    alarms.on_readings("JG-1", "manhole_cover", tilt((0, 30), (2, 30)))
    [alarm] = alarms_of(db)
    officer = Principal(kind="token", ident="token:7", role="duty_officer", area_code="320402")
    out = alarms.act(officer, alarm.id, "clear")
    assert (out["status"], out["cleared_by"]) == ("cleared", "token:7")
    assert [h["action"] for h in out["history"]] == ["raise", "case", "clear"]
    assert status_of(db, "JG-1") == "online"
    case, notes = case_of(db, alarm.case_id)
    assert case.state == "reported" and "人工解除" in notes[-1]
    assert alarms.on_readings("JG-1", "manhole_cover", tilt((3, 30))) == []


def test_offline_and_back(world):
    db, alarms, clock = world
    clock.now = NOW + timedelta(seconds=901)  # the gas detector's 900 s have passed; the gauge's 1,800 have not
    assert alarms.offline_round() == 1
    [alarm] = alarms_of(db)
    assert (alarm.device_id, alarm.rule_code, alarm.severity, alarm.case_id) == ("RQ-1", "offline", "major", None)
    assert status_of(db, "RQ-1") == "offline" and status_of(db, "JS-1") == "online"
    assert alarms.offline_round() == 0  # once
    clock.now = NOW + timedelta(hours=4)
    assert alarms.offline_round() == 2  # the cover (3 h, warning) and the gauge
    cover = next(a for a in alarms_of(db) if a.device_id == "JG-1")
    assert cover.severity == "warning"
    with db.session() as s:
        s.get(Device, "RQ-1").last_seen = clock.now  # the telemetry side stored a message
    events = alarms.on_readings("RQ-1", "gas_detector", [(clock.now, {"gas_lel_pct": 1})])
    assert [(e.kind, e.rule) for e in events] == [("clear", "offline")]
    assert status_of(db, "RQ-1") == "online"
    assert alarms_of(db, "RQ-1")[0].status == "cleared"


def test_an_offline_device_with_an_open_alarm_stays_in_alarm_once_back(world):
    db, alarms, clock = world
    clock.now = at(10)
    alarms.on_readings("RQ-1", "gas_detector", gas((0, 60)))
    clock.now = NOW + timedelta(hours=1)
    alarms.offline_round()
    assert status_of(db, "RQ-1") == "offline"
    alarms.on_readings("RQ-1", "gas_detector", gas((3590, 70)))
    assert status_of(db, "RQ-1") == "alarm"


def test_a_missing_case_is_opened_by_the_round(world, monkeypatch):
    db, alarms, clock = world
    clock.now = at(10)
    real = alarms.open_case
    monkeypatch.setattr(alarms, "open_case", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("db away")))
    alarms.on_readings("RQ-1", "gas_detector", gas((0, 60)))
    [alarm] = alarms_of(db)
    assert alarm.case_id is None  # the alarm stands; its case did not come
    monkeypatch.setattr(alarms, "open_case", real)
    assert alarms.open_missing_cases() == 1
    [alarm] = alarms_of(db)
    assert alarm.case_id is not None
    assert alarms.open_missing_cases() == 0


def test_a_device_in_maintenance_raises_nothing(world):
    db, alarms, _ = world
    with db.session() as s:
        s.get(Device, "RQ-1").status = "maintenance"
    assert alarms.on_readings("RQ-1", "gas_detector", gas((0, 90))) == []
    assert alarms_of(db) == []


def test_the_migration_builds_the_models_indexes(empty_db):
    """ux_alarms_open and the other indexes of the model, by name, on both databases; down and up again."""
    from alembic import command
    from sqlalchemy import inspect

    from data.schema import alembic_config, init_db

    expected = {ix.name for ix in Alarm.__table__.indexes}
    with empty_db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alarms'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'alarms' AND schemaname = current_schema()"
        built = {name for (name,) in conn.exec_driver_sql(sql) if name.startswith(("ix_", "ux_"))}
    assert built == expected and "ux_alarms_open" in built
    cfg = alembic_config(empty_db.url)
    with empty_db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    with empty_db.engine.connect() as conn:
        assert not inspect(conn).has_table("alarms") and inspect(conn).has_table("devices")
    from alembic.script import ScriptDirectory

    assert init_db(empty_db) == ScriptDirectory.from_config(cfg).get_current_head()  # up again, to the head


def test_two_processes_applying_the_same_readings_raise_one_alarm_and_one_case(world):
    """As the telemetry ingest of two processes might (a redelivered message): one alarm, one case."""
    import threading

    db, alarms, clock = world
    clock.now = at(60)
    others = [AlarmService(db, alarms.areas, alarms.cases, DeviceRegistry(db, alarms.areas), clock=clock)
              for _ in range(4)]
    readings = gas((0, 60), (10, 70))
    start, errors = threading.Barrier(len(others)), []

    def run(service):
        start.wait()
        try:
            service.on_readings("RQ-1", "gas_detector", readings)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(o,)) for o in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    by_rule = {}
    for a in alarms_of(db):
        by_rule.setdefault(a.rule_code, []).append(a)
    assert {k: len(v) for k, v in by_rule.items()} == {"gas_level1": 1, "gas_level2": 1}
    assert all(v[0].case_id is not None for v in by_rule.values())
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Case).where(Case.source == "iot")) == 2


def test_the_scheduler_runs_the_offline_round(world):
    import threading
    import time

    from scheduler import start_offline_round

    db, alarms, clock = world
    clock.now = NOW + timedelta(hours=4)
    stop = threading.Event()
    thread = start_offline_round(alarms, interval_seconds=0.05, stop=stop)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(status_of(db, d) != "offline" for d in ("JG-1", "RQ-1", "JS-1")):
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5)
    assert [status_of(db, d) for d in ("JG-1", "RQ-1", "JS-1")] == ["offline"] * 3


def test_raise_clear_and_raise_again_in_one_batch(world):
    db, alarms, clock = world
    clock.now = at(100)
    events = alarms.on_readings("RQ-1", "gas_detector", gas((0, 60), (10, 5), (20, 5), (30, 5), (40, 60)))
    assert [e.kind for e in events] == ["raise", "clear", "raise"]
    first, second = alarms_of(db)
    assert (first.status, first.cleared_at, second.status, second.started_at) == ("cleared", at(30), "active", at(40))
    assert first.case_id is not None and second.case_id == first.case_id  # its case is still open: joined
    assert [s[0] for s in steps(db, first.id)] == ["raise", "clear", "case"]
    assert status_of(db, "RQ-1") == "alarm"


def test_normal_readings_one_at_a_time_still_break_a_run(world):
    """Readings that meet no condition skip the transaction only when nothing is under way (AlarmService._quiet)."""
    db, alarms, clock = world
    clock.now = at(60)
    for s, v in ((0, 20), (1, 3), (2, 20), (3, 20)):
        assert alarms.on_readings("JG-1", "manhole_cover", tilt((s, v))) == []
    assert [e.kind for e in alarms.on_readings("JG-1", "manhole_cover", tilt((4, 20)))] == ["raise"]
    assert alarms.on_readings("JG-1", "manhole_cover", tilt((5, 20)))[0].kind == "update"
    assert status_of(db, "JG-1") == "alarm"


def test_a_type_whose_offline_alarm_opens_a_case(world):
    from dataclasses import replace

    from data import files

    db, alarms, clock = world
    types = dict(files.device_types())
    types["gas_detector"] = replace(types["gas_detector"], offline_category="010111")
    service = AlarmService(db, alarms.areas, alarms.cases, DeviceRegistry(db, alarms.areas, types), clock=clock)
    clock.now = NOW + timedelta(seconds=1000)
    assert service.offline_round() == 1
    [alarm] = alarms_of(db)
    case, _ = case_of(db, alarm.case_id)
    assert (alarm.rule_code, case.category_code, case.source) == ("offline", "010111", "iot")
    assert "设备离线" in case.description


def test_the_quiet_read_finds_the_devices_with_nothing_under_way(world):
    """repo.quiet_devices, the engine's one read a batch: online, no run under way, no open alarm (each database's
    statement, its ids one JSON parameter)."""
    db, alarms, clock = world
    clock.now = at(60)
    assert alarms._quiet_among(["JG-1", "RQ-1", "JS-1", "NOPE"]) == {"JG-1", "RQ-1", "JS-1"}
    alarms.on_readings("JG-1", "manhole_cover", tilt((0, 20)))  # a run under way
    alarms.on_readings("RQ-1", "gas_detector", gas((0, 60)))  # an open alarm (and status alarm)
    add_devices(db, [("JS-2", "water_gauge", P_B, "U-320403-water_affairs")])
    with db.session() as s:  # a device in maintenance is not quiet (the engine reads it and does nothing)
        s.get(Device, "JS-2").status = "maintenance"
    assert alarms._quiet_among(["JG-1", "RQ-1", "JS-1", "JS-2", "NOPE"]) == {"JS-1"}
    assert alarms._quiet_among([]) == set()
