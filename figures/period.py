"""Aggregate queries for the wall and the cockpit, each over an index range (never a scan of every case)."""
from __future__ import annotations

# Every function takes an open SQLAlchemy Session (`with db.session() as s:`) and returns plain
# data. Figures follow figures/definitions.py's contract (period_figures equals compute_kpis on the same
# cases); "overdue" is the KPI's overdue_open: accepted, not closed, deadline before now.
# The index each query rides on is named next to it (data/models.py; 0002 adds accepted_at, 0003
# closed_at). Times are aware UTC; days and hours are wall-clock days and hours of `tz`.
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import (Float, ColumnElement, and_, bindparam, case, cast, extract, func, literal, literal_column, null,
                        or_, select, union_all)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import InternalTraversal

from data.models import Case, CaseEvent, Category
from figures.definitions import Kpis, period_bounds
from dispatch.lifecycle import OPEN_STATES, STATE_LABELS
from dispatch.city_time import CITY_TZ

UTC = timezone.utc
# Open states of a case that was accepted (立案): the ones that can be overdue.
ACCEPTED_OPEN = tuple(s for s in OPEN_STATES if s not in ("reported", "verifying"))  # 核实中: not filed yet
NOT_ACCEPTED = ("rejected", "merged")
SET_ASIDE_NOW = ("voided", "suspended")  # neither due nor overdue (docs/assessment.md): 作废, on 挂账 now

__all__ = ["Marks", "marks", "today_figures", "period_figures", "grid_counts", "district_figures",
           "hourly_trend", "newest_cases", "today_points", "open_emergencies",
           "recent_points", "category_top", "nice_breaks"]


def _zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _day_of(now: datetime, tz: str | tzinfo) -> date:
    return now.astimezone(_zone(tz)).date()


def accepted():
    """An accepted case (立案案件) as figures/definitions.py defines it, spelt with its literals: it is the
    predicate of the covering partial indexes (data/models.ACCEPTED, migration 0008), and a planner uses
    a partial index only when the query spells its predicate term by term (a bound parameter in place of
    'rejected' matches on neither SQLite nor PostgreSQL's generic plans)."""
    return and_(Case.accepted_at.is_not(None), Case.rejected_at.is_(None),
                Case.state.not_in([literal_column(f"'{x}'") for x in NOT_ACCEPTED]))


def counts_at_end(E):
    """A case that counts in the period ending at E as it stands: not voided by E (作废: counted only in
    `voided`) and not on 挂账 at E (left out of due and overdue, counted in `suspended`); figures/definitions.py's
    voided_by and suspended_at_end, with NULLs spelt out. The columns are plain: they are checked on the rows an
    index range found (ix_cases_open_deadline and ix_cases_late_closed hold them, migration 0012)."""
    v, u, r = Case.voided_at, Case.suspended_at, Case.resumed_at
    return and_(or_(v.is_(None), v >= E), or_(u.is_(None), u >= E, and_(r >= u, r < E)))


HELD = "suspended_at IS NOT NULL AND (resumed_at IS NULL OR resumed_at < suspended_at)"  # ix_cases_held
LIFTED = "resumed_at >= suspended_at"                                                 # ix_cases_resumed


def on_hold_arms(E, cols, *where) -> tuple:
    """The accepted cases on 挂账 at E (suspended_at_end), not voided by E, as two selects of `cols` and their
    count: those whose last suspension is not lifted (ix_cases_held: the cases on hold now, few) suspended
    before E, and those lifted since E (ix_cases_resumed, the range resumed_at >= E). Each spells its index's
    predicate (a planner matches a partial index's predicate term by term)."""
    v, u, r = Case.voided_at, Case.suspended_at, Case.resumed_at
    common = (or_(v.is_(None), v >= E), accepted(), unindexed(Case.accepted_at) < E, *where)
    held = select(*cols, func.count()).where(u.is_not(None), or_(r.is_(None), r < u), u < E, *common)
    lifted = select(*cols, func.count()).where(r >= u, r >= E, unindexed(u) < E, *common)
    return held, lifted


def suspended_at_end(E):
    """On 挂账 at the end of the period (figures/definitions.py's suspended_at_end), not voided by then."""
    v, u, r = Case.voided_at, Case.suspended_at, Case.resumed_at
    return and_(u < E, or_(r.is_(None), r >= E, r < u), or_(v.is_(None), v >= E))


