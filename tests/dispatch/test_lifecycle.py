"""The case lifecycle (issue 14): the whole state × action × role table, the refusals, the clocks.

The expected answers are written out here from the issue, independently of ``lifecycle.RULES``: a
wrong rule (a state too many, a role too few) fails these tests."""
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
    ACTOR_ROLES,
    OPEN_STATES,
    ROLE_LABELS,
    RULES,
    STATE_LABELS,
    STATES,
    SYSTEM_ACTOR,
    TERMINAL_STATES,
    Actor,
    AssistFacts,
    CaseFacts,
    Transition,
    TransitionRefused,
    allowed_actions,
    plan_transition,
)

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
CAL = files.calendar()
CENTER = files.center_rules()


def sh(*args) -> datetime:
    """A wall-clock time in the city, as aware UTC."""
    return datetime(*args, tzinfo=SH).astimezone(UTC)


NOW = sh(2025, 3, 12, 10, 0)                      # Wednesday 10:00 in Shanghai

GRID, COMMUNITY, STREET, DISTRICT, CITY = (
    "320402001001001", "320402001001", "320402001", "320402", "320400")
CHAIN = (GRID, COMMUNITY, STREET, DISTRICT, CITY)
OTHER_GRID = "320402001001002"       # same community, another grid
OTHER_DISTRICT = "320404"
UNIT = "U-320402-city_management"                 # the lead unit
ASSIST_UNIT = "U-320402001-street_office"         # an assisting unit (协办)
OTHER_UNIT = "U-320402-housing"                   # a unit with nothing to do with the case
THIRD_UNIT = "U-320402-water_affairs"             # a unit the center may add as an assisting one

# ----------------------------------------------------------------------------------------
# the semantics of issue 14, written out

EXPECTED_STATES = {"reported", "verifying", "accepted", "rejected", "merged", "dispatched", "signed",
                   "resolved", "verified", "closed", "rework", "returned", "suspended", "voided"}
EXPECTED_TERMINAL = {"rejected", "merged", "closed", "voided"}
EXPECTED_OPEN = EXPECTED_STATES - EXPECTED_TERMINAL
IN_HAND = ("accepted", "dispatched", "signed", "returned", "rework")     # the center or a unit holds it
HANDLING = ("dispatched", "signed")                                       # the unit holds it, its clock runs
BEFORE_SUSPENSION = "signed"        # where the suspended case of the table was suspended from
BACK = "<state before suspension>"


def _stay(states):
    return {s: s for s in states}


# (action) -> {from state: new state}: every legal move; anything else is 422 illegal_transition
LEGAL = {
    "accept": {"reported": "accepted"},
    "reject": {"reported": "rejected"},
    "verify_request": {"reported": "verifying"},
    "report_check": {"verifying": "reported"},
    "dispatch": {"accepted": "dispatched", "rework": "dispatched"},
    "sign": {"dispatched": "signed"},
    "resolve": {"signed": "resolved"},
    "return": {"dispatched": "returned", "signed": "returned"},
    "reassign": {"returned": "dispatched", "dispatched": "dispatched", "signed": "dispatched"},
    "refuse_return": {"returned": "dispatched"},
    "verify": {"resolved": "verified"},
    "rework": {"resolved": "rework"},
    "close": {"verified": "closed"},
    "extend": _stay(HANDLING),
    "approve_extension": _stay(HANDLING),
    "deny_extension": _stay(HANDLING),
    "request_suspension": _stay(HANDLING),
    "approve_suspension": {s: "suspended" for s in HANDLING},
    "deny_suspension": _stay(HANDLING),
    "suspend": {s: "suspended" for s in IN_HAND},
    "resume": {"suspended": BACK},
    "add_assist": _stay(IN_HAND),
    "urge": _stay(HANDLING),
    "supervise": _stay(IN_HAND),
    "escalate": _stay(IN_HAND),
    "void": {s: "voided" for s in EXPECTED_OPEN},
    "callback": {"closed": "closed"},
    "reopen": {"closed": "dispatched"},
}
OFFICE = {"duty_officer", "admin"}
OVERSEERS = {"leader", "duty_officer", "admin", "system"}
# (action) -> the roles that may do it
ROLES_FOR = {
    "accept": OFFICE, "reject": OFFICE, "verify_request": OFFICE, "report_check": {"grid_member", "admin"},
    "dispatch": OFFICE, "sign": {"unit_handler", "admin"}, "resolve": {"unit_handler", "admin"},
    "return": {"unit_handler"}, "reassign": OFFICE, "refuse_return": OFFICE,
    "verify": OFFICE | {"grid_member"}, "rework": OFFICE | {"grid_member"}, "close": OFFICE,
    "extend": {"unit_handler"}, "approve_extension": OFFICE, "deny_extension": OFFICE,
    "request_suspension": {"unit_handler"}, "approve_suspension": OFFICE, "deny_suspension": OFFICE,
    "suspend": OFFICE, "resume": OFFICE, "add_assist": OFFICE,
    "urge": OVERSEERS, "supervise": OVERSEERS, "escalate": {"duty_officer", "leader", "admin"},
    "void": OFFICE, "callback": OFFICE | {"hotline", "system"}, "reopen": OFFICE | {"hotline"},  # 12345; /public
}
NOTE_REQUIRED = {"reject", "resolve", "return", "reassign", "refuse_return", "rework", "extend",
                 "deny_extension", "request_suspension", "deny_suspension", "suspend", "escalate", "void",
                 "reopen"}
# the 400 an action gets when its note is there but nothing else is
OTHER_PARAM = {"extend": "invalid_hours", "reassign": "unit_required", "add_assist": "unit_required",
               "report_check": "invalid_result", "callback": "invalid_satisfaction"}
# the stamp each new state sets (CONTRACT: accepted_at … voided_at)
STAMPS = {"accepted": "accepted_at", "rejected": "rejected_at", "verifying": "check_requested_at",
          "dispatched": "dispatched_at", "signed": "signed_at", "resolved": "resolved_at",
          "verified": "verified_at", "closed": "closed_at", "voided": "voided_at", "returned": "returned_at",
          "suspended": "suspended_at"}


def good_params(action: str) -> dict:
    out = {"note": f"{ACTION_LABELS[action]}的说明"}
    if action == "extend":
        out["hours"] = 4
    elif action in ("dispatch", "reassign"):
        out["unit"] = OTHER_UNIT
    elif action == "add_assist":
        out["unit"] = THIRD_UNIT
    elif action == "report_check":
        out["result"] = "confirmed"
    elif action == "callback":
        out["satisfaction"] = "unsatisfied"
    return out


