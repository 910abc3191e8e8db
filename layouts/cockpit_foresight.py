"""The cockpit's 仿真预测 view: its cards, the backtest table, the warnings with their actions, the what-if form and
its result (the forecast chart and the map's hot-spot layer are drawn in layouts/cockpit.py with its other charts)."""
from __future__ import annotations

from dash import dcc, html

from figures.foresight_view import HISTORY_DAYS

FORECAST_DAYS = 14
OFF = {"forecast": "预测服务未启用", "warnings": "预警服务未启用", "whatif": "推演服务未启用"}
WHATIF_KINDS = (("unit_capacity", "单位处置能力"), ("category_volume", "类别案件量"), ("extra_reports", "增加上报"))
ACTIONS = (("ack", "确认"), ("task", "转专项整治"), ("dismiss", "忽略"))


# ---- the view --------------------------------------------------------------------------------------------
def foresight_section(graph_config: dict, placeholder) -> html.Section:
    """The 仿真预测 cards, beside the cockpit's map (assets/cockpit.css .is-foresight); filled by
    callbacks/cockpit_foresight.py while the view is shown. `graph_config`, `placeholder`: the cockpit's chart
    settings and its figure shown while loading (layouts/cockpit.py)."""
    return html.Section(id="ck-fs", className="ck-fs", children=[
        dcc.Interval(id="ck-fs-tick", interval=300_000),
        dcc.Store(id="ck-fs-board"),
        dcc.Store(id="ck-fs-done", data=0),  # bumped after an action on a warning: the list is read again
        html.Section(className="ck-card ck-fs-fc", children=[
            html.Div(className="ck-fs-head", children=[
                html.H3(f"案件量预测 · 未来{FORECAST_DAYS}日（前{HISTORY_DAYS}日为实际）", id="ck-fs-fc-title",
                        className="ck-card-title"),
                dcc.Dropdown(id="ck-fs-district", options=[], value=None, clearable=False, searchable=True,
                             placeholder="选择区县", className="ck-fs-pick"),
            ]),
            html.Div(className="ck-chart", children=[
                dcc.Graph(id="ck-fs-graph", figure=placeholder, config=graph_config,
                          style={"position": "absolute", "inset": "0"}),
            ]),
        ]),
        html.Section(className="ck-card ck-fs-bt", children=[
            html.H3("回测误差 · 模型与季节基准（近3周）", id="ck-fs-bt-title", className="ck-card-title"),
            html.Div(id="ck-fs-backtest", className="ck-as-scroll", children=html.Div("加载中…", className="ck-empty-note")),
        ]),
        html.Section(className="ck-card ck-fs-warn", children=[
            dcc.Store(id="ck-fs-sel"),  # {id, action}: the warning a 转专项整治 or 忽略 is being asked for
            html.H3("预警", id="ck-fs-warn-title", className="ck-card-title"),
            html.Div(id="ck-fs-ask", className="ck-fs-ask", hidden=True, children=[
                html.Span(id="ck-fs-ask-what", className="ck-fs-ask-what"),
                dcc.Dropdown(id="ck-fs-unit", options=[], value=None, searchable=True, placeholder="选择牵头单位",
                             className="ck-fs-pick ck-fs-unit"),
                dcc.Input(id="ck-fs-note", type="text", placeholder="说明", maxLength=200, className="ck-fs-note"),
                html.Button("确定", id="ck-fs-ask-go", n_clicks=0, className="ck-as-mini ck-fs-act is-task"),
                html.Button("取消", id="ck-fs-ask-cancel", n_clicks=0, className="ck-as-mini"),
            ]),
            html.Div(id="ck-fs-msg", className="ck-fs-msg", role="status"),
            html.Div(id="ck-fs-warnings", className="ck-as-scroll", children=html.Div("加载中…", className="ck-empty-note")),
        ]),
        whatif_card(),
    ])


