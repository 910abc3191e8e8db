"""Benchmark of the nearest emergency resources (python bench/bench_resources.py [--n 10000] [--queries 1000]).

10,000 resources at random over the demo city (uniform inside its districts' boundary), of the four types with
realistic specialties; 1,000 queries at random points of the city, a third without a filter, a third by type, a
third by type and specialty, one in five of them within a radius of 5 km, 20 results each. Two pairs measured in
the same run, each on the same queries:

- the index (geo.nearest.NearestIndex.nearest: an STRtree per type, nearest first) against a brute-force scan
  (NearestIndex.scan: the ellipsoidal distance to every resource of the type, sorted);
- through the service over SQLite (ResourceService.nearest: the index's version check, the walk, the rows read for
  the answer) against the same answer without an index (the matching rows read with SQL, the distance to each,
  sorted, the rows of the first 20 read).

Both of each pair must answer the same ids in the same order (checked for every query). Each query is timed three
times and its best kept (the machine is shared); prints the median and the 95th percentile of each and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import files  # noqa: E402
from geo.nearest import NearestIndex, geodesic_m  # noqa: E402

SPECIALTIES = {"team": ("消防救援", "排水抢险", "燃气抢修", "医疗救护", "电力抢修", "水域救援"),
               "equipment": ("抢险车", "大功率排水车", "发电车", "应急照明车"),
               "warehouse": (None,), "shelter": ("学校", "公园", "体育场馆")}
TYPE_SHARE = {"team": 0.4, "equipment": 0.25, "warehouse": 0.05, "shelter": 0.3}


def city_polygon():
    fc = files.boundaries("changzhou_districts.geojson")
    return shapely.union_all([shape(f["geometry"]) for f in fc["features"]])


def points_in(poly, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = poly.bounds
    xs, ys = [], []
    shapely.prepare(poly)
    while sum(len(a) for a in xs) < n:
        x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
        keep = shapely.contains_xy(poly, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def make_rows(n: int, rng, poly) -> list[tuple]:
    lon, lat = points_in(poly, n, rng)
    types = rng.choice(list(TYPE_SHARE), size=n, p=list(TYPE_SHARE.values()))
    rows = []
    for i in range(n):
        t = str(types[i])
        spec = SPECIALTIES[t][int(rng.integers(len(SPECIALTIES[t])))]
        rows.append((f"R{i:05d}", round(float(lon[i]), 6), round(float(lat[i]), 6), t, spec, None))
    return rows


def make_queries(n: int, rng, poly) -> list[dict]:
    lon, lat = points_in(poly, n, rng)
    out = []
    for i in range(n):
        q = {"lon": float(lon[i]), "lat": float(lat[i]), "limit": 20}
        k = i % 3
        if k >= 1:
            t = ("team", "equipment", "shelter")[int(rng.integers(3))]
            q["kind"] = t
            if k == 2:
                q["specialty"] = SPECIALTIES[t][int(rng.integers(len(SPECIALTIES[t])))]
        if i % 5 == 0:
            q["radius_m"] = 5000.0
        out.append(q)
    return out


def timed(fn, queries, repeat: int = 3) -> tuple[list[float], list]:
    """Each query's best of `repeat` runs (the machine is shared: a run may lose its core), and its answer."""
    out, answers = [], []
    for q in queries:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            answer = fn(q)
            best = min(best, time.perf_counter() - t)
        answers.append(answer)
        out.append(best)
    return out, answers


def stats(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs) * 1000, xs[int(0.95 * (len(xs) - 1))] * 1000


def report(name: str, fast: list[float], slow: list[float], fast_name: str, slow_name: str) -> None:
    fm, fp = stats(fast)
    sm, sp = stats(slow)
    print(f"{name}:")
    print(f"  {fast_name:<28} median {fm:8.3f} ms   p95 {fp:8.3f} ms")
    print(f"  {slow_name:<28} median {sm:8.3f} ms   p95 {sp:8.3f} ms")
    print(f"  ratio (scan / index)         median {sm / fm:8.1f} ×   p95 {sp / fp:8.1f} ×")


