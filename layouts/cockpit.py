"""The leader cockpit (领导驾驶舱): thematic panels, plan indicators, charts and a city-to-grid drill-down."""
from __future__ import annotations

import json
from datetime import datetime

import dash_deck
import plotly.graph_objects as go
import pydeck as pdk
import shapely
from dash import dcc, html
from flask import current_app

from web.principal import current_principal
from figures import assessment_view
from layouts import device_chart
from layouts.cockpit_foresight import foresight_section
from figures.cockpit import PERIOD_DAYS, THEMES, resolve_area, theme_or_default
from figures.devices_map import OPEN_ALARMS
from figures.period import nice_breaks
from dispatch.city_time import local
from dispatch.devices import DEVICE_STATUSES
from geo.layers import CJK_FONTS, area_polygons, bounds_of, labels
from geo.model import LEVEL_NAMES_ZH
from web.services import services

FONT = CJK_FONTS.replace('"', "")
TEXT, MUTED, GRID_LINE = "#dbe7ff", "#8aa4c8", "#1d3d66"
BLUE, CYAN, GREEN, AMBER, RED, GREY = "#2f7fd8", "#4fd1ff", "#3ddc97", "#ffb547", "#ff5d6c", "#4a6283"
# Choropleth classes, dark blue (few cases) to amber and red (many); zero stays neutral.
CLASS_COLOURS = [[40, 88, 150], [38, 128, 190], [52, 170, 190], [230, 170, 60], [236, 100, 70], [220, 50, 80]]
ZERO_COLOUR = [44, 62, 90]
GRAPH_CONFIG = {"displayModeBar": False, "responsive": True, "locale": "zh-CN"}
STATUS_CLASS = {"met_2025": "ck-ok", "met_2023": "ck-fair", "behind": "ck-bad", "no_value": "ck-none"}
# The live stream refreshes the figures (assets/cockpit.js); this interval is only the safety net.
FALLBACK_REFRESH_MS = 300_000


# ---- page ------------------------------------------------------------------------------------------
def live_config() -> dict:
    """How the page joins the live stream: with the signed-in session (the live bus resolves its
    cookie on connect), so the page carries no token."""
    live = current_app.extensions.get("ucc_live") is not None and current_principal() is not None
    return {"live": live, "token": None}


def layout(area=None, theme=None, view=None, month=None, **_query):
    directory = services().areas
    selected = resolve_area(directory, area)
    if selected is None:
        return html.Div("尚未导入城市网格：请运行 flask --app app seed-demo 或 import-grid", className="ucc-empty")
    theme_key = theme_or_default(theme).key
    live = live_config()
    assess = view == "assessment"
    foresight = view == "foresight"  # the 仿真预测 view (layouts/cockpit_foresight.py)
    months, default_month = assessment_view.month_options(services().cases.clock()), assessment_view.default_month(services().cases.clock())
    month = month if month in {m["value"] for m in months} else default_month
    return html.Div(id="ck-root", className=root_class("assessment" if assess else "foresight" if foresight else "panels"),
                    children=[
        dcc.Store(id="ck-view", data="assessment" if assess else "foresight" if foresight else "panels"),
        dcc.Store(id="ck-as-unit"),  # the unit whose penalty points the 考核 view lists (None: the area's)
        dcc.Store(id="ck-as-pick"),  # {code, t}: a row of the 考核 view's area ranking clicked (assets/cockpit.js)
        dcc.Store(id="ck-area", data=selected.code),
        dcc.Store(id="ck-theme", data=theme_key),
        dcc.Store(id="ck-scale", data=1),
        dcc.Store(id="ck-map-data"),
        dcc.Store(id="ck-panel"),  # the panel's figures, drawn by assets/cockpit.js (callbacks/cockpit.py)
        dcc.Store(id="ck-live-config", data=live),
        # Set by assets/cockpit.js (dash_clientside.set_props) when cases changed: {seq, n}.
        # Not None: a Store writes a None data back on mount, which would fire a refresh.
        dcc.Store(id="ck-live-tick", data=0),
        dcc.Store(id="ck-live-started", data=0),
        dcc.Interval(id="ck-tick", interval=FALLBACK_REFRESH_MS if live["live"] else 60_000),
        html.Div(className="ck-bar", children=[
            html.Nav(className="ck-tabs", role="tablist", children=[
                html.Button(t.label, id={"type": "ck-theme-btn", "key": key}, n_clicks=0, role="tab",
                            className=tab_class(key, "" if assess or foresight else theme_key)) for key, t in THEMES.items()
            ] + [html.Button("考核评价", id="ck-assess-btn", n_clicks=0, role="tab",
                             className="ck-tab ck-tab-assess" + (" ck-tab--on" if assess else "")),
                 html.Button("仿真预测", id="ck-fs-btn", n_clicks=0, role="tab",
                             className="ck-tab ck-tab-fs" + (" ck-tab--on" if foresight else ""))]),
            html.Div(className="ck-bar-right", children=[
                html.Div(id="ck-period", className="ck-period"),
                live_badge(live),
            ]),
        ]),
        html.Div(className="ck-nav", children=[
            html.Nav(id="ck-crumbs", className="ck-crumbs", **{"aria-label": "区域层级"}),
            html.Div(className="ck-child-wrap", children=[
                html.Span("下钻", className="ck-child-label"),
                dcc.Dropdown(id="ck-child", options=[], value=None, placeholder="选择下级区域", clearable=False,
                             searchable=True, className="ck-child"),
            ]),
            html.Div(id="ck-demo-note", className="ck-demo-note"),
        ]),
        assessment_section(months, month),
        html.Div(id="ck-grid", className="ck-grid", children=[
            html.Section(className="ck-card ck-area-map", children=[
                html.H3(id="ck-map-title", className="ck-card-title"),
                html.Div(className="ck-map", children=[
                    dash_deck.DeckGL(id="ck-map", data={}, enableEvents=["click"], tooltip={
                        "html": "<b>{name}</b><br/>近{days}日受理 {received} 件<br/>在办 {open} · 超期 {overdue}",
                        "style": {"backgroundColor": "#0b1c36", "color": TEXT, "fontFamily": FONT,
                                  "fontSize": "0.9rem", "border": "1px solid #2a5490"}},
                        style={"position": "absolute", "inset": "0", "background": "#0b1526"}),
                ]),
                html.Div(id="ck-map-legend", className="ck-legend"),
            ]),
            foresight_section(GRAPH_CONFIG, empty_figure(1.0, "加载中…")),
            html.Section(id="ck-figures", className="ck-figures"),
            _chart_card("ck-trend", f"案件趋势（近{PERIOD_DAYS}日，受理与结案）", "ck-c-trend"),
            _chart_card("ck-pareto", "问题类别帕累托", "ck-c-pareto", title_id="ck-pareto-title"),
            _chart_card("ck-units", "处置单位绩效（按期结案率最低者在前）", "ck-c-units"),
            _chart_card("ck-severity", f"应急事件等级（近{PERIOD_DAYS}日）", "ck-c-severity"),
            _chart_card("ck-ranking", "下级区域受理排名（点击下钻）", "ck-c-ranking", title_id="ck-ranking-title"),
            html.Section(className="ck-card ck-c-indicators", children=[
                vital_section(),
                html.H3(id="ck-indicators-title", className="ck-card-title"),
                html.Div(id="ck-indicators", className="ck-indicators"),
            ]),
            html.Section(className="ck-card ck-c-reminders", children=[
                # the active emergency responses first (callbacks/cockpit.py): leaders are warned of late reports
                html.Nav(id="ck-emg", className="ck-emg", hidden=True, **{"aria-label": "进行中的应急响应"}),
                dcc.Interval(id="ck-emg-tick", interval=30_000),
                html.H3(id="ck-reminders-title", className="ck-card-title"),
                html.Div(id="ck-reminders", className="ck-reminders"),
            ]),
        ]),
    ])


