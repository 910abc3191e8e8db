"""Several server processes sharing one database and one Redis channel: an event committed in one
process reaches the clients of every process exactly once; Redis going away does not stop intake,
and nothing is lost once it is back."""
from __future__ import annotations

import time

import pytest

from tests.live.conftest import LIYANG, TIANNING, LiveAppProcess, OwnRedis, post_case, require_redis, unique_channel

pytestmark = pytest.mark.redis


@pytest.fixture
def two_servers(demo_copy, tmp_path):
    url = require_redis()
    channel = unique_channel()
    a = LiveAppProcess(demo_copy, tmp_path / "a.log", redis_url=url, channel=channel)
    b = LiveAppProcess(demo_copy, tmp_path / "b.log", redis_url=url, channel=channel)
    try:
        yield a.wait_ready(), b.wait_ready()
    finally:
        a.stop()
        b.stop()


def test_an_event_posted_to_one_process_reaches_clients_of_the_other_once(two_servers, demo_data, live_clients):
    a, b = two_servers
    token = demo_data.token("duty_officer", TIANNING)
    on_a, on_b = live_clients(a.url, token), live_clients(b.url, token)
    liyang_on_b = live_clients(b.url, demo_data.token("duty_officer", LIYANG))
    for c in (on_a, on_b, liyang_on_b):
        c.connect(since=None)
    writer = demo_data.token("duty_officer")
    status, case, _ = post_case(a.url, writer, *demo_data.point_in(TIANNING, 1))
    posted = time.monotonic()
    assert status == 201
    [seq] = demo_data.seqs_of([case["id"]])
    assert on_b.wait_seqs([seq], 1.0), "not received through Redis within 1 s"
    assert on_b.received_at(seq) - posted < 1.0
    assert on_a.wait_seqs([seq], 1.0)
    # And the other way round.
    status, case2, _ = post_case(b.url, writer, *demo_data.point_in(TIANNING, 2))
    assert status == 201
    [seq2] = demo_data.seqs_of([case2["id"]])
    assert on_a.wait_seqs([seq2], 1.0) and on_b.wait_seqs([seq2], 1.0)
    time.sleep(0.5)
    # Exactly once per client, across processes; nothing for the other district.
    assert on_a.wire == [seq, seq2] and on_b.wire == [seq, seq2]
    assert liyang_on_b.seqs() == []


def test_redis_stopped_mid_stream_intake_goes_on_and_clients_get_every_missed_event(demo_copy, demo_data, tmp_path,
                                                                                    live_clients):
    redis = OwnRedis(tmp_path / "redis.log").start()
    channel = unique_channel()
    a = LiveAppProcess(demo_copy, tmp_path / "a.log", redis_url=redis.url, channel=channel)
    b = LiveAppProcess(demo_copy, tmp_path / "b.log", redis_url=redis.url, channel=channel)
    try:
        a.wait_ready()
        b.wait_ready()
        token = demo_data.token("duty_officer", TIANNING)
        writer = demo_data.token("duty_officer")
        on_a, on_b = live_clients(a.url, token), live_clients(b.url, token)
        on_a.connect(since=None)
        on_b.connect(since=None)
        status, case, _ = post_case(a.url, writer, *demo_data.point_in(TIANNING, 1))
        assert status == 201
        [before] = demo_data.seqs_of([case["id"]])
        assert on_b.wait_seqs([before], 2.0)

        redis.kill()
        missed_ids = []
        for i in range(3):
            status, c, seconds = post_case(a.url, writer, *demo_data.point_in(TIANNING, 10 + i), timeout=10)
            assert status == 201, c
            assert seconds < 1.0, f"intake took {seconds:.2f} s with Redis down"
            missed_ids.append(c["id"])
        missed = demo_data.seqs_of(missed_ids)
        # The committing process still serves its own clients; the other process cannot hear of it.
        assert on_a.wait_seqs(missed, 2.0)
        time.sleep(0.5)
        assert not set(missed) & set(on_b.seqs())

        redis.start()  # same port
        # The other process notices Redis is back and replays the outage window to its clients.
        assert on_b.wait_seqs(missed, 15.0), f"not caught up after Redis came back: {on_b.seqs()}"
        # A client that reconnects with its last sequence number gets exactly what it missed.
        again = live_clients(b.url, token)
        ack = again.connect(since=before)
        assert ack["ok"] and ack["complete"]
        assert again.wait_seqs(missed, 2.0) and again.wire == missed
        # Live delivery across processes works again.
        status, c, _ = post_case(a.url, writer, *demo_data.point_in(TIANNING, 20))
        [after] = demo_data.seqs_of([c["id"]])
        assert on_b.wait_seqs([after], 2.0) and again.wait_seqs([after], 2.0)
        time.sleep(1.0)
        for client in (on_a, on_b):
            got = client.seqs()
            assert sorted(got) == [before] + missed + [after] and len(got) == len(set(got)), got
        assert again.wire == missed + [after]
    finally:
        a.stop()
        b.stop()
        redis.kill()


def test_the_production_mode_serves_several_processes_on_one_port_and_every_client_gets_every_event(
        demo_copy, demo_data, live_clients, tmp_path):
    """gunicorn.conf.py with two worker processes behind one port, sharing events through Redis:
    clients land on either process, posts are served by either, and each client gets each case once,
    in sequence order."""
    import os

    url = require_redis()
    server = LiveAppProcess(demo_copy, tmp_path / "gunicorn.log", redis_url=url, channel=unique_channel(),
                            workers=2).wait_ready()
    try:
        token = demo_data.token("duty_officer", TIANNING)
        clients = [live_clients(server.url, token) for _ in range(8)]
        for c in clients:
            c.connect(since=None)
        writer = demo_data.token("duty_officer")
        seqs = []
        for i in range(24):  # enough for the two processes' emits to cross now and then (live/gate.py)
            status, case, _ = post_case(server.url, writer, *demo_data.point_in(TIANNING, 10 + i))
            assert status == 201
            seqs += demo_data.seqs_of([case["id"]])
        for c in clients:
            assert c.wait_seqs(seqs, 3.0), "a client missed a case served by the other process"
        time.sleep(0.5)
        assert all(c.wire == seqs for c in clients), (seqs, [c.wire for c in clients])  # once each, in order
        # two worker processes under the one gunicorn master
        children = [d for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == server.proc.pid]
        assert len(children) == 2, children
        # ... each an event loop (requirements-prod.txt has gevent): WebSockets included
        assert "Using worker: gevent" in (tmp_path / "gunicorn.log").read_text()
    finally:
        server.stop()


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
