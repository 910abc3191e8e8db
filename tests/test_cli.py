"""The CLI of CONTRACT.md: init-db, seed-demo, import-grid (good, bad, round trip), create-token."""
from __future__ import annotations

import shapely
import pytest

from app import create_app
from data.areas import hierarchy_version, load_records
from data.tokens import resolve_token
from geo.importer import write_hierarchy_file
from tests.conftest import make_settings
from tests.factories import rect_city


@pytest.fixture
def fresh_app(tmp_path):
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'cli.db'}"))
    yield app
    app.extensions["ucc"].db.dispose()


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def _records(app):
    with app.extensions["ucc"].db.session() as s:
        return load_records(s), hierarchy_version(s)


def _same_hierarchy(a, b):
    assert [(r.code, r.name, r.level, r.parent, r.population) for r in sorted(a, key=lambda r: r.code)] == \
        [(r.code, r.name, r.level, r.parent, r.population) for r in sorted(b, key=lambda r: r.code)]
    geoms = {r.code: r.geometry for r in b}
    assert all(shapely.equals_exact(r.geometry, geoms[r.code], 1e-9) for r in a)


def test_init_db_twice(fresh_app):
    first = run(fresh_app, "init-db")
    second = run(fresh_app, "init-db")
    from alembic.script import ScriptDirectory

    from data.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert first.exit_code == 0 and second.exit_code == 0
    assert f"({head})" in second.output


def test_import_grid_loads_a_valid_city(fresh_app, tmp_path):
    path = tmp_path / "city.geojson"
    write_hierarchy_file(rect_city(), str(path))
    result = run(fresh_app, "import-grid", str(path))
    assert result.exit_code == 0, result.output
    records, _ = _records(fresh_app)
    _same_hierarchy(records, rect_city())


def test_import_grid_refuses_a_broken_file_and_changes_nothing(fresh_app, tmp_path):
    good = tmp_path / "good.geojson"
    write_hierarchy_file(rect_city(), str(good))
    assert run(fresh_app, "import-grid", str(good)).exit_code == 0
    before, version = _records(fresh_app)

    broken = rect_city()
    for r in broken:
        if r.code == "320402001001002":
            r.parent = "320402009009"  # a parent that does not exist
        if r.code == "320403002":
            r.geometry = r.geometry.buffer(0.01)  # sticks out and overlaps its neighbours
    bad = tmp_path / "bad.geojson"
    write_hierarchy_file(broken, str(bad))
    result = fresh_app.test_cli_runner().invoke(args=["import-grid", "--replace", str(bad)])
    # A clean exit 1 after the report, not a crash on the way out (which would also give 1).
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "320402001001002" in result.output and "320403002" in result.output
    assert "未写入任何数据" in result.output
    after, version_after = _records(fresh_app)
    assert version_after == version
    _same_hierarchy(after, before)