def _chart_card(graph_id: str, title: str, cls: str, title_id: str | None = None) -> html.Section:
    head = html.H3(title, id=title_id, className="ck-card-title") if title_id else html.H3(title, className="ck-card-title")
    return html.Section(className=f"ck-card {cls}", children=[
        head,
        html.Div(className="ck-chart", children=[
            dcc.Graph(id=graph_id, figure=empty_figure(1.0, "加载中…"), config=GRAPH_CONFIG,
                      style={"position": "absolute", "inset": "0"}),
        ]),
    ])


def tab_class(key: str, selected: str) -> str:
    return "ck-tab ck-tab--on" if key == selected else "ck-tab"


def root_class(view: str) -> str:
    """The page's class for a view (panels, assessment, foresight): the CSS shows that view's cards."""
    return {"assessment": "ck is-assess", "foresight": "ck is-foresight"}.get(view, "ck")


def live_badge(live: dict) -> html.Div:
    """The connection state; assets/cockpit.js keeps it current (实时 / 连接中断)."""
    if live["live"]:
        text, cls, title = "○ 连接中…", "ck-live is-connecting", "正在连接实时推送"
    else:
        text, cls, title = "定时刷新", "ck-live is-off", "未接入实时推送，每分钟刷新"
    return html.Div(text, id="ck-live", className=cls, title=title, role="status")


# ---- header widgets ------------------------------------------------------------------------------
def crumbs(items: list[dict]) -> list:
    out = []
    for i, it in enumerate(items):
        last = i == len(items) - 1
        if i:
            out.append(html.Span("›", className="ck-crumb-sep"))
        out.append(html.Button(it["name"], id={"type": "ck-crumb", "code": it["code"]}, n_clicks=0,
                               title=f"{it['level_name']} {it['code']}", disabled=last,
                               className="ck-crumb ck-crumb--here" if last else "ck-crumb"))
    return out


def child_options(children: list[dict]) -> list[dict]:
    return [{"label": c["name"], "value": c["code"]} for c in children]


def child_placeholder(area: dict) -> str:
    if area["level"] == 5:
        return "切换同社区网格"
    return f"选择下辖{LEVEL_NAMES_ZH.get(area['level'] + 1, '区域')}"


def period_text(snap: dict) -> str:
    p = snap["period"]
    return f"{snap['area']['name']} · 统计周期 {p['start']} 至 {p['end']}（近{p['days']}日） · 更新于 {snap['now'][11:16]}"


def _pct(v) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def figure_cards(h: dict) -> list:
    def card(value, label, sub="", tone="", cid=None, sub_id=None):
        attrs = {"id": cid} if cid else {}
        sub_attrs = {"id": sub_id} if sub_id else {}
        return html.Div(className=f"ck-fig {tone}", children=[
            html.Div(value, className="ck-fig-value", **attrs), html.Div(label, className="ck-fig-label"),
            html.Div(sub, className="ck-fig-sub", **sub_attrs)])

    rate_tone = lambda r: "" if r is None else ("ck-good" if r >= 0.95 else "ck-warn" if r >= 0.85 else "ck-alarm")  # noqa: E731
    return [
        card(f"{h['received']:,}", f"近{PERIOD_DAYS}日受理", f"今日 {h['received_today']:,}", cid="ck-fig-received",
             sub_id="ck-fig-today"),
        card(_pct(h["closure_rate"]), "结案率", f"应结 {h['due']:,} · 结案 {h['closed']:,}",
             rate_tone(h["closure_rate"]), "ck-fig-closure"),
        card(_pct(h["on_time_rate"]), "按期结案率", f"按期结案 {h['closed_on_time']:,}", rate_tone(h["on_time_rate"]),
             "ck-fig-ontime"),
        card(f"{h['overdue_open']:,}", "超期未结", "已立案、超过处置时限", "ck-alarm" if h["overdue_open"] else "ck-good",
             "ck-fig-overdue"),
        card(f"{h['supervised_open']:,}", "督办在办", "领导督办未结案", "ck-warn" if h["supervised_open"] else "",
             "ck-fig-supervised"),
        card(f"{h['emergencies_open']:,}", "在办应急事件", "处置中", "ck-alarm" if h["emergencies_open"] else "ck-good",
             "ck-fig-emergency"),
    ]


# ---- charts ----------------------------------------------------------------------------------------
def _base(scale: float, **extra) -> dict:
    s = max(1.0, float(scale or 1))
    layout = dict(
        template="plotly_dark", paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font=dict(family=FONT, color=TEXT, size=round(13 * s)),
        margin=dict(l=round(12 * s), r=round(14 * s), t=round(10 * s), b=round(8 * s)),
        legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom", bgcolor="rgba(0,0,0,0)",
                    font=dict(size=round(12 * s))),
        hoverlabel=dict(font=dict(family=FONT, size=round(13 * s)), bgcolor="#0b1c36", bordercolor="#2a5490"),
        separators=".,", autosize=True,
    )
    layout.update(extra)
    return layout


def _axis(scale: float, **extra) -> dict:
    s = max(1.0, float(scale or 1))
    out = dict(gridcolor=GRID_LINE, zerolinecolor=GRID_LINE, linecolor=GRID_LINE, tickfont=dict(size=round(12 * s)), fixedrange=True,
               automargin=True)
    out.update(extra)
    return out


def _gap(n: int) -> float:
    """Bar gap for n bars: a lone bar stays a bar, not a wall."""
    return min(0.85, max(0.25, 1 - 0.14 * n))


def _count_axis(scale: float, top: float, **extra) -> dict:
    """A counting axis: whole numbers only (no 0.5 ticks when the counts are small)."""
    ticks = {"dtick": 1} if top <= 5 else {}
    return _axis(scale, rangemode="tozero", tickformat=",d", **ticks, **extra)


def empty_figure(scale: float, text: str = "暂无数据") -> go.Figure:
    s = max(1.0, float(scale or 1))
    fig = go.Figure(layout=_base(scale))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=round(15 * s), color=MUTED))
    return fig


