"""Cockpit aggregates on SQLite and the real PostgreSQL: exact against figures.definitions, per area, theme and day."""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from figures import cockpit as cs
from data.models import Case, Unit
from figures.definitions import KpiCase, compute_grouped, compute_kpis
from tests.factories import kpi_case, set_aside_stamps, small_world

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
UTC = timezone.utc
H = timedelta(hours=1)
D = timedelta(days=1)
GARBAGE, STALL, MANHOLE, DISPUTE, FIRE_EXIT, FIRE = "020102", "020551", "010151", "030101", "030201", "040101"
CATEGORIES = (GARBAGE, STALL, MANHOLE, DISPUTE, FIRE_EXIT, FIRE)
GRIDS = ["320402001001001", "320402001001002", "320402001002001", "320402002001003", "320403001001001",
         "320403002002002"]


@pytest.fixture
def world(empty_db):
    service, _clock = small_world(empty_db, T0)
    with empty_db.session() as s:
        units = list(s.scalars(select(Unit.code).where(Unit.level <= 3).order_by(Unit.code).limit(6)))
    return service, units


def _kind(service, code):
    return service.catalog()[code].kind


def add(service, *, category=GARBAGE, grid=GRIDS[0], reported, accepted=None, deadline=None, closed=None,
        state=None, unit=None, rejected=None, supervised=False, severity=None, rework=0, extension=0,
        **stamps) -> int:
    """One case row as the lifecycle would leave it (consistent states and times)."""
    if state is None:
        state = "closed" if closed else ("accepted" if accepted else "reported")
    if _kind(service, category) == "emergency" and severity is None:
        severity = 4
    with service.db.session() as s:
        c = Case(state=state, category_code=category, kind=_kind(service, category), source="patrol", lon=119.9,
                 lat=31.7, grid_code=grid, district_code=grid[:6], severity=severity, unit_code=unit,
                 reported_at=reported, accepted_at=accepted, rejected_at=rejected, deadline_at=deadline,
                 closed_at=closed, supervised=supervised, rework_count=rework, extension_count=extension,
                 updated_at=reported, **stamps)
        s.add(c)
        s.flush()
        return c.id


def random_world(service, units, n=400, seed=7) -> None:
    rng = random.Random(seed)
    for _ in range(n):
        reported = T0 - timedelta(minutes=rng.uniform(0, 45 * 24 * 60))
        category = rng.choice(CATEGORIES)
        kw = dict(category=category, grid=rng.choice(GRIDS), reported=reported,
                  unit=rng.choice(units + [None]), supervised=rng.random() < 0.1,
                  severity=rng.randint(1, 4) if _kind(service, category) == "emergency" else None)
        deadline = reported + timedelta(hours=rng.uniform(2, 240))
        fate = rng.random()
        if fate < 0.08:
            add(service, **kw, deadline=deadline)  # still reported
            continue
        if fate < 0.13:
            add(service, **kw, state="rejected", rejected=reported + H)
            continue
        if fate < 0.17:
            add(service, **kw, state="merged")
            continue
        accepted = min(reported + timedelta(minutes=rng.uniform(5, 180)), T0)
        closed = accepted + timedelta(hours=rng.uniform(1, 300))
        extras = dict(rework=rng.choice([0, 0, 0, 1]), extension=rng.choice([0, 0, 1]))
        if fate < 0.45 or closed > T0:
            state = rng.choice(cs.ACCEPTED_OPEN_STATES)
            add(service, **kw, **extras, accepted=accepted, deadline=deadline,
                **{"state": state, **set_aside_stamps(rng, accepted, None, T0, state)})
        else:
            add(service, **kw, **extras, accepted=accepted, deadline=deadline, closed=closed,
                **set_aside_stamps(rng, accepted, closed, T0, "closed"))


def kpi_rows(service, keep=lambda c: True) -> list[KpiCase]:
    with service.db.session() as s:
        return [kpi_case(c)
                for c in s.scalars(select(Case)) if keep(c)]


def in_area(code):
    if code == "320400":
        return lambda c: True
    if len(code) == 6:
        return lambda c: c.district_code == code
    return lambda c: c.grid_code.startswith(code)


def scope_of(service, area="320400", theme="overview"):
    return cs.make_scope(service.areas.get(area), cs.THEMES[theme], service.catalog(), T0)


