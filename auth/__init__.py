"""Sign-in for the pages: Flask-Login sessions, CSRF, the page guard and the principal of a request.

People sign in at /login with a password; a wall display opens /wall?token=T with a `wall` token
and stays signed in (a remember cookie naming the token, so revoking the token signs it out).
Every page request, Dash callback and live connection then carries a Principal, and the services
decide what it may see and do (cases/service.py, dispatch/lifecycle.py); the page table in
dispatch/access.py only decides which screens a role may open.

CSRF: forms carry Flask-WTF's token; Dash's renderer copies the `_csrf_token` cookie into the
X-CSRFToken header of its callback requests, which CSRFProtect checks. The API is exempt: it is
authenticated by bearer tokens, never by cookies.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

from flask import (Flask, current_app, g, has_request_context, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import select

from data.models import ApiToken, User
from data.tokens import Principal, resolve_token
from data.users import authenticate, principal_of
from dispatch import access
from dispatch.lifecycle import ROLE_LABELS
from web.principal import current_principal
from web.outage import redis_outage
from web.services import services

CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads
LOGIN_LIMIT = parse_limit("10/minute")  # failed sign-ins per address and name
# paths anyone may fetch: the sign-in page itself, static files, the API (bearer tokens) and
# the live endpoint (it authenticates on connect)
OPEN_PATHS = ("/login", "/logout", "/_favicon.ico", "/favicon.ico", "/healthz")  # exactly these
# /photos/ authenticates itself, by session or bearer token (api/photos.py)
OPEN_PREFIXES = ("/assets/", "/_dash-component-suites/", "/api/", "/socket.io", "/photos/")

csrf = CSRFProtect()


class SignedIn(UserMixin):
    """The Flask-Login user: a person (id "u:N") or a wall display's token (id "t:N")."""

    def __init__(self, session_id: str, principal: Principal, display_name: str):
        self.id = session_id
        self.principal = principal
        self.display_name = display_name

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.principal.role, self.principal.role)


def _load(session_id: str) -> SignedIn | None:
    kind, _, raw = (session_id or "").partition(":")
    if not raw.isdigit():
        return None
    with services().db.session() as s:
        if kind == "u":
            user = s.get(User, int(raw))
            if user is None or not user.active:
                return None
            return SignedIn(session_id, principal_of(user), user.display_name)
        if kind == "t":
            row = s.scalar(select(ApiToken).where(ApiToken.id == int(raw), ApiToken.revoked_at.is_(None)))
            if row is None:
                return None
            return SignedIn(session_id, Principal(kind="token", ident=f"token:{row.id}", role=row.role,
                                                  area_code=row.area_code, unit_code=row.unit_code),
                            row.label or "大屏")
    return None


def _safe_next(target: str | None, role: str) -> str:
    # Only a path on this site, and one the role may open; otherwise the role's home page.
    if target:
        parsed = urlparse(target)
        if not parsed.scheme and not parsed.netloc and target.startswith("/") and not target.startswith("//"):
            if access.can_open(role, parsed.path):
                return target
    return access.HOME_OF_ROLE.get(role, "/")


def _wants_json() -> bool:
    return request.path.startswith("/_dash") or request.path.endswith(".json") or request.is_json


def _sign_in_wall_token() -> None:
    """/wall?token=T signs the display in with its wall token (any other role's token is refused)."""
    token = request.args.get("token")
    if not token or request.path.rstrip("/") != "/wall":
        return
    with services().db.session() as s:
        principal = resolve_token(s, token.strip())
    if principal is None:
        g.wall_token_error = "大屏令牌无效或已吊销"
        return
    if principal.role != "wall":
        g.wall_token_error = f"此令牌的角色是「{ROLE_LABELS.get(principal.role, principal.role)}」，大屏需要 wall 令牌"
        return
    session_id = f"t:{principal.ident.split(':', 1)[1]}"
    if not (current_user.is_authenticated and current_user.get_id() == session_id):
        login_user(SignedIn(session_id, principal, "大屏"), remember=True, duration=timedelta(days=365))