def trend_figure(daily: list[dict], scale: float) -> go.Figure:
    if not any(d["received"] or d["closed"] for d in daily):
        return empty_figure(scale, f"近{PERIOD_DAYS}日暂无案件")
    x = [d["day"][5:] for d in daily]
    fig = go.Figure(layout=_base(scale, bargap=0.25))
    fig.add_bar(x=x, y=[d["received"] for d in daily], name="受理", marker_color=BLUE,
                hovertemplate="%{x} 受理 %{y} 件<extra></extra>")
    fig.add_scatter(x=x, y=[d["closed"] for d in daily], name="结案", mode="lines+markers",
                    line=dict(color=GREEN, width=2 * max(1, scale)), marker=dict(size=5 * max(1, scale)),
                    hovertemplate="%{x} 结案 %{y} 件<extra></extra>")
    fig.update_xaxes(**_axis(scale, type="category", tickangle=0, nticks=8))
    fig.update_yaxes(**_count_axis(scale, max(max(d["received"], d["closed"]) for d in daily)))
    return fig


def pareto_figure(pareto: dict, scale: float) -> go.Figure:
    items = [it for it in pareto["items"] if it["code"]]
    if not items:
        return empty_figure(scale, f"近{PERIOD_DAYS}日暂无案件")
    full = [it["name"] for it in items]
    names = [n if len(n) <= 6 else n[:5] + "…" for n in full]
    if len(set(names)) < len(names):  # two long names share a beginning: keep them whole
        names = full
    fig = go.Figure(layout=_base(scale, bargap=_gap(len(items))))
    fig.add_bar(x=names, y=[it["count"] for it in items], name="件数", marker_color=CYAN, customdata=full,
                hovertemplate="%{customdata}：%{y} 件<extra></extra>")
    fig.add_scatter(x=names, y=[round(it["cum_share"] * 100, 1) for it in items], name="累计占比", yaxis="y2",
                    mode="lines+markers", line=dict(color=AMBER, width=2 * max(1, scale)),
                    marker=dict(size=5 * max(1, scale)), hovertemplate="累计 %{y:.1f}%<extra></extra>")
    fig.update_layout(yaxis2=_axis(scale, overlaying="y", side="right", range=[0, 105], showgrid=False,
                                   tickvals=[0, 25, 50, 75, 100], ticktext=["0", "25%", "50%", "75%", "100%"]))
    fig.update_xaxes(**_axis(scale, tickangle=-35, type="category"))
    fig.update_yaxes(selector=dict(overlaying=None), **_count_axis(scale, max(it["count"] for it in items)))
    return fig


def _short_unit(name: str, width: int = 9) -> str:
    """Two short lines for a unit's name: its area ("钟楼区") and the body ("消防救援大队")."""
    for i, ch in enumerate(name[:6]):
        if ch in "区市县" and i >= 1:
            head, body = name[:i + 1], name[i + 1:]
            break
    else:
        head, body = "", name
    if len(body) > width:
        body = body[:width - 1] + "…"
    return f"{head}<br>{body}" if head else body


def units_figure(units: list[dict], scale: float) -> go.Figure:
    if not units:
        return empty_figure(scale, "本期暂无应结案件")
    rows = list(reversed(units))  # worst at the top of a horizontal bar chart
    names = [_short_unit(u["name"]) for u in rows]
    hover = [f"{u['name']}<br>应结 {u['due']} · 结案 {u['closed']} · 按期 {u['closed_on_time']} · "
             f"超期未结 {u['overdue_open']}" for u in rows]
    fig = go.Figure(layout=_base(scale, barmode="group", bargap=_gap(len(rows)), bargroupgap=0.05))
    fig.add_bar(y=names, x=[round((u["closure_rate"] or 0) * 100, 1) for u in rows], orientation="h",
                name="结案率", marker_color=BLUE, customdata=hover,
                hovertemplate="%{customdata}<br>结案率 %{x:.1f}%<extra></extra>")
    fig.add_bar(y=names, x=[round((u["on_time_rate"] or 0) * 100, 1) for u in rows], orientation="h",
                name="按期结案率", marker_color=[RED if (u["on_time_rate"] or 0) < 0.85 else AMBER
                                             if (u["on_time_rate"] or 0) < 0.95 else GREEN for u in rows],
                text=[_pct(u["on_time_rate"]) for u in rows], textposition="outside", cliponaxis=False,
                textfont=dict(size=round(11 * max(1.0, float(scale or 1))), color=TEXT),
                customdata=hover, hovertemplate="%{customdata}<br>按期结案率 %{x:.1f}%<extra></extra>")
    fig.update_xaxes(**_axis(scale, range=[0, 118], tickvals=[0, 25, 50, 75, 100],
                             ticktext=["0", "25%", "50%", "75%", "100%"]))
    fig.update_yaxes(**_axis(scale, type="category", tickfont=dict(size=round(11 * max(1.0, float(scale or 1))))))
    return fig


def severity_figure(rows: list[dict], scale: float) -> go.Figure:
    if not any(r["total"] for r in rows):
        return empty_figure(scale, f"近{PERIOD_DAYS}日无应急事件")
    x = [r["label"].replace("（", "<br>").rstrip("）") for r in rows]
    fig = go.Figure(layout=_base(scale, barmode="stack", bargap=0.35))
    names = [r["label"] for r in rows]
    fig.add_bar(x=x, y=[r["open"] for r in rows], name="处置中", marker_color=RED, customdata=names,
                hovertemplate="%{customdata} 处置中 %{y} 起<extra></extra>")
    fig.add_bar(x=x, y=[r["closed"] for r in rows], name="已办结", marker_color=GREY, customdata=names,
                text=[str(r["total"]) if r["total"] else "" for r in rows], textposition="outside", cliponaxis=False,
                hovertemplate="%{customdata} 已办结 %{y} 起<extra></extra>")
    fig.update_xaxes(**_axis(scale, type="category", tickangle=0))
    fig.update_yaxes(**_count_axis(scale, max(r["total"] for r in rows) * 1.15))
    return fig


def ranking_figure(ranking: dict, scale: float, top: int = 15) -> go.Figure:
    items = ranking["items"][:top]
    if not items:
        return empty_figure(scale, "没有下级区域")
    rows = list(reversed(items))
    fig = go.Figure(layout=_base(scale, bargap=_gap(len(rows)), showlegend=False))
    fig.add_bar(y=[r["name"] for r in rows], x=[r["received"] for r in rows], orientation="h",
                marker_color=[AMBER if r["selected"] else BLUE for r in rows],
                marker_line=dict(color=[CYAN if r["selected"] else BLUE for r in rows], width=1),
                text=[f"{r['received']:,}" for r in rows], textposition="outside", cliponaxis=False,
                textfont=dict(color=TEXT), customdata=[[r["code"], r["open"], r["overdue"]] for r in rows],
                hovertemplate="%{y}<br>受理 %{x} 件 · 在办 %{customdata[1]} · 超期 %{customdata[2]}<extra>点击下钻</extra>")
    top_value = max(r["received"] for r in rows)
    fig.update_xaxes(**_count_axis(scale, top_value, range=[0, max(1, top_value) * 1.12]))
    fig.update_yaxes(**_axis(scale, type="category"))
    return fig


