"""Request body limits (web/limits.py): 413 before reading, short and malformed bodies 400, nothing created.

The embedded app through the test client, and the production server (gunicorn, gevent worker) over
raw sockets: a body shorter than its Content-Length, a broken chunked body, and a 50 MB body that
must not grow the worker's memory.
"""
from __future__ import annotations

import io
import json
import shutil
import socket
import threading
import time

import pytest
from sqlalchemy import func, select

from cases.photos import MAX_BYTES as MAX_PHOTO_BYTES
from data.models import Case
from tests.serving import AppProcess

LON, LAT = 119.975, 31.79
GARBAGE = "020102"


def _intake(**extra) -> dict:
    return {"category": GARBAGE, "lon": LON, "lat": LAT, "description": "路边垃圾堆放", "source": "hotline", **extra}


def _cases(app) -> int:
    with app.extensions["ucc"].db.session() as s:
        return s.scalar(select(func.count()).select_from(Case))


class Untouchable(io.BytesIO):
    """A request body that records whether anyone read it."""

    reads = 0

    def read(self, *args):
        self.reads += 1
        return super().read(*args)

    readline = read


class BrokenChunks(io.BytesIO):
    """A body whose server-side reader fails, as gunicorn's does on a malformed chunk size."""

    def read(self, *args):
        raise ValueError("Invalid chunk size")


# The test client takes the length from the stream; these set what the request declares instead.
def declared(n) -> dict:
    return {"CONTENT_LENGTH": str(n)}


CHUNKED = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "", "wsgi.input_terminated": True}


def _refused(resp, status, code):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"] == code and body["message"], body
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


def test_an_api_body_over_its_declared_limit_is_refused_unread(demo_app, client, officer):
    before = _cases(demo_app)
    stream = Untouchable(b"{}")
    resp = client.post("/api/v1/events", input_stream=stream, content_type="application/json",
                       headers=officer, environ_overrides=declared(50 * 1024 * 1024))
    body = _refused(resp, 413, "payload_too_large")
    assert "50.0 MB" in body["message"] and "64 KB" in body["message"]
    assert stream.reads == 0            # refused from the header alone
    assert _cases(demo_app) == before


def test_the_largest_legitimate_intake_and_action_pass(demo_app, client, officer):
    # 2,000 Chinese characters (the intake's limit), JSON-escaped as \\uXXXX: the largest honest body.
    text = "路" * 2000
    raw = json.dumps(_intake(description=text, reporter_phone="13812341234", idempotency_key="k" * 100))
    assert len(raw) > 12_000
    resp = client.post("/api/v1/events", data=raw, content_type="application/json", headers=officer)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    case = resp.get_json()
    raw = json.dumps({"action": "accept", "version": case["version"], "note": "备" * 2000})
    resp = client.post(f"/api/v1/events/{case['id']}/actions", data=raw, content_type="application/json",
                       headers=officer)
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_a_chunked_body_is_read_to_one_byte_over_the_limit(demo_app, client, officer):
    limit = demo_app.extensions["ucc_body_limits"].limit_for("/api/v1/events")
    before = _cases(demo_app)
    padded = json.dumps(_intake(description="x" * 10)) + " " * limit   # valid JSON, one limit too long
    stream = io.BytesIO(padded.encode())
    resp = client.post("/api/v1/events", input_stream=stream, content_type="application/json", headers=officer,
                       environ_overrides=CHUNKED)
    _refused(resp, 413, "payload_too_large")
    assert stream.tell() == limit + 1    # not a byte more than it takes to know
    # Within the limit a chunked body is served as any other.
    ok = client.post("/api/v1/events", input_stream=io.BytesIO(json.dumps(_intake()).encode()),
                     content_type="application/json", headers=officer,
                     environ_overrides=CHUNKED)
    assert ok.status_code == 201, ok.get_data(as_text=True)
    assert _cases(demo_app) == before + 1


def test_a_body_shorter_than_declared_creates_nothing(demo_app, client, officer):
    before = _cases(demo_app)
    raw = json.dumps(_intake()).encode()   # complete JSON, but fewer bytes than announced
    resp = client.post("/api/v1/events", input_stream=io.BytesIO(raw), content_type="application/json",
                       headers=officer, environ_overrides=declared(len(raw) + 20))
    body = _refused(resp, 400, "incomplete_body")
    assert str(len(raw)) in body["message"]
    assert _cases(demo_app) == before


def test_an_unreadable_chunked_body_is_a_400(demo_app, client, officer):
    resp = client.post("/api/v1/events", input_stream=BrokenChunks(b"{}"), content_type="application/json",
                       headers=officer,
                       environ_overrides=CHUNKED)
    _refused(resp, 400, "bad_body")


def test_a_bad_content_length_is_a_400(client, officer):
    resp = client.post("/api/v1/events", input_stream=io.BytesIO(b"{}"), content_type="application/json",
                       headers=officer, environ_overrides=declared("12abc"))
    _refused(resp, 400, "bad_content_length")


