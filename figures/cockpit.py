"""Leader cockpit aggregates for one area and one theme: SQL that filters by time range, state or area first."""
from __future__ import annotations

import threading
from collections import Counter, namedtuple
from functools import partial
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import (DateTime, String, and_, bindparam, case, func, literal_column, or_, select, true,
                        type_coerce, union_all)

from figures.plan_indicators import THEME_LABELS, list_indicators
from data.models import Case, CaseEvent, Unit
from figures.period import ACCEPTED_OPEN as ACCEPTED_OPEN_STATES  # noqa: F401 - accepted cases' open states (tests)
from figures.period import NOT_ACCEPTED as NOT_ACCEPTED_STATES
from figures import period
from figures.period import SET_ASIDE_NOW, accepted, is_overdue, overdue_now, unindexed
from figures.definitions import compute_grouped, period_bounds
from dispatch.lifecycle import OPEN_STATES, STATE_LABELS
from dispatch.routing import SEVERITY_NAMES
from geo.model import CITY, DISTRICT, GRID, LEVEL_NAMES_ZH
from dispatch.city_time import CITY_TZ

UTC = timezone.utc
PERIOD_DAYS = 30
# From this level down (streets, communities, grids) an area's panels are computed from its own rows,
# read once (a street holds about a thousandth of the city's cases, a month of them a few hundred); the
# city and the districts keep their aggregate SQL, whose reads would be too many rows to ship.
ROWS_FROM_LEVEL = DISTRICT + 1


@dataclass(frozen=True)
class Theme:
    """A cockpit panel: which categories its case figures count (empty filters: every category)."""

    key: str
    label: str
    kinds: tuple[str, ...] = ()
    major_classes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not (self.kinds or self.major_classes or self.names)

    def category_codes(self, catalog) -> list[str] | None:
        """The catalog codes of the theme, or None for every category."""
        if self.everything:
            return None
        return sorted(c.code for c in catalog.values()
                      if c.kind in self.kinds or c.major_class in self.major_classes or c.name in self.names)


THEMES: dict[str, Theme] = {t.key: t for t in (
    Theme("overview", "综合态势"),
    Theme("city", THEME_LABELS["city"], kinds=("component", "event")),
    Theme("emergency", THEME_LABELS["emergency"], kinds=("emergency",), major_classes=("安全隐患",),
          names=("重大危险源设施损坏", "防汛墙破损")),
    Theme("environment", THEME_LABELS["environment"],
          major_classes=("生态环境", "市容环境", "园林绿化", "公共卫生与环境"),
          names=("工地扬尘", "夜间施工噪声", "渣土撒漏", "渣土车未密闭")),
    Theme("traffic", THEME_LABELS["traffic"], major_classes=("道路交通", "突发事件"),
          names=("道路交通事故", "机动车乱停放", "非机动车乱停放", "共享单车乱停放", "黑车揽客", "施工占道",
                 "道路大面积塌陷")),
    Theme("public", THEME_LABELS["public"], major_classes=("民生服务", "矛盾纠纷", "人口房屋", "公用设施"),
          names=("电梯故障停运", "电梯困人", "大面积停电")),
    Theme("economy", THEME_LABELS["economy"], major_classes=("市场监管",),
          names=("占道经营", "无照经营游商", "店外经营", "劳资纠纷", "消费纠纷")),
)}
DEFAULT_THEME = "overview"


def theme_or_default(key: str | None) -> Theme:
    return THEMES.get(key or DEFAULT_THEME, THEMES[DEFAULT_THEME])


# ---- scope -------------------------------------------------------------------------------------
def _next_code(prefix: str) -> str | None:
    """The smallest digit string above every code that starts with `prefix` (None if none exists)."""
    digits = prefix.rstrip("9")
    if not digits or not digits.isdigit():
        return None
    return digits[:-1] + str(int(digits[-1]) + 1)


def area_clause(area, indexed: bool = True, grids: list[str] | None = None):
    """Cases in an area, as CaseService._area_clause rules it (district_code for a district, grid
    code prefix below), written as a range so that a B-tree index serves it on every database, or as the
    area's `grids` (those with cases, Scope.prepare) one index range each. indexed=False writes the same
    test so that no index can serve it (figures.period.unindexed): the planner then reads through the
    query's time-range or state index instead of the area's whole history."""
    if area.level == CITY:
        return None
    district = Case.district_code if indexed else unindexed(Case.district_code)
    grid = Case.grid_code if indexed else unindexed(Case.grid_code)
    if area.level == DISTRICT:
        return district == area.code
    if area.level == GRID:
        return grid == area.code
    if indexed and grids is not None:
        return grid.in_(grids or ["-"])
    upper = _next_code(area.code)
    if upper is None or not area.code.isdigit():
        return grid.like(area.code + "%")
    return and_(grid >= area.code, grid < upper)


@dataclass
class Scope:
    """The selection: an area of the hierarchy, a theme, the period and the instant of the figures.

    Two spellings of the same area-and-theme filter: `where()` for queries over a reported_at
    range, which the area's index serves ((district_code, reported_at) for a district, (grid_code,
    reported_at) below it: one range per grid of the area, once `prepare`d), and `narrow()` for
    queries over another index (a closing range, the backlog, the open states), which read through
    that index and only filter by area and theme. `districts`: the districts whose ranges of the
    district-led indexes hold the area's cases (every one for the city; below it, the area's own: a
    case's district_code is its grid's district, as every writer sets it)."""

    area: object  # geo.model.AreaRecord
    theme: Theme
    now: datetime
    start: date
    end: date
    lo: datetime  # period start, UTC (start 00:00 Shanghai)
    hi: datetime  # period end, UTC (end + 1 day 00:00 Shanghai)
    categories: list[str] | None = None
    clauses: list = field(default_factory=list)  # area + theme, indexable
    filters: list = field(default_factory=list)  # area + theme, never an index
    district: str | None = None  # the area's district (None for the city, or when not known)
    districts: list[str] | None = None
    grids: list[str] | None = None

    def prepare(self, session) -> "Scope":
        """Reads once the keys whose index ranges hold the area's cases: the districts, and below the
        district on SQLite the grids that have cases (a loose index scan of (grid_code, reported_at)):
        SQLite reads a range of grid codes through that index from the area's first case on, while
        PostgreSQL checks the reporting time in the index and plans the grid range itself."""
        if self.districts is None:
            if self.district is not None:
                self.districts = [self.district]
            else:
                self.districts = period.key_values(session, Case.district_code)
        if (self.grids is None and self.area.level in (DISTRICT + 1, GRID - 1) and self.area.code.isdigit()
                and session.get_bind().dialect.name == "sqlite"):
            self.grids = period.key_values(session, Case.grid_code, self.area.code, _next_code(self.area.code))
            self.clauses = scope_clauses(self.area, self.categories, grids=self.grids)
        return self

    def where(self, *more) -> list:
        return [*self.clauses, *more]

    def narrow(self, *more) -> list:
        return [*self.filters, *more]

    def in_districts(self, session):
        """The district-led indexes' ranges of the area (ix_cases_closed_district and the like)."""
        return Case.district_code.in_(self.prepare(session).districts or ["-"])


