"""Deterministic demo city: real Changzhou districts split into generated streets, communities and grids."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from data import files
from geo.model import CITY, COMMUNITY, DISTRICT, GRID, STREET, AreaRecord

DEFAULT_SEED = 20221130

# Local plane in km around the city centre. One scale for the whole city is enough: cos(lat)
# varies by about 1 % between the city's north and south ends.
LON0, LAT0 = 119.97, 31.78
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON = 111.320 * math.cos(math.radians(LAT0))

# Parts and holes smaller than this (deg², about 0.01 m²) are floating-point noise of the
# overlays, never real geometry.
NOISE_AREA = 1e-12
# Distance (deg, about 1 cm) under which two borders count as shared when merging fragments.
SHARED_EPS = 1e-7


@dataclass
class _Split:
    children: list[BaseGeometry]  # in reading order (north to south, west to east)
    mass: np.ndarray  # density mass of each child (relative population)
    area_km2: np.ndarray


def area_km2(geoms) -> np.ndarray:
    """Approximate area in km² of lon/lat geometries (local scale at each one's mid-latitude)."""
    geoms = np.asarray(geoms, dtype=object)
    b = shapely.bounds(geoms)
    lat = np.nan_to_num((b[:, 1] + b[:, 3]) / 2.0, nan=LAT0)  # empty geometries: area 0 anyway
    return shapely.area(geoms) * KM_PER_DEG_LAT * 111.320 * np.cos(np.radians(lat))


def generate_demo_city(seed: int = DEFAULT_SEED) -> list[AreaRecord]:
    """All 6,991 records of the demo city: the city, then districts, streets, communities, grids (code order).

    Deterministic: every parent draws from its own RNG seeded by (seed, parent code), so the
    output depends only on the seed, the data files and the library versions.
    """
    cfg = files.demo_city_config()
    _check_totals(cfg)
    gen = cfg["generator"]
    dens = cfg["density"]
    boundaries = files.boundaries(cfg["boundaries"])
    features = {f["properties"]["code"]: f for f in boundaries["features"]}

    city_code = cfg["city"]["code"]
    district_records: list[AreaRecord] = []
    for d in cfg["districts"]:
        props = features[d["code"]]["properties"]
        extra = {"area_km2": props["area_km2"], "source": props["source"]}
        if props.get("demo_code"):
            extra["demo_code"] = True
        if props.get("note"):
            extra["note"] = props["note"]
        district_records.append(AreaRecord(
            code=d["code"], name=props["name"], level=DISTRICT, parent=city_code,
            geometry=_polygonal(shape(features[d["code"]]["geometry"])),
            population=int(props["population"]), is_demo=False, extra=extra,
        ))

    city = AreaRecord(
        code=city_code, name=cfg["city"]["name"], level=CITY, parent=None,
        geometry=_polygonal(shapely.union_all([r.geometry for r in district_records])),
        population=sum(r.population for r in district_records), is_demo=False,
        extra={"source": district_records[0].extra["source"]},
    )

    naming = cfg["naming"]
    combos = [a + b for a in naming["first"] for b in naming["second"] if a != b]
    street_names = _name_pool(combos, seed, int(city_code))

    out = [city] + district_records
    streets_out: list[AreaRecord] = []
    communities_out: list[AreaRecord] = []
    grids_out: list[AreaRecord] = []
    for d, district in zip(cfg["districts"], district_records):
        community_names = _name_pool(combos, seed, int(district.code))
        s, c, g = _generate_district(district, d, seed, gen, dens, naming, street_names, community_names)
        streets_out += s
        communities_out += c
        grids_out += g
    return out + streets_out + communities_out + grids_out


def _generate_district(district, dcfg, seed, gen, dens, naming, street_names, community_names):
    split = _split(district.geometry, dcfg["streets"], _rng(seed, district.code), dens, gen)
    street_pop = _apportion(district.population, split.mass)
    # The densest streets of a district are 街道 (urban sub-districts), the rest 镇 (towns).
    density_rank = np.argsort(-(split.mass / split.area_km2), kind="stable")
    urban = np.zeros(len(split.children), bool)
    urban[density_rank[: dcfg["urban_streets"]]] = True
    n_comm = _apportion(
        dcfg["communities"],
        _blend(split.mass, split.area_km2, gen["community_population_weight"]),
        minimum=gen["min_communities_per_street"],
    )

    streets, communities = [], []
    for i, geom in enumerate(split.children):
        code = f"{district.code}{i + 1:03d}"
        kind = "街道" if urban[i] else "镇"
        streets.append(_demo_record(code, next(street_names) + kind, STREET, district.code, geom,
                                    int(street_pop[i]), kind, split.area_km2[i]))

    for street, n in zip(streets, n_comm):
        cs = _split(street.geometry, int(n), _rng(seed, street.code), dens, gen)
        pops = _apportion(street.population, cs.mass)
        density = pops / cs.area_km2
        densest = int(np.argmax(density))
        for j, geom in enumerate(cs.children):
            is_community = density[j] >= naming["community_min_density"] or j == densest
            kind = "社区" if is_community else "村"
            code = f"{street.code}{j + 1:03d}"
            communities.append(_demo_record(code, next(community_names) + kind, COMMUNITY, street.code,
                                            geom, int(pops[j]), kind, cs.area_km2[j]))

    # Grids are allocated over the whole district so that denser communities get more of them.
    comm_pop = np.array([c.population for c in communities], float)
    comm_area = np.array([c.extra["area_km2"] for c in communities], float)
    n_grid = _apportion(dcfg["grids"], _blend(comm_pop, comm_area, gen["grid_population_weight"]),
                        minimum=gen["min_grids_per_community"])
    grids = []
    for comm, n in zip(communities, n_grid):
        gs = _split(comm.geometry, int(n), _rng(seed, comm.code), dens, gen)
        pops = _apportion(comm.population, gs.mass)
        for k, geom in enumerate(gs.children):
            code = f"{comm.code}{k + 1:03d}"
            grids.append(_demo_record(code, f"{comm.name}第{k + 1}网格", GRID, comm.code, geom,
                                      int(pops[k]), "网格", gs.area_km2[k]))
    return streets, communities, grids


def _demo_record(code, name, level, parent, geom, population, kind, area) -> AreaRecord:
    return AreaRecord(code=code, name=name, level=level, parent=parent, geometry=geom,
                      population=population, is_demo=True,
                      extra={"demo": True, "kind": kind, "area_km2": round(float(area), 4)})


def _check_totals(cfg: dict) -> None:
    totals = cfg["totals"]
    for key in ("streets", "communities", "grids"):
        got = sum(d[key] for d in cfg["districts"])
        if got != totals[key]:
            raise ValueError(f"demo_city.json: districts sum to {got} {key}, totals say {totals[key]}")


def _rng(seed: int, code: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(code)])


