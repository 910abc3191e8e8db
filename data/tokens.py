"""API bearer tokens: issued once in plain text, stored as SHA-256, resolved to a principal."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.login_sessions import digest as _digest  # one SHA-256 of a secret, for sessions and tokens
from data.login_sessions import end_token_sessions
from data.models import ApiToken, Area, Unit, utcnow

from dispatch.access import DEVICE_ROLE, HOTLINE_ROLE, OPEN311_ROLE

ROLES = ("admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall")  # people's (users') roles
# machines have a token, never a sign-in: a device, an Open311 client, the 12345 system
TOKEN_ROLES = ROLES + (DEVICE_ROLE, OPEN311_ROLE, HOTLINE_ROLE)


@dataclass(frozen=True)
class Principal:
    """Who is asking: every request knows its role and area (and unit for handlers)."""

    kind: str  # "token" or "user"
    ident: str
    role: str
    area_code: str
    unit_code: str | None = None


def create_token(session: Session, role: str, area_code: str | None = None,
                 unit_code: str | None = None, label: str = "") -> str:
    """Issue a token; raises ValueError with a readable message for bad role, area or unit."""
    if role not in TOKEN_ROLES:
        raise ValueError(f"未知角色 {role!r}，可用角色：{', '.join(TOKEN_ROLES)}")
    if area_code is None:
        area_code = session.scalar(select(Area.code).where(Area.level == 1).order_by(Area.code))
        if area_code is None:
            raise ValueError("数据库中还没有城市网格，请先运行 seed-demo 或 import-grid")
    elif session.get(Area, area_code) is None:
        raise ValueError(f"区域编码 {area_code} 不存在")
    if role == "unit_handler" and not unit_code:
        raise ValueError("处置单位角色 (unit_handler) 需要 --unit")
    unit = session.get(Unit, unit_code) if unit_code is not None else None
    if unit_code is not None and unit is None:
        raise ValueError(f"单位编码 {unit_code} 不存在")
    if role == "unit_handler" and (problem := handler_scope_problem(session, area_code, unit)):
        raise ValueError(problem)
    token = "ucc_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_digest(token), role=role, area_code=area_code,
                         unit_code=unit_code, label=label))
    session.flush()
    return token


def handler_scope_problem(session: Session, area_code: str, unit: Unit) -> str | None:
    """A handler's area must contain their unit's jurisdiction: then what they read (area and unit)
    and what their unit's live room brings them are the same cases. The reason in Chinese, or None."""
    code, chain = unit.area_code, []
    while code is not None and code not in chain:
        chain.append(code)
        area = session.get(Area, code)
        code = area.parent_code if area is not None else None
    if area_code in chain:
        return None
    return f"单位 {unit.code} 的辖区不在区域 {area_code} 内（处置单位账号的区域须包含其单位的辖区）"


def revoke_token(session: Session, token_or_id: str | int) -> ApiToken:
    """Revoke a token given in clear or by its id; the sessions it opened (a wall display's) end at
    once. Raises ValueError for an unknown or already revoked token."""
    text = str(token_or_id).strip()
    if isinstance(token_or_id, int) or (text.isascii() and text.isdigit()):
        number = int(token_or_id)
        row = session.get(ApiToken, number) if 0 < number < 2**63 else None
    else:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(text)))
    if row is None:
        raise ValueError("令牌不存在")
    if row.revoked_at is not None:
        raise ValueError(f"令牌 {row.id} 已于 {row.revoked_at:%Y-%m-%d %H:%M} (UTC) 吊销")
    row.revoked_at = utcnow()
    end_token_sessions(session, row.id, "token_revoked")
    return row


def resolve_token(session: Session, token: str) -> Principal | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token),
                                                ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    return principal_of_token(row)


def principal_of_token(row: ApiToken) -> Principal:
    """Who a token speaks for (the API, a live connection, a wall display's session)."""
    return Principal(kind="token", ident=f"token:{row.id}", role=row.role,
                     area_code=row.area_code, unit_code=row.unit_code)


def revoked_among(session: Session, token_ids: list[int]) -> set[int]:
    """Of these token ids (open live connections'), the ones revoked or gone."""
    if not token_ids:
        return set()
    live = set(session.scalars(select(ApiToken.id).where(ApiToken.id.in_(token_ids),
                                                         ApiToken.revoked_at.is_(None))))
    return set(token_ids) - live


class PrincipalCache:
    """token → Principal for `ttl` seconds, so that an API request does not read api_tokens each time.

    Revocation (revoked_at set, or the row deleted) takes effect within `ttl` seconds in every process
    that has the token cached; changes of role, area or unit likewise. Unknown or revoked tokens are
    not cached: they are read every time. Keys are the SHA-256 of the token, as stored.
    `ttl=0` turns the cache off."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000, clock=None):
        import time

        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock or time.monotonic
        self._entries: dict[str, tuple[float, Principal]] = {}

    def resolve(self, db, token: str) -> Principal | None:
        """`db`: a data.db.Database. The cached principal, or the one read from the database now."""
        digest = _digest(token)
        now = self._clock()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with db.session() as s:
            principal = resolve_token(s, token)
        if principal is None:
            self._entries.pop(digest, None)
        elif self.ttl > 0:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # a flood of distinct valid tokens: start over
            self._entries[digest] = (now + self.ttl, principal)
        return principal

    def clear(self) -> None:
        self._entries.clear()