def make_scope(area, theme: Theme, catalog, now: datetime, days: int = PERIOD_DAYS, district: str | None = None) -> Scope:
    """The selection's scope; `district`: the area's district code (its chain's), when known."""
    end = now.astimezone(CITY_TZ).date()
    start = end - timedelta(days=days - 1)
    lo, hi = period_bounds(start, end)
    cats = theme.category_codes(catalog)
    if area.level == DISTRICT:
        district = area.code
    return Scope(area=area, theme=theme, now=now, start=start, end=end, lo=lo, hi=hi, categories=cats,
                 clauses=scope_clauses(area, cats), filters=scope_clauses(area, cats, indexed=False),
                 district=district if area.level >= DISTRICT else None)


def _district_of(directory, area) -> str | None:
    return next((a.code for a in directory.chain(area.code) if a.level == DISTRICT), None)


def scope_clauses(area, categories: list[str] | None, indexed: bool = True, grids: list[str] | None = None) -> list:
    """Area, then the theme's categories (an empty theme matches nothing)."""
    clauses = []
    clause = area_clause(area, indexed, grids)
    if clause is not None:
        clauses.append(clause)
    if categories is not None:
        column = Case.category_code if indexed else unindexed(Case.category_code)
        clauses.append(column.in_(categories or ["-"]))
    return clauses


def _accepted():
    return accepted()


def _overdue_open(now: datetime):
    """The assessment's 超期未结 at `now`: accepted, not closed, deadline passed (figures.period.overdue_now,
    read through the partial index of the accepted cases not closed)."""
    return overdue_now(now)


def _supervised_open():
    """Open and under supervision, read through the partial index of the supervised cases (its predicate
    spelt as it is: "supervised = 1", not "IS 1"), the state checked on its few rows."""
    return and_(Case.supervised == True, unindexed(Case.state).in_(OPEN_STATES))  # noqa: E712


def _local_day(session, column):
    """The Shanghai calendar day of a UTC timestamp column, as 'YYYY-MM-DD' (China keeps no DST)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d", column, "+8 hours")
    return func.to_char(column + literal_column("interval '8 hours'"), "YYYY-MM-DD")


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


# ---- the figures -------------------------------------------------------------------------------
def daily_counts(session, scope: Scope) -> list[dict]:
    """Received (受理) and accepted cases closed (结案) per Shanghai day of the period, every day present.
    For the city or a district, a count of each day's index range (30 counts of an index, no sort);
    below the district, the area's few cases are read and grouped by their day."""
    days = {(scope.start + timedelta(days=i)).isoformat(): {"received": 0, "closed": 0}
            for i in range((scope.end - scope.start).days + 1)}
    scope.prepare(session)
    closed = (scope.in_districts(session), Case.closed_at.is_not(None), accepted())  # ix_cases_closed_district
    if scope.area.level <= DISTRICT:
        # the days as bound parameters (a VALUES list would make each statement new to SQLAlchemy's cache)
        when = Case.reported_at.type
        cal = union_all(*(select(bindparam(f"d{i}", type_=String).label("day"), bindparam(f"lo{i}", type_=when).label("lo"),
                                 bindparam(f"hi{i}", type_=when).label("hi")) for i in range(len(days)))).cte("days")
        params = {}
        for i, day in enumerate(days):
            params[f"d{i}"] = day
            params[f"lo{i}"], params[f"hi{i}"] = period_bounds(date.fromisoformat(day), date.fromisoformat(day))
        for name, col, where in (("received", Case.reported_at, scope.where()), ("closed", Case.closed_at,
                                                                                 scope.narrow(*closed))):
            n = select(func.count()).where(col >= cal.c.lo, col < cal.c.hi, *where).scalar_subquery()
            for day, count in session.execute(select(cal.c.day, n), params):
                days[day][name] = count
    else:
        for name, col, where in (("received", Case.reported_at, scope.where()), ("closed", Case.closed_at,
                                                                                 scope.narrow(*closed))):
            day_of = _local_day(session, col)
            for day, n in session.execute(select(day_of, func.count()).where(
                    col >= scope.lo, col < scope.hi, *where).group_by(day_of)):
                if day in days:
                    days[day][name] = n
    day_of = _local_day(session, Case.reported_at)
    for day, n in session.execute(select(day_of, func.count()).where(*_voided_since(scope, scope.lo)).group_by(day_of)):
        if day in days:
            days[day]["received"] -= n
    return [{"day": d, **v} for d, v in days.items()]


def _voided_since(scope: Scope, lo: datetime) -> list:
    """The area's reports of [lo, hi) voided by hi, which count only in `voided` (figures/definitions.py), not as
    received: a void comes after the report, so they are the few voided in [lo, hi) (ix_cases_voided)."""
    return [Case.voided_at >= lo, Case.voided_at < scope.hi, unindexed(Case.reported_at) >= lo, *scope.narrow()]


