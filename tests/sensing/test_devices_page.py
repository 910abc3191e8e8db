"""/devices (物联感知) through its Dash callbacks on the demo city, and the device chart on the case pages: the page
guard per role, the fleet's filters and counts, a device's card and chart, acknowledge and clear (and a leader's
refusal), the active alarms by severity; an iot case shows its device and chart on /console and /unit, another
case nothing. The cover's story (tests/sensing/device_story.py) goes through the real ingest and alarm engine."""
from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest

import callbacks
from dispatch import access
from data.models import Alarm, utcnow
from data.tokens import Principal
from tests.conftest import make_settings
from tests.fuzzing import DASH_CALLBACK, callback_body, csrf_header, dash_app_of, send_json, server_callbacks, sign_in
from tests.sensing.device_story import HANDLER_UNIT, pick_cover, tell

ROLE_OF = {"admin": "admin", "duty": "duty_officer", "leader": "leader", "handler": "unit_handler",
           "grid": "grid_member", "wall": "wall"}
DUTY = Principal("user", "duty", "duty_officer", "320400")


def _key(prefix: str) -> str:
    return next(k for k in callbacks.PAGE_OF_OUTPUT if k.lstrip(".").startswith(prefix))


FLEET, CARD, CHART = _key("dv-table.children"), _key("dv-card.children"), _key("dv-graph.figure")
ACT, ALARMS = _key("dv-msg.children"), _key("dv-alarms.children")
INGEST = _key("dv-ingest.children")
CONSOLE_CASE, UNIT_CASE = _key("cs-detail.children"), _key("un-case-view.children")


@pytest.fixture(scope="module")
def world(demo_sqlite_url, tmp_path_factory):
    """The demo city with one cover's story told: 30 h of readings, lifted 3 h ago (a critical alarm and its
    case, cleared by itself), its battery low at the end (a warning left active)."""
    from app import create_app

    dst = tmp_path_factory.mktemp("devpage") / "app.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), dst)
    app = create_app(make_settings(f"sqlite:///{dst}"))
    app.config["TESTING"] = True
    svc = app.extensions["ucc"]
    story = tell(svc, pick_cover(svc))
    assert story["alarm"] and story["case"], story
    with svc.db.session() as s:
        story["battery_alarm"] = s.query(Alarm.id).filter(Alarm.device_id == story["device"],
                                                          Alarm.rule_code == "cover_battery_low").scalar()
    yield app, story
    svc.db.dispose()


def _client(app, user):
    client = app.test_client()
    sign_in(client, user)
    return client


def _call(client, key: str, values: list, changed: int = 0):
    entry = server_callbacks(dash_app_of(client.application))[key]
    return send_json(client, "POST", DASH_CALLBACK, callback_body(key, entry, values, changed), csrf_header(client))


def _out(resp, component: str, prop: str = "children"):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:400]
    return resp.get_json()["response"][component][prop]


def _fleet(client, q=None, type_=None, status=None, area=None, changed=0):
    # inputs: q, type, status, area, prev, next, refresh, tick; states: page, device
    return _call(client, FLEET, [q, type_, status, area, 0, 0, 0, None, 1, None], changed)


def _ids(resp) -> list[str]:
    return [row["props"]["id"]["device"] for row in _rows(_out(resp, "dv-table"))]


def _rows(table) -> list:
    if table["type"] != "Table":
        return []
    body = table["props"]["children"][1]
    return body["props"]["children"]


# ---- who opens the page and calls its callbacks ----------------------------------------------------------
@pytest.mark.parametrize("user, status", [("admin", 200), ("duty", 200), ("leader", 200), ("handler", 200),
                                          ("grid", 403), ("wall", 403)])
def test_the_page_guard_per_role(world, user, status):
    app, _ = world
    client = _client(app, user)
    assert client.get("/devices").status_code == status
    resp = _fleet(client)
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    if status == 403:
        assert "物联感知" in resp.get_json()["message"]
    assert any(p.path == "/devices" for p in access.pages_of(ROLE_OF[user])) == (status == 200)  # the menu


# ---- the fleet -----------------------------------------------------------------------------------------
def test_the_counts_and_the_first_page(world):
    app, story = world
    resp = _fleet(_client(app, "duty"))
    counts = {k: _out(resp, f"dv-c-{k}") for k in ("total", "online", "offline", "alarm", "maintenance")}
    assert counts["total"] == "6,093"
    assert sum(int(v.replace(",", "")) for k, v in counts.items() if k != "total") == 6093
    assert int(counts["alarm"]) >= 1  # the cover with its battery warning
    assert len(_ids(resp)) == 20 and _out(resp, "dv-pageinfo") == "第 1 / 305 页 · 共 6,093 台"


