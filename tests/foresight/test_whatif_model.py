"""The what-if simulator's model on SQLite and PostgreSQL (foresight/whatif.py): a unit with a backlog worked off at
its capacity, a category's volume, extra reports from one district — each change moves the units it touches and
no other, on the same random draws as the unchanged run."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.foresight.whatif_world import AT, BUSY, build


@pytest.fixture
def svc(empty_db):
    return build(empty_db)


def _units(result) -> dict:
    return {u["code"]: u for u in result["units"]}


def test_halving_a_units_capacity_makes_it_late_and_leaves_the_others_alone(svc):
    result = svc.run(svc.check([{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}]), AT)
    units = _units(result)
    busy = units[BUSY]
    assert busy["baseline"]["overdue"] > 0  # the backlog already shows
    assert busy["changed"]["overdue"] > busy["baseline"]["overdue"]
    assert busy["changed"]["on_time_rate"] < busy["baseline"]["on_time_rate"]
    assert busy["changed"]["score"] < busy["baseline"]["score"]
    assert busy["changed"]["resolved"] < busy["baseline"]["resolved"]
    for code, unit in units.items():
        if code != BUSY:
            assert unit["baseline"] == unit["changed"], code
    assert result["city"]["difference"]["overdue"] == pytest.approx(busy["difference"]["overdue"], abs=1e-3)
    assert result["inputs"]["backlog"] == 15


def test_doubling_a_category_raises_the_units_that_handle_it(svc):
    result = svc.run(svc.check([{"kind": "category_volume", "category": "010102", "factor": 2.0}]), AT)
    units = _units(result)
    for district in ("320402", "320403"):
        water = units[f"U-{district}-water_affairs"]
        assert water["changed"]["cases"] > water["baseline"]["cases"] * 1.3
        city = units[f"U-{district}-city_management"]
        assert city["changed"] == city["baseline"]


def test_a_kind_of_cases_names_its_categories_and_a_smaller_volume_thins_them(svc):
    result = svc.run(svc.check([{"kind": "category_volume", "category": ["component"], "factor": 0.5}]), AT)
    water = _units(result)["U-320403-water_affairs"]
    assert water["changed"]["cases"] < water["baseline"]["cases"] * 0.8


def test_extra_reports_in_one_district_go_to_its_units(svc):
    result = svc.run(svc.check([{"kind": "extra_reports", "area": "320403", "count": 200, "source": "patrol"}]), AT)
    units = _units(result)
    added = {code: u["changed"]["cases"] - u["baseline"]["cases"] for code, u in units.items()}
    # all 200 but the few reported in the last hour, who reach their unit after the horizon (the center's hour)
    assert 190 <= sum(v for c, v in added.items() if c.startswith("U-320403-")) <= 200
    assert all(v == 0 for c, v in added.items() if not c.startswith("U-320403-"))
    city = units["U-320403-city_management"]
    assert city["changed"]["overdue"] > city["baseline"]["overdue"]


def test_the_baseline_is_the_same_run_whatever_the_change(svc):
    one = svc.run(svc.check([{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}]), AT)
    two = svc.run(svc.check([{"kind": "extra_reports", "area": "320402", "count": 50}]), AT)
    base_one = {code: u["baseline"] for code, u in _units(one).items()}
    base_two = {code: u["baseline"] for code, u in _units(two).items() if u["baseline"]["cases"] > 0}
    assert base_one == base_two
    assert one["city"]["baseline"] == two["city"]["baseline"]
    assert one["replications"] == two["replications"] > 1


def test_a_past_at_reads_the_backlog_as_it_was(svc):
    # Sunday 00:00 in the city, 34 hours earlier: the history's cases of the day before were all resolved by the
    # evening, and of the busy unit's backlog (dispatched 2, 5, 8 … 44 hours before AT) four were in hand
    at = AT - timedelta(hours=34)
    now = svc.run(svc.check([{"kind": "unit_capacity", "unit": BUSY, "factor": 1.0}]), AT)
    before = svc.run(svc.check([{"kind": "unit_capacity", "unit": BUSY, "factor": 1.0}]), at)
    assert (before["inputs"]["backlog"], now["inputs"]["backlog"]) == (4, 15)
    assert before["as_of"] == at.isoformat()
    busy = _units(before)[BUSY]
    assert busy["baseline"] == busy["changed"]
    assert busy["baseline"]["overdue"] < _units(now)[BUSY]["baseline"]["overdue"]


def test_a_failing_forecast_falls_back_to_last_weeks_counts(svc):
    def broken(**_kw):
        raise RuntimeError("model not fitted")

    fallback = svc.run(svc.check([{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}]), AT)
    svc.forecast = broken
    result = svc.run(svc.check([{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}]), AT)
    assert (fallback["inputs"]["forecast"], result["inputs"]["forecast"]) == ("forecast", "seasonal_naive")
    assert result["city"] == fallback["city"]  # the world's forecast is the seasonal-naive one


def test_the_demo_city_without_history_runs_empty(demo_sqlite_url):
    # the seeded demo city (thousands of units, no case yet): nothing in hand, nothing expected, nothing late
    from data.db import Database
    from foresight.whatif import WhatIfService, seasonal_naive_forecast

    db = Database(demo_sqlite_url)
    try:
        svc = WhatIfService(db, seasonal_naive_forecast(db), clock=lambda: AT)
        result = svc.run(svc.check([{"kind": "category_volume", "category": "event", "factor": 2.0},
                                    {"kind": "extra_reports", "area": "320402", "count": 100}]), AT)
    finally:
        db.dispose()
    assert result["units"] == [] and result["inputs"]["backlog"] == 0
    assert "100 件上报无法分派" in result["notes"][0]
    assert result["city"]["baseline"]["overdue"] == result["city"]["changed"]["overdue"] == 0


def test_the_queues_match_a_step_by_step_simulation():
    # two units, a capacity that changes by the hour (nights without any), random arrivals: each case's resolution
    # by Lindley's recursion against a plain 1/1000-hour walk through the queues
    from types import SimpleNamespace

    import numpy as np

    from foresight.whatif import _resolve

    rng = np.random.default_rng(5)
    H = 24
    cap = rng.uniform(0, 3, size=(2, H)) * (np.arange(H) % 24 >= 8)
    cum = np.concatenate([np.zeros((2, 1)), np.cumsum(cap, axis=1)], axis=1)
    units = rng.integers(0, 2, size=40)
    t = rng.uniform(0, H, size=40)
    got = _resolve(SimpleNamespace(hours=H), units, t, cum)
    dt = 1e-3
    want = np.full(40, np.inf)
    for u in (0, 1):
        queue = sorted((t[i], i) for i in np.flatnonzero(units == u))
        left, k = 1.0, 0
        for step in range(int(H / dt)):
            now = step * dt
            budget = cap[u, int(now)] * dt
            while budget > 0 and k < len(queue) and queue[k][0] <= now:
                used = min(budget, left)
                budget, left = budget - used, left - used
                if left <= 1e-12:
                    want[queue[k][1]] = now + dt
                    k, left = k + 1, 1.0
    done = np.isfinite(want)
    assert done.sum() > 10 and (~done).sum() > 0  # some resolved, some still waiting at the end
    assert np.array_equal(np.isfinite(got), done | (np.abs(got - H) < 0.01))
    assert np.allclose(got[done], want[done], atol=0.02)
