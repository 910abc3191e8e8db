"""The assessment of a simulated month against the independent pandas oracle, every `by`, field by field."""
from __future__ import annotations

# The month: demo history made by demo/backfill.py (the pure core's lifecycle, written in bulk) over the
# small rect_city with the shipped catalog and units, then two more days of acts through
# CaseService.intake / act by people with accounts (users and tokens: grid members, duty officers) and the
# units, so that the posts have `user:` and `token:` people too. `figures.service.assessment` must answer
# what tests/figures/assessment_oracle.py computes from the written definitions, on SQLite and PostgreSQL.
import random
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from cases.service import ServiceError
from data.models import Case, Unit
from data.tokens import Principal
from tests.factories import small_world
from tests.figures import assessment_oracle as oracle

UTC = timezone.utc
NOW0 = datetime(2026, 4, 2, 2, 0, tzinfo=UTC)          # Thursday 10:00 in Shanghai: the history ends here
DRIVE_ROUNDS = 160                                     # × 10 simulated minutes of people's acts after it
CITY = "320400"
GM_AREA = "320402001001"                               # gm_a's community
# fields named by docs/assessment.md that the oracle computes but a platform may name otherwise or not
# give: compared only when the platform's item has them
OPTIONAL = {"role", "on_time_site_checks", "on_time_reviews", "on_time_intake_acts", "on_time_dispatched", "acts"}


def _principals(tokens):
    duty_a = Principal("user", "user:duty_a", "duty_officer", CITY)
    duty_b = Principal("user", "user:duty_b", "duty_officer", "320403")
    duty_t = Principal("token", tokens["duty_officer"], "duty_officer", CITY)
    gm_a = Principal("user", "user:gm_a", "grid_member", GM_AREA)
    gm_t = Principal("token", tokens["grid_member"], "grid_member", CITY)
    return duty_a, duty_b, duty_t, gm_a, gm_t


def _unit(code):
    return Principal("simulator", f"sim:unit:{code}", "unit_handler", CITY, code)


def _drive(service, clock, tokens, rng):
    """Two days of people's acts after the history: reports by grid members and officers, and a step for
    a sample of the open (and lately closed) cases each round. Refusals (409/422/403) are skipped."""
    duty_a, duty_b, duty_t, gm_a, gm_t = _principals(tokens)
    officers = (duty_a, duty_a, duty_b, duty_t)
    grids = [r for r in service.areas.records() if r.level == 5]
    mine = [r for r in grids if r.code.startswith(GM_AREA)]
    with service.db.session() as s:
        units = [u.code for u in s.scalars(select(Unit).where(Unit.active.is_(True)))]
    done = Counter()

    def act(case, who, action, **kw):
        try:
            service.act(case.id, who, action, case.version, **kw)
            done[action] += 1
        except ServiceError:
            done["refused"] += 1

    for _ in range(DRIVE_ROUNDS):
        clock.now += timedelta(minutes=10)
        if rng.random() < 0.35:   # a grid member's own report in their community
            g = rng.choice(mine)
            p = g.geometry.representative_point()
            try:
                service.intake({"category": "020102", "source": "patrol", "lon": p.x, "lat": p.y}, gm_a,
                               actor=gm_a.ident)
            except ServiceError:
                done["refused"] += 1
        if rng.random() < 0.25:   # an officer takes a hotline report
            g = rng.choice(grids)
            p = g.geometry.representative_point()
            who = rng.choice(officers)
            try:
                service.intake({"category": rng.choice(["020102", "010151"]), "source": "hotline", "lon": p.x,
                                "lat": p.y}, who, actor=who.ident)
            except ServiceError:
                done["refused"] += 1
        with service.db.session() as s:
            open_cases = list(s.scalars(select(Case).where(Case.state.notin_(["closed", "rejected", "merged",
                                                                                   "voided"]))))
            recent = list(s.scalars(select(Case).where(Case.state == "closed", Case.callback_at.is_(None),
                                                       Case.source.in_(["hotline", "citizen"]),
                                                       Case.closed_at > clock.now - timedelta(days=2))))
            s.expunge_all()
        for case in rng.sample(open_cases, min(4, len(open_cases))):
            officer = rng.choice(officers)
            x = rng.random()
            unit = _unit(case.unit_code) if case.unit_code else None
            if x < 0.03:
                act(case, officer, "void", note="重复上报，作废")
            elif case.state == "reported":
                if x < 0.7:
                    act(case, officer, "accept")
                elif x < 0.9:
                    act(case, officer, "verify_request")
                else:
                    act(case, officer, "reject", note="不属于受理范围")
            elif case.state == "verifying":
                act(case, gm_t if x < 0.6 else gm_a, "report_check", result="confirmed")
            elif case.state in ("accepted", "rework"):
                act(case, officer, "dispatch")
            elif case.state == "dispatched" and unit:
                if x < 0.6:
                    act(case, unit, "sign")
                elif x < 0.7:
                    act(case, unit, "return", note="不属于本单位职责")
                elif x < 0.8:
                    act(case, officer, "urge", note="请尽快处置")
                elif x < 0.85:
                    act(case, officer, "supervise", note="督办")
                else:
                    act(case, officer, "reassign", unit=rng.choice(units), note="改派")
            elif case.state == "returned":
                if x < 0.6:
                    act(case, officer, "reassign", unit=rng.choice(units), note="改派至责任单位")
                else:
                    act(case, officer, "refuse_return", note="属于本单位职责")
            elif case.state == "signed" and unit:
                if case.extension_pending_hours is not None:
                    act(case, officer, "approve_extension")
                elif case.suspension_requested_at is not None:
                    act(case, officer, "approve_suspension")
                elif x < 0.55:
                    act(case, unit, "resolve", note="已处置")
                elif x < 0.7:
                    act(case, unit, "extend", note="需要更多时间", hours=rng.choice([4, 8, 16]))
                elif x < 0.8:
                    act(case, unit, "request_suspension", note="待第三方处理")
                elif x < 0.85:
                    act(case, officer, "suspend", note="暂缓处置")
            elif case.state == "suspended":
                if x < 0.4:
                    act(case, officer, "resume")
            elif case.state == "resolved":
                act(case, gm_t if x < 0.5 else officer, "verify" if x < 0.8 or x > 0.95 else "rework",
                    note="未处置到位")
            elif case.state == "verified":
                act(case, officer, "close")
        for case in recent[:1]:
            act(case, duty_a, "callback", satisfaction="unsatisfied", note="不满意")
            with service.db.session() as s:
                fresh = s.get(Case, case.id)
                s.expunge(fresh)
            act(fresh, duty_a, "reopen", note="回访不满意，重办")
    return done


