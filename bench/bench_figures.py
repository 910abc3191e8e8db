"""Benchmark of the figures at 10 k, 100 k and 1 M cases: each figure's time against a plain SQL query of the same run, and peak memory."""
from __future__ import annotations

# python bench/bench_figures.py --dir /tmp/bench_figures [--sizes 10000,100000,1000000] [--pg] [--code DIR]
#                                [--only kpis,events,cockpit] [--runs 3] [--no-memory] [--no-sqlite]
#
# 1. makes (or reuses, in DIR) a seeded demo SQLite file per size, filled by bench_wall.fill_cases
#    (N cases over 730 days ending at a fixed instant), and a copy migrated to this code's schema; with
#    --pg also a PostgreSQL database per size (bench_figures_N on 127.0.0.1, rows copied from SQLite),
#    vacuumed and analyzed after the copy and after each migration, as a server's autovacuum would leave
#    it (index-only scans skip the table only for pages the visibility map marks all-visible). The SQLite
#    files are not analyzed: the app never runs ANALYZE, and its queries are written for a planner
#    without statistics;
# 2. times, median of 5 after a warm-up, each figure as the edges read it (figures/service.py, the case
#    list of GET /api/v1/events, the cockpit's snapshot) and, in the same run, a plain SQL query that
#    reads what the figure must read at least (the period's cases, one page of ids, ...): the ratio is
#    the figure's cost over that floor (a KPI and its floor, the street's and the city's cockpit, run in
#    alternation, so that a slow phase of the machine slows both);
# 3. measures each KPI figure's peak RSS in a fresh process (the growth over the process after start).
#
# --code DIR runs the same measurements against another checkout of the code (e.g. the starting commit,
# `git archive f421f11 | tar -x -C DIR`): what exists there is called the way the edges called it then.
import argparse
import inspect
import json
import multiprocessing as mp
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)  # the data's "now": a Thursday 14:00 in Shanghai
DAYS = 730
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TABLES = ("areas", "categories", "units", "cases")


def _code_path(code: Path | None) -> None:
    first = str(code or ROOT)
    for p in (str(ROOT), first):
        while p in sys.path:
            sys.path.remove(p)
    sys.path.insert(0, first)
    if code is not None:
        sys.path.insert(1, str(ROOT))  # bench.bench_wall for the fill, when the other checkout lacks it


# ---- the data -----------------------------------------------------------------------------------------
def base_file(work: Path, n: int) -> Path:
    """DIR/sqlite_N.db: the demo city and N cases, at the schema of the code that made it first."""
    from bench.bench_wall import demo_db, fill_cases

    path = work / f"sqlite_{n}.db"
    if path.exists():
        return path
    demo = work / "demo.db"
    if not demo.exists():
        demo_db(demo)
    tmp = work / f"tmp_{n}.db"
    shutil.copy(demo, tmp)
    t = time.perf_counter()
    info = fill_cases(tmp, n, now=NOW, days=DAYS)
    print(f"  filled {n:,} cases in {time.perf_counter() - t:.1f} s; states {json.dumps(info['states'])}", flush=True)
    tmp.rename(path)
    return path


def migrated_file(work: Path, n: int) -> Path:
    """A copy of the base file upgraded to this code's newest revision (its indexes built), reused."""
    from data.db import Database
    from data.schema import init_db
    from alembic.script import ScriptDirectory
    from data.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    base = base_file(work, n)
    with sqlite3.connect(str(base)) as con:
        if con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head:
            return base
    path = work / f"sqlite_{n}_r{head}.db"
    if not path.exists():
        tmp = work / f"tmp_{n}_r{head}.db"
        shutil.copy(base, tmp)
        db = Database(f"sqlite:///{tmp}")
        t = time.perf_counter()
        init_db(db)
        db.dispose()
        print(f"  migrated the {n:,}-case copy to {head} in {time.perf_counter() - t:.1f} s", flush=True)
        tmp.rename(path)
    return path


def pg_database(work: Path, n: int, prefix: str = "bench_figures") -> str:
    """PREFIX_N (bench_figures_N) on the local PostgreSQL at this code's schema, with the base file's rows."""
    from sqlalchemy import create_engine, text

    from data.db import Database
    from data.schema import current_revision, init_db
    from alembic.script import ScriptDirectory
    from data.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    name = f"{prefix}_{n}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        if not exists:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    db = Database(url)
    with db.engine.connect() as c:
        filled = c.execute(text("SELECT to_regclass('cases') IS NOT NULL")).scalar() and \
            c.execute(text("SELECT count(*) FROM cases")).scalar() >= n
    if filled and current_revision(db) == head:
        db.dispose()
        return url
    if not filled:
        t = time.perf_counter()
        init_db(db)
        _copy_to_pg(base_file(work, n), db)
        print(f"  copied {n:,} cases to PostgreSQL in {time.perf_counter() - t:.1f} s", flush=True)
    else:
        init_db(db)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
    db.dispose()
    return url


