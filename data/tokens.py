"""API bearer tokens: issued once in plain text, stored as SHA-256, resolved to a principal."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import ApiToken, Area, Unit

ROLES = ("admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall")


@dataclass(frozen=True)
class Principal:
    """Who is asking: every request knows its role and area (and unit for handlers)."""

    kind: str  # "token" or "user"
    ident: str
    role: str
    area_code: str
    unit_code: str | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, role: str, area_code: str | None = None,
                 unit_code: str | None = None, label: str = "") -> str:
    """Issue a token; raises ValueError with a readable message for bad role, area or unit."""
    if role not in ROLES:
        raise ValueError(f"未知角色 {role!r}，可用角色：{', '.join(ROLES)}")
    if area_code is None:
        area_code = session.scalar(select(Area.code).where(Area.level == 1).order_by(Area.code))
        if area_code is None:
            raise ValueError("数据库中还没有城市网格，请先运行 seed-demo 或 import-grid")
    elif session.get(Area, area_code) is None:
        raise ValueError(f"区域编码 {area_code} 不存在")
    if role == "unit_handler" and not unit_code:
        raise ValueError("处置单位角色 (unit_handler) 需要 --unit")
    if unit_code is not None and session.get(Unit, unit_code) is None:
        raise ValueError(f"单位编码 {unit_code} 不存在")
    token = "ucc_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_digest(token), role=role, area_code=area_code,
                         unit_code=unit_code, label=label))
    session.flush()
    return token


def resolve_token(session: Session, token: str) -> Principal | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token),
                                                ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    return Principal(kind="token", ident=f"token:{row.id}", role=row.role,
                     area_code=row.area_code, unit_code=row.unit_code)