def test_dash_callbacks_fit_the_largest_photo_and_other_routes_stay_small(demo_app, client):
    guard = demo_app.extensions["ucc_body_limits"]
    # The largest photo, base64 in a data: URL, inside a callback with the report form's other fields.
    photo = 4 * -(-MAX_PHOTO_BYTES // 3) + len("data:image/jpeg;base64,")
    assert guard.limit_for("/_dash-update-component") >= photo + 64 * 1024
    stream = Untouchable(b"{}")
    resp = client.post("/_dash-update-component", input_stream=stream, content_type="application/json",
                       environ_overrides=declared(guard.limit_for("/_dash-update-component") + 1))
    _refused(resp, 413, "payload_too_large")
    assert stream.reads == 0
    # Everything else (the sign-in form, Socket.IO polling): the small default.
    assert guard.limit_for("/login") == 64 * 1024
    resp = client.post("/login", data={"username": "a" * 70_000, "password": "x"})
    _refused(resp, 413, "payload_too_large")


def test_limits_are_settings(monkeypatch):
    from config import Settings

    monkeypatch.setenv("UCC_MAX_BODY_API", "1k")
    monkeypatch.setenv("UCC_MAX_BODY_PAGES", "20MB")
    s = Settings.from_env()
    assert (s.max_body_api, s.max_body_pages, s.max_body) == (1024, 20 * 1024 * 1024, 64 * 1024)
    monkeypatch.setenv("UCC_MAX_BODY", "lots")
    with pytest.raises(SystemExit, match="UCC_MAX_BODY 应为正的字节数"):
        Settings.from_env()


# ---- the production server ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def production(demo_sqlite_url, tmp_path_factory):
    """gunicorn.conf.py (gevent worker), one worker process, over a copy of the demo database."""
    from data.db import Database
    from data.tokens import create_token

    tmp = tmp_path_factory.mktemp("limits")
    dst = tmp / "app.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), dst)
    db = Database(f"sqlite:///{dst}")
    with db.session() as s:
        token = create_token(s, "duty_officer")
    server = AppProcess(f"sqlite:///{dst}", tmp / "gunicorn.log", server="gunicorn", UCC_WORKERS="1",
                        UCC_PHOTO_DIR=str(tmp / "photos"))
    try:
        server.wait_ready()
        yield server, token, db
    finally:
        server.stop()
        db.dispose()


def _exchange(port: int, head: bytes, body: bytes = b"", *, half_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return _read_response(sock)


def _read_response(sock) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
    return data


def _status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def _head(port: int, token: str, extra: str) -> bytes:
    return (f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n").encode()


def _count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Case))


def _worker_rss_kb(server: AppProcess) -> int:
    children = open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read().split()
    assert len(children) == 1, children
    for line in open(f"/proc/{children[0]}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_production_server_refuses_a_short_body_and_creates_nothing(production):
    server, token, db = production
    before = _count(db)
    body = json.dumps(_intake()).encode()   # a whole intake, but 30 bytes fewer than declared
    raw = _exchange(server.port, _head(server.port, token, f"Content-Length: {len(body) + 30}\r\n"), body)
    status, answer = _status_and_json(raw)
    assert status == 400 and answer["error"] == "incomplete_body", raw
    assert _count(db) == before
    # The same body, honestly declared, is a case: the refusal was about the length alone.
    raw = _exchange(server.port, _head(server.port, token, f"Content-Length: {len(body)}\r\n"), body)
    assert _status_and_json(raw)[0] == 201, raw
    assert _count(db) == before + 1


@pytest.mark.parametrize("chunks", [
    b"zz\r\n{}\r\n0\r\n\r\n",                      # not a hexadecimal size
    b"2\r\n{}XX0\r\n\r\n",                         # chunk without its CRLF
    b"40\r\n{\"category\": \"020102\"}",           # cut off inside a chunk, then half-closed
], ids=["bad-size", "no-terminator", "cut-off"])
def test_production_server_answers_a_malformed_chunked_body_with_400(production, chunks):
    server, token, db = production
    before = _count(db)
    raw = _exchange(server.port, _head(server.port, token, "Transfer-Encoding: chunked\r\n"), chunks)
    status, answer = _status_and_json(raw)
    assert status == 400 and answer["error"] == "bad_body", raw
    assert _count(db) == before


def test_a_50_mb_body_does_not_grow_the_worker(production):
    server, token, _db = production
    size = 50 * 1024 * 1024
    _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # warm
    before = _worker_rss_kb(server)
    block = b" " * (1024 * 1024)

    for extra in (f"Content-Length: {size}\r\n", "Transfer-Encoding: chunked\r\n"):
        chunked = "chunked" in extra
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(_head(server.port, token, extra))

            def send():   # the client keeps sending while the server answers; it may hang up on us
                try:
                    for _ in range(size // len(block)):
                        sock.sendall((b"100000\r\n" + block + b"\r\n") if chunked else block)
                    if chunked:
                        sock.sendall(b"0\r\n\r\n")
                except OSError:
                    pass

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            status, answer = _status_and_json(_read_response(sock))
            assert status == 413 and answer["error"] == "payload_too_large", answer
            sock.shutdown(socket.SHUT_RDWR)
            sender.join(30)
    time.sleep(0.2)
    grown = _worker_rss_kb(server) - before
    print(f"worker RSS {before} kB before, +{grown} kB after two 50 MB bodies")
    assert grown < 8 * 1024, f"the worker grew by {grown} kB"
