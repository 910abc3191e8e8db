"""Who is asking in this request: the signed-in person or wall display (auth/ signs them in)."""
from __future__ import annotations

from flask import has_request_context
from flask_login import current_user

from data.tokens import Principal


def current_principal() -> Principal | None:
    """Who is asking in this request (page, callback, live connect), or None when nobody signed in."""
    if not has_request_context():
        return None
    user = current_user
    return user.principal if user and user.is_authenticated else None


def current_display_name() -> str:
    user = current_user if has_request_context() else None
    return user.display_name if user and user.is_authenticated else ""