# the people of the table: every role, and the three who are refused for where they stand
ACTORS = {
    "admin": Actor("user:admin", "admin", OTHER_DISTRICT),      # acts everywhere, whatever its area
    "duty_officer": Actor("user:officer", "duty_officer", DISTRICT, level=2),
    "leader": Actor("user:leader", "leader", DISTRICT, level=2),
    "unit_handler": Actor("user:handler", "unit_handler", DISTRICT, UNIT),
    "grid_member": Actor("user:grid", "grid_member", GRID, level=5),
    "wall": Actor("token:wall", "wall", DISTRICT),
    "system": SYSTEM_ACTOR,
    "assist_handler": Actor("user:assist", "unit_handler", DISTRICT, ASSIST_UNIT),
    "other_unit_handler": Actor("user:other", "unit_handler", DISTRICT, OTHER_UNIT),
    "outside_officer": Actor("user:far", "duty_officer", OTHER_DISTRICT, level=2),
    "outside_leader": Actor("user:farleader", "leader", OTHER_DISTRICT, level=2),
    "other_grid_member": Actor("user:grid2", "grid_member", OTHER_GRID, level=5),
}
OUT_OF_AREA = {"outside_officer", "outside_leader", "other_grid_member"}


def facts(state: str, **kw) -> CaseFacts:
    """A hotline case of UNIT (4 working hours), dispatched Wednesday 09:00, due 13:30 (assisted by ASSIST_UNIT,
    which has not signed yet)."""
    base = dict(state=state, version=3, unit_code=UNIT, area_codes=CHAIN, handling_level=3,
                deadline=sh(2025, 3, 12, 13, 30), time_limit=4, time_unit="working_hours",
                dispatched_at=sh(2025, 3, 12, 9, 0), source="hotline", assists=(AssistFacts(ASSIST_UNIT),),
                rework_count=1, escalation_count=1)
    if state == "suspended":
        base.update(state_before_suspension=BEFORE_SUSPENSION, suspension_remaining_hours=2.0)
    if state == "closed":
        base["closed_at"] = sh(2025, 3, 12, 9, 30)
    base.update(kw)
    return CaseFacts(**base)


def cell_facts(state: str, action: str) -> CaseFacts:
    """The case of the table's cell: what the action's own conditions need (a pending request to decide,
    an unsatisfied callback to reopen on) is there."""
    if action in ("approve_extension", "deny_extension"):
        return facts(state, extension_pending_hours=4.0)
    if action in ("approve_suspension", "deny_suspension"):
        return facts(state, suspension_requested=True)
    if action == "reopen":
        return facts(state, callback_at=sh(2025, 3, 12, 9, 45), callback_result="unsatisfied")
    return facts(state)


def expected_outcome(state: str, action: str, who: str, with_params: bool = True):
    """("moves", new state) or ("refused", status, code) — the order of checks of the issue:
    role 403, scope 403, state 422, parameters 400."""
    actor = ACTORS[who]
    if actor.role not in ROLES_FOR[action]:
        return ("refused", 403, "forbidden_role")
    if who in OUT_OF_AREA:
        return ("refused", 403, "out_of_area")
    if who == "other_unit_handler":
        return ("refused", 403, "not_your_unit")
    if who == "assist_handler":
        if action not in ("sign", "resolve"):
            return ("refused", 403, "assist_only")
        if state not in HANDLING:
            return ("refused", 422, "illegal_transition")
        if action == "resolve":                 # the assisting unit has not signed its part yet
            return ("refused", 422, "assist_not_signed")
        return ("moves", state)                 # an assisting unit's sign leaves the case where it is
    new = LEGAL[action].get(state)
    if new is None:
        return ("refused", 422, "illegal_transition")
    if not with_params:
        if action in NOTE_REQUIRED:
            return ("refused", 400, "note_required")
        if action in OTHER_PARAM:
            return ("refused", 400, OTHER_PARAM[action])
    return ("moves", BEFORE_SUSPENSION if new == BACK else new)


def permitted(action: str) -> Actor:
    """Someone who may do ``action`` on the table's case."""
    return ACTORS["admin"] if "admin" in ROLES_FOR[action] else ACTORS["unit_handler"]


def plan(f: CaseFacts, action: str, who: Actor, **kw) -> Transition:
    kw.setdefault("now", NOW)
    kw.setdefault("calendar", CAL)
    kw.setdefault("rules", CENTER)
    return plan_transition(f, action, who, **kw)


def outcome(f: CaseFacts, action: str, who: Actor, **kw):
    try:
        t = plan(f, action, who, **kw)
    except TransitionRefused as err:
        assert err.message and str(err) == err.message
        return ("refused", err.status, err.code)
    return ("moves", t.to_state)


def refused(status: int, f: CaseFacts, action: str, who: Actor, **kw) -> TransitionRefused:
    with pytest.raises(TransitionRefused) as info:
        plan(f, action, who, **kw)
    err = info.value
    assert err.status == status, err
    assert err.code and err.message and str(err) == err.message
    return err


# ----------------------------------------------------------------------------------------
# the data

def test_states_actions_roles_and_labels():
    assert set(STATES) == EXPECTED_STATES
    assert set(TERMINAL_STATES) == EXPECTED_TERMINAL and set(OPEN_STATES) == EXPECTED_OPEN
    assert set(ACTIONS) == set(LEGAL) == set(ROLES_FOR) == set(RULES)
    assert set(ACTOR_ROLES) == {"admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall", "system",
                                "hotline"}
    assert set(STATE_LABELS) == set(STATES) and all(STATE_LABELS.values())
    assert set(ACTION_LABELS) == set(ACTIONS) and all(ACTION_LABELS.values())
    assert set(ROLE_LABELS) == set(ACTOR_ROLES) | {"device"}  # a device token is labelled, and acts on no case
    assert (STATE_LABELS["verifying"], STATE_LABELS["voided"], STATE_LABELS["suspended"]) == ("核实中", "已作废", "挂账")
    assert (ACTION_LABELS["reassign"], ACTION_LABELS["refuse_return"], ACTION_LABELS["reopen"],
            ACTION_LABELS["urge"], ACTION_LABELS["supervise"], ACTION_LABELS["add_assist"]) == \
        ("改派", "驳回退回", "重办", "催办", "督办", "增加协办单位")
    for action, rule in RULES.items():
        assert rule.needs_note == (action in NOTE_REQUIRED), action
        assert not set(rule.from_states) & EXPECTED_TERMINAL - {"closed"}, "nothing leaves an ended case"


def test_the_center_rules_file_is_what_the_lifecycle_counts_with():
    assert CENTER.penalty("urge") == 0.5 and CENTER.penalty("supervise") == 2 and CENTER.penalty("reopen") == 2
    assert {(r.kind, r.at) for r in CENTER.reminders} == {("urge", "warning"), ("supervise", "deadline")}
    assert dict(CENTER.supervision_deadline_hours) == {"working": 7.5, "calendar": 24}


