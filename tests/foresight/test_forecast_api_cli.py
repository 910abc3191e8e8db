"""GET /api/v1/forecast and `flask forecast` on SQLite and PostgreSQL over a generated history: the contract's
shape, the backtest beside it, an area's forecast, and every bad argument refused in Chinese (400/401/403/404),
never a 500; the command's table and JSON."""
from __future__ import annotations

import json
from datetime import date

import pytest

from data.tokens import create_token
from tests.conftest import make_database, make_settings
from tests.foresight.forecast_world import DISTRICTS, build_history

AT = "2026-10-15T08:00:00+08:00"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    from app import create_app
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path_factory.mktemp("fcapi"))
    init_db(db)
    build_history(db, date(2026, 8, 1), date(2026, 10, 20))
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True

    def token(role="duty_officer", area=None, unit=None):
        with db.session() as s:
            return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}

    yield app, token
    app.extensions["ucc"].db.dispose()
    db.dispose()
    if schema:
        schema.drop()


def error(resp, status):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert {"error", "message"} <= set(body)
    return body["message"]


def test_forecast_per_district_and_kind(api):
    app, token = api
    client = app.test_client()
    resp = client.get(f"/api/v1/forecast?days=14&by=district&at={AT.replace('+', '%2B')}", headers=token("leader"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert len(body["items"]) == 14 * len(DISTRICTS)
    first = body["items"][0]
    assert {"key", "date", "expected", "lower", "upper"} <= set(first) and first["date"] == "2026-10-15"
    assert all(i["lower"] <= i["expected"] <= i["upper"] for i in body["items"])
    bt = body["backtest"]
    assert bt["metric"] == "MAE" and bt["model_error"] < bt["baseline_error"]
    kinds = client.get(f"/api/v1/forecast?days=3&by=kind&at={AT.replace('+', '%2B')}", headers=token()).get_json()
    assert {i["key"] for i in kinds["items"]} == {"event", "component"}
    one = client.get(f"/api/v1/forecast?days=3&by=kind&area={DISTRICTS[1]}&at={AT.replace('+', '%2B')}",
                     headers=token()).get_json()
    whole = {(i["key"], i["date"]): i["expected"] for i in kinds["items"]}
    assert all(i["expected"] < whole[(i["key"], i["date"])] for i in one["items"])  # one district of two


def test_bad_requests_are_refused_in_chinese(api):
    app, token = api
    client = app.test_client()
    officer = token()
    assert "Bearer" in error(client.get("/api/v1/forecast?days=7"), 401)
    for query in ("days=0", "days=999", "days=abc", "days=7&by=street", "days=7&at=2026-10-15T08:00:00",
                  "days=7&at=yesterday", "days=7&at=3000-01-01T00:00:00%2B08:00"):
        message = error(client.get(f"/api/v1/forecast?{query}", headers=officer), 400)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message
    assert "不存在" in error(client.get("/api/v1/forecast?days=7&area=999999", headers=officer), 404)
    error(client.get("/api/v1/forecast?days=7", headers=token("grid_member")), 403)
    # a district's officer reads the district, not the neighbour's
    theirs = token("duty_officer", area=DISTRICTS[0])
    own = client.get(f"/api/v1/forecast?days=2&by=kind&at={AT.replace('+', '%2B')}", headers=theirs)
    assert own.status_code == 200 and own.get_json()["area"] == DISTRICTS[0]
    error(client.get(f"/api/v1/forecast?days=2&area={DISTRICTS[1]}", headers=theirs), 403)


def test_the_command_prints_a_table_and_json(api):
    app, _ = api
    runner = app.test_cli_runner()
    out = runner.invoke(args=["forecast", "--days", "3", "--by", "kind", "--at", AT])
    assert out.exit_code == 0, out.output
    assert "案件量预测" in out.output and "事件" in out.output and "回测" in out.output
    js = runner.invoke(args=["forecast", "--days", "2", "--at", AT, "--json"])
    assert js.exit_code == 0, js.output
    body = json.loads(js.output)
    assert len(body["items"]) == 2 * len(DISTRICTS) and body["backtest"]["metric"] == "MAE"
    for args, needle in ((["--days", "0"], "days"), (["--days", "3", "--by", "street"], "by"),
                         (["--days", "3", "--at", "2026-10-15"], "时区")):
        bad = runner.invoke(args=["forecast", *args])
        assert bad.exit_code != 0 and needle in bad.output, bad.output