def _voided_reports(session, scope: Scope, lo: datetime) -> int:
    return session.scalar(select(func.count()).select_from(Case).where(*_voided_since(scope, lo))) or 0


def category_pareto(session, scope: Scope, catalog, top: int = 12) -> dict:
    """Cases received in the period per category, largest first, with the cumulative share;
    the categories after `top` are summed as "其他"."""
    scope.prepare(session)
    received = (Case.reported_at >= scope.lo, Case.reported_at < scope.hi)
    if scope.area.level == CITY:  # one range of (category_code, reported_at) per category, already grouped
        codes = scope.categories if scope.categories is not None else period.key_values(session, Case.category_code)
        q = select(Case.category_code, func.count()).where(Case.category_code.in_(codes or ["-"]), *received)
    else:
        q = select(unindexed(Case.category_code), func.count()).where(*scope.where(*received))
    counts = Counter(dict(session.execute(q.group_by(*q.selected_columns[:1])).all()))
    code = unindexed(Case.category_code)
    counts.subtract(dict(session.execute(select(code, func.count()).where(*_voided_since(scope, scope.lo)).group_by(code)).all()))
    return _pareto([(k, n) for k, n in counts.items() if n > 0], catalog, top)


def _pareto(counts, catalog, top: int = 12) -> dict:
    """The Pareto of [(category code, received)]: largest first, the categories after `top` summed."""
    rows = sorted(counts, key=lambda r: (-r[1], r[0]))
    total = sum(n for _, n in rows)
    items, running = [], 0
    head, tail = rows[:top], rows[top:]
    for code, n in head:
        running += n
        cat = catalog.get(code)
        items.append({"code": code, "name": cat.name if cat else code, "count": n, "cum_share": running / total})
    if tail:
        running += sum(n for _, n in tail)
        items.append({"code": None, "name": f"其他（{len(tail)} 类）", "count": sum(n for _, n in tail),
                      "cum_share": running / total})
    return {"total": total, "items": items}


def unit_performance(session, scope: Scope, names=None) -> list[dict]:
    """Due, closed and closed-on-time cases of the period per lead unit (GB/T 30428.4 style), with the
    closure and on-time rates and the overdue open cases: figures.period.kpi_figures by unit over the
    area and theme, its reads of the closings, the late closings and the backlog (the district-led
    covering index and the backlog's hold the grid and the unit: none reads the table). Units with
    something due or overdue. `names`: {code: name} of the given codes (default: read from units)."""
    figures = period.kpi_figures(session, scope.lo, scope.hi, scope.now, "unit", scope.narrow(),
                                 codes=scope.prepare(session).districts, parts=("closed", "late", "open"))
    groups = {k: v for k, v in figures["groups"].items() if v.due or v.overdue_open}
    names = (names or partial(_unit_names, session))([c for c in groups if c is not None])
    return [{"unit_code": code, "name": names.get(code, code) if code else "（未派遣）", "due": k.due,
             "closed": k.closed, "closed_on_time": k.closed_on_time, "overdue_open": k.overdue_open,
             "closure_rate": k.closure_rate, "on_time_rate": k.on_time_rate} for code, k in groups.items()]


def _unit_names(session, codes: list[str]) -> dict:
    """{code: name} of the units; the whole table when asked for many (a city's thousands of units as
    bound parameters cost more than reading it)."""
    if not codes:
        return {}
    q = select(Unit.code, Unit.name)
    return dict(session.execute(q.where(Unit.code.in_(codes)) if len(codes) <= 200 else q).all())


def worst_units(units: list[dict], top: int = 8, min_due: int = 3) -> list[dict]:
    """Units with cases due, worst on-time rate first (then closure rate, then most overdue);
    units with fewer than `min_due` due cases only fill up the list when too few have more."""
    ranked = [u for u in units if u["due"] > 0 and u["unit_code"] is not None]
    ranked.sort(key=lambda u: (u["due"] < min_due, u["on_time_rate"], u["closure_rate"], -u["overdue_open"],
                               -u["due"], u["name"]))
    return ranked[:top]


def totals(units: list[dict]) -> dict:
    due = sum(u["due"] for u in units)
    closed = sum(u["closed"] for u in units)
    on_time = sum(u["closed_on_time"] for u in units)
    return {"due": due, "closed": closed, "closed_on_time": on_time, "closure_rate": _rate(closed, due),
            "on_time_rate": _rate(on_time, due), "overdue_open": sum(u["overdue_open"] for u in units)}


def emergency_severity(session, scope: Scope) -> list[dict]:
    """Emergencies of the area reported in the period per severity (Ⅰ–Ⅳ): still open and closed.
    Not narrowed by the theme: the leader sees every emergency on every panel."""
    open_case = case((Case.state.in_(OPEN_STATES), 1), else_=0)
    area = scope_clauses(scope.area, None, grids=scope.prepare(session).grids)
    rows = session.execute(select(Case.severity, func.count(), func.sum(open_case)).where(
        *area, Case.kind == "emergency",
        Case.reported_at >= scope.lo, Case.reported_at < scope.hi, Case.state != "merged")
        .group_by(Case.severity)).all()
    by = {sev: (n, int(o or 0)) for sev, n, o in rows}
    return [{"severity": s, "label": SEVERITY_NAMES[s], "total": by.get(s, (0, 0))[0], "open": by.get(s, (0, 0))[1],
             "closed": by.get(s, (0, 0))[0] - by.get(s, (0, 0))[1]} for s in (1, 2, 3, 4)]


