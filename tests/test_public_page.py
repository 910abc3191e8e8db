"""/public over HTTP against the running app (`python app.py`), as a phone's browser sends it: no account, form posts
with the CSRF token and the human check, a multipart photo; the ticket, the follow-up by number and phone, the photo
of the fix for the reporter only, the rating once after the officers closed the case through the API; the limits
answer 429 in Chinese; the body limit 413; Dash's catch-all answers nothing under /public."""
from __future__ import annotations

import io
import re
import shutil

import pytest
import requests
from PIL import Image

from public.check import HumanCheck
from tests.serving import AppProcess

GRID = "320402001001001"
SECRET = "test-secret"  # AppProcess's UCC_SECRET_KEY: the test reads the check's digits as a person reads the image
CATEGORY = "020102"     # 暴露垃圾
FOLLOW_LIMIT = 6


@pytest.fixture(scope="module")
def site(demo_sqlite_url, tmp_path_factory):
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.schema import init_db
    from data.tokens import create_token

    d = tmp_path_factory.mktemp("public")
    path = d / "public.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    init_db(db)
    with db.session() as s:
        admin = create_token(s, "admin")
    areas = AreaDirectory(db)
    # one grid per report: reports of one problem at one place would be merged (dedupe), as they should
    grids = [GRID] + [r.code for r in areas.records() if r.level == 5 and r.code.startswith("320402") and r.code != GRID][:20]
    points = [areas.get(code).geometry.representative_point() for code in grids]
    db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log", UCC_PHOTO_DIR=str(d / "photos"),
                     UCC_PUBLIC_REPORT_ADDRESS_LIMIT="200 per hour", UCC_PUBLIC_REPORT_PHONE_LIMIT="2 per hour",
                     UCC_PUBLIC_FOLLOW_ADDRESS_LIMIT=f"{FOLLOW_LIMIT} per 10 minutes").wait_ready()
    app.admin, app.db_url, app.photos = admin, f"sqlite:///{path}", d / "photos"
    app.points = [(round(p.x, 6), round(p.y, 6)) for p in points]
    app.point = app.points[0]
    app.used = 0
    yield app
    app.stop()


