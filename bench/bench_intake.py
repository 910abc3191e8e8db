"""Benchmark of durable event intake: CaseService.intake in-process and POST /api/v1/events over HTTP,
against raw SQLite inserts of the same rows, all in one run (python bench/bench_intake.py [--n N]).

Every phase starts from its own copy of one seeded demo database (demo city, catalog, units) warmed up
with the same few events, and takes the same generated events: every category of the catalog in turn,
points sampled inside grid polygons all over the city, a few deliberate repeat reports that dedupe
merges. When a target is missed (or with --profile) it breaks one event's time down step by step,
profiles it with cProfile, measures cheaper ways of doing the costly steps, and ranks them by gain.
Nothing in the project is changed: the probes wrap methods of the benchmark's own objects at run time.
"""
from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import math
import os
import pstats
import re
import sqlite3
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatch.city_time import CITY_TZ  # noqa: E402
from data.area_directory import AreaDirectory  # noqa: E402
from cases.service import SOURCES, CaseService, ServiceError  # noqa: E402
from data.db import SQLITE_PRAGMAS, Database  # noqa: E402
from data.reference import read_catalog  # noqa: E402
from data.schema import init_db  # noqa: E402
from demo.seed import seed_demo  # noqa: E402
from data.tokens import Principal, create_token  # noqa: E402
from demo.city import generate_demo_city  # noqa: E402
from geo.model import GRID  # noqa: E402

TARGET_INPROC = 3_000
TARGET_HTTP = 1_000
WARMUP_N = 60
SINGLE_CLIENT_N = 300
FLOOR_N = 1_000

PLACES = ("小区门口", "路口东侧", "公交站旁", "菜市场北侧", "学校围墙外", "河道边", "停车场入口", "桥下")
MACHINE_SOURCES = ("iot", "video", "api", "open311")  # channels that send an idempotency key
TABLES = ("cases", "case_history", "case_events")


# ---- the events -----------------------------------------------------------------------------
def sample_in_grids(grids, which, rng):
    """One point strictly inside each chosen grid polygon (rejection sampling in its bounds)."""
    geoms = np.array([g.geometry for g in grids], dtype=object)
    b = shapely.bounds(geoms)
    n = len(which)
    x, y = np.empty(n), np.empty(n)
    todo = np.arange(n)
    while len(todo):
        g = which[todo]
        x[todo] = rng.uniform(b[g, 0], b[g, 2])
        y[todo] = rng.uniform(b[g, 1], b[g, 3])
        todo = todo[~shapely.contains_xy(geoms[g], x[todo], y[todo])]
    shapely.destroy_prepared(geoms)
    return x, y


def make_events(records, catalog, n, rng, dup_rate, prefix):
    """n intake payloads: every category of the catalog in turn (shuffled), a point inside a grid chosen
    uniformly among all grids, a channel, a phone for hotline/citizen, an occurrence time for half, an
    idempotency key for machine channels; a share `dup_rate` repeats one of the previous 200 reports
    5-30 m away (dedupe merges it). Returns the payloads and the indices of the repeats."""
    grids = [r for r in records if r.level == GRID]
    which = rng.integers(0, len(grids), n)
    xs, ys = sample_in_grids(grids, which, rng)
    codes = sorted(catalog)
    order: list[str] = []
    while len(order) < n:
        order.extend(rng.permutation(codes).tolist())
    now = datetime.now(CITY_TZ)
    events, dups = [], []
    for i in range(n):
        code = order[i]
        lon, lat = float(xs[i]), float(ys[i])
        if i >= 10 and rng.random() < dup_rate:
            j = int(rng.integers(max(0, i - 200), i))
            code, lon, lat = events[j]["category"], events[j]["lon"], events[j]["lat"]
            d, a = rng.uniform(5, 30), rng.uniform(0, 2 * math.pi)
            lon2 = lon + d * math.cos(a) / (111_320 * math.cos(math.radians(lat)))
            lat2 = lat + d * math.sin(a) / 111_320
            if shapely.contains_xy(grids[which[j]].geometry, lon2, lat2):
                lon, lat = lon2, lat2
            dups.append(i)
        cat = catalog[code]
        source = SOURCES[int(rng.integers(0, len(SOURCES)))]
        ev = {"category": code, "lon": lon, "lat": lat, "source": source,
              "description": f"{cat.name}：{PLACES[int(rng.integers(0, len(PLACES)))]}，请尽快处理"}
        if cat.is_emergency:
            ev["severity"] = int(rng.integers(1, 5))
        if source in ("hotline", "citizen"):
            ev["reporter_phone"] = f"1{int(rng.integers(3, 10))}{int(rng.integers(0, 10**9)):09d}"
        if rng.random() < 0.5:
            ev["occurred_at"] = (now - timedelta(minutes=int(rng.integers(1, 600)))).isoformat(timespec="seconds")
        if source in MACHINE_SOURCES:
            ev["idempotency_key"] = f"{prefix}-{i:07d}"
        events.append(ev)
    return events, dups


# ---- databases ------------------------------------------------------------------------------
from bench_common import Workdir  # noqa: E402


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def key_of(table: str) -> str:
    return "seq" if table == "case_events" else "id"


