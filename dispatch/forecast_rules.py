"""The forecast and surge settings of data/catalog/forecast.json, checked: every defect listed at once.

Pure: data/files.py reads the file and hands the parsed JSON to :func:`forecast_rules_from_data`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from dispatch.errors import RulesFileError

FAMILIES = ("negative_binomial", "poisson")
SURGE_LEVELS = ("street", "grid", "street_category")
BYS = ("district", "kind", "category")  # what a forecast is made per


class ForecastRulesError(RulesFileError):
    TITLE = "预测与激增预警设置文件（forecast.json）有误"


@dataclass(frozen=True)
class SurgeLevel:
    interval_level: float  # the upper bound a window's count must exceed
    min_observed: int      # and the count it must reach


@dataclass(frozen=True)
class ForecastRules:
    history_days: int = 56          # the days a model is fitted on
    backtest_weeks: int = 3         # rolling origins, one a week, over the last weeks the model did not see
    interval_level: float = 0.9     # the forecast's prediction interval
    max_days: int = 60              # the longest horizon asked
    min_category_history: int = 1000  # cases in the history a category needs to be forecast on its own
    family: str = "negative_binomial"
    trend: bool = True
    min_history_days: int = 21      # fewer days of history: the seasonal-naive baseline is the forecast
    holiday_weekday: int = 6
    makeup_weekday: int = 4
    surge_window: str | int = "day"  # "day": the local day so far; N: the N hours before the check
    surge_history_days: int = 28
    surge_levels: Mapping[str, SurgeLevel] = field(default_factory=dict)


def _int(data, key, lo, hi, where, problems, default=None):
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        problems.append(f"{where}{key} 须为 {lo} 到 {hi} 之间的整数，现为 {v!r}")
        return default
    return v


def _level(data, key, where, problems, default=None):
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.5 <= v < 1:
        problems.append(f"{where}{key} 须为 0.5 到 1 之间（不含 1）的数，现为 {v!r}")
        return default
    return float(v)


def forecast_rules_from_data(data) -> ForecastRules:
    """The settings from the parsed file; ForecastRulesError lists every defect."""
    if not isinstance(data, dict):
        raise ForecastRulesError(["文件须为 JSON 对象"])
    problems: list[str] = []
    history = _int(data, "history_days", 14, 3660, "", problems, 56)
    weeks = _int(data, "backtest_weeks", 1, 52, "", problems, 3)
    level = _level(data, "interval_level", "", problems, 0.9)
    max_days = _int(data, "max_days", 1, 366, "", problems, 60)
    min_cat = _int(data, "min_category_history", 0, 10**9, "", problems, 1000)
    model = data.get("model", {})
    if not isinstance(model, dict):
        problems.append("model 须为对象")
        model = {}
    family = model.get("family", "negative_binomial")
    if family not in FAMILIES:
        problems.append(f"model.family 须为 {' 或 '.join(FAMILIES)}，现为 {family!r}")
    trend = model.get("trend", True)
    if not isinstance(trend, bool):
        problems.append(f"model.trend 须为 true 或 false，现为 {trend!r}")
    min_hist = _int(model, "min_history_days", 7, 3660, "model.", problems, 21)
    hol_wd = _int(model, "holiday_weekday", 0, 6, "model.", problems, 6)
    mk_wd = _int(model, "makeup_weekday", 0, 6, "model.", problems, 4)
    if isinstance(history, int) and isinstance(min_hist, int) and min_hist > history:
        problems.append(f"model.min_history_days（{min_hist}）不能大于 history_days（{history}）")
    surge = data.get("surge")
    levels: dict[str, SurgeLevel] = {}
    window = surge_history = None
    if not isinstance(surge, dict):
        problems.append("缺少 surge 对象（激增预警设置）")
    else:
        window = surge.get("window", "day")
        if window != "day" and (isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 168):
            problems.append(f"surge.window 须为 \"day\"（当天至今）或 1 到 168 之间的小时数，现为 {window!r}")
        surge_history = _int(surge, "history_days", 7, 3660, "surge.", problems, 28)
        raw_levels = surge.get("levels")
        if not isinstance(raw_levels, dict) or not raw_levels:
            problems.append(f"surge.levels 须为对象，键为 {'、'.join(SURGE_LEVELS)} 中的若干个")
            raw_levels = {}
        for name, spec in raw_levels.items():
            where = f"surge.levels.{name}."
            if name not in SURGE_LEVELS:
                problems.append(f"surge.levels 的键 {name!r} 未知（可用：{'、'.join(SURGE_LEVELS)}）")
                continue
            if not isinstance(spec, dict):
                problems.append(f"surge.levels.{name} 须为对象")
                continue
            lv = _level(spec, "interval_level", where, problems)
            mn = _int(spec, "min_observed", 1, 10**6, where, problems)
            if lv is not None and mn is not None:
                levels[name] = SurgeLevel(lv, mn)
    if problems:
        raise ForecastRulesError(problems)
    return ForecastRules(history_days=history, backtest_weeks=weeks, interval_level=level, max_days=max_days,
                         min_category_history=min_cat, family=family, trend=trend, min_history_days=min_hist,
                         holiday_weekday=hol_wd, makeup_weekday=mk_wd, surge_window=window,
                         surge_history_days=surge_history, surge_levels=levels)
