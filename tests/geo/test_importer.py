"""Tests for geo.importer: reading, validating and writing a five-level hierarchy."""
from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo.importer import (
    KINDS,
    Problem,
    load_and_validate,
    read_hierarchy_file,
    validate_hierarchy,
    write_hierarchy_file,
)
from geo.model import CITY, DISTRICT, GRID, AreaRecord

CITY_BOX = (119.9, 31.7, 120.1, 31.9)
CITY_CODE = "320400"
DISTRICTS = ("320402", "320404")
# 1 mm of longitude at this latitude, in degrees.
MM_LON = 1e-3 / (111_320.0 * 0.8496)


def _split(bounds, n, axis):
    """n strips of bounds along axis (0 = lon, 1 = lat); neighbours share the exact same float."""
    x0, y0, x1, y1 = bounds
    lo, hi = (x0, x1) if axis == 0 else (y0, y1)
    cuts = [lo + (hi - lo) * k / n for k in range(n)] + [hi]
    if axis == 0:
        return [(cuts[k], y0, cuts[k + 1], y1) for k in range(n)]
    return [(x0, cuts[k], x1, cuts[k + 1]) for k in range(n)]


def make_city(splits=(2, 2, 2, 3), grid_digits=3, district_codes=DISTRICTS):
    """City → districts → streets → communities → grids, each level splitting its parent's box."""
    city = AreaRecord(CITY_CODE, "测试市", CITY, None, box(*CITY_BOX), population=1_000_000, is_demo=True)
    records = [city]

    def children(parent_code, bounds, level):
        n = splits[level - 2]
        for k, b in enumerate(_split(bounds, n, axis=level % 2)):
            if level == DISTRICT:
                code = district_codes[k] if k < len(district_codes) else f"3204{k + 50:02d}"
            else:
                width = grid_digits if level == GRID else 3
                code = f"{parent_code}{k + 1:0{width}d}"
            pop = None if (level == GRID and k == 0) else 1000 * (6 - level) + k
            records.append(AreaRecord(code, f"{code}名", level, parent_code, box(*b), population=pop, is_demo=True))
            if level < GRID:
                children(code, b, level + 1)

    children(CITY_CODE, CITY_BOX, DISTRICT)
    return records


def find(records, code):
    return next(r for r in records if r.code == code)


def kinds(problems):
    return {p.kind for p in problems}


def of_kind(problems, kind):
    return [p for p in problems if p.kind == kind]


def check_file(tmp_path, records, name="city.geojson", **kw):
    path = tmp_path / name
    write_hierarchy_file(records, path)
    return load_and_validate(path, **kw)


GRID1 = "320402001001001"
GRID2 = "320402001001002"
GRID3 = "320402001001003"
COMM1 = "320402001001"
STREET1 = "320402001"


def set_geom(records, code, geom):
    return [replace(r, geometry=geom) if r.code == code else r for r in records]


# ---------------------------------------------------------------------------- valid data

def test_synthetic_city_is_valid():
    records = make_city()
    assert len(records) == 1 + 2 + 4 + 8 + 24
    assert validate_hierarchy(records) == []


@pytest.mark.parametrize("name", ["city.geojson", "city.json", "city.gpkg"])
def test_round_trip_keeps_everything(tmp_path, name):
    records = make_city()
    # A MultiPolygon next to Polygons: each must come back with its own type (GDAL likes to promote).
    records = set_geom(records, GRID1, MultiPolygon([find(records, GRID1).geometry]))
    records[3].extra["ignored"] = "not written"
    path = tmp_path / name
    write_hierarchy_file(records, path)
    back, problems = read_hierarchy_file(path)
    assert problems == []
    assert len(back) == len(records)
    for a, b in zip(records, back):
        assert (a.code, a.name, a.level, a.parent, a.population, a.is_demo) == \
               (b.code, b.name, b.level, b.parent, b.population, b.is_demo)
        assert a.geometry.geom_type == b.geometry.geom_type
        assert a.geometry.equals_exact(b.geometry, 1e-9)
        assert isinstance(b.code, str) and (b.parent is None or isinstance(b.parent, str))
    assert validate_hierarchy(back) == []
    assert load_and_validate(path)[1] == []


def test_write_replaces_existing_file(tmp_path):
    path = tmp_path / "city.gpkg"
    write_hierarchy_file(make_city(), path)
    write_hierarchy_file(make_city(), path)
    back, problems = read_hierarchy_file(path)
    assert problems == [] and len(back) == 39


