"""The device registry's API on SQLite and the real PostgreSQL: device types, the fleet filtered by type, status
and an area of any level, paging, each reader's scope, and bad parameters answered 400 (never 500)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from data.devices import write_devices
from data.models import Device
from data.tokens import create_token
from tests.conftest import make_database, make_settings
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


# where each device stands (points of the fixture)
AT = {"JG-1": "a", "JG-2": "a", "JG-3": "b", "JG-4": "c", "RQ-1": "a", "RQ-2": "b", "JS-1": "b", "LD-1": "c"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    """An app over rect_city with eight devices (the world is read-only here: one per database kind)."""
    from app import create_app
    from data.area_directory import AreaDirectory
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path_factory.mktemp("devapi"))
    init_db(db)
    small_world(db, NOW)
    loc = AreaDirectory(db).locator()
    points = {"a": (119.905, 31.705), "b": (119.965, 31.765), "c": (119.915, 31.775)}
    rows = [("JG-1", "manhole_cover", "a", "U-320402-water_affairs", "online"),
            ("JG-2", "manhole_cover", "a", "U-320402-water_affairs", "alarm"),
            ("JG-3", "manhole_cover", "b", "U-320403-water_affairs", "offline"),
            ("JG-4", "manhole_cover", "c", "U-320402-water_affairs", "online"),
            ("RQ-1", "gas_detector", "a", "U-320400-gas", "online"),
            ("RQ-2", "gas_detector", "b", "U-320400-gas", "maintenance"),
            ("JS-1", "water_gauge", "b", "U-320403-water_affairs", "online"),
            ("LD-1", "street_light", "c", "U-320400-street_lighting", "online")]
    with db.session() as s:
        for i, type_, p, unit, status in rows:
            chain = loc.locate(*points[p])
            write_devices(s, [{"id": i, "type": type_, "name": f"设备{i}", "lon": points[p][0], "lat": points[p][1],
                               "grid_code": chain[0].code, "district_code": chain[3].code, "unit_code": unit}],
                          status=status)
        s.get(Device, "RQ-1").last_values = {"gas_lel_pct": 1.5}
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True
    client = app.test_client()

    def token(role="admin", area=None, unit=None):
        with db.session() as s:
            return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}

    yield client, token, {k: loc.locate(*v) for k, v in points.items()}
    app.extensions["ucc"].db.dispose()
    db.dispose()
    if schema:
        schema.drop()


def ids(resp):
    assert resp.status_code == 200, resp.get_json()
    return sorted(d["id"] for d in resp.get_json()["items"])


def test_device_types(api):
    client, token, _ = api
    body = client.get("/api/v1/device-types", headers=token("duty_officer")).get_json()
    assert [t["code"] for t in body["items"]] == ["manhole_cover", "water_gauge", "gas_detector", "street_light",
                                                  "bridge_sensor", "video_ai"]
    cover = body["items"][0]
    assert cover["name"] == "智慧井盖" and {"code", "name", "keys", "rules"} <= set(cover)
    assert cover["rules"][0]["condition"] == {"type": "duration", "seconds": 2,
                                              "all": [{"key": "tilt_deg", "op": ">", "value": 15}]}


def test_the_fleet_filtered(api):
    client, token, chains = api
    admin = token()
    body = client.get("/api/v1/devices", headers=admin).get_json()
    assert body["total"] == 8 and (body["page"], body["per_page"]) == (1, 50)
    item = next(d for d in body["items"] if d["id"] == "RQ-1")
    assert {k: item[k] for k in ("type", "name", "status", "values")} == {
        "type": "gas_detector", "name": "设备RQ-1", "status": "online", "values": {"gas_lel_pct": 1.5}}
    assert item["unit"] == {"code": "U-320400-gas", "name": "常州港华燃气有限公司"}
    assert (item["lon"], item["lat"], item["last_seen"]) == (119.905, 31.705, None)
    assert ids(client.get("/api/v1/devices?type=gas_detector", headers=admin)) == ["RQ-1", "RQ-2"]
    assert ids(client.get("/api/v1/devices?status=online&type=manhole_cover", headers=admin)) == ["JG-1", "JG-4"]
    a, c = chains["a"], chains["c"]
    assert ids(client.get("/api/v1/devices?area=320403", headers=admin)) == ["JG-3", "JS-1", "RQ-2"]
    for i in range(5):   # point a's grid, community, street, district and city
        code = a[i].code
        expected = sorted(d for d, p in AT.items() if chains[p][i].code == code)
        assert ids(client.get(f"/api/v1/devices?area={code}", headers=admin)) == expected, a[i].level
    assert ids(client.get(f"/api/v1/devices?area={a[0].code}", headers=admin)) == ["JG-1", "JG-2", "RQ-1"]
    assert c[3].code == a[3].code and c[2].code != a[2].code  # the points tell the levels apart
    page = client.get("/api/v1/devices?per_page=3&page=3", headers=admin).get_json()
    assert [d["id"] for d in page["items"]] == ["RQ-1", "RQ-2"] and page["total"] == 8


def test_one_device(api):
    client, token, chains = api
    body = client.get("/api/v1/devices/JG-3", headers=token()).get_json()
    assert body["id"] == "JG-3" and body["status"] == "offline"
    assert [a["code"] for a in body["chain"]] == [a.code for a in chains["b"]]
    resp = client.get("/api/v1/devices/NOPE-1", headers=token())
    assert resp.status_code == 404 and resp.get_json() == {"error": "not_found", "message": "设备 NOPE-1 不存在"}


def test_each_reader_sees_their_area(api):
    client, token, chains = api
    district = token("duty_officer", "320403")
    assert ids(client.get("/api/v1/devices", headers=district)) == ["JG-3", "JS-1", "RQ-2"]
    assert client.get("/api/v1/devices/JG-1", headers=district).status_code == 404  # not told it exists
    assert client.get("/api/v1/devices/JG-3", headers=district).status_code == 200
    resp = client.get("/api/v1/devices?area=320402", headers=district)
    assert resp.status_code == 403 and "不在您的辖区内" in resp.get_json()["message"]
    street = chains["a"][2].code
    assert ids(client.get("/api/v1/devices", headers=token("leader", street))) == \
        ids(client.get(f"/api/v1/devices?area={street}", headers=token()))
    assert ids(client.get("/api/v1/devices", headers=token("wall"))) != []
    handler = token("unit_handler", "320402", "U-320402-water_affairs")
    assert ids(client.get("/api/v1/devices", headers=handler)) == ["JG-1", "JG-2", "JG-4"]
    assert client.get("/api/v1/devices/RQ-1", headers=handler).status_code == 404
    resp = client.get("/api/v1/devices", headers=token("grid_member", chains["a"][0].code))
    assert resp.status_code == 403 and resp.get_json()["message"] == "当前角色无权查看物联设备"
    assert client.get("/api/v1/devices").status_code == 401


@pytest.mark.parametrize("query, status, needle", [
    ("type=toaster", 400, "未知的设备类型 toaster"),
    ("status=broken", 400, "未知的设备状态 broken"),
    ("page=0", 400, "参数 page 应在"),
    ("page=abc", 400, "参数 page 应为整数"),
    ("per_page=501", 400, "参数 per_page 应在"),
    ("per_page=-1", 400, "参数 per_page 应在"),
    ("page=99999999999999999999", 400, "参数 page"),
    ("area=999999", 404, "区域 999999 不存在"),
    ("area=" + "9" * 200, 400, "参数 area 应为区域编码"),
    ("area=%25", 404, "不存在"),
])
def test_bad_parameters(api, query, status, needle):
    client, token, _ = api
    resp = client.get(f"/api/v1/devices?{query}", headers=token())
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert needle in resp.get_json()["message"]


def test_hostile_values_never_answer_500(api):
    """Every hostile text of tests/fuzzing.py in every parameter and as the id: a 4xx or a 200, never a 5xx."""
    from urllib.parse import quote

    from tests.fuzzing import HOSTILE_TEXT

    client, token, _ = api
    headers = token("duty_officer")
    for value in HOSTILE_TEXT:
        for name in ("type", "status", "area", "page", "per_page"):
            resp = client.get(f"/api/v1/devices?{name}={quote(value, safe='', errors='surrogatepass')}", headers=headers)
            assert resp.status_code < 500, (name, value, resp.get_data(as_text=True)[:200])
            if resp.status_code >= 400:
                assert resp.get_json()["message"], (name, value)
        resp = client.get(f"/api/v1/devices/{quote(value, safe='', errors='surrogatepass')}", headers=headers)
        assert resp.status_code < 500, (value, resp.get_data(as_text=True)[:200])
