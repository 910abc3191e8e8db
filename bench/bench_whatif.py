"""Benchmark of a what-if run on the demo city: the whole run (inputs, replications, result) against the backlog read
alone, in the same process and run."""
from __future__ import annotations

# python bench/bench_whatif.py [--db /tmp/bench_whatif.db] [--days 35] [--runs 3]
#
# 1. makes (or reuses) a SQLite file with the demo city (demo.seed) and --days of demo history ending at NOW
#    (demo.backfill: about 2,600 reports a day, some 4,600 cases in the units' hands at NOW);
# 2. times, median of --runs after a warm-up: the backlog read alone (foresight.whatif.backlog_rows, the floor
#    every run pays), the inputs (load_world: backlog, four weeks of resolutions and reports, the forecast, the
#    deadline table) and the whole run of data/catalog/whatif.json's replications with a change of every kind
#    (the seasonal-naive forecast, as the tests use), alternating so that a slow phase slows all three.
import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
UTC = timezone.utc
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # a Monday 10:00 in the city


def demo_file(path: Path, days: int) -> None:
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.schema import init_db
    from demo.backfill import backfill
    from demo.seed import seed_demo

    db = Database(f"sqlite:///{path}")
    init_db(db)
    seed_demo(db, progress=lambda _m: None)
    report = backfill(CaseService(db, AreaDirectory(db)), days, now=NOW)
    print(f"built {path}: {report.cases} cases over {days} days", flush=True)
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="/tmp/bench_whatif.db")
    ap.add_argument("--days", type=int, default=35)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    path = Path(args.db)
    if not path.exists():
        demo_file(path, args.days)

    from sqlalchemy import func, select

    from data import files
    from data.db import Database
    from data.models import Case, Unit
    from foresight.whatif import WhatIfService, backlog_rows, load_world, seasonal_naive_forecast

    db = Database(f"sqlite:///{path}")
    svc = WhatIfService(db, seasonal_naive_forecast(db))
    with db.session() as s:
        unit = s.scalars(select(Case.unit_code).where(Case.unit_code.is_not(None)).group_by(Case.unit_code)
                         .order_by(func.count().desc()).limit(1)).one()
        units = s.scalar(select(func.count()).select_from(Unit))
    changes = svc.check([{"kind": "unit_capacity", "unit": unit, "factor": 0.7},
                         {"kind": "category_volume", "category": "event", "factor": 1.5},
                         {"kind": "extra_reports", "area": "320402", "count": 200, "source": "patrol"}])

    def backlog():
        with db.session() as s:
            return len(backlog_rows(s, NOW))

    def inputs():
        return load_world(db, svc.forecast, svc.rules, svc.calendar, NOW, svc.fallback)

    def whole():
        return svc.run(changes, NOW)

    times: dict[str, list[float]] = {"backlog read": [], "inputs": [], "whole run": []}
    jobs = {"backlog read": backlog, "inputs": inputs, "whole run": whole}
    for job in jobs.values():  # warm-up
        job()
    for _ in range(args.runs):
        for name, job in jobs.items():
            t = time.perf_counter()
            out = job()
            times[name].append(time.perf_counter() - t)
    world = inputs()
    print(f"demo city: {units} units, {len(world.backlog_unit)} cases in hand at {NOW.isoformat()}, "
          f"{world.arrivals.sum():.0f} reports expected over {svc.rules.horizon_days} days; "
          f"{out['replications']} replications, budget {svc.rules.time_budget_seconds:g} s")
    for name, values in times.items():
        print(f"{name:>13}: median {statistics.median(values):6.2f} s  (runs: "
              f"{', '.join(f'{v:.2f}' for v in values)})")
    city = out["city"]
    print("city baseline → changed: overdue {:.0f} → {:.0f}, on-time {:.3f} → {:.3f}, score {:.2f} → {:.2f}".format(
        city["baseline"]["overdue"], city["changed"]["overdue"], city["baseline"]["on_time_rate"],
        city["changed"]["on_time_rate"], city["baseline"]["score"], city["changed"]["score"]))


if __name__ == "__main__":
    main()
