"""How long Open311's reads take over a city's volume: GET requests (the default 90 days, capped at 1,000; by status;
as XML) and one request, in-process over a seeded demo SQLite file with N cases over two years.

    python bench/bench_open311.py [--cases 200000] [--repeat 5] [--keep]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import Workdir, demo_db  # noqa: E402
from bench.bench_wall import fill_cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Workdir(args.keep, "bench_open311_")
    try:
        path = demo_db(work.path / "open311.db")
        fill_cases(path, args.cases, days=730)
        from app import create_app
        from config import Settings

        app = create_app(Settings(database_url=f"sqlite:///{path}", redis_url=None, secret_key="bench", host="127.0.0.1",
                                  port=0, simulate=False, open311_rate_limit="1000000 per minute"))
        client = app.test_client()
        newest = client.get("/open311/v2/requests.json").get_json()
        print(f"{args.cases:,} cases; the default answer holds {len(newest)} requests")
        for label, path_ in (("requests.json (90 days, ≤1000)", "/open311/v2/requests.json"),
                             ("requests.xml (90 days, ≤1000)", "/open311/v2/requests.xml"),
                             ("requests.json?status=open", "/open311/v2/requests.json?status=open"),
                             ("requests.json?status=closed", "/open311/v2/requests.json?status=closed"),
                             (f"requests/{newest[0]['service_request_id']}.json",
                              f"/open311/v2/requests/{newest[0]['service_request_id']}.json"),
                             ("services.json", "/open311/v2/services.json")):
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                resp = client.get(path_)
                times.append(time.perf_counter() - started)
                assert resp.status_code == 200, resp.get_data(as_text=True)[:200]
            print(f"  {label:<40} median {statistics.median(times) * 1000:7.1f} ms  ({len(resp.data):,} bytes)")
        app.extensions["ucc"].db.dispose()
    finally:
        work.cleanup()


if __name__ == "__main__":
    main()
