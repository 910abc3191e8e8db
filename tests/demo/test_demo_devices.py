"""The demo fleet: seeded with the demo city, deterministic, inside the city's grids, each device with a unit of
the kind its type names; written fast on SQLite and PostgreSQL."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from data import files
from data.db import Database
from data.models import Area, Device, Unit
from demo.devices import FLEET, fleet_rows, seed_fleet
from tests.factories import rect_city, small_world

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)   # 20:00 in the city: street lights on


@pytest.fixture(scope="module")
def demo_fleet(demo_sqlite_url):
    db = Database(demo_sqlite_url)
    with db.session() as s:
        devices = list(s.scalars(select(Device)))
        units = {u.code: u for u in s.scalars(select(Unit))}
        grids = {code: name for code, name in s.execute(select(Area.code, Area.name).where(Area.level == 5))}
    db.dispose()
    return devices, units, grids


def test_the_demo_city_has_its_fleet(demo_fleet):
    devices, units, grids = demo_fleet
    assert Counter(d.type for d in devices) == Counter(FLEET)
    assert sum(FLEET.values()) > 6000 and FLEET["manhole_cover"] >= 1000 and FLEET["water_gauge"] >= 100
    assert all(d.grid_code in grids for d in devices)
    assert len({d.id for d in devices}) == len(devices)
    statuses = Counter(d.status for d in devices)
    assert statuses["online"] > 0.9 * len(devices) and statuses["offline"] > 0 and statuses["maintenance"] > 0
    assert set(statuses) <= {"online", "offline", "maintenance"}


def test_each_device_answers_to_a_unit_of_its_kind(demo_fleet):
    devices, units, _ = demo_fleet
    types = files.device_types()
    for d in devices:
        unit = units[d.unit_code]
        assert unit.unit_type in types[d.type].unit_types, (d.id, unit.code)
        assert unit.area_code in (d.district_code, "320400"), (d.id, unit.code)
    kinds = Counter(units[d.unit_code].unit_type for d in devices if d.type == "manhole_cover")
    assert len(kinds) >= 5  # covers belong to whoever owns the pipe below them
    lights = {units[d.unit_code].unit_type for d in devices if d.type == "street_light" and d.district_code == "320402"}
    assert lights == {"street_lighting"}  # 天宁区's lamps are the city lighting office's (routing exceptions)


def test_readings_are_normal_and_of_the_types_keys(demo_fleet):
    devices, _, _ = demo_fleet
    types = files.device_types()
    for d in devices[::7]:
        t = types[d.type]
        assert set(d.last_values) == {k.key for k in t.keys}
        assert all(t.key(k).valid(v) for k, v in d.last_values.items()), d.last_values
        assert not any(r.condition.holds(d.last_values) for r in t.rules), (d.id, d.last_values)


def test_the_fleet_is_densest_where_people_live(demo_fleet):
    devices, _, _ = demo_fleet
    covers = Counter(d.district_code for d in devices if d.type == "manhole_cover")
    # 天宁区 and 钟楼区 (urban, ~145 km² each) hold more covers per km² than 溧阳市 (1,535 km²)
    assert covers["320402"] / 154 > 3 * covers["320481"] / 1535


def test_the_placement_is_deterministic(demo_records):
    units = [("U-320400-gas", "gas", "320400", True)]
    types = files.device_types()
    a = fleet_rows(demo_records, units, types, NOW, fleet={"gas_detector": 50})
    b = fleet_rows(demo_records, units, types, NOW, fleet={"gas_detector": 50})
    assert a == b and len(a) == 50
    c = fleet_rows(demo_records, units, types, NOW, seed=1, fleet={"gas_detector": 50})
    assert [r["lon"] for r in c] != [r["lon"] for r in a]


def test_seeding_the_fleet_on_each_database(empty_db):
    """The whole fleet over a small city, with one bulk insert, in well under the seed's other work."""
    small_world(empty_db, NOW)
    with empty_db.session() as s:
        n, seconds = seed_fleet(s, rect_city(), files.device_types(), NOW)
    assert n == sum(FLEET.values())
    assert seconds < 10  # measured ~0.5 s on SQLite, ~1.5 s on PostgreSQL (docs/devices.md)
    with empty_db.session() as s:
        bridges = [(d.lon, d.lat) for d in s.scalars(select(Device).where(Device.type == "bridge_sensor"))]
    assert len(bridges) == FLEET["bridge_sensor"]


def test_each_device_is_in_the_grid_the_locator_gives(demo_fleet, demo_records):
    import numpy as np

    from geo.locator import Locator

    devices, _, _ = demo_fleet
    sample = devices[::20]
    locator = Locator.from_records(demo_records)
    idx = locator.locate_many(np.array([d.lon for d in sample]), np.array([d.lat for d in sample]))
    assert (idx >= 0).all()
    assert [str(locator.grid_codes[i]) for i in idx] == [d.grid_code for d in sample]
    assert all(d.district_code == d.grid_code[:6] for d in sample)