def test_import_grid_with_problems_into_an_empty_database_writes_nothing(fresh_app, tmp_path):
    broken = rect_city()
    for r in broken:
        if r.code == "320402001001002":
            r.name = "  "
    bad = tmp_path / "bad.geojson"
    write_hierarchy_file(broken, str(bad))
    result = fresh_app.test_cli_runner().invoke(args=["import-grid", str(bad)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "发现 1 个问题，未写入任何数据" in result.output
    assert "320402001001002" in result.output and "名称" in result.output
    assert _records(fresh_app)[0] == []


def test_import_grid_over_an_existing_city_needs_replace(fresh_app, tmp_path):
    path = tmp_path / "city.gpkg"
    write_hierarchy_file(rect_city(), str(path))
    assert run(fresh_app, "import-grid", str(path)).exit_code == 0
    result = fresh_app.test_cli_runner().invoke(args=["import-grid", str(path)])
    assert result.exit_code == 1 and "--replace" in result.output
    assert fresh_app.test_cli_runner().invoke(args=["import-grid", "--replace", str(path)]).exit_code == 0


def test_import_grid_missing_file(fresh_app, tmp_path):
    result = fresh_app.test_cli_runner().invoke(args=["import-grid", str(tmp_path / "nope.geojson")])
    assert result.exit_code == 1
    assert _records(fresh_app)[0] == []


@pytest.mark.parametrize("suffix", ["geojson", "gpkg"])
def test_demo_city_round_trip_through_export_and_import(demo_app, demo_records, tmp_path, suffix):
    path = tmp_path / f"changzhou.{suffix}"
    result = run(demo_app, "export-grid", str(path))
    assert result.exit_code == 0, result.output
    other = create_app(make_settings(f"sqlite:///{tmp_path / 'other.db'}"))
    result = run(other, "import-grid", str(path))
    assert result.exit_code == 0, result.output
    assert "第5级 5891" in result.output
    records, _ = _records(other)
    _same_hierarchy(records, demo_records)
    other.extensions["ucc"].db.dispose()


def test_create_token_prints_a_working_token(demo_app):
    result = run(demo_app, "create-token", "--role", "leader", "--area", "320402")
    token = result.output.strip()
    with demo_app.extensions["ucc"].db.session() as s:
        p = resolve_token(s, token)
    assert (p.role, p.area_code) == ("leader", "320402")
    bad = demo_app.test_cli_runner().invoke(args=["create-token", "--role", "king"])
    assert bad.exit_code == 1 and "未知角色" in bad.output


def test_kpi_command_prints_a_table_and_json(demo_app):
    import json as _json

    from data.tokens import Principal

    officer = Principal("user", "officer", "duty_officer", "320400")
    case, _ = demo_app.extensions["ucc"].cases.intake(
        {"category": "020102", "lon": 119.975, "lat": 31.79, "source": "hotline", "description": "垃圾"}, officer)
    day = case["reported_at"][:10]
    table = run(demo_app, "kpi", "--start", day, "--end", day)
    assert table.exit_code == 0 and "受理数" in table.output and "全市" in table.output
    body = _json.loads(run(demo_app, "kpi", "--start", day, "--end", day, "--json", "--by", "district").output)
    assert body["received"] == 1 and body["groups"][0]["name"] == "天宁区"
    bad = demo_app.test_cli_runner().invoke(args=["kpi", "--start", "2026-02-30", "--end", day])
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.output
    backwards = demo_app.test_cli_runner().invoke(args=["kpi", "--start", day, "--end", "2000-01-01"])
    assert backwards.exit_code == 1 and "早于" in backwards.output


def test_import_cases_command(demo_app, tmp_path):
    header = ("case_id,category_code,lon,lat,source,reported_at,accepted_at,rejected_at,dispatched_at,unit_code,"
              "deadline_at,resolved_at,closed_at,rework_count,extension_count")
    good = tmp_path / "legacy.csv"
    good.write_text(header + "\n"
                    "L1,020102,119.975,31.79,hotline,2026-03-02T09:00:00+08:00,2026-03-02T09:10:00+08:00,,"
                    "2026-03-02T09:20:00+08:00,,2026-03-02T13:10:00+08:00,2026-03-02T12:00:00+08:00,"
                    "2026-03-02T13:00:00+08:00,0,0\n", encoding="utf-8")
    result = run(demo_app, "import-cases", "--no-progress", str(good))
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\nL2,999999,119.975,31.79,hotline,2026-03-02T09:00:00+08:00,,,,,,,,0,0\n", encoding="utf-8")
    failed = demo_app.test_cli_runner().invoke(args=["import-cases", "--no-progress", str(bad)])
    assert failed.exit_code == 1 and "第 2 行" in failed.output
    again = demo_app.test_cli_runner().invoke(args=["import-cases", "--no-progress", str(good)])
    assert again.exit_code == 1 and "重复导入" in again.output
    body = run(demo_app, "kpi", "--start", "2026-03-01", "--end", "2026-03-31", "--json").output
    import json as _json

    k = _json.loads(body)
    assert (k["received"], k["accepted"], k["closed"], k["closed_on_time"]) == (1, 1, 1, 1)


def test_simulate_command_feeds_the_real_intake(demo_app):
    from data.tokens import Principal

    result = run(demo_app, "simulate", "--rate", "60", "--duration", "600", "--backfill", "--seed", "7")
    assert result.exit_code == 0, result.output
    admin = Principal("user", "admin", "admin", "320400")
    assert demo_app.extensions["ucc"].cases.list(admin, per_page=1, count=True)["total"] > 5
    bad = demo_app.test_cli_runner().invoke(args=["simulate", "--rate", "-1"])
    assert bad.exit_code == 1 and "不能为负数" in bad.output


def test_create_user_then_sign_in_and_bad_input_changes_nothing(demo_app):
    import re

    from sqlalchemy import func, select

    from data.models import User

    runner = demo_app.test_cli_runner()
    db = demo_app.extensions["ucc"].db
    with db.session() as s:
        before = s.scalar(select(func.count(User.id)))
    bad = runner.invoke(args=["create-user", "x", "--role", "chief", "--area", "999", "--password", "short"])
    assert bad.exit_code != 0
    assert "用户名应为" in bad.output and "未知角色" in bad.output and "区域编码 999 不存在" in bad.output
    assert "密码至少 8 位" in bad.output
    with db.session() as s:
        assert s.scalar(select(func.count(User.id))) == before
    ok = runner.invoke(args=["create-user", "zhou.hao", "--role", "duty_officer", "--area", "320402",
                             "--name", "天宁区值班员 周浩", "--password", "tianning-2026"])
    assert ok.exit_code == 0, ok.output
    client = demo_app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "zhou.hao", "password": "tianning-2026", "csrf_token": csrf})
    assert r.status_code == 302 and r.headers["Location"] == "/console"
    assert runner.invoke(args=["create-user", "zhou.hao", "--reset", "--role", "duty_officer",
                               "--password", "new-password-1"]).exit_code == 0
    with db.session() as s:
        from data.users import authenticate

        assert authenticate(s, "zhou.hao", "new-password-1") is not None
        assert authenticate(s, "zhou.hao", "tianning-2026") is None


