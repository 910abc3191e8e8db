"""The demo city's emergency resources: the file in the repo is what the script makes (deterministic), a few hundred
of every kind, each in the city's grids with a unit of its kind in its district or the city; seeded on the first run
through the real importer, and the nearest to a point in the city answer from them."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select

from data import files
from data.area_directory import AreaDirectory
from data.db import Database
from data.models import Resource, ResourceStock, Unit
from demo.resources import resource_features
from dispatch.units import demo_units
from emergency.resources import ResourceService


@pytest.fixture(scope="module")
def seeded(demo_sqlite_url):
    db = Database(demo_sqlite_url)
    with db.session() as s:
        resources = list(s.scalars(select(Resource)))
        stock = list(s.scalars(select(ResourceStock)))
        units = {u.code: u for u in s.scalars(select(Unit))}
    yield db, resources, stock, units
    db.dispose()


def test_the_file_is_what_the_script_makes(demo_records):
    units = {u.code for u in demo_units(demo_records, files.unit_types(), files.unit_patterns())}
    made = resource_features(demo_records, units)
    shipped = json.loads(files.DEMO_RESOURCES_PATH.read_text(encoding="utf-8"))["features"]
    assert made == shipped, "data/demo_resources.geojson is stale: run python scripts/make_demo_resources.py"


def test_the_demo_city_has_its_resources(seeded):
    _, resources, stock, units = seeded
    kinds = Counter(r.type for r in resources)
    assert 250 <= len(resources) <= 600
    assert kinds["team"] >= 80 and kinds["shelter"] >= 80 and kinds["equipment"] >= 40 and kinds["warehouse"] >= 8
    specialties = Counter(r.specialty for r in resources if r.type == "team")
    assert {"消防救援", "排水抢险", "燃气抢修", "医疗救护", "电力抢修"} <= set(specialties)
    assert {"大功率排水车", "发电车", "抢险车"} <= {r.specialty for r in resources if r.type == "equipment"}
    districts = {r.district_code for r in resources}
    assert districts == {"320402", "320404", "320411", "320412", "320413", "320481", "320491"}
    assert all(r.grid_code and r.grid_code.startswith(r.district_code) for r in resources)
    assert all(r.status == "available" and r.occupancy == 0 for r in resources)
    assert all(r.capacity and r.capacity >= 400 for r in resources if r.type == "shelter")
    for r in resources:
        unit = units[r.unit_code]
        assert unit.area_code in (r.district_code, "320400"), (r.id, unit.code)
    assert units[next(r for r in resources if r.specialty == "燃气抢修").unit_code].unit_type == "gas"
    items = {s.item for s in stock}
    assert {"沙袋", "抽水泵", "救生衣", "帐篷", "棉被", "饮用水", "防汛编织袋"} <= items
    assert all(s.quantity > 0 for s in stock)
    warehouses = {r.id for r in resources if r.type == "warehouse"}
    assert {s.resource_id for s in stock} == warehouses


def test_nearest_in_the_demo_city(seeded):
    db, _, _, _ = seeded
    svc = ResourceService(db, AreaDirectory(db))
    got = svc.nearest(119.974, 31.784, type="team", specialty="燃气抢修", limit=3)["items"]  # 天宁
    assert len(got) == 3 and all(i["unit_name"] == "常州港华燃气有限公司" for i in got)
    assert got[0]["distance_m"] < 10_000
    shelters = svc.nearest(119.974, 31.784, type="shelter", radius_m=3000)["items"]
    assert shelters and all(i["distance_m"] <= 3000 for i in shelters)
