"""The assessment (督办考核) as the pages show it: a month's rankings under an area, its trend, a unit's own card."""
from __future__ import annotations

# Every number here is figures/assessment.py's (area_items, unit_items, person_items, score_area), over the
# same period bounds as figures.service.assessment; this module picks the items a page shows, adds the
# previous month's rank, and keeps each month's reads for a while: a month's grid figures serve every area
# level and every month of a trend, so a drill or a 12-month trend reads each month once. The current month
# is counted to today (本月至今, as the wall's month figures), a past month whole.
import threading
import time
from datetime import date, datetime, timedelta

from figures import assessment as am
from figures.definitions import period_bounds
from dispatch.city_time import city_today

CURRENT_TTL_S = 60.0    # the month running now: its figures move with every case
PAST_TTL_S = 600.0      # a month that has ended changes only by late corrections
TREND_MONTHS = 12
MAX_ENTRIES = 256
UNIT_ROWS = 20          # the units table shows this many (ranked first)
POST_ROWS = 20
PENALTY_ROWS = 30        # the cockpit's penalty list: the newest
UNIT_PENALTY_ROWS = 100  # the unit workspace's

_lock = threading.Lock()
_cache: dict[tuple, tuple[float, object]] = {}


def _cached(key: tuple, ttl: float, make):
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    value = make()
    with _lock:
        if len(_cache) >= MAX_ENTRIES:
            _cache.clear()
        _cache[key] = (now, value)
    return value


def clear_cache() -> None:
    with _lock:
        _cache.clear()


# ---- months ----------------------------------------------------------------------------------------
def today(now: datetime) -> date:
    return city_today(now)