def _n(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


@dataclass(frozen=True)
class Marks:
    """Where a snapshot stands: the newest case id and outbox sequence number when it was taken.
    Live events after `head_seq` are not in it; created cases with id > `max_case_id` neither."""

    max_case_id: int
    head_seq: int


def marks(s: Session) -> Marks:
    """Read first, before the figures: anything committed later is replayed live (primary keys)."""
    return Marks(max_case_id=s.scalar(select(func.max(Case.id))) or 0,
                 head_seq=s.scalar(select(func.max(CaseEvent.seq))) or 0)


def today_figures(s: Session, now: datetime, tz: str | tzinfo = CITY_TZ, max_case_id: int | None = None) -> dict:
    """Today's received / accepted / closed, and the open, overdue and emergency cases right now."""
    day = _day_of(now, tz)
    start, end = period_bounds(day, day, tz)
    upto = [Case.id <= max_case_id] if max_case_id is not None else []
    # ix_cases_reported
    received, emergencies_today = s.execute(select(func.count(), _n(Case.kind == "emergency")).where(
        Case.reported_at >= start, Case.reported_at < end, *upto)).one()
    # ix_cases_accepted
    accepted_ = s.scalar(select(func.count()).where(Case.accepted_at >= start, Case.accepted_at < end, accepted()))
    # ix_cases_closed_at
    closed = s.scalar(select(func.count()).where(Case.closed_at >= start, Case.closed_at < end, accepted()))
    # ix_cases_state: only the open cases are read
    open_, overdue, emergencies_open = s.execute(select(
        func.count(), _n(overdue_now(now)), _n(Case.kind == "emergency"),
    ).where(Case.state.in_(OPEN_STATES), *upto)).one()
    return {"day": day.isoformat(), "received": received, "accepted": accepted_, "closed": closed,
            "open": open_, "overdue": overdue, "emergencies_open": emergencies_open,
            "emergencies_today": emergencies_today}


def _hours_between(s: Session, later, earlier):
    if s.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 24.0
    return extract("epoch", later - earlier) / 3600.0


SUMS = 10  # the summed shares of a period, in _kpis' order, hours last (overdue_open and suspended apart)


def period_shares(s: Session, S: datetime, E: datetime, by_district: bool, *where, key=None):
    """The per-case select of period_figures, defined once for the plain sums and figures/rollup.py:
    (columns, shares) where columns has `id` and `k` (district, or "*"; or the column `key`) of each
    case reported, accepted, due or closed in [S, E) (the four index ranges) and `shares` are that
    case's part of each of the SUMS figures (0/1, and hours). `where`: further conditions (a set of
    ids, an area or unit scope: spelt so that no index serves them, see figures.overdue.unindexed)."""
    r, a, d, x = Case.reported_at, Case.accepted_at, Case.deadline_at, Case.closed_at
    if key is None:
        key = Case.district_code if by_district else literal("*")
    acc = accepted()
    in_p = lambda col: and_(col >= S, col < E)  # noqa: E731
    flag = lambda cond: case((cond, 1), else_=0)  # noqa: E731
    # Each row's facts are computed once (the subquery; OFFSET 0 keeps SQLite from folding it into
    # the sums, which would evaluate every comparison again for each figure), then combined as 0/1.
    rows = select(
        Case.id.label("id"), key.label("k"),
        flag(Case.voided_at < E).label("vby"), flag(in_p(Case.voided_at)).label("vin"),
        flag(suspended_at_end(E)).label("sus"),
        flag(in_p(r)).label("rec"), flag(acc).label("acc"), flag(in_p(a)).label("ain"),
        flag(Case.extension_count > 0).label("ext"), flag(in_p(d)).label("din"), flag(in_p(x)).label("xin"),
        flag(x < S).label("xbs"), flag(x < d).label("xld"), flag(x < E).label("xle"), flag(x <= d).label("xod"),
        flag(Case.rework_count > 0).label("rw"),
        case((in_p(x), _hours_between(s, x, a)), else_=0.0).label("hrs"),
    ).where(or_(in_p(r), in_p(a), in_p(d), in_p(x), in_p(Case.voided_at)), *where).offset(0).subquery()
    c = rows.c
    keep = 1 - c.vby                                               # voided by E: only in `voided`
    acc = c.acc * keep
    early = c.din * (1 - c.xbs)                                    # due in the period, not closed before it
    due = acc * (1 - c.sus) * (early + c.xin * c.xld - early * c.xin * c.xld)  # ... or closed in it before
    shares = [c.rec * keep, acc * c.ain, acc * c.ain * c.ext, due, due * c.xle, due * c.xle * c.xod, acc * c.xin,
              acc * c.xin * c.rw, c.vin, acc * c.xin * c.hrs]  # its deadline; not on 挂账 at E
    return c, shares


def period_figures(s: Session, start: date, end: date, now: datetime, by_district: bool = False,
                   tz: str | tzinfo = CITY_TZ) -> dict:
    """The assessment figures of the days start..end (inclusive) in SQL, exactly as
    figures.definitions.compute_kpis counts them. Returns {"total": Kpis, "groups": {district: Kpis}}
    (groups only with by_district). Reads only the cases reported, accepted, due or closed in the
    period (four index ranges), plus the open cases for overdue."""
    S, E = period_bounds(start, end, tz)
    c, shares = period_shares(s, S, E, by_district)
    raw: dict = {}
    for row in s.execute(select(c.k, *(func.sum(v) for v in shares)).group_by(c.k)):
        k = row[0] if by_district else None
        raw[k] = [v or 0 for v in row[1:]] + [0, 0]
    add_overdue_open(s, raw, S, E, now, by_district)
    return figures_from(raw, by_district)


def overdue_now(now: datetime):
    """超期未结 right now, the one meaning of "overdue" (docs/figures.md): an accepted case (立案案件),
    not closed, whose deadline has passed, neither voided nor on 挂账 now (by its state: for a period that ends
    now, counts_at_end's columns say the same of a case the lifecycle wrote); figures/definitions.py's
    overdue_open for a period that has not ended. Verified cases count: 核查通过 is not 结案, and the deadline is the case's. closed_at IS NULL
    and accepted() are the predicate of the partial index ix_cases_open_deadline (and imply those of
    ix_cases_open_district, ix_cases_open_grid), so a count of overdue cases reads the overdue cases and no
    others."""
    return and_(Case.closed_at.is_(None), Case.deadline_at < now, accepted(),
                Case.state.not_in([literal_column(f"'{x}'") for x in SET_ASIDE_NOW]))


def not_overdue_now(now: datetime):
    """The cases overdue_now leaves out (NULLs spelt out: NOT of an unknown comparison is unknown)."""
    return or_(Case.closed_at.is_not(None), Case.accepted_at.is_(None), Case.deadline_at.is_(None),
               Case.deadline_at >= now, Case.rejected_at.is_not(None), Case.state.in_(NOT_ACCEPTED),
               Case.state.in_(SET_ASIDE_NOW))


def is_overdue(state: str, accepted_at, rejected_at, closed_at, deadline_at, now: datetime) -> bool:
    """overdue_now for one case in Python (a case object, a queue row, a live event)."""
    return (accepted_at is not None and rejected_at is None and closed_at is None and state not in NOT_ACCEPTED
            and state not in SET_ASIDE_NOW and deadline_at is not None and deadline_at < now)


class unindexed(ColumnElement):  # noqa: N801 - used as a function
    """The column spelt so that no index serves a test on it: for a filter that must be checked on the rows
    a time range or the overdue index found, not walked on its own. On SQLite coalesce(c, c) (c itself):
    its planner has no statistics and takes whatever index a term offers. On PostgreSQL the plain column:
    its planner chooses by statistics, and an expression would hide them (coalesce(c, c) = 'x' is guessed
    at 0.5 % of the rows, which made it scan the whole table for a district's closed cases)."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column):
        self.column = column
        self.type = column.type

    @property
    def _from_objects(self):
        return self.column._from_objects


@compiles(unindexed)
def _unindexed(element, compiler, **kw):
    column = compiler.process(element.column, **kw)
    return f"coalesce({column}, {column})"


@compiles(unindexed, "postgresql")
def _unindexed_pg(element, compiler, **kw):
    return compiler.process(element.column, **kw)


def overdue_open_counts(s: Session, S: datetime, E: datetime, now: datetime, key=None, where=()) -> list[tuple]:
    """[(group, n)] of overdue_open for the period [S, E) seen at `now`, grouped by the column `key`
    (None: one group None): accepted before E, not closed by E, deadline before min(now, E). Two index
    ranges: the open ones through ix_cases_open_deadline (only such cases), and those closed after E
    through ix_cases_late_closed (for the current period: none)."""
    cutoff = min(now.astimezone(UTC), E)
    cols = [unindexed(key)] if key is not None else []  # grouped after the range: no walk of a key's index
    common = [unindexed(Case.accepted_at) < E, accepted(), counts_at_end(E), *where]
    still_open = select(*cols, func.count()).where(Case.closed_at.is_(None), Case.deadline_at < cutoff, *common)
    closed_late = select(*cols, func.count()).where(Case.closed_at >= E, Case.closed_at > Case.deadline_at,
                                                     unindexed(Case.deadline_at) < cutoff, *common)
    out = []
    for q in (still_open, closed_late):
        rows = s.execute(q.group_by(*cols) if cols else q)
        out += [(row[0] if cols else None, row[-1]) for row in rows if row[-1]]
    return out


def suspended_counts(s: Session, E: datetime, key=None, where=()) -> list[tuple]:
    """[(group, n)] of the accepted cases on 挂账 at E (`suspended`), grouped by the column `key` (None: one
    group None): on_hold_arms."""
    cols = [unindexed(key)] if key is not None else []
    out = []
    for q in on_hold_arms(E, cols, *where):
        out += [(row[0] if cols else None, row[-1]) for row in s.execute(q.group_by(*cols) if cols else q) if row[-1]]
    return out


def add_overdue_open(s: Session, raw: dict, S: datetime, E: datetime, now: datetime, by_district: bool) -> None:
    """Adds each group's overdue_open and suspended (slots OVERDUE, SUSPENDED of raw's lists) for the period
    [S, E) seen at `now`."""
    key = Case.district_code if by_district else None
    for k, n in overdue_open_counts(s, S, E, now, key):
        raw.setdefault(k, [0] * (SUMS + 2))[OVERDUE] += n
    for k, n in suspended_counts(s, E, key):
        raw.setdefault(k, [0] * (SUMS + 2))[SUSPENDED] += n


KPI_KEYS = {"district": Case.district_code, "unit": Case.unit_code, "category": Case.category_code}
# raw's slots (figures_from): the SUMS sums in _kpis' order (hours last), then overdue_open and suspended
RECEIVED, ACCEPTED, EXTENDED, DUE, CLOSED, ON_TIME, CLOSED_IN, REWORKED, VOIDED, HOURS, OVERDUE, SUSPENDED = \
    range(SUMS + 2)


_KEY_VALUES: dict = {}


def key_values(s: Session, column, lo: str | None = None, hi: str | None = None) -> list[str]:
    """Every value of `column` among the cases (district_code, category_code or grid_code: never NULL, each
    the first column of an index of every case), within [lo, hi) if given, by a loose index scan: one
    descent of the index per value."""
    name = (column.key, lo is not None, hi is not None)
    q = _KEY_VALUES.get(name)
    if q is None:
        bounds = [column >= bindparam("lo")] if lo is not None else []
        below = [column < bindparam("hi")] if hi is not None else []
        k = select(func.min(column).label("v")).where(*bounds, *below).cte("key_values", recursive=True)
        k = k.union_all(select(select(func.min(column)).where(column > k.c.v, *below).scalar_subquery())
                        .where(k.c.v.is_not(None)))
        q = _KEY_VALUES[name] = select(k.c.v).where(k.c.v.is_not(None))
    return list(s.connection().execute(q, {"lo": lo, "hi": hi}).scalars())


def _handling_hours(dialect: str):
    """closed_at - accepted_at in hours. On SQLite around exactly the expression ix_cases_closed_* hold,
    so that the planner reads it from the index instead of parsing two timestamps per row; on
    PostgreSQL a double (date_part: extract's numeric is slower to sum)."""
    if dialect == "sqlite":
        return (func.julianday(Case.closed_at) - func.julianday(Case.accepted_at)) * 24.0
    return func.date_part("epoch", Case.closed_at - Case.accepted_at) / 3600.0


PARTS = ("received", "accepted", "closed", "late", "open", "voided", "held", "lifted")


def _closed_in(dialect: str, ordered: list, sorted_after: bool, count, where: tuple) -> tuple:
    """kpi_figures' read of the closed cases: (group columns, statement). When its rows must be sorted to be
    grouped (by unit), SQLite would copy the raw columns into its sorter and parse the handling time from
    the table's timestamps: the row's values are then computed in a subquery first, from the index."""
    hours = _handling_hours(dialect)
    if not (sorted_after and dialect == "sqlite"):
        return ordered, select(*ordered, func.count(), count(Case.rework_count > 0), func.sum(hours),
                               func.count(Case.deadline_at)).where(*where)
    rows = select(*(c.label("k") for c in ordered), (Case.rework_count > 0).label("rw"), hours.label("h"),
                  Case.deadline_at.label("d")).where(*where).offset(0).subquery()
    return [rows.c.k], select(rows.c.k, func.count(), count(rows.c.rw), func.sum(rows.c.h), func.count(rows.c.d))


def _kpi_queries(dialect: str, by: str | None, where) -> dict:
    """kpi_figures' statements by PARTS name, each with the number of group columns it leads with;
    parameters S, E, cutoff and codes (the leading key's values)."""
    key = KPI_KEYS[by] if by else None
    lead = Case.category_code if by == "category" else Case.district_code  # the covering indexes' first key
    # The group key as read: the leading key comes ordered out of its ranges; the unit (no index holds it)
    # and the small ranges (open, late) are grouped after reading, never by walking a key's index.
    ordered = [key] if by in ("district", "category") else [unindexed(key)] if key is not None else []
    after = [unindexed(key)] if key is not None else []
    S, E, cutoff = (bindparam(n, type_=Case.closed_at.type) for n in ("S", "E", "cutoff"))
    keys = lead.in_(bindparam("codes", expanding=True))
    reports = [keys] if by in ("district", "category") else []  # else the plain range of ix_cases_reported
    x, d, a = Case.closed_at, Case.deadline_at, Case.accepted_at
    in_p = lambda col: and_(col >= S, col < E)  # noqa: E731
    _count = lambda cond: func.count().filter(cond)  # noqa: E731 - a FILTER costs less than a CASE per row
    queries = (
        # received: ix_cases_reported, or by district / category ix_cases_district_reported / _category_reported
        (ordered, select(*ordered, func.count()).where(*reports, in_p(Case.reported_at), *where)),
        # accepted in P: ix_cases_accepted_district / _category
        (ordered, select(*ordered, func.count(), _count(Case.extension_count > 0)).where(
            keys, in_p(a), accepted(), *where)),
        # closed in P: ix_cases_closed_district / _category
        _closed_in(dialect, ordered, by == "unit", _count, (keys, in_p(x), x.is_not(None), accepted(), *where)),
        # closed late since S (deadline before E), ix_cases_late_closed: in P (not on time; not due when the
        # deadline is before S), or after E (due when the deadline is in P; overdue at the end of P when the
        # deadline passed by the cut-off)
        # deadline passed by the cut-off), unless voided or on 挂账 at E (counts_at_end)
        (after, select(*after, _count(x < E), _count(and_(x < E, d < S)),
                       _count(and_(x >= E, d < cutoff, a < E, counts_at_end(E))),
                       _count(and_(x >= E, d >= S, counts_at_end(E)))).where(x >= S, x > d, d < E, accepted(), *where)),
        # not closed, deadline before E, ix_cases_open_deadline: due when in P, overdue when before the
        # cut-off (accepted before E); not voided, not on 挂账 at E
        (after, select(*after, _count(and_(d < cutoff, a < E)), _count(d >= S)).where(
            x.is_(None), d < E, accepted(), counts_at_end(E), *where)),
        # voided in P, ix_cases_voided: `voided`, and what the received and accepted ranges counted of them
        (after, select(*after, func.count(), _count(in_p(Case.reported_at)), _count(and_(accepted(), in_p(a))),
                       _count(and_(accepted(), in_p(a), Case.extension_count > 0))).where(
            in_p(Case.voided_at), *where)),
        # on 挂账 at E: `suspended` (on_hold_arms: ix_cases_held, ix_cases_resumed)
        *((after, q) for q in on_hold_arms(E, after, *where)),
    )
    return {name: (len(cols), q.group_by(*cols) if cols else q) for name, (cols, q) in zip(PARTS, queries)}


_KPI_QUERIES: dict = {}
_INTS = 4  # the union's count columns (then the hours)


def _kpi_union(queries: dict, parts) -> object:
    """The parts' statements as one UNION ALL (one round trip), each row (part, key, 4 counts, hours): the
    counts of each part in its order (0 for a part with fewer), the hours of the closed part (else NULL)."""
    arms = []
    for name in parts:
        n, q = queries[name]
        cols = list(q.selected_columns)
        key = cols[0] if n else null()
        values = cols[n:]
        hours = cast(null(), Float)
        if name == "closed":  # count, reworked, hours, with a deadline
            hours, values = values[2], values[:2] + values[3:]
        values = values + [literal_column("0")] * (_INTS - len(values))
        arms.append(q.with_only_columns(literal_column(str(PARTS.index(name))), key, *values, hours))
    return union_all(*arms)


def kpi_figures(s: Session, S: datetime, E: datetime, now: datetime, by: str | None = None, where=(),
                codes: list[str] | None = None, parts=PARTS) -> dict:
    """Every KPI figure of the period [S, E) (UTC bounds, figures.definitions.period_bounds) at `now`,
    exactly as figures.definitions.compute_kpis counts them: {"total": Kpis, "groups": {key: Kpis}}
    (groups with `by` in KPI_KEYS: each key with a case that counts in some figure, None last). `where`:
    the scope (area, unit), spelt unindexed: the index ranges choose the rows. `codes`: the districts (the
    categories with `by` category) whose ranges hold the scope's cases, when the caller knows them (a
    district's, a street's); default every one. `parts`: only these of the reads below (the cockpit's
    units need no received or accepted counts; those figures are then 0).

    One statement (a UNION ALL: one round trip), each of its parts one range of a covering index
    (migration 0008), never the table (but for `by` unit or a unit's scope, whose columns no index holds):
      received   the reports of P                      ix_cases_reported, or by district / category
                                                        ix_cases_district_reported / _category_reported
      accepted   the accepted cases accepted in P      ix_cases_accepted_district / _category
      closed     the accepted cases closed in P        ix_cases_closed_district / _category
      late       closed after their deadline, since S  ix_cases_late_closed
      open       not closed, deadline before E         ix_cases_open_deadline
    The district- and category-led ones are read one range per key (`key IN (every key)`, key_values):
    the rows come grouped, and SQLite, which has no hash aggregation, sorts nothing.

    Due, closed and closed on time follow from these ranges (docs/figures.md): a case closed in P is due
    when its deadline is not before S (if it is, the case was closed late); closed on time when closed by
    its deadline; a case not closed by E is due when its deadline is in P: open, or closed after E (then
    late). So due = closed in P with a deadline - those of them with a deadline before S (late) + open
    with a deadline in P + closed after E with a deadline in P; closed = the first two; closed on time =
    closed in P with a deadline - closed in P after it."""
    conn = s.connection()
    dialect = conn.dialect.name
    if codes is None:
        codes = key_values(s, Case.category_code if by == "category" else Case.district_code)
    if not codes:  # no case at all
        return figures_from({}, by is not None)
    wanted = set(parts)
    wanted |= {"voided"} if wanted & {"received", "accepted"} else set()  # their corrections
    wanted |= {"held", "lifted"} if "open" in wanted else set()
    parts = tuple(p for p in PARTS if p in wanted)
    if where:
        statement = _kpi_union(_kpi_queries(dialect, by, where), parts)
    else:  # built once: making the statements costs about as much as a month's smaller reads
        statement = _KPI_QUERIES.get((dialect, by, parts))
        if statement is None:
            statement = _KPI_QUERIES[(dialect, by, parts)] = _kpi_union(_kpi_queries(dialect, by, ()), parts)
    params = {"S": S, "E": E, "cutoff": min(now.astimezone(UTC), E), "codes": codes}
    raw: dict = {}

    def add(k, *pairs) -> None:
        v = raw.setdefault(k, [0] * (SUMS + 2))
        for slot, n in pairs:
            v[slot] += n

    for part, k, c1, c2, c3, c4, hours in conn.execute(statement, params):
        c1, c2, c3, c4 = int(c1 or 0), int(c2 or 0), int(c3 or 0), int(c4 or 0)
        name = PARTS[part]
        if name == "received":
            add(k, (RECEIVED, c1))
        elif name == "accepted":
            add(k, (ACCEPTED, c1), (EXTENDED, c2))
        elif name == "closed":  # closed in P, reworked, those with a deadline
            add(k, (CLOSED_IN, c1), (REWORKED, c2), (HOURS, float(hours or 0)), (DUE, c3), (CLOSED, c3),
                (ON_TIME, c3))
        elif name == "late":  # in P, in P with a deadline before S, overdue at E, due (closed after E)
            add(k, (ON_TIME, -c1), (DUE, c4 - c2), (CLOSED, -c2), (OVERDUE, c3))
        elif name == "open":  # the backlog: overdue, due
            add(k, (DUE, c2), (OVERDUE, c1))
        elif name == "voided":  # voided in P: counted only there
            add(k, (VOIDED, c1), (RECEIVED, -c2 if "received" in parts else 0),
                (ACCEPTED, -c3 if "accepted" in parts else 0), (EXTENDED, -c4 if "accepted" in parts else 0))
        else:  # on 挂账 at the end of P
            add(k, (SUSPENDED, c1))
    return figures_from({k: v for k, v in raw.items() if any(v)}, by is not None)


def figures_from(raw: dict, by_district: bool) -> dict:
    """period_figures' answer from {group: [the SUMS sums..., overdue_open]}."""
    groups = {k: _kpis(v) for k, v in sorted(raw.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))}
    total = [sum(v[i] for v in raw.values()) for i in range(SUMS + 2)] if raw else [0] * (SUMS + 2)
    out = {"total": _kpis(total)}
    if by_district:
        out["groups"] = groups
    return out


