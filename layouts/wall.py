"""The wall display (/wall): the city map in the centre, key figures, trend, ranking, live ticker and rotating panels."""
from __future__ import annotations

import json

import dash_deck
import orjson
import pydeck as pdk
from dash import dcc, html
from flask import current_app, g

from dispatch.indicators import PANELS as VITAL_PANELS
from web.principal import current_principal
from figures.wall import KINDS, SEVERITY_LABELS, grid_geometry, per_hierarchy_version, snapshot
from geo.layers import area_polygons, bounds_of, labels
from geo.model import DISTRICT, STREET
from web.services import services

KIND_LABELS = {"component": "部件", "event": "事件", "grid": "网格事件", "emergency": "应急事件"}
# The rotating panels, in kiosk order: two from the case figures, four from the city's vital-sign indicator feed.
PANELS = (("city", "城市管理"), ("emergency", "应急事件"), ("safety", "公共安全"), ("traffic", "交通出行"),
          ("utilities", "公用事业"), ("economy", "民生经济"))
MAP_MODES = (("open", "在办案件 · 网格分布"), ("overdue", "超期案件 · 网格分布"), ("heat", "近7日案件热度 · 六边形聚合"),
             ("devices", "物联感知 · 设备状态与告警"))
ROTATE_SECONDS = 15
REFRESH_MS = 60_000          # the safety net under the live stream
REFRESH_NO_LIVE_MS = 15_000  # no token, no live stream: refresh more often
HEAT_REFRESH_MS = 300_000
FIGURES = (("received", "今日受理"), ("accepted", "今日立案"), ("closed", "今日结案"),
           ("open", "在办案件"), ("overdue", "超期未结"), ("emergencies_open", "在办应急"))

# ---- deck.gl templates (pydeck); the page fills in the data ----------------------------------------
def _literal(spec: dict, layer_id: str, **props) -> None:
    """pydeck turns plain strings into "@@=" accessors; these props must stay literal."""
    for layer in spec["layers"]:
        if layer["id"] == layer_id:
            layer.update(props)


def _deck_json(layers: list) -> dict:
    deck = pdk.Deck(layers=layers, map_style=None, map_provider=None,
                    initial_view_state=pdk.ViewState(longitude=119.7, latitude=31.6, zoom=8.5),
                    views=[pdk.View("MapView", controller=False)])
    return json.loads(deck.to_json())


def _outline(rows: list[dict]) -> list[list]:
    """Polygon rings as one flat list per ring ([x0, y0, x1, y1, ...]); the page makes line segments of them."""
    return [[round(float(v), 5) for xy in ring for v in xy] for row in rows for ring in row["polygon"]]


def base_template(records) -> dict:
    """The base deck: district tints, the grids (coloured by the page), the hexagon view and the
    street and district boundaries. Boundaries are LineLayers and the district names HTML
    (wall-area-labels): on software WebGL each layer class costs a shader compiled at first draw,
    and PathLayer's and TextLayer's (with its font atlas) are the slowest to start of all."""
    districts = [r for r in records if r.level == DISTRICT]
    streets = [r for r in records if r.level == STREET]
    district_rows = area_polygons(districts, 0.0005)
    for row in district_rows:
        row["fill"] = row["fill"][:3] + [46]
    line = dict(get_source_position="s", get_target_position="t", get_width=1)
    layers = [
        pdk.Layer("PolygonLayer", id="district-fill", data=district_rows, get_polygon="polygon", get_fill_color="fill",
                  filled=True, stroked=False),
        pdk.Layer("PolygonLayer", id="grids", data=[], get_polygon="p", get_fill_color="f", filled=True, stroked=False),
        pdk.Layer("HexagonLayer", id="heat", data=[], radius=1400, coverage=0.9, extruded=False, opacity=0.85,
                  upper_percentile=100, visible=False,
                  color_range=[[26, 61, 110], [31, 111, 166], [42, 163, 184], [127, 209, 160], [242, 209, 95],
                               [245, 124, 58]]),
        pdk.Layer("LineLayer", id="streets", data=[], get_color=[170, 200, 245, 70], width_min_pixels=1, **line),
        pdk.Layer("LineLayer", id="district-lines", data=[], get_color=[215, 232, 255, 230], width_min_pixels=2, **line),
    ]
    spec = _deck_json(layers)
    _literal(spec, "heat", getPosition="@@=-")
    spec["glOptions"] = {"preserveDrawingBuffer": True}  # lets the page (and tests) read what was drawn
    # What the page turns into layer data and labels (assets/wall.js baseSpec, areaLabels).
    spec["outlines"] = {"streets": _outline(area_polygons(streets, 0.0005)), "district-lines": _outline(district_rows)}
    spec["labels"] = labels(districts)
    return spec


