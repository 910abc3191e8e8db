"""Server-side sign-in sessions (data/login_sessions.py, auth/sessions.py) on SQLite and PostgreSQL:
a copied cookie stops working after logout, a password reset, disabling the user or revoking the wall's
token; idleness and age end a session (on a hand-moved clock); the live connection asks the same
session; and the sign-in throttle counts one address across all names."""
from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from data.models import LoginSession
from tests.conftest import make_settings
from tests.factories import small_world

# the sessions run on a hand-moved clock from the real now: what commands end (password reset, revoking)
# is stamped with the real time, and pruning compares the two
NOW = datetime.now(timezone.utc).replace(microsecond=0)
DASH_CALLBACK = "/_dash-update-component"
CALLBACK = {"output": "x.children", "outputs": {"id": "x", "property": "children"}, "inputs": [],
            "changedPropIds": []}
PASSWORD = "duty-hall-2026"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def site(empty_db):
    """The app over a small city on each database, two officers and a clock the sessions obey."""
    from app import create_app
    from data.users import create_user

    small_world(empty_db, NOW)
    with empty_db.session() as s:
        create_user(s, "officer", PASSWORD, "duty_officer", "320400", display_name="值班员")
        create_user(s, "colleague", PASSWORD, "duty_officer", "320400")
    app = create_app(make_settings(empty_db.url))
    app.config["TESTING"] = True
    clock = Clock(NOW)
    app.extensions["ucc_session_rules"].clock = clock
    yield app, empty_db, clock
    # /wall's page starts reading the wall's figures in a thread: let it finish before the schema goes
    for thread in threading.enumerate():
        if thread.name == "wall-prefetch":
            thread.join(timeout=30)
    app.extensions["ucc"].db.dispose()


def sign_in(app, username="officer", password=PASSWORD):
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    return client


def copy_of(app, client, names=("session", "remember_token")):
    """Another browser holding copies of `client`'s cookies (what a stolen cookie gives)."""
    thief = app.test_client()
    for name in names:
        cookie = client.get_cookie(name)
        if cookie is not None:
            thief.set_cookie(name, cookie.value)
    return thief


def signed_in(client) -> bool:
    """A signed-in request works; a refused one is the contract's 401 for Dash (and nothing else)."""
    resp = client.get("/_dash-layout")
    if resp.status_code == 401:
        assert resp.get_json()["error"] == "unauthorized"
        return False
    assert resp.status_code == 200, resp.status_code
    return True


def assert_refused(client, page="/console"):
    resp = client.get(page)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login"), resp.status_code
    csrf = client.get_cookie("_csrf_token")
    resp = client.post(DASH_CALLBACK, json=CALLBACK, headers={"X-CSRFToken": csrf.value if csrf else "x"})
    assert resp.status_code == 401 and resp.get_json()["error"] == "unauthorized"
    assert "登录" in resp.get_json()["message"]


def reasons(db) -> list[str | None]:
    with db.session() as s:
        return list(s.scalars(select(LoginSession.end_reason).order_by(LoginSession.id)))


def logout(client):
    resp = client.post("/logout", data={"csrf_token": client.get_cookie("_csrf_token").value})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"


# ---- the case: logout ends every copy ---------------------------------------------------
def test_a_copied_cookie_is_refused_after_logout(site):
    app, db, _clock = site
    browser = sign_in(app)
    thief = copy_of(app, browser)
    assert signed_in(thief) and thief.get("/console").status_code == 200  # the copy works while signed in
    logout(browser)
    assert_refused(thief)
    assert_refused(browser)
    assert reasons(db) == ["logout"]
    with db.session() as s:  # the table holds the id's hash, never the id the cookie carries
        stored = s.scalar(select(LoginSession.id_hash))
    assert len(stored) == 64 and stored not in str(thief.get_cookie("session").value)
    assert signed_in(sign_in(app))  # signing in again is a new session


def test_a_password_reset_and_disabling_the_user_end_every_copy(site):
    app, db, _clock = site
    runner = app.test_cli_runner()
    desk, phone = sign_in(app), sign_in(app)
    copy = copy_of(app, desk)
    other = sign_in(app, "colleague")
    assert all(signed_in(c) for c in (desk, phone, copy, other))
    result = runner.invoke(args=["create-user", "officer", "--reset", "--role", "duty_officer",
                                 "--password", "a-new-password-1"])
    assert result.exit_code == 0, result.output
    for client in (desk, phone, copy):
        assert_refused(client)
    assert signed_in(other)  # another person's session is untouched
    again = sign_in(app, password="a-new-password-1")
    copy = copy_of(app, again)
    result = runner.invoke(args=["disable-user", "officer"])
    assert result.exit_code == 0 and "会话已结束" in result.output
    assert_refused(again)
    assert_refused(copy)
    assert sorted(r for r in reasons(db) if r) == ["password_reset", "password_reset", "user_disabled"]
    assert runner.invoke(args=["disable-user", "ghost"]).exit_code != 0