@pytest.fixture
def month(empty_db):
    from data.models import ApiToken
    from data.tokens import create_token
    from data.users import create_user, set_active
    from demo.backfill import backfill

    service, clock = small_world(empty_db, NOW0)
    tokens = {}
    with empty_db.session() as s:
        for name, role, area in [("gm_a", "grid_member", GM_AREA), ("gm_b", "grid_member", "320403002002003"),
                                 ("gm_idle", "grid_member", "320403"), ("duty_a", "duty_officer", CITY),
                                 ("duty_b", "duty_officer", "320403"), ("duty_gone", "duty_officer", CITY),
                                 ("handler", "unit_handler", "320402", )]:
            create_user(s, name, "password-123", role, area,
                        "U-320402-city_management" if role == "unit_handler" else None, display_name=f"{name}名")
        set_active(s, "duty_gone", False)
        for role in ("grid_member", "duty_officer"):
            create_token(s, role, CITY, label=f"{role} token")
    with empty_db.session() as s:
        for t in s.scalars(select(ApiToken)):
            tokens[t.role] = f"token:{t.id}"
    backfill(service, 45, now=NOW0, volume=0.02, parallel=False)
    done = _drive(service, clock, tokens, random.Random(20260402))
    return service, clock.now, done


def _mismatches(got: dict, want: dict, where: str) -> list[str]:
    out = []
    if got.get("period") != want["period"] or got.get("by") != want["by"]:
        out.append(f"{where}: period/by {got.get('period')} {got.get('by')} != {want['period']} {want['by']}")
    g_items = {it["code"]: it for it in got["items"]}
    w_items = {it["code"]: it for it in want["items"]}
    for code in sorted(set(w_items) - set(g_items)):
        out.append(f"{where}: item {code} missing (oracle: score {w_items[code]['score']})")
    for code in sorted(set(g_items) - set(w_items)):
        out.append(f"{where}: item {code} not expected (platform: score {g_items[code].get('score')})")
    for code in sorted(set(g_items) & set(w_items)):
        g, w = g_items[code], w_items[code]
        for k, v in w.items():
            if k.startswith("_") or (k == "name" and v is None):
                continue
            if k not in g:
                if k not in OPTIONAL:
                    out.append(f"{where} {code}: no field {k}")
                continue
            x = g[k]
            if v is None or x is None or isinstance(v, str):
                ok = x == v
            else:
                ok = x == pytest.approx(v, rel=1e-6, abs=1e-6)  # the platform gives scores to 6 decimals
            if not ok:
                out.append(f"{where} {code}.{k}: platform {x!r}, oracle {v!r}")
    return out


