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
  locator in bulk), routed with :func:`dispatch.routing.route_case`, given intake's provisional
  deadline on the category's clock, and deduplicated as intake does (same category, within the
  service's metres and hours, into a case still open then: the report becomes a ``merged`` row).
* Its life follows the rules, delays and rates of :meth:`Simulator.next_steps` and
  :class:`demo.profile.LifeRates` (data/demo_history.json, ``outcomes``, with the reasons): the
  command center round the clock in calendar minutes; units, grid members and on-site checkers in
  office hours, emergencies and the calendar-clock categories in calendar minutes. 核实 by the grid
  member (some unfounded, not filed), 作废, 退回 then 改派 or 驳回, 延期 approved or denied, 挂账
  requests approved (and 解挂 days later) or denied, 协办 with the assisting unit's own sign and
  report, a leader's 督办, rework, late resolutions, 回访 of people's cases and 重办 of some
  unsatisfied ones; plus what a running server's scheduler adds (CaseService.remind_due, the rules
  of data/catalog/center_rules.json): a 催办 on the first round after the handling clock's warning
  (80 %) and a 督办 a level up on the first round after its deadline, for cases in the unit's hands
  then, once per deadline (the ``auto_*_deadline`` marks). The handling deadline and its warning
  count from 派遣 (改派, 重办 restart them; 延期 and 解挂 move them). A few cases stay open for weeks
  (``stuck``), so months close at 97–99 %. Steps after ``now`` are not taken: the case is written
  as it stands now.
* Rows are the ones intake and act write: the case row (states, stamps, counters, penalty points
  and marks as :func:`dispatch.lifecycle.plan_transition` sets them, version = its audit rows), one
  ``case_history`` row per act (actors as the live runner's people: ``sim:duty_officer``,
  ``sim:unit:<unit>`` (an assisting unit's too), ``sim:grid:<grid>``, ``sim:leader``,
  ``system:scheduler``; notes and details as plan_transition makes them), one ``case_events``
  outbox row per history row, and the ``case_assists``, ``case_supervision`` and ``case_penalties``
  rows the acts carry (tests/demo/test_backfill.py replays every made case through plan_transition
  and holds each row to it). A write holds whole days (about CHUNK_CASES cases) with every row of
  their cases; within it the outbox rows are in time order, so ``seq`` grows with time. The rows are
  made with the ids the database is expected to give next and renumbered in the write's transaction
  if intake took those meanwhile.
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
from typing import Callable, Iterable

import numpy as np
from sqlalchemy import select

from cases.service import CLOSED_FOR_DEDUPE, SOURCE_LABELS, CaseService, haversine_m
from data.models import Case, Meta
from data.models import Unit as UnitRow
from demo.profile import HistoryProfile, load_profile
from demo.runner import SIM_KEY_PREFIX
from demo.simulator import (reporter, ASSIST_REPORT_NOTES, ASSIST_SIGN_NOTE, CALLBACK_NOTES, CHECK_NOTES, CHECK_REQUEST_NOTE,
                            DENY_EXTENSION_NOTES, DENY_SUSPENSION_NOTES, EXTENSION_REASONS, REASSIGN_NOTES,
                            REDISPATCH_NOTES, REJECT_REASONS, REOPEN_NOTES, RESUME_NOTE, RETURN_REASONS,
                            REWORK_REASONS, SUPERVISE_NOTES, SUSPENSION_REASONS, UNFOUNDED_REJECT, VOID_REASONS,
                            Simulator, pick_unit)
from dispatch.lifecycle import HANDLING_STATES as HANDLING
from dispatch.lifecycle import LEVEL_LABELS, RULES
from dispatch.routing import find_exception, route_case
from dispatch.working_time import WARNING_FRACTION, WorkCalendar, clock_of, extension_unit

__all__ = ["DEFAULT_SEED", "HISTORY_KEY_PREFIX", "MARKER_KEY", "BackfillReport", "HistoryProfile",
           "OfficeTime", "backfill", "first_run_history", "load_profile", "missing_intervals"]

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
CALENDAR_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}  # the calendar clock's units
ONE_US = timedelta(microseconds=1)
DAY_US = 86400 * US
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UTC = timezone.utc
FAR = 1 << 62                     # "never" (beyond every table)

# plan_transition's stamps: the column each state sets when a case enters it (dispatch/lifecycle.py _STAMPS)
_STATE_STAMPS = {"accepted": "accepted_at", "rejected": "rejected_at", "dispatched": "dispatched_at",
                 "signed": "signed_at", "resolved": "resolved_at", "verified": "verified_at", "closed": "closed_at",
                 "voided": "voided_at", "returned": "returned_at", "suspended": "suspended_at",
                 "verifying": "check_requested_at"}
_STAMP_COLUMNS = tuple(_STATE_STAMPS.values()) + ("resumed_at", "checked_at", "callback_at")
_RESTARTS = ("dispatch", "reassign", "reopen")   # the moves that start the handling clock anew
_NO_KW: dict = {}

