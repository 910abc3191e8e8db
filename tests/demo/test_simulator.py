"""The demo simulator (pure): determinism, the daily rhythm, the category mix, valid payloads inside
the city, severities, duplicates, and lifecycle decisions that are always legal and at the
advertised rates (walked through dispatch.lifecycle without a database)."""
from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cases.service import IntakeRequest, haversine_m
from dispatch import lifecycle
from data import files
from demo.profile import load_profile
from demo.simulator import KIND_SHARES, SEVERITY_SHARES, Simulator, Step, pick_unit, rhythm
from dispatch.units import demo_units, index_units
from geo.locator import Locator, OutsideCity
from tests.demo.replay import Replay
from tests.factories import rect_city

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
PHONE = re.compile(r"^1[3-9]\d{9}$")
CAL = files.calendar()


@pytest.fixture(scope="module")
def catalog():
    return files.catalog()


@pytest.fixture(scope="module")
def rect():
    return rect_city()


@pytest.fixture(scope="module")
def draws(catalog, demo_records):
    """10,000 reports over a week in the demo city (one per minute)."""
    sim = Simulator(catalog, demo_records, seed=2026, calendar=CAL)
    return sim, [(T0 + timedelta(minutes=i), sim.report(T0 + timedelta(minutes=i))) for i in range(10_000)]


# ---- determinism --------------------------------------------------------------------------

def test_same_seed_same_reports_other_seed_other_reports(catalog, rect):
    def run(seed):
        sim = Simulator(catalog, rect, seed=seed, calendar=CAL)
        times = sim.arrivals(T0, T0 + timedelta(hours=6), 2.0)
        return times, [sim.report(t) for t in times]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_a_case_plan_depends_on_the_case_not_on_the_order_of_calls(catalog, rect):
    a, b = Simulator(catalog, rect, seed=3, calendar=CAL), Simulator(catalog, rect, seed=3, calendar=CAL)
    cases = [_new_case(i, "020102", T0) for i in range(1, 30)]
    forward = [a.next_steps(c, T0) for c in cases]
    backward = [b.next_steps(c, T0) for c in reversed(cases)][::-1]
    assert forward == backward
    assert all(steps and isinstance(steps[0], Step) for steps in forward)


# ---- rhythm and arrivals ------------------------------------------------------------------

def _local(day_hour: float) -> datetime:
    return datetime(2026, 11, 23, tzinfo=SH) + timedelta(hours=day_hour)


def test_rhythm_peaks_in_office_hours_and_sleeps_at_night():
    minutes = [rhythm(_local(m / 60)) for m in range(24 * 60)]
    assert sum(minutes) / len(minutes) == pytest.approx(1.0, abs=0.01)  # rate stays the daily mean

    def mean(lo, hi):
        vals = [rhythm(_local(lo + (hi - lo) * k / 120)) for k in range(120)]
        return sum(vals) / len(vals)

    morning, afternoon, night = mean(8, 11), mean(14, 18), mean(0, 5)
    assert morning > 1.5 and afternoon > 1.5
    assert night < 0.2
    assert min(rhythm(_local(h)) for h in (9, 10, 15, 16)) > 5 * max(rhythm(_local(h)) for h in (1, 2, 3, 4))
    assert mean(12, 13.5) < min(morning, afternoon)  # lunch dip
    with pytest.raises(ValueError):
        rhythm(datetime(2026, 11, 23, 9))


def test_arrivals_follow_rate_times_rhythm(catalog, rect):
    sim = Simulator(catalog, rect, seed=5, calendar=CAL)
    start = datetime(2026, 11, 23, tzinfo=SH)
    times = sim.arrivals(start, start + timedelta(days=7), 2.0)
    assert len(times) == pytest.approx(2.0 * 60 * 24 * 7, rel=0.03)
    assert times == sorted(times) and all(start < t <= start + timedelta(days=7) for t in times)
    by_hour = Counter(t.astimezone(SH).hour for t in times)
    peak = sum(by_hour[h] for h in (8, 9, 10, 14, 15, 16, 17)) / 7
    night = sum(by_hour[h] for h in (0, 1, 2, 3, 4)) / 5
    assert peak > 10 * night
    assert sim.arrivals(start, start, 2.0) == [] and sim.arrivals(start, start + timedelta(hours=1), 0) == []


# ---- the mix --------------------------------------------------------------------------------

def test_category_mix_over_ten_thousand_draws(draws):
    sim, reports = draws
    kinds = Counter(sim.catalog[p["category"]].kind for _, p in reports)
    n = len(reports)
    for kind, share in KIND_SHARES.items():
        tolerance = 0.007 if kind == "emergency" else 0.02
        assert kinds[kind] / n == pytest.approx(share, abs=tolerance), kind
    assert kinds["event"] > kinds["component"] > kinds["grid"] > kinds["emergency"] > 0
    names = Counter(sim.catalog[p["category"]].name for _, p in reports)
    assert names.most_common(1)[0][0] == "暴露垃圾"
    assert names["路灯不亮"] > names["危险房屋"] * 5


