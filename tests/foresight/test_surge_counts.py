"""The surge check's read (figures.case_counts.grid_category_counts) on SQLite and PostgreSQL: cases per grid and
category in a half-open window, and split by a condition (days off) in the same read."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from data.models import Case
from figures.case_counts import grid_category_counts
from tests.factories import add_case_row, rect_city, small_world

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
GRIDS = [r.code for r in rect_city() if r.level == 5]


def test_counts_per_grid_and_category_split_by_days_off(empty_db):
    small_world(empty_db, T0)
    saturday = T0 - timedelta(days=2)
    add_case_row(empty_db, T0)
    add_case_row(empty_db, T0 + timedelta(hours=1), category_code="010101", kind="component")
    add_case_row(empty_db, saturday, grid=GRIDS[1])
    add_case_row(empty_db, saturday + timedelta(hours=2), grid=GRIDS[1])
    add_case_row(empty_db, T0 + timedelta(days=1))  # outside the window's end
    end = T0 + timedelta(days=1)
    with empty_db.session() as s:
        plain = grid_category_counts(s, saturday, end)
        off = (Case.reported_at >= saturday - timedelta(hours=10)) & (Case.reported_at < saturday + timedelta(hours=14))
        split = grid_category_counts(s, saturday, end, split=off)
    assert sorted(map(tuple, plain[["grid", "category", "count"]].itertuples(index=False))) == sorted(
        [(GRIDS[0], "020102", 1), (GRIDS[0], "010101", 1), (GRIDS[1], "020102", 2)])
    assert sorted(map(tuple, split[["grid", "category", "part", "count"]].itertuples(index=False))) == sorted(
        [(GRIDS[0], "020102", 0, 1), (GRIDS[0], "010101", 0, 1), (GRIDS[1], "020102", 1, 2)])
