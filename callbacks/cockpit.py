"""Cockpit callbacks: theme switch, drill-down clicks, the map and the panel's figures (figures/cockpit.py)."""
from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, no_update
from dash.exceptions import PreventUpdate

from callbacks import inputs
from figures import cockpit, devices_map, vital_signs
from figures import assessment_view
from layouts import cockpit as view
from layouts import emergency_brief
from web.principal import current_principal
from web.services import services


def _cases():
    return services().cases


def foresight_marks() -> dict | None:
    """The open warnings' hot grids and recurring spots the signed-in reader may see (None: no warning service)."""
    from callbacks.cockpit_foresight import hot_marks

    return hot_marks()


@callback(
    Output("ck-theme", "data"),
    Output("ck-view", "data"),
    Output({"type": "ck-theme-btn", "key": ALL}, "className"),
    Output("ck-assess-btn", "className"),
    Output("ck-fs-btn", "className"),
    Input({"type": "ck-theme-btn", "key": ALL}, "n_clicks"),
    Input("ck-assess-btn", "n_clicks"),
    Input("ck-fs-btn", "n_clicks"),
    State({"type": "ck-theme-btn", "key": ALL}, "id"),
    prevent_initial_call=True,
)
def choose_theme(_clicks, _assess, _foresight, ids):
    if not isinstance(ids, list) or not all(isinstance(i, dict) and isinstance(i.get("key"), str) for i in ids):
        raise inputs.refuse("主题按钮 id 须为 {type, key}")
    off = [view.tab_class(i["key"], "") for i in ids]
    if ctx.triggered_id == "ck-assess-btn":  # the 考核评价 view: the theme stays as it was
        return no_update, "assessment", off, "ck-tab ck-tab-assess ck-tab--on", "ck-tab ck-tab-fs"
    if ctx.triggered_id == "ck-fs-btn":  # the 仿真预测 view (callbacks/cockpit_foresight.py), likewise
        return no_update, "foresight", off, "ck-tab ck-tab-assess", "ck-tab ck-tab-fs ck-tab--on"
    key = ctx.triggered_id.get("key") if isinstance(ctx.triggered_id, dict) else None
    if not isinstance(key, str) or key not in cockpit.THEMES:
        return no_update, no_update, [no_update] * len(ids), no_update, no_update
    return key, "panels", [view.tab_class(i["key"], key) for i in ids], "ck-tab ck-tab-assess", "ck-tab ck-tab-fs"


@callback(
    Output("ck-area", "data"),
    Input("ck-map", "clickInfo"),
    Input("ck-ranking", "clickData"),
    Input("ck-child", "value"),
    Input({"type": "ck-crumb", "code": ALL}, "n_clicks"),
    Input("ck-as-pick", "data"),
    State("ck-area", "data"),
    prevent_initial_call=True,
)
def drill(map_click, chart_click, child, _crumbs, pick, current):
    trigger = ctx.triggered_id
    current = inputs.text(current, "ck-area")
    code = None
    if trigger == "ck-map":
        code = (inputs.mapping((inputs.mapping(map_click, "clickInfo") or {}).get("object"), "clickInfo.object")
                or {}).get("code")
    elif trigger == "ck-ranking":
        points = (inputs.mapping(chart_click, "clickData") or {}).get("points") or [{}]
        first = points[0] if isinstance(points, list) else None
        data = first.get("customdata") if isinstance(first, dict) else None
        code = data[0] if isinstance(data, list) and data else None
    elif trigger == "ck-child":
        code = child
    elif trigger == "ck-as-pick":  # a row of the 考核 view's area ranking (assets/cockpit.js)
        code = (inputs.mapping(pick, "ck-as-pick") or {}).get("code")
    elif isinstance(trigger, dict) and ctx.triggered and ctx.triggered[0].get("value"):
        code = trigger.get("code")  # a breadcrumb that was really clicked (not one just drawn)
    code = code if isinstance(code, str) else None
    target = cockpit.drill_target(_cases().areas, current, code)
    return target if target and target != current else no_update


