"""Live-update tests: the real server (`python app.py`) in subprocesses, the real python-socketio
client, the real Redis. Redis is mandatory with CI=true and skipped with a clear reason elsewhere."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import IN_CI, REDIS_TEST_URL
from tests.serving import ROOT, AppProcess, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
NS = "/live"

# 天宁区 (320402): the point the API tests use; 溧阳市 (320481) is another district.
TIANNING, LIYANG = "320402", "320481"
GARBAGE = "020102"  # exposed garbage: an event category routed to a district bureau


# ---- Redis -------------------------------------------------------------------------------------
def _redis_problem(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def require_redis(url: str = REDIS_TEST_URL) -> str:
    """Fail in CI, skip elsewhere, when Redis is not reachable; returns the URL."""
    reason = _redis_problem(url)
    if reason is None:
        return url
    message = f"Redis at {url} not reachable ({reason})"
    if IN_CI:
        pytest.fail(message + " — mandatory with CI=true")
    pytest.skip(message)


def require_redis_server_binary() -> str:
    if os.path.exists(REDIS_SERVER):
        return REDIS_SERVER
    message = f"{REDIS_SERVER} missing (Debian's redis-server package)"
    if IN_CI:
        pytest.fail(message + " — mandatory with CI=true")
    pytest.skip(message)


class OwnRedis:
    """A private redis-server on a free port (never the machine's own), to stop and start at will."""

    def __init__(self, log_path: Path):
        self.binary = require_redis_server_binary()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "OwnRedis":
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while _redis_problem(self.url) is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


# ---- the server ------------------------------------------------------------------------------------
class LiveAppProcess(AppProcess):
    """`python app.py` like tests/serving.py's AppProcess, but REDIS_URL and the channel may be set."""

    def __init__(self, database_url: str, log_path: Path, redis_url: str | None = None,
                 channel: str | None = None, workers: int = 0):
        """`workers` > 0: the production mode instead, gunicorn.conf.py with that many processes."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=database_url, UCC_HOST="127.0.0.1", UCC_PORT=str(self.port),
                   UCC_SECRET_KEY="test-secret", UCC_SIMULATE="0", UCC_WORKERS=str(workers or 1))
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["UCC_LIVE_CHANNEL"] = channel or f"ucc-live-test-{uuid.uuid4().hex[:12]}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        command = [sys.executable, str(ROOT / "app.py")]
        if workers:
            command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:application"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)


def unique_channel() -> str:
    return f"ucc-live-test-{os.getpid()}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def demo_copy(demo_sqlite_url, tmp_path) -> str:
    """A private copy of the seeded demo database, as a URL."""
    dst = tmp_path / "live.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), dst)
    return f"sqlite:///{dst}"


# ---- tokens, points, posting -------------------------------------------------------------------------
class DemoData:
    """Tokens and facts read straight from the database file the servers use."""

    def __init__(self, database_url: str):
        from data.db import Database

        self.db = Database(database_url)
        self._points: dict[str, list[tuple[float, float]]] = {}

    def token(self, role: str = "duty_officer", area: str | None = None, unit: str | None = None) -> str:
        from data.tokens import create_token

        with self.db.session() as s:
            return create_token(s, role, area, unit)

    def user(self, role: str = "duty_officer", area: str | None = None, unit: str | None = None) -> tuple[str, str]:
        """A person who signs in at /login: (username, password)."""
        import secrets

        from data.users import create_user

        username, password = f"{role}-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        with self.db.session() as s:
            create_user(s, username, password, role, area or "320400", unit)
        return username, password

    def point_in(self, area_code: str, index: int = 0) -> tuple[float, float]:
        """A point inside the index-th grid of an area (grids far enough apart not to be merged)."""
        if area_code not in self._points:
            from shapely import wkb
            from sqlalchemy import select

            from data.models import Area

            with self.db.session() as s:
                rows = s.execute(select(Area.geometry).where(Area.level == 5, Area.code.like(area_code + "%"))
                                 .order_by(Area.code)).scalars().all()
            points = [wkb.loads(g).representative_point() for g in rows]
            self._points[area_code] = [(p.x, p.y) for p in points]
        points = self._points[area_code]
        return points[(index * 37) % len(points)]

    def seqs_of(self, case_ids) -> list[int]:
        from sqlalchemy import select

        from data.models import CaseEvent

        with self.db.session() as s:
            return list(s.scalars(select(CaseEvent.seq).where(CaseEvent.case_id.in_(list(case_ids)))
                                  .order_by(CaseEvent.seq)))

    def visible_seqs_after(self, since: int, district: str) -> list[int]:
        from sqlalchemy import select

        from data.models import Case, CaseEvent

        with self.db.session() as s:
            return list(s.scalars(select(CaseEvent.seq).join(Case, Case.id == CaseEvent.case_id)
                                  .where(CaseEvent.seq > since, Case.district_code == district)
                                  .order_by(CaseEvent.seq)))

    def head(self) -> int:
        from sqlalchemy import func, select

        from data.models import CaseEvent

        with self.db.session() as s:
            return s.scalar(select(func.max(CaseEvent.seq))) or 0

    def close(self):
        self.db.dispose()


@pytest.fixture
def demo_data(demo_copy):
    d = DemoData(demo_copy)
    yield d
    d.close()


def post_case(base_url: str, token: str, lon: float, lat: float, category: str = GARBAGE,
              timeout: float = 30, **extra) -> tuple[int, dict, float]:
    """POST /api/v1/events; returns (status, body, seconds)."""
    body = {"category": category, "lon": lon, "lat": lat, "description": "实时推送测试", "source": "hotline"}
    body.update(extra)
    req = urllib.request.Request(base_url + "/api/v1/events", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.load(resp), time.monotonic() - t0
    except urllib.error.HTTPError as err:
        return err.code, json.load(err), time.monotonic() - t0


# ---- the client ---------------------------------------------------------------------------------------
class LiveClient:
    """The real python-socketio client on namespace /live, recording every case_event it receives."""

    def __init__(self, base_url: str, token: str, transports=("websocket",)):
        import socketio

        self.base_url, self.token, self.transports = base_url, token, list(transports)
        self.events: list[dict] = []
        self.times: list[float] = []
        self.cond = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("case_event", self._on_event, namespace=NS)
        # The engine.io client runs each message handler in a thread of its own, so handlers can run
        # out of arrival order: record the order on the wire, in the read loop, for order checks.
        self.wire: list[int] = []
        receive = self.sio.eio._receive_packet
        prefix = f"2{NS},"

        def _receive_packet(pkt):
            data = getattr(pkt, "data", None)
            if isinstance(data, str) and data.startswith(prefix):
                try:
                    name, payload = json.loads(data[len(prefix):])[:2]
                    if name == "case_event":
                        self.wire.append(payload["seq"])
                except (ValueError, KeyError, TypeError):
                    pass
            return receive(pkt)

        self.sio.eio._receive_packet = _receive_packet

    def _on_event(self, data):
        with self.cond:
            self.events.append(data)
            self.times.append(time.monotonic())
            self.cond.notify_all()

    def connect(self, since: int | None = None, resync: bool = True, auth_since: int | None = None) -> dict | None:
        auth = {"token": self.token}
        if auth_since is not None:
            auth["since"] = auth_since
        self.sio.connect(self.base_url, auth=auth, namespaces=[NS], transports=self.transports, wait_timeout=15)
        if resync:
            return self.resync(since)
        return None

    def resync(self, since: int | None) -> dict:
        return self.sio.call("resync", {"since": since}, namespace=NS, timeout=30)

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def wait_seqs(self, seqs, timeout: float = 5.0) -> bool:
        want = set(seqs)
        return self.wait_for(lambda c: want <= set(c.seqs()), timeout)

    def seqs(self) -> list[int]:
        return [e["seq"] for e in list(self.events)]

    def case_ids(self) -> list[int]:
        return [e["case"]["id"] for e in list(self.events)]

    def received_at(self, seq: int) -> float | None:
        for e, t in zip(list(self.events), list(self.times)):
            if e["seq"] == seq:
                return t
        return None

    def close(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def live_clients():
    made: list[LiveClient] = []

    def _make(base_url: str, token: str) -> LiveClient:
        c = LiveClient(base_url, token)
        made.append(c)
        return c

    yield _make
    # A websocket close may wait up to 3 s for a close frame (gunicorn; the embedded server now answers at
    # once, live/bus.py): close them all at once.
    closers = [threading.Thread(target=c.close) for c in made]
    for t in closers:
        t.start()
    for t in closers:
        t.join(10)


@pytest.fixture
def live_server(demo_copy, tmp_path):
    app = LiveAppProcess(demo_copy, tmp_path / "app.log").wait_ready()
    yield app
    app.stop()
