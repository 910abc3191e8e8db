"""The cockpit's 仿真预测 view and the wall's warnings in headless Chromium: the forecast drawn, warnings listed by
name and acted on, a what-if run from the form to its result, and a new warning reaching the wall without a reload."""
from __future__ import annotations

import json
import shutil
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.browser.conftest import PageWatch, choose_option, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser
UTC = timezone.utc
SURGE_STREET = "320402001"  # 天宁区 白庄街道 (demo city)
HOT_GRID = "320402002001001"  # a grid of 天宁区 where the test piles up cases


def store_warning(db, finding) -> list[dict]:
    """Stores `finding` as the warning service stores what its detectors find (the hourly run, one detector)."""
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from foresight.warnings import WarningService

    return WarningService(db, CaseService(db, AreaDirectory(db)), [lambda _db, _at, _rules: [finding]]).run()


def surge(street: str, category: str, observed: int, expected: float, hours_ago: float = 0):
    from foresight.findings import Finding

    end = datetime.now(UTC) - timedelta(hours=hours_ago)
    return Finding("surge", street, street[:6], category, end - timedelta(hours=24), end, observed, expected,
                   expected * 1.9, observed / expected, {"method": "test", "interval_level": 0.999})


def cluster(db, grid: str, n: int, category: str = "020102", days: float = 5) -> None:
    """`n` cases of one category at one spot of `grid` and a few in its neighbours over the last `days` days: a
    concentration the hotspot and recurring-spot detectors are there to find."""
    from data.area_directory import AreaDirectory
    from data.models import Case

    areas = AreaDirectory(db)
    now = datetime.now(UTC)
    spots = [(grid, n)] + [(g.code, n // 2) for g in areas.neighbours(grid)[:6]]
    with db.session() as s:
        for code, k in spots:
            pt = areas.get(code).geometry.representative_point()
            for i in range(k):
                at = now - timedelta(hours=1 + (days * 24 - 2) * i / max(k, 1))
                s.add(Case(state="closed", category_code=category, kind="event", source="patrol",
                           lon=pt.x + 0.00005 * (i % 5), lat=pt.y + 0.00005 * (i % 3), grid_code=code,
                           district_code=code[:6], reported_at=at, updated_at=at))


def prepare(path: Path, days: int = 84, cases: int = 30_000) -> None:
    """The demo city with `cases` cases over the `days` days before now (the forecast's history and backtest), a
    concentration of cases in a grid of 天宁区 and its neighbours, the real detectors' warnings as of now, and one
    surge in 白庄街道."""
    from bench.bench_wall import fill_cases
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database
    from foresight.warnings import WarningService, detector

    fill_cases(path, cases, now=datetime.now(UTC) - timedelta(minutes=2), days=days, seed=18)
    db = Database(f"sqlite:///{path}")
    cluster(db, HOT_GRID, 40)
    service = WarningService(db, CaseService(db, AreaDirectory(db)),
                             [detector("foresight.hotspots"), detector("foresight.recurrent")])
    service.run()
    store_warning(db, surge(SURGE_STREET, "020102", 23, 6.4, hours_ago=1))
    db.dispose()


@pytest.fixture(scope="module")
def fs_app(demo_sqlite_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("foresight")
    path = d / "fs.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    prepare(path)
    from data.db import Database
    from data.tokens import create_token

    db = Database(f"sqlite:///{path}")
    with db.session() as s:
        tokens = {"wall": create_token(s, "wall", label="大屏"), "officer": create_token(s, "duty_officer")}
    db.dispose()
    # no demo history filled at start: the cases above are the history (and the warnings were found in them)
    app = AppProcess(f"sqlite:///{path}", d / "app.log", UCC_SEED_HISTORY="0").wait_ready()
    app.path, app.tokens = path, tokens
    yield app
    app.stop()


def open_foresight(browser, app, user: str = "duty", width: int = 1920, height: int = 1080):
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = ctx.new_page()
    watch = PageWatch(page, app.url)
    sign_in(page, app.url, user)
    page.goto(app.url + "/cockpit?view=foresight")
    # the forecast chart drawn (a band and a line: the chart's SVG has its traces) and the warnings listed
    page.wait_for_function("""() => {
        const g = document.querySelector('#ck-fs-graph .scatterlayer .trace');
        const w = document.querySelector('#ck-fs-warnings .ck-fs-w, #ck-fs-warnings .ck-empty-note');
        return g && w && !w.textContent.includes('加载中');
    }""", timeout=120_000)
    return ctx, page, watch


def test_the_foresight_view_draws_forecasts_lists_warnings_and_acts(browser, fs_app):
    ctx, page, watch = open_foresight(browser, fs_app)
    try:
        assert "ck-tab--on" in page.get_attribute("#ck-fs-btn", "class")
        # the forecast: the chart's title names a district, the bars of the actual days and the band are drawn
        assert "区" in page.inner_text("#ck-fs-fc-title")
        assert page.locator("#ck-fs-graph .barlayer .point").count() >= 20
        legend = page.locator("#ck-fs-graph .legend").text_content()
        assert "实际" in legend and "预测值" in legend and "预测区间" in legend
        # the backtest: a line per district, model or baseline used
        rows = page.locator("#ck-fs-bt-table tbody tr")
        assert rows.count() >= 5
        used = {page.inner_text(f"#ck-fs-bt-table tbody tr:nth-child({i + 1}) td:last-child") for i in range(rows.count())}
        assert used <= {"模型", "基准"} and used
        # the warnings: by name, never a code
        box = page.inner_text("#ck-fs-warnings")
        assert "突增" in box and "天宁区 白庄街道" in box and "实际 23 件 / 预期 6.4 件" in box
        assert SURGE_STREET not in box and "020102" not in box
        # another district's forecast from the picker
        first = page.inner_text("#ck-fs-fc-title")
        assert "天宁区" in first  # the city's first district
        choose_option(page, "#ck-fs-district", "钟楼区")
        page.wait_for_function("t => document.querySelector('#ck-fs-fc-title').textContent !== t", arg=first)
        assert "钟楼区" in page.inner_text("#ck-fs-fc-title")
        # the hot spots are a layer of the cockpit's map in this view, and its legend names them
        page.wait_for_function("() => document.querySelector('#ck-map-legend').textContent.includes('预警')",
                               timeout=30_000)
        # 确认, then 转专项整治 with a unit serving the street: the warning becomes a case
        item = page.locator("#ck-fs-warnings .ck-fs-w", has_text="白庄街道").first
        wid = item.get_attribute("id").removeprefix("ck-fs-w-")
        item.locator("button", has_text="确认").click()
        page.wait_for_selector(f"#ck-fs-msg:has-text('预警 #{wid} 已确认')")
        page.wait_for_selector(f"#ck-fs-w-{wid}.is-acknowledged")
        page.locator(f"#ck-fs-w-{wid} button", has_text="转专项整治").click()
        page.wait_for_selector("#ck-fs-ask:not([hidden])")
        assert "白庄街道" in page.inner_text("#ck-fs-ask-what")
        page.click("#ck-fs-ask-go")  # no unit yet: asked for one, nothing done
        page.wait_for_selector("#ck-fs-msg:has-text('请选择牵头单位')")
        choose_option(page, "#ck-fs-unit", "天宁区城市管理局")
        page.click("#ck-fs-ask-go")
        page.wait_for_selector(f"#ck-fs-msg:has-text('预警 #{wid} 已转为专项整治案件')")
        page.wait_for_selector(f"#ck-fs-w-{wid}.is-tasked")
        with urllib.request.urlopen(urllib.request.Request(
                f"{fs_app.url}/api/v1/warnings/{wid}", headers={"Authorization": f"Bearer {fs_app.tokens['officer']}"})) as r:
            assert json.load(r)["status"] == "tasked"
        assert not watch.errors and not watch.foreign
    finally:
        ctx.close()


def test_a_leader_sees_warnings_without_the_actions(browser, fs_app):
    ctx, page, watch = open_foresight(browser, fs_app, user="leader")
    try:
        assert page.locator("#ck-fs-warnings .ck-fs-w").count() >= 1
        assert page.locator("#ck-fs-warnings button").count() == 0
        assert not watch.errors
    finally:
        ctx.close()


def test_a_what_if_run_goes_from_the_form_to_its_result(browser, fs_app):
    ctx, page, watch = open_foresight(browser, fs_app, user="leader")
    try:
        page.click("#ck-fs-wi-go")  # no unit chosen: the form says so, nothing runs
        page.wait_for_selector("#ck-fs-wi-text:has-text('请选择处置单位')")
        choose_option(page, "#ck-fs-wi-unit", "天宁区城市管理局")
        page.fill("#ck-fs-wi-factor", "0.5")
        page.click("#ck-fs-wi-go")
        # the bar moves (queued, running …) and the result table arrives
        page.wait_for_selector("#ck-fs-wi-table", timeout=120_000)
        assert page.inner_text("#ck-fs-wi-text") == "推演完成"
        head = page.inner_text("#ck-fs-wi-table thead")
        for word in ("预计超期", "按时处置率", "得分", "基准", "变化后", "差值"):
            assert word in head
        first = page.locator("#ck-fs-wi-table tbody tr").nth(1).inner_text()
        assert "天宁区城市管理局" in first  # the unit made slower changes most
        assert "全市合计" in page.locator("#ck-fs-wi-table tbody tr").first.inner_text()
        save_screenshot(page, "cockpit-foresight-1920x1080.png")
        assert not watch.errors and not watch.foreign
    finally:
        ctx.close()


def test_a_new_warning_reaches_the_wall_without_a_reload(browser, fs_app):
    from data.db import Database

    ctx = browser.new_context(viewport={"width": 3840, "height": 2160}, locale="zh-CN")
    page = ctx.new_page()
    watch = PageWatch(page, fs_app.url)
    try:
        page.goto(f"{fs_app.url}/wall?token={fs_app.tokens['wall']}&kiosk=0")
        page.wait_for_selector("#wall-warnings .wall-warn", timeout=60_000)
        before = page.inner_text("#wall-warn-count")
        assert before.startswith("待处理")
        # a warning stored now (as the hourly run would); the wall shows it on its next snapshot, here brought
        # forward by a new case (a case event makes the wall read its figures again)
        db = Database(f"sqlite:///{fs_app.path}")
        stored = store_warning(db, surge("320411001", "010101", 17, 3.2))
        db.dispose()
        assert stored
        body = json.dumps({"category": "020102", "lon": 119.975, "lat": 31.79, "description": "预警测试",
                           "source": "patrol"}).encode()
        req = urllib.request.Request(f"{fs_app.url}/api/v1/events", data=body, method="POST", headers={
            "Authorization": f"Bearer {fs_app.tokens['officer']}", "Content-Type": "application/json"})
        urllib.request.urlopen(req).close()
        page.wait_for_selector(f"#wall-warn-{stored[0]['id']}", timeout=90_000)
        line = page.inner_text(f"#wall-warn-{stored[0]['id']}")
        assert "突增" in line and "新北区" in line and "东滨镇" in line and "17" in line and "预期 3" in line
        assert "320411001" not in line and "010101" not in line
        # the newest first, and counted
        assert page.locator("#wall-warnings .wall-warn").first.get_attribute("id") == f"wall-warn-{stored[0]['id']}"
        assert page.inner_text("#wall-warn-count") != before
        # the map's warning rings are drawn over the grids
        assert page.evaluate("() => window.uccWall.lastOverlay.warnings") >= 1
        time.sleep(1)
        save_screenshot(page, "wall-warning-3840x2160.png")
        assert not watch.errors and not watch.foreign
    finally:
        ctx.close()
