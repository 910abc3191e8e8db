"""The cockpit's 仿真预测 view: forecast, backtest, warnings and their actions, the what-if run (foresight services)."""
from __future__ import annotations

from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, no_update
from dash.exceptions import PreventUpdate

from callbacks import inputs
from dispatch.errors import ServiceError
from figures import foresight_view as fv
from foresight.warnings import ACTORS  # who sees the actions (the service checks each)
from layouts import cockpit as view
from layouts import cockpit_foresight as fs
from web.principal import current_principal
from web.services import services

WARNING_ROWS = 40


def _service(name: str):
    """The foresight service `name` (forecast, warnings, whatif), or None where this app runs without it."""
    return getattr(services(), name, None)


def _shown(view_key) -> None:
    if inputs.text(view_key, "ck-view") != "foresight":
        raise PreventUpdate


def _scale(scale) -> float:
    scale = inputs.number(scale, "ck-scale")
    if scale is not None and not 0.25 <= scale <= 8:
        raise inputs.refuse("ck-scale 须在 0.25 到 8 之间")
    return scale or 1


def hot_marks() -> dict | None:
    """The hot grids and recurring spots of the open warnings the reader may see (the map's layer)."""
    warnings, principal = _service("warnings"), current_principal()
    if warnings is None or principal is None:
        return None
    items = warnings.list(principal, status=None, kind=None, limit=200)["items"]
    return fv.hotspot_marks(fv.with_evidence(warnings, principal, items), services().areas)


# ---- forecast and backtest ---------------------------------------------------------------------------------
@callback(Output("ck-fs-board", "data"), Output("ck-fs-district", "options"), Output("ck-fs-district", "value"),
          Output("ck-fs-backtest", "children"), Output("ck-fs-bt-title", "children"),
          Input("ck-view", "data"), Input("ck-fs-tick", "n_intervals"), State("ck-area", "data"),
          State("ck-fs-district", "value"))
def load_forecast(view_key, _tick, area_code, picked):
    _shown(view_key)
    forecast = _service("forecast")
    if forecast is None:
        off = fs.OFF["forecast"]
        return {"off": off}, [], None, fs.off_note(off), "回测误差"
    app = services()
    try:
        board = fv.cached_board(app.db.url, lambda: fv.forecast_board(
            app.db, app.areas, forecast.forecast("district", fs.FORECAST_DAYS, app.cases.clock())))
    except ServiceError as e:  # e.g. a clock outside what can be forecast: said, not drawn
        return {"off": e.message}, [], None, fs.off_note(e.message), "回测误差"
    codes = [d["code"] for d in board["districts"]]
    area = app.areas.get(inputs.text(area_code, "ck-area") or "")
    chain = [a.code for a in app.areas.chain(area.code)] if area is not None else []
    pick = picked if picked in codes else next((c for c in chain if c in codes), codes[0] if codes else None)
    metric = next((r["metric"] for r in board["backtest"]), "")
    return (board, fs.district_options(board), pick, fs.backtest_table(board["backtest"], metric),
            f"回测误差 · 模型与季节基准（{len(board['backtest'])} 个区县）")


@callback(Output("ck-fs-graph", "figure"), Output("ck-fs-fc-title", "children"),
          Input("ck-fs-board", "data"), Input("ck-fs-district", "value"), Input("ck-scale", "data"))
def draw_forecast(board, district, scale):
    s = _scale(scale)
    board = inputs.mapping(board, "ck-fs-board")
    if board is None:
        raise PreventUpdate
    if board.get("off"):
        return view.empty_figure(s, board["off"]), "案件量预测"
    series = (board.get("series") or {}).get(inputs.text(district, "ck-fs-district") or "")
    name = series.get("name", "") if isinstance(series, dict) else ""
    title = f"案件量预测 · {name} · 未来{fs.FORECAST_DAYS}日（前{fv.HISTORY_DAYS}日为实际）"
    return view.forecast_figure(series, s, "暂无预测（历史数据不足）"), title


# ---- warnings ----------------------------------------------------------------------------------------------
@callback(Output("ck-fs-warnings", "children"), Output("ck-fs-warn-title", "children"),
          Input("ck-view", "data"), Input("ck-fs-tick", "n_intervals"), Input("ck-fs-done", "data"))
