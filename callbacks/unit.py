"""Unit workspace callbacks: read the unit's tasks and one case, act on it (sign, resolve, return, extend)."""
from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, html, no_update
from dash.exceptions import PreventUpdate

from callbacks import inputs
from web.principal import current_principal
from cases.service import ServiceError
from cases.photos import check_photo, decode_data_url, list_photos, save_photo
from figures import assessment_view
from layouts import case_text, device_chart
from layouts import unit as view
from web.services import services

CONFLICT = "该案件已被他人更新"
BUTTONS = {"un-sign": "sign", "un-resolve": "resolve", "un-return": "return", "un-extend": "extend",
           "un-suspend": "request_suspension"}
DONE = {"sign": "已签收案件 #{id}，请尽快处置",
        "resolve": "处置反馈已提交：案件 #{id} 现为「{state}」，等待核查",
        "return": "案件 #{id} 已退回指挥中心",
        "extend": "已为案件 #{id} 申请延期 {hours:g} {word}，等待指挥中心审批",
        "request_suspension": "已为案件 #{id} 申请挂账，等待指挥中心审批"}
# what a 协办 unit's sign and feedback are called, and what they say when done
ASSIST_DONE = {"sign": "已签收案件 #{id} 的协办任务", "resolve": "已反馈案件 #{id} 的协办情况"}
HIDDEN, SHOWN = {"display": "none"}, {}


def _services():
    return services()


def _live(live) -> dict:
    """The un-live store (assets/unit.js): {"new": [ids], "changed": [ids], "reload": bool}."""
    news = inputs.mapping(live, "un-live") or {}
    for key in ("new", "changed"):
        ids = news.get(key) or []
        if not isinstance(ids, list):
            raise inputs.refuse(f"un-live.{key} 须为编号列表")
        news = {**news, key: [inputs.integer(i, f"un-live.{key}") for i in ids]}
    return news


def _new_ids(live) -> set[int]:
    return {i for i in _live(live)["new"] if i is not None}


@callback(
    Output("un-list", "children"),
    Output("un-counts", "children"),
    Input("un-filter", "value"),
    Input("un-tick", "n_intervals"),
    Input("un-refresh", "data"),
    Input("un-live", "data"),
    Input("un-selected", "data"),
)
def load_tasks(filter_key, _tick, _refresh, live, selected):
    principal = current_principal()
    if principal is None:
        raise PreventUpdate
    filter_key = inputs.text(filter_key, "筛选")
    selected = inputs.integer(selected, "un-selected")
    cases = _services().cases
    now = view.utcnow()
    todo = cases.list(principal, state=view.FILTERS["todo"][1], per_page=300)["items"]
    key = filter_key if filter_key in view.FILTERS else "todo"
    items = todo if key == "todo" else cases.list(principal, state=view.FILTERS[key][1], per_page=300)["items"]
    mine = principal.unit_code
    return view.task_list(items, now, selected, _new_ids(live), mine), view.counts(todo, mine)


@callback(
    Output("un-assess-summary", "children"),
    Output("un-assess-body", "children"),
    Input("un-tick", "n_intervals"),
    Input("un-refresh", "data"),
)
def load_assessment(_tick, _refresh):
    """The unit's own 部门评价 this month and its penalty points (figures.service, kept a minute)."""
    principal = current_principal()
    if principal is None:
        raise PreventUpdate
    card = assessment_view.unit_card(_services().cases, principal)
    return view.assessment_summary(card), view.assessment_body(card)


