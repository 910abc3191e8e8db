"""Emergency resources on SQLite and the real PostgreSQL: the nearest first with filters, allocation to an
emergency case (a team whole, shelter places, warehouse stock) and its release, each on the case's timeline,
who may, what is refused before anything is written — and officers racing for the last units on real threads:
exactly one wins, the stock never goes negative."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from data.area_directory import AreaDirectory
from data.models import CaseEvent, CaseHistory, Resource, ResourceStock
from data.resources import write_resources, write_stock
from data.tokens import Principal
from dispatch.errors import ServiceError
from emergency.resources import ResourceService
from tests.conftest import make_database
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
OFFICER = Principal("user", "officer", "duty_officer", "320400")
OFFICER_402 = Principal("user", "officer402", "duty_officer", "320402")
OFFICER_403 = Principal("user", "officer403", "duty_officer", "320403")
LEADER = Principal("user", "leader", "leader", "320400")
HANDLER = Principal("user", "handler", "unit_handler", "320400", "U-320402-fire_rescue")
GRID_MEMBER = Principal("user", "grid", "grid_member", "320400")
# rect_city: 320402 is the west half (119.90–119.94), 320403 the east
WEST, EAST = (119.91, 31.71), (119.97, 31.77)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path_factory.mktemp("res"))
    init_db(db)
    cases, clock = small_world(db, NOW)
    areas = AreaDirectory(db)
    svc = ResourceService(db, areas, cases)
    yield svc, cases, db
    db.dispose()
    if schema:
        schema.drop()


_n = iter(range(10**6))


def add(db, type_, lon, lat, *, specialty=None, capacity=None, unit="U-320402-fire_rescue", stock=(), status=None,
        name=None):
    """One resource (and its stock) written as an import would; returns its id."""
    rid = f"T-{next(_n):05d}"
    loc = AreaDirectory(db).locator()
    chain = loc.locate(lon, lat)
    with db.session() as s:
        write_resources(s, [{"id": rid, "type": type_, "name": name or f"资源{rid}", "lon": lon, "lat": lat,
                             "grid_code": chain[0].code, "district_code": chain[3].code, "unit_code": unit,
                             "specialty": specialty, "capacity": capacity, "status": status}])
        write_stock(s, [{"resource_id": rid, "item": i, "quantity": q, "unit": u} for i, q, u in stock])
    return rid


_spot = iter(range(10**6))


def emergency(cases, at=None, category="040102", principal=OFFICER) -> int:
    """A new emergency case (each at its own spot: two at one spot would merge); in the west district unless
    `at` says."""
    k = next(_spot)
    at = at or (119.902 + (k % 40) * 0.0009, 31.702 + (k // 40) * 0.0009)
    return cases.intake({"category": category, "lon": at[0], "lat": at[1], "source": "hotline", "severity": 4},
                        principal)[0]["id"]


def history(db, case_id, action):
    with db.session() as s:
        return [h.note for h in s.scalars(select(CaseHistory).where(CaseHistory.case_id == case_id,
                                                                    CaseHistory.action == action)
                                          .order_by(CaseHistory.id))]


def refused(call, status, code=None):
    with pytest.raises(ServiceError) as info:
        call()
    assert info.value.status == status, info.value.message
    if code is not None:
        assert info.value.code == code
    return info.value.message


# ---- nearest ---------------------------------------------------------------------------------------
def test_nearest_first_with_filters_and_radius(world):
    svc, cases, db = world
    lon, lat = 119.93, 31.73
    near_team = add(db, "team", lon + 0.001, lat, specialty="燃气抢修", capacity=12, name="燃气抢修一队")
    far_team = add(db, "team", lon + 0.02, lat, specialty="燃气抢修", capacity=12)
    fire_team = add(db, "team", lon + 0.005, lat, specialty="消防", capacity=30)
    store = add(db, "warehouse", lon, lat + 0.003, stock=[("沙袋", 500, "袋"), ("救生衣", 80, "件")])
    got = svc.nearest(lon, lat, limit=500, principal=OFFICER)["items"]
    d = [i["distance_m"] for i in got]
    assert d == sorted(d)
    assert [i["id"] for i in got[:3]] == [near_team, store, fire_team]
    first = got[0]
    assert first["distance_m"] == pytest.approx(94.9, abs=1.0)  # 0.001° of longitude at 31.73° N
    assert {"id", "type", "name", "lon", "lat", "unit", "unit_name", "status", "capacity", "occupancy",
            "specialty", "stock", "distance_m"} <= set(first)
    assert first["unit_name"] == "测试市-1消防救援大队" and first["status"] == "available"
    assert [i["id"] for i in got if i["id"] == store][0] and \
        next(i for i in got if i["id"] == store)["stock"] == [{"item": "救生衣", "quantity": 80, "unit": "件"},
                                                               {"item": "沙袋", "quantity": 500, "unit": "袋"}]
    gas = svc.nearest(lon, lat, type="team", specialty="燃气抢修", principal=OFFICER)["items"]
    assert [i["id"] for i in gas][:2] == [near_team, far_team]
    assert all(i["type"] == "team" and i["specialty"] == "燃气抢修" for i in gas)
    within = svc.nearest(lon, lat, radius_m=600, principal=OFFICER)["items"]
    assert {near_team, store, fire_team} <= {i["id"] for i in within} and far_team not in {i["id"] for i in within}
    assert all(i["distance_m"] <= 600 for i in within)
    assert [i["id"] for i in svc.nearest(lon, lat, limit=1, principal=OFFICER)["items"]] == [near_team]


def test_the_index_sees_a_new_resource_and_a_handler_only_their_units(world):
    svc, cases, db = world
    lon, lat = 119.95, 31.76
    before = svc.nearest(lon, lat, limit=1, principal=OFFICER)["items"]
    new = add(db, "equipment", lon, lat, specialty="大功率排水车", unit="U-320403-water_affairs")
    assert svc.nearest(lon, lat, limit=1, principal=OFFICER)["items"][0]["id"] == new != (before or [{}])[0].get("id")
    mine = svc.nearest(lon, lat, limit=50, principal=HANDLER)["items"]
    assert mine and all(i["unit"] == "U-320402-fire_rescue" for i in mine)
    assert refused(lambda: svc.get(HANDLER, new), 404)
    assert svc.get(OFFICER, new)["chain"][0]["level"] == 5
    refused(lambda: svc.nearest(lon, lat, principal=GRID_MEMBER), 403)


@pytest.mark.parametrize("kwargs", [{"type": "tank"}, {"radius_m": 0}, {"radius_m": -5}, {"limit": 0},
                                    {"limit": 501}, {"radius_m": float("nan")}, {"specialty": "x" * 41}])
def test_nearest_bad_filters(world, kwargs):
    svc, _, _ = world
    refused(lambda: svc.nearest(119.93, 31.73, principal=OFFICER, **kwargs), 400, "bad_request")


def test_nearest_bad_point(world):
    svc, _, _ = world
    refused(lambda: svc.nearest(190.0, 31.7, principal=OFFICER), 400)
    refused(lambda: svc.nearest(float("inf"), 31.7, principal=OFFICER), 400)


# ---- allocation -----------------------------------------------------------------------------------
def test_a_team_is_allocated_whole_and_released(world):
    svc, cases, db = world
    team = add(db, "team", 119.915, 31.715, specialty="燃气抢修", capacity=12, name="天宁燃气抢修队")
    case_id = emergency(cases)
    version = cases.get(case_id, OFFICER)["version"]
    told: list = []
    cases.listeners.append(told.append)
    try:
        alloc = svc.allocate(case_id, OFFICER, team)
    finally:
        cases.listeners.remove(told.append)
    assert alloc["resource"]["id"] == team and alloc["quantity"] is None and alloc["released_at"] is None
    assert svc.get(OFFICER, team)["status"] == "deployed"
    assert told and len(told[0]) == 1  # the live bus hears the case changed
    case = cases.get(case_id, OFFICER)
    assert case["version"] == version + 1
    assert case["history"][-1]["action"] == "allocate_resource" and "天宁燃气抢修队" in case["history"][-1]["note"]
    assert case["history"][-1]["action_label"] == "调配资源"
    # the same team to another case: it is out already
    other = emergency(cases)
    msg = refused(lambda: svc.allocate(other, OFFICER, team), 409, "not_available")
    assert "已出动" in msg
    assert history(db, other, "allocate_resource") == []
    svc.release(case_id, alloc["id"], OFFICER)
    assert svc.get(OFFICER, team)["status"] == "available"
    assert "天宁燃气抢修队" in history(db, case_id, "release_resource")[0]
    msg = refused(lambda: svc.release(case_id, alloc["id"], OFFICER), 409, "already_released")
    assert "已于" in msg and "归还" in msg
    assert len(history(db, case_id, "release_resource")) == 1
    listed = svc.allocations(case_id, OFFICER)
    assert listed["total"] == 1 and listed["open"] == 0
    assert listed["items"][0]["resource"]["name"] == "天宁燃气抢修队" and listed["items"][0]["released_by"] == "officer"
    # now free again: the other case takes it
    assert svc.allocate(other, OFFICER, team)["case_id"] == other


def test_warehouse_stock_goes_down_and_back_never_below_zero(world):
    svc, cases, db = world
    store = add(db, "warehouse", 119.92, 31.72, stock=[("沙袋", 100, "袋")], name="天宁应急物资仓库")
    case_id = emergency(cases, category="040101")
    a = svc.allocate(case_id, OFFICER, store, item="沙袋", quantity=70)
    assert a["item"] == "沙袋" and a["quantity"] == 70 and a["unit"] == "袋"
    assert svc.get(OFFICER, store)["stock"] == [{"item": "沙袋", "quantity": 30, "unit": "袋"}]
    assert history(db, case_id, "allocate_resource") == ["调配物资 天宁应急物资仓库：沙袋 70袋"]
    msg = refused(lambda: svc.allocate(case_id, OFFICER, store, item="沙袋", quantity=31), 409, "insufficient")
    assert "库存不足，剩余 30袋" in msg
    b = svc.allocate(case_id, OFFICER, store, item="沙袋", quantity=30)
    assert svc.get(OFFICER, store)["stock"][0]["quantity"] == 0
    refused(lambda: svc.allocate(case_id, OFFICER, store, item="沙袋", quantity=1), 409, "insufficient")
    svc.release(case_id, a["id"], OFFICER)
    svc.release(case_id, b["id"], OFFICER)
    assert svc.get(OFFICER, store)["stock"][0]["quantity"] == 100
    assert len(history(db, case_id, "allocate_resource")) == 2  # the refused ones wrote nothing
    assert svc.allocations(case_id, OFFICER)["total"] == 2


def test_shelter_places_within_capacity(world):
    svc, cases, db = world
    shelter = add(db, "shelter", 119.925, 31.725, capacity=500, unit="U-320402-civil_affairs", name="某小学避难场所")
    case_id = emergency(cases, category="040101")
    a = svc.allocate(case_id, OFFICER, shelter, quantity=450)
    assert a["unit"] == "人" and svc.get(OFFICER, shelter)["occupancy"] == 450
    assert "余位不足，剩余 50 人" in refused(lambda: svc.allocate(case_id, OFFICER, shelter, quantity=51), 409)
    refused(lambda: svc.allocate(case_id, OFFICER, shelter, quantity=2.5), 400)
    svc.release(case_id, a["id"], OFFICER)
    assert svc.get(OFFICER, shelter)["occupancy"] == 0


def test_who_may_allocate_and_to_what(world):
    svc, cases, db = world
    team = add(db, "team", 119.93, 31.74, specialty="消防", capacity=20)
    west = emergency(cases)
    refused(lambda: svc.allocate(west, OFFICER_403, team), 403)        # not their district
    refused(lambda: svc.allocate(west, HANDLER, team), 403)
    refused(lambda: svc.allocate(west, GRID_MEMBER, team), 403)
    garbage = cases.intake({"category": "020102", "lon": WEST[0], "lat": WEST[1], "source": "patrol"}, OFFICER)[0]["id"]
    refused(lambda: svc.allocate(garbage, OFFICER, team), 422, "not_emergency")
    refused(lambda: svc.allocate(10**12, OFFICER, team), 404)
    with db.session() as s:
        assert s.get(Resource, team).status == "available"
    a = svc.allocate(west, OFFICER_402, team)
    assert a["allocated_by"] == "officer402"
    refused(lambda: svc.release(west, a["id"], OFFICER_403), 403)
    refused(lambda: svc.release(west, 10**12, OFFICER), 404)
    other = emergency(cases)
    refused(lambda: svc.release(other, a["id"], OFFICER), 404)        # not that case's
    svc.release(west, a["id"], LEADER)
    # a closed case takes nothing more (rejected: no longer open)
    v = cases.get(other, OFFICER)["version"]
    cases.act(other, OFFICER, "reject", v, note="误报")
    refused(lambda: svc.allocate(other, OFFICER, team), 409, "case_closed")


@pytest.mark.parametrize("kwargs,status", [
    ({"resource_id": "NOPE"}, 404),
    ({"item": "沙袋", "quantity": 0}, 400), ({"item": "沙袋", "quantity": -3}, 400),
    ({"item": "沙袋", "quantity": "5"}, 400), ({"item": "沙袋", "quantity": True}, 400),
    ({"item": "沙袋", "quantity": float("inf")}, 400), ({"item": "沙袋"}, 400), ({"quantity": 5}, 400),
    ({"item": "金条", "quantity": 1}, 404), ({"resource_id": 7}, 400), ({"item": "\x00", "quantity": 1}, 400),
])
def test_bad_allocations_write_nothing(world, kwargs, status):
    svc, cases, db = world
    store = add(db, "warehouse", 119.92, 31.72, stock=[("沙袋", 10, "袋")])
    case_id = emergency(cases)
    args = {"resource_id": store, **kwargs}
    refused(lambda: svc.allocate(case_id, OFFICER, **args), status)
    with db.session() as s:
        assert s.get(ResourceStock, (store, "沙袋")).quantity == 10
    assert history(db, case_id, "allocate_resource") == []


def test_a_team_takes_no_quantity(world):
    svc, cases, db = world
    team = add(db, "team", 119.92, 31.72, specialty="医疗", capacity=8)
    refused(lambda: svc.allocate(emergency(cases), OFFICER, team, quantity=3), 400)


# ---- the race ------------------------------------------------------------------------------------
def _race(n, call):
    """`n` threads call `call(i)` at the same moment; returns [(i, result or ServiceError)]."""
    barrier = threading.Barrier(n)
    out: list = [None] * n

    def run(i):
        barrier.wait()
        try:
            out[i] = call(i)
        except ServiceError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_two_officers_after_the_last_units_one_wins(world):
    svc, cases, db = world
    store = add(db, "warehouse", 119.93, 31.73, stock=[("抽水泵", 6, "台")])
    case_a, case_b = emergency(cases, category="040101"), emergency(cases, category="040101")
    for round_ in range(3):  # again and again: the loser must never be lucky
        with db.session() as s:
            s.get(ResourceStock, (store, "抽水泵")).quantity = 6
        out = _race(2, lambda i: svc.allocate((case_a, case_b)[i], OFFICER, store, item="抽水泵", quantity=6))
        won = [r for r in out if isinstance(r, dict)]
        lost = [r for r in out if isinstance(r, ServiceError)]
        assert len(won) == 1 and len(lost) == 1, out
        assert lost[0].status == 409 and "库存不足，剩余 0台" in lost[0].message
        with db.session() as s:
            assert s.get(ResourceStock, (store, "抽水泵")).quantity == 0
        svc.release(won[0]["case_id"], won[0]["id"], OFFICER)


def test_many_threads_never_take_more_than_there_is(world):
    svc, cases, db = world
    store = add(db, "warehouse", 119.93, 31.73, stock=[("帐篷", 10, "顶")])
    team = add(db, "team", 119.93, 31.73, specialty="消防", capacity=25)
    shelter = add(db, "shelter", 119.93, 31.73, capacity=100, unit="U-320402-civil_affairs")
    case_id = emergency(cases, category="040101")
    n = 16
    tents = _race(n, lambda i: svc.allocate(case_id, OFFICER, store, item="帐篷", quantity=1))
    assert sum(isinstance(r, dict) for r in tents) == 10
    assert all(r.status == 409 for r in tents if isinstance(r, ServiceError))
    teams = _race(8, lambda i: svc.allocate(case_id, OFFICER, team))
    assert sum(isinstance(r, dict) for r in teams) == 1
    places = _race(8, lambda i: svc.allocate(case_id, OFFICER, shelter, quantity=30))
    assert sum(isinstance(r, dict) for r in places) == 3
    with db.session() as s:
        assert s.get(ResourceStock, (store, "帐篷")).quantity == 0
        assert s.get(Resource, team).status == "deployed"
        assert s.get(Resource, shelter).occupancy == 90
        events = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id))
    assert len(history(db, case_id, "allocate_resource")) == 10 + 1 + 3
    assert svc.allocations(case_id, OFFICER)["open"] == 14
    assert events >= 14 + 1  # the intake's and one per allocation


def test_summary_counts_by_type_and_status(world):
    svc, cases, db = world
    s0 = svc.summary()
    add(db, "equipment", 119.94, 31.74, specialty="发电车", unit="U-320400-power", status="maintenance")
    s1 = svc.summary()
    eq0 = next(t for t in s0["types"] if t["type"] == "equipment")
    eq1 = next(t for t in s1["types"] if t["type"] == "equipment")
    assert eq1["total"] == eq0["total"] + 1 and eq1["by_status"]["maintenance"] == eq0["by_status"]["maintenance"] + 1
    assert s1["total"] == s0["total"] + 1 and eq1["name"] == "装备车辆"


def test_nearest_available_skips_what_is_out(world):
    svc, cases, db = world
    lon, lat = 119.915, 31.775  # the north-west corner: few resources of the other tests nearby
    near = add(db, "team", lon + 0.0005, lat, specialty="医疗救护", capacity=8)
    far = add(db, "team", lon + 0.003, lat, specialty="医疗救护", capacity=8)
    query = dict(type="team", specialty="医疗救护", limit=1, principal=OFFICER)
    assert [i["id"] for i in svc.nearest(lon, lat, status="available", **query)["items"]] == [near]
    a = svc.allocate(emergency(cases), OFFICER, near)
    assert [i["id"] for i in svc.nearest(lon, lat, status="available", **query)["items"]] == [far]
    assert [i["id"] for i in svc.nearest(lon, lat, status="deployed", **query)["items"]] == [near]
    assert [i["id"] for i in svc.nearest(lon, lat, **query)["items"]] == [near]  # without the filter: both kinds
    svc.release(a["case_id"], a["id"], OFFICER)
    refused(lambda: svc.nearest(lon, lat, status="lost", **query), 400)
