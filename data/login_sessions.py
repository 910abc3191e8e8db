"""Sign-in sessions kept in the database: start one, resolve a cookie's id to it, end one or all of a
user's or token's, prune the old ones. The only place a session row is written.

The browser holds a random id (secrets.token_urlsafe(32)); the table holds its SHA-256, so a copy of
the table opens nothing. A session is live while it is not ended, not past `expires_at` (absolute)
and seen within `idle_seconds`; the first request that finds it otherwise ends it with the reason.
Whatever takes a person's or a token's right to sign in away (data/users.py set_password, set_active;
data/tokens.py revoke_token) calls end_user_sessions / end_token_sessions here, in its own transaction.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from data.models import ApiToken, LoginSession, User, utcnow

END_REASONS = ("logout", "password_reset", "user_disabled", "token_revoked", "expired", "idle")
# last_seen_at is written at most this often per session: a page open on a console makes a request
# every few seconds (Dash callbacks, 30 s ticks), and a write each time would put a write transaction
# (on SQLite: the one database-wide writer lock the intake needs) on every read. The idle limit is
# counted in tens of minutes, so a minute's lag in last_seen_at only ends a session up to a minute early.
TOUCH_EVERY = timedelta(minutes=1)
# ended rows are kept this long (who was signed out, when and why), then pruned with the expired ones
KEEP_ENDED = timedelta(days=1)


# every signed-in request runs this one statement: built once (building it cost a sixth of the loader)
_BY_HASH = (select(LoginSession, User, ApiToken)
            .outerjoin(User, User.id == LoginSession.user_id)
            .outerjoin(ApiToken, ApiToken.id == LoginSession.token_id)
            .where(LoginSession.id_hash == bindparam("id_hash")))


@dataclass(frozen=True)
class Lifetime:
    """How long a session lasts: `absolute` from sign-in whatever its use, `idle` since last seen."""

    absolute: timedelta
    idle: timedelta


@dataclass(frozen=True)
class Live:
    """A live session and who it signs in: `user` (a person) or `token` (a wall display)."""

    row: LoginSession
    user: User | None
    token: ApiToken | None


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start_session(session: Session, lifetime: Lifetime, *, user_id: int | None = None,
                  token_id: int | None = None, now: datetime | None = None) -> str:
    """A new session for a user or a token; returns the id for the cookie (never stored in clear).
    Prunes the rows expired or ended long ago on the way: sign-ins are few, rows per sign-in one."""
    if (user_id is None) == (token_id is None):
        raise ValueError("a session signs in either a user or a token")
    now = now or utcnow()
    prune_sessions(session, now)
    session_id = secrets.token_urlsafe(32)
    session.add(LoginSession(id_hash=digest(session_id), user_id=user_id, token_id=token_id, created_at=now,
                             last_seen_at=now, expires_at=now + lifetime.absolute,
                             idle_seconds=int(lifetime.idle.total_seconds())))
    session.flush()
    return session_id


def resolve_session(session: Session, session_id: str, now: datetime | None = None) -> Live | None:
    """The live session of this id with its user or token, or None. A session found past its expiry,
    idle too long, or whose user is disabled or token revoked, is ended here with that reason (so that
    a direct change in the database takes effect too). Touches last_seen_at at most once a minute."""
    if not session_id:
        return None
    now = now or utcnow()
    found = session.execute(_BY_HASH, {"id_hash": digest(session_id)}).first()
    if found is None:
        return None
    row, user, token = found
    if row.ended_at is not None:
        return None
    reason = None
    if now >= row.expires_at:
        reason = "expired"
    elif now - row.last_seen_at >= timedelta(seconds=row.idle_seconds):
        reason = "idle"
    elif row.user_id is not None and (user is None or not user.active):
        reason = "user_disabled"
    elif row.token_id is not None and (token is None or token.revoked_at is not None):
        reason = "token_revoked"
    if reason is not None:
        # through _end: a logout or reset that ended it meanwhile keeps its own reason
        _end(session, LoginSession.id_hash == row.id_hash, reason, now)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return Live(row, user, token)


def ended_among(session: Session, session_ids: list[str], now: datetime | None = None) -> set[str]:
    """Of these session ids (open live connections'), the ones no longer live: ended, past their
    expiry, or gone. Idleness is left to the next request: a wall that only listens is not idle."""
    if not session_ids:
        return set()
    now = now or utcnow()
    by_hash = {digest(i): i for i in session_ids}
    live = set(session.scalars(select(LoginSession.id_hash).where(
        LoginSession.id_hash.in_(list(by_hash)), LoginSession.ended_at.is_(None),
        LoginSession.expires_at > now)))
    return {i for h, i in by_hash.items() if h not in live}


def end_session(session: Session, session_id: str, reason: str = "logout", now: datetime | None = None) -> bool:
    """End one session (logout); True when a live one was ended."""
    return _end(session, LoginSession.id_hash == digest(session_id), reason, now) > 0


def end_user_sessions(session: Session, user_id: int, reason: str, now: datetime | None = None) -> int:
    """End every live session of a user (password reset, disabled); returns how many."""
    return _end(session, LoginSession.user_id == user_id, reason, now)


def end_token_sessions(session: Session, token_id: int, reason: str = "token_revoked",
                       now: datetime | None = None) -> int:
    """End every live session a token opened (a wall display's, when the token is revoked)."""
    return _end(session, LoginSession.token_id == token_id, reason, now)


def _end(session: Session, which, reason: str, now: datetime | None) -> int:
    if reason not in END_REASONS:
        raise ValueError(f"unknown end reason {reason!r}")
    result = session.execute(update(LoginSession).where(which, LoginSession.ended_at.is_(None))
                             .values(ended_at=now or utcnow(), end_reason=reason)
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0


def prune_sessions(session: Session, now: datetime | None = None) -> int:
    """Delete the sessions past their absolute expiry and those ended more than KEEP_ENDED ago.
    Idle ones go at their expiry at the latest: the table holds at most a lifetime's sign-ins."""
    now = now or utcnow()
    result = session.execute(delete(LoginSession).where(or_(
        LoginSession.expires_at < now,
        LoginSession.ended_at < now - KEEP_ENDED)).execution_options(synchronize_session=False))
    return result.rowcount or 0
