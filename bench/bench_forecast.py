"""Benchmark of the forecasts (every district, kind and category, with their backtests) and of the surge check over
every street, grid (5,891) and street x category, on ~1 M cases of history, against plain SQL of the same run."""
from __future__ import annotations

# python bench/bench_forecast.py [--db /tmp/bench_assessment/month_x13.db] [--pg] [--runs 3]
# python bench/bench_forecast.py --demo-days 120 [--volume 0.25]   (the demo history over 中秋 and 国庆 2026)
#
# The database is bench/bench_assessment.py's: the demo city (5,891 grids) with November 2026 at 13x the demo's
# daily volume (~1 M cases, the real lifecycle's rows), opened read-only here (never rebuilt); with --pg also
# its PostgreSQL copy (bench_assessment). For each: the forecast as of 1 December for 14 days by district, by
# kind and by category (each with its 3-week rolling-origin backtest), then the surge check at 10:00 (the day's first:
# it reads the days before its window) and 18:00 (a later one: the window only) on each of the last days of November (no surge is planted in the demo history: every finding there is a false
# alarm, whose rate is printed). The floor: the plain GROUP BY each must read at least (the history's cases per
# district and day; the check's 28 days of cases per grid and category).
import argparse
import os
import sqlite3
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UTC = timezone.utc
DEFAULT_DB = Path("/tmp/bench_assessment/month_x13.db")
PG_URL = os.environ.get("UCC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_assessment")
FLOORS = {
    "forecast": "SELECT district_code, substr(CAST(reported_at AS TEXT), 1, 10), count(*) FROM cases "
                "WHERE reported_at >= :S AND reported_at < :E GROUP BY 1, 2",
    "surge": "SELECT grid_code, category_code, count(*) FROM cases WHERE reported_at >= :S AND reported_at < :E "
             "GROUP BY grid_code, category_code",
}


class ReadOnlySqlite:
    """The bench database opened read-only (mode=ro): what the services need of data.db.Database (session())."""

    def __init__(self, path: Path):
        import sqlalchemy as sa
        from sqlalchemy.orm import sessionmaker

        self.engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False))
        self.Session = sessionmaker(self.engine)

    @contextmanager
    def session(self):
        with self.Session() as s:
            yield s


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run(name: str, db, runs: int) -> None:
    import sqlalchemy as sa

    from data import files
    from dispatch.city_time import CITY_TZ
    from foresight import surge
    from foresight.forecast import ForecastService

    rules, calendar = files.forecast_rules(), files.calendar()
    svc = ForecastService(db, calendar, rules)
    at = datetime(2026, 12, 1, 0, 0, tzinfo=CITY_TZ)
    first = at - timedelta(days=rules.history_days + 7 * rules.backtest_weeks)
    with db.session() as s:
        n = s.execute(sa.text("SELECT count(*) FROM cases")).scalar()
        grids = s.execute(sa.text("SELECT count(*) FROM areas WHERE level = 5")).scalar()
    print(f"{name}: {n:,} cases, {grids:,} grids; {load()}", flush=True)
    for by in ("district", "kind", "category"):
        cold, out = timed(lambda: svc.forecast(by, 14, at))
        warm, floor = [], []
        for _ in range(runs):
            warm.append(timed(lambda: svc.forecast(by, 14, at))[0])
            with db.session() as s:
                floor.append(timed(lambda: s.execute(sa.text(FLOORS["forecast"]),
                                                     {"S": first.astimezone(UTC), "E": at.astimezone(UTC)}).all())[0])
        bt = out["backtest"]
        used = sum(k["used"] == "model" for k in bt["keys"])
        print(f"  forecast by={by:8} keys={len(bt['keys']):3}  cold {cold:6.2f} s  warm {statistics.median(warm):6.2f} s"
              f"  floor {statistics.median(floor):6.2f} s   backtest MAE model {bt['model_error']}  seasonal-naive "
              f"{bt['baseline_error']}  (model used for {used} of {len(bt['keys'])})", flush=True)
        for k in bt["keys"][:8]:
            print(f"      {k['key']:10} model {k['model_error']}  baseline {k['baseline_error']}  used {k['used']}")
    findings, tested, first_times, later_times = 0, 0, [], []
    for day in range(24, 31):  # the last quiet week of November: a morning and an evening check each day
        for hour, times in ((10, first_times), (18, later_times)):
            check_at = datetime(2026, 11, day, hour, 0, tzinfo=CITY_TZ)
            t, result = timed(lambda: surge.check(db, check_at, rules, calendar, svc))
            times.append(t)
            findings += len(result.findings)
            tested += sum(result.tested.values())
            top = [(f.evidence["level"], f.area_code, f.category_code, f.observed, f.upper) for f in result.findings[:3]]
            print(f"  surge check {check_at:%m-%d %H:%M}  {t:6.2f} s  tested {result.tested}  findings "
                  f"{len(result.findings)} {top}", flush=True)
    s0 = datetime(2026, 11, 30, 18, 0, tzinfo=CITY_TZ)
    with db.session() as s:
        floor = timed(lambda: s.execute(sa.text(FLOORS["surge"]), {"S": (s0 - timedelta(days=28)).astimezone(UTC),
                                                                    "E": s0.astimezone(UTC)}).all())[0]
    print(f"  surge check: a day's first {statistics.median(first_times):.2f} s, a later one of the same day "
          f"{statistics.median(later_times):.2f} s (medians); floor (28 days by grid x category) {floor:.2f} s; "
          f"findings on quiet days {findings} of {tested:,} area-checks = {findings / tested:.4%}", flush=True)


