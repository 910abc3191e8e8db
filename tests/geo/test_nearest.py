"""The nearest-first index answers exactly what a scan of every point answers (ids, order, distances), with the
filters, a radius and points far from the index's centre, in metres on the ellipsoid."""
from __future__ import annotations

import numpy as np
import pytest

from geo.nearest import NearestIndex, geodesic_m

KINDS = ("team", "warehouse", "equipment", "shelter")
SPECIALTIES = ("fire", "drainage", "gas", "medical", None)


@pytest.fixture(scope="module")
def index():
    rng = np.random.default_rng(7)
    n = 3000
    lons = 119.1 + rng.random(n) * 1.0   # about the extent of Changzhou
    lats = 31.2 + rng.random(n) * 0.8
    ids = [f"R{i:05d}" for i in range(n)]
    kinds = [KINDS[i] for i in rng.integers(0, 4, n)]
    specs = [SPECIALTIES[i] for i in rng.integers(0, 5, n)]
    owners = [f"U{i}" for i in rng.integers(0, 6, n)]
    rows = list(zip(ids, lons, lats, kinds, specs, owners))
    rows += [("DUP-A", 119.5, 31.6, "team", "fire", "U0"), ("DUP-B", 119.5, 31.6, "team", "fire", "U0")]
    return NearestIndex.build(rows)


def test_a_known_distance_is_on_the_ellipsoid():
    # 1° of latitude at 31.5° N is 110.9 km on WGS 84 (a sphere of radius 6,371 km would say 111.2 km)
    assert geodesic_m(119.5, 31.0, np.array([119.5]), np.array([32.0]))[0] == pytest.approx(110_900, abs=100)


@pytest.mark.parametrize("filters", [{}, {"kind": "team"}, {"kind": "team", "specialty": "gas"},
                                     {"specialty": "medical"}, {"owner": "U3"}, {"kind": "shelter", "owner": "U1"},
                                     {"radius_m": 3000}, {"kind": "warehouse", "radius_m": 8000},
                                     {"kind": "team", "specialty": "fire", "radius_m": 500}])
def test_the_index_answers_as_a_scan(index, filters):
    rng = np.random.default_rng(11)
    for lon, lat in zip(118.9 + rng.random(60) * 1.4, 31.0 + rng.random(60) * 1.2):  # some outside the points
        for limit in (1, 5, 20, 200):
            got = index.nearest(lon, lat, limit=limit, **filters)
            want = index.scan(lon, lat, limit=limit, **filters)
            assert [h.id for h in got] == [h.id for h in want]
            assert [h.distance_m for h in got] == pytest.approx([h.distance_m for h in want])
            d = [h.distance_m for h in got]
            assert d == sorted(d)
            if "radius_m" in filters:
                assert all(x <= filters["radius_m"] for x in d)
            if "kind" in filters:
                assert all(index.kinds[h.index] == filters["kind"] for h in got)


def test_far_away_query_and_ties(index):
    got = index.nearest(116.4, 39.9, limit=3)  # Beijing: ~1,000 km away, the projection stretched there
    assert [h.id for h in got] == [h.id for h in index.scan(116.4, 39.9, limit=3)]
    assert got[0].distance_m > 900_000
    tie = index.nearest(119.5, 31.6, limit=2, kind="team", specialty="fire")
    assert [h.id for h in tie] == ["DUP-A", "DUP-B"] and tie[0].distance_m == pytest.approx(0, abs=1e-6)


def test_nothing_to_find():
    empty = NearestIndex.build([])
    assert empty.nearest(119.5, 31.6) == []
    one = NearestIndex.build([("A", 119.5, 31.6, "team", None, None)])
    assert one.nearest(119.5, 31.6, kind="shelter") == []
    assert one.nearest(119.5, 31.6, specialty="gas") == []
    assert [h.id for h in one.nearest(119.6, 31.6, limit=5)] == ["A"]
    assert one.nearest(119.6, 31.6, radius_m=100) == []
