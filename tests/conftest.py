"""Shared fixtures: databases (SQLite file and the real PostgreSQL), the demo city, a seeded app."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from data.db import Database
from data.schema import init_db

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# `python app.py` fills 90 days of demo history on a fresh database (about a minute): servers that tests
# start have none unless a test asks (tests/test_app_start.py).
os.environ.setdefault("UCC_SEED_HISTORY", "0")
PG_URL = os.environ.get("UCC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("UCC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_URL)
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def require_postgres() -> None:
    """Fail in CI, skip elsewhere, when PostgreSQL is not reachable."""
    reason = _pg_available()
    if reason is None:
        return
    message = f"PostgreSQL at {PG_URL} not reachable ({reason})"
    if IN_CI:
        pytest.fail(message + " — mandatory with CI=true")
    pytest.skip(message)


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


class PgSchema:
    """A throwaway schema on the real server, so tests never see each other's rows."""

    def __init__(self):
        self.schema = "t_" + uuid.uuid4().hex[:12]
        self.admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        self.url = _pg_schema_url(self.schema)

    def drop(self):
        with self.admin.connect() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        self.admin.dispose()


def make_database(kind: str, tmp_path) -> tuple[Database, object]:
    if kind == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'ucc.db'}"), None
    require_postgres()
    schema = PgSchema()
    return Database(schema.url), schema


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request):
    return request.param


@pytest.fixture
def empty_db(db_kind, tmp_path):
    """A migrated, empty database of each kind."""
    db, schema = make_database(db_kind, tmp_path)
    init_db(db)
    yield db
    db.dispose()
    if schema:
        schema.drop()


@pytest.fixture(scope="session")
def demo_records():
    from demo.city import generate_demo_city

    return generate_demo_city()


@pytest.fixture(scope="session")
def demo_sqlite_url(tmp_path_factory, demo_records):
    """A SQLite database with the demo city, built once per test session (read-only use)."""
    from demo.seed import seed_demo

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    db = Database(f"sqlite:///{path}")
    init_db(db)
    seed_demo(db, progress=lambda _m: None, records=demo_records)
    db.dispose()
    return f"sqlite:///{path}"


def make_settings(database_url: str, **overrides):
    from config import Settings

    values = dict(database_url=database_url, redis_url=None, secret_key="test-secret",
                  host="127.0.0.1", port=0, simulate=False)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def demo_app(demo_sqlite_url, tmp_path):
    """The app over a private copy of the seeded demo database."""
    import shutil

    from app import create_app

    src = demo_sqlite_url.removeprefix("sqlite:///")
    dst = tmp_path / "app.db"
    shutil.copy(src, dst)
    app = create_app(make_settings(f"sqlite:///{dst}"))
    app.config["TESTING"] = True
    yield app
    app.extensions["ucc"].db.dispose()


@pytest.fixture
def token_for(demo_app):
    from data.tokens import create_token

    def _make(role="duty_officer", area=None, unit=None):
        with demo_app.extensions["ucc"].db.session() as s:
            return create_token(s, role, area, unit)

    return _make


@pytest.fixture
def client(demo_app):
    return demo_app.test_client()


@pytest.fixture
def officer(token_for):
    """An API duty officer's headers (the city's, no area)."""
    return {"Authorization": f"Bearer {token_for('duty_officer')}"}


# ---- CI: the real servers' tests must have run ------------------------------------------------
# With CI=true, a missing server already fails its tests (require_postgres, require_redis). This is
# the second lock: the run fails unless tests on PostgreSQL, on Redis, on Mosquitto and in the browser passed,
# and every skip names a reason that is allowed on a healthy machine.
CI_ALLOWED_SKIPS = ("EXPLAIN QUERY PLAN", "query plans are checked on SQLite")
_ci_passed = {"postgresql": 0, "redis": 0, "mqtt": 0, "browser": 0}
_ci_bad_skips: list[str] = []


def pytest_runtest_logreport(report):
    _note_schemathesis(report)
    if not IN_CI:
        return
    if report.passed and report.when == "call":
        if "[postgresql" in report.nodeid or "postgres" in report.keywords:
            _ci_passed["postgresql"] += 1
        for mark in ("redis", "mqtt", "browser"):
            if mark in report.keywords:
                _ci_passed[mark] += 1
    elif report.skipped:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(allowed in reason for allowed in CI_ALLOWED_SKIPS):
            _ci_bad_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    whole_suite = session.config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if not IN_CI or not whole_suite or session.config.option.collectonly or session.config.option.keyword:
        return  # a partial run (paths, -k) proves nothing either way
    missing = [kind for kind, n in _ci_passed.items() if n == 0]
    if missing or _ci_bad_skips:
        writer = session.config.pluginmanager.get_plugin("terminalreporter")
        if writer is not None:
            if missing:
                writer.write_line(f"CI: no {', '.join(missing)} test passed (CI=true needs the real servers "
                                  "and Chromium)", red=True)
            for line in _ci_bad_skips:
                writer.write_line(f"CI: skipped without an allowed reason: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif (writer := session.config.pluginmanager.get_plugin("terminalreporter")) is not None:
        writer.write_line("CI: tests passed on PostgreSQL ({postgresql}), Redis ({redis}), Mosquitto ({mqtt}) and in "
                          "Chromium ({browser})".format(**_ci_passed))


# ---- schemathesis: how many cases it generated (tests/test_api_schemathesis.py) ---------------------------------
_schemathesis_runs: list[dict] = []


def _note_schemathesis(report) -> None:
    if report.when == "call":
        _schemathesis_runs.extend(value for name, value in report.user_properties if name == "schemathesis")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """How many cases schemathesis generated, per run and in total (visible in `make test`'s output)."""
    if not _schemathesis_runs:
        return
    parts = [f"{r['run']} {sum(r['cases'].values()):,} cases over {len(r['cases'])} operations in {r['seconds']:.0f} s"
             for r in _schemathesis_runs]
    total = sum(sum(r["cases"].values()) for r in _schemathesis_runs)
    terminalreporter.write_line(f"schemathesis: {'; '.join(parts)}; {total:,} in total")
