"""Tests of the point locator: chains, borders, outside points, invalid input, bulk agreement."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from geo.locator import Locator, OutsideCity
from geo.model import CITY, COMMUNITY, DISTRICT, GRID, STREET, AreaRecord


@pytest.fixture(scope="module")
def records(demo_records):
    # demo_records (tests/conftest.py) generates the city once per session: it takes seconds.
    return demo_records


@pytest.fixture(scope="module")
def locator(records):
    return Locator.from_records(records)


@pytest.fixture(scope="module")
def grid_geoms(locator):
    geoms = np.array([g.geometry for g in locator.grids], dtype=object)
    yield geoms
    # intersects_xy prepares in place; leave the session's shared records as they were.
    shapely.destroy_prepared(geoms)


@pytest.fixture(scope="module")
def inside_points(records):
    """3,000 seeded points strictly inside the city."""
    rng = np.random.default_rng(12345)
    city = records[0].geometry
    x0, y0, x1, y1 = city.bounds
    x = rng.uniform(x0, x1, 12_000)
    y = rng.uniform(y0, y1, 12_000)
    keep = shapely.contains_xy(city, x, y)
    return x[keep][:3000], y[keep][:3000]


@pytest.fixture(scope="module")
def shared_vertices(grid_geoms):
    """Vertices that belong to two or more grids (exactly representable border points)."""
    coords, owner = shapely.get_coordinates(grid_geoms, return_index=True)
    pairs = np.unique(np.column_stack([coords, owner]), axis=0)  # one row per (vertex, grid)
    uniq, counts = np.unique(pairs[:, :2], axis=0, return_counts=True)
    shared = uniq[counts >= 2]
    rng = np.random.default_rng(7)
    pick = rng.choice(len(shared), size=min(300, len(shared)), replace=False)
    return shared[np.sort(pick)], counts[counts >= 2][np.sort(pick)]


def brute_force(grid_geoms, lon, lat) -> list[int]:
    """Indices of every grid whose polygon intersects the point (closed polygons: borders count)."""
    return np.flatnonzero(shapely.intersects_xy(grid_geoms, lon, lat)).tolist()


def test_grids_sorted_by_code(locator):
    codes = list(locator.grid_codes)
    assert codes == sorted(codes) and len(codes) == 5891 == len(locator)
    assert all(g.level == GRID for g in locator.grids)


def test_chains_go_grid_to_city(locator):
    for chain in locator.chains[::50]:
        assert [r.level for r in chain] == [GRID, COMMUNITY, STREET, DISTRICT, CITY]
        for child, parent in zip(chain, chain[1:]):
            assert child.parent == parent.code
        assert chain[-1].code == "320400"


def test_random_points_locate_and_agree_with_brute_force(locator, grid_geoms, inside_points):
    xs, ys = inside_points
    assert len(xs) == 3000
    for i, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
        chain = locator.locate(x, y)
        for rec in chain:  # every level of the chain holds the point
            assert rec.geometry.intersects(Point(x, y)), (rec.code, x, y)
        if i < 600:  # the full scan over 5,891 polygons is slow; a fifth of the points suffices
            hits = brute_force(grid_geoms, x, y)
            assert hits and locator.grids[min(hits)] is chain[0], (x, y, hits)


def test_shared_vertex_gets_smallest_code(locator, grid_geoms, shared_vertices):
    points, counts = shared_vertices
    assert counts.max() >= 3  # some are Voronoi corners shared by three grids
    for x, y in points.tolist():
        hits = brute_force(grid_geoms, x, y)
        assert len(hits) >= 2, (x, y)
        expected = locator.grids[min(hits)].code
        got = {locator.locate(x, y)[0].code for _ in range(3)}
        assert got == {expected}
    bulk = locator.locate_many(points[:, 0], points[:, 1])
    assert [locator.grid_codes[i] for i in bulk] == [locator.locate(x, y)[0].code for x, y in points.tolist()]


def _square_grid(code: str, x0: float, y0: float) -> AreaRecord:
    return AreaRecord(code=code, name=code, level=GRID, parent="320400001001", geometry=box(x0, y0, x0 + 1, y0 + 1))


def test_point_on_shared_edge_synthetic():
    # Four unit squares meeting at (1, 1); their codes deliberately not in spatial order.
    parent = AreaRecord("320400001001", "测试社区", COMMUNITY, None, box(0, 0, 2, 2))
    grids = [
        _square_grid("320400001001004", 0, 0),
        _square_grid("320400001001002", 1, 0),
        _square_grid("320400001001003", 0, 1),
        _square_grid("320400001001001", 1, 1),
    ]
    for records in ([parent] + grids, [parent] + grids[::-1]):
        loc = Locator.from_records(records)
        assert loc.locate(1.0, 0.5)[0].code == "320400001001002"  # edge between ...004 and ...002
        assert loc.locate(0.5, 1.0)[0].code == "320400001001003"  # edge between ...004 and ...003
        assert loc.locate(1.0, 1.0)[0].code == "320400001001001"  # corner of all four
        assert loc.locate(0.0, 0.0)[0].code == "320400001001004"  # outer corner counts too
        assert loc.locate(1.0, 1.0)[1].code == "320400001001"
        idx = loc.locate_many([1.0, 0.5, 1.0, 2.0, 2.5], [0.5, 1.0, 1.0, 2.0, 2.5])
        assert loc.codes_of(idx).tolist() == [
            "320400001001002", "320400001001003", "320400001001001", "320400001001001", None]
        with pytest.raises(OutsideCity):
            loc.locate(2.0000001, 1.0)


def test_far_point_is_outside(locator):
    with pytest.raises(OutsideCity) as info:
        locator.locate(116.397, 39.909)  # Beijing
    assert "不在本市范围内" in str(info.value)
    assert (info.value.lon, info.value.lat) == (116.397, 39.909)
    assert not isinstance(info.value, ValueError)  # callers can tell bad input from outside


def test_gap_in_city_bounding_box_is_outside(records, locator):
    # 119.80,31.55 (by 滆湖) lies inside the city's bounding box, but the Amap land boundary
    # leaves it out of 武进; the data has no lake holes, so this gap is the water case here.
    lon, lat = 119.80, 31.55
    x0, y0, x1, y1 = records[0].geometry.bounds
    assert x0 < lon < x1 and y0 < lat < y1
    districts = [r for r in records if r.level == DISTRICT]
    assert not any(d.geometry.intersects(Point(lon, lat)) for d in districts)
    with pytest.raises(OutsideCity):
        locator.locate(lon, lat)
    assert locator.locate_many([lon], [lat]).tolist() == [-1]
    # Every hole or notch a district boundary may have gets the same answer.
    holes = [ring for d in districts for ring in d.geometry.interiors]
    for ring in holes:
        p = shapely.Polygon(ring).point_on_surface()
        with pytest.raises(OutsideCity):
            locator.locate(p.x, p.y)


@pytest.mark.parametrize("lon,lat", [
    (math.nan, 31.7), (119.9, math.nan), (math.inf, 31.7), (119.9, -math.inf),
    (180.5, 31.7), (-181.0, 31.7), (119.9, 90.01), (119.9, -95.0),
])
def test_invalid_coordinates_raise_value_error(locator, lon, lat):
    with pytest.raises(ValueError):
        locator.locate(lon, lat)
    with pytest.raises(ValueError):
        locator.locate_many([119.95, lon], [31.75, lat])


def test_integer_and_numpy_scalars_accepted(locator):
    assert locator.locate(np.float64(119.97), np.float32(31.78))[0].level == GRID
    with pytest.raises(OutsideCity):
        locator.locate(0, 0)


def test_locate_many_agrees_with_locate(records, locator, inside_points, shared_vertices):
    rng = np.random.default_rng(99)
    x0, y0, x1, y1 = records[0].geometry.bounds
    # Points in and around the city's bounding box, the inside points, and border points.
    xs = np.concatenate([rng.uniform(x0 - 0.05, x1 + 0.05, 20_000), inside_points[0], shared_vertices[0][:, 0]])
    ys = np.concatenate([rng.uniform(y0 - 0.05, y1 + 0.05, 20_000), inside_points[1], shared_vertices[0][:, 1]])
    bulk = locator.locate_many(xs, ys)
    assert bulk.dtype.kind == "i" and bulk.shape == xs.shape
    outside = 0
    for x, y, i in zip(xs.tolist(), ys.tolist(), bulk.tolist()):
        try:
            grid = locator.locate(x, y)[0]
        except OutsideCity:
            assert i == -1, (x, y)
            outside += 1
        else:
            assert i >= 0 and locator.grids[i] is grid, (x, y)
    assert 0 < outside < len(xs)
    # And with one vectorised tree query over the same points (the reference method).
    inp, idx = locator.tree.query(shapely.points(xs, ys), predicate="intersects")
    ref = np.full(len(xs), -1)
    for a, b in zip(inp.tolist(), idx.tolist()):
        ref[a] = b if ref[a] < 0 else min(ref[a], b)
    assert np.array_equal(ref, bulk)


def test_locate_many_shapes_and_helpers(locator, inside_points):
    xs, ys = inside_points
    grid2d = locator.locate_many(xs[:6].reshape(2, 3), ys[:6].reshape(2, 3))
    assert grid2d.shape == (2, 3) and (grid2d >= 0).all()
    assert locator.locate_many([], []).shape == (0,)
    with pytest.raises(ValueError):
        locator.locate_many([1.0, 2.0], [1.0])
    idx = np.array([grid2d[0, 0], -1])
    codes = locator.codes_of(idx)
    assert codes[0] == locator.locate(xs[0], ys[0])[0].code and codes[1] is None
    assert locator.chain(int(grid2d[0, 0])) == locator.locate(xs[0], ys[0])
    with pytest.raises(IndexError):
        locator.chain(-1)


def test_public_path_gives_same_answers(records, locator, inside_points, shared_vertices):
    public = Locator.from_records(records, use_native=False)
    assert public.native is False
    pts = list(zip(inside_points[0][:500].tolist(), inside_points[1][:500].tolist()))
    pts += [tuple(p) for p in shared_vertices[0].tolist()]
    for x, y in pts:
        assert public.locate(x, y)[0] is locator.locate(x, y)[0]


def test_locate_many_from_threads(locator, inside_points):
    xs, ys = inside_points
    expected = locator.locate_many(xs, ys)
    results = [None] * 4

    def work(k):
        results[k] = Locator.locate_many(locator, xs, ys)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(r, expected) for r in results)


def test_records_untouched():
    # The locator prepares copies for bulk lookups; the callers' geometries stay plain.
    grids = [_square_grid(f"32040000100100{k}", k, 0) for k in range(1, 4)]
    loc = Locator.from_records(grids)
    assert loc.locate_many([1.5, 2.5], [0.5, 0.5]).tolist() == [0, 1]
    assert not shapely.is_prepared([g.geometry for g in grids]).any()