def test_write_refuses_unknown_suffix(tmp_path):
    with pytest.raises(ValueError):
        write_hierarchy_file(make_city(), tmp_path / "city.shp")


def test_numeric_codes_and_extra_columns_are_read(tmp_path):
    records = make_city()
    features = [{
        "type": "Feature",
        "properties": {"CODE": int(r.code), "Name": r.name, "LEVEL": float(r.level),
                       "parent": int(r.parent) if r.parent else None, "owner": "街道办"},
        "geometry": shapely.geometry.mapping(r.geometry),
    } for r in records]
    path = tmp_path / "numeric.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    back, problems = load_and_validate(path)
    assert problems == []
    assert [r.code for r in back] == [r.code for r in records]
    assert [r.parent for r in back] == [r.parent for r in records]
    assert back[0].extra == {"owner": "街道办"} and back[0].population is None


def test_four_digit_grid_codes_are_accepted():
    assert validate_hierarchy(make_city(grid_digits=4)) == []


def test_problem_str_and_kinds():
    p = Problem("gap", ("320402001001",), "社区/村 320402001001 有 35.2 平方米未被其下级网格覆盖")
    assert str(p) == "[gap] 社区/村 320402001001 有 35.2 平方米未被其下级网格覆盖"
    for kind in ("invalid_geometry", "duplicate_code", "missing_parent", "bad_parent_level", "root",
                 "bad_code", "no_children", "child_outside_parent", "overlap", "gap"):
        assert kind in KINDS


# ---------------------------------------------------------------------------- one test per defect

def test_bow_tie_is_invalid_geometry(tmp_path):
    x0, y0, x1, y1 = find(make_city(), GRID1).geometry.bounds
    bow_tie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    records, problems = check_file(tmp_path, set_geom(make_city(), GRID1, bow_tie))
    bad = of_kind(problems, "invalid_geometry")
    assert [p.codes for p in bad] == [(GRID1,)]
    assert "Self-intersection" in bad[0].message and "无效" in bad[0].message
    # The other checks ran on a repaired copy instead of crashing: the missing triangles are a gap.
    assert any(p.codes == (COMM1,) for p in of_kind(problems, "gap"))


def test_duplicate_code(tmp_path):
    records = [replace(r, code=GRID1) if r.code == GRID2 else r for r in make_city()]
    _, problems = check_file(tmp_path, records)
    assert [p.codes for p in of_kind(problems, "duplicate_code")] == [(GRID1,)]
    assert "重复" in of_kind(problems, "duplicate_code")[0].message


def test_missing_parent(tmp_path):
    records = [replace(r, parent="320402001001009") if r.code == GRID1 else r for r in make_city()]
    _, problems = check_file(tmp_path, records)
    missing = of_kind(problems, "missing_parent")
    assert [p.codes for p in missing] == [(GRID1,)]
    assert "320402001001009" in missing[0].message


def test_parent_on_the_wrong_level(tmp_path):
    records = [replace(r, parent=STREET1) if r.code == GRID1 else r for r in make_city()]
    _, problems = check_file(tmp_path, records)
    assert [p.codes for p in of_kind(problems, "bad_parent_level")] == [(GRID1, STREET1)]


def test_two_roots(tmp_path):
    other = AreaRecord("320500", "另一市", CITY, None, box(121, 31, 121.1, 31.1))
    _, problems = check_file(tmp_path, make_city() + [other])
    assert [p.codes for p in of_kind(problems, "root")] == [(CITY_CODE, "320500")]


def test_no_root(tmp_path):
    records = [r for r in make_city() if r.level != CITY]
    _, problems = check_file(tmp_path, records)
    assert [p.codes for p in of_kind(problems, "root")] == [()]
    assert {p.codes for p in of_kind(problems, "missing_parent")} == {(d,) for d in DISTRICTS}


def test_non_city_without_parent_and_city_with_parent(tmp_path):
    records = [replace(r, parent=None) if r.code == DISTRICTS[1] else r for r in make_city()]
    records = [replace(r, parent="320000") if r.code == CITY_CODE else r for r in records]
    _, problems = check_file(tmp_path, records)
    assert {p.codes for p in of_kind(problems, "root")} == {(DISTRICTS[1],), (CITY_CODE,), ()}


