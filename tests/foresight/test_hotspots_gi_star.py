"""Spatial hotspots (foresight/hotspots.py, Getis-Ord Gi* with the Benjamini–Hochberg correction) on SQLite and
PostgreSQL: a planted cluster of adjacent grids is found there; uniform random counts raise nothing."""
from __future__ import annotations

import random

import numpy as np
import pytest
from shapely.geometry import box

from data import files
from dispatch.warning_rules import warning_rules_from_data
from foresight import hotspots
from geo.model import AreaRecord
from tests.foresight.warnings_world import CITY, GRIDS, T0, background, build, neighbours, plant, street_of

RULES = files.warning_rules()


@pytest.fixture
def world(empty_db):
    build(empty_db)
    return empty_db


def test_a_planted_cluster_of_adjacent_grids_is_one_hotspot_there(world):
    rng = random.Random(7)
    background(world, rng)
    centre = GRIDS[45].code
    planted = [centre] + neighbours(centre)[:3]
    ids = set()
    for g in planted:
        ids.update(plant(world, g, 12, rng))
    found = hotspots.detect(world, T0, RULES)
    assert sorted(f.evidence["window_days"] for f in found) == [7, 30]  # one cluster in each window
    week = next(f for f in found if f.evidence["window_days"] == 7)
    listed = {g["code"] for g in week.evidence["grids"]}
    assert set(planted) <= listed
    assert week.area_code in planted and week.evidence["street"] == street_of(week.area_code)
    assert all(g["z"] > 0 and g["q"] <= RULES.hotspots.fdr_alpha for g in week.evidence["grids"])
    assert ids <= set(week.case_ids) and week.observed >= len(ids) > week.upper > week.expected
    # the window is the last 7 full local days
    assert week.window_end.isoformat() == "2026-11-22T16:00:00+00:00"
    assert week.window_start.isoformat() == "2026-11-15T16:00:00+00:00"
    # far grids are not part of it
    assert not listed & {GRIDS[0].code, GRIDS[-1].code}


def test_uniform_random_counts_raise_no_hotspot(world):
    background(world, random.Random(11), 0, 4)
    assert hotspots.detect(world, T0, RULES) == []


def test_today_is_not_in_the_windows_and_no_cases_is_no_hotspot(world):
    assert hotspots.detect(world, T0, RULES) == []
    rng = random.Random(3)
    plant(world, GRIDS[45].code, 40, rng, at=T0)  # today: tomorrow's window
    assert hotspots.detect(world, T0, RULES) == []


def _weights():
    return hotspots._build(CITY, GRIDS, RULES.hotspots)


def test_false_positives_over_random_runs_are_rare():
    """200 runs of uniform random (Poisson 3) counts over the 128 grids: how many grids come out hot after the
    correction. BH at 5 % bounds the share of runs with any false hotspot by about 5 % (all nulls true)."""
    gw = _weights()
    rng = np.random.default_rng(2026)
    runs_with_any, hot_grids, findings = 0, 0, 0
    for _ in range(200):
        y = rng.poisson(3.0, len(gw.codes)).astype(float)
        z, _p, q = hotspots.gi_star(y, gw, RULES.hotspots)
        hot = int(((z > 0) & (q <= RULES.hotspots.fdr_alpha)).sum())
        hot_grids += hot
        runs_with_any += hot > 0
        findings += len(hotspots.hot_clusters(gw, y, z, q, RULES.hotspots))
    print(f"\nfalse positives: {runs_with_any} of 200 runs had a hot grid ({hot_grids} grids in all); "
          f"{findings} warnings after the minimum of {RULES.hotspots.min_cases} cases")
    assert runs_with_any <= 20  # 5 % of 200 is 10; a generous bound for the dependence between tests
    assert findings <= runs_with_any


def test_without_the_correction_random_counts_would_warn():
    """The point of the correction: the raw one-sided p < 0.05 flags grids in most random runs."""
    gw = _weights()
    rng = np.random.default_rng(5)
    raw = 0
    for _ in range(50):
        y = rng.poisson(3.0, len(gw.codes)).astype(float)
        _z, p, q = hotspots.gi_star(y, gw, RULES.hotspots)
        raw += int((p <= 0.05).sum() > 0)
    assert raw >= 25


def test_a_cold_block_is_no_warning():
    gw = _weights()
    y = np.full(len(gw.codes), 6.0)
    cold = [gw.codes.index(c) for c in [GRIDS[45].code] + neighbours(GRIDS[45].code)]
    y[cold] = 0
    z, _p, q = hotspots.gi_star(y, gw, RULES.hotspots)
    assert (z[cold] < 0).all()
    assert not ((z > 0) & (q <= RULES.hotspots.fdr_alpha)).any()


def test_an_island_grid_takes_its_nearest_neighbours():
    island = AreaRecord("320402001001999", "飞地", 5, GRIDS[0].parent, box(121.0, 32.5, 121.01, 32.51))
    gw = hotspots._build(CITY + [island], GRIDS + [island], RULES.hotspots)
    assert gw.islands_linked == 1
    assert len(gw.w.neighbors[island.code]) == RULES.hotspots.island_neighbours
    assert not gw.w.islands


def test_the_rules_file_lists_every_defect_at_once():
    bad = {"hotspots": {"windows_days": [], "weights": "hexagon", "island_neighbours": 0, "permutations": -1,
                        "fdr_alpha": 2, "min_cases": 0, "min_cluster_grids": 1, "max_clusters": 0},
           "recurrent": {"radius_m": -5, "min_repeats": 1, "period_days": 30, "max_spots": 10},
           "notify": {"surge": "street", "hotspot": "province", "recurrent": "street", "flood": "city"},
           "campaign": {"category": "999999", "max_cases_named": 50}}
    with pytest.raises(Exception) as err:
        warning_rules_from_data(bad, {"020102"})
    problems = err.value.problems
    for word in ("windows_days", "weights", "island_neighbours", "permutations", "fdr_alpha", "min_cases",
                 "radius_m", "min_repeats", "max_clusters", "notify.hotspot", "flood", "999999"):
        assert any(word in p for p in problems), word
    assert "预警规则文件有误" in str(err.value)


def test_permutation_p_values_cannot_pass_the_correction_for_a_small_cluster():
    """Why the rules use the normal p: 99 permutations give p ≥ 0.01, and BH over 128 grids needs far less for a
    four-grid cluster; the analytical p finds it."""
    import dataclasses

    gw = _weights()
    y = np.random.default_rng(1).poisson(3.0, len(gw.codes)).astype(float)
    planted = [gw.codes.index(c) for c in [GRIDS[45].code] + neighbours(GRIDS[45].code)[:3]]
    y[planted] = 20
    with_perms = dataclasses.replace(RULES.hotspots, permutations=99)
    z, p, q = hotspots.gi_star(y, gw, with_perms)
    assert p.min() >= 1 / 100 - 1e-6 and (p[z <= 0] == 1).all()
    assert not (q <= RULES.hotspots.fdr_alpha).any()  # the planted cluster is lost to the floor of the pseudo p
    z, p, q = hotspots.gi_star(y, gw, RULES.hotspots)
    assert (q[planted] <= RULES.hotspots.fdr_alpha).all()
