"""The duty officer's console (/console): the case queue, a case's detail with its actions, hotline intake."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import dash_ag_grid as dag
import dash_deck
import pydeck as pdk
import shapely
from dash import dcc, html

from web.principal import current_principal
from cases import queue
from cases.service import NO_INTAKE_ROLES
from dispatch import lifecycle
from geo.layers import area_polygons, bounds_of
from geo.model import DISTRICT, STREET
from layouts import case_text
from layouts.case_text import actor_label, history_action
from web.services import services

# The grid in the hall's dark palette. Lengths in rem so that a 4K screen (html font-size doubles)
# gets a grid twice as large, like the rest of the page; no web font is fetched (fontFamily inherits).
GRID_THEME = (
    "themeBalham.withParams({"
    "backgroundColor: '#0a1930', foregroundColor: '#dbe7ff', accentColor: '#4fd1ff', borderColor: '#1d3d66',"
    "headerBackgroundColor: '#0f2443', headerTextColor: '#9fc3ee', oddRowBackgroundColor: '#0c1d38',"
    "rowHoverColor: 'rgba(79, 209, 255, 0.10)', selectedRowBackgroundColor: 'rgba(79, 209, 255, 0.22)',"
    "fontFamily: 'inherit', fontSize: '0.92rem', headerFontSize: '0.92rem', rowHeight: '2.05rem',"
    "headerHeight: '2.2rem', spacing: '0.28rem', iconSize: '0.8rem', wrapperBorderRadius: 4})"
)
GRID_LOCALE = {"loadingOoo": "加载中…", "noRowsToShow": "没有符合条件的案件", "page": "页", "to": "至", "of": "共",
               "ariaRowSelect": "选择此行", "ariaSortableColumn": "按回车键排序"}
DROPDOWN_LABELS = {"select_all": "全选", "deselect_all": "全不选", "selected_count": "已选 {num_selected} 项",
                   "search": "搜索", "clear_search": "清除搜索", "clear_selection": "清除选择",
                   "no_options_found": "无匹配项"}
SHORTCUTS = (("J / ↓", "下一条"), ("K / ↑", "上一条"), ("Enter", "打开案件"), ("A", "立案"), ("D", "派遣"),
             ("C", "结案"), ("N", "新建热线工单"), ("S", "督办件列表"), ("/", "按编号查找案件"), ("Esc", "关闭详情 / 取消"),
             ("?", "显示 / 隐藏快捷键"))
SHORTCUT_OF_ACTION = {"accept": "A", "dispatch": "D", "close": "C"}
SEVERITY_OPTIONS = [{"label": "Ⅰ级 特别重大", "value": 1}, {"label": "Ⅱ级 重大", "value": 2},
                    {"label": "Ⅲ级 较大", "value": 3}, {"label": "Ⅳ级 一般", "value": 4}]
YES_NO = {"overdue": [{"label": "已超期", "value": "yes"}, {"label": "未超期", "value": "no"}],
          "supervised": [{"label": "督办中", "value": "yes"}, {"label": "未督办", "value": "no"}]}


def _cases():
    return services().cases


# ---- the page ------------------------------------------------------------------------------------------
def layout(case=None, **_query):
    cases = _cases()
    principal = current_principal()
    # /console?case=ID (a link from the cockpit's penalty list): the case opens once the page is drawn
    deeplink = int(case) if isinstance(case, str) and case.isdigit() and len(case) <= 18 and int(case) > 0 else None
    if not cases.areas.records(max_level=1):
        return html.Div("尚未导入城市网格：请运行 flask --app app seed-demo 或 import-grid", className="ucc-empty")
    return html.Div(id="cs-root", className="cs", children=[
        dcc.Store(id="cs-config", data={"head": queue.head_seq(cases)}),
        dcc.Store(id="cs-started"),
        dcc.Store(id="cs-open"),                 # {id, t}: the case to show (row click, Enter, search, intake)
        dcc.Store(id="cs-reload"),               # {id, t, msg, kind}: show the case again, with a message
        dcc.Store(id="cs-case"),                 # what the detail shows: id, version, state, deadline…
        dcc.Store(id="cs-grid-sync"),
        # a leader lands on the 督办件 list (what is under supervision at their level); others open it
        dcc.Store(id="cs-sup-auto", data=bool(principal is not None and principal.role == "leader" and deeplink is None)),
        dcc.Store(id="cs-deeplink", data=deeplink),
        dcc.Store(id="cs-sup-refresh"),          # set by assets/console.js when the stream brings news
        html.Div(className="cs-toolbar", children=_toolbar(cases, principal)),
        # the active emergency responses, late reports and units marked (callbacks/console.py, every 30 s and live)
        html.Nav(id="cs-emg", className="cs-emg", hidden=True, **{"aria-label": "进行中的应急响应"}),
        dcc.Interval(id="cs-emg-tick", interval=30_000),
        # the 12345 pushes that failed past the retry limit, each with 重新推送 (admins and duty officers; same tick)
        html.Aside(id="cs-hl", className="cs-hl", hidden=True, **{"aria-label": "12345 推送失败"}),
        dcc.Store(id="cs-hl-done"),
        html.Div(className="cs-body", children=[
            html.Section(className="cs-queue", children=[
                dag.AgGrid(id="cs-grid", **grid_props()),
            ]),
            html.Aside(id="cs-side", className="cs-side", children=[
                html.Button("×", id="cs-close", className="cs-close", title="关闭（Esc）", n_clicks=0),
                html.Div(id="cs-detail", className="cs-detail"),
                html.Div(id="cs-intake", className="cs-intake"),
                html.Div(id="cs-sup", className="cs-sup", children=html.Div(className="cs-in", children=[
                    html.Div(className="cs-d-head", children=[
                        html.Span("督办件", className="cs-d-title"),
                        html.Span(id="cs-sup-scope", className="cs-muted"),
                        html.Button("刷新", id="cs-sup-reload", className="cs-btn cs-btn-small", n_clicks=0),
                    ]),
                    html.Div(id="cs-sup-body", className="cs-sup-body"),
                ])),
            ]),
        ]),
        html.Div(id="cs-help", className="cs-help", hidden=True, children=[
            html.Div("快捷键", className="cs-help-title"),
            html.Dl(className="cs-help-list", children=[
                part for key, what in SHORTCUTS for part in (html.Dt(html.Kbd(key)), html.Dd(what))
            ]),
            html.Div("在输入框中时快捷键不生效（Esc 除外）", className="cs-help-note"),
        ]),
    ])


def _toolbar(cases, principal) -> list:
    may_report = principal is not None and principal.role not in NO_INTAKE_ROLES  # a leader views, does not report
    def dd(id_, options, placeholder, cls="", multi=False, searchable=False):
        return dcc.Dropdown(id=id_, options=options, placeholder=placeholder, multi=multi, searchable=searchable,
                            clearable=True, className=f"cs-filter {cls}", labels=DROPDOWN_LABELS, maxHeight=360)

    return [
        html.Div(className="cs-filters", children=[
            dd("cs-f-state", queue.state_options(), "全部状态", "cs-f-wide", multi=True),
            dd("cs-f-kind", queue.kind_options(), "全部类型"),
            dd("cs-f-category", queue.category_options(cases), "全部类别", "cs-f-wide", searchable=True),
            dd("cs-f-area", queue.area_options(cases, principal) if principal else [], "全部区域",
               "cs-f-wide", searchable=True),
            dd("cs-f-source", queue.source_options(), "全部来源"),
            dd("cs-f-overdue", YES_NO["overdue"], "超期：全部"),
            dd("cs-f-supervised", YES_NO["supervised"], "督办：全部"),
        ]),
        html.Div(className="cs-tools", children=[
            dcc.Input(id="cs-search", type="text", placeholder="案件编号（/）", className="cs-search",
                      debounce=True, autoComplete="off", n_submit=0),
            html.Button("＋ 新建热线工单", id="cs-new", className="cs-btn cs-btn-primary", n_clicks=0,
                        title="12345 热线来电登记（N）", hidden=not may_report),
            html.Button("督办件", id="cs-sup-btn", className="cs-btn cs-sup-btn", n_clicks=0,
                        title="督办中的案件：督办层级、督办时限、是否逾期（S）"),
            html.Button("快捷键 ?", id="cs-help-btn", className="cs-btn", n_clicks=0, title="显示快捷键（?）"),
            html.Span(id="cs-count", className="cs-count"),
            html.Span("○ 连接中…", id="cs-live", className="cs-live", role="status", title="正在连接实时推送"),
        ]),
        html.Div(id="cs-toolbar-msg", className="cs-toolbar-msg", role="alert"),
    ]


def grid_props() -> dict:
    states = {f"cs-st-{s}": f"params.data && params.data.state === '{s}'" for s in lifecycle.STATES}
    columns = [
        {"headerName": "编号", "field": "id", "colId": "id", "sortable": True, "width": 90, "minWidth": 80,
         "cellClass": "cs-num"},
        {"headerName": "状态", "field": "state_label", "colId": "state", "sortable": True, "width": 96, "minWidth": 88,
         "cellClass": "cs-st", "cellClassRules": states},
        {"headerName": "事件类别", "field": "category", "width": 150, "minWidth": 120, "tooltipField": "category"},
        {"headerName": "类型", "field": "kind_label", "width": 88, "minWidth": 80},
        {"headerName": "所在区域", "field": "area", "width": 170, "minWidth": 120, "tooltipField": "area"},
        {"headerName": "来源", "field": "source", "width": 110, "minWidth": 90},
        {"headerName": "处置单位", "field": "unit", "width": 190, "minWidth": 130, "tooltipField": "unit"},
        {"headerName": "上报时间", "field": "reported_at", "colId": "reported_at", "sortable": True, "sort": "desc",
         "width": 118, "minWidth": 108, "cellClass": "cs-num"},
        {"headerName": "处置时限", "field": "deadline", "colId": "deadline", "sortable": True, "width": 118,
         "minWidth": 108, "cellClass": "cs-num",
         "cellClassRules": {"cs-sla-warning": "params.data && params.data.sla === 'warning'",
                            "cs-sla-overdue": "params.data && params.data.sla === 'overdue'"}},
        {"headerName": "标记", "field": "flags", "width": 130, "minWidth": 90, "tooltipField": "flags",
         "cellClassRules": {"cs-flags-sup": "params.data && params.data.supervised",
                            "cs-flags-late": "params.data && params.data.sup_late",
                            "cs-flags-urge": "params.data && !params.data.supervised && params.data.urge_count > 0"}},
        {"headerName": "问题描述", "field": "description", "flex": 1, "minWidth": 140, "tooltipField": "description"},
    ]
    return dict(
        rowModelType="infinite",
        columnDefs=columns,
        defaultColDef={"sortable": False, "resizable": True, "suppressHeaderMenuButton": True,
                       "sortingOrder": ["desc", "asc"]},
        columnSize="responsiveSizeToFit",
        getRowId="params.data.rid",  # a string: the grid keys rows by it
        rowClassRules={"cs-row-fresh": "params.data && params.data.fresh",
                       "cs-row-overdue": "params.data && params.data.overdue",
                       "cs-row-supervised": "params.data && params.data.supervised"},
        dashGridOptions={
            "theme": {"function": GRID_THEME},
            "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
            # one block request at a time: the Dash grid keeps only the newest request's callback
            # and few blocks kept: a live refresh reads every kept block again
            "cacheBlockSize": 100, "maxBlocksInCache": 5, "maxConcurrentDatasourceRequests": 1,
            "infiniteInitialRowCount": 1, "blockLoadDebounceMillis": 60,
            "localeText": GRID_LOCALE, "tooltipShowDelay": 600, "animateRows": False,
            "suppressMultiSort": True,
        },
        className="cs-grid",
        style={"height": "100%", "width": "100%"},
    )


# ---- the detail ------------------------------------------------------------------------------------------
def detail_view(detail: dict, choices: dict, map_src: dict | None, message: dict | None = None,
                now: datetime | None = None, iot=None):
    """The side panel for one case: header and its marks (督办, 催办, 挂账…), countdown, actions (and their
    form), the stage clocks, 督办/协办/挂账/回访 when there are any, then what the officer needs to decide:
    where, what, why this unit, the device and its chart when an alarm opened the case (`iot`:
    layouts.device_chart.case_devices_view), photos, history. `choices`: queue.unit_choices of the actions."""
    case = detail["case"]
    now = now or datetime.now(timezone.utc)
    cat = detail["category"] or {}
    tick = detail["countdown"]
    return html.Div(id="cs-detail-root", className="cs-d",
                    **{"data-case": str(case["id"]), "data-version": str(case["version"])}, children=[
        dcc.Store(id="cs-dmap-src", data=map_src),
        dcc.Store(id="cs-act-pending"),
        dcc.Interval(id="cs-tick", interval=30_000),
        html.Div(className="cs-d-head", children=[
            html.Span(f"#{case['id']}", className="cs-d-id"),
            html.Span(case["category"]["name"], className="cs-d-title"),
            html.Span(case["state_label"], className=f"cs-badge cs-st-{case['state']}", id="cs-d-state"),
            html.Span(f"版本 {case['version']}", className="cs-d-version"),
        ]),
        marks_view(case, now),
        html.Div(id="cs-stale", className="cs-stale", hidden=True, role="alert", children=[
            html.Span(id="cs-stale-text"),
            html.Button("刷新", id="cs-stale-reload", className="cs-btn cs-btn-small", n_clicks=0),
        ]),
        html.Div(message["text"] if message else "", id="cs-d-msg", role="alert",
                 className=f"cs-msg is-{message['kind']}" if message else "cs-msg"),
        countdown_view(tick),
        html.Div(className="cs-actions", children=[
            html.Button([a["label"], html.Kbd(SHORTCUT_OF_ACTION[a["action"]]) if a["action"] in SHORTCUT_OF_ACTION else None],
                        id={"type": "cs-act", "action": a["action"]}, n_clicks=0,
                        className=f"cs-btn cs-act cs-act-{a['action']}", **{"data-action": a["action"]})
            for a in detail["actions"]
        ] or [html.Span("当前状态下您没有可执行的操作", className="cs-muted")]),
        dcc.Store(id="cs-act-choices", data=choices),
        _action_form(),
        html.Div(id="cs-act-msg", className="cs-msg", role="alert"),
        stages_view(case),
        oversight_view(case, now),
        html.Div(className="cs-d-grid", children=[
            html.Section(className="cs-card cs-card-map", children=[
                html.H4("位置"),
                html.Div(className="cs-dmap", children=[
                    dash_deck.DeckGL(id="cs-dmap", data={}, style={"position": "absolute", "inset": "0"})
                    if map_src else html.Div("无地图", className="cs-muted"),
                ]),
                html.Div(" › ".join(a["name"] for a in reversed(case["chain"])), className="cs-chain"),
                html.Div(f"经度 {case['lon']:.6f}，纬度 {case['lat']:.6f}", className="cs-muted cs-num"),
            ]),
            html.Section(className="cs-card", children=[
                html.H4("案件信息"),
                _facts([
                    ("来源", detail["source"]),
                    ("上报时间", _when(case["reported_at"])),
                    ("发生时间", _when(case["occurred_at"])),
                    ("热线工单号", case.get("external_ref")),
                    ("联系电话", case["reporter_phone"] or "—"),
                    ("上报人数", f"{case['reporter_count']} 人"),
                    ("事件等级", _severity(case["severity"])),
                    ("核实结果", case_text.check_text(case)),
                    ("回访结果", case_text.callback_text(case)),
                    ("问题描述", case["description"] or "—"),
                ]),
            ]),
            html.Section(className="cs-card", children=[
                html.H4("事件类别与标准"),
                _facts([
                    ("类别", f"{cat.get('name', case['category']['name'])}（{cat.get('major_class', '')} · {cat.get('kind', '')}）"),
                    ("处置时限", f"{cat.get('time_limit', '')} · 紧急程度 {cat.get('urgency', '')}"),
                    ("分阶段", "；".join(cat.get("stages") or []) or None),
                    ("立案标准", cat.get("filing") or "—"),
                    ("结案标准", cat.get("closing") or "—"),
                ]),
            ]),
            html.Section(className="cs-card", children=[
                html.H4("派遣依据"),
                html.P(case["route_reason"] or "—", className="cs-reason"),
                _facts([
                    ("处置单位", (case["unit"] or {}).get("name") or "待人工派遣"),
                    ("协办单位", "、".join(u["name"] for u in case["units"][1:]) or None),
                    ("处置层级", detail["level"] or "—"),
                    ("升级次数", str(case["escalation_count"]) if case["escalation_count"] else None),
                    ("延期", f"已延期 {case['extension_count']} 次" if case["extension_count"] else None),
                    ("待批延期", f"{case['extension_pending_hours']:g} {case_text.hours_word(case)}"
                     if case["extension_pending_hours"] else None),
                    ("改派", f"已改派 {case['reassign_count']} 次" if case.get("reassign_count") else None),
                    ("返工", f"已返工 {case['rework_count']} 次" if case.get("rework_count") else None),
                    ("上报省级", "须向省级报告" if case["report_upward"] else None),
                ]),
            ]),
            iot,
            _photos(detail["photos"]),
            html.Section(className="cs-card cs-card-wide", children=[
                html.H4(f"处置记录（{len(case['history'])}）"),
                html.Ol(className="cs-history", children=[_history_row(h) for h in reversed(case["history"])]),
            ]),
        ]),
    ])


def countdown_view(tick: dict):
    return html.Div(id="cs-countdown", className=f"cs-countdown is-{tick['state']}", children=[
        html.Span(tick.get("label") or "处置时限", className="cs-countdown-label"),
        html.Span(tick["deadline"] or "—", className="cs-countdown-at cs-num"),
        html.Span(tick["text"], className="cs-countdown-left"),
    ])


def _action_form():
    """One form for every action that asks for something (callbacks/console.py shows the rows it needs)."""
    return html.Div(id="cs-act-form", className="cs-actform", children=[
        html.Div(id="cs-act-title", className="cs-actform-title"),
        html.Div(id="cs-act-unit-row", className="cs-field", hidden=True, children=[
            html.Label("处置单位", id="cs-act-unit-label", htmlFor="cs-act-unit"),
            dcc.Dropdown(id="cs-act-unit", options=[], value=None, clearable=False, searchable=True,
                         placeholder="选择单位（可输入名称搜索）", labels=DROPDOWN_LABELS, className="cs-act-unit",
                         maxHeight=300),
        ]),
        html.Div(id="cs-act-choice-row", className="cs-field", hidden=True, children=[
            html.Label(id="cs-act-choice-label"),
            dcc.RadioItems(id="cs-act-choice", options=[], value=None, className="cs-choice", inline=True,
                           inputClassName="cs-choice-input", labelClassName="cs-choice-label"),
        ]),
        html.Div(id="cs-act-hours-row", className="cs-field", hidden=True, children=[
            html.Label("延期时长（工作时）", id="cs-act-hours-label", htmlFor="cs-act-hours"),
            dcc.Input(id="cs-act-hours", type="number", min=0.5, max=750, step=0.5, className="cs-input"),
        ]),
        html.Div(id="cs-act-note-row", className="cs-field", hidden=True, children=[
            html.Label(id="cs-act-note-label", htmlFor="cs-act-note"),
            dcc.Textarea(id="cs-act-note", className="cs-textarea", maxLength=2000),
        ]),
        html.Div(className="cs-actform-buttons", children=[
            html.Button("确认", id="cs-act-go", className="cs-btn cs-btn-primary", n_clicks=0),
            html.Button("取消", id="cs-act-cancel", className="cs-btn", n_clicks=0),
        ]),
    ])


# ---- marks, stage clocks, 督办 / 协办 / 挂账 ----------------------------------------------------------------
def marks_view(case: dict, now: datetime):
    """The chips under the header: 督办 (with its deadline, red once passed), 超期, 催办 ×N, 挂账…"""
    marks = case_text.marks(case, now)
    return html.Div(id="cs-marks", className="cs-marks", children=[
        html.Span(m["text"], title=m["title"], className=f"cs-mark is-{m['kind']}") for m in marks
    ])


def stages_view(case: dict):
    """The stage clocks in one row: 受理 核实 立案 派遣 处置 核查 结案, each with start, limit, done, mark."""
    rows = case_text.stage_rows(case)
    if not rows:
        return None
    cells = []
    for r in rows:
        lines = [html.Div(className="cs-stage-head", children=[
            html.Span(r["label"], className="cs-stage-name"),
            html.Span(r["state_text"], className="cs-stage-tag")])]
        if r["state"] != "pending":
            lines += [html.Div([html.Span("始", className="cs-stage-k"), r["start"]], className="cs-num"),
                      html.Div([html.Span("限", className="cs-stage-k"), r["deadline"]], className="cs-num"),
                      html.Div([html.Span("毕", className="cs-stage-k"), r["done"] or "—"], className="cs-num")]
        cells.append(html.Li(lines, className=f"cs-stage is-{r['state']}", **{"data-stage": r["name"]}))
    return html.Section(className="cs-card cs-stages-card", children=[
        html.H4(["办理环节", html.Span(f"（{case_text.hours_word(case)}计时）", className="cs-muted cs-h4-note")]),
        html.Ol(cells, id="cs-stages", className="cs-stages"),
    ])


def oversight_view(case: dict, now: datetime):
    """督办 and 催办, 扣分, 协办 units, 挂账: shown only when the case has any of them."""
    parts = []
    sup = case_text.supervision_rows(case, now)
    if sup:
        parts.append(html.Div(className="cs-ov-block", children=[
            html.Div("催办 / 督办", className="cs-ov-title"),
            html.Ul(className="cs-ov-list", children=[
                html.Li(className=f"cs-ov-row is-{r['kind']}" + (" is-late" if r["late"] else ""), children=[
                    html.Span(r["at"], className="cs-num cs-ov-at"),
                    html.Span(r["what"], className="cs-ov-what"),
                    html.Span(r["by"], className="cs-ov-by"),
                    html.Span((f"督办时限 {r['deadline']}" + ("（已逾期）" if r["late"] else "")) if r["deadline"] else "",
                              className="cs-ov-deadline cs-num"),
                    html.Div(r["note"], className="cs-ov-note") if r["note"] else None,
                ]) for r in sup
            ]),
        ]))
    pens = case_text.penalty_rows(case)
    if pens:
        parts.append(html.Div(className="cs-ov-block", children=[
            html.Div(f"扣分（共 {case_text.num(case.get('penalty_points') or 0)} 分）", className="cs-ov-title"),
            html.Ul(className="cs-ov-list", children=[
                html.Li(className="cs-ov-row is-pen", children=[
                    html.Span(p["at"], className="cs-num cs-ov-at"),
                    html.Span(f"−{p['points']}", className="cs-ov-what"),
                    html.Span(p["unit"], className="cs-ov-by"),
                    html.Span(p["why"], className="cs-ov-deadline"),
                ]) for p in pens
            ]),
        ]))
    assists = case_text.assist_rows(case)
    if assists:
        parts.append(html.Div(className="cs-ov-block", children=[
            html.Div("协办单位", className="cs-ov-title"),
            html.Ul(className="cs-ov-list", children=[
                html.Li(className=f"cs-ov-row is-assist-{a['state']}", children=[
                    html.Span(a["unit"], className="cs-ov-unit"),
                    html.Span(a["text"], className="cs-ov-deadline"),
                    html.Div(a["note"], className="cs-ov-note") if a["note"] else None,
                ]) for a in assists
            ]),
        ]))
    suspension = case_text.suspension_text(case)
    if suspension:
        parts.append(html.Div(className="cs-ov-block", children=[
            html.Div("挂账", className="cs-ov-title"), html.Div(suspension, className="cs-ov-text")]))
    if not parts:
        return None
    return html.Section(id="cs-oversight", className="cs-card cs-oversight", children=parts)


# ---- 督办件: the supervised cases of the principal's level and below ---------------------------------------------
def supervised_view(listing: dict | None, error: str | None = None) -> list:
    """The 督办件 panel's body: the counts, then each case with its 督办 level, deadline (red when passed),
    unit, 催办."""
    if error:
        return [html.Div(error, className="cs-msg is-error")]
    items = listing["items"]
    summary = html.Div(id="cs-sup-summary", className="cs-sup-summary", children=[
        html.Span(f"督办中 {listing['total']} 件"),
        html.Span(f"督办逾期 {listing['late']} 件", className="cs-sup-late-n" if listing["late"] else "cs-muted"),
        html.Span(f"（显示前 {len(items)} 件）", className="cs-muted") if len(items) < listing["total"] else None,
    ])
    rows = [html.Button(id={"type": "cs-sup-row", "case": it["id"]}, n_clicks=0,
                        className="cs-sup-row" + (" is-late" if it["late"] else "") + (" is-own" if it["own"] else ""),
                        **{"data-case": str(it["id"])}, children=[
        html.Span(it["level_label"], className="cs-sup-level"),
        html.Span(f"#{it['id']}", className="cs-sup-id cs-num"),
        html.Span(it["category"], className="cs-sup-cat"),
        html.Span(it["state_label"], className=f"cs-sup-state cs-st-{it['state']}"),
        html.Span([it["area"], html.Span(it["unit"], className="cs-sup-unit")], className="cs-sup-area"),
        html.Span([f"督办时限 {it['deadline'] or '—'}",
                   html.B("已逾期", className="cs-sup-late") if it["late"] else None], className="cs-sup-deadline cs-num"),
        html.Span(" ".join(x for x in (f"催办×{it['urge_count']}" if it["urge_count"] else "",
                                       "处置超期" if it["overdue"] else "", it["by"]) if x), className="cs-sup-extra"),
    ]) for it in items]
    return [summary, html.Div(id="cs-sup-list", className="cs-sup-list",
                              children=rows or [html.Div("当前没有督办中的案件", className="cs-muted")])]


def hotline_failures(summary: dict | None, message: str | None = None) -> tuple[bool, list]:
    """(hidden, children) of the 12345 card: hidden when no push failed (or the role does not work the list)."""
    if not summary or not summary["count"]:
        return (not message), ([html.Span(message, className="cs-hl-msg")] if message else [])
    rows = [html.Li(className="cs-hl-item", children=[
        html.Span(f"工单 {d['ticket_no']}", className="cs-hl-ticket"),
        html.Span(f"{d['action_label'] or d['action']} · 案件 #{d['case_id']}", className="cs-hl-step"),
        html.Span(d["last_error"] or "", className="cs-hl-error", title=d["last_error"] or ""),
        html.Button("重新推送", id={"type": "cs-hl-retry", "id": d["id"]}, className="cs-hl-retry", n_clicks=0),
    ]) for d in summary["items"]]
    more = summary["count"] - len(rows)
    return False, [
        html.Span(f"12345 推送失败 {summary['count']} 条", className="cs-hl-title"),
        html.Ul(rows, className="cs-hl-list"),
        *([html.Span(f"另有 {more} 条（GET /api/v1/hotline/deliveries?status=dead）", className="cs-hl-more")]
          if more > 0 else []),
        *([html.Span(message, className="cs-hl-msg")] if message else []),
    ]


def supervised_button(listing: dict | None) -> list:
    """The toolbar button's face: 督办件 and the count, red when some deadline passed."""
    if not listing:
        return ["督办件"]
    n, late = listing["total"], listing["late"]
    return ["督办件", html.Span(str(n), className="cs-sup-n" + (" is-late" if late else ""))]


