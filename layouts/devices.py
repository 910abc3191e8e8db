"""The device operators' page (/devices, 物联感知): the fleet by status, search and filters, a device's card, chart and alarms, the active alarms."""
from __future__ import annotations

from dash import dcc, html

from cases import queue
from dispatch.access import ALARM_ACTORS
from dispatch.city_time import local
from dispatch.devices import DEVICE_STATUSES, STATUS_LABELS
from dispatch.limits import bad_character
from sensing.telemetry import REASON_LABELS, REASONS
from layouts import device_chart
from web.principal import current_principal
from web.services import services

PER_PAGE = 20
RANGES = {"24h": ("近 24 小时", 24), "7d": ("近 7 天", 24 * 7)}
DROPDOWN_LABELS = {"search": "搜索", "clear_search": "清除搜索", "clear_selection": "清除选择",
                   "no_options_found": "无匹配项", "select_all": "全选", "deselect_all": "全不选",
                   "selected_count": "已选 {num_selected} 项"}
VIEWS = [{"label": "设备列表", "value": "devices"}, {"label": "活动告警", "value": "alarms"}]


def device_ref(value) -> str | None:
    """A device id from a link (?device=) or a store: text of at most 64 characters without control characters."""
    if isinstance(value, str) and 0 < len(value) <= 64 and bad_character(value) is None:
        return value
    return None


def layout(device=None, **_query):
    svc = services()
    principal = current_principal()
    types = svc.devices.types()
    may_act = principal is not None and principal.role in ALARM_ACTORS

    def dd(id_, options, placeholder, cls=""):
        return dcc.Dropdown(id=id_, options=options, placeholder=placeholder, clearable=True, searchable=True,
                            className=f"dv-filter {cls}", labels=DROPDOWN_LABELS, maxHeight=360)

    return html.Div(id="dv-root", className="dv", **{"data-act": "1" if may_act else "0"}, children=[
        dcc.Store(id="dv-device", data=device_ref(device)),   # the device on the right
        dcc.Store(id="dv-page", data=1),
        dcc.Store(id="dv-refresh", data=0),                   # bumped after an action: lists and card read again
        dcc.Store(id="dv-shown"),                             # {device, keys}: what the chart may draw
        dcc.Interval(id="dv-tick", interval=60_000),
        html.Div(className="dv-bar", children=[
            html.H2("物联感知", className="dv-title"),
            html.Div(id="dv-counts", className="dv-counts", children=[
                html.Button([html.Span("设备合计", className="dv-c-label"), html.B("—", id="dv-c-total")],
                            id="dv-c-all", n_clicks=0, className="dv-count is-total", title="显示全部状态"),
                *[html.Button([html.Span(STATUS_LABELS[s], className="dv-c-label"), html.B("—", id=f"dv-c-{s}")],
                              id=f"dv-cb-{s}", n_clicks=0, className=f"dv-count is-{s}",
                              title=f"只看{STATUS_LABELS[s]}的设备") for s in DEVICE_STATUSES],
            ]),
            html.Span("只读：可查看设备与告警，不能确认或解除" if not may_act else "", className="dv-readonly"),
            html.Div(id="dv-ingest", className="dv-ingest"),  # the operators' view of the ingest (callbacks/devices.py)
        ]),
        html.Div(className="dv-body", children=[
            html.Section(className="dv-left", children=[
                dcc.RadioItems(id="dv-view", value="devices", options=VIEWS, className="dv-tabs", inline=True,
                               inputClassName="dv-tab-input", labelClassName="dv-tab"),
                html.Div(id="dv-fleet", className="dv-fleet", children=[
                    html.Div(className="dv-filters", children=[
                        dcc.Input(id="dv-q", type="text", placeholder="设备编号或名称", className="dv-search",
                                  debounce=True, autoComplete="off", maxLength=64),
                        dd("dv-type", [{"label": t.name, "value": code} for code, t in types.items()], "全部类型"),
                        dd("dv-status", [{"label": STATUS_LABELS[s], "value": s} for s in DEVICE_STATUSES],
                           "全部状态"),
                        dd("dv-area", queue.area_options(svc.cases, principal) if principal else [], "全部区域",
                           "dv-f-wide"),
                    ]),
                    html.Div(id="dv-fleet-msg", className="dv-msg", role="alert"),
                    html.Div(id="dv-table", className="dv-table-wrap"),
                    html.Div(className="dv-pager", children=[
                        html.Button("‹ 上一页", id="dv-prev", n_clicks=0, className="dv-btn"),
                        html.Span(id="dv-pageinfo", className="dv-pageinfo"),
                        html.Button("下一页 ›", id="dv-next", n_clicks=0, className="dv-btn"),
                    ]),
                ]),
                html.Div(id="dv-alarms-view", className="dv-alarms-view", hidden=True, children=[
                    html.Div(id="dv-alarms", className="dv-alarms"),
                ]),
            ]),
            html.Section(className="dv-right", children=[
                html.Div(id="dv-msg", className="dv-msg", role="alert"),
                html.Div(id="dv-card", className="dv-card",
                         children=html.Div("从左侧列表选择一个设备", className="dv-placeholder")),
                html.Div(id="dv-chart-box", className="dv-chart-box", hidden=True, children=[
                    html.Div(className="dv-chart-bar", children=[
                        html.Span("数值曲线", className="dv-h"),
                        dcc.Dropdown(id="dv-key", options=[], clearable=False, searchable=False,
                                     className="dv-key", placeholder="选择指标"),
                        dcc.RadioItems(id="dv-range", value="24h", inline=True, className="dv-range",
                                       inputClassName="dv-tab-input", labelClassName="dv-tab",
                                       options=[{"label": label, "value": k} for k, (label, _h) in RANGES.items()]),
                        html.Span(id="dv-chart-note", className="dv-note"),
                    ]),
                    dcc.Graph(id="dv-graph", className="dv-graph", config=device_chart.GRAPH_CONFIG,
                              style={"height": "20rem"},
                              figure={"data": [], "layout": {"paper_bgcolor": "rgba(0,0,0,0)",
                                                             "plot_bgcolor": "rgba(0,0,0,0)",
                                                             "xaxis": {"visible": False},
                                                             "yaxis": {"visible": False}}}),
                ]),
                html.Div(id="dv-device-alarms", className="dv-device-alarms"),
            ]),
        ]),
    ])


