"""Console callbacks (/console): the queue's pages, the case detail and its actions, hotline intake.
Reads go through cases/queue.py, writes through CaseService; the browser half is assets/console.js."""
from __future__ import annotations

import time

from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from callbacks import inputs
from web.principal import current_principal
from cases import queue
from cases.service import ServiceError
from dispatch import lifecycle
from layouts import console as view
from layouts import device_chart, emergency_brief
from web.services import services

FILTER_IDS = ("cs-f-state", "cs-f-kind", "cs-f-category", "cs-f-area", "cs-f-source", "cs-f-overdue",
              "cs-f-supervised")
INTAKE_FIELDS = (State("cs-in-category", "value"), State("cs-in-lon", "value"), State("cs-in-lat", "value"),
                 State("cs-in-severity", "value"), State("cs-in-phone", "value"), State("cs-in-description", "value"))
CONFLICT = "该案件已被他人更新"


def _cases():
    return services().cases


def _principal():
    principal = current_principal()
    if principal is None:
        raise PreventUpdate  # signed out meanwhile: the guard answers the next page load
    return principal


# ---- the queue ----------------------------------------------------------------------------------------
@callback(
    Output("cs-grid", "getRowsResponse"),
    Output("cs-count", "children"),
    Output("cs-toolbar-msg", "children"),
    Input("cs-grid", "getRowsRequest"),
    *(State(i, "value") for i in FILTER_IDS),
    prevent_initial_call=True,
)
def queue_rows(request, states, kind, category, area, source, overdue, supervised):
    request = inputs.mapping(request, "getRowsRequest")
    if not request:
        raise PreventUpdate
    principal = _principal()
    start = inputs.integer(request.get("startRow"), "startRow") or 0
    end = inputs.integer(request.get("endRow"), "endRow") or start + 100
    sort_model = request.get("sortModel")
    if sort_model is not None and not (isinstance(sort_model, list) and all(isinstance(m, dict) for m in sort_model)):
        raise inputs.refuse("sortModel 须为对象列表")
    states = inputs.texts(states, "状态")
    kind, category, area, source = (inputs.text(v, n) for v, n in ((kind, "类型"), (category, "类别"),
                                                                  (area, "区域"), (source, "来源")))
    first = start == 0
    try:
        filters = queue.QueueFilters.from_form(states, kind, category, area, source, inputs.text(overdue, "超期"),
                                               inputs.text(supervised, "督办"))
        page = queue.queue_page(_cases(), principal, filters, start, end, sort_model, count=first)
    except ServiceError as exc:
        return {"rowData": [], "rowCount": 0}, "", exc.message
    rows = page["rows"]
    response = {"rowData": rows}
    if first:
        response["rowCount"] = page["total"]
    elif len(rows) < end - start:
        response["rowCount"] = start + len(rows)  # the last block: the grid stops growing here
    return response, (f"共 {page['total']:,} 件" if first else no_update), ""


# Filters changed: the grid asks for its blocks again (its datasource reads the filters above).
clientside_callback(
    ClientsideFunction(namespace="console", function_name="purge"),
    Output("cs-grid-sync", "data"),
    *(Input(i, "value") for i in FILTER_IDS),
    prevent_initial_call=True,
)

# A row clicked: open it (no round trip before the detail callback).
clientside_callback(
    ClientsideFunction(namespace="console", function_name="openRow"),
    Output("cs-open", "data"),
    Input("cs-grid", "cellClicked"),
    prevent_initial_call=True,
)


@callback(
    Output("cs-open", "data", allow_duplicate=True),
    Output("cs-toolbar-msg", "children", allow_duplicate=True),
    Input("cs-search", "n_submit"),
    State("cs-search", "value"),
    prevent_initial_call=True,
)
def search(_n, text):
    text = inputs.text(text, "案件编号")
    if not (text or "").strip():
        raise PreventUpdate
    try:
        case_id = queue.find_case(_cases(), _principal(), text)
    except ServiceError as exc:
        return no_update, exc.message
    return {"id": case_id, "t": time.time()}, ""


# /console?case=ID: open that case once the page is drawn (the link of the cockpit's penalty list)
clientside_callback(
    """function (id) {
        return id ? {id: id, t: Date.now()} : window.dash_clientside.no_update;
    }""",
    Output("cs-open", "data", allow_duplicate=True),
    Input("cs-deeplink", "data"),
    prevent_initial_call="initial_duplicate",
)


