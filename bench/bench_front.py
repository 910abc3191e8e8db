"""Benchmark of the production front under a connection flood: nginx → gunicorn against gunicorn alone, same run.

    python bench/bench_front.py [--runs 1] [--seconds 30] [--websockets 200] [--slow 2500] [--no-baseline]

One gunicorn (gunicorn.conf.py: 2 gevent workers, UCC_CONNECTIONS each) over a copy of the freshly
seeded demo city, bound both to the front's private unix socket and to a TCP port of its own; nginx
(deploy/front.py, deploy/nginx.conf.template) in front of it. Each run, first through nginx, then
straight at gunicorn (the baseline, the tester's setting): the flood (tests/flood.py: 200 Socket.IO
WebSockets on /live and 2,500 slow clients from 127.0.0.1, reopened as they are closed) holds on for
SECONDS while a normal client on 127.0.0.2 asks GET /healthz and GET /api/v1/events?per_page=20,
5 a second, each on a new connection, timed from its scheduled start (10 s timeout). Prints the
normal client's p50/p95/max and failures, and what became of the flood's connections.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from tests.flood import describe, normal_client  # noqa: E402
from tests.serving import free_port  # noqa: E402


def seeded_demo(path: Path) -> str:
    from data.db import Database
    from data.schema import init_db
    from demo.seed import seed_demo

    db = Database(f"sqlite:///{path}")
    init_db(db)
    seed_demo(db, progress=lambda _m: None)
    db.dispose()
    return f"sqlite:///{path}"


def make_token(database_url: str, role: str) -> str:
    from data.db import Database
    from data.tokens import create_token

    db = Database(database_url)
    with db.session() as s:
        token = create_token(s, role, None, None)
    db.dispose()
    return token


def flood_round(port: int, flood_token: str, api_token: str, seconds: float, websockets: int, slow: int) -> dict:
    """The flood against 127.0.0.1:port and, meanwhile, the normal client from 127.0.0.2."""
    flood = subprocess.Popen([sys.executable, str(ROOT / "tests" / "flood.py"), "--port", str(port),
                              "--token", flood_token, "--websockets", str(websockets), "--slow", str(slow),
                              "--seconds", str(seconds + 1)],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = flood.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"flood did not start: {line!r}")
        normal = normal_client("127.0.0.1", port, api_token, seconds)
        counts = json.loads(flood.stdout.readline() or "{}")
        flood.wait(30)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait(10)
    return {"normal": normal, "flood": counts}


def describe_flood(counts: dict) -> str:
    closed = {k: v for k, v in sorted(counts.items()) if any(w in k for w in ("closed", "answered", "refused",
                                                                             "reset", "failed"))}
    return (f"WebSockets live at end {counts.get('ws_live_at_end', 0)} (peak {counts.get('ws_live_peak', 0)}), "
            f"flood connections open at peak {counts.get('peak_open', 0)}, opened "
            f"{sum(v for k, v in counts.items() if k.endswith('_opened'))}; ended by the server: {closed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--websockets", type=int, default=200)
    parser.add_argument("--slow", type=int, default=2500)
    parser.add_argument("--no-baseline", action="store_true", help="only through nginx")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, nginx.conf)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "deploy"))
    from front import Front, raise_open_files

    raise_open_files()
    work = Path(tempfile.mkdtemp(prefix="bench_front_"))
    t = time.perf_counter()
    url = seeded_demo(work / "demo.db")
    print(f"demo city seeded in {time.perf_counter() - t:.1f} s ({work})")
    flood_token, api_token = make_token(url, "wall"), make_token(url, "duty_officer")
    direct_port = free_port()
    env = dict(__import__("os").environ, DATABASE_URL=url, UCC_SECRET_KEY="bench", UCC_SEED_HISTORY="0",
               UCC_WORKERS="2")
    env.pop("REDIS_URL", None)
    log = open(work / "front.log", "w")
    front = Front("127.0.0.1", free_port(), work / "front", env=env, extra_binds=(f"127.0.0.1:{direct_port}",),
                  log=log)
    front.start()
    print(f"front: nginx 127.0.0.1:{front.port} → gunicorn (2 workers) unix socket; gunicorn also on "
          f"127.0.0.1:{direct_port} for the baseline")
    try:
        for run in range(1, args.runs + 1):
            for name, port in [("nginx → gunicorn", front.port)] + ([] if args.no_baseline else
                                                                   [("gunicorn alone (baseline)", direct_port)]):
                result = flood_round(port, flood_token, api_token, args.seconds, args.websockets, args.slow)
                print(f"run {run}, {name}: normal client {describe(result['normal'])}")
                print(f"    flood: {describe_flood(result['flood'])}")
                time.sleep(3)  # let the last wave's connections drain before the next round
        limited = (front.prefix / "error.log").read_text(errors="replace").count("limiting connections")
        print(f"nginx error.log: {limited} connections refused by limit_conn (429)")
    finally:
        front.stop()
        log.close()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
