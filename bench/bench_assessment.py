"""Benchmark of the assessment (督办考核) of a month over ~1 M cases: each `by`, cold and warm, against plain SQL of the same run."""
from __future__ import annotations

# python bench/bench_assessment.py --dir /tmp/bench_assessment [--volume 13] [--pg] [--runs 3]
#
# 1. makes (or reuses, in DIR) a seeded demo SQLite file holding one month of demo history at `volume` times
#    the demo's daily volume (demo/backfill.py: the real lifecycle's rows, case_history included; volume 13
#    is ~1 M cases in November 2026); with --pg the same rows copied into PostgreSQL (bench_assessment),
#    vacuumed and analyzed;
# 2. for each `by` (district, grid, unit, person), times figures.service.assessment for November: "cold" in a
#    fresh process (SQLite's page cache empty; the OS's file cache is not dropped: this machine gives no
#    root), then "warm" (median of --runs in that process); and in the same process a plain-SQL floor that
#    reads what that figure must read at least (one GROUP BY over the month's cases by grid, by unit, or the
#    month's history rows by actor and action). The ratio figure / floor is what the figure costs over the
#    least a database could do; the machine is shared, so both are measured in alternation.
import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UTC = timezone.utc
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 December in Shanghai: November has ended
START, END = date(2026, 11, 1), date(2026, 11, 30)
PG_URL = os.environ.get("UCC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_assessment")
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BYS = ("district", "grid", "unit", "person")

FLOORS = {  # the least each figure reads: the month's rows, grouped once
    "district": "SELECT district_code, count(*) FROM cases WHERE reported_at >= :S AND reported_at < :E "
                "GROUP BY district_code",
    "grid": "SELECT grid_code, count(*), sum(CASE WHEN closed_at < :E THEN 1 ELSE 0 END) FROM cases "
            "WHERE reported_at >= :S AND reported_at < :E GROUP BY grid_code",
    "unit": "SELECT unit_code, count(*), sum(CASE WHEN resolved_at <= deadline_at THEN 1 ELSE 0 END) FROM cases "
            "WHERE deadline_at >= :S AND deadline_at < :E GROUP BY unit_code",
    "person": "SELECT actor, action, count(*) FROM case_history WHERE at >= :S AND at < :E GROUP BY actor, action",
}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_sqlite(path: Path, volume: float) -> None:
    from bench.bench_common import demo_db
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database
    from demo.backfill import backfill

    demo_db(path)
    db = Database(f"sqlite:///{path}")
    service = CaseService(db, AreaDirectory(db), clock=lambda: NOW)
    t = time.perf_counter()
    report = backfill(service, 31, now=NOW, volume=volume, progress=True)
    print(f"made {report.cases:,} cases in {time.perf_counter() - t:.0f} s", flush=True)
    db.dispose()


def copy_to_pg(path: Path) -> None:
    """The SQLite file's rows into a fresh PostgreSQL database at this code's schema (bench_figures' way)."""
    import sqlalchemy as sa

    from data.db import Database
    from data.models import Base
    from data.schema import init_db

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql("DROP DATABASE IF EXISTS bench_assessment WITH (FORCE)")
        c.exec_driver_sql("CREATE DATABASE bench_assessment")
    admin.dispose()
    pg = Database(PG_URL)
    init_db(pg)
    src = sa.create_engine(f"sqlite:///{path}")
    tables = [t for t in Base.metadata.sorted_tables]
    with src.connect() as s, pg.engine.begin() as d:
        for t in reversed(tables):
            d.execute(t.delete())
        for t in tables:
            rows = s.execute(sa.select(t)).mappings()
            batch = []
            for r in rows:
                batch.append(dict(r))
                if len(batch) == 20_000:
                    d.execute(t.insert(), batch)
                    batch = []
            if batch:
                d.execute(t.insert(), batch)
        for t in tables:
            if "id" in t.c and isinstance(t.c.id.type, (sa.Integer, sa.BigInteger)):
                d.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                                  f"coalesce((SELECT max(id) FROM {t.name}), 1))")
    with pg.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("VACUUM ANALYZE")
    pg.dispose()


def _measure(url: str, by: str, runs: int, out) -> None:
    """In a fresh process: the first call (cold), then `runs` alternations of the figure and its floor."""
    import sqlalchemy as sa

    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database
    from figures import service as fs
    from figures.definitions import period_bounds

    db = Database(url)
    cases = CaseService(db, AreaDirectory(db), clock=lambda: NOW)
    cases.areas.records()  # the hierarchy is loaded once per process by every edge: not the figure's cost
    S, E = period_bounds(START, END)
    t = time.perf_counter()
    answer = fs.assessment(cases, START, END, by, now=NOW)
    cold = time.perf_counter() - t
    warm, floor = [], []
    for _ in range(runs):
        t = time.perf_counter()
        fs.assessment(cases, START, END, by, now=NOW)
        warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        with db.engine.connect() as c:
            c.execute(sa.text(FLOORS[by]), {"S": S, "E": E}).all()
        floor.append(time.perf_counter() - t)
    out.put({"by": by, "items": len(answer["items"]), "cold": cold, "warm": statistics.median(warm),
             "floor": statistics.median(floor)})
    db.dispose()


def measure(url: str, by: str, runs: int) -> dict:
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_measure, args=(url, by, runs, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_assessment"))
    ap.add_argument("--volume", type=float, default=13.0, help="times the demo's daily volume (13: ~1 M a month)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", action="store_true", help="also on PostgreSQL (the rows copied from SQLite)")
    ap.add_argument("--only", default=",".join(BYS))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"month_x{args.volume:g}.db"
    if not path.exists():
        make_sqlite(path, args.volume)
    import sqlite3

    n = sqlite3.connect(path).execute("SELECT count(*) FROM cases WHERE reported_at >= '2026-10-31T16:00' "
                                      "AND reported_at < '2026-11-30T16:00'").fetchone()[0]
    print(f"{path}: {n:,} cases reported in November 2026; {load()}", flush=True)
    urls = [("sqlite", f"sqlite:///{path}")]
    if args.pg:
        copy_to_pg(path)
        urls.append(("postgresql", PG_URL))
    results = []
    for name, url in urls:
        for by in args.only.split(","):
            r = measure(url, by, args.runs)
            r["db"] = name
            results.append(r)
            print(f"{name:10} by={by:8} items={r['items']:6}  cold {r['cold']:6.2f} s  warm {r['warm']:6.2f} s  "
                  f"floor {r['floor']:6.2f} s  warm/floor {r['warm'] / r['floor']:5.1f}x   {load()}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
