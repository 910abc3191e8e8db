"""The alarm engine: per device and rule, the running state of a rule's condition and clear condition, stepped by readings into events.

Pure (no SQL, no clock of its own). What the engine keeps per (device, rule) is :class:`RuleState`: the run of
readings in which the rule's condition holds (its first reading's time and its length), the same for the clear
condition, whether an alarm of the rule is open, and the time of the last reading taken (a retry of readings
already taken is skipped, so it raises nothing twice). :func:`step` takes the state and new readings and
answers the new state and the events: ``raise`` (the condition is met and no alarm is open), ``update`` (met
again while one is open: the open alarm's values and severity are updated, no new alarm) and ``clear`` (the
clear condition is met while one is open: hysteresis, since the clear condition lies apart from the
condition). Timing is exactly :meth:`dispatch.devices.Condition.met` over the readings seen so far (tests hold
the two equal). Offline detection is :func:`silent_for_too_long` over a device's last message and now.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dispatch.devices import OFFLINE_RULE, Condition, DeviceType, Rule

__all__ = ["EMPTY_RUN", "IDLE", "OFFLINE_RULE", "AlarmEvent", "RuleState", "Run", "may_act", "merged_readings",
           "reset_after_manual_clear", "silent_for_too_long", "step", "step_rules"]



@dataclass(frozen=True)
class Run:
    """A run of consecutive readings in which a condition holds: its first reading's time and its length."""

    since: datetime | None = None
    count: int = 0

    def extend(self, holds: bool, at: datetime) -> "Run":
        if not holds:
            return EMPTY_RUN
        return Run(since=self.since if self.count else at, count=self.count + 1)


EMPTY_RUN = Run()


def _met(condition: Condition, run: Run, at: datetime) -> bool:
    """Whether `condition` is met at a reading at `at` that ends `run` (what Condition.met answers over the
    whole series, from the run alone)."""
    if run.count == 0:
        return False
    if condition.type == "simple":
        return True
    if condition.type == "repeating":
        return run.count >= condition.count
    return (at - run.since).total_seconds() >= condition.seconds


@dataclass(frozen=True)
class RuleState:
    """What the engine keeps per (device, rule) between readings (and across restarts, in the database)."""

    raise_run: Run = EMPTY_RUN
    clear_run: Run = EMPTY_RUN
    open: bool = False          # an alarm of this device and rule is open (active or acknowledged)
    last_ts: datetime | None = None  # the last reading taken

    @property
    def idle(self) -> bool:
        return not self.open and self.raise_run.count == 0 and self.clear_run.count == 0


IDLE = RuleState()


@dataclass(frozen=True)
class AlarmEvent:
    """What a reading did to a rule's alarm: ``raise``, ``update`` or ``clear``, at the reading's time, with the
    values that did it (the reading merged over the batch's earlier ones)."""

    kind: str
    rule: str
    severity: str
    at: datetime
    values: dict


def step(rule: Rule, state: RuleState, readings) -> tuple[RuleState, list[AlarmEvent]]:
    """The state after `readings` ((ts, values) oldest first) and the events they caused. A reading at or before
    the state's last one is skipped (a retry, or a late message: the engine only moves forward)."""
    events: list[AlarmEvent] = []
    for at, values in readings:
        if state.last_ts is not None and at <= state.last_ts:
            continue
        raise_run = state.raise_run.extend(rule.condition.holds(values), at)
        clear_run = state.clear_run.extend(state.open and rule.clear.holds(values), at)
        is_open = state.open
        if _met(rule.condition, raise_run, at):
            events.append(AlarmEvent("update" if is_open else "raise", rule.code, rule.severity, at, dict(values)))
            is_open, clear_run = True, EMPTY_RUN
        elif is_open and _met(rule.clear, clear_run, at):
            events.append(AlarmEvent("clear", rule.code, rule.severity, at, dict(values)))
            is_open, clear_run = False, EMPTY_RUN
        state = RuleState(raise_run=raise_run, clear_run=clear_run, open=is_open, last_ts=at)
    return state, events


def merged_readings(readings, before: dict | None = None) -> list[tuple[datetime, dict]]:
    """Each reading as the device's latest value of every key at its time (Condition.met's readings): a
    reading that carries some keys only keeps the others from the readings before it (and from `before`,
    the device's values before the batch, when the caller knows them)."""
    out, latest = [], dict(before or {})
    for at, values in readings:
        latest = {**latest, **values}
        out.append((at, latest))
    return out


def may_act(device_type: DeviceType, readings, before: dict | None = None) -> bool:
    """Whether some rule's condition holds at some reading, each merged as :func:`merged_readings` merges it (when
    none does, the readings can only break runs: the caller's quick test before it reads any state)."""
    latest = before or None
    holds = device_type.any_condition_holds
    for _at, values in readings:
        # the first reading with nothing before it is its own merged reading: no copy
        latest = {**latest, **values} if latest else values
        if holds(latest):
            return True
    return False


def step_rules(device_type: DeviceType, states: dict[str, RuleState], readings,
               before: dict | None = None) -> tuple[dict[str, RuleState], list[AlarmEvent]]:
    """:func:`step` for every rule of the type; `states` by rule code (a missing one is idle). Answers the new
    states of every rule and the events of all, in time order (a rule's before the next's at one time)."""
    series = merged_readings(readings, before)
    new, events = {}, []
    for rule in device_type.rules:
        new[rule.code], evs = step(rule, states.get(rule.code, IDLE), series)
        events.extend(evs)
    events.sort(key=lambda e: e.at)  # stable: at one time, the rules keep the file's order
    return new, events


def reset_after_manual_clear(state: RuleState) -> RuleState:
    """A person cleared the alarm: it is closed, and the condition must be met anew from the next reading
    (a duration for its whole length again) before the rule raises again — else a persisting condition
    would raise a new alarm at the very next message, against the person's judgement."""
    return replace(state, open=False, raise_run=EMPTY_RUN, clear_run=EMPTY_RUN)


def silent_for_too_long(last_seen: datetime | None, now: datetime, offline_after_s: int) -> bool:
    """Whether a device last heard at `last_seen` has been silent longer than its type allows at `now`
    (a device never heard is offline from the start: the registry imports it so)."""
    return last_seen is None or now - last_seen > timedelta(seconds=offline_after_s)
