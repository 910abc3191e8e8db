"""The assessment on hand-made cases whose figures are computed by hand, for the platform and the oracle alike."""
from __future__ import annotations

# Each test writes a handful of case rows (and the history, penalty and user rows it needs) directly,
# then asks `figures.service.assessment` / `kpis` (engine "platform") and the pandas oracle of
# tests/figures/assessment_oracle.py (engine "oracle") for April 2026 and checks the numbers worked out
# by hand in the comments. Every test runs on SQLite and on the real PostgreSQL.
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from data.models import CaseHistory, CasePenalty
from tests.factories import add_case_row, rect_city, small_world
from tests.figures import assessment_oracle as oracle

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
APR1, APR30 = date(2026, 4, 1), date(2026, 4, 30)   # 30 days: accepted_per_grid = accepted per grid
LATER = datetime(2026, 6, 1, tzinfo=UTC)             # April is a finished period
T0 = datetime(2026, 3, 1, tzinfo=UTC)
GRIDS = sorted(r.code for r in rect_city() if r.level == 5)
G = GRIDS[0]                     # 320402001001001
COMMUNITY = "320403001001"       # grids 320403001001001 … 003 (no other test case lies there)
U1, U2 = "U-320402-city_management", "U-320402-housing_construction"


def sh(*args) -> datetime:
    """A Shanghai wall-clock time, as stored (UTC)."""
    return datetime(*args, tzinfo=SH).astimezone(UTC)


@pytest.fixture(params=["platform", "oracle"])
def engine(request):
    return request.param


@pytest.fixture
def world(empty_db, engine):
    service, _clock = small_world(empty_db, T0)
    return World(empty_db, service, engine)


class World:
    def __init__(self, db, service, engine):
        self.db, self.service, self.engine = db, service, engine

    def case(self, reported, **kw) -> int:
        """A case row; an accepted working-clock 020102 case in grid G of unit U1 unless told."""
        kw.setdefault("grid", G)
        kw.setdefault("unit_code", U1)
        kw.setdefault("state", "closed" if kw.get("closed_at") else "dispatched")
        kw.setdefault("reported_at", reported)
        return add_case_row(self.db, reported, **kw)

    def history(self, case_id, at, actor, action, from_state="reported", to_state="reported", **kw) -> None:
        with self.db.session() as s:
            s.add(CaseHistory(case_id=case_id, at=at, actor=actor, action=action, from_state=from_state,
                              to_state=to_state, note=kw.get("note", ""), details=kw.get("details")))

    def penalty(self, case_id, unit, points, rule, at) -> None:
        with self.db.session() as s:
            s.add(CasePenalty(case_id=case_id, unit_code=unit, points=points, rule=rule, reason=rule, at=at))

    def user(self, username, role, area, unit=None, active=True, name=None) -> None:
        from data.users import create_user, set_active

        with self.db.session() as s:
            create_user(s, username, "password-123", role, area, unit, display_name=name or username)
        if not active:
            with self.db.session() as s:
                set_active(s, username, False)

    def token(self, role, area=None) -> str:
        """A token's actor ident (token:<id>)."""
        from sqlalchemy import select

        from data.models import ApiToken
        from data.tokens import create_token

        with self.db.session() as s:
            create_token(s, role, area)
        with self.db.session() as s:
            return f"token:{s.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()))}"

    def assess(self, by, start=APR1, end=APR30, now=LATER) -> dict:
        if self.engine == "oracle":
            return oracle.assessment(oracle.load(self.db), start, end, by, now)
        from figures.service import assessment

        return assessment(self.service, start, end, by, now=now)

    def kpis(self, start=APR1, end=APR30, now=LATER) -> dict:
        if self.engine == "oracle":
            return oracle.kpis(oracle.load(self.db), start, end, now)["total"]
        from figures.service import kpis

        return kpis(self.service, start, end, now=now)

    def penalty_cases(self, start=APR1, end=APR30, unit=None, area=None) -> list[dict]:
        if self.engine == "oracle":
            return oracle.penalty_cases(oracle.load(self.db), start, end, unit=unit, area=area)
        from figures.service import penalty_cases

        return penalty_cases(self.service, start, end, unit=unit, area=area)


def item(answer: dict, code: str) -> dict:
    found = [it for it in answer["items"] if it["code"] == code]
    assert len(found) == 1, (code, [it["code"] for it in answer["items"]])
    return found[0]


def check(got: dict, want: dict) -> None:
    for k, v in want.items():
        assert k in got, f"no field {k!r} in {sorted(got)}"
        if isinstance(v, float):
            assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-6), (k, got[k], v)  # scores: 6 decimals
        else:
            assert got[k] == v, (k, got[k], v)


