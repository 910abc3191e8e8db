"""The leader cockpit in headless Chromium: drawn, local-only, drill-down city → grid with every figure following."""
from __future__ import annotations

import io
import json
import math
import re
import shutil
import time
import urllib.request

import pytest
import shapely
from PIL import Image, ImageStat
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import PageWatch, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser
DISTRICT = "320412"  # 武进区: the largest district, easy to hit on the map
TIANNING = (119.975, 31.79)  # a point in 天宁区


@pytest.fixture(scope="module")
def cockpit_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over the demo city with the plan indicators and 30 days of simulated cases
    (the real intake and lifecycle, in simulated time ending now)."""
    from data.area_directory import AreaDirectory
    from cases.service import CaseService
    from data.db import Database
    from figures.plan_indicators import seed_indicators
    from data.schema import init_db
    from demo.runner import SimulationRunner
    from data.tokens import create_token

    d = tmp_path_factory.mktemp("cockpit")
    path = d / "cockpit.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    init_db(db)
    with db.session() as s:
        seed_indicators(s)
    service = CaseService(db, AreaDirectory(db))
    SimulationRunner(service, seed=20261125).run(0.03, 30 * 86400, realtime=False, tick_seconds=3600,
                                                 echo=lambda _m: None)
    city = {r.code: r for r in service.areas.records(max_level=2)}
    with db.session() as s:
        officer = create_token(s, "duty_officer")  # posts cases through the API
    db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log").wait_ready()
    app.areas = city
    app.officer = officer
    yield app
    app.stop()


@pytest.fixture
def open_cockpit(browser, cockpit_app):
    contexts = []

    def _open(width=1920, height=1080, path="/cockpit"):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        contexts.append(ctx)
        page = ctx.new_page()
        watch = PageWatch(page, cockpit_app.url)
        sign_in(page, cockpit_app.url, "leader")
        page.goto(cockpit_app.url + path)
        wait_panel(page, "常州市")
        return page, watch

    yield _open
    for ctx in contexts:
        ctx.close()


def wait_panel(page, area_name: str) -> None:
    """The panel callback has answered for `area_name`: figures, charts and the period line."""
    page.wait_for_function(
        """name => {
            const p = document.querySelector('#ck-period');
            const f = document.querySelector('#ck-fig-received');
            const charts = document.querySelectorAll('.ck-chart .main-svg');
            return p && p.innerText.startsWith(name + ' ·') && f && f.innerText.trim() !== '' && charts.length >= 5
                && !document.querySelector('[data-dash-is-loading="true"]');
        }""", arg=area_name, timeout=30_000)
    page.wait_for_timeout(300)


def crumbs(page) -> list[str]:
    return [t.strip() for t in page.locator("#ck-crumbs .ck-crumb").all_inner_texts()]


def received(page) -> int:
    return int(page.inner_text("#ck-fig-received").replace(",", ""))


def canvas_drawn(page) -> tuple[int, float]:
    canvas = page.locator("canvas#ck-map").first
    canvas.wait_for(state="visible", timeout=30_000)
    img = Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20) or []
    return len(colours), sum(ImageStat.Stat(img).stddev) / 3


def click_on_map(page, frame_bounds, lon: float, lat: float) -> None:
    """Click where (lon, lat) is drawn: the map is fitted as assets/fit_bounds.js fits it."""
    canvas = page.locator("canvas#ck-map").first
    box = canvas.evaluate("c => { const r = c.parentElement.getBoundingClientRect(); "
                          "return {x: r.x, y: r.y, w: r.width, h: r.height}; }")
    minx, miny, maxx, maxy = frame_bounds

    def merc_y(v):
        s = math.sin(math.radians(v))
        return math.log((1 + s) / (1 - s)) / (4 * math.pi)

    dx, dy = (maxx - minx) / 360, abs(merc_y(maxy) - merc_y(miny))
    zoom = min(math.log2(box["w"] * 0.92 / (512 * dx)), math.log2(box["h"] * 0.92 / (512 * dy)))
    scale = 512 * 2 ** zoom
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    x = box["x"] + box["w"] / 2 + (lon - cx) / 360 * scale
    y = box["y"] + box["h"] / 2 - (merc_y(lat) - merc_y(cy)) * scale
    page.mouse.click(x, y)


def click_top_bar(page) -> None:
    """Click the busiest area's bar in the ranking chart (the top bar is the last point)."""
    page.locator("#ck-ranking .bars .point").last.click(force=True)