@callback(
    Output("ck-crumbs", "children"),
    Output("ck-child", "options"),
    Output("ck-child", "value"),
    Output("ck-child", "placeholder"),
    Output("ck-map-data", "data"),
    Output("ck-map-title", "children"),
    Output("ck-map-legend", "children"),
    Input("ck-area", "data"),
    Input("ck-theme", "data"),
    Input("ck-view", "data"),
)
def navigate(area_code, theme_key, view_key):
    area_code, theme_key = inputs.text(area_code, "ck-area"), inputs.text(theme_key, "ck-theme")
    nav = cockpit.cached_navigation(_cases(), area_code, theme_key)
    if nav is None:
        return [], [], None, "", no_update, "尚未导入城市网格", []
    area = nav["area"]
    app = services()
    # the 仿真预测 view marks the open warnings' hot grids and recurring spots (callbacks/cockpit_foresight.py), in
    # place of the device layer (whose alarm marks would read as hot spots)
    foresight = inputs.text(view_key, "ck-view") == "foresight"
    hot = foresight_marks() if foresight else None
    fleet = None if foresight else devices_map.for_area(app.db, app.areas, app.devices.types(), nav["frame"])
    payload = view.map_payload(nav["frame"], nav["children"], nav["highlight"], nav["ranking"], devices=fleet,
                               hotspots=hot, areas=app.areas)
    return (view.crumbs(nav["breadcrumbs"]), view.child_options(nav["choices"]), None, view.child_placeholder(area),
            {"spec": payload["spec"], "bounds": payload["bounds"]},
            view.map_title(area, nav["frame"].name, nav["ranking"]["level"]),
            view.map_legend(payload["legend"], fleet) + view.hotspot_legend(hot))


PANEL_OUTPUTS = (("ck-period", "children"), ("ck-figures", "children"), ("ck-trend", "figure"),
                 ("ck-pareto", "figure"), ("ck-pareto-title", "children"), ("ck-units", "figure"),
                 ("ck-severity", "figure"), ("ck-ranking", "figure"), ("ck-ranking-title", "children"),
                 ("ck-indicators-title", "children"), ("ck-indicators", "children"), ("ck-demo-note", "children"),
                 ("ck-reminders-title", "children"), ("ck-reminders", "children"))


def _panel_data(area_code, theme_key, scale, seen=None) -> dict:
    """The panel's outputs for a selection, tagged with the selection they were computed for
    (`out`: in PANEL_OUTPUTS order; None = leave as is)."""
    area_code, theme_key = inputs.text(area_code, "ck-area"), inputs.text(theme_key, "ck-theme")
    scale = inputs.number(scale, "ck-scale")
    if scale is not None and not 0.25 <= scale <= 8:  # what a screen's height can make of it (see ck-scale)
        raise inputs.refuse("ck-scale 须在 0.25 到 8 之间")
    snap = cockpit.cached_snapshot(_cases(), area_code, theme_key, seen_seq=seen)
    tag = {"area": area_code, "theme": theme_key, "scale": scale}
    if snap is None:
        return {**tag, "out": ["尚未导入城市网格"] + [None] * (len(PANEL_OUTPUTS) - 1)}
    s = scale or 1
    return {**tag, "out": [
        view.period_text(snap), view.figure_cards(snap["headline"]),
        view.trend_figure(snap["daily"], s), view.pareto_figure(snap["pareto"], s), view.pareto_title(snap["pareto"]),
        view.units_figure(snap["units"], s), view.severity_figure(snap["severity"], s),
        view.ranking_figure(snap["children"], s), view.ranking_title(snap["children"], snap["area"]),
        view.indicators_title(snap["indicators"], snap["theme"]), view.indicators_table(snap["indicators"]),
        view.demo_note(snap["indicators"]),
        view.reminders_title(snap["reminders"]), view.reminders_list(snap["reminders"]),
    ]}


