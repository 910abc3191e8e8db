"""The assessment where people see it, in headless Chromium: the cockpit's 考核评价 view (rankings equal to
figures.service.assessment, the drill from a district to its streets, the penalty cases opening in the console),
the wall's district ranking with this month's scores, and the unit workspace's own 部门评价."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.browser.conftest import PageWatch, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser
DISTRICT = "320412"  # 武进区
HANDLER_UNIT = "U-320402-city_management"  # the demo handler's unit: 天宁区城管局
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def assess_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over the demo city with 30 days of simulated cases ending now (the real intake and
    lifecycle, in simulated time), and the app's CaseService over the same file for the expected figures."""
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.schema import init_db
    from demo.runner import SimulationRunner

    d = tmp_path_factory.mktemp("assess")
    path = d / "assess.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    init_db(db)
    service = CaseService(db, AreaDirectory(db))
    SimulationRunner(service, seed=20261207).run(0.03, 30 * 86400, realtime=False, tick_seconds=3600,
                                                 echo=lambda _m: None)
    app = AppProcess(f"sqlite:///{path}", d / "app.log").wait_ready()
    app.cases = service
    yield app
    app.stop()
    db.dispose()


@pytest.fixture
def open_as(browser, assess_app):
    contexts = []

    def _open(user: str, path: str, width=1920, height=1080):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        contexts.append(ctx)
        page = ctx.new_page()
        watch = PageWatch(page, assess_app.url)
        sign_in(page, assess_app.url, user)
        page.goto(assess_app.url + path)
        return page, watch

    yield _open
    for ctx in contexts:
        ctx.close()


def _keep(page, name: str) -> None:
    """The screenshot under tests/artifacts and docs/screenshots."""
    path = save_screenshot(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / name)


def _rows(page, table: str) -> list[dict]:
    return page.evaluate(f"""() => [...document.querySelectorAll('#{table} tbody tr[data-code]')].map(tr => ({{
        code: tr.dataset.code, cells: [...tr.children].map(td => td.innerText.trim())}}))""")


def _wait_rows(page, table: str, prefix: str = "") -> None:
    page.wait_for_function(
        "([t, p]) => { const r = document.querySelectorAll(`#${t} tbody tr[data-code]`);"
        " return r.length > 0 && [...r].every(x => x.dataset.code.startsWith(p)); }",
        arg=[table, prefix], timeout=60_000)


def test_the_cockpit_assessment_view_ranks_drills_and_links(open_as, assess_app):
    from figures import assessment_view as av
    from figures import service as figures

    cases = assess_app.cases
    now = cases.clock()
    month = av.default_month(now)  # the last full month
    first, last = figures.month_bounds(month)
    page, watch = open_as("leader", "/cockpit")
    page.click("#ck-assess-btn")  # the tab: the panels give way to the 考核 view
    _wait_rows(page, "ck-as-areas-table")
    assert page.locator("#ck-assess-btn.ck-tab--on").count() == 1
    assert not page.locator(".ck-grid").is_visible() and page.locator("#ck-assess").is_visible()
    assert f"{first.year}年{first.month}月" in page.inner_text("#ck-as-month")  # the last full month by default
    # the districts' scores, grades and ranks are the assessment's for the same month
    expected = {i["code"]: i for i in figures.assessment(cases, first, last, "district")["items"]}
    before = {i["code"]: i for i in figures.monthly_ranking(cases, month, "district")["items"]}
    rows = _rows(page, "ck-as-areas-table")
    assert {r["code"] for r in rows} == set(expected)
    for r in rows:
        item = expected[r["code"]]
        rank, name, score, grade, change = r["cells"][:5]
        assert name == item["name"] and score == ("—" if item["score"] is None else f"{item['score']:.1f}")
        assert grade == (item["grade"] or "—") and rank == ("—" if item["rank"] is None else str(item["rank"]))
        move = before[r["code"]]["rank_change"]
        assert change == ("—" if not move else (f"↑{move}" if move > 0 else f"↓{-move}"))
    # the units' rows too
    units = {i["code"]: i for i in figures.assessment(cases, first, last, "unit")["items"]}
    _wait_rows(page, "ck-as-units-table")
    for r in _rows(page, "ck-as-units-table"):
        assert r["cells"][2] == ("—" if units[r["code"]]["score"] is None else f"{units[r['code']]['score']:.1f}")
    # the report's downloads, for the month shown
    assert page.get_attribute("#ck-as-dl-xlsx", "href") == f"/api/v1/assessment/report?month={month}&format=xlsx"
    assert page.get_attribute("#ck-as-dl-pdf", "href") == f"/api/v1/assessment/report?month={month}&format=pdf"
    report = page.request.get(assess_app.url + page.get_attribute("#ck-as-dl-xlsx", "href"))  # the session's
    assert report.status == 200 and report.body()[:2] == b"PK", report.status
    page.wait_for_selector("#ck-as-trend-graph .main-svg", timeout=30_000)
    page.wait_for_selector("#ck-as-pen-table a.ck-as-case", timeout=30_000)
    page.wait_for_timeout(500)
    _keep(page, "assessment-cockpit-1920x1080.png")

    # a district's row drills to its streets; the breadcrumb follows
    page.click(f"#ck-as-areas-table tr[data-code='{DISTRICT}']")
    _wait_rows(page, "ck-as-areas-table", DISTRICT)
    page.wait_for_function("() => [...document.querySelectorAll('#ck-crumbs .ck-crumb')].map(b => b.innerText.trim())"
                           ".join('>') === '常州市>武进区'", timeout=30_000)
    streets = {i["code"]: i for i in figures.assessment(cases, first, last, "street")["items"]}
    for r in _rows(page, "ck-as-areas-table"):
        assert streets[r["code"]]["parent"] == DISTRICT
        assert r["cells"][2] == ("—" if streets[r["code"]]["score"] is None else f"{streets[r['code']]['score']:.1f}")
    own = next(i for i in figures.assessment(cases, first, last, "district")["items"] if i["code"] == DISTRICT)
    page.wait_for_function(f"() => (document.getElementById('ck-as-own-score') || {{}}).innerText === '{own['score']:.1f}'",
                           timeout=30_000)

    # the district's penalty cases, each linking to the console
    page.wait_for_function("() => (document.getElementById('ck-as-pen-title') || {}).innerText.includes('武进区')",
                           timeout=30_000)
    pens = figures.penalty_cases(cases, first, last, area=DISTRICT)
    links = page.eval_on_selector_all("#ck-as-pen-table a.ck-as-case", "as => as.map(a => a.getAttribute('href'))")
    assert links and all(re.fullmatch(r"/console\?case=\d+", h) for h in links)
    assert {int(h.split("=")[1]) for h in links} <= {p["case_id"] for p in pens}
    case_id = int(links[0].split("=")[1])
    page.goto(assess_app.url + links[0])
    page.wait_for_function(f"() => (document.getElementById('cs-detail-root') || {{}}).dataset?.case === '{case_id}'",
                           timeout=30_000)
    assert not watch.foreign, watch.foreign
    assert not [e for e in watch.errors if "favicon" not in e], watch.errors


