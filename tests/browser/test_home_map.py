"""The home page in a real browser: the districts drawn on the deck.gl map, nothing fetched from outside."""
from __future__ import annotations

import io

import pytest
from PIL import Image, ImageStat

from tests.browser.conftest import save_screenshot

pytestmark = pytest.mark.browser


def _canvas_is_drawn(page) -> float:
    canvas = page.locator("canvas#city-map").first
    canvas.wait_for(state="visible", timeout=30_000)
    img = Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20) or []
    stat = ImageStat.Stat(img)
    return len(colours), sum(stat.stddev) / 3


@pytest.mark.parametrize("width,height", [(1920, 1080), (3840, 2160)])
def test_home_shows_the_districts_on_the_map(open_page, width, height):
    page, watch = open_page("/", width, height)
    page.wait_for_selector("#count-level-5", timeout=30_000)
    assert page.inner_text("#count-level-2") == "7"
    assert page.inner_text("#count-level-5") == "5,891"
    page.wait_for_timeout(1500)  # deck.gl draws on the next animation frames
    n_colours, spread = _canvas_is_drawn(page)
    save_screenshot(page, f"home-{width}x{height}.png")
    assert n_colours > 20 and spread > 10, "the map canvas looks blank"
    assert watch.foreign == [], f"requests left the app's host: {watch.foreign[:5]}"
    assert watch.errors == [], f"console errors: {watch.errors[:5]}"