# ---- pieces the callbacks fill in ---------------------------------------------------------------------
def when(dt) -> str:
    """A time (aware datetime or ISO text) as the city's wall clock, to the minute."""
    if dt is None:
        return "—"
    if isinstance(dt, str):
        return dt[:16].replace("T", " ")
    return local(dt).strftime("%Y-%m-%d %H:%M")


def fleet_table(items: list[dict], area_name, selected: str | None):
    """One page of devices: each row opens the device."""
    if not items:
        return html.Div("没有符合条件的设备", className="dv-placeholder")
    head = html.Thead(html.Tr([html.Th(h) for h in ("编号", "名称", "类型", "状态", "所在区域", "责任单位", "最后通信")]))
    rows = [html.Tr(id={"type": "dv-row", "device": d["id"]}, n_clicks=0,
                    className="dv-row" + (" is-selected" if d["id"] == selected else ""),
                    **{"data-device": d["id"]}, children=[
        html.Td(d["id"], className="dv-num"),
        html.Td(d["name"], className="dv-cell-name", title=d["name"]),
        html.Td(d["type_name"]),
        html.Td(html.Span(d["status_label"], className=f"dv-status is-{d['status']}")),
        html.Td(area_name(d), className="dv-cell-area"),
        html.Td(d["unit"]["name"], className="dv-cell-unit", title=d["unit"]["name"]),
        html.Td(when(d["last_seen"]), className="dv-num"),
    ]) for d in items]
    return html.Table(className="dv-table", children=[head, html.Tbody(rows)])


def _case_link(case_id: int | None, case_page: str | None):
    if not case_id:
        return "—"
    if case_page is None:
        return f"#{case_id}"
    return html.A(f"#{case_id}", href=f"{case_page}?case={case_id}", className="dv-case-link",
                  title="打开案件")


