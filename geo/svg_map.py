"""The city's own boundaries as an SVG map (no tiles): districts and streets as paths in a flat local projection, and
the numbers a page needs to turn a tap on the drawing back into longitude and latitude."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import shapely

from geo.model import DISTRICT, STREET, AreaRecord

WIDTH = 1000.0  # the drawing's width in SVG units; its height follows the city's shape
TOLERANCE = 0.0008  # degrees (~80 m): finer than a tap on a phone can point


@dataclass(frozen=True)
class SvgMap:
    """`view_box` "0 0 W H"; `areas`: (code, name, level, path d, label x, label y); lon = west + x / kx,
    lat = north - y / ky."""

    width: float
    height: float
    west: float
    north: float
    kx: float
    ky: float
    areas: tuple[tuple[str, str, int, str, float, float], ...]

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:.0f} {self.height:.0f}"

    def to_xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.west) * self.kx, (self.north - lat) * self.ky

    def to_lon_lat(self, x: float, y: float) -> tuple[float, float]:
        return self.west + x / self.kx, self.north - y / self.ky


def _path(geom, m: "SvgMap") -> str:
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        for ring in [poly.exterior, *poly.interiors]:
            coords = shapely.get_coordinates(ring)
            if len(coords) < 4:
                continue
            pts = [m.to_xy(float(x), float(y)) for x, y in coords[:-1]]
            parts.append("M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in pts) + "Z")
    return "".join(parts)


def city_svg_map(records: Iterable[AreaRecord], tolerance: float = TOLERANCE) -> SvgMap | None:
    """Districts and streets of `records` drawn to WIDTH units wide, the metre-true shape of the city's latitude
    (a degree of longitude is cos(latitude) of a degree of latitude). None when there is no district."""
    chosen = sorted((r for r in records if r.level in (DISTRICT, STREET)), key=lambda r: (r.level, r.code))
    if not any(r.level == DISTRICT for r in chosen):
        return None
    west, south, east, north = (float(v) for v in shapely.total_bounds([r.geometry for r in chosen]))
    squash = math.cos(math.radians((south + north) / 2))
    kx = WIDTH / max(east - west, 1e-9)
    ky = kx / squash
    frame = SvgMap(WIDTH, round((north - south) * ky, 1), west, north, kx, ky, ())
    areas = []
    for r in chosen:
        geom = shapely.simplify(r.geometry, tolerance, preserve_topology=True)
        at = r.geometry.representative_point()
        x, y = frame.to_xy(at.x, at.y)
        areas.append((r.code, r.name, r.level, _path(geom, frame), round(x, 1), round(y, 1)))
    return SvgMap(frame.width, frame.height, west, north, kx, ky, tuple(areas))
