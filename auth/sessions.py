"""The signed-in user of a request, resolved through its session row (data/login_sessions.py) on every
request, so that a session ended in the database (logout, password reset, disabled user, revoked wall
token, expiry, idleness) signs that browser out at its next request, in every process."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from flask_login import UserMixin

from data.login_sessions import Lifetime, resolve_session
from data.models import utcnow
from data.tokens import Principal, principal_of_token
from data.users import principal_of
from dispatch.lifecycle import ROLE_LABELS


class SignedIn(UserMixin):
    """The Flask-Login user: a person or a wall display's token. `id` is the session's random id
    (what Flask-Login keeps in the session and remember cookies), never a user's or token's number."""

    def __init__(self, session_id: str, principal: Principal, display_name: str):
        self.id = session_id
        self.principal = principal
        self.display_name = display_name

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.principal.role, self.principal.role)


@dataclass
class SessionRules:
    """How long sessions last (config.Settings) and the clock they are measured by (tests move it)."""

    person: Lifetime
    wall: Lifetime
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def from_settings(cls, settings) -> "SessionRules":
        return cls(person=Lifetime(absolute=timedelta(hours=settings.session_hours),
                                   idle=timedelta(minutes=settings.session_idle_minutes)),
                   wall=Lifetime(absolute=timedelta(days=settings.wall_session_days),
                                 idle=timedelta(hours=settings.wall_idle_hours)))


def load_signed_in(db, rules: SessionRules, session_id: str) -> SignedIn | None:
    """The user of a live session (one read; a write at most once a minute, or when it ends now)."""
    with db.session() as s:
        live = resolve_session(s, session_id, rules.clock())
        if live is None:
            return None
        if live.user is not None:
            return SignedIn(session_id, principal_of(live.user), live.user.display_name)
        token = live.token
        return SignedIn(session_id, principal_of_token(token), token.label or "大屏")