def whatif_card() -> html.Section:
    return html.Section(className="ck-card ck-fs-wi", children=[
        dcc.Store(id="ck-fs-wi-run"),
        dcc.Interval(id="ck-fs-wi-poll", interval=1000, disabled=True),
        html.H3("情景推演 · 如果……会怎样（未来7日）", className="ck-card-title"),
        html.Div(id="ck-fs-wi-form", className="ck-fs-form is-unit_capacity", children=[
            dcc.RadioItems(id="ck-fs-wi-kind", value="unit_capacity", className="ck-as-switch",
                           inputClassName="ck-as-switch-input", labelClassName="ck-as-switch-label",
                           options=[{"label": label, "value": key} for key, label in WHATIF_KINDS]),
            html.Div(className="ck-fs-fields", children=[
                dcc.Dropdown(id="ck-fs-wi-unit", options=[], value=None, searchable=True, placeholder="选择处置单位",
                             className="ck-fs-f ck-fs-f-unit"),
                dcc.Dropdown(id="ck-fs-wi-cat", options=[], value=None, searchable=True, placeholder="选择问题类别",
                             className="ck-fs-f ck-fs-f-cat"),
                dcc.Dropdown(id="ck-fs-wi-area", options=[], value=None, searchable=True, placeholder="选择区域",
                             className="ck-fs-f ck-fs-f-area"),
                html.Label(className="ck-fs-f ck-fs-f-factor", children=[
                    "倍数", dcc.Input(id="ck-fs-wi-factor", type="number", value=0.7, min=0, max=10, step=0.1,
                                     className="ck-fs-num")]),
                html.Label(className="ck-fs-f ck-fs-f-count", children=[
                    "新增件数", dcc.Input(id="ck-fs-wi-count", type="number", value=200, min=1, step=1,
                                       className="ck-fs-num")]),
                html.Button("开始推演", id="ck-fs-wi-go", n_clicks=0, className="ck-as-dl ck-fs-go"),
            ]),
        ]),
        html.Div(id="ck-fs-wi-state", className="ck-fs-wi-state", children=[
            html.Div(className="ck-progress ck-fs-bar", children=[
                html.Div(id="ck-fs-wi-bar", className="ck-progress-bar", style={"width": "0%"}),
                html.Span(id="ck-fs-wi-text", className="ck-progress-text", children="尚未推演"),
            ]),
        ]),
        html.Div(id="ck-fs-wi-result", className="ck-as-scroll"),
    ])


def off_note(text: str) -> html.Div:
    """What a card says in place of its figures: a service the app runs without, or one that refused."""
    return html.Div(text, className="ck-empty-note ck-fs-off")


# ---- forecast ----------------------------------------------------------------------------------------------
def district_options(board: dict) -> list[dict]:
    return [{"label": d["name"], "value": d["code"]} for d in board.get("districts", [])]


