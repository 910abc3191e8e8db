"""One server process (`python app.py`, no Redis) and real Socket.IO clients on /live:
delivery by area, masking, resync with no gap and no duplicate."""
from __future__ import annotations

import threading
import time

import socketio

from tests.live.conftest import LIYANG, NS, TIANNING, post_case

LON, LAT = 119.975, 31.79  # 天宁区


def test_a_new_case_reaches_the_city_and_district_officers_within_a_second(live_server, demo_data, live_clients):
    city = live_clients(live_server.url, demo_data.token("duty_officer"))
    district = live_clients(live_server.url, demo_data.token("duty_officer", TIANNING))
    wall = live_clients(live_server.url, demo_data.token("wall"))
    for c in (city, district, wall):
        ack = c.connect(since=None)
        assert ack["ok"] and ack["replayed"] == 0
    writer = demo_data.token("duty_officer")
    status, case, _ = post_case(live_server.url, writer, LON, LAT, reporter_phone="13812341234")
    posted_at = time.monotonic()
    assert status == 201, case
    [seq] = demo_data.seqs_of([case["id"]])
    for c in (city, district, wall):
        assert c.wait_seqs([seq], timeout=1.0), f"not received within 1 s: {c.seqs()}"
        assert c.received_at(seq) - posted_at < 1.0
        [event] = [e for e in c.events if e["seq"] == seq]
        assert event["type"] == "created"
        got = event["case"]
        # The case object as GET /events/ID gives it, with the reporter's phone masked.
        assert got["id"] == case["id"] and got["state"] == "reported" and got["version"] == 1
        assert [a["code"] for a in got["chain"]][-2:] == [TIANNING, "320400"]
        assert got["unit"]["code"] == case["unit"]["code"] and got["history"][0]["to"] == "reported"
        assert got["reporter_phone"] == "138****1234"
    # An action on the case is an "updated" event with the new version.
    officer = demo_data.token("duty_officer")
    import json
    import urllib.request

    req = urllib.request.Request(f"{live_server.url}/api/v1/events/{case['id']}/actions", method="POST",
                                 data=json.dumps({"action": "accept", "version": 1}).encode(),
                                 headers={"Authorization": f"Bearer {officer}", "Content-Type": "application/json"})
    assert urllib.request.urlopen(req, timeout=10).status == 200
    seqs = demo_data.seqs_of([case["id"]])
    assert len(seqs) == 2
    assert district.wait_seqs(seqs, timeout=1.0)
    updated = [e for e in district.events if e["seq"] == seqs[1]][0]
    assert updated["type"] == "updated" and updated["case"]["state"] == "accepted" and updated["case"]["version"] == 2


def test_clients_of_another_area_or_unit_do_not_receive_it(live_server, demo_data, live_clients):
    writer = demo_data.token("duty_officer")
    # Learn which unit the case goes to from a first case; then watch a second one.
    status, first, _ = post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 3))
    assert status == 201
    unit = first["unit"]["code"]
    # another unit of 天宁区 (a handler's area must contain their unit's jurisdiction)
    other_units = [u for u in _units(demo_data) if u != unit and u.startswith(f"U-{TIANNING}")]
    tianning = live_clients(live_server.url, demo_data.token("duty_officer", TIANNING))
    liyang = live_clients(live_server.url, demo_data.token("duty_officer", LIYANG))
    liyang_wall = live_clients(live_server.url, demo_data.token("wall", LIYANG))
    handler = live_clients(live_server.url, demo_data.token("unit_handler", TIANNING, unit))
    other_handler = live_clients(live_server.url, demo_data.token("unit_handler", TIANNING, other_units[0]))
    for c in (tianning, liyang, liyang_wall, handler, other_handler):
        c.connect(since=None)
    status, case, _ = post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 4))
    assert status == 201 and case["unit"]["code"] == unit
    [seq] = demo_data.seqs_of([case["id"]])
    assert tianning.wait_seqs([seq], 1.0) and handler.wait_seqs([seq], 1.0)
    # A case in 溧阳 reaches 溧阳's clients: they are listening, and the 天宁 case did not come first.
    status, there, _ = post_case(live_server.url, writer, *demo_data.point_in(LIYANG, 1))
    assert status == 201
    [there_seq] = demo_data.seqs_of([there["id"]])
    assert liyang.wait_seqs([there_seq], 1.0) and liyang_wall.wait_seqs([there_seq], 1.0)
    time.sleep(0.3)
    assert liyang.seqs() == [there_seq] and liyang_wall.seqs() == [there_seq]
    assert seq not in other_handler.seqs() and there_seq not in tianning.seqs()