def test_dispatch_core_stays_pure():
    for module in (lc, __import__("dispatch.stages").stages, __import__("dispatch.center_rules").center_rules):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert not imported & {"flask", "dash", "socketio", "flask_socketio", "sqlalchemy", "data"}, module


# ----------------------------------------------------------------------------------------
# the table: every state × every action × every actor

@pytest.mark.parametrize("state,action", list(itertools.product(STATES, ACTIONS)))
def test_every_cell_of_the_table(state, action):
    f = cell_facts(state, action)
    wrong = []
    for who, actor in ACTORS.items():
        want = expected_outcome(state, action, who)
        got = outcome(f, action, actor, **good_params(action))
        if got != want:
            wrong.append(f"{who}: expected {want}, got {got}")
        # the console's buttons are exactly what plan_transition would accept
        if (action in allowed_actions(f, actor)) != (want[0] == "moves"):
            wrong.append(f"{who}: allowed_actions says {action in allowed_actions(f, actor)}, plan says {want}")
    assert not wrong, f"{state} × {action}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("state,action", list(itertools.product(STATES, ACTIONS)))
def test_every_cell_without_parameters(state, action):
    """The same table with no note, hours, unit, result or satisfaction: a legal move that needs one is
    a 400 naming it; every 403 and 422 stays what it was (parameters are checked last)."""
    f = cell_facts(state, action)
    wrong = []
    for who, actor in ACTORS.items():
        want = expected_outcome(state, action, who, with_params=False)
        got = outcome(f, action, actor)
        if got != want:
            wrong.append(f"{who}: expected {want}, got {got}")
    assert not wrong, f"{state} × {action}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("action", ACTIONS)
def test_the_refusals_say_why_in_chinese(action):
    label = ACTION_LABELS[action]
    state = next(s for s in STATES if s not in LEGAL[action])
    err = refused(422, cell_facts(state, action), action, permitted(action), **good_params(action))
    assert err.message.startswith(f"案件当前状态为「{STATE_LABELS[state]}」，不能执行「{label}」")
    allowed = "、".join(STATE_LABELS[s] for s in RULES[action].from_states)
    assert err.message.endswith(f"（「{label}」仅适用于：{allowed}）")
    err = refused(403, cell_facts(state, action), action, ACTORS["wall"])
    assert err.message == f"角色「大屏」无权执行「{label}」"
    if action in NOTE_REQUIRED:
        start = next(iter(LEGAL[action]))
        err = refused(400, cell_facts(start, action), action, permitted(action), **good_params(action) | {"note": " \n"})
        assert label in err.message and err.message.startswith(f"「{label}」须填写")


def test_scope_refusals_name_the_reason():
    f = facts("dispatched")
    assert refused(403, f, "urge", ACTORS["outside_leader"]).message == "该案件不在您的辖区内"
    assert refused(403, f, "sign", ACTORS["other_unit_handler"]).message == "该案件不属于您的单位"
    err = refused(403, f, "return", ACTORS["assist_handler"], note="不归我们管")
    assert err.code == "assist_only" and "协办单位只能签收和反馈协办情况" in err.message and "「退回」" in err.message
    # a handler with no unit, and a case with no unit, belong to nobody
    assert refused(403, f, "sign", Actor("u", "unit_handler", DISTRICT, None)).code == "not_your_unit"
    assert refused(403, facts("dispatched", unit_code=None), "sign", ACTORS["unit_handler"]).code == "not_your_unit"


@pytest.mark.parametrize("area", CHAIN)
def test_every_node_of_the_chain_is_in_scope(area):
    assert plan(facts("reported"), "accept", Actor("o", "duty_officer", area)).to_state == "accepted"


@pytest.mark.parametrize("area", ["", "3204", OTHER_GRID, OTHER_DISTRICT])
def test_an_area_off_the_chain_is_out(area):
    assert refused(403, facts("reported"), "accept", Actor("o", "duty_officer", area)).code == "out_of_area"


@pytest.mark.parametrize("bad", ["merge", "", "ACCEPT", "escalate_overdue", None, 3])
@pytest.mark.parametrize("who", sorted(ACTORS))
def test_an_unknown_action_is_400_for_everyone(bad, who):
    err = refused(400, facts("reported"), bad, ACTORS[who])
    assert err.code == "unknown_action" and "未知的操作" in err.message


def test_an_unknown_role_is_refused():
    err = refused(403, facts("reported"), "accept", Actor("x", "citizen", DISTRICT))
    assert err.code == "forbidden_role" and "citizen" in err.message


# ----------------------------------------------------------------------------------------
# what each move writes

@pytest.mark.parametrize("action,state", [(a, s) for a in ACTIONS for s in LEGAL[a]])
def test_each_move_stamps_its_state_and_a_new_round_clears_the_last_one(action, state):
    f = cell_facts(state, action)
    t = plan(f, action, permitted(action), **good_params(action))
    assert t.from_state == state and t.note == good_params(action)["note"]
    if t.to_state == state:
        assert "state" not in t.changes and not t.moves
    else:
        assert t.changes["state"] == t.to_state and t.moves
        stamp = STAMPS.get(t.to_state)
        if action == "resume":
            assert t.changes["resumed_at"] == NOW and not set(STAMPS.values()) & set(t.changes)
        elif stamp and action != "refuse_return":
            assert t.changes[stamp] == NOW and t.changes[stamp].tzinfo == UTC
    if action in ("dispatch", "reassign", "reopen"):
        assert t.changes["dispatched_at"] == NOW
        assert t.changes["signed_at"] is t.changes["resolved_at"] is t.changes["verified_at"] is None
        assert t.changes["deadline_at"] == sh(2025, 3, 12, 15, 30)      # 4 working hours from 10:00
        assert t.changes["warning_at"] == sh(2025, 3, 12, 14, 42)       # 80 %: 3.2 working hours


def test_refuse_return_gives_the_case_back_to_the_same_unit_on_its_running_clock():
    f = facts("returned")
    t = plan(f, "refuse_return", ACTORS["duty_officer"], note="属于贵单位职责，请继续处置")
    assert t.to_state == "dispatched" and t.details["unit"] == UNIT
    assert "unit_code" not in t.changes and "deadline_at" not in t.changes and "warning_at" not in t.changes
    assert "reassign_count" not in t.changes
    # the handling clock started at 派遣 and runs on: 驳回 is no new 派遣
    assert "dispatched_at" not in t.changes


