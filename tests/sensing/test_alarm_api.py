"""The alarms API on SQLite and the real PostgreSQL: the list within each reader's scope and its filters, acknowledge
and clear by the roles that may, and bad input answered 400/403/404/409 in Chinese (never 500)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from data.models import utcnow
from data.tokens import create_token
from tests.conftest import make_database, make_settings
from tests.factories import small_world
from tests.sensing.test_alarms import P_A, P_B, add_devices

DEVICES = [("JG-1", "manhole_cover", P_A, "U-320402-water_affairs"),
           ("JG-2", "manhole_cover", P_A, "U-320402-water_affairs"),
           ("RQ-1", "gas_detector", P_A, "U-320400-gas"),
           ("JS-1", "water_gauge", P_B, "U-320403-water_affairs")]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    from app import create_app
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path_factory.mktemp("alarmapi"))
    init_db(db)
    start = utcnow() - timedelta(minutes=30)
    small_world(db, start)
    add_devices(db, DEVICES, now=start)
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True
    alarms = app.extensions["ucc"].alarms
    t = lambda s: start + timedelta(seconds=s)  # noqa: E731
    alarms.on_readings("JG-1", "manhole_cover", [(t(0), {"tilt_deg": 30}), (t(3), {"tilt_deg": 30})])
    alarms.on_readings("RQ-1", "gas_detector", [(t(0), {"gas_lel_pct": 60})])
    alarms.on_readings("JS-1", "water_gauge", [(t(0), {"battery_pct": 10})])
    alarms.on_readings("JG-2", "manhole_cover", [(t(0), {"battery_pct": 10})])

    def token(role="admin", area=None, unit=None):
        with db.session() as s:
            return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}

    yield app.test_client(), token, alarms
    app.extensions["ucc"].db.dispose()
    db.dispose()
    if schema:
        schema.drop()


def listed(resp):
    assert resp.status_code == 200, resp.get_json()
    return sorted((a["device"], a["rule"]) for a in resp.get_json()["items"])


def alarm_id(client, token, device, rule):
    items = client.get(f"/api/v1/alarms?device={device}", headers=token()).get_json()["items"]
    return next(a["id"] for a in items if a["rule"] == rule)


def test_the_list_and_its_filters(api):
    client, token, _ = api
    admin = token()
    body = client.get("/api/v1/alarms", headers=admin).get_json()
    assert body["total"] == 4 and (body["page"], body["per_page"]) == (1, 50)
    item = next(a for a in body["items"] if a["rule"] == "gas_level2")
    assert {"id", "device", "rule", "severity", "status", "started_at", "cleared_at", "values", "case_id"} <= set(item)
    assert (item["device"], item["severity"], item["status"], item["values"]) == (
        "RQ-1", "critical", "active", {"gas_lel_pct": 60})
    assert item["case_id"] is not None and item["cleared_at"] is None and item["started_at"].endswith("+08:00")
    assert listed(client.get("/api/v1/alarms?severity=warning", headers=admin)) == [
        ("JG-2", "cover_battery_low"), ("JS-1", "gauge_battery_low")]
    assert listed(client.get("/api/v1/alarms?device=JG-1", headers=admin)) == [("JG-1", "cover_tilt")]
    assert listed(client.get("/api/v1/alarms?status=cleared", headers=admin)) == []


def test_each_reader_sees_their_devices_alarms(api):
    client, token, _ = api
    assert listed(client.get("/api/v1/alarms", headers=token("duty_officer", "320403"))) == [
        ("JS-1", "gauge_battery_low")]
    handler = token("unit_handler", "320402", "U-320402-water_affairs")
    assert listed(client.get("/api/v1/alarms", headers=handler)) == [("JG-1", "cover_tilt"), ("JG-2", "cover_battery_low")]
    assert len(listed(client.get("/api/v1/alarms", headers=token("leader")))) == 4
    resp = client.get("/api/v1/alarms", headers=token("grid_member", "320402"))
    assert resp.status_code == 403 and resp.get_json()["message"] == "当前角色无权查看物联设备"


@pytest.mark.parametrize("query, needle", [
    ("status=open", "未知的告警状态"), ("severity=fatal", "未知的告警级别"), ("per_page=0", "per_page"),
    ("page=x", "应为整数"), ("device=" + "x" * 65, "设备编号"),
])
def test_bad_list_parameters(api, query, needle):
    client, token, _ = api
    resp = client.get(f"/api/v1/alarms?{query}", headers=token())
    assert resp.status_code == 400 and needle in resp.get_json()["message"]


def test_acknowledge_and_clear_by_the_units_handler(api):
    client, token, _ = api
    aid = alarm_id(client, token, "JG-2", "cover_battery_low")
    handler = token("unit_handler", "320402", "U-320402-water_affairs")
    url = f"/api/v1/alarms/{aid}/actions"
    resp = client.post(url, json={"action": "acknowledge"}, headers=handler)
    assert resp.status_code == 200 and resp.get_json()["status"] == "acknowledged"
    resp = client.post(url, json={"action": "acknowledge"}, headers=handler)
    assert resp.status_code == 409 and resp.get_json()["message"] == f"告警 #{aid} 已确认"
    resp = client.post(url, json={"action": "clear"}, headers=handler)
    body = resp.get_json()
    assert resp.status_code == 200 and body["status"] == "cleared" and body["cleared_at"] is not None
    assert [h["action"] for h in body["history"]] == ["raise", "acknowledge", "clear"]
    resp = client.post(url, json={"action": "clear"}, headers=handler)
    assert resp.status_code == 409 and "已解除" in resp.get_json()["message"]
    device = client.get("/api/v1/devices/JG-2", headers=token()).get_json()
    assert device["status"] == "online"


def test_who_may_act(api):
    client, token, _ = api
    aid = alarm_id(client, token, "JG-1", "cover_tilt")
    url = f"/api/v1/alarms/{aid}/actions"
    for headers, status in [(token("leader"), 403), (token("wall", "320400"), 403),
                            (token("grid_member", "320402"), 403),
                            (token("duty_officer", "320403"), 404),                     # outside their area
                            (token("unit_handler", "320400", "U-320400-gas"), 404)]:    # not their unit's device
        resp = client.post(url, json={"action": "acknowledge"}, headers=headers)
        assert resp.status_code == status, (headers, resp.get_json())
        assert any("\u4e00" <= ch <= "\u9fff" for ch in resp.get_json()["message"])
    resp = client.post(url, json={"action": "acknowledge"}, headers=token("duty_officer", "320402"))
    assert resp.status_code == 200 and resp.get_json()["acknowledged_by"].startswith("token:")


@pytest.mark.parametrize("body, status, needle", [
    ({"action": "delete"}, 400, "acknowledge"), ({}, 400, "acknowledge"), ({"action": 3}, 400, "acknowledge"),
    ([1, 2], 400, "JSON 对象"), ("text", 400, "JSON 对象"),
])
def test_bad_action_bodies(api, body, status, needle):
    client, token, _ = api
    aid = alarm_id(client, token, "RQ-1", "gas_level2")
    resp = client.post(f"/api/v1/alarms/{aid}/actions", json=body, headers=token())
    assert resp.status_code == status and needle in resp.get_json()["message"]


@pytest.mark.parametrize("path", ["/api/v1/alarms/999999/actions", "/api/v1/alarms/0/actions"])
def test_unknown_alarms(api, path):
    client, token, _ = api
    resp = client.post(path, json={"action": "clear"}, headers=token())
    assert resp.status_code == 404 and "不存在" in resp.get_json()["message"]


def test_huge_ids_and_no_token(api):
    client, token, _ = api
    resp = client.post(f"/api/v1/alarms/{2**70}/actions", json={"action": "clear"}, headers=token())
    assert resp.status_code in (400, 404) and resp.get_json()["message"]
    assert client.get("/api/v1/alarms").status_code == 401