@pytest.fixture(params=list(cs.PANELS))
def read(request):
    """Every panel is checked on both reads: a statement per figure (the city's, a district's) and the
    area's rows read once (below the district)."""
    return request.param


def panels(s, service, read, area="320400", theme="overview"):
    return cs.panels(s, scope_of(service, area, theme), service.areas, read)


# ---- the assessment figures equal figures.definitions's, exactly ----------------------------------------------
@pytest.mark.parametrize("area", ["320400", "320402", "320402001", "320402001001", "320402001001002"])
def test_unit_figures_equal_the_kpi_contract_in_every_area(world, area, read):
    service, units = world
    random_world(service, units)
    scope = scope_of(service, area)
    with service.db.session() as s:
        mine = cs.panels(s, scope, service.areas, read).units()
    expected = compute_grouped(kpi_rows(service, in_area(area)), scope.start, scope.end, "unit", now=T0)
    got = {u["unit_code"]: (u["due"], u["closed"], u["closed_on_time"], u["overdue_open"]) for u in mine}
    want = {k: (v.due, v.closed, v.closed_on_time, v.overdue_open) for k, v in expected.items()
            if (v.due, v.overdue_open) != (0, 0)}
    assert got == want
    total = compute_kpis(kpi_rows(service, in_area(area)), scope.start, scope.end, now=T0)
    t = cs.totals(mine)
    assert (t["due"], t["closed"], t["closed_on_time"], t["overdue_open"]) == (
        total.due, total.closed, total.closed_on_time, total.overdue_open)
    assert t["closure_rate"] == total.closure_rate and t["on_time_rate"] == total.on_time_rate


@pytest.mark.parametrize("theme", ["city", "emergency", "public", "economy"])
def test_a_theme_counts_only_its_categories(world, theme, read):
    service, units = world
    random_world(service, units, n=250, seed=3)
    codes = set(cs.THEMES[theme].category_codes(service.catalog()))
    scope = scope_of(service, "320402", theme)
    with service.db.session() as s:
        p = cs.panels(s, scope, service.areas, read)
        mine = p.units()
        head = p.headline(mine)
    keep = lambda c: c.district_code == "320402" and c.category_code in codes  # noqa: E731
    total = compute_kpis(kpi_rows(service, keep), scope.start, scope.end, now=T0)
    assert (cs.totals(mine)["due"], head["received"], head["overdue_open"]) == (total.due, total.received,
                                                                               total.overdue_open)


def test_themes_pick_the_right_categories(world):
    service, _ = world
    catalog = service.catalog()
    assert cs.THEMES["overview"].category_codes(catalog) is None
    city = set(cs.THEMES["city"].category_codes(catalog))
    assert {GARBAGE, STALL, MANHOLE} <= city and not {DISPUTE, FIRE} & city
    emergency = set(cs.THEMES["emergency"].category_codes(catalog))
    assert {FIRE, FIRE_EXIT} <= emergency and GARBAGE not in emergency
    for t in cs.THEMES.values():
        assert t.everything or t.category_codes(catalog), f"theme {t.key} matches no category"


def odd_rows(service, units) -> None:
    """Rows the lifecycle never writes, which every figure still counts as its definition says: accepted and not
    closed in a closed state, closed in an open state, supervised without a deadline, reported after now,
    closed after the period, an accepted_at on a rejected row, a case exactly on the period's bounds."""
    lo = scope_of(service).lo
    add(service, grid=GRIDS[0], reported=T0 - 40 * D, accepted=T0 - 40 * D, deadline=T0 - 20 * D, state="closed")
    add(service, grid=GRIDS[1], reported=T0 - 50 * D, accepted=T0 - 50 * D, deadline=T0 - 45 * D, closed=T0 - 2 * D,
        state="rework", unit=units[0])
    for grid in GRIDS[:3]:
        add(service, grid=grid, reported=T0 - 60 * D, supervised=True, state="reported")  # no deadline
        add(service, grid=grid, reported=T0 - 3 * D, supervised=True, state="dispatched", accepted=T0 - 3 * D)
    add(service, grid=GRIDS[2], reported=T0 + 2 * D, accepted=T0 + 2 * D, deadline=T0 + 3 * D, state="accepted")
    add(service, grid=GRIDS[2], reported=T0 - 35 * D, accepted=T0 - 35 * D, deadline=T0 - 5 * D, closed=T0 + 5 * D)
    add(service, grid=GRIDS[0], reported=T0 - 9 * D, accepted=T0 - 9 * D, rejected=T0 - 8 * D, state="rejected")
    add(service, grid=GRIDS[1], reported=lo, accepted=lo, deadline=lo, closed=lo, unit=units[1])
    add(service, grid=GRIDS[1], reported=lo - timedelta(microseconds=1), accepted=lo, deadline=T0 - D, closed=lo,
        unit=units[1])


