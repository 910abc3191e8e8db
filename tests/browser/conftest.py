"""Headless Chromium (Debian's) driven by Playwright, and the app served on a free port."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import IN_CI
from tests.serving import AppProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} missing (make test installs Debian's chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def live_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over a copy of the seeded demo database."""
    d = tmp_path_factory.mktemp("live")
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), d / "live.db")
    app = AppProcess(f"sqlite:///{d / 'live.db'}", d / "app.log").wait_ready()
    yield app
    app.stop()


class PageWatch:
    """Collects console errors and every request host a page makes."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base = urlparse(base_url).netloc
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._request)

    def _request(self, req):
        u = urlparse(req.url)
        if u.scheme in ("data", "blob", "about"):
            return
        if u.netloc != self.base:
            self.foreign.append(req.url)


def demo_password(username: str) -> str:
    from data.files import demo_users

    return next(u["password"] for u in demo_users() if u["username"] == username)


def sign_in(page, base_url: str, username: str, then: str | None = None, password: str | None = None) -> None:
    """Signs `page` in through the real /login form, by default as a demo user (data/catalog/demo_users.json)."""
    page.goto(base_url + "/login" + (f"?next={then}" if then else ""))
    page.fill("#username", username)
    page.fill("#password", password or demo_password(username))
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    if "/login" in page.url:
        raise AssertionError(f"sign-in as {username} failed: {page.inner_text('body')[:200]}")


@pytest.fixture
def open_page(browser, live_app):
    pages = []

    def _open(path: str, width=1920, height=1080, user: str | None = "duty"):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        page = ctx.new_page()
        watch = PageWatch(page, live_app.url)
        if user:
            sign_in(page, live_app.url, user)
        page.goto(live_app.url + path)
        pages.append(ctx)
        return page, watch

    yield _open
    for ctx in pages:
        ctx.close()


def save_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def choose_option(page, dropdown: str, search: str, label: str | None = None) -> None:
    """Pick from a searchable dcc.Dropdown (`dropdown`: its CSS selector): open it (again, if a
    re-render swallowed the click), type `search` into its search box, click the option showing
    `label` (default: `search`), and wait until the dropdown shows it."""
    label = label or search
    content = page.locator(".dash-dropdown-content")
    for _ in range(3):
        page.click(f"{dropdown} .dash-dropdown-trigger, {dropdown}")
        try:
            content.first.wait_for(state="visible", timeout=3_000)
            break
        except Exception:  # noqa: BLE001 - not open yet: click again
            continue
    box = page.locator(".dash-dropdown-content input.dash-dropdown-search, .dash-dropdown-content input").first
    box.fill(search)  # replaces what an earlier search left there
    page.locator(".dash-dropdown-content .dash-dropdown-option, .dash-dropdown-content [role=option]",
                 has_text=label).first.click()
    page.wait_for_selector(f"{dropdown}:has-text('{label}')")
