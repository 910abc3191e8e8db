"""The 12345 exchange's service (cases/hotline.py) on SQLite and PostgreSQL: tickets through the one intake, callbacks
on the lifecycle, and the push — fed from the outbox, sent to a real HTTP receiver that is down and then up, in
order and once per change, dead-lettered after the limit and sent again from the list."""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from cases.hotline import CallbackIn, HotlineService, TicketIn
from data import files
from data.models import Case, HotlineDelivery, HotlineTicket
from data.tokens import Principal
from dispatch.errors import ServiceError
from tests.factories import small_world
from tests.serving import free_port

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)  # a Monday, 10:00 in the city
HOTLINE = Principal(kind="token", ident="token:12345", role="hotline", area_code="320400")
ADMIN = Principal(kind="user", ident="admin", role="admin", area_code="320400")
OFFICER = Principal(kind="user", ident="duty", role="duty_officer", area_code="320400")
POINT = (119.91, 31.71)  # inside rect_city's first grid


class Receiver:
    """A webhook receiver on a real port: answers `down_for` requests with 503, then 200; keeps what it accepted."""

    def __init__(self, port: int, down_for: int = 0):
        self.port, self.down_for = port, down_for
        self.accepted: list[dict] = []
        self.refused = 0
        self.headers: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.refused < outer.down_for:
                    outer.refused += 1
                    self.send_response(503)
                else:
                    outer.accepted.append(body)
                    outer.headers.append(self.headers["X-UCC-Delivery"])
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def world(empty_db):
    cases, clock = small_world(empty_db, NOW)
    port = free_port()
    rules = files.hotline_rules()
    rules = replace(rules, push=replace(rules.push, first_delay_seconds=10, factor=2, max_delay_seconds=60,
                                        max_attempts=4, max_age_hours=48, timeout_seconds=2))
    hotline = HotlineService(empty_db, cases, f"http://127.0.0.1:{port}/hook", rules)
    return cases, clock, hotline, port


def ticket(no="T-1", **kw) -> TicketIn:
    doc = {"ticket_no": no, "caller": "张三", "phone": "13812345678", "content": "小区门口夜间施工噪音扰民",
           "lon": POINT[0], "lat": POINT[1], "category_hint": "噪音扰民", "deadline": "2026-12-12T17:00:00+08:00"}
    doc.update(kw)
    return TicketIn.model_validate({k: v for k, v in doc.items() if v is not None})


def close(cases, case_id: int) -> dict:
    """The case taken through to 结案 by an admin."""
    c = cases.get(case_id, ADMIN)
    for action, note in (("accept", ""), ("dispatch", ""), ("sign", ""), ("resolve", "已责令停止夜间施工"),
                         ("verify", ""), ("close", "经核查已停止夜间施工，办结")):
        c = cases.act(case_id, ADMIN, action, c["version"], note=note)
    return c


def test_a_ticket_becomes_one_case_and_a_replay_answers_it(world):
    cases, _clock, hotline, _port = world
    answer, created = hotline.receive(ticket(), HOTLINE)
    assert created and answer["matched_by"] == "class" and answer["located_by"] == "point"
    case = answer["case"]
    assert (case["source"], case["external_system"], case["external_ref"]) == ("hotline", "12345", "T-1")
    assert case["category"]["code"] == "020508" and case["reporter_phone"] == "138****5678"
    assert (answer["caller"], answer["phone"]) == ("张*", "138****5678")  # masked for the hotline's own token
    again, created = hotline.receive(ticket(), HOTLINE)
    assert not created and again["case_id"] == case["id"]
    with pytest.raises(ServiceError) as err:
        hotline.receive(ticket(content="另一件事"), HOTLINE)
    assert (err.value.status, err.value.code) == (409, "ticket_conflict")
    with cases.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
        assert s.get(HotlineTicket, "T-1").caller == "张三"  # kept whole, shown whole to the operators only
    assert hotline.ticket("T-1", OFFICER)["caller"] == "张三"