def _facts(rows) -> html.Dl:
    parts = []
    for label, value in rows:
        if value is None:
            continue
        parts += [html.Dt(label), html.Dd(value)]
    return html.Dl(className="cs-facts", children=parts)


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "—"


def _severity(level: int | None) -> str:
    return next((o["label"] for o in SEVERITY_OPTIONS if o["value"] == level), "—")


def _history_row(h: dict):
    moves = h["from"] and h["to"] and h["from"] != h["to"]
    change = (f"{lifecycle.STATE_LABELS.get(h['from'], h['from'])} → {lifecycle.STATE_LABELS.get(h['to'], h['to'])}"
              if moves else lifecycle.STATE_LABELS.get(h["to"], h["to"] or ""))
    return html.Li(className="cs-hist", children=[
        html.Span(_when(h["at"]), className="cs-hist-at cs-num"),
        html.Span(history_action(h), className="cs-hist-action"),
        html.Span(change, className="cs-hist-change"),
        html.Span(actor_label(h["actor"]), className="cs-hist-actor"),
        html.Div(h["note"], className="cs-hist-note") if h["note"] else None,
    ])




def _photos(photos: list[dict]):
    if not photos:
        return None
    return html.Section(className="cs-card cs-card-wide", children=[
        html.H4(f"照片（{len(photos)}）"),
        html.Div(className="cs-photos", children=[
            html.A(href=p["url"], target="_blank", className="cs-photo", children=[
                html.Img(src=p["url"], alt=p.get("kind_label") or p.get("kind", "")),
                html.Span(f"{p.get('kind_label') or p.get('kind', '')} · {_when(p.get('uploaded_at'))}"),
            ]) for p in photos
        ]),
    ])