def test_the_wall_ranks_districts_by_this_months_score(open_as, assess_app):
    from figures import service as figures
    from figures.assessment_view import today

    cases = assess_app.cases
    day = today(cases.clock())
    page, watch = open_as("leader", "/wall", 3840, 2160)
    page.wait_for_function("() => document.querySelectorAll('#wall-ranking .wall-rank-points').length === 7",
                           timeout=60_000)
    expected = {i["code"]: i for i in figures.assessment(cases, day.replace(day=1), day, "district")["items"]}
    rows = page.evaluate("""() => [...document.querySelectorAll('#wall-ranking .wall-rank-row[id]')].map(r => ({
        code: r.id.replace('wall-rank-', ''), rank: r.querySelector('.wall-rank-no').innerText.trim(),
        score: r.querySelector('.wall-rank-points').innerText.trim(), grade: r.querySelector('.wall-grade').innerText.trim(),
        right: r.getBoundingClientRect().right, box: document.getElementById('wall-ranking').getBoundingClientRect().right}))""")
    assert [r["code"] for r in rows] == sorted(expected, key=lambda c: (expected[c]["rank"] is None, expected[c]["rank"] or 0))
    for r in rows:
        item = expected[r["code"]]
        assert r["score"] == f"{item['score']:.1f}" and r["grade"] == item["grade"] and r["rank"] == str(item["rank"])
        assert r["right"] <= r["box"] + 1  # the score column fits the card
    assert "综合指标值" in page.inner_text(".wall-rank-card h2")
    page.wait_for_timeout(500)
    _keep(page, "assessment-wall-3840x2160.png")
    assert not watch.foreign, watch.foreign


@pytest.mark.parametrize("width,height", [(1920, 1080), (375, 812)])
def test_the_unit_workspace_shows_its_own_units_figures(open_as, assess_app, width, height):
    from figures import service as figures
    from figures.assessment_view import today

    cases = assess_app.cases
    day = today(cases.clock())
    first = day.replace(day=1)
    items = figures.assessment(cases, first, day, "unit")["items"]
    mine = next(i for i in items if i["code"] == HANDLER_UNIT)
    others = [i for i in items if i["code"] != HANDLER_UNIT and i["score"] is not None and i["name"] != mine["name"]]
    page, watch = open_as("handler", "/unit", width, height)
    page.wait_for_selector("#un-as-score", timeout=60_000)
    assert mine["score"] is not None
    assert page.inner_text("#un-as-score") == f"{mine['score']:.1f}"
    ranked = sum(1 for i in items if i["rank"] is not None)
    assert page.inner_text("#un-as-rank") == f"第 {mine['rank']} / {ranked} 名"
    page.click("#un-assess-summary")
    for key in ("due_handling", "handled", "handled_on_time", "reworked", "extended", "returned"):
        assert page.inner_text(f"#un-as-{key}") == f"{mine[key]:,}", key
    # the penalty points are the unit's own, each case opened in the workspace
    own = {p["case_id"] for p in figures.penalty_cases(cases, first, day, unit=HANDLER_UNIT)}
    links = page.eval_on_selector_all("#un-as-pen-table a", "as => as.map(a => a.getAttribute('href'))")
    assert all(re.fullmatch(r"/unit\?case=\d+", h) for h in links)
    assert {int(h.split("=")[1]) for h in links} <= own
    text = page.inner_text("#un-assess")
    assert not any(o["name"] in text for o in others[:50])
    page.wait_for_timeout(300)
    _keep(page, f"assessment-unit-{width}x{height}.png")
    if links:
        page.goto(assess_app.url + links[0])
        page.wait_for_selector(".un-case-view", timeout=30_000)
    assert not watch.foreign, watch.foreign
