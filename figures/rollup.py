"""This month's assessment figures kept up to date from the case outbox: the wall's ranking in milliseconds."""
from __future__ import annotations

# period.period_figures sums, over every case reported, accepted, due or closed in the period, that
# case's share of each figure; for the current month that is some 50,000 cases read on every wall
# refresh. A case's shares depend only on its own columns and the period [S, E), not on `now`, so
# this module keeps them per case, with their sums per district, and re-reads only the cases that
# changed since: those with an outbox row (CaseEvent, written by every CaseService transition) newer
# than the last read, and those with an id above the last read (cases/legacy_import.py inserts cases
# without outbox rows). overdue_open depends on `now`; it is counted per call (a few ms).
#
# A full read happens on the first call, when the period changes (a new day moves E), when the
# numbers go backwards (the database was replaced), when too many cases changed, and after
# STALE_AFTER_S: changes made outside the app (a hand-edited row) are picked up by then.
import threading
import time
from collections import Counter
from datetime import datetime, tzinfo
from decimal import Context, Decimal, localcontext
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from figures import period
from data.models import Area, Case, CaseEvent
from figures.definitions import period_bounds
from dispatch.city_time import CITY_TZ

__all__ = ["MonthRollup", "month_figures", "rollup_for", "keep_warm", "STALE_AFTER_S"]

STALE_AFTER_S = 600.0
MAX_CHANGED = 5000   # more changed cases than this: one full read is cheaper than the id lookups
CHUNK = 500          # ids per IN (...) when re-reading changed cases
# PostgreSQL hands out ids and outbox seqs when a row is inserted, so a transaction that took a lower
# number can commit after one with a higher number that was already read. The last OVERLAP numbers
# are read again each time (re-reading a case is harmless). SQLite has one writer at a time: numbers
# become visible in order.
OVERLAP = {"postgresql": 500}
N_FLAGS = period.SUMS - 1  # every share but the hours is 0 or 1: one bit each of a case's mask
# Hours are summed exactly (a float or a PostgreSQL numeric is an exact Decimal; 150 digits hold any
# sum of them): taking a case out leaves no rounding behind, and on PostgreSQL the sum is the one
# SUM(numeric) gives. SQLite sums doubles in row order: the mean may differ in the last bit.
EXACT = Context(prec=150)
MAX_DATABASES = 8


def _mask_query(s: Session, S: datetime, E: datetime, by_district: bool, *where):
    """(id, k, mask, hours) of each case of the period: period.period_shares with the 0/1 shares as bits."""
    c, shares = period.period_shares(s, S, E, by_district, *where)
    mask = sum((v * (1 << i) for i, v in enumerate(shares[:N_FLAGS])), start=0)
    return select(c.id, c.k, mask, shares[N_FLAGS])


def _rows(s: Session, q, params: dict | None = None) -> list[tuple]:
    # The DBAPI rows as they come: these columns need no result processing (ints, a string, a float
    # or a Decimal), and SQLAlchemy's Row objects would add about 40 ms for a month's 40,000 cases.
    result = s.connection().execute(q, params)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


