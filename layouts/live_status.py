"""The live-connection widget: a status line ("实时推送：已连接 · 已收到 N 条") fed by the shared live
client (assets/live_client.js: Socket.IO over a WebSocket, namespace /live, resync by sequence number).

The page asks for its replay from the outbox head when the layout was built, so nothing committed
between the page's render and the connection is missed, and the client hands over each sequence
number once, so the count is right in a burst too (it is applied in the browser, not through a Dash
property, which would merge quick successive messages)."""
from __future__ import annotations

from dash import Input, Output, clientside_callback, dcc, html
from flask import current_app

from web.principal import current_principal

RECONNECT_GRACE_MS = 15000  # disconnected longer than this: 连接中断 rather than 正在重连
STYLE = {"color": "#8fb3e0", "fontSize": "0.85em", "marginTop": "1em"}


def live_auth(token: str | None) -> dict | None:
    """The credentials the page connects with: a token from the URL, else the signed-in session
    (the live bus resolves it, see auth.init_auth); None when nobody is signed in."""
    if token:
        return {"token": token}
    return {} if current_principal() is not None else None


def live_status(token: str | None = None) -> html.Div:
    auth = live_auth(token)
    if auth is None:
        return html.Div("实时推送：未登录", id="live-status", className="ucc-live-status", style=STYLE)
    live = current_app.extensions.get("ucc_live")
    config = {"token": auth.get("token"), "since": live.head() if live is not None else None,
              "grace_ms": RECONNECT_GRACE_MS}
    return html.Div(className="ucc-live", children=[
        dcc.Store(id="live-config", data=config),
        html.Div("实时推送：正在连接…", id="live-status", className="ucc-live-status", style=STYLE),
    ])


clientside_callback(
    """
    function(cfg) {
        if (!cfg || !window.uccLive) { return window.dash_clientside.no_update; }
        const w = window.uccLiveStatus = window.uccLiveStatus || {count: 0, downSince: null};
        if (w.conn) { w.conn.close(); }
        if (w.timer) { clearInterval(w.timer); }
        const show = () => {
            const el = document.getElementById("live-status");
            if (!el) { w.conn.close(); clearInterval(w.timer); return; }  // the page was left
            const c = w.conn;
            let state = "已连接";
            if (!c.connected) {
                if (w.downSince === null) { w.downSince = Date.now(); }
                state = c.connects === 0 ? "正在连接…" :
                        (Date.now() - w.downSince < cfg.grace_ms ? "正在重连" : "连接中断");
            } else { w.downSince = null; }
            el.textContent = "实时推送：" + state + " · 已收到 " + w.count + " 条";
        };
        w.conn = window.uccLive.connect({
            token: cfg.token || null,
            since: () => cfg.since,
            onEvent: () => { w.count += 1; show(); },
            onState: () => show(),
        });
        w.timer = setInterval(show, 1000);
        return window.dash_clientside.no_update;
    }
    """,
    Output("live-config", "id"),  # nothing to write: the script updates the status line itself
    Input("live-config", "data"),
)
