"""The alarm engine (dispatch/alarms.py): hand cases of each condition type, hysteresis, retries, offline, and every
shipped rule checked against the reference timing dispatch.devices.Condition.met on random series."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from data import files
from dispatch.alarms import (IDLE, RuleState, may_act, merged_readings, reset_after_manual_clear, silent_for_too_long,
                             step, step_rules)

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def types():
    return files.device_types()


def rule_of(types, code):
    return next(r for t in types.values() for r in t.rules if r.code == code)


def series(*pairs, key="tilt_deg", start=T0):
    """[(seconds after start, value)] as readings of one key."""
    return [(start + timedelta(seconds=s), {key: v}) for s, v in pairs]


def kinds(events):
    return [(e.kind, int((e.at - T0).total_seconds())) for e in events]


def test_tilt_for_one_second_then_back_raises_nothing(types):
    rule = rule_of(types, "cover_tilt")  # > 15° for 2 s; clear at <= 5° for 10 s
    state, events = step(rule, IDLE, series((0, 20), (1, 20), (2, 0), (3, 0)))
    assert events == [] and not state.open and state.raise_run.count == 0


def test_tilt_for_three_seconds_raises_and_clears_only_after_ten_seconds_level(types):
    rule = rule_of(types, "cover_tilt")
    state, events = step(rule, IDLE, series((0, 20), (1, 20), (2, 20), (3, 20)))
    assert kinds(events) == [("raise", 2), ("update", 3)]  # fires again while open: an update, not a new alarm
    assert state.open and events[0].severity == "critical" and events[0].values == {"tilt_deg": 20}
    # 8° is in the band between the conditions: neither raises nor clears
    state, events = step(rule, state, series((4, 8), (5, 4), (10, 4), (14, 4)))
    assert events == [] and state.open
    state, events = step(rule, state, series((15, 4)))
    assert kinds(events) == [("clear", 15)] and not state.open  # 5 s … 15 s: ten seconds at <= 5°


def test_a_break_restarts_the_clear_run(types):
    rule = rule_of(types, "cover_tilt")
    state, _ = step(rule, IDLE, series((0, 30), (2, 30)))
    state, events = step(rule, state, series((3, 2), (9, 2), (10, 9), (11, 2), (20, 2), (21, 2)))
    assert kinds(events) == [("clear", 21)]  # the run restarted at 11 s after the 9° at 10 s


def test_repeating_and_simple(types):
    gas1 = rule_of(types, "gas_level1")  # >= 20 twice in a row; clear < 10 three in a row
    state, events = step(gas1, IDLE, series((0, 25), (10, 5), (20, 25), (30, 22), key="gas_lel_pct"))
    assert kinds(events) == [("raise", 30)]
    state, events = step(gas1, state, series((40, 5), (50, 5), (60, 15), (70, 5), (80, 5), (90, 5), key="gas_lel_pct"))
    assert kinds(events) == [("clear", 90)]
    gas2 = rule_of(types, "gas_level2")  # >= 50 at one message
    state, events = step(gas2, IDLE, series((0, 55), key="gas_lel_pct"))
    assert kinds(events) == [("raise", 0)] and events[0].severity == "critical"


def test_a_retry_of_the_same_readings_is_skipped(types):
    rule = rule_of(types, "gas_level2")
    readings = series((0, 60), (10, 70), key="gas_lel_pct")
    state, events = step(rule, IDLE, readings)
    assert kinds(events) == [("raise", 0), ("update", 10)]
    again, events = step(rule, state, readings)
    assert events == [] and again == state


def test_a_manual_clear_needs_the_condition_met_anew(types):
    rule = rule_of(types, "cover_tilt")
    state, _ = step(rule, IDLE, series((0, 30), (2, 30)))
    state = reset_after_manual_clear(state)
    state, events = step(rule, state, series((3, 30)))
    assert events == []  # not at once: two seconds again
    state, events = step(rule, state, series((5, 30)))
    assert kinds(events) == [("raise", 5)]


def test_a_partial_reading_keeps_the_other_keys(types):
    light = types["street_light"]  # light_out: on and < 0.05 A for 15 min
    readings = [(T0, {"lamp_on": True, "current_a": 0.0}), (T0 + timedelta(minutes=10), {"current_a": 0.01}),
                (T0 + timedelta(minutes=15), {"current_a": 0.0})]
    assert merged_readings(readings)[1][1] == {"lamp_on": True, "current_a": 0.01}
    _, events = step_rules(light, {}, readings)
    assert kinds(events) == [("raise", 900)]
    _, events = step_rules(light, {}, readings[1:], before={"lamp_on": True})
    assert events == []  # the run starts at 10 min when the lamp's state is only known from before


def test_offline(types):
    silence = types["gas_detector"].offline_after_s
    assert not silent_for_too_long(T0, T0 + timedelta(seconds=silence), silence)
    assert silent_for_too_long(T0, T0 + timedelta(seconds=silence + 1), silence)
    assert silent_for_too_long(None, T0, silence)


def _reference(rule, readings):
    """The events Condition.met implies at each reading of the whole series (the engine must agree)."""
    out, open_, since = [], False, 0
    numeric = [((at - T0).total_seconds(), values) for at, values in readings]  # met takes seconds
    for i in range(len(readings)):
        at = readings[i][0]
        if rule.condition.met(numeric[:i + 1]):
            out.append(("update" if open_ else "raise", at))
            open_, since = True, i + 1
        elif open_ and rule.clear.met(numeric[since:i + 1]):
            out.append(("clear", at))
            open_ = False
    return out


def _random_value(spec, rng, predicates):
    """A value of a key near the thresholds the rule tests (so that runs form and break)."""
    if spec.kind == "bool":
        return rng.random() < 0.5
    if spec.kind == "string":
        wanted = [p.value for p in predicates if p.key == spec.key]
        return rng.choice(wanted + list(spec.values or ("x",))) if rng.random() < 0.7 and wanted else \
            rng.choice(list(spec.values or ("x",)))
    marks = [float(p.value) for p in predicates if p.key == spec.key] or [spec.low, spec.high]
    m = rng.choice(marks)
    width = max(abs(m) * 0.5, (spec.high - spec.low) * 0.02)
    return min(spec.high, max(spec.low, round(m + rng.uniform(-width, width), 3)))


@pytest.mark.parametrize("seed", range(6))
def test_every_shipped_rule_agrees_with_the_reference(types, seed):
    rng = random.Random(seed)
    for dtype in types.values():
        for rule in dtype.rules:
            preds = rule.condition.predicates + rule.clear.predicates
            for _ in range(15):
                at, readings = T0, []
                hold = None
                for _ in range(rng.randint(1, 40)):
                    # steps of 1 s … 5 min, and stretches of one value, so that durations are reached
                    at += timedelta(seconds=rng.choice((1, 1, 2, 5, 30, 60, 300)))
                    if hold is None or rng.random() < 0.4:
                        hold = {k.key: _random_value(k, rng, preds) for k in dtype.keys}
                    readings.append((at, dict(hold)))
                expected = _reference(rule, readings)
                # fed in random batches, the state carried between them as the database carries it
                state, got, i = IDLE, [], 0
                while i < len(readings):
                    j = i + rng.randint(1, 6)
                    state, events = step(rule, state, readings[i:j])
                    got.extend((e.kind, e.at) for e in events)
                    i = j
                assert got == expected, (rule.code, readings)
                assert isinstance(state, RuleState)


@pytest.mark.parametrize("seed", range(3))
def test_the_quick_test_agrees_with_the_predicates_one_by_one(types, seed):
    """Condition.holds (one loop over plain tuples) and may_act answer what Predicate.holds and merged_readings
    answer, also for missing keys, flags against numbers, strings against numbers and nulls."""
    rng = random.Random(seed)
    odd = (None, True, False, "x", "smoke", 0, 1, -1.5, [1], {"a": 1})
    for dtype in types.values():
        preds = [p for r in dtype.rules for p in r.condition.predicates + r.clear.predicates]
        for _ in range(300):
            values = {k.key: (rng.choice(odd) if rng.random() < 0.2 else _random_value(k, rng, preds))
                      for k in dtype.keys if rng.random() < 0.8}
            for rule in dtype.rules:
                for cond in (rule.condition, rule.clear):
                    assert cond.holds(values) == all(p.holds(values) for p in cond.predicates), (cond, values)
            assert dtype.any_condition_holds(values) == any(r.condition.holds(values) for r in dtype.rules)
        for _ in range(100):
            readings = [(T0 + timedelta(seconds=i), {k.key: _random_value(k, rng, preds) for k in dtype.keys
                                                     if rng.random() < 0.5}) for i in range(rng.randint(1, 4))]
            before = rng.choice((None, {}, {k.key: _random_value(k, rng, preds) for k in dtype.keys}))
            assert may_act(dtype, readings, before) == any(
                r.condition.holds(v) for _, v in merged_readings(readings, before) for r in dtype.rules)
