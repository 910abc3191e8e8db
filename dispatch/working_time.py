"""Working-time calendar and SLA arithmetic (工作时限) for the dispatch core.

Pure Python (standard library only). Times are stored in UTC and counted in the
calendar's timezone (Asia/Shanghai by default, through :mod:`zoneinfo`). The calendar is
always passed in: the shipped one (data/calendar/) is ``data.files.calendar()``.

Rules
-----
* **Working day**: Monday to Friday, unless it is a public holiday (放假) of
  ``data/calendar/holidays_cn.json``; a Saturday or Sunday listed there as a
  make-up working day (调休上班) *is* a working day.
* **Office time**: the periods of ``data/calendar/office_hours.json`` on a
  working day (08:30–12:00 and 13:30–17:30, so one office day = 7.5 h). Each
  period is ``[start, end)`` in wall-clock time of the calendar's timezone.
* ``"working_hours"``: only office time counts. A start outside office time
  (night, lunch break, weekend, holiday) starts counting at the next office
  period.
* ``"working_days"``: **N working days = N × the office day's length of working
  time** (N × 7.5 working hours), counted like working hours. So a case
  accepted on Monday at 10:00 with 2 working days is due on Wednesday at 10:00
  when Monday to Wednesday are working days; accepted on Saturday (or at 18:00
  on Friday) with 1 working day it is due on Monday at 17:30. Fractions are
  allowed (0.5 working day = 3.75 working hours).
* ``"minutes"``, ``"hours"``, ``"days"``: calendar time (1 day = 24 hours),
  for emergencies and for the categories on the calendar clock (urgent and
  safety categories: docs/dispatch.md): nights, weekends and holidays all count.
* **Clocks**: a unit belongs to one clock, ``"working"`` (``working_hours``,
  ``working_days``) or ``"calendar"`` (``minutes``, ``hours``, ``days``):
  :func:`clock_of`. A case's stored ``time_unit`` thus says which clock its
  deadline runs on, and an extension of N hours is counted on that clock
  (:func:`extension_unit`). This module is the one place that maps a unit to
  its arithmetic.
* A deadline is the *earliest* instant at which the allowed working time has
  elapsed: 2 working hours from 10:00 is 12:00 (not 13:30), one working day
  from 08:30 is 17:30 the same day (not 08:30 the next working day).
  ``working_deadline(start, 0, unit)`` is ``start``.
* ``working_time_between(start, end, unit)`` is the inverse: working hours
  (``"working_hours"``), working days (``"working_days"``) or calendar minutes,
  hours or days elapsed from ``start`` to ``end``; negative when ``end`` is
  before ``start``. ``working_time_between(s, working_deadline(s, x, u), u) == x``
  (to the microsecond).
* ``sla_state``: ``"overdue"`` once ``now >= deadline`` (100 % of the allowed
  time), ``"warning"`` from 80 % of the allowed time measured in working time,
  else ``"normal"``; the fraction is returned too (not capped: 1.5 = 150 %).
* Every datetime argument must be timezone-aware (any zone); a naive datetime
  raises ``ValueError``. Results are aware datetimes in UTC.
* Years that the holiday file does not list are counted as weekends-only, and a
  warning is logged once per year (no crash).

Speed: a calendar keeps, per day, whether it is a working day and a running
count of working days (prefix sums), built once per range of years. A deadline
or an elapsed time is then O(1) whatever the span (no loop over minutes or
days): a few microseconds a call.
"""
from __future__ import annotations

import json
import logging
import math
import threading
from datetime import date, datetime, time, timedelta, timezone
from numbers import Real
from pathlib import Path
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

import numpy as np

__all__ = [
    "CLOCKS",
    "UNITS",
    "clock_of",
    "extension_unit",
    "WARNING_FRACTION",
    "WorkCalendar",
    "sla_state",
    "working_deadline",
    "working_time_between",
]

log = logging.getLogger(__name__)

