"""One case's whole life in real browsers, across three people, with the wall following each step live.

Four browser contexts at 1920×1080 on one app process: the wall (/wall?token= with a wall token), the city
duty officer `duty` on /console (12345 hotline intake with its preview, 立案, 派遣), the handler `handler` of
天宁区城市管理局 on /unit (the task arrives live, 签收, 处置反馈 with a note and a photo) and the duty officer
of 白庄街道 `baizhuang` on /console (the case in their street's queue, 核查通过, 结案). After every step the
wall holds the case in its new state (window.uccWall.live.cases and the ticker row) within 2 seconds,
without a reload; at the end the API tells the whole history, step by step, with the right people."""
from __future__ import annotations

import json
import re
import shutil
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import PageWatch, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser

UNIT = "U-320402-city_management"   # the demo handler's unit
UNIT_NAME = "天宁区城市管理局"
STREET = "320402001"                # 白庄街道, the street of the demo officer `baizhuang`
STREET_NAME = "白庄街道"
CATEGORY = "020102"                 # 暴露垃圾: routed to the district's city management bureau
CATEGORY_NAME = "暴露垃圾"
WALL_LIVE_S = 2.0                   # each step reaches the wall within this many seconds
QUEUE_ROWS = "#cs-grid .ag-center-cols-container .ag-row"
MARK = "() => { window.__caseLife = 'same document'; }"     # gone if anything reloads the page
MARKED = "() => window.__caseLife === 'same document'"
WALL_READY = "() => window.uccWall && window.uccWall.isReady && window.uccWall.isReady()"


