"""The 12345 exchange over real HTTP (`python app.py` on a free port over the demo city): tickets in, callbacks, the
hotline token's refusals, its pull of changes, and the push to a real receiver that is down, then answers 503, then
takes every change once and in order — dead-lettered past the limit and sent again from the operators' list."""
from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from data.db import Database
from data.files import HOTLINE_RULES_PATH
from data.models import Area
from data.tokens import create_token
from tests.serving import AppProcess, free_port

LON, LAT = 119.975, 31.79  # central Changzhou (天宁区), as tests/test_api_events.py
# the shipped rules with a fast schedule (UCC_HOTLINE_RULES), so that the limit is reached in seconds: 0.3 s, 0.6 s,
# 1 s … at most 4 attempts
FAST_RULES = {**json.loads(HOTLINE_RULES_PATH.read_text(encoding="utf-8")),
              "push": {"first_delay_seconds": 0.3, "factor": 2, "max_delay_seconds": 1, "max_attempts": 4,
                       "max_age_hours": 1, "timeout_seconds": 2, "round_seconds": 0.2, "batch": 50,
                       "lease_seconds": 30}}


class Receiver:
    """The hotline's webhook on a real port: `refuse` requests answered 503 first, then 204; what it accepted."""

    def __init__(self, port: int, refuse: int = 0):
        self.refuse, self.refused = refuse, 0
        self.accepted: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.refused < outer.refuse:
                    outer.refused += 1
                    self.send_response(503)
                else:
                    outer.accepted.append((self.headers["X-UCC-Delivery"], body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hotline_app(demo_sqlite_url, tmp_path_factory):
    """The app with its webhook at a port nobody listens on yet, the fast schedule, and tokens of each role."""
    d = tmp_path_factory.mktemp("hotline")
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), d / "app.db")
    url = f"sqlite:///{d / 'app.db'}"
    db = Database(url)
    with db.session() as s:
        tokens = {role: create_token(s, role) for role in ("hotline", "admin", "duty_officer", "leader", "wall")}
        community = s.scalar(select(Area.name).where(Area.level == 4).order_by(Area.code))
    db.dispose()
    (d / "rules.json").write_text(json.dumps(FAST_RULES), encoding="utf-8")
    hook_port = free_port()
    app = AppProcess(url, d / "app.log", UCC_HOTLINE_WEBHOOK=f"http://127.0.0.1:{hook_port}/12345/push",
                     UCC_HOTLINE_RULES=str(d / "rules.json")).wait_ready()
    app.tokens = {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    app.hook_port, app.community = hook_port, community
    yield app
    app.stop()


def _post(app, path, role="hotline", **kw):
    return requests.post(app.url + path, headers=app.tokens[role], timeout=30, **kw)


def _get(app, path, role="hotline", **kw):
    return requests.get(app.url + path, headers=app.tokens[role], timeout=30, **kw)


def _ticket(no, **kw):
    doc = {"ticket_no": no, "caller": "王小明", "phone": "13912345678", "content": "夜间施工噪音扰民",
           "lon": LON, "lat": LAT, "category_hint": "施工噪音", "deadline": "2026-12-12T17:00:00+08:00"}
    doc.update(kw)
    return {k: v for k, v in doc.items() if v is not None}


def _error(resp, status, code=None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["message"] and "Traceback" not in resp.text
    if code:
        assert body["error"] == code, body
    return body


def _wait(what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("not reached in time")


def _close(app, case_id):
    for action, note in (("accept", ""), ("dispatch", ""), ("sign", ""), ("resolve", "已停止夜间施工"),
                         ("verify", ""), ("close", "经现场核查已停工，办结")):
        version = _get(app, f"/api/v1/events/{case_id}", "admin").json()["version"]
        resp = _post(app, f"/api/v1/events/{case_id}/actions", "admin",
                     json={"action": action, "version": version, "note": note})
        assert resp.status_code == 200, resp.text


def test_a_ticket_in_once_and_bad_tickets_leave_nothing(hotline_app):
    app = hotline_app
    first = _post(app, "/api/v1/hotline/tickets", json=_ticket("CZ-20261208-0001"))
    assert first.status_code == 201, first.text
    body = first.json()
    case = body["case"]
    assert (case["source"], case["external_system"], case["external_ref"]) == ("hotline", "12345", "CZ-20261208-0001")
    assert case["category"]["code"] == "020301" and body["matched_by"] == "class"
    assert (body["caller"], body["phone"], case["reporter_phone"]) == ("王**", "139****5678", "139****5678")
    assert body["deadline"] == "2026-12-12T17:00:00+08:00"
    again = _post(app, "/api/v1/hotline/tickets", json=_ticket("CZ-20261208-0001"))
    assert again.status_code == 200 and again.json()["case_id"] == case["id"]
    _error(_post(app, "/api/v1/hotline/tickets", json=_ticket("CZ-20261208-0001", content="别的事")), 409,
           "ticket_conflict")
    # the operators see the caller whole; the hotline reads its ticket by number
    assert _get(app, "/api/v1/hotline/tickets/CZ-20261208-0001", "duty_officer").json()["caller"] == "王小明"
    found = _get(app, "/api/v1/events", params={"external_ref": "CZ-20261208-0001"}).json()["items"]
    assert [c["id"] for c in found] == [case["id"]]

    by_address = _post(app, "/api/v1/hotline/tickets", json=_ticket(
        "CZ-20261208-0002", lon=None, lat=None, address=f"{app.community}某小区 3 栋", category_hint="路灯不亮",
        content="小区门口路灯不亮"))
    assert by_address.status_code == 201, by_address.text
    assert by_address.json()["located_by"] == "address"
    assert app.community in [a["name"] for a in by_address.json()["case"]["chain"]]

    bad = [
        (_ticket("B-1", content=None), 400, "bad_request"),
        (_ticket("B-2", lat=None), 400, "bad_request"),
        (_ticket("B-3", lon=None, lat=None), 400, "bad_request"),
        (_ticket("B-4", phone="12345"), 400, "bad_request"),
        (_ticket("B-5", deadline="2026-12-12 17:00"), 400, "bad_request"),
        (_ticket("B 6"), 400, "bad_request"),
        (_ticket("B-7", category_hint="外星人入侵"), 422, "unknown_category"),
        (_ticket("B-8", lon=None, lat=None, address="火星基地"), 422, "unknown_address"),
        (_ticket("B-9", lon=150.0, lat=10.0), 422, "outside_city"),
    ]
    for doc, status, code in bad:
        err = _error(_post(app, "/api/v1/hotline/tickets", json=doc), status, code)
        if status == 400 and code == "bad_request" and doc["ticket_no"] in ("B-1", "B-4"):
            assert set(err["fields"]) == {"content" if doc["ticket_no"] == "B-1" else "phone"}
    _error(requests.post(app.url + "/api/v1/hotline/tickets", data="{not json", timeout=30,
                         headers={**app.tokens["hotline"], "Content-Type": "application/json"}), 400)
    for no in ("B-1", "B-2", "B-3", "B-4", "B-5", "B-7", "B-8", "B-9"):
        assert _get(app, "/api/v1/events", "admin", params={"external_ref": no}).json()["items"] == [], no
        _error(_get(app, f"/api/v1/hotline/tickets/{no}", "admin"), 404)


def test_the_hotline_token_reaches_its_own_views_only(hotline_app):
    app = hotline_app
    patrol = _post(app, "/api/v1/events", "admin", json={"category": "020102", "lon": LON + 0.01, "lat": LAT,
                                                           "source": "patrol", "description": "路边垃圾"})
    assert patrol.status_code == 201, patrol.text
    other = patrol.json()["id"]
    for method, path, kw in (("get", "/api/v1/areas", {}), ("get", "/api/v1/kpis?start=2026-12-01&end=2026-12-07", {}),
                             ("post", "/api/v1/events", {"json": {"category": "020102", "lon": LON, "lat": LAT,
                                                                  "source": "hotline"}}),
                             ("post", f"/api/v1/events/{other}/actions", {"json": {"action": "accept", "version": 1}}),
                             ("get", "/api/v1/hotline/deliveries", {}),
                             ("post", "/api/v1/hotline/deliveries/1/retry", {}),
                             ("get", "/api/v1/forecast", {})):
        _error(getattr(requests, method)(app.url + path, headers=app.tokens["hotline"], timeout=30, **kw), 403,
               "forbidden")
    _error(_get(app, f"/api/v1/events/{other}"), 403)  # not one of its tickets
    listed = _get(app, "/api/v1/events", params={"per_page": 500}).json()["items"]
    assert listed and {c["external_system"] for c in listed} == {"12345"}
    for role in ("leader", "wall"):  # others may not post tickets or callbacks, nor work the push's list
        _error(_post(app, "/api/v1/hotline/tickets", role, json=_ticket("X-1")), 403)
        _error(_post(app, "/api/v1/hotline/tickets/X-1/callback", role, json={"satisfaction": "满意"}), 403)
        _error(_get(app, "/api/v1/hotline/deliveries", role), 403)
    assert _get(app, "/api/v1/events", "admin", params={"external_ref": "X-1"}).json()["items"] == []
    _error(requests.post(app.url + "/api/v1/hotline/tickets", json=_ticket("X-2"), timeout=30), 401)


def test_callback_after_closing_and_an_unsatisfied_one_reopens(hotline_app):
    app = hotline_app
    case_id = _post(app, "/api/v1/hotline/tickets", json=_ticket("CZ-20261208-0003", lon=LON + 0.02)).json()["case_id"]
    _error(_post(app, "/api/v1/hotline/tickets/CZ-20261208-0003/callback", json={"satisfaction": "满意"}), 409,
           "not_closed")
    _error(_post(app, "/api/v1/hotline/tickets/CZ-20261208-0003/callback", json={"satisfaction": "还行"}), 400)
    _error(_post(app, "/api/v1/hotline/tickets/NO-SUCH/callback", json={"satisfaction": "满意"}), 404)
    _close(app, case_id)
    resp = _post(app, "/api/v1/hotline/tickets/CZ-20261208-0003/callback",
                 json={"satisfaction": "不满意", "note": "晚上十点后仍在施工"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["reopened"] and out["case"]["state"] == "dispatched"
    assert out["case"]["callback"]["result"] == "unsatisfied"
    history = _get(app, f"/api/v1/events/{case_id}", "admin").json()["history"]
    assert [h["action"] for h in history[-2:]] == ["callback", "reopen"]
    assert "晚上十点后仍在施工" in history[-1]["note"]


def test_the_hotline_pulls_what_changed(hotline_app):
    app = hotline_app
    since = (datetime.now(timezone.utc) - timedelta(seconds=2)).isoformat()
    case_id = _post(app, "/api/v1/hotline/tickets", json=_ticket("CZ-20261208-0004", lon=LON - 0.02)).json()["case_id"]
    version = _get(app, f"/api/v1/events/{case_id}").json()["version"]
    assert _post(app, f"/api/v1/events/{case_id}/actions", "admin",
                 json={"action": "accept", "version": version}).status_code == 200
    pulled = _get(app, "/api/v1/events", params={"updated_since": since}).json()
    mine = [c for c in pulled["items"] if c["id"] == case_id]
    assert mine and mine[0]["state"] == "accepted"
    assert {c["external_system"] for c in pulled["items"]} == {"12345"}


def test_the_push_survives_a_receiver_down_then_failing_and_the_dead_letters_go_again(hotline_app):
    app = hotline_app
    # a ticket's whole story while nobody listens: in, handled, closed, called back unsatisfied, reopened
    case_id = _post(app, "/api/v1/hotline/tickets", json=_ticket("CZ-20261208-0006", lon=LON - 0.03)).json()["case_id"]
    _close(app, case_id)
    assert _post(app, "/api/v1/hotline/tickets/CZ-20261208-0006/callback",
                 json={"satisfaction": "unsatisfied", "note": "仍有噪音"}).json()["reopened"]
    # phase 1: the queued changes die after 4 attempts and are listed for the operators
    _wait(lambda: _get(app, "/api/v1/hotline/deliveries", "admin", params={"status": "pending"}).json()["total"] == 0
          and _get(app, "/api/v1/hotline/deliveries", "admin", params={"status": "dead"}).json()["total"] > 0)
    dead = _get(app, "/api/v1/hotline/deliveries", "duty_officer", params={"status": "dead", "limit": 500}).json()
    assert dead["total"] == len(dead["items"])
    firsts = {}
    for d in sorted(dead["items"], key=lambda d: d["id"]):
        firsts.setdefault(d["ticket_no"], d)
    # each ticket's first change was tried 4 times; the later ones wait behind it, untried
    assert {d["attempts"] for d in firsts.values()} == {4}
    assert all("Connection" in d["last_error"] for d in firsts.values())
    assert all(d["attempts"] == 0 and "前一条" in d["last_error"] for d in dead["items"] if d not in firsts.values())
    # phase 2: the receiver comes up and answers 503 twice; the operator sends each ticket's first dead change again
    receiver = Receiver(app.hook_port, refuse=2)
    try:
        for d in firsts.values():
            resp = _post(app, f"/api/v1/hotline/deliveries/{d['id']}/retry", "admin")
            assert resp.status_code == 200 and resp.json()["status"] == "pending", resp.text
        _error(_post(app, f"/api/v1/hotline/deliveries/{min(d['id'] for d in firsts.values())}/retry", "admin"), 409)
        _wait(lambda: len(receiver.accepted) >= dead["total"])
        # phase 3: a new change while it is up goes through the 503-free receiver at once
        new_case = _post(app, "/api/v1/hotline/tickets", json=_ticket("CZ-20261208-0005", lon=LON + 0.03)).json()[
            "case_id"]
        _wait(lambda: any(b["ticket_no"] == "CZ-20261208-0005" for _h, b in receiver.accepted))
        time.sleep(1.5)  # a few more rounds: nothing may come twice
        ids = [h for h, _b in receiver.accepted]
        assert len(ids) == len(set(ids)) == dead["total"] + 1 and receiver.refused == 2
        assert all(str(b["delivery_id"]) == h for h, b in receiver.accepted)
        # each ticket's changes in the order they happened
        by_ticket: dict[str, list[dict]] = {}
        for _h, b in receiver.accepted:
            by_ticket.setdefault(b["ticket_no"], []).append(b)
        for steps in by_ticket.values():
            assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)
            assert [s["delivery_id"] for s in steps] == sorted(s["delivery_id"] for s in steps)
        story = by_ticket["CZ-20261208-0006"]
        assert [s["action"] for s in story] == ["report", "accept", "dispatch", "sign", "resolve", "verify", "close",
                                                "callback", "reopen"]
        assert [s["status_word"] for s in story[-3:]] == ["已办结", "已办结", "已派单"]
        assert (story[-2]["satisfaction"], story[-1]["reply"]) == ("unsatisfied", "12345 回访不满意：仍有噪音")
        closing = next(s for s in story if s["action"] == "close")
        assert (closing["reply"], closing["status_word"]) == ("经现场核查已停工，办结", "已办结")
        assert by_ticket["CZ-20261208-0005"][0]["case_id"] == new_case
        listed = _get(app, "/api/v1/hotline/deliveries", "admin", params={"status": "delivered", "limit": 500}).json()
        assert listed["total"] == dead["total"] + 1
        assert _get(app, "/api/v1/hotline/deliveries", "admin", params={"status": "dead"}).json()["total"] == 0
        _error(_get(app, "/api/v1/hotline/deliveries", "admin", params={"status": "lost"}), 400)
    finally:
        receiver.stop()