# ---- the exclusions ----------------------------------------------------------------------------------

def test_suspended_at_the_end_of_the_period(world):
    w = world
    # A: 挂账 on Apr 8, never lifted: accepted in April, but neither due (deadline Apr 10) nor overdue
    w.case(sh(2026, 4, 2, 9), accepted_at=sh(2026, 4, 2, 10), dispatched_at=sh(2026, 4, 2, 10),
           deadline_at=sh(2026, 4, 10, 17), suspended_at=sh(2026, 4, 8, 9), state="suspended")
    # B: suspended Apr 5, lifted Apr 7 (deadline moved to Apr 12), resolved Apr 10, closed Apr 11: due,
    # closed on time; due_handling and handled on time for U1
    w.case(sh(2026, 4, 3, 9), accepted_at=sh(2026, 4, 3, 10), dispatched_at=sh(2026, 4, 3, 10),
           suspended_at=sh(2026, 4, 5, 9), resumed_at=sh(2026, 4, 7, 9), deadline_at=sh(2026, 4, 12, 17),
           resolved_at=sh(2026, 4, 10, 9), closed_at=sh(2026, 4, 11, 9))
    # C: suspended Apr 20, lifted only on May 3 (after E): suspended at E; its Apr 25 deadline is not due
    w.case(sh(2026, 4, 15, 9), accepted_at=sh(2026, 4, 15, 10), dispatched_at=sh(2026, 4, 15, 10),
           suspended_at=sh(2026, 4, 20, 9), resumed_at=sh(2026, 5, 3, 9), deadline_at=sh(2026, 4, 25, 17))
    # D: lifted Apr 6, suspended again Apr 15 (resumed_at < suspended_at): suspended at E
    w.case(sh(2026, 4, 1, 9), accepted_at=sh(2026, 4, 1, 10), dispatched_at=sh(2026, 4, 1, 10),
           resumed_at=sh(2026, 4, 6, 9), suspended_at=sh(2026, 4, 15, 9), deadline_at=sh(2026, 4, 14, 17),
           state="suspended")
    grid = item(w.assess("grid"), G)
    # received 4, accepted 4; due 1 (B), closed 1 on time; 3 suspended at E; nothing overdue
    check(grid, {"received": 4, "accepted": 4, "due": 1, "closed": 1, "closed_on_time": 1, "overdue_open": 0,
                 "suspended": 3, "voided": 0, "closure_rate": 1.0, "on_time_rate": 1.0})
    unit = item(w.assess("unit"), U1)
    # dispatched 4 in April; due_handling: only B (A's, C's and D's deadlines are in April, but suspended)
    check(unit, {"dispatched": 4, "due_handling": 1, "handled": 1, "handled_on_time": 1, "suspended": 3})
    # the KPI figures leave them out too
    check(w.kpis(), {"received": 4, "accepted": 4, "due": 1, "closed": 1, "closed_on_time": 1, "overdue_open": 0})
    # March: A..D all accepted in April: nothing counts, nothing is suspended at March's end
    march = item(w.assess("grid", date(2026, 3, 1), date(2026, 3, 31)), G)
    check(march, {"accepted": 0, "suspended": 0, "due": 0, "score": None, "rank": None})


def test_voided_cases_count_only_as_voided(world):
    w = world
    # V1: accepted Apr 2, deadline Apr 5, voided Apr 6: only `voided`
    w.case(sh(2026, 4, 2, 9, 30), accepted_at=sh(2026, 4, 2, 9, 50), dispatched_at=sh(2026, 4, 2, 10),
           deadline_at=sh(2026, 4, 5, 17), voided_at=sh(2026, 4, 6, 9), state="voided")
    # V2: voided after E (May 5): April counts it as it stood — received, accepted, due, overdue
    w.case(sh(2026, 4, 3, 9), accepted_at=sh(2026, 4, 3, 9, 20), dispatched_at=sh(2026, 4, 3, 10),
           deadline_at=sh(2026, 4, 9, 17), voided_at=sh(2026, 5, 5, 9), state="voided")
    # V3: voided in March: April does not see it (its April deadline neither)
    w.case(sh(2026, 3, 10, 9), accepted_at=sh(2026, 3, 10, 10), dispatched_at=sh(2026, 3, 10, 10),
           deadline_at=sh(2026, 4, 3, 17), voided_at=sh(2026, 3, 20, 9), state="voided")
    grid = item(w.assess("grid"), G)
    check(grid, {"received": 1, "accepted": 1, "due": 1, "closed": 0, "overdue_open": 1, "voided": 1,
                 "suspended": 0, "closure_rate": 0.0, "on_time_rate": 0.0})
    city = item(w.assess("city"), "320400")
    check(city, {"received": 1, "accepted": 1, "due": 1, "overdue_open": 1, "voided": 1, "grids": 24})
    unit = item(w.assess("unit"), U1)
    # dispatched in April: V2 only (V1 is voided); due_handling V2 (deadline Apr 9, not resolved)
    check(unit, {"dispatched": 1, "due_handling": 1, "handled": 0, "handling_rate": 0.0,
                 "on_time_handling_rate": 0.0, "score": 10.0})  # 60·0 + 30·0 + 10·(1 − null→0)
    check(w.kpis(), {"received": 1, "accepted": 1, "due": 1, "closed": 0, "overdue_open": 1})
    march = item(w.assess("grid", date(2026, 3, 1), date(2026, 3, 31)), G)
    # March: V3 voided in March; nothing else (V3 was accepted in March, but voided before E)
    check(march, {"received": 0, "accepted": 0, "voided": 1, "due": 0})


