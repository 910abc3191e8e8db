"""Cases counted per area, kind or category and per local hour or day (figures/case_counts.py), on SQLite and
PostgreSQL: the series the forecasts and warnings read."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from figures.case_counts import case_ids, daily_counts, hourly_counts
from data.models import Case
from tests.factories import add_case_row, rect_city, small_world

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
GRIDS = [r.code for r in rect_city() if r.level == 5]
_PARENT = {r.code: r.parent for r in rect_city()}
STREETS = {g: _PARENT[_PARENT[g]] for g in GRIDS}


@pytest.fixture
def world(empty_db):
    small_world(empty_db, T0)
    return empty_db


def test_a_case_is_counted_in_its_local_day_and_hour(world):
    # 15:30 UTC on the 22nd is 23:30 in Shanghai; 16:30 UTC is 00:30 on the 23rd there
    add_case_row(world, datetime(2026, 11, 22, 15, 30, tzinfo=UTC))
    add_case_row(world, datetime(2026, 11, 22, 16, 30, tzinfo=UTC))
    add_case_row(world, datetime(2026, 11, 22, 16, 45, tzinfo=UTC), grid=GRIDS[-1], kind="component")
    with world.session() as s:
        days = daily_counts(s, "district", date(2026, 11, 22), date(2026, 11, 23))
        hours = hourly_counts(s, "kind", T0 - timedelta(days=2), T0)
    by_day = {(r.key, r.day.date()): r.count for r in days.itertuples()}
    assert by_day == {(GRIDS[0][:6], date(2026, 11, 22)): 1, (GRIDS[0][:6], date(2026, 11, 23)): 1,
                      (GRIDS[-1][:6], date(2026, 11, 23)): 1}
    by_hour = {(r.key, r.hour.strftime("%d %H")): r.count for r in hours.itertuples()}
    assert by_hour == {("event", "22 23"): 1, ("event", "23 00"): 1, ("component", "23 00"): 1}


def test_streets_are_the_grids_parents_and_where_narrows(world):
    for i, grid in enumerate(GRIDS[:4]):
        for _ in range(i + 1):
            add_case_row(world, T0 - timedelta(hours=1), grid=grid)
    with world.session() as s:
        streets = daily_counts(s, "street", date(2026, 11, 23), date(2026, 11, 23))
        one = daily_counts(s, "grid", date(2026, 11, 23), date(2026, 11, 23), where=(Case.grid_code == GRIDS[3],))
        ids = case_ids(s, T0 - timedelta(hours=2), T0, where=(Case.grid_code == GRIDS[1],))
    expected: dict[str, int] = {}
    for i, grid in enumerate(GRIDS[:4]):
        expected[STREETS[grid]] = expected.get(STREETS[grid], 0) + i + 1
    assert dict(zip(streets["key"], streets["count"])) == expected
    assert one["count"].tolist() == [4] and one["key"].tolist() == [GRIDS[3]]
    assert len(ids) == 2


def test_the_window_is_half_open(world):
    add_case_row(world, T0)
    add_case_row(world, T0 + timedelta(hours=1))
    with world.session() as s:
        hours = hourly_counts(s, "city", T0, T0 + timedelta(hours=1))
    assert hours["count"].sum() == 1
