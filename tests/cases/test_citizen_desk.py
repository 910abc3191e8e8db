"""The citizens' desk (cases/citizen.py) and the page's guards (public/check.py, public/throttle.py): a report goes
through the real intake as a `citizen` case, a refused form leaves nothing; a case is followed only with its number
and its phone (one answer for either wrong); the reporter rates once, after closing, through the callback; what the
reporter is shown is masked; the human check refuses wrong, expired, forged and reused answers; the limits hold."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select

from cases.citizen import CITIZEN, CitizenDesk, Report
from cases.photos import save_photo
from data import files
from data.models import Case, CaseHistory
from data.tokens import Principal
from dispatch.errors import ServiceError
from public.check import CheckFailed, HumanCheck
from public.throttle import PublicThrottle
from tests.factories import small_world

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(timezone.utc)
POINT = (119.905, 31.705)                      # grid 320402001001001 of rect_city
GARBAGE = "020102"                             # 暴露垃圾, a public category
LEAD = "U-320402-city_management"
OFFICER = Principal("user", "officer", "duty_officer", "320400")
HANDLER = Principal("user", "handler", "unit_handler", "320402", LEAD)
GRID_MEMBER = Principal("user", "grid1", "grid_member", "320402001001001")
PHONE = "13912345678"


def png(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def world(empty_db, tmp_path, monkeypatch):
    monkeypatch.setenv("UCC_PHOTO_DIR", str(tmp_path / "photos"))
    service, clock = small_world(empty_db, T0)
    return CitizenDesk(service, lambda: files.public_services(service.catalog())), service, clock


def report(desk, **kw) -> dict:
    values = dict(category=GARBAGE, description="小区门口垃圾堆放三天", phone=PHONE, lon=POINT[0], lat=POINT[1])
    values.update(kw)
    return desk.report(Report(**values))


def case_count(service) -> int:
    with service.db.session() as s:
        return s.scalar(select(func.count()).select_from(Case))


def move(service, clock, case_id: int, *steps) -> dict:
    case = service.get(case_id, None)
    for who, action, kw in steps:
        clock.now += timedelta(minutes=20)
        case = service.act(case_id, who, action, case["version"], **kw)
    return case


def close(service, clock, case_id: int, note: str = "已清运完毕，现场已恢复整洁") -> dict:
    return move(service, clock, case_id, (OFFICER, "accept", {}), (OFFICER, "dispatch", {}), (HANDLER, "sign", {}),
                (HANDLER, "resolve", {"note": "已清运"}), (GRID_MEMBER, "verify", {}), (OFFICER, "close", {"note": note}))


def test_a_report_is_a_citizen_case_through_the_intake_with_its_photo(world):
    desk, service, _clock = world
    done = report(desk, photo=png(), photo_name="现场.png", key="form-0001")
    case = service.get(done["id"], OFFICER)
    assert (case["source"], case["category"]["code"], case["reporter_phone"], case["state"]) == \
        ("citizen", GARBAGE, PHONE, "reported")
    assert case["chain"][0]["code"] == "320402001001001" and case["unit"]["code"] == LEAD
    assert case["history"][0]["actor"] == CITIZEN.ident
    assert done["photo_saved"] and len(desk.view(done["id"])["report_photos"]) == 1
    # the same form sent again (its key) answers with the same case; a key that is not the form's is ignored
    assert report(desk, key="form-0001")["id"] == done["id"] and case_count(service) == 1
    assert report(desk, key="bad\x00key", lon=119.975, lat=31.775)["id"] != done["id"]


@pytest.mark.parametrize("change, code", [
    ({"category": "999999"}, "category_required"),
    ({"category": "010101x"}, "category_required"),
    ({"description": "   "}, "required"),
    ({"description": "x" * 1001}, "too_long"),
    ({"description": "垃圾\x00"}, "bad_text"),
    ({"phone": ""}, "phone_required"),
    ({"phone": "12345"}, "bad_phone"),
    ({"lon": None, "lat": None}, "point_required"),
    ({"lon": None, "lat": None, "address": "火星路一号"}, "point_required"),
    ({"photo": b"GIF89a not a photo", "photo_name": "a.gif"}, "bad_photo_type"),
    ({"photo": png()[:60], "photo_name": "cut.png"}, "bad_photo"),
])
def test_a_refused_report_leaves_nothing(world, change, code):
    desk, service, _clock = world
    with pytest.raises(ServiceError) as info:
        report(desk, **change)
    assert info.value.status == 400 and info.value.code == code and info.value.message
    assert case_count(service) == 0


def test_an_emergency_category_is_not_the_publics(world):
    desk, service, _clock = world
    emergency = next(c.code for c in service.catalog().values() if c.is_emergency)
    with pytest.raises(ServiceError) as info:
        report(desk, category=emergency)
    assert info.value.code == "category_required" and case_count(service) == 0


def test_without_a_point_the_address_in_words_places_the_case(world):
    desk, service, _clock = world
    done = report(desk, lon=None, lat=None, address="测试市-1-2-1 小区东门")
    case = service.get(done["id"], OFFICER)
    assert case["chain"][1]["code"] == "320402002001"  # grid → city: the community the words name
    assert case["description"].endswith("地点：测试市-1-2-1 小区东门")


def test_follow_needs_the_number_and_its_phone_with_one_answer_for_either_wrong(world):
    desk, _service, _clock = world
    mine = report(desk)["id"]
    other = report(desk, phone="13700001111", lon=119.975, lat=31.775)["id"]
    assert desk.follow(str(mine), PHONE) == mine
    assert desk.follow(f" {mine} ", "139 1234 5678") == mine  # as people type them
    assert desk.follow(mine, "13912345679") is None            # wrong phone
    assert desk.follow(other, PHONE) is None                   # someone else's number
    assert desk.follow(999999, PHONE) is None                  # no such number
    for junk in ("", "abc", "-1", "0", "9" * 30, None):
        assert desk.follow(junk, PHONE) is None
    assert desk.follow(mine, "") is None and desk.follow(mine, "5678") is None


def test_what_the_reporter_sees_is_masked_and_public(world):
    desk, service, clock = world
    done = report(desk, description="井盖缺失，联系人 13800001234，身份证 320402199001011234")
    case_id = done["id"]
    view = desk.view(case_id)
    assert "13800001234" not in view["description"] and "138****1234" in view["description"]
    assert "320402199001011234" not in view["description"]
    assert view["phone"] == "139****5678"
    assert view["state_text"] == "已受理，等待审核立案" and view["deadline"] is not None
    assert [p["done"] for p in view["progress"]] == [True, False, False, False]
    assert not view["may_rate"] and view["reply"] is None
    move(service, clock, case_id, (OFFICER, "accept", {}), (OFFICER, "dispatch", {}), (HANDLER, "sign", {}))
    save_photo(service, case_id, png((50, 40)), "after.png", "feedback", HANDLER.ident, HANDLER)
    move(service, clock, case_id, (HANDLER, "resolve", {"note": "已更换井盖"}), (GRID_MEMBER, "verify", {}),
         (OFFICER, "close", {"note": "井盖已更换，如有问题请致电 13900002222"}))
    view = desk.view(case_id)
    assert view["state"] == "closed" and view["state_text"] == "已办结" and view["deadline"] is None
    assert all(p["done"] for p in view["progress"])
    assert view["reply"]["label"] == "办结答复" and view["reply"]["text"] == "井盖已更换，如有问题请致电 139****2222"
    assert [s["label"] for s in view["steps"]] == ["问题已受理", "审核通过，已立案", "已派遣处置单位", "处置单位已接单",
                                                  "处置单位已处理", "现场核查通过", "已办结"]
    assert len(view["fix_photos"]) == 1 and desk.photo(case_id, view["fix_photos"][0]["id"]) is not None
    assert view["may_rate"]


def test_the_reporter_rates_once_after_closing_through_the_callback(world):
    desk, service, clock = world
    case_id = report(desk)["id"]
    with pytest.raises(ServiceError) as info:
        desk.rate(case_id, "satisfied")
    assert (info.value.status, info.value.code) == (422, "not_closed")
    close(service, clock, case_id)
    with pytest.raises(ServiceError) as info:
        desk.rate(case_id, "还行")
    assert info.value.status == 400
    case = desk.rate(case_id, "basically_satisfied", "处理及时，但现场还有一点残留")
    assert case["callback"]["result"] == "basically_satisfied" and case["callback"]["note"].startswith("处理及时")
    with service.db.session() as s:
        last = s.scalars(select(CaseHistory).where(CaseHistory.case_id == case_id).order_by(CaseHistory.id.desc())).first()
        assert (last.action, last.actor) == ("callback", CITIZEN.ident)
    with pytest.raises(ServiceError) as info:
        desk.rate(case_id, "satisfied")
    assert (info.value.status, info.value.code) == (422, "already_rated")
    assert desk.view(case_id)["callback"]["result_label"] == "基本满意" and not desk.view(case_id)["may_rate"]


def test_a_hotline_case_is_called_back_by_the_hotline_not_rated_here(world):
    desk, service, clock = world
    case = service.intake({"category": GARBAGE, "lon": POINT[0], "lat": POINT[1], "description": "热线来电",
                           "source": "hotline", "reporter_phone": PHONE}, OFFICER)[0]
    close(service, clock, case["id"])
    assert desk.follow(case["id"], PHONE) == case["id"]  # followed, yes
    with pytest.raises(ServiceError) as info:
        desk.rate(case["id"], "satisfied")
    assert (info.value.status, info.value.code) == (422, "not_citizen_case")
    assert service.get(case["id"], None)["callback"] is None


# ---- the human check -------------------------------------------------------------------------------

def single_use():
    used = set()

    def first_use(nonce):
        if nonce in used:
            return False
        used.add(nonce)
        return True

    return first_use


def test_the_human_check_takes_its_digits_once():
    check = HumanCheck("app-secret", single_use())
    token = check.new()
    answer = check.answer_of(check.nonce_of(token))
    assert len(answer) == 4 and answer.isdigit() and answer not in token
    check.verify(token, answer)
    with pytest.raises(CheckFailed, match="已使用"):
        check.verify(token, answer)


def test_a_wrong_answer_uses_the_check_up():
    check = HumanCheck("app-secret", single_use())
    token = check.new()
    answer = check.answer_of(check.nonce_of(token))
    wrong = f"{(int(answer) + 1) % 10000:04d}"
    with pytest.raises(CheckFailed, match="不正确"):
        check.verify(token, wrong)
    with pytest.raises(CheckFailed, match="已使用"):
        check.verify(token, answer)


def test_expired_and_forged_checks_are_refused(monkeypatch):
    import itsdangerous.timed as timed

    check = HumanCheck("app-secret", single_use())
    real = timed.time.time
    monkeypatch.setattr(timed, "time", SimpleNamespace(time=lambda: real() - 3600))
    old = check.new()  # made an hour ago
    monkeypatch.setattr(timed, "time", SimpleNamespace(time=real))
    with pytest.raises(CheckFailed, match="过期"):
        check.verify(old, check.answer_of(check.nonce_of(old, max_age=7200)))
    forger = HumanCheck("another-secret", single_use())
    forged = forger.new()
    with pytest.raises(CheckFailed, match="无效"):
        check.verify(forged, forger.answer_of(forger.nonce_of(forged)))
    with pytest.raises(CheckFailed, match="无效"):
        check.verify("not-a-token", "1234")


def test_the_check_image_is_a_png_drawn_alike_each_time():
    check = HumanCheck("app-secret", single_use())
    token = check.new()
    image = check.image(token)
    assert image == check.image(token)
    with Image.open(io.BytesIO(image)) as img:
        assert img.format == "PNG" and img.size == (176, 64)


def test_full_width_digits_count():
    check = HumanCheck("app-secret", single_use())
    token = check.new()
    answer = check.answer_of(check.nonce_of(token))
    check.verify(token, answer.translate(str.maketrans("0123456789", "０１２３４５６７８９")))


# ---- the limits ------------------------------------------------------------------------------------

def test_reports_are_limited_per_address_and_per_phone():
    throttle = PublicThrottle(None, "3 per hour", "2 per hour;5 per day", "10 per 10 minutes", "10 per hour", 600)
    assert throttle.report_wait("10.0.0.1", PHONE) == 0
    for _ in range(2):
        throttle.report_tried("10.0.0.1")
        throttle.report_accepted(PHONE)
    assert throttle.report_wait("10.0.0.2", PHONE) > 0          # the phone, from anywhere
    assert throttle.report_wait("10.0.0.1", "13700001111") == 0  # the address has one try left
    throttle.report_tried("10.0.0.1")
    wait = throttle.report_wait("10.0.0.1", "13700001111")
    assert 0 < wait <= 3600
    assert throttle.report_wait("10.0.0.3", "13700001111") == 0


def test_failed_follow_ups_are_limited_per_address_and_per_number():
    throttle = PublicThrottle(None, "20 per hour", "5 per hour", "3 per 10 minutes", "4 per hour", 600)
    for _ in range(3):
        assert throttle.follow_wait("10.0.0.1", "17") == 0
        throttle.follow_failed("10.0.0.1", "17")
    assert throttle.follow_wait("10.0.0.1", "18") > 0   # this address, any number
    assert throttle.follow_wait("10.0.0.2", "17") == 0
    throttle.follow_failed("10.0.0.2", "17")
    assert throttle.follow_wait("10.0.0.3", "17") > 0   # this number, from any address
    assert throttle.follow_wait("10.0.0.3", "19") == 0


def test_a_nonce_is_used_once():
    throttle = PublicThrottle(None, "20 per hour", "5 per hour", "3 per 10 minutes", "4 per hour", 600)
    assert throttle.first_use("abc") and not throttle.first_use("abc") and throttle.first_use("abd")


def test_with_redis_every_process_counts_together():
    import uuid

    import redis

    from tests.conftest import IN_CI, REDIS_TEST_URL

    url = REDIS_TEST_URL
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - Redis is mandatory in CI only
        if IN_CI:
            pytest.fail(f"Redis at {url} not reachable: {exc}")
        pytest.skip(f"Redis at {url} not reachable: {exc}")
    one, two = (PublicThrottle(url, "20 per hour", "1 per hour", "3 per 10 minutes", "4 per hour", 600)
                for _ in range(2))
    nonce, phone = uuid.uuid4().hex, "139" + uuid.uuid4().hex[:8]  # this run's own keys
    assert one.first_use(nonce) and not two.first_use(nonce)
    one.report_accepted(phone)
    assert two.report_wait("10.0.0.9", phone) > 0