def max_ids(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT coalesce(max({key_of(t)}), 0) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        con.close()


# ---- in-process intake ----------------------------------------------------------------------
def new_service(path: Path) -> CaseService:
    db = Database(url_of(path))
    return CaseService(db, AreaDirectory(db))


def warm_up(svc: CaseService, principal, warm_events):
    svc.catalog()
    svc.areas.locator()
    for ev in warm_events:
        svc.intake(ev, principal)


def run_serial(svc, principal, events):
    merged, errors = 0, defaultdict(int)
    intake = svc.intake
    t = time.perf_counter()
    for ev in events:
        try:
            case, _created = intake(ev, principal)
            merged += case["state"] == "merged"
        except ServiceError as exc:
            errors[exc.code] += 1
    return time.perf_counter() - t, merged, dict(errors)


def run_threads(svc, principal, events, threads):
    merged = [0] * threads
    errors: dict[str, int] = defaultdict(int)
    lat: list[list[float]] = [[] for _ in range(threads)]
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def work(k):
        start.wait()
        for ev in events[k::threads]:
            t0 = time.perf_counter()
            try:
                case, _created = svc.intake(ev, principal)
                merged[k] += case["state"] == "merged"
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors[getattr(exc, "code", type(exc).__name__)] += 1
            lat[k].append(time.perf_counter() - t0)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for th in ts:
        th.start()
    start.wait()
    t, cpu = time.perf_counter(), time.process_time()
    for th in ts:
        th.join()
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return wall, cpu, sum(merged), dict(errors), [x for part in lat for x in part]


def _process_worker(path, principal, events, threads, barrier, out):
    """One process of run_processes: its own service (engine, caches) made after the fork."""
    svc = new_service(path)
    warm_up(svc, principal, [])
    barrier.wait()
    if threads == 1:
        wall, merged, errors = run_serial(svc, principal, events)
    else:
        wall, _cpu, merged, errors, _lat = run_threads(svc, principal, events, threads)
    svc.db.dispose()
    out.put((merged, errors))


def run_processes(path: Path, principal, events, procs: int, threads: int):
    """The events split over `procs` processes of `threads` threads each, every one calling
    CaseService.intake on the same SQLite file (as the production server's worker processes do; they
    take turns at the write on Database.write_turn's file lock). Returns wall time, merged, errors."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(procs + 1), ctx.Queue()
    ps = [ctx.Process(target=_process_worker, args=(path, principal, events[k::procs], threads, barrier, out))
          for k in range(procs)]
    for p in ps:
        p.start()
    barrier.wait()
    t = time.perf_counter()
    results = [out.get(timeout=300) for _ in ps]
    wall = time.perf_counter() - t
    for p in ps:
        p.join(30)
    errors: dict[str, int] = defaultdict(int)
    for _m, errs in results:
        for code, n in errs.items():
            errors[code] += n
    return wall, sum(m for m, _ in results), dict(errors)


# ---- raw SQLite baseline ----------------------------------------------------------------------
def raw_connect(path: Path) -> sqlite3.Connection:
    """The app's connection settings (data/db.py), with explicit BEGIN/COMMIT."""
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    for pragma in SQLITE_PRAGMAS:
        con.execute("PRAGMA " + pragma)
    return con


def read_rows(path: Path, after: dict[str, int]):
    """The rows an intake run wrote, every column, in write order."""
    con = sqlite3.connect(path)
    out = {}
    try:
        for t in TABLES:
            cur = con.execute(f"SELECT * FROM {t} WHERE {key_of(t)} > ? ORDER BY {key_of(t)}", (after[t],))
            out[t] = ([d[0] for d in cur.description], cur.fetchall())
    finally:
        con.close()
    return out


def insert_sql(table, cols):
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


def raw_one_transaction(path: Path, rows) -> float:
    con = raw_connect(path)
    t = time.perf_counter()
    con.execute("BEGIN")
    for table in TABLES:
        cols, data = rows[table]
        con.executemany(insert_sql(table, cols), data)
    con.execute("COMMIT")
    dt = time.perf_counter() - t
    con.close()
    return dt


def raw_per_event(path: Path, rows):
    """One transaction per intake: its case row, then the history and event rows it wrote.
    Returns the wall time and each COMMIT's duration."""
    (ccols, cases), (hcols, hist), (ecols, evs) = (rows[t] for t in TABLES)
    # Each intake writes first the history row and the event row of its new case; a merge also writes
    # one of each for the case it merges into, right after: the first rows of each case mark the cuts.
    h_case, e_case = hcols.index("case_id"), ecols.index("case_id")
    h_first: dict[int, int] = {}
    e_first: dict[int, int] = {}
    for k, r in enumerate(hist):
        h_first.setdefault(r[h_case], k)
    for k, r in enumerate(evs):
        e_first.setdefault(r[e_case], k)
    hb = [h_first[c[0]] for c in cases] + [len(hist)]
    eb = [e_first[c[0]] for c in cases] + [len(evs)]
    qc, qh, qe = insert_sql("cases", ccols), insert_sql("case_history", hcols), insert_sql("case_events", ecols)
    con = raw_connect(path)
    ex, clock = con.execute, time.perf_counter
    commits = []
    t = clock()
    for k, c in enumerate(cases):
        ex("BEGIN")
        ex(qc, c)
        for r in hist[hb[k]:hb[k + 1]]:
            ex(qh, r)
        for r in evs[eb[k]:eb[k + 1]]:
            ex(qe, r)
        t0 = clock()
        ex("COMMIT")
        commits.append(clock() - t0)
    dt = clock() - t
    con.close()
    return dt, commits


def commit_stats(commits) -> str:
    a = np.asarray(commits) * 1e6
    slow = a > 1000
    return (f"COMMIT mean {a.mean():.0f} µs, p50 {np.median(a):.0f} µs, p99 {np.percentile(a, 99):.0f} µs; "
            f"{slow.sum()} commits over 1 ms (WAL auto-checkpoints, which fsync) hold {a[slow].sum() / a.sum():.0%} "
            f"of the commit time")


# ---- over HTTP --------------------------------------------------------------------------------
def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_events(port, tokens, events, clients, path="/api/v1/events"):
    """POST each event to `path` from `clients` threads, each with one http.client connection that it keeps
    open as long as the server does (client k uses tokens[k]); a None event is a GET of `path`. Returns
    wall time, latencies, statuses, merged cases, and how many answers said `Connection: close` (the client
    then reconnects for the next request)."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[dict] = [defaultdict(int) for _ in range(clients)]
    merged = [0] * clients
    closes = [0] * clients
    bodies = [None if ev is None else json.dumps(ev, ensure_ascii=False).encode() for ev in events]
    start = threading.Barrier(clients + 1)

    def work(k):
        headers = {"Authorization": f"Bearer {tokens[k % len(tokens)]}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        for body in bodies[k::clients]:
            t0 = time.perf_counter()
            if body is None:
                conn.request("GET", path, headers=headers)
            else:
                conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            lat[k].append(time.perf_counter() - t0)
            statuses[k][resp.status] += 1
            closes[k] += (resp.getheader("Connection") or "").lower() == "close"
            if body is not None and resp.status == 201 and json.loads(data)["state"] == "merged":
                merged[k] += 1
        conn.close()

    ts = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for th in ts:
        th.start()
    start.wait()
    t = time.perf_counter()
    for th in ts:
        th.join()
    wall = time.perf_counter() - t
    total: dict[int, int] = defaultdict(int)
    for st in statuses:
        for code, c in st.items():
            total[code] += c
    return wall, [x for part in lat for x in part], dict(total), sum(merged), sum(closes)


def pct(values, q):
    return float(np.percentile(np.asarray(values), q)) * 1e3


def run_http(args, wd: Workdir, seed_warm: Path, events, warm, server: str = "embedded", worker_class: str = ""):
    """POST the events to a real server: "embedded" (`python app.py`, Werkzeug's threaded server) or
    "gunicorn" (the production mode: gunicorn.conf.py, UCC_WORKERS processes with keep-alive)."""
    from tests.serving import AppProcess

    path = wd.copy(seed_warm, f"http_{server}{worker_class}.db")
    db = Database(url_of(path))
    with db.session() as s:
        tokens = [create_token(s, "duty_officer", label=f"bench client {k}") for k in range(args.clients)]
    db.dispose()
    t = time.perf_counter()
    # One token per client (several integrations); the per-token rate limit raised so that it never answers 429.
    app = AppProcess(url_of(path), wd.path / f"server_{server}{worker_class}.log", server=server,
                     UCC_API_RATE_LIMIT="1000000 per minute", UCC_WORKERS=str(args.workers),
                     UCC_WORKER_CLASS=worker_class).wait_ready()
    try:
        used = re.search(r"Using worker: (\w+)", app.log_path.read_text())
        worker_class = used.group(1) if used else worker_class
        what = ("`python app.py` (embedded)" if server == "embedded" else
                f"gunicorn -c gunicorn.conf.py wsgi:application, {args.workers} {worker_class} worker processes"
                + (" (production)" if not used or worker_class == "gevent" else " (for comparison)"))
        print(f"\n(b) server {what} ready in {time.perf_counter() - t:.1f} s at {app.url}")
        post_events(app.port, tokens, warm, 2)  # warm-up: locator, catalog, code paths
        http_events = events[:args.http_n]
        cpu0, me0 = proc_cpu(app.proc.pid), time.process_time()
        wall, lat, statuses, merged, closes = post_events(app.port, tokens, http_events, args.clients)
        cpu1, me1 = proc_cpu(app.proc.pid), time.process_time()
        n = len(http_events)
        rate = n / wall
        server_us = (cpu1 - cpu0) / n * 1e6
        print(f"    {args.clients} concurrent clients: {n:,} events in {wall:.2f} s = {rate:,.0f} events/s; "
              f"statuses {statuses}; merged {merged:,}")
        print(f"    {closes:,} of {n:,} answers carried `Connection: close`"
              + (" (Werkzeug's server never keeps a connection alive: one TCP connection and one server thread "
                 "per request)" if closes else " (connections kept alive)"))
        print(f"    latency p50 {pct(lat, 50):.2f} ms, p95 {pct(lat, 95):.2f} ms, p99 {pct(lat, 99):.2f} ms, "
              f"max {max(lat) * 1e3:.0f} ms")
        print(f"    server main process CPU {server_us:.0f} µs/event ({(cpu1 - cpu0) / wall:.0%} of one core"
              + ("; the workers' CPU is not in this figure)" if server != "embedded" else ": one Python process, one GIL)")
              + f"; client CPU {(me1 - me0) / n * 1e6:.0f} µs/event")
        one = events[args.http_n:args.http_n + SINGLE_CLIENT_N]
        wall1, lat1, statuses1, _m, _c = post_events(app.port, tokens, one, 1)
        rate1 = len(one) / wall1
        print(f"    1 client, no concurrency: {len(one)} events, {rate1:,.0f} events/s; p50 {pct(lat1, 50):.2f} ms, "
              f"p95 {pct(lat1, 95):.2f} ms; statuses {statuses1}")
        # The stack's own floor: an authenticated API call that does next to nothing (a locator lookup).
        cpu0 = proc_cpu(app.proc.pid)
        wall_g, lat_g, statuses_g, _m, _c = post_events(app.port, tokens, [None] * FLOOR_N, args.clients,
                                                    path=f"/api/v1/areas/locate?lon={events[0]['lon']}"
                                                         f"&lat={events[0]['lat']}")
        floor_cpu = (proc_cpu(app.proc.pid) - cpu0) / FLOOR_N * 1e6
        floor_rate = FLOOR_N / wall_g
        print(f"    floor of the HTTP stack, GET /api/v1/areas/locate (auth + limiter + Flask + werkzeug, no intake), "
              f"{args.clients} clients: {floor_rate:,.0f} requests/s, p50 {pct(lat_g, 50):.2f} ms, server CPU "
              f"{floor_cpu:.0f} µs/request; statuses {statuses_g}")
    except Exception:
        print(app.log_path.read_text()[-3000:])
        raise
    finally:
        app.stop()
    return {"worker_class": worker_class, "rate": rate, "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99), "rate1": rate1,
            "p50_1": pct(lat1, 50), "p95_1": pct(lat1, 95), "server_cpu_us": server_us,
            "client_cpu_us": (me1 - me0) / n * 1e6, "floor_rate": floor_rate, "floor_cpu_us": floor_cpu}


# ---- the step-by-step breakdown -------------------------------------------------------------------
class Probe:
    """Exclusive wall time per named step (a step's time excludes the steps nested in it). SQL
    statements, ORM flushes, commits and session closes are named after the step that owns them.
    Only the thread that made the probe is timed: background threads (the live bus emitter) pass through."""

    LOW = ("sql ", "ORM flush", "ORM commit", "sqlite COMMIT", "session close", "pool reset ROLLBACK")

    def __init__(self):
        self.acc: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.stack: list[list] = []
        self.tid = threading.get_ident()

    def mine(self) -> bool:
        return threading.get_ident() == self.tid

    def owner(self) -> str:
        for name, *_ in reversed(self.stack):
            if not name.startswith(self.LOW):
                return name
        return "outside"

    def push(self, name):
        if not self.mine():
            return
        self.stack.append([name, time.perf_counter(), 0.0])

    def pop(self):
        if not self.mine():
            return
        name, t0, child = self.stack.pop()
        el = time.perf_counter() - t0
        self.acc[name] += el - child
        self.calls[name] += 1
        if name.startswith("sqlite COMMIT"):
            self.samples[name].append(el)
        if self.stack:
            self.stack[-1][2] += el

    def wrap(self, name, fn, low=False):
        def inner(*a, **k):
            if not self.mine():
                return fn(*a, **k)
            self.push(f"{name} [{self.owner()}]" if low else name)
            try:
                return fn(*a, **k)
            finally:
                self.pop()
        inner.__wrapped__ = fn
        return inner


def sql_label(statement: str) -> str:
    words = statement.split()
    verb = words[0].upper()
    if verb == "INSERT":
        return f"INSERT {words[2]}"
    if verb == "UPDATE":
        return f"UPDATE {words[1]}"
    if verb == "SELECT":
        up = [w.upper() for w in words]
        return f"SELECT {words[up.index('FROM') + 1]}" if "FROM" in up else "SELECT"
    return verb


def instrument(svc: CaseService, probe: Probe):
    """Wrap the steps of intake on this service object (at run time; no file is changed).
    Returns a function that undoes the module-level and shared-object patches."""
    import cases.service as cs
    from sqlalchemy import event
    from sqlalchemy.orm import Session, sessionmaker

    class TimedSession(Session):
        def flush(self, objects=None):
            probe.push(f"ORM flush [{probe.owner()}]")
            try:
                return super().flush(objects)
            finally:
                probe.pop()

        def commit(self):
            probe.push(f"ORM commit [{probe.owner()}]")
            try:
                return super().commit()
            finally:
                probe.pop()

        def close(self):
            probe.push(f"session close [{probe.owner()}]")
            try:
                return super().close()
            finally:
                probe.pop()

    db = svc.db
    db.Session = sessionmaker(class_=TimedSession, **db.Session.kw)
    dialect = db.engine.dialect
    dialect.do_commit = probe.wrap("sqlite COMMIT", dialect.do_commit, low=True)
    dialect.do_rollback = probe.wrap("pool reset ROLLBACK", dialect.do_rollback, low=True)

    @event.listens_for(db.engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany):
        probe.push(f"sql {sql_label(statement)} [{probe.owner()}]")

    @event.listens_for(db.engine, "after_cursor_execute")
    def _after(conn, cursor, statement, params, context, executemany):
        probe.pop()

    # The intake's SQLite write transaction runs on the Database's own writer connection, not through
    # the engine: its BEGIN IMMEDIATE, write-turn lock and COMMIT are timed here (the steps inside it,
    # dedupe and rows, are nested steps of their own and not counted in it).
    real_txn = db.write_transaction

    @contextmanager
    def timed_txn():
        probe.push(f"sqlite COMMIT [{probe.owner()}]")
        try:
            with real_txn() as cur:
                yield cur
        finally:
            probe.pop()

    db.write_transaction = timed_txn

    originals = {"IntakeRequest": cs.IntakeRequest, "route_case": cs.route_case}

    class ValidateShim:
        model_validate = staticmethod(probe.wrap("validate (pydantic IntakeRequest)", cs.IntakeRequest.model_validate))

    cs.IntakeRequest = ValidateShim
    cs.route_case = probe.wrap("route (route_case)", cs.route_case)
    svc.intake = probe.wrap("intake body (glue)", svc.intake)
    svc._by_idempotency_key = probe.wrap("idempotency-key lookup", svc._by_idempotency_key)
    svc._duplicate_of = probe.wrap("dedupe query (_duplicate_of)", svc._duplicate_of)
    svc._create = probe.wrap("create: build Case+History+Event objects", svc._create)
    svc._merge = probe.wrap("merge path (_merge)", svc._merge)
    svc._flush_events = probe.wrap("flush history+event (_flush_events)", svc._flush_events)
    svc._notify = probe.wrap("notify listeners", svc._notify)
    svc.get = probe.wrap("final get(): re-read", svc.get)
    svc.case_dict = probe.wrap("shape case_dict (JSON dict)", svc.case_dict)
    svc._chain = probe.wrap("shape: area chain", svc._chain)
    cal = svc.calendar  # shared by the whole process: unwrapped again by restore()
    cal.working_deadline = probe.wrap("deadline (working_deadline)", cal.working_deadline)
    cal.sla_state = probe.wrap("shape: SLA state (sla_state)", cal.sla_state)
    svc.areas._refresh = probe.wrap("AreaDirectory refresh check", svc.areas._refresh)
    real_locator = svc.areas.locator

    class LocatorProxy:
        def __init__(self, loc):
            self.locate = probe.wrap("locate (STRtree)", loc.locate)

    proxies: dict[int, LocatorProxy] = {}

    def locator():
        loc = real_locator()
        if loc is None:
            return None
        if id(loc) not in proxies:
            proxies[id(loc)] = LocatorProxy(loc)
        return proxies[id(loc)]

    svc.areas.locator = locator

    def restore():
        cs.IntakeRequest = originals["IntakeRequest"]
        cs.route_case = originals["route_case"]
        del cal.working_deadline, cal.sla_state

    return restore


# Summary line of each measured step: the first entry with a matching key wins ("[x" matches inside
# the name, i.e. SQL/ORM work owned by step x; other keys match the start of the name).
GROUPS = [
    ("HTTP: test client + Flask/werkzeug request handling", ("HTTP request",)),
    ("HTTP: authenticate (session + SELECT api_tokens + commit)", ("[authenticate]", "authenticate")),
    ("HTTP: flask-limiter (check, headers, release)", ("[hook Limiter", "hook Limiter")),
    ("HTTP: Dash before_request hooks", ("[hook Dash", "hook Dash")),
    ("HTTP: request.get_json + view", ("view create_event",)),
    ("HTTP: jsonify (response JSON)", ("jsonify",)),
    ("validate (pydantic)", ("validate",)),
    ("idempotency-key pre-lookup (session + SELECT by key)", ("[idempotency-key lookup]", "idempotency-key lookup")),
    ("locate (STRtree) + AreaDirectory refresh checks", ("locate", "AreaDirectory")),
    ("route (route_case)", ("route",)),
    ("deadline (working time)", ("deadline",)),
    ("dedupe query (ORM select(Case) + SQL)", ("[dedupe query", "dedupe query")),
    ("build Case/History/Event ORM objects", ("create:", "merge path")),
    ("write case row: ORM flush + INSERT cases (merge: UPDATE)", ("ORM flush [create", "sql INSERT cases [create",
                                                                 "ORM flush [merge", "[merge path")),
    ("write history + event: ORM flush + 2 INSERTs", ("[flush history+event", "flush history+event")),
    ("commit: ORM bookkeeping", ("ORM commit [intake",)),
    ("write transaction: BEGIN IMMEDIATE + COMMIT (WAL write; checkpoints fsync)", ("sqlite COMMIT [intake",)),
    ("session close + pool reset ROLLBACK", ("session close [intake", "pool reset ROLLBACK [intake")),
    ("final get(): session + SELECT case + SELECT history", ("[final get()", "final get()")),
    ("shape case_dict (SLA state, area chain, labels)", ("shape",)),
    ("notify listeners", ("notify",)),
    ("intake body glue (checks, clock, session begin)", ("intake body", "sql ", "ORM", "session", "pool", "sqlite")),
]


def group_of(name: str) -> str:
    for label, keys in GROUPS:
        if any((k in name) if k.startswith("[") else name.startswith(k) for k in keys):
            return label
    return "other: " + name


def breakdown(probe: Probe, n: int, scale: float) -> dict[str, float]:
    """µs/event per summary line, scaled so that the lines add up to the unprobed time per event."""
    groups: dict[str, float] = defaultdict(float)
    for name, t in probe.acc.items():
        groups[group_of(name)] += t / n * 1e6
    total = sum(groups.values())
    return {k: v * scale / total for k, v in groups.items()}


def print_breakdown(title, groups: dict[str, float], probed_us: float):
    total = sum(groups.values())
    print(f"\n{title}: {total:.0f} µs/event without the probes ({probed_us:.0f} µs with them; each line below is "
          f"its probed share of the unprobed time)")
    print(f"  {'step':<66}{'µs/event':>10}{'share':>8}")
    for label, us in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<66}{us:>10.0f}{us / total:>8.1%}")


def print_detail(probe: Probe, n: int, top: int = 24):
    print(f"\n  finest steps (exclusive probed time, top {top}):")
    for name, t in sorted(probe.acc.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {name[:84]:<86}{t / n * 1e6:>7.0f} µs {probe.calls[name] / n:>5.2f}/event")


PACKAGES = [("sqlalchemy", "sqlalchemy"), ("pydantic", "pydantic"), ("shapely", "shapely"),
            ("rate limit (limits)", "limit"), ("socketio/engineio middleware", "socketio"),
            ("werkzeug", "werkzeug"), ("flask", "flask"), ("dash", "/dash/"),
            ("http.server + email (request line, header parsing)", "/http/"), ("email parser", "/email/"),
            ("logging (request log line)", "/logging/"), ("socket/socketserver/selectors", "socket"),
            ("dispatch/ (routing, working time)", "/dispatch/"), ("cases/service.py", "case_service"),
            ("geo/", "/geo/"), ("data/ (other)", "/data/"), ("json", "json"), ("zoneinfo", "zoneinfo")]


INTAKE_STEPS = [("CaseService.intake", "case_service.py", "intake"),
                ("IntakeRequest.model_validate", "pydantic/main.py", "model_validate"),
                ("_by_idempotency_key", "case_service.py", "_by_idempotency_key"),
                ("Locator.locate", "geo/locator.py", "locate"),
                ("route_case", "dispatch/routing.py", "route_case"),
                ("WorkCalendar.working_deadline", "working_time.py", "working_deadline"),
                ("_duplicate_of", "case_service.py", "_duplicate_of"),
                ("_create", "case_service.py", "_create"),
                ("_flush_events", "case_service.py", "_flush_events"),
                ("Session.commit", "orm/session.py", "commit"),
                ("Session.close", "orm/session.py", "close"),
                ("CaseService.get", "case_service.py", "get"),
                ("CaseService.case_dict", "case_service.py", "case_dict")]
SERVER_STEPS = [("BaseServer.handle_request (accept + whole request)", "socketserver.py", "handle_request"),
                ("  WSGIRequestHandler.handle", "werkzeug/serving.py", "handle"),
                ("  read + parse request line and headers", "http/server.py", "parse_request"),
                ("  run_wsgi (environ, app, write response)", "werkzeug/serving.py", "run_wsgi"),
                ("    log_request (the access log line)", "werkzeug/serving.py", "log_request"),
                ("    socketio/engineio middleware", "engineio/middleware.py", "__call__"),
                ("    Flask.wsgi_app", "flask/app.py", "wsgi_app"),
                ("      Flask.full_dispatch_request", "flask/app.py", "full_dispatch_request"),
                ("        rate-limit check", "api/ratelimit.py", "check"),
                ("        authenticate", "api/v1.py", "authenticate"),
                ("        create_event view", "api/v1.py", "create_event"),
                ("          CaseService.intake", "case_service.py", "intake"),
                ("          jsonify", "flask/json/__init__.py", "jsonify"),
                ("      Flask.finalize_request (after_request hooks)", "flask/app.py", "finalize_request"),
                ("      Flask.do_teardown_request", "flask/app.py", "do_teardown_request")]


def cprofile_summary(prof, n: int, top: int = 15, steps=INTAKE_STEPS):
    st = pstats.Stats(prof)
    by_pkg: dict[str, float] = defaultdict(float)
    rows = []
    for (fname, _line, func), (_cc, nc, tt, _ct, _callers) in st.stats.items():
        pkg = next((label for label, key in PACKAGES if key in fname), None)
        if pkg is None:
            if fname == "~":
                pkg = "sqlite3 C calls (execute, commit, fetch)" if "sqlite3" in func else "other C builtins"
            else:
                pkg = "python stdlib / other"
        by_pkg[pkg] += tt
        rows.append((tt, nc, f"{fname}:{func}"))
    total = sum(by_pkg.values())
    print(f"\n  cProfile, own time by package ({n:,} events, {total / n * 1e6:.0f} µs/event under cProfile):")
    for pkg, t in sorted(by_pkg.items(), key=lambda kv: -kv[1]):
        print(f"    {pkg:<44}{t / total:>7.1%}")
    print(f"  cProfile, top {top} functions by own time:")
    for tt, nc, where in sorted(rows, reverse=True)[:top]:
        short = where.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        print(f"    {tt / total:>6.1%}  {nc / n:>6.1f}/event  {short[:96]}")
    print(f"  cProfile, cumulative time of the steps (share of {steps[0][0]}; µs/event under cProfile):")
    base = None
    for label, fpart, func in steps:
        ct = sum(v[3] for (f, _l, fn), v in st.stats.items() if fn == func and fpart in f)
        base = base or ct or 1.0
        print(f"    {label:<52}{ct / base:>7.1%}{ct / n * 1e6:>8.0f}")
    return total / n * 1e6


def profile_inprocess(wd, seed_warm: Path, principal, events):
    n = len(events)
    # An unprobed pass right before the probed one: the reference the breakdown is scaled to (the
    # machine's load moves between phases; adjacent passes see about the same).
    svc = new_service(wd.copy(seed_warm, "unprobed.db"))
    warm_up(svc, principal, [])
    t, cpu = time.perf_counter(), time.thread_time()
    for ev in events:
        svc.intake(ev, principal)
    unprobed_us, unprobed_cpu = (time.perf_counter() - t) / n * 1e6, (time.thread_time() - cpu) / n * 1e6
    svc.db.dispose()
    print(f"\n(a) unprobed pass on the first {n:,} events: {unprobed_us:.0f} µs/event wall, {unprobed_cpu:.0f} µs CPU "
          f"(the difference: waiting, mostly the fsyncs of WAL checkpoints, plus other load on the machine)")

    svc = new_service(wd.copy(seed_warm, "profile.db"))
    warm_up(svc, principal, [])
    probe = Probe()
    restore = instrument(svc, probe)
    try:
        t = time.perf_counter()
        for ev in events:
            svc.intake(ev, principal)
        probed_us = (time.perf_counter() - t) / n * 1e6
    finally:
        restore()
    svc.db.dispose()
    groups = breakdown(probe, n, unprobed_us)
    print_breakdown(f"(a) in-process CaseService.intake, step by step ({n:,} events)", groups, probed_us)
    print_detail(probe, n)
    commits = [x for k, v in probe.samples.items() if k.startswith("sqlite COMMIT [intake") for x in v]
    print(f"  intake's {commit_stats(commits)}")

    svc = new_service(wd.copy(seed_warm, "cprofile.db"))
    warm_up(svc, principal, [])
    prof = cProfile.Profile()
    prof.enable()
    for ev in events:
        svc.intake(ev, principal)
    prof.disable()
    svc.db.dispose()
    cprofile_summary(prof, n)
    return groups, unprobed_us


def hook_name(fn) -> str:
    inner = getattr(fn, "func", fn)  # functools.partial
    return getattr(inner, "__qualname__", getattr(inner, "__name__", repr(inner)))


def profile_flask(wd, seed_warm: Path, events, warm):
    """POST /api/v1/events in-process through Flask's test client (no socket): what the API adds."""
    import logging

    import dataclasses

    import api.v1 as v1
    from app import create_app
    from config import Settings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    fields = {f.name for f in dataclasses.fields(Settings)}
    values = dict(database_url=url_of(wd.copy(seed_warm, "flask.db")), redis_url=None, secret_key="bench",
                  host="127.0.0.1", port=0, simulate=False, api_rate_limit="1000000 per minute")
    app = create_app(Settings(**{k: v for k, v in values.items() if k in fields}))
    ucc = app.extensions["ucc"]
    with ucc.db.session() as s:
        token = create_token(s, "duty_officer", label="bench")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    for ev in warm:
        client.post("/api/v1/events", json=ev, headers=headers)
    half = len(events) // 2
    bodies = [json.dumps(ev, ensure_ascii=False).encode() for ev in events]

    t, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    for body in bodies[:half]:
        client.post("/api/v1/events", data=body, headers=headers, content_type="application/json")
    unprobed_us = (time.perf_counter() - t) / half * 1e6
    main_us = (time.thread_time() - main_cpu) / half * 1e6
    background_us = (time.process_time() - cpu) / half * 1e6 - main_us

    # The probed pass runs without the live listener: its emitter thread would take the GIL in the middle
    # of whichever step runs after a commit. Its cost is the background CPU measured above, one line apart.
    listeners = list(ucc.cases.listeners)
    ucc.cases.listeners.clear()
    time.sleep(0.5)  # let the emitter drain its queue
    probe = Probe()
    restore = instrument(ucc.cases, probe)
    old_jsonify = v1.jsonify
    v1.jsonify = probe.wrap("jsonify", old_jsonify)
    saved = {}
    for attr in ("before_request_funcs", "after_request_funcs", "teardown_request_funcs"):
        table = getattr(app, attr)
        saved[attr] = {k: list(v) for k, v in table.items()}
        for key, funcs in table.items():
            table[key] = [probe.wrap("authenticate" if key == "api_v1" else f"hook {hook_name(f)}", f) for f in funcs]
    endpoint = "api_v1.create_event"
    view = app.view_functions[endpoint]
    app.view_functions[endpoint] = probe.wrap("view create_event", view)
    try:
        t = time.perf_counter()
        for body in bodies[half:]:
            probe.push("HTTP request (test client, Flask dispatch)")
            resp = client.post("/api/v1/events", data=body, headers=headers, content_type="application/json")
            probe.pop()
            assert resp.status_code == 201, resp.get_data(as_text=True)
        probed_us = (time.perf_counter() - t) / (len(bodies) - half) * 1e6
    finally:
        restore()
        ucc.cases.listeners[:] = listeners
        v1.jsonify = old_jsonify
        app.view_functions[endpoint] = view
        for attr, table in saved.items():
            getattr(app, attr).update(table)
    ucc.db.dispose()
    groups = breakdown(probe, len(bodies) - half, main_us)
    groups["live bus emitter thread (its CPU; the probed pass ran without it)"] = background_us
    print_breakdown(f"(b) POST /api/v1/events through Flask's test client, no socket ({len(bodies) - half:,} events; "
                    f"unprobed: {unprobed_us:.0f} µs wall, {main_us:.0f} µs CPU in the request thread + "
                    f"{background_us:.0f} µs in background threads; lines scaled to the CPU)", groups, probed_us)
    print(f"  the live bus emitter (a background thread fed by CaseService.listeners) re-reads each committed case "
          f"from the outbox (session + 3 SELECTs), shapes it again and emits: {background_us:.0f} µs CPU/event")
    return groups, main_us + background_us, background_us


def profile_server(wd, seed_warm: Path, events, warm):
    """The real request path, socket to socket: bench/_profiled_server.py serves the app under cProfile
    one request at a time (no concurrency, so no GIL hand-offs in the numbers)."""
    import subprocess

    path = wd.copy(seed_warm, "server_profile.db")
    db = Database(url_of(path))
    with db.session() as s:
        token = create_token(s, "duty_officer", label="bench profile")
    db.dispose()
    out = wd.path / "server.prof"
    env = dict(os.environ, UCC_SECRET_KEY="bench", UCC_SIMULATE="0", UCC_API_RATE_LIMIT="1000000 per minute")
    env.pop("REDIS_URL", None)
    with open(wd.path / "server_profile.log", "w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_profiled_server.py"), url_of(path), str(out),
                                 str(len(warm)), str(len(events))],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = proc.stdout.readline()
            if not line.strip().isdigit():
                proc.wait(10)
                print(f"\n(b) profiled server did not start:\n{(wd.path / 'server_profile.log').read_text()[-2000:]}")
                return
            post_events(int(line), [token], warm, 1)
            post_events(int(line), [token], events, 1)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    print(f"\n(b) the real server's request path under cProfile: `create_app` served by Werkzeug, one client, "
          f"{len(events):,} POST /api/v1/events (each one a new connection: Werkzeug answers `Connection: close`); "
          f"live listener detached")
    cprofile_summary(str(out), len(events), steps=SERVER_STEPS)


# ---- cheaper ways of doing the costly steps, measured here ------------------------------------------
def timed(fn, items, warm=30) -> float:
    for it in items[:warm]:
        fn(it)
    t = time.perf_counter()
    for it in items:
        fn(it)
    return (time.perf_counter() - t) / len(items) * 1e6


def what_ifs(wd, serial_db: Path, seed_warm: Path, events, principal) -> dict[str, float]:
    """Micro-measurements (µs per event) of the costly steps as written and of cheaper alternatives."""
    from sqlalchemy import bindparam, insert, select

    from cases.service import CLOSED_FOR_DEDUPE
    from data.models import Case, CaseEvent, CaseHistory, utcnow
    from data.tokens import resolve_token

    out: dict[str, float] = {}
    svc = new_service(wd.copy(serial_db, "whatif_read.db"))
    warm_up(svc, principal, [])
    db = svc.db
    now = utcnow()
    since = now - timedelta(hours=svc.dedupe_hours)
    pts = [(e["category"], e["lon"], e["lat"]) for e in events]

    def box(lat):
        dlat = svc.dedupe_meters / 111_320.0
        return dlat, dlat / max(math.cos(math.radians(lat)), 1e-6)

    s = db.Session()
    s.connection()
    out["dedupe as written (open session)"] = timed(lambda p: svc._duplicate_of(s, p[0], p[1], p[2], now), pts)
    cols = (Case.id, Case.lon, Case.lat, Case.version, Case.state, Case.reporter_count)
    where = (Case.category_code == bindparam("c"), Case.reported_at >= bindparam("since"),
             Case.state.not_in(CLOSED_FOR_DEDUPE), Case.lat.between(bindparam("la0"), bindparam("la1")),
             Case.lon.between(bindparam("lo0"), bindparam("lo1")))
    pre_orm, pre_cols = select(Case).where(*where), select(*cols).where(*where)

    def params(p):
        dlat, dlon = box(p[2])
        return {"c": p[0], "since": since, "la0": p[2] - dlat, "la1": p[2] + dlat, "lo0": p[1] - dlon,
                "lo1": p[1] + dlon}

    out["dedupe, select(Case) built once with bindparam()"] = timed(lambda p: s.scalars(pre_orm, params(p)).all(), pts)
    out["dedupe, columns only, built once, session.execute"] = timed(lambda p: s.execute(pre_cols, params(p)).all(),
                                                                     pts)
    raw = s.connection().connection.dbapi_connection
    sql = ("SELECT id, lon, lat, version, state, reporter_count FROM cases WHERE category_code = ? AND "
           "reported_at >= ? AND state NOT IN ('rejected', 'merged', 'closed', 'verified') AND lat BETWEEN ? AND ? "
           "AND lon BETWEEN ? AND ?")
    since_raw = since.replace(tzinfo=None).isoformat(sep=" ")

    def raw_dedupe(p):
        dlat, dlon = box(p[2])
        return raw.execute(sql, (p[0], since_raw, p[2] - dlat, p[2] + dlat, p[1] - dlon, p[1] + dlon)).fetchall()

    out["dedupe, raw sqlite3 cursor"] = timed(raw_dedupe, pts)
    s.close()

    ids = [r[0] for r in sqlite3.connect(serial_db).execute("SELECT id FROM cases ORDER BY id DESC LIMIT ?",
                                                              (len(events),))]
    out["final get() as written"] = timed(lambda i: svc.get(i, principal), ids)
    with db.session() as s:
        loaded = [(s.get(Case, i), list(s.scalars(select(CaseHistory).where(CaseHistory.case_id == i)))) for i in ids]
    out["case_dict on objects already in hand"] = timed(lambda x: svc.case_dict(x[0], x[1], principal), loaded)
    out["empty db.session() (begin/commit/close, no SQL)"] = timed(lambda _i: _empty_session(db), ids)
    with db.session() as s:
        token = create_token(s, "duty_officer")

    def lookup(_i):
        with db.session() as s:
            return resolve_token(s, token)

    out["token lookup as in authenticate (session + SELECT)"] = timed(lookup, ids)
    db.dispose()

    # Writes: the same rows as the ORM writes them in _create, as Core INSERTs, on fresh copies.
    with Database(url_of(serial_db)).session() as s:
        templates = []
        for c in s.scalars(select(Case).order_by(Case.id.desc()).limit(len(events))):
            row = {col.key: getattr(c, col.key) for col in Case.__table__.columns if col.key != "id"}
            row.update(idempotency_key=None, merged_into_id=None, state="reported")
            templates.append(row)

    def orm_write(db):
        def write(row):
            now = utcnow()
            with db.session() as s:
                case = Case(**row)
                s.add(case)
                s.flush()
                s.add(CaseHistory(case_id=case.id, at=now, actor="api", action="report", from_state=None,
                                  to_state="reported", note="12345热线上报；" + row["route_reason"]))
                ev = CaseEvent(case_id=case.id, type="created", at=now, grid_code=case.grid_code,
                               unit_code=case.unit_code)
                s.add(ev)
                s.flush()
                return ev.seq
        return write

    ic, ih, ie = insert(Case), insert(CaseHistory), insert(CaseEvent)

    def core_write(db):
        def write(row):
            now = utcnow()
            with db.engine.begin() as conn:
                cid = conn.execute(ic, row).inserted_primary_key[0]
                conn.execute(ih, {"case_id": cid, "at": now, "actor": "api", "action": "report", "from_state": None,
                                  "to_state": "reported", "note": "12345热线上报；" + row["route_reason"]})
                return conn.execute(ie, {"case_id": cid, "type": "created", "at": now, "grid_code": row["grid_code"],
                                         "unit_code": row["unit_code"]}).inserted_primary_key[0]
        return write

    for label, make in (("write txn as in _create (ORM: add, flush, add x2, flush, commit)", orm_write),
                        ("write txn as 3 Core INSERTs on engine.begin()", core_write)):
        wdb = Database(url_of(wd.copy(seed_warm, "whatif_write.db")))
        out[label] = timed(make(wdb), templates)
        wdb.dispose()
    return out


def _empty_session(db):
    with db.session():
        pass


# ---- suggestions --------------------------------------------------------------------------------
def suggestions(groups, wi, fgroups, flask_us, background_us, http_res, serial_us, raw_each_us, raw_bulk_us):
    g = defaultdict(float, groups)
    print("\n" + "-" * 100)
    print("cheaper ways of doing the costly steps, measured in this run (µs per event):")
    for label, us in wi.items():
        print(f"  {label:<72}{us:>8.0f}")

    dedupe_now = g["dedupe query (ORM select(Case) + SQL)"]
    write_now = (g["build Case/History/Event ORM objects"] + g["write case row: ORM flush + INSERT cases (merge: UPDATE)"]
                 + g["write history + event: ORM flush + 2 INSERTs"] + g["commit: ORM bookkeeping"]
                 + g["commit: sqlite COMMIT (WAL write; checkpoints fsync)"]
                 + g["session close + pool reset ROLLBACK"])
    write_core = wi["write txn as 3 Core INSERTs on engine.begin()"]
    write_orm = wi["write txn as in _create (ORM: add, flush, add x2, flush, commit)"]
    dedupe_as_is = wi["dedupe as written (open session)"]
    dedupe_cols = wi["dedupe, columns only, built once, session.execute"]
    # The micro-measurements ran at another moment than the breakdown (the machine's load moves): their
    # ratio, not their difference, is applied to the step's share of the breakdown.
    commit_now = g["commit: sqlite COMMIT (WAL write; checkpoints fsync)"]
    ideas = [
        ("intake: return case_dict(case, [history], principal) from the objects the write transaction already "
         "holds (expire_on_commit=False) instead of the final self.get(): one session + 2 SELECTs less",
         g["final get(): session + SELECT case + SELECT history"]),
        ("intake: write case + history + event with Core insert() (inserted_primary_key) instead of the ORM "
         f"unit of work with two flushes (measured {write_orm:.0f} → {write_core:.0f} µs per write transaction)",
         max(0.0, write_now * (1 - write_core / write_orm))),
        ("_duplicate_of: build the statement once with bindparam() and select only the columns the merge needs "
         f"(id, lon, lat, version, state, reporter_count) (measured "
         f"{dedupe_as_is:.0f} → {dedupe_cols:.0f} µs; raw cursor {wi['dedupe, raw sqlite3 cursor']:.0f} µs)",
         max(0.0, dedupe_now * (1 - dedupe_cols / dedupe_as_is))),
        ("intake: drop the idempotency pre-lookup (a separate session + SELECT for every keyed event); insert "
         "and let the unique index decide: the IntegrityError branch already answers the replay",
         g["idempotency-key pre-lookup (session + SELECT by key)"]),
        ("group commit: a writer thread takes the queued intakes and commits them in one transaction (one COMMIT "
         f"and one checkpoint share per batch; raw SQLite: {raw_each_us:.0f} → {raw_bulk_us:.0f} µs per event)",
         min(max(0.0, raw_each_us - raw_bulk_us), commit_now)),
        ("case_dict for a case reported this instant: skip sla_state (it is 'normal', 0.0) and cache the area "
         "chain dicts per grid", 0.6 * g["shape case_dict (SLA state, area chain, labels)"]),
    ]
    ideas.sort(key=lambda kv: -kv[1])
    print(f"\nranked suggestions for the in-process path (now {serial_us:.0f} µs/event = {1e6 / serial_us:,.0f} events/s; "
          f"target {TARGET_INPROC:,}/s = {1e6 / TARGET_INPROC:.0f} µs); savings estimated one by one, then added up:")
    left = serial_us
    for k, (text, save) in enumerate(ideas, 1):
        left -= save
        print(f"  {k}. -{save:4.0f} µs/event  (then {max(left, 1):5.0f} µs = {1e6 / max(left, 1):>6,.0f}/s)  {text}")
    print(f"  floor: raw SQLite, one transaction per event {raw_each_us:.0f} µs; the writes as they are "
          f"now cost {write_now:.0f} µs of the {serial_us:.0f}")

    if fgroups is not None and http_res:
        f = defaultdict(float, fgroups)
        api = {k: v for k, v in f.items() if k.startswith("HTTP")}
        intake_part = flask_us - sum(api.values()) - background_us
        werk = max(0.0, http_res["server_cpu_us"] - flask_us)
        print(f"\nover HTTP: the server spends {http_res['server_cpu_us']:.0f} µs CPU per event in ONE process (GIL), so "
              f"its ceiling is ≈ {1e6 / http_res['server_cpu_us']:,.0f} events/s whatever the number of clients;")
        parts = ", ".join(f"{k.removeprefix('HTTP: ')} {v:.0f}" for k, v in sorted(api.items(), key=lambda kv: -kv[1]))
        print(f"  in-process through Flask's test client one POST costs {flask_us:.0f} µs CPU: intake {intake_part:.0f} µs"
              f" + API layer {sum(api.values()):.0f} µs ({parts}) + live bus emitter {background_us:.0f} µs;")
        print(f"  the server around it (Werkzeug: accept a new connection and start a thread for every request, since "
              f"it answers `Connection: close`; parse the request; write the access log line; plus GIL hand-offs "
              f"between the request threads) ≈ {werk:.0f} µs more")
        auth = f["HTTP: authenticate (session + SELECT api_tokens + commit)"]
        http_ideas = [
            ("cache token → Principal in memory for a few seconds (revocation checked on expiry, or bumped by a "
             f"version in meta): no session + SELECT per request (lookup measured "
             f"{wi['token lookup as in authenticate (session + SELECT)']:.0f} µs)", auth),
            ("live bus: hand the listener the case dict intake already shaped (or shape once per batch) instead "
             "of re-reading case + history from the outbox and shaping again in the emitter thread",
             background_us * 0.7),
            ("serve the API with a production WSGI server with keep-alive and 2 worker processes (gunicorn-style; "
             "Socket.IO then needs its Redis message queue) instead of Werkzeug's development server: no "
             "connection + thread per request, 2 cores instead of one GIL",
             werk * 0.5),
            ("the in-process savings above (all but group commit) apply per request too",
             max(0.0, serial_us - max(left, 1) - min(max(0.0, raw_each_us - raw_bulk_us), commit_now))),
            ("flask-limiter on every request: check its storage/strategy cost, or exempt the token-authenticated "
             "machine channels and limit per token in the cached principal",
             0.7 * f["HTTP: flask-limiter (check, headers, release)"]),
        ]
        print(f"  the floor of this stack: an authenticated GET that does almost nothing costs the server "
              f"{http_res['floor_cpu_us']:.0f} µs CPU ({http_res['floor_rate']:,.0f} requests/s): with one process, "
              f"{TARGET_HTTP:,}/s is out of reach {'even' if http_res['floor_rate'] < TARGET_HTTP else 'only just'} "
              f"before any intake work")
        left_http = http_res["server_cpu_us"]
        print(f"ranked suggestions for HTTP (now {http_res['rate']:,.0f} events/s; target {TARGET_HTTP:,}/s):")
        for k, (text, save) in enumerate(sorted(http_ideas, key=lambda kv: -kv[1]), 1):
            left_http -= save
            print(f"  {k}. -{save:4.0f} µs CPU/event (then {max(left_http, 1):5.0f} µs = "
                  f"{1e6 / max(left_http, 1):>6,.0f}/s per core)  {text}")
        print(f"  with 2 worker processes on the 2 cores, minus the load generator's own "
              f"{http_res['client_cpu_us']:.0f} µs/event: ≈ "
              f"{2e6 / (max(left_http, 1) + http_res['client_cpu_us']):,.0f} events/s at best")


# ---- main ---------------------------------------------------------------------------------------
def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_000, help="events in-process (default 5,000)")
    ap.add_argument("--http-n", type=int, default=3_000, help="events over HTTP (default 3,000)")
    ap.add_argument("--threads", type=int, default=4, help="threads for the threaded in-process run (default 4)")
    ap.add_argument("--procs", type=int, default=2, help="processes for the multi-process in-process run (default 2)")
    ap.add_argument("--proc-threads", type=int, default=8, help="threads in each of those processes (default 8)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (default 4)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    ap.add_argument("--dup-rate", type=float, default=0.02, help="share of deliberate repeat reports (default 0.02)")
    ap.add_argument("--profile-n", type=int, default=1_000, help="events per profiling pass (default 1,000)")
    ap.add_argument("--profile", action="store_true", help="profile even when the targets are met")
    ap.add_argument("--no-profile", action="store_true", help="never profile")
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP phase")
    ap.add_argument("--keep", action="store_true", help="keep the temporary databases and the server log")
    args = ap.parse_args()

    import pydantic
    import sqlalchemy
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}, "
          f"pydantic {pydantic.__version__}, {os.cpu_count()} CPUs, load average {load()} (other work on the "
          f"machine slows every number here)")
    wd = Workdir(args.keep, prefix="bench_intake_")
    try:
        run(args, wd)
    finally:
        wd.cleanup()