def case_map(records: list, lon: float, lat: float) -> dict | None:
    """A small deck for the detail: the case's street outlined, its grid filled, the point. No tiles."""
    if not records:
        return None
    street = [r for r in records if r.level == STREET]
    grid = [r for r in records if r.level not in (STREET,)]
    layers = [
        pdk.Layer("PolygonLayer", id="street", data=area_polygons(street, 0.0002), get_polygon="polygon",
                  filled=True, get_fill_color=[22, 52, 92, 200], stroked=True, get_line_color=[120, 170, 230, 220],
                  line_width_min_pixels=1.5),
        pdk.Layer("PolygonLayer", id="grid", data=area_polygons(grid, 0.0), get_polygon="polygon", filled=True,
                  get_fill_color=[79, 209, 255, 60], stroked=True, get_line_color=[79, 209, 255, 230],
                  line_width_min_pixels=1.5),
        pdk.Layer("ScatterplotLayer", id="point", data=[{"p": [lon, lat]}], get_position="p", get_radius=40,
                  radius_min_pixels=6, radius_max_pixels=14, get_fill_color=[255, 93, 108, 255], stroked=True,
                  get_line_color=[255, 255, 255, 255], line_width_min_pixels=2),
    ]
    focus = street or records
    minx, miny, maxx, maxy = shapely.total_bounds([r.geometry for r in focus])
    deck = pdk.Deck(layers=layers, map_style=None, map_provider=None,
                    initial_view_state=pdk.ViewState(longitude=(minx + maxx) / 2, latitude=(miny + maxy) / 2, zoom=12))
    return {"spec": json.loads(deck.to_json()), "bounds": bounds_of(focus)}