OFFICER, LEADER, SYSTEM = "sim:duty_officer", "sim:leader", "system:scheduler"
NO_UNIT_NOTE = "无对应处置单位，挂账待协调"     # demo/runner.py's, when no unit can take a case


_EPOCH_ORD = EPOCH.toordinal()


def _us(dt: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (UTC); field arithmetic, several times
    faster than dividing timedeltas."""
    off = dt.utcoffset()
    return ((dt.toordinal() - _EPOCH_ORD) * DAY_US + ((dt.hour * 60 + dt.minute) * 60 + dt.second) * US
            + dt.microsecond - (off.days * DAY_US + off.seconds * US + off.microseconds))


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _iso(us: int) -> str:
    """An instant as plan_transition writes it into a history row's details (aware UTC, isoformat)."""
    return (EPOCH + timedelta(microseconds=us)).isoformat()


# ---- the profile: demo/profile.py (data/demo_history.json); load_profile and HistoryProfile are
# re-exported here for the callers that knew them here (scheduler.py, bench/bench_backfill.py)


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
        chooses calendar or office time, as it does for a live case. Calendar amounts go through
        timedelta as the calendar's do, so that a fraction of a minute rounds alike."""
        if clock_of(unit) == "calendar":
            return t + timedelta(minutes=amount * CALENDAR_MINUTES[unit]) // ONE_US
        return self.add(t, round(amount * (HOUR_US if unit == "working_hours" else self.day_us)))


# ---- made cases --------------------------------------------------------------------------------------
class _Case:
    """One report and its life until now. ``moves``: (at, action, to_state, actor, note, details or None,
    from_state, unit after) in time order, one per act(); ``life``: its columns now (:class:`_Life`);
    ``merges``: (at, dup) of the later reports merged into it."""

    __slots__ = ("key", "source", "description", "lon", "lat", "gi", "grid", "district", "category", "severity",
                 "phone", "occurred", "reported", "unit", "assists", "level", "reason", "upward", "deadline", "moves",
                 "merged_into", "merges", "id", "life", "supervision", "penalties")

    def __init__(self):
        self.moves: list = []
        self.merges: list = []
        self.supervision: list = []   # case_supervision rows (催办/督办), without the case id
        self.penalties: list = []     # case_penalties rows (扣分), without the case id
        self.merged_into: _Case | None = None
        self.life: _Life | None = None
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
        self.sim = Simulator(self.catalog, records, seed=seed, key_prefix=None, calendar=self.calendar,
                             rates=profile.rates)
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
        self.rates = profile.rates
        self.rules = service.rules   # the center's rules: reminders, penalties, 督办 deadlines
        self.urge_rule = next((x for x in self.rules.reminders if x.at == "warning" and x.kind == "urge"), None)
        self.sup_rule = next((x for x in self.rules.reminders if x.at == "deadline" and x.kind == "supervise"), None)
        self.round_us = round(self.rates.scheduler_round_seconds * US)
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

    def _round(self, t: int) -> int:
        """The scheduler's first round at or after ``t`` (rounds every scheduler_round_seconds)."""
        r = self.round_us
        return -(-t // r) * r

    # the columns act() writes, as plan_transition computes them (dispatch/lifecycle.py), on integers
    def _hours(self, a: int, b: int, office: bool) -> float:
        """calendar.working_time_between(a, b, extension_unit(time_unit)): hours on the case's clock."""
        return (self.ot.between(a, b) if office else b - a) / HOUR_US

    def _warning_between(self, start: int, deadline: int, time_unit: str, office: bool) -> int:
        """lifecycle.warning_between: 80 % of the way from ``start`` to ``deadline`` on the case's clock."""
        total = max(0.0, self._hours(start, deadline, office))
        return self.ot.deadline(start, WARNING_FRACTION * total, extension_unit(time_unit))

    def _do(self, c: _Case, L: "_Life", at: int, action: str, actor: str, note: str = "", *, unit: str | None = None,
            hours: float | None = None, result: str | None = None, satisfaction: str | None = None,
            level: int | None = None, rule: str | None = None) -> None:
        """One act(): what plan_transition changes on the case (``L``), its details, the 协办, 催办/督办
        and 扣分 rows it carries, and the history row (c.moves). ``level``: a 督办's level; ``rule``:
        the id of the automatic reminder that sends it."""
        frm = L.state
        to = RULES[action].to_state or frm
        cat = c.category
        tu = cat.time_unit
        office = cat.clock == "working"
        stamps = L.stamps
        details: dict = {}
        if action == "resume":
            to = L.before or "accepted"
        if to != frm:
            L.state = to
            stamp = _STATE_STAMPS.get(to)
            if stamp is not None and action not in ("resume", "refuse_return"):  # 驳回: the unit's clock runs on
                stamps[stamp] = at
            if L.pending is not None and to not in HANDLING:
                details["dropped_extension_hours"] = L.pending
                L.pending = None
            if L.susp_req is not None and to not in HANDLING:
                L.susp_req = None
                details["dropped_suspension_request"] = True
            if to in HANDLING and frm not in HANDLING:
                L.hand_since = at

        def penalize(act: str, reason: str) -> None:
            points = self.rules.penalty(act)
            if points > 0 and L.unit:
                c.penalties.append((L.unit, points, act, reason, at))
                L.penalty = L.penalty + points

        if action in _RESTARTS:
            target = unit
            if action == "reassign":
                L.reassigns += 1
            elif action == "reopen":
                target = None
                L.reopens += 1
                stamps["closed_at"] = None
                penalize("reopen", "回访不满意，重办")
            details["unit"] = target or L.unit
            if target is not None and L.unit and target != L.unit:
                details["previous_unit"] = L.unit
            if target is not None:
                L.unit = target
            stamps["dispatched_at"] = at
            stamps["signed_at"] = stamps["resolved_at"] = stamps["verified_at"] = None
            # a new round drops the last round's requests and 督办 (dispatch.lifecycle: _RESTARTS)
            if L.pending is not None:
                details["dropped_extension_hours"] = L.pending
                L.pending = None
            if L.susp_req is not None:
                L.susp_req = None
                details["dropped_suspension_request"] = True
            if L.supervised:
                details["ended_supervision_level"] = L.sup_level
                L.supervised, L.sup_level, L.sup_deadline = False, None, None
            L.deadline = self.ot.deadline(at, cat.time_limit, tu)
            L.warning = self.ot.deadline(at, WARNING_FRACTION * cat.time_limit, tu)
            details["deadline"] = _iso(L.deadline)
            L.hand_since = at
        elif action == "refuse_return":
            details["unit"] = L.unit
            stamps["signed_at"] = None      # it signs for the case again
        elif action == "report_check":
            stamps["checked_at"] = at
            L.check_result = result
            details["result"] = result
        elif action == "rework":
            L.reworks += 1
        elif action == "extend":
            L.pending = hours
            details["hours"] = hours
        elif action == "approve_extension":
            asked, old = L.pending, L.deadline
            new = self.ot.deadline(old, asked, extension_unit(tu))
            start = max((t for t in (stamps["dispatched_at"], stamps["resumed_at"]) if t is not None), default=at)
            L.deadline = new
            L.warning = self._warning_between(min(start, new), new, tu, office)
            L.extensions += 1
            L.pending = None
            details.update(hours=asked, old_deadline=_iso(old), new_deadline=_iso(new))
        elif action == "deny_extension":
            details["hours"] = L.pending
            L.pending = None
        elif action == "request_suspension":
            L.susp_req = at
        elif action == "deny_suspension":
            L.susp_req = None
        elif action in ("suspend", "approve_suspension"):
            L.susp_req = None
            L.before = frm
            L.remaining = None if L.deadline is None else self._hours(at, L.deadline, office)
            details["remaining_hours"] = None if L.remaining is None else round(L.remaining, 4)
        elif action == "resume":
            stamps["resumed_at"] = at
            left, L.before, L.remaining = L.remaining, None, None
            if left is not None and left > 0:
                new = self.ot.deadline(at, left, extension_unit(tu))
                L.deadline = new
                L.warning = self._warning_between(at, new, tu, office)
                details.update(remaining_hours=round(left, 4), new_deadline=_iso(new))
        elif action == "add_assist":
            L.assists[unit] = [at, None, None, None]
            details["assist_unit"] = unit
        elif action == "urge":
            L.urges += 1
            c.supervision.append(("urge", L.unit, None, at, None, L.deadline, actor, rule is not None, rule, note))
            penalize("urge", note or "催办")
        elif action == "supervise":
            own = self.ot.deadline(at, self.rules.supervision_deadline_hours[cat.clock], extension_unit(tu))
            L.supervised, L.sup_level, L.sup_deadline = True, level, own
            c.supervision.append(("supervise", L.unit, level, at, own, L.deadline, actor, rule is not None, rule, note))
            details.update(level=level, deadline=_iso(own))
            penalize("supervise", note or f"{LEVEL_LABELS.get(level, '')}督办")
        elif action == "callback":
            stamps["callback_at"] = at
            L.cb_result, L.cb_note = satisfaction, note or None
            details["satisfaction"] = satisfaction
        elif action == "void":
            details["from_state"] = frm
        c.moves.append((at, action, to, actor, note, details or None, frm, L.unit))

    def _assist_act(self, c: _Case, L: "_Life", at: int, code: str, op: str, note: str) -> None:
        """An assisting unit signs (op "sign") or reports (op "resolve") its part: its case_assists row
        changes, the case keeps its state (plan_transition's assisting branch)."""
        a = L.assists[code]
        if op == "sign":
            a[1] = at
        else:
            a[2], a[3] = at, note
        c.moves.append((at, op, L.state, f"sim:unit:{code}", note, {"assist_unit": code}, L.state, L.unit))

    def _live(self, c: _Case, rng: random.Random) -> None:
        """Fill ``c.moves`` with the case's transitions up to now (and ``c.life`` with its columns)."""
        now, ot, r = self.now, self.ot, self.rates
        cat = c.category
        emergency = cat.kind == "emergency"
        office = cat.clock == "working"  # units keep office hours (simulator._office_hours)
        L = c.life = _Life(c.unit, c.level, c.deadline)
        grid = f"sim:grid:{c.grid}"
        t = c.reported
        slow = 2.0 if self._night(t) and not emergency else 1.0
        left = L.deadline - t
        # 受理, 核实, 立案 (the center round the clock; the grid member in office hours)
        if emergency:
            at = t + round(self._tri(rng, 0.3, 3, 1, left, 0.05) * MIN_US)
        elif c.source in r.check_sources and rng.random() < r.check:
            at = t + round(self._tri(rng, 1 * slow, 30 * slow, 5 * slow, left, 0.08) * MIN_US)
            if at > now:
                return
            self._do(c, L, at, "verify_request", OFFICER, CHECK_REQUEST_NOTE)
            start = ot.in_office(at) if office else at
            at = self._after(start, self._tri(rng, 10, 75, 30, None, 1.0), office)
            answer = "unfounded" if rng.random() < r.check_unfounded else "confirmed"
            if at > now:
                return
            self._do(c, L, at, "report_check", grid, CHECK_NOTES[answer], result=answer)
            slow = 2.0 if self._night(at) else 1.0
            left, t = L.deadline - at, at
            if answer == "unfounded":
                at = t + round(self._tri(rng, 1 * slow, 20 * slow, 5 * slow, left, 0.1) * MIN_US)
                if at <= now:
                    self._do(c, L, at, "reject", OFFICER, UNFOUNDED_REJECT)
                return
            at = t + round(self._tri(rng, 1 * slow, 20 * slow, 5 * slow, left, 0.08) * MIN_US)
        elif rng.random() < r.reject:
            at = t + round(self._tri(rng, 2 * slow, 30 * slow, 8 * slow, left, 0.1) * MIN_US)
            if at <= now:
                self._do(c, L, at, "reject", OFFICER, rng.choice(REJECT_REASONS))
            return
        else:
            at = t + round(self._tri(rng, 1 * slow, 30 * slow, 5 * slow, left, 0.08) * MIN_US)
        if at > now:
            return
        self._do(c, L, at, "accept", OFFICER)
        if not emergency and rng.random() < r.void:  # 作废 before dispatch
            at = at + round(self._tri(rng, 5, 120, 20, L.deadline - at, 0.3) * MIN_US)
            if at <= now:
                self._do(c, L, at, "void", OFFICER, rng.choice(VOID_REASONS))
            return
        moves = c.moves
        entered = at
        stuck = not emergency and rng.random() < r.stuck
        will_suspend = not emergency and not stuck and rng.random() < r.suspension_request
        will_extend = not emergency and rng.random() < r.extend
        assist_types = None if emergency else r.assist_categories.get(cat.name)
        will_assist = assist_types is not None and rng.random() < r.assist
        lead_sup = rng.random() < r.leader_supervise
        lead_sup_at = FAR
        returned = False
        pending = None               # ("extension" | "suspension", answer time, approve?)
        ext_at = susp_at = add_at = FAR
        add_unit = None
        main = None
        urge_rule, sup_rule = self.urge_rule, self.sup_rule

        while True:
            state = L.state
            in_hand = state in HANDLING
            if main is None:
                main = self._main(c, L, rng, entered, returned, stuck, emergency, pending, add_at != FAR)
            best = main[0] if main is not None else FAR
            pick = "main"
            if in_hand:
                dl = L.deadline
                if urge_rule is not None and L.warning is not None and L.urged != dl:
                    at = self._round(max(L.warning, L.hand_since + 1))
                    if at < best:
                        best, pick = at, "urge"
                if sup_rule is not None and dl is not None and L.sup_marked != dl:
                    at = self._round(max(dl + 1, L.hand_since + 1))
                    if at < best:
                        best, pick = at, "auto_supervise"
                if lead_sup and not L.supervised and max(lead_sup_at, entered) < best:
                    best, pick = max(lead_sup_at, entered), "leader"
                if pending is not None and pending[1] < best:
                    best, pick = pending[1], "answer"
            if state == "signed":
                if ext_at < best:
                    best, pick = ext_at, "extend"
                if susp_at < best:
                    best, pick = susp_at, "request_suspension"
                if add_at < best:
                    best, pick = add_at, "add_assist"
                for code, a in L.assists.items():
                    at = self._assist_time(c, L, rng, code, a, office)
                    if at is not None and at < best:
                        best, pick = at, code
            if best > now:
                return
            # a step planned from when the case entered its state may fall before a move made since:
            # the runner does it then, right after that move
            last = moves[-1][0]
            if best < last:
                best = last
            if pick == "main":
                at, action, actor, note, kw = main
                at = best
                if action == "dispatch" and L.unit is None:
                    target = self._fallback_unit(c)
                    if target is None:
                        action, note = "suspend", NO_UNIT_NOTE
                    else:
                        kw = {"unit": target}
                self._do(c, L, at, action, actor, note, **kw)
                main = None
                if L.state != state:
                    entered = at
                    if action == "return":
                        returned = True
                    elif action == "resolve":
                        stuck = False
                    elif action in ("dispatch", "reassign", "reopen") and lead_sup and lead_sup_at == FAR:
                        lead_sup_at = at + round((L.deadline - at) * rng.uniform(0.2, 0.7))
                    if L.state == "signed":
                        ext_at = susp_at = FAR
                        start = ot.in_office(at) if office else at
                        room = max(self._left(start, L.deadline, office), 30 * MIN_US)
                        if will_suspend:
                            susp_at = self._after(start, room * rng.uniform(0.05, 0.3) / MIN_US, office)
                        elif will_extend:
                            ext_at = self._after(start, room * rng.uniform(0.1, 0.4) / MIN_US, office)
                        if will_assist:
                            will_assist = False
                            add_unit = pick_unit(self.unit_index, self.chains[c.gi], assist_types, {L.unit})
                            if add_unit is not None:
                                add_at = at + round(rng.triangular(10, 120, 30) * MIN_US)
                    else:
                        ext_at = susp_at = FAR
                if L.state in ("rejected", "voided") or (L.state == "suspended" and action == "suspend"):
                    return
            elif pick == "urge":
                self._do(c, L, best, "urge", SYSTEM, urge_rule.note, rule=urge_rule.id)
                L.urged = L.deadline
            elif pick == "auto_supervise":
                level = max(1, (L.level or 5) - sup_rule.levels_up)
                if not (L.supervised and L.sup_level is not None and level >= L.sup_level):
                    self._do(c, L, best, "supervise", SYSTEM, sup_rule.note, level=level, rule=sup_rule.id)
                L.sup_marked = L.deadline
            elif pick == "leader":
                self._do(c, L, best, "supervise", LEADER, rng.choice(SUPERVISE_NOTES), level=1)
            elif pick == "answer":
                kind, _, yes = pending
                pending = None
                if kind == "extension":
                    if yes:
                        self._do(c, L, best, "approve_extension", OFFICER, "情况属实，同意延期")
                    else:
                        self._do(c, L, best, "deny_extension", OFFICER, rng.choice(DENY_EXTENSION_NOTES))
                elif yes:
                    self._do(c, L, best, "approve_suspension", OFFICER, "情况属实，同意挂账")
                    entered = best
                    ext_at = susp_at = FAR
                else:
                    self._do(c, L, best, "deny_suspension", OFFICER, rng.choice(DENY_SUSPENSION_NOTES))
                main = None  # the unit resolves against what it was told (and the new deadline)
            elif pick == "extend":
                hours = rng.choice(r.extension_hours)
                self._do(c, L, best, "extend", f"sim:unit:{L.unit}", rng.choice(EXTENSION_REASONS), hours=hours)
                ext_at, will_extend = FAR, False
                pending = ("extension", best + round(rng.triangular(10, 90, 25) * MIN_US),
                           rng.random() >= r.extension_denied)
                main = None  # the unit waits for the answer before resolving
            elif pick == "request_suspension":
                self._do(c, L, best, "request_suspension", f"sim:unit:{L.unit}", rng.choice(SUSPENSION_REASONS))
                susp_at, will_suspend = FAR, False
                pending = ("suspension", best + round(rng.triangular(30, 480, 90) * MIN_US),
                           rng.random() < r.suspension_approved)
                main = None
            elif pick == "add_assist":
                self._do(c, L, best, "add_assist", OFFICER, "需多部门联合处置，增加协办单位", unit=add_unit)
                add_at = FAR
                main = None
            else:  # an assisting unit's sign or report
                a = L.assists[pick]
                if a[1] is None:
                    self._assist_act(c, L, best, pick, "sign", ASSIST_SIGN_NOTE)
                else:
                    self._assist_act(c, L, best, pick, "resolve", rng.choice(ASSIST_REPORT_NOTES))
                    main = None  # the lead may resolve now

    def _assist_time(self, c, L, rng, code, a, office) -> int | None:
        """When the assisting unit ``code`` signs (a[1] None) or reports (a[2] None) next; None when done.
        Drawn once and kept in a[4:] (the runner's plan for it depends only on the case)."""
        if a[2] is not None:
            return None
        if a[1] is None:
            if len(a) < 5:
                begin = self.ot.in_office(a[0]) if office else a[0]
                a.append(self._after(begin, rng.triangular(3, 60, 15), office))
            return a[4]
        if len(a) < 6:
            begin = self.ot.in_office(a[1]) if office else a[1]
            left = self._left(begin, L.deadline, office)
            minutes = left / MIN_US * rng.uniform(0.1, 0.5) if left > 30 * MIN_US else rng.triangular(30, 240, 60)
            a.append(self._after(begin, minutes, office))
        return a[5]

    def _main(self, c, L, rng, entered, returned, stuck, emergency, pending, assist_planned):
        """The next step of the case's own lifecycle from its state (Simulator.next_steps), as
        (at, action, actor, note, act keywords), or None when it waits (a request's answer, the assisting
        units' reports) or has nothing left to do."""
        cat = c.category
        office = cat.clock == "working"
        ot, r = self.ot, self.rates
        state = L.state
        dl = L.deadline
        center_left = dl - entered
        unit_actor = f"sim:unit:{L.unit}"
        if state == "accepted":
            if emergency:
                m = self._tri(rng, 0.2, 2, 0.5, center_left, 0.05)
                return entered + round(m * MIN_US), "dispatch", OFFICER, "按应急预案派遣，联动协同单位", _NO_KW
            m = self._tri(rng, 1, 15, 3, center_left, 0.08)
            return entered + round(m * MIN_US), "dispatch", OFFICER, "按指挥手册派遣", _NO_KW
        if state == "rework":
            m = self._tri(rng, 2, 20, 5, center_left, 0.1)
            return entered + round(m * MIN_US), "dispatch", OFFICER, "返工重新派遣", _NO_KW
        if state == "returned":
            m = self._tri(rng, 5, 40, 15, center_left, 0.1)
            other = None
            if rng.random() < r.reassign_after_return:
                types = [cat.unit_type if t == "category" else t for t in r.reassign_unit_types]
                other = pick_unit(self.unit_index, self.chains[c.gi], types, {L.unit, *L.assists})
            if other is not None:
                return entered + round(m * MIN_US), "reassign", OFFICER, rng.choice(REASSIGN_NOTES), {"unit": other}
            return entered + round(m * MIN_US), "refuse_return", OFFICER, rng.choice(REDISPATCH_NOTES), _NO_KW
        if state == "verified":
            m = self._tri(rng, 1, 30, 5, center_left, 0.5)
            return entered + round(m * MIN_US), "close", OFFICER, "核查通过，予以结案", _NO_KW
        if state == "dispatched":
            start = ot.in_office(entered) if office else entered
            left = self._left(start, dl, office)
            if not emergency and not returned and rng.random() < r.ret:
                m = self._tri(rng, 10, 90, 30, left, 0.2)
                return self._after(start, m, office), "return", unit_actor, rng.choice(RETURN_REASONS), _NO_KW
            m = self._tri(rng, 0.5, 5, 1.5, left, 0.1) if emergency else self._tri(rng, 3, 60, 15, left, 0.15)
            return self._after(start, m, office), "sign", unit_actor, "已签收", _NO_KW
        if state == "signed":
            if pending is not None or assist_planned:
                return None
            waited = None
            for a in L.assists.values():
                if a[2] is None:
                    return None
                waited = a[2] if waited is None or a[2] > waited else waited
            start = ot.in_office(entered) if office else entered
            note = self.closing_notes[cat.code]
            late = rng.random() < r.late * r.late_by_district.get(c.district, 1.0)
            frac = rng.uniform(0.2, 0.75)
            left = self._left(start, dl, office)
            if stuck:
                days = rng.uniform(*r.stuck_working_days)
                at = ot.add(max(dl, start), round(days * ot.day_us))
            elif late or left <= 3 * MIN_US:
                since = L.stamps["dispatched_at"]  # the handling clock runs from 派遣
                allowed = max(self._left(since, dl, office), 30 * MIN_US)
                at = self._after(max(dl, start), allowed * rng.uniform(0.05, 0.5) / MIN_US, office)
            else:
                at = self._after(start, left * frac / MIN_US, office)
            if waited is not None and at < waited:
                at = waited
            return at, "resolve", unit_actor, note, _NO_KW
        if state == "resolved":
            start = ot.in_office(entered) if office else entered
            left = self._left(start, dl, office)
            actor = f"sim:grid:{c.grid}" if cat.kind == "grid" else OFFICER
            m = self._tri(rng, 5, 60, 20, left, 0.5) if emergency else self._tri(rng, 10, 240, 45, left, 0.5)
            at = self._after(start, m, office)
            if not emergency and not L.reworks and rng.random() < r.rework:
                return at, "rework", actor, rng.choice(REWORK_REASONS), _NO_KW
            return at, "verify", actor, "现场核查，符合结案标准", _NO_KW
        if state == "suspended":
            days = rng.triangular(*r.suspension_days)
            return entered + round(days * DAY_US), "resume", OFFICER, RESUME_NOTE, _NO_KW
        if state == "closed":
            if c.source not in r.callback_sources:
                return None
            called = L.stamps["callback_at"]
            if called is None or called < L.stamps["closed_at"]:
                if rng.random() >= r.callback:
                    return None
                at = entered + round(rng.triangular(*r.callback_hours) * HOUR_US)
                answer = r.draw_satisfaction(rng.random())
                return at, "callback", OFFICER, CALLBACK_NOTES[answer], {"satisfaction": answer}
            if L.cb_result == "unsatisfied" and not L.reopens and rng.random() < r.reopen_unsatisfied:
                at = called + round(rng.triangular(10, 120, 30) * MIN_US)
                return at, "reopen", OFFICER, rng.choice(REOPEN_NOTES), _NO_KW
            return None
        raise AssertionError(f"no next step from {state}")


class _Life:
    """The columns of a made case as act() keeps them, on integer times (microseconds since the epoch)."""

    __slots__ = ("state", "unit", "level", "deadline", "warning", "stamps", "pending", "susp_req", "before",
                 "remaining", "check_result", "supervised", "sup_level", "sup_deadline", "urges", "reassigns",
                 "reopens", "reworks", "extensions", "penalty", "cb_result", "cb_note", "assists", "urged",
                 "sup_marked", "hand_since")

    def __init__(self, unit, level, deadline):
        self.state, self.unit, self.level, self.deadline, self.warning = "reported", unit, level, deadline, None
        self.stamps = dict.fromkeys(_STAMP_COLUMNS)
        self.pending = self.susp_req = self.before = self.remaining = self.check_result = None
        self.supervised, self.sup_level, self.sup_deadline = False, None, None
        self.urges = self.reassigns = self.reopens = self.reworks = self.extensions = 0
        self.penalty = 0.0
        self.cb_result = self.cb_note = None
        self.assists: dict[str, list] = {}   # unit -> [added, signed, reported, note, planned sign, planned report]
        self.urged = self.sup_marked = None  # the deadlines the scheduler reminded for (auto_*_deadline)
        self.hand_since = 0



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
                "rejected_at", "dispatched_at", "resolved_at", "closed_at", "deadline_at", "updated_at",
                # the lifecycle's columns of issue 14 (dispatch/lifecycle.py), after the older ones
                "auto_supervised_deadline", "warning_at", "signed_at", "verified_at", "voided_at", "returned_at",
                "suspended_at", "resumed_at", "check_requested_at", "checked_at", "callback_at",
                "suspension_requested_at", "state_before_suspension", "suspension_remaining_hours", "check_result",
                "supervision_level", "supervision_deadline", "urge_count", "reassign_count", "reopen_count",
                "penalty_points", "callback_result", "callback_note")
HISTORY_COLUMNS = ("case_id", "at", "actor", "action", "from_state", "to_state", "note", "details")
EVENT_COLUMNS = ("case_id", "type", "at", "grid_code", "unit_code")
ASSIST_COLUMNS = ("case_id", "unit_code", "added_at", "signed_at", "reported_at", "report_note")
SUPERVISION_COLUMNS = ("case_id", "kind", "unit_code", "level", "at", "deadline_at", "for_deadline", "actor",
                       "automatic", "rule", "note")
PENALTY_COLUMNS = ("case_id", "unit_code", "points", "rule", "reason", "at")
# a merged report's lifecycle columns: never touched (the ORM's and intake's defaults)
_MERGED_TAIL = (None,) * 17 + (0, 0, 0, 0.0, None, None)
_LATER_STAMPS = ("signed_at", "verified_at", "voided_at", "returned_at", "suspended_at", "resumed_at",
                 "check_requested_at", "checked_at", "callback_at")


def _ts_or_none(us: int | None) -> str | None:
    return None if us is None else _ts(us)


def _rows(cases: list[_Case], dedupe_m: float, dedupe_h: float):
    """(case rows, history rows, event rows, 协办 rows, 催办/督办 rows, 扣分 rows) of cases with ids;
    history and events in time order."""
    case_rows = []
    assist_rows, supervision_rows, penalty_rows = [], [], []
    pairs = []   # (sort key, history row, event row); the key packs (at, case id < 2**40, version < 2**16)
    null = "null"  # act() writes the JSON null when a transition has no details; intake writes SQL NULL
    meters, hours = f"{dedupe_m:g}", f"{dedupe_h:g}"
    dumps = json.dumps
    ts = _ts
    for c in cases:
        cid = c.id
        rep = ts(c.reported)
        occurred = ts(c.occurred) if c.occurred is not None else None
        if c.merged_into is not None:
            target = c.merged_into
            case_rows.append((
                cid, "merged", 1, c.category.code, target.category.kind, c.source, c.description, c.lon, c.lat,
                c.grid, c.district, c.severity, c.phone, 1, c.key, None, None, None,
                f"与案件 #{target.id} 同类且相距不足 {meters} 米、{hours} 小时内，合并", False,
                target.category.time_unit, None, None, target.id, False, 0, 0, 0, occurred, rep, None, None, None,
                None, None, None, rep) + _MERGED_TAIL)
            pairs.append((((c.reported << 40 | cid) << 16), (cid, rep, reporter(c.source, c.grid), "merge", None, "merged",
                                                 f"重复上报，已合并到案件 #{target.id}", None),
                          (cid, "created", rep, c.grid, None)))
            continue
        cat = c.category
        L = c.life
        version, reporters, updated = 1, 1, rep
        grid = c.grid
        pairs.append((((c.reported << 40 | cid) << 16), (cid, rep, reporter(c.source, c.grid), "report", None, "reported",
                                             f"{SOURCE_LABELS[c.source]}上报；{c.reason}", None),
                      (cid, "created", rep, grid, c.unit)))
        timeline = c.moves
        if c.merges:
            timeline = sorted([(m[0], 0, m) for m in c.moves] + [(t, 1, dup) for t, dup in c.merges],
                              key=lambda x: (x[0], x[1]))
            timeline = [x[2] if x[1] == 0 else ("merge", x[0], x[2]) for x in timeline]
        state, unit = "reported", c.unit
        for m in timeline:
            if m[0] == "merge":
                _, at, dup = m
                version += 1
                reporters += 1
                updated = s = ts(at)
                pairs.append((((at << 40 | dup.id) << 16 | 1), (cid, s, reporter(dup.source, dup.grid), "merge", state, state,
                                                f"合并重复上报 #{dup.id}（第 {reporters} 位上报人）", None),
                              (cid, "updated", s, grid, unit)))
                continue
            at, action, state, actor, note, details, frm, unit = m
            version += 1
            updated = s = ts(at)
            pairs.append((((at << 40 | cid) << 16 | version),
                          (cid, s, actor, action, frm, state, note, null if details is None else dumps(details)),
                          (cid, "updated", s, grid, unit)))
        st = L.stamps
        if L.assists:
            assist_units = dumps(list(L.assists))   # add_assist: the case's 协办 units
            for code, a in L.assists.items():
                assist_rows.append((cid, code, ts(a[0]), _ts_or_none(a[1]), _ts_or_none(a[2]), a[3]))
        else:
            assist_units = dumps(list(c.assists)) if c.assists else "[]"
        for kind, u, level, at, own, for_deadline, actor, automatic, rule, note in c.supervision:
            supervision_rows.append((cid, kind, u, level, ts(at), _ts_or_none(own), _ts_or_none(for_deadline),
                                     actor, automatic, rule, note))
        for u, points, rule, reason, at in c.penalties:
            penalty_rows.append((cid, u, points, rule, reason, ts(at)))
        case_rows.append((
            cid, L.state, version, cat.code, cat.kind, c.source, c.description, c.lon, c.lat, grid, c.district,
            c.severity, c.phone, reporters, c.key, L.unit, assist_units, L.level, c.reason,
            c.upward, cat.time_unit, L.pending, _ts_or_none(L.urged), None, L.supervised,
            0, L.reworks, L.extensions, occurred, rep, _ts_or_none(st["accepted_at"]), _ts_or_none(st["rejected_at"]),
            _ts_or_none(st["dispatched_at"]), _ts_or_none(st["resolved_at"]), _ts_or_none(st["closed_at"]),
            _ts_or_none(L.deadline), updated,
            _ts_or_none(L.sup_marked), _ts_or_none(L.warning), *(_ts_or_none(st[k]) for k in _LATER_STAMPS),
            _ts_or_none(L.susp_req), L.before, L.remaining, L.check_result, L.sup_level, _ts_or_none(L.sup_deadline),
            L.urges, L.reassigns, L.reopens, L.penalty, L.cb_result, L.cb_note))
    pairs.sort(key=_first)  # by time, then by the case whose transaction wrote the row, then its version
    return (case_rows, [p[1] for p in pairs], [p[2] for p in pairs], assist_rows, supervision_rows,
            penalty_rows)


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
    assists: list[tuple] = field(default_factory=list)
    supervision: list[tuple] = field(default_factory=list)
    penalties: list[tuple] = field(default_factory=list)


def _prepare(cases: list[_Case], spans: list[tuple[int, int]], first_id: int, dedupe_m: float,
             dedupe_h: float) -> _Chunk:
    cases.sort(key=lambda c: c.reported)  # ids in report order, as intake gives them
    for i, c in enumerate(cases):
        c.id = first_id + i
    case_rows, history, events, assists, supervision, penalties = _rows(cases, dedupe_m, dedupe_h)
    by_state = Counter(row[1] for row in case_rows)
    for c in cases:  # the links between cases are cycles: cut them, so the cases go with their last reference
        c.merges, c.merged_into = [], None
    return _Chunk(spans, first_id, case_rows, history, events, by_state, by_state["merged"], assists, supervision,
                  penalties)


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
    chunk.assists = [(new(r[0]), *r[1:]) for r in chunk.assists]
    chunk.supervision = [(new(r[0]), *r[1:]) for r in chunk.supervision]
    chunk.penalties = [(new(r[0]), *r[1:]) for r in chunk.penalties]
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


def _tables(chunk: _Chunk):
    """(table, columns, rows) of a chunk, in the order of their foreign keys."""
    return (("cases", CASE_COLUMNS, chunk.case_rows), ("case_history", HISTORY_COLUMNS, chunk.history),
            ("case_events", EVENT_COLUMNS, chunk.events), ("case_assists", ASSIST_COLUMNS, chunk.assists),
            ("case_supervision", SUPERVISION_COLUMNS, chunk.supervision),
            ("case_penalties", PENALTY_COLUMNS, chunk.penalties))


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
            for table, columns, rows in _tables(chunk):
                cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                f"({', '.join('?' * len(columns))})", rows)
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
            for table, columns, rows in _tables(chunk):
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