def headline(session, scope: Scope, units: list[dict], daily: list[dict] | None = None) -> dict:
    """The cards: received in the period, the assessment rates, overdue, supervised, open emergencies.
    `daily`: daily_counts of the same scope, whose days sum to the period's and end with today's."""
    scope.prepare(session)
    if daily is not None:
        received, today = sum(d["received"] for d in daily), daily[-1]["received"] if daily else 0
    else:
        received = session.scalar(select(func.count()).select_from(Case).where(
            *scope.where(Case.reported_at >= scope.lo, Case.reported_at < scope.hi))) or 0
        today_lo = datetime.combine(scope.end, datetime.min.time(), CITY_TZ).astimezone(UTC)
        today = session.scalar(select(func.count()).select_from(Case).where(
            *scope.where(Case.reported_at >= today_lo, Case.reported_at < scope.hi))) or 0
        received -= _voided_reports(session, scope, scope.lo)
        today -= _voided_reports(session, scope, today_lo)
    supervised = session.scalar(select(func.count()).select_from(Case).where(*scope.narrow(_supervised_open()))) or 0
    emergencies = session.scalar(select(func.count()).select_from(Case).where(  # ix_cases_state, which holds kind
        *scope_clauses(scope.area, None, indexed=False), Case.state.in_(OPEN_STATES),
        unindexed(Case.kind) == "emergency")) or 0
    return {"received": received, "received_today": today, **totals(units), "supervised_open": supervised,
            "emergencies_open": emergencies}


def child_ranking(session, scope: Scope, directory) -> dict:
    """The next level down (a grid's siblings for a grid): received in the period, open and
    overdue now, per child area, busiest first. Grouped by district or by grid, then rolled up."""
    area = scope.area
    parent = frame_of(directory, area)
    children = _children(directory, parent)
    if not children:
        return {"parent": parent.code, "level": parent.level + 1, "items": []}
    base = scope if parent is area else replace(
        scope, area=parent, clauses=scope_clauses(parent, scope.categories),
        filters=scope_clauses(parent, scope.categories, indexed=False), grids=None)
    base.prepare(session)
    key = Case.district_code if parent.level == CITY else Case.grid_code
    figures: dict[str, dict] = {c.code: {"received": 0, "open": 0, "overdue": 0} for c in children}
    owner = _owner_of(children, directory)

    def count(slot: str, q) -> None:
        for k, n in session.execute(q.group_by(unindexed(key))):
            c = owner(k)
            if c in figures:
                figures[c][slot] += n

    received = (Case.reported_at >= scope.lo, Case.reported_at < scope.hi)
    if parent.level == CITY:  # one range of (district_code, reported_at) per district, already grouped
        for k, n in session.execute(select(key, func.count()).where(
                base.in_districts(session), *base.narrow(*received)).group_by(key)):
            if k in figures:
                figures[k]["received"] += n
    else:
        count("received", select(unindexed(key), func.count()).where(*base.where(*received)))
    # the open states (ix_cases_state holds the area's columns), and the backlog's overdue cases
    # (ix_cases_open_deadline holds them too)
    count("open", select(unindexed(key), func.count()).where(*base.narrow(Case.state.in_(OPEN_STATES))))
    count("overdue", select(unindexed(key), func.count()).where(*base.narrow(_overdue_open(scope.now))))
    items = [{"code": c.code, "name": c.name, "selected": c.code == area.code, **figures[c.code]} for c in children]
    items.sort(key=lambda x: (-x["received"], -x["open"], x["code"]))
    return {"parent": parent.code, "level": parent.level + 1, "items": items}


def _children(directory, parent) -> list:
    """The parent's children, by code."""
    return directory.children(parent.code)


def _owner_of(children, directory):
    """Maps a district code or grid code to the child area it lies in."""
    codes = {c.code for c in children}
    lengths = {len(c) for c in codes}
    if len(lengths) == 1:
        n = lengths.pop()
        return lambda k: k[:n] if k else None
    level = children[0].level

    def owner(k):
        for a in directory.chain(k) if k else []:
            if a.level == level:
                return a.code
        return None

    return owner


def reminders(session, scope: Scope, directory, catalog, limit: int = 30, names=None) -> list[dict]:
    """办公提醒: open cases that are overdue or supervised, supervised-and-overdue first, then the
    longest overdue."""
    # The first limit * 3 by (supervised first, then deadline): the supervised open ones (their partial
    # index) and the overdue ones by deadline (the backlog's index, in its order, the area checked in it),
    # then only those rows are read.
    overdue_ = and_(unindexed(Case.closed_at).is_(None), unindexed(Case.deadline_at) < scope.now, accepted(),
                    unindexed(Case.state).not_in(SET_ASIDE_NOW))
    supervised = session.scalars(select(Case.id).where(*scope.narrow(  # open, or overdue (not open by state)
        Case.supervised == True, or_(unindexed(Case.state).in_(OPEN_STATES), overdue_)))  # noqa: E712
        .order_by(unindexed(Case.deadline_at).asc(), Case.id).limit(limit * 3)).all()  # sorted after reading
    overdue = session.scalars(select(Case.id).where(*scope.narrow(_overdue_open(scope.now)))
                              .order_by(Case.deadline_at.asc(), Case.id).limit(limit * 3)).all()  # ties as RowPanels
    rows = session.execute(select(
        Case.id, Case.category_code, Case.grid_code, Case.unit_code, Case.state, Case.deadline_at, Case.supervised,
        Case.escalation_count, Case.severity, Case.reported_at, Case.accepted_at, Case.rejected_at, Case.closed_at,
    ).where(Case.id.in_(set(supervised) | set(overdue)))
        .order_by(Case.supervised.desc(), Case.deadline_at.asc(), Case.id).limit(limit * 3)).all()
    return _reminder_items(rows, scope, directory, catalog, limit, names or partial(_unit_names, session))


