"""The emergency commander's page (/emergency, 应急一张图): the active responses, gravest first, and the emergencies
waiting for a plan; the selected event's plan, level, units' tasks, checklist and information reports, its map (the
event, the radius, the affected grids with their population, nearby devices and open alarms, resources when they
are connected) and its timeline. Pieces only: callbacks/emergency.py reads the services and fills them in."""
from __future__ import annotations

import json
import math
from datetime import datetime

import dash_deck
import pydeck as pdk
from dash import dcc, html
from flask import current_app

from dispatch.city_time import local
from dispatch.emergency_plans import EVENT_LEVEL_NAMES, LEVELS, RESOURCE_TYPES
from dispatch.limits import is_int64
from geo.layers import CJK_FONTS, area_polygons
from layouts import device_chart
from layouts.case_text import actor_label, history_action
from web.principal import current_principal

FONT = CJK_FONTS.replace('"', "")
TEXT = "#dbe7ff"
RADII = {1000: "1 公里", 3000: "3 公里", 5000: "5 公里"}
DEFAULT_RADIUS = 3000
REFRESH_MS = 30_000  # deadlines move on: the page reads again every 30 s (and at once on a live event)
LEVEL_SHORT = {1: "Ⅰ级", 2: "Ⅱ级", 3: "Ⅲ级", 4: "Ⅳ级"}
LEVEL_OPTIONS = [{"label": f"{LEVEL_SHORT[n]} {EVENT_LEVEL_NAMES[n].split('（')[-1].rstrip('）')}", "value": n}
                 for n in LEVELS]
ROLE_LABELS = {"lead": "牵头", "assist": "联动"}
REPORT_FIELDS = (("deaths", "死亡"), ("injuries", "受伤"), ("missing", "失联"), ("evacuated", "疏散转移"))
DEVICE_COLOURS = {"online": [52, 211, 175], "offline": [150, 160, 178], "alarm": [255, 45, 85],
                  "maintenance": [190, 150, 255]}
RESOURCE_COLOURS = {"team": [255, 202, 40], "warehouse": [79, 209, 255], "equipment": [255, 159, 90],
                    "shelter": [61, 220, 151]}
EVENT_RGB = [255, 60, 60]
RING_RGB = [255, 181, 71]
LEGEND_ROOM = 0.7  # of the ring's width, left free west of it for the legend


def case_ref(value) -> int | None:
    """?case=ID → a case id (None unless a positive 64-bit integer)."""
    try:
        n = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return n if n is not None and is_int64(n) and n > 0 else None


def live_config() -> dict:
    live = current_app.extensions.get("ucc_live")
    on = live is not None and current_principal() is not None
    return {"live": on, "since": live.head() if on else None}


