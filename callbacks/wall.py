"""Wall callbacks: the slow server refreshes (the safety net under the live stream) and the clientside wiring."""
from __future__ import annotations

import json

from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, no_update

from figures.wall import heat_points, snapshot
from layouts.wall import FIGURES, PANELS
from web.services import services


@callback(Output("wall-agg", "data"), Input("wall-refresh", "n_intervals"), Input("wall-resync", "data"),
          prevent_initial_call=True)
def refresh(_n, _resync):
    return snapshot(services())


@callback(Output("wall-heat", "data"), Input("wall-heat-refresh", "n_intervals"), Input("wall-mode", "data"),
          State("wall-heat", "data"))
def refresh_heat(_n, mode, have):
    """The 7-day points of the hexagon view: read when that view first shows, then every 5 minutes."""
    if not have and mode != "heat":
        return no_update
    if have and ctx.triggered_id == "wall-mode":
        return no_update
    return heat_points(services())


# Starts the live stream (assets/wall.js) once the page has its configuration.
clientside_callback(
    ClientsideFunction(namespace="wall", function_name="start"),
    Output("wall-started", "data"), Input("wall-config", "data"), State("wall-agg", "data"),
)

# The hexagon points are State, not Input: an Input written by a server callback (refresh_heat) makes
# Dash hold the first drawing of the map until that round trip is back, although the first view
# never needs them. When they arrive, heat_arrived redraws (set_props, outside the callback graph).
clientside_callback(
    ClientsideFunction(namespace="wall", function_name="base"),
    Output("wall-map", "data"), Output("wall-legend", "children"), Output("wall-map-title", "children"),
    Output("wall-area-labels", "children"), Input("wall-agg", "data"), Input("wall-mode", "data"),
    Input("wall-viewport", "data"), State("wall-heat", "data"), State("wall-config", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="wall", function_name="heat_arrived"),
    Output("wall-heat-seen", "data"), Input("wall-heat", "data"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction(namespace="wall", function_name="overlay"),
    Output("wall-live-map", "data"),  # the emergency labels are painted by wall.js (see paint there)
    Input("wall-agg", "data"), Input("wall-live", "data"), Input("wall-anim", "data"), Input("wall-viewport", "data"),
    Input("wall-mode", "data"), State("wall-config", "data"),
)

# Everything drawn from the merged state (snapshot + live). The figures are outputs; the lists (trend,
# ranking, ticker, top categories, emergencies, the alert banner) are painted by window.uccWall.render
# into their empty containers (see paint in assets/wall.js: Dash children cost ~0.5 s per live event).
RENDER_OUTPUTS = (
    [(f"wall-fig-{k}", "children") for k, _ in FIGURES]
    + [("wall-fig-closure", "children"), ("wall-fig-ontime", "children"), ("wall-trend-caption", "children"),
       ("wall-city-received", "children"), ("wall-city-accepted", "children"), ("wall-city-closure", "children"),
       ("wall-city-ontime", "children"), ("wall-city-rework", "children"), ("wall-city-hours", "children")]
)
_KEYS = json.dumps([f"{i}.{p}" for i, p in RENDER_OUTPUTS])
clientside_callback(
    "function (agg, live, cfg) {"
    " var r = window.uccWall.render(agg, live, cfg) || {}; var nu = window.dash_clientside.no_update;"
    f" return {_KEYS}.map(function (k) {{ return (k in r) ? r[k] : nu; }}); }}",
    [Output(i, p) for i, p in RENDER_OUTPUTS],
    Input("wall-agg", "data"), Input("wall-live", "data"), State("wall-config", "data"),
)

# Kiosk: which thematic panel is shown and which map view, switched on a timer in the browser.
clientside_callback(
    ClientsideFunction(namespace="wall", function_name="kiosk"),
    [Output(f"wall-panel-{k}", "className") for k, _ in PANELS] + [Output("wall-tabs", "children"),
                                                                  Output("wall-mode", "data")],
    Input("wall-kiosk", "n_intervals"), State("wall-config", "data"),
)

clientside_callback(
    ClientsideFunction(namespace="wall", function_name="clock"),
    Output("wall-clock-time", "children"), Output("wall-clock-date", "children"),
    Output("wall-conn", "children"), Output("wall-conn", "className"),
    Output("wall-stale", "children"), Output("wall-stale", "className"),
    Input("wall-clock", "n_intervals"), State("wall-config", "data"),
)
