"""The what-if service on SQLite and PostgreSQL: a submitted run goes on in the background with its progress rising
to done; bad changes are refused with Chinese messages and write nothing; only those who decide may run it; a run
whose process died is reported failed, never left running."""
from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from data.models import WhatIfRun
from data.tokens import Principal
from dispatch.errors import ServiceError
from tests.foresight.whatif_world import AT, BUSY, build

LEADER = Principal("user", "leader1", "leader", "320400")


@pytest.fixture
def svc(empty_db):
    return build(empty_db)


def _runs(svc) -> int:
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(WhatIfRun))


def test_a_run_goes_on_in_the_background_with_its_progress_rising_to_done(svc):
    svc.rules = dataclasses.replace(svc.rules, replications=300)  # long enough to be seen running
    run_id = svc.submit({"changes": [{"kind": "unit_capacity", "unit": BUSY, "factor": 0.7}]}, LEADER)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = svc.get(run_id, LEADER)
        seen.append((run["status"], run["progress"]))
        if run["status"] in ("done", "failed"):
            break
        time.sleep(0.02)
    svc.wait(run_id, 10)
    assert run["status"] == "done", run.get("error")
    progress = [p for _s, p in seen]
    assert progress == sorted(progress)
    assert any(0 < p < 1 for p in progress)
    assert run["progress"] == 1.0 and run["as_of"] == AT.isoformat() and run["created_by"] == "leader1"
    assert run["change"] == {"changes": [{"kind": "unit_capacity", "unit": BUSY, "factor": 0.7}]}
    busy = next(u for u in run["result"]["units"] if u["code"] == BUSY)
    assert busy["changed"]["overdue"] > busy["baseline"]["overdue"]


@pytest.mark.parametrize("change, words", [
    ({"kind": "unit_capacity", "unit": "U-nowhere", "factor": 0.7}, ["未知部门", "U-nowhere"]),
    ({"kind": "unit_capacity", "unit": BUSY, "factor": -1}, ["factor", "0 到 5"]),
    ({"kind": "category_volume", "category": "999999", "factor": 2}, ["未知类别", "999999"]),
    ({"kind": "extra_reports", "area": "999999", "count": 200}, ["未知区域", "999999"]),
    ({"kind": "extra_reports", "area": "320403", "count": 2.5}, ["count", "整数"]),
    ({"kind": "extra_reports", "area": "320403", "count": 20, "source": "rumour"}, ["source"]),
    ({"kind": "rainstorm"}, ["kind"]),
])
def test_a_bad_change_is_refused_in_chinese_and_nothing_is_written(svc, change, words):
    with pytest.raises(ServiceError) as err:
        svc.submit([change], LEADER)
    assert err.value.status == 400
    assert all(w in err.value.message for w in words), err.value.message
    assert _runs(svc) == 0


def test_every_bad_change_is_named_at_once(svc):
    with pytest.raises(ServiceError) as err:
        svc.submit([{"kind": "unit_capacity", "unit": "U-x", "factor": 0.5},
                    {"kind": "category_volume", "category": "nope", "factor": 2}], LEADER)
    assert "第 1 项" in err.value.message and "第 2 项" in err.value.message
    assert len(err.value.details["problems"]) == 2


@pytest.mark.parametrize("at, words", [("2026-11-23T10:00:00", "时区"), ("yesterday", "ISO 8601"),
                                       ("3026-11-23T10:00:00+08:00", "2999")])
def test_a_bad_time_is_refused(svc, at, words):
    with pytest.raises(ServiceError) as err:
        svc.submit([{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}], LEADER, at=at)
    assert err.value.status == 400 and words in err.value.message
    assert _runs(svc) == 0


def test_only_those_who_decide_may_run_it(svc):
    handler = Principal("user", "h1", "unit_handler", "320402", BUSY)
    with pytest.raises(ServiceError) as err:
        svc.submit([{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}], handler)
    assert err.value.status == 403 and "推演" in err.value.message
    assert _runs(svc) == 0


def test_a_run_left_running_past_three_budgets_is_reported_failed(svc):
    with svc.db.session() as s:
        row = WhatIfRun(change={"changes": []}, as_of=AT, status="running", progress=0.4,
                        created_at=svc.wall() - timedelta(seconds=3 * svc.rules.time_budget_seconds + 1),
                        created_by="x")
        s.add(row)
        s.flush()
        run_id = row.id
    with svc.db.session() as s:  # and one just submitted, still waiting: left alone
        fresh = WhatIfRun(change={"changes": []}, as_of=AT, status="queued", progress=0.0, created_at=svc.wall(),
                          created_by="x")
        s.add(fresh)
        s.flush()
        fresh_id = fresh.id
    run = svc.get(run_id, LEADER)
    assert run["status"] == "failed" and "超时" in run["error"]
    assert svc.get(fresh_id, LEADER)["status"] == "queued"
    with svc.db.session() as s:
        assert s.get(WhatIfRun, run_id).status == "failed"
    with pytest.raises(ServiceError) as err:
        svc.get(run_id + 1000, LEADER)
    assert err.value.status == 404
