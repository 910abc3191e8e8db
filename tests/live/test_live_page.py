"""The home page's live widget in headless Chromium: it connects to /live with the signed-in session,
counts the case events it receives, and says when the connection is lost."""
from __future__ import annotations

import os
import threading

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PageWatch, save_screenshot, sign_in
from tests.conftest import IN_CI
from tests.live.conftest import LIYANG, TIANNING, post_case

pytestmark = pytest.mark.browser


def _in_own_playwright(body) -> None:
    """Run body(browser) with a Chromium of its own, in a thread of its own: tests/browser's session
    browser may be running in this thread already, and Playwright's sync API allows one per thread."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} missing (make test installs Debian's chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    errors: list[BaseException] = []

    def run():
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    body(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(180)
    assert not t.is_alive(), "browser test hung"
    if errors:
        raise errors[0]


def _status_has(page, text: str, timeout: int) -> None:
    page.wait_for_function(f"document.querySelector('#live-status').innerText.includes({text!r})",
                           timeout=timeout)


def test_the_home_page_shows_the_live_connection_and_counts_case_events(live_server, demo_data):
    username, password = demo_data.user("duty_officer", TIANNING)
    writer = demo_data.token("duty_officer")

    def body(browser):
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        page = ctx.new_page()
        watch = PageWatch(page, live_server.url)
        sign_in(page, live_server.url, username, password=password)  # the page connects with its session
        page.goto(f"{live_server.url}/")
        page.locator("#live-status").wait_for(timeout=30_000)
        _status_has(page, "已连接", 15_000)
        assert "已收到 0 条" in page.inner_text("#live-status")
        for i in range(3):
            assert post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 50 + i))[0] == 201
            page.wait_for_timeout(300)
        assert post_case(live_server.url, writer, *demo_data.point_in(LIYANG, 50))[0] == 201  # not for 天宁
        _status_has(page, "已收到 3 条", 5_000)
        page.wait_for_timeout(500)
        assert "已收到 3 条" in page.inner_text("#live-status")
        # a burst, posted from several threads at once: every one counted, none twice
        burst = [threading.Thread(target=post_case, args=(live_server.url, writer,
                                                          *demo_data.point_in(TIANNING, 60 + i)))
                 for i in range(12)]
        for t in burst:
            t.start()
        for t in burst:
            t.join()
        _status_has(page, "已收到 15 条", 5_000)
        page.wait_for_timeout(500)
        assert "已收到 15 条" in page.inner_text("#live-status")
        save_screenshot(page, "home-live-status.png")
        assert watch.foreign == [] and watch.errors == [], (watch.foreign[:3], watch.errors[:3])
        live_server.proc.kill()  # the server goes away: the page says it is reconnecting
        _status_has(page, "正在重连", 15_000)
        ctx.close()

    _in_own_playwright(body)


def test_without_signing_in_the_home_page_sends_the_browser_to_the_sign_in_form(live_server):
    def body(browser):
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        page = ctx.new_page()
        page.goto(live_server.url + "/")
        page.wait_for_selector("#username", timeout=30_000)
        assert "/login" in page.url and "登 录" in page.inner_text("body")
        assert page.locator("#live-status").count() == 0
        ctx.close()

    _in_own_playwright(body)