def test_bad_code_prefix_and_lengths(tmp_path):
    renames = {GRID1: "320402009001001", GRID2: "32040200100100002", CITY_CODE: "3204000"}
    records = []
    for r in make_city():
        code = renames.get(r.code, r.code)
        parent = renames.get(r.parent, r.parent)
        records.append(replace(r, code=code, parent=parent))
    _, problems = check_file(tmp_path, records)
    assert {p.codes for p in of_kind(problems, "bad_code")} == {("320402009001001",), ("32040200100100002",), ("3204000",)}
    assert kinds(problems) == {"bad_code"}


def test_code_not_digits_is_reported_once(tmp_path):
    records = [replace(r, code="32040200100100A") if r.code == GRID3 else r for r in make_city()]
    _, problems = check_file(tmp_path, records)
    assert [p.codes for p in of_kind(problems, "bad_code")] == [("32040200100100A",)]


def test_community_without_grids(tmp_path):
    records = [r for r in make_city() if r.parent != COMM1]
    _, problems = check_file(tmp_path, records)
    assert [p.codes for p in problems] == [(COMM1,)]
    assert problems[0].kind == "no_children"


def test_grid_sticking_out_of_its_community(tmp_path):
    x0, y0, x1, y1 = find(make_city(), GRID1).geometry.bounds
    records = set_geom(make_city(), GRID1, box(x0 - 0.001, y0, x1, y1))  # west edge is the city's edge
    _, problems = check_file(tmp_path, records)
    out = of_kind(problems, "child_outside_parent")
    assert [p.codes for p in out] == [(GRID1, COMM1)]
    expected = 0.001 * (y1 - y0) * 111_320.0**2 * 0.8496
    assert out[0].area_m2 == pytest.approx(expected, rel=0.01)
    assert out[0].point[0] < x0 and "超出其上级" in out[0].message
    assert kinds(problems) == {"child_outside_parent"}


def test_two_overlapping_grids(tmp_path):
    g1 = find(make_city(), GRID1).geometry
    g2 = find(make_city(), GRID2).geometry
    x0, y0, x1, y1 = g1.bounds
    records = set_geom(make_city(), GRID1, box(x0, y0, x1, y1 + (g2.bounds[3] - g2.bounds[1]) / 2))
    _, problems = check_file(tmp_path, records)
    assert [p.codes for p in problems] == [(GRID1, GRID2)]
    assert problems[0].kind == "overlap" and problems[0].area_m2 > 1e6
    assert g2.contains(Point(problems[0].point))


def test_gap_from_a_shrunk_grid(tmp_path):
    x0, y0, x1, y1 = find(make_city(), GRID2).geometry.bounds
    records = set_geom(make_city(), GRID2, box(x0, y0, x1 - 0.001, y1))
    _, problems = check_file(tmp_path, records)
    assert [(p.kind, p.codes) for p in problems] == [("gap", (COMM1,))]
    lon, lat = problems[0].point
    assert x1 - 0.001 < lon < x1 and y0 < lat < y1
    assert problems[0].area_m2 == pytest.approx(0.001 * (y1 - y0) * 111_320.0**2 * 0.8496, rel=0.01)
    assert "未被其下级" in problems[0].message


