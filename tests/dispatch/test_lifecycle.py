"""Case lifecycle: every (action, state) pair, every role, scope, escalation, extensions, paths."""
from __future__ import annotations

import ast
import dataclasses
import itertools
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from data import files
from dispatch import lifecycle as lc
from dispatch.lifecycle import (
    ACTION_LABELS,
    ACTIONS,
    OPEN_STATES,
    ROLE_LABELS,
    RULES,
    STATE_LABELS,
    STATES,
    SYSTEM_ACTOR,
    TERMINAL_STATES,
    Actor,
    CaseFacts,
    Transition,
    TransitionRefused,
    allowed_actions,
    plan_transition,
)

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
NOW = datetime(2025, 3, 12, 2, 0, tzinfo=UTC)          # Wednesday 10:00 in Shanghai

GRID, COMMUNITY, STREET, DISTRICT, CITY = (
    "320402001001001", "320402001001", "320402001", "320402", "320400")
CHAIN = (GRID, COMMUNITY, STREET, DISTRICT, CITY)
OTHER_GRID = "320402001001002"       # same community, another grid
OTHER_DISTRICT = "320404"
UNIT = "U-320402-city_management"
OTHER_UNIT = "U-320402-housing"

ALL_ROLES = ("admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall", "system")

# The semantics, written out independently of lifecycle.RULES.
EXPECTED_MOVES = {
    "accept": {"reported": "accepted"},
    "reject": {"reported": "rejected"},
    "dispatch": {s: "dispatched" for s in ("accepted", "returned", "rework", "suspended")},
    "sign": {"dispatched": "signed"},
    "resolve": {"signed": "resolved"},
    "return": {"dispatched": "returned", "signed": "returned"},
    "verify": {"resolved": "verified"},
    "rework": {"resolved": "rework"},
    "close": {"verified": "closed"},
    "escalate": {s: s for s in ("accepted", "dispatched", "signed", "returned", "rework")},
    "extend": {"dispatched": "dispatched", "signed": "signed"},
    "approve_extension": {"dispatched": "dispatched", "signed": "signed"},
    "suspend": {s: "suspended" for s in ("accepted", "dispatched", "signed", "returned", "rework")},
    "supervise": {s: s for s in ("reported", "accepted", "dispatched", "signed", "resolved",
                                 "verified", "rework", "returned", "suspended")},
}
EXPECTED_ROLES = {
    "accept": {"duty_officer", "admin"},
    "reject": {"duty_officer", "admin"},
    "dispatch": {"duty_officer", "admin"},
    "sign": {"unit_handler", "admin"},
    "resolve": {"unit_handler", "admin"},
    "return": {"unit_handler"},
    "verify": {"duty_officer", "grid_member", "admin"},
    "rework": {"duty_officer", "grid_member", "admin"},
    "close": {"duty_officer", "admin"},
    "escalate": {"duty_officer", "leader", "admin", "system"},
    "extend": {"unit_handler"},
    "approve_extension": {"duty_officer", "admin"},
    "suspend": {"duty_officer", "admin"},
    "supervise": {"leader", "duty_officer", "admin"},
}
NEEDS_NOTE = {"reject", "resolve", "return", "rework", "extend", "suspend"}


def actor(role: str, area: str = DISTRICT, unit: str | None = None) -> Actor:
    if role == "system":
        return SYSTEM_ACTOR
    if role == "unit_handler" and unit is None:
        unit = UNIT
    if role == "grid_member" and area == DISTRICT:
        area = GRID
    return Actor(ident=f"user:{role}", role=role, area_code=area, unit_code=unit)


def facts(state: str, **kw) -> CaseFacts:
    base = dict(state=state, version=3, unit_code=UNIT, area_codes=CHAIN, handling_level=3,
                supervised=False, extension_pending_hours=None,
                deadline=datetime(2025, 3, 12, 8, 0, tzinfo=UTC), time_unit="working_hours",
                rework_count=1, escalation_count=1, extension_count=0)
    base.update(kw)
    return CaseFacts(**base)


def facts_for(action: str, state: str) -> CaseFacts:
    """Facts under which ``action`` is legal whenever ``state`` is one of its start states."""
    if action == "approve_extension":
        return facts(state, extension_pending_hours=4)
    return facts(state)


