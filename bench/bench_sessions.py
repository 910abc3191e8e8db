"""Benchmark of what a signed-in request pays for its session: a Dash layout read and a Dash callback,
through the Flask test client, against an anonymous request of the same app as the floor."""
from __future__ import annotations

# python bench/bench_sessions.py [--n 400] [--blocks 7] [--db DIR/demo.db]
#
# Speaks HTTP only (the /login form, /_dash-layout, /_dash-update-component), so the same script times
# the code of another commit too: run it from that commit's tree (PYTHONPATH=that tree) on a copy of
# the same database and compare the ratios to the floor. Each figure is the best of `blocks` blocks of
# `n` requests (the least disturbed by the other processes of the machine), in microseconds a request.
# With server-side sessions in the tree, it also times the user loader alone, interleaved in the same
# process with the loader it replaced (one primary-key read of the user), as the same-run baseline.
import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_common import demo_db  # noqa: E402

CALLBACK = {  # callbacks/report.py severity_for_emergencies: a cheap callback of a page duty officers open
    "output": "rp-severity-wrap.style",
    "outputs": {"id": "rp-severity-wrap", "property": "style"},
    "inputs": [{"id": "rp-category", "property": "value", "value": "020102"}],
    "changedPropIds": ["rp-category.value"],
}




def best_us(fn, n: int, blocks: int) -> float:
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1e6)
    return min(times)


def loaders(app, client, n: int, blocks: int) -> None:
    """The loader a signed-in request runs, now (the session row joined with its user) and before
    (stateless cookie: the user by id), interleaved block by block so that both see the same machine."""
    try:
        from auth.sessions import load_signed_in
    except ImportError:
        return  # a tree from before server-side sessions
    from data.models import User
    from data.users import principal_of

    services = app.extensions["ucc"]
    rules = app.extensions["ucc_session_rules"]
    with client.session_transaction() as sess:
        session_id = sess["_user_id"]
    with services.db.session() as s:
        user_id = s.query(User.id).filter(User.username == "duty").scalar()

    def before():  # auth._load of the parent commit
        with services.db.session() as s:
            user = s.get(User, user_id)
            return principal_of(user) if user is not None and user.active else None

    def now():
        assert load_signed_in(services.db, rules, session_id) is not None

    times = {"before": [], "now": []}
    for _ in range(blocks):
        for name, fn in (("before", before), ("now", now)):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n * 1e6)
    b, a = min(times["before"]), min(times["now"])
    print(f"user loader, before (user by id)      {b:8.0f} µs")
    print(f"user loader, now (session row + user) {a:8.0f} µs  {a / b:5.2f}x before, {a - b:+.0f} µs a request")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--db", type=Path, default=None, help="a seeded demo database (copied; made when absent)")
    args = ap.parse_args()
    from app import create_app
    from config import Settings

    work = Path(tempfile.mkdtemp(prefix="bench_sessions_"))
    try:
        src = args.db if args.db and args.db.exists() else demo_db(args.db or work / "seed.db")
        dst = work / "app.db"
        shutil.copy(src, dst)
        from data.db import Database
        from data.schema import init_db

        db = Database(f"sqlite:///{dst}")
        init_db(db)  # this tree's migrations
        db.dispose()
        app = create_app(Settings(database_url=f"sqlite:///{dst}", redis_url=None, secret_key="bench",
                                  host="127.0.0.1", port=0, simulate=False))
        app.config["TESTING"] = True
        client = app.test_client()
        form = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        resp = client.post("/login", data={"username": "duty", "password": "ucc-duty-2026", "csrf_token": token})
        assert resp.status_code == 302, resp.status_code
        csrf = client.get_cookie("_csrf_token").value
        anonymous = app.test_client()

        def floor():
            assert anonymous.get("/_dash-layout").status_code == 401

        def layout():
            assert client.get("/_dash-layout").status_code == 200

        def callback():
            r = client.post("/_dash-update-component", json=CALLBACK, headers={"X-CSRFToken": csrf})
            assert r.status_code == 200, r.get_data(as_text=True)[:300]

        for fn in (floor, layout, callback):  # warm-up
            for _ in range(50):
                fn()
        results = {name: best_us(fn, args.n, args.blocks) for name, fn in
                   (("anonymous 401 (floor)", floor), ("signed-in /_dash-layout", layout),
                    ("signed-in Dash callback", callback))}
        base = results["anonymous 401 (floor)"]
        for name, us in results.items():
            print(f"{name:28s} {us:8.0f} µs/request  {us / base:5.2f}x floor")
        loaders(app, client, args.n, args.blocks)
        app.extensions["ucc"].db.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