# ---- units ------------------------------------------------------------------------------------------

def test_unit_handling_rework_and_extension(world):
    w = world
    # E1: deadline Apr 10, resolved Apr 9 after an extension: handled on time, extended
    w.case(sh(2026, 4, 1, 9), unit_code=U2, accepted_at=sh(2026, 4, 1, 9), dispatched_at=sh(2026, 4, 1, 10),
           deadline_at=sh(2026, 4, 10, 17), resolved_at=sh(2026, 4, 9, 9), closed_at=sh(2026, 4, 9, 15),
           extension_count=1)
    # E2: deadline Apr 12, resolved Apr 14 (late), reworked once
    w.case(sh(2026, 4, 2, 9), unit_code=U2, accepted_at=sh(2026, 4, 2, 9), dispatched_at=sh(2026, 4, 2, 10),
           deadline_at=sh(2026, 4, 12, 17), resolved_at=sh(2026, 4, 14, 9), closed_at=sh(2026, 4, 14, 15),
           rework_count=1)
    # E3: deadline Apr 20, never resolved: due_handling, not handled
    w.case(sh(2026, 4, 3, 9), unit_code=U2, accepted_at=sh(2026, 4, 3, 9), dispatched_at=sh(2026, 4, 3, 10),
           deadline_at=sh(2026, 4, 20, 17))
    # E4: deadline May 10, resolved early on Apr 25: due_handling, handled on time
    w.case(sh(2026, 4, 4, 9), unit_code=U2, accepted_at=sh(2026, 4, 4, 9), dispatched_at=sh(2026, 4, 4, 10),
           deadline_at=sh(2026, 5, 10, 17), resolved_at=sh(2026, 4, 25, 9), state="resolved")
    # E5: deadline May 10, not resolved, extended twice: not due_handling (so not in extended either)
    w.case(sh(2026, 4, 5, 9), unit_code=U2, accepted_at=sh(2026, 4, 5, 9), dispatched_at=sh(2026, 4, 5, 10),
           deadline_at=sh(2026, 5, 10, 17), extension_count=2)
    # E6: resolved Mar 30, deadline Apr 5: handled before S, not due_handling again; dispatched in March
    w.case(sh(2026, 3, 28, 9), unit_code=U2, accepted_at=sh(2026, 3, 28, 9), dispatched_at=sh(2026, 3, 28, 10),
           deadline_at=sh(2026, 4, 5, 17), resolved_at=sh(2026, 3, 30, 9), state="resolved")
    unit = item(w.assess("unit"), U2)
    # due_handling 4 (E1–E4), handled 3 (E1, E2, E4), on time 2 (E1, E4), reworked 1 (E2), extended 1 (E1)
    # score = 60·2/4 + 30·3/4 + 10·(1 − 1/3) = 30 + 22.5 + 6.667 = 59.1667 → D
    check(unit, {"dispatched": 5, "due_handling": 4, "handled": 3, "handled_on_time": 2, "reworked": 1,
                 "extended": 1, "handling_rate": 0.75, "on_time_handling_rate": 0.5, "rework_rate": 1 / 3,
                 "extension_rate": 0.25, "score": 30 + 22.5 + 10 * 2 / 3, "grade": "D", "rank": 1,
                 "area": "320402"})


