"""figures/service.py: every KPI computed in the database equals the written definitions (compute_kpis),
pages of the case list are complete under keyset paging, and "overdue" means one thing everywhere;
on SQLite and PostgreSQL."""
from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from cases import queue
from data.models import Case, Unit
from data.tokens import Principal
from figures import cockpit, period
from figures import service as figures
from figures.definitions import KpiCase, compute_grouped, compute_kpis
from tests.factories import add_case_row, kpi_case, rect_city, set_aside_stamps, small_world

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
ADMIN = Principal("user", "admin", "admin", "320400")
OFFICER = Principal("user", "officer", "duty_officer", "320400")
GRIDS = [r.code for r in rect_city() if r.level == 5]
CATEGORIES = ["020102", "040101", "010151"]


@pytest.fixture
def world(empty_db):
    service, clock = small_world(empty_db, T0)
    with empty_db.session() as s:
        units = sorted(s.scalars(select(Unit.code)).all())[:4]
    return empty_db, service, clock, units


def _random_history(db, units, n=160, seed=11):
    """Cases in every corner of the definitions, several exactly on a Shanghai midnight: rejected,
    merged, reported with a deadline, accepted open (verified among them), closed early, on the deadline,
    late, after the periods, reworked, extended, without deadline, not routed to a unit."""
    rng = random.Random(seed)
    start = T0 - timedelta(days=75)
    midnights = [datetime(2026, m, d, 16, 0, tzinfo=UTC) for m, d in ((9, 30), (10, 31), (11, 15), (10, 15))]

    def t(base, max_hours):
        if rng.random() < 0.06:
            return rng.choice(midnights)
        return base + timedelta(minutes=rng.randrange(1, int(max_hours * 60)))

    for _ in range(n):
        r = t(start, 78 * 24)
        grid = rng.choice(GRIDS)
        kw = dict(reported_at=r, grid=grid, category_code=rng.choice(CATEGORIES),
                  unit_code=rng.choice(units + [None]), rework_count=rng.choice([0, 0, 0, 1, 2]),
                  extension_count=rng.choice([0, 0, 0, 1]))
        fate = rng.random()
        if fate < 0.08:
            kw.update(state="rejected", rejected_at=r + timedelta(hours=1))
        elif fate < 0.13:
            kw.update(state="merged", unit_code=None)
        elif fate < 0.2:
            kw.update(state="reported", deadline_at=r + timedelta(hours=rng.choice([2, 30, 200])))
        else:
            a = t(r, 12)
            d = None if rng.random() < 0.05 else t(a, rng.choice([3, 10, 50, 250]))
            kw.update(accepted_at=a, deadline_at=d)
            x = d if (d is not None and rng.random() < 0.08) else t(a, 320)
            if rng.random() < 0.75 and x <= T0:
                kw.update({"state": "closed", "closed_at": x, **set_aside_stamps(rng, a, x, T0, "closed")})
            else:
                kw.update(state=rng.choice(["accepted", "dispatched", "signed", "resolved", "verified", "rework",
                                            "returned"]))
                kw.update(set_aside_stamps(rng, a, None, T0, kw["state"]))
        add_case_row(db, T0, **kw)


def _rows(db, where=()) -> list[KpiCase]:
    with db.session() as s:
        return [kpi_case(c)
                for c in s.scalars(select(Case).where(*where))]


def _same(got: dict, want) -> None:
    for name, value in want.to_dict().items():
        if isinstance(value, float):
            assert got[name] == pytest.approx(value, rel=1e-9), name
        else:
            assert got[name] == value, name


PERIODS = [(date(2026, 11, 23), date(2026, 11, 23)), (date(2026, 11, 1), date(2026, 11, 30)),
           (date(2026, 10, 1), date(2026, 10, 31)), (date(2026, 10, 16), date(2026, 11, 15)),
           (date(2026, 9, 1), date(2026, 11, 30)), (date(2026, 10, 31), date(2026, 10, 31)),
           (date(2026, 1, 1), date(2026, 12, 31)), (date(2025, 1, 1), date(2025, 1, 31))]


