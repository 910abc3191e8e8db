"""Surges: counts per street, grid and street × category in the window of a check against what was expected
there, and a finding where a count rises beyond the upper bound of its prediction interval (docs/foresight.md)."""
from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import select

from data import files
from data.models import Area, Case
from dispatch.city_time import CITY_TZ
from dispatch.forecast_rules import ForecastRules
from figures.case_counts import ancestor_of_grids, case_ids, grid_category_counts
from foresight.calendar_features import day_features, day_types
from foresight.findings import Finding
from foresight.forecast import ForecastService, _check_at, count_distribution

UTC = timezone.utc
PRIOR = 0.5  # cases added to every area's history before its share is taken: no area is expected to be empty
# What a check reads of the days before its window (the districts' forecasts, the hour profile, the history per grid
# and category) is the same for every check of the same day: kept for the day's later checks (a day's window starts
# at midnight; an hourly check then reads only its window). Keyed by database and window start; a few kept.
_BEFORE: OrderedDict = OrderedDict()
_BEFORE_LOCK = threading.Lock()
_BEFORE_SIZE = 4


@dataclass
class SurgeCheck:
    """One check's findings, and how many areas (or street × category pairs) each level tested: the
    denominator of a false-alarm rate."""

    window_start: datetime
    window_end: datetime
    findings: list[Finding] = field(default_factory=list)
    tested: dict[str, int] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)  # each district's expected count in the window


def window_of(at: datetime, rules: ForecastRules) -> tuple[datetime, datetime, datetime]:
    """(window start, window end, the end of what is observed): the local day of `at` (observed until `at`), or
    the rules' hours before `at` (the check's hour)."""
    if rules.surge_window == "day":
        start = datetime.combine(at.astimezone(CITY_TZ).date(), datetime.min.time(), CITY_TZ)
        return start, start + timedelta(days=1), at
    end = at.astimezone(CITY_TZ).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=rules.surge_window), end, end


def _before_window(db, svc: ForecastService, s, start: datetime, days: int, history_start: datetime, rules):
    """The districts' forecasts as of the window's start, the hour profile and the history per grid and category
    before it: read once per window start (see _BEFORE)."""
    key = (str(getattr(db, "url", id(db))), start.isoformat(), days, history_start.isoformat(), repr(rules))
    with _BEFORE_LOCK:
        if key in _BEFORE:
            _BEFORE.move_to_end(key)
            return _BEFORE[key]
    value = (svc.forecasts("district", days, start), svc.hour_profile(s, history_start, start),
             grid_category_counts(s, history_start, start))
    with _BEFORE_LOCK:
        _BEFORE[key] = value
        while len(_BEFORE) > _BEFORE_SIZE:
            _BEFORE.popitem(last=False)
    return value


def _expected_in_window(svc: ForecastService, forecasts, profile, start: datetime, until: datetime):
    """Each district's expected count in [start, until), and the dispersion of its count model: the day's
    forecast (as of the window's start: nothing of the window is seen) spread over the hours by the hour-of-day
    profile of its day type."""
    first, fcs = forecasts
    hours, weights = [], []
    t = start.astimezone(CITY_TZ)
    while t < until:
        step_end = min(t + timedelta(hours=1), until)
        hours.append(t)
        weights.append((step_end - t) / timedelta(hours=1))
        t = step_end
    kinds = day_types(day_features([h.date() for h in hours], svc.calendar)) if hours else []
    out = {}
    for fc in fcs:
        total = 0.0
        for h, w, kind in zip(hours, weights, kinds):
            total += fc.expected[(h.date() - first).days] * profile[kind][h.hour] * w
        out[fc.key] = (float(total), fc.fit.alpha if fc.fit is not None else None, fc.method)
    return out