def test_reopen_after_callback_and_penalties(world):
    w = world
    # R1: closed Apr 5, 回访 unsatisfied Apr 6, 重办 Apr 7 (2 points to U1), closed again Apr 14 before its
    # new deadline (Apr 15): due, closed on time
    r1 = w.case(sh(2026, 4, 1, 9), source="hotline", accepted_at=sh(2026, 4, 1, 9, 10),
                dispatched_at=sh(2026, 4, 7, 9), deadline_at=sh(2026, 4, 15, 17), resolved_at=sh(2026, 4, 13, 9),
                closed_at=sh(2026, 4, 14, 9), callback_at=sh(2026, 4, 6, 9), callback_result="unsatisfied",
                reopen_count=1, penalty_points=2)
    w.penalty(r1, U1, 2.0, "reopen", sh(2026, 4, 7, 9))
    # R2: reopened Apr 8 (closed_at cleared), not resolved by its new deadline Apr 15: due, overdue
    r2 = w.case(sh(2026, 4, 1, 10), source="citizen", accepted_at=sh(2026, 4, 1, 10, 10),
                dispatched_at=sh(2026, 4, 8, 9), deadline_at=sh(2026, 4, 15, 17), callback_at=sh(2026, 4, 7, 9),
                callback_result="unsatisfied", reopen_count=1, penalty_points=2.5)
    w.penalty(r2, U1, 2.0, "reopen", sh(2026, 4, 8, 9))
    w.penalty(r2, U1, 0.5, "urge", sh(2026, 4, 14, 9))
    w.penalty(r2, U1, 2.0, "supervise", sh(2026, 5, 2, 9))      # May: not April's
    # R3: reworked once, closed Apr 20 on time (deadline Apr 22)
    w.case(sh(2026, 4, 10, 9), accepted_at=sh(2026, 4, 10, 9, 10), dispatched_at=sh(2026, 4, 10, 10),
           deadline_at=sh(2026, 4, 22, 17), resolved_at=sh(2026, 4, 19, 9), closed_at=sh(2026, 4, 20, 9),
           rework_count=1)
    grid = item(w.assess("grid"), G)
    # accepted 3 (1 patrol: R3); due 3, closed 2 on time; rework_rate = 1 reworked / 2 closed in April;
    # overdue R2; penalty points 2 + 2 + 0.5 = 4.5
    # score = 10·1/3 + 20·0.75 (3 per grid: not < 3) + 30·2/3 + 40·2/3 = 3.333 + 15 + 20 + 26.667 = 65 → C
    check(grid, {"accepted": 3, "patrol_accepted": 1, "due": 3, "closed": 2, "closed_on_time": 2,
                 "rework_rate": 0.5, "overdue_open": 1, "penalty_points": 4.5, "accepted_per_grid": 3.0,
                 "accepted_score": 0.75, "score": 10 / 3 + 15 + 20 + 80 / 3, "grade": "C"})
    unit = item(w.assess("unit"), U1)
    check(unit, {"penalty_points": 4.5, "due_handling": 3, "handled": 2, "reworked": 1})
    rows = w.penalty_cases(unit=U1)
    assert sorted((r["case_id"], r["rule"], r["points"]) for r in rows) == sorted(
        [(r1, "reopen", 2.0), (r2, "reopen", 2.0), (r2, "urge", 0.5)])
    assert sum(r["points"] for r in w.penalty_cases(area="320402")) == 4.5
    assert w.penalty_cases(area="320403") == []


def test_returns_are_the_unit_of_the_actor(world):
    w = world
    w.user("handler2", "unit_handler", "320402", U2)
    a = w.case(sh(2026, 4, 9, 9), accepted_at=sh(2026, 4, 9, 9, 50), dispatched_at=sh(2026, 4, 9, 14, 10))
    w.history(a, sh(2026, 4, 9, 14), f"sim:unit:{U1}", "return", "dispatched", "returned")
    w.history(a, sh(2026, 5, 2, 14), f"sim:unit:{U1}", "return", "dispatched", "returned")   # May
    b = w.case(sh(2026, 4, 10, 9), unit_code=U2, accepted_at=sh(2026, 4, 10, 9, 50),
               dispatched_at=sh(2026, 4, 10, 10))
    w.history(b, sh(2026, 4, 11, 14), "user:handler2", "return", "signed", "returned")
    w.history(b, sh(2026, 4, 12, 14), "user:handler2", "return", "signed", "returned")
    units = w.assess("unit")
    check(item(units, U1), {"returned": 1})
    check(item(units, U2), {"returned": 2})


# ---- the 立案数 bands, scores, grades and ranks -----------------------------------------------------