def test_a_client_that_cannot_emit_asks_for_its_replay_when_connecting(live_server, demo_data, live_clients):
    """A Dash page's component cannot emit `resync`: it passes `since` in its auth instead."""
    writer = demo_data.token("duty_officer")
    ids = [post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 30 + i))[1]["id"] for i in range(3)]
    post_case(live_server.url, writer, *demo_data.point_in(LIYANG, 30))
    seqs = demo_data.seqs_of(ids)
    c = live_clients(live_server.url, demo_data.token("duty_officer", TIANNING))
    c.connect(resync=False, auth_since=seqs[0])
    assert c.wait_seqs(seqs[1:], 2.0)
    status, case, _ = post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 40))
    [new] = demo_data.seqs_of([case["id"]])
    assert c.wait_seqs([new], 2.0)
    time.sleep(0.3)
    assert c.wire == seqs[1:] + [new]


def _units(demo_data) -> list[str]:
    from sqlalchemy import select

    from data.models import Unit

    with demo_data.db.session() as s:
        return list(s.scalars(select(Unit.code).order_by(Unit.code)))


def test_a_connection_without_a_valid_token_is_refused(live_server):
    sio = socketio.Client(reconnection=False)
    try:
        sio.connect(live_server.url, auth={"token": "ucc_nope"}, namespaces=[NS], transports=["websocket"],
                    wait_timeout=10)
        raise AssertionError("connected with a bad token")
    except socketio.exceptions.ConnectionError as exc:
        assert "令牌" in str(exc) or "unauthorized" in str(exc) or "One or more namespaces failed" in str(exc)
    finally:
        sio.disconnect()


def test_reconnect_with_the_last_sequence_number_gets_exactly_the_missed_events(live_server, demo_data, live_clients):
    writer = demo_data.token("duty_officer")
    token = demo_data.token("duty_officer", TIANNING)
    first = live_clients(live_server.url, token)
    first.connect(since=None)
    status, case, _ = post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 5))
    assert status == 201
    [seen] = demo_data.seqs_of([case["id"]])
    assert first.wait_seqs([seen], 2.0)
    last = max(first.seqs())
    first.close()
    # While it is away: three cases in 天宁, two in 溧阳 (not for it), one action on a 天宁 case.
    mine, theirs = [], []
    for i in range(3):
        status, c, _ = post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 10 + i))
        assert status == 201
        mine.append(c["id"])
    for i in range(2):
        status, c, _ = post_case(live_server.url, writer, *demo_data.point_in(LIYANG, 10 + i))
        assert status == 201
        theirs.append(c["id"])
    missed = demo_data.seqs_of(mine)
    assert missed == demo_data.visible_seqs_after(last, TIANNING)
    back = live_clients(live_server.url, token)
    ack = back.connect(since=last)
    assert ack["ok"] and ack["complete"] and ack["replayed"] == len(missed)
    assert back.wait_seqs(missed, 2.0)
    assert back.wire == missed  # exactly these, in order, nothing twice
    # The live stream goes on after the replay, without a duplicate.
    status, c, _ = post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 20))
    [new] = demo_data.seqs_of([c["id"]])
    assert back.wait_seqs([new], 2.0)
    time.sleep(0.3)
    assert back.wire == missed + [new]
    # Resyncing again from the same point adds nothing: the connection had all of it.
    ack = back.resync(last)
    assert ack["ok"] and ack["replayed"] == 0 and back.wire == missed + [new]