@callback(
    Output("un-selected", "data"),
    Input({"type": "un-item", "case": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def select_case(_clicks):
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate  # a list redrawn, not a click
    return trigger["case"]


# The controls show_case shows or hides, in its outputs' order after the case view and its store.
_CONTROLS = ("un-sign-row", "un-resolve-box", "un-ask-box", "un-sign", "un-resolve", "un-return", "un-extend",
             "un-suspend", "un-hours", "un-upload-row")


@callback(
    Output("un-case-view", "children"),
    Output("un-case", "data"),
    Output("un-actions", "style"),
    *(Output(c, "style") for c in _CONTROLS),
    Output("un-sign", "disabled"),
    Output("un-resolve", "disabled"),
    Output("un-return", "disabled"),
    Output("un-extend", "disabled"),
    Output("un-suspend", "disabled"),
    Output("un-sign", "children"),
    Output("un-resolve", "children"),
    Output("un-resolve-legend", "children"),
    Output("un-resolve-note", "placeholder"),
    Output("un-hours", "placeholder"),
    Output("un-none", "hidden"),
    Output("un-none", "children"),
    Output("un-sign-hint", "children"),
    Output("un-extend-hint", "children"),
    Output("un-msg", "children", allow_duplicate=True),
    Input("un-selected", "data"),
    Input("un-refresh", "data"),
    Input("un-live", "data"),
    Input("un-tick", "n_intervals"),
    prevent_initial_call="initial_duplicate",
)
def show_case(selected, _refresh, live, _tick):
    principal = current_principal()
    selected = inputs.integer(selected, "un-selected")
    if principal is None or selected is None:
        raise PreventUpdate
    trigger = ctx.triggered_id
    news = _live(live)
    changed = set(news["changed"])
    if trigger == "un-live" and not news.get("reload") and selected not in changed:
        raise PreventUpdate  # news about other cases only
    services = _services()
    try:
        case = services.cases.get(selected, principal)
    except ServiceError as exc:
        return (html.Div(exc.message, className="un-placeholder un-placeholder--bad"), None, HIDDEN,
                *(HIDDEN,) * len(_CONTROLS), True, True, True, True, True,
                no_update, no_update, no_update, no_update, no_update, True, "", "", "", "")
    # only the buttons the service would accept now: the lifecycle's allowed actions for this person
    allowed = set(services.cases.allowed_actions(case["id"], principal))
    photos = list_photos(services.db, case["id"])
    helping = view.assisting(case, principal.unit_code)
    word = case_text.hours_word(case)
    show = {"un-sign": "sign" in allowed, "un-resolve": "resolve" in allowed, "un-return": "return" in allowed,
            "un-extend": "extend" in allowed, "un-suspend": "request_suspension" in allowed}
    asks = show["un-return"] or show["un-extend"] or show["un-suspend"]
    visible = {"un-sign-row": show["un-sign"], "un-resolve-box": show["un-resolve"], "un-ask-box": asks,
               "un-hours": show["un-extend"], "un-upload-row": show["un-resolve"] and not helping, **show}
    if helping:
        sign_hint = "本单位为协办单位，请签收协办任务" if show["un-sign"] else ""
        labels = ("签收协办任务", "提交协办反馈", "反馈协办情况", "协办情况说明（必填），如：已派员配合封闭路段")
    else:
        sign_hint = "案件已派遣到本单位，请先签收" if show["un-sign"] else ""
        labels = ("签收", "提交处置反馈", "处置反馈", "处置情况说明（必填），如：已补装井盖，现场恢复通行")
    pending = case.get("extension_pending_hours")
    extend_hint = f"已申请延期 {pending:g} {word}，等待指挥中心审批" if pending else ""
    if (case.get("suspension") or {}).get("state") == "requested":
        extend_hint = (extend_hint + "；" if extend_hint else "") + "已申请挂账，等待指挥中心审批"
    nothing = not any(show.values())
    none_text = _nothing_text(case, helping) if nothing else ""
    iot = device_chart.case_devices(services, principal, case, "un")
    return (view.case_view(case, photos, view.utcnow(), principal.unit_code, iot),
            {"id": case["id"], "version": case["version"]}, SHOWN,
            *(SHOWN if visible[c] else HIDDEN for c in _CONTROLS),
            not show["un-sign"], not show["un-resolve"], not show["un-return"], not show["un-extend"],
            not show["un-suspend"], *labels, f"延期{word}", not nothing, none_text,
            sign_hint, extend_hint,
            "" if trigger == "un-selected" else no_update)  # a message is about the case it was for


def _nothing_text(case: dict, helping: bool) -> str:
    """Why there is nothing to do on the case now."""
    if helping:
        return "协办情况已反馈，主办单位仍在处置" if case["state"] in ("dispatched", "signed") else "案件已不在处置中，无需协办操作"
    state = case["state"]
    if state == "resolved":
        return "已提交处置反馈，等待指挥中心核查"
    if state == "returned":
        return "已退回指挥中心，等待改派或驳回"
    if state == "suspended":
        return "案件挂账中，处置计时暂停，等待指挥中心解挂"
    return f"案件当前为「{case['state_label']}」，本单位没有需要办理的操作"


@callback(
    Output("un-msg", "children"),
    Output("un-msg", "className"),
    Output("un-refresh", "data"),
    Output("un-resolve-note", "value"),
    Output("un-reason", "value"),
    Output("un-hours", "value"),
    Output("un-photo", "contents"),
    Output("un-photo", "filename"),
    Input("un-sign", "n_clicks"),
    Input("un-resolve", "n_clicks"),
    Input("un-return", "n_clicks"),
    Input("un-extend", "n_clicks"),
    Input("un-suspend", "n_clicks"),
    State("un-case", "data"),
    State("un-resolve-note", "value"),
    State("un-reason", "value"),
    State("un-hours", "value"),
    State("un-photo", "contents"),
    State("un-photo", "filename"),
    State("un-refresh", "data"),
    prevent_initial_call=True,
)
def act(_sign, _resolve, _return, _extend, _suspend, shown, resolve_note, reason, hours, photo, photo_name, refresh):
    action = BUTTONS.get(ctx.triggered_id) if isinstance(ctx.triggered_id, str) else None
    principal = current_principal()
    shown = inputs.case_ref(shown, "un-case", need_version=True)
    if action is None or not shown or principal is None or not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate
    resolve_note, reason = inputs.text(resolve_note, "处置说明"), inputs.text(reason, "理由")
    hours, refresh = inputs.number(hours, "延期时长"), inputs.integer(refresh, "un-refresh")
    photo, photo_name = inputs.text(photo, "照片"), inputs.text(photo_name, "照片文件名")
    services = _services()
    keep = (no_update,) * 5

    def refused(message: str, reload: bool = False):
        return (message, "un-msg un-msg--bad", (refresh or 0) + 1 if reload else no_update) + keep

    note = (resolve_note if action == "resolve" else reason) or ""
    data = None
    if action == "resolve" and photo:
        try:  # the photo is checked before the case moves: a bad photo changes nothing
            data = decode_data_url(photo)
            check_photo(data, photo_name or "")
        except ServiceError as exc:
            return refused(exc.message)
    try:
        case = services.cases.act(shown["id"], principal, action, shown["version"], note=note,
                                  hours=hours if action == "extend" else None)
    except ServiceError as exc:
        if exc.status == 409:
            return refused(f"{CONFLICT}，已重新载入最新状态，请确认后再操作", reload=True)
        return refused(exc.message)
    helping = view.assisting(case, principal.unit_code)
    word = case_text.hours_word(case)
    message = (ASSIST_DONE if helping and action in ASSIST_DONE else DONE)[action].format(
        id=case["id"], state=case["state_label"], hours=hours or 0, word=word)
    if data is not None:
        try:
            save_photo(services.cases, case["id"], data, photo_name or "", "feedback", principal.ident, principal)
            message += "，处置照片已上传"
        except ServiceError as exc:
            return (f"{message}，但处置照片未能保存：{exc.message}", "un-msg un-msg--warn", (refresh or 0) + 1) + keep
    cleared = ("", "", None, None, None) if action in ("resolve", "return", "extend", "request_suspension") else keep
    return (message, "un-msg un-msg--ok", (refresh or 0) + 1) + cleared


@callback(
    Output("un-emg", "hidden"),
    Output("un-emg-list", "children"),
    Input("un-tick", "n_intervals"),
    Input("un-refresh", "data"),
    Input("un-live", "data"),
)
def load_emergency_tasks(_tick, _refresh, _live):
    """The unit's tasks in active emergency responses (emergency/response.py), shown only when there are any."""
    principal = current_principal()
    responses = _services().responses
    if principal is None or responses is None:
        raise PreventUpdate
    items = responses.unit_tasks(principal)
    return not items, view.emergency_tasks(items)


@callback(
    Output("un-emg-msg", "children"),
    Output("un-emg-msg", "className"),
    Output("un-refresh", "data", allow_duplicate=True),
    Input({"type": "un-ack", "case": ALL}, "n_clicks"),
    State("un-refresh", "data"),
    prevent_initial_call=True,
)
def acknowledge_task(_clicks, refresh):
    """签收 of the unit's emergency task; the service says why not (already acknowledged, no task, ended)."""
    trigger = ctx.triggered_id
    principal = current_principal()
    if principal is None or not isinstance(trigger, dict) or not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate
    case_id = inputs.integer(trigger.get("case"), "un-ack")
    refresh = inputs.integer(refresh, "un-refresh") or 0
    app = _services()
    try:
        version = app.cases.get(case_id, principal)["version"]  # the task, not the case's state, is acknowledged
        app.responses.act(case_id, principal, "acknowledge", version)
    except ServiceError as exc:
        return exc.message, "un-msg un-msg--bad", refresh + 1
    return f"已签收案件 #{case_id} 的应急联动任务", "un-msg un-msg--ok", refresh + 1


# The live stream (assets/unit.js): started once the page has its configuration.
clientside_callback(
    ClientsideFunction(namespace="ucc_unit", function_name="start"),
    Output("un-started", "data"), Input("un-config", "data"),
)

# A phone: the case picked in the list scrolls into view once drawn (assets/unit.js).
clientside_callback(
    ClientsideFunction(namespace="ucc_unit", function_name="reveal"),
    Output("un-started", "data", allow_duplicate=True), Input("un-case", "data"),
    prevent_initial_call=True,
)

# The chosen feedback photo: previewed and checked in the browser (type by magic bytes, size), no upload yet.
clientside_callback(
    ClientsideFunction(namespace="ucc_photo", function_name="unit"),
    Output("un-photo-preview", "src"), Output("un-photo-preview", "style"),
    Output("un-photo-msg", "children"), Output("un-photo-msg", "className"),
    Input("un-photo", "contents"), State("un-photo", "filename"), State("un-config", "data"),
)