def _check_every_period(service, rows, nows) -> None:
    for now in nows:
        for start, end in PERIODS:
            want = compute_kpis(rows, start, end, now=now)
            got = figures.kpis(service, start, end, now=now)
            _same(got, want)
            assert (got["start"], got["end"]) == (start.isoformat(), end.isoformat())
            for by, attr in (("district", "district_code"), ("unit", "unit_code"), ("category", "category_code")):
                grouped = figures.kpis(service, start, end, by, now=now)
                _same(grouped, want)  # the total of a grouped answer is the same total
                expected = {k: v for k, v in compute_grouped(rows, start, end, by, now=now).items()
                            if any(v.to_dict()[f] for f in ("received", "accepted", "due", "closed",
                                                               "overdue_open"))
                            or v.mean_handling_hours is not None}
                assert [g["key"] for g in grouped["groups"]] == list(expected), (by, start, end)
                for g in grouped["groups"]:
                    _same(g, expected[g["key"]])
                    assert g["name"] or g["key"] is None


def test_kpis_in_sql_equal_the_written_definitions(world):
    db, service, clock, units = world
    _random_history(db, units)
    _check_every_period(service, _rows(db), (T0, T0 - timedelta(days=20, hours=3),
                                             datetime(2026, 10, 31, 16, 0, tzinfo=UTC)))


def test_rows_the_lifecycle_never_writes_count_as_the_definitions_say(world):
    """An accepted_at on a rejected or merged row (a hand edit, an import) does not make it an accepted
    case; a case closed without a deadline is closed but never due; closed late after the period, closed
    exactly on its deadline or on a Shanghai midnight: the covering indexes' predicates and the sums over
    their ranges give what compute_kpis gives."""
    db, service, clock, units = world
    _random_history(db, units, n=60, seed=3)
    nov, oct_ = datetime(2026, 11, 10, 2, 0, tzinfo=UTC), datetime(2026, 10, 10, 2, 0, tzinfo=UTC)
    day = timedelta(days=1)
    odd = [
        dict(state="rejected", accepted_at=nov, rejected_at=nov + day, deadline_at=nov + 2 * day),
        dict(state="merged", accepted_at=nov, deadline_at=nov + 2 * day, closed_at=nov + day),
        dict(state="closed", accepted_at=nov, rejected_at=nov, deadline_at=nov + 2 * day, closed_at=nov + day),
        dict(state="closed", accepted_at=nov, deadline_at=None, closed_at=nov + day, rework_count=1),
        dict(state="closed", accepted_at=oct_, deadline_at=oct_ + day, closed_at=nov + day),  # late into Nov
        dict(state="closed", accepted_at=oct_, deadline_at=oct_ + 3 * day, closed_at=oct_ + 3 * day),  # on it
        dict(state="closed", accepted_at=oct_, deadline_at=datetime(2026, 10, 31, 16, 0, tzinfo=UTC),
             closed_at=datetime(2026, 10, 31, 16, 0, tzinfo=UTC)),  # both at November's first instant
        dict(state="suspended", accepted_at=oct_ - 300 * day, deadline_at=oct_ - 290 * day),  # open all along
        dict(state="verified", accepted_at=oct_, deadline_at=nov, extension_count=2),
    ]
    for i, kw in enumerate(odd):
        add_case_row(db, T0, reported_at=kw["accepted_at"] - timedelta(hours=1), grid=GRIDS[i % len(GRIDS)],
                     category_code=CATEGORIES[i % 3], unit_code=units[i % len(units)], **kw)
    _check_every_period(service, _rows(db), (T0, datetime(2026, 11, 15, 16, 0, tzinfo=UTC)))


