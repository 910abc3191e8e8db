"""The wall's aggregate queries (figures/period.py) on hand-made cases, on SQLite and PostgreSQL."""
from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from figures import period, rollup
from data.models import Case, CaseEvent
from data.tokens import Principal
from figures.definitions import KpiCase, compute_grouped, compute_kpis
from tests.factories import add_case_row, kpi_case, rect_city, set_aside_stamps, small_world
from dispatch.city_time import CITY_TZ

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
OFFICER = Principal("user", "officer", "duty_officer", "320400")
GARBAGE, FIRE = "020102", "040101"
D1, D2 = "320402", "320403"
GRIDS = [r.code for r in rect_city() if r.level == 5]


@pytest.fixture
def world(empty_db):
    service, clock = small_world(empty_db, T0)
    return empty_db, service, clock


def _add(db, **kw) -> int:
    """One case row written directly, for timestamps the lifecycle would take days to reach."""
    return add_case_row(db, T0, **kw)


def _kpi_rows(db) -> list[KpiCase]:
    with db.session() as s:
        return [kpi_case(c)
                for c in s.scalars(select(Case))]


def _random_history(db, n=120, seed=7):
    """Cases in every corner of the KPI contract: rejected, merged, open, overdue, closed early,
    late, before and after the periods, reworked, extended, without deadline."""
    rng = random.Random(seed)
    start = T0 - timedelta(days=70)
    for _ in range(n):
        r = start + timedelta(minutes=rng.randrange(0, 75 * 24 * 60))
        grid = rng.choice(GRIDS)
        fate = rng.random()
        kw = dict(reported_at=r, grid=grid, rework_count=int(rng.random() < 0.2),
                  extension_count=int(rng.random() < 0.15))
        if fate < 0.08:
            kw.update(state="rejected", rejected_at=r + timedelta(hours=1))
        elif fate < 0.14:
            kw.update(state="merged")
        elif fate < 0.2:
            kw.update(state="reported", deadline_at=r + timedelta(hours=rng.choice([2, 30, 200])))
        else:
            a = r + timedelta(minutes=rng.randrange(5, 600))
            d = None if rng.random() < 0.05 else a + timedelta(hours=rng.choice([2, 8, 48, 240]))
            kw.update(accepted_at=a, deadline_at=d)
            if rng.random() < 0.7:
                x = a + timedelta(hours=rng.uniform(0.5, 300))
                if x <= T0:
                    kw.update({"state": "closed", "closed_at": x, **set_aside_stamps(rng, a, x, T0, "closed")})
                else:
                    kw.update(state=rng.choice(["dispatched", "signed", "resolved", "verified"]))
                    kw.update(set_aside_stamps(rng, a, None, T0, kw["state"]))
            else:
                kw.update(state=rng.choice(["accepted", "dispatched", "signed", "rework", "returned"]))
                kw.update(set_aside_stamps(rng, a, None, T0, kw["state"]))
        _add(db, **kw)


def test_period_figures_are_the_kpi_contract(world):
    db, _, _ = world
    _random_history(db)
    rows = _kpi_rows(db)
    periods = [(date(2026, 11, 23), date(2026, 11, 23)), (date(2026, 11, 1), date(2026, 11, 23)),
               (date(2026, 10, 1), date(2026, 10, 31)), (date(2026, 10, 20), date(2026, 11, 5)),
               (date(2026, 9, 15), date(2026, 9, 15))]
    for now in (T0, T0 - timedelta(days=20, hours=3)):
        for start, end in periods:
            with db.session() as s:
                got = period.period_figures(s, start, end, now, by_district=True)
            want = compute_kpis(rows, start, end, now=now)
            assert got["total"].to_dict() == pytest.approx(want.to_dict()), (start, end, now)
            grouped = compute_grouped(rows, start, end, "district", now=now)
            assert set(got["groups"]) <= set(grouped)
            for key, k in grouped.items():
                mine = got["groups"].get(key)
                if mine is None:  # a district none of whose cases touches the period: all zero
                    assert k.received == k.accepted == k.due == k.overdue_open == 0
                else:
                    assert mine.to_dict() == pytest.approx(k.to_dict()), (key, start, end)