# ---- hotline intake --------------------------------------------------------------------------------------
def intake_form(cases) -> html.Div:
    """12345 hotline intake: category, place (map click or typed), description, phone, severity for
    emergencies; the preview says where the case will go and by when before anything is written."""
    districts = [r for r in cases.areas.records(max_level=3) if r.level in (DISTRICT, STREET)]
    return html.Div(className="cs-in", children=[
        dcc.Store(id="cs-in-key", data=uuid.uuid4().hex),
        dcc.Store(id="cs-in-map-src", data=_intake_map(districts)),
        html.Div(className="cs-d-head", children=[html.Span("12345 热线工单登记", className="cs-d-title")]),
        html.Div(className="cs-in-grid", children=[
            html.Div(className="cs-field cs-field-wide", children=[
                html.Label("事件类别", htmlFor="cs-in-category"),
                dcc.Dropdown(id="cs-in-category", options=queue.category_options(cases),
                             placeholder="输入名称搜索，如：暴露垃圾、井盖、占道经营", searchable=True,
                             labels=DROPDOWN_LABELS, maxHeight=320, className="cs-in-category"),
            ]),
            html.Div(className="cs-field cs-field-wide cs-in-mapwrap", children=[
                html.Label("位置（点击地图选点，或填写经纬度）"),
                html.Div(className="cs-in-map", children=[
                    dash_deck.DeckGL(id="cs-in-map", data={}, enableEvents=["click"],
                                     style={"position": "absolute", "inset": "0"}),
                ]),
            ]),
            html.Div(className="cs-field", children=[
                html.Label("经度", htmlFor="cs-in-lon"),
                dcc.Input(id="cs-in-lon", type="text", inputMode="decimal", placeholder="如 119.9741",
                          className="cs-input cs-num", debounce=True, autoComplete="off"),
            ]),
            html.Div(className="cs-field", children=[
                html.Label("纬度", htmlFor="cs-in-lat"),
                dcc.Input(id="cs-in-lat", type="text", inputMode="decimal", placeholder="如 31.7812",
                          className="cs-input cs-num", debounce=True, autoComplete="off"),
            ]),
            html.Div(className="cs-field", children=[
                html.Label("来电号码", htmlFor="cs-in-phone"),
                dcc.Input(id="cs-in-phone", type="text", placeholder="手机或区号-座机", className="cs-input cs-num",
                          debounce=True, autoComplete="off"),
            ]),
            html.Div(id="cs-in-severity-row", className="cs-field", hidden=True, children=[
                html.Label("事件等级（应急事件必填）", htmlFor="cs-in-severity"),
                dcc.Dropdown(id="cs-in-severity", options=SEVERITY_OPTIONS, placeholder="选择等级", clearable=True,
                             searchable=False, labels=DROPDOWN_LABELS),
            ]),
            html.Div(className="cs-field cs-field-wide", children=[
                html.Label("问题描述", htmlFor="cs-in-description"),
                dcc.Textarea(id="cs-in-description", className="cs-textarea", maxLength=2000,
                             placeholder="来电人反映的问题、具体位置描述（路名、门牌、地标）"),
            ]),
        ]),
        html.Div(id="cs-in-preview", className="cs-preview", children=preview_view(None, None)),
        html.Div(className="cs-actform-buttons", children=[
            html.Button("提交工单", id="cs-in-submit", className="cs-btn cs-btn-primary", n_clicks=0),
        ]),
        html.Div(id="cs-in-msg", className="cs-msg", role="alert"),
    ])


