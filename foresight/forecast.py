"""Expected case counts per day with prediction intervals, per district, kind or category: a count model
(statsmodels' negative binomial on day types and a trend), backtested against the seasonal-naive baseline."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import numpy as np
from sqlalchemy import select

from data.models import Area, Case, Category
from dispatch.catalog import KIND_NAMES_ZH
from dispatch.city_time import CITY_TZ
from dispatch.errors import ServiceError
from dispatch.forecast_rules import BYS, ForecastRules
from dispatch.limits import EARLIEST_DAY, LATEST_DAY
from foresight.calendar_features import HOLIDAY, MAKEUP, WEEKDAY, DAY_TYPES, day_features, day_types

UTC = timezone.utc
METRIC = "MAE"  # mean absolute error of the daily counts, cases a day
BY_LABELS = {"district": "区", "kind": "类型", "category": "类别"}


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---- the count model (pure: arrays in, arrays out) -------------------------------------------------
def design(feats: np.ndarray, t: np.ndarray, rules: ForecastRules) -> np.ndarray:
    """The model's columns: a constant, the weekday (Tuesday … Sunday against Monday; a public holiday read as
    rules.holiday_weekday and a make-up working day as rules.makeup_weekday), a holiday and a make-up day
    indicator on top of that weekday, and a trend in weeks."""
    weekday = feats[:, WEEKDAY].copy()
    weekday[feats[:, HOLIDAY] == 1] = rules.holiday_weekday
    weekday[feats[:, MAKEUP] == 1] = rules.makeup_weekday
    cols = [np.ones(len(feats))]
    cols += [(weekday == d).astype(float) for d in range(1, 7)]
    cols += [feats[:, HOLIDAY].astype(float), feats[:, MAKEUP].astype(float)]
    if rules.trend:
        cols.append(np.asarray(t, dtype=float) / 7.0)
    return np.column_stack(cols)


@dataclass
class CountFit:
    """A fitted count model: the columns it kept, its parameters and, for the negative binomial, its alpha
    (variance = mean + alpha · mean²)."""

    method: str            # "negative_binomial" | "poisson"
    keep: np.ndarray       # the design columns with any variation in the history
    params: np.ndarray
    alpha: float | None

    def mean(self, X: np.ndarray) -> np.ndarray:
        return np.exp(np.clip(X[:, self.keep] @ self.params, -50, 50))


def count_distribution(mean, alpha: float | None):
    """The predictive distribution of a count with this mean (scipy frozen): negative binomial with the fit's
    alpha, Poisson without."""
    from scipy import stats  # on first use: a command or page that never forecasts does not load scipy
    mean = np.maximum(np.asarray(mean, dtype=float), 1e-9)
    if alpha is None or alpha <= 1e-8:
        return stats.poisson(mean)
    n = 1.0 / alpha
    return stats.nbinom(n, n / (n + mean))


def fit_counts(y: np.ndarray, X: np.ndarray, family: str) -> CountFit | None:
    """The count model fitted to daily counts `y` (None when there is nothing to fit: no case at all). Columns
    that never vary in the history are left out (a holiday the history never saw is then its weekday's day)."""
    from statsmodels.discrete.discrete_model import NegativeBinomial, Poisson

    if y.sum() == 0:
        return None
    keep = np.array([j == 0 or X[:, j].std() > 0 for j in range(X.shape[1])])
    Xk = X[:, keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter: a failed fit falls back below
        if family == "negative_binomial":
            try:
                res = NegativeBinomial(y, Xk).fit(disp=0, maxiter=200)
                alpha = float(res.params[-1])
                if res.mle_retvals.get("converged") and np.all(np.isfinite(res.params)) and 1e-8 < alpha < 50:
                    return CountFit("negative_binomial", keep, np.asarray(res.params[:-1]), alpha)
            except Exception:  # noqa: BLE001 - a singular or diverging fit: the Poisson fit below
                pass
        try:
            res = Poisson(y, Xk).fit(disp=0, maxiter=200)
        except Exception:  # noqa: BLE001
            return None
        if not np.all(np.isfinite(res.params)):
            return None
        return CountFit("poisson", keep, np.asarray(res.params), None)


def seasonal_naive(history: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The same weekday of the last observed week, for `horizon` days after the history; and k (0 for the first
    week ahead, 1 for the second …), which widens its interval."""
    h = np.arange(horizon)
    k = h // 7
    return history[len(history) - 7 + (h % 7)].astype(float), k


def naive_interval(history: np.ndarray, point: np.ndarray, k: np.ndarray, level: float):
    """The seasonal-naive interval from its own one-week-ahead residuals in the history (empirical quantiles),
    widened by sqrt(k + 1) for k weeks further ahead (Hyndman & Athanasopoulos, FPP3 §5.5)."""
    from scipy import stats  # on first use: a command or page that never forecasts does not load scipy
    resid = history[7:] - history[:-7]
    if len(resid) < 7:
        sd = math.sqrt(max(point.mean(), 1.0))
        lo_q, hi_q = stats.norm.ppf((1 - level) / 2) * sd, stats.norm.ppf((1 + level) / 2) * sd
    else:
        lo_q, hi_q = np.quantile(resid, [(1 - level) / 2, (1 + level) / 2])
    scale = np.sqrt(k + 1)
    return np.maximum(point + lo_q * scale, 0), np.maximum(point + hi_q * scale, 0)


@dataclass
class SeriesForecast:
    """One key's forecast over the days asked, and how it was chosen."""

    key: str
    method: str            # "negative_binomial" | "poisson" | "seasonal_naive"
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    model_error: float | None
    baseline_error: float | None
    fit: CountFit | None


def _model_forecast(y, feats_hist, feats_new, t_hist, t_new, rules):
    fit = fit_counts(y, design(feats_hist, t_hist, rules), rules.family)
    if fit is None:
        return None, None
    return fit, fit.mean(design(feats_new, t_new, rules))


def backtest_series(y: np.ndarray, feats: np.ndarray, rules: ForecastRules, weeks: int):
    """Rolling origin over the last `weeks` weeks of `y` (daily counts, `feats` their day features): at each
    origin, the model fitted on the history_days before it and the seasonal-naive baseline both forecast the
    next 7 days, which the model did not see. Returns (model MAE, baseline MAE, points) — None where no origin
    has history enough."""
    abs_model, abs_naive = [], []
    n = len(y)
    for w in range(weeks, 0, -1):
        origin = n - 7 * w
        start = max(0, origin - rules.history_days)
        if origin - start < max(rules.min_history_days, 14):
            continue
        hist, actual = y[start:origin], y[origin:origin + 7]
        t = np.arange(start, origin + 7) - origin
        fit, mean = _model_forecast(hist, feats[start:origin], feats[origin:origin + 7], t[:origin - start],
                                    t[origin - start:], rules)
        naive, _ = seasonal_naive(hist, 7)
        if mean is None:
            mean = naive
        abs_model += list(np.abs(mean - actual))
        abs_naive += list(np.abs(naive - actual))
    if not abs_model:
        return None, None, 0
    return float(np.mean(abs_model)), float(np.mean(abs_naive)), len(abs_model)


def forecast_series(key: str, y: np.ndarray, feats: np.ndarray, feats_new: np.ndarray, rules: ForecastRules,
                    level: float, weeks: int) -> SeriesForecast:
    """`y`: the key's daily counts up to the day before the first forecast day, `feats` their day features (the
    history and the backtest's weeks before it); `feats_new`: the forecast days'. The model is the forecast only
    where its backtest error is below the baseline's; otherwise the baseline is, with its interval."""
    horizon = len(feats_new)
    model_err, naive_err, _ = backtest_series(y, feats, rules, weeks)
    start = max(0, len(y) - rules.history_days)
    hist = y[start:]
    fit = mean = None
    if len(hist) >= rules.min_history_days:
        t = np.arange(start - len(y), horizon)
        fit, mean = _model_forecast(hist, feats[start:], feats_new, t[:len(hist)], t[len(hist):], rules)
    use_model = mean is not None and model_err is not None and naive_err is not None and model_err < naive_err
    if use_model:
        dist = count_distribution(mean, fit.alpha)
        lower, upper = dist.ppf((1 - level) / 2), dist.ppf((1 + level) / 2)
        return SeriesForecast(key, fit.method, mean, lower, upper, model_err, naive_err, fit)
    if len(hist) >= 7:
        point, k = seasonal_naive(hist, horizon)
        lower, upper = naive_interval(hist, point, k, level)
    else:  # under a week of history: its mean, a Poisson interval
        point = np.full(horizon, float(hist.mean()) if len(hist) else 0.0)
        dist = count_distribution(point, None)
        lower, upper = dist.ppf((1 - level) / 2), dist.ppf((1 + level) / 2)
    return SeriesForecast(key, "seasonal_naive", point, lower, upper, model_err, naive_err, fit)


# ---- the service over the database --------------------------------------------------------------
def _check_at(at) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ServiceError(400, "bad_request", "时间 at 须带时区偏移（如 2026-12-07T09:30:00+08:00）")
    if not EARLIEST_DAY.year <= at.year <= LATEST_DAY.year:
        raise ServiceError(400, "bad_request", f"时间 at 须在 {EARLIEST_DAY.year} 到 {LATEST_DAY.year} 年之间")
    return at


class ForecastService:
    """Forecasts of the cases reported per day, as of a time (only cases reported before it are read)."""

    def __init__(self, db, calendar, rules: ForecastRules, clock: Callable[[], datetime] = utcnow):
        self.db, self.calendar, self.rules, self.clock = db, calendar, rules, clock

    # -- arguments
    def check(self, by: str, days: int | None = None, at: datetime | None = None) -> datetime:
        """Refuses a bad `by`, `days` or `at` (ServiceError 400, in Chinese); returns the time forecast from."""
        if by not in BYS:
            raise ServiceError(400, "bad_request", f"参数 by 须为 {' 或 '.join(BYS)}，收到 {str(by)[:40]!r}")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                                 or not 1 <= days <= self.rules.max_days):
            raise ServiceError(400, "bad_request", f"参数 days 须为 1 到 {self.rules.max_days} 之间的整数，收到 {days!r}")
        at = self.clock() if at is None else _check_at(at)
        first = at.astimezone(CITY_TZ).date()
        if not EARLIEST_DAY <= first - timedelta(days=self.rules.history_days + 7 * self.rules.backtest_weeks) \
                or first + timedelta(days=self.rules.max_days) > LATEST_DAY:
            raise ServiceError(400, "bad_request", "时间 at 超出可预测的范围")
        return at

    def scoped_area(self, principal, area: str | None) -> str | None:
        """`area` as `principal` may read it: theirs when none is asked; 403 for an area outside theirs."""
        own = getattr(principal, "area_code", None)
        with self.db.session() as s:
            own_row = s.get(Area, own) if own else None
            if own_row is None or own_row.level == 1:
                return area
            if area is None:
                return own
            up = s.get(Area, area)
            if up is None:
                raise ServiceError(404, "not_found", f"区域 {str(area)[:30]} 不存在")
            while up is not None and up.code != own:
                up = s.get(Area, up.parent_code) if up.parent_code else None
            if up is None:
                raise ServiceError(403, "forbidden", f"只能查看本辖区（{own_row.name}）及其下级区域的预测")
        return area

    def area_filter(self, s, area: str | None):
        """The cases of `area` (the city, a district or any area below it): a WHERE clause, or () for all."""
        if area is None:
            return ()
        row = s.get(Area, area)
        if row is None:
            raise ServiceError(404, "not_found", f"区域 {str(area)[:30]} 不存在")
        if row.level == 1:
            return ()
        if row.level == 2:
            return (Case.district_code == area,)
        if row.level == 5:
            return (Case.grid_code == area,)
        from figures.case_counts import ancestor_of_grids

        grids = [g for g, up in ancestor_of_grids(s, row.level).items() if up == area]
        return (Case.grid_code.in_(grids),)

    def _series(self, s, by: str, first: date, last: date, where) -> dict[str, np.ndarray]:
        """Each key's counts for every day from `first` to `last` (zeros where none)."""
        from figures.case_counts import daily_counts  # pandas on first use: the app starts without it

        frame = daily_counts(s, by, first, last, where=where)
        n = (last - first).days + 1
        out: dict[str, np.ndarray] = {}
        if by == "district" and not where:
            for code in s.scalars(select(Area.code).where(Area.level == 2)):
                out[code] = np.zeros(n, dtype=np.int64)
        base = np.datetime64(first, "D")
        for key, day, count in frame[["key", "day", "count"]].itertuples(index=False):
            if key is None:
                continue
            i = int((np.datetime64(day, "D") - base).astype(int))
            out.setdefault(str(key), np.zeros(n, dtype=np.int64))[i] = count
        return out

    def _keys_and_history(self, by: str, at: datetime, area: str | None, weeks: int):
        first = at.astimezone(CITY_TZ).date()
        span = self.rules.history_days + 7 * weeks
        start = first - timedelta(days=span)
        with self.db.session() as s:
            where = self.area_filter(s, area)
            series = self._series(s, by, start, first - timedelta(days=1), where)
        if by == "category":  # only the categories with history enough of their own
            recent = self.rules.history_days
            series = {k: v for k, v in series.items() if v[-recent:].sum() >= self.rules.min_category_history}
        # the history starts on the first day with a case (a city that began recording within the window must not
        # read the days before as days without cases); that first day is left out too, as it is most likely partial
        began = min((int(np.argmax(v > 0)) for v in series.values() if v.any()), default=span)
        if 0 < began < span:
            began += 1
        series = {k: v[began:] for k, v in series.items()}
        dates = [start + timedelta(days=i) for i in range(began, span)]
        return first, series, day_features(dates, self.calendar)

    def forecasts(self, by: str, days: int, at: datetime | None = None, area: str | None = None,
                  level: float | None = None) -> tuple[date, list[SeriesForecast]]:
        """Each key's SeriesForecast for `days` days from the day of `at` (default now)."""
        at = self.check(by, days, at)
        weeks = self.rules.backtest_weeks
        first, series, feats = self._keys_and_history(by, at, area, weeks)
        new = day_features([first + timedelta(days=i) for i in range(days)], self.calendar)
        level = level or self.rules.interval_level
        return first, [forecast_series(k, series[k], feats, new, self.rules, level, weeks) for k in sorted(series)]

    def forecast(self, by: str, days: int, at: datetime | None = None, area: str | None = None,
                 principal=None) -> dict:
        """The contract's answer: items {key, date, expected, lower, upper, method} and the backtest (MAE of the
        model and of the seasonal-naive baseline over every key's backtest days; per key: which one is used).
        A `principal` of an area below the city reads its own area (by default) or an area within it."""
        at = self.check(by, days, at)
        area = self.scoped_area(principal, area)
        first, fcs = self.forecasts(by, days, at, area)
        items = []
        for fc in fcs:
            for i in range(days):
                items.append({"key": fc.key, "date": (first + timedelta(days=i)).isoformat(),
                              "expected": round(float(fc.expected[i]), 1), "lower": int(fc.lower[i]),
                              "upper": int(math.ceil(fc.upper[i])), "method": fc.method})
        return {"by": by, "days": days, "at": at.astimezone(CITY_TZ).isoformat(timespec="seconds"), "area": area,
                "interval_level": self.rules.interval_level, "labels": self.labels(by, [f.key for f in fcs]),
                "items": items, "backtest": _summary(fcs, self.rules)}

    def labels(self, by: str, keys: list[str]) -> dict[str, str]:
        """Each key's Chinese name (a district's, a kind's, a category's)."""
        if by == "kind":
            return {k: KIND_NAMES_ZH.get(k, k) for k in keys}
        with self.db.session() as s:
            if by == "district":
                names = dict(s.execute(select(Area.code, Area.name).where(Area.code.in_(keys))).all())
            else:
                names = dict(s.execute(select(Category.code, Category.name).where(Category.code.in_(keys))).all())
        return {k: names.get(k, k) for k in keys}

    def backtest(self, by: str, at: datetime | None = None, weeks: int | None = None,
                 area: str | None = None) -> dict:
        """Per key: the model's and the baseline's MAE over the last `weeks` weeks before `at`, and whether the
        model is used (only where it beats the baseline)."""
        at = self.check(by, None, at)
        weeks = weeks or self.rules.backtest_weeks
        if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= 52:
            raise ServiceError(400, "bad_request", "参数 weeks 须为 1 到 52 之间的整数")
        _, series, feats = self._keys_and_history(by, at, area, weeks)
        rows = []
        for key in sorted(series):
            m, b, n = backtest_series(series[key], feats, self.rules, weeks)
            rows.append({"key": key, "model_error": _round(m), "baseline_error": _round(b), "days": n,
                         "used": "model" if m is not None and b is not None and m < b else "baseline"})
        return {"by": by, "at": at.astimezone(CITY_TZ).isoformat(timespec="seconds"), "weeks": weeks,
                "metric": METRIC, "keys": rows}

    # -- what the surge check needs
    def hour_profile(self, s, start: datetime, end: datetime) -> dict[str, np.ndarray]:
        """The share of a day's cases reported in each local hour, per day type (DAY_TYPES), from the city's
        cases in [start, end); a type the history lacks takes the profile of all days."""
        from figures.case_counts import hourly_counts

        frame = hourly_counts(s, "city", start, end)
        totals = {t: np.zeros(24) for t in DAY_TYPES}
        overall = np.ones(24)  # a flat prior of one case an hour: no hour is ever expected to be empty
        if len(frame):
            hours = frame["hour"]
            kinds = day_types(day_features(hours.dt.date, self.calendar))
            for kind, hour, count in zip(kinds, hours.dt.hour, frame["count"]):
                totals[kind][hour] += count
                overall[hour] += count
        out = {}
        for t in DAY_TYPES:
            out[t] = totals[t] / totals[t].sum() if totals[t].sum() >= 24 * 5 else overall / overall.sum()
        return out


def _round(v):
    return None if v is None else round(v, 2)


def _summary(fcs: list[SeriesForecast], rules: ForecastRules) -> dict:
    tested = [f for f in fcs if f.model_error is not None and f.baseline_error is not None]
    return {"metric": METRIC, "weeks": rules.backtest_weeks, "horizon_days": 7,
            "model_error": _round(float(np.mean([f.model_error for f in tested]))) if tested else None,
            "baseline_error": _round(float(np.mean([f.baseline_error for f in tested]))) if tested else None,
            "keys": [{"key": f.key, "model_error": _round(f.model_error), "baseline_error": _round(f.baseline_error),
                      "used": "baseline" if f.method == "seasonal_naive" else "model", "method": f.method}
                     for f in fcs]}