def run(args, wd: Workdir) -> None:
    t0 = time.perf_counter()
    records = generate_demo_city()
    seed = wd.path / "seed.db"
    db = Database(url_of(seed))
    init_db(db)
    seed_demo(db, progress=lambda _m: None, records=records)
    with db.session() as s:
        catalog = read_catalog(s)
    db.dispose()
    print(f"seeded demo database: {time.perf_counter() - t0:.1f} s ({sum(r.level == GRID for r in records):,} grids, "
          f"{len(catalog)} categories) in {wd.path}")

    rng = np.random.default_rng(2022)
    n_http = 0 if args.no_http else args.http_n
    n_events = max(args.n, n_http + SINGLE_CLIENT_N, 2 * args.profile_n)
    events, dups = make_events(records, catalog, n_events, rng, args.dup_rate, "bench")
    warm, _ = make_events(records, catalog, WARMUP_N, rng, 0.0, "warm")
    city = next(r.code for r in records if r.level == 1)
    principal = Principal(kind="token", ident="token:bench", role="duty_officer", area_code=city)
    inproc = events[:args.n]
    n_dups = sum(i < args.n for i in dups)
    print(f"events: {len(inproc):,} over all {len(catalog)} categories, points inside grids all over the city; "
          f"{sum('idempotency_key' in e for e in inproc) / len(inproc):.0%} with an idempotency key, "
          f"{sum('reporter_phone' in e for e in inproc) / len(inproc):.0%} with a phone, "
          f"{n_dups:,} deliberate repeat reports; {WARMUP_N} warm-up events before each phase")

    # The state every phase starts from: seed + the warm-up events, written through the service.
    seed_warm = wd.copy(seed, "seed_warm.db")
    svc = new_service(seed_warm)
    warm_up(svc, principal, warm)
    svc.db.dispose()
    base_ids = max_ids(seed_warm)

    # (a) in-process, one thread
    serial_db = wd.copy(seed_warm, "serial.db")
    svc = new_service(serial_db)
    warm_up(svc, principal, [])
    wall, merged, errors = run_serial(svc, principal, inproc)
    svc.db.dispose()
    serial_rate = len(inproc) / wall
    rows = read_rows(serial_db, base_ids)
    print(f"\n(a) in-process CaseService.intake, 1 thread: {len(inproc):,} events in {wall:.2f} s = "
          f"{serial_rate:,.0f} events/s ({wall / len(inproc) * 1e6:.0f} µs/event)")
    print(f"    merged by dedupe {merged:,} ({n_dups:,} deliberate repeats); errors: {errors or 'none'}; rows written: "
          f"{', '.join(f'{t} {len(rows[t][1]):,}' for t in TABLES)}")

    # (a) in-process, several threads
    svc = new_service(wd.copy(seed_warm, "threads.db"))
    warm_up(svc, principal, [])
    wall_t, cpu_t, merged_t, errors_t, lat_t = run_threads(svc, principal, inproc, args.threads)
    svc.db.dispose()
    thread_rate = len(inproc) / wall_t
    print(f"(a) in-process, {args.threads} threads: {wall_t:.2f} s = {thread_rate:,.0f} events/s; merged {merged_t:,}; "
          f"errors: {errors_t or 'none'}; latency p50 {pct(lat_t, 50):.1f} ms, p95 {pct(lat_t, 95):.1f} ms, "
          f"max {max(lat_t) * 1e3:.0f} ms; process CPU {cpu_t / wall_t:.0%} of one core (GIL; SQLite busy waits "
          f"sleep while another thread holds the write lock)")

    # (a) in-process on both cores: several processes of several threads on one file
    procs_db = wd.copy(seed_warm, "procs.db")
    wall_p, merged_p, errors_p = run_processes(procs_db, principal, inproc, args.procs, args.proc_threads)
    procs_rate = len(inproc) / wall_p
    rows_p = read_rows(procs_db, base_ids)
    print(f"(a) in-process, {args.procs} processes x {args.proc_threads} threads (the machine's cores, as the "
          f"server's worker processes): {wall_p:.2f} s = {procs_rate:,.0f} events/s; merged {merged_p:,}; errors: "
          f"{errors_p or 'none'}; rows written: {', '.join(f'{t} {len(rows_p[t][1]):,}' for t in TABLES)}")

    # (c) raw SQLite baselines: the same rows
    n_rows = sum(len(rows[t][1]) for t in TABLES)
    n_cases = len(rows["cases"][1])
    dt_bulk = raw_one_transaction(wd.copy(seed_warm, "raw_bulk.db"), rows)
    dt_each, commits = raw_per_event(wd.copy(seed_warm, "raw_each.db"), rows)
    raw_bulk_rate, raw_each_rate = n_cases / dt_bulk, n_cases / dt_each
    print(f"(c) raw sqlite3, the same {n_rows:,} rows, every column, same pragmas (WAL, synchronous=NORMAL, "
          f"foreign keys):")
    print(f"    executemany, one transaction:   {dt_bulk:.3f} s = {raw_bulk_rate:>9,.0f} events/s "
          f"({n_rows / dt_bulk:,.0f} rows/s)")
    print(f"    one transaction per event:      {dt_each:.3f} s = {raw_each_rate:>9,.0f} events/s "
          f"({dt_each / n_cases * 1e6:.0f} µs/event)")
    print(f"    {commit_stats(commits)}")

    http_res = run_http(args, wd, seed_warm, events, warm) if not args.no_http else None
    prod_res = run_http(args, wd, seed_warm, events, warm, server="gunicorn") if not args.no_http else None
    # The thread-per-connection worker, gunicorn.conf.py's fallback without gevent, for comparison.
    thread_res = (run_http(args, wd, seed_warm, events, warm, server="gunicorn", worker_class="gthread")
                  if prod_res and prod_res["worker_class"] != "gthread" else None)

    print(f"\nsummary ({os.cpu_count()} CPUs; '÷' = baseline events/s divided by this path's events/s)")
    print(f"  {'path':<44}{'events/s':>10}{'µs/event':>10}{'÷ raw 1 txn':>13}{'÷ raw txn/event':>17}"
          f"{'target':>9}")
    lines = [("raw sqlite3, executemany in 1 transaction", raw_bulk_rate, None),
             ("raw sqlite3, 1 transaction per event", raw_each_rate, None),
             ("in-process intake, 1 thread", serial_rate, TARGET_INPROC),
             (f"in-process intake, {args.threads} threads", thread_rate, TARGET_INPROC),
             (f"in-process, {args.procs} processes x {args.proc_threads} threads", procs_rate, TARGET_INPROC)]
    if http_res:
        lines += [(f"HTTP embedded, {args.clients} clients", http_res["rate"], None),
                  ("HTTP embedded, 1 client", http_res["rate1"], None),
                  ("HTTP embedded, GET /areas/locate (floor)", http_res["floor_rate"], None),
                  (f"HTTP gunicorn {prod_res['worker_class']} x{args.workers}, {args.clients} clients", prod_res["rate"],
                   TARGET_HTTP),
                  (f"HTTP gunicorn {prod_res['worker_class']} x{args.workers}, 1 client", prod_res["rate1"], None),
                  (f"HTTP gunicorn {prod_res['worker_class']} x{args.workers}, GET locate", prod_res["floor_rate"], None)]
    if thread_res:
        lines += [(f"HTTP gunicorn gthread x{args.workers}, {args.clients} clients", thread_res["rate"], None)]
    missed = False
    for label, rate, target in lines:
        verdict = ""
        if target:
            ok = rate >= target
            missed |= not ok
            verdict = f"{target:>9,}  " + ("met" if ok else f"MISSED ({target / rate:.1f}x short)")
        print(f"  {label:<44}{rate:>10,.0f}{1e6 / rate:>10.0f}{raw_bulk_rate / rate:>12.1f}x"
              f"{raw_each_rate / rate:>16.1f}x{verdict}")
    for name, res in (("embedded", http_res), ("gunicorn", prod_res), ("gunicorn gthread", thread_res)):
        if res:
            print(f"  HTTP {name} latency, {args.clients} clients: p50 {res['p50']:.1f} ms, p95 {res['p95']:.1f} ms, "
                  f"p99 {res['p99']:.1f} ms; 1 client: p50 {res['p50_1']:.1f} ms, p95 {res['p95_1']:.1f} ms")
    print(f"  total so far {time.perf_counter() - t0:.0f} s; load average {load()}")

    if args.no_profile or not (missed or args.profile):
        return
    print("\n" + "=" * 100 + "\nprofile: where one event's time goes" + (" (targets missed)" if missed else ""))
    prof_events = events[:args.profile_n]
    groups, serial_us = profile_inprocess(wd, seed_warm, principal, prof_events)
    fgroups, flask_us, background_us = None, 0.0, 0.0
    if not args.no_http:
        fgroups, flask_us, background_us = profile_flask(wd, seed_warm, events[:2 * args.profile_n], warm)
        profile_server(wd, seed_warm, prof_events, warm)
    wi = what_ifs(wd, serial_db, seed_warm, prof_events, principal)
    suggestions(groups, wi, fgroups, flask_us, background_us, http_res, serial_us, 1e6 / raw_each_rate,
                1e6 / raw_bulk_rate)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average now {load()}")


if __name__ == "__main__":
    main()
