"""Recurring spots, 高发问题点位 (foresight/recurrent.py), on SQLite and PostgreSQL: the same category at the same
place again and again is one finding, with a stable spot; fewer, older or other-category cases are not."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from data import files
from foresight import recurrent
from foresight.warnings import WarningService, detector
from tests.foresight.warnings_world import GRIDS, T0, build, plant

RULES = files.warning_rules()
METRE = 1 / 111_000  # a metre in degrees of latitude (about)


@pytest.fixture
def world(empty_db):
    cases, clock = build(empty_db)
    return empty_db, cases


def _spot(db, n, category="020505", dx_m=0.0, grid=None, days_back=(1, 20), at=None):
    grid = grid or GRIDS[50]
    c = grid.geometry.centroid
    rng = random.Random(n)
    out = []
    for i in range(n):
        # within 15 m of the spot, each case its own point
        point = (c.x + (dx_m + rng.uniform(-10, 10)) * METRE, c.y + rng.uniform(-10, 10) * METRE)
        out += plant(db, grid.code, 1, rng, days_back=days_back, category=category, point=point, at=at)
    return out


def test_a_place_reported_again_and_again_is_one_spot(world):
    db, _ = world
    ids = _spot(db, 6)
    _spot(db, RULES.recurrent.min_repeats - 1, category="020102")  # the same place, another category, too few
    found = recurrent.detect(db, T0, RULES)
    assert len(found) == 1
    f = found[0]
    assert f.kind == "recurrent" and f.category_code == "020505" and f.observed == 6
    assert sorted(f.case_ids) == sorted(ids) and f.area_code == GRIDS[50].code
    ev = f.evidence
    assert ev["count"] == 6 and ev["radius_m"] == RULES.recurrent.radius_m
    c = GRIDS[50].geometry.centroid
    assert abs(ev["lon"] - c.x) < 20 * METRE and abs(ev["lat"] - c.y) < 20 * METRE
    assert f.dedupe_key == f"recurrent|{ev['spot']}|020505"


def test_scattered_old_or_few_cases_are_no_spot(world):
    db, _ = world
    _spot(db, RULES.recurrent.min_repeats - 1)
    _spot(db, 6, category="020102", days_back=(RULES.recurrent.period_days + 1, RULES.recurrent.period_days + 5))
    for i in range(8):  # the same category, 200 m apart
        _spot(db, 1, category="020501", dx_m=200 * i)
    assert recurrent.detect(db, T0, RULES) == []


def test_the_spot_stays_one_warning_while_it_lasts(world):
    db, cases = world
    _spot(db, 5, days_back=(20, 24))
    service = WarningService(db, cases, [detector("foresight.recurrent")], RULES)
    first = service.run(T0)
    assert len(first) == 1 and first[0]["observed"] == 5
    assert service.run(T0 + timedelta(hours=1)) == []  # the next hour: the same spot, nothing new
    # ten days on, the first reports have left the period and five new ones came 30 m east: the spot's centre
    # moved, its name and its warning did not
    later = T0 + timedelta(days=10)
    _spot(db, 5, dx_m=30, at=later - timedelta(hours=2))
    again = recurrent.detect(db, later, RULES)
    assert len(again) == 1 and again[0].observed == 5
    assert again[0].evidence["spot"] == service.get(first[0]["id"], _admin())["evidence"]["spot"]
    assert service.run(later) == []
    assert service.list(_admin())["total"] == 1


def _admin():
    from data.tokens import Principal

    return Principal(kind="token", ident="token:1", role="admin", area_code="320400")