@pytest.mark.parametrize("theme", ["overview", "city", "emergency", "traffic"])
def test_both_reads_give_every_panel_the_same(world, theme):
    """The area's rows read once and the statement per figure are two ways to the same panels: for every
    level of area (a grid's siblings too), theme, and rows the lifecycle never writes."""
    service, units = world
    random_world(service, units, n=500, seed=13)
    odd_rows(service, units)
    for area in ("320400", "320402", "320402001", "320402002", "320402001001", "320402001001002", "320403002002002"):
        sql = cs.snapshot(service, area, theme, read="sql")
        rows = cs.snapshot(service, area, theme, read="rows")
        assert sql["area"]["code"] == area
        for panel in sql:
            assert rows[panel] == sql[panel], (area, panel)
        if theme == "overview" and area != "320402002":  # the comparison is of figures, not of empty panels
            assert sql["headline"]["received"] and sql["headline"]["overdue_open"] and sql["reminders"]
            assert sql["units"] and any(c["open"] for c in sql["children"]["items"])
    street = cs.snapshot(service, "320402001", theme)  # a street reads its rows (ROWS_FROM_LEVEL)
    assert street == cs.snapshot(service, "320402001", theme, read="rows")
    with pytest.raises(ValueError):
        cs.snapshot(service, "320402001", theme, read="fast")


# ---- hand-made cases: each figure means what it says ---------------------------------------------------
def test_headline_counts_today_overdue_supervised_and_open_emergencies(world, read):
    service, units = world
    today_morning = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    add(service, reported=today_morning, accepted=today_morning + H)  # today, open, not yet due
    add(service, reported=T0 - 3 * D, accepted=T0 - 3 * D + H, deadline=T0 - D, unit=units[0])  # overdue
    add(service, reported=T0 - 3 * D, accepted=T0 - 3 * D + H, deadline=T0 - D, closed=T0 - 2 * H,
        unit=units[0])  # closed late: not overdue any more
    add(service, reported=T0 - 2 * D, deadline=T0 - D)  # never accepted: not an overdue *accepted* case
    add(service, reported=T0 - 5 * D, accepted=T0 - 5 * D, deadline=T0 + D, supervised=True, state="dispatched")
    add(service, category=FIRE, reported=T0 - 2 * H, accepted=T0 - 2 * H, state="dispatched", severity=3)
    add(service, category=FIRE, reported=T0 - 4 * D, accepted=T0 - 4 * D, deadline=T0 - 4 * D + 2 * H,
        closed=T0 - 4 * D + H)
    add(service, reported=T0 - 40 * D, accepted=T0 - 40 * D)  # before the period: not received in it
    with service.db.session() as s:
        p = panels(s, service, read)
        h = p.headline(p.units())
    assert h["received"] == 7 and h["received_today"] == 2  # the fire at 08:00 and the report at 08:30
    assert h["overdue_open"] == 1 and h["supervised_open"] == 1 and h["emergencies_open"] == 1
    assert h["due"] == 3 and h["closed"] == 2 and h["closed_on_time"] == 1  # the fire closed in time


