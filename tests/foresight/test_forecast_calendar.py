"""Day types from the holiday calendar (foresight/calendar_features.py) and the forecast settings' loader
(dispatch/forecast_rules.py: every defect listed at once)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from data import files
from dispatch.forecast_rules import ForecastRulesError, forecast_rules_from_data
from foresight.calendar_features import COLUMNS, day_features, day_types


def test_national_day_2026_and_its_make_up_days():
    days = [date(2026, 9, 30) + timedelta(days=i) for i in range(12)]  # Wed 30 Sep … Sun 11 Oct
    feats = day_features(days, files.calendar())
    row = {d: dict(zip(COLUMNS, map(int, f))) for d, f in zip(days, feats)}
    assert row[date(2026, 9, 30)] == {"weekday": 2, "working": 1, "holiday": 0, "makeup": 0}
    for d in range(1, 8):  # 国庆 1–7 October: every day a holiday, the weekend's too
        assert row[date(2026, 10, d)]["holiday"] == 1 and row[date(2026, 10, d)]["working"] == 0
    assert row[date(2026, 10, 10)] == {"weekday": 5, "working": 1, "holiday": 0, "makeup": 1}  # Saturday worked
    assert row[date(2026, 10, 11)] == {"weekday": 6, "working": 0, "holiday": 0, "makeup": 0}
    kinds = dict(zip(days, day_types(feats)))
    assert [kinds[date(2026, 10, d)] for d in (8, 9, 10, 11)] == ["workday", "workday", "makeup", "weekend"]
    assert kinds[date(2026, 10, 3)] == "holiday"


def test_the_shipped_settings_load():
    rules = files.forecast_rules()
    assert 0.5 < rules.interval_level < 1 and rules.backtest_weeks >= 1
    assert set(rules.surge_levels) == {"street", "grid", "street_category"}
    # thousands of grids are checked every hour: their interval is wider than a street's
    assert rules.surge_levels["grid"].interval_level > rules.surge_levels["street"].interval_level


def test_every_defect_is_listed_at_once():
    with pytest.raises(ForecastRulesError) as err:
        forecast_rules_from_data({"history_days": 3, "interval_level": 1.5, "model": {"family": "arima"},
                                  "surge": {"window": "week", "levels": {"grid": {"interval_level": 0.99},
                                                                         "county": {}}}})
    text = str(err.value)
    for needle in ("history_days", "interval_level", "model.family", "surge.window", "min_observed", "county"):
        assert needle in text
    assert len(err.value.problems) >= 6
