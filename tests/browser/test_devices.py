"""/devices (物联感知) in headless Chromium: a duty officer filters the fleet, searches a cover, opens it and sees its
chart drawn (24 h, then 7 days by the hour), acknowledges its open alarm; the iot case on /console shows the device
and its chart. No request leaves the server, no console error."""
from __future__ import annotations

import shutil

import pytest

from tests.browser.conftest import PageWatch, choose_option, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser
DRAWN = "{} .main-svg .scatterlayer .trace path.js-line"


@pytest.fixture(scope="module")
def devices_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over a copy of the demo city in which one cover's story was told (device_story)."""
    from app import create_app
    from tests.conftest import make_settings
    from tests.sensing.device_story import pick_cover, tell

    d = tmp_path_factory.mktemp("devices")
    path = d / "devices.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    built = create_app(make_settings(f"sqlite:///{path}"))
    svc = built.extensions["ucc"]
    story = tell(svc, pick_cover(svc))
    svc.db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log").wait_ready()
    app.story = story
    yield app
    app.stop()


@pytest.fixture
def duty_page(browser, devices_app):
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    watch = PageWatch(page, devices_app.url)
    sign_in(page, devices_app.url, "duty")
    yield page, watch
    ctx.close()


def _line_drawn(page, where: str) -> None:
    page.wait_for_function("""(sel) => { const p = document.querySelector(sel);
        return p && (p.getAttribute('d') || '').length > 20; }""", arg=DRAWN.format(where), timeout=30_000)


def test_filter_search_open_a_device_and_see_its_chart(duty_page, devices_app):
    page, watch = duty_page
    device = devices_app.story["device"]
    page.goto(devices_app.url + "/devices")
    page.wait_for_selector(".dv-row", timeout=30_000)
    page.wait_for_function("document.querySelector('#dv-c-total').textContent === '6,093'", timeout=30_000)
    choose_option(page, "#dv-type", "燃气", "燃气监测")
    page.wait_for_function("document.querySelector('#dv-pageinfo').textContent.includes('共 600 台')", timeout=30_000)
    assert all(i.startswith("RQ-") for i in page.eval_on_selector_all(".dv-row", "rs => rs.map(r => r.dataset.device)"))
    choose_option(page, "#dv-type", "井盖", "智慧井盖")
    page.fill("#dv-q", device)
    page.press("#dv-q", "Enter")
    page.wait_for_function("document.querySelector('#dv-pageinfo').textContent.includes('共 1 台')", timeout=30_000)
    page.click(f".dv-row[data-device='{device}']")
    page.wait_for_selector(f".dv-dcard[data-device='{device}']", timeout=30_000)
    _line_drawn(page, "#dv-graph")
    card = page.inner_text(".dv-dcard")
    assert "智慧井盖" in card and "天宁区城市管理局" in card and "15 %" in card
    assert "井盖终端电量低" in page.inner_text("#dv-device-alarms")
    # another key and the week, by the hour
    page.click("#dv-key")
    page.locator(".dash-dropdown-content [role=option]", has_text="倾角").first.click()
    page.wait_for_selector("#dv-key:has-text('倾角')")
    page.click("#dv-range label:has-text('近 7 天')")
    page.wait_for_function("document.querySelector('#dv-chart-note').textContent.includes('小时均值')", timeout=30_000)
    _line_drawn(page, "#dv-graph")
    assert "井盖倾斜或被掀开：高于 15°" in page.inner_text("#dv-graph")
    save_screenshot(page, "devices-1920x1080.png")
    # acknowledge the open alarm from the card
    page.click("#dv-device-alarms button:has-text('确认')")
    page.wait_for_selector(".dv-msg.is-ok", timeout=30_000)
    assert "已确认" in page.inner_text("#dv-msg")
    page.wait_for_function("document.querySelector('#dv-device-alarms').textContent.includes('已确认')", timeout=30_000)
    # the fleet's active alarms
    page.click("#dv-view label:has-text('活动告警')")
    page.wait_for_selector("#dv-alarms .dv-atable", timeout=30_000)
    assert device in page.inner_text("#dv-alarms")
    assert watch.foreign == [], watch.foreign
    assert watch.errors == [], watch.errors


def test_the_iot_case_on_the_console_shows_the_device_and_its_chart(duty_page, devices_app):
    page, watch = duty_page
    story = devices_app.story
    page.goto(devices_app.url + f"/console?case={story['case']}")
    page.wait_for_selector("#cs-iot", timeout=30_000)
    _line_drawn(page, "#cs-iot .dc-graph")
    text = page.inner_text("#cs-iot")
    assert story["device"] in text and "智慧井盖" in text and "井盖倾斜或被掀开" in text
    href = page.get_attribute(f"#cs-iot a.dc-link", "href")
    assert href == f"/devices?device={story['device']}"
    page.locator("#cs-iot").scroll_into_view_if_needed()
    save_screenshot(page, "console-iot-case-1920x1080.png")
    page.click("#cs-iot a.dc-link")
    page.wait_for_selector(f".dv-dcard[data-device='{story['device']}']", timeout=30_000)
    _line_drawn(page, "#dv-graph")
    assert watch.foreign == [], watch.foreign
    assert watch.errors == [], watch.errors
