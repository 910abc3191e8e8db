"""schemathesis against the running app (`python app.py` on a free port, over HTTP) with an administrator's token:
every operation of /api/v1/openapi.json, mutating ones included, with a bounded number of generated cases each.
No answer may be a 5xx, and every answer must conform to the document: a documented status, its content type and
its schema. A failure here is the app's (or its description's) to fix, never this test's.

The number of cases generated per run and in total is printed in the terminal summary (tests/conftest.py reads
it from the test's report)."""
from __future__ import annotations

import os
import shutil
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.conftest import PgSchema, require_postgres
from tests.serving import AppProcess

# cases per operation that fit the document (a third as many that do not); UCC_SCHEMATHESIS_EXAMPLES for a deeper run
EXAMPLES = int(os.environ.get("UCC_SCHEMATHESIS_EXAMPLES") or 30)
# what fits the document, then what does not (a wrong type, a missing field, a value out of range): either must be
# answered as documented — a refusal is a documented 4xx with the error object, never a 5xx
MODES = ((GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, max(1, EXAMPLES // 3)))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _seed(url: str, demo_records) -> None:
    from data.db import Database
    from data.schema import init_db
    from demo.seed import seed_demo

    db = Database(url)
    init_db(db)
    seed_demo(db, progress=lambda _m: None, records=demo_records)  # the city, no history: quick to seed
    db.dispose()


def _admin_token(url: str) -> str:
    from data.db import Database
    from data.tokens import create_token

    db = Database(url)
    with db.session() as s:
        token = create_token(s, "admin", None, None)
    db.dispose()
    return token


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served_api(request, demo_sqlite_url, demo_records, tmp_path_factory):
    """The real app over a private demo city, an admin token, and the run's name."""
    d = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    schema = None
    if request.param == "sqlite":
        shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), d / "app.db")
        url = f"sqlite:///{d / 'app.db'}"
    else:
        require_postgres()
        schema = PgSchema()
        url = schema.url
        _seed(url, demo_records)
    token = _admin_token(url)
    # generated requests come faster than any client's: the rate limit is not what this run checks
    app = AppProcess(url, d / "app.log", UCC_PHOTO_DIR=str(d / "photos"), UCC_SEED_HISTORY="0",
                     UCC_API_RATE_LIMIT="1000000 per minute").wait_ready()
    try:
        yield app, token, request.param
    finally:
        app.stop()
        if schema is not None:
            schema.drop()


def test_every_operation_conforms(served_api, request):
    """Each operation in turn, its cases drawn by hypothesis from the operation's strategy (schemathesis's pytest
    plugin is not used: its lazy loader does not run under pytest 9). Every failing operation is reported."""
    app, token, run = served_api
    api = schemathesis.openapi.from_url(f"{app.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    counts: dict[str, int] = {}
    failures: list[str] = []
    started = time.monotonic()
    for result in api.get_all_operations():
        operation = result.ok()  # a document schemathesis cannot read fails here
        label = f"{operation.method.upper()} {operation.path}"
        counts[label] = 0
        for mode, examples in MODES:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def conforms(case):
                counts[label] += 1
                case.call_and_validate(base_url=app.url, headers=headers, checks=CHECKS, timeout=60)

            try:
                conforms()
            except Exception as exc:  # noqa: BLE001 — collected, so one run names every failing operation
                failures.append(f"{label} ({mode.value}): {exc}")
    # the numbers go with the report (tests/conftest.py sums them into the terminal summary)
    request.node.user_properties.append(("schemathesis", {"run": run, "cases": counts,
                                                          "seconds": time.monotonic() - started}))
    assert not failures, "\n\n".join(failures)
    assert len(counts) >= 40 and min(counts.values()) > 0, counts  # every operation was exercised