def test_revoking_a_wall_token_ends_the_wall_displays_session(site):
    from data.tokens import create_token

    app, db, clock = site
    with db.session() as s:
        token = create_token(s, "wall", label="指挥大厅")
    wall = app.test_client()
    assert wall.get(f"/wall?token={token}").status_code == 200
    assert wall.get_cookie("remember_token") is not None
    restarted = copy_of(app, wall, names=("remember_token",))  # the browser's session cookie gone
    clock.advance(hours=3)  # far past a person's idle limit: a wall's session lasts longer
    assert signed_in(wall) and signed_in(restarted)
    result = app.test_cli_runner().invoke(args=["revoke-token", token])
    assert result.exit_code == 0, result.output
    assert_refused(wall, "/wall")
    assert_refused(restarted, "/wall")
    assert wall.get(f"/wall?token={token}").status_code == 401  # nor can it sign in again
    assert reasons(db) == ["token_revoked"]
    assert app.test_cli_runner().invoke(args=["revoke-token", token]).exit_code != 0  # already revoked


def test_a_direct_change_in_the_database_ends_the_session_too(site):
    """What bypasses the repository (an operator's SQL) still signs the person out at the next request."""
    from sqlalchemy import update

    from data.models import User

    app, db, _clock = site
    browser = sign_in(app)
    with db.session() as s:
        s.execute(update(User).where(User.username == "officer").values(active=False))
    assert_refused(browser)
    assert reasons(db) == ["user_disabled"]


# ---- idleness and age --------------------------------------------------------------------------
def test_idleness_ends_a_session_and_last_seen_is_written_at_most_once_a_minute(site):
    app, db, clock = site

    def last_seen():
        with db.session() as s:
            return s.scalar(select(LoginSession.last_seen_at))

    browser = sign_in(app)
    for seconds in (10, 20, 50):  # requests within the minute: no write
        clock.now = NOW + timedelta(seconds=seconds)
        assert signed_in(browser)
    assert last_seen() == NOW
    clock.now = NOW + timedelta(seconds=61)
    assert signed_in(browser) and last_seen() == NOW + timedelta(seconds=61)
    clock.advance(minutes=29)  # 29 min since last seen: still signed in (idle limit 30 min)
    assert signed_in(browser)
    clock.advance(minutes=30)
    assert_refused(browser)
    assert reasons(db) == ["idle"]


def test_a_session_ends_at_its_absolute_lifetime_however_busy(site):
    app, db, clock = site
    browser = sign_in(app)
    for _ in range(35):  # a request every 20 minutes for 11 h 40 min: never idle
        clock.advance(minutes=20)
        assert signed_in(browser)
    clock.advance(minutes=20)  # 12 h after signing in
    assert_refused(browser)
    assert reasons(db) == ["expired"]
    # signing in prunes what has expired (the table does not grow forever)
    clock.advance(minutes=1)
    sign_in(app)
    assert reasons(db) == [None]


# ---- live updates ------------------------------------------------------------------------------
def test_the_live_connection_refuses_an_ended_session(site):
    app, _db, _clock = site
    socketio = app.extensions["ucc_live"].socketio
    browser = sign_in(app)
    thief = copy_of(app, browser)
    live = socketio.test_client(app, namespace="/live", flask_test_client=thief)
    assert live.is_connected("/live")
    ack = live.emit("resync", {"since": None}, namespace="/live", callback=True)
    assert ack["ok"] is True
    logout(browser)
    ack = live.emit("resync", {"since": 0}, namespace="/live", callback=True)
    assert ack["ok"] is False and ack["error"] == "unauthorized"  # no replay for an ended session
    deadline = time.monotonic() + 5
    while live.is_connected("/live") and time.monotonic() < deadline:  # and the server hangs up
        time.sleep(0.02)
    assert not live.is_connected("/live")
    again = socketio.test_client(app, namespace="/live", flask_test_client=thief)
    assert not again.is_connected("/live")


def test_an_open_live_connection_is_closed_when_its_session_ends(site):
    """No resync needed: the watch (live/bus.py, every SESSION_CHECK_SECONDS) closes a copy's open
    connection after logout, and a colleague's connection stays."""
    app, _db, _clock = site
    bus = app.extensions["ucc_live"]
    browser, colleague = sign_in(app), sign_in(app, "colleague")
    copy = bus.socketio.test_client(app, namespace="/live", flask_test_client=copy_of(app, browser))
    other = bus.socketio.test_client(app, namespace="/live", flask_test_client=colleague)
    assert copy.is_connected("/live") and other.is_connected("/live")
    assert bus.end_ended_sessions() == 0  # both live: nothing closed
    logout(browser)
    assert bus.end_ended_sessions() == 1
    assert not copy.is_connected("/live") and other.is_connected("/live")
    # and the watch does it by itself
    copy = bus.socketio.test_client(app, namespace="/live", flask_test_client=copy_of(app, colleague))
    assert copy.is_connected("/live")
    logout(colleague)
    deadline = time.monotonic() + 15
    while copy.is_connected("/live") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not copy.is_connected("/live") and not other.is_connected("/live")


