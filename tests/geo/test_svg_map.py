"""The city drawn as SVG (geo/svg_map.py) for /public's tap-to-place map: districts and streets as closed paths, the
drawing as wide as asked and as tall as the city's shape, and a point drawn where it is (a tap read back lands on
the same longitude and latitude, inside the same district)."""
from __future__ import annotations

import math

import shapely

from geo.svg_map import WIDTH, city_svg_map
from tests.factories import rect_city


def test_districts_and_streets_are_drawn_and_a_tap_reads_back_to_its_point():
    records = rect_city()
    drawn = city_svg_map(records)
    levels = {level for _code, _name, level, _d, _x, _y in drawn.areas}
    assert levels == {2, 3} and len(drawn.areas) == sum(1 for r in records if r.level in (2, 3))
    assert all(d.startswith("M") and d.endswith("Z") for *_, d, _x, _y in drawn.areas)
    assert drawn.width == WIDTH and drawn.view_box == f"0 0 {WIDTH:.0f} {drawn.height:.0f}"
    # a square city is drawn taller than wide by 1 / cos(latitude): metres, not degrees, are kept square
    assert math.isclose(drawn.height / drawn.width, 1 / math.cos(math.radians(31.74)), rel_tol=1e-3)
    district = next(r for r in records if r.level == 2)
    at = district.geometry.representative_point()
    x, y = drawn.to_xy(at.x, at.y)
    assert 0 <= x <= drawn.width and 0 <= y <= drawn.height
    lon, lat = drawn.to_lon_lat(x, y)
    assert math.isclose(lon, at.x, abs_tol=1e-9) and math.isclose(lat, at.y, abs_tol=1e-9)
    assert district.geometry.contains(shapely.Point(lon, lat))


def test_no_district_no_map():
    assert city_svg_map([r for r in rect_city() if r.level == 1]) is None