def _name_pool(combos: list[str], seed: int, code: int):
    """Endless iterator of distinct names for one scope (a shuffled pool, then numbered)."""
    order = np.random.default_rng([int(seed), code, 1]).permutation(len(combos))
    for i in order:
        yield combos[i]
    n = 2
    while True:  # pool exhausted: never happens with the shipped syllables, kept unique anyway
        for i in order:
            yield f"{combos[i]}{n}"
        n += 1


def _blend(mass: np.ndarray, area: np.ndarray, pop_weight: float) -> np.ndarray:
    return pop_weight * mass / mass.sum() + (1.0 - pop_weight) * area / area.sum()


def _apportion(total: int, weights: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Integers >= minimum summing to total, proportional to weights (largest remainder)."""
    weights = np.asarray(weights, float)
    n = len(weights)
    rest = total - minimum * n
    if rest < 0:
        raise ValueError(f"cannot give {n} parts at least {minimum} out of {total}")
    if weights.sum() <= 0:
        weights = np.ones(n)
    quota = weights / weights.sum() * rest
    base = np.floor(quota).astype(np.int64)
    short = rest - int(base.sum())
    # Stable sort: ties go to the earlier child, the same on every machine.
    base[np.argsort(-(quota - base), kind="stable")[:short]] += 1
    return base + minimum


def _density(lon: np.ndarray, lat: np.ndarray, dens: dict) -> np.ndarray:
    out = np.full(lon.shape, float(dens["base"]))
    for c in dens["centres"]:
        dx = (lon - c["lon"]) * KM_PER_DEG_LON
        dy = (lat - c["lat"]) * KM_PER_DEG_LAT
        out += c["peak"] * np.exp(-(dx * dx + dy * dy) / (2.0 * c["sigma_km"] ** 2))
    return out


def _sample(parent: BaseGeometry, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points uniformly inside parent (rejection sampling in its bounding box)."""
    x0, y0, x1, y1 = parent.bounds
    share = max(parent.area / ((x1 - x0) * (y1 - y0)), 0.02)
    xs, ys, have = [], [], 0
    while have < n:
        batch = int((n - have) / share * 1.3) + 32
        x = rng.uniform(x0, x1, batch)
        y = rng.uniform(y0, y1, batch)
        inside = shapely.contains_xy(parent, x, y)  # prepares parent on the fly
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
    # Records should not carry GEOS prepared indexes (memory) out of the generator.
    shapely.destroy_prepared(parent)
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def _assign(px, py, cx, cy) -> tuple[np.ndarray, np.ndarray]:
    dx = px[:, None] - cx[None, :]
    dy = py[:, None] - cy[None, :]
    d2 = dx * dx + dy * dy
    labels = np.argmin(d2, axis=1)
    return labels, d2[np.arange(len(px)), labels]


def _lloyd(px, py, w, n, rng, iterations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted k-means; returns centres (rounded to 1 mm) and the final labels."""
    start = rng.choice(len(px), size=n, replace=False, p=w / w.sum())
    cx, cy = px[start].copy(), py[start].copy()
    for it in range(iterations + 20):
        labels, d2 = _assign(px, py, cx, cy)
        counts = np.bincount(labels, minlength=n)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            # Re-seed empty clusters at the worst-served samples.
            worst = np.argsort(-(w * d2), kind="stable")[: len(empty)]
            cx[empty], cy[empty] = px[worst], py[worst]
            continue
        if it >= iterations:
            break
        ws = np.bincount(labels, weights=w, minlength=n)
        # Rounding makes the Voronoi input, hence the output, insensitive to last-bit noise.
        cx = np.round(np.bincount(labels, weights=w * px, minlength=n) / ws, 6)
        cy = np.round(np.bincount(labels, weights=w * py, minlength=n) / ws, 6)
    else:
        raise RuntimeError("k-means left empty clusters")
    return cx, cy, labels


def _split(parent: BaseGeometry, n: int, rng: np.random.Generator, dens: dict, gen: dict) -> _Split:
    """Split parent into n children that tile it: Lloyd centres, Voronoi cells, clipped."""
    m = max(gen["min_samples"], gen["samples_per_child"] * n)
    lon, lat = _sample(parent, m, rng)
    w = _density(lon, lat, dens)
    if n == 1:
        return _Split([parent], np.array([w.sum()]), area_km2([parent]))
    px = (lon - LON0) * KM_PER_DEG_LON
    py = (lat - LAT0) * KM_PER_DEG_LAT
    cx, cy, labels = _lloyd(px, py, w, n, rng, gen["lloyd_iterations"])

    x0, y0, x1, y1 = parent.bounds
    frame = shapely.box((x0 - LON0) * KM_PER_DEG_LON, (y0 - LAT0) * KM_PER_DEG_LAT,
                        (x1 - LON0) * KM_PER_DEG_LON, (y1 - LAT0) * KM_PER_DEG_LAT)
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(np.column_stack([cx, cy])), extend_to=frame, ordered=True))
    if len(cells) != n:
        raise RuntimeError(f"Voronoi gave {len(cells)} cells for {n} centres")
    # Back to lon/lat; each shared Voronoi vertex maps to the same value in both cells.
    scale = np.array([KM_PER_DEG_LON, KM_PER_DEG_LAT])
    origin = np.array([LON0, LAT0])
    cells = shapely.transform(cells, lambda c: c / scale + origin)
    # Every centre owns at least one sample, which lies inside the parent and in its cell,
    # so no clipped cell is empty.
    children = _connect([_polygonal(g) for g in shapely.intersection(cells, parent)])

    mass = np.bincount(labels, weights=w, minlength=n)
    areas = area_km2(children)
    # Reading order for the codes: rows from north to south, west to east within a row.
    rows = max(1, round(math.sqrt(n)))
    row_h = (y1 - y0) / rows
    cy_deg = cy / KM_PER_DEG_LAT + LAT0
    row = np.minimum(((y1 - cy_deg) / row_h).astype(int), rows - 1)
    order = np.lexsort((cx, row))
    return _Split([children[i] for i in order], mass[order], areas[order])


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Polygon or MultiPolygon without lower-dimensional bits, noise parts or noise holes."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = []
    for p in parts:
        polys += list(shapely.get_parts(p))
    polys = [p for p in polys if p.area > NOISE_AREA] or polys
    cleaned = []
    for p in polys:
        holes = [r for r in p.interiors if shapely.Polygon(r).area > NOISE_AREA]
        cleaned.append(p if len(holes) == len(p.interiors) else shapely.Polygon(p.exterior, holes))
    if len(cleaned) == 1:
        return cleaned[0]
    return shapely.MultiPolygon(cleaned)


def _connect(children: list[BaseGeometry]) -> list[BaseGeometry]:
    """Give each stray fragment of a clipped cell to the sibling it shares the longest border with.

    A Voronoi cell clipped by a concave parent can fall apart; the largest part stays, the others
    join a neighbour. Tiling is kept because pieces only move between siblings.
    """
    groups = []
    strays = []
    for i, child in enumerate(children):
        parts = sorted(shapely.get_parts(child), key=lambda p: -p.area)
        groups.append([parts[0]])
        strays += [(i, p) for p in parts[1:]]
    if not strays:
        return children
    # Fragments that only touch other fragments find a home in a later pass.
    while strays:
        left = []
        for owner, frag in strays:
            zone = frag.buffer(SHARED_EPS)
            best, best_len = None, 2.5 * SHARED_EPS  # more than a point contact
            for j, group in enumerate(groups):
                if j == owner:
                    continue
                shared = sum(shapely.length(shapely.intersection(g.boundary, zone))
                             for g in group if g.intersects(zone))
                if shared > best_len:
                    best, best_len = j, shared
            if best is None:
                left.append((owner, frag))
            else:
                groups[best].append(frag)
        if len(left) == len(strays):
            for owner, frag in left:  # touches no sibling along a line: stays where it was
                groups[owner].append(frag)
            break
        strays = left
    return [g[0] if len(g) == 1 else _polygonal(shapely.union_all(g)) for g in groups]