def test_days_are_shanghai_days_and_every_day_is_there(world, read):
    service, _ = world
    add(service, reported=datetime(2026, 11, 22, 16, 30, tzinfo=UTC))  # 11-23 00:30 in Shanghai
    add(service, reported=datetime(2026, 11, 22, 15, 30, tzinfo=UTC),  # 11-22 23:30
        accepted=datetime(2026, 11, 22, 15, 40, tzinfo=UTC), closed=datetime(2026, 11, 22, 16, 10, tzinfo=UTC))
    add(service, reported=datetime(2026, 10, 24, 15, 59, tzinfo=UTC))  # 10-24 23:59: before the period
    street_grid = next(g for g in GRIDS if g.startswith("320402002"))
    add(service, grid=street_grid, reported=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
        accepted=datetime(2026, 11, 20, 3, 0, tzinfo=UTC), closed=datetime(2026, 11, 21, 3, 0, tzinfo=UTC))
    with service.db.session() as s:
        days = panels(s, service, read).daily()
        # a street's few cases are grouped by day after reading, the city's days counted one index range each
        street = panels(s, service, read, "320402002").daily()
        for area in ("320400", "320402002"):  # the cards' received are the days' (summed, and the last)
            p = panels(s, service, read, area)
            assert p.headline([], p.daily()) == p.headline([])
    assert len(days) == cs.PERIOD_DAYS and days[0]["day"] == "2026-10-25" and days[-1]["day"] == "2026-11-23"
    by_day = {d["day"]: d for d in days}
    assert by_day["2026-11-23"] == {"day": "2026-11-23", "received": 1, "closed": 1}
    assert by_day["2026-11-22"]["received"] == 1 and sum(d["received"] for d in days) == 3
    assert [d for d in street if d["received"] or d["closed"]] == [
        {"day": "2026-11-20", "received": 1, "closed": 0}, {"day": "2026-11-21", "received": 0, "closed": 1}]


def test_pareto_orders_categories_and_sums_the_tail(world, read):
    service, _ = world
    for category, n in ((STALL, 5), (GARBAGE, 3), (MANHOLE, 2), (DISPUTE, 1), (FIRE_EXIT, 1)):
        for i in range(n):
            add(service, category=category, reported=T0 - (i + 1) * H)
    with service.db.session() as s:
        p = panels(s, service, read).pareto(service.catalog(), top=3)
    assert p["total"] == 12
    assert [(i["code"], i["count"]) for i in p["items"]] == [(STALL, 5), (GARBAGE, 3), (MANHOLE, 2), (None, 2)]
    assert p["items"][0]["name"] == "占道经营" and p["items"][-1]["name"] == "其他（2 类）"
    assert [round(i["cum_share"], 4) for i in p["items"]] == [round(5 / 12, 4), round(8 / 12, 4), round(10 / 12, 4), 1.0]


def test_emergencies_by_severity_open_and_closed(world, read):
    service, _ = world
    add(service, category=FIRE, severity=1, reported=T0 - H, accepted=T0 - H, state="dispatched")
    add(service, category=FIRE, severity=4, reported=T0 - 2 * D, accepted=T0 - 2 * D, closed=T0 - D)
    add(service, category=FIRE, severity=4, reported=T0 - 3 * D, accepted=T0 - 3 * D, state="signed",
        grid=GRIDS[4])
    add(service, category=FIRE, severity=4, reported=T0 - 3 * D, state="merged")
    with service.db.session() as s:
        city = panels(s, service, read).severity()
        d402 = panels(s, service, read, "320402", "economy").severity()  # the theme does not narrow it
    assert [(r["severity"], r["open"], r["closed"]) for r in city] == [(1, 1, 0), (2, 0, 0), (3, 0, 0), (4, 1, 1)]
    assert [(r["open"], r["closed"]) for r in d402] == [(1, 0), (0, 0), (0, 0), (0, 1)]
    assert city[0]["label"].startswith("Ⅰ级")


def test_child_ranking_rolls_grids_up_to_the_next_level(world, read):
    service, _ = world
    add(service, grid="320402001001001", reported=T0 - H, accepted=T0 - H, deadline=T0 - 0.5 * H)  # overdue
    add(service, grid="320402001001002", reported=T0 - H)
    add(service, grid="320402001002001", reported=T0 - 2 * D, accepted=T0 - 2 * D, closed=T0 - D)
    add(service, grid="320402002001003", reported=T0 - 50 * D, accepted=T0 - 50 * D, state="suspended")  # old, open
    add(service, grid="320403001001001", reported=T0 - H)
    with service.db.session() as s:
        city, district, street, grid = (panels(s, service, read, area).children() for area in (
            "320400", "320402", "320402001", "320402001001002"))
    assert [(i["code"], i["received"], i["open"], i["overdue"]) for i in city["items"]] == [
        ("320402", 3, 3, 1), ("320403", 1, 1, 0)]
    assert city["level"] == 2 and district["level"] == 3
    assert [(i["code"], i["received"], i["open"]) for i in district["items"]] == [("320402001", 3, 2), ("320402002", 0, 1)]
    assert [(i["code"], i["received"]) for i in street["items"]] == [("320402001001", 2), ("320402001002", 1)]
    # a grid shows its siblings, itself marked
    assert grid["parent"] == "320402001001" and grid["level"] == 5
    assert [(i["code"], i["received"], i["selected"]) for i in grid["items"]] == [
        ("320402001001001", 1, False), ("320402001001002", 1, True), ("320402001001003", 0, False)]


