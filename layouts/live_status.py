"""The live-connection widget: a dash-socketio component on namespace /live and a small status line
("实时推送：已连接 · 已收到 N 条"). Messages are applied in the browser by a clientside callback, with
no server round trip per message.

The page asks for its replay when it connects (`auth.since` = the outbox head when the layout was
built), so nothing committed between the page's render and the connection is missed; the counter
drops a sequence number it has already seen (a reconnect replays from the same point).

Limit: dash-socketio passes each message through a component property, so messages arriving in the
same instant overwrite each other; the count is right at a normal pace, low in a burst (see
docs/live.md). Pages that must apply every case event need their own browser-side listener."""
from __future__ import annotations

import dash_socketio
from dash import Input, Output, clientside_callback, dcc, html
from flask import current_app

from auth import current_principal

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
    since = live.head() if live is not None else None
    if since is not None:
        auth["since"] = since
    return html.Div(className="ucc-live", children=[
        dash_socketio.DashSocketIO(id="live-socket", url="/live", eventNames=["case_event"],
                                   options={"path": "/socket.io", "auth": auth, "transports": ["websocket"]}),
        dcc.Interval(id="live-tick", interval=2000),
        html.Div("实时推送：正在连接…", id="live-status", className="ucc-live-status", style=STYLE),
    ])


clientside_callback(
    """
    function(connected, event, _tick) {
        const w = window.uccLiveStatus = window.uccLiveStatus ||
            {seen: new Set(), order: [], count: 0, downSince: Date.now()};
        if (event && typeof event.seq === "number" && !w.seen.has(event.seq)) {
            w.seen.add(event.seq); w.order.push(event.seq); w.count += 1;
            if (w.order.length > 5000) { w.seen.delete(w.order.shift()); }
        }
        if (connected) { w.downSince = null; }
        else if (w.downSince === null) { w.downSince = Date.now(); }
        let state = "已连接";
        if (!connected) {
            state = (Date.now() - w.downSince < %d) ? "正在重连" : "连接中断";
        }
        return "实时推送：" + state + " · 已收到 " + w.count + " 条";
    }
    """ % RECONNECT_GRACE_MS,
    Output("live-status", "children"),
    Input("live-socket", "connected"),
    Input("live-socket", "data-case_event"),
    Input("live-tick", "n_intervals"),
)