def _intake_map(records: list) -> dict:
    districts = [r for r in records if r.level == DISTRICT]
    streets = [r for r in records if r.level == STREET]
    layers = [
        pdk.Layer("PolygonLayer", id="districts", data=area_polygons(districts, 0.0005), get_polygon="polygon",
                  filled=True, get_fill_color="fill", stroked=True, get_line_color=[230, 240, 255, 230],
                  line_width_min_pixels=1.5, pickable=False),
        pdk.Layer("PolygonLayer", id="streets", data=area_polygons(streets, 0.0005), get_polygon="polygon",
                  filled=False, stroked=True, get_line_color=[200, 220, 255, 90], line_width_min_pixels=1),
        pdk.Layer("ScatterplotLayer", id="pick", data=[], get_position="p", get_radius=60, radius_min_pixels=7,
                  radius_max_pixels=16, get_fill_color=[255, 93, 108, 255], stroked=True,
                  get_line_color=[255, 255, 255, 255], line_width_min_pixels=2),
    ]
    minx, miny, maxx, maxy = shapely.total_bounds([r.geometry for r in districts or records])
    deck = pdk.Deck(layers=layers, map_style=None, map_provider=None,
                    initial_view_state=pdk.ViewState(longitude=(minx + maxx) / 2, latitude=(miny + maxy) / 2, zoom=8))
    return {"spec": json.loads(deck.to_json()), "bounds": bounds_of(districts or records)}


def preview_view(preview: dict | None, error: str | None):
    """Where the case will go and by when, or why it cannot be taken as it is."""
    if error:
        return html.Div(className="cs-preview-box is-error", children=[
            html.Div("无法受理", className="cs-preview-title"), html.Div(error, id="cs-in-error")])
    if preview is None:
        return html.Div("选择类别和位置后，这里显示派往单位、派遣理由和处置时限。", className="cs-preview-box cs-muted")
    place = " › ".join(a["name"] for a in reversed(preview["chain"]) if a["level"] >= 2)
    unit = (preview["unit"] or {}).get("name") or "指挥中心人工派遣"
    rows = [
        ("所在区域", place),
        ("派往单位", unit),
        ("协同单位", "、".join(u["name"] for u in preview["units"][1:]) or None),
        ("派遣理由", preview["route_reason"]),
        ("处置时限", f"{_when(preview['deadline'])}（{preview['category']['time_limit']}）"),
        ("重复上报", f"与在办案件 #{preview['merge_into']} 同类且相距很近，提交后将合并到该案件"
         if preview["merge_into"] else None),
    ]
    return html.Div(className="cs-preview-box is-ok", children=[
        html.Div("提交后将：", className="cs-preview-title"),
        _facts(rows),
    ])
