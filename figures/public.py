"""The city's public monthly figures (the citizens' page): the last complete month's area ranking and the city's
closure rates — figures the city publishes anyway, with no personal data — kept for an hour per process."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

from dispatch.city_time import city_today
from figures.service import assessment_levels

TTL_S = 3600.0  # a finished month hardly moves: an hour-old ranking is as good as a fresh one
_cache: dict[tuple[int, str], tuple[float, dict]] = {}
_lock = threading.Lock()
# what of an area item the public is shown
_FIELDS = ("code", "name", "rank", "score", "grade", "received", "accepted", "due", "closed", "closed_on_time",
           "closure_rate", "on_time_rate")


def last_complete_month(now: datetime) -> tuple[date, date]:
    """The first and last day of the month before `now`'s, in the city's days."""
    first_of_this = city_today(now).replace(day=1)
    last = first_of_this - timedelta(days=1)
    return last.replace(day=1), last


def public_month(cases, now: datetime | None = None) -> dict:
    """{month: "YYYY-MM", city: {…}, districts: [ranked, …]} of the last complete month, through the assessment
    (figures/assessment.py: the same numbers as GET /api/v1/assessment); cached per app for TTL_S."""
    now = now or cases.clock()
    first, last = last_complete_month(now)
    key = (id(cases), first.isoformat())
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        levels = assessment_levels(cases, first, last, ["city", "district"], None, now)
        city = next(iter(levels["city"]["items"]), None)
        districts = sorted(levels["district"]["items"],
                           key=lambda i: (i["rank"] is None, i["rank"] or 0, i["code"]))
        answer = {"month": f"{first:%Y-%m}", "month_label": f"{first.year} 年 {first.month} 月",
                  "city": {k: city.get(k) for k in _FIELDS} if city else None,
                  "districts": [{k: i.get(k) for k in _FIELDS} for i in districts]}
        _cache[key] = (time.monotonic() + TTL_S, answer)
        return answer
