"""Demo history: N days of realistic cases ending now, each case's life made in memory and written in bulk.

`flask --app app backfill --days N` and `python app.py` (UCC_SEED_HISTORY) call :func:`backfill`.
Going through CaseService.intake and act one transition at a time takes 70–110 minutes for 90 days on
this kind of machine (bench/bench_backfill.py); here every case is made with the pure core and the rows
are written in a few big transactions.

What a day is made of
---------------------
* Volume: ``data/demo_history.json`` (reports a working day, weekday factors, weekends, public
  holidays and make-up working days from the working-time calendar, fewer patrol reports on days
  off), spread over the day by demo/simulator.py's hourly rhythm (a Poisson process, as the live
  simulator's arrivals).
* Each report is the live simulator's (:meth:`Simulator.report`: category mix, position by
  population, source, description, phone, about 3 % repeats), located in the real grids (the
  locator in bulk), routed with :func:`dispatch.routing.route_case`, its deadline on the
  category's clock (working time on the calendar, or calendar time: as intake counts it), and deduplicated as intake does (same category, within the service's
  metres and hours, into a case still open then: the report becomes a ``merged`` row).
* Its life follows the rules and delays of :meth:`Simulator.next_steps` (the command center round
  the clock in calendar minutes; units and on-site checkers in office hours, emergencies and the
  calendar-clock categories in calendar minutes; returns, extensions and their approval, rework,
  late resolutions, leaders' supervision of overdue cases) plus what a running server adds: the scheduler's escalation of a
  case still in hand a minute after its deadline. ``outcomes`` in the data file adds a few cases
  that stay open for weeks (``stuck``) and a few suspended ones (挂账), so months close at 97–99 %.
  Steps after ``now`` are not taken: the case is written as it stands now.
* Rows are the ones intake and act write: the case row (states and stamps as
  :func:`dispatch.lifecycle.plan_transition` sets them, version = its audit rows), one
  ``case_history`` row per transition (actors as the live runner's people: ``sim:duty_officer``,
  ``sim:unit:<unit>``, ``sim:grid:<grid>``, ``sim:leader``, ``system:scheduler``; notes and
  details as the service writes them) and one ``case_events`` outbox row per history row. A write
  holds whole days (about CHUNK_CASES cases) with every row of their cases; within it the outbox rows
  are in time order, so ``seq`` grows with time. The rows are made with the ids the database is
  expected to give next and renumbered in the write's transaction if intake took those meanwhile.
* With two cores the cases are made in a forked process while this one writes the previous chunk.

Idempotent
----------
The idempotency key of a made case is ``sim-history-<seed>-<yyyymmdd>-<n>``: the n-th report of
that local day for that seed. Days are drawn whole from their own seed and each case's life from its
own, and only the reports inside the missing time are kept: a case is the same whenever it is made
(up to ``now`` and the merges). What is covered is kept in ``meta`` (key ``demo_history``: the
filled intervals, updated in each write's transaction). A run fills the window [now − N days, now)
minus the filled intervals minus the spans the live simulator ran in (its ``sim-`` cases, reports
less than an hour apart): a second run adds nothing, a run the next day fills the time since the last
one, or since the live simulator stopped. The keys start with the live runner's ``sim-``: a server's
simulator (demo/runner.py) picks up the open ones and carries them on, as after its own restart.

Not modelled: merges across the boundary of two writes (about a week apart) and into cases that
were in the database before the run; there the report becomes a case of its own.
"""
from __future__ import annotations

import bisect
import gc
import json
import math
import multiprocessing
import os
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from sqlalchemy import select

from cases.service import CLOSED_FOR_DEDUPE, SOURCE_LABELS, CaseService, haversine_m
from data.models import Case, Meta
from data.models import Unit as UnitRow
from demo.runner import SIM_KEY_PREFIX
from demo.simulator import (EXTENSION_REASONS, REDISPATCH_NOTES, REJECT_REASONS, RETURN_REASONS,
                            REWORK_REASONS, SUPERVISE_NOTES, Simulator)
from dispatch.routing import find_exception, route_case
from dispatch.working_time import WorkCalendar, clock_of, extension_unit

__all__ = ["DEFAULT_SEED", "HISTORY_KEY_PREFIX", "MARKER_KEY", "BackfillReport", "HistoryProfile",
           "OfficeTime", "backfill", "first_run_history", "load_profile", "missing_intervals"]

PROFILE_PATH = Path(__file__).resolve().parent.parent / "data" / "demo_history.json"
HISTORY_KEY_PREFIX = SIM_KEY_PREFIX + "history-"  # the live runner's prefix: it carries the open ones on
MARKER_KEY = "demo_history"       # meta row: the intervals filled so far
DEFAULT_SEED = 2026
# A live simulator's reports closer than this belong to one run of it (its slowest hour, at night,
# still brings a report every ten minutes or so); a run is taken to have started up to LIVE_LEAD_US
# before its first report (a server starts its simulator right after filling the history).
LIVE_GAP_US = 3600 * 1_000_000
LIVE_LEAD_US = 15 * 60 * 1_000_000
# Cases per write transaction (whole days): a few seconds of SQLite's write lock each.
CHUNK_CASES = 15000

US = 1_000_000
MIN_US = 60 * US
HOUR_US = 3600 * US
CALENDAR_US = {"minutes": MIN_US, "hours": HOUR_US, "days": 24 * HOUR_US}  # the calendar clock's units
DAY_US = 86400 * US
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UTC = timezone.utc
FAR = 1 << 62                     # "never" (beyond every table)

IN_HAND = frozenset(("accepted", "dispatched", "signed", "returned", "rework"))
STAMPS = {"accepted": 3, "rejected": 4, "dispatched": 5, "resolved": 6, "closed": 7}   # slots of _rows' stamps

OFFICER, LEADER, SYSTEM = "sim:duty_officer", "sim:leader", "system:scheduler"
SUSPEND_NOTES = ("涉及权属争议，需多部门协调，暂时挂账", "需纳入年度改造计划统一实施，暂时挂账",
                 "当事人失联，待进一步核实，暂时挂账")
NO_UNIT_NOTE = "无对应处置单位，挂账待协调"     # demo/runner.py's, when no unit can take a case
ESCALATE_NOTE = "超过处置时限，系统自动升级"     # CaseService.escalate_overdue's


_EPOCH_ORD = EPOCH.toordinal()