def _guard():
    path = request.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    _sign_in_wall_token()
    if not current_user.is_authenticated:
        if getattr(g, "wall_token_error", None) and path.rstrip("/") == "/wall":
            return render_template("login.html", error=g.wall_token_error, next=None, username=""), 401
        if _wants_json():
            return jsonify(error="unauthorized", message="登录已失效，请重新登录"), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    page = access.page_for(path)
    if page is not None and not access.can_open(current_user.principal.role, path):
        return render_template("forbidden.html", page=page, user=current_user,
                               pages=access.pages_of(current_user.principal.role)), 403
    return None


def init_auth(server: Flask, exempt_from_csrf=()) -> None:
    """Sign-in, CSRF and the page guard; `exempt_from_csrf`: blueprints authenticated by bearer tokens."""
    settings = services(server).settings
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # a wall keeps one page open for weeks: the token lives as long as the session does
        WTF_CSRF_TIME_LIMIT=None,
    )
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.user_loader(_load)
    manager.init_app(server)
    # The guard before the CSRF check: a request nobody signed in for (an expired session's Dash
    # callback) is told "sign in again" (401 / redirect), not "CSRF failed".
    server.before_request(_guard)
    csrf.init_app(server)
    for blueprint in exempt_from_csrf:  # the API: bearer tokens, never cookies
        csrf.exempt(blueprint)
    server.extensions["ucc_login_limiter"] = (
        FixedWindowRateLimiter(storage_from_string(settings.redis_url or "memory://")))
    server.after_request(_csrf_cookie)
    server.register_error_handler(CSRFError, _csrf_failed)
    from auth.views import bp

    server.register_blueprint(bp)
    live = server.extensions.get("ucc_live")
    if live is not None:
        live.add_principal_resolver(lambda _auth: current_principal())


def _csrf_cookie(response):
    # Dash's renderer sends this cookie back as the X-CSRFToken header of every callback request.
    # Path first: the API and static files must not pay for loading the user.
    if not request.path.startswith(("/api/", "/assets/", "/_dash-component-suites/")) and current_user.is_authenticated:
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax", httponly=False,
                            secure=request.is_secure)
    return response


def _csrf_failed(err: CSRFError):
    message = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
    if _wants_json():
        return jsonify(error="csrf_failed", message=message), 400
    return render_template("login.html", error=message, next=request.args.get("next"), username=""), 400


def login_allowed(username: str) -> bool:
    return _login_limiter("test", request.remote_addr or "?", username.lower())


def note_failed_login(username: str) -> None:
    _login_limiter("hit", request.remote_addr or "?", username.lower())


def _login_limiter(method: str, *keys: str) -> bool:
    """The throttle's counter in Redis (every process counts together) — or, while Redis is away, in
    this process's memory: sign-in keeps working and stays throttled, and the outage is logged once
    (web/outage.py) rather than as a 500 with a traceback per attempt."""
    limiter: FixedWindowRateLimiter = current_app.extensions["ucc_login_limiter"]
    redis_url = services().settings.redis_url
    if not redis_url:
        return getattr(limiter, method)(LOGIN_LIMIT, *keys)
    outage = redis_outage(redis_url)
    if outage.may_try():
        try:
            result = getattr(limiter, method)(LOGIN_LIMIT, *keys)
        except Exception as exc:  # noqa: BLE001 - Redis away: fall back below
            outage.failed(exc)
        else:
            outage.recovered()
            return result
    fallback = current_app.extensions.setdefault(
        "ucc_login_limiter_local", FixedWindowRateLimiter(storage_from_string("memory://")))
    return getattr(fallback, method)(LOGIN_LIMIT, *keys)


def sign_in(username: str, password: str) -> SignedIn | None:
    with services().db.session() as s:
        user = authenticate(s, username, password)
        if user is None:
            return None
        signed = SignedIn(f"u:{user.id}", principal_of(user), user.display_name)
    session.permanent = True
    login_user(signed)
    return signed


def sign_out() -> None:
    logout_user()
    session.clear()

