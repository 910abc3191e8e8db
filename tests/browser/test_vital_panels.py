"""The city's vital signs in a real browser: the wall's traffic panel at 3840x2160 shows the feed's latest values with
their unit, source, time and change (the demo seed's readings, badged 演示数据), and the cockpit's traffic theme shows
the same indicators with a 24 h chart that switches to 7 days."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.conftest import PageWatch, save_screenshot, sign_in

pytestmark = pytest.mark.browser

def keep(path: Path) -> None:
    """A copy of a screenshot where UCC_SHOTS_DIR says (to look at it outside the test tree)."""
    where = os.environ.get("UCC_SHOTS_DIR")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(where) / path.name)


def _catch_up(database_url: str) -> None:
    """The demo feeder up to now in the served database: the server started with the session (its start caught up
    then) and runs no feeder (UCC_SIMULATE=0), so a late test would find the 15-minute indicators stale."""
    from datetime import datetime, timezone

    from data import files
    from data.db import Database
    from demo.indicator_feed import IndicatorFeeder
    from sensing.indicators import IndicatorIngest

    db = Database(database_url)
    try:
        IndicatorFeeder(IndicatorIngest(db, files.city_indicators), lambda: datetime.now(timezone.utc)).catch_up()
    finally:
        db.dispose()


def test_the_wall_panel_shows_the_feed(browser, live_app):
    _catch_up(live_app.database_url)
    ctx = browser.new_context(viewport={"width": 3840, "height": 2160}, locale="zh-CN")
    try:
        page = ctx.new_page()
        watch = PageWatch(page, live_app.url)
        sign_in(page, live_app.url, "leader", then="/wall?panel=traffic&kiosk=0")
        # the panel is painted from the first snapshot, before the map is drawn (READY): no need to wait for it
        page.wait_for_selector("#wall-vital-traffic .wall-vital", timeout=90_000)
        panel = page.inner_text("#wall-panel-traffic")
        assert "主城区交通拥堵指数" in panel and "路网平均车速" in panel and "km/h" in panel
        assert "来源：交通运行监测平台" in panel and "较昨日同时" in panel
        assert page.is_visible("#wall-vital-badge-traffic") and page.inner_text("#wall-vital-badge-traffic") == "演示数据"
        assert page.locator("#wall-vital-traffic .wall-spark").count() == 3
        page.wait_for_timeout(1500)  # the map's first drawing, for the screenshot
        assert page.locator("#wall-vital-traffic .is-stale").count() == 0
        value = page.inner_text("#wall-vital-traffic .wall-vital-value >> nth=0")
        assert 1.0 <= float(value) <= 10.0
        keep(save_screenshot(page, "wall-vital-3840x2160.png"))
        assert not watch.errors, watch.errors
    finally:
        ctx.close()


def test_the_cockpit_theme_shows_the_same_indicators(browser, live_app):
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        page = ctx.new_page()
        watch = PageWatch(page, live_app.url)
        sign_in(page, live_app.url, "leader", then="/cockpit?theme=traffic")
        page.wait_for_selector("#ck-vital-values .ck-vital-item", timeout=30_000)
        values = page.inner_text("#ck-vital-values")
        assert "主城区交通拥堵指数" in values and "地铁进站客流" in values and "km/h" in values and "日比" in values
        assert "城市体征 · 交通出行" in page.inner_text("#ck-vital-title")
        page.wait_for_selector("#ck-vital-graph .scatterlayer .trace", timeout=20_000)
        assert "来源：交通运行监测平台（演示）" in page.inner_text("#ck-vital-graph")
        page.wait_for_selector("#ck-indicators .ck-ind-table", timeout=60_000)  # the rest of the card, for the picture
        keep(save_screenshot(page, "cockpit-vital-1920x1080.png"))
        page.click("#ck-vital-span label:has-text('7天')")
        page.wait_for_function("() => { var g = document.querySelector('#ck-vital-graph .js-plotly-plot');"
                               " return g && g.data && g.data[0] && g.data[0].x.length > 100"
                               " && Date.parse(g.data[0].x[0]) < Date.now() - 5 * 86400e3; }", timeout=30_000)
        keep(save_screenshot(page, "cockpit-vital-7d-1920x1080.png"))
        assert not watch.errors, watch.errors
    finally:
        ctx.close()