def test_emergencies_always_have_a_severity_mostly_iv_and_others_none(draws):
    sim, reports = draws
    severities = Counter()
    for _, p in reports:
        if sim.catalog[p["category"]].is_emergency:
            assert p["severity"] in SEVERITY_SHARES
            severities[p["severity"]] += 1
        else:
            assert "severity" not in p
    total = sum(severities.values())
    assert total > 100
    assert severities[4] / total > 0.7
    assert severities[3] > severities[2]
    assert severities[2] / total < 0.08
    assert 1 not in severities


def test_every_payload_passes_intake_validation(draws):
    sim, reports = draws
    for at, p in reports:
        req = IntakeRequest.model_validate(p)
        assert req.category in sim.catalog
        assert req.description and len(req.description) <= 2000
        assert req.occurred_at is not None and req.occurred_at <= at
        assert req.reporter_phone is None or PHONE.match(req.reporter_phone)
        if req.source in ("hotline", "citizen"):
            assert req.reporter_phone is not None
        assert re.search(r"[\u4e00-\u9fff]", req.description)
    keys = [p["idempotency_key"] for _, p in reports]
    assert len(set(keys)) == len(keys)


def test_sources_follow_the_category(draws):
    sim, reports = draws
    by_source = Counter()
    for _, p in reports:
        cat = sim.catalog[p["category"]]
        by_source[(cat.kind, p["source"])] += 1
        if p["source"] == "iot":
            assert cat.kind in ("component", "emergency")
        if p["source"] == "video":
            assert cat.kind in ("event", "emergency")
        if cat.name == "路灯不亮":
            by_source[("street light", p["source"])] += 1
        if cat.major_class == "街面秩序":
            by_source[("street order", p["source"])] += 1
    assert by_source[("street light", "iot")] > 0 and by_source[("street order", "video")] > 0
    assert by_source[("grid", "patrol")] > by_source[("grid", "hotline")] > 0
    assert {s for _, s in by_source} >= {"hotline", "patrol", "citizen", "iot", "video"}


def test_points_are_inside_the_demo_city_and_follow_population(draws, demo_records):
    sim, reports = draws
    locator = Locator.from_records(demo_records)
    per_district = Counter()
    for _, p in reports:
        try:
            chain = locator.locate(p["lon"], p["lat"])
        except OutsideCity:
            pytest.fail(f"report outside the city: {p}")
        per_district[next(a.code for a in chain if a.level == 2)] += 1
    grids = [r for r in demo_records if r.level == 5]
    total = sum(g.population for g in grids)
    expected = Counter()
    for g in grids:
        expected[g.code[:6]] += g.population / total
    for code, share in expected.items():
        assert per_district[code] / len(reports) == pytest.approx(share, abs=0.02), code


def test_position_sampling_is_fast(catalog, demo_records):
    import time

    sim = Simulator(catalog, demo_records, seed=1, calendar=CAL)
    t = time.perf_counter()
    for _ in range(20_000):
        sim.draw_position()
    assert time.perf_counter() - t < 2.0


def test_about_three_percent_repeat_a_recent_report_a_few_metres_away(draws):
    sim, reports = draws
    dupes = [(at, p) for at, p in reports if p["description"].startswith("又有群众反映：")]
    assert 0.015 < len(dupes) / len(reports) < 0.045
    originals = {p["description"]: (at, p) for at, p in reports}
    for at, p in dupes:
        first_at, first = originals[p["description"].removeprefix("又有群众反映：")]
        assert first["category"] == p["category"]
        assert 2.9 <= haversine_m(p["lon"], p["lat"], first["lon"], first["lat"]) <= 30.5
        assert timedelta(0) <= at - first_at <= timedelta(hours=3)
        assert p.get("severity") == first.get("severity")


# ---- lifecycle decisions, walked through dispatch.lifecycle -----------------------------------

CHAIN = ("320402001001001", "320402001001", "320402001", "320402", "320400")
UNIT = "U-320402-city_management"
_CATALOG = files.catalog()
RATES = load_profile().rates
RULES = files.center_rules()


@pytest.fixture(scope="module")
def units(rect):
    """pick_unit over the default units of the rect city (as the runner and the backfill find them)."""
    return functools.partial(pick_unit, index_units(demo_units(rect, files.unit_types(), files.unit_patterns())))


def _iso(dt: datetime) -> str:
    return dt.astimezone(SH).isoformat(timespec="seconds")


