"""A device's values over time as a Plotly chart, and the device behind an iot case: one shaping for /devices, /console and /unit."""
from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go
from dash import dcc, html

from dispatch.city_time import local
from dispatch.devices import SEVERITY_LABELS
from dispatch.errors import ServiceError
from sensing.alarms import STATUS_LABELS
from geo.layers import CJK_FONTS

FONT = CJK_FONTS.replace('"', "")
TEXT, MUTED, GRID_LINE, LINE = "#dbe7ff", "#8aa4c8", "#1d3d66", "#4fd1ff"
# An alarm's severity in one palette on every screen: the charts here, the cockpit's map (layouts/cockpit.py) and
# the wall (assets/wall.js ALARM_COLOURS, the same values)
SEVERITY_RGB = {"critical": (255, 45, 85), "major": (255, 138, 36), "minor": (255, 214, 10), "warning": (120, 200, 255)}
SEVERITY_COLORS = {k: "#{:02x}{:02x}{:02x}".format(*rgb) for k, rgb in SEVERITY_RGB.items()}
GRAPH_CONFIG = {"displayModeBar": False, "responsive": True, "locale": "zh-CN"}
OPS = {">": "高于", ">=": "不低于", "<": "低于", "<=": "不高于", "==": "等于", "!=": "不等于"}


def _x(ts: datetime) -> str:
    """A time on the chart's axis: the city's wall clock (Plotly draws naive times as given)."""
    return local(ts).strftime("%Y-%m-%d %H:%M:%S")


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def figure_data(series: dict) -> dict:
    """What the chart draws, without Plotly: x (city time), y, the hour's band when read by the hour, the
    threshold lines and the alarm's start/clear marks. Tests read this; `figure` draws it."""
    pts = series["points"]
    out = {"x": [_x(p["ts"]) for p in pts], "y": [p["value"] for p in pts], "band": None,
           "thresholds": [{"y": t["value"], "text": f"{t['name']}：{OPS.get(t['op'], t['op'])} {_num(t['value'])}"
                                                      f"{series['unit']}",
                           "color": SEVERITY_COLORS.get(t["severity"], MUTED)} for t in series.get("thresholds", [])],
           "marks": [], "range": [_x(series["start"]), _x(series["end"])],
           "title": f"{series['name']}（{series['unit']}）" if series.get("unit") else series["name"],
           "step": series.get("kind") == "bool"}
    if series.get("resolution") == "hour" and pts:
        out["band"] = {"min": [p["min"] for p in pts], "max": [p["max"] for p in pts]}
    marks = series.get("marks") or {}
    started, cleared = marks.get("started_at"), marks.get("cleared_at")
    if started and cleared and (cleared - started) * 25 < series["end"] - series["start"]:
        # too close to label apart: one mark
        out["marks"].append({"x": _x(started), "text": f"告警开始并于 {local(cleared):%H:%M:%S} 解除", "color": "#ffd966"})
    else:
        if started:
            out["marks"].append({"x": _x(started), "text": "告警开始", "color": SEVERITY_COLORS["critical"]})
        if cleared:
            out["marks"].append({"x": _x(cleared), "text": "告警解除", "color": "#3ddc97"})
    return out


def figure(series: dict, height: int | None = None) -> go.Figure:
    """The chart of one key (a series of DeviceRegistry.series_of): the line, by the hour a min–max band, each
    rule threshold on the key as a dashed line with its name, the alarm's start and clear as vertical lines."""
    d = figure_data(series)
    fig = go.Figure(layout=dict(
        template="plotly_dark", paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font=dict(family=FONT, color=TEXT, size=13), margin=dict(l=8, r=12, t=30, b=8), autosize=True,
        showlegend=False, separators=".,", height=height,
        hoverlabel=dict(font=dict(family=FONT, size=13), bgcolor="#0b1c36", bordercolor="#2a5490"),
        title=dict(text=d["title"], x=0.01, xanchor="left", y=0.98, yanchor="top", font=dict(size=14, color=MUTED)),
        xaxis=dict(type="date", range=d["range"], gridcolor=GRID_LINE, linecolor=GRID_LINE, automargin=True,
                   tickformat="%m-%d %H:%M", hoverformat="%Y-%m-%d %H:%M:%S", fixedrange=True),
        yaxis=dict(gridcolor=GRID_LINE, zerolinecolor=GRID_LINE, automargin=True, fixedrange=True,
                   ticksuffix=f" {series['unit']}" if series.get("unit") else ""),
    ))
    unit = series.get("unit") or ""
    if d["band"]:
        fig.add_scatter(x=d["x"], y=d["band"]["max"], mode="lines", line=dict(width=0), hoverinfo="skip")
        fig.add_scatter(x=d["x"], y=d["band"]["min"], mode="lines", line=dict(width=0), fill="tonexty",
                        fillcolor="rgba(79, 209, 255, 0.16)", hoverinfo="skip")
    fig.add_scatter(x=d["x"], y=d["y"], mode="lines+markers" if len(d["x"]) <= 60 else "lines",
                    line=dict(color=LINE, width=2, shape="hv" if d["step"] else "linear"), marker=dict(size=5),
                    name=series["name"],
                    hovertemplate=f"%{{x}}<br>{series['name']} %{{y}} {unit}"
                                  + ("（小时均值）" if d["band"] else "") + "<extra></extra>")
    for t in d["thresholds"]:
        fig.add_hline(y=t["y"], line=dict(color=t["color"], width=1.5, dash="dash"),
                      annotation=dict(text=t["text"], font=dict(color=t["color"], size=12), bgcolor="rgba(6,16,31,0.7)"),
                      annotation_position="top left")
    for m in d["marks"]:
        fig.add_vline(x=m["x"], line=dict(color=m["color"], width=1.5, dash="dot"))
        fig.add_annotation(x=m["x"], y=1, yref="paper", text=m["text"], showarrow=False, xanchor="left",
                           yanchor="top", font=dict(color=m["color"], size=12), bgcolor="rgba(6,16,31,0.7)")
    if not d["x"]:
        fig.add_annotation(text="该时段没有读数", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                           font=dict(size=15, color=MUTED))
        if not d["thresholds"]:
            fig.update_yaxes(visible=False)
    return fig