def _kpis(v: list) -> Kpis:
    received, accepted, extended, due, closed, on_time, closed_in, reworked, voided, hours, overdue, suspended = v
    ratio = lambda n, m: (n / m) if m else None  # noqa: E731
    return Kpis(received=int(received), accepted=int(accepted), due=int(due), closed=int(closed),
                closed_on_time=int(on_time), closure_rate=ratio(closed, due), on_time_rate=ratio(on_time, due),
                rework_rate=ratio(reworked, closed_in), extension_rate=ratio(extended, accepted),
                overdue_open=int(overdue), mean_handling_hours=(float(hours) / closed_in) if closed_in else None,
                voided=int(voided), suspended=int(suspended))


def grid_counts(s: Session, now: datetime) -> dict[str, tuple[int, int]]:
    """{grid code: (open cases, overdue cases)} for every grid with an open case (ix_cases_state)."""
    q = (select(Case.grid_code, func.count(), _n(overdue_now(now)))
         .where(Case.state.in_(OPEN_STATES)).group_by(Case.grid_code))
    return {g: (int(n), int(o)) for g, n, o in s.execute(q)}


def district_figures(s: Session, now: datetime, tz: str | tzinfo = CITY_TZ) -> dict[str, dict]:
    """{district: {received_today, open, overdue}} (ix_cases_reported, ix_cases_state)."""
    day = _day_of(now, tz)
    start, end = period_bounds(day, day, tz)
    out: dict[str, dict] = defaultdict(lambda: {"received_today": 0, "open": 0, "overdue": 0})
    for code, n in s.execute(select(Case.district_code, func.count()).where(
            Case.reported_at >= start, Case.reported_at < end).group_by(Case.district_code)):
        out[code]["received_today"] = n
    for code, n, o in s.execute(select(Case.district_code, func.count(), _n(overdue_now(now)))
                                .where(Case.state.in_(OPEN_STATES)).group_by(Case.district_code)):
        out[code]["open"], out[code]["overdue"] = n, int(o)
    return dict(out)