def _seen(live) -> int | None:
    """The newest live event the page had seen at its last refresh (set by assets/cockpit.js)."""
    seq = live.get("seq") if isinstance(live, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None


@callback(Output("ck-vital", "className"), Output("ck-vital-title", "children"), Output("ck-vital-values", "children"),
          Output("ck-vital-code", "options"), Output("ck-vital-code", "value"), Output("ck-vital-graph", "figure"),
          Input("ck-theme", "data"), Input("ck-vital-code", "value"), Input("ck-vital-span", "value"),
          Input("ck-tick", "n_intervals"), Input("ck-scale", "data"))
def vital(theme_key, code, span, _tick, scale):
    """The theme's vital signs (figures/vital_signs.py): latest values and the chosen indicator's 24 h or 7 d chart;
    hidden on a theme with none. A theme switch charts the new theme's first indicator."""
    theme_key, code = inputs.text(theme_key, "ck-theme"), inputs.text(code, "ck-vital-code")
    span = inputs.text(span, "ck-vital-span") or "24h"
    if span not in vital_signs.RANGES:
        raise inputs.refuse("ck-vital-span 须为 24h 或 7d")
    scale = inputs.number(scale, "ck-scale")
    if scale is not None and not 0.25 <= scale <= 8:
        raise inputs.refuse("ck-scale 须在 0.25 到 8 之间")
    theme = cockpit.theme_or_default(theme_key)
    app = services()
    data = vital_signs.cockpit_module(app.db, theme.key, app.cases.clock(),
                                      None if ctx.triggered_id == "ck-theme" else code, span)
    if not data["items"]:
        return "ck-vital is-off", "", [], [], None, view.empty_figure(scale or 1)
    options = [{"label": i["name"], "value": i["code"]} for i in data["items"]]
    return ("ck-vital", view.vital_title(data, {"key": theme.key, "label": theme.label}),
            view.vital_values(data["items"]), options, data["code"], view.vital_figure(data, scale or 1))


# The figures go through one store, written by two callbacks: `panel` when the selection changes
# (or the fallback tick fires) and `refresh` when the live stream says cases changed. Two
# callbacks, not one: Dash drops the callbacks chained from a click (theme → panel, navigation)
# when their target is still running from a refresh. The store is drawn by a clientside callback
# that ignores figures computed for a selection that is no longer the page's.
@callback(Output("ck-panel", "data"), Input("ck-area", "data"), Input("ck-theme", "data"),
          Input("ck-scale", "data"), Input("ck-tick", "n_intervals"), State("ck-live-tick", "data"))
def panel(area_code, theme_key, scale, _tick, live):
    # figures shared by other leaders are fine, but never older than what this page already showed
    return _panel_data(area_code, theme_key, scale, _seen(live))


@callback(Output("ck-panel", "data", allow_duplicate=True), Input("ck-live-tick", "data"),
          State("ck-area", "data"), State("ck-theme", "data"), State("ck-scale", "data"), prevent_initial_call=True)
def refresh(live, area_code, theme_key, scale):
    # The refresh names the newest event the page has seen: the figures must include it (a leader
    # on the same selection may have had them computed, and shared, just before it).
    return _panel_data(area_code, theme_key, scale, _seen(live))


clientside_callback(
    ClientsideFunction(namespace="cockpit", function_name="render"),
    [Output(i, p) for i, p in PANEL_OUTPUTS],
    Input("ck-panel", "data"),
    State("ck-area", "data"),
    State("ck-theme", "data"),
    State("ck-scale", "data"),
)


# The map is fitted to its real size in the browser, like the home page's (assets/fit_bounds.js).
clientside_callback(
    """function (d) {
        if (!d || !d.spec) { return window.dash_clientside.no_update; }
        return window.dash_clientside.ucc.fitDeck(d.bounds, d.spec, 'ck-map');
    }""",
    Output("ck-map", "data"),
    Input("ck-map-data", "data"),
)

# Chart fonts grow with the screen like the rem-based CSS (1080 CSS px tall = 1×).
clientside_callback(
    """function (_id) {
        var s = Math.max(1, Math.round(window.innerHeight / 1080 * 4) / 4);
        return s === 1 ? window.dash_clientside.no_update : s;
    }""",
    Output("ck-scale", "data"),
    Input("ck-root", "id"),
)

# The live stream (assets/cockpit.js, on assets/live_client.js): opened once the page is drawn.
clientside_callback(
    ClientsideFunction(namespace="cockpit", function_name="start"),
    Output("ck-live-started", "data"),
    Input("ck-live-config", "data"),
)


# ---- the 考核评价 view: rankings, trend, posts and penalty points (figures.service) ---------------------------
clientside_callback(
    """function (v) { return v === 'assessment' ? 'ck is-assess' : v === 'foresight' ? 'ck is-foresight' : 'ck'; }""",
    Output("ck-root", "className"),
    Input("ck-view", "data"),
)


def _assess_inputs(view_key, area_code, month) -> tuple[str, str | None]:
    """(month, area) of the 考核 view, or PreventUpdate while the panels are shown."""
    if inputs.text(view_key, "ck-view") != "assessment":
        raise PreventUpdate
    month = inputs.text(month, "ck-as-month")
    if not month:
        raise PreventUpdate
    return month, inputs.text(area_code, "ck-area")


@callback(
    Output("ck-as-summary", "children"),
    Output("ck-as-areas-title", "children"),
    Output("ck-as-areas-data", "data"),
    Output("ck-as-units-title", "children"),
    Output("ck-as-units-data", "data"),
    Output("ck-as-report", "children"),
    Input("ck-view", "data"),
    Input("ck-area", "data"),
    Input("ck-as-month", "value"),
    Input("ck-as-unit", "data"),
)
def assessment_board(view_key, area_code, month, unit):
    month, area_code = _assess_inputs(view_key, area_code, month)
    board = assessment_view.board(_cases(), month, area_code, current_principal())
    if board is None:
        return "尚未导入城市网格", "", None, "", None, []
    unit = inputs.text(unit, "ck-as-unit")
    return (view.summary(board), view.areas_title(board), view.areas_table(board), view.units_title(board),
            view.units_table(board, unit), view.report_links(month))


@callback(
    Output("ck-as-trend-title", "children"),
    Output("ck-as-trend-graph", "figure"),
    Input("ck-view", "data"),
    Input("ck-area", "data"),
    Input("ck-as-month", "value"),
    Input("ck-scale", "data"),
)
def assessment_trend(view_key, area_code, month, scale):
    month, area_code = _assess_inputs(view_key, area_code, month)
    scale = inputs.number(scale, "ck-scale")
    if scale is not None and not 0.25 <= scale <= 8:
        raise inputs.refuse("ck-scale 须在 0.25 到 8 之间")
    cases = _cases()
    area = cockpit.resolve_area(cases.areas, area_code)
    points = assessment_view.trend(cases, area_code, month, current_principal())
    return view.trend_title(area.name if area else ""), view.score_trend_figure(points, scale or 1)


@callback(
    Output("ck-as-posts-title", "children"),
    Output("ck-as-posts-data", "data"),
    Input("ck-view", "data"),
    Input("ck-area", "data"),
    Input("ck-as-month", "value"),
    Input("ck-as-post", "value"),
)
def assessment_posts(view_key, area_code, month, kind):
    month, area_code = _assess_inputs(view_key, area_code, month)
    kind = inputs.text(kind, "ck-as-post")
    if kind not in view.POST_LABELS:
        raise inputs.refuse("ck-as-post 须为 grid_member 或 duty_officer")
    cases = _cases()
    posts = assessment_view.posts(cases, month, area_code, current_principal())
    if posts is None:
        return "岗位评价", None
    names = {p["area"]: _area_name(cases, p["area"]) for p in posts[kind]}
    return view.posts_title(posts, kind), view.posts_table(posts, kind, names)


def _area_name(cases, code):
    a = cases.areas.get(code) if code else None
    return a.name if a else code


@callback(
    Output("ck-as-unit", "data"),
    Input("ck-as-pen-area", "n_clicks"),
    Input("ck-area", "data"),
    prevent_initial_call=True,
)
def back_to_area(_back, _area):
    """The penalty list shows the area's points again (a unit's row sets ck-as-unit: assets/cockpit.js)."""
    if ctx.triggered_id == "ck-as-pen-area" and not (ctx.triggered and ctx.triggered[0].get("value")):
        raise PreventUpdate
    return None


# The tables are drawn in the browser from their specs (layouts/cockpit.py, assets/cockpit.js paintTable).
for _box in ("areas", "units", "posts", "pen"):
    clientside_callback(
        ClientsideFunction(namespace="cockpit", function_name="paintTable"),
        Output(f"ck-as-{_box}-body", "title"),
        Input(f"ck-as-{_box}-data", "data"),
    )


@callback(
    Output("ck-as-pen-title", "children"),
    Output("ck-as-pen-data", "data"),
    Output("ck-as-pen-area", "hidden"),
    Input("ck-view", "data"),
    Input("ck-area", "data"),
    Input("ck-as-month", "value"),
    Input("ck-as-unit", "data"),
)
def assessment_penalties(view_key, area_code, month, unit):
    month, area_code = _assess_inputs(view_key, area_code, month)
    unit = inputs.text(unit, "ck-as-unit")
    cases = _cases()
    area = cockpit.resolve_area(cases.areas, area_code)
    if area is None:
        return "扣分案件", None, True
    rows = assessment_view.penalties(cases, month, area_code=area.code, unit=unit, principal=current_principal())
    whose = cases.unit_name(unit) if unit else area.name
    return view.penalties_title(rows, whose), view.penalties_table(rows, _console_href), not unit


def _console_href(case_id: int) -> str:
    """Where a leader opens a case: the console, which opens the case of its ?case= link."""
    return f"/console?case={case_id}"


@callback(Output("ck-emg", "hidden"), Output("ck-emg", "children"), Input("ck-emg-tick", "n_intervals"))
def load_emergencies(_tick):
    """The active emergency responses in the leader's scope, above the reminders; late reports marked."""
    principal = current_principal()
    if principal is None:
        raise PreventUpdate
    return emergency_brief.panel(principal, "ck")