def params(action: str) -> dict:
    """Good parameters for ``action``."""
    out = {"note": f"{ACTION_LABELS[action]}的说明"}
    if action == "extend":
        out["hours"] = 4
    if action == "dispatch":
        out["unit"] = OTHER_UNIT
    return out


def plan(f: CaseFacts, action: str, who: Actor, **kw) -> Transition:
    kw.setdefault("now", NOW)
    kw.setdefault("calendar", files.calendar())
    return plan_transition(f, action, who, **kw)


def refused(status: int, f: CaseFacts, action: str, who: Actor, **kw) -> TransitionRefused:
    with pytest.raises(TransitionRefused) as info:
        plan(f, action, who, **kw)
    err = info.value
    assert err.status == status, err
    assert err.code and err.message and str(err) == err.message
    return err


def a_permitted_role(action: str) -> str:
    for role in ("admin", "duty_officer", "unit_handler", "leader", "system"):
        if role in EXPECTED_ROLES[action]:
            return role
    raise AssertionError(action)


def expected_changes(action: str, f: CaseFacts, to_state: str) -> dict:
    ch: dict = {}
    if to_state != f.state:
        ch["state"] = to_state
    stamp = {"accepted": "accepted_at", "rejected": "rejected_at", "dispatched": "dispatched_at",
             "resolved": "resolved_at", "closed": "closed_at"}.get(to_state)
    if stamp and to_state != f.state:
        ch[stamp] = NOW
    if action == "dispatch":
        ch["unit_code"] = OTHER_UNIT
    elif action == "rework":
        ch["rework_count"] = f.rework_count + 1
    elif action == "escalate":
        ch.update(handling_level=f.handling_level - 1, escalation_count=f.escalation_count + 1)
    elif action == "extend":
        ch["extension_pending_hours"] = 4
    elif action == "approve_extension":
        # Wednesday 16:00 + 4 working hours: 1.5 h to 17:30, then 2.5 h from Thursday 08:30
        ch.update(deadline_at=datetime(2025, 3, 13, 11, 0, tzinfo=SH), extension_count=1,
                  extension_pending_hours=None)
    elif action == "supervise":
        ch["supervised"] = True
    return ch


# ----------------------------------------------------------------------------------------
# the data

def test_states_actions_and_labels_are_complete():
    assert set(STATES) == {"reported", "accepted", "rejected", "merged", "dispatched", "signed",
                           "resolved", "verified", "closed", "rework", "returned", "suspended"}
    assert set(TERMINAL_STATES) == {"rejected", "merged", "closed"}
    assert set(OPEN_STATES) == set(STATES) - set(TERMINAL_STATES)
    assert set(ACTIONS) == set(EXPECTED_MOVES) == set(RULES)
    assert set(STATE_LABELS) == set(STATES) and all(STATE_LABELS.values())
    assert set(ACTION_LABELS) == set(ACTIONS) and all(ACTION_LABELS.values())
    assert set(ROLE_LABELS) == set(ALL_ROLES)
    assert STATE_LABELS["closed"] == "已结案" and ACTION_LABELS["dispatch"] == "派遣"
    assert ROLE_LABELS["wall"] == "大屏"
    for action, rule in RULES.items():
        assert rule.action == action
        assert set(rule.from_states) <= set(STATES)
        assert rule.to_state is None or rule.to_state in STATES
        assert set(rule.roles) <= set(ALL_ROLES)
        assert rule.needs_note == (action in NEEDS_NOTE)
        assert not set(rule.from_states) & set(TERMINAL_STATES), "nothing leaves a terminal state"


