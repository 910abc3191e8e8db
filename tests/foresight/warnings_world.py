"""A test city big enough for hotspots (128 grids of rect_city), its cases planted by hand, and its services."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from tests.factories import Clock, add_case_row, rect_city

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai: windows end 2026-11-23 00:00 +08:00
SPLITS = (2, 2, 4, 8)
CITY = rect_city(splits=SPLITS)
GRIDS = [r for r in CITY if r.level == 5]
BY_CODE = {r.code: r for r in CITY}


def street_of(grid: str) -> str:
    return BY_CODE[BY_CODE[grid].parent].parent


def build(db, now=T0):
    """The city, the catalog and its default units in `db`; (CaseService on a hand-moved clock, the clock)."""
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.areas import replace_hierarchy
    from data.reference import ensure_catalog, ensure_units

    with db.session() as s:
        replace_hierarchy(s, CITY)
        ensure_catalog(s)
        ensure_units(s)
    clock = Clock(now)
    return CaseService(db, AreaDirectory(db), clock=clock), clock


def neighbours(code: str) -> list[str]:
    """The grids touching grid `code` (queen), by code."""
    g = BY_CODE[code].geometry
    return sorted(r.code for r in GRIDS if r.code != code and r.geometry.intersects(g))


def plant(db, grid: str, n: int, rng: random.Random, days_back=(1, 6), category="020102", at=None,
          point=None) -> list[int]:
    """`n` cases in `grid` (at `point`, else each at a random point of it), reported on random hours of the days
    before T0."""
    x0, y0, x1, y1 = BY_CODE[grid].geometry.bounds
    ids = []
    for _ in range(n):
        lon, lat = point or (rng.uniform(x0, x1), rng.uniform(y0, y1))
        when = at or (T0 - timedelta(days=rng.randint(*days_back), hours=rng.randint(0, 20)))
        ids.append(add_case_row(db, when, grid=grid, district_code=grid[:6], lon=lon, lat=lat,
                                category_code=category))
    return ids


def background(db, rng: random.Random, low=0, high=2, days_back=(1, 6)) -> None:
    """Every grid a few cases, uniform at random: the city's ordinary noise."""
    for g in GRIDS:
        plant(db, g.code, rng.randint(low, high), rng, days_back)
