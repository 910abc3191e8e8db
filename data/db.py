"""Engine and session factory for SQLite (WAL, the embedded default) and PostgreSQL."""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


# WAL lets readers (pages) run while the intake writes; foreign keys are off by default in SQLite.
# wal_autocheckpoint: a checkpoint fsyncs, and the commit that triggers one waits for it (half of
# all commit time at the default 1,000 pages); every 10,000 pages (~40 MB of WAL) there are ten times
# fewer, so intake commits rarely pay for one.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000",
                  "wal_autocheckpoint=10000")


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            for pragma in SQLITE_PRAGMAS:
                cur.execute("PRAGMA " + pragma)
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        # psycopg 3 is the driver we ship; plain postgresql:// URLs would ask for psycopg2.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    # PostgreSQL's JIT compiles any query its planner costs high, at 0.5-1 s a query: the figures' reads
    # (1-5 s over a month of a million cases) paid it on every read and ran faster without it. Set per
    # connection, so the URL's own options (a schema's search_path) are kept.
    @event.listens_for(engine, "connect")
    def _no_jit(dbapi_connection, _record):
        with dbapi_connection.cursor() as cur:
            cur.execute("SET jit = off")
        dbapi_connection.commit()

    return engine


_COOPERATIVE: bool | None = None


def cooperative() -> bool:
    """Whether this process runs on gevent's loop (monkey-patched by gunicorn's gevent worker)."""
    global _COOPERATIVE
    if _COOPERATIVE is None:
        try:
            from gevent import monkey
        except ImportError:
            _COOPERATIVE = False
        else:
            _COOPERATIVE = monkey.is_module_patched("time")
    return _COOPERATIVE


class Database:
    """One engine plus its session factory; the app keeps one of these."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        parsed = make_url(url)
        self._lock_path = None
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            self._lock_path = parsed.database + "-writelock"
        self._writer = None  # (pid, pooled connection kept checked out) of write_transaction
        self._writer_lock = threading.Lock()

    @contextmanager
    def write_transaction(self) -> Iterator:
        """A DBAPI cursor in a write transaction, committed on exit and rolled back on error, for the
        intake's hot write. Raises the driver's own exceptions from the statements run on the cursor.

        SQLite: BEGIN IMMEDIATE inside write_turn, on this process's own writer connection, kept out
        of the pool: no pool checkout, reset-on-return ROLLBACK or SQLAlchemy transaction objects per
        write. One writer at a time per process (a lock; the intake's group commit already queues its
        writers). BEGIN IMMEDIATE takes SQLite's write lock at once: what the transaction reads (the
        intake's dedupe) no other writer changes before it commits.
        PostgreSQL: an engine transaction on a pooled connection (the pool reconnects after a server
        restart); the caller takes its own locks (advisory locks)."""
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                cur = conn.connection.cursor()
                try:
                    yield cur
                finally:
                    cur.close()
            return
        with self._writer_lock, self.write_turn():
            raw = self._writer_connection()
            cur = raw.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                raw.commit()
            except BaseException:
                try:
                    raw.rollback()
                except Exception:  # noqa: BLE001 - a connection that cannot roll back is replaced
                    self._drop_writer()
                raise
            finally:
                cur.close()

    def _writer_connection(self):
        w = self._writer
        if w is None or w[0] != os.getpid():  # not the parent's connection after a fork
            w = self._writer = (os.getpid(), self.engine.raw_connection())
        return w[1].driver_connection

    def _drop_writer(self) -> None:
        w, self._writer = self._writer, None
        if w is not None and w[0] == os.getpid():
            try:
                w[1].close()  # back to the pool (which resets or discards it)
            except Exception:  # noqa: BLE001
                pass

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        """Around a hot write transaction (the intake): processes sharing one SQLite file queue here on
        a kernel file lock, and the next one runs the moment the lock is released. Without it they meet
        at SQLite's busy handler, which sleeps and polls (1, 2, 5, 10 … ms), so two gunicorn workers
        writing at once lose most of their time asleep. Other writers still work (busy timeout); this
        only makes the common path fair and fast. A no-op for PostgreSQL and in-memory databases."""
        if self._lock_path is None:
            yield
            return
        import fcntl

        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if cooperative():
                # gevent (gunicorn.conf.py): a blocking flock would stop every connection of this
                # process while another process commits; poll instead, the loop serving others between.
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        time.sleep(0.0002)  # gevent's sleep once patched
            else:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        s = self.Session()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        with self._writer_lock:
            self._drop_writer()
        self.engine.dispose()
