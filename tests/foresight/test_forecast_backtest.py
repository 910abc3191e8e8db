"""Forecasts on a generated history (a weekly pattern, weekends, 中秋 and 国庆 2026 with their make-up working days)
on SQLite and PostgreSQL: the backtest's error against the seasonal-naive baseline, holidays and 调休 in the
forecast, the interval, and a forecast as of a past time that later cases do not change."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert

from data import files
from data.models import Case
from dispatch.city_time import CITY_TZ
from foresight.forecast import ForecastService
from tests.foresight.forecast_world import DISTRICTS, build_history, cases_of, expected_day


@pytest.fixture
def history(empty_db):
    build_history(empty_db, date(2026, 7, 20), date(2026, 10, 31))
    return ForecastService(empty_db, files.calendar(), files.forecast_rules())


def at(day: date, hour: int = 8) -> datetime:
    return datetime.combine(day, datetime.min.time(), CITY_TZ) + timedelta(hours=hour)


def test_the_model_beats_seasonal_naive_over_the_holidays(history):
    # the three weeks before 15 October hold 中秋 (25–27 Sep), 国庆 (1–7 Oct) and two make-up Saturdays
    result = history.backtest("district", at(date(2026, 10, 15)))
    print("\nby district, MAE (cases a day) over the 3 weeks before 2026-10-15:")
    print(f"{'key':<10}{'model':>8}{'seasonal-naive':>16}{'used':>8}")
    for row in result["keys"]:
        print(f"{row['key']:<10}{row['model_error']:>8.2f}{row['baseline_error']:>16.2f}{row['used']:>8}")
    assert result["metric"] == "MAE" and {r["key"] for r in result["keys"]} == set(DISTRICTS)
    for row in result["keys"]:
        assert row["days"] == 21
        assert row["model_error"] < 0.6 * row["baseline_error"], row
        assert row["used"] == "model"
    kinds = history.backtest("kind", at(date(2026, 10, 15)))
    assert {r["key"] for r in kinds["keys"]} == {"event", "component"}
    assert all(r["used"] == "model" for r in kinds["keys"])


def test_holidays_dip_and_make_up_saturdays_work(history):
    out = history.forecast("district", 14, at(date(2026, 9, 30), 20))
    assert out["backtest"]["metric"] == "MAE"
    assert out["backtest"]["model_error"] < out["backtest"]["baseline_error"]
    got = {(i["key"], i["date"]): i for i in out["items"]}
    assert len(out["items"]) == 14 * len(DISTRICTS)
    for d in DISTRICTS:
        friday_off, friday_on = got[(d, "2026-10-02")], got[(d, "2026-10-09")]
        assert friday_off["expected"] < 0.65 * friday_on["expected"]
        saturday_worked, sunday_off = got[(d, "2026-10-10")], got[(d, "2026-10-11")]
        assert saturday_worked["expected"] > 1.3 * sunday_off["expected"]
        for item in (friday_off, friday_on, saturday_worked):  # near what generated the history
            truth = expected_day(d, date.fromisoformat(item["date"]))
            assert 0.7 * truth < item["expected"] < 1.3 * truth, (item, truth)
            assert item["lower"] <= item["expected"] <= item["upper"]
            assert item["method"] == "negative_binomial"


def test_the_interval_holds_most_days(empty_db):
    build_history(empty_db, date(2026, 7, 20), date(2026, 10, 31))
    svc = ForecastService(empty_db, files.calendar(), files.forecast_rules())
    out = svc.forecast("district", 14, at(date(2026, 10, 15), 0))
    with empty_db.session() as s:
        from figures.case_counts import daily_counts
        actual = daily_counts(s, "district", date(2026, 10, 15), date(2026, 10, 28))
    truth = {(k, day.date().isoformat()): n for k, day, n in actual[["key", "day", "count"]].itertuples(index=False)}
    inside = [i["lower"] <= truth.get((i["key"], i["date"]), 0) <= i["upper"] for i in out["items"]]
    print(f"\n90% interval held on {sum(inside)} of {len(inside)} district-days")
    assert sum(inside) >= 0.75 * len(inside)


def test_a_forecast_as_of_a_past_time_ignores_later_cases(history):
    when = at(date(2026, 10, 20), 10)
    before = history.forecast("kind", 7, when)
    later = cases_of(date(2026, 10, 20), date(2026, 10, 22), seed=99)  # more cases, all reported after `when`
    later = [r for r in later if r["reported_at"] >= when]
    with history.db.session() as s:
        s.execute(insert(Case), later)
    assert history.forecast("kind", 7, when) == before
    assert history.forecast("kind", 7, at(date(2026, 10, 23), 10)) != before