def _num(v, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def backtest_table(rows: list[dict], metric: str = "") -> html.Table | html.Div:
    if not rows:
        return html.Div("暂无回测结果", className="ck-empty-note")
    what = "平均绝对误差（件/日）" if metric in ("", "MAE") else metric
    head = html.Thead(html.Tr([html.Th("区县"), html.Th(f"模型{what}"), html.Th("季节基准误差"), html.Th("采用")]))
    body = [html.Tr(className="ck-as-row", children=[
        html.Td(r["name"], className="ck-as-name"), html.Td(_num(r["model_error"])),
        html.Td(_num(r["baseline_error"])),
        html.Td(html.Span(r["used"], className="ck-fs-used " + ("is-model" if r["used"] == "模型" else "is-base")))])
        for r in rows]
    return html.Table([head, html.Tbody(body)], id="ck-fs-bt-table", className="ck-as-table ck-fs-table")


# ---- warnings ----------------------------------------------------------------------------------------------
def warnings_title(rows: list[dict], total: int | None = None) -> str:
    n = sum(1 for r in rows if r["status"] == "open")
    total = len(rows) if total is None else total
    if total > len(rows):
        return f"预警 · 共 {total} 条，列出最新 {len(rows)} 条（其中待处理 {n} 条）"
    return f"预警 · 共 {total} 条（待处理 {n} 条）"


def warnings_list(rows: list[dict], can_act: bool) -> html.Div | html.Ul:
    if not rows:
        return html.Div("当前没有预警", className="ck-empty-note")
    items = []
    for r in rows:
        expected = "" if r["expected"] is None else f" / 预期 {r['expected']:g} 件"
        acts = []
        if can_act and r["status"] in ("open", "acknowledged"):
            acts = [html.Button(label, id={"type": "ck-fs-act", "action": key, "id": r["id"]}, n_clicks=0,
                                className=f"ck-as-mini ck-fs-act is-{key}")
                    for key, label in ACTIONS if not (key == "ack" and r["status"] != "open")]
        items.append(html.Li(id=f"ck-fs-w-{r['id']}", className=f"ck-fs-w is-{r['kind']} is-{r['status']}", children=[
            html.Div(className="ck-rem-head", children=[
                html.Span(r["kind_label"], className=f"ck-tag ck-fs-kind is-{r['kind']}"),
                html.Span(r["place"], className="ck-rem-title ck-fs-place"),
                html.Span(r["category"], className="ck-fs-cat"),
                html.Span(r["status_label"], className=f"ck-fs-status is-{r['status']}"),
            ]),
            html.Div(className="ck-fs-w-line", children=[
                html.Span(["实际 ", html.B(f"{r['observed']:,}"), f" 件{expected}"], className="ck-fs-obs"),
                html.Span(r["window"], className="ck-rem-sub"),
                html.Span(acts, className="ck-fs-acts"),
            ]),
        ]))
    return html.Ul(items, className="ck-rem-list ck-fs-wlist")


# ---- what-if -----------------------------------------------------------------------------------------------
def progress(status: str, value: float | None) -> tuple[dict, str]:
    """(the bar's style, its text) for a run's status and progress (0–1)."""
    pct = max(0.0, min(1.0, float(value or 0))) * 100
    text = {"queued": "排队中…", "running": f"推演中 {pct:.0f}%", "done": "推演完成",
            "failed": "推演失败"}.get(status, status)
    return {"width": f"{100 if status == 'done' else pct:.0f}%"}, text


def _pct(v) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _delta(v, fmt: str, good_when_negative: bool) -> html.Td:
    if v is None:
        return html.Td("—")
    cls = "ck-as-same" if abs(v) < 1e-9 else ("ck-as-up" if (v < 0) == good_when_negative else "ck-as-down")
    return html.Td(fmt.format(v) if v < 0 else "+" + fmt.format(v), className=cls)


def whatif_table(table: dict) -> html.Table | html.Div:
    rows = table.get("rows") or []
    if not rows and not table.get("totals"):
        return html.Div("推演结果中没有处置单位", className="ck-empty-note")
    head = html.Thead([
        html.Tr([html.Th("单位", rowSpan=2), html.Th("预计超期（件）", colSpan=3), html.Th("按时处置率", colSpan=3),
                 html.Th("得分", colSpan=3)]),
        html.Tr([html.Th(t) for t in ("基准", "变化后", "差值") * 3]),
    ])

    def line(r, cls=""):
        return html.Tr(className=f"ck-as-row {cls}".strip(), children=[
            html.Td(r["name"], className="ck-as-name", title=r["name"]),
            html.Td(_num(r["overdue_base"], "{:.1f}")), html.Td(_num(r["overdue_changed"], "{:.1f}")),
            _delta(r["overdue_delta"], "{:.1f}", True),
            html.Td(_pct(r["rate_base"])), html.Td(_pct(r["rate_changed"])),
            _delta(None if r["rate_delta"] is None else r["rate_delta"] * 100, "{:.1f}%", False),
            html.Td(_num(r["score_base"], "{:.1f}")), html.Td(_num(r["score_changed"], "{:.1f}")),
            _delta(r["score_delta"], "{:.1f}", False),
        ])

    body = [line(r) for r in rows]
    if table.get("totals"):
        body.insert(0, line(table["totals"], "is-here ck-fs-total"))
    if table.get("more"):
        body.append(html.Tr(html.Td(f"其余 {table['more']:,} 个单位变化甚微，从略", colSpan=10), className="ck-as-gap"))
    return html.Table([head, html.Tbody(body)], id="ck-fs-wi-table", className="ck-as-table ck-fs-table ck-fs-wi-table")