def _reminder_items(rows, scope: Scope, directory, catalog, limit: int, names) -> list[dict]:
    """The reminders shaped from their candidate rows (supervised first, then by deadline), the first `limit`."""
    names = names(sorted({r.unit_code for r in rows if r.unit_code}))
    places: dict = {}
    out = []
    for r in rows:
        overdue = is_overdue(r.state, r.accepted_at, r.rejected_at, r.closed_at, r.deadline_at, scope.now)
        cat = catalog.get(r.category_code)
        place = places.get(r.grid_code)
        if place is None:
            chain = directory.chain(r.grid_code)
            place = places[r.grid_code] = " · ".join(a.name for a in reversed(chain) if a.level in (2, 3, 4))
        hours = (scope.now - r.deadline_at).total_seconds() / 3600 if overdue else None
        out.append({"id": r.id, "category": cat.name if cat else r.category_code, "place": place,
                    "unit": names.get(r.unit_code, r.unit_code) if r.unit_code else "（未派遣）",
                    "state": r.state, "state_label": STATE_LABELS.get(r.state, r.state),
                    "deadline": r.deadline_at.astimezone(CITY_TZ).strftime("%m-%d %H:%M") if r.deadline_at else "—",
                    "overdue": overdue, "overdue_hours": hours, "supervised": bool(r.supervised),
                    "escalations": r.escalation_count, "severity": r.severity})
    out.sort(key=lambda x: (not (x["supervised"] and x["overdue"]), not x["overdue"], -(x["overdue_hours"] or 0)))
    return out[:limit]


# ---- a small area: its rows read once, every panel computed from them ----------------------------------
# What any panel counts of an area (the cards, the days, the Pareto, the units, the emergencies, the
# children, the reminders) lies in four sets of its cases: reported in the period; accepted and closed
# since its start (closed in it, or late since it: the units' due, closed and on time, the days' closings);
# in an open state (open, supervised, emergencies); accepted and not closed (the backlog: overdue). One
# statement reads them, each set through the index that holds it (on SQLite the sets' ids, then each row
# once; on PostgreSQL the rows, the last three sets without what the first read, a case seen twice kept
# once), and the panels are counted in Python: for a street some 800 rows at 1 M cases, against the ~18
# statements (and their fixed costs) of the aggregate path.
AreaRow = namedtuple("AreaRow", "id state category_code kind district_code grid_code unit_code severity supervised "
                                "escalation_count rework_count extension_count reported_at accepted_at rejected_at "
                                "closed_at deadline_at voided_at suspended_at resumed_at merged")
# The times are read as the plain DateTime of their column (naive UTC) and made aware here, in one pass:
# the column type's own conversion, a TypeDecorator called per value, cost more than the read itself.
_ROW_COLUMNS = (Case.id, Case.state, Case.category_code, Case.kind, Case.district_code, Case.grid_code,
                Case.unit_code, Case.severity, Case.supervised, Case.escalation_count, Case.rework_count,
                Case.extension_count,
                *(type_coerce(c, DateTime).label(c.key) for c in (
                    Case.reported_at, Case.accepted_at, Case.rejected_at, Case.closed_at, Case.deadline_at,
                    Case.voided_at, Case.suspended_at, Case.resumed_at)))
_TIMES = 12  # the first time column of _ROW_COLUMNS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
_OPEN = frozenset(OPEN_STATES)
_NOT_ACCEPTED = frozenset(NOT_ACCEPTED_STATES)


def frame_of(directory, area):
    """The area whose children the ranking lists: the area itself, or a grid's community (its siblings)."""
    return directory.get(area.parent) if area.level == GRID and area.parent else area


def area_rows(session, scope: Scope, frame) -> list[AreaRow]:
    """Every case of `frame` (the scope's area, or the community of a grid) that a panel of the scope can
    count, whatever the theme (the emergencies are not narrowed by it): one statement over four sets. For a
    street or a community (a range of grid codes) the statement is built once and reused."""
    upper = _next_code(frame.code)
    if frame.level in (DISTRICT + 1, GRID - 1) and frame.code.isdigit() and upper is not None:
        dialect = session.get_bind().dialect.name
        statement = _AREA_ROWS.get(dialect)
        if statement is None:
            statement = _AREA_ROWS[dialect] = _grid_range_rows(dialect)
        return _area_rows(session, statement, {"lo": scope.lo, "hi": scope.hi, "glo": frame.code, "ghi": upper})
    base = replace(scope, area=frame, categories=None, clauses=scope_clauses(frame, None),
                   filters=scope_clauses(frame, None, indexed=False), grids=None).prepare(session)
    r = Case.reported_at
    in_period = (r >= scope.lo, r < scope.hi)
    closed = (base.in_districts(session), Case.closed_at >= scope.lo, accepted())
    open_ = (Case.state.in_(OPEN_STATES), *base.narrow())
    backlog = base.where(Case.closed_at.is_(None), accepted())
    if session.get_bind().dialect.name == "sqlite":
        return _area_rows(session, _pick().where(Case.id.in_(union_all(
            _ids().where(*base.where(*in_period)), _ids().where(*closed, *base.narrow()), _ids().where(*open_),
            _ids().where(*backlog)))))
    outside = or_(r < scope.lo, r >= scope.hi)
    return _area_rows(session, union_all(_pick().where(*base.where(*in_period)),
                                         _pick().where(*closed, *base.narrow(outside)),
                                         _pick().where(Case.id.in_(_ids().where(*open_, outside))),
                                         _pick().where(*backlog, outside)))


_AREA_ROWS: dict = {}  # dialect: the statement of a range of grid codes


def _pick():
    return select(*_ROW_COLUMNS, (Case.state == literal_column("'merged'")).label("merged"))


def _ids():
    return select(Case.id)