def test_the_month_has_every_kind_of_act(month):
    service, now, done = month
    t = oracle.load(service.db)
    S, E = oracle.bounds(date(2026, 3, 1), date(2026, 3, 31))
    h = t.history[(t.history["at"] >= S) & (t.history["at"] < E)]
    acts = Counter(h.action)
    for action in ("void", "approve_suspension", "resume", "approve_extension", "rework", "callback", "reopen",
                   "reassign", "return", "urge", "supervise", "verify_request", "report_check", "reject"):
        assert acts[action] > 0, (action, acts)
    f = oracle.case_flags(t.cases, S, E, now)
    assert f.voided.sum() > 0 and f.suspended.sum() > 0 and f.extended.sum() > 0 and f.reworked.sum() > 0
    p = t.penalties[(t.penalties["at"] >= S) & (t.penalties["at"] < E)]
    assert set(p.rule) == {"urge", "supervise", "reopen"}
    # the people's two days: users' and tokens' acts of every kind the posts count
    people = Counter((a.split(":")[0], x) for a, x in zip(t.history.actor, t.history.action) if a[:5] in ("user:", "token"))
    for key in [("user", "report"), ("user", "accept"), ("user", "dispatch"), ("token", "report_check"),
                ("token", "verify"), ("user", "reassign"), ("user", "void")]:
        assert people[key] > 0, (key, people, done)
    # a case suspended at the end of the people's days, one lifted during them
    assert done["approve_suspension"] + done["suspend"] > 0 and done["resume"] > 0, done


PERIODS = [  # (start, end, now): a finished month, a period the people's days end inside, one day of them
    (date(2026, 3, 1), date(2026, 3, 31), None),
    (date(2026, 3, 4), date(2026, 4, 3), "drive"),
    (date(2026, 4, 2), date(2026, 4, 2), "drive"),
]


def test_assessment_equals_the_oracle(month):
    from figures.service import assessment, penalty_cases

    service, drive_end, _ = month
    t = oracle.load(service.db)
    problems = []
    for start, end, when in PERIODS:
        now = drive_end if when == "drive" else datetime(2026, 5, 1, tzinfo=UTC)
        for by in oracle.BY:
            want = oracle.assessment(t, start, end, by, now)
            got = assessment(service, start, end, by, now=now)
            problems += _mismatches(got, want, f"{start}..{end} by={by}")
        # every point is traceable to its case: penalty_cases per unit and per district
        for unit in sorted(set(t.penalties.unit_code)):
            want_rows = oracle.penalty_cases(t, start, end, unit=unit)
            got_rows = penalty_cases(service, start, end, unit=unit)
            key = lambda r: (r["case_id"], r["rule"], round(float(r["points"]), 6))  # noqa: E731
            if sorted(map(key, got_rows)) != sorted(map(key, want_rows)):
                problems.append(f"{start}..{end} penalty_cases(unit={unit}): platform {sorted(map(key, got_rows))}"
                                f" oracle {sorted(map(key, want_rows))}")
        for district in ("320402", "320403"):
            got_sum = sum(float(r["points"]) for r in penalty_cases(service, start, end, area=district))
            want_sum = sum(r["points"] for r in oracle.penalty_cases(t, start, end, area=district))
            if got_sum != pytest.approx(want_sum):
                problems.append(f"{start}..{end} penalty_cases(area={district}): {got_sum} != {want_sum}")
    assert not problems, f"{len(problems)} disagreements:\n" + "\n".join(problems[:200])


def test_kpis_with_the_exclusions_equal_the_oracle(month):
    from figures.service import kpis

    service, drive_end, _ = month
    t = oracle.load(service.db)
    problems = []
    for start, end, when in PERIODS:
        now = drive_end if when == "drive" else datetime(2026, 5, 1, tzinfo=UTC)
        for by, key in ((None, None), ("district", "district_code"), ("unit", "unit_code"),
                        ("category", "category_code")):
            want = oracle.kpis(t, start, end, now, key)
            got = kpis(service, start, end, by, now=now)
            for k in oracle.KPI_FIELDS:
                if got[k] != pytest.approx(want["total"][k]):
                    problems.append(f"{start}..{end} total.{k}: platform {got[k]}, oracle {want['total'][k]}")
            if by:
                groups = {g["key"]: g for g in got["groups"]}
                for gk, w in want["groups"].items():
                    g = groups.get(gk)
                    if g is None:
                        if any(w[k] for k in ("received", "accepted", "due", "closed", "overdue_open")):
                            problems.append(f"{start}..{end} by={by} group {gk} missing")
                        continue
                    for k in oracle.KPI_FIELDS:
                        if g[k] != pytest.approx(w[k]):
                            problems.append(f"{start}..{end} by={by} {gk}.{k}: platform {g[k]}, oracle {w[k]}")
    assert not problems, f"{len(problems)} disagreements:\n" + "\n".join(problems[:200])