def test_a_pending_request_does_not_outlive_the_unit_holding_the_case():
    f = facts("signed", extension_pending_hours=3.0, suspension_requested=True)
    for action, kw in (("resolve", {"note": "已处理"}), ("return", {"note": "非本单位职责"})):
        t = plan(f, action, ACTORS["unit_handler"], **kw)
        assert t.changes["extension_pending_hours"] is None and t.changes["suspension_requested_at"] is None
    t = plan(f, "void", ACTORS["duty_officer"], note="重复工单")
    assert t.changes["extension_pending_hours"] is None and t.details["from_state"] == "signed"
    # staying actions keep them
    t = plan(f, "urge", ACTORS["leader"])
    assert "extension_pending_hours" not in t.changes and "suspension_requested_at" not in t.changes


# ----------------------------------------------------------------------------------------
# the action's own conditions (422) and parameters (400)

def test_escalation_climbs_one_level_at_a_time_to_the_city_and_stops():
    f = facts("dispatched", handling_level=5, escalation_count=0)
    levels = []
    for _ in range(4):
        t = plan(f, "escalate", ACTORS["leader"], note="跨部门协调困难")
        assert t.to_state == "dispatched" and "state" not in t.changes
        assert t.details == {"from_level": f.handling_level, "to_level": f.handling_level - 1}
        f = dataclasses.replace(f, handling_level=t.changes["handling_level"],
                                escalation_count=t.changes["escalation_count"])
        levels.append(f.handling_level)
    assert levels == [4, 3, 2, 1] and f.escalation_count == 4
    err = refused(422, f, "escalate", ACTORS["duty_officer"], note="再升")
    assert err.code == "escalation_limit" and "市级" in err.message
    assert "escalate" not in allowed_actions(f, ACTORS["duty_officer"])
    assert refused(422, facts("accepted", handling_level=None), "escalate", ACTORS["admin"],
                   note="x").code == "no_handling_level"
    # the platform no longer escalates on its own: it 催办 and 督办 instead
    assert refused(403, facts("dispatched"), "escalate", SYSTEM_ACTOR, note="超时").code == "forbidden_role"


@pytest.mark.parametrize("f,action,who,kw,code", [
    (facts("signed", extension_pending_hours=2.0), "extend", "unit_handler", {"hours": 2}, "extension_pending"),
    (facts("signed", deadline=None), "extend", "unit_handler", {"hours": 2}, "no_deadline"),
    (facts("signed"), "approve_extension", "duty_officer", {}, "no_extension_pending"),
    (facts("signed"), "deny_extension", "duty_officer", {}, "no_extension_pending"),
    (facts("signed", deadline=None, extension_pending_hours=2.0), "approve_extension", "admin", {}, "no_deadline"),
    (facts("signed", suspension_requested=True), "request_suspension", "unit_handler", {}, "suspension_pending"),
    (facts("signed"), "approve_suspension", "duty_officer", {}, "no_suspension_pending"),
    (facts("signed"), "deny_suspension", "duty_officer", {}, "no_suspension_pending"),
    (facts("dispatched", unit_code=None), "urge", "leader", {}, "no_unit"),
    (facts("accepted", unit_code=None), "supervise", "leader", {}, "no_unit"),
    (facts("signed", supervised=True, supervision_level=2), "supervise", "leader", {}, "already_supervised"),
    (facts("signed", supervised=True, supervision_level=None), "supervise", "admin", {}, "already_supervised"),
    (facts("closed", source="patrol"), "callback", "duty_officer", {"satisfaction": "satisfied"}, "no_callback"),
    (facts("closed", source="iot"), "callback", "duty_officer", {"satisfaction": "satisfied"}, "no_callback"),
    (facts("closed", callback_at=sh(2025, 3, 12, 9, 40), callback_result="satisfied"), "callback", "duty_officer",
     {"satisfaction": "unsatisfied"}, "already_called_back"),
    (facts("closed"), "reopen", "duty_officer", {}, "not_unsatisfied"),
    (facts("closed", callback_at=sh(2025, 3, 12, 9, 40), callback_result="basically_satisfied"), "reopen",
     "duty_officer", {}, "not_unsatisfied"),
    # a callback made before the latest closing is not this closing's callback
    (facts("closed", callback_at=sh(2025, 3, 12, 9, 0), callback_result="unsatisfied"), "reopen",
     "duty_officer", {}, "not_unsatisfied"),
    (facts("returned"), "reassign", "duty_officer", {"unit": UNIT}, "same_unit"),
    (facts("dispatched"), "add_assist", "duty_officer", {"unit": UNIT}, "assist_is_lead"),
    (facts("dispatched"), "add_assist", "duty_officer", {"unit": ASSIST_UNIT}, "already_assisting"),
    (facts("dispatched", assists=(AssistFacts(ASSIST_UNIT, signed=True),)), "sign", "assist_handler", {},
     "already_signed"),
    (facts("signed"), "resolve", "assist_handler", {}, "assist_not_signed"),
    (facts("signed", assists=(AssistFacts(ASSIST_UNIT, True, True),)), "resolve", "assist_handler", {},
     "already_reported"),
])
def test_the_actions_own_conditions_are_422(f, action, who, kw, code):
    kw = {"note": "说明"} | kw
    err = refused(422, f, action, ACTORS[who], **kw)
    assert err.code == code and err.message
    if code not in ("same_unit", "assist_is_lead", "already_assisting"):      # those depend on the unit asked
        assert action not in allowed_actions(f, ACTORS[who])


def test_a_higher_level_may_supervise_a_case_supervised_lower():
    f = facts("signed", supervised=True, supervision_level=2)
    city_leader = Actor("user:mayor", "leader", CITY, level=1)
    assert "supervise" in allowed_actions(f, city_leader)
    t = plan(f, "supervise", city_leader)
    assert t.changes["supervision_level"] == 1 and t.supervision["level"] == 1


@pytest.mark.parametrize("hours", [None, 0, -1, -0.5, float("nan"), float("inf"), "4", True,
                                   lc.MAX_EXTENSION_HOURS + 1])
def test_bad_extension_hours_are_400(hours):
    err = refused(400, facts("dispatched"), "extend", ACTORS["unit_handler"], hours=hours, note="需要更多时间")
    assert err.code == "invalid_hours" and "延期时长" in err.message


@pytest.mark.parametrize("hours", [0, -2, float("nan"), "8"])
def test_bad_supervision_hours_are_400(hours):
    err = refused(400, facts("dispatched"), "supervise", ACTORS["leader"], hours=hours)
    assert err.code == "invalid_hours" and "督办时限" in err.message


@pytest.mark.parametrize("result,stored", [("confirmed", "confirmed"), ("属实", "confirmed"),
                                           ("unfounded", "unfounded"), (" 不属实 ", "unfounded")])
def test_a_check_answer_in_english_or_chinese(result, stored):
    t = plan(facts("verifying"), "report_check", ACTORS["grid_member"], result=result, note="现场照片已上传")
    assert t.to_state == "reported" and t.changes["check_result"] == stored and t.changes["checked_at"] == NOW