def _grid_range_rows(dialect: str):
    """area_rows' statement for the grid codes in [:glo, :ghi) (a street's, a community's), the period [:lo,
    :hi). Its four sets, each through the index that holds it:
      reported in the period   one (grid, reported_at) range per grid with cases (a loose scan of the grid
                               codes in the statement itself)
      accepted, closed since   one range per grid of ix_cases_closed_grid (0010: before it, the district's
                               closings since the start, ~14x the street's, were read to keep the street's)
      in an open state         ix_cases_state's ranges, which hold the grid
      accepted, not closed     the area's range of ix_cases_open_grid (the backlog, whatever the state says)"""
    r, grid = Case.reported_at, Case.grid_code
    lo, hi = bindparam("lo", type_=r.type), bindparam("hi", type_=r.type)
    glo, ghi = bindparam("glo", type_=String), bindparam("ghi", type_=String)
    k = select(func.min(grid).label("v")).where(grid >= glo, grid < ghi).cte("key_values", recursive=True)
    k = k.union_all(select(select(func.min(grid)).where(grid > k.c.v, grid < ghi).scalar_subquery())
                    .where(k.c.v.is_not(None)))
    in_area = (unindexed(grid) >= glo, unindexed(grid) < ghi)
    in_period = (r >= lo, r < hi)
    grids = select(k.c.v).where(k.c.v.is_not(None))
    closed = (grid.in_(grids), Case.closed_at >= lo, accepted())  # ix_cases_closed_grid, one range per grid
    open_ = (Case.state.in_(OPEN_STATES), *in_area)
    if dialect == "sqlite":
        # every index above holds the grid: the four sets' ids come from the indexes (a case in several sets
        # once; the closings' rows are read for the accepted-case terms, which SQLite checks again though the
        # partial index implies them, ~0.3 ms for a street's ~670), then each row is read once
        return _pick().where(Case.id.in_(union_all(
            _ids().where(grid.in_(grids), *in_period), _ids().where(*closed), _ids().where(*open_),
            _ids().where(grid.in_(grids), Case.closed_at.is_(None), accepted()))))
    # PostgreSQL checks INCLUDE columns only in the table, but in an index-only scan: the period's reports one
    # grid range each, joined laterally (for the grid range it reads the city's month of ix_cases_reported,
    # and each row); of the other sets only the cases not reported in the period (each set its own arm: one
    # subquery of them would be handed to parallel workers, slower to start than these reads); the closings'
    # and the open cases' ids index-only (ix_cases_closed_grid includes reported_at and id: of a street's
    # ~670 closings since the start, the ~26 reported before it), then those rows by id
    one = _pick().where(grid == k.c.v, *in_period).offset(0).lateral("one")
    outside = or_(r < lo, r >= hi)
    return union_all(select(*one.c).select_from(k).join(one, true()),
                     _pick().where(Case.id.in_(_ids().where(*closed, outside))),
                     _pick().where(Case.id.in_(_ids().where(*open_, outside))),
                     _pick().where(grid >= glo, grid < ghi, Case.closed_at.is_(None), accepted(), outside))


def _area_rows(session, statement, params=None) -> list[AreaRow]:
    """The statement's rows, each case once, its times made aware (UTC)."""
    out: dict = {}
    naive, aware = _EPOCH.replace(tzinfo=None), _EPOCH  # aware + (naive - naive): 30x faster than replace(tzinfo=)
    for row in session.connection().execute(statement, params or {}):
        if row[0] not in out:
            r, *rest = row[_TIMES:-1]
            out[row[0]] = AreaRow(*row[:_TIMES], aware + (r - naive), *(t and aware + (t - naive) for t in rest),
                                  row[-1])
    return list(out.values())


def _is_accepted(r) -> bool:
    return r.accepted_at is not None and r.rejected_at is None and r.state not in _NOT_ACCEPTED


def _overdue_row(r, now: datetime) -> bool:
    return is_overdue(r.state, r.accepted_at, r.rejected_at, r.closed_at, r.deadline_at, now)


class SqlPanels:
    """The panels, a statement (or a few) per figure over the area's index ranges: for the city and the districts."""

    def __init__(self, session, scope: Scope, directory):
        self.session, self.scope, self.directory = session, scope, directory

    def units(self, names=None) -> list[dict]:
        return unit_performance(self.session, self.scope, names)

    def daily(self) -> list[dict]:
        return daily_counts(self.session, self.scope)

    def headline(self, units: list[dict], daily: list[dict] | None = None) -> dict:
        return headline(self.session, self.scope, units, daily)

    def pareto(self, catalog, top: int = 12) -> dict:
        return category_pareto(self.session, self.scope, catalog, top)

    def severity(self) -> list[dict]:
        return emergency_severity(self.session, self.scope)

    def children(self) -> dict:
        return child_ranking(self.session, self.scope, self.directory)

    def reminders(self, catalog, limit: int = 30, names=None) -> list[dict]:
        return reminders(self.session, self.scope, self.directory, catalog, limit, names)


