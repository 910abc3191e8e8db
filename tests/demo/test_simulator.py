"""The demo simulator (pure): determinism, the daily rhythm, the category mix, valid payloads inside
the city, severities, duplicates, and lifecycle decisions that are always legal and at the
advertised rates (walked through dispatch.lifecycle without a database)."""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cases.service import IntakeRequest, haversine_m
from dispatch import lifecycle
from data import files
from demo.simulator import KIND_SHARES, SEVERITY_SHARES, Simulator, Step, rhythm
from geo.locator import Locator, OutsideCity
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


def _iso(dt: datetime) -> str:
    return dt.astimezone(SH).isoformat(timespec="seconds")


def _new_case(case_id: int, code: str, at: datetime, severity=None) -> dict:
    cat = _CATALOG[code]
    deadline = CAL.working_deadline(at, cat.time_limit, cat.time_unit)
    return {"id": case_id, "state": "reported", "version": 1, "category": {"code": code, "kind": cat.kind},
            "kind": cat.kind, "severity": severity, "chain": [{"code": c} for c in CHAIN],
            "unit": {"code": UNIT}, "handling_level": cat.level, "deadline": _iso(deadline),
            "time_unit": cat.time_unit, "supervised": False, "extension_pending_hours": None,
            "extension_count": 0, "rework_count": 0, "escalation_count": 0,
            "reported_at": _iso(at), "updated_at": _iso(at),
            "history": [{"at": _iso(at), "actor": "sim", "action": "report", "from": None, "to": "reported"}]}


def _actor(step: Step, case: dict) -> lifecycle.Actor:
    if step.role == "unit_handler":
        return lifecycle.Actor("u", "unit_handler", "320400", case["unit"]["code"])
    if step.role == "grid_member":
        return lifecycle.Actor("g", "grid_member", CHAIN[0])
    return lifecycle.Actor("o", step.role, "320400")


def _apply(case: dict, step: Step) -> None:
    facts = lifecycle.CaseFacts(
        state=case["state"], version=case["version"], unit_code=case["unit"]["code"], area_codes=CHAIN,
        handling_level=case["handling_level"], supervised=case["supervised"],
        extension_pending_hours=case["extension_pending_hours"],
        deadline=datetime.fromisoformat(case["deadline"]), time_unit=case["time_unit"],
        rework_count=case["rework_count"], escalation_count=case["escalation_count"],
        extension_count=case["extension_count"])
    t = lifecycle.plan_transition(facts, step.action, _actor(step, case), note=step.note, hours=step.hours,
                                  unit=step.unit, now=step.at, calendar=CAL)  # raises if the step is not legal
    for key, value in t.changes.items():
        if key == "deadline_at":
            case["deadline"] = _iso(value)
        elif key == "unit_code":
            case["unit"] = {"code": value}
        elif key.endswith("_at"):
            case[key] = _iso(value)
        else:
            case[key] = value
    case["version"] += 1
    case["updated_at"] = _iso(step.at)
    case["history"].append({"at": _iso(step.at), "actor": step.role, "action": step.action,
                            "from": t.from_state, "to": t.to_state, "note": t.note})


def _walk(sim: Simulator, case: dict) -> list[Step]:
    done = []
    now = datetime.fromisoformat(case["reported_at"])
    for _ in range(60):
        steps = sim.next_steps(case, now)
        if not steps:
            return done
        step = steps[0]
        assert step.at >= now - timedelta(seconds=1), (step, case["state"])
        now = max(now, step.at)
        _apply(case, step)
        done.append(step)
    pytest.fail(f"case {case['id']} never settled: {[s.action for s in done]}")


