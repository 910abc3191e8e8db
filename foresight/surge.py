"""Surges: counts per street, grid and street × category in the window of a check against what was expected
there, and a finding where a count rises beyond the upper bound of its prediction interval (docs/foresight.md)."""
from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import and_, or_, select

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
MIN_SAME_KIND_DAYS = 6  # days of the window's kind (working day or day off) the history needs for shares of its own


def _spans(days) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive local days as [midnight, midnight) spans."""
    out = []
    for d in sorted(days):
        a = datetime.combine(d, datetime.min.time(), CITY_TZ)
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], a + timedelta(days=1))
        else:
            out.append((a, a + timedelta(days=1)))
    return out


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


@dataclass
class _Before:
    """What a check knows of the days before its window: the districts' forecasts, the hour profile, the hierarchy
    and the history's counts per district, street, grid and street × category."""

    forecasts: tuple
    profile: dict
    street_of: dict      # grid → street
    district_of: dict    # grid → district
    grids_of: dict       # street → its grids
    street_district: dict
    grids_in: dict       # district → number of grids
    streets_in: dict     # district → number of streets
    cats_in: dict        # district → number of categories in its history
    district: dict
    street: dict
    grid: dict
    street_category: dict
    names: dict


def _sums(frame, keys) -> dict:
    if not len(frame):
        return {}
    out = frame.groupby(keys, sort=False)["count"].sum()
    return dict(zip(out.index, out.to_numpy().tolist()))


def _before_window(db, svc: ForecastService, s, start: datetime, days: int, history_start: datetime,
                   rules) -> _Before:
    """Read once per window start (see _BEFORE)."""
    key = (str(getattr(db, "url", id(db))), start.isoformat(), days, history_start.isoformat(), repr(rules))
    with _BEFORE_LOCK:
        if key in _BEFORE:
            _BEFORE.move_to_end(key)
            return _BEFORE[key]
    street_of, district_of = ancestor_of_grids(s, 3), ancestor_of_grids(s, 2)
    grids_of = defaultdict(list)
    for grid, st in street_of.items():
        grids_of[st].append(grid)
    street_district = {st: district_of.get(g) for g, st in street_of.items()}
    grids_in, streets_in = defaultdict(int), defaultdict(int)
    for d in district_of.values():
        grids_in[d] += 1
    for d in street_district.values():
        streets_in[d] += 1
    # a street's part of its district differs between working days and days off (offices and markets against
    # homes and parks): the shares are taken from the history's days of the window's own kind where there are a
    # few of them, from all days otherwise
    days_of = [history_start.astimezone(CITY_TZ).date() + timedelta(days=i)
               for i in range((start.astimezone(CITY_TZ).date() - history_start.astimezone(CITY_TZ).date()).days)]
    working = {d: svc.calendar.is_working_day(d) for d in days_of}
    window_working = svc.calendar.is_working_day(start.astimezone(CITY_TZ).date())
    off_spans = _spans([d for d in days_of if not working[d]])
    split = or_(*(and_(Case.reported_at >= a.astimezone(UTC), Case.reported_at < b.astimezone(UTC))
                  for a, b in off_spans)) if off_spans else None
    hist = grid_category_counts(s, history_start, start, split=split)
    same_kind = sum(1 for d in days_of if working[d] == window_working)
    if split is not None and same_kind >= MIN_SAME_KIND_DAYS:
        hist = hist[hist["part"] == (0 if window_working else 1)]
    hist = hist.groupby(["grid", "category"], as_index=False)["count"].sum() if len(hist) else hist
    hist["street"] = hist["grid"].map(street_of)
    hist["district"] = hist["grid"].map(district_of)
    cats = hist.groupby("district")["category"].nunique() if len(hist) else {}
    value = _Before(svc.forecasts("district", days, start), svc.hour_profile(s, history_start, start),
                    street_of, district_of, dict(grids_of), street_district, dict(grids_in), dict(streets_in),
                    {k: int(v) for k, v in dict(cats).items()}, _sums(hist, "district"), _sums(hist, "street"), _sums(hist, "grid"),
                    _sums(hist, ["street", "category"]),
                    dict(s.execute(select(Area.code, Area.name).where(Area.level.in_((3, 5)))).all()))
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


