"""CaseService.preview on SQLite and the real PostgreSQL: intake's own validation, location, scope, route
and deadline without writing anything — the console's hotline form shows it before submitting."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from cases.service import ServiceError
from data.models import Case, CaseEvent, CaseHistory
from data.tokens import Principal
from tests.factories import small_world

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
OFFICER = Principal("user", "duty", "duty_officer", "320400")
STREET = Principal("user", "baizhuang", "duty_officer", "320402001")
GOOD = {"category": "020102", "lon": 119.905, "lat": 31.705, "source": "hotline", "description": "路边垃圾堆积",
        "reporter_phone": "13912345678"}


@pytest.fixture
def world(empty_db):
    return small_world(empty_db, T0)


def _counts(service) -> tuple[int, int, int]:
    with service.db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Case, CaseHistory, CaseEvent))


def test_preview_says_what_intake_then_does_and_writes_nothing(world):
    service, _ = world
    before = _counts(service)
    p = service.preview(GOOD, OFFICER)
    assert _counts(service) == before
    assert p["unit"]["code"] and p["unit"]["name"] and p["route_reason"].startswith("「暴露垃圾」")
    assert p["deadline"].startswith("2026-11-23T15:30")  # 10:00 + 4 working hours over the lunch break and p["category"]["time_limit"] == "4 工作时"
    assert [a["code"] for a in p["chain"]][0] == "320402001001001" and p["merge_into"] is None
    case, created = service.intake(GOOD, OFFICER)
    assert created and case["unit"] == p["unit"] and case["deadline"] == p["deadline"]
    assert case["route_reason"] == p["route_reason"] and case["chain"] == p["chain"]
    # the same report again would be merged into the open case: the preview says so, still writing nothing
    before = _counts(service)
    assert service.preview({**GOOD, "lon": 119.9051}, OFFICER)["merge_into"] == case["id"]
    assert _counts(service) == before


def test_emergency_preview_names_the_lead_and_the_assisting_units(world):
    service, _ = world
    p = service.preview({**GOOD, "category": "040104", "severity": 3}, OFFICER)
    assert p["handling_level"] == 1 and p["time_unit"] == "minutes" and len(p["units"]) >= 2
    assert p["deadline"].startswith("2026-11-23T11:00")  # 60 calendar minutes


@pytest.mark.parametrize("change,status,words", [
    ({"category": None}, 400, "事件类别必填"),
    ({"lon": "东经"}, 400, "经度须为数字"),
    ({"lat": None}, 400, "纬度必填"),
    ({"category": "999999"}, 422, "未知的事件类别编码"),
    ({"lon": 121.5, "lat": 31.2}, 422, ""),                       # outside the city
    ({"lon": 200.0}, 400, "经纬度超出范围"),
    ({"reporter_phone": "12345"}, 400, "联系电话格式不正确"),
    ({"category": "040104"}, 400, "应急事件须填写事件等级"),
    ({"severity": 2}, 400, "只有应急事件才有事件等级"),
    ({"description": "长" * 2001}, 400, "问题描述过长"),
    ({"source": "fax"}, 400, "来源渠道须为"),
])
def test_bad_input_is_refused_as_intake_refuses_it(world, change, status, words):
    service, _ = world
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    before = _counts(service)
    with pytest.raises(ServiceError) as previewed:
        service.preview(body, OFFICER)
    with pytest.raises(ServiceError) as taken:
        service.intake(body, OFFICER)
    assert (previewed.value.status, previewed.value.message) == (taken.value.status, taken.value.message)
    assert previewed.value.status == status and words in previewed.value.message
    assert _counts(service) == before


def test_scope_and_roles_as_intake(world):
    service, _ = world
    with pytest.raises(ServiceError) as exc:
        service.preview({**GOOD, "lon": 119.905, "lat": 31.765}, STREET)  # another street
    assert exc.value.status == 403 and exc.value.message == "上报位置不在您的辖区内"
    assert service.preview(GOOD, STREET)["chain"][2]["code"] == "320402001"
    for role in ("wall", "leader"):  # roles that do not report, as intake says
        with pytest.raises(ServiceError) as exc:
            service.preview(GOOD, Principal("token", "token:1", role, "320400"))
        assert exc.value.status == 403
    with pytest.raises(ServiceError) as exc:
        service.preview(["not", "a", "dict"], OFFICER)
    assert exc.value.status == 400


def test_preview_in_the_future_is_refused(world):
    service, clock = world
    later = (clock.now + timedelta(hours=1)).isoformat()
    with pytest.raises(ServiceError) as exc:
        service.preview({**GOOD, "occurred_at": later}, OFFICER)
    assert exc.value.status == 400 and "发生时间" in exc.value.message