def pareto_title(pareto: dict) -> str:
    items = [it for it in pareto["items"] if it["code"]]
    if not items:
        return "问题类别帕累托"
    return f"问题类别帕累托（前{len(items)}类占{items[-1]['cum_share'] * 100:.0f}%，共{pareto['total']:,}件）"


def ranking_title(ranking: dict, area: dict) -> str:
    level = LEVEL_NAMES_ZH.get(ranking.get("level"), "下级区域")
    if area["level"] == 5:
        return f"同社区{level}受理排名（点击切换）"
    return f"下辖{level}受理排名（近{PERIOD_DAYS}日，点击下钻）"


# ---- the city's vital signs (figures/vital_signs.py): latest values and a 24 h / 7 d chart ------------
VITAL_SPANS = (("24h", "24小时"), ("7d", "7天"))


def vital_section() -> html.Div:
    """The theme's vital-sign indicators (data/catalog/city_indicators.json theme), filled by callbacks/cockpit.py."""
    return html.Div(id="ck-vital", className="ck-vital is-off", children=[
        html.Div(className="ck-vital-head", children=[
            html.H3("城市体征 · 实时", id="ck-vital-title", className="ck-card-title"),
            dcc.Dropdown(id="ck-vital-code", options=[], value=None, clearable=False, searchable=False,
                         className="ck-vital-code"),
            dcc.RadioItems(id="ck-vital-span", options=[{"label": label, "value": key} for key, label in VITAL_SPANS],
                           value="24h", inline=True, className="ck-vital-span"),
        ]),
        html.Div(id="ck-vital-values", className="ck-vital-values"),
        html.Div(className="ck-chart ck-vital-chart", children=[
            dcc.Graph(id="ck-vital-graph", figure=empty_figure(1.0, "加载中…"), config=GRAPH_CONFIG,
                      style={"position": "absolute", "inset": "0"}),
        ]),
    ])


def vital_title(view: dict, theme: dict) -> str:
    return "城市体征 · " + ("全部专题" if theme["key"] == "overview" else theme["label"])


def vital_values(items: list[dict]) -> list:
    """Each indicator's latest value, unit, source and time; stale ones marked, demo ones tagged."""
    out = []
    for i in items:
        if i["value"] is None:
            out.append(html.Div(className="ck-vital-item is-none", children=[
                html.Div(i["name"], className="ck-vital-name"), html.Div("暂无数据", className="ck-ind-sub")]))
            continue
        tags = [html.Span("演示", className="ck-demo-tag", title="演示数据") if i["demo"] else None,
                html.Span("滞后", className="ck-vital-stale", title="超过该指标的更新周期未收到新读数")
                if i["stale"] else None]
        delta = i["delta_text"].replace("较昨日同时 ", "日比 ")
        out.append(html.Div(className="ck-vital-item" + (" is-stale" if i["stale"] else ""), id=f"ck-vital-{i['code']}",
                            title=f"{i['name']}：{i['text']} {i['unit']}（{i['when']}，来源：{i['source_label']}）", children=[
            html.Div(i["name"], className="ck-vital-name"),
            html.Div([html.Span(i["text"], className="ck-vital-value"), html.Span(i["unit"], className="ck-unit")],
                     className="ck-vital-line"),
            html.Div([*tags, " · ".join(x for x in (i["when"], delta) if x)], className="ck-ind-sub"),
        ]))
    return out


def vital_figure(view: dict, scale: float) -> go.Figure:
    series = view.get("series")
    if not series or not series["y"]:
        return empty_figure(scale, "该时段暂无读数")
    s = max(1.0, float(scale or 1))
    unit = series["unit"]
    what = "小时均值" if view["span"] == "7d" else "读数"
    fig = go.Figure(layout=_base(scale, showlegend=False))
    fig.update_layout(margin=dict(t=round(22 * s)))
    charted = next((i for i in view["items"] if i["code"] == view["code"]), None)
    if charted is not None and charted["source_label"]:
        fig.add_annotation(text=f"{series['name']} · 来源：{charted['source_label']}" + ("（演示）" if charted["demo"] else ""),
                           showarrow=False, x=0, y=1, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                           font=dict(size=round(11 * s), color=MUTED))
    fig.add_scatter(x=series["x"], y=series["y"], mode="lines", name=series["name"],
                    line=dict(color=CYAN, width=2 * s, shape="spline", smoothing=0.4),
                    fill="tozeroy", fillcolor="rgba(79, 209, 255, 0.12)",
                    hovertemplate=f"%{{x|%m-%d %H:%M}} {what} %{{y:,.{series['decimals']}f}} {unit}<extra></extra>")
    fig.update_xaxes(**_axis(scale, type="date", tickformat="%H:%M" if view["span"] == "24h" else "%m-%d",
                             nticks=7))
    fig.update_yaxes(**_axis(scale, title=dict(text=unit, font=dict(size=round(11 * s))) if unit else None,
                             rangemode="normal"))
    return fig


# ---- indicators and reminders -------------------------------------------------------------------
def indicators_title(items: list[dict], theme: dict) -> str:
    met = sum(1 for it in items if it["status"] in ("met_2025", "met_2023"))
    scope = "全部" if theme["key"] == "overview" else theme["label"]
    return f"规划主要指标 · {scope}（{len(items)} 项，{met} 项达到2023目标）"


def indicators_table(items: list[dict]) -> html.Div | html.Table:
    if not items:
        return html.Div("尚无指标数据：运行 seed-demo 或 import-indicators 导入", className="ck-empty-note")
    head = html.Thead(html.Tr([html.Th("指标 · 责任单位"), html.Th("当前值"), html.Th("目标 2023/2025"),
                               html.Th("进度（至2025）")]))
    body = []
    for it in items:
        d = it["decimals"]
        p = it["progress"]
        arrow = "↓" if it["direction"] == "down" else ""
        body.append(html.Tr(className=STATUS_CLASS[it["status"]], id=f"ck-ind-{it['code']}", children=[
            html.Td([html.Div(it["name"], className="ck-ind-name"),
                     html.Div(f"{it['responsible_unit']} · {it['code']}", className="ck-ind-sub")]),
            html.Td([html.Span(_num(it["value"], d), className="ck-ind-value"), html.Span(it["unit"], className="ck-unit"),
                     html.Div([html.Span("演示", className="ck-demo-tag", title="演示数据") if it["is_demo"] else None,
                               it["as_of"] or "—"], className="ck-ind-sub", title="统计截止日期")]),
            html.Td([html.Div(f"{_num(it['target_2023'], d)} / {_num(it['target_2025'], d)}{arrow}"),
                     html.Div(it["domain"], className="ck-ind-sub")], className="ck-ind-target"),
            html.Td([html.Div(className="ck-progress", title=it["status_label"], children=[
                html.Div(className="ck-progress-bar", style={"width": f"{(p or 0) * 100:.0f}%"}),
                html.Span("—" if p is None else f"{p * 100:.0f}%", className="ck-progress-text"),
            ]), html.Div(it["status_label"], className="ck-ind-sub ck-ind-status")]),
        ]))
    return html.Table(className="ck-ind-table", children=[head, html.Tbody(body)])


