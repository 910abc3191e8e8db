"""Sign-in for the pages (auth/) through the Flask test client: the /login form and its CSRF token,
wrong passwords, the rate limit, the page table, what a request nobody signed in for gets, the CSRF
header of Dash callbacks, the wall display's token and /logout."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, update

from data.models import ApiToken
from data.files import demo_users
from dispatch import access

CJK = re.compile(r"[\u4e00-\u9fff]")
PASSWORDS = {u["username"]: u["password"] for u in demo_users()}
ROLE_OF = {u["username"]: u["role"] for u in demo_users()}
PAGES = [p.path for p in access.PAGES]
DASH_CALLBACK = "/_dash-update-component"


def _form_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def _login(client, username: str, password: str | None = None, next_url: str | None = None, token: bool = True):
    data = {"username": username, "password": PASSWORDS.get(username, "") if password is None else password}
    if token:
        data["csrf_token"] = _form_token(client)
    if next_url:
        data["next"] = next_url
    return client.post("/login", data=data)


def _csrf_cookie(client) -> str:
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None, "the signed-in response sets the CSRF cookie Dash copies into its header"
    return cookie.value


def _wall_token(demo_app, role: str = "wall") -> tuple[str, int]:
    from data.tokens import create_token

    with demo_app.extensions["ucc"].db.session() as s:
        token = create_token(s, role, label="指挥大厅大屏")
        token_id = s.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()))
    return token, token_id


# ---- /login ---------------------------------------------------------------------------------------
def test_the_login_form_with_its_csrf_token_signs_in(client):
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.get_data(as_text=True)
    resp = _login(client, "duty")
    assert resp.status_code == 302 and resp.headers["Location"] == "/console"  # the officer's home
    assert client.get("/console").status_code == 200
    assert client.get("/login").status_code == 302  # already signed in: sent on


def test_login_goes_to_next_only_when_it_is_a_page_of_this_site_the_role_may_open(client):
    assert _login(client, "leader", next_url="/wall").headers["Location"] == "/wall"
    client.post("/logout", data={"csrf_token": _csrf_cookie(client)})
    for bad in ("//evil.example/x", "https://evil.example/", "/console"):  # leaders may not open /console
        resp = _login(client, "grid", next_url=bad)
        assert resp.status_code == 302 and resp.headers["Location"] == "/report", bad
        client.post("/logout", data={"csrf_token": _csrf_cookie(client)})


def test_wrong_password_is_401_with_a_chinese_message(client):
    resp = _login(client, "duty", password="not-the-password")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 401 and "用户名或密码错误" in body
    assert _login(client, "nobody-here", password="whatever-1").status_code == 401  # the same answer
    assert client.get("/console").status_code == 302  # not signed in
    assert _login(client, "duty", password="").status_code == 400  # both fields are needed


def test_a_login_without_the_csrf_token_is_400(client):
    resp = _login(client, "duty", token=False)
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    assert client.get("/console").status_code == 302
    resp = client.post("/login", data={"username": "duty", "password": PASSWORDS["duty"], "csrf_token": "forged"})
    assert resp.status_code == 400


def test_eleven_failed_attempts_in_a_minute_are_429(client):
    for i in range(10):
        assert _login(client, "duty", password=f"guess-{i}").status_code == 401, i
    resp = _login(client, "duty", password="guess-10")
    assert resp.status_code == 429 and "登录失败次数过多" in resp.get_data(as_text=True)
    assert _login(client, "duty").status_code == 429  # even the right password, until the minute is over
    assert _login(client, "leader").status_code == 302  # another name from the same address is not locked


def test_an_inactive_user_cannot_sign_in_and_is_signed_out(client, demo_app):
    from data.models import User

    assert _login(client, "baizhuang").status_code == 302
    assert client.get("/console").status_code == 200
    with demo_app.extensions["ucc"].db.session() as s:
        s.execute(update(User).where(User.username == "baizhuang").values(active=False))
    assert client.get("/console").status_code == 302
    assert _login(client, "baizhuang").status_code == 401


# ---- the page table ------------------------------------------------------------------------------
@pytest.mark.parametrize("username", [u for u in PASSWORDS])
def test_each_role_opens_exactly_the_pages_of_the_table(client, username):
    role = ROLE_OF[username]
    assert _login(client, username).status_code == 302
    for path in PAGES:
        resp = client.get(path)
        if access.can_open(role, path):
            assert resp.status_code == 200, (role, path)
        else:
            assert resp.status_code == 403, (role, path)
            assert CJK.search(resp.get_data(as_text=True))


def test_the_page_table_matches_the_roles_jobs():
    """A few facts of DESIGN.md the table must keep."""
    assert not access.can_open("wall", "/console") and not access.can_open("wall", "/report")
    assert access.can_open("wall", "/wall") and access.can_open("leader", "/cockpit")
    assert not access.can_open("grid_member", "/cockpit") and access.can_open("grid_member", "/report")
    assert access.can_open("unit_handler", "/unit") and not access.can_open("duty_officer", "/unit")
    assert not access.can_open("leader", "/report")  # the service refuses a leader's report too


# ---- nobody signed in ----------------------------------------------------------------------------
def test_not_signed_in_pages_redirect_to_login_and_callbacks_get_401_json(client):
    for path in PAGES:
        resp = client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login"), path
    assert client.get("/console").headers["Location"] == "/login?next=/console"
    # A Dash callback of an expired session: "sign in again", not "CSRF failed" (nobody to check it for)
    resp = client.post(DASH_CALLBACK, json={"output": "x.children", "inputs": []})
    assert resp.status_code == 401 and resp.get_json()["error"] == "unauthorized"
    assert CJK.search(resp.get_json()["message"])
    assert client.get("/_dash-layout").status_code == 401
    # the API answers for itself (bearer tokens) and needs no CSRF token
    assert client.get("/api/v1/events").status_code == 401
    assert client.get("/login").status_code == 200 and client.get("/assets/login.css").status_code == 200


def test_a_dash_callback_without_the_csrf_header_is_400(client):
    _login(client, "duty")
    resp = client.post(DASH_CALLBACK, json={"output": "x.children", "inputs": []})
    assert resp.status_code == 400 and resp.get_json()["error"] == "csrf_failed"
    assert CJK.search(resp.get_json()["message"])
    resp = client.post(DASH_CALLBACK, json={"output": "x.children", "inputs": []},
                       headers={"X-CSRFToken": "forged"})
    assert resp.status_code == 400
    assert client.get("/_dash-layout").status_code == 200  # reads need no token


def test_the_api_is_exempt_from_csrf(client, token_for):
    officer = {"Authorization": f"Bearer {token_for('duty_officer')}"}
    resp = client.post("/api/v1/events", headers=officer,
                       json={"category": "020102", "lon": 119.975, "lat": 31.79, "source": "api"})
    assert resp.status_code == 201, resp.get_data(as_text=True)


# ---- the wall display ----------------------------------------------------------------------------
def test_a_wall_token_signs_the_display_in_and_it_stays_signed_in(client, demo_app):
    token, _ = _wall_token(demo_app)
    resp = client.get(f"/wall?token={token}")
    assert resp.status_code == 200
    assert client.get("/wall").status_code == 200  # the token is no longer needed in the address
    assert client.get("/console").status_code == 403  # a wall opens the wall only
    assert client.post(DASH_CALLBACK, json={}).status_code == 400  # its callbacks carry the CSRF header


def test_another_roles_token_does_not_sign_a_wall_in(client, demo_app):
    token, _ = _wall_token(demo_app, role="duty_officer")
    resp = client.get(f"/wall?token={token}")
    assert resp.status_code == 401 and "大屏需要 wall 令牌" in resp.get_data(as_text=True)
    assert client.get("/wall").status_code == 302
    resp = client.get("/wall?token=ucc_not-a-token")
    assert resp.status_code == 401 and "无效或已吊销" in resp.get_data(as_text=True)
    # a wall token opens nothing but the wall: elsewhere the parameter is ignored
    wall, _ = _wall_token(demo_app)
    assert client.get(f"/cockpit?token={wall}").status_code == 302


def test_a_revoked_wall_token_signs_the_display_out_on_its_next_request(client, demo_app):
    token, token_id = _wall_token(demo_app)
    assert client.get(f"/wall?token={token}").status_code == 200
    with demo_app.extensions["ucc"].db.session() as s:
        s.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=datetime.now(timezone.utc)))
    resp = client.get("/wall")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert client.post(DASH_CALLBACK, json={}).status_code == 401
    assert client.get(f"/wall?token={token}").status_code == 401  # nor can it sign in again


# ---- /logout -------------------------------------------------------------------------------------
def test_logout_needs_a_post_with_the_csrf_token(client):
    _login(client, "leader")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/cockpit").status_code == 200  # still signed in
    # the shell's button: a form POST with the session's CSRF token in the csrf_token field
    resp = client.post("/logout", data={"csrf_token": _csrf_cookie(client)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert client.get("/cockpit").status_code == 302
    assert client.get("/logout").status_code == 405  # signed out too: no page behind GET /logout


def test_only_the_exact_sign_in_paths_are_open(client):
    for path in ("/login-but-not-really", "/logout/extra", "/healthz-x"):
        resp = client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next="), path


def test_healthz_answers_without_signing_in(demo_app):
    r = demo_app.test_client().get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"ok": True}


def test_each_page_loads_only_the_script_bundles_it_uses(demo_app):
    """The wall must not parse the console's grid library; no page loads the old-browser polyfills."""
    import re

    client = demo_app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "duty", "password": "ucc-duty-2026", "csrf_token": csrf})
    scripts = {path: re.findall(r'<script[^>]*src="([^"]+)"', client.get(path).text)
               for path in ("/wall", "/cockpit", "/console")}
    assert not any("dash_ag_grid" in s for s in scripts["/wall"] + scripts["/cockpit"])
    assert any("dash_ag_grid" in s for s in scripts["/console"])
    assert all(any("dash_deck" in s for s in page) for page in scripts.values())
    assert not any("polyfill" in s for page in scripts.values() for s in page)


def test_the_official_socket_io_client_loads_locally_before_the_live_client_on_the_live_pages(demo_app):
    """assets/vendor/socket.io.min.js (window.io) comes before assets/live_client.js, once, from this
    server; Dash's alphabetical asset walk would put it after; /report uses neither."""
    import re

    client = demo_app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "duty", "password": "ucc-duty-2026", "csrf_token": csrf})
    for path in ("/", "/wall", "/cockpit", "/console", "/report"):
        page = client.get(path)
        assert page.status_code == 200, path
        srcs = re.findall(r'<script[^>]*src="([^"]+)"', page.text)
        vendor = [i for i, s in enumerate(srcs) if "socket.io" in s]
        live = [i for i, s in enumerate(srcs) if "/assets/live_client.js" in s]
        if path == "/report":
            assert vendor == [] and live == [], path
            continue
        assert len(vendor) == 1 and len(live) == 1 and vendor[0] < live[0], (path, srcs)
        src = srcs[vendor[0]]
        assert src.startswith("/assets/vendor/socket.io.min.js?v=4.8."), src
        body = client.get(src)
        assert body.status_code == 200 and body.data.startswith(b"/*!\n * Socket.IO v4.8.")
