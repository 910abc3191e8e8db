"""The console's 12345 card in a real browser: a push that failed past the limit shows as 12345 推送失败 N 条, and 重新推送
sends it again (the receiver, up by then, takes it); a leader does not see the card."""
from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from data.files import HOTLINE_RULES_PATH
from tests.browser.conftest import PageWatch, sign_in
from tests.serving import AppProcess, free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def card_app(demo_sqlite_url, tmp_path_factory):
    """The app pushing to a port nobody listens on, with a schedule that gives up after 2 quick attempts."""
    from data.db import Database
    from data.tokens import create_token

    d = tmp_path_factory.mktemp("hotline_card")
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), d / "app.db")
    url = f"sqlite:///{d / 'app.db'}"
    db = Database(url)
    with db.session() as s:
        token = create_token(s, "hotline")
    db.dispose()
    rules = {**json.loads(HOTLINE_RULES_PATH.read_text(encoding="utf-8")),
             "push": {"first_delay_seconds": 0.2, "factor": 1, "max_attempts": 2, "round_seconds": 0.2,
                      "timeout_seconds": 1}}
    (d / "rules.json").write_text(json.dumps(rules), encoding="utf-8")
    port = free_port()
    app = AppProcess(url, d / "app.log", UCC_HOTLINE_WEBHOOK=f"http://127.0.0.1:{port}/push",
                     UCC_HOTLINE_RULES=str(d / "rules.json")).wait_ready()
    app.token, app.hook_port = token, port
    yield app
    app.stop()


def test_a_failed_push_is_shown_and_sent_again_from_the_console(browser, card_app):
    app = card_app
    resp = requests.post(app.url + "/api/v1/hotline/tickets", timeout=30,
                         headers={"Authorization": f"Bearer {app.token}"},
                         json={"ticket_no": "CZ-CARD-1", "content": "路灯不亮", "lon": 119.975, "lat": 31.79,
                               "category_hint": "路灯不亮", "phone": "13912345678"})
    assert resp.status_code == 201, resp.text
    time.sleep(2)  # two attempts 0.2 s apart, then it is dead
    accepted: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            accepted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", app.hook_port), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        page = context.new_page()
        watch = PageWatch(page, app.url)
        sign_in(page, app.url, "duty", then="/console")
        page.wait_for_selector("#cs-hl:not([hidden])", timeout=30_000)
        assert "12345 推送失败 1 条" in page.inner_text("#cs-hl")
        assert "CZ-CARD-1" in page.inner_text("#cs-hl .cs-hl-item")
        page.click("#cs-hl .cs-hl-retry")
        page.wait_for_selector("#cs-hl .cs-hl-msg", timeout=15_000)
        assert "已重新推送" in page.inner_text("#cs-hl") and "推送失败" not in page.inner_text("#cs-hl")
        deadline = time.monotonic() + 15
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [(b["ticket_no"], b["action"]) for b in accepted] == [("CZ-CARD-1", "report")]
        assert not watch.errors and not watch.foreign
        # a leader opens the console too, but works no push list
        others = browser.new_context(viewport={"width": 1920, "height": 1080})
        leader = others.new_page()
        sign_in(leader, app.url, "leader", then="/console")
        leader.wait_for_selector("#cs-grid", timeout=30_000)
        time.sleep(1)
        assert leader.locator("#cs-hl").get_attribute("hidden") is not None
        others.close()
    finally:
        context.close()
        receiver.shutdown()
        receiver.server_close()