class _Walked:
    """A case walked through plan_transition (tests/demo/replay.py), shown to next_steps as the service would."""

    def __init__(self, case_id: int, code: str, at: datetime, severity=None, source: str = "patrol"):
        cat = _CATALOG[code]
        self.id, self.kind = case_id, cat.kind
        self.replay = Replay(category=cat, chain=CHAIN, source=source, reported_at=at, unit_code=UNIT,
                             handling_level=cat.level, calendar=CAL, rules=RULES)
        self.steps: list[Step] = []

    def case(self) -> dict:
        return self.replay.case_dict(self.id, self.kind)

    def apply(self, step: Step) -> None:
        c = self.replay.col
        if step.role == "unit_handler":
            actor = lifecycle.Actor("u", "unit_handler", "320400", step.by_unit or c["unit_code"], 1)
        elif step.role == "grid_member":
            actor = lifecycle.Actor("g", "grid_member", CHAIN[0], None, 5)
        else:
            actor = lifecycle.Actor("o", step.role, "320400", None, 1)
        kw = {k: v for k, v in (("hours", step.hours), ("unit", step.unit), ("result", step.result),
                                ("satisfaction", step.satisfaction)) if v is not None}
        self.replay.act(step.action, actor, step.at, step.note, **kw)  # raises if the step is not legal
        self.steps.append(step)


def _new_case(case_id: int, code: str, at: datetime, severity=None) -> dict:
    return _Walked(case_id, code, at, severity).case()


def _walk(sim: Simulator, walked: _Walked) -> list[Step]:
    now = walked.replay.reported_at
    for _ in range(80):
        steps = sim.next_steps(walked.case(), now)
        if not steps:
            return walked.steps
        step = steps[0]
        if step.at < now:  # planned from when the case entered its state, before a wait: due now (as the runner does)
            step = dataclasses.replace(step, at=now)
        now = step.at
        walked.apply(step)
    pytest.fail(f"case {walked.id} never settled: {[s.action for s in walked.steps]}")


def test_walked_cases_take_only_legal_steps_at_the_advertised_rates(catalog, rect, units):
    sim = Simulator(catalog, rect, seed=99, calendar=CAL, units=units)
    gen = Simulator(catalog, rect, seed=100, key_prefix=None, calendar=CAL)
    cases = []
    at = T0 - timedelta(days=1)
    for i in range(1, 3001):
        at += timedelta(minutes=7)
        cat = gen.draw_category()
        w = _Walked(i, cat.code, at, gen.draw_severity() if cat.is_emergency else None, gen.draw_source(cat))
        _walk(sim, w)
        cases.append(w)
    final = Counter(w.replay.col["state"] for w in cases)
    assert set(final) <= {"closed", "rejected", "voided"}, final
    per_case = Counter(a for w in cases for a in {s.action for s in w.steps})
    actions = Counter(s.action for w in cases for s in w.steps)
    n = len(cases)
    people = sum(w.replay.source in RATES.check_sources for w in cases)

    def near(count, expected, slack=0.35):
        assert abs(count - expected) <= slack * expected + 5, (count, expected)

    near(per_case["verify_request"], RATES.check * people)                  # 核实
    assert per_case["report_check"] == per_case["verify_request"]
    near(final["rejected"], RATES.reject * (n - per_case["verify_request"]) + RATES.check_unfounded *
         per_case["verify_request"], 0.3)
    near(per_case["void"], RATES.void * per_case["accept"], 0.5)               # 作废
    near(per_case["return"], RATES.ret * per_case["dispatch"])                 # 退回, then 改派 or 驳回
    assert per_case["reassign"] + per_case["refuse_return"] == per_case["return"]
    near(per_case["reassign"], RATES.reassign_after_return * per_case["return"])
    near(per_case["rework"], RATES.rework * per_case["resolve"], 0.5)
    near(per_case["extend"], RATES.extend * per_case["sign"], 0.5)
    assert actions["approve_extension"] + actions["deny_extension"] == actions["extend"] and actions["deny_extension"]
    assert actions["approve_suspension"] + actions["deny_suspension"] == actions["request_suspension"] > 0
    assert actions["resume"] == actions["approve_suspension"]                   # 挂账, resumed days later
    assert actions["add_assist"] > 0 and actions["add_assist"] * 2 <= actions["sign"]
    callable_ = sum(w.replay.source in RATES.callback_sources for w in cases if "close" in {s.action for s in w.steps})
    near(per_case["callback"], RATES.callback * callable_, 0.1)                # 回访
    assert actions["reopen"] <= actions["callback"] * 0.1
    assert actions["close"] == final["closed"] + actions["reopen"]
    assert "escalate" not in actions  # a person's act with a reason; the scheduler urges and supervises
    # who does what
    roles = {"accept": "duty_officer", "reject": "duty_officer", "dispatch": "duty_officer", "close": "duty_officer",
             "approve_extension": "duty_officer", "deny_extension": "duty_officer", "verify_request": "duty_officer",
             "report_check": "grid_member", "void": "duty_officer", "reassign": "duty_officer",
             "refuse_return": "duty_officer", "approve_suspension": "duty_officer", "deny_suspension": "duty_officer",
             "resume": "duty_officer", "add_assist": "duty_officer", "callback": "duty_officer", "reopen": "duty_officer",
             "sign": "unit_handler", "resolve": "unit_handler", "return": "unit_handler", "extend": "unit_handler",
             "request_suspension": "unit_handler", "supervise": "leader"}
    for w in cases:
        for s in w.steps:
            assert s.role == roles.get(s.action, s.role), s
            if s.action in ("reject", "return", "rework", "resolve", "extend", "void", "reassign", "reopen"):
                assert s.note
            if s.by_unit is not None:
                assert s.action in ("sign", "resolve") and s.by_unit != w.replay.col["unit_code"]
    # deadlines: most cases close on time, and about 8 % of the resolutions come late
    closed = [w.replay.col for w in cases if w.replay.col["state"] == "closed"]
    on_time = sum(c["closed_at"] <= c["deadline_at"] for c in closed)
    assert on_time / len(closed) > 0.85
    late = sum(c["resolved_at"] > c["deadline_at"] for c in closed)
    assert 0.04 < late / len(closed) < 0.14
    # units sign within the hour of dispatch (in office time) and the center accepts within minutes
    cal = CAL
    for w in cases:
        h = w.replay.history
        for prev, row in zip(h, h[1:]):
            gap = row["at"] - prev["at"]
            if row["action"] == "accept" and prev["action"] == "report":
                assert gap <= timedelta(minutes=61)
            if row["action"] == "sign" and prev["action"] == "dispatch":
                worked = cal.working_time_between(prev["at"], row["at"], "working_hours")
                assert worked <= 1.0 or w.kind == "emergency"