@pytest.mark.parametrize("result", [None, "", "yes", "true", 1, "属"])
def test_a_bad_check_answer_is_400(result):
    err = refused(400, facts("verifying"), "report_check", ACTORS["grid_member"], result=result)
    assert err.code == "invalid_result" and "confirmed（属实）" in err.message


@pytest.mark.parametrize("value,stored", [("satisfied", "satisfied"), ("基本满意", "basically_satisfied"),
                                          ("不满意", "unsatisfied")])
def test_a_callback_result_in_english_or_chinese(value, stored):
    t = plan(facts("closed"), "callback", ACTORS["duty_officer"], satisfaction=value, note="市民表示")
    assert t.to_state == "closed" and t.changes == {"callback_at": NOW, "callback_result": stored,
                                                    "callback_note": "市民表示"}


@pytest.mark.parametrize("value", [None, "", "ok", "很满意", 5])
def test_a_bad_callback_result_is_400(value):
    err = refused(400, facts("closed"), "callback", ACTORS["duty_officer"], satisfaction=value)
    assert err.code == "invalid_satisfaction" and "unsatisfied（不满意）" in err.message


def test_dispatch_needs_a_unit_somewhere():
    f = facts("accepted", unit_code=None)
    assert refused(400, f, "dispatch", ACTORS["duty_officer"]).code == "unit_required"
    t = plan(f, "dispatch", ACTORS["duty_officer"], unit=UNIT)
    assert t.changes["unit_code"] == UNIT and t.details["unit"] == UNIT
    t = plan(facts("accepted"), "dispatch", ACTORS["duty_officer"])     # the routed unit is kept
    assert "unit_code" not in t.changes and t.details["unit"] == UNIT


def test_now_must_be_aware_and_is_stored_in_utc():
    with pytest.raises(ValueError):
        plan(facts("reported"), "accept", ACTORS["admin"], now=datetime(2025, 3, 12, 10, 0))
    t = plan(facts("reported"), "accept", ACTORS["admin"], now=datetime(2025, 3, 12, 10, 0, tzinfo=SH))
    assert t.changes["accepted_at"] == NOW and t.changes["accepted_at"].tzinfo == UTC


# ----------------------------------------------------------------------------------------
# allowed_actions == what plan_transition accepts, over cases of every shape

VARIANTS = [
    {},
    {"extension_pending_hours": 2.0},
    {"suspension_requested": True},
    {"supervised": True, "supervision_level": 2},
    {"handling_level": 1},
    {"deadline": None},
    {"unit_code": None},
    {"source": "patrol"},
    {"assists": ()},
    {"assists": (AssistFacts(ASSIST_UNIT, signed=True),)},
    {"assists": (AssistFacts(ASSIST_UNIT, signed=True, reported=True),)},
    {"callback_at": sh(2025, 3, 12, 9, 45), "callback_result": "unsatisfied"},
]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_allowed_actions_agrees_with_plan_transition(state, variant):
    f = facts(state, **VARIANTS[variant])
    for who, actor in ACTORS.items():
        allowed = allowed_actions(f, actor)
        assert allowed == [a for a in ACTIONS if a in allowed], "in ACTIONS order"
        for action in ACTIONS:
            params = good_params(action)
            if action == "add_assist" or action == "dispatch":
                params.pop("unit")        # the unit is asked when acting; the routed one serves
            if action == "reassign":
                params["unit"] = OTHER_UNIT if f.unit_code != OTHER_UNIT else UNIT
            try:
                plan(f, action, actor, **params)
                ok = True
            except TransitionRefused as err:
                # a unit the button cannot know is missing: the button shows, the form asks
                ok = err.status == 400 and err.code == "unit_required"
            assert ok == (action in allowed), (state, VARIANTS[variant], who, action)


def test_the_wall_does_nothing_and_a_grid_member_only_checks():
    for state in STATES:
        for variant in VARIANTS:
            f = facts(state, **variant)
            assert allowed_actions(f, ACTORS["wall"]) == []
            assert set(allowed_actions(f, ACTORS["grid_member"])) <= {"report_check", "verify", "rework"}
            assert set(allowed_actions(f, SYSTEM_ACTOR)) <= {"urge", "supervise", "callback"}  # callback: /public's rating
    assert allowed_actions(facts("resolved"), ACTORS["grid_member"]) == ["verify", "rework"]
    assert allowed_actions(facts("verifying"), ACTORS["grid_member"]) == ["report_check"]


# ----------------------------------------------------------------------------------------
# clocks: the handling deadline counts from 派遣 on the category's clock

def clock_of_dispatch(at: datetime, time_limit, time_unit="working_hours") -> tuple[datetime, datetime]:
    f = facts("accepted", time_limit=time_limit, time_unit=time_unit, deadline=None, dispatched_at=None)
    t = plan(f, "dispatch", ACTORS["duty_officer"], now=at)
    assert t.changes["dispatched_at"] == at
    assert t.details["deadline"] == t.changes["deadline_at"].isoformat()
    return t.changes["deadline_at"], t.changes["warning_at"]


@pytest.mark.parametrize("at,limit,unit,deadline,warning", [
    # a plain Wednesday: 4 working hours from 10:00 skip the lunch break
    (sh(2025, 3, 12, 10, 0), 4, "working_hours", sh(2025, 3, 12, 15, 30), sh(2025, 3, 12, 14, 42)),
    # Friday 16:30: one hour on Friday, the rest on Monday (the weekend does not count)
    (sh(2025, 3, 14, 16, 30), 4, "working_hours", sh(2025, 3, 17, 11, 30), sh(2025, 3, 17, 10, 42)),
    # dispatched on a Saturday: counting starts Monday 08:30
    (sh(2025, 3, 15, 10, 0), 1, "working_days", sh(2025, 3, 17, 17, 30), sh(2025, 3, 17, 16, 0)),
    # 国庆 2025 (10-01..10-08 off): 1.5 h on 30 September, the rest on Thursday 9 October
    (sh(2025, 9, 30, 16, 0), 4, "working_hours", sh(2025, 10, 9, 11, 0), sh(2025, 10, 9, 10, 12)),
    # 调休: Saturday 11 October 2025 is a working day
    (sh(2025, 10, 10, 16, 0), 4, "working_hours", sh(2025, 10, 11, 11, 0), sh(2025, 10, 11, 10, 12)),
    # 调休: Sunday 28 September 2025 is a working day
    (sh(2025, 9, 26, 17, 0), 2, "working_hours", sh(2025, 9, 28, 10, 0), sh(2025, 9, 28, 9, 36)),
    # 春节 2026 (2-15..2-23 off, Saturday 2-14 and 2-28 worked)
    (sh(2026, 2, 13, 17, 0), 4, "working_hours", sh(2026, 2, 14, 12, 0), sh(2026, 2, 14, 11, 12)),
    # the calendar clock (井盖缺失, 2 h): 30 September 18:00 is due 20:00 that night, not after the holiday
    (sh(2025, 9, 30, 18, 0), 2, "hours", sh(2025, 9, 30, 20, 0), sh(2025, 9, 30, 19, 36)),
    (sh(2025, 10, 1, 23, 0), 1, "days", sh(2025, 10, 2, 23, 0), sh(2025, 10, 2, 18, 12)),
])
def test_the_handling_clock_across_weekends_holidays_and_make_up_days(at, limit, unit, deadline, warning):
    assert clock_of_dispatch(at, limit, unit) == (deadline, warning)