def hourly_trend(s: Session, now: datetime, weeks: int = 4, tz: str | tzinfo = CITY_TZ,
                 max_case_id: int | None = None) -> dict:
    """Cases reported per hour today, and the mean per hour of the same weekday over the last
    `weeks` weeks (ix_cases_reported, index-only). `so_far` compares today up to now with the
    usual day up to the same time of day."""
    zone = _zone(tz)
    local_now = now.astimezone(zone)
    day = local_now.date()
    upto = [Case.id <= max_case_id] if max_case_id is not None else []

    def per_hour(d: date, until: datetime | None) -> list[int]:
        start, end = period_bounds(d, d, zone)
        end = min(end, until) if until else end
        counts = [0] * 24
        for (t,) in s.execute(select(Case.reported_at).where(Case.reported_at >= start, Case.reported_at < end, *upto)):
            counts[t.astimezone(zone).hour] += 1
        return counts

    today = per_hour(day, now)
    past = [per_hour(day - timedelta(days=7 * k), None) for k in range(1, weeks + 1)]
    usual = [sum(p[h] for p in past) / weeks for h in range(24)]
    hour = local_now.hour
    frac = (local_now.minute * 60 + local_now.second) / 3600
    usual_so_far = sum(usual[:hour]) + usual[hour] * frac
    return {"day": day.isoformat(), "hour": hour, "today": today, "usual": [round(u, 2) for u in usual],
            "weeks": weeks, "today_so_far": sum(today), "usual_so_far": round(usual_so_far, 1)}