def test_today_figures_follow_the_lifecycle(world):
    db, service, clock = world
    made = []
    for i, grid_point in enumerate([(119.905, 31.705), (119.955, 31.705), (119.905, 31.775)]):
        body = {"category": GARBAGE, "source": "patrol", "lon": grid_point[0], "lat": grid_point[1]}
        made.append(service.intake(body, OFFICER)[0])
        clock.now += timedelta(minutes=5)
    fire = service.intake({"category": FIRE, "source": "hotline", "lon": 119.965, "lat": 31.765, "severity": 3},
                          OFFICER)[0]
    a = service.act(made[0]["id"], OFFICER, "accept", 1)
    b = service.act(made[1]["id"], OFFICER, "accept", 1)
    service.act(made[2]["id"], OFFICER, "reject", 1, note="不属于受理范围")
    for action in ("dispatch",):
        a = service.act(a["id"], OFFICER, action, a["version"])
    handler = Principal("user", "h", "unit_handler", "320400", a["unit"]["code"])
    for who, action in ((handler, "sign"), (handler, "resolve"), (OFFICER, "verify"), (OFFICER, "close")):
        a = service.act(a["id"], who, action, a["version"], note="已处理")
    with db.session() as s:
        fig = period.today_figures(s, clock.now)
    assert fig == {"day": "2026-11-23", "received": 4, "accepted": 2, "closed": 1, "open": 2, "overdue": 0,
                   "emergencies_open": 1, "emergencies_today": 1}
    # Exposed garbage has 4 working hours: by the evening b is overdue (it is accepted and open).
    clock.now = T0 + timedelta(hours=9)
    with db.session() as s:
        fig = period.today_figures(s, clock.now)
        grids = period.grid_counts(s, clock.now)
        districts = period.district_figures(s, clock.now)
    assert fig["overdue"] == 1 and fig["open"] == 2
    assert grids == {b["chain"][0]["code"]: (1, 1), fire["chain"][0]["code"]: (1, 0)}
    assert districts[D2] == {"received_today": 2, "open": 2, "overdue": 1}
    assert districts[D1] == {"received_today": 2, "open": 0, "overdue": 0}
    rows = _kpi_rows(db)
    assert fig["overdue"] == compute_kpis(rows, date(2026, 11, 23), date(2026, 11, 23), now=clock.now).overdue_open
    # The next day starts from zero, the open cases stay.
    with db.session() as s:
        tomorrow = period.today_figures(s, T0 + timedelta(days=1))
    assert (tomorrow["received"], tomorrow["accepted"], tomorrow["closed"], tomorrow["open"]) == (0, 0, 0, 2)


def test_marks_cut_today_at_the_snapshot(world):
    db, service, clock = world
    first = service.intake({"category": GARBAGE, "source": "patrol", "lon": 119.905, "lat": 31.705}, OFFICER)[0]
    with db.session() as s:
        m = period.marks(s)
    assert m.max_case_id == first["id"] and m.head_seq >= 1
    clock.now += timedelta(minutes=1)
    service.intake({"category": GARBAGE, "source": "patrol", "lon": 119.955, "lat": 31.705}, OFFICER)
    with db.session() as s:
        assert period.today_figures(s, clock.now, max_case_id=m.max_case_id)["received"] == 1
        assert period.today_figures(s, clock.now)["received"] == 2
        assert period.hourly_trend(s, clock.now, max_case_id=m.max_case_id)["today_so_far"] == 1
        assert s.scalar(select(CaseEvent.seq).order_by(CaseEvent.seq.desc()).limit(1)) > m.head_seq