def test_missing_column(tmp_path):
    path = tmp_path / "city.geojson"
    write_hierarchy_file(make_city(), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    for f in data["features"]:
        del f["properties"]["parent"]
    path.write_text(json.dumps(data), encoding="utf-8")
    records, problems = load_and_validate(path)
    assert records == []
    assert [p.kind for p in problems] == ["missing_column"] and "parent" in problems[0].message


def _edit_feature(tmp_path, code, **changes):
    path = tmp_path / "city.geojson"
    write_hierarchy_file(make_city(), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    for f in data["features"]:
        if f["properties"]["code"] == code:
            for key, value in changes.items():
                if key == "geometry":
                    f["geometry"] = value
                else:
                    f["properties"][key] = value
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_point_geometry(tmp_path):
    path = _edit_feature(tmp_path, GRID1, geometry={"type": "Point", "coordinates": [119.91, 31.71]})
    records, problems = load_and_validate(path)
    assert [(p.kind, p.codes) for p in problems] == [("geometry_type", (GRID1,))]
    assert GRID1 not in {r.code for r in records}


def test_null_geometry(tmp_path):
    path = _edit_feature(tmp_path, GRID1, geometry=None)
    _, problems = load_and_validate(path)
    assert [(p.kind, p.codes) for p in problems] == [("empty_geometry", (GRID1,))]


def test_level_seven(tmp_path):
    path = _edit_feature(tmp_path, GRID1, level=7)
    _, problems = load_and_validate(path)
    assert [(p.kind, p.codes) for p in problems] == [("bad_level", (GRID1,))]
    assert "7" in problems[0].message


def test_level_not_an_integer(tmp_path):
    path = _edit_feature(tmp_path, COMM1, level="社区")
    _, problems = load_and_validate(path)
    # Its grids are not blamed for a parent that was already rejected.
    assert [(p.kind, p.codes) for p in problems] == [("bad_level", (COMM1,))]


def test_blank_name_and_bad_population(tmp_path):
    path = _edit_feature(tmp_path, GRID1, name="  ", population=-5)
    _, problems = load_and_validate(path)
    assert sorted((p.kind, p.codes) for p in problems) == [("bad_population", (GRID1,)), ("blank_name", (GRID1,))]


def test_empty_files(tmp_path):
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    records, problems = load_and_validate(empty)
    assert records == [] and [p.kind for p in problems] == ["empty_file"]
    no_features = tmp_path / "none.geojson"
    no_features.write_text('{"type": "FeatureCollection", "features": []}')
    records, problems = load_and_validate(no_features)
    assert records == [] and [p.kind for p in problems] == ["empty_file"]


def test_not_geo_data(tmp_path):
    for name, content in [("notes.geojson", "这不是地理数据\n1,2,3\n"), ("fake.gpkg", "plain text")]:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        records, problems = load_and_validate(path)
        assert records == [] and [p.kind for p in problems] == ["read_error"], name


def test_missing_file_and_unknown_extension(tmp_path):
    records, problems = load_and_validate(tmp_path / "nowhere.geojson")
    assert records == [] and [p.kind for p in problems] == ["read_error"] and "不存在" in problems[0].message
    csv = tmp_path / "city.csv"
    csv.write_text("code,name\n320400,测试市\n", encoding="utf-8")
    records, problems = load_and_validate(csv)
    assert records == [] and [p.kind for p in problems] == ["unsupported_format"]


def test_geopackage_layers(tmp_path):
    path = tmp_path / "city.gpkg"
    write_hierarchy_file(make_city(), path)
    import geopandas as gpd
    gpd.GeoDataFrame({"x": [1]}, geometry=[box(0, 0, 1, 1)], crs=4326).to_file(path, layer="other")
    records, problems = load_and_validate(path)
    assert records == [] and [p.kind for p in problems] == ["layer"]
    assert "areas" in problems[0].message and "other" in problems[0].message
    records, problems = load_and_validate(path, layer="areas")
    assert problems == [] and len(records) == 39
    _, problems = load_and_validate(path, layer="nope")
    assert [p.kind for p in problems] == ["layer"]


def test_every_problem_is_reported(tmp_path):
    records = make_city()
    x0, y0, x1, y1 = find(records, GRID2).geometry.bounds
    records = set_geom(records, GRID2, box(x0, y0, x1 - 0.001, y1))          # gap
    records = [replace(r, parent="320404009") if r.code == "320404001001" else r for r in records]  # missing parent
    records = [r for r in records if r.parent != "320402002002"]              # no children
    records.append(replace(find(records, GRID3), name="重复"))                 # duplicate
    _, problems = check_file(tmp_path, records)
    assert {"gap", "missing_parent", "no_children", "duplicate_code"} <= kinds(problems)
    assert all(p.codes for p in problems if p.kind != "root")


# ---------------------------------------------------------------------------- tolerance

def test_sliver_below_tolerance_is_accepted_and_above_is_reported(tmp_path):
    x0, y0, x1, y1 = find(make_city(), GRID2).geometry.bounds
    height_m = (y1 - y0) * 111_320.0  # ~3,700 m: 1 mm of width is ~3.7 m²
    small = set_geom(make_city(), GRID2, box(x0, y0, x1 - 1 * MM_LON, y1))
    large = set_geom(make_city(), GRID2, box(x0, y0, x1 - 10 * MM_LON, y1))
    assert height_m * 0.001 < 10 < height_m * 0.01
    assert check_file(tmp_path, small, "small.geojson")[1] == []
    problems = check_file(tmp_path, large, "large.geojson")[1]
    assert [(p.kind, p.codes) for p in problems] == [("gap", (COMM1,))]
    assert problems[0].area_m2 == pytest.approx(height_m * 0.01, rel=0.02)
    # The same small sliver is a problem with a stricter tolerance.
    assert [p.kind for p in validate_hierarchy(small, tolerance_m2=1.0)] == ["gap"]
    # A sliver of overhang likewise (into the next community: not a sibling, so no overlap).
    x0, y0, x1, y1 = find(make_city(), GRID1).geometry.bounds
    over = set_geom(make_city(), GRID1, box(x0, y0, x1 + 1 * MM_LON, y1))
    assert validate_hierarchy(over) == []
    assert {p.kind for p in validate_hierarchy(over, tolerance_m2=0.1)} == {"child_outside_parent"}


# ---------------------------------------------------------------------------- CRS

def test_projected_geopackage_is_read_as_lon_lat(tmp_path):
    import geopandas as gpd
    records = make_city()
    path = tmp_path / "mercator.gpkg"
    gdf = gpd.GeoDataFrame(
        {"code": [r.code for r in records], "name": [r.name for r in records],
         "level": [r.level for r in records], "parent": [r.parent for r in records],
         "population": [r.population for r in records]},
        geometry=[r.geometry for r in records], crs="EPSG:4326").to_crs(3857)
    assert gdf.total_bounds[0] > 1e7
    gdf.to_file(path, layer="areas")
    back, problems = load_and_validate(path)
    assert problems == []
    for a, b in zip(records, back):
        assert a.code == b.code
        assert shapely.normalize(a.geometry).equals_exact(shapely.normalize(b.geometry), 1e-9)


def test_projected_coordinates_without_crs(tmp_path):
    path = tmp_path / "nocrs.geojson"
    feature = {"type": "Feature", "properties": {"code": "320400", "name": "市", "level": 1, "parent": None},
               "geometry": {"type": "Polygon", "coordinates": [[[13e6, 3.7e6], [13.1e6, 3.7e6], [13.1e6, 3.8e6], [13e6, 3.7e6]]]}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    _, problems = load_and_validate(path)
    assert [p.kind for p in problems] == ["bad_crs"]


# ---------------------------------------------------------------------------- scale

def test_city_sized_hierarchy_validates_in_seconds():
    # 7 districts × 9 streets × 16 communities × 6 grids: about the size of Changzhou.
    records = make_city(splits=(7, 9, 16, 6), district_codes=("320402", "320404", "320411", "320412",
                                                               "320413", "320481", "320491"))
    assert len(records) == 1 + 7 + 63 + 1008 + 6048
    start = time.perf_counter()
    problems = validate_hierarchy(records)
    elapsed = time.perf_counter() - start
    assert problems == []
    assert elapsed < 20, elapsed


# ---------------------------------------------------------------------------- records from elsewhere

def test_validate_records_with_unusable_geometries_does_not_crash():
    records = make_city()
    x0, y0, x1, y1 = find(records, GRID1).geometry.bounds
    records = set_geom(records, GRID1, Polygon())
    records = set_geom(records, GRID2, shapely.LineString([(x0, y0), (x1, y1)]))
    bow_tie = Polygon([(x0, y0), (x1, y1 + 0.1), (x1, y0), (x0, y1 + 0.1)])  # also out of its community
    records = set_geom(records, GRID3, bow_tie)
    problems = validate_hierarchy(records)
    assert ("empty_geometry", (GRID1,)) in [(p.kind, p.codes) for p in problems]
    assert ("geometry_type", (GRID2,)) in [(p.kind, p.codes) for p in problems]
    assert ("invalid_geometry", (GRID3,)) in [(p.kind, p.codes) for p in problems]
    assert ("child_outside_parent", (GRID3, COMM1)) in [(p.kind, p.codes) for p in problems]


def test_areas_of_empty_results_are_zero():
    from geo.importer import _areas_m2
    areas = _areas_m2([Polygon(), box(120, 31.8, 120.001, 31.801)])
    assert areas[0] == 0 and areas[1] == pytest.approx(111_320.0**2 * 1e-6 * 0.8496, rel=0.01)


def test_two_gaps_in_one_parent_are_both_reported(tmp_path):
    g1 = find(make_city(), GRID1).geometry.bounds
    g3 = find(make_city(), GRID3).geometry.bounds
    records = set_geom(make_city(), GRID1, box(g1[0], g1[1], g1[2] - 0.001, g1[3]))
    records = set_geom(records, GRID3, box(g3[0], g3[1], g3[2] - 0.001, g3[3]))
    _, problems = check_file(tmp_path, records)
    assert [(p.kind, p.codes) for p in problems] == [("gap", (COMM1,)), ("gap", (COMM1,))]
    assert problems[0].point != problems[1].point


# ---------------------------------------------------------------------------- streaming GeoJSON

def test_geojson_with_a_declared_projected_crs_is_read_as_lon_lat(tmp_path):
    from pyproj import Transformer

    transform = Transformer.from_crs(4326, 3857, always_xy=True).transform

    def to_3857(g):
        return shapely.transform(g, lambda xy: shapely.get_coordinates(shapely.points(*transform(xy[:, 0], xy[:, 1]))))
    records = make_city()
    features = [{"type": "Feature",
                 "properties": {"code": r.code, "name": r.name, "level": r.level, "parent": r.parent},
                 "geometry": shapely.geometry.mapping(to_3857(r.geometry))} for r in records]
    path = tmp_path / "mercator.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features,
                                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}}))
    back, problems = load_and_validate(path)
    assert problems == []
    for a, b in zip(records, back):
        assert shapely.normalize(a.geometry).equals_exact(shapely.normalize(b.geometry), 1e-7)