def map_base(app) -> tuple[str, dict, bytes]:
    """The wall map's static half, made once per hierarchy version (an import changes it):
    (version, base template, JSON bytes of {"v", "base", "geo"}). The page fetches the bytes from
    /wall/base.json (layouts/wall_base.py) while its scripts still load, instead of receiving ~300 KB of
    boundaries inside every layout; the browser keeps them (ETag = version)."""

    def build(version):
        base = base_template(app.areas.records(max_level=STREET))
        return base, orjson.dumps({"v": version, "base": base, "geo": grid_geometry(app)})

    version, (base, body) = per_hierarchy_version(app, "map_base", build)
    return version, base, body


def overlay_template() -> dict:
    """Live points only (one layer class: one shader program); emergency labels are HTML (wall-em-labels)."""
    layers = [
        # the device layer under the cases: the fleet by street and the offline devices (their map view only)
        pdk.Layer("ScatterplotLayer", id="dev-clusters", data=[], get_position="p", get_fill_color="c", get_radius="r",
                  filled=True, stroked=True, get_line_color=[52, 211, 175, 230], get_line_width=1),
        pdk.Layer("ScatterplotLayer", id="dev-offline", data=[], get_position="p", get_fill_color="c", get_radius="r",
                  filled=True, stroked=False),
        pdk.Layer("ScatterplotLayer", id="today", data=[], get_position="p", get_fill_color="c", get_radius="r",
                  filled=True, stroked=False),
        # the open warnings' hot grids (orange) and recurring spots (yellow): rings under the alarms
        pdk.Layer("ScatterplotLayer", id="warn-ring", data=[], get_position="p", get_line_color="c",
                  get_radius="r", get_line_width="w", filled=False, stroked=True),
        # the open alarms above the cases, below the emergencies
        # (a ring round a dark-edged dot: told apart from an emergency's white-edged mark and filled halo)
        pdk.Layer("ScatterplotLayer", id="alarm-halo", data=[], get_position="p", get_line_color="c",
                  get_radius="r", get_line_width="w", filled=False, stroked=True),
        pdk.Layer("ScatterplotLayer", id="alarm", data=[], get_position="p", get_fill_color="c", get_radius="r",
                  filled=True, stroked=True, get_line_color=[5, 12, 26, 255], get_line_width=2),
        pdk.Layer("ScatterplotLayer", id="emergency-halo", data=[], get_position="p", get_fill_color="c",
                  get_radius="r", filled=True, stroked=False),
        pdk.Layer("ScatterplotLayer", id="emergency", data=[], get_position="p", get_radius="r", filled=True,
                  stroked=True, get_fill_color=[255, 59, 48, 255], get_line_color=[255, 255, 255, 255],
                  get_line_width=3),
        pdk.Layer("ScatterplotLayer", id="pulse", data=[], get_position="p", get_line_color="c", get_radius="r",
                  get_line_width="w", filled=False, stroked=True),
        pdk.Layer("ScatterplotLayer", id="fresh", data=[], get_position="p", get_fill_color="c", get_radius="r",
                  filled=True, stroked=True, get_line_color=[255, 255, 255, 255], get_line_width=2),
    ]
    spec = _deck_json(layers)
    for layer in spec["layers"]:
        layer.update(radiusUnits="pixels", lineWidthUnits="pixels")
    return spec


def _empty(spec: dict) -> dict:
    """The deck with no layers yet: the page fills in the template's layers at once (no copy sent twice)."""
    return {k: v for k, v in spec.items() if k != "layers"} | {"layers": []}


# ---- the page ----------------------------------------------------------------------------------------
def _vital_panels() -> list[tuple[str, str]]:
    """The theme panels the city's vital-sign feed fills (figures/vital_signs.py, data/catalog/city_indicators.json):
    (key, title). Their values come with the snapshot (wall-agg "vital_signs") and assets/wall.js paints them; the
    演示数据 badge shows only while a value shown comes from the demo feeder."""
    return [(key, title) for key, title in PANELS if key in VITAL_PANELS]


def _figure(key: str, label: str, cls: str = "") -> html.Div:
    return html.Div(className=f"wall-fig {cls}".strip(), children=[
        html.Div("—", id=f"wall-fig-{key}", className="wall-fig-value"),
        html.Div(label, className="wall-fig-label"),
    ])