def test_hourly_trend_against_the_same_weekday(world):
    db, _, _ = world
    now = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # Monday 14:30 in Shanghai
    local = lambda d, h, m=0: datetime(2026, 11, d, h, m, tzinfo=CITY_TZ)  # noqa: E731
    for t in (local(23, 0, 5), local(23, 9), local(23, 9, 40), local(23, 14, 10)):
        _add(db, reported_at=t)
    _add(db, reported_at=local(23, 15))  # later than now: not counted
    # The four Mondays before: 16, 9, 2 November, 26 October — 8 cases at 9:00 in all; Sunday ignored.
    for d in (16, 9, 2):
        _add(db, reported_at=local(d, 9, 15))
        _add(db, reported_at=local(d, 9, 45))
    _add(db, reported_at=datetime(2026, 10, 26, 9, 5, tzinfo=CITY_TZ))
    _add(db, reported_at=datetime(2026, 10, 26, 20, 5, tzinfo=CITY_TZ))
    _add(db, reported_at=local(22, 9))
    _add(db, reported_at=datetime(2026, 10, 19, 9, 0, tzinfo=CITY_TZ))  # five weeks ago
    with db.session() as s:
        trend = period.hourly_trend(s, now)
    assert trend["hour"] == 14 and trend["day"] == "2026-11-23"
    assert trend["today"][0] == 1 and trend["today"][9] == 2 and trend["today"][14] == 1 and sum(trend["today"]) == 4
    assert trend["usual"][9] == 7 / 4 and trend["usual"][20] == 1 / 4 and sum(trend["usual"]) == 2.0
    assert trend["today_so_far"] == 4 and trend["usual_so_far"] == 1.8


def test_newest_points_emergencies_and_categories(world):
    db, _, _ = world
    now = T0 + timedelta(hours=2)
    ids = [_add(db, state="dispatched", reported_at=T0 + timedelta(minutes=m), accepted_at=T0 + timedelta(minutes=m),
                deadline_at=T0 + timedelta(hours=1)) for m in (10, 30, 20)]
    dup = _add(db, state="merged", reported_at=T0 + timedelta(minutes=40))
    old = _add(db, state="closed", reported_at=T0 - timedelta(days=2), closed_at=T0 - timedelta(days=1))
    e3 = _add(db, state="dispatched", category_code=FIRE, kind="emergency", severity=3,
              reported_at=T0 - timedelta(days=1), accepted_at=T0 - timedelta(days=1))
    e2 = _add(db, state="accepted", category_code=FIRE, kind="emergency", severity=2, reported_at=T0,
              accepted_at=T0, grid=GRIDS[-1])
    _add(db, state="closed", category_code=FIRE, kind="emergency", severity=1, reported_at=T0, closed_at=T0)
    with db.session() as s:
        newest = period.newest_cases(s, now, limit=4)
        points = period.today_points(s, now)
        emergencies = period.open_emergencies(s, now)
        top = period.category_top(s, now)
        recent = period.recent_points(s, now, days=1)
    assert [c["id"] for c in newest][:3] == [ids[1], ids[2], ids[0]] and dup not in [c["id"] for c in newest]
    assert newest[0]["category_name"] == "暴露垃圾" and newest[0]["state_label"] == "已派遣" and newest[0]["overdue"]
    assert {p["id"] for p in points} == set(ids) | {e2, e2 + 1} and old not in {p["id"] for p in points}
    assert all(p["overdue"] for p in points if p["id"] in ids)
    assert [e["id"] for e in emergencies] == [e2, e3] and emergencies[0]["district_code"] == GRIDS[-1][:6]
    assert top[0] == {"code": GARBAGE, "name": "暴露垃圾", "count": 3} and top[1]["count"] == 2
    assert len(recent) == 5  # the last day: three garbage cases and two fires (not the merged one, not e3)


