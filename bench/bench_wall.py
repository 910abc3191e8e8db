"""Benchmark of the wall: 1,000,000 historical cases, each key-figure query and the first render of /wall, against a naive full scan."""
from __future__ import annotations

# python bench/bench_wall.py [--n 1000000] [--days 730] [--dir DIR] [--no-render]
#
# 1. seeds the demo city into a fresh SQLite file (or reuses DIR/demo.db), copies it and fills the
#    copy with N historical cases over DAYS days ending now (one executemany; the indexes are
#    dropped during the load and rebuilt after, as a bulk import would);
# 2. times each figures/period.py query the wall makes (median of 5 after a warm-up) against the 200 ms
#    target, and the naive way (every case read and counted in Python) on the same database, and
#    checks that both give the same figures;
# 3. starts `python app.py` on the filled database and times /wall in headless Chromium from the
#    navigation to the map canvas drawn and every figure filled (window.uccWall.isReady()), cold
#    (first page after the start) and warm (median of 3), against the 2 s target.
import argparse
import json
import math
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_common import demo_db  # noqa: E402

import numpy as np  # noqa: E402

UTC = timezone.utc
QUERY_TARGET_MS = 200.0
RENDER_TARGET_S = 2.0
OPEN_STATES = ("reported", "accepted", "dispatched", "signed", "resolved", "verified", "rework", "returned", "suspended")
SOURCES = ("hotline", "patrol", "citizen", "iot", "video", "api")
# share of the reports per hour of the day (Asia/Shanghai): quiet nights, busy mornings and afternoons
HOURLY = np.array([0.4, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.4, 4.0, 5.0, 5.2, 4.6, 3.4, 3.6, 4.6, 4.8, 4.6, 4.0,
                   3.0, 2.4, 2.0, 1.6, 1.0, 0.6])
KIND_SHARE = {"event": 0.55, "component": 0.25, "grid": 0.197, "emergency": 0.003}




def _stamp(a: np.ndarray) -> list:
    """datetime64[s] → SQLAlchemy's SQLite text form ('YYYY-MM-DD HH:MM:SS.ffffff'), NaT → None."""
    s = np.datetime_as_string(a.astype("datetime64[us]"), unit="us")
    s = np.char.replace(s, "T", " ")
    out = s.tolist()
    for i in np.flatnonzero(np.isnat(a)):
        out[i] = None
    return out


