"""Telemetry in (issue 16, second increment): parsing and checking the contract's payloads, and storage on SQLite and
the real PostgreSQL — each (device, ts) once, last values merged, status, the on_stored hook, retention roll-up."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from data import files
from data.devices import write_devices
from data.models import Device
from data.telemetry import read_hourly, read_series, telemetry_count
from sensing.telemetry import Malformed, Message, TelemetryIngest, check_values, parse_payload
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
MS = int(NOW.timestamp() * 1000)


@pytest.fixture(scope="module")
def types():
    return files.device_types()


# ---- parsing -----------------------------------------------------------------------------------
def test_the_three_payload_shapes():
    one = parse_payload(b'{"ts": %d, "values": {"tilt_deg": 1.5}}' % MS, NOW)
    assert one == [(NOW, {"tilt_deg": 1.5})]
    many = parse_payload('[{"ts": %d, "values": {"a": 1}}, {"ts": %d, "values": {"a": 2}}]' % (MS - 1000, MS), NOW)
    assert [ts for ts, _ in many] == [NOW - timedelta(seconds=1), NOW]
    flat = parse_payload(b'{"water_level_cm": 3}', NOW + timedelta(seconds=5))
    assert flat == [(NOW + timedelta(seconds=5), {"water_level_cm": 3})]
    assert parse_payload({"values": {"a": True}}, NOW) == [(NOW, {"a": True})]  # no ts: as of arrival


@pytest.mark.parametrize("payload, words", [
    (b"not json", "JSON"), (b"\xff\xfe", "JSON"), (b"[]", "为空"), (b"42", "报文应为"), (b"{}", "报文应为"),
    (b'{"ts": "yesterday", "values": {"a": 1}}', "毫秒"), (b'{"ts": true, "values": {"a": 1}}', "毫秒"),
    (b'{"ts": 1e30, "values": {"a": 1}}', "毫秒"), (b'{"ts": -9999999999999, "values": {"a": 1}}', "1900"),
    (b'{"ts": %d, "values": {"a": 1}}' % (MS + 3600_000), "晚于到达"),
    (b'{"ts": 1, "values": []}', "values"), (b'{"ts": 1, "values": {}}', "values"),
    (b'{"ts": 1, "values": {"a": 1}, "extra": 2}', "多余字段"), (b'[{"ts": 1}]', "第 1 条"), (b"[1]", "第 1 条"),
    (b" " * (70 * 1024), "KB"),
])
def test_malformed_payloads_are_refused_with_a_reason(payload, words):
    with pytest.raises(Malformed) as exc:
        parse_payload(payload, NOW)
    assert words in str(exc.value)


def test_values_are_checked_against_the_type(types):
    specs = {k.key: k for k in types["manhole_cover"].keys}
    kept, refused = check_values(specs, {"tilt_deg": 3.0, "battery_pct": 140, "colour": "red", "water_level_cm": "high",
                                         "displacement_mm": True})
    assert kept == {"tilt_deg": 3.0}
    assert sorted((r["key"], r["reason"]) for r in refused) == [
        ("battery_pct", "out_of_range"), ("colour", "unknown_key"), ("displacement_mm", "out_of_range"),
        ("water_level_cm", "out_of_range")]
    assert all(r["message"] for r in refused)
    lamp = {k.key: k for k in types["street_light"].keys}
    assert check_values(lamp, {"lamp_on": True, "fault": False})[1] == []
    assert check_values(lamp, {"lamp_on": 1})[1][0]["reason"] == "out_of_range"  # a flag is not a number


# ---- storage ------------------------------------------------------------------------------------
@pytest.fixture
def fleet(empty_db):
    """Three devices over the small world: a cover, a gauge in maintenance, a gas detector in alarm."""
    from data.area_directory import AreaDirectory

    small_world(empty_db, NOW)
    chain = AreaDirectory(empty_db).locator().locate(119.905, 31.705)
    with empty_db.session() as s:
        for i, type_, status in (("JG-1", "manhole_cover", "offline"), ("JS-1", "water_gauge", "maintenance"),
                                 ("RQ-1", "gas_detector", "alarm")):
            write_devices(s, [{"id": i, "type": type_, "name": i, "lon": 119.905, "lat": 31.705,
                               "grid_code": chain[0].code, "district_code": chain[3].code,
                               "unit_code": "U-320402-water_affairs"}], status=status)
    return empty_db


def reading(ms: int, **values) -> dict:
    return {"ts": ms, "values": values}


def test_a_batch_is_stored_once_per_device_and_time(fleet):
    calls = []
    ingest = TelemetryIngest(fleet, files.device_types, on_stored=calls.extend, clock=lambda: NOW)
    at = NOW + timedelta(seconds=1)
    batch = [Message("JG-1", [reading(MS - 2000, tilt_deg=1.0, battery_pct=90), reading(MS, tilt_deg=2.0)], at),
             Message("JG-1", reading(MS, tilt_deg=2.0), at),  # the same device and time again: a duplicate
             Message("JG-1", reading(MS - 1000, tilt_deg=9.0, battery_pct=300), at),  # one value out of range
             Message("NOPE-1", reading(MS, tilt_deg=1.0), at),
             Message("JG-1", b"{oops", at),
             Message("bad/id", b"{}", at)]
    out = ingest.ingest(batch)
    assert [(o.stored, o.duplicates, o.error) for o in out] == [
        (2, 0, None), (0, 1, None), (1, 0, None), (0, 0, "unknown_device"), (0, 0, "malformed"), (0, 0, "unknown_device")]
    assert out[2].refused[0]["key"] == "battery_pct"
    with fleet.session() as s:
        series = read_series(s, "JG-1")
        device = s.get(Device, "JG-1")
        assert [v for _, v in series] == [{"tilt_deg": 1.0, "battery_pct": 90}, {"tilt_deg": 9.0}, {"tilt_deg": 2.0}]
        assert device.status == "online" and device.last_seen == NOW
        assert device.last_values == {"tilt_deg": 2.0, "battery_pct": 90}  # merged in time order
    assert calls == [("JG-1", "manhole_cover", [(NOW - timedelta(seconds=2), {"tilt_deg": 1.0, "battery_pct": 90}),
                                                 (NOW - timedelta(seconds=1), {"tilt_deg": 9.0}),
                                                 (NOW, {"tilt_deg": 2.0})])]
    stats = ingest.stats()
    assert {k: stats[k] for k in ("messages", "stored", "duplicates", "malformed", "unknown_device", "out_of_range")} == {
        "messages": 6, "stored": 3, "duplicates": 1, "malformed": 1, "unknown_device": 2, "out_of_range": 1}
    # a second batch re-sending everything stores nothing new; the engine's hook is given the readings once each
    # again (a redelivery after a crash before the engine ran: it skips what it has taken already)
    first = list(calls)
    calls.clear()
    again = ingest.ingest(batch[:3])
    assert sum(o.duplicates for o in again) == 4 and sum(o.stored for o in again) == 0 and calls == first


def test_a_partial_redelivery_stores_the_new_readings_and_gives_the_engine_all_in_time_order(fleet):
    calls = []
    ingest = TelemetryIngest(fleet, files.device_types, on_stored=calls.extend, clock=lambda: NOW)
    ingest.ingest([Message("JG-1", reading(MS - 1000, tilt_deg=1.0, battery_pct=90), NOW)])
    calls.clear()
    # the stored one again among new ones, one of them late and one with a float timestamp (its old path)
    out = ingest.ingest([Message("JG-1", [reading(MS, tilt_deg=3.0), reading(MS - 1000, tilt_deg=1.0, battery_pct=90),
                                          reading(MS - 5000, tilt_deg=7.0, battery_pct=10)], NOW),
                         Message("JG-1", reading(MS + 500.9, tilt_deg=4.0), NOW)])
    assert [(o.stored, o.duplicates) for o in out] == [(2, 1), (1, 0)]
    assert calls == [("JG-1", "manhole_cover", [(NOW - timedelta(seconds=5), {"tilt_deg": 7.0, "battery_pct": 10}),
                                                 (NOW - timedelta(seconds=1), {"tilt_deg": 1.0, "battery_pct": 90}),
                                                 (NOW, {"tilt_deg": 3.0}),
                                                 (NOW + timedelta(milliseconds=500), {"tilt_deg": 4.0})])]
    with fleet.session() as s:
        device = s.get(Device, "JG-1")
        # the late reading (before the last one seen) is stored but does not overwrite the battery
        assert device.last_seen == NOW + timedelta(milliseconds=500)
        assert device.last_values == {"tilt_deg": 4.0, "battery_pct": 90}
        assert [ts for ts, _ in read_series(s, "JG-1")] == [NOW - timedelta(seconds=5), NOW - timedelta(seconds=1), NOW,
                                                            NOW + timedelta(milliseconds=500)]


def test_times_before_1970_and_to_the_millisecond_go_through_the_database_exactly(fleet):
    """A batch's times are integers until each database writes them (SQLite's text from the floor second, PostgreSQL's
    intervals): read back through the ORM they are the readings' own, before the epoch too."""
    ingest = TelemetryIngest(fleet, files.device_types, clock=lambda: NOW)
    old = datetime(1965, 3, 1, 12, 0, 0, 999000, tzinfo=timezone.utc)
    ms = int((old - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(milliseconds=1))
    assert ingest.ingest([Message("JG-1", [reading(ms, tilt_deg=1.0), reading(MS + 1, tilt_deg=2.0)], NOW)])[0].stored == 2
    with fleet.session() as s:
        assert [ts for ts, _ in read_series(s, "JG-1")] == [old, NOW + timedelta(milliseconds=1)]
        assert s.get(Device, "JG-1").last_seen == NOW + timedelta(milliseconds=1)
    ingest.ingest([Message("RQ-1", reading(ms, gas_lel_pct=1.0), NOW)])
    with fleet.session() as s:
        assert s.get(Device, "RQ-1").last_seen == old


def test_late_history_does_not_overwrite_newer_values_and_statuses_are_kept(fleet):
    ingest = TelemetryIngest(fleet, files.device_types, clock=lambda: NOW)
    ingest.ingest([Message("JS-1", reading(MS, water_level_cm=5), NOW), Message("RQ-1", {"gas_lel_pct": 30}, NOW)])
    ingest.ingest([Message("JS-1", reading(MS - 60_000, water_level_cm=1, battery_pct=50), NOW)])
    with fleet.session() as s:
        gauge, gas = s.get(Device, "JS-1"), s.get(Device, "RQ-1")
        assert gauge.status == "maintenance" and gauge.last_values == {"water_level_cm": 5} and gauge.last_seen == NOW
        assert gas.status == "alarm" and gas.last_values == {"gas_lel_pct": 30}
        assert telemetry_count(s, "JS-1") == 2


def test_a_flood_is_logged_once_per_device(fleet, caplog):
    ingest = TelemetryIngest(fleet, files.device_types, clock=lambda: NOW)
    with caplog.at_level(logging.WARNING, logger="ucc.telemetry"):
        for _ in range(50):
            ingest.ingest([Message("JG-1", b"garbage", NOW), Message("GHOST", b'{"a": 1}', NOW),
                           Message("JG-1", {"tilt_deg": 999}, NOW)])
    assert ingest.stats()["malformed"] == 50 and ingest.stats()["unknown_device"] == 50
    assert len(caplog.records) == 3  # malformed JG-1, unknown GHOST, out of range JG-1: once each


def test_a_failing_hook_does_not_lose_the_batch(fleet):
    def boom(*_):
        raise RuntimeError("engine down")

    ingest = TelemetryIngest(fleet, files.device_types, on_stored=boom, clock=lambda: NOW)
    assert ingest.ingest([Message("JG-1", {"tilt_deg": 1}, NOW)])[0].stored == 1
    with fleet.session() as s:
        assert telemetry_count(s) == 1


def test_retention_rolls_up_hours_and_deletes_old_rows(fleet):
    ingest = TelemetryIngest(fleet, files.device_types, clock=lambda: NOW)
    old = NOW - timedelta(days=40)
    hour = old.replace(minute=0, second=0, microsecond=0)
    ms = int(hour.timestamp() * 1000)
    payload = [reading(ms + i * 60_000, tilt_deg=float(i), battery_pct=80) for i in range(10)]
    payload += [reading(ms + 3600_000, tilt_deg=7.0)]  # the next hour
    ingest.ingest([Message("JG-1", payload, NOW), Message("JG-1", reading(MS, tilt_deg=0.5), NOW),
                   Message("RQ-1", reading(ms, gas_lel_pct=2), NOW)])
    # chunks of 4 rows: the first hour is split over three chunks and merged
    assert ingest.roll_up(30, now=NOW, chunk=4) == 12
    with fleet.session() as s:
        assert telemetry_count(s) == 1  # the recent one stays
        rows = read_hourly(s, "JG-1")
        assert rows == [(hour, "battery_pct", 80.0, 80.0, 80.0, 10), (hour, "tilt_deg", 0.0, 9.0, 4.5, 10),
                        (hour + timedelta(hours=1), "tilt_deg", 7.0, 7.0, 7.0, 1)]
        assert read_hourly(s, "RQ-1") == [(hour, "gas_lel_pct", 2.0, 2.0, 2.0, 1)]
    assert ingest.roll_up(30, now=NOW) == 0


def test_the_mqtt_and_retention_settings(monkeypatch):
    from config import Settings

    monkeypatch.setenv("UCC_SECRET_KEY", "x")
    monkeypatch.delenv("UCC_MQTT_URL", raising=False)
    s = Settings.from_env()
    assert s.mqtt_url is None and s.telemetry_retention_days == 30 and s.mqtt_client_id == "ucc-telemetry"
    monkeypatch.setenv("UCC_MQTT_URL", "mqtt://127.0.0.1:1883")
    monkeypatch.setenv("UCC_TELEMETRY_RETENTION_DAYS", "7")
    s = Settings.from_env()
    assert s.mqtt_url == "mqtt://127.0.0.1:1883" and s.telemetry_retention_days == 7
    for bad in ("http://x", "mqtt://", "mqtt://h:99999"):
        monkeypatch.setenv("UCC_MQTT_URL", bad)
        with pytest.raises(SystemExit, match="UCC_MQTT_URL"):
            Settings.from_env()
    monkeypatch.setenv("UCC_MQTT_URL", "")
    monkeypatch.setenv("UCC_TELEMETRY_RETENTION_DAYS", "0")
    with pytest.raises(SystemExit, match="UCC_TELEMETRY_RETENTION_DAYS"):
        Settings.from_env()


def test_the_scheduler_runs_retention(fleet):
    import threading
    import time

    from scheduler import start_telemetry_retention

    ingest = TelemetryIngest(fleet, files.device_types)
    old = datetime.now(timezone.utc) - timedelta(days=40)
    ingest.ingest([Message("JG-1", {"ts": int(old.timestamp() * 1000), "values": {"tilt_deg": 1}},
                           datetime.now(timezone.utc))])
    stop = threading.Event()
    t = start_telemetry_retention(ingest, 30, interval_seconds=0.05, stop=stop)
    try:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=10)
        while datetime.now(timezone.utc) < deadline:
            with fleet.session() as s:
                if telemetry_count(s) == 0:
                    break
            time.sleep(0.05)
        with fleet.session() as s:
            assert telemetry_count(s) == 0 and len(read_hourly(s, "JG-1")) == 1
    finally:
        stop.set()
        t.join(5)