# ---- the side panel: detail or intake ------------------------------------------------------------------
# The panel opens in the same response that fills it, so that the maps inside measure their real size.
def _panel(which: str | None) -> tuple[str, str]:
    return (f"cs-side is-open is-{which}", "cs has-side") if which else ("cs-side", "cs")


clientside_callback(
    "function (n) { return n ? ['cs-side', 'cs'] : [window.dash_clientside.no_update, window.dash_clientside.no_update]; }",
    Output("cs-side", "className", allow_duplicate=True),
    Output("cs-root", "className", allow_duplicate=True),
    Input("cs-close", "n_clicks"),
    prevent_initial_call=True,
)

clientside_callback(
    "function (n, hidden) { return n ? !hidden : window.dash_clientside.no_update; }",
    Output("cs-help", "hidden"),
    Input("cs-help-btn", "n_clicks"),
    State("cs-help", "hidden"),
    prevent_initial_call=True,
)


@callback(
    Output("cs-detail", "children"),
    Output("cs-case", "data"),
    Output("cs-side", "className"),
    Output("cs-root", "className"),
    Input("cs-open", "data"),
    Input("cs-reload", "data"),
    prevent_initial_call=True,
)
def show_case(opened, reload):
    src = reload if ctx.triggered_id == "cs-reload" else opened
    if not src:
        raise PreventUpdate
    src = inputs.case_ref(src, "cs-open")  # {"id": "abc"} and the like: a 400, not a 500
    if src is None:
        raise PreventUpdate
    cases, principal = _cases(), _principal()
    msg, kind = inputs.text(src.get("msg"), "msg"), inputs.text(src.get("kind"), "kind")
    message = {"text": msg, "kind": kind or "ok"} if msg else None
    try:
        detail = queue.case_detail(cases, src["id"], principal)
    except ServiceError as exc:
        return html.Div(exc.message, className="cs-msg is-error cs-d-missing"), None, *_panel("detail")
    case = detail["case"]
    choices = queue.unit_choices(cases, case, [a["action"] for a in detail["actions"]])
    map_src = view.case_map(queue.case_areas(cases, case), case["lon"], case["lat"])
    clock = detail["clock"]  # the countdown's: the center's open stage, or the unit's handling deadline
    shown = {"id": case["id"], "version": case["version"], "state": case["state"], "deadline": clock["deadline"],
             "time_unit": case["time_unit"], "clock": case["clock"], "started_at": clock["start"],
             "reported_at": case["reported_at"], "label": clock["label"], "stage": clock["stage"],
             "overdue": case["overdue"]}
    iot = device_chart.case_devices(services(), principal, case, "cs")
    return view.detail_view(detail, choices, map_src, message, cases.clock(), iot), shown, *_panel("detail")