def png(size=(64, 48), colour=(30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert m, f"no field {name}"
    return m.group(1)


def solve(html: str) -> dict:
    """The form's hidden fields with the check answered (the digits of its image)."""
    token = field(html, "check_token")
    check = HumanCheck(SECRET, lambda _n: True)
    return {"csrf_token": field(html, "csrf_token"), "key": field(html, "key"), "check_token": token,
            "check_answer": check.answer_of(check.nonce_of(token))}


def report(site, browser: requests.Session, phone: str, answer: str | None = None, photo: bytes | None = None,
           **extra):
    page = browser.get(site.url + "/public")
    assert page.status_code == 200
    site.used += 1
    lon, lat = site.points[site.used % len(site.points)]
    data = {**solve(page.text), "category": CATEGORY, "description": "小区东门垃圾堆放多日，气味很大", "phone": phone,
            "lon": lon, "lat": lat, **extra}
    if answer is not None:
        data["check_answer"] = answer
    files = {"photo": ("现场.png", photo, "image/png")} if photo else None
    return browser.post(site.url + "/public/report", data=data, files=files, allow_redirects=False)


def api(site, method: str, path: str, **kw):
    resp = requests.request(method, site.url + "/api/v1" + path, headers={"Authorization": f"Bearer {site.admin}"},
                            timeout=30, **kw)
    return resp.status_code, resp.json()


def case_total(site) -> int:
    return api(site, "GET", "/events?per_page=1&count=true")[1]["total"]


def error_text(html: str) -> str:
    m = re.search(r'class="pb-error"[^>]*>([^<]+)<', html)
    return m.group(1) if m else ""


def test_the_page_opens_without_an_account_and_is_ours_under_public(site):
    resp = requests.get(site.url + "/public", timeout=30)
    assert resp.status_code == 200 and "/login" not in resp.url
    html = resp.text
    assert '<optgroup label="' in html and f'value="{CATEGORY}"' in html
    assert "110、119 或 12345" in html                                  # the emergency notice
    assert 'src="data:image/png;base64,' in html and 'name="csrf_token"' in html
    assert 'id="map-svg"' in html and "<path d=\"M" in html             # the city's own boundaries, no tiles
    assert not re.search(r'(src|href)="(https?:)?//', html)             # nothing from another host
    assert requests.get(site.url + "/public/", allow_redirects=False, timeout=30).status_code == 308
    other = requests.get(site.url + "/public/no-such-page", timeout=30)
    assert other.status_code == 404 and "页面不存在" in other.text and "_dash-renderer" not in other.text
    css = requests.get(site.url + "/public/static/public.css", timeout=30)
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
    home = requests.get(site.url + "/login", timeout=30).text
    assert 'href="/public"' in home


def test_a_report_with_photo_and_point_gets_its_ticket_number_at_once(site):
    browser = requests.Session()
    before = case_total(site)
    resp = report(site, browser, "13900000001", photo=png())
    assert resp.status_code == 303, error_text(resp.text)
    number = int(re.search(r"/public/case/(\d+)\?new=1", resp.headers["Location"]).group(1))
    ticket = browser.get(site.url + resp.headers["Location"])
    assert ticket.status_code == 200 and f'id="ticket-number">{number}<' in ticket.text
    assert "139****0001" in ticket.text and "13900000001" not in ticket.text
    status, case = api(site, "GET", f"/events/{number}")
    assert (status, case["source"], case["reporter_phone"], case["category"]["code"]) == \
        (200, "citizen", "13900000001", CATEGORY)
    assert case["chain"][0]["code"].startswith("320402") and case_total(site) == before + 1
    assert len([p for p in site.photos.rglob("*.png")]) >= 1


def test_a_wrong_or_reused_check_or_a_missing_token_creates_nothing(site):
    browser = requests.Session()
    before = case_total(site)
    page = browser.get(site.url + "/public").text
    data = {**solve(page), "category": CATEGORY, "description": "路灯不亮", "phone": "13900000002",
            "lon": site.point[0], "lat": site.point[1]}
    right = data["check_answer"]
    data["check_answer"] = f"{(int(right) + 1) % 10000:04d}"
    wrong = browser.post(site.url + "/public/report", data=data, allow_redirects=False)
    assert wrong.status_code == 400 and "验证码不正确" in error_text(wrong.text)
    assert "路灯不亮" in wrong.text and "13900000002" in wrong.text  # the form keeps what was typed
    data["check_answer"] = right
    reused = browser.post(site.url + "/public/report", data=data, allow_redirects=False)
    assert reused.status_code == 400 and "已使用" in error_text(reused.text)
    no_csrf = requests.post(site.url + "/public/report", data={k: v for k, v in data.items() if k != "csrf_token"},
                            allow_redirects=False, timeout=30)
    assert no_csrf.status_code == 400 and "页面已过期" in no_csrf.text
    assert case_total(site) == before


def test_bad_input_is_a_chinese_message_and_nothing_is_made(site):
    browser = requests.Session()
    before = case_total(site)
    for extra, words in (({"phone": "123"}, "手机号码格式不正确"), ({"category": ""}, "请选择问题类别"),
                         ({"lon": "", "lat": ""}, "请在地图上点选"), ({"description": "垃圾\x01"}, "控制字符")):
        resp = report(site, browser, extra.pop("phone", "13900000003"), **extra)
        assert resp.status_code == 400 and words in error_text(resp.text), error_text(resp.text)
    resp = report(site, browser, "13900000003", photo=b"GIF89a" + b"\x00" * 64)
    assert resp.status_code == 400 and "不支持的文件类型" in error_text(resp.text)
    far = report(site, browser, "13900000003", lon="121.47", lat="31.23")
    assert far.status_code == 422 and "不在本市范围内" in error_text(far.text)
    assert case_total(site) == before


def test_hostile_input_is_refused_never_a_500(site):
    browser = requests.Session()
    for path in ("/public/case/99999999999999999999999", "/public/case/1/photo/-1", "/public/follow?number=%00",
                 "/public/check?x=%01", "/public/case/1"):
        assert browser.get(site.url + path, allow_redirects=False, timeout=30).status_code < 500, path
    before = case_total(site)
    for extra in ({"key": "k\x00" * 20}, {"lon": "nan", "lat": "inf"}, {"category": "\x00"}, {"address": "\x00"},
                  {"lon": "1e999", "lat": "-1e999"}, {"check_token": "\x00"}):
        resp = report(site, browser, "13900000008", **extra)
        assert resp.status_code in (303, 400, 422), (extra, resp.status_code)
        if resp.status_code == 303:  # the odd key is ignored, the point comes from the map: a case all the same
            assert "key" in extra
    page = browser.get(site.url + "/public/follow").text
    resp = browser.post(site.url + "/public/follow", data={"csrf_token": field(page, "csrf_token"),
                                                          "number": "1\x00", "phone": "\x00" * 30},
                        allow_redirects=False)
    assert resp.status_code == 404
    assert case_total(site) <= before + 1


def test_a_body_over_the_public_limit_is_refused_before_it_is_read(site):
    before = case_total(site)
    resp = requests.post(site.url + "/public/report", data=b"x" * (9 * 1024 * 1024),
                         headers={"Content-Type": "multipart/form-data; boundary=zz"}, timeout=60)
    assert resp.status_code == 413 and "请求体过大" in resp.json()["message"]
    # a browser's form sent without the page's script (which refuses a large photo first) gets a page back
    resp = requests.post(site.url + "/public/report", data=b"x" * (9 * 1024 * 1024),
                         headers={"Content-Type": "multipart/form-data; boundary=zz",
                                  "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, timeout=60)
    assert resp.status_code == 413 and resp.headers["Content-Type"].startswith("text/html")
    assert "请求体过大" in resp.text and 'href="/public"' in resp.text
    assert case_total(site) == before


def test_reports_per_phone_are_limited(site):
    browser = requests.Session()
    for _ in range(2):
        assert report(site, browser, "13900000009").status_code == 303
    before = case_total(site)
    third = report(site, browser, "139 0000 0009")
    assert third.status_code == 429 and "提交过于频繁" in error_text(third.text)
    assert case_total(site) == before


def follow(site, browser: requests.Session, number, phone: str):
    page = browser.get(site.url + "/public/follow").text
    return browser.post(site.url + "/public/follow", data={"csrf_token": field(page, "csrf_token"),
                                                          "number": str(number), "phone": phone},
                        allow_redirects=False)


def closed_through_the_api(site, number: int, reply: str) -> dict:
    """The officers' round, as their systems post it: accept, dispatch, sign, resolve (with a photo of the fix),
    verify, close."""
    from cases.photos import save_photo
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database

    status, case = api(site, "GET", f"/events/{number}")
    for action, extra in (("accept", {}), ("dispatch", {}), ("sign", {})):
        status, case = api(site, "POST", f"/events/{number}/actions", json={"action": action, "version": case["version"], **extra})
        assert status == 200, case
    db = Database(site.db_url)
    try:
        save_photo(CaseService(db, AreaDirectory(db)), number, png(colour=(20, 160, 90)), "处置后.png", "feedback",
                   "handler", None, root=site.photos)
    finally:
        db.dispose()
    for action, extra in (("resolve", {"note": "已清运"}), ("verify", {}), ("close", {"note": reply})):
        status, case = api(site, "POST", f"/events/{number}/actions", json={"action": action, "version": case["version"], **extra})
        assert status == 200, case
    return case


def test_follow_shows_the_reply_and_the_fix_then_the_reporter_rates_once(site):
    reporter = requests.Session()
    resp = report(site, reporter, "13900000004")
    number = int(re.search(r"/public/case/(\d+)", resp.headers["Location"]).group(1))
    closed_through_the_api(site, number, "垃圾已清运，联系人电话 13812340000")
    later = requests.Session()  # another day, another browser: the number and the phone
    assert later.get(site.url + f"/public/case/{number}", allow_redirects=False).status_code == 303
    resp = follow(site, later, number, "139-0000-0004")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/public/case/{number}")
    page = later.get(site.url + f"/public/case/{number}").text
    assert 'id="case-state">已办结<' in page and "垃圾已清运，联系人电话 138****0000" in page
    assert "13812340000" not in page and "13900000004" not in page
    photo = re.search(rf'src="(/public/case/{number}/photo/\d+)"', page).group(1)
    got = later.get(site.url + photo)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
    assert requests.get(site.url + photo, timeout=30).status_code == 404  # not for a browser that did not prove it
    csrf = field(page, "csrf_token")
    rated = later.post(site.url + f"/public/case/{number}/rate",
                       data={"csrf_token": csrf, "satisfaction": "satisfied", "note": "很及时"}, allow_redirects=False)
    assert rated.status_code == 303
    status, case = api(site, "GET", f"/events/{number}")
    assert case["callback"]["result"] == "satisfied" and case["callback"]["note"] == "很及时"
    again = later.post(site.url + f"/public/case/{number}/rate",
                       data={"csrf_token": csrf, "satisfaction": "unsatisfied"}, allow_redirects=False)
    assert again.status_code == 422 and "已评价" in error_text(again.text)
    assert api(site, "GET", f"/events/{number}")[1]["callback"]["result"] == "satisfied"


def test_figures_are_the_citys_last_month_without_personal_data(site):
    resp = requests.get(site.url + "/public/figures", timeout=60)
    assert resp.status_code == 200 and "城市管理成绩" in resp.text and 'id="district-ranking"' in resp.text
    assert "天宁区" in resp.text and not re.search(r"1[3-9]\d{9}", resp.text)


def test_a_wrong_number_and_a_wrong_phone_get_one_answer_and_probing_is_stopped(site):
    # last in this module: it spends the address's failed follow-ups
    reporter = requests.Session()
    number = int(re.search(r"/public/case/(\d+)", report(site, reporter, "13900000005").headers["Location"]).group(1))
    stranger = requests.Session()
    wrong_phone = follow(site, stranger, number, "13900000006")
    wrong_number = follow(site, stranger, number + 100000, "13900000005")
    assert wrong_phone.status_code == wrong_number.status_code == 404
    assert error_text(wrong_phone.text) == error_text(wrong_number.text) == "受理编号或手机号码不正确，请核对后重试"
    tries = [follow(site, stranger, number, "13900000007").status_code for _ in range(FOLLOW_LIMIT)]
    assert set(tries) == {404, 429} and tries.index(429) <= FOLLOW_LIMIT - 2  # stopped within the address's limit
    blocked = follow(site, stranger, number, "13900000005")  # even the right phone, from this address, for now
    assert blocked.status_code == 429 and "查询次数过多" in error_text(blocked.text)