def load_warnings(view_key, _tick, _done):
    _shown(view_key)
    warnings, principal = _service("warnings"), current_principal()
    if warnings is None:
        return fs.off_note(fs.OFF["warnings"]), "预警"
    if principal is None:
        raise PreventUpdate
    app = services()
    names = {code: c.name for code, c in app.cases.catalog().items()}
    listed = warnings.list(principal, status=None, kind=None, limit=WARNING_ROWS)
    rows = fv.warning_rows(listed["items"], app.areas, names)
    return fs.warnings_list(rows, principal.role in ACTORS), fs.warnings_title(rows, listed["total"])


ASK_OUTPUTS = (Output("ck-fs-msg", "children"), Output("ck-fs-msg", "className"), Output("ck-fs-done", "data"),
               Output("ck-fs-sel", "data"), Output("ck-fs-ask", "hidden"), Output("ck-fs-ask-what", "children"),
               Output("ck-fs-unit", "options"), Output("ck-fs-unit", "value"), Output("ck-fs-unit", "className"),
               Output("ck-fs-note", "value"), Output("ck-fs-note", "placeholder"))


@callback(*ASK_OUTPUTS,
          Input({"type": "ck-fs-act", "action": ALL, "id": ALL}, "n_clicks"),
          Input("ck-fs-ask-go", "n_clicks"), Input("ck-fs-ask-cancel", "n_clicks"),
          State("ck-fs-sel", "data"), State("ck-fs-unit", "value"), State("ck-fs-note", "value"),
          State("ck-fs-done", "data"), prevent_initial_call=True)
def act(_clicks, _go, _cancel, sel, unit, note, done):
    """确认 a warning at once; 转专项整治 (with its lead unit) and 忽略 (with a reason) asked for first, then done on
    确定 — each through the warning service, which checks who may."""
    trigger = ctx.triggered_id
    if not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate  # a button just drawn, not clicked
    keep = [no_update] * len(ASK_OUTPUTS)
    closed = [None, True, "", [], None, "ck-fs-pick ck-fs-unit", "", "说明"]
    warnings, principal = _service("warnings"), current_principal()
    if warnings is None or principal is None:
        return [fs.OFF["warnings"], "ck-fs-msg is-bad"] + keep[2:]
    if trigger == "ck-fs-ask-cancel":
        return ["", "ck-fs-msg", no_update] + closed
    done = (done if isinstance(done, int) and not isinstance(done, bool) else 0) + 1
    try:
        if trigger == "ck-fs-ask-go":
            sel = inputs.mapping(sel, "ck-fs-sel") or {}
            wid, action = sel.get("id"), sel.get("action")
            if not isinstance(wid, int) or isinstance(wid, bool) or action not in ("task", "dismiss"):
                raise PreventUpdate
            note = (inputs.text(note, "ck-fs-note") or "").strip()
            if action == "task":
                unit = inputs.text(unit, "ck-fs-unit")
                if not unit:
                    return ["请选择牵头单位", "ck-fs-msg is-bad"] + keep[2:]
                made = warnings.to_campaign(wid, principal, unit, note)
                case = made.get("case") or {}
                text = f"预警 #{wid} 已转为专项整治案件 #{case.get('id')}，牵头单位：{services().cases.unit_name(unit)}"
            else:
                if not note:
                    return ["请填写忽略的原因", "ck-fs-msg is-bad"] + keep[2:]
                warnings.dismiss(wid, principal, note)
                text = f"预警 #{wid} 已忽略"
            return [text, "ck-fs-msg is-ok", done] + closed
        if not isinstance(trigger, dict):
            raise PreventUpdate
        action, wid = trigger.get("action"), trigger.get("id")
        if action not in dict(fs.ACTIONS) or isinstance(wid, bool) or not isinstance(wid, int):
            raise inputs.refuse("预警操作须为 ack、task 或 dismiss，并指明预警编号")
        if action == "ack":
            warnings.acknowledge(wid, principal)
            return [f"预警 #{wid} 已确认", "ck-fs-msg is-ok", done] + closed
        item = warnings.get(wid, principal)
        app = services()
        names = {code: c.name for code, c in app.cases.catalog().items()}
        place = fv.warning_rows([item], app.areas, names)[0]["place"]
        if action == "task":
            serving = {a.code for a in app.areas.chain(item["area"])}
            return ["", "ck-fs-msg", no_update, {"id": wid, "action": action}, False,
                    f"预警 #{wid}（{place}）转专项整治：", fv.unit_options(app.db, serving), None,
                    "ck-fs-pick ck-fs-unit", "", "说明（可选）"]
        return ["", "ck-fs-msg", no_update, {"id": wid, "action": action}, False, f"忽略预警 #{wid}（{place}）：",
                [], None, "ck-fs-pick ck-fs-unit is-off", "", "忽略原因（必填）"]
    except ServiceError as e:
        return [e.message, "ck-fs-msg is-bad", done] + keep[3:]