def layout(case=None, **_query):
    return html.Div(id="em-root", className="em", children=[
        dcc.Store(id="em-selected", data=case_ref(case)),
        dcc.Store(id="em-case"),              # {id, version, response, kind}: the case on screen; actions send its version
        dcc.Store(id="em-draft-key"),         # case:kind:filed — a new owed report (or case) drafts the form again
        dcc.Store(id="em-refresh", data=0),   # bumped after an action
        dcc.Store(id="em-live", data=0),      # bumped by assets/emergency.js when the live stream brings news
        dcc.Store(id="em-config", data=live_config()),
        dcc.Store(id="em-started"),
        dcc.Store(id="em-map-data"),
        dcc.Store(id="em-map-key"),           # the digest of the map last sent (callbacks/emergency.py)
        dcc.Interval(id="em-tick", interval=REFRESH_MS),
        html.Div(className="em-bar", children=[
            html.H2("应急一张图", className="em-title"),
            html.Div(id="em-summary", className="em-summary"),
            html.Div(className="em-bar-right", children=[
                html.Span("影响半径", className="em-bar-label"),
                dcc.RadioItems(id="em-radius", value=DEFAULT_RADIUS, inline=True, className="em-tabs",
                               labelClassName="em-tab", inputClassName="em-tab-input",
                               options=[{"label": v, "value": k} for k, v in RADII.items()]),
                html.Span("实时推送：正在连接…", id="em-conn", className="em-conn"),
            ]),
        ]),
        html.Div(className="em-body", children=[
            html.Section(className="em-left em-panel", children=[
                html.H3("进行中的应急响应", className="em-h"),
                html.Div(id="em-list", className="em-list"),
                html.H3("待启动预案", className="em-h em-h-gap"),
                html.Div(id="em-awaiting", className="em-list em-awaiting"),
            ]),
            html.Section(className="em-center", children=[
                html.Div(id="em-head", className="em-head em-panel"),
                html.Div(className="em-map-card em-panel", children=[
                    html.Div(className="em-map", children=[
                        dash_deck.DeckGL(id="em-map", data={}, tooltip={
                            "html": "{tip}",
                            "style": {"backgroundColor": "#0b1c36", "color": TEXT, "fontFamily": FONT,
                                      "fontSize": "0.85rem", "border": "1px solid #2a5490"}},
                            style={"position": "absolute", "inset": "0", "background": "#081325"}),
                    ]),
                    html.Div(id="em-legend", className="em-legend"),
                    html.Div(id="em-map-empty", className="em-map-empty", hidden=True, children=[
                        html.Div("当前没有选中的应急事件", className="em-calm-title"),
                        html.Div("从左侧选择一个应急事件：地图将显示事发点、影响半径、受影响网格与人口、周边物联设备与告警、"
                                 "应急资源", className="em-calm-sub"),
                    ]),
                ]),
                html.Div(className="em-lower", children=[
                    html.Section(className="em-panel em-res-panel", children=[
                        html.H3(id="em-res-title", className="em-h", children="应急资源（已调配 · 半径内最近）"),
                        html.Div(id="em-resources", className="em-scroll"),
                    ]),
                    html.Section(className="em-panel em-tl-panel", children=[
                        html.H3("事件时间线（最新在前）", className="em-h"),
                        html.Div(id="em-timeline", className="em-scroll"),
                    ]),
                ]),
            ]),
            html.Section(className="em-right em-panel", children=[
                html.Div(id="em-msg", className="em-msg", role="alert"),
                html.Div(id="em-activate-box", className="em-box", hidden=True, children=[
                    html.H3("启动应急预案", className="em-h"),
                    html.Div(id="em-activate-plan", className="em-plan-line"),
                    html.Div("确认事件等级", className="em-label"),
                    dcc.RadioItems(id="em-activate-level", options=LEVEL_OPTIONS, value=4, inline=True,
                                   className="em-tabs em-levels", labelClassName="em-tab", inputClassName="em-tab-input"),
                    html.Button("启动预案", id="em-activate", n_clicks=0, className="em-btn em-btn-main"),
                ]),
                html.Div(id="em-command-box", className="em-box", hidden=True, children=[
                    html.Div(className="em-command", children=[
                        html.Span("响应等级", className="em-label"),
                        dcc.RadioItems(id="em-level", options=LEVEL_OPTIONS, value=4, inline=True,
                                       className="em-tabs em-levels", labelClassName="em-tab",
                                       inputClassName="em-tab-input"),
                        html.Button("调整等级", id="em-level-btn", n_clicks=0, className="em-btn"),
                        html.Button("结束响应", id="em-end", n_clicks=0, className="em-btn em-btn-warn",
                                    title="须先报送终报"),
                    ]),
                ]),
                html.Div(id="em-detail", className="em-detail", children=html.Div(
                    "从左侧选择一个应急事件", className="em-placeholder")),
                html.Div(id="em-report-box", className="em-box em-report-box", hidden=True, children=[
                    html.H3(id="em-report-title", className="em-h", children="报送信息"),
                    dcc.Textarea(id="em-report-text", className="em-textarea", maxLength=4000,
                                 placeholder="报告正文（已按事件情况生成草稿，可修改）"),
                    html.Div(className="em-fields", children=[
                        html.Label([label, dcc.Input(id=f"em-f-{key}", type="number", min=0, step=1,
                                                     className="em-num-input", debounce=False)],
                                   className="em-field") for key, label in REPORT_FIELDS
                    ] + [html.Label(["直接经济损失", dcc.Input(id="em-f-losses", type="text", maxLength=200,
                                                           className="em-text-input")],
                                    className="em-field em-field-wide")]),
                    html.Div(className="em-report-actions", children=[
                        html.Button("重新生成草稿", id="em-redraft", n_clicks=0, className="em-btn"),
                        html.Button("报送", id="em-report-btn", n_clicks=0, className="em-btn em-btn-main"),
                    ]),
                ]),
            ]),
        ]),
    ])