_CASE_COLS = (Case.id, Case.state, Case.version, Case.category_code, Category.name, Case.kind, Case.lon, Case.lat,
              Case.grid_code, Case.district_code, Case.severity, Case.reported_at, Case.accepted_at,
              Case.deadline_at, Case.updated_at, Case.rejected_at, Case.closed_at)


def _case_row(row, now: datetime) -> dict:
    (id_, state, version, cat, cat_name, kind, lon, lat, grid, district, severity, reported, accepted,
     deadline, updated, rejected, closed) = row
    return {"id": id_, "state": state, "state_label": STATE_LABELS.get(state, state), "version": version,
            "category_code": cat, "category_name": cat_name or cat, "kind": kind, "lon": lon, "lat": lat,
            "grid_code": grid, "district_code": district, "severity": severity, "reported_at": reported,
            "updated_at": updated, "deadline_at": deadline,
            "overdue": is_overdue(state, accepted, rejected, closed, deadline, now)}


def newest_cases(s: Session, now: datetime, limit: int = 20) -> list[dict]:
    """The newest reports, newest first, duplicates merged into another case left out
    (ix_cases_reported, read backwards)."""
    q = (select(*_CASE_COLS).join(Category, Category.code == Case.category_code, isouter=True)
         .where(Case.state != "merged", Case.reported_at <= now)
         .order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit))
    return [_case_row(r, now) for r in s.execute(q)]


