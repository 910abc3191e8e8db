"""Sign-in for the pages: Flask-Login sessions, CSRF, the page guard and the principal of a request.

People sign in at /login with a password; a wall display opens /wall?token=T with a `wall` token
and stays signed in (a remember cookie). Each sign-in is a session row in the database
(data/login_sessions.py); the cookies carry only its random id, and every request resolves it there
(auth/sessions.py), so logout, a password reset, disabling the user or revoking the wall's token
ends it at once, and idleness and age end it too (config.Settings).
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

from flask import (Flask, current_app, g, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from auth.sessions import SessionRules, SignedIn, load_signed_in
from auth.throttle import LoginThrottle
from data.login_sessions import end_session, ended_among, start_session
from data.tokens import resolve_token
from data.users import authenticate, principal_of
from dispatch import access
from dispatch.lifecycle import ROLE_LABELS
from web.errors import wants_json
from web.principal import current_principal
from web.services import services

CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads
SESSION_RULES = "ucc_session_rules"  # app.extensions keys: SessionRules, LoginThrottle
THROTTLE = "ucc_login_throttle"
# paths anyone may fetch: the sign-in page itself, static files, the API (bearer tokens) and
# the live endpoint (it authenticates on connect)
# /public is the citizens' page: no account (public/ proves who may follow a case by its number and phone)
OPEN_PATHS = ("/login", "/logout", "/_favicon.ico", "/favicon.ico", "/healthz", "/open311", "/public")  # exactly these
# /photos/ authenticates itself, by session or bearer token (api/photos.py); Open311 reads are public and its POSTs
# carry their api_key (api/open311.py)
OPEN_PREFIXES = ("/assets/", "/_dash-component-suites/", "/api/", "/socket.io", "/photos/", "/open311/", "/public/")

csrf = CSRFProtect()


def session_rules(app: Flask | None = None) -> SessionRules:
    """How long sessions last and the clock they are measured by (tests replace `.clock`)."""
    return (app or current_app).extensions[SESSION_RULES]


def _load(session_id: str) -> SignedIn | None:
    # Flask-Login's user_loader, for the session cookie and the wall's remember cookie alike
    return load_signed_in(services().db, session_rules(), session_id)


def _safe_next(target: str | None, role: str) -> str:
    # Only a path on this site, and one the role may open; otherwise the role's home page.
    if target:
        parsed = urlparse(target)
        if not parsed.scheme and not parsed.netloc and target.startswith("/") and not target.startswith("//"):
            if access.can_open(role, parsed.path):
                return target
    return access.HOME_OF_ROLE.get(role, "/")


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
    if current_user.is_authenticated and current_user.principal.ident == principal.ident:
        return  # this display is signed in with this token already
    rules = session_rules()
    with services().db.session() as s:
        if current_user.is_authenticated:  # someone else was signed in in this browser: that session ends
            end_session(s, current_user.get_id(), "logout", now=rules.clock())
        session_id = start_session(s, rules.wall, token_id=int(principal.ident.split(":", 1)[1]), now=rules.clock())
    # the remember cookie carries the session's id too: it outlives the browser's session cookie for
    # as long as the row lives, and ends with it
    login_user(SignedIn(session_id, principal, "大屏"), remember=True, duration=rules.wall.absolute)


def _guard():
    path = request.path
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    _sign_in_wall_token()
    if not current_user.is_authenticated:
        if getattr(g, "wall_token_error", None) and path.rstrip("/") == "/wall":
            return render_template("login.html", error=g.wall_token_error, next=None, username=""), 401
        if wants_json():
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
        # the cookie lives as long as a person's session row may (the row decides; auth/sessions.py)
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
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
    server.extensions[SESSION_RULES] = SessionRules.from_settings(settings)
    server.extensions[THROTTLE] = LoginThrottle(settings.redis_url, settings.login_limit,
                                                settings.login_address_limit)
    server.after_request(_csrf_cookie)
    server.register_error_handler(CSRFError, _csrf_failed)
    from auth.views import bp

    server.register_blueprint(bp)
    live = server.extensions.get("ucc_live")
    if live is not None:
        live.add_principal_resolver(lambda _auth: current_principal())
        db, rules = services(server).db, server.extensions[SESSION_RULES]
        live.add_session_check(_connected_session, lambda ids: _ended(db, rules, ids))


def _connected_session() -> str | None:
    """The sign-in session a live connection came with (None when it came with a bearer token)."""
    return current_user.get_id() if current_user.is_authenticated else None


def _ended(db, rules: SessionRules, session_ids: list[str]) -> set[str]:
    with db.session() as s:
        return ended_among(s, session_ids, rules.clock())


def _csrf_cookie(response):
    # Dash's renderer sends this cookie back as the X-CSRFToken header of every callback request.
    # Path first: the API and static files must not pay for loading the user.
    if not request.path.startswith(("/api/", "/assets/", "/_dash-component-suites/")) and current_user.is_authenticated:
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax", httponly=False,
                            secure=request.is_secure)
    return response


def _csrf_failed(err: CSRFError):
    message = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
    if wants_json():
        return jsonify(error="csrf_failed", message=message), 400
    return render_template("login.html", error=message, next=request.args.get("next"), username=""), 400


def login_wait_seconds(username: str) -> int:
    """0 when this address may try to sign in as this name; else the seconds until it may."""
    return current_app.extensions[THROTTLE].wait_seconds(request.remote_addr or "?", username)


def note_failed_login(username: str) -> None:
    current_app.extensions[THROTTLE].failed(request.remote_addr or "?", username)


def sign_in(username: str, password: str) -> SignedIn | None:
    rules = session_rules()
    with services().db.session() as s:
        user = authenticate(s, username, password)
        if user is None:
            return None
        if current_user.is_authenticated:  # a sign-in over another one: the older session ends
            end_session(s, current_user.get_id(), "logout", now=rules.clock())
        session_id = start_session(s, rules.person, user_id=user.id, now=rules.clock())
        signed = SignedIn(session_id, principal_of(user), user.display_name)
    session.permanent = True
    login_user(signed)
    return signed


def sign_out() -> None:
    """End this browser's session row (every copy of its cookies is refused from now on), then
    forget it here."""
    if current_user.is_authenticated:
        with services().db.session() as s:
            end_session(s, current_user.get_id(), "logout", now=session_rules().clock())
    logout_user()
    session.clear()

