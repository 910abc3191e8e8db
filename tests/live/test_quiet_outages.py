"""Quiet logs on outages: Redis away (from the start or mid-run) is one warning per outage and one
line when it is back, never a traceback, while intake, sign-in and live updates of the process go on;
and the embedded server does not log "Bad HTTP/0.9 request" when WebSocket clients leave."""
from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.live.conftest import TIANNING, LiveAppProcess, LiveClient, OwnRedis, post_case

pytestmark = pytest.mark.redis


def _log_lines(path, needle: str) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if needle in line]


def _failed_login(base_url: str) -> int:
    """A wrong password through the real form (the login throttle counts it): the status."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    html = opener.open(base_url + "/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    form = urllib.parse.urlencode({"username": "leader", "password": "wrong", "csrf_token": token}).encode()
    try:
        return opener.open(base_url + "/login", data=form, timeout=10).status
    except urllib.error.HTTPError as err:
        return err.code


def _busy(app, demo_data, writer, seconds: float, start_index: int) -> None:
    """Intake, API reads and failed sign-ins for a while: everything that touches Redis."""
    deadline, i = time.monotonic() + seconds, start_index
    while time.monotonic() < deadline:
        status, case, took = post_case(app.url, writer, *demo_data.point_in(TIANNING, i), timeout=10)
        assert status == 201, case
        assert took < 1.0, f"intake took {took:.2f} s with Redis away"
        req = urllib.request.Request(app.url + "/api/v1/events?per_page=5", headers={"Authorization": f"Bearer {writer}"})
        assert urllib.request.urlopen(req, timeout=10).status == 200
        assert _failed_login(app.url) in (401, 429)  # wrong password, or throttled: never a 500
        i += 1
        time.sleep(0.25)


def test_redis_outages_log_one_warning_each_one_recovery_and_no_traceback(demo_copy, demo_data, tmp_path):
    redis = OwnRedis(tmp_path / "redis.log")  # its port: nothing listens there until started
    app = LiveAppProcess(demo_copy, tmp_path / "app.log", redis_url=redis.url)
    try:
        app.wait_ready()
        writer = demo_data.token("duty_officer")
        watcher = LiveClient(app.url, demo_data.token("duty_officer", TIANNING))
        watcher.connect(since=None)
        # 1. Redis down from the start: intake, reads, sign-in and this process's live updates go on.
        _busy(app, demo_data, writer, 6.0, 0)
        status, case, _ = post_case(app.url, writer, *demo_data.point_in(TIANNING, 40))
        [seq] = demo_data.seqs_of([case["id"]])
        assert watcher.wait_seqs([seq], 2.0), "the process's own clients must be served while Redis is away"
        # 2. Redis comes up: one line says so.
        redis.start()
        deadline = time.monotonic() + 15
        while not _log_lines(app.log_path, "Redis 已恢复") and time.monotonic() < deadline:
            _busy(app, demo_data, writer, 0.5, 50)
        assert _log_lines(app.log_path, "Redis 已恢复"), app.log_path.read_text()[-3000:]
        # 3. A second outage mid-run, again busy for a while.
        redis.kill()
        _busy(app, demo_data, writer, 5.0, 60)
        watcher.close()
    finally:
        app.stop()
        redis.kill()
    log = app.log_path.read_text(errors="replace")
    # Lines logged at WARNING, but Werkzeug's notice that it is a development server.
    warnings = [w for w in _log_lines(app.log_path, " WARNING ") if " WARNING werkzeug:" not in w]
    print("\n".join(warnings))
    assert len(warnings) == 2, f"one warning per outage, got {len(warnings)}:\n" + "\n".join(warnings)
    assert all("Redis 不可用" in w and "秒后重试" in w for w in warnings), warnings
    assert "Traceback" not in log and " ERROR " not in log, log[-4000:]
    assert len(_log_lines(app.log_path, "Redis 已恢复")) == 1


def test_websocket_clients_leaving_the_embedded_server_leave_no_bad_request_lines(live_server, demo_data):
    token = demo_data.token("wall")
    for _ in range(5):
        client = LiveClient(live_server.url, token)
        client.connect(since=None)
        time.sleep(0.2)
        t0 = time.monotonic()
        client.close()
        assert time.monotonic() - t0 < 2.0, "the server answers the close frame: leaving is quick"
    time.sleep(1.0)
    log = live_server.log_path.read_text(errors="replace")
    assert "Bad HTTP/0.9 request" not in log and "Bad request syntax" not in log, log[-3000:]
    assert "code 400" not in log