def test_reminders_list_supervised_and_overdue_first(world, read):
    service, units = world
    late = add(service, reported=T0 - 3 * D, accepted=T0 - 3 * D, deadline=T0 - 2 * D, unit=units[0])
    later = add(service, reported=T0 - 5 * D, accepted=T0 - 5 * D, deadline=T0 - 4 * D, state="rework")
    both = add(service, reported=T0 - 3 * D, accepted=T0 - 3 * D, deadline=T0 - H, supervised=True, state="signed")
    watched = add(service, reported=T0 - D, accepted=T0 - D, deadline=T0 + D, supervised=True, state="dispatched")
    add(service, reported=T0 - D, accepted=T0 - D, deadline=T0 + D)  # neither
    add(service, reported=T0 - 3 * D, accepted=T0 - 3 * D, deadline=T0 - 2 * D, closed=T0 - D)  # closed
    with service.db.session() as s:
        items = panels(s, service, read).reminders(service.catalog())
    assert [r["id"] for r in items] == [both, later, late, watched]
    first = items[0]
    assert first["supervised"] and first["overdue"] and round(first["overdue_hours"], 1) == 1.0
    assert first["category"] == "暴露垃圾" and first["place"].startswith("测试市-1 · ") and first["state_label"] == "已签收"
    assert items[2]["unit"] != "（未派遣）" and items[1]["unit"] == "（未派遣）"
    assert not items[3]["overdue"] and items[3]["overdue_hours"] is None


# ---- the page-level entry points ------------------------------------------------------------------------
def test_snapshot_follows_the_selection(world):
    service, units = world
    random_world(service, units, n=150, seed=11)
    city = cs.snapshot(service, "320400", "overview")
    street = cs.snapshot(service, "320402001", "city")
    assert city["area"]["level"] == 1 and street["area"]["name"] == "测试市-1-1"
    assert [b["code"] for b in street["breadcrumbs"]] == ["320400", "320402", "320402001"]
    assert street["theme"] == {"key": "city", "label": "城市管理"}
    assert street["headline"]["received"] < city["headline"]["received"]
    assert city["period"] == {"start": "2026-10-25", "end": "2026-11-23", "days": 30}
    assert city["indicators"] == []  # none seeded in this database
    unknown = cs.snapshot(service, "999999", "nonsense")
    assert unknown["area"]["code"] == "320400" and unknown["theme"]["key"] == "overview"


def test_the_page_shares_one_computation_for_thirty_seconds(world):
    service, _ = world
    add(service, reported=T0 - H)
    first = cs.cached_snapshot(service, "320402", "overview")
    add(service, reported=T0 - H)
    assert cs.cached_snapshot(service, "320402", "overview") is first
    assert cs.cached_snapshot(service, "320402", "city") is not first  # another selection
    service.clock.now = T0 + timedelta(seconds=31)
    again = cs.cached_snapshot(service, "320402", "overview")
    assert again["headline"]["received"] == first["headline"]["received"] + 1


