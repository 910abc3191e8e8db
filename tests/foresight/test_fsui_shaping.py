"""The foresight answers shaped for the cockpit and the wall (figures/foresight_view.py, the 仿真预测 view's charts and
tables): names instead of codes, actual days before the forecast, the largest what-if change first."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from data.area_directory import AreaDirectory
from figures import foresight_view as fv
from layouts import cockpit as view
from layouts import cockpit_foresight as fs
from tests.factories import add_case_row, rect_city, small_world

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CITY = rect_city()
NAME = {r.code: r.name for r in CITY}
DISTRICTS = [r.code for r in CITY if r.level == 2]
GRIDS = [r.code for r in CITY if r.level == 5]


@pytest.fixture
def world(empty_db):
    cases, _ = small_world(empty_db, T0)
    return empty_db, cases


def _forecast(first: date, days: int = 14) -> dict:
    """A forecast as ForecastService.forecast(by="district") answers (docs/foresight.md)."""
    items = [{"key": d, "date": (first + timedelta(days=i)).isoformat(), "expected": 4.0 + i % 3, "lower": 1,
              "upper": 9, "method": "negative_binomial"} for d in DISTRICTS for i in range(days)]
    return {"items": items, "backtest": {"metric": "MAE", "model_error": 1.1, "baseline_error": 1.4, "keys": [
        {"key": DISTRICTS[0], "model_error": 1.0, "baseline_error": 1.5, "used": "model"},
        {"key": DISTRICTS[1], "model_error": 2.0, "baseline_error": 1.5, "used": "baseline"},
        {"key": "999999", "model_error": 1.0, "baseline_error": 2.0, "used": "model"}]}}


def test_the_forecast_board_has_the_actual_days_before_the_forecast_by_district_name(world):
    db, cases = world
    first = date(2026, 11, 23)
    # Shanghai days: 3 cases on the 22nd (the day before the forecast), 1 on the 26 days before, 1 outside
    for h in (1, 2, 3):
        add_case_row(db, datetime(2026, 11, 22, h, tzinfo=UTC), grid=GRIDS[0])
    add_case_row(db, datetime(2026, 10, 26, 4, tzinfo=UTC), grid=GRIDS[0])  # the 28th day back
    add_case_row(db, datetime(2026, 10, 25, 4, tzinfo=UTC), grid=GRIDS[0])  # the 29th: not drawn
    add_case_row(db, datetime(2026, 11, 23, 1, tzinfo=UTC), grid=GRIDS[0])  # a forecast day: not an actual
    board = fv.forecast_board(db, cases.areas, _forecast(first))
    assert [d["name"] for d in board["districts"]] == [NAME[c] for c in DISTRICTS]
    s = board["series"][DISTRICTS[0]]
    assert len(s["actual"]) == fv.HISTORY_DAYS and s["actual_dates"][-1] == "2026-11-22"
    assert s["actual_dates"][0] == "2026-10-26"
    assert s["actual"][-1] == 3 and s["actual"][0] == 1 and sum(s["actual"]) == 4
    assert board["series"][DISTRICTS[1]]["actual"] == [0] * fv.HISTORY_DAYS
    assert s["dates"][0] == "2026-11-23" and len(s["dates"]) == 14 and s["upper"][0] == 9
    # the backtest names the districts, says which is used, and leaves out a key the forecast does not have
    assert [(r["name"], r["used"]) for r in board["backtest"]] == [(NAME[DISTRICTS[0]], "模型"),
                                                                    (NAME[DISTRICTS[1]], "基准")]


def test_the_forecast_chart_draws_the_band_and_the_actual_days(world):
    db, cases = world
    board = fv.forecast_board(db, cases.areas, _forecast(date(2026, 11, 23)))
    fig = view.forecast_figure(board["series"][DISTRICTS[0]], 1.0)
    kinds = [(t.type, t.name) for t in fig.data]
    assert ("bar", "实际") in kinds and ("scatter", "预测值") in kinds and ("scatter", "预测区间") in kinds
    band = next(t for t in fig.data if t.name == "预测区间")
    assert band.fill == "tonexty"
    assert list(fig.layout.xaxis.categoryarray)[fv.HISTORY_DAYS] == "11-23"  # the forecast follows the actual days
    empty = view.forecast_figure(None, 1.0, "预测服务未启用")
    assert empty.layout.annotations[0].text == "预测服务未启用"


def _warnings() -> list[dict]:
    """Warnings as WarningService.list answers them (area, district and category codes, windows in ISO)."""
    w0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    rows = [
        {"id": 3, "kind": "surge", "area_code": GRIDS[0][:9], "district_code": GRIDS[0][:6], "category_code": "020102",
         "window_start": w0, "window_end": w0 + timedelta(hours=24), "observed": 14, "expected": 4.26, "upper": 9.0,
         "status": "open", "evidence": {}},
        {"id": 2, "kind": "hotspot", "area_code": GRIDS[1], "district_code": GRIDS[1][:6], "category_code": None,
         "window_start": w0 - timedelta(days=7), "window_end": w0, "observed": 30, "expected": 8.0, "upper": None,
         "status": "acknowledged", "evidence": {}},
        {"id": 1, "kind": "recurrent", "area_code": GRIDS[2], "district_code": GRIDS[2][:6], "category_code": "020102",
         "window_start": w0 - timedelta(days=28), "window_end": w0, "observed": 6, "expected": None, "upper": None,
         "status": "open", "evidence": {"centre": [119.91, 31.71], "spot": "s1"}},
        {"id": 0, "kind": "hotspot", "area_code": GRIDS[3], "district_code": GRIDS[3][:6], "category_code": None,
         "window_start": w0 - timedelta(days=7), "window_end": w0, "observed": 9, "expected": 3.0, "upper": None,
         "status": "dismissed", "evidence": {}},
    ]
    keys = {"area_code": "area", "district_code": "district", "category_code": "category"}
    return [{keys.get(k, k): (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]


def test_warnings_are_listed_by_name_kind_and_local_window(world):
    db, cases = world
    names = {code: c.name for code, c in cases.catalog().items()}
    rows = fv.warning_rows(_warnings(), cases.areas, names)
    assert [r["kind_label"] for r in rows] == ["突增", "热点", "高发点位", "热点"]
    street = GRIDS[0][:9]
    assert rows[0]["place"] == f"{NAME[street[:6]]} {NAME[street]}"
    # the wall's two lines: the district, then the place below it (a grid with its street)
    assert (rows[0]["district"], rows[0]["spot"]) == (NAME[street[:6]], NAME[street])
    assert rows[1]["spot"] == f"{NAME[GRIDS[1][:9]]} {NAME[GRIDS[1]]}"
    assert rows[1]["place"].startswith(NAME[GRIDS[1][:6]]) and rows[1]["place"].endswith(NAME[GRIDS[1]])
    assert rows[0]["category"] == names["020102"] and rows[1]["category"] == "全部类别"
    assert rows[0]["window"] == "11-22 10:00–11-23 10:00"  # Shanghai time
    assert (rows[0]["observed"], rows[0]["expected"]) == (14, 4.3)
    assert [r["status_label"] for r in rows] == ["待处理", "已确认", "待处理", "已忽略"]
    shown = " ".join(f"{r['place']} {r['category']}" for r in rows)
    assert not any(code in shown for code in [*GRIDS, *DISTRICTS, "020102"])
    # the list a leader sees: the actions only on what is still to handle; 确认 only while open
    html = str(fs.warnings_list(rows, can_act=True))
    assert html.count("'action': 'task'") == 3 and html.count("'action': 'ack'") == 2
    assert "'action'" not in str(fs.warnings_list(rows, can_act=False))


def test_hot_spots_are_the_open_hot_grids_and_recurring_spots(world):
    _, cases = world
    marks = fv.hotspot_marks(_warnings(), cases.areas)
    assert marks["grids"] == [GRIDS[1]]  # the dismissed hot grid is not marked; a surge is not a place
    assert marks["spots"] == [{"lon": 119.91, "lat": 31.71, "name": fv._place(cases.areas, GRIDS[2]), "count": 6}]
    layers = view.hotspot_layers(marks, cases.areas, 0.0001)
    assert [layer.id for layer in layers] == ["ck-hot-grids", "ck-hot-spots"]
    assert view.hotspot_layers({"grids": [], "spots": []}, cases.areas, 0.0001) == []


def _unit(code, name, base, changed):
    keys = ("overdue", "on_time_rate", "score")
    return {"code": code, "name": name, "area": "320402", "baseline": dict(zip(keys, base)),
            "changed": dict(zip(keys, changed))}


def test_a_what_if_result_lists_the_largest_change_first_with_names():
    # as foresight/whatif.py's result: per unit and for the city, the baseline and the changed run
    result = {"units": [_unit("U1", "钟楼区城管局", (2.0, 0.9, 90.0), (2.5, 0.88, 89.0)),
                        _unit("U2", "天宁区住建局", (1.0, 0.95, 95.0), (9.0, 0.6, 70.5)),
                        _unit("U3", "新北区水务局", (0.0, 1.0, 100.0), (0.0, 1.0, 100.0))],
              "city": {"baseline": {"overdue": 3.0, "on_time_rate": 0.93, "score": 95.0},
                       "changed": {"overdue": 11.5, "on_time_rate": 0.8, "score": 86.5}}}
    table = fv.whatif_rows(result, {})
    # the unit the change leaves as it was is counted, not listed
    assert [r["name"] for r in table["rows"]] == ["天宁区住建局", "钟楼区城管局"] and table["more"] == 1
    top = table["rows"][0]
    assert (top["overdue_delta"], top["score_delta"]) == (8.0, -24.5) and top["rate_delta"] == pytest.approx(-0.35)
    assert table["totals"]["overdue_delta"] == 8.5
    html = str(fs.whatif_table(table))
    assert "全市合计" in html and "+8.0" in html and "-24.5" in html and "U2" not in html
    assert "其余 1 个单位" in html
    assert [r["name"] for r in fv.whatif_rows(result, {}, limit=1)["rows"]] == ["天宁区住建局"]
    assert fv.whatif_rows(result, {}, limit=1)["more"] == 2


def test_progress_reads_as_a_bar():
    assert fs.progress("running", 0.42) == ({"width": "42%"}, "推演中 42%")
    assert fs.progress("done", 0.9)[0] == {"width": "100%"}
    assert fs.progress("queued", None) == ({"width": "0%"}, "排队中…")


def test_units_to_pick_are_named(world):
    db, _ = world
    options = fv.unit_options(db)
    assert options and all(o["label"] and o["label"] != o["value"] for o in options)
    one_district = fv.unit_options(db, {DISTRICTS[0]})
    assert 0 < len(one_district) < len(options)


def test_the_area_directory_names_every_place(world):
    db, _ = world
    areas = AreaDirectory(db)
    assert fv._place(areas, None, DISTRICTS[0]) == NAME[DISTRICTS[0]]
    assert fv._place(areas, "nowhere") == "—"


def test_the_wall_snapshot_lists_open_warnings_by_name_with_their_marks(world):
    warnings_module = pytest.importorskip("foresight.warnings")  # the warning service (wip-warnings)
    from types import SimpleNamespace

    from data.tokens import Principal
    from figures.wall import _warnings
    from foresight.findings import Finding

    db, cases = world
    end = T0 - timedelta(hours=1)
    found = [Finding("surge", GRIDS[0][:9], GRIDS[0][:6], "020102", end - timedelta(hours=24), end, 14, 4.0, 9.0, 3.5),
             Finding("hotspot", GRIDS[5], GRIDS[5][:6], None, end - timedelta(days=7), end, 30, 8.0, None, 4.2,
                     {"grids": [{"code": GRIDS[5]}, {"code": GRIDS[6]}]})]
    service = warnings_module.WarningService(db, cases, [lambda _db, _at, _rules: found])
    assert _warnings(SimpleNamespace()) is None  # no warning service: the wall says so, shows nothing made up
    stored = service.run(T0)
    assert len(stored) == 2
    app = SimpleNamespace(warnings=service, cases=cases, areas=cases.areas)
    snap = _warnings(app)
    assert snap["total"] == 2
    assert {w["kind_label"] for w in snap["items"]} == {"突增", "热点"}
    surge = next(w for w in snap["items"] if w["kind"] == "surge")
    assert (surge["district"], surge["spot"], surge["observed"]) == (NAME[GRIDS[0][:6]], NAME[GRIDS[0][:9]], 14)
    assert [m[2] for m in snap["marks"]] == [0]  # one ring at the warned hot grid; a surge is no place
    service.dismiss(stored[0]["id"], Principal("user", "duty", "duty_officer", "320400"), "误报")
    assert _warnings(app)["total"] == 1


def test_whole_local_days_read_as_days():
    shanghai = timezone(timedelta(hours=8))
    day = datetime(2026, 12, 8, tzinfo=shanghai)
    # a surge's window is its local day, counted up to the check: the day, not a span into tomorrow
    assert fv.window_text(day, day + timedelta(days=1)) == "12-08 当日"
    # a hotspot's 7 days end at midnight: the last day counted is the day before
    assert fv.window_text(day - timedelta(days=7), day) == "12-01–12-07"
    assert fv.window_text(day + timedelta(hours=10), day + timedelta(hours=34)) == "12-08 10:00–12-09 10:00"
