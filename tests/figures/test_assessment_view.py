"""The assessment as the pages show it (figures/assessment_view.py, the wall's district score): the same
numbers as figures.service.assessment, over a demo city with a few simulated days of cases."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest

from figures import assessment_view as av
from figures import service
from figures.wall import score_districts

UTC = timezone.utc


@pytest.fixture(scope="module")
def cases(demo_sqlite_url, tmp_path_factory):
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.schema import init_db
    from demo.runner import SimulationRunner

    path = tmp_path_factory.mktemp("assess") / "a.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    init_db(db)
    svc = CaseService(db, AreaDirectory(db))
    SimulationRunner(svc, seed=20261207).run(0.02, 4 * 86400, realtime=False, tick_seconds=3600, echo=lambda _m: None)
    av.clear_cache()
    yield svc
    db.dispose()


def _this_month(svc):
    now = svc.clock()
    month = av.month_key(av.today(now).replace(day=1))
    first, last, running = av.month_period(month, now)
    return now, month, first, last, running


def test_months_offered_and_the_default():
    now = datetime(2026, 1, 15, 4, tzinfo=UTC)
    options = av.month_options(now)
    assert options[0] == {"value": "2026-01", "label": "2026年1月（本月至今）"}
    assert options[1]["value"] == "2025-12" and len(options) == 13 and options[-1]["value"] == "2025-01"
    assert av.default_month(now) == "2025-12"
    first, last, running = av.month_period("2026-01", now)
    assert (first.isoformat(), last.isoformat(), running) == ("2026-01-01", "2026-01-15", True)
    assert av.month_period("2025-12", now)[1:] == (datetime(2025, 12, 31).date(), False)
    with pytest.raises(service.FigureError):
        av.month_period("2026-02", now)


def test_ends_keeps_the_best_and_the_worst():
    items = [{"code": str(i), "rank": i} for i in range(1, 11)] + [{"code": "x", "rank": None}]
    assert [i["code"] for i in av._ends(items, 4)] == ["1", "2", "9", "10"]
    assert [i["code"] for i in av._ends(items, 11)] == [i["code"] for i in items]
    assert [i["code"] for i in av._ends(items[7:], 4)] == ["8", "9", "10", "x"]


def test_board_equals_the_assessment(cases):
    now, month, first, last, _running = _this_month(cases)
    board = av.board(cases, month, None, now=now)
    ref = {i["code"]: i for i in service.assessment(cases, first, last, "district", now=now)["items"]}
    assert board["children"] and {i["code"] for i in board["children"]} == set(ref)
    for item in board["children"]:
        assert item["score"] == ref[item["code"]]["score"] and item["rank"] == ref[item["code"]]["rank"]
        assert item["grade"] == ref[item["code"]]["grade"]
    district = board["children"][0]["code"]
    drilled = av.board(cases, month, district, now=now)
    streets = {i["code"]: i for i in service.assessment(cases, first, last, "street", now=now)["items"]}
    assert drilled["children"] and all(i["parent"] == district for i in drilled["children"])
    assert all(i["score"] == streets[i["code"]]["score"] for i in drilled["children"])
    units = {i["code"]: i for i in service.assessment(cases, first, last, "unit", now=now)["items"]}
    assert all(u["score"] == units[u["code"]]["score"] and u["rank"] == units[u["code"]]["rank"] for u in board["units"])
    trend = av.trend(cases, None, month, now=now)
    assert len(trend) == 12 and trend[-1]["month"] == month and trend[-1]["score"] == board["own"]["score"]


def test_the_wall_scores_districts_as_the_assessment_does(cases):
    from figures import rollup

    now, _month, first, last, _running = _this_month(cases)
    with cases.db.session() as s:
        rows = rollup.district_ranking(s, now)["districts"]
    score_districts(cases, rows, now)
    ref = {i["code"]: i for i in service.assessment(cases, first, last, "district", now=now)["items"]}
    assert len(rows) == len(ref)
    for r in rows:
        assert r["score"] == pytest.approx(ref[r["code"]]["score"], abs=1e-6)
        assert r["grade"] == ref[r["code"]]["grade"] and r["rank"] == ref[r["code"]]["rank"]
    assert [r["rank"] for r in rows if r["rank"] is not None] == list(range(1, sum(r["rank"] is not None for r in rows) + 1))


def test_a_unit_card_is_the_units_own(cases):
    from data.tokens import Principal

    now, _month, first, last, _running = _this_month(cases)
    items = service.assessment(cases, first, last, "unit", now=now)["items"]
    mine = next(i for i in items if i["score"] is not None)
    principal = Principal(kind="user", ident="h", role="unit_handler", area_code="320400", unit_code=mine["code"])
    card = av.unit_card(cases, principal, now)
    assert card["item"]["score"] == mine["score"] and card["item"]["rank"] == mine["rank"]
    assert card["of"] == sum(1 for i in items if i["rank"] is not None)
    assert all(p["unit_code"] == mine["code"] for p in card["penalties"])
    assert av.unit_card(cases, Principal(kind="user", ident="l", role="leader", area_code="320400"), now) is None
