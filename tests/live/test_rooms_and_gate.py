"""Rooms, the delivery gate and the gated fan-out, without a server process."""
from __future__ import annotations

import socketio

from data.tokens import Principal
from live.gate import DeliveryGate
from live.managers import LiveManager
from live.rooms import NoLiveAccess, case_rooms, may_receive, principal_rooms

CITY, DISTRICT = "320400", "320402"


def _root(code):
    return CITY


def test_each_role_joins_the_rooms_its_area_or_unit_allows():
    def rooms(role, area=CITY, unit=None):
        return principal_rooms(Principal("token", "token:1", role, area, unit), _root)

    assert rooms("duty_officer") == ["user:token:1", "area:320400"]
    assert rooms("duty_officer", DISTRICT) == ["user:token:1", "area:320402"]
    assert rooms("wall", DISTRICT) == ["user:token:1", "area:320402", "wall"]
    assert rooms("leader") == ["user:token:1", "area:320400", "cockpit"]
    assert rooms("unit_handler", DISTRICT, "U-1") == ["user:token:1", "unit:U-1"]
    assert rooms("admin", DISTRICT) == ["user:token:1", "area:320400"]  # admins see the whole city
    assert rooms("grid_member", "320402001001001") == ["user:token:1", "area:320402001001001"]
    for bad in (Principal("token", "x", "system", "", None), Principal("token", "x", "unit_handler", CITY, None)):
        try:
            principal_rooms(bad, _root)
            raise AssertionError("accepted")
        except NoLiveAccess:
            pass


def test_a_case_goes_to_every_area_of_its_chain_and_to_its_units():
    case = {"chain": [{"code": "320402001001001"}, {"code": "320402001001"}, {"code": "320402001"},
                      {"code": DISTRICT}, {"code": CITY}],
            "units": [{"code": "U-LEAD"}, {"code": "U-ASSIST"}]}
    assert case_rooms(case, "U-LEAD") == ["area:320402001001001", "area:320402001001", "area:320402001",
                                          "area:320402", "area:320400", "unit:U-LEAD", "unit:U-ASSIST"]
    assert may_receive(["user:x", "area:320402"], case)
    assert may_receive(["unit:U-ASSIST"], case)
    assert not may_receive(["area:320481", "unit:U-OTHER", "wall", "cockpit"], case)


def _ev(seq):
    return {"seq": seq, "type": "created", "case": {}}


def test_the_gate_holds_until_the_replay_ends_then_releases_in_order_without_duplicates():
    gate = DeliveryGate(grace_seconds=60)
    gate.open("a", None, ["area:1"])
    gate.open("b", None, ["area:1"])
    sent = []

    def send(sid, payload):
        sent.append((sid, payload["seq"]))

    gate.release("b", send)  # b went live (its resync had nothing to replay)
    assert gate.admit(7, _ev(7), ["a", "b"]) == ["b"]  # a is held
    assert gate.admit(5, _ev(5), ["a", "b"]) == ["b"]
    assert gate.hold("a")
    assert gate.deliver("a", [(s, _ev(s)) for s in (3, 4, 5)], send) == 3
    assert gate.admit(8, _ev(8), ["a"]) == []  # still held during the replay
    assert gate.release("a", send) == 2  # 7 and 8; 5 came with the replay
    assert [s for sid, s in sent if sid == "a"] == [3, 4, 5, 7, 8]
    # Once live, a sequence number already delivered is not sent again.
    assert gate.admit(8, _ev(8), ["a", "b"]) == ["b"]
    assert gate.admit(9, _ev(9), ["a", "b"]) == ["a", "b"]
    assert gate.deliver("a", [(9, _ev(9)), (10, _ev(10))], send) == 1


def test_a_connect_time_hold_runs_out_for_clients_that_never_resync():
    gate = DeliveryGate(grace_seconds=0.5)
    gate.open("a", None, [])
    gate.admit(1, _ev(1), ["a"])
    sent = []
    assert gate.release_expired(lambda sid, p: sent.append(p["seq"]), now=0) == []
    import time

    assert gate.release_expired(lambda sid, p: sent.append(p["seq"]), now=time.monotonic() + 1) == ["a"]
    assert sent == [1]
    # A replay's hold has no deadline.
    gate.hold("a")
    assert gate.release_expired(lambda sid, p: None, now=time.monotonic() + 100) == []