def alarm_rows(items: list[dict], may_act: bool, case_page: str | None, button_type: str, with_device: bool):
    """Alarms as a table: rule, severity, status, started, cleared, the case (a link to the case page of the
    role: /console or /unit), the actions the status allows (acknowledge, clear) for those who may act."""
    if not items:
        return html.Div("没有告警", className="dv-placeholder")
    heads = (["设备"] if with_device else []) + ["编号", "告警", "级别", "状态", "开始", "解除", "案件", "操作"]
    rows = []
    for a in items:
        buttons = []
        if may_act and a["status"] == "active":
            buttons.append(html.Button("确认", id={"type": button_type, "alarm": a["id"], "action": "acknowledge"},
                                       n_clicks=0, className="dv-btn dv-btn-small"))
        if may_act and a["status"] != "cleared":
            buttons.append(html.Button("解除", id={"type": button_type, "alarm": a["id"], "action": "clear"},
                                       n_clicks=0, className="dv-btn dv-btn-small dv-btn-warn"))
        cells = []
        if with_device:
            cells.append(html.Td(html.Button([html.Span(a["device"], className="dv-num"),
                                              html.Span(a["device_name"], className="dv-aname")],
                                             id={"type": "dv-arow", "alarm": a["id"], "device": a["device"]},
                                             n_clicks=0, className="dv-linkbtn", title="查看设备")))
        cells += [
            html.Td(f"#{a['id']}", className="dv-num"),
            html.Td(a["rule_name"]),
            html.Td(html.Span(a["severity_label"], className=f"dv-sev is-{a['severity']}")),
            html.Td(html.Span(a["status_label"], className=f"dv-ast is-{a['status']}")),
            html.Td(when(a["started_at"]), className="dv-num"),
            html.Td(when(a["cleared_at"]), className="dv-num"),
            html.Td(_case_link(a["case_id"], case_page)),
            html.Td(buttons or "—", className="dv-acts"),
        ]
        rows.append(html.Tr(cells, className=f"dv-arow is-{a['status']}", **{"data-alarm": str(a["id"])}))
    return html.Table(className="dv-table dv-atable", children=[
        html.Thead(html.Tr([html.Th(h) for h in heads])), html.Tbody(rows)])


def device_card(device: dict, type_keys: dict):
    """The device: type, unit, grid, position, last seen, last values with their units."""
    chain = " › ".join(a["name"] for a in reversed(device.get("chain") or []) if a["level"] >= 2)
    values = device_chart.values_text(device.get("values") or {}, type_keys)
    facts = [("类型", device["type_name"]), ("责任单位", device["unit"]["name"]), ("所在网格", chain or device["grid"]),
             ("位置", f"经度 {device['lon']:.6f}，纬度 {device['lat']:.6f}"), ("最后通信", when(device["last_seen"])),
             ("登记时间", when(device.get("created_at")))]
    return html.Div(className="dv-dcard", **{"data-device": device["id"]}, children=[
        html.Div(className="dv-dhead", children=[
            html.Span(device["id"], className="dv-did"),
            html.Span(device["name"], className="dv-dname"),
            html.Span(device["status_label"], id="dv-dstatus", className=f"dv-status is-{device['status']}"),
        ]),
        html.Div(className="dv-dgrid", children=[
            html.Dl(className="dv-facts", children=[p for k, v in facts for p in (html.Dt(k), html.Dd(v))]),
            html.Div(className="dv-values", children=[
                html.Div("最新读数", className="dv-h"),
                html.Dl(id="dv-values", className="dv-facts",
                        children=[p for k, v in values for p in (html.Dt(k), html.Dd(v, className="dv-num"))])
                if values else html.Div("尚无读数", className="dv-muted"),
            ]),
        ]),
    ])


# Who sees the ingest's counters (the operations view of what came in and what was refused)
INGEST_READERS = ("admin", "duty_officer")
REFUSAL_SHORT = {"malformed": "格式错误", "unknown_device": "未登记设备", "unknown_key": "未知键", "out_of_range": "超范围"}


def ingest_line(stats: dict) -> list:
    """The telemetry ingest's counters since this process started (TelemetryIngest.stats): messages, readings
    stored and duplicates, each kind of refusal (red when any), and the MQTT consumer's connection."""
    def item(label, value, alert=False, title=None):
        return html.Span([label, " ", html.B(f"{value:,}")], className="dv-in-item" + (" is-alert" if alert else ""),
                         title=title)

    since = stats.get("since")
    out = [html.Span("接入" + (f"（自 {local(since):%m-%d %H:%M}，本进程）" if since else ""), className="dv-in-title"),
           item("消息", stats.get("messages", 0)), item("入库", stats.get("stored", 0)),
           item("重复", stats.get("duplicates", 0), title="同一设备同一时刻的读数只存一次")]
    out += [item(REFUSAL_SHORT.get(r, r), stats.get(r, 0), alert=stats.get(r, 0) > 0,
                 title=f"{REASON_LABELS[r]}：拒收并计数，每台设备只记一次日志") for r in REASONS]
    mqtt = stats.get("mqtt")
    if mqtt is None:
        out.append(html.Span("MQTT 未接入（UCC_MQTT_URL 未设置或由本机另一进程接入）", className="dv-in-mqtt"))
    else:
        state = "已连接" if mqtt.get("connected") else "未连接 · 正在重连"
        out.append(html.Span(f"MQTT {mqtt.get('broker', '')} {state} · 缓冲 {mqtt.get('buffered', 0):,}",
                             className="dv-in-mqtt" + ("" if mqtt.get("connected") else " is-alert")))
    return out
