"""The production front (deploy/front.py: nginx → gunicorn with 2 gevent workers) on a copy of the demo city:
what nginx adds (body limits, WebSockets, the client's address passed on) and that a normal client is
still served, fast, while one address floods it with 200 WebSockets and 2,500 slow connections.

nginx is Debian's (scripts/ensure_system_deps.sh installs it): mandatory with CI=true, skipped elsewhere.
As in production, the two workers share live events through Redis (the real one, a channel of its own)."""
from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse

import pytest

from deploy.front import NGINX, Front, raise_open_files
from tests.conftest import IN_CI
from tests.flood import describe, normal_client
from tests.live.conftest import TIANNING, DemoData, LiveClient, post_case, require_redis, unique_channel
from tests.serving import ROOT, free_port

FLOOD_SECONDS = 30
BASELINE_SECONDS = 8  # gunicorn alone under the same flood: printed, not asserted (it stalls)

pytestmark = pytest.mark.redis


def require_nginx() -> None:
    if os.path.exists(NGINX):
        return
    message = f"{NGINX} missing (Debian's nginx; scripts/ensure_system_deps.sh installs it)"
    if IN_CI:
        pytest.fail(message + " — mandatory with CI=true")
    pytest.skip(message)


@pytest.fixture(scope="module")
def front(demo_sqlite_url, tmp_path_factory):
    require_nginx()
    redis_url = require_redis()
    raise_open_files()
    work = tmp_path_factory.mktemp("front")
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), work / "front.db")
    url = f"sqlite:///{work / 'front.db'}"
    env = dict(os.environ, DATABASE_URL=url, UCC_SECRET_KEY="test-secret", UCC_WORKERS="2", UCC_SIMULATE="0")
    env.update(REDIS_URL=redis_url, UCC_LIVE_CHANNEL=unique_channel())
    log = open(work / "front.log", "w")
    direct_port = free_port()  # gunicorn is also bound here, for the baseline without nginx
    app = Front("127.0.0.1", free_port(), work / "var", env=env, extra_binds=(f"127.0.0.1:{direct_port}",), log=log)
    app.start()
    app.direct_port = direct_port
    app.data = DemoData(url)
    yield app
    app.stop()
    log.close()
    app.data.close()