def _shift(first: date, months: int) -> date:
    n = first.year * 12 + first.month - 1 + months
    return date(n // 12, n % 12 + 1, 1)


def month_key(first: date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


def default_month(now: datetime) -> str:
    """The last full month."""
    return month_key(_shift(today(now).replace(day=1), -1))


def month_options(now: datetime, count: int = 13) -> list[dict]:
    """The months a page offers, newest first: this month (to today) and the `count - 1` before it."""
    first = today(now).replace(day=1)
    out = []
    for i in range(count):
        m = _shift(first, -i)
        label = f"{m.year}年{m.month}月" + ("（本月至今）" if i == 0 else "")
        out.append({"value": month_key(m), "label": label})
    return out


def month_period(month: str, now: datetime) -> tuple[date, date, bool]:
    """(first day, last day counted, whether the month is still running): a past month whole, this month to
    today; a month that has not begun is a FigureError."""
    from figures.service import FigureError, month_bounds

    first, last = month_bounds(month)
    day = today(now)
    if first > day:
        raise FigureError(f"{month} 尚未开始")
    return first, min(last, day), last >= day


def _ttl(running: bool) -> float:
    return CURRENT_TTL_S if running else PAST_TTL_S


# ---- each month's reads, cached ---------------------------------------------------------------------
def _grids(cases, first: date, last: date, running: bool, now: datetime) -> dict:
    S, E = period_bounds(first, last)

    def make():
        with cases.db.session() as s:
            return am.grid_figures(s, S, E, now)
    return _cached(("grids", cases.db.url, first, last), _ttl(running), make)


def _units(cases, first: date, last: date, running: bool) -> list[dict]:
    from data import files

    S, E = period_bounds(first, last)

    def make():
        with cases.db.session() as s:
            return am.unit_items(s, S, E, files.assessment_rules())
    return _cached(("units", cases.db.url, first, last), _ttl(running), make)


def _persons(cases, first: date, last: date, running: bool) -> list[dict]:
    from data import files

    S, E = period_bounds(first, last)

    def make():
        with cases.db.session() as s:
            return am.person_items(s, S, E, am.accepted_by_grid(s, S, E), cases.areas.records(), files.assessment_rules(),
                                   cases.rules, cases.calendar)
    return _cached(("persons", cases.db.url, first, last), _ttl(running), make)


def _areas_at(cases, first: date, last: date, running: bool, level: int, now: datetime) -> list[dict]:
    """area_items of every area of `level` (ranked city-wide), from the month's cached grid figures."""
    from data import files

    grids = _grids(cases, first, last, running, now)
    return am.area_items(grids, cases.areas.records(), level, (last - first).days + 1, files.assessment_rules())


def _previous(first: date) -> tuple[date, date]:
    prev = _shift(first, -1)
    return prev, first - timedelta(days=1)


def _with_change(items: list[dict], before: list[dict]) -> list[dict]:
    """Each item with previous_score, previous_rank and rank_change (as figures.service.monthly_ranking)."""
    old = {i["code"]: i for i in before}
    out = []
    for item in items:
        p = old.get(item["code"], {})
        change = p["rank"] - item["rank"] if p.get("rank") is not None and item["rank"] is not None else None
        out.append({**item, "previous_score": p.get("score"), "previous_rank": p.get("rank"), "rank_change": change})
    return out


def _ranked(items: list[dict]) -> int:
    return sum(1 for i in items if i["rank"] is not None)


def _ends(items: list[dict], n: int) -> list[dict]:
    """At most n items of a ranking (in rank order, unranked last): all when they fit, else the first and
    the last n/2 ranked ones (the best and the worst are what a leader reads)."""
    if len(items) <= n:
        return items
    ranked = [i for i in items if i["rank"] is not None]
    if len(ranked) <= n:
        return ranked + [i for i in items if i["rank"] is None][:n - len(ranked)]
    return ranked[:n // 2] + ranked[-(n - n // 2):]


# ---- the cockpit's 考核 view --------------------------------------------------------------------------
def _under(cases, code: str | None, area) -> bool:
    """Area `code` is `area` or lies below it."""
    return code is not None and any(a.code == area.code for a in cases.areas.chain(code))


def board(cases, month: str, area_code: str | None, principal=None, now: datetime | None = None) -> dict | None:
    """The month's area and unit rankings under an area (its children: the districts of the city, the streets
    of a district …; a grid's siblings), the area's own item, each item with its change of rank from the
    previous month. Ranks are city-wide, as figures.service.assessment's."""
    from figures.cockpit import resolve_area
    from figures.service import _within

    now = now or cases.clock()
    area = resolve_area(cases.areas, area_code)
    if area is None:
        return None
    first, last, running = month_period(month, now)
    p_first, p_last = _previous(first)
    level = area.level + 1 if area.level < 5 else 5
    parent = area if area.level < 5 else cases.areas.get(area.parent)
    children = _with_change(_areas_at(cases, first, last, running, level, now),
                            _areas_at(cases, p_first, p_last, False, level, now))
    of = _ranked(children)
    children = [i for i in children if i["parent"] == parent.code and _within(cases, i["code"], principal)]
    own = [i for i in _with_change(_areas_at(cases, first, last, running, area.level, now),
                                   _areas_at(cases, p_first, p_last, False, area.level, now))]
    own_of = _ranked(own)
    own = next((i for i in own if i["code"] == area.code), None)
    units = _with_change(_units(cases, first, last, running), _units(cases, p_first, p_last, False))
    units_of = _ranked(units)
    units = [u for u in units if _under(cases, u["area"], area) and _within(cases, u["area"], principal)]
    return {"month": month, "period": {"start": first.isoformat(), "end": last.isoformat(), "running": running},
            "area": {"code": area.code, "name": area.name, "level": area.level},
            "own": own, "own_of": own_of, "level": level, "children": children, "children_of": of,
            "units": _ends(units, UNIT_ROWS), "units_total": len(units), "units_of": units_of}


def posts(cases, month: str, area_code: str | None, principal=None, now: datetime | None = None) -> dict | None:
    """The month's grid members and duty officers of an area (岗位评价), each ranked among its own post."""
    from figures.cockpit import resolve_area
    from figures.service import _within

    now = now or cases.clock()
    area = resolve_area(cases.areas, area_code)
    if area is None:
        return None
    first, last, running = month_period(month, now)
    p_first, p_last = _previous(first)
    items = _with_change(_persons(cases, first, last, running), _persons(cases, p_first, p_last, False))
    mine = [i for i in items if (area.level == 1 or _under(cases, i["area"], area)) and _within(cases, i["area"], principal)]
    by_role = {k: [i for i in mine if i["role"] == k] for k in am.POST_ROLES}
    return {"month": month, **{k: _ends(v, POST_ROWS) for k, v in by_role.items()},
            "total": {k: len(v) for k, v in by_role.items()},
            "of": {k: _ranked([i for i in items if i["role"] == k]) for k in am.POST_ROLES}}


def trend(cases, area_code: str | None, month: str, principal=None, now: datetime | None = None,
          months: int = TREND_MONTHS) -> list[dict]:
    """The area's score, grade and rank in each of the `months` months up to `month` (oldest first)."""
    from figures.cockpit import resolve_area
    from figures.service import _within

    now = now or cases.clock()
    area = resolve_area(cases.areas, area_code)
    if area is None or not _within(cases, area.code, principal):
        return []
    first, _last, _running = month_period(month, now)
    out = []
    for i in range(months - 1, -1, -1):
        m_first = _shift(first, -i)
        m_first_, m_last, running = month_period(month_key(m_first), now)
        item = next((x for x in _areas_at(cases, m_first_, m_last, running, area.level, now) if x["code"] == area.code),
                    None)
        out.append({"month": month_key(m_first), "score": item["score"] if item else None,
                    "grade": item["grade"] if item else None, "rank": item["rank"] if item else None})
    return out


def penalties(cases, month: str, area_code: str | None = None, unit: str | None = None, principal=None,
              now: datetime | None = None, limit: int = PENALTY_ROWS) -> list[dict]:
    """The month's penalty points (扣分) of an area's cases or of a unit, each with its case, unit and grid names."""
    from figures.service import penalty_cases

    now = now or cases.clock()
    first, last, _running = month_period(month, now)
    rows = penalty_cases(cases, first, last, unit=unit, area=None if unit else area_code, principal=principal,
                         limit=limit)
    for r in rows:
        g = cases.areas.get(r["grid_code"]) if r["grid_code"] else None
        r["unit_name"] = cases.unit_name(r["unit_code"]) if r["unit_code"] else None
        r["grid_name"] = g.name if g else r["grid_code"]
    return rows


# ---- the unit workspace's card ------------------------------------------------------------------------
def unit_card(cases, principal, now: datetime | None = None, month: str | None = None) -> dict | None:
    """A unit handler's own unit this month (to today): its 部门评价 item (rank of the ranked units city-wide)
    and its penalty points with their cases; None when the principal has no unit."""
    now = now or cases.clock()
    unit = getattr(principal, "unit_code", None)
    if not unit:
        return None
    month = month or month_key(today(now).replace(day=1))
    first, last, running = month_period(month, now)
    items = _units(cases, first, last, running)
    item = next((i for i in items if i["code"] == unit), None)
    return {"month": month, "period": {"start": first.isoformat(), "end": last.isoformat(), "running": running},
            "unit": unit, "name": cases.unit_name(unit), "item": item, "of": _ranked(items),
            "penalties": penalties(cases, month, unit=unit, principal=principal, now=now, limit=UNIT_PENALTY_ROWS)}