class RowPanels(SqlPanels):
    """The same panels from the area's rows (area_rows, read once), counted in Python exactly as the
    statements of SqlPanels count them: for an area below the district."""

    def __init__(self, session, scope: Scope, directory):
        super().__init__(session, scope, directory)
        self.frame = frame_of(directory, scope.area) or scope.area
        self.rows = area_rows(session, scope, self.frame)
        area = scope.area
        if area.level == CITY:
            in_area = lambda r: True  # noqa: E731
        elif area.level == DISTRICT:
            in_area = lambda r, code=area.code: r.district_code == code  # noqa: E731
        elif area.level == GRID:
            in_area = lambda r, code=area.code: r.grid_code == code  # noqa: E731
        else:  # the grid codes' range (area_clause)
            in_area = lambda r, code=area.code: r.grid_code.startswith(code)  # noqa: E731
        cats = None if scope.categories is None else frozenset(scope.categories)
        self.in_theme = (lambda r: True) if cats is None else (lambda r: r.category_code in cats)
        self.mine = [r for r in self.rows if in_area(r)]  # a grid's, without its siblings'
        self.themed = [r for r in self.mine if self.in_theme(r)]
        lo, hi = scope.lo, scope.hi
        # (a report voided by the period's end counts only in `voided`)
        self.received = [r for r in self.themed if lo <= r.reported_at < hi and not (r.voided_at and r.voided_at < hi)]

    def units(self, names=None) -> list[dict]:
        """unit_performance: the assessment's reference computation over the rows that can count in it."""
        scope = self.scope
        # (only an accepted case with a deadline can be due or overdue: the others would only make groups of 0)
        counted = [r for r in self.themed if r.deadline_at is not None and r.accepted_at is not None]
        groups = compute_grouped(counted, scope.start, scope.end, "unit", now=scope.now)
        groups = {k: v for k, v in groups.items() if v.due or v.overdue_open}
        names = (names or partial(_unit_names, self.session))([c for c in groups if c is not None])
        return [{"unit_code": code, "name": names.get(code, code) if code else "（未派遣）", "due": k.due,
                 "closed": k.closed, "closed_on_time": k.closed_on_time, "overdue_open": k.overdue_open,
                 "closure_rate": k.closure_rate, "on_time_rate": k.on_time_rate} for code, k in groups.items()]

    def daily(self) -> list[dict]:
        """Received, and accepted cases closed, per Shanghai day (China keeps no DST: 24 h each)."""
        scope = self.scope
        lo, hi = scope.lo, scope.hi
        n = (scope.end - scope.start).days + 1
        got, closed = [0] * n, [0] * n
        for r in self.received:
            got[(r.reported_at - lo) // _DAY] += 1
        for r in self.themed:
            x = r.closed_at
            if x is not None and lo <= x < hi and _is_accepted(r):
                closed[(x - lo) // _DAY] += 1
        return [{"day": (scope.start + timedelta(days=i)).isoformat(), "received": got[i], "closed": closed[i]}
                for i in range(n)]

    def headline(self, units: list[dict], daily: list[dict] | None = None) -> dict:
        daily = daily if daily is not None else self.daily()
        return {"received": sum(d["received"] for d in daily),
                "received_today": daily[-1]["received"] if daily else 0, **totals(units),
                "supervised_open": sum(1 for r in self.themed if r.supervised and r.state in _OPEN),
                "emergencies_open": sum(1 for r in self.mine if r.state in _OPEN and r.kind == "emergency")}

    def pareto(self, catalog, top: int = 12) -> dict:
        return _pareto(Counter(r.category_code for r in self.received).items(), catalog, top)

    def severity(self) -> list[dict]:
        """Not narrowed by the theme (emergency_severity)."""
        lo, hi = self.scope.lo, self.scope.hi
        by: dict = {}
        for r in self.mine:
            if r.kind == "emergency" and lo <= r.reported_at < hi and r.state != "merged":
                n, o = by.get(r.severity, (0, 0))
                by[r.severity] = (n + 1, o + (r.state in _OPEN))
        return [{"severity": s, "label": SEVERITY_NAMES[s], "total": by.get(s, (0, 0))[0],
                 "open": by.get(s, (0, 0))[1], "closed": by.get(s, (0, 0))[0] - by.get(s, (0, 0))[1]}
                for s in (1, 2, 3, 4)]

    def children(self) -> dict:
        """child_ranking over the frame's rows (a grid's siblings too), keyed as it groups them."""
        frame, directory = self.frame, self.directory
        children = _children(directory, frame)
        if not children:
            return {"parent": frame.code, "level": frame.level + 1, "items": []}
        figures: dict[str, list] = {c.code: [0, 0, 0] for c in children}
        owner = _owner_of(children, directory)
        key = (lambda r: r.district_code) if frame.level == CITY else (lambda r: r.grid_code)
        lo, hi, now = self.scope.lo, self.scope.hi, self.scope.now
        for r in self.rows:
            if not self.in_theme(r):
                continue
            f = figures.get(owner(key(r)))
            if f is not None:
                f[0] += lo <= r.reported_at < hi
                f[1] += r.state in _OPEN
                f[2] += _overdue_row(r, now)
        items = [{"code": c.code, "name": c.name, "selected": c.code == self.scope.area.code,
                  "received": figures[c.code][0], "open": figures[c.code][1], "overdue": figures[c.code][2]}
                 for c in children]
        items.sort(key=lambda x: (-x["received"], -x["open"], x["code"]))
        return {"parent": frame.code, "level": frame.level + 1, "items": items}

    def reminders(self, catalog, limit: int = 30, names=None) -> list[dict]:
        """The same candidates in the same order as reminders' statements (a missing deadline sorts as the
        database sorts it: first on SQLite, last on PostgreSQL)."""
        now = self.scope.now
        nulls_first = self.session.get_bind().dialect.name == "sqlite"
        never = datetime.min.replace(tzinfo=UTC)

        def by_deadline(r):
            return ((r.deadline_at is None) != nulls_first, r.deadline_at or never, r.id)

        overdue = sorted((r for r in self.themed if _overdue_row(r, now)), key=by_deadline)[:limit * 3]
        supervised = sorted((r for r in self.themed if r.supervised and (r.state in _OPEN or _overdue_row(r, now))),
                            key=by_deadline)[:limit * 3]
        picked = {r.id: r for r in (*supervised, *overdue)}
        rows = sorted(picked.values(), key=lambda r: (not r.supervised, by_deadline(r)))[:limit * 3]
        return _reminder_items(rows, self.scope, self.directory, catalog, limit,
                               names or partial(_unit_names, self.session))


PANELS = {"sql": SqlPanels, "rows": RowPanels}


def panels(session, scope: Scope, directory, read: str | None = None) -> SqlPanels:
    """The panels of the scope, read as `read` says ("rows" or "sql"), by default by the area's size:
    rows from ROWS_FROM_LEVEL down. Both give the same figures."""
    if read is None:
        read = "rows" if scope.area.level >= ROWS_FROM_LEVEL else "sql"
    if read not in PANELS:
        raise ValueError(f"read must be one of {', '.join(PANELS)}, not {read!r}")
    return PANELS[read](session, scope, directory)


# ---- the whole panel ---------------------------------------------------------------------------
def breadcrumbs(directory, code: str) -> list[dict]:
    return [{"code": a.code, "name": a.name, "level": a.level, "level_name": LEVEL_NAMES_ZH[a.level]}
            for a in reversed(directory.chain(code))]


def resolve_area(directory, code: str | None):
    """The selected area, or the city when the code is unknown (a stale link, a re-imported grid)."""
    area = directory.get(code) if code else None
    if area is None:
        records = directory.records(max_level=1)
        area = records[0] if records else None
    return area


class _TtlCache:
    """Figures per (area, theme) for a short while: every leader on the same selection, and the
    page's own refresh, reuse one computation. Keyed by the service clock's time bucket; each
    entry remembers the outbox head (case_events.seq) it was computed at, so a page refreshing
    because of a live event it has seen is never served figures from before that event."""

    def __init__(self, seconds: float = 30.0, size: int = 256):
        self.seconds, self.size = seconds, size
        self._lock = threading.Lock()
        self._data: dict = {}

    def get(self, key, now: datetime, make, need: int | None = None):
        """The cached value of `key` in the current time bucket, unless it was computed at an
        outbox head below `need`; otherwise `make()`, which returns (value, head it was computed at)."""
        bucket = (*key, int(now.timestamp() // self.seconds))
        with self._lock:
            hit = self._data.get(bucket)
        if hit is not None and (need is None or (hit[1] is not None and hit[1] >= need)):
            return hit[0]
        value, version = make()
        with self._lock:
            if len(self._data) >= self.size:
                self._data.clear()
            old = self._data.get(bucket)
            if old is None or (old[1] or 0) <= (version or 0):  # a slower, older computation never wins
                self._data[bucket] = (value, version)
        return value


_CACHE = _TtlCache()


def outbox_head(db) -> int:
    """The newest case_events.seq (0 when none): every change to a case moves it."""
    with db.session() as s:
        return s.scalar(select(func.max(CaseEvent.seq))) or 0


def cached_snapshot(cases, area_code: str | None, theme_key: str | None, seen_seq: int | None = None) -> dict | None:
    """snapshot() shared for 30 s. `seen_seq`: the newest live event the page has seen; the
    figures then include it (recomputed when the shared ones are older). Capped at the real head,
    so a made-up number cannot force a computation per request."""
    now = cases.clock()

    def make():
        head = outbox_head(cases.db)  # read first: the figures include at least this much
        return snapshot(cases, area_code, theme_key, now), head

    need = None if seen_seq is None else min(int(seen_seq), outbox_head(cases.db))
    return _CACHE.get(("snapshot", cases.db.url, area_code, theme_key), now, make, need)


def cached_navigation(cases, area_code: str | None, theme_key: str | None) -> dict | None:
    now = cases.clock()
    return _CACHE.get(("navigation", cases.db.url, area_code, theme_key), now,
                      lambda: (navigation(cases, area_code, theme_key, now), None))


def snapshot(cases, area_code: str | None, theme_key: str | None, now: datetime | None = None,
             with_indicators: bool = True, read: str | None = None) -> dict | None:
    """Every figure of the cockpit for an area and a theme; None when no city is loaded.
    `cases` is the app's CaseService (its db, area directory, catalog and clock). `read`: "rows" (the
    area's rows read once, the panels computed from them) or "sql" (a statement per figure); default
    by the area's size: rows from ROWS_FROM_LEVEL down. Both give the same figures."""
    directory = cases.areas
    area = resolve_area(directory, area_code)
    if area is None:
        return None
    theme = theme_or_default(theme_key)
    catalog = cases.catalog()
    now = (now or cases.clock()).astimezone(UTC)
    scope = make_scope(area, theme, catalog, now, district=_district_of(directory, area))
    names = lambda codes: {c: cases.unit_name(c) for c in codes}  # noqa: E731 - the service's cache
    with cases.db.session() as s:
        p = panels(s, scope, directory, read)
        units = p.units(names)
        daily = p.daily()
        figures = {"headline": p.headline(units, daily), "daily": daily, "pareto": p.pareto(catalog),
                   "units": worst_units(units), "severity": p.severity(), "children": p.children(),
                   "reminders": p.reminders(catalog, names=names)}
        indicators = list_indicators(s, None if theme.everything else theme.key) if with_indicators else None
    out = {
        "area": {"code": area.code, "name": area.name, "level": area.level,
                 "level_name": LEVEL_NAMES_ZH[area.level]},
        "theme": {"key": theme.key, "label": theme.label},
        "period": {"start": scope.start.isoformat(), "end": scope.end.isoformat(), "days": PERIOD_DAYS},
        "now": now.astimezone(CITY_TZ).isoformat(timespec="seconds"),
        "breadcrumbs": breadcrumbs(directory, area.code),
        **figures,
    }
    if with_indicators:
        out["indicators"] = indicators
    return out


def map_areas(directory, code: str) -> tuple[object, list, object | None]:
    """What the map draws for a selection: the frame area (the selection, or a grid's community),
    its children, and the highlighted child (a selected grid) if any."""
    area = directory.get(code)
    if area is None:
        return None, [], None
    frame = directory.get(area.parent) if area.level == GRID and area.parent else area
    return frame, directory.children(frame.code), area if area.level == GRID else None


def navigation(cases, area_code: str | None, theme_key: str | None, now: datetime | None = None) -> dict | None:
    """What the drill-down needs for a selection: breadcrumbs, the areas to drill into (a grid's
    siblings for a grid), and the map's frame, its children and their figures."""
    directory = cases.areas
    area = resolve_area(directory, area_code)
    if area is None:
        return None
    theme = theme_or_default(theme_key)
    now = (now or cases.clock()).astimezone(UTC)
    frame, children, highlight = map_areas(directory, area.code)
    scope = make_scope(area, theme, cases.catalog(), now, district=_district_of(directory, area))
    with cases.db.session() as s:
        ranking = child_ranking(s, scope, directory)
    return {"area": {"code": area.code, "name": area.name, "level": area.level,
                     "level_name": LEVEL_NAMES_ZH[area.level]},
            "breadcrumbs": breadcrumbs(directory, area.code),
            "choices": [{"code": c.code, "name": c.name} for c in children],
            "frame": frame, "children": children, "highlight": highlight, "ranking": ranking}


def drill_target(directory, current: str | None, code: str | None) -> str | None:
    """The area to select after a click: an existing area on the current selection's chain or
    below it (map, chart, selector), or a sibling grid; None to ignore the click."""
    if not code or not isinstance(code, str):
        return None
    target = directory.get(code)
    if target is None:
        return None
    here = directory.get(current) if current else None
    if here is None:
        return target.code
    chain = {a.code for a in directory.chain(target.code)}
    if here.code in chain or target.code in {a.code for a in directory.chain(here.code)}:
        return target.code
    if here.level == GRID and target.parent == here.parent:
        return target.code
    return None