def test_no_time_limit_means_no_clock():
    f = facts("accepted", time_limit=None, deadline=None)
    t = plan(f, "dispatch", ACTORS["duty_officer"])
    assert t.changes["deadline_at"] is None and t.changes["warning_at"] is None and "deadline" not in t.details


def apply(f: CaseFacts, t: Transition) -> CaseFacts:
    """What the service does with a transition, on the snapshot (field names of CaseFacts)."""
    known = {fl.name for fl in dataclasses.fields(CaseFacts)}
    upd = {}
    for k, v in t.changes.items():
        if k == "deadline_at":
            upd["deadline"] = v
        elif k == "suspension_requested_at":
            upd["suspension_requested"] = v is not None
        elif k in known:
            upd[k] = v
    assists = f.assists
    if t.assist is not None:
        op, code = t.assist["op"], t.assist["unit_code"]
        if op == "add":
            assists = assists + (AssistFacts(code),)
        else:
            assists = tuple(dataclasses.replace(a, **({"signed": True} if op == "sign" else {"reported": True}))
                            if a.unit_code == code else a for a in assists)
    return dataclasses.replace(f, version=f.version + 1, assists=assists, **upd)


def step(f: CaseFacts, action: str, who: str | Actor, at: datetime, **kw) -> tuple[CaseFacts, Transition]:
    actor = ACTORS[who] if isinstance(who, str) else who
    assert action in allowed_actions(f, actor), (action, f.state, allowed_actions(f, actor))
    t = plan(f, action, actor, now=at, **kw)
    return apply(f, t), t


def dispatched(at: datetime, time_limit=4, time_unit="working_hours") -> CaseFacts:
    f = facts("accepted", time_limit=time_limit, time_unit=time_unit, deadline=None, dispatched_at=None)
    f, _ = step(f, "dispatch", "duty_officer", at)
    return f


def test_a_suspension_stops_the_clock_and_the_resumption_gives_back_exactly_what_was_left():
    f = dispatched(sh(2025, 3, 10, 10, 0))                       # Monday 10:00, 4 working hours
    assert f.deadline == sh(2025, 3, 10, 15, 30)
    f, t = step(f, "request_suspension", "unit_handler", sh(2025, 3, 10, 10, 30), note="需等待管线迁改")
    assert t.to_state == "dispatched" and t.changes == {"suspension_requested_at": sh(2025, 3, 10, 10, 30)}
    f, t = step(f, "approve_suspension", "duty_officer", sh(2025, 3, 10, 11, 0))
    assert t.to_state == "suspended" and t.changes["suspended_at"] == sh(2025, 3, 10, 11, 0)
    assert f.suspension_remaining_hours == 3.0 and f.state_before_suspension == "dispatched"
    assert not f.suspension_requested
    assert allowed_actions(f, ACTORS["unit_handler"]) == []
    assert allowed_actions(f, ACTORS["duty_officer"]) == ["resume", "void"]
    # resumed on the eve of 国庆: 1.5 h that afternoon, 1.5 h on 9 October
    f, t = step(f, "resume", "duty_officer", sh(2025, 9, 30, 16, 0))
    assert t.to_state == "dispatched" and t.changes["resumed_at"] == sh(2025, 9, 30, 16, 0)
    assert f.deadline == sh(2025, 10, 9, 10, 0)
    assert t.changes["warning_at"] == sh(2025, 10, 9, 9, 24)     # 80 % of the 3 h left: 2.4 h
    assert f.state_before_suspension is None and f.suspension_remaining_hours is None
    assert CAL.working_time_between(sh(2025, 9, 30, 16, 0), f.deadline, "working_hours") == 3.0


def test_a_suspension_of_a_signed_case_resumes_signed():
    f = dispatched(sh(2025, 3, 10, 10, 0))
    f, _ = step(f, "sign", "unit_handler", sh(2025, 3, 10, 10, 15))
    f, _ = step(f, "suspend", "duty_officer", sh(2025, 3, 10, 14, 30), note="等待上级批复")
    assert f.state == "suspended" and f.suspension_remaining_hours == 1.0
    f, _ = step(f, "resume", "duty_officer", sh(2025, 3, 14, 17, 0))     # Friday 17:00: 0.5 h, then Monday
    assert f.state == "signed" and f.deadline == sh(2025, 3, 17, 9, 0)


def test_an_overdue_case_stays_overdue_through_a_suspension():
    f = dispatched(sh(2025, 3, 10, 10, 0))
    deadline = f.deadline
    f, _ = step(f, "suspend", "duty_officer", sh(2025, 3, 11, 10, 0), note="等待资金")   # 3.5 working hours late
    assert f.suspension_remaining_hours == -3.5
    f, t = step(f, "resume", "duty_officer", sh(2025, 3, 12, 10, 0))
    assert "deadline_at" not in t.changes and "warning_at" not in t.changes
    assert f.deadline == deadline < sh(2025, 3, 12, 10, 0)


def test_a_calendar_clock_suspension_keeps_calendar_hours():
    f = dispatched(sh(2025, 9, 30, 18, 0), time_limit=2, time_unit="hours")      # 井盖缺失
    f, _ = step(f, "suspend", "duty_officer", sh(2025, 9, 30, 18, 30), note="等待同型号井盖")
    assert f.suspension_remaining_hours == 1.5
    f, _ = step(f, "resume", "duty_officer", sh(2025, 10, 1, 23, 0))            # a holiday night counts
    assert f.deadline == sh(2025, 10, 2, 0, 30)