def test_search_type_status_and_area_filters(world):
    app, story = world
    client = _client(app, "duty")
    device = story["device"]
    resp = _fleet(client, q=device.lower())  # case-insensitive, on the id or the name
    assert _ids(resp) == [device] and _out(resp, "dv-pageinfo") == "第 1 / 1 页 · 共 1 台"
    name = app.extensions["ucc"].devices.get(DUTY, device)["name"]  # 祥荡街道智慧井盖0150号
    assert device in _ids(_fleet(client, q=name[-9:]))
    gas = _fleet(client, type_="gas_detector")
    assert all(i.startswith("RQ-") for i in _ids(gas)) and "共 600 台" in _out(gas, "dv-pageinfo")
    in_alarm = _ids(_fleet(client, status="alarm"))
    assert device in in_alarm
    with app.extensions["ucc"].db.session() as s:
        from data.models import Device

        district = s.get(Device, device).district_code
    assert device in _ids(_fleet(client, q=device, area=district))
    other = "320411" if district != "320411" else "320404"
    resp = _fleet(client, q=device, area=other)
    assert _ids(resp) == [] and "没有符合条件的设备" in json.dumps(_out(resp, "dv-table"), ensure_ascii=False)
    # bad input: a message, never a 500
    resp = _fleet(client, type_="rocket")
    assert "未知的设备类型" in _out(resp, "dv-fleet-msg")
    resp = _fleet(client, q="\x00")
    assert resp.status_code == 400


def test_a_unit_handler_sees_only_their_units_devices(world):
    app, story = world
    handler = _client(app, "handler")
    resp = _fleet(handler)
    svc = app.extensions["ucc"]
    with svc.db.session() as s:
        from data.models import Device

        units = {s.get(Device, i).unit_code for i in _ids(resp)}
    assert units == {HANDLER_UNIT}
    assert story["device"] in _ids(_fleet(handler, q=story["device"]))
    gas = _ids(_fleet(handler, type_="gas_detector"))
    assert gas == []  # gas detectors belong to the gas company


# ---- a device ------------------------------------------------------------------------------------------
def _card(client, device, key=None):
    # inputs: dv-device, dv-refresh; state: dv-key
    return _call(client, CARD, [device, 0, key])


def test_the_device_card(world):
    app, story = world
    resp = _card(_client(app, "duty"), story["device"])
    text = json.dumps(resp.get_json(), ensure_ascii=False)
    for needle in ("智慧井盖", "天宁区城市管理局", "天宁区", "经度", "最后通信", "电量", "15 %", "倾角", "°",
                   "井盖倾斜或被掀开", "紧急", "已解除", "井盖终端电量低", "未确认",
                   f"/console?case={story['case']}"):
        assert needle in text, needle
    assert _out(resp, "dv-key", "value") == "battery_pct"  # the open alarm's key
    options = [o["value"] for o in _out(resp, "dv-key", "options")]
    assert options == ["tilt_deg", "displacement_mm", "water_level_cm", "battery_pct"]
    # a handler opens cases on their workspace; a leader sees no buttons
    text = json.dumps(_card(_client(app, "handler"), story["device"]).get_json(), ensure_ascii=False)
    assert f"/unit?case={story['case']}" in text and '"type": "dv-act"' in text
    text = json.dumps(_card(_client(app, "leader"), story["device"]).get_json(), ensure_ascii=False)
    assert '"type": "dv-act"' not in text
    # a device outside a reader's scope is not told; a bad id is a 400
    resp = _card(_client(app, "baizhuang"), "RQ-320411-00001")
    assert "不存在" in json.dumps(resp.get_json(), ensure_ascii=False)
    assert _card(_client(app, "duty"), "a\x00b").status_code == 400


