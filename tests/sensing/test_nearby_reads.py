"""What /emergency reads around an event: the devices and the open alarms within R metres of a point (the same
answer as a scan of the whole fleet, within the reader's scope), the grids touching the event's grid and those
meeting a box, and the emergencies waiting for a plan."""
from __future__ import annotations

import pytest
import shapely
from sqlalchemy import select

from cases.service import ServiceError, haversine_m
from data.models import Device
from data.tokens import Principal
from tests.sensing.device_story import pick_cover, tell

LON, LAT = 119.975, 31.79   # central Changzhou (天宁区)
CITY = Principal("user", "duty", "duty_officer", "320400")
ZHONGLOU = Principal("user", "zl", "duty_officer", "320404")


def _scan(services, lon, lat, radius, where=lambda d: True) -> list[str]:
    with services.db.session() as s:
        rows = s.execute(select(Device.id, Device.lon, Device.lat, Device.district_code)).all()
    hits = sorted((haversine_m(lon, lat, x, y), i) for i, x, y, district in rows
                  if where(district) and haversine_m(lon, lat, x, y) <= radius)
    return [i for _, i in hits]


def test_devices_near_a_point_are_those_a_scan_finds_nearest_first_within_the_scope(demo_app):
    services = demo_app.extensions["ucc"]
    found = services.devices.near(CITY, LON, LAT, 3000, 2000)
    expected = _scan(services, LON, LAT, 3000)
    assert 50 < found["total"] == len(expected)
    assert [d["id"] for d in found["items"]] == expected[:2000]
    distances = [d["distance_m"] for d in found["items"]]
    assert distances == sorted(distances) and distances[-1] <= 3000
    assert sum(found["counts"].values()) == found["total"]
    few = services.devices.near(CITY, LON, LAT, 3000, 5)
    assert [d["id"] for d in few["items"]] == expected[:5] and few["total"] == found["total"]
    # a district's officer: only the district's devices, however near the others are
    border = services.devices.near(ZHONGLOU, LON, LAT, 8000, 2000)
    assert border["total"] == len(_scan(services, LON, LAT, 8000, lambda district: district == "320404"))
    assert all(d["district"] == "320404" for d in border["items"])
    for bad in ((LON, LAT, 0, 10), (LON, LAT, 60_000, 10), (LON, LAT, 3000, 0), (LON, 95.0, 3000, 10),
                (LON, LAT, float("nan"), 10), (LON, LAT, True, 10)):
        with pytest.raises(ServiceError) as info:
            services.devices.near(CITY, *bad)
        assert info.value.status == 400 and info.value.message
    with pytest.raises(ServiceError) as info:
        services.devices.near(Principal("user", "g", "grid_member", "320400"), LON, LAT, 3000, 10)
    assert info.value.status == 403


def test_open_alarms_near_a_point(demo_app):
    services = demo_app.extensions["ucc"]
    story = tell(services, pick_cover(services))
    device = services.devices.get(CITY, story["device"])
    found = services.alarms.near(CITY, device["lon"], device["lat"], 500)
    mine = [a for a in found["items"] if a["device"] == story["device"]]
    assert mine and all(a["status"] != "cleared" for a in found["items"]) and mine[0]["distance_m"] < 1
    assert {"lon", "lat", "rule_name", "severity_label"} <= set(mine[0])
    # 20 km away: not there
    far = services.alarms.near(CITY, device["lon"] + 0.25, device["lat"], 3000)
    assert story["device"] not in {a["device"] for a in far["items"]}


def test_a_grids_neighbours_touch_it_and_a_box_meets_its_grids(demo_app):
    services = demo_app.extensions["ucc"]
    grid = services.areas.locator().locate(LON, LAT)[0]
    around = services.areas.neighbours(grid.code)
    assert 2 <= len(around) <= 20 and grid.code not in {a.code for a in around}
    assert all(a.level == 5 and shapely.intersects(a.geometry, grid.geometry) for a in around)
    others = [g for g in services.areas.records() if g.level == 5 and g.code != grid.code]
    assert {g.code for g in others if shapely.intersects(g.geometry, grid.geometry)} == {a.code for a in around}
    assert services.areas.neighbours(grid.parent) == [] and services.areas.neighbours("nope") == []
    box = (LON - 0.01, LAT - 0.01, LON + 0.01, LAT + 0.01)
    inside = services.areas.grids_in_box(box)
    assert grid.code in {g.code for g in inside}
    assert {g.code for g in inside} == {g.code for g in services.areas.records() if g.level == 5
                                        and shapely.intersects(g.geometry, shapely.box(*box))}


def test_emergencies_waiting_for_a_plan(demo_app):
    services = demo_app.extensions["ucc"]
    case = services.cases.intake({"category": "040102", "description": "燃气泄漏", "source": "hotline", "severity": 4,
                                  "lon": LON, "lat": LAT}, CITY)[0]
    assert case["id"] not in {c["case_id"] for c in services.responses.awaiting(CITY)}  # reported, not accepted
    case = services.cases.act(case["id"], CITY, "accept", case["version"])
    waiting = {c["case_id"]: c for c in services.responses.awaiting(CITY)}
    assert waiting[case["id"]]["plan"]["code"] == "gas_leak" and waiting[case["id"]]["state_label"] == "已立案"
    assert case["id"] not in {c["case_id"] for c in services.responses.awaiting(ZHONGLOU)}  # another district's
    services.responses.act(case["id"], CITY, "activate_plan", case["version"], level=4)
    assert case["id"] not in {c["case_id"] for c in services.responses.awaiting(CITY)}
    assert case["id"] in {r["case_id"] for r in services.responses.active(CITY)}
