"""Benchmark of the demo history backfill (demo/backfill.py): N days of Changzhou on SQLite (and, with
--pg, PostgreSQL), against two baselines measured in the same run (python bench/bench_backfill.py
[--days 90] [--pg] [--keep]):

* the floor: SQLite copying the very rows the backfill wrote from one file into a fresh copy of the
  seeded database (INSERT … SELECT, no Python at all): what the writes alone cost on this machine now;
* the old way: the live simulator in simulated time through CaseService.intake and act, one case at a
  time, for a few simulated hours at the same daily volume, extrapolated to N days.

It also prints the load average before and after (the machine is shared) and the month figures of the
made history (figures.period.period_figures) next to the profile's targets.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import Workdir  # noqa: E402
from cases.service import CaseService  # noqa: E402
from data.area_directory import AreaDirectory  # noqa: E402
from data.db import SQLITE_PRAGMAS, Database  # noqa: E402
from data.schema import init_db  # noqa: E402
from demo.backfill import backfill, load_profile  # noqa: E402
from demo.runner import SimulationRunner  # noqa: E402
from demo.seed import seed_demo  # noqa: E402
from dispatch.city_time import CITY_TZ  # noqa: E402
from figures.period import period_figures  # noqa: E402

PG_URL = os.environ.get("UCC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = ("cases", "case_history", "case_events")


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def seeded(work: Workdir) -> Path:
    path = work.path / "base.db"
    db = Database(f"sqlite:///{path}")
    init_db(db)
    seed_demo(db, progress=lambda _m: None)
    db.dispose()
    return path


def run_backfill(url: str, days: int, now: datetime, parallel: bool | None):
    db = Database(url)
    service = CaseService(db, AreaDirectory(db))
    t = time.perf_counter()
    report = backfill(service, days, now=now, parallel=parallel)
    seconds = time.perf_counter() - t
    return db, service, report, seconds


def floor(work: Workdir, base: Path, made: Path) -> float:
    """SQLite alone: the same rows copied into a fresh seeded copy, in one transaction per table."""
    dst = work.copy(base, "floor.db")
    con = sqlite3.connect(dst, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        con.execute("PRAGMA " + pragma)
    con.execute("PRAGMA cache_size=-262144")
    con.execute(f"ATTACH DATABASE '{made}' AS made")
    t = time.perf_counter()
    for table in TABLES:
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"INSERT INTO main.{table} SELECT * FROM made.{table} ORDER BY 1")
        con.execute("COMMIT")
    seconds = time.perf_counter() - t
    con.close()
    return seconds


def old_way(work: Workdir, base: Path, hours: float, now: datetime) -> tuple[int, int, float]:
    """(reports, transactions, seconds) through CaseService.intake and act: the live simulator in
    simulated time over a working morning (09:00 on the last working day) at the history's volume."""
    path = work.copy(base, "oldway.db")
    db = Database(f"sqlite:///{path}")
    service = CaseService(db, AreaDirectory(db))
    profile = load_profile()
    rate = profile.reports_per_working_day / 1440.0
    day = now.astimezone(CITY_TZ).date() - timedelta(days=1)
    while not service.calendar.is_working_day(day):
        day -= timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 9, tzinfo=CITY_TZ)
    runner = SimulationRunner(service, seed=1, rate_per_minute=rate)
    runner.ready()
    t = time.perf_counter()
    runner.run(rate, hours * 3600, realtime=False, start=start, echo=lambda _l: None)
    seconds = time.perf_counter() - t
    db.dispose()
    return runner.stats["reports"], runner.stats["reports"] + runner.stats["actions"], seconds


def figures(service: CaseService, now: datetime) -> None:
    targets = load_profile().targets
    end = now.astimezone(CITY_TZ).date() - timedelta(days=3)
    with service.db.session() as s:
        k = period_figures(s, end - timedelta(days=29), end, now)["total"]
    print(f"  month {end - timedelta(days=29)} … {end}: received {k.received:,}, due {k.due:,}, "
          f"closure {k.closure_rate:.2%} (target {targets['closure_rate']}), on time {k.on_time_rate:.2%} "
          f"(target {targets['on_time_rate']}), rework {k.rework_rate:.2%} (target {targets['rework_rate']}), "
          f"extension {k.extension_rate:.2%}, overdue open {k.overdue_open:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL (a throwaway schema)")
    parser.add_argument("--both", action="store_true", help="also the other way (forked maker or one process)")
    parser.add_argument("--old-hours", type=float, default=2.0, help="simulated hours of the old way")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Workdir(args.keep, prefix="bench_backfill_")
    try:
        now = datetime.now(timezone.utc)
        t = time.perf_counter()
        base = seeded(work)
        print(f"seeded the demo city in {time.perf_counter() - t:.1f} s ({load()})")
        t = time.perf_counter()
        n = 0
        for i in range(10_000_000):
            n += i
        print(f"Python reference: 10M additions in {time.perf_counter() - t:.2f} s")

        made = work.copy(base, "made.db")
        print(load())
        db, service, report, seconds = run_backfill(f"sqlite:///{made}", args.days, now, None)
        print(f"SQLite backfill {args.days} days: {report.cases:,} cases, {report.rows:,} history rows "
              f"(and as many outbox rows) in {seconds:.1f} s ({report.cases / seconds:,.0f} cases/s, "
              f"{'forked maker' if report.parallel else 'one process'}; {load()})")
        figures(service, now)
        db.dispose()
        again_db, _, again, again_s = run_backfill(f"sqlite:///{made}", args.days, now, None)
        print(f"  second run: {again.cases} cases in {again_s:.1f} s")
        again_db.dispose()
        print(f"  size {made.stat().st_size / 1e6:,.0f} MB")
        f = floor(work, base, made)
        print(f"floor, same run: SQLite copying the same rows (INSERT … SELECT): {f:.1f} s ({load()})")
        if args.both:
            other = work.copy(base, "other.db")
            db, _, again, seconds = run_backfill(f"sqlite:///{other}", args.days, now, not report.parallel)
            print(f"SQLite backfill {'with' if again.parallel else 'without'} the forked maker: {seconds:.1f} s "
                  f"({load()})")
            db.dispose()
        cases, transactions, seconds = old_way(work, base, args.old_hours, now)
        per_s = transactions / seconds
        print(f"old way, same run: {cases:,} reports and {transactions:,} transactions through intake and act in "
              f"{seconds:.1f} s ({per_s:,.0f} transactions/s): {report.rows / per_s / 60:,.1f} min for the same "
              f"{report.rows:,} transitions ({load()})")
        if args.pg:
            from sqlalchemy import create_engine, text

            schema = "bench_bf_" + uuid.uuid4().hex[:8]
            admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
                pg = Database(url)
                init_db(pg)
                seed_demo(pg, progress=lambda _m: None)
                pg.dispose()
                db, service, report, seconds = run_backfill(url, args.days, now, None)
                print(f"PostgreSQL backfill {args.days} days: {report.cases:,} cases in {seconds:.1f} s ({load()})")
                figures(service, now)
                db.dispose()
            finally:
                with admin.connect() as c:
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                admin.dispose()
    finally:
        work.cleanup()


if __name__ == "__main__":
    main()