# ---- times -------------------------------------------------------------------------------------------------
def _at(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def when(iso: str | None) -> str:
    """'12-08 03:34' from the service's ISO time (in the city's offset); '—' for none."""
    return f"{iso[5:10]} {iso[11:16]}" if iso else "—"


def span_text(minutes: float) -> str:
    minutes = int(abs(minutes))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{mins:02d}分"
    return f"{mins}分钟"


def since_text(iso: str | None, now: datetime) -> str:
    at = _at(iso)
    return span_text((now - at).total_seconds() / 60) if at else "—"


def countdown(due_iso: str | None, now: datetime) -> html.Span:
    """The owed report's clock: 剩余 N (amber under 10 minutes), 已超时 N (red); assets/emergency.js moves it each
    second from its data-due."""
    due = _at(due_iso)
    if due is None:
        return html.Span("无时限", className="em-cd")
    left = (due - now).total_seconds() / 60
    cls = "em-cd is-over" if left < 0 else ("em-cd is-near" if left < 10 else "em-cd")
    text = f"已超时 {span_text(left)}" if left < 0 else f"剩余 {span_text(left)}"
    return html.Span(text, className=cls, **{"data-due": due_iso})


# ---- the lists ------------------------------------------------------------------------------------------
def level_badge(level: int | None, label: str | None = None) -> html.Span:
    if not level:
        return html.Span("未定级", className="em-lv")
    return html.Span(LEVEL_SHORT.get(level, str(level)), className=f"em-lv is-l{level}", title=label or "")


def response_list(items: list[dict], selected: int | None, place, now: datetime):
    """The active responses, gravest first: level, category, place, plan, the owed report's clock, units not yet
    acknowledged (red when overdue), checklist done/total. Each opens its event."""
    if not items:
        return html.Div(className="em-calm", children=[
            html.Div("当前没有进行中的应急响应", className="em-calm-title"),
            html.Div("全市平稳运行；接报并立案的应急事件在下方启动预案。", className="em-calm-sub")])
    rows = []
    for r in items:
        nxt = r.get("next_report")
        waiting = len(r.get("unacknowledged") or [])
        late = len(r.get("overdue_tasks") or [])
        rows.append(html.Button(
            id={"type": "em-item", "case": r["case_id"]}, n_clicks=0,
            className="em-item" + (" is-selected" if r["case_id"] == selected else ""),
            **{"data-case": str(r["case_id"])}, children=[
                html.Div(className="em-item-top", children=[
                    level_badge(r["level"], r["level_label"]),
                    html.Span(r["category"], className="em-item-cat"),
                    html.Span(f"#{r['case_id']}", className="em-item-id"),
                ]),
                html.Div(place(r.get("grid_code")), className="em-item-place"),
                html.Div(f"{r['plan']['name']} · {r.get('response_name') or ''}", className="em-item-plan"),
                html.Div(className="em-item-foot", children=[
                    html.Span([f"{nxt['kind_label']} ", countdown(nxt["due_at"], now)]) if nxt else
                    html.Span("报告已齐", className="em-ok"),
                    html.Span(f"未签收 {waiting}" + (f"（超时 {late}）" if late else ""),
                              className="em-warn" if late else ("em-amber" if waiting else "em-ok")),
                    html.Span(f"措施 {r['checklist_done']}/{r['checklist_total']}"),
                ]),
            ]))
    return rows


def awaiting_list(items: list[dict], selected: int | None, place):
    """Emergency cases accepted but without a plan yet, each with 启动预案 (which opens it with the level picker)."""
    if not items:
        return html.Div("没有待启动预案的应急事件", className="em-muted em-pad")
    return [html.Div(className="em-item em-await" + (" is-selected" if c["case_id"] == selected else ""),
                     **{"data-case": str(c["case_id"])}, children=[
        html.Div(className="em-item-top", children=[
            level_badge(c.get("severity"), c.get("severity_label")),
            html.Span(c["category"], className="em-item-cat"),
            html.Span(f"#{c['case_id']}", className="em-item-id"),
        ]),
        html.Div(f"{place(c.get('grid_code'))} · {c['state_label']} · {when(c['reported_at'])}", className="em-item-place"),
        html.Div(className="em-item-foot", children=[
            html.Span((c.get("plan") or {}).get("name") or "无适用预案", className="em-item-plan"),
            html.Button("启动预案", id={"type": "em-start", "case": c["case_id"]}, n_clicks=0,
                        className="em-btn em-btn-small em-btn-main"),
        ]),
    ]) for c in items]


# ---- the selected event ----------------------------------------------------------------------------------
def place_of(case: dict) -> str:
    return "".join(a["name"] for a in reversed(case.get("chain") or []) if a["level"] >= 2)


def event_head(case: dict, now: datetime) -> list:
    """Category, place, level, plan and response name, commanding level, time since activation, the case state."""
    r = case.get("response")
    facts = [("事发地点", place_of(case) or "—"), ("案件状态", case.get("state_label") or case.get("state"))]
    if r:
        facts = facts[:1] + [("预案", r["plan"]["name"]), ("响应", r.get("response_name") or "—"),
                 ("指挥层级", r.get("commanding_level_label") or "—"),
                 ("启动于", when(r["activated_at"])),
                 ("已响应" if r["status"] == "active" else "响应时长",
                  since_text(r["activated_at"], now) if r["status"] == "active"
                  else span_text((_at(r["ended_at"]) - _at(r["activated_at"])).total_seconds() / 60))] + facts[1:]
    status = None
    if r:
        status = html.Span("响应中" if r["status"] == "active" else "响应已结束",
                           className="em-status is-" + r["status"])
    level = r["level"] if r else case.get("severity")
    label = r["level_label"] if r else (EVENT_LEVEL_NAMES.get(case.get("severity")) if case.get("severity") else None)
    return [
        html.Div(className="em-head-main", children=[
            level_badge(level, label),
            html.Span(case["category"]["name"], className="em-head-cat", id="em-head-cat"),
            html.Span(label or "", className="em-head-level"),
            html.Span(f"#{case['id']}", className="em-head-id"),
            status,
        ]),
        html.Div(className="em-facts", children=[
            html.Span([html.Span(k, className="em-fact-k"), html.Span(v, className="em-fact-v")], className="em-fact")
            for k, v in facts]),
    ]


def tasks_block(r: dict) -> html.Div:
    rows = []
    ended = r.get("status") == "ended"
    for t in r["tasks"]:
        if t["acknowledged_at"]:
            state = html.Span(f"已签收 {when(t['acknowledged_at'])}" + ("（超时）" if t["overdue"] else ""),
                              className="em-amber" if t["overdue"] else "em-ok")
        elif t["overdue"]:
            state = html.Span("超时未签收", className="em-warn")
        else:
            state = html.Span("未签收" if ended else "待签收", className="em-muted")
        rows.append(html.Tr(className="em-task" + (" is-overdue" if t["overdue"] and not t["acknowledged_at"] else ""),
                            **{"data-unit": t["unit"]["code"]}, children=[
            html.Td(html.Span(ROLE_LABELS.get(t["role"], t["role"]), className=f"em-role is-{t['role']}")),
            html.Td(t["unit"]["name"], className="em-task-unit", title=t["unit"]["name"]),
            html.Td(when(t["deadline"]), className="em-num"),
            html.Td(state),
        ]))
    done = sum(1 for t in r["tasks"] if t["acknowledged_at"])
    return html.Div(id="em-tasks", className="em-block", children=[
        html.H3(f"任务单位（已签收 {done}/{len(r['tasks'])}）", className="em-h"),
        html.Table(className="em-table", children=[
            html.Thead(html.Tr([html.Th(h) for h in ("", "单位", "签收时限", "签收")])), html.Tbody(rows)]),
    ])


def checklist_block(r: dict, may_tick: bool) -> html.Div:
    items = []
    for i in r["checklist"]:
        done = bool(i["done_at"])
        box = html.Button("✓" if done else "", id={"type": "em-check", "pos": i["position"]}, n_clicks=0,
                          className="em-tick" + (" is-done" if done else ""), disabled=done or not may_tick,
                          role="checkbox", **{"aria-checked": "true" if done else "false", "aria-label": i["item"]})
        items.append(html.Li(className="em-check" + (" is-done" if done else ""),
                             **{"data-pos": str(i["position"])}, children=[
            box, html.Span(i["item"], className="em-check-text"),
            html.Span(f"{actor_label(i['by'] or '')} {when(i['done_at'])}" if done else "", className="em-check-by"),
        ]))
    done = sum(1 for i in r["checklist"] if i["done_at"])
    return html.Div(id="em-checklist", className="em-block", children=[
        html.H3(f"处置措施（{done}/{len(r['checklist'])}）", className="em-h"),
        html.Ul(items, className="em-checks") if items else html.Div("预案未列处置措施", className="em-muted"),
    ])


def reports_block(r: dict, now: datetime) -> html.Div:
    rows = []
    for x in r["reports"]:
        if x["kind"] == "upward":
            due, state = "—", html.Span(f"已报 {when(x['filed_at'])}", className="em-ok")
        elif x["filed_at"]:
            due = when(x["due_at"])
            state = html.Span(f"已报 {when(x['filed_at'])}" + ("（超时）" if x["late"] else ""),
                              className="em-amber" if x["late"] else "em-ok")
        else:
            due, state = when(x["due_at"]), countdown(x["due_at"], now)
        rows.append(html.Tr(className="em-report" + (" is-owed" if not x["filed_at"] else "")
                            + (" is-late" if x["late"] else ""), **{"data-kind": x["kind"]}, children=[
            html.Td(x["kind_label"], className="em-report-kind"),
            html.Td(due, className="em-num"),
            html.Td(state),
            html.Td((x["text"] or "").split("\n")[0][:60] if x["text"] else "—", className="em-report-text",
                    title=x["text"] or ""),
        ]))
    return html.Div(id="em-reports", className="em-block", children=[
        html.H3("信息报送（首报 / 续报 / 终报）", className="em-h"),
        html.Table(className="em-table", children=[
            html.Thead(html.Tr([html.Th(h) for h in ("报告", "时限", "状态", "内容")])), html.Tbody(rows)]),
    ])


def detail(case: dict, now: datetime, may_tick: bool) -> list:
    r = case.get("response")
    if r is None:
        return [html.Div("该事件尚未启动应急预案：确认事件等级后启动。", className="em-muted em-pad")]
    return [tasks_block(r), checklist_block(r, may_tick and r["status"] == "active"), reports_block(r, now)]


def timeline(history: list[dict]) -> html.Ol:
    rows = [html.Li(className="em-tl-item", children=[
        html.Span(when(h["at"]), className="em-tl-at em-num"),
        html.Span(history_action(h), className="em-tl-act"),
        html.Span(actor_label(h["actor"]), className="em-tl-who"),
        html.Div(h.get("note") or "", className="em-tl-note"),
    ]) for h in reversed(history or [])]
    return html.Ol(rows, className="em-tl")


def _resource_note(i: dict) -> str:
    """What a resource offers, in a few words: a team's specialty and headcount, a shelter's places, a warehouse's
    first items of stock."""
    kind = i.get("type")
    if kind == "team":
        return "，".join(x for x in (i.get("specialty"), f"{i['capacity']:g} 人" if i.get("capacity") else None) if x) or "—"
    if kind == "shelter" and i.get("capacity"):
        return f"容纳 {i['capacity']:g} 人（已用 {i.get('occupancy') or 0:g}）"
    if kind == "warehouse":
        stock = i.get("stock") or []
        text = "、".join(f"{x['item']} {x['quantity']:g}{x.get('unit') or ''}" for x in stock[:2])
        return text + (f" 等 {len(stock)} 项" if len(stock) > 2 else "") if stock else "无库存"
    return i.get("specialty") or "—"


def resources_panel(found: dict | None, message: str | None, allocated: list | None = None) -> list:
    """The resources allocated to the event (each with 归还), then those nearest it with 调配 (services().resources,
    issue 17 part 4): a team, a vehicle or a piece of equipment goes whole, a shelter takes a number of people, a
    warehouse a quantity of one item of its stock; or why there are none."""
    out = []
    live = [a for a in (allocated or []) if not a.get("released_at")]
    if live:
        out.append(html.Div(className="em-alloc", id="em-alloc", children=[
            html.Span(f"已调配 {len(live)} 项", className="em-alloc-title"),
            *[html.Span(className="em-alloc-item", children=[
                f"{a['name']}" + (f" {a['item']} {a['quantity']:g}" if a.get("item") else
                                  f" {a['quantity']:g} 人" if a.get("type") == "shelter" and a.get("quantity") else ""),
                html.Button("归还", id={"type": "em-release", "alloc": a["id"]}, n_clicks=0,
                            className="em-btn em-btn-small")]) for a in live]]))
    if message:
        return out + [html.Div(message, className="em-muted em-pad em-res-off")]
    items = (found or {}).get("items") or []
    if not items:
        return out + [html.Div("半径内没有登记的应急资源", className="em-muted em-pad")]
    # four columns in a narrow panel: the distance and status under the name, what it offers, 调配
    rows = [html.Tr([
        html.Td(html.Span(RESOURCE_TYPES.get(i.get("type"), i.get("type")), className=f"em-rtype is-{i.get('type')}")),
        html.Td([html.Div(i.get("name"), className="em-res-name", title=i.get("name")),
                 html.Div(f"{(i.get('distance_m') or 0) / 1000:.1f} km · {i.get('status_label') or i.get('status') or '—'}",
                          className="em-res-sub")], className="em-task-unit"),
        html.Td(_resource_note(i), className="em-res-note", title=_resource_note(i)),
        html.Td(_allocate_control(i), className="em-res-act"),
    ], **{"data-res": i.get("id")}) for i in items]
    return out + [html.Table(className="em-table em-res-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in ("类型", "名称 · 距离", "能力", "调配")])), html.Tbody(rows)])]


def _allocate_control(i: dict):
    """调配 for a resource that can go now: whole (a team, a vehicle), or a number (a shelter's people, an item of a
    warehouse's stock, chosen from it)."""
    rid = i.get("id")
    if i.get("status") not in (None, "available"):
        return "—"
    button = html.Button("调配", id={"type": "em-allocate", "res": rid}, n_clicks=0, className="em-btn em-btn-small")
    kind = i.get("type")
    if kind == "shelter":
        return [dcc.Input(id={"type": "em-qty", "res": rid}, type="number", min=1, step=1, placeholder="人数",
                          className="em-qty", debounce=False), button]
    if kind == "warehouse":
        stock = [x for x in i.get("stock") or [] if x.get("quantity")]
        if not stock:
            return "—"
        return [dcc.Dropdown(id={"type": "em-item", "res": rid}, clearable=False, searchable=False,
                             value=stock[0]["item"], className="em-item-pick",
                             options=[{"label": f"{x['item']}（余 {x['quantity']:g}{x.get('unit') or ''}）",
                                       "value": x["item"]} for x in stock]),
                dcc.Input(id={"type": "em-qty", "res": rid}, type="number", min=0, placeholder="数量",
                          className="em-qty", debounce=False), button]
    return button


# ---- the map ------------------------------------------------------------------------------------------------
def _ring(lon: float, lat: float, radius_m: float, n: int = 96) -> list[list[float]]:
    """A circle of `radius_m` metres around (lon, lat) as a lon/lat ring (local sphere: fine at city scale)."""
    dlat = radius_m / 110_574
    dlon = radius_m / (111_320 * math.cos(math.radians(lat)))
    return [[round(lon + dlon * math.cos(2 * math.pi * k / n), 6), round(lat + dlat * math.sin(2 * math.pi * k / n), 6)]
            for k in range(n + 1)]


def map_payload(case: dict, radius_m: float, event_grid, neighbours: list, around: list, devices: dict | None,
                alarms: dict | None, resources: dict | None) -> dict:
    """The deck.gl spec of the event's surroundings: the grids around faintly, the affected grids (the event's
    brighter) with their population in the tooltip, the radius ring, the devices, open alarms and resources within
    it, the event point; and the bounds of the ring (the browser fits the view, ucc.fitDeck)."""
    lon, lat = case["lon"], case["lat"]
    ring = _ring(lon, lat, radius_m)
    affected = ([event_grid] if event_grid else []) + list(neighbours)
    codes = {a.code for a in affected}
    tol = radius_m / 111_000 / 200  # ~15 m at 3 km: the surroundings drawn lightly
    base = [dict(row, tip=row["name"]) for row in area_polygons([g for g in around if g.code not in codes], tol)]
    rows = []
    for row in area_polygons(affected, 0.00001):
        grid = next(a for a in affected if a.code == row["code"])
        is_event = event_grid is not None and grid.code == event_grid.code
        pop = f"{grid.population:,} 人" if grid.population is not None else "人口未登记"
        row.update(fill=[255, 93, 108, 80] if is_event else [255, 181, 71, 45],
                   line=[255, 120, 130, 255] if is_event else [255, 200, 120, 220],
                   tip=f"<b>{grid.name}</b><br/>{'事发网格' if is_event else '相邻网格'} · 常住人口 {pop}")
        rows.append(row)
    rows.sort(key=lambda row: event_grid is not None and row["code"] == event_grid.code)  # the event's on top
    dots = [{"p": [d["lon"], d["lat"]], "c": DEVICE_COLOURS.get(d["status"], [200, 200, 200]) + [230],
             "tip": f"<b>{d['name']}</b><br/>{d['type_name']} · {d['status_label']} · {d['distance_m']:,.0f} 米"}
            for d in (devices or {}).get("items", [])]
    marks = [{"p": [a["lon"], a["lat"]], "c": list(device_chart.SEVERITY_RGB.get(a["severity"], (255, 255, 255))) + [255],
              "tip": f"<b>{a['rule_name']}</b><br/>{a['device_name']} · {a['severity_label']} · {a['status_label']}"}
             for a in (alarms or {}).get("items", [])]
    res = [{"p": [i["lon"], i["lat"]], "c": RESOURCE_COLOURS.get(i.get("type"), [255, 255, 255]) + [255],
            "tip": f"<b>{i.get('name')}</b><br/>{RESOURCE_TYPES.get(i.get('type'), i.get('type'))} · "
                   f"{(i.get('distance_m') or 0):,.0f} 米"}
           for i in (resources or {}).get("items", []) if i.get("lon") is not None]
    label = case["category"]["name"]
    chars = sorted(set(label))
    layers = [
        pdk.Layer("PolygonLayer", id="em-around", data=base, get_polygon="polygon", filled=True,
                  get_fill_color=[24, 52, 92, 120], stroked=True, get_line_color=[70, 110, 160, 150],
                  line_width_min_pixels=1, pickable=True),
        pdk.Layer("PolygonLayer", id="em-affected", data=rows, get_polygon="polygon", filled=True,
                  get_fill_color="fill", stroked=True, get_line_color="line", line_width_min_pixels=2, pickable=True),
        pdk.Layer("PolygonLayer", id="em-ring", data=[{"polygon": ring, "tip": f"影响半径 {radius_m / 1000:g} 公里"}],
                  get_polygon="polygon", filled=True, get_fill_color=RING_RGB + [18], stroked=True,
                  get_line_color=RING_RGB + [230], line_width_min_pixels=2),
        pdk.Layer("ScatterplotLayer", id="em-devices", data=dots, get_position="p", get_fill_color="c",
                  get_radius=3, filled=True, stroked=True, get_line_color=[5, 12, 26, 200], get_line_width=1,
                  pickable=True),
        pdk.Layer("ScatterplotLayer", id="em-res", data=res, get_position="p", get_fill_color="c", get_radius=6,
                  filled=True, stroked=True, get_line_color=[10, 20, 40, 255], get_line_width=2, pickable=True),
        pdk.Layer("ScatterplotLayer", id="em-alarms", data=marks, get_position="p", get_fill_color="c",
                  get_radius=7, filled=True, stroked=True, get_line_color=[255, 255, 255, 255], get_line_width=2,
                  pickable=True),
        pdk.Layer("ScatterplotLayer", id="em-event", data=[{"p": [lon, lat], "tip": f"<b>{label}</b><br/>事发点"}],
                  get_position="p", get_fill_color=EVENT_RGB + [255], get_radius=11, filled=True, stroked=True,
                  get_line_color=[255, 255, 255, 255], get_line_width=3, pickable=True),
        pdk.Layer("TextLayer", id="em-label", data=[{"position": [lon, lat], "name": label}], get_position="position",
                  get_text="name", get_size=18, get_color=[255, 255, 255, 255], get_pixel_offset=[0, -26],
                  outline_width=2, outline_color=[0, 0, 0, 230], font_settings={"sdf": True}),
    ]
    deck = pdk.Deck(layers=layers, initial_view_state=pdk.ViewState(longitude=lon, latitude=lat, zoom=12),
                    map_style=None, map_provider=None)
    spec = json.loads(deck.to_json())
    for layer in spec["layers"]:
        if layer["@@type"] == "ScatterplotLayer":  # radius and line width in pixels
            layer.update(radiusUnits="pixels", lineWidthUnits="pixels")
        if layer["@@type"] == "TextLayer":
            layer["characterSet"] = chars
            layer["fontFamily"] = CJK_FONTS
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    # the ring's box widened to the west: the ring sits right of the centre, the legend (bottom left) beside it
    west = (max(xs) - min(xs)) * LEGEND_ROOM
    return {"spec": spec, "bounds": [round(min(xs) - west, 6), min(ys), max(xs), max(ys)]}


def legend(event_grid, neighbours: list, radius_m: float, devices: dict | None, alarms: dict | None,
           resources_on: bool, resources: dict | None) -> list:
    """What the map shows, with the affected grids' population."""
    def dot(rgb, cls="em-dot"):
        return html.I(className=cls, style={"background": "rgb({},{},{})".format(*rgb[:3])})

    def pop(a):
        return f"{a.population:,} 人" if a.population is not None else "人口未登记"

    out = [html.Div(className="em-leg-row", children=[
        html.Span([dot(EVENT_RGB), "事发点"]),
        html.Span([html.I(className="em-ring-key"), f"影响半径 {radius_m / 1000:g} 公里"]),
    ])]
    if event_grid is not None:
        total = sum(a.population or 0 for a in [event_grid, *neighbours])
        out.append(html.Div(className="em-leg-grids", id="em-leg-grids", children=[
            html.Div([html.I(className="em-sq is-event"), f"事发网格 {event_grid.name} · {pop(event_grid)}"],
                     className="em-leg-grid"),
            html.Div([html.I(className="em-sq is-near"),
                      f"相邻网格 {len(neighbours)} 个 · 合计 {sum(a.population or 0 for a in neighbours):,} 人"],
                     className="em-leg-grid"),
            html.Div(f"受影响网格共 {1 + len(neighbours)} 个，常住人口 {total:,} 人", className="em-leg-total"),
            html.Div(", ".join(f"{a.name} {a.population:,}" if a.population is not None else a.name
                               for a in neighbours), className="em-leg-names"),
        ]))
    row = []
    if devices is not None:
        n = devices.get("counts", {})
        row += [html.Span([dot(DEVICE_COLOURS["online"]), f"设备 {devices.get('total', 0):,}（在线 {n.get('online', 0):,}"
                           f" · 离线 {n.get('offline', 0):,} · 告警 {n.get('alarm', 0):,}）"])]
    if alarms is not None:
        row.append(html.Span([dot(device_chart.SEVERITY_RGB["critical"], "em-dot is-ring"),
                              f"未解除告警 {alarms.get('total', 0):,}"]))
    if resources_on:
        row.append(html.Span([dot(RESOURCE_COLOURS["team"]), f"应急资源 {(resources or {}).get('total', 0):,}"]))
    else:
        row.append(html.Span("应急资源：资源数据未接入", className="em-muted"))
    out.append(html.Div(row, className="em-leg-row"))
    return out