def fill_cases(path: str | Path, n: int, now: datetime | None = None, days: int = 730, seed: int = 1) -> dict:
    """Adds `n` cases reported over the `days` days before `now` to a seeded demo SQLite file,
    with states as their age makes them: nearly all old cases closed (most on time, some late),
    a few rejected, merged or suspended; recent ones anywhere in the lifecycle. Returns counts."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rng = np.random.default_rng(seed)
    con = sqlite3.connect(str(path))
    grids = con.execute("SELECT code, centroid_lon, centroid_lat FROM areas WHERE level = 5 ORDER BY code").fetchall()
    cats = con.execute("SELECT code, kind, level, time_limit, time_unit, unit_type FROM categories").fetchall()
    units = {r[0] for r in con.execute("SELECT code FROM units")}
    start_id = (con.execute("SELECT max(id) FROM cases").fetchone()[0] or 0) + 1

    # when: days weighted (weekends lighter), hours by the daily rhythm, local time → UTC
    local_today = (now + timedelta(hours=8)).date()
    day_idx = rng.integers(0, days, size=n * 2)
    dates = np.array([np.datetime64(local_today - timedelta(days=int(d))) for d in range(days)])
    weekday = (dates.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    keep = rng.random(n * 2) < np.where(weekday[day_idx] >= 5, 0.7, 1.0)
    day_idx = day_idx[keep][:n]
    hour = rng.choice(24, size=n, p=HOURLY / HOURLY.sum())
    second = rng.integers(0, 3600, size=n)
    local = dates[day_idx].astype("datetime64[s]") + (hour * 3600 + second).astype("timedelta64[s]")
    reported = local - np.timedelta64(8, "h")
    now64 = np.datetime64(now.replace(tzinfo=None), "s")
    future = reported > now64  # today's hours still to come: pull them into the past hour
    reported[future] = now64 - rng.integers(60, 3600, size=int(future.sum())).astype("timedelta64[s]")
    order = np.argsort(reported, kind="stable")
    reported = reported[order]

    # what and where
    by_kind = defaultdict(list)
    for c in cats:
        by_kind[c[1]].append(c)
    kinds = list(KIND_SHARE)
    kind_i = rng.choice(len(kinds), size=n, p=np.array(list(KIND_SHARE.values())) / sum(KIND_SHARE.values()))
    cat_rows = [None] * n
    for k, kind in enumerate(kinds):
        where = np.flatnonzero(kind_i == k)
        pool = by_kind[kind]
        for i, j in zip(where.tolist(), rng.integers(0, len(pool), size=len(where)).tolist()):
            cat_rows[i] = pool[j]
    g = rng.integers(0, len(grids), size=n)
    lon = np.array([grids[i][1] for i in g]) + rng.normal(0, 0.0015, size=n)
    lat = np.array([grids[i][2] for i in g]) + rng.normal(0, 0.0015, size=n)

    # the time allowed, in calendar hours (working hours stretch over nights and weekends)
    def allowed(c) -> float:
        limit, unit = c[3], c[4]
        return limit / 60 if unit == "minutes" else limit * 2.6 if unit == "working_hours" else limit * 1.45 * 24

    allow_h = np.array([allowed(c) for c in cat_rows])
    fate = rng.random(n)
    rejected = fate < 0.02
    merged = (fate >= 0.02) & (fate < 0.035)
    suspended = (fate >= 0.035) & (fate < 0.037)
    accept_delay = rng.uniform(3, 90, size=n) * 60
    accepted = reported + accept_delay.astype("timedelta64[s]")
    deadline = accepted + (allow_h * 3600).astype("timedelta64[s]")
    late = rng.random(n) < 0.035
    spent = np.where(late, rng.uniform(1.05, 2.5, size=n), rng.uniform(0.15, 0.97, size=n)) * allow_h * 3600
    closed = accepted + spent.astype("timedelta64[s]")
    not_yet_accepted = accepted > now64
    still_open = closed > now64
    progress = np.clip((now64 - accepted).astype("float64") / np.maximum(spent, 1), 0, 1)
    open_state = np.select([progress < 0.15, progress < 0.4, progress < 0.7, progress < 0.9],
                           ["accepted", "dispatched", "signed", "resolved"], "verified")
    nat = np.datetime64("NaT")
    state = np.where(still_open, open_state, "closed").astype(object)
    state[not_yet_accepted] = "reported"
    state[suspended] = "suspended"
    state[rejected] = "rejected"
    state[merged] = "merged"
    acc_col = np.where(not_yet_accepted | rejected | merged, nat, accepted)
    closed_col = np.where((state == "closed"), closed, nat)
    dl_col = np.where(merged | rejected, nat, deadline)
    rej_col = np.where(rejected, reported + np.timedelta64(1800, "s"), nat)
    updated = np.where(state == "closed", closed, np.where(np.isnat(acc_col), reported, acc_col))
    rework = ((rng.random(n) < 0.006) & (state == "closed")).astype(int)
    extension = ((rng.random(n) < 0.012) & ~np.isnat(acc_col)).astype(int)
    severity = [None] * n
    sev_draw = rng.choice([4, 3, 2, 1], size=n, p=[0.8, 0.17, 0.025, 0.005])
    rep_s, acc_s, cl_s, dl_s, rej_s, up_s = (_stamp(reported), _stamp(acc_col.astype("datetime64[s]")),
                                             _stamp(closed_col.astype("datetime64[s]")),
                                             _stamp(dl_col.astype("datetime64[s]")),
                                             _stamp(rej_col.astype("datetime64[s]")),
                                             _stamp(updated.astype("datetime64[s]")))
    rows = []
    srcs = rng.integers(0, len(SOURCES), size=n)
    for i in range(n):
        c = cat_rows[i]
        grid = grids[g[i]][0]
        district = grid[:6]
        if c[1] == "emergency":
            severity[i] = int(sev_draw[i])
        unit = f"U-{district}-{c[5]}"
        if unit not in units:
            unit = f"U-{grid}-grid_member" if f"U-{grid}-grid_member" in units else None
        st = state[i]
        rows.append((
            st, 3 if st == "closed" else 2, c[0], c[1], SOURCES[srcs[i]], "", float(round(lon[i], 6)),
            float(round(lat[i], 6)), grid, district, severity[i], 1, unit if st not in ("merged", "rejected") else None,
            int(c[2]), "", 0, c[4], 0, 0, int(rework[i]), int(extension[i]),  # level, reason, flags, counts
            rep_s[i], rep_s[i], acc_s[i], rej_s[i], cl_s[i], dl_s[i], up_s[i],
        ))
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases' "
                          "AND sql IS NOT NULL").fetchall()
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = OFF")
    with con:
        for name, _sql in indexes:
            con.execute(f'DROP INDEX "{name}"')
        con.executemany(
            "INSERT INTO cases (state, version, category_code, kind, source, description, lon, lat, grid_code, "
            "district_code, severity, reporter_count, unit_code, handling_level, route_reason, report_upward, "
            "time_unit, supervised, escalation_count, rework_count, extension_count, occurred_at, reported_at, "
            "accepted_at, rejected_at, closed_at, deadline_at, updated_at) "
            "VALUES (" + ", ".join(["?"] * 28) + ")", rows)
        for _name, sql in indexes:
            con.execute(sql)
    con.execute("PRAGMA synchronous = NORMAL")
    con.close()
    return {"cases": n, "first_id": start_id, "states": dict(Counter(state.tolist()))}


# ---- the naive baseline: every case read, the figures counted in Python ------------------------------
def naive_figures(db, now: datetime) -> dict:
    from sqlalchemy import select

    from data.models import Case
    from figures.definitions import KpiCase, compute_grouped, compute_kpis, period_bounds

    tz = "Asia/Shanghai"
    day = now.astimezone(__import__("zoneinfo").ZoneInfo(tz)).date()
    s0, e0 = period_bounds(day, day, tz)
    cols = (Case.id, Case.state, Case.reported_at, Case.accepted_at, Case.rejected_at, Case.closed_at,
            Case.deadline_at, Case.rework_count, Case.extension_count, Case.district_code, Case.grid_code, Case.kind)
    with db.session() as s:
        rows = s.execute(select(*cols)).all()
    kc = [KpiCase(id=r[0], state=r[1], reported_at=r[2], accepted_at=r[3], rejected_at=r[4], closed_at=r[5],
                  deadline_at=r[6], rework_count=r[7], extension_count=r[8], district_code=r[9],
                  merged=r[1] == "merged") for r in rows]
    month = compute_kpis(kc, day.replace(day=1), day, now=now)
    by_district = compute_grouped(kc, day.replace(day=1), day, "district", now=now)
    grids: dict = defaultdict(lambda: [0, 0])
    open_n = overdue = received = 0
    for r in rows:
        if s0 <= r[2] < e0:
            received += 1
        if r[1] in OPEN_STATES:
            open_n += 1
            late = r[3] is not None and r[4] is None and r[6] is not None and r[6] < now
            grids[r[10]][0] += 1
            if late:
                grids[r[10]][1] += 1
                overdue += 1
    return {"month": month, "by_district": by_district, "grids": {k: tuple(v) for k, v in grids.items()},
            "open": open_n, "overdue": overdue, "received": received}


def _ms(fn, runs: int = 5) -> tuple[float, object]:
    result = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def bench_queries(db_url: str, now: datetime) -> list[tuple[str, float]]:
    from dispatch.city_time import CITY_TZ
    from figures import period as stats
    from data.db import Database

    db = Database(db_url)
    out = []

    def run(name, fn):
        def call():
            with db.session() as s:
                return fn(s)
        ms, result = _ms(call)
        out.append((name, ms, result))
        return result

    marks = run("marks (max id, outbox head)", lambda s: stats.marks(s))
    today = run("today_figures", lambda s: stats.today_figures(s, now, max_case_id=marks.max_case_id))
    day = now.astimezone(CITY_TZ).date()
    month = run("period_figures (month, by district)",
                lambda s: stats.period_figures(s, day.replace(day=1), day, now, by_district=True))
    # The ranking takes the month from figures/rollup.py: a full read of the month's cases when
    # the process starts, a day begins or every STALE_AFTER_S, then only the cases changed since.
    from figures import rollup as month_rollup

    month_rollup._rollups.clear()
    t = time.perf_counter()
    with db.session() as s:
        first = month_rollup.district_ranking(s, now)
    out.append(("rollup full read, 1 run (background job)", (time.perf_counter() - t) * 1000, first))
    ranking = run("district_ranking (rollup filled)", lambda s: month_rollup.district_ranking(s, now))
    grids = run("grid_counts (open/overdue per grid)", lambda s: stats.grid_counts(s, now))
    run("hourly_trend (today vs 4 weeks)", lambda s: stats.hourly_trend(s, now, max_case_id=marks.max_case_id))
    run("newest_cases (12)", lambda s: stats.newest_cases(s, now, 12))
    run("today_points", lambda s: stats.today_points(s, now))
    run("open_emergencies", lambda s: stats.open_emergencies(s, now, 200))
    run("recent_points (7 days)", lambda s: stats.recent_points(s, now, days=7))
    run("category_top", lambda s: stats.category_top(s, now, 5))

    # Everything one refresh of the wall reads (figures/wall.py snapshot: the queries above, shaped).
    from types import SimpleNamespace

    from data.area_directory import AreaDirectory
    from figures.wall import snapshot

    services = SimpleNamespace(db=db, areas=AreaDirectory(db), cases=SimpleNamespace(clock=lambda: now))
    ms, _ = _ms(lambda: snapshot(services, now))
    out.append(("snapshot: one whole refresh of the wall", ms, None))

    t = time.perf_counter()
    naive = naive_figures(db, now)
    naive_ms = (time.perf_counter() - t) * 1000
    problems = []
    if naive["month"].to_dict() != month["total"].to_dict():
        a, b = naive["month"].to_dict(), month["total"].to_dict()
        if any((a[k] != b[k]) and not (isinstance(a[k], float) and math.isclose(a[k], b[k], rel_tol=1e-6)) for k in a):
            problems.append(f"month figures differ: naive {a} vs indexed {b}")
    if ranking["month"] != month["total"].to_dict() or first["month"] != month["total"].to_dict():
        problems.append(f"the rollup's month differs from period_figures: {ranking['month']} vs {month['total'].to_dict()}")
    if naive["grids"] != grids:
        problems.append("grid counts differ")
    if (naive["open"], naive["overdue"]) != (today["open"], today["overdue"]):
        problems.append(f"open/overdue differ: naive {naive['open']}/{naive['overdue']} vs {today['open']}/{today['overdue']}")
    db.dispose()
    return out, naive_ms, problems


# ---- the page ---------------------------------------------------------------------------------------------
FIGURES_FILLED = """() => { const w = window.uccWall; if (!w || !w.rendered) return false;
  return [...document.querySelectorAll('.wall-fig-value')].every(e => e.textContent && e.textContent !== '—'); }"""
PAGE_REQUEST_MS = """() => { const r = performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-update-component'));
  return r.length ? [r[0].startTime, r[0].responseEnd] : [null, null]; }"""


def _home_drawn(page, timeout_s: float = 60.0) -> None:
    """The home page's map has no readable drawing buffer: poll screenshots of it until drawn."""
    import io

    from PIL import Image

    deadline = time.monotonic() + timeout_s
    page.wait_for_selector("canvas#city-map", timeout=timeout_s * 1000)
    while time.monotonic() < deadline:
        img = Image.open(io.BytesIO(page.locator("canvas#city-map").screenshot())).convert("RGB").resize((96, 54))
        if len(img.getcolors(maxcolors=1 << 16) or []) > 20:
            return
        time.sleep(0.05)
    raise TimeoutError("home map not drawn")