def test_dispatch_core_stays_pure():
    tree = ast.parse(Path(lc.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"flask", "dash", "socketio", "flask_socketio", "sqlalchemy", "data"}


# ----------------------------------------------------------------------------------------
# every (action, state) pair

@pytest.mark.parametrize("action,state", list(itertools.product(ACTIONS, STATES)))
def test_every_action_in_every_state(action, state):
    f = facts_for(action, state)
    who = actor(a_permitted_role(action))
    to_state = EXPECTED_MOVES[action].get(state)
    if to_state is None:
        err = refused(422, f, action, who, **params(action))
        assert err.code == "illegal_transition"
        assert f"「{STATE_LABELS[state]}」" in err.message
        assert f"「{ACTION_LABELS[action]}」" in err.message
        assert action not in allowed_actions(f, who)
        return
    t = plan(f, action, who, **params(action))
    assert (t.action, t.from_state, t.to_state) == (action, state, to_state)
    assert t.moves == (state != to_state)
    assert t.changes == expected_changes(action, f, to_state)
    assert t.note == params(action)["note"]
    assert action in allowed_actions(f, who)


def test_refusal_message_is_readable():
    err = refused(422, facts("closed"), "dispatch", actor("duty_officer"), unit=UNIT)
    assert err.message.startswith("案件当前状态为「已结案」，不能执行「派遣」")


# ----------------------------------------------------------------------------------------
# every role x action

@pytest.mark.parametrize("action,role", list(itertools.product(ACTIONS, ALL_ROLES)))
def test_every_role_for_every_action(action, role):
    state = RULES[action].from_states[0]
    f = facts_for(action, state)
    who = actor(role)
    if role in EXPECTED_ROLES[action]:
        t = plan(f, action, who, **params(action))
        assert t.to_state == EXPECTED_MOVES[action][state]
    else:
        err = refused(403, f, action, who, **params(action))
        assert err.code == "forbidden_role"
        assert err.message == f"角色「{ROLE_LABELS[role]}」无权执行「{ACTION_LABELS[action]}」"


def test_wall_may_do_nothing_and_grid_member_only_checks():
    for state in STATES:
        for f in (facts(state), facts(state, extension_pending_hours=2.5)):
            assert allowed_actions(f, actor("wall")) == []
            assert set(allowed_actions(f, actor("grid_member"))) <= {"verify", "rework"}
            assert set(allowed_actions(f, SYSTEM_ACTOR)) <= {"escalate"}
    assert allowed_actions(facts("resolved"), actor("grid_member")) == ["verify", "rework"]


def test_role_refusal_comes_before_state_refusal():
    err = refused(403, facts("closed"), "accept", actor("wall"))
    assert err.message == "角色「大屏」无权执行「立案」"


def test_unknown_role_is_refused():
    err = refused(403, facts("reported"), "accept", Actor("x", "citizen", DISTRICT))
    assert "citizen" in err.message


# ----------------------------------------------------------------------------------------
# scope

@pytest.mark.parametrize("role", ["duty_officer", "leader", "unit_handler", "grid_member"])
@pytest.mark.parametrize("area", [OTHER_DISTRICT, OTHER_GRID, "", "3204"])
def test_another_area_is_refused(role, area):
    action = {"duty_officer": "accept", "leader": "supervise", "unit_handler": "sign",
              "grid_member": "verify"}[role]
    state = RULES[action].from_states[0]
    err = refused(403, facts(state), action, actor(role, area=area))
    assert (err.code, err.message) == ("out_of_area", "该案件不在您的辖区内")
    assert allowed_actions(facts(state), actor(role, area=area)) == []


@pytest.mark.parametrize("area", CHAIN)
def test_every_node_of_the_chain_is_in_scope(area):
    assert plan(facts("reported"), "accept", actor("duty_officer", area=area)).to_state == "accepted"


def test_admin_and_system_act_everywhere():
    far = Actor("admin:1", "admin", OTHER_DISTRICT)
    assert plan(facts("reported"), "accept", far).to_state == "accepted"
    assert plan(facts("dispatched"), "sign", far).to_state == "signed"
    assert plan(facts("accepted"), "escalate", SYSTEM_ACTOR).changes["handling_level"] == 2


@pytest.mark.parametrize("action,state", [("sign", "dispatched"), ("resolve", "signed"),
                                          ("return", "dispatched"), ("extend", "signed")])
@pytest.mark.parametrize("unit", [OTHER_UNIT, None])
def test_another_unit_is_refused(action, state, unit):
    who = Actor("user:h", "unit_handler", DISTRICT, unit)
    err = refused(403, facts(state), action, who, **params(action))
    assert (err.code, err.message) == ("not_your_unit", "该案件不属于您的单位")
    assert allowed_actions(facts(state), who) == []
    # a case without a unit belongs to no handler
    err = refused(403, facts(state, unit_code=None), action, actor("unit_handler"), **params(action))
    assert err.code == "not_your_unit"


# ----------------------------------------------------------------------------------------
# escalation

def test_escalation_climbs_to_the_city_and_stops():
    f = facts("dispatched", handling_level=5, escalation_count=0)
    levels = []
    for _ in range(4):
        t = plan(f, "escalate", actor("duty_officer"))
        assert t.to_state == "dispatched" and "state" not in t.changes
        assert t.details["from_level"] == f.handling_level
        f = dataclasses.replace(f, handling_level=t.changes["handling_level"],
                                escalation_count=t.changes["escalation_count"])
        levels.append(f.handling_level)
    assert levels == [4, 3, 2, 1] and f.escalation_count == 4
    for who in (actor("duty_officer"), actor("leader"), SYSTEM_ACTOR, actor("admin")):
        err = refused(422, f, "escalate", who)
        assert err.code == "escalation_limit" and "市级" in err.message
        assert "escalate" not in allowed_actions(f, who)


def test_automatic_escalation_is_marked():
    t = plan(facts("signed"), "escalate", SYSTEM_ACTOR)
    assert t.details["automatic"] is True
    assert plan(facts("signed"), "escalate", actor("leader")).details["automatic"] is False


def test_escalation_without_a_handling_level_is_refused():
    err = refused(422, facts("accepted", handling_level=None), "escalate", actor("duty_officer"))
    assert err.code == "no_handling_level"


# ----------------------------------------------------------------------------------------
# extensions

def apply(f: CaseFacts, t: Transition) -> CaseFacts:
    """What the service does with a transition (field names of CaseFacts)."""
    rename = {"deadline_at": "deadline"}
    known = {fl.name for fl in dataclasses.fields(CaseFacts)}
    upd = {rename.get(k, k): v for k, v in t.changes.items()}
    return dataclasses.replace(f, version=f.version + 1,
                               **{k: v for k, v in upd.items() if k in known})


def test_extension_moves_the_deadline_across_a_weekend():
    friday = datetime(2025, 3, 14, 16, 30, tzinfo=SH)
    f = facts("signed", deadline=friday.astimezone(UTC), extension_count=0)
    handler, officer = actor("unit_handler"), actor("duty_officer")
    assert "approve_extension" not in allowed_actions(f, officer)
    err = refused(422, f, "approve_extension", officer)
    assert err.code == "no_extension_pending"

    t = plan(f, "extend", handler, hours=4, note="需协调供电部门")
    assert t.to_state == "signed" and t.changes == {"extension_pending_hours": 4}
    assert t.details["hours"] == 4
    f = apply(f, t)

    err = refused(422, f, "extend", handler, hours=2, note="再延")
    assert err.code == "extension_pending" and "待审批" in err.message
    assert "extend" not in allowed_actions(f, handler)
    assert "approve_extension" in allowed_actions(f, officer)

    t = plan(f, "approve_extension", officer)
    # Friday 16:30 → 17:30 is one working hour; three more on Monday from 08:30
    assert t.changes["deadline_at"] == datetime(2025, 3, 17, 11, 30, tzinfo=SH)
    assert t.changes["deadline_at"].tzinfo == UTC
    assert t.changes["extension_count"] == 1 and t.changes["extension_pending_hours"] is None
    f = apply(f, t)

    # a second request after the approval is allowed again
    t = plan(f, "extend", handler, hours=7.5, note="材料未到")
    f = apply(f, t)
    t = plan(f, "approve_extension", officer)
    assert t.changes["deadline_at"] == datetime(2025, 3, 18, 11, 30, tzinfo=SH)
    assert t.changes["extension_count"] == 2


def test_extension_skips_public_holidays():
    # National Day 2025: 10-01..10-08 off; 2 working hours from 09-30 17:00 → 10-09 10:00
    f = facts("dispatched", deadline=datetime(2025, 9, 30, 17, 0, tzinfo=SH),
              extension_pending_hours=2)
    t = plan(f, "approve_extension", actor("admin"))
    assert t.changes["deadline_at"] == datetime(2025, 10, 9, 10, 0, tzinfo=SH)


def test_emergency_extension_counts_calendar_minutes():
    saturday_night = datetime(2025, 3, 15, 23, 0, tzinfo=SH)
    f = facts("dispatched", deadline=saturday_night, time_unit="minutes",
              extension_pending_hours=1.5)
    t = plan(f, "approve_extension", actor("duty_officer"))
    assert t.changes["deadline_at"] == saturday_night + timedelta(minutes=90)


@pytest.mark.parametrize("time_unit", ["hours", "days"])
def test_calendar_clock_extension_counts_calendar_hours_over_a_holiday(time_unit):
    # a calendar-clock category (井盖缺失) extended by 2 h on the eve of National Day: 2 h later that
    # night, not 2 working hours after the holiday (10-09 10:00, as above)
    f = facts("dispatched", deadline=datetime(2025, 9, 30, 17, 0, tzinfo=SH), time_unit=time_unit,
              extension_pending_hours=2)
    t = plan(f, "approve_extension", actor("admin"))
    assert t.changes["deadline_at"] == datetime(2025, 9, 30, 19, 0, tzinfo=SH)


def test_extension_needs_a_deadline():
    f = facts("signed", deadline=None)
    assert refused(422, f, "extend", actor("unit_handler"), hours=2, note="x").code == "no_deadline"
    f = facts("signed", deadline=None, extension_pending_hours=2)
    assert refused(422, f, "approve_extension", actor("admin")).code == "no_deadline"


@pytest.mark.parametrize("action,to_state", [("resolve", "resolved"), ("return", "returned")])
def test_leaving_the_unit_drops_a_pending_request(action, to_state):
    f = facts("signed", extension_pending_hours=3)
    t = plan(f, action, actor("unit_handler"), note="说明")
    assert t.to_state == to_state and t.changes["extension_pending_hours"] is None
    t = plan(f, "suspend", actor("duty_officer"), note="说明")
    assert t.changes["extension_pending_hours"] is None
    # staying actions keep it
    assert "extension_pending_hours" not in plan(f, "escalate", actor("leader")).changes


# ----------------------------------------------------------------------------------------
# parameters

@pytest.mark.parametrize("action", sorted(NEEDS_NOTE))
@pytest.mark.parametrize("note", ["", "   ", "\n\t"])
def test_missing_note_is_400(action, note):
    state = RULES[action].from_states[0]
    p = params(action) | {"note": note}
    err = refused(400, facts_for(action, state), action, actor(a_permitted_role(action)), **p)
    assert err.code == "note_required" and ACTION_LABELS[action] in err.message
    if action == "return":
        assert "退回理由" in err.message


@pytest.mark.parametrize("hours", [None, 0, -1, -0.5, float("nan"), float("inf"), "4", True,
                                   lc.MAX_EXTENSION_HOURS + 1])
def test_bad_hours_are_400(hours):
    err = refused(400, facts("dispatched"), "extend", actor("unit_handler"), hours=hours,
                  note="需要更多时间")
    assert err.code == "invalid_hours"


def test_unknown_action_is_400():
    for bad in ("merge", "", "ACCEPT", None):
        assert refused(400, facts("reported"), bad, actor("admin")).code == "unknown_action"


def test_dispatch_needs_a_unit_somewhere():
    f = facts("accepted", unit_code=None)
    err = refused(400, f, "dispatch", actor("duty_officer"))
    assert err.code == "unit_required"
    t = plan(f, "dispatch", actor("duty_officer"), unit=UNIT)
    assert t.changes["unit_code"] == UNIT and t.details["unit"] == UNIT
    # the routed unit is kept when none is given
    t = plan(facts("accepted"), "dispatch", actor("duty_officer"))
    assert "unit_code" not in t.changes and t.details["unit"] == UNIT


def test_now_must_be_aware_and_is_stored_in_utc():
    with pytest.raises(ValueError):
        plan(facts("reported"), "accept", actor("admin"), now=datetime(2025, 3, 12, 10, 0))
    t = plan(facts("reported"), "accept", actor("admin"), now=datetime(2025, 3, 12, 10, 0, tzinfo=SH))
    assert t.changes["accepted_at"] == NOW and t.changes["accepted_at"].tzinfo == UTC


def test_supervise_twice_is_refused():
    officer = actor("leader")
    t = plan(facts("dispatched"), "supervise", officer)
    assert t.changes == {"supervised": True} and t.to_state == "dispatched"
    f = facts("dispatched", supervised=True)
    err = refused(422, f, "supervise", officer)
    assert err.code == "already_supervised"
    assert "supervise" not in allowed_actions(f, officer)


# ----------------------------------------------------------------------------------------
# paths

def run(f: CaseFacts, steps) -> CaseFacts:
    for action, who, kw in steps:
        t = plan(f, action, who, **kw)
        f = apply(f, t)
        assert f.state == t.to_state
    return f


def test_happy_path_with_one_rework():
    officer, handler, grid = actor("duty_officer"), actor("unit_handler"), actor("grid_member")
    f = facts("reported", rework_count=0, escalation_count=0)
    states = []
    for action, who, kw in [
        ("accept", officer, {}),
        ("dispatch", officer, {}),
        ("sign", handler, {}),
        ("resolve", handler, {"note": "已清运"}),
        ("rework", grid, {"note": "仍有残留"}),
        ("dispatch", officer, {}),
        ("sign", handler, {}),
        ("resolve", handler, {"note": "已彻底清理"}),
        ("verify", grid, {}),
        ("close", officer, {}),
    ]:
        assert action in allowed_actions(f, who)
        f = apply(f, plan(f, action, who, **kw))
        states.append(f.state)
    assert states == ["accepted", "dispatched", "signed", "resolved", "rework", "dispatched",
                      "signed", "resolved", "verified", "closed"]
    assert f.rework_count == 1 and f.version == 13
    for role in ALL_ROLES:
        assert allowed_actions(f, actor(role)) == []


def test_return_then_redispatch_to_another_unit():
    officer, handler = actor("duty_officer"), actor("unit_handler")
    other = actor("unit_handler", unit=OTHER_UNIT)
    f = run(facts("accepted"), [("dispatch", officer, {}), ("sign", handler, {})])
    t = plan(f, "return", handler, note="不属于本单位职责")
    assert t.to_state == "returned" and t.note == "不属于本单位职责"
    f = apply(f, t)
    assert allowed_actions(f, handler) == []
    f = run(f, [("dispatch", officer, {"unit": OTHER_UNIT})])
    assert f.state == "dispatched" and f.unit_code == OTHER_UNIT
    assert refused(403, f, "sign", handler).code == "not_your_unit"
    f = run(f, [("sign", other, {})])
    assert f.state == "signed"


def test_suspend_then_dispatch():
    officer = actor("duty_officer")
    f = run(facts("accepted"), [("dispatch", officer, {}),
                                ("suspend", officer, {"note": "需市级统筹资金"})])
    assert f.state == "suspended"
    assert allowed_actions(f, officer) == ["dispatch", "supervise"]
    f = run(f, [("dispatch", officer, {})])
    assert f.state == "dispatched"


def test_reject_is_terminal():
    f = run(facts("reported"), [("reject", actor("duty_officer"), {"note": "不属于受理范围"})])
    assert f.state == "rejected"
    for role in ALL_ROLES:
        assert allowed_actions(f, actor(role)) == []


# ----------------------------------------------------------------------------------------
# allowed_actions == what plan_transition accepts

VARIANTS = [
    {},
    {"extension_pending_hours": 2.0},
    {"supervised": True},
    {"handling_level": 1},
    {"deadline": None},
    {"unit_code": None},
]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_allowed_actions_agrees_with_plan_transition(state, variant):
    f = facts(state, **VARIANTS[variant])
    actors = [actor(r) for r in ALL_ROLES] + [
        actor("duty_officer", area=OTHER_DISTRICT), actor("unit_handler", unit=OTHER_UNIT)]
    for who in actors:
        allowed = allowed_actions(f, who)
        assert allowed == [a for a in ACTIONS if a in allowed], "in ACTIONS order"
        for action in ACTIONS:
            try:
                plan(f, action, who, **params(action))
                ok = True
            except TransitionRefused as err:
                assert err.status in (403, 422), err
                ok = False
            assert ok == (action in allowed), (state, VARIANTS[variant], who.role, action)