def test_the_chart_data(world):
    app, story = world
    svc = app.extensions["ucc"]
    now = utcnow()
    day = svc.devices.series(DUTY, story["device"], "tilt_deg", start=now - timedelta(hours=24), end=now)
    assert day["resolution"] == "raw" and day["unit"] == "°" and day["name"] == "倾角"
    assert max(p["value"] for p in day["points"]) == 32.0 and len(day["points"]) > 140
    assert [(t["value"], t["op"], t["rule"]) for t in day["thresholds"]] == [(15, ">", "cover_tilt")]
    week = svc.devices.series(DUTY, story["device"], "tilt_deg", start=now - timedelta(days=7), end=now)
    assert week["resolution"] == "hour" and 29 <= len(week["points"]) <= 32
    peak = max(week["points"], key=lambda p: p["max"])
    assert peak["max"] == 32.0 and peak["value"] < 32.0 and peak["min"] < 3
    # through the callback: the line and the threshold drawn, in the city's time
    client = _client(app, "duty")
    resp = _call(client, CHART, [{"device": story["device"]}, "tilt_deg", "24h"])
    fig = _out(resp, "dv-graph", "figure")
    line = fig["data"][-1]
    assert len(line["y"]) == len(day["points"]) and max(line["y"]) == 32.0
    assert any(sh.get("y0") == 15 for sh in fig["layout"]["shapes"])
    assert any("井盖倾斜或被掀开：高于 15°" in a.get("text", "") for a in fig["layout"]["annotations"])
    assert "条读数" in _out(resp, "dv-chart-note")
    resp = _call(client, CHART, [{"device": story["device"]}, "tilt_deg", "7d"])
    assert "小时均值" in _out(resp, "dv-chart-note") and len(_out(resp, "dv-graph", "figure")["data"]) == 3
    # a key the type has not: the message, the chart kept
    resp = _call(client, CHART, [{"device": story["device"]}, "gas_lel_pct", "24h"])
    assert "没有可绘图的键" in _out(resp, "dv-chart-note")
    assert _call(client, CHART, [{"device": story["device"]}, "tilt_deg", "1y"]).status_code == 400


def test_the_active_alarms_gravest_first(world):
    app, story = world
    resp = _call(_client(app, "duty"), ALARMS, [0, None])
    text = json.dumps(_out(resp, "dv-alarms"), ensure_ascii=False)
    assert "未解除的告警共" in text and story["device"] in text
    listing = app.extensions["ucc"].alarms.list(DUTY, open_only=True, by_severity=True, per_page=500)
    ranks = ["critical", "major", "minor", "warning"]
    keys = [(ranks.index(a["severity"]), a["started_at"]) for a in listing["items"]]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert all(a["status"] != "cleared" for a in listing["items"])


# ---- acknowledge and clear -------------------------------------------------------------------------------
def _act(client, alarm_id: int, action: str, fleet_list: bool = False):
    button = {"action": action, "alarm": alarm_id, "type": "dv-fact" if fleet_list else "dv-act"}
    pressed = [{"id": button, "property": "n_clicks", "value": 1}]
    body = {"output": ACT, "outputs": [{"id": "dv-msg", "property": "children"},
                                       {"id": "dv-msg", "property": "className"},
                                       {"id": "dv-refresh", "property": "data"}],
            "inputs": [pressed if not fleet_list else [], pressed if fleet_list else []],
            "state": [{"id": "dv-refresh", "property": "data", "value": 3}],
            "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"]}
    return send_json(client, "POST", DASH_CALLBACK, body, csrf_header(client))


def test_acknowledge_and_clear_through_the_callback_and_a_leaders_refusal(world):
    app, story = world
    alarm_id = story["battery_alarm"]
    resp = _act(_client(app, "leader"), alarm_id, "acknowledge")
    assert _out(resp, "dv-msg") == "只有管理员、值班员和设备责任单位的处置人员可以确认或解除告警"
    assert _out(resp, "dv-msg", "className") == "dv-msg is-error"
    assert "dv-refresh" not in resp.get_json()["response"]
    duty = _client(app, "duty")
    resp = _act(duty, alarm_id, "acknowledge")
    assert _out(resp, "dv-msg") == f"告警 #{alarm_id}（井盖终端电量低）已确认" and _out(resp, "dv-refresh", "data") == 4
    resp = _act(duty, alarm_id, "acknowledge", fleet_list=True)
    assert _out(resp, "dv-msg") == f"告警 #{alarm_id} 已确认"  # the service's 409, shown
    resp = _act(_client(app, "handler"), alarm_id, "clear")  # the device's unit may clear it
    assert _out(resp, "dv-msg").endswith("已解除")
    with app.extensions["ucc"].db.session() as s:
        alarm = s.get(Alarm, alarm_id)
        assert (alarm.status, alarm.acknowledged_by, alarm.cleared_by) == ("cleared", "user:duty", "user:handler")
    assert _act(duty, 0, "clear").status_code == 400