def values_text(values: dict, dtype_keys: dict) -> list[tuple[str, str]]:
    """(name, value with unit) of a device's last values, in the type's key order (`dtype_keys`: key →
    {name, unit, kind}); keys the type does not know last."""
    out = []
    for key in list(dtype_keys) + sorted(k for k in values if k not in dtype_keys):
        if key not in values:
            continue
        spec = dtype_keys.get(key) or {"name": key, "unit": "", "kind": "string"}
        v = values[key]
        if isinstance(v, bool):
            shown = "是" if v else "否"
        elif isinstance(v, (int, float)):
            shown = f"{_num(v)} {spec['unit']}".strip()
        else:
            shown = str(v)
        out.append((spec["name"], shown))
    return out


def case_devices_view(items: list[dict], prefix: str, error: str | None = None):
    """The case page's section for a case an alarm opened: per alarm its device (id, type, name, a link to
    /devices?device=ID), the alarm, and the chart of the rule's key(s) around it with the threshold. None when
    the case has no alarm (any case not from a device). `prefix`: the page's CSS prefix (cs, un)."""
    if error:
        return html.Section(className=f"{prefix}-card {prefix}-iot dc-iot", children=[
            html.H4("物联设备"), html.Div(error, className="dc-msg")])
    if not items:
        return None
    blocks = []
    for it in items:
        a, d = it["alarm"], it["device"]
        blocks.append(html.Div(className="dc-alarm", **{"data-device": d["id"]}, children=[
            html.Div(className="dc-head", children=[
                html.A(d["id"], href=f"/devices?device={d['id']}", className="dc-link", title="在物联感知页面中查看"),
                html.Span(d["type_name"], className="dc-type"),
                html.Span(d["name"], className="dc-name"),
                html.Span(d["status_label"], className=f"dc-status is-{d['status']}"),
            ]),
            html.Div(className="dc-line", children=[
                html.Span(f"告警 #{a['id']}", className="dc-aid"),
                html.Span(a["rule_name"]),
                html.Span(a["severity_label"], className=f"dc-sev is-{a['severity']}"),
                html.Span(a["status_label"], className=f"dc-ast is-{a['status']}"),
                html.Span(f"开始 {_short(a['started_at'])}" + (f" · 解除 {_short(a['cleared_at'])}" if a["cleared_at"] else ""),
                          className="dc-when"),
                html.Span(f"责任单位 {d['unit']['name']}", className="dc-unit"),
            ]),
            *[dcc.Graph(figure=figure(s), config=GRAPH_CONFIG, className="dc-graph", style={"height": "15rem"})
              for s in it["charts"]],
            None if it["charts"] else html.Div("该设备类型没有可绘制的数值", className="dc-msg"),
        ]))
    return html.Section(id=f"{prefix}-iot", className=f"{prefix}-card {prefix}-card-wide dc-iot", children=[
        html.H4(f"物联设备与告警（{len(items)}）"), *blocks])


def _short(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "—"


def case_devices(services, principal, case: dict, prefix: str):
    """The section for `case` on a case page (console, unit): read through AlarmService.of_case when the case
    came from a device (source iot), else None (no read)."""
    if case.get("source") != "iot" or services.alarms is None or principal is None:
        return None
    try:
        items = services.alarms.of_case(principal, case["id"])
    except ServiceError as exc:
        return case_devices_view([], prefix, exc.message)
    return case_devices_view(items, prefix)
