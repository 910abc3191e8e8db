"""The duty officer's console (/console) in a real browser: the queue, a case's detail and its actions, a
conflict, hotline intake with its preview, cases arriving live, the keyboard; 1920×1080 and 3840×2160."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from tests.browser.conftest import PageWatch, choose_option, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser

ROWS = "#cs-grid .ag-center-cols-container .ag-row"
FIRST_IDS = """() => Array.from(document.querySelectorAll('#cs-grid .ag-center-cols-container .ag-row'))
  .filter(r => r.getAttribute('row-index') !== null)
  .sort((a, b) => a.getAttribute('row-index') - b.getAttribute('row-index'))
  .map(r => (r.querySelector('[col-id=id]') || {}).textContent).filter(Boolean)"""


@pytest.fixture(scope="module")
def console_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over a copy of the demo database with 3,000 recent cases, a city duty officer's
    API token and points inside a few grids (one in 白庄街道)."""
    from bench.bench_wall import fill_cases
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.tokens import create_token

    d = tmp_path_factory.mktemp("console")
    path = d / "console.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    fill_cases(path, 3_000, now=datetime.now(timezone.utc) - timedelta(minutes=5), days=20, seed=7)
    db = Database(f"sqlite:///{path}")
    with db.session() as s:
        token = create_token(s, "duty_officer", label="console test")
    areas = AreaDirectory(db)
    grids = [r for r in areas.records() if r.level == 5]
    baizhuang = [r for r in grids if r.code.startswith("320402001")]
    others = [r for r in grids if r.code.startswith("320404")]
    points = [(round(r.geometry.representative_point().x, 6), round(r.geometry.representative_point().y, 6))
              for r in baizhuang[:3] + others[:6]]
    db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log").wait_ready()
    app.token, app.points = token, points
    yield app
    app.stop()


