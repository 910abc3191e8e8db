"""The emergency resource API on SQLite and the real PostgreSQL: nearest first and a page, one resource, allocate
(201; 409 when not enough is left), list and release a case's allocations — and every bad parameter answered with
the contract's JSON error (400/401/403/404/409/422), never a 500."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from data.area_directory import AreaDirectory
from data.resources import write_resources, write_stock
from data.tokens import create_token
from tests.conftest import make_database, make_settings
from tests.factories import small_world, api_error as error

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
HERE = (119.93, 31.73)
RESOURCES = [  # id, type, name, dlon, specialty, capacity, unit, stock
    ("RQ-T1", "team", "燃气抢修一队", 0.001, "燃气抢修", 12, "U-320400-gas", ()),
    ("RQ-T2", "team", "燃气抢修二队", 0.02, "燃气抢修", 10, "U-320400-gas", ()),
    ("XF-T1", "team", "消防救援站", 0.005, "消防", 30, "U-320402-fire_rescue", ()),
    ("CK-1", "warehouse", "应急物资仓库", 0.003, None, None, "U-320402-emergency_management",
     (("沙袋", 200, "袋"), ("救生衣", 40, "件"))),
    ("BN-1", "shelter", "实验小学避难场所", 0.008, None, 600, "U-320402-civil_affairs", ()),
    ("PS-C1", "equipment", "大功率排水车", 0.004, "排水", None, "U-320402-water_affairs", ()),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    from app import create_app
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path_factory.mktemp("resapi"))
    init_db(db)
    small_world(db, NOW)
    loc = AreaDirectory(db).locator()
    with db.session() as s:
        rows, stock = [], []
        for rid, type_, name, dlon, spec, cap, unit, items in RESOURCES:
            lon, lat = HERE[0] + dlon, HERE[1]
            chain = loc.locate(lon, lat)
            rows.append({"id": rid, "type": type_, "name": name, "lon": lon, "lat": lat, "grid_code": chain[0].code,
                         "district_code": chain[3].code, "unit_code": unit, "specialty": spec, "capacity": cap})
            stock += [{"resource_id": rid, "item": i, "quantity": q, "unit": u} for i, q, u in items]
        write_resources(s, rows)
        write_stock(s, stock)
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True
    client = app.test_client()

    def token(role="duty_officer", area=None, unit=None):
        with db.session() as s:
            return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}

    yield client, token
    app.extensions["ucc"].db.dispose()
    db.dispose()
    if schema:
        schema.drop()



def test_nearest_first(api):
    client, token = api
    resp = client.get(f"/api/v1/resources?near={HERE[0]},{HERE[1]}", headers=token())
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert [i["id"] for i in items] == ["RQ-T1", "CK-1", "PS-C1", "XF-T1", "BN-1", "RQ-T2"]
    assert [i["distance_m"] for i in items] == sorted(i["distance_m"] for i in items)
    assert items[0]["distance_m"] == pytest.approx(94.9, abs=1)
    assert {"id", "type", "name", "lon", "lat", "unit", "status", "capacity", "stock"} <= set(items[0])
    ck = items[1]
    assert ck["stock"] == [{"item": "救生衣", "quantity": 40, "unit": "件"}, {"item": "沙袋", "quantity": 200, "unit": "袋"}]
    gas = client.get(f"/api/v1/resources?near={HERE[0]},{HERE[1]}&type=team&specialty=燃气抢修&limit=1",
                     headers=token()).get_json()["items"]
    assert [i["id"] for i in gas] == ["RQ-T1"]
    assert client.get(f"/api/v1/resources?near={HERE[0]},{HERE[1]}&status=lost", headers=token()).status_code == 400
    near = client.get(f"/api/v1/resources?near={HERE[0]},{HERE[1]}&radius_m=500", headers=token()).get_json()
    assert {i["id"] for i in near["items"]} == {"RQ-T1", "CK-1", "PS-C1", "XF-T1"}
    assert client.get(f"/api/v1/resources?near={HERE[0]},{HERE[1]}", headers=token("leader")).status_code == 200
    # a unit handler: their unit's only
    mine = client.get(f"/api/v1/resources?near={HERE[0]},{HERE[1]}",
                      headers=token("unit_handler", "320400", "U-320400-gas")).get_json()["items"]
    assert [i["id"] for i in mine] == ["RQ-T1", "RQ-T2"]


def test_a_page_and_one(api):
    client, token = api
    body = client.get("/api/v1/resources?type=team&per_page=2", headers=token()).get_json()
    assert body["total"] == 3 and [i["id"] for i in body["items"]] == ["RQ-T1", "RQ-T2"]
    page2 = client.get("/api/v1/resources?type=team&per_page=2&page=2", headers=token()).get_json()
    assert [i["id"] for i in page2["items"]] == ["XF-T1"]
    one = client.get("/api/v1/resources/BN-1", headers=token()).get_json()
    assert one["capacity"] == 600 and one["occupancy"] == 0 and one["chain"][-1]["level"] == 1
    error(client.get("/api/v1/resources/NOPE", headers=token()), 404)


@pytest.mark.parametrize("query", ["near=abc", "near=119.9", "near=119.9,31.7,5", "near=nan,31.7", "near=200,31.7",
                                   "near=119.9,31.7&radius_m=0", "near=119.9,31.7&radius_m=-10",
                                   "near=119.9,31.7&radius_m=x", "near=119.9,31.7&limit=501",
                                   "near=119.9,31.7&limit=0", "near=119.9,31.7&limit=two", "near=119.9,31.7&type=tank",
                                   "type=tank", "status=lost", "limit=5", "per_page=501", "page=0"])
def test_bad_queries_are_400(api, query):
    client, token = api
    error(client.get(f"/api/v1/resources?{query}", headers=token()), 400)


def test_who_may_read(api):
    client, token = api
    error(client.get("/api/v1/resources"), 401)
    error(client.get("/api/v1/resources", headers=token("grid_member")), 403)
    assert client.get("/api/v1/resources", headers=token("wall")).status_code == 200


_spot = iter(range(10**6))


def _emergency(client, token, lon, category="040102"):
    """A new emergency case near `lon` in district 320402 (each at its own spot: two at one would merge)."""
    k = next(_spot)
    resp = client.post("/api/v1/events", json={"category": category, "lon": lon + (k % 20) * 0.0009,
                                               "lat": 31.702 + (k // 20) * 0.0009, "source": "hotline",
                                               "severity": 4}, headers=token())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def test_allocate_list_release(api):
    client, token = api
    officer = token()
    case_id = _emergency(client, token, 119.905)
    resp = client.post(f"/api/v1/events/{case_id}/resources", json={"resource": "CK-1", "item": "沙袋", "quantity": 150},
                       headers=officer)
    assert resp.status_code == 201, resp.get_json()
    alloc = resp.get_json()
    assert alloc["resource"]["name"] == "应急物资仓库" and alloc["quantity"] == 150 and alloc["unit"] == "袋"
    msg = error(client.post(f"/api/v1/events/{case_id}/resources", json={"resource": "CK-1", "item": "沙袋",
                                                                         "quantity": 51}, headers=officer), 409)
    assert "库存不足，剩余 50袋" in msg
    team = client.post(f"/api/v1/events/{case_id}/resources", json={"resource": "RQ-T1"}, headers=officer)
    assert team.status_code == 201
    assert client.get("/api/v1/resources/RQ-T1", headers=officer).get_json()["status"] == "deployed"
    listed = client.get(f"/api/v1/events/{case_id}/resources", headers=officer).get_json()
    assert [i["resource"]["id"] for i in listed["items"]] == ["CK-1", "RQ-T1"] and listed["open"] == 2
    history = client.get(f"/api/v1/events/{case_id}", headers=officer).get_json()["history"]
    assert [h["action"] for h in history[-2:]] == ["allocate_resource", "allocate_resource"]
    assert "沙袋 150袋" in history[-2]["note"]
    resp = client.delete(f"/api/v1/events/{case_id}/resources/{alloc['id']}", headers=officer)
    assert resp.status_code == 200 and resp.get_json()["released_at"] is not None
    assert "已于" in error(client.delete(f"/api/v1/events/{case_id}/resources/{alloc['id']}", headers=officer), 409)
    stock = client.get("/api/v1/resources/CK-1", headers=officer).get_json()["stock"]
    assert {"item": "沙袋", "quantity": 200, "unit": "袋"} in stock
    client.delete(f"/api/v1/events/{case_id}/resources/{team.get_json()['id']}", headers=officer)
    assert client.get("/api/v1/resources/RQ-T1", headers=officer).get_json()["status"] == "available"


@pytest.mark.parametrize("body,status", [
    ({"resource": "CK-1", "item": "沙袋", "quantity": "abc"}, 400), ({"resource": "CK-1", "item": "沙袋", "quantity": 0}, 400),
    ({"resource": "CK-1", "item": "沙袋", "quantity": -1}, 400), ({"resource": "CK-1", "item": "沙袋"}, 400),
    ({"resource": "NOPE"}, 404), ({"resource": "CK-1", "item": "黄金", "quantity": 1}, 404), ({}, 400),
    ({"resource": "RQ-T2", "quantity": 2}, 400), ({"resource": "RQ-T2", "extra": 1}, 400), ([1, 2], 400),
    ({"resource": ["RQ-T2"]}, 400), ({"resource": "BN-1", "quantity": 601}, 409),
])
def test_bad_allocations(api, body, status):
    client, token = api
    case_id = _emergency(client, token, 119.907)
    error(client.post(f"/api/v1/events/{case_id}/resources", json=body, headers=token()), status)
    assert client.get(f"/api/v1/events/{case_id}/resources", headers=token()).get_json()["items"] == []


def test_who_may_allocate(api):
    client, token = api
    case_id = _emergency(client, token, 119.909)  # in district 320402
    body = {"resource": "RQ-T2"}
    error(client.post(f"/api/v1/events/{case_id}/resources", json=body, headers=token("duty_officer", "320403")), 403)
    error(client.post(f"/api/v1/events/{case_id}/resources", json=body, headers=token("wall")), 403)
    error(client.post(f"/api/v1/events/{case_id}/resources", json=body,
                      headers=token("unit_handler", "320400", "U-320400-gas")), 403)
    error(client.post("/api/v1/events/999999999/resources", json=body, headers=token()), 404)
    error(client.post(f"/api/v1/events/{2**70}/resources", json=body, headers=token()), 400)
    error(client.delete(f"/api/v1/events/{case_id}/resources/999999", headers=token()), 404)
    garbage = client.post("/api/v1/events", json={"category": "020102", "lon": 119.911, "lat": 31.712,
                                                  "source": "patrol"}, headers=token()).get_json()["id"]
    error(client.post(f"/api/v1/events/{garbage}/resources", json=body, headers=token()), 422)
    resp = client.post(f"/api/v1/events/{case_id}/resources", json=body, headers=token("leader", "320402"))
    assert resp.status_code == 201
    client.delete(f"/api/v1/events/{case_id}/resources/{resp.get_json()['id']}", headers=token("admin"))
