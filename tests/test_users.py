"""data/users.py on SQLite and the real PostgreSQL: creating users (every refusal in Chinese, nothing
written), checking passwords, the principal a user becomes, and the idempotent demo users."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from data.files import demo_users
from data.models import User
from data.tokens import Principal
from data.users import authenticate, create_user, principal_of, seed_demo_users, set_password, validate_user
from tests.factories import small_world

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
UNIT = "U-320402-city_management"


@pytest.fixture
def db(empty_db):
    small_world(empty_db, T0)  # rect_city with its units
    return empty_db


def _count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(User))


def test_create_user_and_sign_in(db):
    with db.session() as s:
        user = create_user(s, "li.qiang", "street-pass-1", "duty_officer", "320402001", display_name="李强")
        assert user.id and user.active and user.display_name == "李强"
        assert user.password_hash != "street-pass-1" and "street-pass-1" not in user.password_hash
    with db.session() as s:
        found = authenticate(s, "li.qiang", "street-pass-1")
        assert found is not None and found.username == "li.qiang"
        assert authenticate(s, "  li.qiang ", "street-pass-1") is not None  # a stray space in the form
        assert principal_of(found) == Principal("user", "user:li.qiang", "duty_officer", "320402001", None)
        create_user(s, "handler1", "handler-pass", "unit_handler", "320402", UNIT)
        create_user(s, "city_handler", "handler-pass", "unit_handler", "320400", UNIT)  # a city account: fine
    with db.session() as s:
        handler = authenticate(s, "handler1", "handler-pass")
        assert principal_of(handler).unit_code == UNIT and principal_of(handler).role == "unit_handler"


@pytest.mark.parametrize("kwargs,message", [
    (dict(username="a"), "用户名应为 2–64 位字母、数字、下划线、点或连字符"),
    (dict(username="王 敏"), "用户名应为 2–64 位字母、数字、下划线、点或连字符"),
    (dict(username="x" * 65), "用户名应为 2–64 位字母、数字、下划线、点或连字符"),
    (dict(username="taken"), "用户名 taken 已存在"),
    (dict(password="short"), "密码至少 8 位"),
    (dict(password=""), "密码至少 8 位"),
    (dict(role="boss"), "未知角色 'boss'，可用角色：admin, duty_officer, leader, unit_handler, grid_member, wall"),
    (dict(area_code="999"), "区域编码 999 不存在"),
    (dict(role="unit_handler"), "处置单位角色 (unit_handler) 需要指定单位"),
    (dict(unit_code="U-nowhere"), "单位编码 U-nowhere 不存在"),
    (dict(role="unit_handler", area_code="320403", unit_code=UNIT),
     f"单位 {UNIT} 的辖区不在区域 320403 内（处置单位账号的区域须包含其单位的辖区）"),
    (dict(role="unit_handler", area_code="320402001", unit_code=UNIT),  # a district bureau, a street account
     f"单位 {UNIT} 的辖区不在区域 320402001 内（处置单位账号的区域须包含其单位的辖区）"),
])
def test_each_refusal_has_its_message_and_writes_nothing(db, kwargs, message):
    with db.session() as s:
        create_user(s, "taken", "taken-pass", "grid_member", "320402001001001")
    before = _count(db)
    args = dict(username="new_user", password="good-pass-1", role="leader", area_code="320402", unit_code=None)
    args.update(kwargs)
    with db.session() as s:
        assert validate_user(s, **args) == [message]
        with pytest.raises(ValueError) as exc:
            create_user(s, **args)
    assert str(exc.value) == message
    assert _count(db) == before


def test_every_problem_is_reported_at_once(db):
    with db.session() as s:
        with pytest.raises(ValueError) as exc:
            create_user(s, "a", "short", "unit_handler", "999")
    assert str(exc.value) == ("用户名应为 2–64 位字母、数字、下划线、点或连字符；密码至少 8 位；区域编码 999 不存在；"
                              "处置单位角色 (unit_handler) 需要指定单位")
    assert _count(db) == 0


def test_authenticate_refuses_wrong_password_unknown_name_and_inactive_users(db):
    with db.session() as s:
        create_user(s, "grid7", "grid-pass-7", "grid_member", "320402001001001")
        gone = create_user(s, "gone", "gone-pass-1", "leader", "320400")
        gone.active = False
    with db.session() as s:
        assert authenticate(s, "grid7", "grid-pass-8") is None
        assert authenticate(s, "grid7", "") is None
        assert authenticate(s, "GRID7", "grid-pass-7") is None  # names are exact
        assert authenticate(s, "nobody", "grid-pass-7") is None
        assert authenticate(s, "", "") is None
        assert authenticate(s, "gone", "gone-pass-1") is None


def test_set_password(db):
    with db.session() as s:
        create_user(s, "duty2", "first-pass", "duty_officer", "320400")
    with db.session() as s:
        with pytest.raises(ValueError, match="密码至少 8 位"):
            set_password(s, "duty2", "short")
        with pytest.raises(ValueError, match="用户 ghost 不存在"):
            set_password(s, "ghost", "long-enough")
        set_password(s, "duty2", "second-pass")
    with db.session() as s:
        assert authenticate(s, "duty2", "first-pass") is None
        assert authenticate(s, "duty2", "second-pass") is not None


def test_seed_demo_users_is_idempotent(db):
    users = [
        {"username": "city_duty", "display_name": "值班员", "role": "duty_officer", "area": "320400", "unit": None,
         "password": "duty-pass-1"},
        {"username": "bureau", "display_name": "处置员", "role": "unit_handler", "area": "320402", "unit": UNIT,
         "password": "unit-pass-1"},
        {"username": "screen", "role": "wall", "area": "320400", "password": "wall-pass-1"},
    ]
    with db.session() as s:
        assert seed_demo_users(s, users) == 3
    with db.session() as s:
        assert seed_demo_users(s, users) == 0
        set_password(s, "city_duty", "changed-pass")  # an operator changed it: seeding again keeps it
    with db.session() as s:
        assert seed_demo_users(s, users) == 0
        assert authenticate(s, "city_duty", "changed-pass") is not None
        assert authenticate(s, "screen", "wall-pass-1").display_name == "screen"
    assert _count(db) == 3


def test_the_shipped_demo_users_sign_in_with_their_documented_passwords(demo_app):
    db = demo_app.extensions["ucc"].db
    demo = demo_users()
    assert {u["role"] for u in demo} == {"admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall"}
    with db.session() as s:
        assert seed_demo_users(s) == 0  # seed_demo wrote them already
        for u in demo:
            user = authenticate(s, u["username"], u["password"])
            assert user is not None, u["username"]
            assert (user.role, user.area_code, user.unit_code) == (u["role"], u["area"], u["unit"])
