"""/api/docs in Chromium: Swagger UI from assets/vendor renders /api/v1/openapi.json — every tag and operation
shown, no request to another host, no console error; the screenshot goes to docs/screenshots/api-docs.png."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser.conftest import save_screenshot

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_the_api_docs_page_renders_the_document_from_local_assets(open_page, live_app):
    page, watch = open_page("/api/docs", user=None)  # the page and the document need no sign-in
    page.wait_for_selector(".opblock-tag", timeout=30_000)
    assert page.title() == "城市运行管理平台 · 接口文档"
    assert "城市运行管理平台 API" in page.inner_text(".info .title")
    tags = page.locator(".opblock-tag").all_inner_texts()
    assert any("案件" in t for t in tags) and any("应急资源" in t for t in tags), tags
    page.locator(".opblock-summary-path", has_text="/api/v1/events/{case_id}").first.wait_for(timeout=10_000)
    assert watch.foreign == [], watch.foreign
    assert watch.errors == [], watch.errors
    page.evaluate("window.scrollTo(0, 0)")
    path = save_screenshot(page, "api-docs.png")
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / "api-docs.png")