@pytest.fixture(scope="module")
def life_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over a private copy of the demo city with some recent cases around, a wall token
    (created before the app starts) and an admin token; and the place and category of the case to come:
    a point inside a grid of 白庄街道 where a 暴露垃圾 report is routed to the handler's unit and merges
    with nothing (checked through the service's own preview before any browser opens)."""
    from bench.bench_wall import fill_cases
    from data.area_directory import AreaDirectory
    from cases.service import CaseService, ServiceError
    from data.db import Database
    from data.tokens import Principal, create_token

    d = tmp_path_factory.mktemp("case_life")
    path = d / "life.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    # the queues, the unit's list and the wall are not empty (all reported at least 10 minutes ago)
    fill_cases(path, 1_500, now=datetime.now(timezone.utc) - timedelta(minutes=10), days=10, seed=11)
    db = Database(f"sqlite:///{path}")
    with db.session() as s:
        tokens = {"wall": create_token(s, "wall", label="指挥大厅大屏（测试）"),
                  "admin": create_token(s, "admin", label="case life test")}
    areas = AreaDirectory(db)
    service = CaseService(db, areas)
    duty = Principal("user", "user:duty", "duty_officer", "320400")
    grids = [r for r in areas.records() if r.level == 5 and r.code.startswith(STREET)]
    assert grids, f"no grid of {STREET_NAME} ({STREET}) in the demo city"
    chosen, tried = None, []
    for grid in grids[:40]:
        p = grid.geometry.representative_point()
        body = {"category": CATEGORY, "lon": round(p.x, 6), "lat": round(p.y, 6), "source": "hotline",
                "description": "preflight"}
        try:
            preview = service.preview(body, duty)
        except ServiceError as exc:
            tried.append(f"{grid.code}: {exc.message}")
            continue
        unit = (preview["unit"] or {}).get("code")
        street = [a["code"] for a in preview["chain"] if a["level"] == 3]
        if unit == UNIT and street == [STREET] and preview["merge_into"] is None:
            chosen = {"lon": body["lon"], "lat": body["lat"], "grid": grid.code,
                      "time_limit": preview["category"]["time_limit"]}
            break
        tried.append(f"{grid.code}: unit {unit}, street {street}, merge_into {preview['merge_into']}")
    db.dispose()
    if chosen is None:
        pytest.fail(f"the routing sends no {CATEGORY_NAME} ({CATEGORY}) report in {STREET_NAME} to {UNIT} "
                    f"({UNIT_NAME}) without merging; tried:\n" + "\n".join(tried))
    app = AppProcess(f"sqlite:///{path}", d / "app.log", UCC_PHOTO_DIR=str(d / "photos")).wait_ready()
    app.tokens, app.point, app.photos = tokens, chosen, d / "photos"
    yield app
    app.stop()


def api(app, method: str, path: str, token: str) -> tuple[int, dict]:
    req = urllib.request.Request(app.url + "/api/v1" + path, method=method,
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def jpeg(tmp_path) -> str:
    img = Image.new("RGB", (640, 480), (90, 120, 80))
    for x in range(0, 640, 32):
        for y in range(0, 480, 32):
            if (x + y) // 32 % 2:
                img.paste((210, 190, 120), (x, y, x + 16, y + 16))
    path = tmp_path / "cleared.jpg"
    img.save(path, format="JPEG", quality=85)
    return str(path)


@pytest.fixture
def contexts(browser):
    opened = []

    def _new():
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        opened.append(ctx)
        return ctx.new_page()

    yield _new
    for ctx in opened:
        ctx.close()


def open_console(new_page, app, user: str):
    page = new_page()
    watch = PageWatch(page, app.url)
    sign_in(page, app.url, user, then="/console")
    if "/console" not in page.url:
        page.goto(app.url + "/console")
    page.wait_for_function("() => (document.getElementById('cs-count') || {}).textContent?.startsWith('共 ')",
                           timeout=30_000)
    page.wait_for_function("() => window.uccConsole && window.uccConsole.conn && window.uccConsole.conn.connected",
                           timeout=15_000)
    page.evaluate(MARK)
    return page, watch


class Wall:
    """The wall page and what it shows of one case: its entry in window.uccWall.live.cases (the cases the
    live stream brought, by id, as GET /events/ID shapes them) and its row in the ticker (#wall-ticker)."""

    def __init__(self, page):
        self.page = page
        self.latencies: dict[str, float] = {}

    def sees(self, case_id: int, state: str, label: str, since: float, step: str) -> None:
        """Within WALL_LIVE_S of now (the acting page has shown the step done), the wall's copy of the case
        is in `state` and its ticker row says `label`. `since`: when the step was clicked (for the report)."""
        try:
            self.page.wait_for_function(
                """([id, state, label]) => {
                  const c = window.uccWall.live.cases.get(id);
                  const row = document.querySelector('#wall-tick-' + id + ' .wall-tick-state');
                  return !!c && c.state === state && !!row && row.textContent === label;
                }""", arg=[case_id, state, label], polling=50, timeout=WALL_LIVE_S * 1000)
        except PlaywrightTimeout as exc:  # say what the wall has instead
            got = self.page.evaluate("""id => {
              const c = window.uccWall.live.cases.get(id), row = document.querySelector('#wall-tick-' + id);
              return {live: c ? c.state : null, ticker: row ? row.textContent : null,
                      connected: window.uccWall.connected};
            }""", case_id)
            raise AssertionError(f"{step}: the wall did not show case {case_id} as {state}/{label} within "
                                 f"{WALL_LIVE_S} s; it shows {got}") from exc
        received = self.page.evaluate("id => window.uccWall.live.cases.get(id)._at", case_id) / 1000
        self.latencies[step] = round(received - since, 3)


def confirm_console_state(page, label: str) -> None:
    page.wait_for_function("label => document.getElementById('cs-d-state')?.textContent === label",
                           arg=label, timeout=15_000)


def test_one_case_lives_its_whole_life_across_three_users_with_the_wall_live(contexts, life_app, tmp_path):
    app, point = life_app, life_app.point

    # ---- four screens, all open before the case exists ---------------------------------------------------------
    wall_page = contexts()
    wall_watch = PageWatch(wall_page, app.url)
    wall_page.goto(f"{app.url}/wall?token={app.tokens['wall']}")
    wall_page.wait_for_function(WALL_READY, polling=100, timeout=60_000)
    wall_page.wait_for_function("() => window.uccWall.connected && window.uccWall.lastResync", timeout=15_000)
    wall_page.evaluate(MARK)
    wall = Wall(wall_page)

    duty, duty_watch = open_console(contexts, app, "duty")
    street, street_watch = open_console(contexts, app, "baizhuang")

    unit = contexts()
    unit_watch = PageWatch(unit, app.url)
    sign_in(unit, app.url, "handler", then="/unit")
    if "/unit" not in unit.url:
        unit.goto(app.url + "/unit")
    unit.wait_for_selector("#un-list > *", timeout=30_000)
    unit.wait_for_selector(".un-conn--ok", timeout=15_000)
    unit.evaluate(MARK)

    # ---- 1. 12345 hotline intake by the city duty officer: the preview names the unit and the deadline -----------
    duty.click("#cs-new")
    duty.wait_for_selector("#cs-in-category", timeout=10_000)
    duty.click("#cs-in-category")
    duty.keyboard.type(CATEGORY_NAME)
    duty.click(f"[role=option]:has-text('{CATEGORY_NAME}')")
    duty.wait_for_function(f"() => document.getElementById('cs-in-category').textContent.includes('{CATEGORY_NAME}')")
    duty.fill("#cs-in-lon", str(point["lon"]))
    duty.fill("#cs-in-lat", str(point["lat"]))
    duty.fill("#cs-in-phone", "13912345678")
    duty.fill("#cs-in-description", "市民来电：白庄街道路边垃圾堆积两天无人清运")
    duty.press("#cs-in-phone", "Tab")
    duty.wait_for_function("() => document.getElementById('cs-in-preview').textContent.includes('派往单位')",
                           timeout=10_000)
    facts = duty.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('#cs-in-preview dt'))
        .map(dt => [dt.textContent, dt.nextElementSibling ? dt.nextElementSibling.textContent : '']))""")
    assert facts.get("派往单位") == UNIT_NAME, facts
    assert STREET_NAME in facts.get("所在区域", ""), facts
    # the deadline the routing gives (working time from now), as "YYYY-MM-DD HH:MM（4 工作时）"
    limit = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d)（(.+)）", facts.get("处置时限", ""))
    assert limit and limit.group(2) == point["time_limit"], facts
    deadline_shown = datetime.strptime(limit.group(1), "%Y-%m-%d %H:%M")
    assert facts.get("派遣理由"), facts
    before_submit = time.time()
    duty.click("#cs-in-submit")
    duty.wait_for_function("() => (document.getElementById('cs-d-msg') || {}).textContent?.includes('已受理')",
                           timeout=15_000)
    case_id = int(duty.get_attribute("#cs-detail-root", "data-case"))
    confirm_console_state(duty, "已上报")
    assert UNIT_NAME in duty.inner_text("#cs-detail-root")
    wall.sees(case_id, "reported", "已上报", before_submit, "report")
    tick = wall_page.inner_text(f"#wall-tick-{case_id}")
    assert CATEGORY_NAME in tick and STREET_NAME in tick, tick
    wall_page.wait_for_function("id => (window.uccWall.lastOverlay.fresh || []).includes(id)", arg=case_id,
                                timeout=WALL_LIVE_S * 1000)   # a fresh point on the map too

    # ---- 2. 立案 -------------------------------------------------------------------------------------------------
    t = time.time()
    duty.click('[data-action="accept"]')
    confirm_console_state(duty, "已立案")
    wall.sees(case_id, "accepted", "已立案", t, "accept")

    # ---- 3. 派遣 to the routed unit (preselected in the form) --------------------------------------------------------
    duty.click('[data-action="dispatch"]')
    duty.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    assert UNIT_NAME in duty.inner_text("#cs-act-unit-row")
    t = time.time()
    duty.click("#cs-act-go")
    confirm_console_state(duty, "已派遣")
    wall.sees(case_id, "dispatched", "已派遣", t, "dispatch")
    save_screenshot(duty, "case-life-console-duty.png")

    # ---- 4. the handler: the task arrives without a reload, 签收 -----------------------------------------------------
    item = unit.locator("#un-list .un-item", has_text=f"#{case_id}")
    item.wait_for(timeout=15_000)
    assert "新" in item.inner_text()
    item.click()
    unit.wait_for_selector(f".un-case[data-case='{case_id}']", timeout=15_000)
    unit.wait_for_selector("#un-case-state:has-text('已派遣')", timeout=15_000)
    assert unit.is_enabled("#un-sign")
    t = time.time()
    unit.click("#un-sign")
    unit.wait_for_selector("#un-case-state:has-text('已签收')", timeout=15_000)
    wall.sees(case_id, "signed", "已签收", t, "sign")

    # ---- 5. 处置反馈 with a note and a photo ------------------------------------------------------------------------
    note = "已清运堆积垃圾并冲洗路面，现场恢复整洁"
    unit.fill("#un-resolve-note", note)
    unit.set_input_files("#un-photo input[type=file]", jpeg(tmp_path))
    unit.wait_for_selector("#un-photo-preview[src^='data:image/jpeg']", timeout=10_000)
    t = time.time()
    unit.click("#un-resolve")
    unit.wait_for_selector("#un-case-state:has-text('已处置')", timeout=15_000)
    wall.sees(case_id, "resolved", "已处置", t, "resolve")
    unit.wait_for_function("() => { const i = document.querySelector('.un-thumb--feedback img');"
                           " return i && i.complete && i.naturalWidth === 640; }", timeout=10_000)
    save_screenshot(unit, "case-life-unit.png")

    # ---- 6. the street's duty officer: the case is in their queue (which holds only their street), 核查通过 ---------
    street.wait_for_function(
        """([rows, id]) => {
          const cell = document.querySelector(rows + "[row-id='" + id + "'] [col-id='state']");
          return cell && cell.textContent === '已处置';
        }""", arg=[QUEUE_ROWS, str(case_id)], timeout=15_000)
    areas = street.eval_on_selector_all(f"{QUEUE_ROWS} [col-id='area']", "els => els.map(e => e.textContent)")
    assert areas and all(STREET_NAME in a for a in areas), areas
    street.click(f"{QUEUE_ROWS}[row-id='{case_id}'] [col-id='category']")
    street.wait_for_function(f"() => (document.getElementById('cs-detail-root') || {{}}).dataset?.case === '{case_id}'",
                             timeout=15_000)
    confirm_console_state(street, "已处置")
    detail = street.inner_text("#cs-detail-root")
    assert note in detail, "the handler's feedback is shown to the checker"
    actions = street.eval_on_selector_all(".cs-act", "els => els.map(e => e.getAttribute('data-action'))")
    assert "verify" in actions and "rework" in actions, actions
    t = time.time()
    street.click('[data-action="verify"]')
    confirm_console_state(street, "核查通过")
    wall.sees(case_id, "verified", "核查通过", t, "verify")

    # ---- 7. 结案 -------------------------------------------------------------------------------------------------
    street.wait_for_selector('[data-action="close"]', timeout=10_000)
    closed_before = int(wall_page.inner_text("#wall-fig-closed").replace(",", ""))
    t = time.time()
    street.click('[data-action="close"]')
    confirm_console_state(street, "已结案")
    assert "「结案」完成" in street.inner_text("#cs-d-msg")
    wall.sees(case_id, "closed", "已结案", t, "close")
    # the server-counted figure follows the stream too (the wall re-reads its snapshot after a burst)
    wall_page.wait_for_function("n => parseInt(document.getElementById('wall-fig-closed').textContent"
                                ".replace(/,/g, ''), 10) === n", arg=closed_before + 1, timeout=8_000)
    # both queues follow (the stream's refresh); the city officer, still reading the case, is told it moved on
    for page in (street, duty):
        page.wait_for_function(
            """([rows, id]) => {
              const cell = document.querySelector(rows + "[row-id='" + id + "'] [col-id='state']");
              return cell && cell.textContent === '已结案';
            }""", arg=[QUEUE_ROWS, str(case_id)], timeout=15_000)
    duty.wait_for_selector("#cs-stale:not([hidden])", timeout=15_000)
    assert "已被他人更新为「已结案」" in duty.inner_text("#cs-stale")
    street.mouse.move(5, 5)
    save_screenshot(street, "case-life-console.png")
    wall_page.wait_for_timeout(300)   # the clock and the map's next frame
    save_screenshot(wall_page, "case-life-wall.png")

    # ---- the record: closed, every step in order, each by the right person -----------------------------------------
    status, case = api(app, "GET", f"/events/{case_id}", app.tokens["admin"])
    assert status == 200, case
    assert case["state"] == "closed" and case["source"] == "hotline", case
    assert case["unit"]["code"] == UNIT and case["category"]["code"] == CATEGORY
    assert [a["code"] for a in case["chain"] if a["level"] == 3] == [STREET]
    # the deadline the preview showed (the case was made moments later: the same minute, or the next)
    deadline = datetime.strptime(case["deadline"][:16], "%Y-%m-%dT%H:%M")
    assert timedelta(0) <= deadline - deadline_shown <= timedelta(minutes=2), (case["deadline"], deadline_shown)
    steps = [(h["action"], h["actor"], h["from"], h["to"]) for h in case["history"]]
    assert steps == [
        ("report", "user:duty", None, "reported"),
        ("accept", "user:duty", "reported", "accepted"),
        ("dispatch", "user:duty", "accepted", "dispatched"),
        ("sign", "user:handler", "dispatched", "signed"),
        ("resolve", "user:handler", "signed", "resolved"),
        ("verify", "user:baizhuang", "resolved", "verified"),
        ("close", "user:baizhuang", "verified", "closed"),
    ], steps
    assert case["history"][4]["note"] == note
    assert len(list(app.photos.rglob("*.jpg"))) == 1

    # ---- four screens, none reloaded, no console error, nothing fetched from another host ----------------------------
    for name, page, watch in (("wall", wall_page, wall_watch), ("duty console", duty, duty_watch),
                              ("unit", unit, unit_watch), ("street console", street, street_watch)):
        assert page.evaluate(MARKED), f"the {name} page reloaded"
        assert watch.errors == [], f"{name}: console errors {watch.errors[:5]}"
        assert watch.foreign == [], f"{name}: requests to other hosts {watch.foreign[:5]}"
    print("wall received each step (seconds after the click):", wall.latencies)
