"""Monthly assessment figures (GB/T 30428.4 style): 受理数, 立案数, 应结案数, 结案数, 按期结案数 and the rates.

Pure Python (standard library only), over plain rows: :class:`KpiCase`, or any object with the
same attribute names (an ORM row, a named tuple). All datetimes are timezone-aware (stored UTC).

The period
----------
``compute_kpis(cases, start, end)`` covers the days ``start`` to ``end`` **inclusive**, as wall-clock
days of ``tz`` (Asia/Shanghai by default): the period is the half-open interval

    P = [S, E)   with   S = start 00:00 (tz),   E = (end + 1 day) 00:00 (tz),

converted to UTC once. "In the period" means ``S <= t < E``; "by the end of the period" means
``t < E`` (an instant exactly at ``E`` belongs to the next period). A case reported at
2026-03-31T16:30Z (2026-04-01 00:30 in Shanghai) belongs to April.

Which cases count as accepted
-----------------------------
An *accepted case* (立案案件) is a case with ``accepted_at`` set that was neither rejected nor
merged: ``rejected_at is None``, ``merged is False`` and ``state`` not in {"rejected", "merged"}.
Every figure below except ``received`` is over accepted cases only. (In a consistent lifecycle a
rejected or merged case has no ``accepted_at`` anyway; the rule makes that explicit.)
``deadline_at`` is the deadline *as extended* (the last approved extension included).

The figures (this is the contract)
----------------------------------
received (受理数)
    cases with ``S <= reported_at < E``. All of them: rejected cases and merged duplicates count
    (they are reports).
accepted (立案数)
    accepted cases with ``S <= accepted_at < E``.
due (应结案数)
    accepted cases whose deadline falls within the period (``S <= deadline_at < E``), plus
    accepted cases closed in the period before their deadline (``S <= closed_at < E`` and
    ``closed_at < deadline_at``: early closures whose deadline is later) — a union, each case
    counted once. A case without a deadline is never due. A case closed before the period
    (early, in an earlier period) is not due again in the period its deadline falls in: it was
    due in the period it closed in, so monthly figures add up to the year's.
closed (结案数)
    due cases closed by the end of the period (``closed_at < E``; possibly before ``S``).
closed_on_time (按期结案数)
    due cases closed by the end of the period and at or before their deadline
    (``closed_at < E`` and ``closed_at <= deadline_at``).
closure_rate
    closed / due.
on_time_rate
    closed_on_time / due.
rework_rate (返工率)
    (accepted cases closed in the period with ``rework_count > 0``)
    / (accepted cases closed in the period).
extension_rate (延期率)
    (accepted cases accepted in the period with ``extension_count > 0``) / accepted.
overdue_open (超期未结)
    accepted cases with ``accepted_at < E``, not closed by the end of the period (``closed_at``
    None or ``>= E``), whose deadline is before the cut-off: ``deadline_at < min(E, now)``.
    So a period that has not finished yet counts overdue as of ``now``; ``now`` defaults to the
    current time. (Not rejected/merged: they are not accepted cases.)
mean_handling_hours
    the mean of ``closed_at - accepted_at`` in calendar hours (nights, weekends and holidays
    included; not working time) over the accepted cases closed in the period.
voided (作废数, wave 2)
    cases voided in the period (``S <= voided_at < E``). A case voided by the end of the period
    (``voided_at < E``) counts **only** here: it is not received, accepted, due, closed or overdue
    in the period. A case voided after E counts in the period as it stood.
suspended (挂账数, wave 2)
    accepted cases suspended at the end of the period: ``suspended_at < E`` and the suspension not
    lifted before E (``resumed_at`` None, or ``>= E``, or before ``suspended_at``: the row keeps the
    last suspension and the last resumption). They are left out of ``due`` (and so of ``closed`` and
    ``closed_on_time``) and of ``overdue_open``; received and accepted still count them.

Rates are fractions 0–1 (floats). A rate whose denominator is 0 is ``None`` (not 0), and so is
``mean_handling_hours`` when no case was closed in the period: the API and the CLI render it.

Grouping
--------
``compute_grouped(cases, start, end, by)`` with ``by`` in "district", "unit", "category" groups
the rows by ``district_code`` / ``unit_code`` / ``category_code`` first (one pass), then applies
the very same computation to each group. A row whose key is None (e.g. a case not routed to any
unit yet) forms the group ``None``. Counts of the groups sum to the total; rates do not.

Speed: one pass over the rows, only comparisons and one subtraction per closed case (no
per-row time-zone conversion: the period bounds are converted to UTC once). Rows whose datetimes
carry ``datetime.timezone.utc`` (as the data layer returns them) take CPython's fast path for
comparisons: about 4 million rows a second for compute_kpis and 2 million for
compute_grouped on one core (Python 3.11; 300,000 rows in ~70 ms / ~130 ms).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from operator import attrgetter
from typing import Any, Hashable, Iterable
from zoneinfo import ZoneInfo

from dispatch.city_time import CITY_TZ

__all__ = ["KpiCase", "Kpis", "KPI_FIELDS", "GROUP_BY", "period_bounds", "compute_kpis", "compute_grouped"]

UTC = timezone.utc

#: The KPI fields, in the contract's order (CONTRACT.md, "KPI fields").
KPI_FIELDS = ("received", "accepted", "due", "closed", "closed_on_time", "closure_rate",
              "on_time_rate", "rework_rate", "extension_rate", "overdue_open", "mean_handling_hours",
              "voided", "suspended")

#: ``by`` values of :func:`compute_grouped` and the attribute each one groups on.
GROUP_BY = {"district": "district_code", "unit": "unit_code", "category": "category_code"}

_NOT_ACCEPTED_STATES = frozenset({"rejected", "merged"})
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class KpiCase:
    """The facts of one case that the assessment needs. Datetimes are aware (UTC) or None."""

    id: Any
    state: str
    reported_at: datetime
    accepted_at: datetime | None = None
    rejected_at: datetime | None = None
    closed_at: datetime | None = None
    deadline_at: datetime | None = None  # as extended
    rework_count: int = 0
    extension_count: int = 0
    unit_code: str | None = None
    district_code: str | None = None
    category_code: str | None = None
    merged: bool = False
    voided_at: datetime | None = None
    suspended_at: datetime | None = None  # the last approved 挂账
    resumed_at: datetime | None = None    # the last 解挂


@dataclass(frozen=True, slots=True)
class Kpis:
    """The assessment figures of one period (and one group). See the module docstring."""

    received: int
    accepted: int
    due: int
    closed: int
    closed_on_time: int
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    extension_rate: float | None
    overdue_open: int
    mean_handling_hours: float | None
    voided: int = 0
    suspended: int = 0

    def to_dict(self) -> dict[str, int | float | None]:
        """The figures as a plain dict with the contract's keys, in the contract's order."""
        return asdict(self)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def period_bounds(start: date, end: date, tz: str | tzinfo = CITY_TZ) -> tuple[datetime, datetime]:
    """``(S, E)`` in UTC: ``start`` 00:00 and ``end`` + 1 day 00:00 in ``tz`` (end inclusive)."""
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise TypeError(f"{name} must be a datetime.date (a day), not {type(value).__name__}")
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    zone = _zone(tz)
    s = datetime.combine(start, time(0), tzinfo=zone).astimezone(UTC)
    e = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return s, e


def _cutoff(e: datetime, now: datetime | None) -> datetime:
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    else:
        now = now.astimezone(UTC)
    return now if now < e else e


def voided_by(c: Any, e: datetime) -> bool:
    """Voided by the end of the period: the case counts only in ``voided``."""
    v = getattr(c, "voided_at", None)
    return v is not None and v < e


def suspended_at_end(c: Any, e: datetime) -> bool:
    """On 挂账 at the end of the period: suspended before E and not resumed since, before E."""
    u = getattr(c, "suspended_at", None)
    if u is None or u >= e:
        return False
    r = getattr(c, "resumed_at", None)
    return r is None or r >= e or r < u


def _tally(cases: Iterable[Any], s: datetime, e: datetime, cutoff: datetime) -> Kpis:
    """One pass over the rows; the definitions of the module docstring, clause by clause."""
    received = accepted = due = closed = on_time = 0
    closed_in = reworked = extended = overdue = voided = suspended = 0
    handling = timedelta(0)
    excluded_states = _NOT_ACCEPTED_STATES
    for c in cases:
        if voided_by(c, e):
            if s <= c.voided_at:
                voided += 1
            continue  # counts only in `voided`
        r = c.reported_at
        if r is not None and s <= r < e:
            received += 1
        a = c.accepted_at
        if a is None or c.merged or c.rejected_at is not None or c.state in excluded_states:
            continue  # not an accepted case: only `received` counts it
        if s <= a < e:
            accepted += 1
            if c.extension_count > 0:
                extended += 1
        x = c.closed_at
        d = c.deadline_at
        closed_by_end = x is not None and x < e
        closed_in_period = closed_by_end and s <= x
        if closed_in_period:
            closed_in += 1
            if c.rework_count > 0:
                reworked += 1
            handling += x - a
        if a < e and suspended_at_end(c, e):
            suspended += 1
            continue  # on 挂账: neither due nor overdue
        if d is None:
            continue  # never due, never overdue
        # A case closed before the period was already due (early) in the period it closed in.
        if (s <= d < e and not (x is not None and x < s)) or (closed_in_period and x < d):
            due += 1
            if closed_by_end:
                closed += 1
                if x <= d:
                    on_time += 1
        if not closed_by_end and a < e and d < cutoff:
            overdue += 1
    return Kpis(
        received=received,
        accepted=accepted,
        due=due,
        closed=closed,
        closed_on_time=on_time,
        closure_rate=_ratio(closed, due),
        on_time_rate=_ratio(on_time, due),
        rework_rate=_ratio(reworked, closed_in),
        extension_rate=_ratio(extended, accepted),
        overdue_open=overdue,
        mean_handling_hours=(handling / _HOUR / closed_in) if closed_in else None,
        voided=voided,
        suspended=suspended,
    )


def compute_kpis(cases: Iterable[Any], start: date, end: date, tz: str | tzinfo = CITY_TZ,
                 now: datetime | None = None) -> Kpis:
    """The figures of the days ``start`` to ``end`` (inclusive, in ``tz``) over ``cases``.

    ``now`` (aware; default: the current time) is the cut-off for ``overdue_open`` when the
    period has not finished yet.
    """
    s, e = period_bounds(start, end, tz)
    return _tally(cases, s, e, _cutoff(e, now))


def _sort_key(key: Hashable) -> tuple:
    return (key is None, str(key) if key is not None else "")


def compute_grouped(cases: Iterable[Any], start: date, end: date, by: str,
                    tz: str | tzinfo = CITY_TZ, now: datetime | None = None) -> dict[Hashable, Kpis]:
    """``{key: Kpis}`` per district, unit or category (``by``), keys sorted (None last).

    The rows are grouped first (one pass), then each group goes through the same computation
    as :func:`compute_kpis`. Only groups with at least one row appear.
    """
    try:
        attr = GROUP_BY[by]
    except KeyError:
        raise ValueError(f"by must be one of {', '.join(GROUP_BY)}, not {by!r}") from None
    s, e = period_bounds(start, end, tz)
    cutoff = _cutoff(e, now)
    key_of = attrgetter(attr)
    groups: dict[Hashable, list] = defaultdict(list)
    for c in cases:
        groups[key_of(c)].append(c)
    return {k: _tally(groups[k], s, e, cutoff) for k in sorted(groups, key=_sort_key)}
