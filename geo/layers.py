"""Map layer specs for deck.gl (via pydeck): the city's own boundaries as the base map, no tiles."""
from __future__ import annotations

import json
from typing import Iterable

import pydeck as pdk
import shapely

from geo.model import DISTRICT, STREET, AreaRecord

# A dark palette that stays apart on a wall display; one colour per district, cycled.
DISTRICT_COLOURS = [
    [38, 110, 196], [34, 150, 140], [120, 92, 196], [196, 120, 44],
    [60, 140, 70], [176, 70, 96], [80, 120, 160], [150, 140, 60],
]


CJK_FONTS = '"Microsoft YaHei","PingFang SC","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif'


def _polygon_rings(geom) -> list[list[list[float]]]:
    """Outer rings (with holes) of each polygon part, as deck.gl PolygonLayer wants them."""
    parts = getattr(geom, "geoms", [geom])
    out = []
    for p in parts:
        rings = [list(map(list, shapely.get_coordinates(p.exterior, include_z=False).round(6)))]
        rings += [list(map(list, shapely.get_coordinates(i).round(6))) for i in p.interiors]
        out.append(rings)
    return out


def _simplified(geom, tolerance: float):
    # preserve_topology keeps each polygon valid; shared borders may drift by < tolerance, fine for drawing.
    return shapely.simplify(geom, tolerance, preserve_topology=True) if tolerance else geom


def area_polygons(records: Iterable[AreaRecord], tolerance: float = 0.0) -> list[dict]:
    """One row per polygon part: code, name, level, polygon rings, colour index."""
    rows = []
    for i, r in enumerate(sorted(records, key=lambda r: r.code)):
        for rings in _polygon_rings(_simplified(r.geometry, tolerance)):
            rows.append({"code": r.code, "name": r.name, "level": r.level, "polygon": rings,
                         "fill": DISTRICT_COLOURS[i % len(DISTRICT_COLOURS)] + [150]})
    return rows


def labels(records: Iterable[AreaRecord]) -> list[dict]:
    rows = []
    for r in records:
        p = r.geometry.representative_point()
        rows.append({"code": r.code, "name": r.name, "position": [round(p.x, 5), round(p.y, 5)]})
    return rows


def view_for(records: list[AreaRecord], zoom: float = 8.6) -> pdk.ViewState:
    minx, miny, maxx, maxy = shapely.total_bounds([r.geometry for r in records])
    return pdk.ViewState(longitude=(minx + maxx) / 2, latitude=(miny + maxy) / 2, zoom=zoom,
                         pitch=0, bearing=0)


def bounds_of(records: list[AreaRecord]) -> list[float]:
    return [round(float(v), 6) for v in shapely.total_bounds([r.geometry for r in records])]


def city_base_deck(records: list[AreaRecord], zoom: float = 8.6) -> dict:
    """The base map: districts filled, streets outlined, district names. Returns deck JSON (dict)."""
    districts = [r for r in records if r.level == DISTRICT]
    streets = [r for r in records if r.level == STREET]
    label_rows = labels(districts)
    chars = sorted({c for row in label_rows for c in row["name"]})
    layers = [
        pdk.Layer("PolygonLayer", id="districts", data=area_polygons(districts, 0.0005),
                  get_polygon="polygon", get_fill_color="fill", get_line_color=[230, 240, 255, 230],
                  line_width_min_pixels=2, stroked=True, filled=True, pickable=True),
        pdk.Layer("PolygonLayer", id="streets", data=area_polygons(streets, 0.0005),
                  get_polygon="polygon", filled=False, stroked=True,
                  get_line_color=[200, 220, 255, 90], line_width_min_pixels=1),
        pdk.Layer("TextLayer", id="district-labels", data=label_rows, get_position="position",
                  get_text="name", get_size=20, get_color=[255, 255, 255, 240],
                  outline_width=2, outline_color=[0, 0, 0, 200], font_settings={"sdf": True}),
    ]
    deck = pdk.Deck(layers=layers, initial_view_state=view_for(districts or records, zoom),
                    map_style=None, map_provider=None,
                    tooltip={"text": "{name}\n{code}"})
    spec = json.loads(deck.to_json())
    # pydeck turns plain string/list props into "@@=" expressions; these two must stay literal.
    for layer in spec["layers"]:
        if layer["@@type"] == "TextLayer":
            layer["characterSet"] = "".join(chars)
            layer["fontFamily"] = CJK_FONTS
    return spec
