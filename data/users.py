"""People who sign in: create, check a password, turn a user into the Principal the services obey."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from data import files
from data.login_sessions import end_user_sessions
from data.models import Area, Unit, User
from data.tokens import ROLES, Principal, handler_scope_problem

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
MIN_PASSWORD_LENGTH = 8
# checked against when the username is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def principal_of(user: User) -> Principal:
    return Principal(kind="user", ident=f"user:{user.username}", role=user.role,
                     area_code=user.area_code, unit_code=user.unit_code)


def validate_user(session: Session, username: str, password: str, role: str, area_code: str,
                  unit_code: str | None) -> list[str]:
    """Every reason the user cannot be created, in Chinese; empty when it can."""
    problems = []
    if not USERNAME_RE.match(username or ""):
        problems.append("用户名应为 2–64 位字母、数字、下划线、点或连字符")
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        problems.append(f"用户名 {username} 已存在")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        problems.append(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
    if role not in ROLES:
        problems.append(f"未知角色 {role!r}，可用角色：{', '.join(ROLES)}")
    if session.get(Area, area_code) is None:
        problems.append(f"区域编码 {area_code} 不存在")
    if role == "unit_handler" and not unit_code:
        problems.append("处置单位角色 (unit_handler) 需要指定单位")
    unit = session.get(Unit, unit_code) if unit_code is not None else None
    if unit_code is not None and unit is None:
        problems.append(f"单位编码 {unit_code} 不存在")
    elif role == "unit_handler" and unit is not None:
        problem = handler_scope_problem(session, area_code, unit)
        if problem:
            problems.append(problem)
    return problems


def create_user(session: Session, username: str, password: str, role: str, area_code: str,
                unit_code: str | None = None, display_name: str = "") -> User:
    """Raises ValueError (all problems joined) and adds nothing when the input is bad."""
    problems = validate_user(session, username, password, role, area_code, unit_code)
    if problems:
        raise ValueError("；".join(problems))
    user = User(username=username, display_name=display_name or username,
                password_hash=generate_password_hash(password), role=role, area_code=area_code,
                unit_code=unit_code, active=True)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> None:
    """A new password; every session of the user ends (whoever knew the old one is signed out)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"用户 {username} 不存在")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
    user.password_hash = generate_password_hash(password)
    end_user_sessions(session, user.id, "password_reset")


def set_active(session: Session, username: str, active: bool) -> User:
    """Enable or disable a user; disabling ends every session of theirs at once."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"用户 {username} 不存在")
    user.active = active
    if not active:
        end_user_sessions(session, user.id, "user_disabled")
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (the same for an unknown name)."""
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None or not user.active:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def seed_demo_users(session: Session, users: list[dict] | None = None) -> int:
    """Adds the demo users that are missing (idempotent); returns how many were added.
    ``users``: entries as in data/catalog/demo_users.json (default: that file, data.files.demo_users())."""
    added = 0
    for u in users if users is not None else files.demo_users():
        if session.scalar(select(User.id).where(User.username == u["username"])) is None:
            create_user(session, u["username"], u["password"], u["role"], u["area"], u.get("unit"),
                        u.get("display_name", ""))
            added += 1
    return added
