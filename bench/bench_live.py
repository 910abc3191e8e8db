"""Benchmark of live delivery: commit → receipt on N Socket.IO clients, one server and two sharing
Redis, against polling GET /api/v1/events every 2 s, all in one run.

    python bench/bench_live.py [--clients 200] [--events 200] [--rate 10] [--burst 50] [--procs 8]

1. Seeds the demo city into a fresh SQLite file; every phase runs `python app.py` (the embedded
   default: Werkzeug's threaded server, simple-websocket) on its own copy.
2. Baseline: P real pollers GET /api/v1/events?per_page=N every INTERVAL s, each at its own phase,
   while cases are posted at RATE/s: the time from each POST to the first poll that lists the case.
   Then the server's cost of one poll (CPU, bytes) and its ceiling, and so the load 200 pollers cause.
3. One server: N clients (namespace /live, WebSocket only, a city duty officer's token, so each gets
   every case) spread over several client processes; EVENTS cases posted at RATE/s, then a burst
   of BURST cases as fast as 4 threads can post them.
4. Two servers sharing the real Redis (REDIS_URL, a unique UCC_LIVE_CHANNEL): half the clients on
   each, every case posted to the first.
5. Where the time goes: the same as 3 on `bench/bench_live_server.py` (app.py with timing probes on
   every step of the emit path), broken down stage by stage; then the same as 4 on two probed
   servers (the local fan-out, the PUBLISH, Redis → the other process); ranked suggestions.

Times: t0 is taken just before the POST is written to an open connection, `201` when its answer has
been read, `commit` is the case_events row's `at` (set inside the transaction, just before the
commit); receipt is taken with time.time() in each client's engine.io read loop (`wire`) and in its
`case_event` handler (`handler`). One host, one clock.

The clients are the real python-socketio client, made lean by default (bench_live_client.py: no
pure-Python UTF-8 check of every frame, case_event dispatched in the read loop rather than in a new
thread per message): as shipped it costs ~1 ms of CPU per message, and 200 of them at 10 events/s
would need 2 cores, i.e. the whole machine, starving the server (--stock-clients to see it).

Experiments: --gunicorn "-k gevent -w 1" --server-env PYTHONPATH=DIR (gunicorn and gevent importable
from DIR) serves phases 1 and 2 from the production entry point wsgi.py; --py-spy PATH samples the
probed server's GIL holder; --no-poll / --no-redis / --no-probe skip phases.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_live_client  # noqa: E402

TARGET_P95_MS = 100.0
GARBAGE = "020102"  # exposed garbage: an event category routed to a district bureau
REDIS_URL = os.environ.get("UCC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


# ---- small helpers ------------------------------------------------------------------------------
def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pcts(values, qs=(50, 95, 99)) -> list[float]:
    if not len(values):
        return [float("nan")] * len(qs)
    a = np.asarray(values, dtype=float)
    return [float(np.percentile(a, q)) for q in qs]


def ms(x: float) -> str:
    return "—" if x != x else (f"{x * 1e3:.1f}" if x < 10 else f"{x * 1e3:.0f}")


def epoch_of(at: str) -> float:
    dt = datetime.fromisoformat(at)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


# ---- the database -------------------------------------------------------------------------------
from bench_common import Workdir  # noqa: E402


def seed_database(path: Path) -> tuple[dict[str, str], list[tuple[float, float]]]:
    """The demo city, tokens (city duty officers) and one point inside each grid, shuffled."""
    from shapely import wkb
    from sqlalchemy import select

    from data.db import Database
    from data.models import Area
    from data.schema import init_db
    from demo.seed import seed_demo
    from data.tokens import create_token

    db = Database(f"sqlite:///{path}")
    init_db(db)
    seed_demo(db, progress=lambda _m: None)
    with db.session() as s:
        tokens = {name: create_token(s, "duty_officer", label=f"bench_live {name}")
                  for name in ("reader", "writer", "poller")}
        geoms = s.execute(select(Area.geometry).where(Area.level == 5).order_by(Area.code)).scalars().all()
    db.dispose()
    points = [wkb.loads(g).representative_point() for g in geoms]
    order = np.random.default_rng(2024).permutation(len(points))
    return tokens, [(points[i].x, points[i].y) for i in order]


def head(db_path: Path) -> int:
    con = sqlite3.connect(db_path)
    try:
        return con.execute("SELECT coalesce(max(seq), 0) FROM case_events").fetchone()[0]
    finally:
        con.close()


def outbox_rows(db_path: Path, after: int, upto: int) -> list[tuple[int, int, str, float]]:
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute("SELECT seq, case_id, type, at FROM case_events WHERE seq > ? AND seq <= ? ORDER BY seq",
                           (after, upto)).fetchall()
    finally:
        con.close()
    return [(seq, case_id, kind, epoch_of(at)) for seq, case_id, kind, at in rows]


# ---- servers ------------------------------------------------------------------------------------
class Server:
    """`python app.py` (or the probed copy) on a free port, on a given database, like tests/serving.py."""

    def __init__(self, db_path: Path, log_path: Path, script: str = "app.py", redis_url: str | None = None,
                 channel: str | None = None, extra_env: dict | None = None, gunicorn: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_path}", UCC_HOST="127.0.0.1", UCC_PORT=str(self.port),
                   UCC_SECRET_KEY="bench-secret", UCC_SIMULATE="0", UCC_API_RATE_LIMIT="1000000 per minute")
        env.pop("REDIS_URL", None)
        env.pop("UCC_LIVE_CHANNEL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["UCC_LIVE_CHANNEL"] = channel
        env.update(extra_env or {})
        self.log_path = log_path
        self._log = open(log_path, "w")
        if gunicorn:  # e.g. "-k gevent -w 1": the production entry point (wsgi.py) instead of app.py
            cmd = [sys.executable, "-m", "gunicorn", *gunicorn.split(), "--bind", f"127.0.0.1:{self.port}",
                   "wsgi:application"]
        else:
            cmd = [sys.executable, str(ROOT / script if script == "app.py" else BENCH / script)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/healthz")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        log = self.log_path.read_text()[-3000:]
        self.stop()  # a server that never came up must not outlive the benchmark
        raise TimeoutError(f"server not ready after {timeout}s:\n{log}")

    def pids(self) -> list[int]:
        """The server and its children (gunicorn's workers)."""
        out = [self.proc.pid]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                            out.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        return out

    def cpu(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += proc_cpu(pid)
            except OSError:
                pass
        return total

    def threads(self) -> int:
        n = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("Threads:"):
                            n += int(line.split()[1])
            except OSError:
                pass
        return n

    def get_json(self, path: str):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", path)
        resp = c.getresponse()
        body = resp.read()
        c.close()
        if resp.status != 200:  # e.g. the page guard's redirect to /login: say so, not a JSONDecodeError
            raise RuntimeError(f"GET {path}: {resp.status} {resp.reason} {resp.getheader('Location') or ''} "
                               f"{body[:200]!r}")
        return json.loads(body)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# ---- posting ------------------------------------------------------------------------------------
@dataclass
class Post:
    t0: float
    t201: float
    status: int
    case_id: int | None
    merged_into: int | None


class Poster:
    def __init__(self, token: str, points: list[tuple[float, float]]):
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.points = points
        self.next = 0
        self.lock = threading.Lock()

    def body(self) -> bytes:
        with self.lock:
            lon, lat = self.points[self.next]
            self.next += 1
        return json.dumps({"category": GARBAGE, "lon": lon, "lat": lat, "source": "hotline",
                           "description": "实时推送基准：暴露垃圾，请尽快处理", "reporter_phone": "13912345678"},
                          ensure_ascii=False).encode()

    def post(self, port: int) -> Post:
        body = self.body()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.connect()
        t0 = time.time()
        c.request("POST", "/api/v1/events", body=body, headers=self.headers)
        resp = c.getresponse()
        data = resp.read()
        t1 = time.time()
        c.close()
        case = json.loads(data) if resp.status == 201 else {}
        return Post(t0, t1, resp.status, case.get("id"), case.get("merged_into"))

    def paced(self, port: int, n: int, rate: float) -> tuple[list[Post], float]:
        """n posts, one every 1/rate s (a post that takes longer delays the next). Returns the posts
        and the largest lag behind the schedule."""
        posts, lag = [], 0.0
        start = time.time() + 0.05
        for k in range(n):
            due = start + k / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            else:
                lag = max(lag, -delay)
            posts.append(self.post(port))
        return posts, lag

    def burst(self, port: int, n: int, threads: int) -> tuple[list[Post], float]:
        out: list[list[Post]] = [[] for _ in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def work(i):
            barrier.wait()
            for _ in range(i, n, threads):
                out[i].append(self.post(port))

        ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for th in ts:
            th.start()
        barrier.wait()
        t = time.time()
        for th in ts:
            th.join()
        return [p for part in out for p in part], time.time() - t


# ---- the client fleet ---------------------------------------------------------------------------
class Fleet:
    """N socket.io clients over P processes; client i of the whole fleet is (process i % P, its index)."""

    def __init__(self, urls: list[str], procs: int, token: str, lean: bool = True):
        ctx = mp.get_context("spawn")
        self.procs = min(procs, len(urls))
        self.assign: dict[tuple[int, int], str] = {}
        per: list[list[str]] = [[] for _ in range(self.procs)]
        for i, url in enumerate(urls):
            p = i % self.procs
            self.assign[(p, len(per[p]))] = url
            per[p].append(url)
        self.pipes, self.workers = [], []
        for p in range(self.procs):
            parent, child = ctx.Pipe()
            w = ctx.Process(target=bench_live_client.socket_clients, args=(child, p, per[p], token, lean),
                            daemon=True)
            w.start()
            self.pipes.append(parent)
            self.workers.append(w)
        self.n = len(urls)
        self.wire: list = []  # every record taken so far: segments pick theirs by seq
        self.handler: list = []
        self.cpu = 0.0
        self.connected = 0

    def wait_ready(self, timeout: float = 120.0) -> tuple[int, list[str], list[float]]:
        connected, errors, times = 0, [], []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("client process not ready")
            _, n, errs, ts = pipe.recv()
            connected += n
            errors += errs
            times += ts
        return connected, errors, times

    def take(self) -> float:
        """Collect the records since the last take into self.wire ((client, seq, case_id, t)) and
        self.handler ((client, seq, t)); returns the client processes' CPU seconds since then."""
        for pipe in self.pipes:
            pipe.send(("dump",))
        cpu, connected = 0.0, 0
        for p, pipe in enumerate(self.pipes):
            _, w, h, c, conn = pipe.recv()
            self.wire += [((p, k), seq, case_id, t) for k, seq, case_id, t in w]
            self.handler += [((p, k), seq, t) for k, seq, t in h]
            cpu += c
            connected += conn
        self.cpu += cpu
        self.connected = connected
        return cpu

    def have(self, want: set[int]) -> dict:
        got: dict = defaultdict(set)
        for client, seq, _case, _t in self.wire:
            if seq in want:
                got[client].add(seq)
        return got

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("close",))
            except (OSError, BrokenPipeError):
                pass
        for pipe, w in zip(self.pipes, self.workers):
            try:
                if pipe.poll(10):
                    pipe.recv()
            except (EOFError, OSError):
                pass
            w.join(5)
            if w.is_alive():
                w.terminate()
                w.join(5)


# ---- one measured segment -----------------------------------------------------------------------
@dataclass
class Segment:
    label: str
    posts: list[Post]
    rows: list[tuple[int, int, str, float]]  # outbox rows the posts wrote
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def run_segment(label, fleet: Fleet, poster: Poster, post_server: Server, db_path: Path, servers: list[Server],
                kind: str, n: int, rate: float = 10.0, threads: int = 4, drain: float = 15.0,
                stall: float = 4.0) -> Segment:
    """Post the segment's cases, then wait until every client has every event of it, or until nothing
    new arrived for `stall` s, or `drain` s after the last post. Late receipts of a segment that
    arrive during the next one still count for it (records are picked by seq)."""
    fleet.take()
    before = head(db_path)
    cpu0 = [s.cpu() for s in servers]
    client_cpu0 = fleet.cpu
    t = time.time()
    if kind == "paced":
        posts, lag = poster.paced(post_server.port, n, rate)
        extra = {"lag": lag}
    else:
        posts, wall = poster.burst(post_server.port, n, threads)
        extra = {"wall": wall}
    seconds = time.time() - t
    after = head(db_path)
    rows = outbox_rows(db_path, before, after)
    seg = Segment(label, posts, rows, extra=extra, seconds=seconds)
    want = {seq for seq, *_ in rows}
    deadline, last_count, last_change = time.time() + drain, -1, time.time()
    while True:
        fleet.take()
        got = fleet.have(want)
        count = sum(len(v) for v in got.values())
        if count != last_count:
            last_count, last_change = count, time.time()
        if count >= len(want) * len(fleet.assign) or time.time() > deadline or time.time() - last_change > stall:
            break
        time.sleep(0.2)
    seg.extra["drained"] = time.time() - t - seconds
    seg.server_cpu = sum(s.cpu() - c for s, c in zip(servers, cpu0))
    seg.client_cpu = fleet.cpu - client_cpu0
    seg.extra["connected"] = fleet.connected
    return seg


def analyse(seg: Segment, fleet: Fleet, only: str | None = None) -> dict:
    """Latency from t0, from the 201 and from the commit to the wire, per (client, event); loss and
    duplicates. `only`: restrict to the clients of one server URL."""
    clients = [c for c, url in fleet.assign.items() if only is None or url == only]
    cset = set(clients)
    by_case = {p.case_id: p for p in seg.posts if p.case_id is not None}
    for p in seg.posts:
        if p.merged_into is not None and p.merged_into not in by_case:
            by_case[p.merged_into] = p
    post_of_seq, at_of_seq = {}, {}
    for seq, case_id, _kind, at in seg.rows:
        at_of_seq[seq] = at
        if case_id in by_case:
            post_of_seq[seq] = by_case[case_id]
    want = set(at_of_seq)
    first: dict[tuple, float] = {}
    dups = 0
    for client, seq, _case, t in fleet.wire:
        if client not in cset or seq not in want:
            continue
        key = (client, seq)
        if key in first:
            dups += 1
            first[key] = min(first[key], t)
        else:
            first[key] = t
    lat0, lat201, latc = [], [], []
    per_seq: dict[int, list[float]] = defaultdict(list)
    for (client, seq), t in first.items():
        p = post_of_seq.get(seq)
        latc.append(t - at_of_seq[seq])
        per_seq[seq].append(t)
        if p is not None:
            lat0.append(t - p.t0)
            lat201.append(t - p.t201)
    hand0 = []
    hfirst: dict[tuple, float] = {}
    for client, seq, t in fleet.handler:
        if client in cset and seq in want and (client, seq) not in hfirst:
            hfirst[(client, seq)] = t
    for (client, seq), t in hfirst.items():
        p = post_of_seq.get(seq)
        if p is not None:
            hand0.append(t - p.t0)
    missing_clients = sum(1 for c in clients if any((c, s) not in first for s in want))
    spread = [max(ts) - min(ts) for ts in per_seq.values() if len(ts) > 1]
    resp = [p.t201 - p.t0 for p in seg.posts]
    return {"expected": len(want) * len(clients), "received": len(first), "dups": dups, "events": len(want),
            "clients": len(clients), "missing_clients": missing_clients, "lat0": lat0, "lat201": lat201,
            "latc": latc, "hand0": hand0, "spread": spread, "resp": resp,
            "connected": seg.extra.get("connected"),
            "statuses": {s: sum(1 for p in seg.posts if p.status == s) for s in sorted({p.status for p in seg.posts})},
            "merged": sum(p.merged_into is not None for p in seg.posts)}


def print_segment(title: str, a: dict, seg: Segment) -> None:
    p0, p201, pc, h0 = (pcts(a[k], (50, 95, 99, 100)) for k in ("lat0", "lat201", "latc", "hand0"))
    loss = a["expected"] - a["received"]
    print(f"  {title}: {a['events']} events × {a['clients']} clients: received {a['received']:,} of "
          f"{a['expected']:,}" + (f" — LOST {loss:,} ({a['missing_clients']} clients incomplete)" if loss else
                                  " (none lost)") + (f", {a['dups']} duplicates" if a["dups"] else ", no duplicates"))
    print(f"      wire − t0 (POST sent)  p50 {ms(p0[0]):>6} ms  p95 {ms(p0[1]):>6}  p99 {ms(p0[2]):>6}  "
          f"max {ms(p0[3]):>6}")
    print(f"      wire − 201 answer      p50 {ms(p201[0]):>6} ms  p95 {ms(p201[1]):>6}  p99 {ms(p201[2]):>6}  "
          f"max {ms(p201[3]):>6}")
    print(f"      wire − commit (at)     p50 {ms(pc[0]):>6} ms  p95 {ms(pc[1]):>6}  p99 {ms(pc[2]):>6}  "
          f"max {ms(pc[3]):>6}")
    print(f"      handler − t0           p50 {ms(h0[0]):>6} ms  p95 {ms(h0[1]):>6}  p99 {ms(h0[2]):>6}  "
          f"max {ms(h0[3]):>6}")
    r = pcts(a["resp"], (50, 95, 100))
    sp = pcts(a["spread"], (50, 95, 100))
    print(f"      POST → 201: p50 {ms(r[0])} ms, p95 {ms(r[1])}, max {ms(r[2])}; statuses {a['statuses']}"
          f"{'; merged ' + str(a['merged']) if a['merged'] else ''}; first-to-last client of one event: "
          f"p50 {ms(sp[0])} ms, p95 {ms(sp[1])}, max {ms(sp[2])}")


# ---- the polling baseline -----------------------------------------------------------------------
def polling_baseline(args, server: Server, poster: Poster, tokens, db_path: Path) -> dict:
    ctx = mp.get_context("spawn")
    interval, n_events = args.poll_interval, args.poll_events
    start_at = time.time() + 2.0
    post_from = start_at + 0.5
    stop_at = post_from + n_events / args.rate + interval + 0.5
    parent, child = ctx.Pipe()
    w = ctx.Process(target=bench_live_client.pollers, daemon=True,
                    args=(child, server.port, tokens["poller"], args.pollers, interval, args.per_page, start_at,
                          stop_at))
    w.start()
    time.sleep(max(0.0, post_from - time.time()))
    cpu0 = server.cpu()
    t = time.time()
    posts, _lag = poster.paced(server.port, n_events, args.rate)
    polls = parent.recv()
    cpu_all = server.cpu() - cpu0
    span = time.time() - t
    w.join(5)
    t0_of = {p.case_id: p for p in posts if p.case_id is not None}
    by_poller: dict[int, list] = defaultdict(list)
    for poll in polls:
        by_poller[poll[0]].append(poll)
    lat0, lat201, missing = [], [], 0
    for i, plist in by_poller.items():
        plist.sort(key=lambda x: x[1])
        seen: dict[int, float] = {}
        for _i, _ts, te, status, _nb, ids in plist:
            for cid in ids:
                seen.setdefault(cid, te)
        for cid, p in t0_of.items():
            if cid in seen:
                lat0.append(seen[cid] - p.t0)
                lat201.append(seen[cid] - p.t201)
            else:
                missing += 1
    poll_time = [te - ts for _i, ts, te, *_ in polls]
    bytes_ = [nb for *_x, nb, _ids in polls]
    statuses = defaultdict(int)
    for poll in polls:
        statuses[poll[3]] += 1

    # The cost of one poll and the server's ceiling for it (nothing else going on).
    headers = {"Authorization": f"Bearer {tokens['poller']}"}
    path = f"/api/v1/events?per_page={args.per_page}"

    def get_once():
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    n_seq = 40
    cpu0, t = server.cpu(), time.perf_counter()
    for _ in range(n_seq):
        get_once()
    seq_wall = (time.perf_counter() - t) / n_seq
    seq_cpu = (server.cpu() - cpu0) / n_seq
    stop = time.perf_counter() + 3.0
    counts = [0] * 4

    def hammer(i):
        while time.perf_counter() < stop:
            get_once()
            counts[i] += 1

    ts = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    cpu0, t = server.cpu(), time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    cap_wall = time.perf_counter() - t
    cap_rate = sum(counts) / cap_wall
    cap_cpu = (server.cpu() - cpu0) / cap_wall
    return {"lat0": lat0, "lat201": lat201, "missing": missing, "pairs": len(t0_of) * args.pollers,
            "polls": len(polls), "statuses": dict(statuses), "poll_time": poll_time, "bytes": bytes_,
            "seq_wall": seq_wall, "seq_cpu": seq_cpu, "cap_rate": cap_rate, "cap_cpu": cap_cpu,
            "cpu_during": cpu_all / span, "events": len(posts), "total_cases": head(db_path)}


def print_polling(args, r: dict) -> None:
    p0 = pcts(r["lat0"], (50, 95, 99, 100))
    p201 = pcts(r["lat201"], (50, 95, 99, 100))
    pt = pcts(r["poll_time"], (50, 95))
    interval = args.poll_interval
    need = args.clients / interval
    print(f"  {args.pollers} real pollers (GET /api/v1/events?per_page={args.per_page} every {interval:g} s, staggered), "
          f"{r['events']} cases posted at {args.rate:g}/s: {r['polls']} polls, statuses {r['statuses']}; "
          f"{r['pairs'] - r['missing']:,} of {r['pairs']:,} (poller, case) pairs seen"
          + (f", {r['missing']} NEVER seen" if r["missing"] else ""))
    print(f"      first poll listing the case − t0   p50 {ms(p0[0]):>6} ms  p95 {ms(p0[1]):>6}  p99 {ms(p0[2]):>6}  "
          f"max {ms(p0[3]):>6}")
    print(f"      first poll listing the case − 201  p50 {ms(p201[0]):>6} ms  p95 {ms(p201[1]):>6}  "
          f"p99 {ms(p201[2]):>6}  max {ms(p201[3]):>6}")
    print(f"      expected from the interval alone: U(0, {interval:g} s) + a poll ({ms(pt[0])} ms p50, {ms(pt[1])} ms p95) "
          f"→ p50 ≈ {ms(interval * 0.5 + pt[0])} ms, p95 ≈ {ms(interval * 0.95 + pt[0])} ms")
    mean_bytes = float(np.mean(r["bytes"])) if r["bytes"] else 0.0
    print(f"      one poll alone: {ms(r['seq_wall'])} ms, {r['seq_cpu'] * 1e3:.1f} ms server CPU, "
          f"{mean_bytes / 1024:.0f} KiB ({r['total_cases']} cases in the database); server ceiling with 4 concurrent "
          f"pollers: {r['cap_rate']:.0f} polls/s at {r['cap_cpu']:.0%} of a core")
    print(f"      {args.clients} pollers every {interval:g} s = {need:.0f} requests/s → {need * r['seq_cpu']:.2f} cores of "
          f"server CPU ({need * r['seq_cpu'] / (os.cpu_count() or 1):.0%} of this {os.cpu_count()}-core machine), "
          f"{need / max(r['cap_rate'], 1e-9):.0%} of what this server can answer, "
          f"{need * mean_bytes / 1e6:.1f} MB/s of JSON, whether anything changed or not")


# ---- where the time goes (probed server) --------------------------------------------------------
STAGES = (
    ("a", "POST sent → commit done (HTTP, auth, intake, COMMIT)"),
    ("b", "commit → live listener told (the 201's case shaped)"),
    ("c", "listener → emitter thread running (queue wake-up)"),
    ("d", "emitter → emit to rooms (payload copy, rooms)"),
    ("e", "emit → fan-out (gate.admit, rooms → sids)"),
    ("f", "fan-out → first ws.send (encode, put, writer wake)"),
    ("g", "first ws.send → half of the writers done"),
    ("h", "half → last writer done"),
    ("i", "last ws.send → last client's read loop"),
)


def breakdown(seg: Segment, probe: dict, fleet: Fleet) -> dict:
    """Per event, a timeline through the emit path from the probes of bench_live_server.py (stages a–i
    follow one another: they add up to t0 → the last client), plus the durations of the steps that
    overlap them (the fan-out loop runs while the first writers already send)."""
    by_case = {p.case_id: p for p in seg.posts if p.case_id is not None}
    seqs = {seq: by_case.get(case_id) for seq, case_id, kind, _at in seg.rows if kind == "created"}
    after_commit = {s: t for ss, t in probe["after_commit"] for s in ss}
    listener = {s: t for ss, t in probe["listener"] for s in ss}
    emitter = {s: (t0, t1, len(ss)) for ss, t0, t1, _tid in probe["emitter"] for s in ss}
    emit = {s: (t0, t1) for s, t0, t1 in probe["emit"]}
    admit = {s: (t0, t1, n) for s, t0, t1, n in probe["admit"]}
    encode = {s: (t0, t1, size) for s, t0, t1, size in probe["encode"]}
    fanout = {s: (t0, t1, n) for s, t0, t1, n in probe["fanout"]}
    sends: dict[int, list] = defaultdict(list)
    writer_threads = set()
    for s, t0, t1, tid in probe["send"]:
        sends[s].append((t0, t1))
        writer_threads.add(tid)
    wire: dict[int, list[float]] = defaultdict(list)
    want = set(seqs)
    for _client, seq, _case, t in fleet.wire:
        if seq in want:
            wire[seq].append(t)
    st: dict[str, list[float]] = defaultdict(list)
    ov: dict[str, list[float]] = defaultdict(list)
    send_each, batch = [], []
    for seq, post in seqs.items():
        need = (after_commit, listener, emitter, emit, admit, encode, fanout)
        if post is None or any(seq not in d for d in need) or not sends.get(seq) or not wire.get(seq):
            continue
        ac, li = after_commit[seq], listener[seq]
        e0, _e1, nb = emitter[seq]
        m0, m1 = emit[seq]
        a0, a1, _n = admit[seq]
        c0, c1, _size = encode[seq]
        f0, f1, _nf = fanout[seq]
        starts = sorted(a for a, _b in sends[seq])
        ends = sorted(b for _a, b in sends[seq])
        w = sorted(wire[seq])
        half = ends[len(ends) // 2]
        for key, value in (("a", ac - post.t0), ("b", li - ac), ("c", e0 - li), ("d", m0 - e0), ("e", f0 - m0),
                           ("f", starts[0] - f0), ("g", half - starts[0]), ("h", ends[-1] - half),
                           ("i", w[-1] - ends[-1])):
            st[key].append(value)
        st["median"].append(float(np.median(w)) - post.t0)
        st["last"].append(w[-1] - post.t0)
        st["commit_last"].append(w[-1] - ac)
        st["201"].append(post.t201 - ac)
        ov["gate.admit (under its lock)"].append(a1 - a0)
        ov["JSON encode of the packet (once per event)"].append(c1 - c0)
        ov["fan-out loop: one queue.put per connection"].append((f1 - f0) - (c1 - c0))
        ov["whole emit call (emitter busy)"].append(m1 - m0)
        ov["half of the clients' read loops − half of the writers"].append(float(np.median(w)) - half)
        send_each += [b - a for a, b in sends[seq]]
        batch.append(nb)
    return {"stages": st, "overlap": ov, "send_each": send_each, "writers": len(writer_threads), "batch": batch,
            "sizes": [size for _s, _a, _b, size in probe["encode"]], "threads": probe.get("threads"),
            "switch_interval": probe.get("switch_interval"), "clients": len(fleet.assign)}


def print_breakdown(b: dict) -> None:
    st, ov = b["stages"], b["overlap"]
    n = len(st.get("a", []))
    if not n:
        print("      (no event fully traced)")
        return
    sizes = f"{np.median(b['sizes']) / 1024:.1f} KiB" if b["sizes"] else "?"
    batches = dict(sorted((k, b["batch"].count(k)) for k in set(b["batch"])))
    print(f"      {n} events traced; packet {sizes}; {b['writers']} writer threads; server threads {b['threads']}; "
          f"emitter batch sizes {batches}; GIL switch interval {b['switch_interval'] * 1e3:g} ms")
    print(f"      {'timeline (consecutive)':<56}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}")
    for key, name in STAGES:
        p = pcts(st[key], (50, 95, 100))
        print(f"      {key}. {name:<53}{p[0] * 1e3:>8.2f}{p[1] * 1e3:>8.2f}{p[2] * 1e3:>8.2f}")
    for key, name in (("median", "= t0 → median client"), ("last", "= t0 → last client"),
                      ("commit_last", "  commit → last client"), ("201", "  (commit → 201 read by the poster)")):
        p = pcts(st[key], (50, 95, 100))
        print(f"      {name:<56}{p[0] * 1e3:>8.2f}{p[1] * 1e3:>8.2f}{p[2] * 1e3:>8.2f}")
    print(f"      {'overlapping steps':<56}")
    for name, values in ov.items():
        p = pcts(values, (50, 95, 100))
        print(f"         {name:<53}{p[0] * 1e3:>8.2f}{p[1] * 1e3:>8.2f}{p[2] * 1e3:>8.2f}")
    e = pcts(b["send_each"], (50, 95))
    print(f"      one ws.send (engine.io packet, wsproto frame, socket write), per connection: p50 {e[0] * 1e6:.0f} µs, "
          f"p95 {e[1] * 1e6:.0f} µs (p95 includes waiting for the GIL)")


def breakdown_redis(seg: Segment, probe_a: dict, probe_b: dict, fleet: Fleet, url_a: str, url_b: str) -> dict:
    """Two probed servers sharing Redis, every case posted to A: how an event reaches B's clients."""
    by_case = {p.case_id: p for p in seg.posts if p.case_id is not None}
    seqs = {seq: by_case.get(case_id) for seq, case_id, kind, _at in seg.rows if kind == "created"}
    emit_a = {s: (t0, t1) for s, t0, t1 in probe_a["emit"]}
    fan_a = {s: (t0, t1) for s, t0, t1, _n in probe_a["fanout"]}
    pub_a = {s: (t0, t1) for s, t0, t1 in probe_a["publish"] if s is not None}
    fan_b = {s: (t0, t1) for s, t0, t1, _n in probe_b["fanout"]}
    send_a, send_b = defaultdict(list), defaultdict(list)
    for s, _t0, t1, _tid in probe_a["send"]:
        send_a[s].append(t1)
    for s, _t0, t1, _tid in probe_b["send"]:
        send_b[s].append(t1)
    wire_a, wire_b = defaultdict(list), defaultdict(list)
    for client, seq, _case, t in fleet.wire:
        if seq in seqs:
            (wire_a if fleet.assign[client] == url_a else wire_b)[seq].append(t)
    st: dict[str, list[float]] = defaultdict(list)
    for seq, post in seqs.items():
        if (post is None or seq not in emit_a or seq not in fan_a or seq not in pub_a or seq not in fan_b
                or not send_b.get(seq) or not wire_b.get(seq) or not wire_a.get(seq)):
            continue
        m0, _m1 = emit_a[seq]
        fa0, fa1 = fan_a[seq]
        p0, p1 = pub_a[seq]
        fb0, fb1 = fan_b[seq]
        st["A: emit → its own fan-out loop done"].append(fa1 - m0)
        st["A: fan-out done → publish starts"].append(p0 - fa1)
        st["PUBLISH sent → B's fan-out starts (Redis, B's listener)"].append(fb0 - p0)
        st["B: fan-out start → B's last ws.send"].append(max(send_b[seq]) - fb0)
        st["B: last ws.send → B's last client"].append(max(wire_b[seq]) - max(send_b[seq]))
        st["= A emit → A's last client"].append(max(wire_a[seq]) - m0)
        st["= A emit → B's last client"].append(max(wire_b[seq]) - m0)
        st["= A emit → B's first client"].append(min(wire_b[seq]) - m0)
        st["(A's PUBLISH call until Redis answers: overlaps)"].append(p1 - p0)
    return st


def print_breakdown_redis(st: dict) -> None:
    n = len(next(iter(st.values()), []))
    print(f"      through Redis, {n} events traced          {'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}")
    for name, values in st.items():
        p = pcts(values, (50, 95, 100))
        print(f"      {name:<54}{p[0] * 1e3:>8.2f}{p[1] * 1e3:>8.2f}{p[2] * 1e3:>8.2f}")


def pyspy_summary(path: Path, top: int = 14) -> list[tuple[str, float]]:
    """Shares of the GIL-holding samples of the server, by area of the code."""
    groups = (
        ("writer threads: engine.io packet + wsproto framing + socket send", ("engineio/socket.py", "writer")),
        ("fan-out: socketio Manager.emit / engine.io send (queue.put)", ("socketio/manager.py", "emit")),
        ("JSON encoding (socketio packet, Flask JSON provider)", ("socketio/packet.py", "encode")),
        ("delivery gate", ("live/gate.py", "")),
        ("HTTP server: Werkzeug request handling, thread per request", ("werkzeug/serving.py", "")),
        ("Flask app + API + intake (POST /api/v1/events)", ("flask/app.py", "wsgi_app")),
        ("simple-websocket reader threads (idle clients' sockets)", ("simple_websocket/ws.py", "_thread")),
        ("live emitter thread (other)", ("live/bus.py", "_emitter")),
    )
    totals: dict[str, int] = defaultdict(int)
    total = 0
    selfs: dict[str, int] = defaultdict(int)
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        try:
            k = int(n)
        except ValueError:
            continue
        total += k
        frames = [f for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        selfs[frames[-1]] += k
        for name, (file, func) in groups:
            if any(file in f and func in f for f in frames):
                totals[name] += k
                break
        else:
            totals["other"] += k
    out = [(f"{name} ({v} of {total} samples)" if name == "other" else name, v / total)
           for name, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    hot = [(f, v / total) for f, v in sorted(selfs.items(), key=lambda kv: -kv[1])[:top]]
    return out + [("", 0.0)] + hot if total else []


# ---- phases -------------------------------------------------------------------------------------
def socket_phase(args, label, wd: Workdir, seed: Path, tokens, poster: Poster, redis: bool = False,
                 script: str = "app.py", extra_env: dict | None = None, spy: bool = True):
    db = wd.copy(seed, f"{label}.db")
    channel = f"ucc-live-bench-{os.getpid()}-{uuid.uuid4().hex[:10]}" if redis else None
    t = time.perf_counter()
    n_servers = 2 if redis else 1
    probed = script != "app.py"
    env = dict(kv.split("=", 1) for kv in args.server_env)
    env.update(extra_env or {})
    servers = [Server(db, wd.path / f"{label}-{i}.log", script=script, redis_url=REDIS_URL if redis else None,
                      channel=channel, extra_env=env, gunicorn=None if probed else args.gunicorn)
               for i in range(n_servers)]
    fleet = None
    out = {"servers": servers, "segs": {}, "probes": {}, "pyspy": None}
    try:
        for s in servers:
            s.wait_ready()
        urls = [servers[i % n_servers].url for i in range(args.clients)]
        started = time.perf_counter() - t
        # The server's cost of an intake with nobody listening: what the fan-out adds is the rest.
        poster.post(servers[0].port)
        cpu0, n0 = sum(s.cpu() for s in servers), 20
        none_posts, _ = poster.paced(servers[0].port, n0, args.rate)
        time.sleep(0.3)
        out["no_clients_cpu"] = (sum(s.cpu() for s in servers) - cpu0) / n0
        out["no_clients_resp"] = pcts([p.t201 - p.t0 for p in none_posts], (50, 95))
        burst_posts, _wall = poster.burst(servers[0].port, 20, args.burst_threads)
        out["no_clients_burst_resp"] = pcts([p.t201 - p.t0 for p in burst_posts], (50, 95))
        t = time.perf_counter()
        fleet = Fleet(urls, args.procs, tokens["reader"], lean=not args.stock_clients)
        out["fleet"] = fleet
        connected, errors, ctimes = fleet.wait_ready()
        cs = pcts(ctimes, (50, 95, 100))
        print(f"  {n_servers} server process{'es' if n_servers > 1 else ''} ready in {started:.1f} s"
              + (f" (Redis {REDIS_URL}, channel {channel})" if redis else "")
              + f"; {connected} of {args.clients} clients connected and resynced in {time.perf_counter() - t:.1f} s "
              f"over {fleet.procs} client processes (connect + resync p50 {ms(cs[0])} ms, max {ms(cs[2])}); "
              f"server threads {', '.join(str(s.threads()) for s in servers)}")
        for e in errors[:5]:
            print(f"    ! {e}")
        nb = out["no_clients_burst_resp"]
        print(f"  with no client connected: {out['no_clients_cpu'] * 1e3:.1f} ms server CPU per intake at "
              f"{args.rate:g}/s (POST → 201 p50 {ms(out['no_clients_resp'][0])} ms, p95 {ms(out['no_clients_resp'][1])}); "
              f"a burst of 20 from {args.burst_threads} threads: POST → 201 p50 {ms(nb[0])} ms, p95 {ms(nb[1])}")
        # Warm-up: the emitter thread, the code paths, the writers.
        warm = run_segment("warm-up", fleet, poster, servers[0], db, servers, "paced", 5, rate=5, drain=5)
        wa = analyse(warm, fleet)
        print(f"  warm-up: 5 events, received {wa['received']} of {wa['expected']}; load average {load()}")
        if probed:
            for sv in servers:
                sv.get_json("/__bench/live_probe")  # drop the warm-up's probes
        n_paced = args.probe_events if probed else args.events
        spy_proc = None
        if probed and spy and args.py_spy:
            spy_out = wd.path / "server.pyspy.txt"
            mode = os.environ.get("UCC_BENCH_PYSPY_ARGS", "--gil").split()
            spy_proc = subprocess.Popen([args.py_spy, "record", *mode, "--nonblocking", "-r", "100", "-p",
                                    str(servers[0].proc.pid), "-o", str(spy_out), "--format", "raw",
                                    "-d", str(int(n_paced / args.rate) + 2)],
                                   stdout=subprocess.DEVNULL, stderr=open(wd.path / "py-spy.log", "w"))
        out["segs"]["paced"] = run_segment("paced", fleet, poster, servers[0], db, servers, "paced", n_paced,
                                           rate=args.rate)
        if spy_proc is not None:
            try:
                spy_proc.wait(30)
                out["pyspy"] = pyspy_summary(spy_out)
            except (subprocess.TimeoutExpired, OSError) as exc:
                print(f"    (py-spy: {exc})")
                spy_proc.kill()
                spy_proc.wait(5)
        if probed:
            out["probes"]["paced"] = [sv.get_json("/__bench/live_probe") for sv in servers]
        time.sleep(0.5)
        out["segs"]["burst"] = run_segment("burst", fleet, poster, servers[0], db, servers, "burst", args.burst,
                                           threads=args.burst_threads)
        if probed:
            out["probes"]["burst"] = [sv.get_json("/__bench/live_probe") for sv in servers]
        fleet.take()
        return out
    finally:
        if fleet is not None:
            fleet.close()
        for s in servers:
            s.stop()


def print_costs(seg: Segment, a: dict, n_servers: int, no_clients_cpu: float | None = None) -> None:
    n = max(len(seg.posts), 1)
    if no_clients_cpu is not None and a["received"]:
        a["fan_us"] = (seg.server_cpu - no_clients_cpu * n) / a["received"] * 1e6
    a["client_us"] = seg.client_cpu / max(a["received"], 1) * 1e6
    span = seg.seconds + seg.extra.get("drained", 0.0)
    extra = (f"posted at {n / seg.seconds:.1f}/s, largest lag behind schedule {ms(seg.extra['lag'])} ms"
             if "lag" in seg.extra else f"{n} posts in {seg.extra['wall']:.2f} s = {n / seg.extra['wall']:.0f}/s")
    print(f"      {extra}; server CPU {seg.server_cpu / span:.0%} of a core ({seg.server_cpu / n * 1e3:.1f} ms per "
          f"event, {n_servers} process{'es' if n_servers > 1 else ''}, POST handling included); client processes "
          f"{seg.client_cpu / span:.0%} of a core ({seg.client_cpu / max(a['received'], 1) * 1e6:.0f} µs per "
          f"message); {seg.extra.get('connected')} clients still connected")
    if no_clients_cpu is not None and a["received"]:
        fan = seg.server_cpu - no_clients_cpu * n
        print(f"      the fan-out's share: {seg.server_cpu / n * 1e3:.1f} − {no_clients_cpu * 1e3:.1f} ms (an intake with "
              f"no client) = {fan / n * 1e3:.1f} ms server CPU per event = {fan / a['received'] * 1e6:.0f} µs per "
              f"message delivered")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200, help="connected Socket.IO clients (default 200)")
    ap.add_argument("--events", type=int, default=200, help="paced events per socket phase (default 200)")
    ap.add_argument("--rate", type=float, default=10.0, help="paced posting rate, events/s (default 10)")
    ap.add_argument("--burst", type=int, default=50, help="events of the burst (default 50)")
    ap.add_argument("--burst-threads", type=int, default=4, help="posting threads of the burst (default 4)")
    ap.add_argument("--procs", type=int, default=8, help="client processes (default 8)")
    ap.add_argument("--stock-clients", action="store_true",
                    help="clients exactly as python-socketio ships (UTF-8 check in Python, a thread per message): "
                         "~7x the client CPU, which on a small machine starves the server")
    ap.add_argument("--pollers", type=int, default=8, help="real polling clients of the baseline (default 8)")
    ap.add_argument("--poll-interval", type=float, default=2.0, help="polling interval, s (default 2)")
    ap.add_argument("--poll-events", type=int, default=60, help="cases posted during the polling baseline (default 60)")
    ap.add_argument("--per-page", type=int, default=50, help="per_page of the polls (default 50)")
    ap.add_argument("--probe-events", type=int, default=100, help="paced events of the probed run (default 100)")
    ap.add_argument("--py-spy", default=shutil.which("py-spy"),
                    help="py-spy binary: samples the probed server's GIL holder (default: py-spy on PATH, if any)")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of the push phases' servers (repeatable)")
    ap.add_argument("--gunicorn", metavar="ARGS",
                    help='serve the push phases [1] and [2] with `python -m gunicorn ARGS wsgi:application` instead '
                         'of app.py, e.g. "-k gevent -w 1" or "-w 1 --threads 250" (gunicorn, and gevent, must be '
                         'importable: add PYTHONPATH with --server-env)')
    ap.add_argument("--no-poll", action="store_true", help="skip the polling baseline")
    ap.add_argument("--no-redis", action="store_true", help="skip the two-process Redis phase")
    ap.add_argument("--no-probe", action="store_true", help="skip the probed run (where the time goes)")
    ap.add_argument("--keep", action="store_true", help="keep the databases and server logs")
    args = ap.parse_args()

    from importlib.metadata import version

    t_start = time.perf_counter()
    print(f"Python {sys.version.split()[0]}, python-socketio {version('python-socketio')}, python-engineio "
          f"{version('python-engineio')}, Flask-SocketIO {version('flask-socketio')}, simple-websocket "
          f"{version('simple-websocket')}, websocket-client {version('websocket-client')}, Werkzeug "
          f"{version('werkzeug')}; {os.cpu_count()} CPUs; load average at start {load()} (other work on the "
          f"machine slows every number here)")
    print(f"clients: {args.clients} over {args.procs} processes, "
          + ("python-socketio as shipped" if args.stock_clients else
             "python-socketio with skip_utf8_validation and case_event dispatched in the read loop (see "
             "bench_live_client.py; --stock-clients for the client as shipped)"))
    wd = Workdir(args.keep, prefix="bench_live_")
    results: dict = {}
    try:
        t = time.perf_counter()
        seed = wd.path / "seed.db"
        tokens, points = seed_database(seed)
        poster = Poster(tokens["writer"], points)
        print(f"seeded the demo city in {time.perf_counter() - t:.1f} s ({len(points):,} grids; each case posted "
              f"goes to another grid, category {GARBAGE}, so none is merged); work dir {wd.path}")

        if not args.no_poll:
            print("\n[baseline] polling, one server (`python app.py`)")
            db = wd.copy(seed, "poll.db")
            s = Server(db, wd.path / "poll.log").wait_ready()
            try:
                poster.post(s.port)  # warm-up
                results["poll"] = polling_baseline(args, s, poster, tokens, db)
            finally:
                s.stop()
            print_polling(args, results["poll"])

        how = f"gunicorn {args.gunicorn} wsgi:application" if args.gunicorn else "python app.py"
        print(f"\n[1] Socket.IO push, one server (`{how}`), {args.clients} clients")
        out = socket_phase(args, "single", wd, seed, tokens, poster)
        results["single_no_clients"] = (out["no_clients_cpu"], out["no_clients_resp"], out["no_clients_burst_resp"])
        for key, seg in out["segs"].items():
            a = analyse(seg, out["fleet"])
            results[("single", key)] = a
            print_segment(f"{key} ({'at %g/s' % args.rate if key == 'paced' else f'{args.burst_threads} threads'})",
                          a, seg)
            print_costs(seg, a, 1, out["no_clients_cpu"])
        print(f"  load average {load()}")

        if not args.no_redis:
            print(f"\n[2] Socket.IO push, two servers (`{how}`) sharing Redis, {args.clients} clients split across "
                  f"both, every case posted to A")
            out = socket_phase(args, "redis", wd, seed, tokens, poster, redis=True)
            results["redis_no_clients"] = (out["no_clients_cpu"], out["no_clients_resp"], out["no_clients_burst_resp"])
            fleet = out["fleet"]
            url_a, url_b = out["servers"][0].url, out["servers"][1].url
            for key, seg in out["segs"].items():
                a = analyse(seg, fleet)
                results[("redis", key)] = a
                print_segment(f"{key}, all clients", a, seg)
                print_costs(seg, a, 2, out["no_clients_cpu"])
                results[("redis", key, "A")] = aa = analyse(seg, fleet, only=url_a)
                results[("redis", key, "B")] = ab = analyse(seg, fleet, only=url_b)
                for name, x in (("A (committing process, local fan-out)", aa), ("B (through Redis pub/sub)", ab)):
                    p = pcts(x["lat0"], (50, 95, 99, 100))
                    print(f"      clients on {name:<38}: {x['received']:,}/{x['expected']:,}  wire − t0 p50 "
                          f"{ms(p[0])} ms, p95 {ms(p[1])}, p99 {ms(p[2])}, max {ms(p[3])}")
            print(f"  load average {load()}")

        if not args.no_probe:
            print(f"\n[3] where the time goes: one server with timing probes (bench/bench_live_server.py), "
                  f"{args.clients} clients, {args.probe_events} paced events then the burst"
                  + ("; py-spy samples the server's GIL holder during the paced part" if args.py_spy else ""))
            out = socket_phase(args, "probe", wd, seed, tokens, poster, script="bench_live_server.py")
            for key, seg in out["segs"].items():
                a = analyse(seg, out["fleet"])
                results[("probe", key)] = a
                print_segment(f"{key} (probed)", a, seg)
                print_costs(seg, a, 1, out["no_clients_cpu"])
                b = breakdown(seg, out["probes"][key][0], out["fleet"])
                results[("probe", key, "breakdown")] = b
                print_breakdown(b)
            if out["pyspy"]:
                results["pyspy"] = out["pyspy"]
                print("      py-spy --gil, paced part: where the server holds the GIL")
                for name, share in out["pyspy"]:
                    print(f"         {share:6.1%}  {name}" if name else "         hottest frames (self):")
            print(f"  load average {load()}")

        if not args.no_probe and not args.no_redis:
            print(f"\n[4] where the time goes through Redis: two probed servers, {args.clients} clients split across "
                  f"both, {args.probe_events} paced events posted to A, then the burst")
            out = socket_phase(args, "probe-redis", wd, seed, tokens, poster, redis=True,
                               script="bench_live_server.py", spy=False)
            url_a, url_b = out["servers"][0].url, out["servers"][1].url
            for key, seg in out["segs"].items():
                a = analyse(seg, out["fleet"])
                results[("probe-redis", key)] = a
                print_segment(f"{key} (probed, 2 servers)", a, seg)
                st = breakdown_redis(seg, out["probes"][key][0], out["probes"][key][1], out["fleet"], url_a, url_b)
                results[("probe-redis", key, "breakdown")] = st
                print_breakdown_redis(st)
            print(f"  load average {load()}")

        summary(args, results)
        print(f"\ntotal {time.perf_counter() - t_start:.0f} s; load average at end {load()}")
    finally:
        wd.cleanup()


def summary(args, results: dict) -> None:
    print(f"\nsummary: commit → receipt on every client ({os.cpu_count()} CPUs, loopback; target p95 ≤ "
          f"{TARGET_P95_MS:.0f} ms; receipt = the client's engine.io read loop)")
    print(f"  {'path':<48}{'received':>14}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'p95 from 201':>14}  target")
    rows = []
    if "poll" in results:
        r = results["poll"]
        rows.append((f"polling every {args.poll_interval:g} s ({args.pollers} real pollers)",
                     f"{r['pairs'] - r['missing']}/{r['pairs']}", r["lat0"], r["lat201"]))
    names = {"single": "1 server", "redis": "2 servers + Redis", "probe": "1 server, probed",
             "probe-redis": "2 servers + Redis, probed"}
    for key in ("single", "redis", "probe", "probe-redis"):
        for kind in ("paced", "burst"):
            a = results.get((key, kind))
            if a is None:
                continue
            label = f"{names[key]}, {'paced %g/s' % args.rate if kind == 'paced' else 'burst of %d' % args.burst}"
            rows.append((label, f"{a['received']}/{a['expected']}", a["lat0"], a["lat201"]))
            if key == "redis":
                for side, name in (("A", "   clients on A (local)"), ("B", "   clients on B (via Redis)")):
                    x = results[(key, kind, side)]
                    rows.append((name, f"{x['received']}/{x['expected']}", x["lat0"], x["lat201"]))
    for label, got, lat0, lat201 in rows:
        p = pcts(lat0, (50, 95, 99, 100))
        q = pcts(lat201, (95,))[0]
        ok = "met" if p[1] * 1e3 <= TARGET_P95_MS else f"MISSED ({p[1] * 1e3 / TARGET_P95_MS:.1f}x)"
        print(f"  {label:<48}{got:>14}{ms(p[0]):>8}{ms(p[1]):>8}{ms(p[2]):>8}{ms(p[3]):>8}{ms(q):>14}  {ok}")
    print("  (ms from t0, the moment the POST was sent, to each client's receipt; 'p95 from 201' from the moment "
          "its 201 was read)")
    if "poll" in results and ("single", "paced") in results:
        poll = pcts(results["poll"]["lat0"], (50, 95))
        push = pcts(results[("single", "paced")]["lat0"], (50, 95))
        print(f"  push vs polling: p50 {poll[0] / push[0]:.0f}x, p95 {poll[1] / push[1]:.0f}x sooner")
    for kind in ("paced", "burst"):
        b = results.get(("probe", kind, "breakdown"))
        if not b or not b["stages"].get("a"):
            continue
        st = b["stages"]
        total = float(np.median(st["last"]))
        print(f"\n  where the time goes, probed {kind} run (medians; t0 → last client {total * 1e3:.1f} ms):")
        for key, name in sorted(STAGES, key=lambda kv: -float(np.median(st[kv[0]]))):
            v = float(np.median(st[key]))
            print(f"    {v * 1e3:8.2f} ms {v / total:6.1%}  {key}. {name}")
    suggestions(args, results)


def suggestions(args, results: dict) -> None:
    """Ranked by what the measurements say they would save."""
    b = results.get(("probe", "paced", "breakdown"))
    single = results.get(("single", "paced"))
    if not b or not b["stages"].get("a") or not single or "fan_us" not in single:
        return
    st, ov = b["stages"], b["overlap"]
    med = {k: float(np.median(v)) for k, v in st.items()}
    last = med["last"]
    writers = med["g"] + med["h"]
    send_us = float(np.median(b["send_each"])) * 1e6
    fan_us = single["fan_us"]
    cheap = sum(float(np.median(ov[k])) for k in ("gate.admit (under its lock)",
                                                    "JSON encode of the packet (once per event)")) + med["d"]
    print("\n  ranked suggestions (from this run's numbers):")
    print(f"    1. The fan-out, one OS thread per connection (threading mode): the writers take {writers * 1e3:.0f} ms of "
          f"the {last * 1e3:.0f} ms to the last client ({writers / last:.0%}); each message costs the server "
          f"{fan_us:.0f} µs of CPU while its ws.send itself takes {send_us:.0f} µs — the rest is waking {args.clients} "
          f"writer threads per event and handing them the GIL. Serve /live from an event loop (gunicorn -k gevent "
          f"-w 1, which live/bus.py detects; compare with --gunicorn \"-k gevent -w 1\") or spread clients over more "
          f"processes (Redis).")
    burst = results.get(("probe", "burst", "breakdown"))
    nc = results.get("single_no_clients")
    if burst and burst["stages"].get("a") and nc:
        a_burst = float(np.median(burst["stages"]["a"]))
        print(f"    2. In the burst, POST sent → commit takes {a_burst * 1e3:.0f} ms (p50), while the whole POST → 201 of the "
              f"same burst with no client connected takes {nc[2][0] * 1e3:.0f} ms: intake shares the process (and the "
              f"GIL) with the fan-out. Keep the API and the "
              f"live connections in different processes (they already share events through Redis).")
    pr = results.get(("probe-redis", "paced", "breakdown"))
    if pr and pr.get("(A's PUBLISH call until Redis answers: overlaps)"):
        pub = float(np.median(pr["(A's PUBLISH call until Redis answers: overlaps)"]))
        print(f"    3. With Redis, the emitter thread waits {pub * 1e3:.0f} ms (p50) in each PUBLISH (a Redis round trip, "
              f"then the GIL back among the writer threads) before it takes the next event; publishing from a thread "
              f"of its own, or before the local fan-out, would take that off the emitter's path.")
    print(f"    -. Not worth it: the bus's own work (shaping {med['d'] * 1e3:.2f} ms, gate + JSON encode "
          f"{(cheap - med['d']) * 1e3:.2f} ms per event, once) is {cheap / last:.1%} of the time to the last client.")


if __name__ == "__main__":
    main()