UTC = timezone.utc
UNITS = ("working_hours", "working_days", "minutes", "hours", "days")
CLOCKS = ("working", "calendar")
UNIT_CLOCK = {"working_hours": "working", "working_days": "working",
              "minutes": "calendar", "hours": "calendar", "days": "calendar"}
_CALENDAR_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}   # calendar units, in minutes
WARNING_FRACTION = 0.8
HOLIDAYS_FILE = "holidays_cn.json"
OFFICE_HOURS_FILE = "office_hours.json"
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_PERIODS = (("08:30", "12:00"), ("13:30", "17:30"))

_US = 1_000_000                 # microseconds per second
_HOUR_US = 3600 * _US
_DAY_US = 86400 * _US
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MIN_ORD = date(1, 1, 1).toordinal()
_MAX_ORD = date(9999, 12, 31).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORD = date(1970, 1, 1).toordinal()


# --------------------------------------------------------------------------- clocks
def clock_of(unit: str) -> str:
    """``"working"`` or ``"calendar"``: the clock a time unit counts on."""
    try:
        return UNIT_CLOCK[unit]
    except KeyError:
        raise ValueError(f"unknown time unit {unit!r}: expected one of {', '.join(UNITS)}") from None


def extension_unit(time_unit: str) -> str:
    """The unit in which the hours of an extension (延期) are counted for a case whose deadline is in
    ``time_unit``: calendar hours on the calendar clock (a manhole cover extended over a holiday is
    still a hazard every hour), working hours on the working clock."""
    return "hours" if clock_of(time_unit) == "calendar" else "working_hours"


# --------------------------------------------------------------------------- checks
def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} is a naive datetime ({value.isoformat()}): working time needs "
            "timezone-aware datetimes (store times in UTC, e.g. datetime.now(timezone.utc))"
        )
    return value


def _unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unknown time unit {unit!r}: expected one of {', '.join(UNITS)}")
    return unit


def _amount(amount) -> float:
    if type(amount) in (int, float) and 0 <= amount < math.inf:   # fast path
        return amount
    if isinstance(amount, bool) or not isinstance(amount, Real):
        raise TypeError(f"amount must be a number, got {type(amount).__name__}")
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"amount must be a finite number >= 0, got {amount!r}")
    return amount


