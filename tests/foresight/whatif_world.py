"""A small city for the what-if tests: four weeks of handled cases in two districts and one unit with a backlog."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from data.models import Case
from foresight.whatif import WhatIfService, seasonal_naive_forecast
from tests.factories import rect_city, small_world

UTC = timezone.utc
AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in the city
GRIDS = [r.code for r in rect_city() if r.level == 5]
DISTRICT_GRIDS = {d: [g for g in GRIDS if g.startswith(d)] for d in ("320402", "320403")}
BUSY = "U-320402-city_management"  # the unit with a backlog
# category, the unit type it goes to, reports a day per district
FLOWS = (("020102", "city_management", 6), ("010102", "water_affairs", 2))


def _case(grid: str, category: str, kind: str, unit: str, reported: datetime, **kw) -> Case:
    values = dict(state="closed", category_code=category, kind=kind, source="patrol", lon=119.91, lat=31.71,
                  grid_code=grid, district_code=grid[:6], unit_code=unit, reported_at=reported, updated_at=reported,
                  accepted_at=reported + timedelta(minutes=10), dispatched_at=reported + timedelta(minutes=30),
                  time_unit="working_hours")
    values.update(kw)
    return Case(**values)


def build(db, backlog: int = 15) -> WhatIfService:
    """The city as of AT: 28 days of cases, each district's reports handled by its own units within the day (a
    tenth reworked), and `backlog` cases in hand at BUSY, dispatched over the last days (some already late)."""
    small_world(db, AT)
    rng = random.Random(7)
    rows = []
    for day in range(1, 29):
        base = AT - timedelta(days=day)
        for district, grids in DISTRICT_GRIDS.items():
            for category, unit_type, per_day in FLOWS:
                kind = "event" if category.startswith("02") else "component"
                for _ in range(per_day):
                    reported = base + timedelta(hours=rng.uniform(-1.5, 6))
                    resolved = reported + timedelta(hours=rng.uniform(1, 3))
                    rows.append(_case(rng.choice(grids), category, kind, f"U-{district}-{unit_type}", reported,
                                      resolved_at=resolved, closed_at=resolved + timedelta(hours=1),
                                      deadline_at=reported + timedelta(hours=4.5),
                                      rework_count=1 if rng.random() < 0.1 else 0))
    for i in range(backlog):
        dispatched = AT - timedelta(hours=2 + 3 * i)
        rows.append(_case(DISTRICT_GRIDS["320402"][0], "020102", "event", BUSY, dispatched - timedelta(hours=1),
                          state="dispatched", dispatched_at=dispatched, deadline_at=dispatched + timedelta(hours=20)))
    with db.session() as s:
        s.add_all(rows)
    return WhatIfService(db, seasonal_naive_forecast(db), clock=lambda: AT)