def _us(dt: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (UTC); field arithmetic, several times
    faster than dividing timedeltas."""
    off = dt.utcoffset()
    return ((dt.toordinal() - _EPOCH_ORD) * DAY_US + ((dt.hour * 60 + dt.minute) * 60 + dt.second) * US
            + dt.microsecond - (off.days * DAY_US + off.seconds * US + off.microseconds))


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


# ---- the profile (data/demo_history.json) -------------------------------------------------------------
@dataclass(frozen=True)
class HistoryProfile:
    """Volumes and outcome shares of the demo history (the data file, read once)."""

    reports_per_working_day: float
    weekday_factors: tuple[float, ...]
    weekend_factor: float
    holiday_factor: float
    off_day_patrol_kept: float
    outcomes: dict
    targets: dict

    def day_volume(self, day: date, calendar: WorkCalendar) -> float:
        """Reports expected on the local day ``day`` (before the hourly rhythm)."""
        base = self.reports_per_working_day
        if calendar.is_working_day(day):
            return base * self.weekday_factors[day.weekday()]
        return base * (self.holiday_factor if day in calendar.holidays else self.weekend_factor)

    def live_rate_per_minute(self, at: datetime, calendar: WorkCalendar) -> float:
        """The live simulator's daily-average rate for the day of ``at`` (reports a minute): the same
        volume as the history, so that today compares fairly with the usual day on the wall."""
        return self.day_volume(at.astimezone(calendar.tz).date(), calendar) / 1440.0


_PROFILE: HistoryProfile | None = None


def load_profile(path: str | Path | None = None) -> HistoryProfile:
    """The profile of ``path`` (default: data/demo_history.json, cached)."""
    global _PROFILE
    if path is None and _PROFILE is not None:
        return _PROFILE
    with open(path or PROFILE_PATH, encoding="utf-8") as fh:
        doc = json.load(fh)
    factors = doc["weekday_factors"]["values"]
    if len(factors) != 7:
        raise ValueError("weekday_factors: 7 values (Monday … Sunday) expected")
    profile = HistoryProfile(
        reports_per_working_day=float(doc["reports_per_working_day"]), weekday_factors=tuple(factors),
        weekend_factor=float(doc["weekend_factor"]), holiday_factor=float(doc["holiday_factor"]),
        off_day_patrol_kept=float(doc["off_day_patrol_kept"]["value"]),
        outcomes={k: v for k, v in doc["outcomes"].items() if not k.startswith("_")},
        targets={k: tuple(v) for k, v in doc["targets"].items() if not k.startswith("_")})
    if path is None:
        _PROFILE = profile
    return profile


# ---- working time on integers ------------------------------------------------------------------------
class OfficeTime:
    """The office time of a :class:`WorkCalendar` over a span of days, on integer microseconds since the
    epoch: every office period of the span (``WorkCalendar.working_periods``) and the working time
    before each, so that a deadline or a working duration is a bisect instead of datetime arithmetic
    (tests check it against ``working_deadline`` and ``working_time_between`` to the microsecond).
    Instants before the span count as its start; results beyond its end are :data:`FAR`."""

    def __init__(self, calendar: WorkCalendar, first: date, last: date):
        starts, ends, before, after = [], [], [], []
        acc = 0
        day = first
        while day <= last:
            for a, b in calendar.working_periods(day):
                s, e = _us(a), _us(b)
                starts.append(s)
                ends.append(e)
                before.append(acc)
                acc += e - s
                after.append(acc)
            day += timedelta(days=1)
        if not starts:
            raise ValueError("no office time in the span")
        self.starts, self.ends, self.before, self.after = starts, ends, before, after
        self.day_us = round(calendar.office_day_hours * HOUR_US)

    def pos(self, t: int) -> int:
        """Working microseconds from the start of the span to ``t``."""
        k = bisect.bisect_right(self.starts, t) - 1
        if k < 0:
            return 0
        e = self.ends[k]
        return self.before[k] + ((t if t < e else e) - self.starts[k])

    def at(self, p: int) -> int:
        """The earliest instant whose position is ``p`` (> 0)."""
        k = bisect.bisect_left(self.after, p)
        if k >= len(self.after):
            return FAR
        return self.starts[k] + (p - self.before[k])

    def add(self, t: int, amount: int) -> int:
        """``working_deadline(t, amount)``: ``amount`` working microseconds after ``t``."""
        if amount <= 0:
            return t
        if t >= FAR:
            return FAR
        return self.at(self.pos(t) + amount)

    def between(self, a: int, b: int) -> int:
        """``working_time_between(a, b)`` in microseconds."""
        return self.pos(b) - self.pos(a)

    def is_working(self, t: int) -> bool:
        k = bisect.bisect_right(self.starts, t) - 1
        return k >= 0 and t < self.ends[k]

    def in_office(self, t: int) -> int:
        """The first working instant at or after ``t`` (demo/simulator.py's ``_in_office``: one working
        second after ``t`` when ``t`` is outside office time)."""
        return t if self.is_working(t) else self.add(t, US)

    def deadline(self, t: int, amount: float, unit: str) -> int:
        """``WorkCalendar.working_deadline(t, amount, unit)``: the unit's clock (working_time.clock_of)
        chooses calendar or office time, as it does for a live case."""
        if clock_of(unit) == "calendar":
            return t + round(amount * CALENDAR_US[unit])
        return self.add(t, round(amount * (HOUR_US if unit == "working_hours" else self.day_us)))


# ---- made cases --------------------------------------------------------------------------------------
class _Case:
    """One report and its life until now. ``moves``: (at, action, to_state, role, note, details, extra)
    in time order (role: who acts, resolved to an actor when written); ``merges``: (at, dup) of the
    later reports merged into it."""

    __slots__ = ("key", "source", "description", "lon", "lat", "gi", "grid", "district", "category", "severity",
                 "phone", "occurred", "reported", "unit", "assists", "level", "reason", "upward", "deadline", "moves",
                 "merged_into", "merges", "id")

    def __init__(self):
        self.moves: list = []
        self.merges: list = []
        self.merged_into: _Case | None = None
        self.id = 0
        self.unit = self.assists = self.level = self.reason = self.upward = self.deadline = None

    def state_at(self, t: int) -> str:
        state = "reported"
        for m in self.moves:
            if m[0] > t:
                break
            state = m[2]
        return state


@dataclass
class BackfillReport:
    """What a run did: ``intervals`` filled ([start, end) aware UTC), ``cases`` written (``merged`` of
    them duplicates), ``rows`` of history (= outbox rows), ``by_state`` at the end, wall ``seconds``."""

    days: int
    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)
    cases: int = 0
    merged: int = 0
    rows: int = 0
    by_state: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    writes: int = 0
    parallel: bool = False  # made in a forked process while this one wrote

    @property
    def hours_filled(self) -> float:
        return sum((b - a).total_seconds() for a, b in self.intervals) / 3600.0

    def summary(self) -> str:
        if not self.cases:
            return f"最近 {self.days} 天的演示历史已齐全，未新增案件（用时 {self.seconds:.1f} 秒）"
        from dispatch.lifecycle import STATE_LABELS

        states = "，".join(f"{STATE_LABELS.get(k, k)} {v:,}" for k, v in self.by_state.most_common())
        return (f"已补录 {self.hours_filled / 24:.1f} 天的演示历史：{self.cases:,} 件案件（{states}），"
                f"{self.rows:,} 条流转记录，用时 {self.seconds:.1f} 秒")


# ---- what is missing ---------------------------------------------------------------------------------
def _subtract(spans: list[tuple[int, int]], cut: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    for c0, c1 in cut:
        out = []
        for a, b in spans:
            if c1 <= a or c0 >= b:
                out.append((a, b))
                continue
            if a < c0:
                out.append((a, c0))
            if c1 < b:
                out.append((c1, b))
        spans = out
    return spans


def _union(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _parse_marker(value: str | None) -> list[tuple[int, int]]:
    if not value:
        return []
    doc = json.loads(value)
    return [(_us(datetime.fromisoformat(a)), _us(datetime.fromisoformat(b))) for a, b in doc.get("intervals", [])]


def _marker_value(spans: list[tuple[int, int]]) -> str:
    return json.dumps({"intervals": [[_dt(a).isoformat(), _dt(b).isoformat()] for a, b in _union(spans)]})


def missing_intervals(service: CaseService, days: float, now: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [now − days, now) that neither an earlier backfill (the ``meta`` marker) nor a live
    simulator (its ``sim-`` cases, reports less than an hour apart) has filled."""
    end = _us(now)
    start = end - round(days * DAY_US)
    with service.db.session() as s:
        filled = _parse_marker(s.scalar(select(Meta.value).where(Meta.key == MARKER_KEY)))
        gaps = _subtract([(start, end)], filled)
        live: list[tuple[int, int]] = []
        for a, b in gaps:
            run: list[int] | None = None
            for (at,) in s.execute(select(Case.reported_at).where(
                    Case.reported_at >= _dt(a), Case.reported_at < _dt(b),
                    Case.idempotency_key.like(SIM_KEY_PREFIX + "%"),
                    ~Case.idempotency_key.like(HISTORY_KEY_PREFIX + "%")).order_by(Case.reported_at)):
                t = _us(at)
                if run is not None and t - run[1] < LIVE_GAP_US:
                    run[1] = t
                else:
                    if run is not None:
                        live.append((run[0] - LIVE_LEAD_US, run[1] + 1))
                    run = [t, t]
            if run is not None:
                live.append((run[0] - LIVE_LEAD_US, run[1] + 1))
    gaps = [(a, b) for a, b in _subtract(gaps, live) if b - a >= US]  # slivers under a second: nothing to add
    return [(_dt(a), _dt(b)) for a, b in gaps]


# ---- the generator -----------------------------------------------------------------------------------
class _Maker:
    """Makes the cases of given local days inside given intervals (pure: no database)."""

    def __init__(self, service: CaseService, profile: HistoryProfile, seed: int, now: int, first_day: date,
                 volume: float):
        self.service, self.profile, self.seed, self.now, self.volume = service, profile, seed, now, volume
        self.calendar = service.calendar
        self.tz = self.calendar.tz
        self.catalog = service.catalog()
        records = service.areas.records()
        self.locator = service.areas.locator()
        if self.locator is None or not self.catalog:
            raise ValueError("数据库中还没有城市网格或事件目录，请先运行 seed-demo 或 import-grid")
        self.sim = Simulator(self.catalog, records, seed=seed, key_prefix=None, calendar=self.calendar)
        self.chains = self.locator.chains
        g = self.locator.grids[0].geometry.representative_point()
        self.locator.locate_many([g.x], [g.y])  # builds the bulk raster here, before any fork
        self.grid_codes = [g.code for g in self.locator.grids]
        self.districts = [next((a.code for a in ch if a.level == 2), ch[-1].code) for ch in self.chains]
        # dispatch/routing.py's way of naming where a case is (district down to grid)
        self.places = ["".join(a.name for a in reversed(ch) if a.level >= 2) for ch in self.chains]
        self.unit_index, self.unit_types = service._routing_refs()
        self.exceptions = service._route_exceptions  # routing exceptions by area, as intake applies them
        # the codes an exception may touch: only their cases pay for looking one up
        self._excepted = {e.category for e in self.exceptions}
        self.routes: dict = {}
        self.escalations: dict = {}
        self.fallbacks: dict = {}
        self._units_by_area: dict[str, list] = defaultdict(list)  # read now: a forked maker uses no database
        with service.db.session() as s:
            for code, unit_type, level, area in s.execute(select(
                    UnitRow.code, UnitRow.unit_type, UnitRow.level, UnitRow.area_code).where(UnitRow.active.is_(True))):
                self._units_by_area[area].append((code, unit_type, level))
        # Deadlines lie at most some 20 days ahead (10 working days and an extension); steps planned
        # beyond the span are after now anyway (FAR).
        last = (_dt(now) + timedelta(days=60)).astimezone(self.tz).date()
        self.ot = OfficeTime(self.calendar, first_day - timedelta(days=3), last)
        off = self.tz.utcoffset(datetime(first_day.year, first_day.month, first_day.day))
        self.offset_us = off // timedelta(microseconds=1)
        o = profile.outcomes
        self.p_reject, self.p_return, self.p_late = o["reject"], o["return"], o["late"]
        self.p_stuck, self.stuck_days = o["stuck"], tuple(o["stuck_working_days"])
        self.p_suspend, self.p_rework, self.p_extend = o["suspend"], o["rework"], o["extend"]
        self.ext_hours = tuple(float(h) for h in o["extension_hours"])
        self.p_supervise = o["supervise_overdue"]
        self.esc_round = int(o["escalation_round_seconds"] * US)
        self.dedupe_m, self.dedupe_hours = service.dedupe_meters, service.dedupe_hours
        self.dedupe_us = round(service.dedupe_hours * HOUR_US)
        self.cell = 1.1 * self.dedupe_m / 111_320.0
        self.cos_ref = math.cos(math.radians(self.locator.grids[0].geometry.centroid.y))
        self.open_index: dict = defaultdict(list)   # (category, cell y, cell x) -> [_Case]
        self.patrol_share = self.sim.source_share("patrol")
        self.closing_notes = {code: ("已按结案标准处置完毕：" + c.closing_criterion) if c.closing_criterion
                              else "已安排人员到场处置完毕，现场照片已上传" for code, c in self.catalog.items()}

    # -- volume ------------------------------------------------------------------------------------
    def _local_midnight(self, day: date) -> int:
        return _us(datetime(day.year, day.month, day.day, tzinfo=self.tz))

    # -- one day -----------------------------------------------------------------------------------
    def day(self, day: date, spans: list[tuple[int, int]]) -> list[_Case]:
        """The cases of the local day ``day`` reported inside ``spans`` (the day is drawn whole from its
        own seed, so the kept reports are the same whatever the spans)."""
        t0, t1 = self._local_midnight(day), self._local_midnight(day + timedelta(days=1))
        volume = self.profile.day_volume(day, self.calendar) * self.volume
        working = self.calendar.is_working_day(day)
        keep_patrol = 1.0 if working else self.profile.off_day_patrol_kept
        if not working:  # thinning patrol reports must not thin the day: draw more, keep the total
            volume /= 1.0 - self.patrol_share * (1.0 - keep_patrol)
        sim = self.sim
        sim.reseed(f"{self.seed}|{day.isoformat()}")
        life_rng = random.Random(f"{self.seed}|{day.isoformat()}|life")
        arrivals = sim.arrivals(_dt(t0), _dt(t1), volume / 1440.0)
        stamp = day.strftime("%Y%m%d")
        made: list[tuple[int, dict, str, int]] = []
        for n, at in enumerate(arrivals):
            payload = sim.report(at)
            keep = life_rng.random()  # drawn for every report: the day's draws do not depend on the spans
            if payload["source"] == "patrol" and keep >= keep_patrol:
                continue
            t = _us(at)
            if not any(a <= t < b for a, b in spans):
                continue
            made.append((t, payload, f"{HISTORY_KEY_PREFIX}{self.seed}-{stamp}-{n:05d}", n))
        if not made:
            return []
        grid_idx = self.locator.locate_many(np.array([m[1]["lon"] for m in made]), np.array([m[1]["lat"] for m in made]))
        out = []
        rng = random.Random()
        base = (self.seed * 100_000_000 + int(stamp)) * 100_000
        for (t, payload, key, n), gi in zip(made, grid_idx.tolist()):
            if gi < 0:
                continue  # outside every grid: intake refuses it (422), the live runner counts it refused
            c = self._case(t, payload, key, gi)
            target = self._duplicate_of(c)
            if target is not None:
                c.merged_into = target
                target.merges.append((t, c))
            else:
                self._route(c)
                rng.seed(base + n)  # each case's own draws: its life does not depend on the window either
                self._live(c, rng)
                self._remember(c)
            out.append(c)
        return out

    def _case(self, t: int, payload: dict, key: str, gi: int) -> _Case:
        c = _Case()
        c.key, c.reported, c.gi = key, t, gi
        c.category = self.catalog[payload["category"]]
        c.source, c.description = payload["source"], payload.get("description", "")
        c.lon, c.lat = payload["lon"], payload["lat"]
        c.severity = payload.get("severity")
        c.phone = payload.get("reporter_phone")
        occurred = payload.get("occurred_at")
        c.occurred = _us(datetime.fromisoformat(occurred)) if occurred else None
        c.grid, c.district = self.grid_codes[gi], self.districts[gi]
        return c

    # -- dedupe (cases/service.py's rule, in memory) -------------------------------------------------
    def _cell(self, lon: float, lat: float) -> tuple[int, int]:
        """A square of a little more than the dedupe distance (one cosine for the whole city, and 10 %
        to spare for its north-south spread): two reports that can merge are in neighbouring cells."""
        return math.floor(lat / self.cell), math.floor(lon * self.cos_ref / self.cell)

    def _duplicate_of(self, c: _Case) -> _Case | None:
        cy, cx = self._cell(c.lon, c.lat)
        code, t = c.category.code, c.reported
        best = None
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                for o in self.open_index.get((code, cy + dy, cx + dx), ()):
                    if o.reported < t - self.dedupe_us or o.state_at(t) in CLOSED_FOR_DEDUPE:
                        continue
                    d = haversine_m(c.lon, c.lat, o.lon, o.lat)
                    if d <= self.dedupe_m and (best is None or d < best[0]):
                        best = (d, o)
        return best[1] if best else None

    def _remember(self, c: _Case) -> None:
        cy, cx = self._cell(c.lon, c.lat)
        self.open_index[(c.category.code, cy, cx)].append(c)

    def forget_before(self, t: int) -> None:
        """Drop from the dedupe index what is too old to merge into (and, at a write boundary, all)."""
        keep = defaultdict(list)
        for k, cases in self.open_index.items():
            young = [c for c in cases if c.reported >= t - self.dedupe_us]
            if young:
                keep[k] = young
        self.open_index = keep

    # -- routing -----------------------------------------------------------------------------------
    def _route(self, c: _Case) -> None:
        c.unit, c.assists, c.level, c.reason, c.upward = self._decision(c)
        c.deadline = self.ot.deadline(c.reported, c.category.time_limit, c.category.time_unit)

    def _decision(self, c: _Case) -> tuple:
        """route_case's decision as (unit, assists, level, reason, report upward). A category's lead
        depends only on the chain from its handling level up, so one route_case per category and
        node of that level serves every grid below it: the reason names the case's own place."""
        cat, chain = c.category, self.chains[c.gi]
        if cat.is_emergency:  # assisting units may sit below the lead's level: route each case
            d = route_case(cat, chain, self.unit_index, self.unit_types, severity=c.severity)
            return d.unit_code, d.assist_unit_codes, d.handling_level, d.reason, d.report_upward
        node = next((a.code for a in chain if a.level == cat.level), None)
        exception = None
        if cat.code in self._excepted or cat.major_code in self._excepted:
            # an exception's area need not be the handling level's node: it is part of the key
            exception = find_exception(cat, chain, self.exceptions)
        key = (cat.code, node, exception)
        place = self.places[c.gi]
        hit = self.routes.get(key)
        if hit is not None:
            d, first = hit
            old = f"案件位于{first}，"
            if old in d.reason:
                return d.unit_code, (), d.handling_level, d.reason.replace(old, f"案件位于{place}，"), False
        d = route_case(cat, chain, self.unit_index, self.unit_types, severity=c.severity, exceptions=self.exceptions)
        if node is not None and not d.assist_unit_codes and not d.report_upward:
            self.routes[key] = (d, place)
        return d.unit_code, d.assist_unit_codes, d.handling_level, d.reason, d.report_upward

    def _escalated(self, c: _Case, level: int):
        """(unit or None, route reason) of an escalation to ``level`` (CaseService._reroute)."""
        key = (c.category.code, c.gi, c.severity, level)
        hit = self.escalations.get(key)
        if hit is None:
            d = route_case(c.category, self.chains[c.gi], self.unit_index, self.unit_types, severity=c.severity,
                           level=level, exceptions=self.exceptions)
            hit = self.escalations[key] = (d.unit_code, f"升级至{d.reason}")
        return hit

    def _fallback_unit(self, c: _Case) -> str | None:
        """demo/runner.py's _fallback_unit: the closest unit on the chain, preferring the category's
        unit type, then city management."""
        key = (c.gi, c.category.code)
        if key in self.fallbacks:
            return self.fallbacks[key]
        best = None
        for a in self.chains[c.gi]:
            for code, unit_type, level in self._units_by_area.get(a.code, ()):
                rank = (unit_type == c.category.unit_type, unit_type == "city_management", level)
                if best is None or rank > best[0]:
                    best = (rank, code)
        unit = self.fallbacks[key] = best[1] if best else None
        return unit

    # -- a life (Simulator.next_steps' rules on integer times) --------------------------------------
    def _tri(self, rng, lo: float, hi: float, mode: float, left: int | None, share: float) -> float:
        """Simulator._delay: triangular minutes, shortened to ``share`` of the time left when tighter."""
        u = rng.random()  # random.triangular(lo, hi, mode), inlined: a few million draws
        c = (mode - lo) / (hi - lo)
        m = hi + (lo - hi) * math.sqrt((1.0 - u) * (1.0 - c)) if u > c else lo + (hi - lo) * math.sqrt(u * c)
        if left is not None and left > 0:
            cap = left / MIN_US * share
            if cap < m:
                m = cap
        return m if m > 0.1 else 0.1

    def _after(self, start: int, minutes: float, office: bool) -> int:
        if not office:
            return start + round(minutes * MIN_US)
        return self.ot.add(start, round(max(minutes, 1 / 60) * MIN_US))

    def _left(self, start: int, deadline: int, office: bool) -> int:
        return self.ot.between(start, deadline) if office else deadline - start

    def _night(self, t: int) -> bool:
        return ((t + self.offset_us) // HOUR_US) % 24 in (22, 23, 0, 1, 2, 3, 4, 5, 6)

    def _live(self, c: _Case, rng: random.Random) -> None:
        """Fill ``c.moves`` with the case's transitions up to now."""
        now, ot = self.now, self.ot
        moves = c.moves
        emergency = c.category.kind == "emergency"
        office = c.category.clock == "working"  # units keep office hours (simulator._office_hours)
        dl = c.deadline
        t = c.reported
        left = dl - t
        slow = 2.0 if self._night(t) and not emergency else 1.0
        if emergency:
            at = t + round(self._tri(rng, 0.3, 3, 1, left, 0.05) * MIN_US)
        elif rng.random() < self.p_reject:
            at = t + round(self._tri(rng, 2 * slow, 30 * slow, 8 * slow, left, 0.1) * MIN_US)
            if at <= now:
                moves.append((at, "reject", "rejected", "office", rng.choice(REJECT_REASONS), None, None))
            return
        else:
            at = t + round(self._tri(rng, 1 * slow, 30 * slow, 5 * slow, left, 0.08) * MIN_US)
        if at > now:
            return
        moves.append((at, "accept", "accepted", "office", "", None, None))
        state, entered = "accepted", at
        unit, level = c.unit, c.level
        esc_dl = None                                   # the deadline last escalated for
        esc_at = dl + 1 + int(rng.random() * self.esc_round)  # the scheduler's round after the deadline
        will_supervise = rng.random() < self.p_supervise
        sup_after = round(rng.triangular(0.5, 6, 2) * HOUR_US)
        supervised = False
        stuck = not emergency and rng.random() < self.p_stuck
        suspend = not emergency and not stuck and rng.random() < self.p_suspend
        will_extend = not emergency and rng.random() < self.p_extend
        returned = ext_done = False
        reworks = 0
        pending = None                                  # hours of an extension request awaiting approval
        ext_at = approve_at = FAR
        main = None

        while True:
            if main is None and not (state == "signed" and pending is not None):
                main = self._main(c, rng, state, entered, dl, unit, returned, reworks, stuck, suspend, emergency)
            best = main[0] if main is not None else FAR
            pick = "main"
            in_hand = state in IN_HAND
            if in_hand and level > 1 and esc_dl != dl and esc_at < best:
                best, pick = esc_at, "escalate"
            if in_hand and will_supervise and not supervised:
                sup_at = max(dl, entered) + sup_after
                if sup_at < best:
                    best, pick = sup_at, "supervise"
            if pending is not None and approve_at < best:
                best, pick = approve_at, "approve"
            if state == "signed" and ext_at < best:
                best, pick = ext_at, "extend"
            if best > now:
                return
            # a step planned from when the case entered its state may fall before a move made since
            # (the resolution planned before an extension was asked and approved): the runner does it
            # then, right after that move
            last = moves[-1][0]
            if best < last:
                best = last
            if pick == "main":
                at, action, to, role, note, details, extra = main
                at = best
                if action == "dispatch":
                    target = extra
                    if unit is None and target is None:
                        target = self._fallback_unit(c)
                        if target is None:
                            action, to, note = "suspend", "suspended", NO_UNIT_NOTE
                    if action == "dispatch":
                        d = {"unit": target or unit}
                        if target is not None and unit and target != unit:
                            d["previous_unit"] = unit
                        details = d
                        if target is not None:
                            unit = target
                        extra = unit
                moves.append((at, action, to, role, note, details, extra))
                if to != state:
                    state, entered = to, at
                    if action == "return":
                        returned = True
                    elif action == "rework":
                        reworks += 1
                    elif action == "resolve":
                        stuck = False
                    if state == "signed" and will_extend and not ext_done and not emergency:
                        if office:
                            start = ot.in_office(entered)
                            room = max(ot.between(start, dl), 30 * MIN_US)
                            ext_at = ot.add(start, round(room * rng.uniform(0.1, 0.4)))
                        else:  # calendar clock: asked round the clock (simulator: _after, calendar)
                            room = max(dl - entered, 30 * MIN_US)
                            ext_at = entered + round(room * rng.uniform(0.1, 0.4))
                    else:
                        ext_at = FAR
                main = None
                if state in ("closed", "rejected", "suspended"):
                    return
            elif pick == "escalate":
                new_level = level - 1
                new_unit, reason = self._escalated(c, new_level)
                if new_unit is not None:
                    unit = new_unit
                moves.append((best, "escalate", state, "system", ESCALATE_NOTE,
                              {"from_level": level, "to_level": new_level, "automatic": True},
                              (new_level, unit, reason, dl)))
                level, esc_dl = new_level, dl
            elif pick == "supervise":
                moves.append((best, "supervise", state, "leader", rng.choice(SUPERVISE_NOTES), None, None))
                supervised = True
            elif pick == "extend":
                hours = rng.choice(self.ext_hours)
                moves.append((best, "extend", state, "unit", rng.choice(EXTENSION_REASONS), {"hours": hours}, hours))
                pending, ext_done, ext_at = hours, True, FAR
                approve_at = best + round(rng.triangular(10, 90, 25) * MIN_US)
                main = None  # the unit waits for the answer before resolving
            else:  # approve the pending extension
                new_dl = ot.deadline(dl, pending, extension_unit(c.category.time_unit))  # the case's clock
                moves.append((best, "approve_extension", state, "office", "情况属实，同意延期",
                              {"hours": pending, "old_deadline": _dt(dl).isoformat(),
                               "new_deadline": _dt(new_dl).isoformat()}, new_dl))
                dl, pending, approve_at = new_dl, None, FAR
                esc_at = dl + 1 + int(rng.random() * self.esc_round)
                main = None  # resolve against the new deadline

    def _main(self, c, rng, state, entered, dl, unit, returned, reworks, stuck, suspend, emergency):
        """The next step of the case's own lifecycle from ``state`` (Simulator.next_steps), as a move."""
        office = c.category.clock == "working"
        ot = self.ot
        center_left = dl - entered
        if state == "accepted":
            if emergency:
                m = self._tri(rng, 0.2, 2, 0.5, center_left, 0.05)
                return (entered + round(m * MIN_US), "dispatch", "dispatched", "office", "按应急预案派遣，联动协同单位",
                        None, None)
            m = self._tri(rng, 1, 15, 3, center_left, 0.08)
            return entered + round(m * MIN_US), "dispatch", "dispatched", "office", "按指挥手册派遣", None, None
        if state == "rework":
            m = self._tri(rng, 2, 20, 5, center_left, 0.1)
            return entered + round(m * MIN_US), "dispatch", "dispatched", "office", "返工重新派遣", None, None
        if state == "returned":
            m = self._tri(rng, 5, 40, 15, center_left, 0.1)
            return (entered + round(m * MIN_US), "dispatch", "dispatched", "office", rng.choice(REDISPATCH_NOTES),
                    None, None)
        if state == "verified":
            m = self._tri(rng, 1, 30, 5, center_left, 0.5)
            return entered + round(m * MIN_US), "close", "closed", "office", "核查通过，予以结案", None, None
        if state == "dispatched":
            start = ot.in_office(entered) if office else entered
            left = self._left(start, dl, office)
            if not emergency and not returned and rng.random() < self.p_return:
                m = self._tri(rng, 10, 90, 30, left, 0.2)
                return self._after(start, m, office), "return", "returned", "unit", rng.choice(RETURN_REASONS), None, None
            m = self._tri(rng, 0.5, 5, 1.5, left, 0.1) if emergency else self._tri(rng, 3, 60, 15, left, 0.15)
            return self._after(start, m, office), "sign", "signed", "unit", "已签收", None, None
        if state == "signed":
            start = ot.in_office(entered) if office else entered
            if suspend:
                at = entered + round(rng.triangular(60, 2880, 480) * MIN_US)
                return at, "suspend", "suspended", "office", rng.choice(SUSPEND_NOTES), None, None
            note = self.closing_notes[c.category.code]
            late = rng.random() < self.p_late
            frac = rng.uniform(0.2, 0.75)
            left = self._left(start, dl, office)
            if stuck:
                days = rng.uniform(*self.stuck_days)
                at = ot.add(max(dl, start), round(days * ot.day_us))
            elif late or left <= 3 * MIN_US:
                allowed = max(self._left(c.reported, dl, office), 30 * MIN_US)
                at = self._after(max(dl, start), allowed * rng.uniform(0.05, 0.5) / MIN_US, office)
            else:
                at = self._after(start, left * frac / MIN_US, office)
            return at, "resolve", "resolved", "unit", note, None, None
        if state == "resolved":
            start = ot.in_office(entered) if office else entered
            left = self._left(start, dl, office)
            role = "grid" if c.category.kind == "grid" else "office"
            m = self._tri(rng, 5, 60, 20, left, 0.5) if emergency else self._tri(rng, 10, 240, 45, left, 0.5)
            at = self._after(start, m, office)
            if not emergency and not reworks and rng.random() < self.p_rework:
                return at, "rework", "rework", role, rng.choice(REWORK_REASONS), None, None
            return at, "verify", "verified", role, "现场核查，符合结案标准", None, None
        raise AssertionError(f"no next step from {state}")


# ---- rows ------------------------------------------------------------------------------------------
_first = itemgetter(0)
_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_DAYS: dict[int, str] = {}


def _ts(us: int) -> str:
    """The text SQLAlchemy's DateTime stores on SQLite for a naive UTC instant (and PostgreSQL's COPY
    reads for a timestamp): 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    d, r = divmod(us, DAY_US)
    day = _DAYS.get(d)
    if day is None:
        day = _DAYS[d] = (EPOCH + timedelta(days=d)).strftime("%Y-%m-%d")
    s, f = divmod(r, US)
    return f"{day} {_HMS[s]}.{f:06d}"


CASE_COLUMNS = ("id", "state", "version", "category_code", "kind", "source", "description", "lon", "lat",
                "grid_code", "district_code", "severity", "reporter_phone", "reporter_count", "idempotency_key",
                "unit_code", "assist_units", "handling_level", "route_reason", "report_upward", "time_unit",
                "extension_pending_hours", "auto_urged_deadline", "merged_into_id", "supervised",
                "escalation_count", "rework_count", "extension_count", "occurred_at", "reported_at", "accepted_at",
                "rejected_at", "dispatched_at", "resolved_at", "closed_at", "deadline_at", "updated_at")
HISTORY_COLUMNS = ("case_id", "at", "actor", "action", "from_state", "to_state", "note", "details")
EVENT_COLUMNS = ("case_id", "type", "at", "grid_code", "unit_code")


def _rows(cases: list[_Case], dedupe_m: float, dedupe_h: float):
    """(case rows, history rows, event rows) of cases with ids; history and events in time order."""
    case_rows = []
    pairs = []   # (sort key, history row, event row); the key packs (at, case id < 2**40, version < 2**16)
    null = "null"  # act() writes the JSON null when a transition has no details; intake writes SQL NULL
    meters, hours = f"{dedupe_m:g}", f"{dedupe_h:g}"
    dispatched_to: dict[str, str] = {}
    dumps = json.dumps
    for c in cases:
        cid = c.id
        rep = _ts(c.reported)
        occurred = _ts(c.occurred) if c.occurred is not None else None
        if c.merged_into is not None:
            target = c.merged_into
            case_rows.append((
                cid, "merged", 1, c.category.code, target.category.kind, c.source, c.description, c.lon, c.lat,
                c.grid, c.district, c.severity, c.phone, 1, c.key, None, None, None,
                f"与案件 #{target.id} 同类且相距不足 {meters} 米、{hours} 小时内，合并", False,
                target.category.time_unit, None, None, target.id, False, 0, 0, 0, occurred, rep, None, None, None,
                None, None, None, rep))
            pairs.append((((c.reported << 40 | cid) << 16), (cid, rep, f"sim:{c.source}", "merge", None, "merged",
                                                 f"重复上报，已合并到案件 #{target.id}", None),
                          (cid, "created", rep, c.grid, None)))
            continue
        cat = c.category
        unit, level, reason = c.unit, c.level, c.reason
        dl_text = _ts(c.deadline)
        state, version, reporters, updated = "reported", 1, 1, rep
        stamps = [None] * 8
        pending = auto_esc = None
        supervised = False
        escalations = reworks = extensions = 0
        grid = c.grid
        pairs.append((((c.reported << 40 | cid) << 16), (cid, rep, f"sim:{c.source}", "report", None, "reported",
                                             f"{SOURCE_LABELS[c.source]}上报；{c.reason}", None),
                      (cid, "created", rep, grid, unit)))
        timeline = c.moves
        if c.merges:
            timeline = sorted([(m[0], 0, m) for m in c.moves] + [(t, 1, dup) for t, dup in c.merges],
                              key=lambda x: (x[0], x[1]))
            timeline = [x[2] if x[1] == 0 else ("merge", x[0], x[2]) for x in timeline]
        for m in timeline:
            if m[0] == "merge":
                _, at, dup = m
                version += 1
                reporters += 1
                updated = s = _ts(at)
                pairs.append((((at << 40 | dup.id) << 16 | 1), (cid, s, f"sim:{dup.source}", "merge", state, state,
                                                f"合并重复上报 #{dup.id}（第 {reporters} 位上报人）", None),
                              (cid, "updated", s, grid, unit)))
                continue
            at, action, to, role, note, details, extra = m
            if role == "office":
                actor = OFFICER
            elif role == "unit":
                actor = f"sim:unit:{unit}"
            elif role == "grid":
                actor = f"sim:grid:{grid}"
            elif role == "leader":
                actor = LEADER
            else:
                actor = SYSTEM
            s = _ts(at)
            frm = state
            if to != frm:
                slot = STAMPS.get(to)
                if slot is not None:
                    stamps[slot] = s
                if pending is not None and to not in ("dispatched", "signed"):
                    details = dict(details or {}, dropped_extension_hours=pending)
                    pending = None
                state = to
            if details is None:
                text = null
            elif action == "dispatch" and len(details) == 1:
                text = dispatched_to.get(extra)
                if text is None:
                    text = dispatched_to[extra] = dumps(details)
            else:
                text = dumps(details)
            if action == "dispatch":
                unit = extra
            elif action == "rework":
                reworks += 1
            elif action == "escalate":
                level, unit, reason, auto_esc = extra
                escalations += 1
            elif action == "extend":
                pending = extra
            elif action == "approve_extension":
                dl_text, pending = _ts(extra), None
                extensions += 1
            elif action == "supervise":
                supervised = True
            version += 1
            updated = s
            pairs.append((((at << 40 | cid) << 16 | version), (cid, s, actor, action, frm, to, note, text),
                          (cid, "updated", s, grid, unit)))
        case_rows.append((
            cid, state, version, cat.code, cat.kind, c.source, c.description, c.lon, c.lat, grid, c.district,
            c.severity, c.phone, reporters, c.key, unit, dumps(list(c.assists)) if c.assists else "[]", level, reason,
            c.upward, cat.time_unit, pending, _ts(auto_esc) if auto_esc is not None else None, None, supervised,
            escalations, reworks, extensions, occurred, rep, stamps[3], stamps[4], stamps[5], stamps[6], stamps[7],
            dl_text, updated))
    pairs.sort(key=_first)  # by time, then by the case whose transaction wrote the row, then its version
    return case_rows, [p[1] for p in pairs], [p[2] for p in pairs]


# ---- writing ---------------------------------------------------------------------------------------
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(rows) -> str:
    """Rows as PostgreSQL COPY text: tab-separated, \\N for NULL, t/f for booleans."""
    out = []
    for row in rows:
        fields = []
        for v in row:
            if v is None:
                fields.append("\\N")
            elif v is True:
                fields.append("t")
            elif v is False:
                fields.append("f")
            elif isinstance(v, str):
                fields.append(v.translate(_COPY_ESCAPE))
            else:
                fields.append(str(v))
        out.append("\t".join(fields))
    out.append("")
    return "\n".join(out)


@dataclass
class _Chunk:
    """One write's rows, made with ids from ``first_id`` on (the next ids the database was expected to
    give), and what they hold."""

    spans: list[tuple[int, int]]
    first_id: int
    case_rows: list[tuple]
    history: list[tuple]
    events: list[tuple]
    by_state: Counter
    merged: int


def _prepare(cases: list[_Case], spans: list[tuple[int, int]], first_id: int, dedupe_m: float,
             dedupe_h: float) -> _Chunk:
    cases.sort(key=lambda c: c.reported)  # ids in report order, as intake gives them
    for i, c in enumerate(cases):
        c.id = first_id + i
    case_rows, history, events = _rows(cases, dedupe_m, dedupe_h)
    by_state = Counter(row[1] for row in case_rows)
    for c in cases:  # the links between cases are cycles: cut them, so the cases go with their last reference
        c.merges, c.merged_into = [], None
    return _Chunk(spans, first_id, case_rows, history, events, by_state, by_state["merged"])


_ID_IN_NOTE = re.compile(r"#(\d+)")


def _renumber(chunk: _Chunk, ids: list[int]) -> None:
    """Give the chunk's cases the ids the database has for them after all (someone else took the
    expected ones meanwhile): every case id, merged_into_id, and the case numbers in merge notes."""
    first, n = chunk.first_id, len(ids)

    def new(i):
        return ids[i - first] if i is not None and first <= i < first + n else i

    def note(text):
        return _ID_IN_NOTE.sub(lambda m: f"#{new(int(m.group(1)))}", text)

    chunk.case_rows = [(new(r[0]), *r[1:18], note(r[18]) if r[1] == "merged" else r[18], *r[19:23], new(r[23]),
                        *r[24:]) for r in chunk.case_rows]
    chunk.history = [(new(h[0]), *h[1:6], note(h[6]) if h[3] == "merge" else h[6], h[7]) for h in chunk.history]
    chunk.events = [(new(e[0]), *e[1:]) for e in chunk.events]
    chunk.first_id = ids[0] if ids else first


class _BigCache:
    """SQLite: the writer connection keeps 256 MB of pages for the run, so that the indexes the writes
    go through stay in memory from one write to the next (restored at the end; shrinking it after each
    write threw them away). Nothing on PostgreSQL."""

    def __init__(self, db):
        self.db = db
        self.old: int | None = None

    def __enter__(self):
        if self.old is None and self.db.engine.dialect.name == "sqlite":
            with self.db.write_transaction() as cur:  # the connection the writes use
                self.old = cur.execute("PRAGMA cache_size").fetchone()[0]
                cur.execute("PRAGMA cache_size=-262144")
        return self

    def __exit__(self, *exc):
        return False

    def restore(self) -> None:
        if self.old is not None:
            with self.db.write_transaction() as cur:
                cur.execute(f"PRAGMA cache_size={int(self.old)}")
            self.old = None


def _next_id(service: CaseService) -> int:
    """The id the database will most likely give the next case."""
    with service.db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) + 1 FROM cases").scalar()
        seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence('cases', 'id')").scalar()
        last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}").one()
        return last + 1 if called else last


def _write(service: CaseService, chunk: _Chunk) -> bool:
    """One transaction: the chunk's cases, history and outbox rows, and the marker. False when another
    run filled these spans meanwhile (nothing written)."""
    db = service.db
    spans, n = chunk.spans, len(chunk.case_rows)
    if db.engine.dialect.name == "sqlite":
        with db.write_transaction() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = ?", (MARKER_KEY,)).fetchone()
            filled = _parse_marker(row[0] if row else None)
            if _subtract(spans, filled) != spans:
                return False
            first = cur.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM cases").fetchone()[0]
            if n and first != chunk.first_id:
                _renumber(chunk, list(range(first, first + n)))
            cur.executemany(f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES "
                            f"({', '.join('?' * len(CASE_COLUMNS))})", chunk.case_rows)
            cur.executemany(f"INSERT INTO case_history ({', '.join(HISTORY_COLUMNS)}) VALUES "
                            f"({', '.join('?' * len(HISTORY_COLUMNS))})", chunk.history)
            cur.executemany(f"INSERT INTO case_events ({', '.join(EVENT_COLUMNS)}) VALUES "
                            f"({', '.join('?' * len(EVENT_COLUMNS))})", chunk.events)
            value = _marker_value(filled + spans)
            if row:
                cur.execute("UPDATE meta SET value = ? WHERE key = ?", (value, MARKER_KEY))
            else:
                cur.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (MARKER_KEY, value))
        return True
    with db.engine.begin() as conn:
        cur = conn.connection.cursor()
        try:
            # One backfill at a time; a second one waits here, then finds the spans filled.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (0x5543435F48495354,))
            row = cur.execute("SELECT value FROM meta WHERE key = %s", (MARKER_KEY,)).fetchone()
            filled = _parse_marker(row[0] if row else None)
            if _subtract(spans, filled) != spans:
                return False
            # the ids are taken from the sequence, so that intake never hands out one of them
            ids = sorted(r[0] for r in cur.execute(
                "SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, %s)", (n,)))
            if ids and ids != list(range(chunk.first_id, chunk.first_id + n)):
                _renumber(chunk, ids)
            for table, columns, rows in (("cases", CASE_COLUMNS, chunk.case_rows),
                                         ("case_history", HISTORY_COLUMNS, chunk.history),
                                         ("case_events", EVENT_COLUMNS, chunk.events)):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for i in range(0, len(rows), 20000):
                        copy.write(_copy_text(rows[i:i + 20000]))
            value = _marker_value(filled + spans)
            if row:
                cur.execute("UPDATE meta SET value = %s WHERE key = %s", (value, MARKER_KEY))
            else:
                cur.execute("INSERT INTO meta (key, value) VALUES (%s, %s)", (MARKER_KEY, value))
        finally:
            cur.close()
    return True


# ---- the run ---------------------------------------------------------------------------------------
def _progress_bar():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("天"),
                    TaskProgressColumn(), TimeElapsedColumn(), TextColumn("剩余"), TimeRemainingColumn())


def backfill(service: CaseService, days: float, now: datetime | None = None, seed: int = DEFAULT_SEED,
             progress: bool = False, echo: Callable[[str], None] | None = None, volume: float = 1.0,
             profile: HistoryProfile | None = None, parallel: bool | None = None) -> BackfillReport:
    """Fill the missing demo history of the last ``days`` days up to ``now`` (default: the service's
    clock). ``progress`` shows a rich progress bar (per day); ``echo`` gets a line per write.
    ``volume`` scales the profile's daily volume (tests). ``parallel``: make the cases in a forked
    process while this one writes (None: when there is more than one write's worth and two cores);
    the rows are the same either way. Raises ValueError when the database has no city or catalog."""
    if not days > 0:
        raise ValueError("days must be > 0")
    started = time.perf_counter()
    now = (now or service.clock()).astimezone(UTC)
    report = BackfillReport(days=int(days) if float(days).is_integer() else days)
    service.reload_reference()  # the catalog and units as they are in the database now
    gaps = [(_us(a), _us(b)) for a, b in missing_intervals(service, days, now)]
    if not gaps:
        report.seconds = time.perf_counter() - started
        return report
    profile = profile or load_profile()
    tz = service.calendar.tz
    first_day = _dt(gaps[0][0]).astimezone(tz).date()
    last_day = _dt(gaps[-1][1] - 1).astimezone(tz).date()
    maker = _Maker(service, profile, seed, _us(now), first_day, volume)
    day_list = []
    d = first_day
    while d <= last_day:
        lo, hi = maker._local_midnight(d), maker._local_midnight(d + timedelta(days=1))
        spans = [(max(a, lo), min(b, hi)) for a, b in gaps if a < hi and b > lo]
        if spans:
            day_list.append((d, spans))
        d += timedelta(days=1)
    if parallel is None:
        expected = sum(profile.day_volume(d, service.calendar) for d, _ in day_list) * volume
        parallel = expected > CHUNK_CASES and _two_cores()
    bar = _progress_bar() if progress else None
    task = None
    if bar is not None:
        bar.start()
        task = bar.add_task("补录演示历史", total=len(day_list))
    report.parallel = parallel
    tick = (lambda: bar.advance(task)) if bar is not None else (lambda: None)
    # Millions of young tuples: the cyclic collector would walk them again and again (unpickling a
    # chunk took 4× longer with it on). Nothing made here needs it: links between cases are cut below.
    collecting = gc.isenabled()
    gc.disable()
    cache = _BigCache(service.db)
    try:
        first_id = _next_id(service)
        chunks = (_forked if parallel else _prepared)(maker, day_list, tick, first_id)
        for chunk in chunks:
            with cache:
                _flush(service, maker, chunk, report, echo)
    finally:
        cache.restore()
        if collecting:
            gc.enable()
        if bar is not None:
            bar.stop()
    if service.db.engine.dialect.name == "sqlite":
        try:  # hand the big transactions' pages to the database file and keep the WAL small
            with service.db.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception:  # noqa: BLE001 - busy readers: SQLite checkpoints later by itself
            pass
    report.seconds = time.perf_counter() - started
    return report


def _two_cores() -> bool:
    """Whether a forked maker can run beside the writes: fork exists and there are two cores. (Measured,
    90 days on the shared 2-core machine: 38.6 s against 45.3 s in one process at a load of 2; with
    other work keeping both cores busy, from 23 % faster to 10 % slower in five same-run pairs.)"""
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) >= 2


def _chunks(maker: _Maker, day_list, tick: Callable[[], None]):
    """(cases, spans) of each write: whole days, about CHUNK_CASES cases; no merge across two."""
    chunk: list[_Case] = []
    chunk_spans: list[tuple[int, int]] = []
    for i, (d, spans) in enumerate(day_list):
        maker.forget_before(maker._local_midnight(d))  # the dedupe index keeps the last day only
        chunk.extend(maker.day(d, spans))
        chunk_spans.extend(spans)
        tick()
        if i == len(day_list) - 1 or len(chunk) >= CHUNK_CASES:
            yield chunk, chunk_spans
            chunk, chunk_spans = [], []
            maker.forget_before(FAR)


def _prepared(maker: _Maker, day_list, tick: Callable[[], None], first_id: int):
    """The rows of each write, with the ids expected from ``first_id`` on."""
    for cases, spans in _chunks(maker, day_list, tick):
        chunk = _prepare(cases, spans, first_id, maker.dedupe_m, maker.dedupe_hours)
        first_id += len(chunk.case_rows)
        yield chunk


def _forked(maker: _Maker, day_list, tick: Callable[[], None], first_id: int):
    """_prepared in a forked process (the maker is copied, nothing is rebuilt) while this process writes
    the previous chunk. The pipe holds at most one chunk in flight; the child uses no database."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)

    def child():
        receiver.close()
        try:
            for chunk in _prepared(maker, day_list, lambda: sender.send(("day", None)), first_id):
                sender.send(("chunk", chunk))
            sender.send(("done", None))
        except BaseException:  # noqa: BLE001 - the parent raises it
            import traceback

            sender.send(("error", traceback.format_exc()))
        finally:
            sender.close()

    proc = ctx.Process(target=child, name="ucc-backfill-maker", daemon=True)
    proc.start()
    sender.close()
    try:
        while True:
            try:
                kind, payload = receiver.recv()
            except EOFError:
                raise RuntimeError("演示历史生成进程意外退出") from None
            if kind == "day":
                tick()
            elif kind == "chunk":
                yield payload
            elif kind == "done":
                return
            else:
                raise RuntimeError(f"演示历史生成进程出错：\n{payload}")
    finally:
        receiver.close()
        if proc.is_alive():
            proc.terminate()
        proc.join(5)


def _flush(service, maker, chunk: _Chunk, report: BackfillReport, echo) -> None:
    if not _write(service, chunk):
        if echo:
            echo("另一补录进程已写入这段时间，跳过")
        return
    n = len(chunk.case_rows)
    report.writes += 1
    report.rows += len(chunk.history)
    report.cases += n
    report.merged += chunk.merged
    report.by_state.update(chunk.by_state)
    report.intervals.extend((_dt(a), _dt(b)) for a, b in _union(chunk.spans))
    if echo and n:
        a, b = _dt(chunk.spans[0][0]).astimezone(maker.tz), _dt(chunk.spans[-1][1]).astimezone(maker.tz)
        echo(f"演示历史 {a:%m-%d %H:%M} — {b:%m-%d %H:%M}：{n:,} 件案件，{len(chunk.history):,} 条流转记录")


def first_run_history(service: CaseService, days: int, echo: Callable[[str], None] | None = None) -> BackfillReport | None:
    """`python app.py`: the demo city's history of the last ``days`` days (UCC_SEED_HISTORY), filled
    up to now at every start (cheap when nothing is missing). None when ``days`` is 0 or the database
    holds an imported city rather than the demo."""
    if days <= 0:
        return None
    from demo.seed import DEMO_SEEDED_KEY  # here: seeding pulls in the users' password hashing

    with service.db.session() as s:
        if s.get(Meta, DEMO_SEEDED_KEY) is None:
            return None
    return backfill(service, days, echo=echo)