def _api(app, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(app.url + "/api/v1" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {app.token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post_case(app, point, category="020102", **extra) -> dict:
    status, case = _api(app, "POST", "/events", {"category": category, "lon": point[0], "lat": point[1],
                                                  "source": "api", "description": "接口上报的测试案件", **extra})
    assert status == 201, case
    return case


def _total(app) -> int:
    return _api(app, "GET", "/events?per_page=1&count=true")[1]["total"]


@pytest.fixture
def console(browser, console_app):
    contexts = []

    def _open(user="duty", width=1920, height=1080):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        contexts.append(ctx)
        page = ctx.new_page()
        watch = PageWatch(page, console_app.url)
        sign_in(page, console_app.url, user, then="/console")
        if "/console" not in page.url:
            page.goto(console_app.url + "/console")
        page.wait_for_selector(ROWS, timeout=30_000)
        # the count comes from its own callback, after the rows (under the full suite's load, later still)
        page.wait_for_function("() => (document.getElementById('cs-count') || {}).textContent?.startsWith('共 ')",
                               timeout=15_000)
        page.wait_for_function("() => window.uccConsole && window.uccConsole.conn && window.uccConsole.conn.connected",
                               timeout=15_000)
        page.evaluate("() => { window.__sameDocument = true; }")  # gone if anything reloads the page
        return page, watch

    yield _open
    for ctx in contexts:
        ctx.close()


def _open_case(page, case_id: int):
    page.fill("#cs-search", str(case_id))
    page.press("#cs-search", "Enter")
    page.wait_for_function(f"() => (document.getElementById('cs-detail-root') || {{}}).dataset?.case === '{case_id}'",
                           timeout=15_000)


def _badge(page) -> str:
    return page.inner_text("#cs-d-state")


def _clean(page, watch):
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    assert watch.errors == [], watch.errors
    assert watch.foreign == [], watch.foreign


def test_queue_live_case_detail_and_actions(console, console_app):
    page, watch = console()
    assert page.inner_text("#cs-count").startswith("共 ")
    assert page.locator(ROWS).count() >= 20
    assert "实时" in page.inner_text("#cs-live")
    page.wait_for_timeout(500)
    save_screenshot(page, "console-queue-1920x1080.png")

    # a case posted through the API appears at the top of the queue, without a reload
    case = _post_case(console_app, console_app.points[3])
    page.wait_for_function(f"() => ({FIRST_IDS})()[0] === '{case['id']}'", timeout=15_000)

    # open it from the queue: where, what, why this unit, the countdown, the history
    page.click(f"{ROWS}[row-id='{case['id']}'] [col-id='category']")
    page.wait_for_selector("#cs-detail-root", timeout=15_000)
    detail = page.inner_text("#cs-detail-root")
    for words in ("暴露垃圾", "立案标准", "结案标准", "派遣依据", case["unit"]["name"], "处置记录", "剩余"):
        assert words in detail, words
    assert case["route_reason"][:12] in detail
    page.wait_for_function("() => document.querySelector('canvas#cs-dmap')", timeout=15_000)
    page.mouse.move(5, 5)  # no cell tooltip in the picture
    page.wait_for_timeout(900)
    save_screenshot(page, "console-detail-1920x1080.png")

    # 立案, then 派遣 (the unit form, the routed unit preselected): the new state each time
    page.click('[data-action="accept"]')
    page.wait_for_function("() => document.getElementById('cs-d-state').textContent === '已立案'", timeout=15_000)
    assert "「立案」完成" in page.inner_text("#cs-d-msg")
    page.click('[data-action="dispatch"]')
    page.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    assert case["unit"]["name"] in page.inner_text("#cs-act-unit-row")
    page.click("#cs-act-go")
    page.wait_for_function("() => document.getElementById('cs-d-state').textContent === '已派遣'", timeout=15_000)
    assert _api(console_app, "GET", f"/events/{case['id']}")[1]["state"] == "dispatched"
    # the queue shows the new state too (the stream's update, or our own refresh)
    page.wait_for_function(
        f"() => (document.querySelector(\"{ROWS}[row-id='{case['id']}'] [col-id='state']\") || {{}}).textContent === '已派遣'",
        timeout=15_000)
    _clean(page, watch)


def test_a_stale_version_is_told_and_shown_the_new_state(console, console_app):
    page, watch = console()
    case = _post_case(console_app, console_app.points[4], category="020104")
    _open_case(page, case["id"])
    assert _badge(page) == "已上报"
    # another officer accepts it meanwhile (version 1 → 2)
    status, _ = _api(console_app, "POST", f"/events/{case['id']}/actions", {"action": "accept", "version": 1})
    assert status == 200
    page.wait_for_selector("#cs-stale:not([hidden])", timeout=15_000)  # the stream says so at once
    assert "已被他人更新" in page.inner_text("#cs-stale")
    # acting on what the page still shows: 409, in words, and the case as it is now
    page.click('[data-action="accept"]')
    page.wait_for_function("() => document.getElementById('cs-d-state').textContent === '已立案'", timeout=15_000)
    assert "该案件已被他人更新" in page.inner_text("#cs-d-msg")
    assert page.get_attribute("#cs-detail-root", "data-version") == "2"
    assert _api(console_app, "GET", f"/events/{case['id']}")[1]["version"] == 2  # nothing written twice
    _clean(page, watch)


def test_refusals_show_the_services_message(console, console_app):
    page, watch = console()
    case = _post_case(console_app, console_app.points[5], category="020151")
    _open_case(page, case["id"])
    page.click('[data-action="reject"]')  # needs a reason
    page.wait_for_selector("#cs-act-form.is-open")
    assert "不予立案理由" in page.inner_text("#cs-act-form")
    page.click("#cs-act-go")
    page.wait_for_function("() => document.getElementById('cs-act-msg').textContent.includes('须填写不予立案理由')",
                           timeout=10_000)
    assert _badge(page) == "已上报"
    page.keyboard.press("Escape")  # cancels the form
    page.wait_for_selector("#cs-act-form:not(.is-open)", state="attached")
    _clean(page, watch)


def _choose_category(page, text: str):
    """The searchable catalog dropdown: type part of the name, pick the match."""
    choose_option(page, "#cs-in-category", text)


def test_hotline_intake_bad_input_then_a_good_case(console, console_app):
    page, watch = console()
    before = _total(console_app)
    page.keyboard.press("n")  # the shortcut opens the hotline form
    page.wait_for_selector("#cs-in-category", timeout=10_000)

    # nothing chosen, a word for a longitude: told in Chinese, nothing written
    page.fill("#cs-in-lon", "东经一百二十")
    page.click("#cs-in-submit")
    page.wait_for_function("() => document.getElementById('cs-in-msg').textContent.length > 0", timeout=10_000)
    msg = page.inner_text("#cs-in-msg")
    assert "事件类别必填" in msg and "经度须为数字" in msg, msg
    # a point outside the city: the preview says so before anything is submitted
    _choose_category(page, "暴露垃圾")
    page.fill("#cs-in-lon", "121.47")
    page.fill("#cs-in-lat", "31.23")
    page.press("#cs-in-lat", "Tab")
    page.wait_for_function("() => document.getElementById('cs-in-preview').textContent.includes('不在本市范围内')",
                           timeout=10_000)
    page.click("#cs-in-submit")
    page.wait_for_function("() => document.getElementById('cs-in-msg').textContent.includes('不在本市范围内')",
                           timeout=10_000)
    # a bad phone number
    lon, lat = console_app.points[6]
    page.fill("#cs-in-lon", str(lon))
    page.fill("#cs-in-lat", str(lat))
    page.fill("#cs-in-phone", "12345")
    page.press("#cs-in-phone", "Tab")
    page.wait_for_function("() => document.getElementById('cs-in-preview').textContent.includes('联系电话格式不正确')",
                           timeout=10_000)
    assert _total(console_app) == before

    # a good one: the preview names the unit and the deadline before submitting
    page.fill("#cs-in-phone", "13912345678")
    page.fill("#cs-in-description", "来电反映小区门口垃圾堆积两天无人清运")
    page.press("#cs-in-phone", "Tab")
    page.wait_for_function("() => document.getElementById('cs-in-preview').textContent.includes('派往单位')",
                           timeout=10_000)
    preview = page.inner_text("#cs-in-preview")
    assert "处置时限" in preview and "4 工作时" in preview and "派遣理由" in preview
    unit = preview.split("派往单位")[1].strip().splitlines()[0].strip()
    assert unit
    page.wait_for_timeout(300)
    save_screenshot(page, "console-intake-1920x1080.png")
    page.click("#cs-in-submit")
    page.wait_for_selector("#cs-detail-root", timeout=15_000)
    assert "已受理" in page.inner_text("#cs-d-msg")
    new_id = page.get_attribute("#cs-detail-root", "data-case")
    created = _api(console_app, "GET", f"/events/{new_id}")[1]
    assert created["source"] == "hotline" and created["unit"]["name"] == unit
    assert created["reporter_phone"] == "13912345678"  # a duty officer may call back
    assert _total(console_app) == before + 1
    page.wait_for_function(f"() => ({FIRST_IDS})().includes('{new_id}')", timeout=15_000)
    _clean(page, watch)


def test_intake_point_picked_on_the_map(console, console_app):
    page, watch = console()
    page.click("#cs-new")
    page.wait_for_selector("#cs-in-map", timeout=10_000)
    page.wait_for_function("() => document.querySelector('canvas#cs-in-map')", timeout=15_000)
    page.wait_for_timeout(800)
    _choose_category(page, "井盖缺失")
    box = page.locator("#cs-in-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.35)
    page.wait_for_function("() => document.getElementById('cs-in-lon').value !== ''", timeout=10_000)
    lon, lat = float(page.input_value("#cs-in-lon")), float(page.input_value("#cs-in-lat"))
    assert 119.0 < lon < 120.5 and 31.0 < lat < 32.1
    page.wait_for_function("() => /派往单位|不在本市范围内/.test(document.getElementById('cs-in-preview').textContent)",
                           timeout=10_000)
    _clean(page, watch)


def test_keyboard_and_help(console, console_app):
    page, watch = console()
    page.keyboard.press("?")
    page.wait_for_selector("#cs-help:not([hidden])")
    help_text = page.inner_text("#cs-help")
    for words in ("快捷键", "下一条", "打开案件", "立案", "派遣", "结案", "新建热线工单"):
        assert words in help_text
    page.keyboard.press("Escape")
    page.wait_for_selector("#cs-help", state="hidden")
    # j, j, k: the second row; Enter opens it
    ids = page.evaluate(FIRST_IDS)
    page.locator("body").click(position={"x": 5, "y": 5})
    for key in ("j", "j", "k", "j"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => (document.getElementById('cs-detail-root') || {{}}).dataset?.case === '{ids[1]}'",
                           timeout=10_000)
    page.keyboard.press("Escape")
    page.wait_for_selector("#cs-side", state="hidden")
    # / focuses the search; a number opens that case
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "cs-search"
    page.keyboard.type(ids[3])
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => (document.getElementById('cs-detail-root') || {{}}).dataset?.case === '{ids[3]}'",
                           timeout=10_000)
    # a = 立案 on a reported case
    case = _post_case(console_app, console_app.points[7], category="020103")
    _open_case(page, case["id"])
    page.locator("#cs-d-state").click()  # focus out of the search box
    page.keyboard.press("a")
    page.wait_for_function("() => document.getElementById('cs-d-state').textContent === '已立案'", timeout=15_000)
    _clean(page, watch)


def test_filters_and_the_street_officers_scope(console, console_app):
    # the street officer of 白庄街道 sees only cases of 白庄街道, the live ones included
    page, watch = console(user="baizhuang")
    mine = _post_case(console_app, console_app.points[0], category="030103")
    other = _post_case(console_app, console_app.points[8], category="030103")
    page.wait_for_function(f"() => ({FIRST_IDS})()[0] === '{mine['id']}'", timeout=15_000)
    page.wait_for_timeout(1500)
    assert str(other["id"]) not in page.evaluate(FIRST_IDS)
    areas = page.eval_on_selector_all(f"{ROWS} [col-id='area']", "els => els.map(e => e.textContent)")
    assert areas and all("白庄街道" in a for a in areas), areas
    # a filter: 已上报 only
    page.click("#cs-f-state")
    page.click("[role=option]:has-text('已上报')")
    page.keyboard.press("Escape")
    assert page.inner_text("#cs-f-state") == "已上报"
    page.wait_for_function(f"""() => {{
      const s = Array.from(document.querySelectorAll("{ROWS} [col-id='state']")).map(e => e.textContent);
      return s.length > 0 && s.every(t => t === '已上报');
    }}""", timeout=15_000)
    assert page.inner_text("#cs-count").startswith("共 ")
    _clean(page, watch)


def test_a_leader_supervises_and_does_not_take_calls(console, console_app):
    case = _post_case(console_app, console_app.points[1], category="020104", reporter_phone="13912345678")
    case = _api(console_app, "POST", f"/events/{case['id']}/actions", {"action": "accept", "version": 1})[1]
    case = _api(console_app, "POST", f"/events/{case['id']}/actions",
                {"action": "dispatch", "version": case["version"]})[1]
    assert case["state"] == "dispatched", case
    page, watch = console(user="leader")
    # a leader lands on the 督办件 list, not on a call form
    page.wait_for_selector("#cs-side.is-sup #cs-sup-list", timeout=15_000)
    assert not page.is_visible("#cs-new")
    page.keyboard.press("n")  # the shortcut does not open the form either
    page.wait_for_timeout(500)
    assert not page.is_visible("#cs-in-category")
    _open_case(page, case["id"])
    labels = page.eval_on_selector_all(".cs-act", "els => els.map(e => e.getAttribute('data-action'))")
    assert labels == ["urge", "supervise", "escalate"], labels
    detail = page.inner_text("#cs-detail-root")
    assert "139****5678" in detail and "13912345678" not in detail  # masked for a leader, as the service says
    page.click('[data-action="supervise"]')   # a form: its own deadline (optional) and what is asked
    page.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    assert "督办时限" in page.inner_text("#cs-act-hours-row") and "选填" in page.inner_text("#cs-act-hours-row")
    page.fill("#cs-act-note", "请于今日内处置到位")
    page.click("#cs-act-go")
    page.wait_for_function("() => document.getElementById('cs-d-msg').textContent.includes('「督办」完成')",
                           timeout=15_000)
    assert "市级督办" in page.inner_text("#cs-marks")
    after = _api(console_app, "GET", f"/events/{case['id']}")[1]
    assert after["supervised"] is True and after["supervision_level"] == 1
    assert after["supervision"][-1]["note"] == "请于今日内处置到位"
    _clean(page, watch)


LAYOUT = """() => {
  const out = [], vw = innerWidth, vh = innerHeight;
  const d = document.documentElement;
  if (d.scrollHeight > vh + 1 || d.scrollWidth > vw + 1) out.push('page scrolls ' + d.scrollWidth + 'x' + d.scrollHeight);
  for (const sel of ['.cs-toolbar', '.cs-queue', '#cs-side', '.cs-d-head', '.cs-actions', '.cs-countdown']) {
    const el = document.querySelector(sel); if (!el) { out.push('missing ' + sel); continue; }
    const r = el.getBoundingClientRect();
    if (r.right > vw + 1 || r.left < -1 || r.top < -1) out.push('off screen ' + sel);
  }
  const q = document.querySelector('.cs-queue').getBoundingClientRect(), s = document.querySelector('#cs-side').getBoundingClientRect();
  if (q.right > s.left + 1) out.push('queue under the panel');
  const rem = parseFloat(getComputedStyle(d).fontSize);
  const cell = document.querySelector('#cs-grid .ag-cell');
  const cellSize = cell ? parseFloat(getComputedStyle(cell).fontSize) : 0;
  if (cellSize < 0.8 * rem) out.push('grid text ' + cellSize + 'px at rem ' + rem);
  const row = document.querySelector('#cs-grid .ag-row');
  if (row && row.getBoundingClientRect().height < 1.6 * rem) out.push('rows too low for the text');
  return out;
}"""


@pytest.mark.parametrize("width,height", [(1920, 1080), (3840, 2160)])
def test_layout_fits_at_1080p_and_4k(console, console_app, width, height):
    page, watch = console(width=width, height=height)
    ids = page.evaluate(FIRST_IDS)
    _open_case(page, int(ids[0]))
    page.wait_for_function("() => document.querySelector('canvas#cs-dmap')", timeout=15_000)
    page.wait_for_timeout(800)
    assert page.evaluate(LAYOUT) == []
    if width > 1920:
        save_screenshot(page, f"console-detail-{width}x{height}.png")
    _clean(page, watch)
