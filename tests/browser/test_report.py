"""The phone report page (/report) at 390×844 in headless Chromium: a grid member reports with a photo and the
phone's position and sees the case number; bad input (no category, empty description, a point outside the city or
the member's grid, a wrong or oversized photo) shows a Chinese message and creates nothing."""
from __future__ import annotations

import io
import json
import shutil
import urllib.error
import urllib.request

import pytest
from PIL import Image

from tests.browser.conftest import PageWatch, choose_option, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser
GRID = "320402001001001"  # the demo grid member's grid: 文苑社区第1网格
OTHER_GRID_PREFIX = "320404"  # 钟楼区: inside the city, outside the member's grid
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def report_app(demo_sqlite_url, tmp_path_factory):
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.schema import init_db
    from data.tokens import create_token

    d = tmp_path_factory.mktemp("report")
    path = d / "report.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    init_db(db)
    with db.session() as s:
        duty = create_token(s, "duty_officer")
    areas = AreaDirectory(db)
    home = areas.get(GRID).geometry.representative_point()
    other = next(r for r in areas.records(max_level=5) if r.level == 5 and r.code.startswith(OTHER_GRID_PREFIX))
    away = other.geometry.representative_point()
    db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log", UCC_PHOTO_DIR=str(d / "photos")).wait_ready()
    app.duty, app.photos, app.db_url = duty, d / "photos", f"sqlite:///{path}"
    app.home, app.away = (round(home.x, 6), round(home.y, 6)), (round(away.x, 6), round(away.y, 6))
    yield app
    app.stop()


def api(app, path: str) -> tuple[int, dict]:
    req = urllib.request.Request(app.url + "/api/v1" + path, headers={"Authorization": f"Bearer {app.duty}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def case_total(app) -> int:
    return api(app, "/events?per_page=1&count=true")[1]["total"]


def photo_files(app) -> list:
    return [p for p in app.photos.rglob("*") if p.is_file()] if app.photos.exists() else []


@pytest.fixture
def phone(browser, report_app):
    """A phone-sized page signed in as the demo grid member, standing in the middle of their grid."""
    contexts = []

    def _open():
        lon, lat = report_app.home
        ctx = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=2, is_mobile=True,
                                  has_touch=True, geolocation={"longitude": lon, "latitude": lat, "accuracy": 15},
                                  permissions=["geolocation"])
        contexts.append(ctx)
        page = ctx.new_page()
        watch = PageWatch(page, report_app.url)
        sign_in(page, report_app.url, "grid")
        page.goto(report_app.url + "/report")
        page.wait_for_selector("#rp-submit")
        page.wait_for_selector("#rp-category .dash-dropdown-trigger")
        return page, watch

    yield _open
    for ctx in contexts:
        ctx.close()


def choose_category(page, search: str, label: str) -> None:
    choose_option(page, "#rp-category", search, label)


def image(fmt: str = "JPEG", size=(1280, 960)) -> bytes:
    img = Image.new("RGB", size, (120, 110, 90))
    img.paste((60, 60, 60), (400, 300, 880, 660))  # a dark square: the open manhole
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=85)
    return buf.getvalue()


def pick_photo(page, name: str, mime: str, data: bytes) -> None:
    page.set_input_files("#rp-photo input[type=file]", files=[{"name": name, "mimeType": mime, "buffer": data}])


def submit_and_wait(page) -> str:
    """Submit and return the message line once the answer is in (cleared first: the same refusal twice
    must not be mistaken for an answer)."""
    page.evaluate("() => { window.dash_clientside.set_props('rp-msg', {children: ''});"
                  " window.dash_clientside.set_props('rp-result', {children: ''}); }")
    page.wait_for_function("() => document.querySelector('#rp-msg').innerText.trim() === ''"
                           " && document.querySelector('#rp-result').innerText.trim() === ''")
    page.click("#rp-submit")
    page.wait_for_function("() => document.querySelector('#rp-msg').innerText.trim() !== ''"
                           " || document.querySelector('#rp-result').innerText.trim() !== ''", timeout=15_000)
    page.wait_for_timeout(200)
    return page.inner_text("#rp-msg")


def use_my_position(page) -> None:
    page.click("#rp-locate")
    page.wait_for_selector(".rp-place--ok", timeout=15_000)