def _accepted(w, grid, n, month=4, **kw):
    for i in range(n):
        w.case(sh(2026, month, 2 + i % 20, 9), grid=grid, accepted_at=sh(2026, month, 2 + i % 20, 9, 30), **kw)


def test_accepted_score_bands(world):
    w = world
    # April has 30 days, so a grid's accepted_per_grid is its accepted count
    bands = {0: 1.0, 2: 0.9, 3: 0.75, 4: 0.75, 5: 0.6, 6: 0.6, 7: 0.4, 8: 0.4, 9: 0.0, 12: 0.0}
    for grid, n in zip(GRIDS, bands):
        _accepted(w, grid, n)
    grids = w.assess("grid")
    for grid, (n, score) in zip(GRIDS, bands.items()):
        check(item(grids, grid), {"accepted": n, "accepted_per_grid": float(n), "accepted_score": score})
    # a community: accepted / 3 grids (320402001001: 0 + 2 + 3 = 5 → 5/3 → 0.90)
    check(item(w.assess("community"), "320402001001"), {"grids": 3, "accepted": 5,
                                                         "accepted_per_grid": 5 / 3, "accepted_score": 0.9})
    # 320402001002: 4 + 5 + 6 = 15 → exactly 5 per grid → 0.60 (not < 5)
    check(item(w.assess("community"), "320402001002"), {"accepted": 15, "accepted_per_grid": 5.0,
                                                         "accepted_score": 0.6})
    # March has 31 days: 3 accepted in one grid → 3 × 30 / 31 = 2.90 → 0.90
    _accepted(w, GRIDS[20], 3, month=3)
    check(item(w.assess("grid", date(2026, 3, 1), date(2026, 3, 31)), GRIDS[20]),
          {"accepted": 3, "accepted_per_grid": 90 / 31, "accepted_score": 0.9})
    # a grid with no accepted and no due case: accepted_score 1.00 but score null, unranked
    check(item(grids, GRIDS[0]), {"score": None, "grade": None, "rank": None})


def test_score_exactly_90_is_an_a(world):
    w = world
    g = GRIDS[3]
    # 2 patrol cases accepted in April, due in April, closed on time; 3 more accepted in March, due in
    # April, closed (2 on time, 1 late): accepted 2 (patrol_share 1, 2 per grid → 0.90), due 5, closed 5,
    # on time 4 → score = 10·1 + 20·0.9 + 30·1 + 40·0.8 = 90 → A
    for i in range(2):
        w.case(sh(2026, 4, 2 + i, 9), grid=g, accepted_at=sh(2026, 4, 2 + i, 9, 30),
               deadline_at=sh(2026, 4, 10, 17), closed_at=sh(2026, 4, 8, 9))
    for i, closed in enumerate([sh(2026, 4, 3, 9), sh(2026, 4, 4, 9), sh(2026, 4, 12, 9)]):
        w.case(sh(2026, 3, 20 + i, 9), grid=g, accepted_at=sh(2026, 3, 20 + i, 9, 30), source="hotline",
               deadline_at=sh(2026, 4, 10, 17), closed_at=closed)
    check(item(w.assess("grid"), g), {"accepted": 2, "due": 5, "closed": 5, "closed_on_time": 4,
                                      "patrol_share": 1.0, "accepted_score": 0.9, "score": 90.0, "grade": "A",
                                      "rank": 1})


def test_unit_grades_at_the_boundaries(world):
    w = world
    units = ["U-320402-city_management", "U-320402-housing_construction", "U-320402-ecology_environment",
             "U-320402-market_supervision"]

    def handled(unit, n, on_time, late, reworked, unresolved=0):
        for i in range(n):
            if i < on_time + late:
                resolved = sh(2026, 4, 9, 9) if i < on_time else sh(2026, 4, 12, 9)
            else:
                resolved = None
            w.case(sh(2026, 4, 1, 9), unit_code=unit, accepted_at=sh(2026, 4, 1, 9, 30),
                   dispatched_at=sh(2026, 4, 1, 10), deadline_at=sh(2026, 4, 10, 17), resolved_at=resolved,
                   rework_count=1 if i < reworked else 0, state="resolved" if resolved else "dispatched")

    # 7 due, all handled, 6 on time, 1 reworked: 60·6/7 + 30·1 + 10·(1 − 1/7) = 90 exactly → A
    # (in floats 89.99999999999999: the grade is the exact value's)
    handled(units[0], 7, 6, 1, 1)
    # 10 due, 9 handled on time, 1 unresolved, 1 reworked: 54 + 27 + 10·8/9 = 89.89 → B
    handled(units[1], 10, 9, 0, 1, unresolved=1)
    # 4 due, 3 handled on time, 1 late: 60·3/4 + 30·1 + 10 = 85 → B
    handled(units[2], 4, 3, 1, 0)
    # 2 due, 1 on time, 1 unresolved: 30 + 15 + 10 = 55 → D
    handled(units[3], 2, 1, 0, 0, unresolved=1)
    answer = w.assess("unit")
    check(item(answer, units[0]), {"due_handling": 7, "handled": 7, "handled_on_time": 6, "score": 90.0,
                                   "grade": "A", "rank": 1})
    check(item(answer, units[1]), {"due_handling": 10, "handled": 9, "score": 54 + 27 + 80 / 9, "grade": "B",
                                   "rank": 2})
    check(item(answer, units[2]), {"score": 85.0, "grade": "B", "rank": 3})
    check(item(answer, units[3]), {"score": 55.0, "grade": "D", "rank": 4})


