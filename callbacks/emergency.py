"""/emergency callbacks (应急一张图): read the responses, the selected case, its surroundings (devices, alarms, grids,
resources) through the services and shape them (layouts/emergency.py); every action goes through
ResponseService.act with the case's version, and a refusal shows the service's own message."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from callbacks import inputs
from dispatch.errors import ServiceError
from layouts import emergency as view
from sensing.registry import box_around
from web.principal import current_principal
from web.services import services

NEARBY_DEVICES = 400   # devices drawn around the event (nearest first; the legend counts them all)
NEARBY_ALARMS = 100
NEARBY_RESOURCES = 20
AROUND_GRIDS = 3000    # grids drawn faintly around the ring


def _principal():
    principal = current_principal()
    if principal is None:
        raise PreventUpdate  # signed out meanwhile: the guard answers the next page load
    return principal


def _radius(value) -> int:
    radius = inputs.integer(value, "em-radius", lo=1, hi=50_000) or view.DEFAULT_RADIUS
    if radius not in view.RADII:
        raise inputs.refuse("em-radius 须为 1000、3000 或 5000")
    return radius


def _place(svc):
    def name(grid_code: str | None) -> str:
        chain = svc.areas.chain(grid_code) if grid_code else []
        return "".join(a.name for a in reversed(chain) if a.level in (2, 3)) or (grid_code or "—")
    return name


def _surroundings(svc, principal, case: dict, radius: int) -> dict:
    """The map's pieces around the event: grids, devices, open alarms, resources (each read through its service;
    a part that fails says why and leaves the rest)."""
    lon, lat = case["lon"], case["lat"]
    grid_code = case["chain"][0]["code"] if case.get("chain") else None
    out: dict = {"event_grid": svc.areas.get(grid_code) if grid_code else None, "devices": None, "alarms": None,
                 "resources": None, "resources_on": svc.resources is not None, "resource_msg": None}
    out["neighbours"] = svc.areas.neighbours(grid_code) if grid_code else []
    minx, miny, maxx, maxy = box_around(lon, lat, radius * 1.3)
    minx -= (maxx - minx) * view.LEGEND_ROOM  # the map shows room west of the ring for its legend
    out["around"] = svc.areas.grids_in_box((minx, miny, maxx, maxy), limit=AROUND_GRIDS)
    try:
        out["devices"] = svc.devices.near(principal, lon, lat, radius, NEARBY_DEVICES)
    except ServiceError:
        out["devices"] = None  # a role without devices (none on this page today): the layer stays empty
    if svc.alarms is not None:
        try:
            out["alarms"] = svc.alarms.near(principal, lon, lat, radius, NEARBY_ALARMS)
        except ServiceError:
            out["alarms"] = None
    if svc.resources is None:
        out["resource_msg"] = "资源数据未接入"
    else:  # issue 17 part 4 (emergency/resources.py): the nearest within the radius
        try:
            out["resources"] = svc.resources.nearest(lon, lat, radius_m=radius, limit=NEARBY_RESOURCES,
                                                     principal=principal)
        except ServiceError as exc:
            out["resource_msg"] = exc.message
    return out


RENDER_OUTPUTS = (
    Output("em-list", "children"),
    Output("em-awaiting", "children"),
    Output("em-summary", "children"),
    Output("em-head", "children"),
    Output("em-detail", "children"),
    Output("em-timeline", "children"),
    Output("em-resources", "children"),
    Output("em-map-data", "data"),
    Output("em-legend", "children"),
    Output("em-case", "data"),
    Output("em-activate-box", "hidden"),
    Output("em-command-box", "hidden"),
    Output("em-report-box", "hidden"),
    Output("em-activate-plan", "children"),
    Output("em-activate-level", "value"),
    Output("em-level", "value"),
    Output("em-report-title", "children"),
    Output("em-draft-key", "data"),
    Output("em-map-key", "data"),
    Output("em-map-empty", "hidden"),
)


@callback(
    *RENDER_OUTPUTS,
    Input("em-selected", "data"),
    Input("em-refresh", "data"),
    Input("em-tick", "n_intervals"),
    Input("em-live", "data"),
    Input("em-radius", "value"),
    State("em-draft-key", "data"),
    State("em-case", "data"),
    State("em-map-key", "data"),
)
def render(selected, _refresh, _tick, _live, radius, draft_key, shown, map_key):
    principal = _principal()
    selected = inputs.integer(selected, "em-selected", lo=1)
    radius = _radius(radius)
    draft_key = inputs.text(draft_key, "em-draft-key")
    shown = inputs.mapping(shown, "em-case") or {}
    map_key = inputs.text(map_key, "em-map-key")
    svc = services()
    now = datetime.now().astimezone()
    place = _place(svc)
    active = svc.responses.active(principal)
    awaiting = svc.responses.awaiting(principal)
    if selected is None and active:
        selected = active[0]["case_id"]  # the gravest
    overdue = sum(1 for r in active if (r.get("next_report") or {}).get("overdue") or r.get("overdue_tasks"))
    summary = [html.Span(["进行中 ", html.B(len(active))], className="em-count"),
               html.Span(["待启动 ", html.B(len(awaiting))], className="em-count"),
               html.Span(["逾期 ", html.B(overdue)], className="em-count" + (" is-alert" if overdue else ""))]
    listing = view.response_list(active, selected, place, now)
    waiting = view.awaiting_list(awaiting, selected, place)
    hidden3 = (True, True, True)
    if selected is None:
        empty = html.Div("没有进行中的应急响应：左侧列出待启动预案的应急事件", className="em-placeholder")
        quiet = html.Div("—", className="em-muted em-pad")
        return (listing, waiting, summary, [], empty, quiet, quiet, None, [], None, *hidden3, "", no_update, no_update,
                "报送信息", None, None, False)
    try:
        case = svc.cases.get(selected, principal)
    except ServiceError as exc:
        msg = html.Div(exc.message, className="em-msg is-error em-missing")
        return (listing, waiting, summary, [], msg, [], [], None, [], None, *hidden3, "", no_update, no_update,
                "报送信息", None, None, True)
    if case.get("kind") != "emergency":
        msg = html.Div(f"案件 #{case['id']} 不是应急事件（{case['category']['name']}），请在指挥调度台处理",
                            className="em-msg is-error")
        return (listing, waiting, summary, [], msg, [], [], None, [], None, *hidden3, "", no_update, no_update,
                "报送信息", None, None, True)
    r = case.get("response")
    around = _surroundings(svc, principal, case, radius)
    payload = view.map_payload(case, radius, around["event_grid"], around["neighbours"], around["around"],
                               around["devices"], around["alarms"], around["resources"])
    # the same map is not sent again (half a megabyte at 3 km; and a new spec would undo the officer's pan and zoom)
    new_key = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    legend = view.legend(around["event_grid"], around["neighbours"], radius, around["devices"], around["alarms"],
                         around["resources_on"], around["resources"])
    active_response = r is not None and r["status"] == "active"
    owed = (r or {}).get("next_report")
    plan_line, activate_level, level = "", no_update, no_update
    if r is None:
        plan = svc.responses.plan_for_case(case["category"]["code"])
        plan_line = f"适用预案：《{plan['name']}》" if plan else "该类事件没有适用的预案"
        if shown.get("id") != case["id"] and case.get("severity") in (1, 2, 3, 4):
            activate_level = case["severity"]  # the reported severity, for the officer to confirm
    elif shown.get("id") != case["id"] or shown.get("level") != r["level"]:
        level = r["level"]
    filed = sum(1 for x in (r or {}).get("reports", []) if x["filed_at"])
    key = f"{case['id']}:{owed['kind']}:{filed}" if active_response and owed else None
    store = {"id": case["id"], "version": case["version"], "level": r["level"] if r else None,
             "kind": owed["kind"] if owed else None}
    report_title = f"报送{owed['kind_label']}" if owed else "报送信息"
    return (listing, waiting, summary, view.event_head(case, now),
            view.detail(case, now, may_tick=True), view.timeline(case.get("history")),
            view.resources_panel(around["resources"], around["resource_msg"], (r or {}).get("resources")),
            no_update if new_key == map_key else payload, legend, store,
            r is not None, not active_response, not (active_response and owed is not None), plan_line,
            activate_level, level, report_title, no_update if key == draft_key else key, new_key, True)


# ---- picking an event ------------------------------------------------------------------------------------
@callback(
    Output("em-selected", "data"),
    Output("em-msg", "children", allow_duplicate=True),
    Input({"type": "em-item", "case": ALL}, "n_clicks"),
    Input({"type": "em-start", "case": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def pick(_items, _starts):
    trigger = ctx.triggered_id
    clicked = ctx.triggered[0]["value"] if ctx.triggered else None
    if not isinstance(trigger, dict) or not clicked:
        raise PreventUpdate  # drawn anew, not clicked
    return inputs.integer(trigger.get("case"), "case", lo=1), ""


# the URL follows the selection (?case=ID), so a reload or a shared link opens the same event
clientside_callback(
    ClientsideFunction(namespace="ucc_emergency", function_name="url"),
    Output("em-started", "data", allow_duplicate=True),
    Input("em-selected", "data"),
    prevent_initial_call=True,
)


# ---- the report form: drafted from the case when a report becomes owed ---------------------------------------
@callback(
    Output("em-report-text", "value"),
    *(Output(f"em-f-{k}", "value") for k, _ in view.REPORT_FIELDS),
    Output("em-f-losses", "value"),
    Input("em-draft-key", "data"),
    Input("em-redraft", "n_clicks"),
    State("em-case", "data"),
)
def draft(key, _redraft, shown):
    key = inputs.text(key, "em-draft-key")
    shown = inputs.case_ref(shown, "em-case")
    if not key or not shown or not shown.get("kind"):
        raise PreventUpdate
    kind = inputs.text(shown.get("kind"), "em-case.kind")
    try:
        d = services().responses.draft(shown["id"], _principal(), kind)
    except ServiceError:
        raise PreventUpdate
    fields = d.get("fields") or {}
    return (d["text"], *(fields.get(k, 0) for k, _ in view.REPORT_FIELDS), fields.get("losses") or "")


# ---- acting -----------------------------------------------------------------------------------------------
@callback(
    Output("em-msg", "children"),
    Output("em-msg", "className"),
    Output("em-refresh", "data"),
    Input("em-activate", "n_clicks"),
    Input("em-level-btn", "n_clicks"),
    Input("em-end", "n_clicks"),
    Input("em-report-btn", "n_clicks"),
    Input({"type": "em-check", "pos": ALL}, "n_clicks"),
    State("em-case", "data"),
    State("em-activate-level", "value"),
    State("em-level", "value"),
    State("em-report-text", "value"),
    *(State(f"em-f-{k}", "value") for k, _ in view.REPORT_FIELDS),
    State("em-f-losses", "value"),
    State("em-refresh", "data"),
    prevent_initial_call=True,
)
def act(_activate, _level, _end, _report, _checks, shown, activate_level, level, text, *rest):
    *numbers, losses, refresh = rest
    trigger = ctx.triggered_id
    clicked = ctx.triggered[0]["value"] if ctx.triggered else None
    if trigger is None or not clicked:
        raise PreventUpdate  # drawn anew, not pressed
    shown = inputs.case_ref(shown, "em-case", need_version=True)
    refresh = inputs.integer(refresh, "em-refresh") or 0
    if not shown:
        raise PreventUpdate
    kw: dict = {}
    if trigger == "em-activate":
        action, kw["level"] = "activate_plan", inputs.integer(activate_level, "em-activate-level", lo=1, hi=4)
        done_text = "已启动预案"
    elif trigger == "em-level-btn":
        action, kw["level"] = "change_level", inputs.integer(level, "em-level", lo=1, hi=4)
        done_text = "响应等级已调整"
    elif trigger == "em-end":
        action, done_text = "end_response", "应急响应已结束"
    elif trigger == "em-report-btn":
        action = "report"
        kw["kind"] = inputs.text(shown.get("kind"), "em-case.kind")
        kw["text"] = inputs.text(text, "em-report-text") or ""
        fields = {k: inputs.number(v, label) for (k, label), v in zip(view.REPORT_FIELDS, numbers)}
        losses = (inputs.text(losses, "em-f-losses") or "").strip()
        kw["fields"] = {**fields, **({"losses": losses} if losses else {})}
        done_text = "已报送"
    elif isinstance(trigger, dict) and trigger.get("type") == "em-check":
        action, kw["item"] = "check_item", inputs.integer(trigger.get("pos"), "pos", lo=1, hi=10_000)
        done_text = "已完成处置措施"
    else:
        raise PreventUpdate
    try:
        case = services().responses.act(shown["id"], _principal(), action, shown["version"], **kw)
    except ServiceError as exc:
        return exc.message, "em-msg is-error", refresh + 1  # read again: a conflict shows the case as it is now
    last = (case.get("history") or [{}])[-1]
    note = last.get("note") or ""
    return f"{done_text}：{note}" if note else done_text, "em-msg is-ok", refresh + 1


@callback(
    Output("em-msg", "children", allow_duplicate=True),
    Output("em-msg", "className", allow_duplicate=True),
    Output("em-refresh", "data", allow_duplicate=True),
    Input({"type": "em-allocate", "res": ALL}, "n_clicks"),
    Input({"type": "em-release", "alloc": ALL}, "n_clicks"),
    State({"type": "em-qty", "res": ALL}, "value"),
    State({"type": "em-item", "res": ALL}, "value"),
    State("em-case", "data"),
    State("em-refresh", "data"),
    prevent_initial_call=True,
)
def allocate(_allocs, _releases, _qtys, _items, shown, refresh):
    """调配 a resource to the event or 归还 an allocation (emergency/resources.py): the service refuses what is not
    there (409: taken by another officer, not enough left) and says so."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate  # a list redrawn, not a click
    shown = inputs.case_ref(shown, "em-case", need_version=True)
    refresh = inputs.integer(refresh, "em-refresh") or 0
    resources = services().resources
    if not shown or resources is None:
        raise PreventUpdate
    try:
        if trigger.get("type") == "em-release":
            alloc = inputs.integer(trigger.get("alloc"), "alloc", lo=1)
            resources.release(shown["id"], alloc, _principal())
            return "已归还，库存与状态已恢复", "em-msg is-ok", refresh + 1
        rid = inputs.text(trigger.get("res"), "res")
        # this resource's quantity and item, if it has those fields (a shelter, a warehouse)
        qty = next((inputs.number(x.get("value"), "数量") for x in ctx.states_list[0] if x["id"].get("res") == rid), None)
        item = next((inputs.text(x.get("value"), "物资") for x in ctx.states_list[1] if x["id"].get("res") == rid), None)
        done = resources.allocate(shown["id"], _principal(), rid, item=item, quantity=qty)
    except ServiceError as exc:
        return exc.message, "em-msg is-error", refresh + 1
    what = (done.get("resource") or {}).get("name") or rid
    amount = f" {done['item']} {done['quantity']:g}{done.get('unit') or ''}" if done.get("item") else (
        f" {done['quantity']:g} 人" if done.get("quantity") else "")
    return f"已调配：{what}{amount}", "em-msg is-ok", refresh + 1


# ---- the map fitted to its real size, the live stream, the countdowns (assets/emergency.js) ----------------------
clientside_callback(
    """function (d) {
        if (!d || !d.spec) { return {}; }  // no event on screen: an empty map, not the last one
        return window.dash_clientside.ucc.fitDeck(d.bounds, d.spec, 'em-map');
    }""",
    Output("em-map", "data"),
    Input("em-map-data", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="ucc_emergency", function_name="start"),
    Output("em-started", "data"),
    Input("em-config", "data"),
    State("em-selected", "data"),
)