def _kv(id_: str, label: str, unit: str = "") -> html.Div:
    return html.Div(className="wall-kv", children=[
        html.Div(label, className="wall-kv-label"),
        html.Div([html.Span("—", id=id_, className="wall-kv-value"), html.Span(unit, className="wall-kv-unit")]),
    ])


def _panel(key: str, title: str, children) -> html.Section:
    head = [html.H3(title)]
    return html.Section(id=f"wall-panel-{key}", className="wall-theme" + (" is-active" if key == "city" else ""),
                        children=[html.Div(head, className="wall-theme-head"), *children])


def _theme_panels() -> list:
    vital = _vital_panels()
    city = _panel("city", "城市管理 · 本月", [
        html.Div(className="wall-kv-grid", children=[
            _kv("wall-city-received", "本月受理", "件"), _kv("wall-city-accepted", "本月立案", "件"),
            _kv("wall-city-closure", "结案率", "%"), _kv("wall-city-ontime", "按期结案率", "%"),
            _kv("wall-city-rework", "返工率", "%"), _kv("wall-city-hours", "平均处置时长", "小时"),
        ]),
        html.Div("今日高发问题", className="wall-subtitle"),
        html.Div(id="wall-city-top", className="wall-bars"),
    ])
    emergency = _panel("emergency", "应急事件", [
        html.Div(id="wall-em-severity", className="wall-sev-row"),
        html.Div(id="wall-em-list", className="wall-em-list"),
    ])
    panels = [city, emergency]
    for key, title in vital:
        panels.append(html.Section(
            id=f"wall-panel-{key}", className="wall-theme", children=[
                html.Div([html.H3(title), html.Span(id=f"wall-vital-badge-{key}", className="wall-demo-badge is-off"),
                          html.Span(id=f"wall-vital-when-{key}", className="wall-vital-when")],
                         className="wall-theme-head"),
                html.Div(html.Div("正在读取城市体征数据…", className="wall-empty-note"), id=f"wall-vital-{key}",
                         className="wall-vital-list"),
            ]))
    return panels


