"""assets/live_client.js on the official socket.io-client (assets/vendor/) in headless Chromium against
the real server: WebSocket only, each seq once, the missed events replayed after a reconnect, and a
refusal reported with the server's message and not retried at once."""
from __future__ import annotations

import pytest

from tests.live.conftest import LIYANG, TIANNING, post_case
from tests.live.test_live_page import _in_own_playwright

pytestmark = pytest.mark.browser

OPEN = """(args) => {
    const rec = window.rec = {seqs: [], states: [], acks: []};
    window.conn = window.uccLive.connect({
        token: args.token,
        since: () => args.since,
        onEvent: (msg) => rec.seqs.push(msg.seq),
        onState: (state, conn) => rec.states.push([state, conn.error]),
        onResync: (ack) => rec.acks.push(ack),
    });
}"""


def _load_client(page, base_url: str) -> list[str]:
    """A page of the server's origin with only the two scripts, as the pages load them (vendor first);
    returns the list that records every Socket.IO URL the page opens."""
    urls: list[str] = []
    page.on("websocket", lambda ws: urls.append(ws.url))
    page.on("request", lambda req: urls.append(req.url) if "/socket.io/" in req.url else None)
    page.goto(base_url + "/login")
    page.add_script_tag(url="/assets/vendor/socket.io.min.js")
    page.add_script_tag(url="/assets/live_client.js")
    assert page.evaluate("() => typeof window.io === 'function' && typeof window.uccLive.connect === 'function'")
    return urls


def test_the_page_client_gets_each_event_once_and_the_missed_ones_after_a_reconnect(live_server, demo_data):
    token, writer = demo_data.token("duty_officer", TIANNING), demo_data.token("duty_officer")
    since = demo_data.head()

    def body(browser):
        ctx = browser.new_context()
        page = ctx.new_page()
        urls = _load_client(page, live_server.url)
        assert post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 70))[0] == 201  # before connecting
        page.evaluate(OPEN, {"token": token, "since": since})
        page.wait_for_function("() => window.conn.connected && window.rec.acks.length === 1", timeout=15_000)
        for i in range(3):
            assert post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 71 + i))[0] == 201
        assert post_case(live_server.url, writer, *demo_data.point_in(LIYANG, 71))[0] == 201  # not for 天宁
        page.wait_for_function("() => window.rec.seqs.length >= 4", timeout=5_000)

        # the transport goes away: the client says so, reconnects by itself and resyncs from its last seq
        ctx.set_offline(True)
        page.wait_for_function("() => !window.conn.connected", timeout=5_000)
        for i in range(3):
            assert post_case(live_server.url, writer, *demo_data.point_in(TIANNING, 80 + i))[0] == 201
        ctx.set_offline(False)
        page.wait_for_function("() => window.conn.connects === 2 && window.rec.acks.length === 2", timeout=20_000)
        page.wait_for_timeout(500)
        rec = page.evaluate("() => window.rec")
        expected = demo_data.visible_seqs_after(since, TIANNING)
        assert len(expected) == 7
        assert rec["seqs"] == expected  # in order, none missing, none twice
        assert rec["acks"][0]["since"] == since and rec["acks"][0]["replayed"] == 1
        assert rec["acks"][1]["since"] == expected[3] and rec["acks"][1]["replayed"] == 3
        assert page.evaluate("() => window.conn.maxSeq") >= expected[-1]
        assert [s for s, _e in rec["states"]] == ["live", "down", "live"]
        assert urls and all("transport=websocket" in u and u.startswith("ws://") for u in urls), urls
        page.evaluate("() => window.conn.close()")
        assert page.evaluate("() => window.conn.state") == "down"
        ctx.close()

    _in_own_playwright(body)


def test_a_refused_page_client_reports_the_servers_message_and_waits_before_trying_again(live_server):
    def body(browser):
        ctx = browser.new_context()
        page = ctx.new_page()
        urls = _load_client(page, live_server.url)
        page.evaluate(OPEN, {"token": "not-a-token", "since": None})
        page.wait_for_function("() => window.conn.error !== null", timeout=15_000)
        page.wait_for_timeout(3000)  # the client's own reconnection would have tried again by now
        rec = page.evaluate("() => window.rec")
        assert rec["states"] == [["down", "需要有效令牌：auth={\"token\": TOKEN}"]]
        assert rec["acks"] == [] and rec["seqs"] == []
        assert len(urls) == 1, urls  # one attempt: the next comes after 30 s
        page.evaluate("() => window.conn.close()")
        ctx.close()

    _in_own_playwright(body)