def service_pair(rows: list[tuple], queries: list[dict], workdir: Path):
    """ResourceService.nearest over SQLite against the same answer without an index."""
    from sqlalchemy import select

    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.models import Resource
    from data.resources import write_resources
    from data.schema import init_db
    from emergency.resources import ResourceService

    db = Database(f"sqlite:///{workdir / 'bench_resources.db'}")
    init_db(db)
    with db.session() as s:
        write_resources(s, [{"id": i, "type": t, "name": f"资源{i}", "lon": x, "lat": y, "grid_code": None,
                             "district_code": None, "unit_code": None, "specialty": sp,
                             "capacity": 1000 if t == "shelter" else None} for i, x, y, t, sp, _ in rows])
    svc = ResourceService(db, AreaDirectory(db))
    started = time.perf_counter()
    svc.index()
    build = time.perf_counter() - started

    def indexed(q):
        return [i["id"] for i in svc.nearest(q["lon"], q["lat"], type=q.get("kind"), specialty=q.get("specialty"),
                                             radius_m=q.get("radius_m"), limit=q["limit"])["items"]]

    def scanned(q):
        stmt = select(Resource.id, Resource.lon, Resource.lat)
        if q.get("kind"):
            stmt = stmt.where(Resource.type == q["kind"])
        if q.get("specialty"):
            stmt = stmt.where(Resource.specialty == q["specialty"])
        with db.session() as s:
            found = s.execute(stmt).all()
        ids = np.array([r[0] for r in found], dtype=object)
        d = geodesic_m(q["lon"], q["lat"], np.array([r[1] for r in found]), np.array([r[2] for r in found]))
        if q.get("radius_m") is not None:
            ids, d = ids[d <= q["radius_m"]], d[d <= q["radius_m"]]
        order = np.lexsort((ids.astype(str), d))[:q["limit"]]
        chosen = [str(ids[i]) for i in order]
        items = svc._items(chosen)  # the answer's rows, as the service reads them
        return [i for i in chosen if i in items]

    for q in queries[:20]:  # warm both
        indexed(q), scanned(q)
    fast, a = timed(indexed, queries)
    slow, b = timed(scanned, queries)
    db.dispose()
    return fast, slow, a, b, build


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=20261207)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    poly = city_polygon()
    rows = make_rows(args.n, rng, poly)
    queries = make_queries(args.queries, rng, poly)
    print(f"{args.n:,} resources over the demo city, {args.queries:,} queries (limit 20; ⅓ no filter, ⅓ type, "
          f"⅓ type + specialty; ⅕ within 5 km)")

    started = time.perf_counter()
    index = NearestIndex.build(rows)
    print(f"index built in {(time.perf_counter() - started) * 1000:.0f} ms")
    args_of = lambda q: dict(limit=q["limit"], kind=q.get("kind"), specialty=q.get("specialty"),  # noqa: E731
                             radius_m=q.get("radius_m"))
    for q in queries[:20]:
        index.nearest(q["lon"], q["lat"], **args_of(q)), index.scan(q["lon"], q["lat"], **args_of(q))
    fast, a = timed(lambda q: [h.id for h in index.nearest(q["lon"], q["lat"], **args_of(q))], queries)
    slow, b = timed(lambda q: [h.id for h in index.scan(q["lon"], q["lat"], **args_of(q))], queries)
    assert a == b, "the index and the scan disagree"
    report("index vs brute-force scan (in memory)", fast, slow, "STRtree walk", "scan of every resource")
    for label, pick in (("no filter", 0), ("type", 1), ("type + specialty", 2)):
        f = [t for i, t in enumerate(fast) if i % 3 == pick]
        s_ = [t for i, t in enumerate(slow) if i % 3 == pick]
        print(f"    {label:<18} index median {stats(f)[0]:.3f} ms, scan median {stats(s_)[0]:.3f} ms")

    with tempfile.TemporaryDirectory(prefix="bench_resources_") as tmp:
        fast, slow, a, b, build = service_pair(rows, queries, Path(tmp))
    assert a == b, "the service and the SQL scan disagree"
    print(f"service index (re)built from SQLite in {build * 1000:.0f} ms")
    report("through the service over SQLite (rows of the answer read)", fast, slow, "ResourceService.nearest",
           "SQL read of all + sort")
    print("same ids, same order: every query, both pairs")


if __name__ == "__main__":
    main()