def today_points(s: Session, now: datetime, limit: int = 5000, tz: str | tzinfo = CITY_TZ) -> list[dict]:
    """Where today's cases are (newest `limit`), with kind and whether open or overdue (ix_cases_reported)."""
    day = _day_of(now, tz)
    start, end = period_bounds(day, day, tz)
    q = (select(Case.id, Case.lon, Case.lat, Case.kind, Case.state, Case.severity, Case.accepted_at,
                Case.rejected_at, Case.closed_at, Case.deadline_at)
         .where(Case.reported_at >= start, Case.reported_at < end, Case.state != "merged")
         .order_by(Case.reported_at.desc()).limit(limit))
    return [{"id": i, "lon": lon, "lat": lat, "kind": kind, "open": state in OPEN_STATES, "severity": sev,
             "overdue": is_overdue(state, a, r, x, d, now)} for i, lon, lat, kind, state, sev, a, r, x, d in s.execute(q)]


def open_emergencies(s: Session, now: datetime, limit: int = 50) -> list[dict]:
    """Open emergencies, most severe first, then newest (ix_cases_state)."""
    q = (select(*_CASE_COLS).join(Category, Category.code == Case.category_code, isouter=True)
         .where(Case.state.in_(OPEN_STATES), Case.kind == "emergency")
         .order_by(func.coalesce(Case.severity, 9), Case.reported_at.desc()).limit(limit))
    return [_case_row(r, now) for r in s.execute(q)]


