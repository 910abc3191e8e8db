"""Plan indicators: the shipped table, seeding, progress, validated updates from a file, the CLI and the API."""
from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from dispatch.errors import ServiceError
from figures.plan_indicators import (
    THEME_LABELS,
    get_indicator,
    history,
    import_values,
    list_indicators,
    load_definitions,
    progress,
    seed_indicators,
    set_value,
    status_of,
)
from data.files import PLAN_INDICATORS_PATH
from data.models import Indicator, IndicatorValue

TODAY = date(2026, 11, 25)


@pytest.fixture
def seeded(empty_db):
    with empty_db.session() as s:
        assert seed_indicators(s) == len(load_definitions())
    return empty_db


# ---- the shipped table --------------------------------------------------------------------------------
def test_the_plan_table_covers_every_panel():
    rows = load_definitions()
    assert 20 <= len(rows) <= 30
    assert len({r["code"] for r in rows}) == len(rows)
    by_theme = {t: [r for r in rows if r["theme"] == t] for t in THEME_LABELS}
    assert all(len(v) >= 2 for v in by_theme.values()), {t: len(v) for t, v in by_theme.items()}
    names = {r["name"] for r in rows}
    for must in ("12345热线按期办结率", "数字城管按期结案率", "5G基站数", "空气质量优良天数比例", "地区生产总值",
                 "数字经济核心产业增加值占GDP比重", "城市运行管理平台接入部门数", "公共安全视频监控联网数"):
        assert must in names
    for r in rows:
        assert r["responsible_unit"] and r["domain"] and r["demo_value"] is not None and r["demo_as_of"]
        # the 2025 target is at least as ambitious as the 2023 one
        assert (r["target_2025"] >= r["target_2023"]) if r["direction"] == "up" else (r["target_2025"] <= r["target_2023"])