def test_rank_ties_and_null_scores(world):
    w = world
    x, y, z = GRIDS[10], GRIDS[5], GRIDS[14]   # y's code sorts first
    # x and z: 2 hotline cases accepted and closed on time in April: 0 + 18 + 30 + 40 = 88, on time 1.0
    for g in (x, z):
        for i in range(2):
            w.case(sh(2026, 4, 2 + i, 9), grid=g, source="hotline", accepted_at=sh(2026, 4, 2 + i, 9, 30),
                   deadline_at=sh(2026, 4, 10, 17), closed_at=sh(2026, 4, 8, 9))
    # y: 2 patrol cases accepted and closed on time, 2 March cases due in April closed (1 late):
    # 10 + 18 + 30 + 40·3/4 = 88, on time 0.75
    for i in range(2):
        w.case(sh(2026, 4, 2 + i, 9), grid=y, accepted_at=sh(2026, 4, 2 + i, 9, 30),
               deadline_at=sh(2026, 4, 10, 17), closed_at=sh(2026, 4, 8, 9))
    for closed in (sh(2026, 4, 5, 9), sh(2026, 4, 12, 9)):
        w.case(sh(2026, 3, 20, 9), grid=y, source="hotline", accepted_at=sh(2026, 3, 20, 9, 30),
               deadline_at=sh(2026, 4, 10, 17), closed_at=closed)
    answer = w.assess("grid")
    # same score: the higher on-time rate first (x, z before y), then the code (x before z)
    check(item(answer, x), {"score": 88.0, "on_time_rate": 1.0, "rank": 1, "grade": "B"})
    check(item(answer, z), {"score": 88.0, "rank": 2})
    check(item(answer, y), {"score": 88.0, "on_time_rate": 0.75, "rank": 3})
    others = [it for it in answer["items"] if it["code"] not in (x, y, z)]
    assert len(answer["items"]) == 24 and len(others) == 21
    assert all(it["score"] is None and it["rank"] is None and it["grade"] is None for it in others)


# ---- posts -----------------------------------------------------------------------------------------