def test_cockpit_draws_and_drills_from_the_city_to_a_grid(open_cockpit, cockpit_app):
    page, watch = open_cockpit(1920, 1080)
    page.wait_for_timeout(1500)  # deck.gl draws on the next animation frames
    n_colours, spread = canvas_drawn(page)
    assert n_colours > 20 and spread > 10, "the map canvas looks blank"
    save_screenshot(page, "cockpit-1920x1080.png")
    assert crumbs(page) == ["常州市"]
    city_received = received(page)
    assert city_received > 300, "the simulated month should show on the city's figures"
    city_pareto = page.inner_text("#ck-pareto-title")
    assert page.locator(".ck-ind-table tbody tr").count() >= 20

    # 1. city → district: a click on the map
    district = cockpit_app.areas[DISTRICT]
    city = cockpit_app.areas["320400"]
    point = district.geometry.representative_point()
    # deck.gl picks from a buffer it draws on a later frame; on a loaded machine the first click can
    # come before it, so click again as a person would when nothing happens
    for attempt in range(3):
        click_on_map(page, shapely.total_bounds([city.geometry]), point.x, point.y)
        try:
            page.wait_for_function("() => document.querySelectorAll('#ck-crumbs .ck-crumb').length === 2",
                                   timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    wait_panel(page, district.name)
    assert crumbs(page) == ["常州市", district.name]
    district_received = received(page)
    assert 0 < district_received < city_received
    assert page.inner_text("#ck-pareto-title") != city_pareto
    assert "街道" in page.inner_text("#ck-map-title")

    # 2. district → street: a click in the ranking chart
    click_top_bar(page)
    page.wait_for_function("n => document.querySelectorAll('#ck-crumbs .ck-crumb').length === n", arg=3,
                           timeout=30_000)
    street = crumbs(page)[-1]
    wait_panel(page, street)
    street_received = received(page)
    assert street_received <= district_received

    # 3. street → community and 4. community → grid: the selector
    for depth in (4, 5):
        page.click("#ck-child")
        options = page.locator("[role=option]")
        options.first.wait_for(timeout=10_000)
        name = options.first.inner_text().strip()
        options.first.click()
        wait_panel(page, name)
        page.wait_for_function("n => document.querySelectorAll('#ck-crumbs .ck-crumb').length === n", arg=depth,
                               timeout=30_000)
        assert crumbs(page)[-1] == name
        assert received(page) <= street_received
    grid = name
    assert "网格" in grid and "选中" in page.inner_text("#ck-map-title")
    assert received(page) <= street_received
    save_screenshot(page, "cockpit-grid-1920x1080.png")

    # 5. back up with the breadcrumbs
    page.locator("#ck-crumbs .ck-crumb", has_text=district.name).click()
    wait_panel(page, district.name)
    page.wait_for_function("() => document.querySelectorAll('#ck-crumbs .ck-crumb').length === 2", timeout=30_000)
    assert received(page) == district_received and crumbs(page) == ["常州市", district.name]
    page.locator("#ck-crumbs .ck-crumb", has_text="常州市").click()
    wait_panel(page, "常州市")
    assert received(page) == city_received

    assert watch.foreign == [], f"requests left the app's host: {watch.foreign[:5]}"
    assert watch.errors == [], f"console errors: {watch.errors[:5]}"


def test_theme_panels_switch_figures_and_indicators(open_cockpit):
    page, watch = open_cockpit(1920, 1080)
    overview = received(page)
    assert "全部" in page.inner_text("#ck-indicators-title")
    for label in ("应急管理", "生态环境", "交通出行", "公共服务", "产业经济", "城市管理"):
        page.locator(".ck-tab", has_text=label).click()
        page.wait_for_function("l => document.querySelector('#ck-indicators-title').innerText.includes(l)",
                               arg=label, timeout=30_000)
        wait_panel(page, "常州市")
        assert "ck-tab--on" in page.locator(".ck-tab", has_text=label).get_attribute("class")
        rows = page.locator(".ck-ind-table tbody tr").count()
        assert 2 <= rows <= 8, f"{label}: {rows} indicators"
        assert received(page) <= overview
    assert received(page) < overview  # city management is a part of all cases
    assert watch.errors == [] and watch.foreign == []


@pytest.mark.parametrize("width,height", [(3840, 2160), (1180, 820)])
def test_cockpit_fits_a_4k_screen_and_a_tablet(open_cockpit, width, height):
    page, watch = open_cockpit(width, height)
    page.wait_for_timeout(1500)
    n_colours, spread = canvas_drawn(page)
    assert n_colours > 20 and spread > 10, "the map canvas looks blank"
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
    if width >= 1920:  # one screen, nothing to scroll; chart text grows with the screen
        main = page.evaluate("() => { const m = document.querySelector('.ucc-main'); "
                             "return [m.scrollHeight, m.clientHeight]; }")
        assert main[0] <= main[1] + 1
        size = page.locator("#ck-trend .xtick text").first.evaluate("t => parseFloat(getComputedStyle(t).fontSize)")
        assert size >= 20
    save_screenshot(page, f"cockpit-{width}x{height}.png")
    assert re.match(r"^[\d,]+$", page.inner_text("#ck-fig-received"))
    assert watch.errors == [] and watch.foreign == []


def today(page) -> int:
    return int(re.sub(r"\D", "", page.inner_text("#ck-fig-today")))


def _post_case(app, lon, lat, category="020102") -> dict:
    body = {"category": category, "lon": lon, "lat": lat, "description": "驾驶舱实时测试", "source": "hotline"}
    req = urllib.request.Request(app.url + "/api/v1/events", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {app.officer}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 201
        return json.load(resp)


TODAY_IS = "n => parseInt(document.querySelector('#ck-fig-today').innerText.replace(/\\D/g, ''), 10) === n"


def test_new_cases_update_the_cockpit_in_place_from_the_live_stream(open_cockpit, cockpit_app):
    page, watch = open_cockpit(1920, 1080)
    page.wait_for_function("() => window.uccCockpit && window.uccCockpit.connected", timeout=15_000)
    assert "实时" in page.inner_text("#ck-live") and "is-on" in page.get_attribute("#ck-live", "class")
    page.wait_for_timeout(3000)  # the refresh that follows connecting has come and gone
    wait_panel(page, "常州市")
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
    day, month = today(page), received(page)

    # one case: the figures follow within 3 s, without a reload
    _post_case(cockpit_app, *TIANNING)
    posted = time.monotonic()
    page.wait_for_function(TODAY_IS, arg=day + 1, timeout=3_000)
    took = time.monotonic() - posted
    assert took < 3.0, f"the cockpit followed after {took:.1f} s"
    assert received(page) == month + 1
    assert page.evaluate("() => window.__sameDocument") is True
    save_screenshot(page, "cockpit-live-1920x1080.png")

    # a burst: every case counted, a few debounced refreshes rather than one per event
    page.wait_for_timeout(2600)
    refreshes = page.evaluate("() => window.uccCockpit.refreshes")
    for i in range(6):
        _post_case(cockpit_app, TIANNING[0] + 0.002 * i, TIANNING[1] + 0.001)
    page.wait_for_function(TODAY_IS, arg=day + 7, timeout=8_000)
    page.wait_for_timeout(3000)
    assert page.evaluate("() => window.uccCockpit.refreshes") - refreshes <= 3
    assert page.evaluate("() => window.uccCockpit.events") >= 7

    # the stream goes down: the page says so, and catches up when it is back (the browser goes
    # offline: socket.io-client drops the socket on the 'offline' event, and reconnects fail)
    page.context.set_offline(True)
    page.wait_for_function("() => document.querySelector('#ck-live').innerText.includes('连接中断')", timeout=5_000)
    assert "is-down" in page.get_attribute("#ck-live", "class")
    save_screenshot(page, "cockpit-offline-1920x1080.png")
    _post_case(cockpit_app, *TIANNING)  # missed by the page while it is offline
    page.wait_for_timeout(1500)
    assert today(page) == day + 7
    page.context.set_offline(False)
    page.wait_for_function("() => document.querySelector('#ck-live').innerText.includes('实时')", timeout=15_000)
    page.wait_for_function(TODAY_IS, arg=day + 8, timeout=5_000)
    assert page.evaluate("() => window.__sameDocument") is True
    # the browser itself reports each reconnect that failed while it was offline; nothing else
    errors = [e for e in watch.errors if "ERR_INTERNET_DISCONNECTED" not in e]
    assert errors == [] and watch.foreign == []