def test_district_ranking_orders_by_on_time_rate(world):
    db, _, _ = world
    now = T0 + timedelta(hours=8)
    for grid, late in ((GRIDS[0], False), (GRIDS[0], False), (GRIDS[-1], True), (GRIDS[-1], False)):
        a = T0 - timedelta(days=3)
        _add(db, grid=grid, state="closed", reported_at=a, accepted_at=a, deadline_at=a + timedelta(days=1),
             closed_at=a + timedelta(days=2 if late else 0, hours=2))
    _add(db, grid=GRIDS[-1], state="dispatched", reported_at=T0, accepted_at=T0, deadline_at=T0 + timedelta(hours=2))
    with db.session() as s:
        ranking = rollup.district_ranking(s, now)
    rows = ranking["districts"]
    assert [r["code"] for r in rows] == [D1, D2] and [r["rank"] for r in rows] == [1, 2]
    # D2: one late, one on time, one open past its deadline today (due, not closed).
    assert rows[0]["on_time_rate"] == 1.0 and rows[1]["on_time_rate"] == pytest.approx(1 / 3)
    assert rows[1]["overdue"] == 1 and rows[1]["open"] == 1 and rows[1]["received_today"] == 1
    assert ranking["month"]["due"] == 5 and ranking["month"]["closed_on_time"] == 3


def test_nice_breaks():
    assert period.nice_breaks([]) == [1]
    assert period.nice_breaks([0, 1, 1, 1]) == [1]
    assert period.nice_breaks(range(0, 101)) == [1, 21, 41, 61, 81]
    assert period.nice_breaks([1, 1, 1, 2, 9]) == [1, 2, 9]
    assert period.nice_breaks([1] * 1000 + [2] * 200 + [3] * 50 + [4] * 10 + [5, 7, 9]) == [1, 2, 3, 4, 5]


def test_every_query_uses_an_index(world):
    """On SQLite, EXPLAIN QUERY PLAN of each statement: no full scan of the cases table."""
    db, _, _ = world
    if db.engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite; PostgreSQL plans by its statistics")
    _random_history(db, n=30)
    seen: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "cases" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        now = T0
        with db.session() as s:
            m = period.marks(s)
            period.today_figures(s, now, max_case_id=m.max_case_id)
            rollup.district_ranking(s, now)
            period.grid_counts(s, now)
            period.hourly_trend(s, now, max_case_id=m.max_case_id)
            period.newest_cases(s, now)
            period.today_points(s, now)
            period.open_emergencies(s, now)
            period.recent_points(s, now)
            period.category_top(s, now)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(seen) >= 15
    with db.engine.connect() as conn:
        for statement, params in seen:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            lines = [row[-1] for row in plan]
            scans = [ln for ln in lines if re.match(r"SCAN cases\b", ln)]
            assert not scans, f"full scan of cases:\n{statement}\n{lines}"


def test_wall_screens_share_a_snapshot_until_a_case_changes(demo_app, token_for):
    """Several screens refreshing at once read the figures once; a case event forces a fresh read."""
    from figures.wall import snapshot

    services = demo_app.extensions["ucc"]
    first = snapshot(services)
    assert snapshot(services) is first  # no case event since: shared
    client = demo_app.test_client()
    r = client.post("/api/v1/events", headers={"Authorization": f"Bearer {token_for()}"},
                    json={"category": "020102", "lon": 119.95, "lat": 31.78, "description": "共享快照测试",
                          "source": "hotline"})
    assert r.status_code == 201, r.get_json()
    fresh = snapshot(services)
    assert fresh is not first and fresh["head_seq"] > first["head_seq"]
    assert fresh["today"]["received"] == first["today"]["received"] + 1


def test_screens_arriving_during_a_read_wait_for_it_instead_of_reading_again(demo_app, monkeypatch):
    """A hall's screens (and the /wall page's own prefetch) asking at once cost one read."""
    import threading

    import figures.wall as wv

    services = demo_app.extensions["ucc"]
    wv._snapshots.pop(services.db.url, None)
    reads = []
    started = threading.Event()
    real = wv._read_snapshot

    def slow_read(svc, now):
        reads.append(now)
        started.set()
        threading.Event().wait(0.3)  # a read in flight while the others arrive
        return real(svc, now)

    monkeypatch.setattr(wv, "_read_snapshot", slow_read)
    wv.prefetch_snapshot(services)
    assert started.wait(5)
    got = []
    threads = [threading.Thread(target=lambda: got.append(wv.snapshot(services))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(reads) == 1 and len(got) == 4
    assert all(g is got[0] for g in got) and got[0]["today"]["day"]