def _live_gate(**kw):
    """A gate with one live connection "a"; returns it and the seqs "a" received, in order."""
    gate = DeliveryGate(grace_seconds=60, **kw)
    gate.open("a", None, ["area:1"])
    gate.release("a", lambda *_: None)
    got = []

    def offer(seq, now=None, send=None):
        gate.offer(seq, _ev(seq), lambda: ["a"], send or (lambda sids, p: got.append(p["seq"])), now=now)
    return gate, got, offer


def test_live_events_reach_a_connection_in_sequence_order_when_they_arrive_out_of_it():
    gate, got, offer = _live_gate()
    gate.start_at(1)  # the outbox head + 1 when the first client connected
    for seq in (2, 1, 4, 3, 6, 5):  # even the very first one may come second
        offer(seq)
    assert got == [1, 2, 3, 4, 5, 6]
    assert gate.late == 0


def test_a_number_that_never_comes_holds_the_newer_ones_back_only_briefly_and_a_late_one_still_arrives():
    import time

    gate, got, offer = _live_gate(reorder_seconds=0.2)
    gate.start_at(1)
    t0 = time.monotonic()
    offer(1, now=t0)
    offer(3, now=t0)  # 2 is missing (never committed, or its process is slow)
    offer(4, now=t0 + 0.1)
    assert got == [1]
    assert gate.pass_overdue(now=t0 + 0.15) == 0
    assert gate.pass_overdue(now=t0 + 0.25) == 2  # 3 waited long enough; 4 follows it
    assert got == [1, 3, 4]
    offer(2, now=t0 + 0.3)  # late: delivered anyway, counted
    offer(5, now=t0 + 0.3)
    assert got == [1, 3, 4, 2, 5] and gate.late == 1
    # A process without connections runs no sweeper: the next event lets the overdue ones go on.
    offer(7, now=t0 + 1)
    offer(8, now=t0 + 2)
    assert got == [1, 3, 4, 2, 5, 7, 8]


def test_a_slow_send_is_not_overtaken_by_a_newer_event_from_another_thread():
    """The local emitter and the Redis subscriber are two threads: what one connection receives must
    follow the gate's order even when a send is slow to return."""
    import threading
    import time

    gate, got, offer = _live_gate()
    offer(2)

    def slow_send(sids, payload):
        time.sleep(0.2)
        got.append(payload["seq"])

    first = threading.Thread(target=offer, args=(3, None, slow_send))
    first.start()
    time.sleep(0.05)
    offer(4)
    first.join()
    assert got == [2, 3, 4]


def _server(manager):
    server = socketio.Server(client_manager=manager, async_mode="threading")
    packets = []
    server._send_eio_packet = lambda eio_sid, pkt: packets.append((eio_sid, pkt.data))
    server.manager_initialized = True
    return server, packets


def _join(server, eio_sid, rooms, ns="/live"):
    sid = server.manager.pre_connect(eio_sid, ns)
    server.manager.connect(sid, ns)
    for room in rooms:
        server.manager.enter_room(sid, ns, room)
    return sid


def test_python_socketio_sends_one_copy_to_a_client_in_several_of_the_rooms():
    server, packets = _server(socketio.Manager())
    _join(server, "e1", ["area:320400", "area:320402", "unit:U-1"])
    _join(server, "e2", ["area:320481"])
    server.emit("case_event", _ev(1), to=["area:320402", "area:320400", "unit:U-1"], namespace="/live")
    assert [eio for eio, _ in packets] == ["e1"]


def test_the_gated_fanout_sends_one_copy_and_holds_new_connections():
    manager = LiveManager()
    manager.live_gate = gate = DeliveryGate(grace_seconds=60)
    server, packets = _server(manager)
    s1 = _join(server, "e1", ["area:320400", "area:320402"])
    s2 = _join(server, "e2", ["area:320402"])
    gate.open(s1, None, ["area:320400", "area:320402"])
    gate.release(s1, lambda *a: None)
    gate.open(s2, None, ["area:320402"])  # held: has not resynced
    server.emit("case_event", _ev(1), to=["area:320402", "area:320400"], namespace="/live")
    assert [eio for eio, _ in packets] == ["e1"]
    gate.release(s2, lambda sid, p: manager.send_direct(sid, "case_event", p, "/live"))
    assert [eio for eio, _ in packets] == ["e1", "e2"]
    server.emit("case_event", _ev(1), to=["area:320402"], namespace="/live")  # the same seq again
    assert len(packets) == 2
    # Messages other than a live case_event to a list of rooms pass untouched.
    server.emit("notice", {"text": "x"}, to="wall", namespace="/live")
    server.emit("notice", {"text": "y"}, to=["area:320402"], namespace="/live")
    assert [eio for eio, _ in packets[2:]] == ["e1", "e2"]