class MonthRollup:
    """One database's current month, grouped by district (or one group "*"): each case's (group, mask,
    hours) and per group how many cases have each mask, and their hours. Guarded by `lock`; the reads
    happen in the caller's session. The counters say what the refreshes did (tests, benchmarks)."""

    def __init__(self, tz: tzinfo, by_district: bool):
        self.tz, self.by_district = tz, by_district
        self.lock = threading.Lock()
        self.period: tuple[datetime, datetime] | None = None
        self.by_ids = None  # the period's select of given cases (bound parameter "ids")
        self.cases: dict[int, tuple] = {}
        self.masks: dict[str, Counter] = {}
        self.hours: dict[str, Decimal] = {}
        self.head_seq = self.max_case_id = 0
        self.seen_seqs: set[int] = set()
        self.seen_ids: set[int] = set()
        self.loaded_at = 0.0
        self.full_reads = self.delta_reads = self.cases_reread = 0

    def figures(self, s: Session, now: datetime, full: bool = False) -> dict:
        """What period.period_figures(s, first of the month, today, now, by_district, tz) returns.
        `full` reads the whole month again whatever changed (keep_warm's periodic re-read)."""
        day = now.astimezone(self.tz).date()
        S, E = period_bounds(day.replace(day=1), day, self.tz)
        with self.lock:
            try:
                if full:
                    self.period = None
                self._refresh(s, S, E)
            except BaseException:
                self.period = None  # half applied: the next call reads everything
                raise
            raw = self._sums()
        period.add_overdue_open(s, raw, S, E, now, self.by_district)
        return period.figures_from(raw, self.by_district)

    def _sums(self) -> dict:
        raw = {}
        for k, counts in self.masks.items():
            v = [0] * (period.SUMS + 2)
            for mask, n in counts.items():
                for i in range(N_FLAGS):
                    if mask >> i & 1:
                        v[i] += n
            v[N_FLAGS] = float(self.hours[k])
            raw[k if self.by_district else None] = v
        return raw

    def _refresh(self, s: Session, S: datetime, E: datetime) -> None:
        marks = period.marks(s)  # first: whatever commits after it is re-read next time
        overlap = OVERLAP.get(s.get_bind().dialect.name, 0)
        if (self.period != (S, E) or time.monotonic() - self.loaded_at > STALE_AFTER_S
                or marks.head_seq < self.head_seq or marks.max_case_id < self.max_case_id):
            self._full(s, S, E, marks, overlap)
            return
        if not overlap and (marks.head_seq, marks.max_case_id) == (self.head_seq, self.max_case_id):
            return  # nothing committed since
        # The outbox rows and the cases past the marks (less the overlap), before the cases are read.
        events, ids = self._past(s, self.head_seq - overlap, self.max_case_id - overlap)
        if len(events) > MAX_CHANGED or len(ids) > MAX_CHANGED:
            self._full(s, S, E, marks, overlap)
            return
        changed = {case_id for seq, case_id in events if seq not in self.seen_seqs}
        changed.update(i for i in ids if i not in self.seen_ids)
        ordered = sorted(changed)
        for i in range(0, len(ordered), CHUNK):
            chunk = ordered[i:i + CHUNK]
            fresh = {row[0]: row for row in _rows(s, self.by_ids, {"ids": chunk})}
            for case_id in chunk:
                old = self.cases.pop(case_id, None)
                if old is not None:
                    self._add(*old, -1)
                row = fresh.get(case_id)
                if row is not None:  # else: no longer in the period's four ranges
                    self.cases[case_id] = new = (row[1], row[2], row[3])
                    self._add(*new, 1)
        self._mark(marks, events, ids, overlap)
        self.delta_reads += 1
        self.cases_reread += len(ordered)

    @staticmethod
    def _past(s: Session, since_seq: int, since_id: int) -> tuple[list, list]:
        """(seq, case id) of the outbox rows after since_seq, and the ids of the cases after since_id
        (primary-key ranges), at most MAX_CHANGED + 1 of each."""
        conn = s.connection()
        events = conn.execute(select(CaseEvent.seq, CaseEvent.case_id).where(CaseEvent.seq > since_seq)
                              .limit(MAX_CHANGED + 1)).all()
        ids = conn.execute(select(Case.id).where(Case.id > since_id).limit(MAX_CHANGED + 1)).scalars().all()
        return events, ids

    def _mark(self, marks, events, ids, overlap: int) -> None:
        """The new marks, and which numbers of the overlap window are already read."""
        self.head_seq = max([marks.head_seq] + [seq for seq, _ in events])
        self.max_case_id = max([marks.max_case_id] + list(ids))
        self.seen_seqs = {seq for seq, _ in events if seq > self.head_seq - overlap} if overlap else set()
        self.seen_ids = {i for i in ids if i > self.max_case_id - overlap} if overlap else set()

    def _add(self, k: str, mask: int, hours, sign: int) -> None:
        counts = self.masks.get(k)
        if counts is None:
            counts = self.masks[k] = Counter()
            self.hours[k] = Decimal(0)
        counts[mask] += sign
        if counts[mask] == 0:
            del counts[mask]
        if not counts:  # the group's last case left: gone from the figures, as from period_figures'
            del self.masks[k], self.hours[k]
        elif hours:
            self.hours[k] = (EXACT.add if sign > 0 else EXACT.subtract)(self.hours[k], Decimal(hours))

    def _full(self, s: Session, S: datetime, E: datetime, marks, overlap: int) -> None:
        # The overlap window is listed before the cases are read: what commits in between is read again.
        events, ids = self._past(s, marks.head_seq - overlap, marks.max_case_id - overlap) if overlap else ([], [])
        rows = _rows(s, _mask_query(s, S, E, self.by_district))
        # built once a period: making the statement costs more than running it for a few ids
        self.by_ids = _mask_query(s, S, E, self.by_district, Case.id.in_(bindparam("ids", expanding=True)))
        # 40,000 rows for a month: counted in C (Counter, map, sum) rather than row by row in Python.
        cases = {case_id: (k, mask, h) for case_id, k, mask, h in rows}
        masks: dict[str, Counter] = {}
        for (k, mask), n in Counter((k, mask) for _, k, mask, _ in rows).items():
            masks.setdefault(k, Counter())[mask] = n
        spent: dict[str, list] = {k: [] for k in masks}
        for _, k, _, h in rows:
            if h:
                spent[k].append(h)
        with localcontext(EXACT):
            hours = {k: sum(map(Decimal, hs), Decimal(0)) for k, hs in spent.items()}
        self.cases, self.masks, self.hours = cases, masks, hours
        self.period = (S, E)
        self._mark(marks, events, ids, overlap)
        self.loaded_at = time.monotonic()
        self.full_reads += 1