def bench_render(db_path: Path, log_path: Path, warm_runs: int = 3, width: int = 1920, height: int = 1080) -> dict:
    """Times /wall (and, as the floor of this machine, the home page's map) in headless Chromium."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.serving import AppProcess

    from data.db import Database
    from data.tokens import create_token
    from tests.browser.conftest import sign_in

    db = Database(f"sqlite:///{db_path}")
    with db.session() as s:
        wall_token = create_token(s, "wall", label="bench_wall")  # a display opens /wall?token=…
    db.dispose()
    app = AppProcess(f"sqlite:///{db_path}", log_path).wait_ready(timeout=300)
    runs = []
    home = []
    reloads = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for i in range(1 + warm_runs):
                ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
                page = ctx.new_page()
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                t = time.perf_counter()
                page.goto(app.url + f"/wall?token={wall_token}", wait_until="commit")
                page.wait_for_function(FIGURES_FILLED, polling="raf", timeout=60_000)
                figures = time.perf_counter() - t
                page.wait_for_function("() => window.uccWall.isReady()", polling=50, timeout=60_000)
                ready = time.perf_counter() - t
                req = page.evaluate(PAGE_REQUEST_MS)
                runs.append({"figures": figures, "ready": ready, "page_request": req, "errors": errors})
                ctx.close()
                ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
                page = ctx.new_page()
                sign_in(page, app.url, "leader")  # not timed: the home page is behind sign-in
                t = time.perf_counter()
                page.goto(app.url + "/", wait_until="commit")
                _home_drawn(page)
                home.append(time.perf_counter() - t)
                ctx.close()
            # A wall display's own browser: the same profile reloads the page (its nightly reload), with
            # the scripts in its HTTP cache and their compiled code in V8's cache.
            ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
            page = ctx.new_page()
            page.goto(app.url + f"/wall?token={wall_token}", wait_until="commit")
            page.wait_for_function("() => window.uccWall && window.uccWall.isReady()", polling=50, timeout=60_000)
            for _ in range(warm_runs):
                time.sleep(1.0)
                t = time.perf_counter()
                page.goto(app.url + "/wall", wait_until="commit")
                page.wait_for_function("() => window.uccWall && window.uccWall.isReady()", polling=50, timeout=60_000)
                reloads.append(time.perf_counter() - t)
            ctx.close()
            browser.close()
    finally:
        app.stop()
    return {"runs": runs, "home": home, "reloads": reloads}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--dir", type=Path, default=None, help="work folder (kept); default: a temporary one")
    ap.add_argument("--no-render", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="keep DIR/wall.db from an earlier run (no new fill)")
    args = ap.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-wall-"))
    work.mkdir(parents=True, exist_ok=True)
    demo = work / "demo.db"
    t = time.perf_counter()
    if not demo.exists():
        demo_db(demo)
        print(f"demo city seeded in {time.perf_counter() - t:.1f} s")
    bench = work / "wall.db"
    now = datetime.now(UTC)
    if args.reuse and bench.exists():
        with sqlite3.connect(str(bench)) as con:
            args.n = con.execute("SELECT count(*) FROM cases").fetchone()[0]
        print(f"reusing {bench} ({args.n:,} cases)")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(str(bench) + suffix).unlink(missing_ok=True)
        shutil.copy(demo, bench)
        t = time.perf_counter()
        info = fill_cases(bench, args.n, now=now, days=args.days)
        fill_s = time.perf_counter() - t
        print(f"filled {info['cases']:,} cases over {args.days} days in {fill_s:.1f} s "
              f"({info['cases'] / fill_s:,.0f}/s); states: {json.dumps(info['states'], ensure_ascii=False)}")

    results, naive_ms, problems = bench_queries(f"sqlite:///{bench}", now)
    print(f"\nkey-figure queries on {args.n:,} cases (SQLite, median of 5), target {QUERY_TARGET_MS:.0f} ms each:")
    print(f"  {'query':40s} {'ms':>9s} {'/target':>8s}")
    for name, ms, _ in results:
        print(f"  {name:40s} {ms:9.1f} {ms / QUERY_TARGET_MS:8.2f}")
    snap_ms = results[-1][1]
    print(f"  {'naive: every case read, counted in Python':40s} {naive_ms:9.1f} {naive_ms / QUERY_TARGET_MS:8.2f}"
          f"   ({naive_ms / snap_ms:.0f}x the whole indexed refresh)")
    print("  same figures from both: " + ("yes" if not problems else "NO: " + "; ".join(problems)))

    if not args.no_render:
        r = bench_render(bench, work / "app.log")
        cold, warm = r["runs"][0], r["runs"][1:]
        med = lambda key: statistics.median(x[key] for x in warm)  # noqa: E731
        print(f"\n/wall at 1920x1080, headless Chromium (software WebGL), target {RENDER_TARGET_S:.1f} s "
              f"from navigation to the map drawn and every figure filled:")
        print(f"  {'':34s} {'page request':>13s} {'figures':>8s} {'map drawn':>10s} {'/target':>8s}")
        for label, x in [("cold (first page after start)", cold)] + [(f"warm run {i + 1}", w) for i, w in enumerate(warm)]:
            s0, s1 = x["page_request"]
            req = f"{s0 / 1000:.2f}-{s1 / 1000:.2f}" if s0 is not None else "?"
            print(f"  {label:34s} {req:>13s} {x['figures']:8.2f} {x['ready']:10.2f} {x['ready'] / RENDER_TARGET_S:8.2f}")
        print(f"  {'warm median':34s} {'':>13s} {med('figures'):8.2f} {med('ready'):10.2f} "
              f"{med('ready') / RENDER_TARGET_S:8.2f}")
        print(f"  {'reload in the same browser (median)':34s} {'':>13s} {'':>8s} {statistics.median(r['reloads']):10.2f} "
              f"{statistics.median(r['reloads']) / RENDER_TARGET_S:8.2f}   (a display's own browser, caches warm: "
              + ", ".join(f"{x:.2f}" for x in r["reloads"]) + ")")
        home = statistics.median(r["home"][1:] or r["home"])
        print(f"  baseline, same run: the home page's map (districts only) drawn in {home:.2f} s (median), "
              f"so /wall adds {med('ready') - home:+.2f} s to what any deck.gl page costs here")
        errors = [e for x in r["runs"] for e in x["errors"]]
        if errors:
            print("  page errors: " + "; ".join(errors[:3]))
    print(f"\nwork folder: {work}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
