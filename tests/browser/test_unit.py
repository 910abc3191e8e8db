"""The unit workspace (/unit) in headless Chromium: a new dispatch arrives live, the handler signs it and resolves
it with a note and a photo; a return without a reason and an action on a stale version are refused with the right
message."""
from __future__ import annotations

import json
import random
import shutil
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image
from sqlalchemy import update

from tests.browser.conftest import PageWatch, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser
UNIT = "U-320402-city_management"  # the demo handler's unit: 天宁区城管局
MANHOLE = "010151"


@pytest.fixture(scope="module")
def unit_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over a copy of the demo city, photos in a private folder, with a duty officer's
    token (creates and dispatches cases) and one of the handler's unit (acts behind the page's back)."""
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.schema import init_db
    from data.tokens import create_token

    d = tmp_path_factory.mktemp("unit")
    path = d / "unit.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    init_db(db)
    with db.session() as s:
        duty = create_token(s, "duty_officer")
        handler = create_token(s, "unit_handler", "320402", UNIT)
    # one point per grid of 天宁区 (the unit's district), so cases never merge with each other
    grids = [r for r in AreaDirectory(db).records(max_level=5) if r.level == 5 and r.code.startswith("320402")]
    points = [(round(p.x, 6), round(p.y, 6)) for p in (g.geometry.representative_point() for g in grids)]
    db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log", UCC_PHOTO_DIR=str(d / "photos")).wait_ready()
    app.duty, app.handler, app.photos, app.db_url = duty, handler, d / "photos", f"sqlite:///{path}"
    app.points = iter(random.Random(20261125).sample(points, 40))
    yield app
    app.stop()


def api(app, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(app.url + "/api/v1" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token or app.duty}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def dispatched_case(app, description: str = "人行道井盖缺失，行人有绊倒风险") -> dict:
    """A new case in 天宁区 (in a grid of its own: it merges with nothing), accepted and dispatched to the unit."""
    lon, lat = next(app.points)
    status, case = api(app, "POST", "/events", {"category": MANHOLE, "lon": lon, "lat": lat,
                                                 "description": description, "source": "hotline"})
    assert status == 201 and case["state"] == "reported", case
    status, case = api(app, "POST", f"/events/{case['id']}/actions", {"action": "accept", "version": case["version"]})
    assert status == 200, case
    status, case = api(app, "POST", f"/events/{case['id']}/actions",
                       {"action": "dispatch", "version": case["version"], "unit": UNIT})
    assert status == 200 and case["state"] == "dispatched", case
    return case


def backdate(app, case_id: int, reported_days_ago: float, deadline_in_hours: float) -> None:
    """Move a case's clock: reported and dispatched long ago (the handling clock counts from 派遣), deadline
    past (overdue) or near (warning at 80 %)."""
    from data.db import Database
    from data.models import Case

    now = datetime.now(timezone.utc)
    db = Database(app.db_url)
    with db.session() as s:
        s.execute(update(Case).where(Case.id == case_id).values(
            reported_at=now - timedelta(days=reported_days_ago), dispatched_at=now - timedelta(days=reported_days_ago),
            deadline_at=now + timedelta(hours=deadline_in_hours)))
    db.dispose()


def jpeg_file(tmp_path, name="feedback.jpg") -> str:
    img = Image.new("RGB", (640, 480), (70, 130, 90))
    for x in range(0, 640, 40):  # some structure, so the thumbnail is visibly a picture
        for y in range(0, 480, 40):
            if (x + y) // 40 % 2:
                img.paste((200, 200, 120), (x, y, x + 20, y + 20))
    path = tmp_path / name
    img.save(path, format="JPEG", quality=85)
    return str(path)


@pytest.fixture
def handler_page(browser, unit_app):
    contexts = []

    def _open(width=1920, height=1080, path="/unit"):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        contexts.append(ctx)
        page = ctx.new_page()
        watch = PageWatch(page, unit_app.url)
        sign_in(page, unit_app.url, "handler")
        page.goto(unit_app.url + path)
        page.wait_for_selector("#un-list > *", timeout=30_000)
        return page, watch

    yield _open
    for ctx in contexts:
        ctx.close()


def open_case(page, case_id: int) -> None:
    page.locator("#un-list .un-item", has_text=f"#{case_id}").click()
    page.wait_for_selector(f".un-case[data-case='{case_id}']", timeout=15_000)


def state_is(page, label: str) -> None:
    page.wait_for_selector(f"#un-case-state:has-text('{label}')", timeout=15_000)


def test_a_new_dispatch_arrives_live_and_is_signed_and_resolved_with_a_photo(handler_page, unit_app, tmp_path):
    # the unit already has work: one case past its deadline, one in its last fifth, one on time
    overdue, warning, _normal = (dispatched_case(unit_app, d) for d in ("窨井盖板缺失，已围挡", "井盖缺失", "井盖缺失"))
    backdate(unit_app, overdue["id"], 20, -3)
    backdate(unit_app, warning["id"], 20, 24)
    page, watch = handler_page()
    items = page.locator("#un-list .un-item")
    first, second = items.nth(0), items.nth(1)
    assert "un-item--overdue" in first.get_attribute("class") and f"#{overdue['id']}" in first.inner_text()
    assert "超期" in first.inner_text()
    assert "un-item--warning" in second.get_attribute("class") and f"#{warning['id']}" in second.inner_text()
    assert page.inner_text("#un-counts").split() == ["3", "待签收", "0", "处置中", "1", "预警", "1", "超期", "0", "督办"]
    page.wait_for_selector(".un-conn--ok", timeout=15_000)  # the live stream is connected (session cookie)
    case = dispatched_case(unit_app)

    # no reload: the case appears in the list, marked new, with its working-time countdown
    item = page.locator("#un-list .un-item", has_text=f"#{case['id']}")
    item.wait_for(timeout=15_000)
    assert "新" in item.inner_text() and ("剩余" in item.inner_text() or "超期" in item.inner_text())
    assert f"#{case['id']}" in page.inner_text("#un-toast")
    open_case(page, case["id"])
    state_is(page, "已派遣")
    assert page.is_enabled("#un-sign") and page.is_disabled("#un-resolve")

    page.click("#un-sign")
    state_is(page, "已签收")
    assert "已签收" in page.inner_text("#un-msg")
    assert page.is_enabled("#un-resolve") and page.is_disabled("#un-sign")

    page.fill("#un-resolve-note", "已补装井盖并设置警示，现场恢复通行")
    page.set_input_files("#un-photo input[type=file]", jpeg_file(tmp_path))
    page.wait_for_selector("#un-photo-preview[src^='data:image/jpeg']", timeout=10_000)
    assert "已选择" in page.inner_text("#un-photo-msg")
    page.click("#un-resolve")
    state_is(page, "已处置")
    assert "处置照片已上传" in page.inner_text("#un-msg")
    thumb = page.locator(".un-thumb--feedback img")
    thumb.wait_for(timeout=10_000)
    page.wait_for_function("() => { const i = document.querySelector('.un-thumb--feedback img');"
                           " return i && i.complete && i.naturalWidth === 640; }", timeout=10_000)
    assert page.input_value("#un-resolve-note") == ""  # the form is cleared for the next case

    status, now = api(unit_app, "GET", f"/events/{case['id']}")
    assert status == 200 and now["state"] == "resolved"
    resolve = [h for h in now["history"] if h["action"] == "resolve"]
    assert resolve and resolve[0]["note"] == "已补装井盖并设置警示，现场恢复通行" and resolve[0]["actor"] == "user:handler"
    assert len(list(unit_app.photos.rglob("*.jpg"))) == 1
    # the resolved case leaves the to-do list and shows under 已反馈
    page.wait_for_function("id => !document.querySelector('#un-list').innerText.includes('#' + id)", arg=case["id"],
                           timeout=10_000)
    page.locator(".un-filter-label", has_text="已反馈").click()
    page.locator("#un-list .un-item", has_text=f"#{case['id']}").wait_for(timeout=10_000)
    page.locator(".un-filter-label", has_text="待办").click()
    page.wait_for_function("id => !document.querySelector('#un-list').innerText.includes('#' + id)",
                           arg=case["id"], timeout=10_000)
    open_case(page, overdue["id"])
    page.wait_for_selector(".un-case-sla.un-sla--overdue")
    save_screenshot(page, "unit-1920x1080.png")
    assert watch.errors == [] and watch.foreign == []


def test_a_return_without_reason_is_refused_and_changes_nothing(handler_page, unit_app):
    case = dispatched_case(unit_app, "路口井盖缺失")
    page, watch = handler_page(path=f"/unit?case={case['id']}")
    page.wait_for_selector(f".un-case[data-case='{case['id']}']", timeout=15_000)

    page.click("#un-return")
    page.wait_for_selector(".un-msg--bad", timeout=10_000)
    assert "退回理由" in page.inner_text("#un-msg")
    status, same = api(unit_app, "GET", f"/events/{case['id']}")
    assert same["state"] == "dispatched" and same["version"] == case["version"]
    state_is(page, "已派遣")

    # with a reason, the return goes through
    page.fill("#un-reason", "井盖属燃气公司产权，不属本单位职责")
    page.click("#un-return")
    state_is(page, "已退回")
    status, back = api(unit_app, "GET", f"/events/{case['id']}")
    assert back["state"] == "returned" and back["history"][-1]["note"] == "井盖属燃气公司产权，不属本单位职责"
    assert watch.errors == [] and watch.foreign == []


def test_an_action_on_a_stale_version_says_so_and_reloads(handler_page, unit_app):
    """Someone else changed the case after this page read it: 409, 「该案件已被他人更新」, the case read again."""
    case = dispatched_case(unit_app, "桥下井盖缺失")
    page, watch = handler_page(path=f"/unit?case={case['id']}")
    page.wait_for_selector(f".un-case[data-case='{case['id']}']", timeout=15_000)
    # the page holds {id, version}: ask with an older version, as a page opened before a change would
    page.evaluate("v => window.dash_clientside.set_props('un-case', {data: v})",
                  {"id": case["id"], "version": case["version"] - 1})
    page.click("#un-sign")
    page.wait_for_selector(".un-msg--bad", timeout=10_000)
    assert "该案件已被他人更新" in page.inner_text("#un-msg")
    page.wait_for_selector(f".un-case[data-version='{case['version']}']", timeout=10_000)
    status, same = api(unit_app, "GET", f"/events/{case['id']}")
    assert same["state"] == "dispatched" and same["version"] == case["version"]
    page.click("#un-sign")
    state_is(page, "已签收")
    assert watch.errors == [] and watch.foreign == []


def test_unit_page_on_a_4k_screen(handler_page, unit_app):
    case = dispatched_case(unit_app, "4K 屏幕查看：井盖缺失")
    page, watch = handler_page(3840, 2160, path=f"/unit?case={case['id']}")
    page.wait_for_selector(f".un-case[data-case='{case['id']}']", timeout=15_000)
    page.wait_for_selector(".un-conn--ok", timeout=15_000)
    # everything is sized in rem: twice the type of 1920 wide, and no horizontal overflow
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.un-case-title')).fontSize)")
    assert size >= 40
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    save_screenshot(page, "unit-3840x2160.png")
    assert watch.errors == [] and watch.foreign == []


def test_unit_page_on_a_phone(handler_page, unit_app):
    """375×812: one column that scrolls as a page, nothing wider than the screen, the actions before the
    case's details, a picked case scrolled into view."""
    case = dispatched_case(unit_app, "手机查看：井盖缺失")
    page, watch = handler_page(375, 812)
    page.wait_for_selector(".un-conn--ok", timeout=15_000)
    open_case(page, case["id"])
    state_is(page, "已派遣")
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    sign = page.locator("#un-sign").bounding_box()
    head = page.locator(".un-case-head").bounding_box()
    assert sign["y"] < head["y"] and sign["x"] + sign["width"] <= 375
    assert page.evaluate("() => window.scrollY > 0")            # scrolled to the case
    assert page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)") == 16
    save_screenshot(page, "unit-375x812.png")
    assert watch.errors == [] and watch.foreign == []