def _history(demo_data, n: int) -> None:
    """n cases written straight through the case service (no live emit): history for a replay."""
    from data.area_directory import AreaDirectory
    from cases.service import CaseService

    service = CaseService(demo_data.db, AreaDirectory(demo_data.db))
    for i in range(n):
        lon, lat = demo_data.point_in(TIANNING if i % 3 else LIYANG, 1000 + i)
        service.intake({"category": "020102", "lon": lon, "lat": lat, "description": "历史", "source": "api"}, None)


def test_resync_while_cases_keep_coming_has_no_gap_no_duplicate_and_stays_in_order(live_server, demo_data,
                                                                                  live_clients):
    """Clients resync from 0 (hundreds of events to replay) while cases keep coming in: each gets every
    event of its district once, in sequence order (one writer: commit order is sequence order)."""
    _replay_under_load(live_server, demo_data, live_clients, writers=1, strict_order=True)


def test_resync_under_concurrent_writers_has_no_gap_and_no_duplicate(live_server, demo_data, live_clients):
    """Two writers at once: live events of concurrent commits may swap places (see docs/live.md),
    but nothing is lost and nothing comes twice."""
    _replay_under_load(live_server, demo_data, live_clients, writers=2, strict_order=False)


def _replay_under_load(live_server, demo_data, live_clients, writers: int, strict_order: bool):
    writer = demo_data.token("duty_officer")
    token = demo_data.token("duty_officer", TIANNING)
    _history(demo_data, 600)  # ~400 visible events to replay: the replay takes a while
    stop = threading.Event()
    failures = []

    def keep_posting(offset):
        i = 0
        while not stop.is_set() and i < 150:
            status, c, _ = post_case(live_server.url, writer,
                                     *demo_data.point_in(TIANNING if i % 4 else LIYANG, offset + i))
            if status != 201:
                failures.append(c)
            i += 1

    posters = [threading.Thread(target=keep_posting, args=(3000 + k * 500,)) for k in range(writers)]
    for t in posters:
        t.start()
    clients = []
    try:
        for _ in range(5):  # clients resyncing at different moments of the stream
            time.sleep(0.25)
            c = live_clients(live_server.url, token)
            ack = c.connect(since=0)
            assert ack["ok"] and ack["complete"], ack
            clients.append(c)
    finally:
        time.sleep(0.5)
        stop.set()
        for t in posters:
            t.join(60)
    assert not failures
    expected = demo_data.visible_seqs_after(0, TIANNING)
    assert len(expected) > 400
    for c in clients:
        assert c.wait_seqs(expected, 5.0), sorted(set(expected) - set(c.seqs()))
        time.sleep(0.2)
        got = list(c.wire)  # arrival order (handlers may run out of it: see LiveClient)
        assert len(got) == len(set(got)), "a sequence number came twice"
        assert sorted(got) == expected and sorted(c.seqs()) == expected
        if strict_order:
            bad = [(i, got[i - 1], got[i]) for i in range(1, len(got)) if got[i] < got[i - 1]]
            assert not bad, f"out of order at {bad}"


def test_resync_rejects_a_bad_since_and_keeps_the_connection_live(live_server, demo_data, live_clients):
    c = live_clients(live_server.url, demo_data.token("duty_officer", TIANNING))
    c.connect(resync=False)
    ack = c.resync("yesterday")
    assert ack["ok"] is False and ack["error"] == "bad_request" and "since" in ack["message"]
    status, case, _ = post_case(live_server.url, demo_data.token("duty_officer"), *demo_data.point_in(TIANNING, 7))
    assert c.wait_seqs(demo_data.seqs_of([case["id"]]), 1.0)


def test_a_client_that_never_resyncs_gets_live_events_after_the_grace_period(live_server, demo_data, live_clients):
    c = live_clients(live_server.url, demo_data.token("duty_officer", TIANNING))
    c.connect(resync=False)
    status, case, _ = post_case(live_server.url, demo_data.token("duty_officer"), *demo_data.point_in(TIANNING, 8))
    assert status == 201
    assert c.wait_seqs(demo_data.seqs_of([case["id"]]), 8.0)