# ---- the case pages ---------------------------------------------------------------------------------------
def test_an_iot_case_shows_its_device_and_chart_and_another_case_nothing(world):
    app, story = world
    svc = app.extensions["ucc"]
    items = svc.alarms.of_case(DUTY, story["case"])
    assert len(items) == 1 and items[0]["device"]["id"] == story["device"]
    chart = items[0]["charts"][0]
    assert chart["key"] == "tilt_deg" and [t["value"] for t in chart["thresholds"]] == [15]
    assert abs(chart["start"] - (story["lifted_at"] - timedelta(hours=6))) < timedelta(seconds=10)  # 6 h before
    assert max(p["value"] for p in chart["points"]) == 32.0 and chart["marks"]["cleared_at"] is not None
    duty = _client(app, "duty")
    text = json.dumps(_out(_call(duty, CONSOLE_CASE, [{"id": story["case"]}, None]), "cs-detail"), ensure_ascii=False)
    assert "物联设备与告警" in text and f"/devices?device={story['device']}" in text and '"type": "Graph"' in text
    assert "井盖倾斜或被掀开：高于 15°" in text
    other, _ = svc.cases.intake({"category": "020102", "lon": 119.975, "lat": 31.79, "source": "hotline",
                                 "description": "暴露垃圾"}, DUTY)
    assert svc.alarms.of_case(DUTY, other["id"]) == []
    text = json.dumps(_out(_call(duty, CONSOLE_CASE, [{"id": other["id"]}, None]), "cs-detail"), ensure_ascii=False)
    assert "物联设备与告警" not in text and '"type": "Graph"' not in text
    # the unit's workspace (an admin opens it) shows the same block
    admin = _client(app, "admin")
    resp = _call(admin, UNIT_CASE, [story["case"], 0, None, None])
    text = json.dumps(_out(resp, "un-case-view"), ensure_ascii=False)
    assert "物联设备与告警" in text and f"/devices?device={story['device']}" in text and '"type": "Graph"' in text


# ---- the reads behind the page on SQLite and the real PostgreSQL -------------------------------------------
from tests.sensing.test_alarm_api import api  # noqa: E402,F401 - the four devices and alarms, per database

ADMIN = Principal("user", "admin", "admin", "320400")


def test_an_unknown_status_is_a_message_not_a_500(world):
    app, _story = world
    resp = _fleet(_client(app, "duty"), status="bogus")
    assert "未知的设备状态" in _out(resp, "dv-fleet-msg")
    assert _out(resp, "dv-c-total") == "—"


def test_the_ingests_refusals_are_shown_to_operators_and_not_to_leaders(world):
    """Malformed messages and unknown devices are counted and shown on the page (the operations view), with the MQTT
    consumer's state; a leader does not see the ingest's counters."""
    from sensing.telemetry import Message

    app, story = world
    ingest = app.extensions["ucc"].telemetry
    before = ingest.stats()
    ingest.ingest([Message("NO-SUCH-DEVICE", {"tilt_deg": 1}, utcnow()),
                   Message(story["device"], b"{not json", utcnow())])
    text = json.dumps(_out(_call(_client(app, "duty"), INGEST, [None, 0]), "dv-ingest"), ensure_ascii=False)
    assert "格式错误" in text and "未登记设备" in text and "MQTT 未接入" in text
    assert f"{before['malformed'] + 1:,}" in text and "is-alert" in text
    assert _out(_call(_client(app, "leader"), INGEST, [None, 0]), "dv-ingest") == []


def test_search_counts_severity_order_and_a_cases_alarms_on_each_database(api):  # noqa: F811
    client, token, alarms = api
    registry = alarms.registry
    body = client.get("/api/v1/devices?q=jg-", headers=token()).get_json()  # the API's search too
    assert [d["id"] for d in body["items"]] == ["JG-1", "JG-2"]
    resp = client.get("/api/v1/devices?q=" + "x" * 65, headers=token())
    assert resp.status_code == 400 and "搜索内容" in resp.get_json()["message"]
    assert [d["id"] for d in registry.list(ADMIN, search="jg")["items"]] == ["JG-1", "JG-2"]
    assert registry.list(ADMIN, search="%")["total"] == 0 and registry.list(ADMIN, search="_")["total"] == 0
    counts = registry.status_counts(ADMIN)
    assert counts["total"] == 4 and counts["alarm"] == 4 and counts["online"] == 0
    assert registry.status_counts(ADMIN, type_="manhole_cover", search="JG-2")["total"] == 1
    listing = alarms.list(ADMIN, open_only=True, by_severity=True)
    assert [a["severity"] for a in listing["items"]] == ["critical", "critical", "warning", "warning"]
    gas = next(a for a in listing["items"] if a["rule"] == "gas_level2")
    items = alarms.of_case(ADMIN, gas["case_id"])
    assert [(i["device"]["id"], [c["key"] for c in i["charts"]]) for i in items] == [("RQ-1", ["gas_lel_pct"])]
    assert [t["value"] for t in items[0]["charts"][0]["thresholds"]] == [50]