def _num(v, decimals: int) -> str:
    return "—" if v is None else f"{v:,.{max(0, decimals)}f}"


def demo_note(items: list[dict]) -> str:
    n = sum(1 for it in items if it["is_demo"])
    if not n:
        return ""
    return "指标数值为演示数据" if n == len(items) else f"{n} 项指标数值为演示数据"


def reminders_title(items: list[dict]) -> str:
    over = sum(1 for r in items if r["overdue"])
    sup = sum(1 for r in items if r["supervised"])
    return f"办公提醒 · 超期 {over} 件 · 督办 {sup} 件"


def reminders_list(items: list[dict]) -> html.Div | html.Ul:
    if not items:
        return html.Div("当前无超期或督办案件", className="ck-empty-note")
    rows = []
    for r in items:
        tags = []
        if r["supervised"]:
            tags.append(html.Span("督办", className="ck-tag ck-tag-sup"))
        if r["overdue"]:
            tags.append(html.Span(f"超期 {_hours(r['overdue_hours'])}", className="ck-tag ck-tag-late"))
        if r["escalations"]:
            tags.append(html.Span(f"升级×{r['escalations']}", className="ck-tag"))
        rows.append(html.Li(className="ck-rem", children=[
            html.Div(className="ck-rem-head", children=[*tags, html.Span(f"#{r['id']} {r['category']}", className="ck-rem-title")]),
            html.Div(f"{r['place']} · {r['unit']} · {r['state_label']} · 时限 {r['deadline']}", className="ck-rem-sub"),
        ]))
    return html.Ul(rows, className="ck-rem-list")


def _hours(h: float | None) -> str:
    if h is None:
        return ""
    return f"{h:.1f} 小时" if h < 48 else f"{h / 24:.1f} 天"


# ---- map -------------------------------------------------------------------------------------------
# The device layer (figures/devices_map.for_area): the fleet by street, or each device by status, and the open
# alarms by severity; the same colours as the wall's.
DEVICE_COLOURS = {"online": [52, 211, 175], "offline": [150, 160, 178], "alarm": [255, 45, 85],
                  "maintenance": [190, 150, 255]}
ALARM_COLOURS = {k: list(rgb) for k, rgb in device_chart.SEVERITY_RGB.items()}


def device_layers(devices: dict | None) -> list:
    """Scatterplot layers of the frame's devices (not pickable: a click on the map still drills into an area)."""
    if not devices:
        return []
    dots = [{"p": [c[0], c[1]], "r": 2 + 0.4 * c[2] ** 0.5, "c": DEVICE_COLOURS["online"] + [70],
             "l": DEVICE_COLOURS["online"] + [230]} for c in devices.get("clusters", [])]
    dots += [{"p": [p[0], p[1]], "r": 3, "c": DEVICE_COLOURS.get(DEVICE_STATUSES[p[2]], [200, 200, 200]) + [230],
              "l": [5, 12, 26, 180]} for p in devices.get("points", [])]
    marks = [{"p": [a["lon"], a["lat"]], "c": ALARM_COLOURS.get(a["severity"], [255, 255, 255]) + [255]}
             for a in devices.get("alarms", [])]
    common = dict(get_position="p", stroked=True)  # radius and line width in pixels: set on the spec (map_payload)
    return [
        pdk.Layer("ScatterplotLayer", id="ck-devices", data=dots, get_radius="r", get_fill_color="c", filled=True,
                  get_line_color="l", get_line_width=1, **common),
        pdk.Layer("ScatterplotLayer", id="ck-alarms", data=marks, get_radius=6, get_fill_color="c", filled=True,
                  get_line_color=[255, 255, 255, 255], get_line_width=2, **common),
    ]