def demo_history(days: int, volume: float) -> None:
    """The backtest over the demo history (demo/backfill.py: weekday factors, weekends, holidays and make-up days)
    of `days` days up to 20 October 2026, at `volume` times the demo's daily volume: by district and by kind as of
    15 October (its three backtest weeks hold 中秋 and 国庆) and as of 1 October."""
    from bench.bench_common import demo_db
    from cases.service import CaseService
    from data import files
    from data.area_directory import AreaDirectory
    from data.db import Database
    from demo.backfill import backfill
    from dispatch.city_time import CITY_TZ
    from foresight.forecast import ForecastService

    path = Path(f"/tmp/bench_forecast/demo_{days}d_x{volume:g}.db")
    now = datetime(2026, 10, 20, 16, 0, tzinfo=UTC)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        demo_db(path)
        db = Database(f"sqlite:///{path}")
        t = time.perf_counter()
        report = backfill(CaseService(db, AreaDirectory(db), clock=lambda: now), days, now=now, volume=volume)
        print(f"backfill {days} days at {volume:g}x: {time.perf_counter() - t:.0f} s ({report})", flush=True)
        db.dispose()
    db = ReadOnlySqlite(path)
    svc = ForecastService(db, files.calendar(), files.forecast_rules())
    for at in (datetime(2026, 10, 1, 0, 0, tzinfo=CITY_TZ), datetime(2026, 10, 15, 0, 0, tzinfo=CITY_TZ)):
        for by in ("district", "kind"):
            t, out = timed(lambda: svc.backtest(by, at))
            print(f"demo history, backtest as of {at:%Y-%m-%d} by {by} ({t:.2f} s), MAE cases a day:")
            for k in out["keys"]:
                print(f"  | {k['key']} | {k['model_error']} | {k['baseline_error']} | {k['used']} |")
    from foresight import surge

    rules = files.forecast_rules()
    findings, tested, seconds = [], 0, []
    for day in range(1, 21):  # 国庆 and the two weeks after it, four checks a day; no surge is planted
        for hour in (10, 14, 18, 23):
            check_at = datetime(2026, 10, day, hour, 0, tzinfo=CITY_TZ)
            t, result = timed(lambda: surge.check(db, check_at, rules, service=svc))
            seconds.append(t)
            tested += sum(result.tested.values())
            findings += [(f"{check_at:%m-%d %H}", f.evidence["level"], f.area_code, f.category_code, f.observed,
                          f.upper) for f in result.findings]
    print(f"demo history, surge checks 1-20 Oct 2026 (4 a day, {statistics.median(seconds):.2f} s each): "
          f"{len(findings)} findings in {tested:,} area-checks = {len(findings) / tested:.4%}; "
          f"{len({(f[0][:5], f[1], f[2], f[3]) for f in findings})} distinct (day, area, category)")
    for f in findings[:20]:
        print("   ", f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", type=Path, default=DEFAULT_DB)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", action="store_true", help="also on PostgreSQL (bench_assessment, bench_assessment.py --pg)")
    ap.add_argument("--pg-only", action="store_true", help="on PostgreSQL only")
    ap.add_argument("--demo-days", type=int, default=0, help="instead: the backtest over this many days of demo history")
    ap.add_argument("--volume", type=float, default=0.25, help="with --demo-days: times the demo's daily volume")
    args = ap.parse_args()
    if args.demo_days:
        demo_history(args.demo_days, args.volume)
        return
    if not args.db.exists():
        sys.exit(f"{args.db} is missing: run bench/bench_assessment.py first (it builds the 1 M-case month)")
    if not args.pg_only:
        run("sqlite", ReadOnlySqlite(args.db), args.runs)
    if args.pg or args.pg_only:
        from data.db import Database

        db = Database(PG_URL)
        run("postgresql", db, args.runs)
        db.dispose()


if __name__ == "__main__":
    main()