def test_grid_members(world):
    w = world
    w.user("gm1", "grid_member", COMMUNITY, name="网格员甲")
    w.user("gm2", "grid_member", GRIDS[1])                    # active, no act: an item, score null
    w.user("gm3", "grid_member", GRIDS[2], active=False)      # inactive, no act: not an item
    cg = [f"{COMMUNITY}00{i}" for i in (1, 2, 3)]
    # gm1's reports in April: 2 accepted (one voided only after E), 1 rejected; one in March
    for i, kw in enumerate([dict(accepted_at=sh(2026, 4, 2, 10)),
                            dict(accepted_at=sh(2026, 4, 3, 10), voided_at=sh(2026, 5, 3, 10), state="voided"),
                            dict(rejected_at=sh(2026, 4, 4, 10), state="rejected", unit_code=None)]):
        at = sh(2026, 4, 2 + i, 9)
        cid = w.case(at, grid=cg[i], source="patrol", **kw)
        w.history(cid, at, "user:gm1", "report", None, "reported")
    old = w.case(sh(2026, 3, 5, 9), grid=cg[0], source="patrol", accepted_at=sh(2026, 3, 5, 10))
    w.history(old, sh(2026, 3, 5, 9), "user:gm1", "report", None, "reported")
    # accepted in April in gm1's grids: the 2 above (patrol) + a hotline and a citizen case → missed 2/4;
    # a hotline case voided in April is left out
    w.case(sh(2026, 4, 6, 9), grid=cg[1], source="hotline", accepted_at=sh(2026, 4, 6, 10))
    w.case(sh(2026, 4, 7, 9), grid=cg[2], source="citizen", accepted_at=sh(2026, 4, 7, 10))
    w.case(sh(2026, 4, 8, 9), grid=cg[2], source="hotline", accepted_at=sh(2026, 4, 8, 10),
           voided_at=sh(2026, 4, 9, 10), state="voided")
    # 核实 (limit 1 h on the case's clock), cases elsewhere (grid G), reported by the hotline:
    # working clock, requested Friday Apr 10 17:20 → due Monday Apr 13 09:20: answered 09:15 (on time),
    # 09:25 (late); calendar clock, requested Friday Apr 17 17:20 → due 18:20: 18:15 (on time), 18:30 (late)
    for unit, req, answer in [("working_hours", sh(2026, 4, 10, 17, 20), sh(2026, 4, 13, 9, 15)),
                              ("working_days", sh(2026, 4, 10, 17, 20), sh(2026, 4, 13, 9, 25)),
                              ("hours", sh(2026, 4, 17, 17, 20), sh(2026, 4, 17, 18, 15)),
                              ("hours", sh(2026, 4, 17, 17, 20), sh(2026, 4, 17, 18, 30))]:
        cid = w.case(req, source="hotline", time_unit=unit, accepted_at=answer, state="accepted")
        w.history(cid, req, "sim:hotline", "report", None, "reported")
        w.history(cid, req, "sim:duty_officer", "verify_request", "reported", "verifying")
        w.history(cid, answer, "user:gm1", "report_check", "verifying", "reported")
    # 核查 (limit 1 working hour from the latest 处置反馈): resolved Wed Apr 15 10:00, verified 10:50 (on
    # time); resolved 11:30 → due 14:00 (30 min before lunch, 30 after): rework at 14:00 (on time, at the
    # deadline), verify at 14:01 (late)
    for resolved, act, at in [(sh(2026, 4, 15, 10), "verify", sh(2026, 4, 15, 10, 50)),
                              (sh(2026, 4, 15, 11, 30), "rework", sh(2026, 4, 15, 14)),
                              (sh(2026, 4, 15, 11, 30), "verify", sh(2026, 4, 15, 14, 1))]:
        cid = w.case(sh(2026, 4, 14, 9), source="hotline", accepted_at=sh(2026, 4, 14, 9, 10),
                     resolved_at=resolved, state="verified")
        w.history(cid, sh(2026, 4, 14, 9), "sim:hotline", "report", None, "reported")
        w.history(cid, sh(2026, 4, 15, 8), f"sim:unit:{U1}", "resolve", "dispatched", "resolved")  # an earlier round
        w.history(cid, resolved, f"sim:unit:{U1}", "resolve", "signed", "resolved")
        w.history(cid, at, "user:gm1", act, "resolved", "verified" if act == "verify" else "rework")
    # a demo grid member with one on-time 核实 in April
    cid = w.case(sh(2026, 4, 20, 10), source="hotline", accepted_at=sh(2026, 4, 20, 11))
    w.history(cid, sh(2026, 4, 20, 10), "sim:hotline", "report", None, "reported")
    w.history(cid, sh(2026, 4, 20, 10, 5), "sim:duty_officer", "verify_request", "reported", "verifying")
    w.history(cid, sh(2026, 4, 20, 10, 30), f"sim:grid:{G}", "report_check", "verifying", "reported")
    answer = w.assess("person")
    gm1 = item(answer, "user:gm1")
    # valid 2/3, missed 2/4, 核实 2/4 on time, 核查 2/3 on time, on_time_check_rate 4/7
    # score = 40·2/3 + 20·(1 − 1/2) + 20·1/2 + 20·2/3 = 26.667 + 10 + 10 + 13.333 = 60 → C
    check(gm1, {"name": "网格员甲", "reports": 3, "valid_reports": 2, "valid_rate": 2 / 3, "missed_rate": 0.5,
                "site_checks": 4, "reviews": 3, "on_time_site_check_rate": 0.5, "on_time_review_rate": 2 / 3,
                "on_time_check_rate": 4 / 7, "score": 60.0, "grade": "C"})
    sim = item(answer, f"sim:grid:{G}")
    # the demo member of G: no report; G's accepted cases in April: all hotline (the 核实/核查 cases and
    # this one: 4 + 3 + 1 = 8, none patrol) → missed 1; 核实 1/1 on time, no 核查
    # score = 0 + 20·(1 − 1) + 20·1 + 0 = 20 → E
    check(sim, {"reports": 0, "valid_rate": None, "missed_rate": 1.0, "site_checks": 1, "reviews": 0,
                "on_time_site_check_rate": 1.0, "on_time_review_rate": None, "on_time_check_rate": 1.0,
                "score": 20.0, "grade": "E"})
    check(item(answer, "user:gm2"), {"reports": 0, "site_checks": 0, "reviews": 0, "score": None, "rank": None})
    assert "user:gm3" not in [it["code"] for it in answer["items"]]
    assert gm1["rank"] == 1 and sim["rank"] == 2