def test_kpi_statements_read_indexes_only(world, db_kind):
    """On SQLite, every statement of figures.period.kpi_figures (but grouped by unit, a column no index
    holds) reads one index and never a column of the table itself (the bytecode opens the table, if at all,
    only for a deferred seek that nothing triggers), and only the small ranges (backlog, late closures)
    are sorted to be grouped: the others come grouped out of their key's ranges."""
    if db_kind != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    db, service, clock, units = world
    _random_history(db, units, n=40, seed=8)
    statements = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM cases" in statement and "key_values" not in statement:
            statements.append((statement, parameters))

    for by in (None, "district", "category"):
        event.listen(db.engine, "before_cursor_execute", grab)
        try:
            figures.kpis(service, date(2026, 11, 1), date(2026, 11, 30), by, now=T0)
        finally:
            event.remove(db.engine, "before_cursor_execute", grab)
    assert len(statements) == 3  # one UNION ALL of the eight reads per call
    with db.engine.connect() as conn:
        root = conn.exec_driver_sql("SELECT rootpage FROM sqlite_master WHERE name = 'cases'").scalar()
        for statement, params in statements:
            rows = list(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
            arms = [[r[-1] for r in rows if r[1] == arm[0]] for arm in rows
                    if arm[-1] in ("LEFT-MOST SUBQUERY", "UNION ALL")]
            assert len(arms) == 8, rows
            for plan in arms:
                m = re.match(r"SEARCH cases USING (?:COVERING )?INDEX (ix_cases_\w+) \(", plan[0])
                small = m is not None and m.group(1) in ("ix_cases_late_closed", "ix_cases_open_deadline", "ix_cases_voided",
                                                         "ix_cases_held", "ix_cases_resumed")
                assert m and plan[1:] == (["USE TEMP B-TREE FOR GROUP BY"] if small and "GROUP BY" in statement
                                          else []), (plan, statement)
            code = conn.exec_driver_sql("EXPLAIN " + statement, params).all()
            table = {op[2] for op in code if op[1] == "OpenRead" and op[3] == root}
            reads = [op for op in code if op[2] in table and op[1] in ("Column", "SeekRowid", "NotExists", "Rowid")]
            assert not reads, (plan, statement)


def test_the_kpis_of_a_principal_are_over_the_cases_it_may_see(world):
    db, service, clock, units = world
    _random_history(db, units, n=120, seed=4)
    street = GRIDS[0][:9]
    for principal, where in (
            (Principal("user", "d", "duty_officer", "320402"), [Case.district_code == "320402"]),
            (Principal("user", "s", "duty_officer", street), [Case.grid_code.like(street + "%")]),
            (Principal("user", "h", "unit_handler", "320400", units[0]), [Case.unit_code == units[0]])):
        rows = _rows(db, where)
        for start, end in PERIODS[:5]:
            _same(service.kpis(start, end, principal=principal), compute_kpis(rows, start, end, now=T0))


def test_bad_kpi_requests_are_refused_and_read_nothing(world, demo_app, token_for):
    db, service, clock, units = world
    with pytest.raises(figures.FigureError, match="结束日期早于开始日期"):
        figures.kpis(service, date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(figures.FigureError, match="by 须为"):
        figures.kpis(service, date(2026, 11, 1), date(2026, 11, 2), "week")
    client = demo_app.test_client()
    headers = {"Authorization": f"Bearer {token_for('leader')}"}
    for query, words in (("start=2026-11-01&end=2026-11-30&by=week", "by 须为"),
                         ("start=2026-11-30&end=2026-11-01", "早于"), ("start=2026-13-01&end=2026-11-01", "YYYY-MM-DD"),
                         ("start=0001-01-01&end=9999-12-31", "日期须在")):
        resp = client.get(f"/api/v1/kpis?{query}", headers=headers)
        assert resp.status_code == 400 and words in resp.get_json()["message"], query
    ok = client.get("/api/v1/kpis?start=2026-11-01&end=2026-11-30&by=district", headers=headers)
    assert ok.status_code == 200 and ok.get_json()["groups"] == [] and ok.get_json()["received"] == 0


# ---- pages ------------------------------------------------------------------------------------------
def _report(service, i):
    lon, lat = 119.902 + (i % 37) * 0.002, 31.702 + (i // 37) * 0.002
    case, _ = service.intake({"category": "020102", "lon": lon, "lat": lat, "source": "patrol",
                              "description": f"第{i}件"}, OFFICER)
    return case["id"]


def test_keyset_pages_return_every_case_once_while_cases_are_added(world):
    db, service, clock, units = world
    ids = [_report(service, i) for i in range(23)]
    first = service.list(ADMIN, per_page=5)
    assert "total" not in first and first["next"] == first["items"][-1]["id"]
    seen = [c["id"] for c in first["items"]]
    added = []
    cursor = first["next"]
    while cursor is not None:
        added.append(_report(service, 100 + len(added)))  # newer cases arrive while paging on
        page = service.list(ADMIN, per_page=5, after=cursor)
        seen += [c["id"] for c in page["items"]]
        cursor = page["next"]
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert seen == sorted(seen, reverse=True)  # newest first
    assert service.list(ADMIN, count=True)["total"] == len(ids) + len(added)
    # filters, offsets and keysets agree
    by_page = [c["id"] for p in (1, 2, 3) for c in service.list(ADMIN, state="reported", page=p, per_page=4)["items"]]
    assert by_page == sorted(ids + added, reverse=True)[:12]


def test_api_pages_with_after_and_counts_only_when_asked(demo_app, token_for):
    client = demo_app.test_client()
    headers = {"Authorization": f"Bearer {token_for('duty_officer')}"}
    made = []
    for i in range(7):
        resp = client.post("/api/v1/events", headers=headers, json={
            "category": "020102", "lon": 119.95 + i * 0.003, "lat": 31.78, "source": "patrol"})
        assert resp.status_code == 201, resp.get_json()
        made.append(resp.get_json()["id"])
    body = client.get("/api/v1/events?per_page=3", headers=headers).get_json()
    assert "total" not in body and len(body["items"]) == 3
    seen = [c["id"] for c in body["items"]]
    while body["next"] is not None:
        body = client.get(f"/api/v1/events?per_page=3&after={body['next']}", headers=headers).get_json()
        seen += [c["id"] for c in body["items"]]
    assert seen == sorted(made, reverse=True)
    counted = client.get("/api/v1/events?per_page=3&count=true", headers=headers).get_json()
    assert counted["total"] == 7 and len(counted["items"]) == 3
    for bad in ("after=abc", "after=0", "count=maybe"):
        resp = client.get(f"/api/v1/events?{bad}", headers=headers)
        assert resp.status_code == 400 and resp.get_json()["error"] == "bad_request", bad


# ---- one meaning of overdue ---------------------------------------------------------------------
def test_overdue_means_one_thing_in_the_api_the_console_the_wall_and_the_cockpit(world):
    """Accepted, not closed, deadline passed: a verified case waiting for the center's close counts;
    a report not accepted yet, past the deadline set at intake, does not."""
    db, service, clock, units = world
    grid = GRIDS[0]
    late = T0 - timedelta(hours=5)
    kw = dict(grid=grid, reported_at=T0 - timedelta(days=1), deadline_at=late)
    verified = add_case_row(db, T0, state="verified", accepted_at=T0 - timedelta(hours=20), **kw)
    dispatched = add_case_row(db, T0, state="dispatched", accepted_at=T0 - timedelta(hours=20), **kw)
    reported = add_case_row(db, T0, state="reported", **kw)
    closed_late = add_case_row(db, T0, state="closed", accepted_at=T0 - timedelta(hours=20),
                               closed_at=T0 - timedelta(hours=1), **kw)
    on_time = add_case_row(db, T0, state="signed", accepted_at=T0 - timedelta(hours=20),
                           grid=grid, reported_at=T0 - timedelta(days=1), deadline_at=T0 + timedelta(hours=3))
    overdue = {verified, dispatched}
    # the API's filter and case field
    listed = service.list(ADMIN, overdue=True, count=True)
    assert {c["id"] for c in listed["items"]} == overdue and listed["total"] == 2
    not_overdue = service.list(ADMIN, overdue=False, count=True)
    assert {c["id"] for c in not_overdue["items"]} == {reported, closed_late, on_time}
    for case_id in (verified, dispatched, reported, closed_late, on_time):
        case = service.get(case_id, ADMIN)
        assert case["overdue"] is (case_id in overdue), case["state"]
        assert (case["sla"] or {}).get("state") == ("overdue" if case_id in overdue else (case["sla"] or {}).get("state"))
    # the console's queue
    rows = queue.queue_page(service, OFFICER, queue.QueueFilters(overdue=True))
    assert {r["id"] for r in rows["rows"]} == overdue and rows["total"] == 2
    flagged = {r["id"] for r in queue.queue_page(service, OFFICER, queue.QueueFilters())["rows"] if r["overdue"]}
    assert flagged == overdue
    # the wall
    with db.session() as s:
        assert period.today_figures(s, T0)["overdue"] == 2
        assert period.grid_counts(s, T0)[grid][1] == 2
        # and the KPI: overdue_open of the period that includes today
        assert figures.kpis(service, date(2026, 11, 1), date(2026, 11, 30), now=T0)["overdue_open"] == 2
    # the cockpit
    snap = cockpit.snapshot(service, grid, None, T0, with_indicators=False)
    assert snap["headline"]["overdue_open"] == 2
    assert {r["id"] for r in snap["reminders"] if r["overdue"]} == overdue
