"""The case service on SQLite and the real PostgreSQL: intake, lifecycle, conflicts, dedupe,
idempotency, automatic escalation and KPIs — the same tests on both databases."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest

from cases.service import CaseService, ServiceError
from data.tokens import Principal
from tests.factories import small_world

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
OFFICER = Principal("user", "officer", "duty_officer", "320400")
ADMIN = Principal("user", "admin", "admin", "320400")
POINT = {"lon": 119.905, "lat": 31.705}
GARBAGE = "020102"


@pytest.fixture
def world(empty_db):
    return small_world(empty_db, T0)


def _report(service, **extra):
    body = {"category": GARBAGE, "description": "垃圾", "source": "patrol", **POINT, **extra}
    return service.intake(body, OFFICER)[0]


def _handler(case):
    return Principal("user", "handler", "unit_handler", "320400", case["unit"]["code"])


def test_intake_and_a_whole_life(world):
    service, clock = world
    case = _report(service)
    assert case["state"] == "reported" and case["chain"][0]["code"].startswith("3204")
    for who, action, note in [(OFFICER, "accept", ""), (OFFICER, "dispatch", ""), (_handler(case), "sign", ""),
                              (_handler(case), "resolve", "已处理"), (OFFICER, "verify", ""), (OFFICER, "close", "")]:
        clock.now += timedelta(minutes=10)
        case = service.act(case["id"], who, action, case["version"], note=note)
    assert case["state"] == "closed" and case["version"] == 7 and len(case["history"]) == 7


def test_each_category_runs_on_its_clock_over_national_day(world):
    # issue 14: 井盖缺失 (2 h, calendar clock) reported on 30 September 2025 at 18:00 is due at 20:00
    # that night; 暴露垃圾 (4 working hours) keeps the working calendar: 9 October 14:00 after 国庆
    service, clock = world
    clock.now = datetime(2025, 9, 30, 10, 0, tzinfo=timezone.utc)  # 18:00 in Shanghai
    cover = _report(service, category="010151", description="井盖缺失")
    assert cover["clock"] == "calendar" and cover["time_unit"] == "hours"
    assert cover["deadline"] == "2025-09-30T20:00:00+08:00"
    garbage = _report(service, lon=POINT["lon"] + 0.01)
    assert garbage["clock"] == "working" and garbage["time_unit"] == "working_hours"
    assert garbage["deadline"] == "2025-10-09T14:00:00+08:00"
    # the stored case says the same, and its countdown runs on calendar time through the holiday night
    case = service.act(cover["id"], OFFICER, "accept", cover["version"])
    clock.now = datetime(2025, 9, 30, 11, 36, tzinfo=timezone.utc)  # 19:36: 80 % of 2 calendar hours
    case = service.get(cover["id"], OFFICER)
    assert case["clock"] == "calendar" and case["sla"]["state"] == "warning"
    assert service.get(garbage["id"], OFFICER)["clock"] == "working"


def test_second_officer_on_the_same_version_gets_a_conflict(world):
    service, _ = world
    case = _report(service)
    results = []

    def act(action, note):
        try:
            results.append(service.act(case["id"], OFFICER, action, case["version"], note=note)["state"])
        except ServiceError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=act, args=("accept", "")), threading.Thread(target=act, args=("reject", "重复"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(map(str, results)) in (["409", "accepted"], ["409", "rejected"])
    final = service.get(case["id"], OFFICER)
    assert final["version"] == 2 and len(final["history"]) == 2


def test_refused_transition_changes_nothing(world):
    service, _ = world
    case = _report(service)
    with pytest.raises(ServiceError) as exc:
        service.act(case["id"], OFFICER, "close", case["version"])
    assert exc.value.status == 422
    again = service.get(case["id"], OFFICER)
    assert again["version"] == 1 and again["state"] == "reported" and len(again["history"]) == 1


def test_dedupe_window_in_time_and_space(world):
    service, clock = world
    first = _report(service)
    assert _report(service, lon=POINT["lon"] + 0.0002)["merged_into"] == first["id"]
    clock.now += timedelta(hours=25)
    assert _report(service, lon=POINT["lon"] + 0.0002)["merged_into"] is None  # too late to be the same


def test_dedupe_reads_only_the_nearby_cases_of_its_category_however_busy_the_day(tmp_path):
    """Many reports of one category in a day: the dedupe finds the near one through ix_cases_dedupe
    (category, then a ~100 m latitude band), not by reading every case of the category since yesterday."""
    import re
    import sqlite3

    from cases.service import _DEDUPE
    from data.db import Database
    from data.schema import init_db

    db = Database(f"sqlite:///{tmp_path / 'ucc.db'}")
    init_db(db)
    service, clock = small_world(db, T0)
    first = _report(service)
    for i in range(60):  # the day's other reports of the category, spread over the city
        clock.now += timedelta(minutes=1)
        _report(service, lon=119.905 + (i % 10) * 0.007, lat=31.705 + (i // 10) * 0.012)
    assert _report(service, lon=POINT["lon"] + 0.0002)["merged_into"] == first["id"]
    compiled = _DEDUPE.compile(dialect=db.engine.dialect)
    values = {"category": GARBAGE, "since": "2026-11-22 00:00:00", "lat0": POINT["lat"] - 0.0005,
              "lat1": POINT["lat"] + 0.0005, "lon0": POINT["lon"] - 0.0005, "lon1": POINT["lon"] + 0.0005}
    con = sqlite3.connect(tmp_path / "ucc.db")
    plan = con.execute("EXPLAIN QUERY PLAN " + str(compiled), [values.get(k, "closed") for k in compiled.positiontup]).fetchall()
    con.close()
    db.dispose()
    assert any(re.search(r"SEARCH cases USING INDEX ix_cases_dedupe \(category_code=\? AND lat>\? AND lat<\?\)", r[-1])
               for r in plan), plan


def test_idempotency_key_under_concurrency(world):
    service, _ = world
    ids = []

    def go():
        ids.append(_report(service, idempotency_key="iot-alarm-77")["id"])

    threads = [threading.Thread(target=go) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(ids)) == 1
    assert service.list(ADMIN, count=True)["total"] == 1


def test_overdue_cases_are_urged_and_supervised_once_per_deadline_and_keep_their_unit(world):
    """The scheduler no longer escalates on its own (escalation is a person's act with a reason): it urges
    (催办) at the warning and supervises (督办) a level up at the deadline; two processes send each once."""
    service, clock = world
    case = _report(service)
    case = service.act(case["id"], OFFICER, "accept", case["version"])
    case = service.act(case["id"], OFFICER, "dispatch", case["version"])
    level, unit = case["handling_level"], case["unit"]["code"]
    assert level == 2
    clock.now = T0 + timedelta(days=30)
    other = CaseService(service.db, service.areas, clock=clock)  # a second process
    done = []
    threads = [threading.Thread(target=lambda s=s: done.append(s.remind_due())) for s in (service, other)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    after = service.get(case["id"], OFFICER)
    assert sum(done) == 2 and [r["kind"] for r in after["supervision"]] == ["urge", "supervise"]
    assert (after["state"], after["unit"]["code"], after["handling_level"]) == ("dispatched", unit, level)
    assert after["escalation_count"] == 0 and after["supervised"] and after["supervision_level"] == 1
    assert all(r["automatic"] and r["actor"] == "system:scheduler" for r in after["supervision"])
    assert after["penalty_points"] == 2.5 and len(after["penalties"]) == 2
    assert service.remind_due() == 0  # same deadline: nothing more


def test_kpis_for_a_day(world):
    service, clock = world
    a = _report(service)
    a = service.act(a["id"], OFFICER, "accept", a["version"])
    b = _report(service, lon=POINT["lon"] + 0.01)
    service.act(b["id"], OFFICER, "reject", b["version"], note="不属于受理范围")
    k = service.kpis(date(2026, 11, 23), date(2026, 11, 23))
    assert (k["received"], k["accepted"]) == (2, 1)
    grouped = service.kpis(date(2026, 11, 23), date(2026, 11, 23), by="category")
    assert sum(g["received"] for g in grouped["groups"]) == 2