def test_a_broken_table_names_the_line(tmp_path):
    src = PLAN_INDICATORS_PATH.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "plan.csv"
    bad.write_text("\n".join(src[:3] + [src[3].replace(",up,", ",sideways,")]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="第 4 行"):
        load_definitions(bad)


# ---- progress ------------------------------------------------------------------------------------------
def test_progress_runs_from_the_baseline_to_the_target():
    assert progress(None, 100, 80, "up") is None
    assert progress(90, 100, 80, "up") == pytest.approx(0.5)
    assert progress(70, 100, 80, "up") == 0.0  # below the baseline: no progress, not negative
    assert progress(100.5, 100, 80, "up") == 1.0
    assert progress(36, 33, 39, "down") == pytest.approx(0.5)  # PM2.5 from 39 down to 33
    assert progress(33, 33, 39, "down") == 1.0
    assert progress(50, 100, None, "up") == pytest.approx(0.5)  # no baseline: value / target
    assert status_of(96, 95, 98, "up") == "met_2023" and status_of(99, 95, 98, "up") == "met_2025"
    assert status_of(94, 95, 98, "up") == "behind" and status_of(None, 95, 98, "up") == "no_value"
    assert status_of(1.4, 1.5, 1.3, "down") == "met_2023"


# ---- seeding and updates (SQLite and PostgreSQL) ------------------------------------------------------
def test_seeding_is_idempotent_and_marks_demo_values(seeded):
    with seeded.session() as s:
        assert seed_indicators(s) == 0
        items = list_indicators(s)
        assert len(items) == len(load_definitions()) and all(it["is_demo"] for it in items)
        assert s.scalar(select(func.count()).select_from(IndicatorValue)) == len(items)
        eco = list_indicators(s, "economy")
        assert eco and {it["theme"] for it in eco} == {"economy"} and eco[0]["theme_label"] == "产业经济"
        gdp = next(it for it in eco if it["name"] == "地区生产总值")
        assert gdp["unit"] == "亿元" and gdp["status"] in ("met_2023", "met_2025", "behind") and 0 <= gdp["progress"] <= 1


def test_a_reported_value_replaces_the_demo_one_and_keeps_history(seeded):
    with seeded.session() as s:
        out = set_value(s, "GOV-05", 97.3, "2026-10-31", "api", "token:1", today=TODAY)
        assert out["applied"] and out["value"] == 97.3 and out["as_of"] == "2026-10-31" and not out["is_demo"]
        assert out["status"] == "met_2025" and out["progress"] == 1.0
        older = set_value(s, "GOV-05", 95.0, "2026-06-30", "file", "统计局", today=TODAY)
        assert not older["applied"] and older["value"] == 97.3  # an older figure only joins the history
        again = set_value(s, "GOV-05", 97.1, "2026-10-31", "api", "token:1", today=TODAY)  # a correction
        assert again["applied"] and again["value"] == 97.1
        h = history(s, "GOV-05")
        assert [x["value"] for x in h] == [97.1, 97.3, 96.4, 95.0] and h[2]["is_demo"]  # newest as_of first


@pytest.mark.parametrize("value,as_of,fragment", [
    (None, "2026-10-31", "value（指标值）必填"),
    ("abc", "2026-10-31", "须为数字"),
    (True, "2026-10-31", "须为数字"),
    (float("nan"), "2026-10-31", "有限数字"),
    (-1, "2026-10-31", "不能为负数"),
    (101, "2026-10-31", "0–100"),
    (97, None, "as_of（统计截止日期）必填"),
    (97, "2026/10/31", "YYYY-MM-DD"),
    (97, "2026-13-01", "YYYY-MM-DD"),
    (97, 20261031, "YYYY-MM-DD"),
    (97, "2026-11-26", "晚于今天"),
])
def test_bad_updates_are_refused_in_chinese(seeded, value, as_of, fragment):
    with seeded.session() as s:
        with pytest.raises(ServiceError) as exc:
            set_value(s, "GOV-05", value, as_of, "api", "x", today=TODAY)
        assert exc.value.status == 400 and fragment in exc.value.message
        assert get_indicator(s, "GOV-05")["is_demo"]


def test_unknown_indicator_is_404(seeded):
    with seeded.session() as s, pytest.raises(ServiceError) as exc:
        set_value(s, "NOPE", 1, "2026-10-31", "api", "x", today=TODAY)
    assert exc.value.status == 404 and "NOPE" in exc.value.message


def test_a_value_file_is_all_or_nothing(seeded, tmp_path):
    good = tmp_path / "values.csv"
    good.write_text("code,value,as_of\nINF-01,15200,2026-10-31\nENV-02,32,2026-10-31\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("code,value,as_of\nINF-01,16000,2026-10-31\nXXX-9,1,2026-10-31\nENV-01,120,2026-10-31\n",
                   encoding="utf-8")
    with seeded.session() as s:
        report = import_values(s, bad, "统计局", today=TODAY)
        assert report.applied == 0 and len(report.problems) == 2
        assert "第 3 行" in report.problems[0] and "XXX-9" in report.problems[0] and "第 4 行" in report.problems[1]
        assert get_indicator(s, "INF-01")["value"] == 14500  # untouched
    with seeded.session() as s:
        report = import_values(s, good, "统计局", today=TODAY)
        assert (report.rows, report.applied, report.problems) == (2, 2, [])
        assert get_indicator(s, "ENV-02")["value"] == 32 and get_indicator(s, "ENV-02")["status"] == "met_2025"
    js = tmp_path / "values.json"
    js.write_text(json.dumps([{"code": "ECO-01", "value": 10500, "as_of": "2026-09-30"}]), encoding="utf-8")
    with seeded.session() as s:
        assert import_values(s, js, "统计局", today=TODAY).applied == 1
        assert s.get(Indicator, "ECO-01").updated_by == "统计局"


# ---- the API and the CLI (the app over the demo city) -------------------------------------------------
@pytest.fixture
def app(demo_app):
    from api.indicators import bp

    if "api_indicators" not in demo_app.blueprints:  # until app.py registers it
        demo_app.register_blueprint(bp)
    with demo_app.extensions["ucc"].db.session() as s:
        seed_indicators(s)
    return demo_app


def _err(resp, status, code):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"] == code and body["message"] and "Traceback" not in resp.get_data(as_text=True)
    return body


def test_api_reads_with_any_token(app, token_for):
    client = app.test_client()
    _err(client.get("/api/v1/indicators"), 401, "unauthorized")
    wall = {"Authorization": f"Bearer {token_for('wall')}"}
    items = client.get("/api/v1/indicators", headers=wall).get_json()["items"]
    assert len(items) == len(load_definitions()) and items[0]["code"] == "GOV-01"
    assert {"value", "as_of", "target_2023", "target_2025", "progress", "status", "responsible_unit"} <= set(items[0])
    traffic = client.get("/api/v1/indicators?theme=traffic", headers=wall).get_json()["items"]
    assert traffic and all(it["theme"] == "traffic" for it in traffic)
    _err(client.get("/api/v1/indicators?theme=space", headers=wall), 400, "bad_request")
    one = client.get("/api/v1/indicators/TRA-01", headers=wall).get_json()
    assert one["direction"] == "down" and one["history"][0]["source"] == "seed"
    _err(client.get("/api/v1/indicators/NOPE", headers=wall), 404, "not_found")


def test_api_updates_by_leader_or_admin_only(app, token_for):
    client = app.test_client()
    leader = {"Authorization": f"Bearer {token_for('leader')}"}
    officer = {"Authorization": f"Bearer {token_for('duty_officer')}"}
    body = {"value": 98.2, "as_of": "2026-10-31"}
    assert "管理员或领导" in _err(client.put("/api/v1/indicators/GOV-02", json=body, headers=officer), 403,
                                  "forbidden")["message"]
    resp = client.put("/api/v1/indicators/GOV-02", json=body, headers=leader)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert out["value"] == 98.2 and out["applied"] and out["status"] == "met_2025" and out["updated_by"].startswith("token:")
    admin = {"Authorization": f"Bearer {token_for('admin')}"}
    assert client.put("/api/v1/indicators/GOV-02", json={"value": "98.3", "as_of": "2026-10-31"},
                      headers=admin).get_json()["value"] == 98.3
    assert "须为数字" in _err(client.put("/api/v1/indicators/GOV-02", json={"value": "九十", "as_of": "2026-10-31"},
                                         headers=leader), 400, "invalid")["message"]
    assert "晚于今天" in _err(client.put("/api/v1/indicators/GOV-02", json={"value": 1, "as_of": "2999-01-01"},
                                         headers=leader), 400, "invalid")["message"]
    assert "JSON 对象" in _err(client.put("/api/v1/indicators/GOV-02", data="98", headers=leader), 400,
                               "bad_request")["message"]
    _err(client.put("/api/v1/indicators/NOPE", json=body, headers=leader), 404, "not_found")
    assert client.get("/api/v1/indicators/GOV-02", headers=leader).get_json()["value"] == 98.3


def test_cli_imports_values_all_or_nothing(app, tmp_path):
    runner = app.test_cli_runner()
    bad = tmp_path / "bad.csv"
    bad.write_text("code,value,as_of\nGOV-04,41,2026-10-31\nGOV-04,-3,2026-10-31\n", encoding="utf-8")
    result = runner.invoke(args=["import-indicators", str(bad)])
    assert result.exit_code == 1 and "未写入任何数据" in result.output and "第 3 行" in result.output
    good = tmp_path / "good.csv"
    good.write_text("code,value,as_of\nGOV-04,41,2026-10-31\n", encoding="utf-8")
    result = runner.invoke(args=["import-indicators", str(good), "--actor", "市大数据局"])
    assert result.exit_code == 0 and "已导入 1 条" in result.output, result.output
    listing = runner.invoke(args=["indicators", "--json"])
    gov04 = next(it for it in json.loads(listing.output) if it["code"] == "GOV-04")
    assert gov04["value"] == 41 and gov04["updated_by"] == "市大数据局" and not gov04["is_demo"]