def test_a_live_refresh_gets_figures_that_include_the_event_it_saw(world):
    """The page refreshes when a case_event arrives (assets/cockpit.js) and names the newest seq
    it has seen: figures shared from before that event must not be served to it."""
    from data.tokens import Principal

    service, _ = world
    first = cs.cached_snapshot(service, "320402", "overview")
    service.intake({"category": GARBAGE, "lon": 119.91, "lat": 31.72, "description": "驾驶舱刷新测试",
                    "source": "hotline"}, Principal("user", "admin", "admin", "320400"))
    head = cs.outbox_head(service.db)
    assert head > 0
    assert cs.cached_snapshot(service, "320402", "overview") is first  # a timed refresh still shares
    fresh = cs.cached_snapshot(service, "320402", "overview", seen_seq=head)
    assert fresh["headline"]["received_today"] == first["headline"]["received_today"] + 1
    # every page that has seen as much shares it; a made-up seq beyond the head forces nothing
    assert cs.cached_snapshot(service, "320402", "overview", seen_seq=head) is fresh
    assert cs.cached_snapshot(service, "320402", "overview", seen_seq=head + 10 ** 6) is fresh
    assert cs.cached_snapshot(service, "320402", "overview", seen_seq=head - 1) is fresh
    assert cs.cached_snapshot(service, "320402", "overview") is fresh  # the newer figures replace the old


def test_navigation_and_drill_targets(world):
    service, _ = world
    nav = cs.navigation(service, "320402001001003", "overview")
    assert nav["frame"].code == "320402001001" and nav["highlight"].code == "320402001001003"
    assert [c["code"] for c in nav["choices"]] == ["320402001001001", "320402001001002", "320402001001003"]
    directory = service.areas
    assert cs.drill_target(directory, "320400", "320402") == "320402"  # down
    assert cs.drill_target(directory, "320402001", "320400") == "320400"  # back up (breadcrumb)
    assert cs.drill_target(directory, "320402001001001", "320402001001003") == "320402001001003"  # sibling grid
    assert cs.drill_target(directory, "320402001", "320403001") is None  # elsewhere in the city
    assert cs.drill_target(directory, "320400", "nope") is None and cs.drill_target(directory, "320400", None) is None


def test_area_clause_is_a_code_range():
    assert cs._next_code("320402001") == "320402002"
    assert cs._next_code("3204029") == "320403"
    assert cs._next_code("999") is None


def test_every_cockpit_query_reads_through_a_time_range_or_the_open_states(world, db_kind):
    """On SQLite (no statistics: the planner takes what the query offers): every statement the
    cockpit sends reads cases through a time range (reported, deadline, closed; below the district one
    range per grid of the area), the open states, the backlog, or the few supervised cases, never the
    whole table nor an area's or a category's whole history; a loose index scan lists an index's keys."""
    if db_kind != "sqlite":
        pytest.skip("the query-plan check reads SQLite's EXPLAIN QUERY PLAN")
    service, units = world
    random_world(service, units, n=60, seed=5)
    statements = []

    def grab(_conn, _cursor, statement, parameters, _context, _executemany):
        if "FROM cases" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            statements.append((statement, parameters))

    engine = service.db.engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        for area, theme in (("320400", "overview"), ("320402", "city"), ("320402001", "emergency"),
                            ("320402001001", "overview"), ("320402001001002", "traffic")):
            cs.snapshot(service, area, theme)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert len(statements) > 20
    bounded = re.compile(r"SEARCH cases USING (?:COVERING )?INDEX (\w+) \((.*)\)")
    bad = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            loose = statement.startswith("WITH RECURSIVE key_values")
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters):
                detail = row[-1]
                if "cases" not in detail.split(" USING")[0]:
                    continue
                m = bounded.match(detail)
                # the open states, or the accepted cases not closed (partial indexes): the backlog
                ok = m is not None and (m.group(1) in ("ix_cases_state", "ix_cases_open_deadline",
                                                       "ix_cases_open_district", "ix_cases_open_grid") or any(
                    f"{col}>" in m.group(2) for col in ("reported_at", "deadline_at", "closed_at", "voided_at", "resumed_at")))
                ok = ok or "USING INTEGER PRIMARY KEY (rowid=?)" in detail  # the rows of a few ids
                ok = ok or "ix_cases_supervised_reported" in detail  # only the supervised cases
                ok = ok or "ix_cases_held" in detail  # only the cases on 挂账 now
                ok = ok or (loose and re.match(r"SEARCH cases USING COVERING INDEX \w+( \(\w+>\?( AND \w+<\?)?\))?$",
                                               detail) is not None)  # one descent per key
                if not ok:
                    bad.append((detail, " ".join(statement.split())[:90]))
    assert bad == []