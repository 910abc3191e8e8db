"""The month's figures kept up to date from the outbox (figures/rollup.py): always what
stats.period_figures reads afresh, on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import random
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, text

from figures import period as stats
from figures import rollup as month_rollup
from cases.legacy_import import COLUMNS, import_cases
from data.models import Case
from data.tokens import Principal
from tests.factories import add_case_row, rect_city, small_world
from dispatch.city_time import CITY_TZ

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
OFFICER = Principal("user", "officer", "duty_officer", "320400")
GARBAGE, FIRE = "020102", "040101"
GRIDS = [r.code for r in rect_city() if r.level == 5]
# Points in different grids of both districts (rect_city: 320402 west, 320403 east).
POINTS = [(119.905, 31.705), (119.925, 31.745), (119.945, 31.775), (119.955, 31.705), (119.975, 31.735),
          (119.965, 31.765)]


@pytest.fixture
def world(empty_db):
    service, clock = small_world(empty_db, T0)
    return empty_db, service, clock


def _add(db, **kw) -> int:
    """One case row written directly, without an outbox row (as a bulk load or a hand edit would)."""
    return add_case_row(db, T0, **kw)


def _history(db, n=80, seed=3) -> None:
    """Cases of last month and this one in every state the figures tell apart."""
    rng = random.Random(seed)
    for _ in range(n):
        r = T0 - timedelta(minutes=rng.randrange(0, 40 * 24 * 60))
        kw = dict(reported_at=r, grid=rng.choice(GRIDS), rework_count=int(rng.random() < 0.2),
                  extension_count=int(rng.random() < 0.2))
        fate = rng.random()
        if fate < 0.1:
            kw.update(state="rejected", rejected_at=r + timedelta(hours=1))
        elif fate < 0.15:
            kw.update(state="merged")
        elif fate < 0.25:
            kw.update(state="reported", deadline_at=r + timedelta(hours=rng.choice([2, 30, 200])))
        else:
            a = r + timedelta(minutes=rng.randrange(5, 600))
            d = a + timedelta(hours=rng.choice([2, 8, 48, 240]))
            kw.update(accepted_at=a, deadline_at=d)
            x = a + timedelta(hours=rng.uniform(0.5, 300))
            if rng.random() < 0.6 and x <= T0:
                kw.update(state="closed", closed_at=x)
            else:
                kw.update(state=rng.choice(["accepted", "dispatched", "signed", "resolved", "rework", "suspended"]))
        _add(db, **kw)


def _plain(db, now) -> dict:
    day = now.astimezone(CITY_TZ).date()
    with db.session() as s:
        return stats.period_figures(s, day.replace(day=1), day, now, by_district=True)


def _rolled(db, now) -> dict:
    with db.session() as s:
        return month_rollup.month_figures(s, now)


def _rollup(db) -> month_rollup.MonthRollup:
    with db.session() as s:
        return month_rollup.rollup_for(s)


def _same_kpis(got, want) -> bool:
    """Equal figures; the mean hours within rounding (SQLite sums floats in its own order)."""
    a, b = got.to_dict(), want.to_dict()
    return a.keys() == b.keys() and all(
        a[f] == b[f] or (isinstance(b[f], float) and a[f] == pytest.approx(b[f], rel=1e-12)) for f in b)


def _assert_same(got: dict, want: dict) -> None:
    assert list(got["groups"]) == list(want["groups"])
    for k in want["groups"]:
        assert _same_kpis(got["groups"][k], want["groups"][k]), (k, got["groups"][k], want["groups"][k])
    assert _same_kpis(got["total"], want["total"]), (got["total"], want["total"])


def _check(db, now) -> dict:
    got, want = _rolled(db, now), _plain(db, now)
    _assert_same(got, want)
    return got


def test_rollup_equals_period_figures_and_ranking_is_unchanged(world, monkeypatch):
    db, _, _ = world
    _history(db)
    for now in (T0, T0 + timedelta(hours=5), T0 - timedelta(hours=1)):  # overdue moves with now
        got = _check(db, now)
    assert len(got["groups"]) == 2 and got["total"].received > 0 and got["total"].due > 0
    assert _rollup(db).full_reads == 1
    with db.session() as s:
        ranking = month_rollup.district_ranking(s, T0)
    # The same ranking as from the plain query.
    monkeypatch.setattr(month_rollup, "month_figures", lambda s, now, tz=CITY_TZ, by_district=True:
                        stats.period_figures(s, now.astimezone(tz).date().replace(day=1), now.astimezone(tz).date(),
                                             now, by_district=by_district, tz=tz))
    with db.session() as s:
        plain = month_rollup.district_ranking(s, T0)
    assert ranking["districts"] == plain["districts"] and ranking["month_start"] == plain["month_start"]
    assert ranking["month"].keys() == plain["month"].keys()
    for f, v in plain["month"].items():
        assert ranking["month"][f] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), f


def test_changes_through_the_service_are_read_incrementally(world):
    db, service, clock = world
    _history(db, n=40)
    _check(db, clock.now)
    rollup = _rollup(db)
    assert rollup.full_reads == 1

    def step():
        clock.now += timedelta(minutes=7)
        _check(db, clock.now)

    made = []
    for lon, lat in POINTS:
        made.append(service.intake({"category": GARBAGE, "source": "patrol", "lon": lon, "lat": lat}, OFFICER)[0])
        step()
    # a second report a few metres from the first: merged into it
    dup, _ = service.intake({"category": GARBAGE, "source": "hotline", "lon": POINTS[0][0] + 0.0001,
                             "lat": POINTS[0][1]}, OFFICER)
    assert dup["state"] == "merged"
    step()
    service.act(made[5]["id"], OFFICER, "reject", 1, note="不属于受理范围")
    step()
    cases = [service.act(c["id"], OFFICER, "accept", service.get(c["id"], OFFICER)["version"]) for c in made[:5]]
    step()
    handler = lambda c: Principal("user", "h", "unit_handler", "320400", c["unit"]["code"])  # noqa: E731
    for i, c in enumerate(cases):
        c = service.act(c["id"], OFFICER, "dispatch", c["version"])
        c = service.act(c["id"], handler(c), "sign", c["version"])
        cases[i] = c
    step()
    # extended: requested by the unit, approved by the office
    c = cases[0]
    c = service.act(c["id"], handler(c), "extend", c["version"], note="需要更换设施", hours=8)
    cases[0] = service.act(c["id"], OFFICER, "approve_extension", c["version"])
    step()
    # closed (on time), and one reworked before its closure
    for i in (0, 1, 2):
        c = cases[i]
        c = service.act(c["id"], handler(c), "resolve", c["version"], note="已清运")
        if i == 2:
            c = service.act(c["id"], OFFICER, "rework", c["version"], note="仍有残留")
            c = service.act(c["id"], OFFICER, "dispatch", c["version"])
            c = service.act(c["id"], handler(c), "sign", c["version"])
            c = service.act(c["id"], handler(c), "resolve", c["version"], note="已清理干净")
        c = service.act(c["id"], OFFICER, "verify", c["version"])
        cases[i] = service.act(c["id"], OFFICER, "close", c["version"])
        step()
    # late: past the 4 working hours of exposed garbage; the supervised and escalated one stays open
    clock.now += timedelta(hours=6)
    c = service.act(cases[3]["id"], OFFICER, "supervise", cases[3]["version"])
    service.act(c["id"], OFFICER, "escalate", c["version"], note="区级协调不了，请市级处置")
    c = cases[4]
    c = service.act(c["id"], handler(c), "resolve", c["version"], note="已清运")
    c = service.act(c["id"], OFFICER, "verify", c["version"])
    service.act(c["id"], OFFICER, "close", c["version"])
    step()
    month = _rolled(db, clock.now)
    assert month["total"].closed_on_time < month["total"].closed and month["total"].overdue_open >= 1
    assert rollup.full_reads == 1 and rollup.delta_reads >= 10  # never read everything again
    assert rollup.cases_reread < 60  # only the cases that changed


def test_incremental_reads_use_indexes(world):
    """On SQLite, the statements of an incremental read search by key and index: no scan of cases."""
    db, service, clock = world
    if db.engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    _history(db, n=20)
    _check(db, clock.now)
    case, _ = service.intake({"category": GARBAGE, "source": "patrol", "lon": 119.905, "lat": 31.705}, OFFICER)
    _add(db, reported_at=T0, accepted_at=T0, closed_at=T0)
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        _rolled(db, clock.now)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert _rollup(db).full_reads == 1 and _rollup(db).delta_reads == 1
    with db.engine.connect() as conn:
        for statement, params in seen:
            lines = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)]
            assert not [ln for ln in lines if re.match(r"SCAN (cases|case_events)\b", ln)], (statement, lines)


def test_imported_cases_without_events_are_counted(world, tmp_path):
    db, service, clock = world
    _history(db, n=20)
    before = _check(db, clock.now)
    path = tmp_path / "legacy.csv"
    rows = [  # closed on time, closed late, open and overdue, reported only (two districts)
        ["L-1", GARBAGE, "119.905", "31.705", "hotline", "2026-11-02T09:00:00+08:00", "2026-11-02T09:30:00+08:00",
         "", "2026-11-02T10:00:00+08:00", "", "2026-11-04T18:00:00+08:00", "2026-11-03T10:00:00+08:00",
         "2026-11-03T12:00:00+08:00", "0", "0"],
        ["L-2", GARBAGE, "119.965", "31.765", "patrol", "2026-11-05T09:00:00+08:00", "2026-11-05T09:10:00+08:00",
         "", "2026-11-05T09:20:00+08:00", "", "2026-11-06T09:00:00+08:00", "2026-11-07T10:00:00+08:00",
         "2026-11-07T11:00:00+08:00", "1", "1"],
        ["L-3", GARBAGE, "119.905", "31.705", "hotline", "2026-11-15T09:00:00+08:00", "2026-11-15T09:05:00+08:00",
         "", "", "", "2026-11-20T17:00:00+08:00", "", "", "0", "0"],
        ["L-4", GARBAGE, "119.965", "31.765", "iot", "2026-11-12T00:00:00Z", "", "", "", "", "", "", "", "0", "0"],
    ]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    assert import_cases(service, path, progress=False).imported == 4
    after = _check(db, clock.now)
    assert after["total"].received == before["total"].received + 4
    assert after["total"].overdue_open == before["total"].overdue_open + 1
    # and rows written by hand, also without outbox rows
    _add(db, grid=GRIDS[-1], reported_at=T0 - timedelta(days=2), accepted_at=T0 - timedelta(days=2),
         deadline_at=T0 - timedelta(days=1), closed_at=T0 - timedelta(hours=3))
    assert _check(db, clock.now)["total"].closed == after["total"].closed + 1
    assert _rollup(db).full_reads == 1


def test_a_new_day_or_month_reads_everything_again(world, monkeypatch):
    db, service, clock = world
    _history(db, n=40)
    _check(db, T0)
    rollup = _rollup(db)
    service.intake({"category": GARBAGE, "source": "patrol", "lon": 119.905, "lat": 31.705}, OFFICER)
    _check(db, T0 + timedelta(hours=1))
    assert rollup.full_reads == 1
    tomorrow = T0 + timedelta(days=1)  # the period now ends a day later: cases due tomorrow count
    _add(db, state="dispatched", reported_at=T0 - timedelta(days=3), accepted_at=T0 - timedelta(days=3),
         deadline_at=tomorrow + timedelta(hours=1))
    _check(db, tomorrow)
    assert rollup.full_reads == 2
    # past the staleness bound, rows changed by hand (no outbox rows) are read again
    before = _rolled(db, tomorrow)["total"]
    with db.session() as s:
        s.execute(text("UPDATE cases SET rework_count = rework_count + 1 WHERE closed_at IS NOT NULL"))
    monkeypatch.setattr(month_rollup, "STALE_AFTER_S", 0.0)
    after = _check(db, tomorrow)["total"]
    assert rollup.full_reads == 3 and before.rework_rate < 1.0 and after.rework_rate == 1.0
    monkeypatch.undo()
    _check(db, datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # 1 December, 09:00 in Shanghai
    assert rollup.full_reads == 4


def test_threads_reading_while_cases_change(world):
    db, service, clock = world
    _history(db, n=40)
    rollup = _rollup(db)
    made = [service.intake({"category": GARBAGE, "source": "patrol", "lon": lon, "lat": lat}, OFFICER)[0]
            for lon, lat in POINTS]
    for c in made:
        clock.now += timedelta(minutes=3)
        service.act(c["id"], OFFICER, "accept", c["version"])
        want = _plain(db, clock.now)
        results, errors = [], []
        barrier = threading.Barrier(3)

        def read():
            try:
                barrier.wait()
                results.append(_rolled(db, clock.now))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(results) == 3
        for got in results:
            _assert_same(got, want)
    assert rollup.full_reads == 1


# PostgreSQL only: SQLite has one writer at a time, so its numbers become visible in order.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_a_case_committed_late_with_a_lower_number_is_counted(world):
    """PostgreSQL numbers rows at insert: a transaction can commit after one holding a higher id and
    outbox seq that was already read. Its case still counts."""
    db, service, clock = world
    _history(db, n=20)
    before = _check(db, clock.now)
    with db.engine.connect() as slow:  # begins a transaction; its case takes the lower id
        tx = slow.begin()
        slow.execute(Case.__table__.insert().values(
            state="closed", version=1, category_code=GARBAGE, kind="event", source="patrol", description="",
            lon=119.91, lat=31.71, grid_code=GRIDS[0], district_code=GRIDS[0][:6], reporter_count=1,
            route_reason="", report_upward=False, time_unit="working_hours", supervised=False,
            escalation_count=0, rework_count=0, extension_count=0, reported_at=T0, accepted_at=T0,
            closed_at=T0 + timedelta(hours=1), deadline_at=T0 + timedelta(hours=4), updated_at=T0))
        fast, _ = service.intake({"category": GARBAGE, "source": "patrol", "lon": 119.955, "lat": 31.705}, OFFICER)
        assert _check(db, clock.now)["total"].received == before["total"].received + 1
        tx.commit()
    after = _check(db, clock.now)
    assert after["total"].received == before["total"].received + 2
    assert after["total"].closed == before["total"].closed + 1
    assert _rollup(db).full_reads == 1


def test_the_background_round_reads_ahead_so_requests_do_not(world, monkeypatch):
    """scheduler.start_wall_figures: the first round fills the rollup, later rounds follow the outbox,
    and once the read is old the round (not a wall's request) reads the month again, hand edits included."""
    db, service, clock = world
    _history(db, n=30)
    rollup = _rollup(db)
    assert month_rollup.keep_warm(db, clock.now) == "full" and rollup.full_reads == 1
    service.intake({"category": GARBAGE, "source": "patrol", "lon": 119.955, "lat": 31.705}, OFFICER)
    assert month_rollup.keep_warm(db, clock.now) == "delta"
    _check(db, clock.now)  # a request now: up to date without a read of its own
    assert rollup.full_reads == 1
    _add(db, reported_at=T0 - timedelta(hours=1))  # a hand-written row the outbox does not name ...
    with db.engine.begin() as conn:  # ... and an edit of an old one
        conn.execute(text("UPDATE cases SET rework_count = rework_count + 1 WHERE id = (SELECT min(id) FROM cases)"))
    monkeypatch.setattr(rollup, "loaded_at", rollup.loaded_at - 1000)  # the last full read is old
    assert month_rollup.keep_warm(db, clock.now, full_every_s=300) == "full"
    _check(db, clock.now)
    assert rollup.full_reads == 2