def recent_points(s: Session, now: datetime, days: int = 7, limit: int = 30000) -> list[tuple[float, float]]:
    """(lon, lat) of the cases reported in the last `days` days, newest first, duplicates left out
    (ix_cases_reported)."""
    q = (select(Case.lon, Case.lat).where(Case.reported_at >= now - timedelta(days=days), Case.reported_at <= now,
                                          Case.state != "merged")
         .order_by(Case.reported_at.desc()).limit(limit))
    return [(lon, lat) for lon, lat in s.execute(q)]


def category_top(s: Session, now: datetime, n: int = 5, tz: str | tzinfo = CITY_TZ) -> list[dict]:
    """Today's most reported categories (ix_cases_reported)."""
    day = _day_of(now, tz)
    start, end = period_bounds(day, day, tz)
    cnt = func.count().label("n")
    q = (select(Case.category_code, func.max(Category.name), cnt)
         .join(Category, Category.code == Case.category_code, isouter=True)
         .where(Case.reported_at >= start, Case.reported_at < end, Case.state != "merged")
         .group_by(Case.category_code).order_by(cnt.desc(), Case.category_code).limit(n))
    return [{"code": c, "name": name or c, "count": k} for c, name, k in s.execute(q)]


def nice_breaks(values, classes: int = 5) -> list[int]:
    """Class breaks for a choropleth of counts: increasing integers, the first 1 (a value v falls
    in class i when breaks[i] <= v < breaks[i+1]). Few distinct counts: one class each; many:
    the quantiles of the non-zero values, so each class holds about as many grids."""
    vals = sorted(v for v in values if v > 0)
    if not vals:
        return [1]
    distinct = sorted(set(vals))
    if len(distinct) <= classes:
        return [1] + [v for v in distinct if v > 1]
    out = [1]
    for i in range(1, classes):
        q = vals[min(len(vals) - 1, int(len(vals) * i / classes))]
        if q > out[-1]:
            out.append(int(q))
    # Quantiles tie when most grids hold one or two cases: add the next counts from below.
    for v in distinct:
        if len(out) >= classes:
            break
        if v not in out:
            out.append(v)
    return sorted(out)
