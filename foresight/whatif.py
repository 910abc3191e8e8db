"""The what-if simulator (issue 18): the next days from today's backlog and the forecast, unchanged and changed.

A leader asks "if unit X handles 30 % less", "if a category's reports double", "if 200 more reports come from an
area"; :class:`WhatIfService` runs the next ``horizon_days`` as a 数字城管 center runs them — arrivals from the
forecast per district and day, split to categories and units by the recent mix and over the hours by the recent
hourly profile, queued FIFO at each unit behind its backlog and worked off at the unit's capacity — in Monte Carlo
replications, once unchanged and once changed on the same random draws, and answers per unit the expected overdue
cases, on-time rate and assessment score of both. docs/foresight.md, section "What-if", writes the model down.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import numpy as np
from sqlalchemy import func, or_, select, update

from data import files
from data.models import Area, Case, Category, Unit, WhatIfRun
from dispatch.access import WHATIF_RUNNERS
from dispatch.assessment_rules import AssessmentRules
from dispatch.city_time import CITY_TZ
from dispatch.errors import ServiceError
from dispatch.limits import EARLIEST_DAY, LATEST_DAY
from dispatch.whatif_rules import WhatIfRules, check_changes
from dispatch.working_time import WorkCalendar

UTC = timezone.utc
log = logging.getLogger("ucc.whatif")
Forecast = Callable[..., dict]  # (by, days, at) -> {"items": [{key, date, expected, lower, upper}], ...}
_NOT_HANDLED = ("merged", "rejected")  # never reached a unit's hands


# ---- the fallback forecast -----------------------------------------------------------------------------------
def seasonal_naive_forecast(db) -> Forecast:
    """A forecast callable for the simulator: each day expects what the same weekday brought a week before (or two,
    three weeks before for days a week or more ahead) — the baseline every model is measured against, and what the
    simulator falls back to when the model's forecast fails."""

    def forecast(by: str = "district", days: int = 7, at: datetime | None = None, area=None) -> dict:
        from figures.case_counts import daily_counts  # pandas: only when a run needs it, not at every app start

        at = at or datetime.now(UTC)
        today = at.astimezone(CITY_TZ).date()
        wanted = [today + timedelta(days=i) for i in range(days)]
        back = {d: d - timedelta(days=7 * (1 + (d - today).days // 7)) for d in wanted}
        with db.session() as s:
            frame = daily_counts(s, by, min(back.values()), max(back.values()))
        seen = {(r.key, r.day.date()): int(r.count) for r in frame.itertuples()}
        keys = sorted({k for k, _ in seen})
        items = [{"key": k, "date": d.isoformat(), "expected": float(seen.get((k, back[d]), 0)),
                  "lower": None, "upper": None} for k in keys for d in wanted]
        return {"items": items, "backtest": {"model": "seasonal_naive"}}

    return forecast


# ---- the inputs, read once per run -------------------------------------------------------------------------------
@dataclass
class World:
    """What the simulation needs of the city as of `at`, as arrays indexed by unit, category and horizon hour."""

    at: datetime
    hours: int
    units: list[str]
    unit_names: dict[str, str]
    unit_areas: dict[str, str]
    categories: list[str]
    cat_kind: dict[str, str]
    capacity: np.ndarray        # (U, H) cases a unit can resolve in each horizon hour
    rework: np.ndarray          # (U,) the unit's recent rework rate (None as nan)
    backlog_unit: np.ndarray    # (B,) unit index, FIFO order (dispatched first first)
    backlog_deadline: np.ndarray  # (B,) hours from `at` (inf: no deadline)
    districts: list[str]
    arrivals: np.ndarray        # (D, H) expected reports per district and horizon hour
    hour_weight: np.ndarray     # (H,) the share of a horizon day's reports in each hour (sums to days)
    mix: dict[str, tuple[np.ndarray, np.ndarray]]  # district → ((P, 2) category, unit indices; (P,) probabilities)
    city_mix: tuple[np.ndarray, np.ndarray]
    history: list[tuple[str, str, str | None, int, int, int]]  # (district, grid, source, cat, unit, n) of the window
    grid_parents: dict[str, str]
    deadline_table: np.ndarray  # (K, Q) deadline in hours from `at` of a case reaching its unit at quarter q
    cat_clock: np.ndarray       # (C,) row of deadline_table for each category
    forecast_source: str


def _local(t: datetime) -> datetime:
    return t.astimezone(CITY_TZ)


def _day_start(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time(), CITY_TZ).astimezone(UTC)


def _mix_of(pairs: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(category, unit) pairs and their shares, of (category, unit, count) rows."""
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    arr = np.asarray(pairs, dtype=np.int64)
    uniq, inverse = np.unique(arr[:, :2], axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=arr[:, 2].astype(float), minlength=len(uniq))
    return uniq, counts / counts.sum()


def backlog_rows(s, at: datetime) -> list:
    """The cases in a unit's hands at `at` — dispatched by then, not yet resolved, closed, voided, merged or rejected,
    not on hold (挂账) then — as (unit, deadline, dispatched at), in the order they were dispatched."""
    on_hold = (Case.suspended_at.is_not(None) & (Case.suspended_at <= at)
               & (Case.resumed_at.is_(None) | (Case.resumed_at > at) | (Case.resumed_at < Case.suspended_at)))
    return s.execute(select(Case.unit_code, Case.deadline_at, Case.dispatched_at).where(
        Case.unit_code.is_not(None), Case.dispatched_at <= at, Case.state.not_in(_NOT_HANDLED),
        or_(Case.resolved_at.is_(None), Case.resolved_at > at), or_(Case.closed_at.is_(None), Case.closed_at > at),
        or_(Case.voided_at.is_(None), Case.voided_at > at), ~on_hold,
    ).order_by(Case.dispatched_at, Case.id)).all()


def load_world(db, forecast: Forecast, rules: WhatIfRules, calendar: WorkCalendar, at: datetime,
               fallback: Forecast | None = None) -> World:
    """Reads the backlog as of `at`, the window's resolutions, case mix and hourly profile, and the forecast."""
    from figures.case_counts import hourly_counts  # pandas: only when a run needs it, not at every app start

    H = rules.horizon_days * 24
    today = _local(at).date()
    first = today - timedelta(days=rules.history_days)
    w_start, w_end = _day_start(first), _day_start(today)
    with db.session() as s:
        units = {u.code: u for u in s.scalars(select(Unit))}
        cats = {c.code: (c.kind, c.time_limit, c.time_unit) for c in s.scalars(select(Category))}
        grid_parents = dict(s.execute(select(Area.code, Area.parent_code)).all())
        backlog = backlog_rows(s, at)
        resolved = s.execute(select(Case.unit_code, Case.resolved_at, Case.rework_count).where(
            Case.unit_code.is_not(None), Case.resolved_at >= w_start, Case.resolved_at < w_end)).all()
        cols = (Case.district_code, Case.grid_code, Case.source, Case.category_code, Case.unit_code)
        history = s.execute(select(*cols, func.count()).where(
            Case.unit_code.is_not(None), Case.reported_at >= w_start, Case.reported_at < w_end,
            Case.state.not_in(_NOT_HANDLED)).group_by(*cols)).all()
        profile_rows = hourly_counts(s, "city", w_start, w_end)
    unit_codes = sorted({c for c, u in units.items() if u.active} | {r[0] for r in backlog}
                        | {r[4] for r in history} | {r[0] for r in resolved})
    unit_codes = [c for c in unit_codes if c in units]
    u_index = {c: i for i, c in enumerate(unit_codes)}
    cat_codes = sorted(cats)
    c_index = {c: i for i, c in enumerate(cat_codes)}
    U = len(unit_codes)

    # horizon hours: local hour of day and whether the day is a working day
    mids = [_local(at + timedelta(hours=h + 0.5)) for h in range(H)]
    hour_of_day = np.array([m.hour for m in mids])
    dates = [m.date() for m in mids]
    working = np.array([calendar.is_working_day(d) for d in dates])

    # capacity: a unit's day capacity by day type (a quantile of its resolutions per day), shaped over the hours
    days = [first + timedelta(days=i) for i in range(rules.history_days)]
    day_working = np.array([calendar.is_working_day(d) for d in days])
    per_day = np.zeros((U, len(days)))
    shape = np.zeros((2, 24))
    reworked, handled = np.zeros(U), np.zeros(U)
    for code, when, rework in resolved:
        if code not in u_index:
            continue
        loc = _local(when)
        i = (loc.date() - first).days
        if 0 <= i < len(days):
            per_day[u_index[code], i] += 1
            shape[int(day_working[i]), loc.hour] += 1
        handled[u_index[code]] += 1
        reworked[u_index[code]] += 1 if (rework or 0) > 0 else 0
    for t in (0, 1):
        shape[t] = shape[t] / shape[t].sum() if shape[t].sum() else np.full(24, 1 / 24)
    day_cap = np.zeros((U, 2))
    for t in (0, 1):
        cols = per_day[:, day_working == bool(t)]
        if cols.shape[1]:
            day_cap[:, t] = np.maximum(np.quantile(cols, rules.capacity_quantile, axis=1), cols.mean(axis=1))
    idle = day_cap.sum(axis=1) == 0  # resolved nothing in the window: the floor, on working days
    day_cap[idle, 1] = rules.capacity_floor_per_day
    capacity = day_cap[:, working.astype(int)] * shape[working.astype(int), hour_of_day][None, :]
    rework_rate = np.where(handled > 0, reworked / np.maximum(handled, 1), np.nan)

    # the backlog, FIFO: the order it was dispatched in
    b_unit = np.array([u_index[r[0]] for r in backlog if r[0] in u_index], dtype=np.int64)
    b_dead = np.array([(r[1] - at).total_seconds() / 3600 if r[1] is not None else math.inf
                       for r in backlog if r[0] in u_index], dtype=float)

    # arrivals: the forecast per district and day, over the hours by the window's hourly profile
    hod = np.zeros(24)
    for r in profile_rows.itertuples():
        hod[r.hour.hour] += r.count
    hod = hod / hod.sum() if hod.sum() else np.full(24, 1 / 24)
    hour_weight = hod[hour_of_day]
    source = "forecast"
    try:
        fc = forecast(by="district", days=rules.horizon_days + 1, at=at)
        items = list(fc["items"])
    except Exception:  # noqa: BLE001 - a failed forecast must not fail the run: the seasonal-naive one stands in
        log.exception("the forecast failed; the what-if run uses the seasonal-naive forecast")
        if fallback is None:
            raise
        items, source = list(fallback(by="district", days=rules.horizon_days + 1, at=at)["items"]), "seasonal_naive"
    expected: dict[str, dict[date, float]] = {}
    for it in items:
        d = it["date"] if isinstance(it["date"], date) else date.fromisoformat(str(it["date"])[:10])
        expected.setdefault(str(it["key"]), {})[d] = max(0.0, float(it["expected"] or 0.0))
    districts = sorted(expected)
    arrivals = np.zeros((len(districts), H))
    for k, dist in enumerate(districts):
        by_day = expected[dist]
        mean = sum(by_day.values()) / len(by_day) if by_day else 0.0
        by_weekday = {d.weekday(): v for d, v in by_day.items()}
        day_value = {d: by_day.get(d, by_weekday.get(d.weekday(), mean)) for d in set(dates)}
        arrivals[k] = np.array([day_value[d] for d in dates]) * hour_weight

    # the mix: which category and unit a district's reports were, in the window
    hist = [(d, g, src, c_index[c], u_index[u], n) for d, g, src, c, u, n in history
            if c in c_index and u in u_index]
    by_district: dict[str, list] = {}
    for d, _g, _s, c, u, n in hist:
        by_district.setdefault(d, []).append((c, u, n))
    mix = {d: _mix_of(p) for d, p in by_district.items()}
    city_mix = _mix_of([(c, u, n) for _d, _g, _s, c, u, n in hist])

    # handling deadlines: the category's limit on its clock from the quarter hour the case reaches its unit
    clocks = sorted({(float(v[1]), v[2]) for v in cats.values()})
    k_index = {k: i for i, k in enumerate(clocks)}
    Q = 4 * (H + 1)
    table = np.zeros((len(clocks), Q))
    for i, (limit, unit) in enumerate(clocks):
        for q in range(Q):
            start = at + timedelta(minutes=15 * q)
            table[i, q] = (calendar.working_deadline(start, limit, unit) - at).total_seconds() / 3600
    cat_clock = np.array([k_index[(float(cats[c][1]), cats[c][2])] for c in cat_codes], dtype=np.int64)

    return World(at=at, hours=H, units=unit_codes, unit_names={c: units[c].name for c in unit_codes},
                 unit_areas={c: units[c].area_code for c in unit_codes}, categories=cat_codes,
                 cat_kind={c: v[0] for c, v in cats.items()}, capacity=capacity, rework=rework_rate,
                 backlog_unit=b_unit, backlog_deadline=b_dead, districts=districts, arrivals=arrivals,
                 hour_weight=hour_weight, mix=mix, city_mix=city_mix, history=hist, grid_parents=grid_parents,
                 deadline_table=table, cat_clock=cat_clock, forecast_source=source)


def _area_mix(world: World, area: str, source: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The mix of the window's reports from within `area` (of `source`, when it has any), else its district's,
    else the city's."""
    def within(grid: str) -> bool:
        code = grid
        while code is not None:
            if code == area:
                return True
            code = world.grid_parents.get(code)
        return False

    inside = [(src, c, u, n) for _d, g, src, c, u, n in world.history if within(g)]
    for pick in ([(c, u, n) for src, c, u, n in inside if src == source] if source else [],
                 [(c, u, n) for _src, c, u, n in inside]):
        if pick:
            return _mix_of(pick)
    up, district = area, None
    while up is not None:
        if up in world.mix:
            district = up
        up = world.grid_parents.get(up)
    return world.mix.get(district) or world.city_mix


# ---- one replication ---------------------------------------------------------------------------------------------
def _draw(rng, lam: np.ndarray, mix, lag: float, H: int, fixed: int | None = None):
    """Reports over the horizon at rate `lam` per hour (Poisson; or exactly `fixed` of them spread by `lam`), each a
    (category, unit) drawn from `mix`: (arrival hour at the unit, category, unit, a uniform for thinning)."""
    pairs, probs = mix
    total = lam.sum()
    if len(probs) == 0 or total <= 0:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    counts = rng.multinomial(fixed, lam / total) if fixed is not None else rng.poisson(lam)
    n = int(counts.sum())
    t = np.repeat(np.arange(H, dtype=float), counts) + rng.random(n) + lag
    which = rng.choice(len(probs), size=n, p=probs)
    return t, pairs[which, 0], pairs[which, 1], rng.random(n)


def _resolve(world: World, units: np.ndarray, t: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """When each case is resolved (hours from `at`; inf: not within the horizon), each unit working its cases
    first come first served at its capacity: the k-th case of a unit ends where the unit's cumulative capacity
    reaches D_k = max(C(a_k), D_{k-1}) + 1, i.e. D_k = k + 1 + max_{i<=k}(C(a_i) - i) — Lindley's recursion, so
    every queue of every unit is one sort and one cumulative maximum."""
    n = len(t)
    if n == 0:
        return np.zeros(0)
    H = world.hours
    order = np.lexsort((t, units))
    u, ts = units[order], t[order]
    h = np.minimum(np.floor(np.clip(ts, 0, H)).astype(np.int64), H - 1)
    frac = np.clip(ts, 0, H) - h
    ca = cum[u, h] + frac * (cum[u, h + 1] - cum[u, h])
    starts = np.searchsorted(u, u, side="left")
    j = np.arange(n) - starts
    big = float(cum.max()) + n + 2
    run = np.maximum.accumulate(ca - j + u * big) - u * big
    d = j + 1 + run
    done_at = np.full(n, math.inf)
    ok = d <= cum[u, H]
    big2 = float(cum.max()) + 2
    flat = (cum + np.arange(cum.shape[0])[:, None] * big2).ravel()
    pos = np.searchsorted(flat, d[ok] + u[ok] * big2, side="left")
    h1 = np.clip(pos - u[ok] * (H + 1), 1, H)  # (a D equal to the unit's last C may round past its row)
    lo, hi = cum[u[ok], h1 - 1], cum[u[ok], h1]
    done_at[ok] = (h1 - 1) + (d[ok] - lo) / np.where(hi > lo, hi - lo, 1.0)
    out = np.empty(n)
    out[order] = done_at
    return out


def _tally(world: World, units: np.ndarray, deadline: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Per unit (rows): cases, resolved, late, overdue at the horizon, due, handled (due and resolved), on time —
    the assessment's unit figures over the horizon (figures/assessment.py: due = the deadline falls in the period
    or the case was resolved in it before its deadline)."""
    H, U = world.hours, len(world.units)
    resolved = done <= H
    late = resolved & (done > deadline)
    overdue = ~resolved & (deadline < H)
    on_time = resolved & (done <= deadline)
    due = ((deadline >= 0) & (deadline < H)) | on_time
    cols = (np.ones_like(done, dtype=bool), resolved, late, overdue, due, due & resolved, due & on_time)
    return np.stack([np.bincount(units, weights=c.astype(float), minlength=U) for c in cols])


FIELDS = ("cases", "resolved", "late", "overdue", "due", "handled", "on_time")


class Simulation:
    """The replications of one what-if: baseline and changed runs on common random numbers."""

    def __init__(self, world: World, changes: list[dict], rules: WhatIfRules):
        self.world, self.changes, self.rules = world, changes, rules
        U, C = len(world.units), len(world.categories)
        u_index = {c: i for i, c in enumerate(world.units)}
        c_index = {c: i for i, c in enumerate(world.categories)}
        self.unit_factor = np.ones(U)
        self.cat_factor = np.ones(C)
        self.extras = []
        self.notes: list[str] = []  # what the run could not do, for the leader (Chinese)
        for ch in changes:
            if ch["kind"] == "unit_capacity":
                if ch["unit"] in u_index:  # an inactive unit without cases has nothing to change
                    self.unit_factor[u_index[ch["unit"]]] *= ch["factor"]
            elif ch["kind"] == "category_volume":
                for code in ch["categories"]:
                    self.cat_factor[c_index[code]] *= ch["factor"]
            else:
                mix = _area_mix(world, ch["area"], ch.get("source"))
                if not len(mix[1]):
                    self.notes.append(f"区域 {ch['area']} 及全市近 {rules.history_days} 天没有已派遣的案件可参照，"
                                      f"新增的 {ch['count']} 件上报无法分派到部门，未计入")
                self.extras.append((mix, ch["count"]))
        cap = world.capacity
        self.cum_base = np.concatenate([np.zeros((U, 1)), np.cumsum(cap, axis=1)], axis=1)
        self.cum_changed = self.cum_base * self.unit_factor[:, None]
        self.base_sum = np.zeros((len(FIELDS), U))
        self.changed_sum = np.zeros((len(FIELDS), U))
        self.overdue_runs: list[tuple[np.ndarray, np.ndarray]] = []
        self.done = 0

    def _deadlines(self, t: np.ndarray, cats: np.ndarray) -> np.ndarray:
        q = np.clip(np.floor(t * 4).astype(np.int64), 0, self.world.deadline_table.shape[1] - 1)
        return self.world.deadline_table[self.world.cat_clock[cats], q] + (t - q / 4)

    def replicate(self) -> None:
        w, rules, H, r = self.world, self.rules, self.world.hours, self.done
        rng = np.random.default_rng([rules.seed, r])        # the draws both runs share
        extra_rng = np.random.default_rng([rules.seed, r, 1])  # the changed run's additional reports
        parts = [(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))]  # a city without reports
        lag = rules.dispatch_lag_hours
        for k, dist in enumerate(w.districts):
            mix = w.mix.get(dist) or w.city_mix
            parts.append(_draw(rng, w.arrivals[k], mix, lag, H))
        t, cat, unit, thin = (np.concatenate([p[i] for p in parts]) for i in range(4))
        keep = t < H
        t, cat, unit, thin = t[keep], cat[keep].astype(np.int64), unit[keep].astype(np.int64), thin[keep]
        b_unit, b_dead = w.backlog_unit, w.backlog_deadline
        b_t = np.zeros(len(b_unit))  # at its unit from the start, ahead of every new case (stable sort)
        dead = self._deadlines(t, cat)

        def run(t_, cat_, unit_, dead_, cum):
            units = np.concatenate([b_unit, unit_])
            times = np.concatenate([b_t - 1e-9 * (len(b_t) - np.arange(len(b_t))), t_])
            deadline = np.concatenate([b_dead, dead_])
            return _tally(w, units, deadline, _resolve(w, units, times, cum))

        base = run(t, cat, unit, dead, self.cum_base)
        # the changed run: the same reports, thinned or added to where a category's volume changes, plus the extras
        f = self.cat_factor[cat]
        kept = thin < np.minimum(f, 1.0)
        add = []
        more = np.maximum(self.cat_factor - 1.0, 0.0)
        if more.any():
            for k, dist in enumerate(w.districts):
                pairs, probs = w.mix.get(dist) or w.city_mix
                if not len(probs):
                    continue
                weight = probs * more[pairs[:, 0]]
                if weight.sum() > 0:
                    add.append(_draw(extra_rng, w.arrivals[k] * weight.sum(), (pairs, weight / weight.sum()), lag, H))
        for mix, count in self.extras:
            add.append(_draw(extra_rng, w.hour_weight, mix, lag, H, fixed=count))
        t2, cat2, unit2 = t[kept], cat[kept], unit[kept]
        if add:
            at_ = np.concatenate([a[0] for a in add])
            ok = at_ < H
            ac, au = (np.concatenate([a[i] for a in add])[ok].astype(np.int64) for i in (1, 2))
            t2, cat2, unit2 = np.concatenate([t2, at_[ok]]), np.concatenate([cat2, ac]), np.concatenate([unit2, au])
        changed = run(t2, cat2, unit2, self._deadlines(t2, cat2), self.cum_changed)
        self.base_sum += base
        self.changed_sum += changed
        self.overdue_runs.append((base[FIELDS.index("overdue")], changed[FIELDS.index("overdue")]))
        self.done += 1

    def result(self, assessment: AssessmentRules) -> dict:
        w, R = self.world, max(self.done, 1)
        scoring = assessment.scoring["unit"]
        U = len(w.units)
        over = {}
        for side, k in (("baseline", 0), ("changed", 1)):
            runs = np.array([r[k] for r in self.overdue_runs]).reshape(-1, U)
            runs = np.concatenate([runs, runs.sum(axis=1, keepdims=True)], axis=1)  # the last column: the city
            over[side] = np.quantile(runs, [0.1, 0.9], axis=0) if len(runs) else np.zeros((2, U + 1))

        def figures(sums: np.ndarray, spread: np.ndarray, rows, rework: float | None) -> dict:
            whole = not isinstance(rows, int)
            f = dict(zip(FIELDS, sums[:, rows].sum(axis=1) if whole else sums[:, rows]))
            p10, p90 = spread[:, U if whole else rows]  # percentiles of all units at once: one call, not one a unit
            due = f["due"]
            item = {"cases": f["cases"] / R, "resolved": f["resolved"] / R, "late": f["late"] / R,
                    "overdue": f["overdue"] / R, "overdue_p10": float(p10), "overdue_p90": float(p90),
                    "due": due / R,
                    "on_time_rate": f["on_time"] / due if due else None,
                    "handling_rate": f["handled"] / due if due else None,
                    "rework_rate": rework}
            item["score"] = round(scoring.score({"on_time_handling_rate": item["on_time_rate"],
                                                 "handling_rate": item["handling_rate"],
                                                 "rework_rate": rework}), 4) if due else None
            return {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in item.items()}

        def diff(b: dict, c: dict) -> dict:
            return {k: (round(c[k] - b[k], 4) if b[k] is not None and c[k] is not None else None)
                    for k in ("overdue", "on_time_rate", "handling_rate", "resolved", "score")}

        units = []
        for i, code in enumerate(w.units):
            if self.base_sum[0, i] == 0 and self.changed_sum[0, i] == 0:
                continue
            rework = None if math.isnan(w.rework[i]) else round(float(w.rework[i]), 4)
            b = figures(self.base_sum, over["baseline"], i, rework)
            c = figures(self.changed_sum, over["changed"], i, rework)
            units.append({"code": code, "name": w.unit_names[code], "area": w.unit_areas[code],
                          "baseline": b, "changed": c, "difference": diff(b, c)})
        units.sort(key=lambda x: (-abs(x["difference"]["overdue"]), x["code"]))
        every = np.arange(len(w.units))
        handled = self.base_sum[FIELDS.index("handled")]
        rw = np.nan_to_num(w.rework) @ handled / handled.sum() if handled.sum() else None
        city_b = figures(self.base_sum, over["baseline"], every, None if rw is None else round(float(rw), 4))
        city_c = figures(self.changed_sum, over["changed"], every, city_b["rework_rate"])
        return {"as_of": w.at.isoformat(), "end": (w.at + timedelta(hours=w.hours)).isoformat(),
                "horizon_days": w.hours // 24, "replications": self.done, "changes": self.changes,
                "city": {"baseline": city_b, "changed": city_c, "difference": diff(city_b, city_c)},
                "units": units, "notes": self.notes,
                "inputs": {"backlog": int(len(w.backlog_unit)), "expected_reports": round(float(w.arrivals.sum()), 1),
                           "forecast": w.forecast_source, "discipline": "fifo"}}


# ---- the service ------------------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


class WhatIfService:
    """Submits what-if runs (a row in whatif_runs, run in a daemon thread) and answers their progress and result to
    any server process (from the row)."""

    def __init__(self, db, forecast: Forecast, rules: WhatIfRules | None = None, *,
                 calendar: WorkCalendar | None = None, assessment: AssessmentRules | None = None,
                 clock: Callable[[], datetime] | None = None, fallback: Forecast | None = None,
                 wall_clock: Callable[[], datetime] | None = None):
        self.db, self.forecast = db, forecast
        self.rules = rules or files.whatif_rules()
        self.calendar = calendar or files.calendar()
        self.assessment = assessment or files.assessment_rules()
        self.clock = clock or (lambda: datetime.now(UTC))  # the platform's now: a run's default `at`
        # real time: when a run was submitted and finished, and whether it outlived its budget (a demo's case clock
        # may run fast; the thread does not)
        self.wall = wall_clock or (lambda: datetime.now(UTC))
        self.fallback = fallback or seasonal_naive_forecast(db)
        self.threads: dict[int, threading.Thread] = {}

    # -- checks
    def _may(self, principal) -> None:
        if principal is None or principal.role not in WHATIF_RUNNERS:
            raise ServiceError(403, "forbidden", "只有领导、值班长和管理员可以进行态势推演")

    def _at(self, at) -> datetime:
        if at is None:
            return self.clock().astimezone(UTC)
        if isinstance(at, str):
            try:
                at = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ServiceError(400, "bad_request", f"at 应为带时区的 ISO 8601 时间，收到 {at[:60]!r}")
        if not isinstance(at, datetime):
            raise ServiceError(400, "bad_request", "at 应为带时区的 ISO 8601 时间（如 2026-12-07T09:30:00+08:00）")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ServiceError(400, "bad_request", "at 须带时区偏移（如 2026-12-07T09:30:00+08:00）")
        if not EARLIEST_DAY.year <= at.year <= LATEST_DAY.year:
            raise ServiceError(400, "bad_request", f"at 应在 {EARLIEST_DAY.year} 到 {LATEST_DAY.year} 年之间")
        return at.astimezone(UTC)

    def check(self, changes) -> list[dict]:
        """The changes normalised, or a 400 naming every bad one (unknown unit, category or area; out of bounds)."""
        with self.db.session() as s:
            units = list(s.scalars(select(Unit.code)))
            cats = dict(s.execute(select(Category.code, Category.kind)).all())
            areas = list(s.scalars(select(Area.code)))
        ok, problems = check_changes(changes, self.rules, units=units, categories=cats, areas=areas)
        if problems:
            raise ServiceError(400, "bad_request", "；".join(problems), {"problems": problems})
        return ok

    # -- running
    def run(self, changes: list[dict], at: datetime, progress: Callable[[float], None] | None = None) -> dict:
        """One what-if, here and now (the background thread's work; the bench's too): `changes` as check() left
        them. `progress` hears the share done after the inputs are read and after each replication."""
        started = time.monotonic()
        world = load_world(self.db, self.forecast, self.rules, self.calendar, at, self.fallback)
        sim = Simulation(world, changes, self.rules)
        if progress:
            progress(0.1)
        R = self.rules.replications
        for r in range(R):
            sim.replicate()
            if progress and (r + 1) % max(1, R // 20) == 0 and r + 1 < R:
                progress(0.1 + 0.85 * (r + 1) / R)
            if time.monotonic() - started > self.rules.time_budget_seconds and sim.done >= 2:
                break  # over the budget: the replications so far answer (the result says how many)
        out = sim.result(self.assessment)
        out["inputs"]["seconds"] = round(time.monotonic() - started, 3)
        return out

    def submit(self, change, principal, at=None) -> int:
        """Checks the change (a list of changes, or {changes: [...]}), writes the run (queued) and starts it in the
        background; the id to poll."""
        self._may(principal)
        if isinstance(change, dict) and "kind" not in change:
            change = change.get("changes")
        elif isinstance(change, dict):
            change = [change]
        as_of = self._at(at)
        changes = self.check(change)
        with self.db.session() as s:
            row = WhatIfRun(change={"changes": changes}, as_of=as_of, status="queued", progress=0.0,
                            created_at=self.wall(), created_by=principal.ident[:100])
            s.add(row)
            s.flush()
            run_id = row.id
        thread = threading.Thread(target=self._work, args=(run_id, changes, as_of), daemon=True,
                                  name=f"whatif-{run_id}")
        self.threads[run_id] = thread
        thread.start()
        return run_id

    def _set(self, run_id: int, **values) -> None:
        with self.db.session() as s:
            s.execute(update(WhatIfRun).where(WhatIfRun.id == run_id).values(**values))

    def _work(self, run_id: int, changes: list[dict], at: datetime) -> None:
        try:
            self._set(run_id, status="running", progress=0.0)
            result = self.run(changes, at, progress=lambda p: self._set(run_id, progress=round(p, 4)))
            self._set(run_id, status="done", progress=1.0, result=result, finished_at=self.wall())
        except Exception as exc:  # noqa: BLE001 - a run fails with its reason; it never stays 'running'
            log.exception("what-if run %s failed", run_id)
            try:
                self._set(run_id, status="failed", error=f"推演失败：{type(exc).__name__}: {exc}"[:2000],
                          finished_at=self.wall())
            except Exception:  # noqa: BLE001 - the reader's staleness rule reports it failed
                log.exception("what-if run %s: could not record the failure", run_id)
        finally:
            self.threads.pop(run_id, None)

    def get(self, run_id: int, principal=None) -> dict:
        """The run: status, progress, the change, as_of, and when done the result (per unit and the city). A run
        queued or running for longer than three time budgets (its process died) is reported failed."""
        if principal is not None:
            self._may(principal)
        with self.db.session() as s:
            row = s.get(WhatIfRun, run_id)
            if row is None:
                raise ServiceError(404, "not_found", f"推演 {run_id} 不存在")
            status, error, finished = row.status, row.error, row.finished_at
            stale = self.wall() - row.created_at > timedelta(
                seconds=3 * self.rules.time_budget_seconds)
            if status in ("queued", "running") and stale:
                status, error = "failed", "推演超时未完成（运行进程可能已中断），请重新提交"
                s.execute(update(WhatIfRun).where(WhatIfRun.id == run_id, WhatIfRun.status.in_(("queued", "running")))
                          .values(status=status, error=error, finished_at=self.wall()))
                finished = self.wall()
            out = {"id": row.id, "status": status, "progress": float(row.progress or 0.0), "change": row.change,
                   "as_of": _iso(row.as_of), "created_at": _iso(row.created_at), "created_by": row.created_by,
                   "finished_at": _iso(finished)}
            if status == "done":
                out["result"] = row.result
            if status == "failed":
                out["error"] = error
        return out

    def wait(self, run_id: int, timeout: float | None = None) -> None:
        """Waits for this process's thread of the run (the CLI and tests; a server polls get())."""
        thread = self.threads.get(run_id)
        if thread is not None:
            thread.join(timeout)