def test_emergencies_move_in_minutes_round_the_clock(catalog, rect):
    sim = Simulator(catalog, rect, seed=4, calendar=CAL)
    night = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)  # Sunday 02:00 in Shanghai
    walked = _Walked(1, "040101", night, severity=4)
    _walk(sim, walked)
    case = walked.case()
    assert case["state"] == "closed"
    accepted = datetime.fromisoformat(next(h["at"] for h in case["history"] if h["action"] == "accept"))
    signed = datetime.fromisoformat(next(h["at"] for h in case["history"] if h["action"] == "sign"))
    assert accepted - night < timedelta(minutes=5) and signed - night < timedelta(minutes=15)


def test_no_steps_for_finished_cases_a_callback_for_people_and_a_leader_now_and_then(catalog, rect):
    sim = Simulator(catalog, rect, seed=1, calendar=CAL)
    for state in ("closed", "rejected", "merged", "suspended", "voided"):
        assert sim.next_steps({**_new_case(1, "020102", T0), "state": state}, T0) == []
    # a closed case of a caller is called back (回访), once per closing
    called = 0
    for i in range(200):
        case = {**_new_case(i, "020102", T0), "state": "closed", "source": "hotline", "closed_at": _iso(T0)}
        steps = sim.next_steps(case, T0)
        if steps:
            assert [s.action for s in steps] == ["callback"] and steps[0].satisfaction in lifecycle.SATISFACTION
            assert T0 < steps[0].at < T0 + timedelta(hours=RATES.callback_hours[1])
            called += 1
            later = {**case, "callback": {"result": "satisfied", "at": _iso(steps[0].at)}}
            assert sim.next_steps(later, steps[0].at) == []
    assert 0.9 * 200 <= called <= 200
    # a leader supervises a few cases in the unit's hands, before their deadline; the scheduler does the rest
    supervised = 0
    for i in range(2000):
        case = _new_case(i, "020102", T0)
        case.update(state="dispatched", dispatched_at=_iso(T0), history=case["history"] + [
            {"at": _iso(T0), "action": "accept", "from": "reported", "to": "accepted"},
            {"at": _iso(T0), "action": "dispatch", "from": "accepted", "to": "dispatched"}])
        deadline = datetime.fromisoformat(case["deadline"])
        for s in sim.next_steps(case, T0):
            if s.action == "supervise":
                assert s.role == "leader" and T0 < s.at < deadline
                supervised += 1
    assert 0.4 * RATES.leader_supervise * 2000 < supervised < 2 * RATES.leader_supervise * 2000


def test_without_triangulation_points_are_sampled_by_rejection(catalog, rect, monkeypatch):
    from shapely.geometry import Point

    from demo import simulator as mod

    monkeypatch.setattr(mod, "_triangles", lambda geometries: None)
    sim = Simulator(catalog, rect, seed=8, calendar=CAL)
    for _ in range(500):
        i, lon, lat = sim.draw_position()
        assert sim.grids[i].geometry.contains(Point(lon, lat))
