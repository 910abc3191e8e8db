"""Benchmark of the monthly assessment report: report_data + write_xlsx + write_pdf for a month of N cases, against a plain SQL GROUP BY of the same run."""
from __future__ import annotations

# python bench/bench_report.py [--dir /tmp/bench_report] [--sizes 50000,1000000] [--days 30] [--runs 3] [--pg]
#
# The budget (issue 15): a month of 1 M cases exports in at most 30 s.
# 1. makes (or reuses, in DIR) a seeded demo SQLite file per size with N cases reported over the `--days`
#    days before NOW (bench_wall.fill_cases; NOW is the first minutes of 2026-12-01 in Shanghai, so with
#    the default 30 days every case lies in the reported month 2026-11: a month of N cases), migrated to
#    this code's schema; with --pg also a PostgreSQL copy (bench_figures.pg_database's way);
# 2. times, median of --runs after a warm-up, report_data (every figure the report shows, the 12-month
#    trend included), write_xlsx and write_pdf, and in alternation with each report_data run the floor:
#    one GROUP BY over the month's cases by district (counts of received, accepted, closed), the least a
#    report of the month must read. Prints the times, the ratio to the floor and the budget's verdict.
#
# fill_cases writes cases, not their history: the posts' figures (岗位评价, read from case_history) cost
# next to nothing here. `--url URL --month YYYY-MM` times the same on a database with history instead,
# e.g. one filled by `flask backfill --days 70` (about 75,000 cases and 570,000 history rows a month).
import argparse
import io
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

UTC = timezone.utc
NOW = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 2026-12-01 00:30 in Shanghai: November is complete
MONTH = "2026-11"
BUDGET_S = 30.0


def sqlite_file(work: Path, n: int, days: int) -> Path:
    """DIR/report_N_dD.db: the demo city and N cases over D days before NOW, at this code's schema (reused)."""
    from alembic.script import ScriptDirectory

    from bench.bench_common import demo_db
    from bench.bench_wall import fill_cases
    from data.db import Database
    from data.schema import alembic_config, init_db

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    path = work / f"report_{n}_d{days}.db"
    if path.exists():
        with sqlite3.connect(str(path)) as con:
            if con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head:
                return path
        db = Database(f"sqlite:///{path}")
        init_db(db)  # an older schema: migrate in place
        db.dispose()
        return path
    demo = work / "demo.db"
    if not demo.exists():
        demo_db(demo)
    tmp = work / f"tmp_{n}_d{days}.db"
    shutil.copy(demo, tmp)
    t = time.perf_counter()
    info = fill_cases(tmp, n, now=NOW, days=days)
    print(f"  filled {n:,} cases over {days} days in {time.perf_counter() - t:.1f} s; states {info['states']}",
          flush=True)
    db = Database(f"sqlite:///{tmp}")
    init_db(db)
    db.dispose()
    tmp.rename(path)
    return path


def pg_url(work: Path, n: int, days: int) -> str:
    """bench_report_N_dD on the local PostgreSQL with the SQLite file's rows (bench_figures' copy)."""
    import bench.bench_figures as bf

    original = bf.base_file
    bf.base_file = lambda w, size: sqlite_file(w, size, days)  # its copy reads our file
    try:
        return bf.pg_database(work, n, prefix=f"bench_report_d{days}")
    finally:
        bf.base_file = original


def _services(url: str, now: datetime | None):
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database

    db = Database(url)
    return CaseService(db, AreaDirectory(db), **({"clock": lambda: now} if now else {}))


def _floor(cases, month: str):
    """One GROUP BY over the month's cases: received, accepted and closed per district."""
    from sqlalchemy import func, select

    from data.models import Case
    from figures.definitions import period_bounds
    from figures.report import parse_month

    S, E = period_bounds(*parse_month(month))
    q = (select(Case.district_code, func.count(), func.count(Case.accepted_at), func.count(Case.closed_at))
         .where(Case.reported_at >= S, Case.reported_at < E).group_by(Case.district_code))
    with cases.db.session() as s:
        return s.execute(q).all()


def measure(url: str, runs: int, month: str = MONTH, now: datetime | None = NOW) -> dict:
    from figures.report import report_data, write_pdf, write_xlsx

    cases = _services(url, now)
    t = time.perf_counter()
    data = report_data(cases, month)  # the first, cold run (the area directory, the catalog, the pages)
    cold = time.perf_counter() - t
    _floor(cases, month)
    times: dict[str, list[float]] = {"report_data": [], "floor": [], "write_xlsx": [], "write_pdf": []}
    for _ in range(runs):
        for name, fn in (("report_data", lambda: report_data(cases, month)), ("floor", lambda: _floor(cases, month))):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    sizes = {}
    for name, writer in (("write_xlsx", write_xlsx), ("write_pdf", write_pdf)):
        for _ in range(runs):
            buf = io.BytesIO()
            t = time.perf_counter()
            writer(data, buf)
            times[name].append(time.perf_counter() - t)
        sizes[name] = len(buf.getvalue())
    cases.db.dispose()
    med = {k: statistics.median(v) for k, v in times.items()}
    med["cold_report_data"] = cold
    rows = {k: len(v) for k, v in data["tables"].items()}
    return {"median_s": med, "bytes": sizes, "rows": rows, "accepted": data["city"]["current"].get("accepted")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_report"))
    ap.add_argument("--sizes", default="1000000", help="comma-separated case counts")
    ap.add_argument("--days", type=int, default=30, help="the cases are reported over this many days before NOW")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", action="store_true", help="also on PostgreSQL (127.0.0.1:5432)")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--url", help="time the report on this database instead (its own clock: now)")
    ap.add_argument("--month", default=MONTH, help="the month, with --url")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    from figures import service

    missing = [f for f in ("assessment", "monthly_ranking", "penalty_cases") if not hasattr(service, f)]
    if missing:
        sys.exit(f"figures.service lacks {', '.join(missing)}: the report needs them")
    if args.url:
        report(f"{args.url.split('/')[-1]}", measure(args.url, args.runs, args.month, None), args.month)
        return
    for n in (int(s) for s in args.sizes.split(",")):
        targets = []
        if not args.no_sqlite:
            targets.append(("sqlite", f"sqlite:///{sqlite_file(args.dir, n, args.days)}"))
        if args.pg:
            targets.append(("postgresql", pg_url(args.dir, n, args.days)))
        for kind, url in targets:
            report(f"{kind:<10} {n:>9,} cases over {args.days} d,", measure(url, args.runs), MONTH)


def report(label: str, r: dict, month: str) -> None:
    m = r["median_s"]
    total = m["report_data"] + m["write_xlsx"] + m["write_pdf"]
    verdict = "within" if total <= BUDGET_S else "OVER"
    print(f"{label} month {month} ({r['accepted'] or 0:,} accepted in it):"
          f" report_data {m['report_data']:.2f} s (cold {m['cold_report_data']:.2f} s) ="
          f" {m['report_data'] / m['floor']:.1f}x the GROUP BY floor ({m['floor'] * 1000:.0f} ms);"
          f" write_xlsx {m['write_xlsx']:.2f} s ({r['bytes']['write_xlsx'] / 1024:,.0f} KB);"
          f" write_pdf {m['write_pdf']:.2f} s ({r['bytes']['write_pdf'] / 1024:,.0f} KB);"
          f" total {total:.2f} s, {verdict} the {BUDGET_S:.0f} s budget", flush=True)
    print(f"           rows: {r['rows']}", flush=True)


if __name__ == "__main__":
    main()