# With the side panel open the queue is narrower: it drops its less needed columns meanwhile.
clientside_callback(
    ClientsideFunction(namespace="console", function_name="columns"),
    Output("cs-grid-sync", "data", allow_duplicate=True),
    Input("cs-root", "className"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction(namespace="console", function_name="fitMap"),
    Output("cs-dmap", "data"),
    Input("cs-dmap-src", "data"),
)

# The open case in the queue: selected, and the queue re-read after an action of ours.
clientside_callback(
    ClientsideFunction(namespace="console", function_name="selectRow"),
    Output("cs-grid-sync", "data", allow_duplicate=True),
    Input("cs-case", "data"),
    prevent_initial_call=True,
)

# "Someone else changed it" banner → read the case again.
clientside_callback(
    "function (n, shown) { return (n && shown) ? {id: shown.id, t: Date.now()} : window.dash_clientside.no_update; }",
    Output("cs-reload", "data", allow_duplicate=True),
    Input("cs-stale-reload", "n_clicks"),
    State("cs-case", "data"),
    prevent_initial_call=True,
)


@callback(
    Output("cs-countdown", "children"),
    Output("cs-countdown", "className"),
    Input("cs-tick", "n_intervals"),
    State("cs-case", "data"),
    prevent_initial_call=True,
)
def tick(_n, shown):
    shown = _shown_case(shown)
    if not shown:
        raise PreventUpdate
    missing = [k for k in ("time_unit", "state") if not shown.get(k)]
    if missing:  # show_case always writes them: a store without them is forged (a 400, not a KeyError)
        raise inputs.refuse(f"cs-case 缺少 {'、'.join(missing)}")
    t = queue.countdown(_cases(), shown.get("deadline"), shown["time_unit"], shown["state"],
                        shown.get("started_at") or shown.get("reported_at"),
                        overdue=None if shown.get("stage") else shown.get("overdue"),
                        label=shown.get("label") or "处置时限")
    new = view.countdown_view(t)
    return new.children, new.className


def _shown_case(shown) -> dict | None:
    """The cs-case store (written by show_case): id, version and the countdown's texts, or a 400."""
    shown = inputs.case_ref(shown, "cs-case", need_version=True)
    if shown is not None:
        for key in ("deadline", "time_unit", "state", "reported_at", "started_at", "clock", "label"):
            inputs.text(shown.get(key), f"cs-case.{key}")
        for key in ("stage", "overdue"):
            if shown.get(key) not in (None, True, False):
                raise inputs.refuse(f"cs-case.{key} 须为布尔值")
        if shown.get("clock") not in (None, "working", "calendar"):
            raise inputs.refuse("cs-case.clock 须为 working 或 calendar")
    return shown


# ---- lifecycle actions ------------------------------------------------------------------------------------
# The form's parts, in the order of the act callback's outputs.
_FORM_OUTPUTS = (
    ("cs-act-form", "className"), ("cs-act-title", "children"),
    ("cs-act-unit-row", "hidden"), ("cs-act-unit-label", "children"), ("cs-act-unit", "options"),
    ("cs-act-unit", "value"),
    ("cs-act-choice-row", "hidden"), ("cs-act-choice-label", "children"), ("cs-act-choice", "options"),
    ("cs-act-choice", "value"),
    ("cs-act-hours-row", "hidden"), ("cs-act-hours-label", "children"), ("cs-act-hours", "value"),
    ("cs-act-note-row", "hidden"), ("cs-act-note-label", "children"), ("cs-act-note", "value"),
    ("cs-act-pending", "data"),
)
_CLOSED = {"cs-act-form.className": "cs-actform", "cs-act-title.children": "", "cs-act-unit-row.hidden": True,
           "cs-act-choice-row.hidden": True, "cs-act-hours-row.hidden": True, "cs-act-note-row.hidden": True,
           "cs-act-pending.data": None}


def _form(parts: dict | None, msg=no_update, msg_class=no_update, reload=no_update) -> tuple:
    """The act callback's outputs: the form's `parts` (by "id.prop"; the rest unchanged), then the message
    and the reload."""
    parts = parts or {}
    return tuple(parts.get(f"{i}.{p}", no_update) for i, p in _FORM_OUTPUTS) + (msg, msg_class, reload)


def _open_form(spec: dict, choices: dict) -> dict:
    """The form's parts for one action (queue.action_spec): the rows it asks for, emptied."""
    units = choices.get(spec["action"]) or {}
    parts = {"cs-act-form.className": "cs-actform is-open", "cs-act-title.children": f"「{spec['label']}」",
             "cs-act-unit-row.hidden": not spec["unit"], "cs-act-unit-label.children": spec["unit_label"],
             "cs-act-unit.options": units.get("options") or [], "cs-act-unit.value": units.get("value"),
             "cs-act-choice-row.hidden": not spec["choices"], "cs-act-choice-label.children": spec["choices_label"],
             "cs-act-choice.options": spec["choices"], "cs-act-choice.value": None,
             "cs-act-hours-row.hidden": not spec["hours"], "cs-act-hours-label.children": spec["hours_label"],
             "cs-act-hours.value": None,
             "cs-act-note-row.hidden": not spec["note"], "cs-act-note-label.children": spec["note_label"],
             "cs-act-note.value": "", "cs-act-pending.data": spec["action"]}
    return parts


def _choices(value) -> dict:
    """The cs-act-choices store (show_case wrote it): {action: {options: [{label, value}], value}}."""
    record = inputs.mapping(value, "cs-act-choices") or {}
    for action, picker in record.items():
        picker = inputs.mapping(picker, f"cs-act-choices.{action}") or {}
        options = picker.get("options") or []
        if not isinstance(options, list) or not all(
                isinstance(o, dict) and isinstance(o.get("value"), str) and isinstance(o.get("label"), str)
                for o in options):
            raise inputs.refuse(f"cs-act-choices.{action} 须为单位选项列表")
        inputs.text(picker.get("value"), f"cs-act-choices.{action}.value")
    return record


def _spec(action, shown: dict) -> dict | None:
    if not isinstance(action, str) or action not in lifecycle.RULES:
        return None
    clock = shown.get("clock") or "working"
    return queue.action_spec(action, clock, _cases().rules.supervision_deadline_hours.get(clock))


@callback(
    *(Output(i, p) for i, p in _FORM_OUTPUTS),
    Output("cs-act-msg", "children"),
    Output("cs-act-msg", "className"),
    Output("cs-reload", "data"),
    Input({"type": "cs-act", "action": ALL}, "n_clicks"),
    Input("cs-act-go", "n_clicks"),
    Input("cs-act-cancel", "n_clicks"),
    State("cs-case", "data"),
    State("cs-act-pending", "data"),
    State("cs-act-note", "value"),
    State("cs-act-hours", "value"),
    State("cs-act-unit", "value"),
    State("cs-act-choice", "value"),
    State("cs-act-choices", "data"),
    prevent_initial_call=True,
)
def act(_clicks, _go, _cancel, shown, pending, note, hours, unit, choice, choices):
    trigger = ctx.triggered_id
    shown = _shown_case(shown)
    if not ctx.triggered or not ctx.triggered[0].get("value") or not shown:
        raise PreventUpdate  # a button just drawn, not pressed
    pending, note, unit = inputs.text(pending, "待办操作"), inputs.text(note, "备注"), inputs.text(unit, "单位")
    choice = inputs.text(choice, "选项")
    hours = inputs.number(hours, "时长")
    choices = _choices(choices)
    if trigger == "cs-act-cancel":
        return _form(_CLOSED, "", "cs-msg")
    if isinstance(trigger, dict):
        spec = _spec(trigger.get("action"), shown)
        if spec is None:
            raise PreventUpdate
        if spec["form"]:
            return _form(_open_form(spec, choices), "", "cs-msg")
        return _perform(shown, spec, "", None, None, None)
    if trigger == "cs-act-go" and pending:
        spec = _spec(pending, shown)
        if spec is None:
            return _form(None, f"未知操作「{pending}」，请刷新页面后重试", "cs-msg is-error")
        return _perform(shown, spec, note or "", hours if spec["hours"] else None, unit if spec["unit"] else None,
                        choice if spec["choices"] else None)
    raise PreventUpdate


def _perform(shown: dict, spec: dict, note: str, hours, unit, choice):
    action, label = spec["action"], spec["label"]
    extra = {}
    if spec["choices_name"]:
        if not choice:  # the service would say so in its own words too; this names the field on the form
            return _form(None, f"请选择{spec['choices_label']}", "cs-msg is-error")
        extra[spec["choices_name"]] = choice
    try:
        case = _cases().act(shown["id"], _principal(), action, shown["version"], note=note, hours=hours, unit=unit,
                            **extra)
    except ServiceError as exc:
        if exc.status == 409:
            now = (exc.details.get("case") or {}).get("state_label")
            msg = CONFLICT + (f"，当前状态「{now}」" if now else "") + "。已显示最新内容，请确认后再操作。"
            return _form(_CLOSED, "", "cs-msg", {"id": shown["id"], "t": time.time(), "msg": msg, "kind": "error"})
        # 400 / 403 / 422: the service's own words; the form stays as it is for a correction
        return _form(None, exc.message, "cs-msg is-error")
    msg = f"「{label}」完成，案件现为「{case['state_label']}」"
    return _form(_CLOSED, "", "cs-msg", {"id": case["id"], "t": time.time(), "msg": msg, "kind": "ok"})


# ---- 督办件: the supervised cases of the principal's level and below -----------------------------------------
def _supervised():
    try:
        return queue.supervised_cases(_cases(), _principal()), None
    except ServiceError as exc:
        return None, exc.message


@callback(
    Output("cs-sup-body", "children"),
    Output("cs-sup-scope", "children"),
    Output("cs-sup-btn", "children"),
    Output("cs-side", "className", allow_duplicate=True),
    Output("cs-root", "className", allow_duplicate=True),
    Input("cs-sup-btn", "n_clicks"),
    prevent_initial_call="initial_duplicate",
)
def open_supervised(n):
    """The toolbar button (or the leader's landing, below) opens the list; on load it shows the count."""
    n = inputs.integer(n, "n_clicks")
    listing, error = _supervised()
    face = view.supervised_button(listing)
    if n:
        return view.supervised_view(listing, error), _scope(listing), face, *_panel("sup")
    return no_update, no_update, face, no_update, no_update


def _scope(listing: dict | None) -> str:
    return listing["scope_label"] if listing else ""


# A leader lands on the 督办件 list, once the queue has its first block (opening the panel in the same
# moment as the grid's first request loses that request: the queue would stay empty).
clientside_callback(
    """function (count, auto, n) {
      if (!auto || !count) { return [window.dash_clientside.no_update, window.dash_clientside.no_update]; }
      return [(n || 0) + 1, false];
    }""",
    Output("cs-sup-btn", "n_clicks"),
    Output("cs-sup-auto", "data"),
    Input("cs-count", "children"),
    State("cs-sup-auto", "data"),
    State("cs-sup-btn", "n_clicks"),
    prevent_initial_call=True,
)


@callback(
    Output("cs-sup-body", "children", allow_duplicate=True),
    Output("cs-sup-scope", "children", allow_duplicate=True),
    Output("cs-sup-btn", "children", allow_duplicate=True),
    Input("cs-sup-reload", "n_clicks"),
    Input("cs-sup-refresh", "data"),
    State("cs-side", "className"),
    prevent_initial_call=True,
)
def refresh_supervised(n, _live, side):
    """The list read again (its 刷新 button, or news on the live stream); the count always, the list while shown."""
    if ctx.triggered_id == "cs-sup-reload" and not n:
        raise PreventUpdate
    side = inputs.text(side, "cs-side.className") or ""
    listing, error = _supervised()
    showing = "is-sup" in side.split() and "is-open" in side.split()
    if not showing:
        return no_update, no_update, view.supervised_button(listing)
    return view.supervised_view(listing, error), _scope(listing), view.supervised_button(listing)


@callback(
    Output("cs-open", "data", allow_duplicate=True),
    Input({"type": "cs-sup-row", "case": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def open_supervised_case(_clicks):
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate  # a list redrawn, not a click
    case_id = inputs.integer(trigger.get("case"), "cs-sup-row", lo=1)
    return {"id": case_id, "t": time.time()}


# ---- hotline intake ----------------------------------------------------------------------------------------
@callback(
    Output("cs-intake", "children"),
    Output("cs-side", "className", allow_duplicate=True),
    Output("cs-root", "className", allow_duplicate=True),
    Input("cs-new", "n_clicks"),
    prevent_initial_call=True,
)
def open_intake(n):
    if not n:
        raise PreventUpdate
    return view.intake_form(_cases()), *_panel("intake")


# Map click or typed coordinates: the marker and the two fields agree (in the browser, no round trip).
clientside_callback(
    ClientsideFunction(namespace="console", function_name="intakeMap"),
    Output("cs-in-map", "data"),
    Output("cs-in-lon", "value"),
    Output("cs-in-lat", "value"),
    Input("cs-in-map-src", "data"),
    Input("cs-in-map", "clickInfo"),
    Input("cs-in-lon", "value"),
    Input("cs-in-lat", "value"),
    State("cs-in-map", "data"),
)


def _payload(category, lon, lat, severity, phone, description, key=None) -> dict:
    """The form as an intake body: empty fields left out (so the service says 必填), numbers parsed when
    they are numbers (otherwise passed on as typed, so the service says 须为数字)."""
    body = {"source": "hotline"}
    if category:
        body["category"] = category
    for name, raw in (("lon", lon), ("lat", lat)):
        text = str(raw).strip() if raw is not None else ""
        if text:
            try:
                body[name] = float(text)
            except ValueError:
                body[name] = text
    if severity:
        body["severity"] = severity
    if phone and str(phone).strip():
        body["reporter_phone"] = str(phone).strip()
    if description:
        body["description"] = description
    if key:
        body["idempotency_key"] = f"console:{key}"
    return body


@callback(
    Output("cs-in-preview", "children"),
    Output("cs-in-severity-row", "hidden"),
    Output("cs-in-msg", "children", allow_duplicate=True),  # cleared once the report is acceptable
    Input("cs-in-category", "value"),
    Input("cs-in-lon", "value"),
    Input("cs-in-lat", "value"),
    Input("cs-in-severity", "value"),
    Input("cs-in-phone", "value"),
    State("cs-in-description", "value"),
    prevent_initial_call=True,
)
def preview(category, lon, lat, severity, phone, description):
    category = inputs.text(category, "类别")
    cases, principal = _cases(), _principal()
    cat = cases.catalog().get(category) if category else None
    severity_hidden = not (cat and cat.is_emergency)
    body = _payload(category, lon, lat, None if severity_hidden else severity, phone, description)
    if not category and "lon" not in body and "lat" not in body:
        return view.preview_view(None, None), severity_hidden, no_update
    if category and "lon" not in body and "lat" not in body:
        return view.preview_view(None, "请在地图上点选位置，或填写经度和纬度"), severity_hidden, no_update
    try:
        result = cases.preview(body, principal)
    except ServiceError as exc:
        # a refusal shown below the button stays (it may have come from a submit racing this preview)
        return view.preview_view(None, exc.message), severity_hidden, no_update
    return view.preview_view(result, None), severity_hidden, ""


@callback(
    Output("cs-in-msg", "children"),
    Output("cs-in-msg", "className"),
    Output("cs-open", "data", allow_duplicate=True),
    Input("cs-in-submit", "n_clicks"),
    *INTAKE_FIELDS,
    State("cs-in-key", "data"),
    prevent_initial_call=True,
)
def submit_intake(n, category, lon, lat, severity, phone, description, key):
    if not n:
        raise PreventUpdate
    category, key = inputs.text(category, "类别"), inputs.text(key, "key")
    cases, principal = _cases(), _principal()
    cat = cases.catalog().get(category) if category else None
    body = _payload(category, lon, lat, severity if cat and cat.is_emergency else None, phone, description, key)
    try:
        case, _created = cases.intake(body, principal, actor=principal.ident)
    except ServiceError as exc:
        return exc.message, "cs-msg is-error", no_update
    if case.get("merged_into"):
        msg = f"与在办案件 #{case['merged_into']} 重复，已合并到该案件（本次来电登记为 #{case['id']}）"
        return msg, "cs-msg is-ok", {"id": case["merged_into"], "t": time.time(), "msg": msg, "kind": "ok"}
    msg = f"已受理：案件 #{case['id']}（{case['category']['name']}），派往{(case['unit'] or {}).get('name') or '人工派遣'}"
    return msg, "cs-msg is-ok", {"id": case["id"], "t": time.time(), "msg": msg, "kind": "ok"}


# ---- the live stream and the keyboard (assets/console.js) -----------------------------------------------------
clientside_callback(
    ClientsideFunction(namespace="console", function_name="start"),
    Output("cs-started", "data"),
    Input("cs-config", "data"),
)


@callback(
    Output("cs-emg", "hidden"),
    Output("cs-emg", "children"),
    Input("cs-emg-tick", "n_intervals"),
    Input("cs-sup-refresh", "data"),
)
def load_emergencies(_tick, _news):
    """The active emergency responses in the officer's scope, late reports and unacknowledged units marked."""
    principal = current_principal()
    if principal is None:
        raise PreventUpdate
    return emergency_brief.panel(principal, "cs")


# ---- the 12345 pushes that failed (cases/hotline.py): the card and its 重新推送 ---------------------------------------
@callback(
    Output("cs-hl", "hidden"),
    Output("cs-hl", "children"),
    Input("cs-emg-tick", "n_intervals"),
    Input("cs-hl-done", "data"),
)
def load_hotline_failures(_tick, done):
    """The dead-letter list's count and newest few, for admins and duty officers; what the last retry said."""
    principal = _principal()
    hotline = services().hotline
    done = inputs.mapping(done, "cs-hl-done") or {}
    fresh = isinstance(done.get("t"), (int, float)) and time.time() - done["t"] < 60  # a minute, then it goes
    message = inputs.text(done.get("msg"), "cs-hl-done") if fresh else None
    return view.hotline_failures(hotline.dead_summary(principal) if hotline is not None else None, message)


@callback(
    Output("cs-hl-done", "data"),
    Input({"type": "cs-hl-retry", "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def retry_hotline_push(_clicks):
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate  # the card redrawn, not a click
    delivery_id = inputs.integer(trigger.get("id"), "cs-hl-retry", lo=1)
    try:
        services().hotline.retry(delivery_id, _principal())
        msg = f"已重新推送 #{delivery_id}（同一工单其后的失败推送一并重推）"
    except ServiceError as exc:
        msg = exc.message
    return {"msg": msg, "t": time.time()}