_registry_lock = threading.Lock()
_rollups: dict[tuple, MonthRollup] = {}


def rollup_for(s: Session, tz: str | tzinfo = CITY_TZ, by_district: bool = True) -> MonthRollup:
    """This process's rollup of the session's database (by URL), time zone and grouping."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    key = (str(s.get_bind().url), zone, by_district)
    with _registry_lock:
        rollup = _rollups.get(key)
        if rollup is None:
            if len(_rollups) >= MAX_DATABASES:  # tests make a database each; a server has one
                del _rollups[next(iter(_rollups))]
            rollup = _rollups[key] = MonthRollup(zone, by_district)
        return rollup


def keep_warm(db, now: datetime, full_every_s: float = STALE_AFTER_S / 2, tz: str | tzinfo = CITY_TZ) -> str:
    """One round of the server's background job (scheduler.py): brings the rollup up to date, and
    reads the whole month again once it is `full_every_s` old, so that the full reads (at start, on a
    new day, the staleness net) happen here and not in a wall's request. Returns "full" or "delta"."""
    with db.session() as s:
        rollup = rollup_for(s, tz)
        before = rollup.full_reads
        age = time.monotonic() - rollup.loaded_at
        rollup.figures(s, now, full=rollup.full_reads > 0 and age > full_every_s)
        return "full" if rollup.full_reads > before else "delta"


def month_figures(s: Session, now: datetime, tz: str | tzinfo = CITY_TZ, by_district: bool = True) -> dict:
    """period.period_figures of the month of `now` up to its day (in `tz`), from the rollup."""
    return rollup_for(s, tz, by_district).figures(s, now)


def district_ranking(s: Session, now: datetime, tz: str | tzinfo = CITY_TZ) -> dict:
    """The districts ranked by this month's on-time rate (then fewer overdue, then name), with
    today's received, open and overdue; and the month's city totals."""
    day = period._day_of(now, tz)
    # period_figures(s, day.replace(day=1), day, now, by_district=True, tz=tz), kept up to date
    month = month_figures(s, now, tz=tz, by_district=True)
    today = period.district_figures(s, now, tz)
    names = dict(s.execute(select(Area.code, Area.name).where(Area.level == 2)).all())
    rows = []
    for code, name in names.items():
        k = month["groups"].get(code)
        t = today.get(code, {"received_today": 0, "open": 0, "overdue": 0})
        rows.append({"code": code, "name": name, **t,
                     "on_time_rate": k.on_time_rate if k else None,
                     "closure_rate": k.closure_rate if k else None,
                     "due": k.due if k else 0})
    rows.sort(key=lambda r: (r["on_time_rate"] is None, -(r["on_time_rate"] or 0), r["overdue"], r["code"]))
    for i, r in enumerate(rows, start=1):
        r["rank"] = i
    return {"month_start": day.replace(day=1).isoformat(), "month": month["total"].to_dict(), "districts": rows}