def test_reassign_restarts_the_clock_for_the_new_unit():
    f = dispatched(sh(2025, 3, 10, 10, 0))
    f, _ = step(f, "sign", "unit_handler", sh(2025, 3, 10, 10, 15))
    f, t = step(f, "return", "unit_handler", sh(2025, 3, 10, 11, 0), note="不属于本单位职责")
    assert f.state == "returned" and t.changes["returned_at"] == sh(2025, 3, 10, 11, 0)
    assert allowed_actions(f, ACTORS["unit_handler"]) == []
    f, t = step(f, "reassign", "duty_officer", sh(2025, 3, 10, 16, 0), unit=OTHER_UNIT, note="改由住建部门处置")
    assert f.state == "dispatched" and f.unit_code == OTHER_UNIT and f.reassign_count == 1
    assert t.changes["signed_at"] is None and t.changes["dispatched_at"] == sh(2025, 3, 10, 16, 0)
    assert f.deadline == sh(2025, 3, 11, 11, 0)          # 1.5 h Monday, 2.5 h Tuesday
    assert t.details == {"unit": OTHER_UNIT, "previous_unit": UNIT, "deadline": f.deadline.isoformat()}
    assert refused(403, f, "sign", ACTORS["unit_handler"]).code == "not_your_unit"
    f, _ = step(f, "sign", Actor("user:h2", "unit_handler", DISTRICT, OTHER_UNIT), sh(2025, 3, 10, 16, 5))
    assert f.state == "signed"


def test_refuse_return_keeps_the_deadline():
    f = dispatched(sh(2025, 3, 10, 10, 0))
    f, _ = step(f, "return", "unit_handler", sh(2025, 3, 10, 11, 0), note="不属于本单位职责")
    f, t = step(f, "refuse_return", "duty_officer", sh(2025, 3, 10, 11, 20), note="属于贵单位职责")
    assert f.state == "dispatched" and f.unit_code == UNIT and f.deadline == sh(2025, 3, 10, 15, 30)
    assert f.dispatched_at == sh(2025, 3, 10, 10, 0) and f.reassign_count == 0
    assert "refuse_return" not in allowed_actions(f, ACTORS["duty_officer"])


def test_an_approved_extension_moves_the_deadline_and_the_warning_a_denied_one_does_not():
    f = dispatched(sh(2025, 3, 14, 9, 0))                # Friday 09:00 + 4 h = 14:30
    assert f.deadline == sh(2025, 3, 14, 14, 30)
    f, t = step(f, "extend", "unit_handler", sh(2025, 3, 14, 10, 0), hours=4, note="需协调供电部门")
    assert t.changes == {"extension_pending_hours": 4.0} and t.details["hours"] == 4.0
    assert refused(422, f, "extend", ACTORS["unit_handler"], hours=2, note="再延").code == "extension_pending"
    f, t = step(f, "deny_extension", "duty_officer", sh(2025, 3, 14, 10, 30), note="时限内可完成")
    assert t.changes == {"extension_pending_hours": None} and f.deadline == sh(2025, 3, 14, 14, 30)
    assert f.extension_count == 0
    f, _ = step(f, "extend", "unit_handler", sh(2025, 3, 14, 11, 0), hours=5, note="材料未到")
    f, t = step(f, "approve_extension", "duty_officer", sh(2025, 3, 14, 11, 30))
    # 14:30 Friday + 5 working hours: 3 h to 17:30, 2 h Monday → 10:30
    assert f.deadline == sh(2025, 3, 17, 10, 30) and f.extension_count == 1 and f.extension_pending_hours is None
    # the warning moves with it: 80 % of the 9 working hours from 派遣 (7 on Friday) = 7.2 h → Monday 08:42
    assert t.changes["warning_at"] == sh(2025, 3, 17, 8, 42)
    assert t.details == {"hours": 5.0, "old_deadline": sh(2025, 3, 14, 14, 30).isoformat(),
                         "new_deadline": f.deadline.isoformat()}


def test_an_extension_on_the_calendar_clock_counts_calendar_hours_over_a_holiday():
    f = dispatched(sh(2025, 9, 30, 18, 0), time_limit=2, time_unit="hours")
    f, _ = step(f, "extend", "unit_handler", sh(2025, 9, 30, 19, 0), hours=2, note="需吊车")
    f, _ = step(f, "approve_extension", "duty_officer", sh(2025, 9, 30, 19, 10))
    assert f.deadline == sh(2025, 9, 30, 22, 0)


def test_an_unsatisfied_callback_reopens_the_case_to_the_same_unit_with_a_new_deadline():
    f = dispatched(sh(2025, 3, 10, 10, 0))
    for action, who, kw in (("sign", "unit_handler", {}), ("resolve", "unit_handler", {"note": "已清运"}),
                            ("verify", "grid_member", {}), ("close", "duty_officer", {})):
        f, _ = step(f, action, who, sh(2025, 3, 10, 11, 0), **kw)
    assert f.state == "closed" and f.closed_at == sh(2025, 3, 10, 11, 0)
    assert refused(422, f, "reopen", ACTORS["duty_officer"], note="x").code == "not_unsatisfied"
    f, t = step(f, "callback", "duty_officer", sh(2025, 3, 11, 9, 0), satisfaction="unsatisfied", note="仍有垃圾")
    assert f.state == "closed" and f.callback_result == "unsatisfied"
    assert refused(422, f, "callback", ACTORS["duty_officer"], satisfaction="satisfied").code == "already_called_back"
    f, t = step(f, "reopen", "duty_officer", sh(2025, 3, 11, 10, 0), note="市民回访不满意")
    assert t.to_state == "dispatched" and f.unit_code == UNIT and f.closed_at is None and f.reopen_count == 1
    assert f.deadline == sh(2025, 3, 11, 15, 30) and t.changes["dispatched_at"] == sh(2025, 3, 11, 10, 0)
    assert t.penalties == ({"unit_code": UNIT, "points": 2.0, "rule": "reopen", "reason": "回访不满意，重办"},)
    assert f.penalty_points == 2.0
    # closed again, the new closing may be called back again
    for action, who, kw in (("sign", "unit_handler", {}), ("resolve", "unit_handler", {"note": "已彻底清理"}),
                            ("verify", "duty_officer", {}), ("close", "duty_officer", {})):
        f, _ = step(f, action, who, sh(2025, 3, 11, 14, 0), **kw)
    assert "callback" in allowed_actions(f, ACTORS["duty_officer"])
    assert "reopen" not in allowed_actions(f, ACTORS["duty_officer"])


# ----------------------------------------------------------------------------------------
# 催办, 督办 and their penalty points

def test_an_urge_by_hand_leaves_the_case_and_costs_the_unit_its_points():
    f = dispatched(sh(2025, 3, 10, 10, 0))
    f2, t = step(f, "urge", "leader", sh(2025, 3, 10, 14, 0), note="请抓紧处置")
    assert t.to_state == "dispatched" and f2.unit_code == UNIT and f2.urge_count == 1
    assert t.supervision == {"kind": "urge", "unit_code": UNIT, "level": 2, "deadline_at": None,
                             "for_deadline": f.deadline, "automatic": False, "rule": None}
    assert t.penalties == ({"unit_code": UNIT, "points": 0.5, "rule": "urge", "reason": "请抓紧处置"},)
    assert f2.penalty_points == 0.5 and t.changes["penalty_points"] == 0.5


