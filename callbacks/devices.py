"""/devices callbacks: the fleet's page and counts, a device's card, chart and alarms, the active alarms, acknowledge and clear.
Reads through DeviceRegistry and AlarmService (web.services), writes through AlarmService.act."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from callbacks import inputs
from dispatch import access
from dispatch.devices import DEVICE_STATUSES
from dispatch.errors import ServiceError
from layouts import device_chart
from layouts import devices as view
from sensing.registry import chart_keys, focus_key
from web.principal import current_principal
from web.services import services

ALARM_LIST_SIZE = 100  # the active alarms shown at once (gravest, then newest, first)
DEVICE_ALARMS = 20     # a device's latest alarms on its card
FILTERS = (Input("dv-q", "value"), Input("dv-type", "value"), Input("dv-status", "value"), Input("dv-area", "value"))


def _principal():
    principal = current_principal()
    if principal is None:
        raise PreventUpdate  # signed out meanwhile: the guard answers the next page load
    return principal


def _case_page(role: str) -> str | None:
    """Where a role opens a case: the console, else the unit's workspace, else nowhere."""
    for path in ("/console", "/unit"):
        if access.can_open(role, path):
            return path
    return None


def _area_name(svc):
    def name(d: dict) -> str:
        grid, district = svc.areas.get(d["grid"]), svc.areas.get(d["district"])
        return " · ".join(a.name for a in (district, grid) if a is not None) or d["grid"]
    return name