def _request(front, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(front.host, front.port, timeout=20, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _failed_login(front, username: str, source: str, forged_for: str | None = None) -> int:
    """A wrong password through the real form, from `source` (optionally claiming another address)."""
    status, headers, html = _request(front, "GET", "/login", source=source)
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()
    form = urllib.parse.urlencode({"username": username, "password": "wrong", "csrf_token": token}).encode()
    extra = {"X-Forwarded-For": forged_for} if forged_for else {}
    status, _h, _b = _request(front, "POST", "/login", form, source=source, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", **extra})
    return status


def test_the_front_limits_bodies_passes_websockets_and_tells_the_app_who_is_asking(front):
    status, headers, body = _request(front, "GET", "/healthz")
    assert status == 200 and headers.get("Server") == "nginx" and json.loads(body) == {"ok": True}

    # A 2 MB API body is refused by nginx before anyone reads it, in the contract's error shape.
    token = front.data.token("duty_officer")
    head = front.data.head()
    status, headers, body = _request(front, "POST", "/api/v1/events", b"x" * 2_000_000, {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert status == 413 and json.loads(body)["error"] == "payload_too_large"
    assert front.data.head() == head
    # Open311's clients read nginx's refusals in the GeoReport v2 error format too (XML for a .xml resource).
    status, headers, body = _request(front, "POST", "/open311/v2/requests.xml", b"x" * 2_000_000,
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and headers["Content-Type"].startswith("text/xml")
    assert b"<errors><error><code>413</code>" in body
    status, headers, body = _request(front, "POST", "/open311/v2/requests.json", b"x" * 2_000_000,
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and json.loads(body) == [{"code": 413, "description": "请求体过大"}]
    assert front.data.head() == head
    # Photos travel inside Dash callback JSON: 5 MB passes nginx there (the app answers: not signed in).
    status, _h, _b = _request(front, "POST", "/_dash-update-component", b"x" * 5_000_000,
                              {"Content-Type": "application/json"})
    assert status == 401
    # The citizens' photo form (/public/report): 5 MB passes nginx too (the app answers: no CSRF token, a page).
    upload = (b'--zz\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
              b"Content-Type: image/jpeg\r\n\r\n" + b"x" * 5_000_000 + b"\r\n--zz--\r\n")
    status, _h, body = _request(front, "POST", "/public/report", upload,
                                {"Content-Type": "multipart/form-data; boundary=zz"})
    assert status == 400 and "页面已过期" in body.decode(), (status, body[:300])

    # Socket.IO over WebSocket through nginx: a case posted through the front reaches a client.
    client = LiveClient(front.url, front.data.token("duty_officer", TIANNING))
    try:
        assert client.connect(since=None)["ok"]
        status, case, _ = post_case(front.url, token, *front.data.point_in(TIANNING, 5))
        assert status == 201, case
        assert client.wait_seqs(front.data.seqs_of([case["id"]]), 3.0)
    finally:
        client.close()

    # The login throttle counts per client address, as nginx saw it; a forged X-Forwarded-For is ignored.
    # (A name of its own: the throttle's counters live in the shared Redis for a minute.)
    name = f"nobody-{secrets.token_hex(4)}"
    statuses = [_failed_login(front, name, "127.0.0.1", forged_for="127.0.0.2") for _ in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429, statuses
    assert _failed_login(front, name, "127.0.0.2") == 401, "another address is not throttled for the first one's failures"


def _flood(port: int, token: str, seconds: float) -> subprocess.Popen:
    flood = subprocess.Popen([sys.executable, str(ROOT / "tests" / "flood.py"), "--port", str(port), "--token", token,
                              "--websockets", "200", "--slow", "2500", "--seconds", str(seconds + 1)],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert flood.stdout.readline().strip() == "ready"
    return flood


def _flood_counts(flood: subprocess.Popen) -> dict:
    try:
        return json.loads(flood.stdout.readline() or "{}")
    finally:
        flood.wait(30)


def test_a_normal_client_is_served_fast_while_one_address_floods_the_front(front):
    api_token = front.data.token("duty_officer")
    flood_token = front.data.token("wall")
    limited_before = (front.prefix / "error.log").read_text(errors="replace").count("limiting connections")
    t0 = time.monotonic()
    flood = _flood(front.port, flood_token, FLOOD_SECONDS)
    try:
        normal = normal_client("127.0.0.1", front.port, api_token, FLOOD_SECONDS, source="127.0.0.2")
        counts = _flood_counts(flood)
    finally:
        if flood.poll() is None:
            flood.kill()
    limited = (front.prefix / "error.log").read_text(errors="replace").count("limiting connections") - limited_before
    ended = {k: v for k, v in sorted(counts.items()) if any(w in k for w in ("closed", "answered", "reset", "refused"))}
    print(f"\nthrough nginx ({time.monotonic() - t0:.0f} s): normal client {describe(normal)}")
    print(f"  flood: {counts.get('ws_live_at_end')} WebSockets live at end (peak {counts.get('ws_live_peak')}), "
          f"{counts.get('peak_open')} flood connections open at peak; ended by nginx: {ended}; "
          f"refused by limit_conn: {limited}")

    # The flood really was there: 200 WebSockets live (the per-address limits leave room for a hall's
    # screens) and 2,700 connections held at once.
    assert counts["ws_live_peak"] == 200 and counts["ws_live_at_end"] >= 190, counts
    assert counts["peak_open"] >= 2600, counts
    # The slow clients were cut off by nginx (header timeout, body timeout, connection limit).
    assert sum(ended.values()) >= 1000, counts
    # The normal client, from another address, was served: every request, p95 within 250 ms.
    assert normal["failures"] == 0, describe(normal)
    assert normal["p95_ms"] <= 250, describe(normal)

    # Baseline (printed, not asserted): the same flood straight at gunicorn, as the tester ran it.
    time.sleep(2)
    flood = _flood(front.direct_port, flood_token, BASELINE_SECONDS)
    try:
        baseline = normal_client("127.0.0.1", front.direct_port, api_token, BASELINE_SECONDS, source="127.0.0.2",
                                 timeout=5)
        _flood_counts(flood)
    finally:
        if flood.poll() is None:
            flood.kill()
    print(f"gunicorn alone, same flood ({BASELINE_SECONDS} s): normal client {describe(baseline)}")