def test_duty_officers(world):
    w = world
    w.user("duty1", "duty_officer", "320400", name="值班员甲")
    w.user("duty2", "duty_officer", "320400")                 # active, no act: score null
    tok = w.token("duty_officer")
    d1 = "user:duty1"
    # intake acts (受理 from the report, limit 0.5 working hour; 立案 after 核实 from the answer):
    # a: reported Thu Apr 9 09:30, accepted 09:50 (on time); voided Apr 20 (inaccurate accept)
    a = w.case(sh(2026, 4, 9, 9, 30), accepted_at=sh(2026, 4, 9, 9, 50), voided_at=sh(2026, 4, 20, 9),
               state="voided", dispatched_at=sh(2026, 4, 9, 10), reassign_count=1, returned_at=sh(2026, 4, 9, 14))
    w.history(a, sh(2026, 4, 9, 9, 50), d1, "accept", "reported", "accepted")
    # b: reported Thu 17:25, accepted Fri Apr 10 08:50 (5 + 20 working minutes: on time); voided in May
    b = w.case(sh(2026, 4, 9, 17, 25), accepted_at=sh(2026, 4, 10, 8, 50), voided_at=sh(2026, 5, 6, 9),
               state="voided")
    w.history(b, sh(2026, 4, 10, 8, 50), d1, "accept", "reported", "accepted")
    # c: reported 10:00, rejected 10:40 (late)
    c = w.case(sh(2026, 4, 9, 10), rejected_at=sh(2026, 4, 9, 10, 40), state="rejected", unit_code=None)
    w.history(c, sh(2026, 4, 9, 10, 40), d1, "reject", "reported", "rejected")
    # e: reported 11:00, sent to 核实 11:10 (on time); answered 11:40; accepted 13:40 (20 + 10 working
    # minutes after the answer: exactly at the 立案 deadline, on time)
    e = w.case(sh(2026, 4, 9, 11), accepted_at=sh(2026, 4, 9, 13, 40), state="accepted",
               check_requested_at=sh(2026, 4, 9, 11, 10), checked_at=sh(2026, 4, 9, 11, 40))  # as the lifecycle stamps
    w.history(e, sh(2026, 4, 9, 11, 10), d1, "verify_request", "reported", "verifying")
    w.history(e, sh(2026, 4, 9, 11, 40), f"sim:grid:{G}", "report_check", "verifying", "reported")
    w.history(e, sh(2026, 4, 9, 13, 40), d1, "accept", "reported", "accepted")
    # dispatch of a (accepted 09:50) at 10:00: on time, but followed by a 改派 before E (inaccurate);
    # the unit returns it at 14:00, duty1 reassigns at 14:45 (45 min: late; not reassigned again: accurate)
    w.history(a, sh(2026, 4, 9, 10), d1, "dispatch", "accepted", "dispatched")
    w.history(a, sh(2026, 4, 9, 14), f"sim:unit:{U1}", "return", "dispatched", "returned")
    w.history(a, sh(2026, 4, 9, 14, 45), d1, "reassign", "returned", "dispatched")
    # a token officer with one act in April that the posts are not scored on (a 结案): not an item
    w.history(e, sh(2026, 4, 21, 9), tok, "close", "verified", "closed")
    answer = w.assess("person")
    # intake 5 (accept a, accept b, reject c, verify_request e, accept e), on time 4 → 0.8;
    # accepted 3, voided before E 1 → 2/3; dispatched 2, on time 1 → 0.5, accurate 1 → 0.5
    # score = 25·(0.8 + 0.5 + 2/3 + 0.5) = 61.667 → C
    check(item(answer, d1), {"name": "值班员甲", "intake_acts": 5, "on_time_accept_rate": 0.8, "accepted": 3,
                             "accurate_accept_rate": 2 / 3, "dispatched": 2, "on_time_dispatch_rate": 0.5,
                             "accurate_dispatch_rate": 0.5, "score": 25 * (0.8 + 0.5 + 2 / 3 + 0.5), "grade": "C",
                             "rank": 1})
    assert tok not in [it["code"] for it in answer["items"]]  # a token is an item when it did a scored act
    check(item(answer, "user:duty2"), {"score": None, "rank": None, "grade": None})