# ---- what-if -----------------------------------------------------------------------------------------------
clientside_callback(
    """function (kind) { return 'ck-fs-form is-' + (kind || 'unit_capacity'); }""",
    Output("ck-fs-wi-form", "className"),
    Input("ck-fs-wi-kind", "value"),
)


@callback(Output("ck-fs-wi-unit", "options"), Output("ck-fs-wi-cat", "options"), Output("ck-fs-wi-area", "options"),
          Input("ck-view", "data"))
def whatif_choices(view_key):
    _shown(view_key)
    if _service("whatif") is None:
        return [], [], []
    app = services()
    cats = [{"label": c.name, "value": code} for code, c in sorted(app.cases.catalog().items())]
    areas = [{"label": (f"{a.name}（{'区县' if a.level == 2 else '街道'}）"), "value": a.code}
             for a in app.areas.records(max_level=3) if a.level in (2, 3)]
    return fv.unit_options(app.db), cats, areas


def whatif_change(kind, unit, category, area, factor, count) -> dict:
    """The change the form asks, in the what-if service's words (docs/foresight.md); a missing field refused."""
    if kind == "unit_capacity":
        if not unit:
            raise ServiceError(400, "bad_request", "请选择处置单位")
        return {"kind": kind, "unit": unit, "factor": factor}
    if kind == "category_volume":
        if not category:
            raise ServiceError(400, "bad_request", "请选择问题类别")
        return {"kind": kind, "category": category, "factor": factor}
    if kind == "extra_reports":
        if not area:
            raise ServiceError(400, "bad_request", "请选择区域")
        return {"kind": kind, "area": area, "count": count}
    raise inputs.refuse("推演类型须为 unit_capacity、category_volume 或 extra_reports")


@callback(Output("ck-fs-wi-run", "data"), Output("ck-fs-wi-poll", "disabled"),
          Output("ck-fs-wi-text", "children", allow_duplicate=True),
          Output("ck-fs-wi-bar", "style", allow_duplicate=True), Output("ck-fs-wi-result", "children", allow_duplicate=True),
          Input("ck-fs-wi-go", "n_clicks"),
          State("ck-fs-wi-kind", "value"), State("ck-fs-wi-unit", "value"), State("ck-fs-wi-cat", "value"),
          State("ck-fs-wi-area", "value"), State("ck-fs-wi-factor", "value"), State("ck-fs-wi-count", "value"),
          prevent_initial_call=True)
def submit_whatif(clicks, kind, unit, category, area, factor, count):
    if not clicks:
        raise PreventUpdate
    whatif, principal = _service("whatif"), current_principal()
    if whatif is None or principal is None:
        return None, True, fs.OFF["whatif"], {"width": "0%"}, None
    kind = inputs.text(kind, "ck-fs-wi-kind")
    try:
        change = whatif_change(kind, inputs.text(unit, "ck-fs-wi-unit"), inputs.text(category, "ck-fs-wi-cat"),
                               inputs.text(area, "ck-fs-wi-area"), inputs.number(factor, "ck-fs-wi-factor"),
                               inputs.number(count, "ck-fs-wi-count"))
        run_id = whatif.submit({"changes": [change]}, principal)
    except ServiceError as e:
        return None, True, e.message, {"width": "0%"}, None
    style, text = fs.progress("queued", 0)
    return run_id, False, text, style, None


@callback(Output("ck-fs-wi-text", "children"), Output("ck-fs-wi-bar", "style"), Output("ck-fs-wi-result", "children"),
          Output("ck-fs-wi-poll", "disabled", allow_duplicate=True),
          Input("ck-fs-wi-poll", "n_intervals"), State("ck-fs-wi-run", "data"), prevent_initial_call=True)
def poll_whatif(_n, run_id):
    whatif = _service("whatif")
    run_id = inputs.integer(run_id, "ck-fs-wi-run")
    if whatif is None or run_id is None:
        return no_update, no_update, no_update, True
    try:
        run = whatif.get(run_id, current_principal())
    except ServiceError as e:
        return e.message, {"width": "0%"}, None, True
    status = run.get("status")
    style, text = fs.progress(status, run.get("progress"))
    if status == "failed":
        return f"推演失败：{run.get('error') or '原因未知'}", style, None, True
    if status != "done":
        return text, style, no_update, False
    table = fv.whatif_rows(run.get("result"), {})  # the run names its units
    return text, style, fs.whatif_table(table), True