def map_payload(frame, children: list, highlight, ranking: dict, days: int = PERIOD_DAYS,
                devices: dict | None = None, hotspots: dict | None = None, areas=None) -> dict:
    """The deck.gl spec of the selection (children coloured by cases received, the device layer over them) and
    its bounds; the browser fits the view to its own size (ucc.fitDeck). `hotspots`: the open warnings' hot
    grids and recurring spots (figures.foresight_view.hotspot_marks, names read from `areas`), over the areas."""

    figures = {it["code"]: it for it in ranking.get("items", [])}
    # Few areas, few classes: 7 districts in 6 classes would split hairs (150–151, 152–169 …).
    classes = max(2, min(len(CLASS_COLOURS), len(children) // 2))
    breaks = nice_breaks([figures.get(c.code, {}).get("received", 0) for c in children], classes=classes)
    minx, miny, maxx, maxy = shapely.total_bounds([frame.geometry])
    tol = max(maxx - minx, maxy - miny) / 3000
    rows = area_polygons(children, tol)
    for row in rows:
        f = figures.get(row["code"], {})
        n = f.get("received", 0)
        cls = sum(1 for b in breaks if n >= b) - 1
        row["fill"] = (ZERO_COLOUR if n <= 0 else _class_colour(cls, len(breaks))) + [190]
        row.update(received=n, open=f.get("open", 0), overdue=f.get("overdue", 0), days=days)
    label_rows = labels(children)
    chars = sorted({c for r in label_rows for c in r["name"]})
    size = 15 if len(children) <= 12 else 12
    layers = [
        pdk.Layer("PolygonLayer", id="ck-children", data=rows, get_polygon="polygon", get_fill_color="fill",
                  get_line_color=[210, 230, 255, 200], line_width_min_pixels=1, stroked=True, filled=True,
                  pickable=True, auto_highlight=True, highlight_color=[255, 255, 255, 70]),
        pdk.Layer("PolygonLayer", id="ck-frame", data=area_polygons([frame], tol), get_polygon="polygon",
                  filled=False, stroked=True, get_line_color=[127, 196, 255, 255], line_width_min_pixels=3),
        # the selected grid: a bright outline over its class colour
        pdk.Layer("PolygonLayer", id="ck-selected", data=area_polygons([highlight], tol) if highlight else [],
                  get_polygon="polygon", filled=True, get_fill_color=[255, 255, 255, 40], stroked=True,
                  get_line_color=[255, 255, 255, 255], line_width_min_pixels=4),
        *hotspot_layers(hotspots, areas, tol),
        *device_layers(devices),
        pdk.Layer("TextLayer", id="ck-labels", data=label_rows, get_position="position", get_text="name",
                  get_size=size, get_color=[255, 255, 255, 235], outline_width=2, outline_color=[0, 0, 0, 220],
                  font_settings={"sdf": True}),
    ]
    deck = pdk.Deck(layers=layers, initial_view_state=pdk.ViewState(longitude=(minx + maxx) / 2,
                                                                     latitude=(miny + maxy) / 2, zoom=9),
                    map_style=None, map_provider=None)
    spec = json.loads(deck.to_json())
    for layer in spec["layers"]:
        if layer["id"] in ("ck-devices", "ck-alarms", "ck-hot-spots"):  # pydeck would turn these strings into accessors
            layer.update(radiusUnits="pixels", lineWidthUnits="pixels")
        if layer["@@type"] == "TextLayer":
            layer["characterSet"] = chars  # a list: deck.gl's cached font atlas cannot extend from a string
            layer["fontFamily"] = CJK_FONTS
    legend = [{"from": b, "to": (breaks[i + 1] - 1) if i + 1 < len(breaks) else None,
               "colour": "rgb({},{},{})".format(*_class_colour(i, len(breaks)))} for i, b in enumerate(breaks)]
    return {"spec": spec, "bounds": bounds_of([frame]), "legend": legend}


def _class_colour(i: int, n: int) -> list[int]:
    """Class i of n, spread over the whole palette (the busiest class is always the red one)."""
    if n <= 1:
        return CLASS_COLOURS[-1]
    return CLASS_COLOURS[round(i * (len(CLASS_COLOURS) - 1) / (n - 1))]


def map_legend(legend: list[dict], devices: dict | None = None) -> list:
    items = [html.Span(f"近{PERIOD_DAYS}日受理：", className="ck-legend-title"),
             html.Span([html.I(style={"background": "rgb({},{},{})".format(*ZERO_COLOUR)}), "0"])]
    for it in legend:
        text = f"{it['from']:,}+" if it["to"] is None else (f"{it['from']:,}" if it["to"] <= it["from"]
                                                            else f"{it['from']:,}–{it['to']:,}")
        items.append(html.Span([html.I(style={"background": it["colour"]}), text]))
    if devices and sum(devices["counts"].values()):
        n = devices["counts"]
        dot = lambda colour: html.I(className="ck-legend-dot", style={"background": "rgb({},{},{})".format(*colour)})
        items.append(html.Span("物联设备：" + ("按街道聚合" if devices["clusters"] else ""),
                               className="ck-legend-title ck-legend-devices"))
        items += [html.Span([dot(DEVICE_COLOURS[st]), f"{label} {n.get(st, 0):,}"])
                  for st, label in (("online", "在线"), ("offline", "离线"), ("alarm", "告警"))]
        items.append(html.Span([dot(ALARM_COLOURS["critical"]), f"未解除告警 {len(devices['alarms']):,}"
                                + ("+" if len(devices["alarms"]) >= OPEN_ALARMS else "")]))
    return items


def map_title(area: dict, frame_name: str, level: int) -> str:
    if area["level"] == 5:
        return f"{frame_name} · 网格分布（选中：{area['name']}）"
    return f"{area['name']} · 下辖{LEVEL_NAMES_ZH.get(level, '区域')}（点击地图下钻）"


# ---- the 考核评价 view (figures/assessment_view.py through figures.service) ---------------------------------
POST_LABELS = {"grid_member": "网格员", "duty_officer": "值班员"}
REPORT_FORMATS = (("xlsx", "下载月报（Excel）"), ("pdf", "下载月报（PDF）"))


def assessment_section(months: list[dict], month: str) -> html.Div:
    """The view the 考核评价 tab shows in place of the panels: rankings, trend, posts and penalty points."""
    return html.Div(id="ck-assess", className="ck-assess", children=[
        html.Div(className="ck-as-head", children=[
            html.Div(className="ck-as-month-wrap", children=[
                html.Label("考核月份", htmlFor="ck-as-month", className="ck-child-label"),
                dcc.Dropdown(id="ck-as-month", options=months, value=month, clearable=False, searchable=False,
                             className="ck-as-month"),
            ]),
            html.Div(id="ck-as-summary", className="ck-as-summary"),
            html.Div(id="ck-as-report", className="ck-as-report", children=report_links(month)),
        ]),
        html.Section(className="ck-card ck-as-areas", children=[
            html.H3(id="ck-as-areas-title", className="ck-card-title", children="区域评价"),
            dcc.Store(id="ck-as-areas-data"),
            html.Div(id="ck-as-areas-body", className="ck-as-scroll ck-as-painted"),
        ]),
        html.Section(className="ck-card ck-as-units", children=[
            html.H3(id="ck-as-units-title", className="ck-card-title", children="部门评价"),
            dcc.Store(id="ck-as-units-data"),
            html.Div(id="ck-as-units-body", className="ck-as-scroll ck-as-painted"),
        ]),
        html.Section(className="ck-card ck-as-trend", children=[
            html.H3(id="ck-as-trend-title", className="ck-card-title", children="综合指标值趋势（近12个月）"),
            html.Div(className="ck-chart", children=[
                dcc.Graph(id="ck-as-trend-graph", figure=empty_figure(1.0, "加载中…"), config=GRAPH_CONFIG,
                          style={"position": "absolute", "inset": "0"}),
            ]),
        ]),
        html.Section(className="ck-card ck-as-posts", children=[
            html.Div(className="ck-as-card-head", children=[
                html.H3(id="ck-as-posts-title", className="ck-card-title", children="岗位评价"),
                dcc.RadioItems(id="ck-as-post", value="grid_member", className="ck-as-switch",
                               inputClassName="ck-as-switch-input", labelClassName="ck-as-switch-label",
                               options=[{"label": v, "value": k} for k, v in POST_LABELS.items()]),
            ]),
            dcc.Store(id="ck-as-posts-data"),
            html.Div(id="ck-as-posts-body", className="ck-as-scroll ck-as-painted"),
        ]),
        html.Section(className="ck-card ck-as-pen", children=[
            html.Div(className="ck-as-card-head", children=[
                html.H3(id="ck-as-pen-title", className="ck-card-title", children="扣分案件"),
                html.Button("返回区域", id="ck-as-pen-area", n_clicks=0, className="ck-as-mini", hidden=True),
            ]),
            dcc.Store(id="ck-as-pen-data"),
            html.Div(id="ck-as-pen-body", className="ck-as-scroll ck-as-painted"),
        ]),
    ])


def report_links(month: str) -> list:
    """The monthly report's downloads (GET /api/v1/assessment/report, the signed-in session's)."""
    return [html.A(label, href=f"/api/v1/assessment/report?month={month}&format={fmt}", className="ck-as-dl",
                   id=f"ck-as-dl-{fmt}", download="", target="_blank", rel="noopener") for fmt, label in REPORT_FORMATS]


def month_label(month: str, running: bool) -> str:
    y, m = month.split("-")
    return f"{int(y)}年{int(m)}月" + ("（截至今日）" if running else "")


def score_text(v) -> str:
    return "—" if v is None else f"{v:.1f}"


def change_text(change, previous_rank) -> tuple[str, str, str]:
    """(text, class, title) of a change of rank: ↑2 moved up two places, ↓1 down one, — unchanged or unknown."""
    if change is None:
        return "—", "ck-as-same", "上月未排名" if previous_rank is None else "本月未排名"
    if change > 0:
        return f"↑{change}", "ck-as-up", f"上月第 {previous_rank} 名"
    if change < 0:
        return f"↓{-change}", "ck-as-down", f"上月第 {previous_rank} 名"
    return "—", "ck-as-same", f"与上月持平（第 {previous_rank} 名）"


def _grade(grade) -> html.Span:
    return html.Span(grade or "—", className=f"ck-as-grade ck-as-grade-{grade or 'none'}")


# The tables are sent as plain specs and drawn by assets/cockpit.js (paintTable): as Dash components their
# few hundred cells cost the renderer seconds on this page (every component's selector runs per action).
# A spec: {"id", "head": [th, ...], "rows": [{"pick": code or None, "cls", "title", "cells": [cell, ...]}],
# "empty": text}; a cell: [text, class, title, href] (the last two optional).
def _cell(text, cls: str = "", title: str | None = None, href: str | None = None) -> list:
    return [text, cls, title, href]


def _grade_cell(grade) -> list:
    return _cell(grade or "—", f"ck-as-g ck-as-grade-{grade or 'none'}")


def _change_cell(item) -> list:
    text, cls, title = change_text(item.get("rank_change"), item.get("previous_rank"))
    return _cell(text, f"ck-as-change {cls}", title)


def _rank_cell(item) -> list:
    return _cell("—" if item["rank"] is None else str(item["rank"]), "ck-as-rank")


def _table(table_id: str, head: list[str], rows: list[dict], empty: str) -> dict:
    return {"id": table_id, "box": table_id.removesuffix("-table") + "-body", "head": head, "rows": rows, "empty": empty}


def _gap_row(n: int, width: int, what: str) -> dict:
    return {"pick": None, "cls": "ck-as-gap", "title": None, "cells": [_cell(f"… 其余 {n:,} 个{what}从略 …", "ck-as-gap-cell")]
            + [_cell("") for _ in range(width - 1)]}


def summary(board: dict) -> list:
    """The selected area's own line: score, grade, rank among its level, change, key rates."""
    own, area = board["own"], board["area"]
    label = month_label(board["month"], board["period"]["running"])
    if own is None:
        return [html.Span(f"{area['name']} · {label}", className="ck-as-sum-name")]
    text, cls, title = change_text(own.get("rank_change"), own.get("previous_rank"))
    if board["own_of"] <= 1:  # the city: nothing to rank it against
        rank, text = "", ""
    else:
        rank = "未排名" if own["rank"] is None else f"第 {own['rank']} / {board['own_of']} 名"
    return [
        html.Span(f"{area['name']} · {label}", className="ck-as-sum-name"),
        html.Span(["综合指标值 ", html.B(score_text(own["score"]), id="ck-as-own-score", className="ck-as-sum-score")]),
        _grade(own["grade"]),
        html.Span(rank, className="ck-as-sum-rank", id="ck-as-own-rank") if rank else None,
        html.Span(text, className=f"ck-as-change {cls}", title=title) if text else None,
        html.Span(f"结案率 {_pct(own['closure_rate'])} · 按期结案率 {_pct(own['on_time_rate'])} · "
                  f"立案 {own['accepted']:,} · 扣分 {own['penalty_points']:g}", className="ck-as-sum-sub"),
    ]


def areas_title(board: dict) -> str:
    level = LEVEL_NAMES_ZH.get(board["level"], "区域")
    tail = "（点击下钻）" if board["area"]["level"] < 4 else ""
    return f"区域评价 · {level}排名（全市 {board['children_of']} 个{level}参评）{tail}"


def areas_table(board: dict) -> dict:
    here = board["area"]["code"]
    rows = [{"pick": i["code"], "cls": "is-here" if i["code"] == here else "", "title": f"{i['name']}：点击查看下级",
             "cells": [_rank_cell(i), _cell(i["name"], "ck-as-name"), _cell(score_text(i["score"]), "ck-as-score"),
                       _grade_cell(i["grade"]), _change_cell(i), _cell(_pct(i["on_time_rate"])),
                       _cell(_pct(i["closure_rate"])), _cell(f"{i['accepted']:,}")]} for i in board["children"]]
    return _table("ck-as-areas-table", ["排名", "区域", "综合指标值", "等级", "较上月", "按期结案率", "结案率", "立案"], rows,
                  "没有下级区域")


def units_title(board: dict) -> str:
    shown, total = len(board["units"]), board["units_total"]
    more = f"，列出前后各 {shown // 2} 个" if total > shown else ""
    return f"部门评价 · 辖区处置单位 {total:,} 个{more}（全市 {board['units_of']:,} 个参评；点击看扣分）"


def units_table(board: dict, selected: str | None) -> dict:
    items = board["units"]
    rows = [{"pick": u["code"], "cls": "is-here" if u["code"] == selected else "", "title": f"{u['name']}：点击查看扣分案件",
             "cells": [_rank_cell(u), _cell(u["name"], "ck-as-name"), _cell(score_text(u["score"]), "ck-as-score"),
                       _grade_cell(u["grade"]), _change_cell(u), _cell(f"{u['due_handling']:,}"),
                       _cell(_pct(u["on_time_handling_rate"])), _cell(f"{u['penalty_points']:g}")]} for u in items]
    if board["units_total"] > len(items) and len(items) >= 2:
        rows.insert(len(items) // 2, _gap_row(board["units_total"] - len(items), 8, "单位"))
    return _table("ck-as-units-table", ["排名", "单位", "综合指标值", "等级", "较上月", "应处置", "按时处置率", "扣分"], rows,
                  "本月辖区内没有处置单位参评")


POST_RATE = {"grid_member": ("on_time_check_rate", "按时核查率", "reports", "上报"),
             "duty_officer": ("on_time_accept_rate", "按时受理率", "intake_acts", "受理")}


def posts_title(posts: dict, kind: str) -> str:
    return f"岗位评价 · {POST_LABELS[kind]}（全市 {posts['of'][kind]:,} 人参评）"


def posts_table(posts: dict, kind: str, area_names: dict) -> dict:
    rate, rate_label, count, count_label = POST_RATE[kind]
    items = posts[kind]
    rows = [{"pick": None, "cls": "", "title": None, "cells": [
        _rank_cell(p), _cell(p["name"], "ck-as-name", f"{p['name']} · {area_names.get(p['area'], p['area'] or '—')}"),
        _cell(score_text(p["score"]), "ck-as-score"), _grade_cell(p["grade"]), _change_cell(p),
        _cell(f"{p.get(count) or 0:,}"), _cell(_pct(p.get(rate)))]} for p in items]
    if posts["total"][kind] > len(items) and len(items) >= 2:
        rows.insert(len(items) // 2, _gap_row(posts["total"][kind] - len(items), 7, "人"))
    return _table("ck-as-posts-table", ["排名", "姓名", "综合指标值", "等级", "较上月", count_label, rate_label], rows,
                  f"本月辖区内没有{POST_LABELS[kind]}参评")


def penalties_title(rows: list[dict], whose: str) -> str:
    points = sum(r["points"] for r in rows)
    return f"扣分案件 · {whose}（最近 {len(rows)} 条，共 {points:g} 分）"


def penalties_table(rows: list[dict], case_href) -> dict:
    """The penalty rows, each case linking to where the reader opens a case (case_href(id))."""
    out = [{"pick": None, "cls": "", "title": None, "cells": [
        _cell(_when(r["at"]), "ck-as-dim"),
        _cell(f"#{r['case_id']}", "ck-as-case", f"打开案件 #{r['case_id']}（{r['grid_name'] or ''}）", case_href(r["case_id"])),
        _cell(r["unit_name"] or "—", "ck-as-name"), _cell(f"−{r['points']:g}", "ck-as-minus"),
        _cell(r["reason"] or r["rule"], "ck-as-name ck-as-dim ck-as-reason", r["reason"] or r["rule"])]} for r in rows]
    return _table("ck-as-pen-table", ["时间", "案件", "单位", "扣分", "原因"], out, "本月没有扣分")


def _when(iso: str) -> str:
    return local(datetime.fromisoformat(iso)).strftime("%m-%d %H:%M")


def trend_title(area_name: str) -> str:
    return f"综合指标值趋势 · {area_name}（近12个月）"


def score_trend_figure(points: list[dict], scale: float) -> go.Figure:
    if not any(p["score"] is not None for p in points):
        return empty_figure(scale, "近12个月暂无考核数据")
    x = [f"{int(p['month'][:4]) % 100:02d}年{int(p['month'][5:])}月" for p in points]
    y = [None if p["score"] is None else round(p["score"], 1) for p in points]
    s = max(1.0, float(scale or 1))
    fig = go.Figure(layout=_base(scale, showlegend=False))
    fig.add_scatter(x=x, y=y, mode="lines+markers+text", connectgaps=False, line=dict(color=CYAN, width=2 * s),
                    marker=dict(size=7 * s, color=[GREEN if (v or 0) >= 90 else BLUE if (v or 0) >= 75 else AMBER
                                                   if (v or 0) >= 60 else RED for v in y]),
                    text=[("" if v is None else f"{v:.1f}") for v in y], textposition="top center",
                    textfont=dict(size=round(11 * s), color=TEXT),
                    customdata=[p["grade"] or "—" for p in points],
                    hovertemplate="%{x}：%{y:.1f} 分（%{customdata}级）<extra></extra>")
    fig.update_traces(cliponaxis=False)
    fig.update_xaxes(**_axis(scale, type="category", tickangle=0, tickmode="array", tickvals=x,
                             ticktext=[t if (len(x) - 1 - i) % 2 == 0 else "" for i, t in enumerate(x)],
                             range=[-0.6, len(x) - 0.4]))
    fig.update_yaxes(**_axis(scale, range=[0, 108], tickvals=[0, 40, 60, 75, 90, 100]))
    return fig


# ---- the 仿真预测 view: the forecast chart, the map's hot-spot layer (layouts/cockpit_foresight.py) --------------
HOT_GRID = [255, 120, 60]
SPOT = [255, 214, 10]


def hotspot_layers(marks: dict | None, areas, tol: float) -> list:
    """The open hot grids outlined and tinted, the recurring spots as rings (figures.foresight_view.hotspot_marks)."""
    if not marks or not (marks.get("grids") or marks.get("spots")):
        return []
    recs = [r for r in (areas.get(c) for c in marks["grids"]) if r is not None]
    return [
        pdk.Layer("PolygonLayer", id="ck-hot-grids", data=area_polygons(recs, tol) if recs else [],
                  get_polygon="polygon", filled=True, get_fill_color=HOT_GRID + [110], stroked=True,
                  get_line_color=HOT_GRID + [255], line_width_min_pixels=2),
        pdk.Layer("ScatterplotLayer", id="ck-hot-spots", data=[{"p": [s["lon"], s["lat"]]} for s in marks["spots"]],
                  get_position="p", get_radius=7, filled=True, get_fill_color=SPOT + [90], stroked=True,
                  get_line_color=SPOT + [255], get_line_width=2),
    ]


def hotspot_legend(marks: dict | None) -> list:
    if not marks or not (marks.get("grids") or marks.get("spots")):
        return []
    rgb = "rgb({},{},{})".format
    return [html.Span("预警：", className="ck-legend-title ck-legend-devices"),
            html.Span([html.I(style={"background": rgb(*HOT_GRID)}), f"热点网格 {len(marks['grids'])}"]),
            html.Span([html.I(className="ck-legend-dot", style={"background": rgb(*SPOT)}),
                       f"高发点位 {len(marks['spots'])}"])]


def forecast_figure(s: dict | None, scale: float, empty: str = "暂无预测") -> go.Figure:
    """One district: the actual days as bars, the forecast's expected line and its lower–upper band."""
    if not s or not s.get("dates"):
        return empty_figure(scale, empty)
    k = max(1.0, float(scale or 1))
    fig = go.Figure(layout=_base(scale, showlegend=True, bargap=0.3))
    ax = [d[5:] for d in s.get("actual_dates", [])]
    fx = [d[5:] for d in s["dates"]]
    if ax:
        fig.add_bar(x=ax, y=s["actual"], name="实际", marker_color=BLUE,
                    hovertemplate="%{x} 实际 %{y} 件<extra></extra>")
    upper = [v if v is not None else None for v in s["upper"]]
    lower = [v if v is not None else None for v in s["lower"]]
    fig.add_scatter(x=fx, y=upper, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
    fig.add_scatter(x=fx, y=lower, mode="lines", line=dict(width=0), fill="tonexty",
                    fillcolor="rgba(79, 209, 255, 0.22)", name="预测区间", customdata=upper,
                    hovertemplate="%{x} 区间 %{y:.0f}–%{customdata:.0f} 件<extra></extra>")
    fig.add_scatter(x=fx, y=s["expected"], mode="lines+markers", name="预测值", line=dict(color=CYAN, width=2 * k),
                    marker=dict(size=4 * k), hovertemplate="%{x} 预计 %{y:.1f} 件<extra></extra>")
    if ax:  # where the forecast begins
        fig.add_vline(x=len(ax) - 0.5, line=dict(color=AMBER, width=1, dash="dot"))
    fig.update_xaxes(**_axis(scale, type="category", tickangle=0, nticks=10, categoryorder="array",
                             categoryarray=ax + fx))
    top = max([v for v in (s.get("actual") or []) + upper if v is not None] or [1])
    fig.update_yaxes(**_axis(scale, rangemode="tozero", tickformat=",d", range=[0, top * 1.12]))
    return fig