def _parse_clock(value) -> int:
    """'08:30' / '24:00' / datetime.time -> microseconds after midnight."""
    if isinstance(value, time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * _US + value.microsecond
    text = str(value).strip()
    try:
        parts = [int(p) for p in text.split(":")]
        if not 2 <= len(parts) <= 3:
            raise ValueError
        h, m, s = (parts + [0])[:3]
    except ValueError:
        raise ValueError(f"bad clock time {value!r}: expected 'HH:MM'") from None
    if not (0 <= m < 60 and 0 <= s < 60 and (0 <= h < 24 or (h == 24 and m == s == 0))):
        raise ValueError(f"bad clock time {value!r}")
    return ((h * 60 + m) * 60 + s) * _US


def _as_date(value) -> date:
    if isinstance(value, datetime):
        raise TypeError(f"expected a date, got a datetime ({value!r})")
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _weekday(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    name = str(value).strip().lower()
    for i, full in enumerate(_WEEKDAYS):
        if name in (full, full[:3]):
            return i
    raise ValueError(f"bad weekday {value!r}: expected 0-6 (Monday=0) or a weekday name")


# --------------------------------------------------------------------------- calendar
class _Table:
    """Immutable per-day lookup for a contiguous range of years."""

    __slots__ = ("lo_year", "hi_year", "base", "flags", "cum", "wd", "offset_us")

    def __init__(self, lo_year, hi_year, base, flags, cum, wd, offset_us):
        self.lo_year = lo_year
        self.hi_year = hi_year
        self.base = base        # ordinal of lo_year-01-01
        self.flags = flags      # bytearray: 1 = working day, index = ordinal - base
        self.cum = cum          # cum[i] = working days in [base, base + i)
        self.wd = wd            # ordinals of the working days, in order; wd[cum[i]] >= base + i
        self.offset_us = offset_us  # fixed UTC offset of the zone over the table, or None


class WorkCalendar:
    """Working days and office hours of one timezone, with SLA arithmetic.

    Build it from the data files with :meth:`from_files`, from the files'
    parsed JSON with :meth:`from_data`, or directly from plain data (tests)::

        WorkCalendar(holidays=["2025-10-01"], workdays=["2025-09-28"],
                     periods=[("08:30", "12:00"), ("13:30", "17:30")], years=[2025])

    ``years`` are the years the holiday data covers (default: the years of the
    dates given); any other year is counted as weekends-only, with a warning.
    """

    def __init__(
        self,
        holidays: Iterable = (),
        workdays: Iterable = (),
        *,
        periods: Iterable = DEFAULT_PERIODS,
        timezone: str | ZoneInfo = DEFAULT_TIMEZONE,
        weekend: Iterable = (5, 6),
        years: Iterable[int] | None = None,
        names: Mapping | None = None,
        provisional_years: Iterable[int] = (),
    ):
        self.tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(str(timezone))
        self.weekend = frozenset(_weekday(w) for w in weekend)
        if len(self.weekend) == 7:
            raise ValueError("weekend cannot be the whole week")
        self.holidays = frozenset(_as_date(d) for d in holidays)
        self.workdays = frozenset(_as_date(d) for d in workdays)
        both = self.holidays & self.workdays
        if both:
            raise ValueError(
                "dates listed both as holiday and as make-up working day: "
                + ", ".join(sorted(d.isoformat() for d in both))
            )
        not_weekend = sorted(d.isoformat() for d in self.workdays if d.weekday() not in self.weekend)
        if not_weekend:
            raise ValueError(
                "make-up working days must fall on a weekend day: " + ", ".join(not_weekend)
            )
        if years is None:
            years = {d.year for d in self.holidays | self.workdays}
        self.years = frozenset(int(y) for y in years)
        self.provisional_years = frozenset(int(y) for y in provisional_years)
        self.names = {_as_date(k): str(v) for k, v in (names or {}).items()}

        spans = sorted((_parse_clock(a), _parse_clock(b)) for a, b in periods)
        if not spans:
            raise ValueError("office hours need at least one period")
        prev_end = 0
        for a, b in spans:
            if not a < b:
                raise ValueError(f"office period ends before it starts: {a // _US}s-{b // _US}s")
            if a < prev_end:
                raise ValueError("office periods overlap")
            prev_end = b
        self._spans = tuple(spans)
        self._day_us = sum(b - a for a, b in spans)      # working microseconds per office day
        self._unit_us = {"working_hours": _HOUR_US, "working_days": self._day_us}

        self._lock = threading.Lock()
        self._warned: set[int] = set()
        self._table: _Table | None = None

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_data(cls, holidays_doc: Mapping, office_hours_doc: Mapping | None = None) -> "WorkCalendar":
        """Build from the parsed JSON documents of the two data files."""
        office = office_hours_doc or {}
        tz = office.get("timezone") or holidays_doc.get("timezone") or DEFAULT_TIMEZONE
        periods = [(p["start"], p["end"]) for p in office.get("periods", [])] or DEFAULT_PERIODS
        weekend = office.get("weekend", (5, 6))
        hol, work, names = [], [], {}
        for entry in holidays_doc.get("days", []):
            d = date.fromisoformat(entry["date"])
            kind = entry.get("type")
            if kind == "holiday":
                hol.append(d)
            elif kind == "workday":
                work.append(d)
            else:
                raise ValueError(f"{entry['date']}: type must be 'holiday' or 'workday', got {kind!r}")
            if entry.get("name"):
                names[d] = entry["name"]
        meta = holidays_doc.get("years")
        years = [int(y["year"]) for y in meta] if meta else None
        provisional = [int(y["year"]) for y in (meta or []) if y.get("provisional")]
        cal = cls(hol, work, periods=periods, timezone=tz, weekend=weekend, years=years,
                  names=names, provisional_years=provisional)
        for y in sorted(cal.provisional_years):
            log.info("working-time calendar: holiday data for %d is provisional "
                     "(update %s when the State Council notice is published)", y, HOLIDAYS_FILE)
        return cal

    @classmethod
    def from_files(cls, directory: str | Path) -> "WorkCalendar":
        """Load ``holidays_cn.json`` and ``office_hours.json`` of ``directory``."""
        folder = Path(directory)
        with open(folder / HOLIDAYS_FILE, encoding="utf-8") as fh:
            holidays_doc = json.load(fh)
        office_path = folder / OFFICE_HOURS_FILE
        office_doc = None
        if office_path.exists():
            with open(office_path, encoding="utf-8") as fh:
                office_doc = json.load(fh)
        elif "office_hours" in holidays_doc:
            office_doc = holidays_doc["office_hours"]
        return cls.from_data(holidays_doc, office_doc)

    # ---------------------------------------------------------------- day table
    def _build(self, lo_year: int, hi_year: int) -> _Table:
        base = date(lo_year, 1, 1).toordinal()
        end = date(hi_year, 12, 31).toordinal()
        n = end - base + 1
        flags = bytearray(n)
        weekend = self.weekend
        first_wd = date(lo_year, 1, 1).weekday()
        for i in range(n):
            flags[i] = (first_wd + i) % 7 not in weekend
        for d in self.holidays:
            if lo_year <= d.year <= hi_year:
                flags[d.toordinal() - base] = 0
        for d in self.workdays:
            if lo_year <= d.year <= hi_year:
                flags[d.toordinal() - base] = 1
        cum = [0] * (n + 1)
        wd = []
        count = 0
        for i in range(n):
            if flags[i]:
                wd.append(base + i)
                count += 1
            cum[i + 1] = count
        missing = [y for y in range(lo_year, hi_year + 1)
                   if y not in self.years and y not in self._warned]
        if missing:
            self._warned.update(missing)
            span = str(missing[0]) if len(missing) == 1 else f"{missing[0]}-{missing[-1]}"
            log.warning(
                "working-time calendar: no holiday data for %s, counting weekends only "
                "(add the year to data/calendar/%s)", span, HOLIDAYS_FILE)
        return _Table(lo_year, hi_year, base, flags, cum, wd, self._fixed_offset(base, end + 1))

    def _fixed_offset(self, first_ord: int, last_ord: int) -> int | None:
        """The zone's UTC offset in microseconds if it is the same at every local
        midnight from first_ord to last_ord (Asia/Shanghai since 1991), else None."""
        tz = self.tz
        off = None
        for o in range(first_ord, min(last_ord, _MAX_ORD) + 1):
            d = date.fromordinal(o)
            cur = tz.utcoffset(datetime(d.year, d.month, d.day))
            if off is None:
                off = cur
            elif cur != off:
                return None
        return off // timedelta(microseconds=1)

    def _cover(self, lo_ord: int, hi_ord: int | None = None, min_wd: int | None = None) -> _Table:
        """A table covering the ordinals [lo_ord, hi_ord] and (optionally) at least
        ``min_wd + 1`` working days. Rebuilt only when the range grows."""
        tab = self._table
        hi_ord = lo_ord if hi_ord is None else hi_ord
        if (tab is not None and tab.base <= lo_ord and hi_ord < tab.base + len(tab.flags)
                and (min_wd is None or min_wd < len(tab.wd))):
            return tab
        if lo_ord < _MIN_ORD or hi_ord > _MAX_ORD:
            raise ValueError("date out of the supported range (years 1-9999)")
        with self._lock:
            tab = self._table
            if tab is None:
                years = sorted(self.years) or [date.fromordinal(lo_ord).year]
                lo_y, hi_y = years[0], years[-1]
            else:
                lo_y, hi_y = tab.lo_year, tab.hi_year
            lo_y = min(lo_y, date.fromordinal(lo_ord).year)
            hi_y = max(hi_y, date.fromordinal(hi_ord).year)
            while True:
                if tab is None or tab.lo_year != lo_y or tab.hi_year != hi_y:
                    tab = self._build(lo_y, hi_y)
                if min_wd is None or min_wd < len(tab.wd):
                    break
                # need more working days: grow forward by the years still missing
                missing = min_wd + 1 - len(tab.wd)
                grow = max(1, missing // 250 + 1)
                if hi_y + grow > 9999:
                    if hi_y == 9999:
                        raise ValueError("deadline beyond the supported range (year 9999)")
                    grow = 9999 - hi_y
                hi_y += grow
            self._table = tab
            return tab

    # ---------------------------------------------------------------- positions
    def _local(self, instant: datetime) -> tuple[int, int]:
        """aware datetime -> (local date ordinal, microseconds after local midnight)."""
        loc = instant.astimezone(self.tz)
        return loc.toordinal(), ((loc.hour * 60 + loc.minute) * 60 + loc.second) * _US + loc.microsecond

    def _in_day(self, sod: int) -> int:
        acc = 0
        for a, b in self._spans:
            if sod <= a:
                break
            if sod < b:
                return acc + sod - a
            acc += b - a
        return acc

    def _pos(self, tab: _Table, ordinal: int, sod: int) -> int:
        """Working microseconds from tab.base 00:00 to the given local instant."""
        i = ordinal - tab.base
        p = tab.cum[i] * self._day_us
        if tab.flags[i]:
            p += self._in_day(sod)
        return p

    def _instant(self, tab: _Table, target: int) -> datetime:
        """Earliest instant whose position is ``target`` (> 0), as aware UTC."""
        k, r = divmod(target, self._day_us)
        if r == 0:
            k -= 1
            r = self._day_us
        if k >= len(tab.wd):
            tab = self._cover(tab.base, min_wd=k)
        ordinal = tab.wd[k]
        for a, b in self._spans:
            length = b - a
            if r <= length:
                sod = a + r
                break
            r -= length
        if tab.offset_us is not None:      # fast path: no DST or offset change in range
            return _EPOCH + timedelta(microseconds=(ordinal - _EPOCH_ORD) * _DAY_US + sod - tab.offset_us)
        d = date.fromordinal(ordinal)
        # wall-clock time in the zone (fold=0 on an ambiguous or skipped DST hour)
        local = datetime(d.year, d.month, d.day, tzinfo=self.tz) + timedelta(microseconds=sod)
        return local.astimezone(UTC)

    # ---------------------------------------------------------------- public: days
    @property
    def office_day_hours(self) -> float:
        """Working hours in one office day (7.5 for 08:30-12:00 + 13:30-17:30)."""
        return self._day_us / _HOUR_US

    @property
    def periods(self) -> tuple[tuple[time, time], ...]:
        """The office periods as wall-clock (start, end) pairs."""
        def clock(us):
            s = us // _US
            return time(23, 59, 59, 999999) if s >= 86400 else time(s // 3600, s // 60 % 60, s % 60)
        return tuple((clock(a), clock(b)) for a, b in self._spans)

    def _to_local_date(self, day) -> date:
        if isinstance(day, datetime):
            return _aware(day, "day").astimezone(self.tz).date()
        if isinstance(day, date):
            return day
        return date.fromisoformat(str(day))

    def is_working_day(self, day) -> bool:
        """True on working days. ``day`` is a date (local calendar day), an ISO
        date string, or an aware datetime (its local date in the calendar's zone)."""
        d = self._to_local_date(day)
        ordinal = d.toordinal()
        tab = self._cover(ordinal)
        return bool(tab.flags[ordinal - tab.base])

    def holiday_name(self, day) -> str | None:
        """The festival name (元旦, 春节, …) of a holiday or make-up working day, else None."""
        return self.names.get(self._to_local_date(day))

    def working_periods(self, day) -> list[tuple[datetime, datetime]]:
        """Office periods of that local day as aware datetimes in the calendar's
        timezone; empty on non-working days."""
        d = self._to_local_date(day)
        if not self.is_working_day(d):
            return []
        midnight = datetime(d.year, d.month, d.day, tzinfo=self.tz)
        return [(midnight + timedelta(microseconds=a), midnight + timedelta(microseconds=b))
                for a, b in self._spans]

    def is_working_time(self, instant: datetime) -> bool:
        """True when ``instant`` (aware) falls inside an office period of a working day."""
        ordinal, sod = self._local(_aware(instant, "instant"))
        tab = self._cover(ordinal)
        if not tab.flags[ordinal - tab.base]:
            return False
        return any(a <= sod < b for a, b in self._spans)

    # ---------------------------------------------------------------- public: SLA
    def working_deadline(self, start_utc: datetime, amount, unit: str) -> datetime:
        """Deadline (aware UTC) of ``amount`` ``unit`` counted from ``start_utc``."""
        _aware(start_utc, "start_utc")
        _amount(amount)
        per = _CALENDAR_MINUTES.get(unit)
        if per is not None:
            return start_utc.astimezone(UTC) + timedelta(minutes=amount * per)
        step = self._unit_us.get(unit)
        if step is None:
            _unit(unit)
        amount_us = round(amount * step)
        if amount_us == 0:
            return start_utc.astimezone(UTC)
        ordinal, sod = self._local(start_utc)
        tab = self._cover(ordinal)
        return self._instant(tab, self._pos(tab, ordinal, sod) + amount_us)

    def ends_within(self, starts, ends, amount, unit: str) -> list[bool]:
        """For each pair of aware datetimes (start, end): ``end <= working_deadline(start, amount, unit)``, for
        many pairs at once (see ends_within_us)."""
        starts, ends = list(starts), list(ends)
        if len(starts) != len(ends):
            raise ValueError("starts and ends differ in length")
        one = timedelta(microseconds=1)
        s_us = np.fromiter(((_aware(x, "start") - _EPOCH) // one for x in starts), np.int64, len(starts))
        e_us = np.fromiter(((_aware(x, "end") - _EPOCH) // one for x in ends), np.int64, len(ends))
        return self.ends_within_us(s_us, e_us, amount, unit)

    def ends_within_us(self, s_us, e_us, amount, unit: str) -> list[bool]:
        """ends_within over UTC instants given as integer microseconds since 1970 (numpy arrays): the month's
        assessment times hundreds of thousands of acts. Each instant's working position (working microseconds
        since the table's first day) is read off the day table with numpy; an end exactly at its deadline's
        position (in the off-hours right after it, or at it) is settled by working_deadline itself."""
        s_us, e_us = np.asarray(s_us, dtype=np.int64), np.asarray(e_us, dtype=np.int64)
        if s_us.shape != e_us.shape:
            raise ValueError("starts and ends differ in length")
        if s_us.size == 0:
            return []
        _amount(amount)

        def instant(us) -> datetime:
            return _EPOCH + timedelta(microseconds=int(us))

        per = _CALENDAR_MINUTES.get(unit)
        if per is not None:
            return (e_us <= s_us + round(amount * per * 60 * _US)).tolist()
        if unit not in self._unit_us:
            _unit(unit)
        lo = min(int(s_us.min()), int(e_us.min())) // _DAY_US + _EPOCH_ORD - 1
        hi = max(int(s_us.max()), int(e_us.max())) // _DAY_US + _EPOCH_ORD + 1
        tab = self._cover(lo, hi)
        if tab.offset_us is None:  # a zone with DST in range: one pair at a time
            return [instant(e) <= self.working_deadline(instant(s), amount, unit) for s, e in zip(s_us, e_us)]
        cum = np.asarray(tab.cum, dtype=np.int64)
        flags = np.frombuffer(bytes(tab.flags), dtype=np.uint8).astype(np.int64)

        def position(us):
            local = us + tab.offset_us
            i = local // _DAY_US + _EPOCH_ORD - tab.base
            sod = local % _DAY_US
            in_day = sum(np.clip(sod - a, 0, b - a) for a, b in self._spans)
            return cum[i] * self._day_us + flags[i] * in_day

        target = position(s_us) + round(amount * self._unit_us[unit])
        end = position(e_us)
        out = (end < target).tolist()
        for k in np.flatnonzero(end == target).tolist():
            out[k] = instant(e_us[k]) <= self.working_deadline(instant(s_us[k]), amount, unit)
        return out

    def working_time_between(self, start_utc: datetime, end_utc: datetime, unit: str) -> float:
        """Working hours / working days / calendar minutes (per ``unit``) elapsed
        from ``start_utc`` to ``end_utc``; negative if ``end_utc`` is earlier."""
        _aware(start_utc, "start_utc")
        _aware(end_utc, "end_utc")
        per = _CALENDAR_MINUTES.get(unit)
        if per is not None:
            return (end_utc - start_utc) / timedelta(minutes=per)
        step = self._unit_us.get(unit)
        if step is None:
            _unit(unit)
        o1, s1 = self._local(start_utc)
        o2, s2 = self._local(end_utc)
        tab = self._cover(min(o1, o2), max(o1, o2))
        return (self._pos(tab, o2, s2) - self._pos(tab, o1, s1)) / step

    def sla_state(self, start_utc: datetime, deadline_utc: datetime, now_utc: datetime,
                  unit: str, warning_fraction: float = WARNING_FRACTION) -> tuple[str, float]:
        """("normal" | "warning" | "overdue", fraction of the allowed time elapsed).

        The fraction is measured in ``unit`` (working time for working units):
        elapsed(start, now) / allowed(start, deadline), floored at 0, not capped.
        "overdue" once ``now >= deadline``; "warning" from ``warning_fraction`` (80 %).
        """
        _aware(deadline_utc, "deadline_utc")
        _aware(now_utc, "now_utc")
        allowed = self.working_time_between(start_utc, deadline_utc, unit)
        elapsed = max(0.0, self.working_time_between(start_utc, now_utc, unit))
        if allowed > 0:
            fraction = elapsed / allowed
        else:
            fraction = 1.0 if now_utc >= deadline_utc else 0.0
        if now_utc >= deadline_utc:
            return "overdue", max(fraction, 1.0)
        if fraction >= warning_fraction:
            return "warning", fraction
        return "normal", fraction


# --------------------------------------------------------------------------- module API
def working_deadline(start_utc: datetime, amount, unit: str, *, calendar: WorkCalendar) -> datetime:
    """Deadline (aware UTC) of ``amount`` ``unit`` ("working_hours", "working_days",
    "minutes", "hours", "days") from ``start_utc``, on ``calendar``."""
    return calendar.working_deadline(start_utc, amount, unit)


def working_time_between(start_utc: datetime, end_utc: datetime, unit: str, *,
                         calendar: WorkCalendar) -> float:
    """Elapsed working hours / working days / calendar minutes from start to end, on ``calendar``."""
    return calendar.working_time_between(start_utc, end_utc, unit)


def sla_state(start_utc: datetime, deadline_utc: datetime, now_utc: datetime, unit: str, *,
              calendar: WorkCalendar,
              warning_fraction: float = WARNING_FRACTION) -> tuple[str, float]:
    """("normal" | "warning" | "overdue", fraction elapsed): warning at 80 %, overdue at 100 %."""
    return calendar.sla_state(start_utc, deadline_utc, now_utc, unit, warning_fraction=warning_fraction)