def test_a_handler_token_must_cover_its_units_jurisdiction(demo_app):
    runner = demo_app.test_cli_runner()
    wrong = runner.invoke(args=["create-token", "--role", "unit_handler", "--unit", "U-320402-city_management",
                                "--area", "320404"])  # 天宁区's bureau, 钟楼区's area
    assert wrong.exit_code != 0 and "辖区不在区域 320404 内" in wrong.output
    right = runner.invoke(args=["create-token", "--role", "unit_handler", "--unit", "U-320402-city_management",
                                "--area", "320402"])
    assert right.exit_code == 0 and right.output.strip().startswith("ucc_")


def test_commands_run_on_an_app_that_does_not_serve(tmp_path, monkeypatch):
    """`flask --app app COMMAND` builds the app without Dash, sign-in or the API (~30 MB less for every
    command, bench/bench_imports.py); Flask's own `run`, `routes` and `shell`, wsgi.py and app.py get
    the serving app."""
    import click
    from click.testing import CliRunner
    from flask.cli import FlaskGroup, cli

    settings = make_settings(f"sqlite:///{tmp_path / 'lean.db'}")
    with click.Context(FlaskGroup()):              # the CLI looking up one of the app's commands
        lean = create_app(settings)
    with click.Context(click.Command("run")):      # Flask's `flask run` loading the app to serve it
        served = create_app(settings)
    assert "ucc_dash" not in lean.extensions and "ucc_live" not in lean.extensions
    assert not any(r.rule.startswith("/api/") for r in lean.url_map.iter_rules())
    assert set(lean.cli.commands) == set(served.cli.commands)
    assert "ucc_dash" in served.extensions and "ucc_live" in served.extensions
    assert "ucc_dash" in create_app(settings).extensions            # outside click: wsgi.py, app.py
    assert "ucc_dash" in create_app(settings, serve=True).extensions
    for app in (lean, served):
        app.extensions["ucc"].db.dispose()

    # The real CLI, in this process: the lean app runs a command end to end.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("UCC_SECRET_KEY", "test-secret")
    monkeypatch.setenv("UCC_SIMULATE", "0")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "")   # Flask sets it; restored (absent) after the test
    result = CliRunner().invoke(cli, ["--app", "app", "init-db"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["--app", "app", "indicators"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_sync_catalog_reports_and_is_idempotent(demo_app):
    from sqlalchemy import text

    db = demo_app.extensions["ucc"].db
    with db.session() as s:  # a class name from an older catalog
        s.execute(text("UPDATE categories SET major_class = '园林绿化设施' WHERE code = '010402'"))
    runner = demo_app.test_cli_runner()
    first = runner.invoke(args=["sync-catalog"])
    assert first.exit_code == 0 and "更新类别 1 个" in first.output
    again = runner.invoke(args=["sync-catalog"])
    assert again.exit_code == 0 and "已是最新" in again.output
