"""Telemetry over HTTP on SQLite and the real PostgreSQL: a device token posts the contract's payloads (stored, duplicates
and refusals answered; bad payloads 400 in Chinese, never 500; unknown devices 404), reads are scoped like the device,
a device token reaches nothing else, and the admin reads the ingest's counters."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from data.devices import write_devices
from data.models import Device
from data.tokens import create_token
from tests.conftest import make_database, make_settings
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request, tmp_path):
    from app import create_app
    from data.area_directory import AreaDirectory
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path)
    init_db(db)
    small_world(db, NOW)
    loc = AreaDirectory(db).locator()
    points = {"a": (119.905, 31.705), "b": (119.965, 31.765)}
    with db.session() as s:
        for i, type_, p in (("JG-1", "manhole_cover", "a"), ("JG-3", "manhole_cover", "b"), ("LD-1", "street_light", "a")):
            chain = loc.locate(*points[p])
            write_devices(s, [{"id": i, "type": type_, "name": i, "lon": points[p][0], "lat": points[p][1],
                               "grid_code": chain[0].code, "district_code": chain[3].code,
                               "unit_code": "U-320402-water_affairs"}])
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True

    def token(role="admin", area=None, unit=None):
        with db.session() as s:
            return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}

    yield app.test_client(), token, db, loc.locate(*points["a"])
    app.extensions["ucc"].db.dispose()
    db.dispose()
    if schema:
        schema.drop()


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_a_device_posts_and_an_officer_reads(api):
    client, token, db, _ = api
    device = token("device")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    body = [{"ts": ms(now - timedelta(seconds=10)), "values": {"tilt_deg": 1.5, "battery_pct": 88}},
            {"ts": ms(now), "values": {"tilt_deg": 2.5, "battery_pct": 101}}]
    r = client.post("/api/v1/devices/JG-1/telemetry", json=body, headers=device)
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert (got["stored"], got["duplicates"]) == (2, 0)
    assert [(x["key"], x["reason"]) for x in got["refused"]] == [("battery_pct", "out_of_range")]
    again = client.post("/api/v1/devices/JG-1/telemetry", json=body, headers=device).get_json()
    assert (again["stored"], again["duplicates"]) == (0, 2)
    flat = client.post("/api/v1/devices/LD-1/telemetry", json={"lamp_on": True, "current_a": 0.8}, headers=device)
    assert flat.status_code == 200 and flat.get_json()["stored"] == 1
    with db.session() as s:
        cover = s.get(Device, "JG-1")
        assert cover.status == "online" and cover.last_values == {"tilt_deg": 2.5, "battery_pct": 88}

    officer = token("duty_officer")
    series = client.get("/api/v1/devices/JG-1/telemetry", headers=officer).get_json()
    assert [i["values"] for i in series["items"]] == [{"tilt_deg": 1.5, "battery_pct": 88}, {"tilt_deg": 2.5}]
    start = (now - timedelta(seconds=5)).isoformat()
    one = client.get("/api/v1/devices/JG-1/telemetry", query_string={"key": "battery_pct", "start": start},
                     headers=officer).get_json()
    assert one["items"] == []
    tilt = client.get("/api/v1/devices/JG-1/telemetry", query_string={"key": "tilt_deg", "start": start},
                      headers=officer).get_json()
    assert [i["values"] for i in tilt["items"]] == [{"tilt_deg": 2.5}]

    stats = client.get("/api/v1/telemetry/stats", headers=token("admin")).get_json()
    assert stats["stored"] == 3 and stats["duplicates"] == 2 and stats["out_of_range"] == 2  # refused again in the re-sent batch
    assert client.get("/api/v1/telemetry/stats", headers=officer).status_code == 403


@pytest.mark.parametrize("data, words", [
    (b"{oops", None), (b"[]", "为空"), (b'{"ts": "now", "values": {"tilt_deg": 1}}', "毫秒"),
    (b'"text"', "报文应为"), (b'{"ts": 1, "values": {}}', "values"),
])
def test_bad_payloads_are_400_in_chinese(api, data, words):
    client, token, _, _ = api
    r = client.post("/api/v1/devices/JG-1/telemetry", data=data, headers=token("device"),
                    content_type="application/json")
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert body["error"] == "bad_request" and body["message"]
    if words:
        assert words in body["message"]


def test_nothing_valid_is_422_and_unknown_devices_404(api):
    client, token, _, _ = api
    device = token("device")
    r = client.post("/api/v1/devices/JG-1/telemetry", json={"tilt_deg": 500, "colour": "red"}, headers=device)
    assert r.status_code == 422 and "没有可保存的读数" in r.get_json()["message"]
    assert client.post("/api/v1/devices/NOPE/telemetry", json={"tilt_deg": 1}, headers=device).status_code == 404
    assert client.get("/api/v1/devices/NOPE/telemetry", headers=token("admin")).status_code == 404
    bad = client.get("/api/v1/devices/JG-1/telemetry", query_string={"key": "gas_lel_pct"}, headers=token("admin"))
    assert bad.status_code == 400 and "没有键" in bad.get_json()["message"]
    for q in ({"start": "yesterday"}, {"start": "2026-12-01T00:00:00"}, {"start": "2026-12-02T00:00:00+00:00",
                                                                          "end": "2026-12-01T00:00:00+00:00"}):
        assert client.get("/api/v1/devices/JG-1/telemetry", query_string=q, headers=token("admin")).status_code == 400


def test_a_device_token_only_posts_telemetry_within_its_area(api):
    client, token, _, chain_a = api
    district_a = chain_a[3].code
    device = token("device", area=district_a)
    assert client.post("/api/v1/devices/JG-1/telemetry", json={"tilt_deg": 1}, headers=device).status_code == 200
    # JG-3 lies in the other district: not told it exists
    assert client.post("/api/v1/devices/JG-3/telemetry", json={"tilt_deg": 1}, headers=device).status_code == 404
    for path in ("/api/v1/devices", "/api/v1/devices/JG-1", "/api/v1/devices/JG-1/telemetry", "/api/v1/events",
                 "/api/v1/device-types", "/api/v1/telemetry/stats", "/api/v1/indicators"):
        r = client.get(path, headers=device)
        assert r.status_code == 403, (path, r.status_code)
        assert "设备令牌只能上报遥测数据" in r.get_json()["message"]
    # people's tokens do not post telemetry
    r = client.post("/api/v1/devices/JG-1/telemetry", json={"tilt_deg": 1}, headers=token("duty_officer"))
    assert r.status_code == 403