def test_an_address_and_hint_variants_and_refusals(world):
    cases, _clock, hotline, _port = world
    by_address, _ = hotline.receive(ticket("T-2", lon=None, lat=None, address="测试市-1-1-1 某路 18 号",
                                           category_hint="城市管理/街面秩序/占道经营"), HOTLINE)
    assert by_address["located_by"] == "address" and by_address["case"]["category"]["code"] == "020551"
    assert "320402001001" in [a["code"] for a in by_address["case"]["chain"]]  # the community it names
    by_code, _ = hotline.receive(ticket("T-3", category_hint="010118"), HOTLINE)
    assert (by_code["matched_by"], by_code["case"]["category"]["name"]) == ("code", "路灯不亮")
    by_content, _ = hotline.receive(ticket("T-4", category_hint=None, content="楼下餐饮油烟扰民"), HOTLINE)
    assert (by_content["matched_by"], by_content["case"]["category"]["code"]) == ("content", "020116")
    for bad, code in ((ticket("T-5", category_hint="外星人入侵"), "unknown_category"),
                      (ticket("T-6", lon=None, lat=None, address="火星基地"), "unknown_address")):
        with pytest.raises(ServiceError) as err:
            hotline.receive(bad, HOTLINE)
        assert (err.value.status, err.value.code) == (422, code)
    with cases.db.session() as s:  # the refused ones left nothing behind
        assert s.scalar(select(func.count()).select_from(HotlineTicket)) == 3
        assert s.scalar(select(func.count()).select_from(Case)) == 3


def test_callback_waits_for_closing_and_unsatisfied_reopens(world):
    cases, _clock, hotline, _port = world
    case_id = hotline.receive(ticket(), HOTLINE)[0]["case_id"]
    with pytest.raises(ServiceError) as err:
        hotline.callback("T-1", CallbackIn(satisfaction="满意"), HOTLINE)
    assert (err.value.status, err.value.code) == (409, "not_closed")
    close(cases, case_id)
    out = hotline.callback("T-1", CallbackIn(satisfaction="不满意", note="夜里仍在施工"), HOTLINE)
    assert out["reopened"] and out["case"]["state"] == "dispatched" and out["case"]["reopen_count"] == 1
    assert out["case"]["callback"]["result"] == "unsatisfied"
    again = hotline.callback("T-1", CallbackIn(satisfaction="unsatisfied", note="夜里仍在施工"), HOTLINE)
    assert again["replayed"] and again["case"]["version"] == out["case"]["version"]  # nothing written twice
    with pytest.raises(ServiceError) as err:
        hotline.callback("T-1", CallbackIn(satisfaction="satisfied"), HOTLINE)
    assert err.value.code == "already_called_back"
    with pytest.raises(ServiceError) as err:
        hotline.callback("NO-SUCH", CallbackIn(satisfaction="satisfied"), HOTLINE)
    assert err.value.status == 404


def _round(hotline, clock, seconds=0):
    clock.now += timedelta(seconds=seconds)
    return hotline.run_round()


def test_every_change_reaches_a_receiver_that_was_down_once_and_in_order(world):
    cases, clock, hotline, port = world
    case_id = hotline.receive(ticket(), HOTLINE)[0]["case_id"]
    # a second caller about the same noise: merged at intake into the open case, whose story it then follows
    merged = hotline.receive(ticket("T-2", caller="李四", content="同一工地夜间施工"), HOTLINE)[0]["case"]
    assert merged["state"] == "merged" and merged["merged_into"] == case_id
    close(cases, case_id)
    hotline.callback("T-1", CallbackIn(satisfaction="satisfied", note="已安静"), HOTLINE)
    # nobody listens yet: each ticket's first change fails and waits; the later ones wait behind it
    assert _round(hotline, clock) == 0
    with cases.db.session() as s:
        rows = s.scalars(select(HotlineDelivery).order_by(HotlineDelivery.id)).all()
        assert [(r.ticket_no, r.attempts) for r in rows if r.attempts] == [("T-1", 1), ("T-2", 1)]
        assert rows[0].last_error.startswith("ConnectionError")
    receiver = Receiver(port, down_for=1)  # up, but its first answer is 503
    try:
        assert _round(hotline, clock, 5) == 0  # not due yet (10 s after the first failure)
        _round(hotline, clock, 6)  # T-1's first gets the 503 and waits 20 s more; T-2's go through
        for _ in range(6):
            _round(hotline, clock, 60)
        steps = [(b["ticket_no"], b["action"], b["state"]) for b in receiver.accepted]
        handled = [("accept", "accepted"), ("dispatch", "dispatched"), ("sign", "signed"), ("resolve", "resolved"),
                   ("verify", "verified"), ("close", "closed"), ("callback", "closed")]
        assert [(a, st) for no, a, st in steps if no == "T-1"] == [("report", "reported")] + handled
        assert [(a, st) for no, a, st in steps if no == "T-2"] == [("merge", "merged")] + handled
        ids = [b["delivery_id"] for b in receiver.accepted]
        assert len(ids) == len(set(ids)) == 16 and receiver.headers == [str(i) for i in ids]
        assert receiver.refused == 1
        closing = next(b for b in receiver.accepted if b["action"] == "close")
        assert closing["reply"] == "经核查已停止夜间施工，办结" and closing["status_word"] == "已办结"
        assert next(b for b in receiver.accepted if b["action"] == "callback")["satisfaction"] == "satisfied"
        assert next(b for b in receiver.accepted if b["action"] == "merge")["merged_into"] == case_id
        assert _round(hotline, clock, 60) == 0  # nothing is sent twice
        assert len(receiver.accepted) == 16
        assert hotline.deliveries(ADMIN, "delivered")["total"] == 16
    finally:
        receiver.stop()


