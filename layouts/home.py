"""The home page: the city's districts and streets on the deck.gl map, with the hierarchy's figures."""
from __future__ import annotations

import dash_deck
from dash import html

from dash import dcc

from geo.layers import bounds_of, city_base_deck
from geo.model import LEVEL_NAMES_ZH, LEVELS
from layouts.live_status import live_status
from web.services import services


def layout(token=None, **_query):
    directory = services().areas
    records = directory.records(max_level=5)
    if not records:
        return html.Div("尚未导入城市网格：请运行 flask --app app seed-demo 或 import-grid", className="ucc-empty")
    counts = {lvl: 0 for lvl in LEVELS}
    for r in records:
        counts[r.level] += 1
    city = next(r for r in records if r.level == 1)
    base = [r for r in records if r.level <= 3]
    deck = city_base_deck(base)
    return html.Div(className="ucc-home", children=[
        dcc.Store(id="city-map-bounds", data=bounds_of(base)),
        html.Div(className="ucc-map", children=[
            dash_deck.DeckGL(id="city-map", data=deck, tooltip={"text": "{name}\n{code}"},
                             style={"position": "absolute", "inset": "0", "background": "#0b1526"}),
        ]),
        html.Aside(className="ucc-side", children=[
            html.H2(city.name),
            html.Div(className="ucc-figures", children=[
                html.Div(className="ucc-figure", children=[
                    html.Div(f"{counts[lvl]:,}", className="ucc-figure-value", id=f"count-level-{lvl}"),
                    html.Div(LEVEL_NAMES_ZH[lvl], className="ucc-figure-label"),
                ]) for lvl in LEVELS[1:]
            ]),
            html.P("街道及以下为演示数据" if any(r.is_demo for r in records) else "", className="ucc-note"),
            live_status(token),
        ]),
    ])