def layout(token: str | None = None, panel: str | None = None, kiosk: str | None = None,
           rotate: str | None = None, mode: str | None = None, **_query):
    """/wall?token=T (live stream), &panel=K and &mode=M pin a panel or map view, &kiosk=0 stops
    the rotation, &rotate=S sets its period in seconds."""
    app = services()
    records = app.areas.records(max_level=STREET)
    if not records:
        return html.Div("尚未导入城市网格：请运行 flask --app app seed-demo 或 import-grid", className="ucc-empty")
    # Signed in by now (auth/ guards the page): with a person's session or the display's wall token.
    principal = current_principal()
    token_error = g.get("wall_token_error")
    live = principal is not None and current_app.extensions.get("ucc_live") is not None
    city = next(r for r in records if r.level == 1)
    base_version, base, _ = map_base(app)
    try:
        seconds = max(5, min(600, int(rotate))) if rotate else ROTATE_SECONDS
    except ValueError:
        seconds = ROTATE_SECONDS
    config = {
        "token": token if principal is not None and principal.kind == "token" else None, "live": live, "token_error": token_error,
        "area": principal.area_code if principal else None,
        "city": city.name, "bounds": bounds_of([r for r in records if r.level == DISTRICT] or records),
        "kiosk": kiosk not in ("0", "false", "off"), "pinned": panel if panel in dict(PANELS) else None,
        "pinned_mode": mode if mode in dict(MAP_MODES) else None, "rotate_s": seconds, "panels": [k for k, _ in PANELS], "panel_names": dict(PANELS),
        "modes": [k for k, _ in MAP_MODES], "mode_names": dict(MAP_MODES),
        "kinds": list(KINDS), "kind_labels": KIND_LABELS, "severity_labels": {str(k): v for k, v in SEVERITY_LABELS.items()},
        "base_v": base_version, "overlay": overlay_template(),
    }
    snap = snapshot(app)
    refresh_ms = REFRESH_MS if live else REFRESH_NO_LIVE_MS
    title = f"{city.name}城市运行管理平台"
    return html.Div(id="wall-root", className="wall-root", children=[
        dcc.Store(id="wall-config", data=config),
        dcc.Store(id="wall-agg", data=snap),
        dcc.Store(id="wall-heat", data=0),  # loaded when the hexagon view first shows (callbacks/wall.py)
        # Not None: dcc.Store(memory) writes a None data back on mount, which would fire its callbacks.
        dcc.Store(id="wall-live", data=0),
        dcc.Store(id="wall-anim", data=0),
        dcc.Store(id="wall-viewport", data=0),
        dcc.Store(id="wall-heat-seen", data=0),
        dcc.Store(id="wall-mode", data=config["pinned_mode"] or "open"),
        dcc.Store(id="wall-resync", data=0),
        dcc.Store(id="wall-started", data=0),
        dcc.Interval(id="wall-refresh", interval=refresh_ms),
        dcc.Interval(id="wall-heat-refresh", interval=HEAT_REFRESH_MS),
        dcc.Interval(id="wall-kiosk", interval=seconds * 1000, disabled=not config["kiosk"]),
        dcc.Interval(id="wall-clock", interval=1000),
        html.Header(className="wall-header", children=[
            html.Div(className="wall-title", children=[html.H1(title), html.Div("城市运行态势 · 一屏统览", className="wall-title-sub")]),
            html.Div(id="wall-stale", className="wall-stale"),
            html.Div(className="wall-header-right", children=[
                html.Div(id="wall-conn", className="wall-conn"),
                html.Div(className="wall-clock", children=[html.Div("--:--:--", id="wall-clock-time", className="wall-clock-time"),
                                                           html.Div("", id="wall-clock-date", className="wall-clock-date")]),
            ]),
        ]),
        html.Div(className="wall-body", children=[
            html.Aside(className="wall-col wall-left", children=[
                html.Section(className="wall-card", children=[
                    html.H2("城市管理 · 今日"),
                    html.Div([_figure(k, label, "is-alert" if k in ("overdue", "emergencies_open") else "")
                              for k, label in FIGURES], className="wall-figs"),
                    html.Div(className="wall-rates", children=[_figure("closure", "本月结案率 %"),
                                                               _figure("ontime", "本月按期结案率 %")]),
                ]),
                html.Section(className="wall-card wall-trend-card", children=[
                    html.H2("今日受理趋势（件/小时）"),
                    html.Div(id="wall-trend", className="wall-trend"),
                    html.Div(className="wall-trend-legend", children=[
                        html.Span(className="wall-swatch is-today"), "今日",
                        html.Span(className="wall-swatch is-usual"), "近4周同日均值",
                        html.Span(id="wall-trend-caption", className="wall-trend-caption"),
                    ]),
                ]),
                html.Section(className="wall-card wall-rank-card", children=[
                    html.H2("区县排名 · 本月综合指标值"),
                    html.Div(id="wall-ranking", className="wall-ranking"),
                ]),
            ]),
            html.Main(className="wall-center", children=[
                html.Div(id="wall-map-box", className="wall-map", children=[
                    dash_deck.DeckGL(id="wall-map", data=_empty(base), style={"position": "absolute", "inset": "0"}),
                    dash_deck.DeckGL(id="wall-live-map", data=_empty(config["overlay"]),
                                     style={"position": "absolute", "inset": "0", "pointerEvents": "none"}),
                    html.Div(id="wall-area-labels", className="wall-area-labels"),
                    html.Div(id="wall-em-labels", className="wall-em-labels"),
                    html.Div(id="wall-map-title", className="wall-map-title"),
                    # the open early warnings over the map's corner, under its title (figures/wall.py _warnings;
                    # painted by assets/wall.js); an emergency takeover covers them
                    html.Section(className="wall-warn-box", children=[
                        html.H2(["预警", html.Span(id="wall-warn-count", className="wall-warn-count")]),
                        html.Div(id="wall-warnings", className="wall-warnings"),
                    ]),
                    html.Div(id="wall-alert", className="wall-alert"),
                    html.Div(id="wall-legend", className="wall-legend"),
                    # the emergency mode: a level III or graver response takes the map over (painted by wall.js)
                    html.Section(id="wall-emg", className="wall-emg", **{"aria-live": "polite"}),
                ]),
            ]),
            html.Aside(className="wall-col wall-right", children=[
                html.Section(className="wall-card wall-themes", children=[
                    html.Div(id="wall-tabs", className="wall-tabs",
                             children=[html.Span(name, className="wall-tab" + (" is-active" if k == "city" else ""))
                                       for k, name in PANELS]),
                    html.Div(_theme_panels(), className="wall-theme-stack"),
                ]),
                html.Section(className="wall-card wall-alarm-card", children=[
                    html.H2(["物联告警", html.Span(id="wall-alarm-counts", className="wall-al-counts")]),
                    html.Div(id="wall-alarms", className="wall-alarms"),
                ]),
                html.Section(className="wall-card wall-ticker-card", children=[
                    html.H2("最新上报"),
                    html.Div(id="wall-ticker", className="wall-ticker"),
                ]),
            ]),
        ]),
    ])