# ---- the fleet: counts, a page of devices ----------------------------------------------------------------
@callback(
    Output("dv-table", "children"),
    Output("dv-pageinfo", "children"),
    Output("dv-page", "data"),
    Output("dv-fleet-msg", "children"),
    Output("dv-c-total", "children"),
    *(Output(f"dv-c-{s}", "children") for s in DEVICE_STATUSES),
    *FILTERS,
    Input("dv-prev", "n_clicks"),
    Input("dv-next", "n_clicks"),
    Input("dv-refresh", "data"),
    Input("dv-tick", "n_intervals"),
    State("dv-page", "data"),
    State("dv-device", "data"),
)
def fleet(q, type_, status, area, _prev, _next, _refresh, _tick, page, selected):
    principal = _principal()
    q, type_, status, area = (inputs.text(v, n) for v, n in ((q, "搜索"), (type_, "类型"), (status, "状态"),
                                                            (area, "区域")))
    page = inputs.integer(page, "dv-page", lo=1, hi=10**9) or 1
    trigger = ctx.triggered_id
    if trigger == "dv-prev":
        page = max(1, page - 1)
    elif trigger == "dv-next":
        page += 1
    elif trigger in ("dv-q", "dv-type", "dv-status", "dv-area"):
        page = 1
    svc = services()
    blank = ("—",) * (1 + len(DEVICE_STATUSES))
    try:
        counts = svc.devices.status_counts(principal, type_=type_, area=area, search=q, status=status)
        total = counts["total"] if status is None else counts[status]
        pages = max(1, -(-total // view.PER_PAGE))
        page = min(page, pages)
        listing = svc.devices.list(principal, type_=type_, status=status, area=area, search=q, page=page,
                                   per_page=view.PER_PAGE)
    except ServiceError as exc:
        return view.fleet_table([], None, None), "", 1, exc.message, *blank
    table = view.fleet_table(listing["items"], _area_name(svc), inputs.text(selected, "dv-device"))
    info = f"第 {page} / {pages} 页 · 共 {total:,} 台"
    return (table, info, page, "", f"{counts['total']:,}", *(f"{counts[s]:,}" for s in DEVICE_STATUSES))


# A status count clicked: the list shows that status (the total: every status).
@callback(
    Output("dv-status", "value"),
    Input("dv-c-all", "n_clicks"),
    *(Input(f"dv-cb-{s}", "n_clicks") for s in DEVICE_STATUSES),
    prevent_initial_call=True,
)
def count_clicked(*_clicks):
    trigger = ctx.triggered_id
    if not isinstance(trigger, str):
        raise PreventUpdate
    return None if trigger == "dv-c-all" else trigger.removeprefix("dv-cb-")


# The two views of the left side: the fleet, or the active alarms.
clientside_callback(
    "function (v) { return [v === 'alarms', v !== 'alarms']; }",
    Output("dv-fleet", "hidden"),
    Output("dv-alarms-view", "hidden"),
    Input("dv-view", "value"),
)


# ---- selecting a device ---------------------------------------------------------------------------------
@callback(
    Output("dv-device", "data"),
    Input({"type": "dv-row", "device": ALL}, "n_clicks"),
    Input({"type": "dv-arow", "alarm": ALL, "device": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def pick_device(_rows, _alarm_rows):
    trigger = ctx.triggered_id
    clicked = ctx.triggered[0]["value"] if ctx.triggered else None
    if not isinstance(trigger, dict) or not clicked:
        raise PreventUpdate  # rows drawn anew, not clicked
    device = view.device_ref(trigger.get("device"))
    if device is None:
        raise inputs.refuse("设备编号无效")
    return device


@callback(
    Output("dv-card", "children"),
    Output("dv-device-alarms", "children"),
    Output("dv-key", "options"),
    Output("dv-key", "value"),
    Output("dv-shown", "data"),
    Output("dv-chart-box", "hidden"),
    Input("dv-device", "data"),
    Input("dv-refresh", "data"),
    State("dv-key", "value"),
)
def show_device(device_id, _refresh, key):
    if device_id is None:
        raise PreventUpdate
    device_id = view.device_ref(inputs.text(device_id, "dv-device"))
    if device_id is None:
        raise inputs.refuse("dv-device 须为设备编号")
    principal = _principal()
    svc = services()
    try:
        device = svc.devices.get(principal, device_id)
        alarms = svc.alarms.list(principal, device=device_id, per_page=DEVICE_ALARMS)["items"]
    except ServiceError as exc:
        return (html.Div(exc.message, className="dv-msg is-error dv-missing"), None, [], None, None, True)
    dtype = svc.devices.types().get(device["type"])
    keys = chart_keys(dtype)
    type_keys = {k.key: {"name": k.name, "unit": k.unit, "kind": k.kind} for k in (dtype.keys if dtype else ())}
    options = [{"label": f"{k.name}（{k.unit}）" if k.unit else k.name, "value": k.key} for k in keys]
    known = [k.key for k in keys]
    key = inputs.text(key, "dv-key")
    if ctx.triggered_id == "dv-device" or key not in known:  # a newly picked device; on a refresh the key stays
        key = focus_key(dtype, alarms)
    may_act = principal.role in access.ALARM_ACTORS
    head = html.Div(className="dv-h", children=f"该设备的告警（最近 {len(alarms)} 条）" if alarms else "该设备的告警")
    listing = [head, view.alarm_rows(alarms, may_act, _case_page(principal.role), "dv-act", with_device=False)]
    return (view.device_card(device, type_keys), listing, options, key,
            {"device": device_id, "keys": known, "t": time.time()}, not known)


@callback(
    Output("dv-graph", "figure"),
    Output("dv-chart-note", "children"),
    Input("dv-shown", "data"),
    Input("dv-key", "value"),
    Input("dv-range", "value"),
)
def chart(shown, key, span):
    shown = inputs.mapping(shown, "dv-shown")
    if not shown or key is None:
        raise PreventUpdate
    device_id = view.device_ref(inputs.text(shown.get("device"), "dv-shown.device"))
    key, span = inputs.text(key, "dv-key"), inputs.text(span, "dv-range")
    if device_id is None or span not in view.RANGES:
        raise inputs.refuse("dv-shown 或 dv-range 无效")
    principal = _principal()
    svc = services()
    hours = view.RANGES[span][1]
    now = svc.alarms.clock() if svc.alarms is not None else datetime.now(timezone.utc)
    try:
        series = svc.devices.series(principal, device_id, key, start=now - timedelta(hours=hours), end=now)
    except ServiceError as exc:
        return no_update, exc.message
    n = len(series["points"])
    note = (f"{n} 个小时均值（阴影为每小时最低–最高）" if series["resolution"] == "hour" else f"{n} 条读数") \
        + ("；读数过多，仅显示前段" if series["truncated"] else "")
    return device_chart.figure(series), note


# ---- the active alarms of the fleet ---------------------------------------------------------------------
@callback(
    Output("dv-alarms", "children"),
    Output("dv-view", "options"),
    Input("dv-refresh", "data"),
    Input("dv-tick", "n_intervals"),
)
def active_alarms(_refresh, _tick):
    principal = _principal()
    try:
        listing = services().alarms.list(principal, open_only=True, by_severity=True, per_page=ALARM_LIST_SIZE)
    except ServiceError as exc:
        return html.Div(exc.message, className="dv-msg is-error"), no_update
    shown = len(listing["items"])
    head = html.Div(className="dv-h", children=(
        f"未解除的告警共 {listing['total']:,} 条" + (f"，按级别和时间显示前 {shown} 条" if shown < listing["total"] else "，按级别和时间排列")))
    table = view.alarm_rows(listing["items"], principal.role in access.ALARM_ACTORS, _case_page(principal.role),
                            "dv-fact", with_device=True)
    options = [view.VIEWS[0], {"label": f"活动告警（{listing['total']:,}）", "value": "alarms"}]
    return [head, table], options


# ---- acknowledge, clear ------------------------------------------------------------------------------------
@callback(
    Output("dv-msg", "children"),
    Output("dv-msg", "className"),
    Output("dv-refresh", "data"),
    Input({"type": "dv-act", "alarm": ALL, "action": ALL}, "n_clicks"),
    Input({"type": "dv-fact", "alarm": ALL, "action": ALL}, "n_clicks"),
    State("dv-refresh", "data"),
    prevent_initial_call=True,
)
def act(_card, _fleet, refresh):
    trigger = ctx.triggered_id
    clicked = ctx.triggered[0]["value"] if ctx.triggered else None
    if not isinstance(trigger, dict) or not clicked:
        raise PreventUpdate  # buttons drawn anew, not pressed
    alarm_id = inputs.integer(trigger.get("alarm"), "alarm", lo=1)
    action = inputs.text(trigger.get("action"), "action")
    refresh = inputs.integer(refresh, "dv-refresh") or 0
    try:
        done = services().alarms.act(_principal(), alarm_id, action)
    except ServiceError as exc:
        return exc.message, "dv-msg is-error", no_update
    verb = "已确认" if action == "acknowledge" else "已解除"
    return f"告警 #{done['id']}（{done['rule_name']}）{verb}", "dv-msg is-ok", refresh + 1


# ---- the ingest's counters (the operators' view of what came in and what was refused) --------------------------
@callback(
    Output("dv-ingest", "children"),
    Input("dv-tick", "n_intervals"),
    Input("dv-refresh", "data"),
)
def ingest_counters(_tick, _refresh):
    principal = _principal()
    if principal is None or principal.role not in view.INGEST_READERS:
        return []
    return view.ingest_line(services().telemetry.stats())