def _quantile(level: float, means: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """The `level` quantile of each count: negative binomial where alpha > 0, Poisson elsewhere (vectorised)."""
    from scipy import stats  # on first use: a command or page that never forecasts does not load scipy
    means = np.maximum(means, 1e-9)
    out = stats.poisson.ppf(level, means)
    nb = alphas > 1e-8
    if nb.any():
        n = 1.0 / alphas[nb]
        out[nb] = stats.nbinom.ppf(level, n, n / (n + means[nb]))
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
        b = _before_window(db, svc, s, start, days, history_start, rules)
        expected = _expected_in_window(svc, b.forecasts, b.profile, start, until)
        seen = grid_category_counts(s, start, until)
        seen["street"] = seen["grid"].map(b.street_of)

        def share(level, area, cat, d):
            """The area's part of its district's history, half a case added to every area."""
            total = b.district.get(d, 0)
            if level == "grid":
                return (b.grid.get(area, 0) + PRIOR) / (total + PRIOR * max(b.grids_in.get(d, 1), 1))
            street = (b.street.get(area, 0) + PRIOR) / (total + PRIOR * max(b.streets_in.get(d, 1), 1))
            if level == "street":
                return street
            return street * (b.street_category.get((area, cat), 0) + PRIOR) / (
                b.street.get(area, 0) + PRIOR * max(b.cats_in.get(d, 1), 1))

        for level, spec in rules.surge_levels.items():
            if level == "grid":
                result.tested[level] = len(b.district_of)
                observed = _sums(seen, "grid")
                keyed = {(g, None): n for g, n in observed.items()}
            elif level == "street":
                result.tested[level] = len(b.street_district)
                keyed = {(st, None): n for st, n in _sums(seen, "street").items()}
            else:  # street × category: every street with every category its district has seen
                result.tested[level] = sum(b.streets_in.get(d, 0) * n for d, n in b.cats_in.items())
                keyed = _sums(seen, ["street", "category"])
            rows = []  # (area, district, category, observed, share, district mean, alpha, method)
            for (area, cat), n in keyed.items():
                d = b.district_of.get(area) if level == "grid" else b.street_district.get(area)
                if n < spec.min_observed or d not in expected:
                    continue
                mean, alpha, method = expected[d]
                # the share is estimated from the area's own few cases: its uncertainty widens the interval as a
                # gamma-distributed rate would (variance + mean² / (history cases + ½)), so that a grid with a
                # handful of past cases is not held to a Poisson bound it cannot know that well
                own = (b.grid.get(area, 0) if level == "grid" else b.street.get(area, 0) if cat is None
                       else b.street_category.get((area, cat), 0))
                alpha = (alpha or 0.0) + 1.0 / (own + PRIOR)
                rows.append((area, d, cat, n, share(level, area, cat, d), mean, alpha, method))
            if not rows:
                continue
            means = np.array([r[4] * r[5] for r in rows])
            alphas = np.array([r[6] if r[6] is not None else 0.0 for r in rows])
            uppers = _quantile(spec.interval_level, means, alphas)
            for r, mean, alpha, upper in zip(rows, means, alphas, uppers):
                area, d, cat, n, sh, district_mean, _, method = r
                if n <= upper:
                    continue
                dist = count_distribution(mean, alpha)
                where = ((Case.grid_code == area,) if level == "grid" else
                         (Case.grid_code.in_(b.grids_of.get(area, [])),) if cat is None else
                         (Case.grid_code.in_(b.grids_of.get(area, [])), Case.category_code == cat))
                evidence = {"method": method, "level": level, "window": rules.surge_window,
                            "observed_until": until.astimezone(CITY_TZ).isoformat(timespec="seconds"),
                            "interval_level": spec.interval_level, "expected": round(float(mean), 2),
                            "lower": float(dist.ppf((1 - spec.interval_level) / 2)), "upper": float(upper),
                            "share": round(float(sh), 5), "district_expected": round(float(district_mean), 1),
                            "p_value": float(dist.sf(n - 1)), "min_observed": spec.min_observed,
                            "area_name": b.names.get(area)}
                result.findings.append(Finding(
                    "surge", area, d, cat, start, end, int(n), expected=round(float(mean), 2), upper=float(upper),
                    score=round(n / float(mean), 2) if mean > 0 else None, evidence=evidence,
                    case_ids=case_ids(s, start, until, where=where)))
    result.expected = {d: round(v[0], 2) for d, v in expected.items()}
    result.findings.sort(key=lambda f: (-(f.score or 0), f.area_code, f.category_code or ""))
    return result


def detect(db, at: datetime, rules: ForecastRules | None = None, calendar=None,
           service: ForecastService | None = None) -> list[Finding]:
    """The surges as of `at`: each street, grid and street × category whose count in the window exceeds the
    upper bound of its interval and reaches the level's minimum (data/catalog/forecast.json, surge)."""
    return check(db, at, rules, calendar, service).findings
