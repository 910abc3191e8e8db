"""Benchmark of geo.locator against a raw shapely STRtree and a brute-force scan (python bench/bench_locator.py)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import shapely
from shapely import Point

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.city import generate_demo_city  # noqa: E402
from geo.locator import Locator, OutsideCity  # noqa: E402
from geo.model import GRID  # noqa: E402

SINGLE_N = 100_000
BULK_N = 1_000_000
BRUTE_LOOP_N = 100  # Python loop over 5,891 polygons: ~10 ms a point
BRUTE_SCAN_N = 2_000  # one vectorised intersects_xy over all polygons per point
BRUTE_BULK_N = 10_000  # one vectorised call per polygon over all points
REPEAT = 3


def best_of(fn, repeat=REPEAT) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def uniform_points(city, n, rng):
    """Uniform in area over the city (mostly rural, large grids)."""
    x0, y0, x1, y1 = city.bounds
    xs, ys = [], []
    while sum(len(a) for a in xs) < n:
        x = rng.uniform(x0, x1, n)
        y = rng.uniform(y0, y1, n)
        keep = shapely.contains_xy(city, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def population_points(grids, n, rng):
    """Distributed like the population (dense centre, small grids): closer to where events happen."""
    geoms = np.array([g.geometry for g in grids], dtype=object)
    pop = np.array([g.population for g in grids], dtype=float)
    which = rng.choice(len(grids), size=n, p=pop / pop.sum())
    b = shapely.bounds(geoms)
    x = np.empty(n)
    y = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        g = which[todo]
        x[todo] = rng.uniform(b[g, 0], b[g, 2])
        y[todo] = rng.uniform(b[g, 1], b[g, 3])
        todo = todo[~shapely.intersects_xy(geoms[g], x[todo], y[todo])]
    shapely.destroy_prepared(geoms)
    return x, y


def run_single(label, loc, tree, geoms, xs, ys):
    xl, yl = xs[:SINGLE_N].tolist(), ys[:SINGLE_N].tolist()
    pts = [Point(x, y) for x, y in zip(xl, yl)]
    query = tree.query
    locate = loc.locate
    t_loc = best_of(lambda: [locate(x, y) for x, y in zip(xl, yl)]) / len(xl)
    t_raw = best_of(lambda: [query(p, predicate="intersects") for p in pts]) / len(xl)
    t_raw_pt = best_of(lambda: [query(Point(x, y), predicate="intersects") for x, y in zip(xl, yl)]) / len(xl)

    def brute_loop():
        for x, y in zip(xl[:BRUTE_LOOP_N], yl[:BRUTE_LOOP_N]):
            p = Point(x, y)
            for i, g in enumerate(geoms):
                if g.intersects(p):
                    break

    t_loop = best_of(brute_loop, 1) / BRUTE_LOOP_N
    garr = np.array(geoms, dtype=object)
    t_scan = best_of(lambda: [np.flatnonzero(shapely.intersects_xy(garr, x, y))[:1]
                              for x, y in zip(xl[:BRUTE_SCAN_N], yl[:BRUTE_SCAN_N])], 1) / BRUTE_SCAN_N
    shapely.destroy_prepared(garr)
    print(f"\nsingle-point lookups, {label} ({len(xl):,} points; brute force on fewer)")
    print(f"  (a) Locator.locate                         {1 / t_loc:>12,.0f} /s  {t_loc * 1e6:8.2f} µs")
    print(f"  (b) raw STRtree.query(Point, 'intersects') {1 / t_raw:>12,.0f} /s  {t_raw * 1e6:8.2f} µs  (Point built beforehand)")
    print(f"      raw incl. Point(x, y) per lookup       {1 / t_raw_pt:>12,.0f} /s  {t_raw_pt * 1e6:8.2f} µs")
    print(f"  (c) brute force, Python loop over polygons {1 / t_loop:>12,.0f} /s  {t_loop * 1e6:8.0f} µs  ({BRUTE_LOOP_N} points)")
    print(f"      brute force, vectorised scan per point {1 / t_scan:>12,.0f} /s  {t_scan * 1e6:8.0f} µs  ({BRUTE_SCAN_N} points)")
    print(f"  ratio Locator / raw STRtree: {t_loc / t_raw:.2f}x (target <= 1.5x); "
          f"raw incl. Point: {t_loc / t_raw_pt:.2f}x; brute loop / Locator: {t_loop / t_loc:,.0f}x")
    return t_loc / t_raw


def run_bulk(label, loc, tree, geoms, xs, ys):
    def raw():
        inp, idx = tree.query(shapely.points(xs, ys), predicate="intersects")
        out = np.full(len(xs), -1)
        if len(inp):
            first = np.flatnonzero(np.r_[True, inp[1:] != inp[:-1]])
            out[inp[first]] = np.minimum.reduceat(idx, first)
        return out

    t_many = best_of(lambda: loc.locate_many(xs, ys))
    t_raw = best_of(raw)
    same = np.array_equal(loc.locate_many(xs, ys), raw())
    bx, by = xs[:BRUTE_BULK_N], ys[:BRUTE_BULK_N]

    def brute():
        out = np.full(len(bx), -1)
        for i in range(len(geoms) - 1, -1, -1):  # backwards: the smallest index wins
            out[shapely.intersects_xy(geoms[i], bx, by)] = i
        return out

    garr = np.array(geoms, dtype=object)
    t_brute = best_of(brute, 1)
    shapely.destroy_prepared(garr)
    n = len(xs)
    print(f"\nbulk lookups, {label} ({n:,} points; brute force on {len(bx):,})")
    print(f"  Locator.locate_many                        {n / t_many:>12,.0f} points/s  ({t_many:.3f} s)")
    print(f"  raw shapely.points + tree.query(intersects){n / t_raw:>12,.0f} points/s  ({t_raw:.3f} s)")
    print(f"  brute force (one vectorised call per polygon){len(bx) / t_brute:>10,.0f} points/s  ({t_brute:.2f} s)")
    print(f"  same answers as the raw tree query: {same}; locate_many / raw speed-up {t_raw / t_many:.1f}x; "
          f"target >= 1,000,000 points/s: {'met' if n / t_many >= 1e6 else 'MISSED'}")
    return n / t_many


def main() -> None:
    print(f"shapely {shapely.__version__}, GEOS {shapely.geos_version_string}, numpy {np.__version__}")
    t = time.perf_counter()
    records = generate_demo_city()
    print(f"generate_demo_city: {time.perf_counter() - t:.2f} s, {len(records):,} records")
    t = time.perf_counter()
    loc = Locator.from_records(records)
    print(f"Locator.from_records: {(time.perf_counter() - t) * 1e3:.0f} ms (extension-level query path: {loc.native})")
    t = time.perf_counter()
    loc.locate_many([119.97], [31.78])
    print(f"bulk raster index, built on first locate_many: {(time.perf_counter() - t) * 1e3:.0f} ms")
    public = Locator.from_records(records, use_native=False)

    grids = [r for r in records if r.level == GRID]
    # A separate tree over the same polygons, in the same (code) order, for the raw baseline.
    geoms = [g.geometry for g in loc.grids]
    tree = shapely.STRtree(geoms)
    rng = np.random.default_rng(2022)
    city = records[0].geometry
    ux, uy = uniform_points(city, BULK_N, rng)
    px, py = population_points(grids, BULK_N, rng)

    try:
        loc.locate(116.397, 39.909)
    except OutsideCity as e:
        print(f"outside example: {e}")

    ratios = [run_single("uniform over the city's area", loc, tree, geoms, ux, uy),
              run_single("distributed like the population", loc, tree, geoms, px, py)]
    xl, yl = px[:SINGLE_N].tolist(), py[:SINGLE_N].tolist()
    pts = [Point(x, y) for x, y in zip(xl, yl)]
    t_pub = best_of(lambda: [public.locate(x, y) for x, y in zip(xl, yl)]) / len(xl)
    t_raw = best_of(lambda: [tree.query(p, predicate="intersects") for p in pts]) / len(xl)
    print(f"\n  Locator with public shapely API only (use_native=False): {t_pub * 1e6:.2f} µs, "
          f"{t_pub / t_raw:.2f}x raw (fallback if shapely internals change)")

    rates = [run_bulk("uniform over the city's area", loc, tree, np.array(geoms, dtype=object), ux, uy),
             run_bulk("distributed like the population", loc, tree, np.array(geoms, dtype=object), px, py)]
    print(f"\nsummary: single Locator/raw STRtree {max(ratios):.2f}x (worst case, target <= 1.5x); "
          f"bulk {min(rates):,.0f} points/s (worst case, target >= 1,000,000)")


if __name__ == "__main__":
    main()