def test_walked_cases_take_only_legal_steps_at_the_advertised_rates(catalog, rect):
    sim = Simulator(catalog, rect, seed=99, calendar=CAL)
    gen = Simulator(catalog, rect, seed=100, key_prefix=None, calendar=CAL)
    cases, walks = [], []
    at = T0 - timedelta(days=1)
    for i in range(1, 3001):
        at += timedelta(minutes=7)
        cat = gen.draw_category()
        case = _new_case(i, cat.code, at, gen.draw_severity() if cat.is_emergency else None)
        walks.append(_walk(sim, case))
        cases.append(case)
    final = Counter(c["state"] for c in cases)
    assert set(final) <= {"closed", "rejected"}
    actions = Counter(s.action for w in walks for s in w)
    n = len(cases)
    assert 0.015 < final["rejected"] / n < 0.05
    assert 0.015 < actions["return"] / n < 0.05
    assert 0.008 < actions["rework"] / n < 0.035
    assert 0.02 < actions["extend"] / n < 0.08
    assert actions["approve_extension"] == actions["extend"]
    assert actions["supervise"] > 0
    assert actions["close"] == final["closed"]
    # who does what
    for w in walks:
        for s in w:
            assert s.role == {"accept": "duty_officer", "reject": "duty_officer", "dispatch": "duty_officer",
                              "close": "duty_officer", "approve_extension": "duty_officer", "sign": "unit_handler",
                              "resolve": "unit_handler", "return": "unit_handler", "extend": "unit_handler",
                              "supervise": "leader"}.get(s.action, s.role)
            if s.action in ("reject", "return", "rework", "resolve", "extend"):
                assert s.note
    # deadlines: most cases close on time, and about 8 % of the resolutions come late
    closed = [c for c in cases if c["state"] == "closed"]
    on_time = sum(datetime.fromisoformat(c["closed_at"]) <= datetime.fromisoformat(c["deadline"]) for c in closed)
    assert on_time / len(closed) > 0.85
    late = sum(datetime.fromisoformat(c["resolved_at"]) > datetime.fromisoformat(c["deadline"]) for c in closed)
    assert 0.04 < late / len(closed) < 0.14
    # units sign within the hour of dispatch (in office time) and the center accepts within minutes
    cal = CAL
    for c in cases:
        h = c["history"]
        for prev, row in zip(h, h[1:]):
            gap = datetime.fromisoformat(row["at"]) - datetime.fromisoformat(prev["at"])
            if row["action"] == "accept":
                assert gap <= timedelta(minutes=61)
            if row["action"] == "sign" and prev["action"] == "dispatch":
                worked = cal.working_time_between(datetime.fromisoformat(prev["at"]),
                                                  datetime.fromisoformat(row["at"]), "working_hours")
                assert worked <= 1.0 or c["kind"] == "emergency"


def test_emergencies_move_in_minutes_round_the_clock(catalog, rect):
    sim = Simulator(catalog, rect, seed=4, calendar=CAL)
    night = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)  # Sunday 02:00 in Shanghai
    case = _new_case(1, "040101", night, severity=4)
    _walk(sim, case)
    assert case["state"] == "closed"
    accepted = datetime.fromisoformat(next(h["at"] for h in case["history"] if h["action"] == "accept"))
    signed = datetime.fromisoformat(next(h["at"] for h in case["history"] if h["action"] == "sign"))
    assert accepted - night < timedelta(minutes=5) and signed - night < timedelta(minutes=15)


def test_no_steps_for_finished_cases_and_an_overdue_case_gets_supervised(catalog, rect):
    sim = Simulator(catalog, rect, seed=1, calendar=CAL)
    for state in ("closed", "rejected", "merged", "suspended"):
        assert sim.next_steps({**_new_case(1, "020102", T0), "state": state}, T0) == []
    supervised = 0
    for i in range(200):
        case = _new_case(i, "020102", T0)
        case.update(state="dispatched", history=case["history"] + [
            {"at": _iso(T0), "action": "accept", "from": "reported", "to": "accepted"},
            {"at": _iso(T0), "action": "dispatch", "from": "accepted", "to": "dispatched"}])
        steps = sim.next_steps(case, T0)
        deadline = datetime.fromisoformat(case["deadline"])
        for s in steps:
            if s.action == "supervise":
                assert s.role == "leader" and s.at > deadline
                supervised += 1
    assert 60 < supervised < 140


def test_without_triangulation_points_are_sampled_by_rejection(catalog, rect, monkeypatch):
    from shapely.geometry import Point

    from demo import simulator as mod

    monkeypatch.setattr(mod, "_triangles", lambda geometries: None)
    sim = Simulator(catalog, rect, seed=8, calendar=CAL)
    for _ in range(500):
        i, lon, lat = sim.draw_position()
        assert sim.grids[i].geometry.contains(Point(lon, lat))