def test_bad_input_shows_a_message_and_creates_nothing(phone, report_app):
    page, watch = phone()
    before = case_total(report_app)

    message = submit_and_wait(page)
    assert "请选择问题类别" in message and "请填写问题描述" in message and "位置" in message

    choose_category(page, "暴露垃圾", "暴露垃圾（市容环境）")
    page.fill("#rp-desc", "路边有一堆生活垃圾")
    page.fill("#rp-lon", "121.4737")  # Shanghai: not this city
    page.fill("#rp-lat", "31.2304")
    page.wait_for_selector(".rp-place--bad:has-text('不在本市范围内')", timeout=10_000)
    assert "不在本市" in submit_and_wait(page)

    page.fill("#rp-lon", str(report_app.away[0]))  # 钟楼区: in the city, not the member's grid
    page.fill("#rp-lat", str(report_app.away[1]))
    page.wait_for_selector(".rp-place--ok", timeout=10_000)
    assert "不在您的辖区" in submit_and_wait(page)

    page.fill("#rp-lon", "东经120")
    page.wait_for_selector(".rp-place--bad:has-text('经纬度须为数字')", timeout=10_000)

    use_my_position(page)
    page.fill("#rp-desc", "   ")
    assert "请填写问题描述" in submit_and_wait(page)
    page.fill("#rp-desc", "路边有一堆生活垃圾")

    # photos refused in the browser, before anything is sent: wrong type, not an image, empty, too big
    for name, mime, data, expected in [
        ("a.gif", "image/gif", b"GIF89a" + b"\0" * 200, "不支持的文件类型（GIF）"),
        ("notes.txt", "text/plain", "不是照片".encode(), "不支持的文件类型（TXT）"),
        ("fake.jpg", "image/jpeg", b"<html>not a jpeg</html>", "不支持的文件类型（JPG）"),
        ("empty.jpg", "image/jpeg", b"", "照片是空文件"),
        ("big.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + b"\0" * (9 * 1024 * 1024), "照片过大（9.0 MB），最大 8 MB"),
    ]:
        pick_photo(page, name, mime, data)
        page.wait_for_selector(f".ucc-photo-msg--bad:has-text('{expected}')", timeout=10_000)
        assert page.is_hidden("#rp-photo-preview")
    save_screenshot(page, "report-390x844-refused.png")

    # and on the server, had the browser let one through: the photo is checked before intake
    page.evaluate("() => { window.uccPhoto.problem = function () { return ''; }; }")
    pick_photo(page, "a.gif", "image/gif", b"GIF89a" + b"\0" * 200)
    page.wait_for_selector("#rp-photo-preview[src^='data:image/gif']", timeout=10_000)
    assert "不支持的文件类型（GIF）" in submit_and_wait(page)

    assert case_total(report_app) == before and photo_files(report_app) == []
    assert page.inner_text("#rp-result") == ""
    assert watch.errors == [] and watch.foreign == []


def test_grid_member_reports_with_a_photo_and_sees_the_number(phone, report_app):
    from data.db import Database
    from cases.photos import list_photos

    page, watch = phone()
    use_my_position(page)
    assert "文苑社区" in page.inner_text("#rp-place")
    choose_category(page, "井盖", "井盖缺失（公用设施）")
    page.fill("#rp-desc", "文苑路人行道井盖缺失，已放置锥桶")
    photo = image()
    pick_photo(page, "IMG_0001.jpg", "image/jpeg", photo)
    page.wait_for_selector("#rp-photo-preview[src^='data:image/jpeg']", timeout=10_000)
    assert "已选择" in page.inner_text("#rp-photo-msg")

    assert submit_and_wait(page) == ""
    number = page.inner_text("#rp-case-id")
    assert number.startswith("#")
    case_id = int(number[1:])
    result = page.inner_text("#rp-result")
    assert "上报成功" in result and "处置单位" in result and "处置时限" in result and "现场照片已上传" in result
    save_screenshot(page, "report-390x844.png")

    status, case = api(report_app, f"/events/{case_id}")
    assert status == 200 and case["source"] == "patrol" and case["state"] == "reported"
    assert case["description"] == "文苑路人行道井盖缺失，已放置锥桶" and case["chain"][0]["code"] == GRID
    assert (case["unit"] or {}).get("name", "") in result
    db = Database(report_app.db_url)
    photos = list_photos(db, case_id)
    db.dispose()
    assert [p["kind"] for p in photos] == ["report"] and photos[0]["actor"] == "user:grid"
    req = urllib.request.Request(report_app.url + photos[0]["url"],
                                 headers={"Authorization": f"Bearer {report_app.duty}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg" and resp.read() == photo

    # the form is ready for the next report; the same problem reported again merges into this case
    assert page.input_value("#rp-desc") == "" and page.is_hidden("#rp-photo-preview")
    choose_category(page, "井盖", "井盖缺失（公用设施）")
    page.fill("#rp-desc", "同一个井盖，还没有修")
    assert submit_and_wait(page) == ""
    assert "已合并" in page.inner_text("#rp-result") and page.inner_text("#rp-case-id") == f"#{case_id}"
    assert watch.errors == [] and watch.foreign == []