def test_past_the_limit_a_change_is_dead_until_an_operator_sends_it_again(world):
    cases, clock, hotline, port = world
    case_id = hotline.receive(ticket(), HOTLINE)[0]["case_id"]
    c = cases.get(case_id, ADMIN)
    cases.act(case_id, ADMIN, "reject", c["version"], note="非本平台受理范围，退回 12345 联系 13900001111")
    for _ in range(5):  # 4 attempts, receiver down
        _round(hotline, clock, 61)
    dead = hotline.deliveries(ADMIN, "dead")
    assert dead["total"] == 2  # the report, and the rejection held behind it
    assert hotline.dead_summary(OFFICER)["count"] == 2 and hotline.dead_summary(HOTLINE) is None
    with pytest.raises(ServiceError) as err:
        hotline.deliveries(HOTLINE, "dead")
    assert err.value.status == 403
    first = min(d["id"] for d in dead["items"])
    with pytest.raises(ServiceError) as err:
        hotline.retry(first + 100, ADMIN)
    assert err.value.status == 404
    receiver = Receiver(port)
    try:
        assert hotline.retry(first, OFFICER)["status"] == "pending"
        with pytest.raises(ServiceError) as err:
            hotline.retry(first, OFFICER)
        assert err.value.status == 409
        _round(hotline, clock, 1)
        assert [b["action"] for b in receiver.accepted] == ["report", "reject"]
        assert receiver.accepted[1]["reply"] == "非本平台受理范围，退回 12345 联系 139****1111"
        assert receiver.accepted[1]["status_word"].startswith("不予立案")
        assert hotline.deliveries(ADMIN, "dead")["total"] == 0
    finally:
        receiver.stop()


def test_the_hotline_reads_only_its_own_tickets(world):
    cases, _clock, hotline, _port = world
    own = hotline.receive(ticket(), HOTLINE)[0]["case_id"]
    other, _ = cases.intake({"category": "020508", "lon": POINT[0], "lat": POINT[1] + 0.01, "source": "patrol"},
                            ADMIN)
    assert cases.get(own, HOTLINE)["id"] == own
    with pytest.raises(ServiceError) as err:
        cases.get(other["id"], HOTLINE)
    assert err.value.status == 403
    changed = cases.changed_since(HOTLINE, NOW - timedelta(hours=1))
    assert [c["id"] for c in changed["items"]] == [own]


def test_one_process_at_a_time_sends_and_another_takes_over_when_it_stops(world):
    cases, clock, hotline, port = world
    other = HotlineService(cases.db, cases, hotline.webhook, hotline.rules)  # a second server process
    hotline.receive(ticket(), HOTLINE)
    receiver = Receiver(port)
    try:
        assert hotline.run_round() == 1
        hotline.receive(ticket("T-9", content="另一处路灯不亮", category_hint="路灯不亮", lon=POINT[0] + 0.03), HOTLINE)
        assert other.run_round() == 0  # the lease is the first one's
        clock.now += timedelta(seconds=hotline.rules.push.lease_seconds + 1)  # the first one stopped
        assert other.run_round() == 1 and hotline.run_round() == 0
        assert [b["ticket_no"] for b in receiver.accepted] == ["T-1", "T-9"]
    finally:
        receiver.stop()