def _copy_to_pg(src: Path, db) -> None:
    con = sqlite3.connect(str(src))
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for table in TABLES:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            order = " ORDER BY level" if table == "areas" else ""
            bools = {r[0] for r in raw.cursor().execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND data_type = 'boolean'",
                (table,))}
            bi = [i for i, c in enumerate(cols) if c in bools]
            quoted = ", ".join(f'"{c}"' for c in cols)  # "primary" is a keyword
            with cur.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                for row in con.execute(f"SELECT {quoted} FROM {table}{order}"):
                    if bi:
                        row = list(row)
                        for i in bi:
                            row[i] = None if row[i] is None else bool(row[i])
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
        con.close()


# ---- the measurements -----------------------------------------------------------------------------------
def _pair(fn, base, runs: int = 5) -> tuple[float, float]:
    """(median ms of fn, median ms of base), the two run in alternation after a warm-up of each: on a shared
    machine a slow phase slows both alike, and their ratio is what the benchmark reports."""
    fn()
    base()
    times: tuple[list, list] = ([], [])
    for _ in range(runs):
        for f, out in ((fn, times[0]), (base, times[1])):
            t = time.perf_counter()
            f()
            out.append((time.perf_counter() - t) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def _ms(fn, runs: int = 5) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _services(url: str):
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database

    db = Database(url)
    return CaseService(db, AreaDirectory(db), clock=lambda: NOW)


def _kpi_call(cases):
    """The KPI figures as the kpi command and GET /kpis read them in this checkout."""
    try:
        from figures.service import kpis
        return lambda start, end, by: kpis(cases, start, end, by)
    except ImportError:
        return lambda start, end, by: cases.kpis(start, end, by)


def periods() -> dict:
    today = NOW.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date()
    last = today.replace(day=1) - timedelta(days=1)
    return {"month": (last.replace(day=1), last), "month to date": (today.replace(day=1), today),
            "year": (today - timedelta(days=364), today)}


def plain(cases, sql: str, params: dict):
    """The same-run floor: one plain SQL statement on the DBAPI cursor, all rows fetched."""
    from sqlalchemy import text

    def run():
        with cases.db.engine.connect() as c:
            return c.execute(text(sql), params).all()
    return run


def _bounds(start: date, end: date):
    from figures.definitions import period_bounds

    s, e = period_bounds(start, end)
    # the stored form (naive UTC text on SQLite, timestamp without time zone on PostgreSQL)
    return s.replace(tzinfo=None), e.replace(tzinfo=None)


GROUPS = ("kpis", "events", "cockpit")


def measure(url: str, only=GROUPS, runs: int = 3) -> list[tuple[str, float, float | None, str]]:
    """[(figure, ms, baseline ms, baseline name)] on one database; `only`: these groups of GROUPS;
    `runs`: the cockpit's timed runs of each of the street and the city (median)."""
    cases = _services(url)
    out = []
    if "kpis" in only:
        out += _measure_kpis(cases)
    if "events" in only:
        out += _measure_events(cases)
    if "cockpit" in only:
        out += _measure_cockpit(cases, runs)
    cases.db.dispose()
    return out


def _measure_kpis(cases) -> list:
    kpi = _kpi_call(cases)
    P = periods()
    out = []
    for label, by in (("month", None), ("month", "district"), ("month", "unit"), ("month to date", None),
                      ("year", "category")):
        s, e = _bounds(*P[label])
        key = {"district": "district_code", "unit": "unit_code", "category": "category_code"}.get(by)
        sql = (f"SELECT {key + ', ' if key else ''}count(*), sum(rework_count) FROM cases "
               f"WHERE reported_at >= :s AND reported_at < :e" + (f" GROUP BY {key}" if key else ""))
        ms, base = _pair(lambda: kpi(*P[label], by), plain(cases, sql, {"s": s, "e": e}),
                         runs=3 if label == "year" else 5)
        out.append((f"KPIs, {label}" + (f" by {by}" if by else ", city"), ms, base,
                    "the period's reports read and counted" + (f" by {by}" if by else "")))
    return out


def _measure_events(cases) -> list:
    from data.tokens import Principal

    out = []
    admin = Principal("token", "bench", "admin", "320400")
    params = set(inspect.signature(cases.list).parameters)
    page_floor = _ms(plain(cases, "SELECT id FROM cases ORDER BY id DESC LIMIT 50", {}))
    district = "320412"  # 武进区, the largest
    kw = {"count": True} if "count" in params else {}
    out.append(("overdue in a district, first page + total", _ms(lambda: cases.list(admin, area=district, overdue=True, **kw)),
                page_floor, "50 newest ids"))
    out.append(("GET /events page 1 of 50 (no filter)", _ms(lambda: cases.list(admin)), page_floor, "50 newest ids"))
    if "after" in params:
        first = cases.list(admin, per_page=50)
        cursor = first["next"]
        for _ in range(40):  # page 41: the keyset walks on from the last id seen
            cursor = cases.list(admin, per_page=50, after=cursor)["next"]
        out.append(("GET /events page 41 (after=)", _ms(lambda: cases.list(admin, per_page=50, after=cursor)),
                    page_floor, "50 newest ids"))
        out.append(("GET /events page 1, state=closed, area=district", _ms(lambda: cases.list(
            admin, state="closed", area=district)), page_floor, "50 newest ids"))
    else:
        out.append(("GET /events page 41 (page=)", _ms(lambda: cases.list(admin, page=41)), page_floor, "50 newest ids"))
        out.append(("GET /events page 1, state=closed, area=district", _ms(lambda: cases.list(
            admin, state="closed", area=district)), page_floor, "50 newest ids"))
    return out


def _measure_cockpit(cases, runs: int) -> list:
    from figures import cockpit

    street = "320412001"
    street_ms, city_ms = _pair(lambda: cockpit.snapshot(cases, street, None, NOW, with_indicators=False),
                               lambda: cockpit.snapshot(cases, "320400", None, NOW, with_indicators=False), runs=runs)
    return [("cockpit: the city", city_ms, None, ""),
            ("cockpit: one street (drill)", street_ms, city_ms, "the city's cockpit")]


def _peak_child(url: str, label: str, by: str | None, code: str | None, q) -> None:
    _code_path(Path(code) if code else None)
    cases = _services(url)
    kpi = _kpi_call(cases)
    P = periods()
    cases.catalog()  # reference data loaded: the process as a server has it
    with cases.db.session() as s:
        s.execute(__import__("sqlalchemy").text("SELECT 1"))
    before = _hwm_mb()
    kpi(*P[label], by)
    q.put((before, _hwm_mb()))


def _hwm_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def peaks(url: str, code: Path | None) -> list[tuple[str, float, float]]:
    ctx = mp.get_context("spawn")
    out = []
    for label, by in (("month", None), ("year", "category")):
        q = ctx.Queue()
        p = ctx.Process(target=_peak_child, args=(url, label, by, str(code) if code else None, q))
        p.start()
        before, after = q.get(timeout=600)
        p.join()
        out.append((f"KPIs, {label}" + (f" by {by}" if by else ", city"), before, after))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_figures"), help="work folder, reused")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL too (databases bench_figures_N)")
    ap.add_argument("--pg-prefix", default="bench_figures", help="the PostgreSQL databases' name: PREFIX_N")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--code", type=Path, default=None, help="another checkout to measure (the before)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--only", default=",".join(GROUPS),
                    help=f"measure only these groups ({', '.join(GROUPS)}; e.g. --only cockpit --no-memory)")
    ap.add_argument("--runs", type=int, default=3, help="the cockpit's timed runs of each (median)")
    args = ap.parse_args(argv)
    only = tuple(g.strip() for g in args.only.split(",") if g.strip())
    unknown = set(only) - set(GROUPS)
    if unknown:
        ap.error(f"--only: unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    _code_path(args.code)
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"code: {args.code or ROOT}")
    for n in [int(x) for x in args.sizes.split(",")]:
        targets = []
        if not args.no_sqlite:
            targets.append(("SQLite", f"sqlite:///{migrated_file(args.dir, n)}"))
        if args.pg:
            targets.append(("PostgreSQL", pg_database(args.dir, n, args.pg_prefix)))
        for kind, url in targets:
            print(f"\n{n:,} cases, {kind}:")
            print(f"  {'figure':50s} {'ms':>9s} {'baseline':>9s} {'ratio':>7s}  baseline (same run)")
            for name, ms, base, what in measure(url, only, args.runs):
                ratio = f"{ms / base:7.2f}" if base else " " * 7
                b = f"{base:9.2f}" if base is not None else " " * 9
                print(f"  {name:50s} {ms:9.2f} {b} {ratio}  {what}", flush=True)
            if not args.no_memory:
                for name, before, after in peaks(url, args.code):
                    print(f"  peak RSS, {name}: {after:,.0f} MB (process at start {before:,.0f} MB, "
                          f"+{after - before:,.0f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