def test_an_open_live_connection_of_a_revoked_api_token_is_closed(site):
    app, db, _clock = site
    from data.tokens import create_token, revoke_token

    bus = app.extensions["ucc_live"]
    with db.session() as s:
        kept, revoked = create_token(s, "wall"), create_token(s, "wall")
    stays = bus.socketio.test_client(app, namespace="/live", auth={"token": kept})
    goes = bus.socketio.test_client(app, namespace="/live", auth={"token": revoked})
    assert stays.is_connected("/live") and goes.is_connected("/live")
    assert bus.end_ended_sessions() == 0
    with db.session() as s:
        revoke_token(s, revoked)
    assert bus.end_ended_sessions() == 1
    assert stays.is_connected("/live") and not goes.is_connected("/live")


# ---- the sign-in throttle ----------------------------------------------------------------------
def _try(client, username, password, address="10.1.2.3"):
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def test_one_password_tried_across_forty_names_from_one_address_is_429_before_the_fortieth(demo_app):
    client = demo_app.test_client()
    statuses = [_try(client, f"user{i:02d}", "Changzhou@2026").status_code for i in range(40)]
    assert 429 in statuses and statuses.index(429) < 39, statuses
    first = statuses.index(429)
    assert set(statuses[:first]) == {401} and set(statuses[first:]) == {429}
    assert first == 30  # UCC_LOGIN_ADDRESS_LIMIT's default: 30 failed sign-ins per 10 minutes
    refused = _try(client, "duty", "ucc-duty-2026")  # the address is locked, even for a right password
    body = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "登录失败次数过多" in body and "分钟后再试" in body
    assert _try(client, "duty", "ucc-duty-2026", address="10.1.2.4").status_code == 302  # another address


@pytest.mark.redis
def test_the_throttle_counts_in_redis_across_processes():
    """Two throttles on one Redis (two server processes) share the counts of an address."""
    import uuid

    from auth.throttle import LoginThrottle
    from tests.live.conftest import require_redis

    url = require_redis()
    a = LoginThrottle(url, "10 per minute", "5 per 10 minutes")
    b = LoginThrottle(url, "10 per minute", "5 per 10 minutes")
    address = f"test-{uuid.uuid4().hex}"  # a fresh key: runs do not see each other's counts
    for i in range(5):
        assert (a if i % 2 else b).wait_seconds(address, f"name{i}") == 0
        (a if i % 2 else b).failed(address, f"name{i}")
    wait = b.wait_seconds(address, "another-name")
    assert 0 < wait <= 600
    assert a.wait_seconds(f"test-{uuid.uuid4().hex}", "name0") == 0


def test_bad_session_and_throttle_settings_stop_the_start_with_a_clear_message(monkeypatch):
    from config import Settings

    for name, value, words in (("UCC_SESSION_IDLE_MINUTES", "0", "1–1440"),
                               ("UCC_SESSION_HOURS", "twelve", "UCC_SESSION_HOURS"),
                               ("UCC_WALL_SESSION_DAYS", "999", "1–366"),
                               ("UCC_LOGIN_ADDRESS_LIMIT", "many", "次数限制")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as exc:
            Settings.from_env()
        assert words in str(exc.value) and repr(value) in str(exc.value)
        monkeypatch.delenv(name)
    monkeypatch.setenv("UCC_SESSION_IDLE_MINUTES", "15")
    assert Settings.from_env().session_idle_minutes == 15


def test_signing_in_over_a_session_ends_the_older_one(site):
    """A wall token opened in a browser where a person was signed in: the person's session ends with it."""
    from data.tokens import create_token

    app, db, _clock = site
    browser = sign_in(app)
    earlier = copy_of(app, browser)
    with db.session() as s:
        token = create_token(s, "wall")
    assert browser.get(f"/wall?token={token}").status_code == 200
    assert signed_in(browser)  # now as the wall
    assert_refused(earlier)
    assert reasons(db) == ["logout", None]


def test_the_throttle_counts_in_memory_while_redis_is_away():
    """No Redis at the address: sign-in stays throttled (counted in this process) and is not a 500."""
    from auth.throttle import LoginThrottle

    away = LoginThrottle("redis://127.0.0.1:9/0", "10 per minute", "3 per 10 minutes")  # nothing listens on 9
    for i in range(3):
        assert away.wait_seconds("10.9.9.9", f"name{i}") == 0
        away.failed("10.9.9.9", f"name{i}")
    assert away.wait_seconds("10.9.9.9", "name9") > 0
