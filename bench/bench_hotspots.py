"""Gi* hotspots over the demo city's 5,891 grids with a month of ~1 M cases: the weights' build, and each window (7
and 30 days) as counts, Gi* + FDR and clusters, against a same-run baseline (the plain GROUP BY of the window's
cases per grid). The database is only read (SQLite opened read-only).

    .venv/bin/python bench/bench_hotspots.py --sqlite /tmp/bench_assessment/month_x13.db --at 2026-12-01T10:00:00+08:00
    .venv/bin/python bench/bench_hotspots.py --pg postgresql://postgres@127.0.0.1:5432/bench_assessment
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine, func, select  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from data import files  # noqa: E402
from data.db import Database  # noqa: E402
from data.models import Case  # noqa: E402
from dispatch.city_time import city_today  # noqa: E402
from figures.case_counts import daily_counts  # noqa: E402
from foresight import hotspots  # noqa: E402


def read_only_sqlite(path: str) -> Database:
    """A Database over `path` that cannot write (another process built it; it is shared)."""
    db = Database("sqlite://")
    db.engine.dispose()
    db.url = f"sqlite:///{path}"
    db.engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                                           check_same_thread=False))
    db.Session = sessionmaker(db.engine, expire_on_commit=False)
    return db


def timed(fn, runs: int):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sqlite", help="a SQLite file (opened read-only)")
    ap.add_argument("--pg", help="a PostgreSQL URL")
    ap.add_argument("--at", default="2026-12-01T10:00:00+08:00", help="the run's time (windows end at its day)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not (args.sqlite or args.pg):
        ap.error("--sqlite or --pg")
    db = read_only_sqlite(args.sqlite) if args.sqlite else Database(args.pg)
    at = datetime.fromisoformat(args.at)
    rules = files.warning_rules()
    hr = rules.hotspots
    with db.session() as s:
        n_cases = s.scalar(select(func.count()).select_from(Case))
    print(f"database: {args.sqlite or args.pg} ({db.engine.dialect.name}), {n_cases:,} cases; at {args.at}; "
          f"median of {args.runs} runs")

    def build():
        hotspots._cache.clear()
        with db.session() as s:
            return hotspots.grid_weights(s, hr, db_key="bench")

    t_build, gw = timed(build, args.runs)
    with db.session() as s:
        t_cached, _ = timed(lambda: hotspots.grid_weights(s, hr, db_key="bench"), args.runs)
    print(f"weights ({hr.weights}, {len(gw.codes):,} grids, mean {gw.w.mean_neighbors:.2f} neighbours, "
          f"{gw.islands_linked} islands linked): build {t_build * 1000:.0f} ms (areas read + libpysal), "
          f"cached {t_cached * 1000:.2f} ms")
    for days in hr.windows_days:
        start, end = hotspots.window(at, days)
        with db.session() as s:
            q = (select(Case.grid_code, func.count()).where(Case.reported_at >= start, Case.reported_at < end)
                 .group_by(Case.grid_code))
            t_base, rows = timed(lambda: s.execute(q).all(), args.runs)
            t_counts, counts = timed(lambda: hotspots.grid_counts(s, start, end), args.runs)
            t_daily, _ = timed(lambda: daily_counts(s, "grid", city_today(start), city_today(end) - timedelta(days=1)),
                               1)
        y = np.array([counts.get(c, 0) for c in gw.codes], dtype=float)
        t_gi, (z, p, q_) = timed(lambda: hotspots.gi_star(y, gw, hr), args.runs)
        t_cl, clusters = timed(lambda: hotspots.hot_clusters(gw, y, z, q_, hr), args.runs)
        hot = int(((z > 0) & (q_ <= hr.fdr_alpha)).sum())
        print(f"{days:>2}-day window {start:%m-%d %H:%M}–{end:%m-%d %H:%M} UTC, {int(y.sum()):,} cases: "
              f"baseline GROUP BY grid {t_base * 1000:.0f} ms ({len(rows):,} grids) | grid_counts "
              f"{t_counts * 1000:.0f} ms (daily_counts by grid, summed: {t_daily * 1000:.0f} ms) | "
              f"Gi* + BH {t_gi * 1000:.0f} ms | clusters {t_cl * 1000:.1f} ms "
              f"→ {hot} hot grids in {len(clusters)} clusters")
    hotspots._cache.clear()
    t_detect, found = timed(lambda: hotspots.detect(db, at, rules), 1)
    t_warm, found = timed(lambda: hotspots.detect(db, at, rules), args.runs)
    print(f"detect(): first (weights built) {t_detect:.2f} s, then {t_warm:.2f} s for both windows "
          f"({len(found)} findings, their case ids included)")
    from foresight import recurrent

    t_rec, spots = timed(lambda: recurrent.detect(db, at, rules, keep_names=False), 1)
    print(f"recurrent.detect() over the last {rules.recurrent.period_days} days: {t_rec:.2f} s ({len(spots)} spots "
          f"of ≥ {rules.recurrent.min_repeats} cases within {rules.recurrent.radius_m:g} m)")
    db.engine.dispose()


if __name__ == "__main__":
    main()
