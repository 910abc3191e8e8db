"""A generated case history for the forecast and surge tests: rect_city's two districts with a weekly pattern,
weekends, China's holidays and make-up working days (data/calendar/holidays_cn.json), an hour-of-day rhythm and,
when asked, a planted surge on one street on one day — written in bulk (one INSERT of many rows)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
from sqlalchemy import insert

from data import files
from data.models import Case
from dispatch.city_time import CITY_TZ
from tests.factories import rect_city, small_world

UTC = timezone.utc
CITY = rect_city()
GRIDS = [r.code for r in CITY if r.level == 5]
PARENT = {r.code: r.parent for r in CITY}
STREET_OF = {g: PARENT[PARENT[g]] for g in GRIDS}
STREETS = sorted(set(STREET_OF.values()))
DISTRICTS = sorted({g[:6] for g in GRIDS})
# Monday … Sunday on an ordinary week; weekends, holidays and make-up days as the demo history has them
WEEKDAY = [1.08, 1.04, 1.0, 0.98, 0.95, 0.62, 0.58]
HOLIDAY, MAKEUP = 0.42, 0.95
BASE = {"320402": 70.0, "320403": 45.0}  # cases a Monday in each district
# the hours of the day cases are reported in (a day's shape: few at night, most in office hours)
HOURS = np.array([1, 1, 1, 1, 1, 2, 4, 6, 9, 10, 9, 8, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 2, 1], dtype=float)
HOURS /= HOURS.sum()
CATEGORIES = [("020102", "event"), ("020101", "event"), ("010101", "component"), ("010102", "component")]


def expected_day(district: str, day: date) -> float:
    cal = files.calendar()
    if day in cal.holidays:
        factor = HOLIDAY
    elif day in cal.workdays:
        factor = MAKEUP
    else:
        factor = WEEKDAY[day.weekday()]
    return BASE[district] * factor


def cases_of(first: date, last: date, seed: int = 7, surge: tuple[str, date, int] | None = None) -> list[dict]:
    """Case rows reported from `first` to `last` (local days), with `surge` = (street, day, extra cases) planted
    in that street's grids between 09:00 and 15:00 of that day."""
    rng = np.random.default_rng(seed)
    grid_weights = {d: rng.uniform(0.5, 1.5, size=len([g for g in GRIDS if g[:6] == d])) for d in DISTRICTS}
    rows = []

    def row(grid, at, cat):
        code, kind = cat
        return dict(state="closed", category_code=code, kind=kind, source="patrol", lon=119.91, lat=31.71,
                    grid_code=grid, district_code=grid[:6], reported_at=at, updated_at=at)

    day = first
    while day <= last:
        midnight = datetime.combine(day, datetime.min.time(), CITY_TZ)
        for d in DISTRICTS:
            grids = [g for g in GRIDS if g[:6] == d]
            w = grid_weights[d] / grid_weights[d].sum()
            mean = expected_day(d, day)
            n = rng.negative_binomial(200, 200 / (200 + mean))  # a little overdispersion, as real days have
            for grid, hour, cat, minute in zip(rng.choice(grids, n, p=w), rng.choice(24, n, p=HOURS),
                                              rng.integers(0, len(CATEGORIES), n), rng.integers(0, 60, n)):
                at = midnight + timedelta(hours=int(hour), minutes=int(minute))
                rows.append(row(str(grid), at.astimezone(UTC), CATEGORIES[cat]))
        if surge is not None and surge[1] == day:
            street_grids = [g for g in GRIDS if STREET_OF[g] == surge[0]]
            for i in range(surge[2]):
                at = midnight + timedelta(hours=9, minutes=int(rng.integers(0, 360)))
                rows.append(row(street_grids[i % len(street_grids)], at.astimezone(UTC), CATEGORIES[0]))
        day += timedelta(days=1)
    return rows


def build_history(db, first: date, last: date, seed: int = 7, surge=None) -> int:
    """rect_city with the catalog, and the generated history in bulk; returns the number of cases."""
    small_world(db, datetime.combine(last, datetime.min.time(), UTC))
    rows = cases_of(first, last, seed, surge)
    with db.session() as s:
        for i in range(0, len(rows), 5000):
            s.execute(insert(Case), rows[i:i + 5000])
    return len(rows)
