"""Database.write_turn: processes sharing a SQLite file take turns at the intake's write, and under
gevent (the production worker, gunicorn.conf.py) a process waiting for its turn keeps serving its
other connections."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# In a gevent-patched process: one greenlet waits for the write turn while another keeps ticking.
CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys, time, gevent
    sys.path.insert(0, sys.argv[2])
    from data.db import Database
    db = Database("sqlite:///" + sys.argv[1])
    ticks, got = [], []
    def other_connection():
        while not got:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)
    def writer():
        with db.write_turn():
            got.append(time.monotonic())
    t = gevent.spawn(other_connection)
    w = gevent.spawn(writer)
    print("waiting", flush=True)
    w.join(10)
    t.join(1)
    waited_ticks = [x for x in ticks if x < got[0]] if got else []
    print("got" if got else "never", len(waited_ticks), flush=True)
""")


def test_a_process_on_gevent_serves_others_while_waiting_for_its_write_turn(tmp_path):
    path = tmp_path / "ucc.db"
    lock = os.open(str(path) + "-writelock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another process is committing
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "waiting"
        import time

        time.sleep(0.5)  # the child's writer waits all this time
        fcntl.flock(lock, fcntl.LOCK_UN)  # ... and gets its turn once the other commit is done
        out, _ = child.communicate(timeout=20)
    finally:
        os.close(lock)
        if child.poll() is None:
            child.kill()
    verdict, ticks = out.split()
    assert verdict == "got"
    assert int(ticks) >= 20, f"the other connection ticked only {ticks} times in 0.5 s: the loop was blocked"