def test_an_automatic_supervision_is_made_at_the_level_asked_with_its_own_deadline():
    f = dispatched(sh(2025, 3, 10, 10, 0))
    t = plan(f, "supervise", SYSTEM_ACTOR, now=sh(2025, 3, 10, 16, 0), reminder="supervise_at_deadline", level=2,
             note="已超过处置时限，系统自动督办")
    assert t.to_state == "dispatched" and "unit_code" not in t.changes and "state" not in t.changes
    own = sh(2025, 3, 11, 16, 0)                         # 7.5 working hours: 1.5 h Monday, 6 h Tuesday
    assert t.changes["supervised"] is True and t.changes["supervision_level"] == 2
    assert t.changes["supervision_deadline"] == own
    assert t.supervision == {"kind": "supervise", "unit_code": UNIT, "level": 2, "deadline_at": own,
                             "for_deadline": f.deadline, "automatic": True, "rule": "supervise_at_deadline"}
    assert t.penalties[0]["points"] == 2.0 and t.penalties[0]["rule"] == "supervise"
    f = apply(f, t)
    # again at the same level: refused; a level higher: allowed
    err = refused(422, f, "supervise", SYSTEM_ACTOR, reminder="supervise_at_deadline", level=2)
    assert err.code == "already_supervised" and "区县级" in err.message
    assert plan(f, "supervise", SYSTEM_ACTOR, level=1).changes["supervision_level"] == 1


def test_a_supervision_on_the_calendar_clock_has_24_calendar_hours_and_a_chosen_limit_wins():
    f = dispatched(sh(2025, 9, 30, 18, 0), time_limit=2, time_unit="hours")
    t = plan(f, "supervise", ACTORS["leader"], now=sh(2025, 9, 30, 21, 0))
    assert t.changes["supervision_deadline"] == sh(2025, 10, 1, 21, 0)
    t = plan(f, "supervise", ACTORS["leader"], now=sh(2025, 9, 30, 21, 0), hours=3)
    assert t.changes["supervision_deadline"] == sh(2025, 10, 1, 0, 0)


# ----------------------------------------------------------------------------------------
# whole paths

def test_verification_then_the_whole_life_with_an_assisting_unit():
    f = facts("reported", deadline=None, dispatched_at=None, assists=(), rework_count=0, escalation_count=0)
    at = sh(2025, 3, 10, 9, 0)
    f, t = step(f, "verify_request", "duty_officer", at)
    assert f.state == "verifying" and t.changes["check_requested_at"] == at
    assert allowed_actions(f, ACTORS["duty_officer"]) == ["void"]
    assert refused(403, f, "report_check", ACTORS["other_grid_member"], result="confirmed").code == "out_of_area"
    f, t = step(f, "report_check", "grid_member", at, result="属实", note="现场确认，已拍照")
    assert f.state == "reported" and t.details == {"result": "confirmed"}
    f, _ = step(f, "accept", "duty_officer", at)
    f, _ = step(f, "dispatch", "duty_officer", at)
    f, t = step(f, "add_assist", "duty_officer", at, unit=ASSIST_UNIT)
    assert t.assist == {"op": "add", "unit_code": ASSIST_UNIT} and t.changes == {"assist_units": [ASSIST_UNIT]}
    assist = ACTORS["assist_handler"]
    assert allowed_actions(f, assist) == ["sign"]
    f, t = step(f, "sign", assist, at)
    assert f.state == "dispatched" and t.changes == {} and t.assist["op"] == "sign"
    assert allowed_actions(f, assist) == ["resolve"]         # its own part, whatever the lead has done
    f, _ = step(f, "sign", "unit_handler", at)
    assert allowed_actions(f, assist) == ["resolve"]
    f, t = step(f, "resolve", assist, at, note="已配合断电")
    assert f.state == "signed" and t.assist == {"op": "report", "unit_code": ASSIST_UNIT, "note": "已配合断电"}
    assert allowed_actions(f, assist) == []
    f, _ = step(f, "resolve", "unit_handler", at, note="已修复")
    f, _ = step(f, "verify", "grid_member", at)
    f, _ = step(f, "close", "duty_officer", at)
    assert f.state == "closed" and f.version == 3 + 11


def test_an_unfounded_check_leads_to_rejection():
    f = facts("reported", assists=())
    f, _ = step(f, "verify_request", "duty_officer", NOW)
    f, _ = step(f, "report_check", "grid_member", NOW, result="unfounded", note="现场无此问题")
    assert f.state == "reported"
    f, _ = step(f, "reject", "duty_officer", NOW, note="核实不属实")
    assert f.state == "rejected"
    for actor in ACTORS.values():
        assert allowed_actions(f, actor) == []


@pytest.mark.parametrize("state", sorted(EXPECTED_OPEN))
def test_void_ends_an_open_case_for_good(state):
    f, t = step(facts(state), "void", "duty_officer", NOW, note="重复工单，作废")
    assert f.state == "voided" and t.changes["voided_at"] == NOW and t.details["from_state"] == state
    for actor in ACTORS.values():
        assert allowed_actions(f, actor) == []


# ----------------------------------------------------------------------------------------
# a new round (改派, 重办, the dispatch after 返工) leaves the last round's requests and 督办 behind

def test_a_reassignment_drops_the_old_units_requests_and_its_supervision():
    old = facts("signed", extension_pending_hours=10.0, suspension_requested=True, supervised=True,
                supervision_level=1)
    t = plan(old, "reassign", ACTORS["duty_officer"], unit=THIRD_UNIT, note="不属本单位职责")
    assert t.to_state == "dispatched" and t.changes["unit_code"] == THIRD_UNIT
    assert t.changes["extension_pending_hours"] is None and t.changes["suspension_requested_at"] is None
    assert (t.changes["supervised"], t.changes["supervision_level"], t.changes["supervision_deadline"]) == \
        (False, None, None)
    assert t.details["dropped_extension_hours"] == 10.0 and t.details["ended_supervision_level"] == 1
    # the new unit's deadline is supervised anew (the scheduler's 督办 is not refused as a repeat)
    after = facts("dispatched", unit_code=THIRD_UNIT, deadline=t.changes["deadline_at"])
    assert plan(after, "supervise", SYSTEM_ACTOR, level=2, reminder="supervise_at_deadline").changes["supervised"]


def test_a_reassignment_to_an_assisting_unit_and_a_supervision_due_at_once_are_refused():
    err = refused(422, facts("returned"), "reassign", ACTORS["duty_officer"], unit=ASSIST_UNIT, note="改派")
    assert err.code == "unit_is_assisting" and "协办" in err.message
    err = refused(400, facts("dispatched"), "supervise", ACTORS["leader"], hours=1e-9)
    assert err.code == "invalid_hours" and "至少" in err.message
    assert plan(facts("dispatched"), "supervise", ACTORS["leader"], hours=1).changes["supervised"]