def test_unreadable_coordinates_are_reported_with_the_other_problems(tmp_path):
    path = _edit_feature(tmp_path, GRID1, geometry={"type": "Polygon", "coordinates": [[["a", "b"], [1, 2]]]})
    data = json.loads(path.read_text(encoding="utf-8"))
    for f in data["features"]:
        if f["properties"]["code"] == GRID2:
            f["properties"]["name"] = ""
        if f["properties"]["code"] == GRID3:   # 3-D positions: the height is dropped
            f["geometry"]["coordinates"] = [[[x, y, 12.5] for x, y in ring] for ring in f["geometry"]["coordinates"]]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    records, problems = load_and_validate(path)
    assert sorted((p.kind, p.codes) for p in problems) == [("blank_name", (GRID2,)), ("invalid_geometry", (GRID1,))]
    assert "无法读取" in of_kind(problems, "invalid_geometry")[0].message
    grid3 = find(records, GRID3).geometry
    assert not grid3.has_z and grid3.equals_exact(find(make_city(), GRID3).geometry, 1e-9)


def test_truncated_geojson_is_a_read_error_with_no_records(tmp_path):
    path = tmp_path / "city.geojson"
    write_hierarchy_file(make_city(), path)
    text = path.read_bytes()
    path.write_bytes(text[: len(text) // 2])
    records, problems = load_and_validate(path)
    assert records == [] and [p.kind for p in problems] == ["read_error"]


def test_deeply_nested_json_is_a_read_error_not_gigabytes(tmp_path):
    """100,000 nested brackets in a property (200 KB) once made ijson build gigabytes of prefixes."""
    import resource

    path = tmp_path / "deep.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"a": '
                    + "[" * 100_000 + "]" * 100_000 + '}, "geometry": null}]}')
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    records, problems = load_and_validate(path)
    assert records == [] and [p.kind for p in problems] == ["read_error"] and "嵌套过深" in problems[0].message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_a_geometry_type_that_is_no_string_keeps_the_reader_in_step(tmp_path):
    city = make_city()
    path = tmp_path / "city.geojson"
    write_hierarchy_file(city, path)
    doc = json.loads(path.read_text())
    doc["features"][-1]["geometry"]["type"] = {"a": 1}
    path.write_text(json.dumps(doc))
    records, problems = load_and_validate(path)
    # that feature refused for its geometry, and nothing else: no invented feature from the type's keys
    assert [p.kind for p in problems] == ["geometry_type"], problems


def test_a_large_polygon_is_read_without_holding_its_json(tmp_path):
    import math
    import tracemalloc

    n = 200_000
    ring = [[120.0 + 0.1 * math.cos(2 * math.pi * k / n), 31.8 + 0.1 * math.sin(2 * math.pi * k / n)] for k in range(n)]
    ring.append(ring[0])
    feature = {"type": "Feature", "properties": {"code": "320400", "name": "测试市", "level": 1, "parent": None},
               "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path = tmp_path / "big.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    del ring, feature
    tracemalloc.start()
    try:
        records, problems = read_hierarchy_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems == [] and len(shapely.get_coordinates(records[0].geometry)) == n + 1
    # Parsed into Python lists the ring alone would take ~100 bytes a vertex (~20 MB); read as a
    # stream of numbers into one array, about 16 bytes a vertex, a few times over while it grows.
    assert peak < 12 * 1024 * 1024, peak