def check(db, at: datetime, rules: ForecastRules | None = None, calendar=None,
          service: ForecastService | None = None) -> SurgeCheck:
    """The surge check as of `at` (only cases reported before it are read): see the module's docstring."""
    rules = rules or files.forecast_rules()
    at = _check_at(at)
    svc = service or ForecastService(db, calendar or files.calendar(), rules)
    start, end, until = window_of(at, rules)
    result = SurgeCheck(start, end)
    history_start = start - timedelta(days=rules.surge_history_days)
    with db.session() as s:
        days = (until.astimezone(CITY_TZ).date() - start.astimezone(CITY_TZ).date()).days + 1
        forecasts, profile, hist = _before_window(db, svc, s, start, days, history_start, rules)
        expected = _expected_in_window(svc, forecasts, profile, start, until)
        street_of = ancestor_of_grids(s, 3)
        district_of = ancestor_of_grids(s, 2)
        grids_in = defaultdict(int)
        streets_in = defaultdict(set)
        for grid, district in district_of.items():
            grids_in[district] += 1
            if grid in street_of:
                streets_in[district].add(street_of[grid])
        seen = grid_category_counts(s, start, until)
        names = dict(s.execute(select(Area.code, Area.name).where(Area.level.in_((3, 5)))).all())

        hist_grid, hist_street, hist_sc, hist_district = (defaultdict(int) for _ in range(4))
        cats_in = defaultdict(set)
        for grid, cat, n in hist.itertuples(index=False):
            d, st = district_of.get(grid), street_of.get(grid)
            hist_grid[grid] += n
            hist_district[d] += n
            hist_street[st] += n
            hist_sc[(st, cat)] += n
            cats_in[d].add(cat)
        obs_grid, obs_street, obs_sc = (defaultdict(int) for _ in range(3))
        for grid, cat, n in seen.itertuples(index=False):
            st = street_of.get(grid)
            obs_grid[grid] += n
            obs_street[st] += n
            obs_sc[(st, cat)] += n

        def share_grid(grid, d):
            return (hist_grid[grid] + PRIOR) / (hist_district[d] + PRIOR * max(grids_in[d], 1))

        def share_street(st, d):
            return (hist_street[st] + PRIOR) / (hist_district[d] + PRIOR * max(len(streets_in[d]), 1))

        def share_sc(st, cat, d):
            return share_street(st, d) * (hist_sc[(st, cat)] + PRIOR) / (hist_street[st] + PRIOR * max(len(cats_in[d]), 1))

        street_district = {st: district_of.get(g) for g, st in street_of.items()}
        candidates = []  # (level, area, district, category, observed, share, where)
        for name, spec in rules.surge_levels.items():
            if name == "grid":
                result.tested[name] = len(district_of)
                for grid, n in obs_grid.items():
                    if n >= spec.min_observed and grid in district_of:
                        d = district_of[grid]
                        candidates.append((name, grid, d, None, n, share_grid(grid, d), (Case.grid_code == grid,)))
            elif name == "street":
                result.tested[name] = len(street_district)
                for st, n in obs_street.items():
                    if n >= spec.min_observed and st in street_district:
                        d = street_district[st]
                        grids = [g for g, x in street_of.items() if x == st]
                        candidates.append((name, st, d, None, n, share_street(st, d), (Case.grid_code.in_(grids),)))
            else:  # street × category: every street with every category its district has seen
                result.tested[name] = sum(len(streets_in[d]) * len(cats_in[d]) for d in streets_in)
                for (st, cat), n in obs_sc.items():
                    if n >= spec.min_observed and st in street_district:
                        d = street_district[st]
                        grids = [g for g, x in street_of.items() if x == st]
                        candidates.append((name, st, d, cat, n, share_sc(st, cat, d),
                                           (Case.grid_code.in_(grids), Case.category_code == cat)))
        for level, area, district, cat, observed, share, where in candidates:
            if district not in expected:
                continue
            spec = rules.surge_levels[level]
            district_mean, alpha, method = expected[district]
            mean = float(share * district_mean)
            dist = count_distribution(mean, alpha)
            lower = float(dist.ppf((1 - spec.interval_level) / 2))
            upper = float(dist.ppf(spec.interval_level))
            if observed <= upper:
                continue
            evidence = {"method": method, "level": level, "window": rules.surge_window,
                        "observed_until": until.astimezone(CITY_TZ).isoformat(timespec="seconds"),
                        "interval_level": spec.interval_level, "expected": round(mean, 2), "lower": lower,
                        "upper": upper, "share": round(share, 5), "district_expected": round(float(district_mean), 1),
                        "p_value": float(dist.sf(observed - 1)), "min_observed": spec.min_observed,
                        "area_name": names.get(area)}
            result.findings.append(Finding(
                "surge", area, district, cat, start, end, int(observed), expected=round(mean, 2), upper=upper,
                score=round(observed / mean, 2) if mean > 0 else None, evidence=evidence,
                case_ids=case_ids(s, start, until, where=where)))
    result.expected = {d: round(v[0], 2) for d, v in expected.items()}
    result.findings.sort(key=lambda f: (-(f.score or 0), f.area_code, f.category_code or ""))
    return result


def detect(db, at: datetime, rules: ForecastRules | None = None, calendar=None,
           service: ForecastService | None = None) -> list[Finding]:
    """The surges as of `at`: each street, grid and street × category whose count in the window exceeds the
    upper bound of its interval and reaches the level's minimum (data/catalog/forecast.json, surge)."""
    return check(db, at, rules, calendar, service).findings
