"""The case lifecycle (GB/T 30428.8 style): the state machine as plain data plus one function.

Pure Python (standard library and :mod:`dispatch.working_time` only). Nothing here touches a
database: :func:`plan_transition` looks at a snapshot of a case (:class:`CaseFacts`), the person
acting (:class:`Actor`) and the request, and either returns a :class:`Transition` — the new state
and the field values the service must write, in one transaction with its audit row — or raises
:class:`TransitionRefused` with an HTTP status, a stable code and a message in Chinese.

States and actions
------------------
``reported → accepted (立案) | rejected (不予立案) | merged (重复合并) → dispatched (派遣) →
signed (签收) → resolved (处置反馈) → verified (核查通过) → closed (结案)``; a failed check sends
the case to ``rework`` (返工) and back to dispatch; the unit may ``return`` it (退回, with a
reason) to the command center for redispatch; ``suspend`` (挂账) parks a case that cannot be
solved now; ``escalate`` (升级), ``extend`` / ``approve_extension`` (延期) and ``supervise``
(督办) leave the state as it is and change fields of the case. ``merged`` is reached at intake
(dedupe), never through an action. Every action's rule is one row of :data:`RULES`.

Order of checks (the first failure is the answer)
-------------------------------------------------
1. unknown action → **400** ``unknown_action``;
2. the actor's role may not do the action → **403** ``forbidden_role``;
3. scope: the actor's area must be on the case's chain (grid → city) — ``admin`` and the
   ``system`` actor act everywhere → **403** ``out_of_area``; a ``unit_handler`` acts only on
   cases of their own unit → **403** ``not_your_unit``;
4. the case's state is not one the action starts from → **422** ``illegal_transition``, and the
   action-specific conditions → **422**: escalation at the city (``escalation_limit``), an
   extension already pending (``extension_pending``) or none to approve
   (``no_extension_pending``), no deadline to extend (``no_deadline``), already supervised
   (``already_supervised``), no known handling level (``no_handling_level``);
5. parameters → **400**: a required note is empty (``note_required``), ``hours`` missing, not a
   number, not > 0 or above :data:`MAX_EXTENSION_HOURS` (``invalid_hours``), a dispatch with no
   unit at all (``unit_required``).

The version check (409 on a stale version) and the validation of a dispatch's target unit are the
service's job. :func:`allowed_actions` runs steps 1–4 for every action (what buttons to show).

Field changes
-------------
``Transition.changes`` maps column names of ``cases`` to their new values: ``state`` (only when
it changes), ``accepted_at``, ``rejected_at``, ``dispatched_at``, ``resolved_at``, ``closed_at``,
``unit_code`` (dispatch with a unit), ``handling_level`` and ``escalation_count`` (escalate),
``rework_count`` (rework), ``supervised`` (supervise), ``deadline_at`` and ``extension_count``
(approve_extension), ``extension_pending_hours`` (extend sets it, approve_extension clears it, and
it is cleared whenever the case leaves dispatched/signed so that no orphan request survives a
resolve, return or suspension). Times are aware UTC datetimes (``now`` converted to UTC).
``Transition.details`` holds JSON-ready facts for the audit row (levels, hours, old and new
deadline in ISO 8601, units).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from numbers import Real
from typing import Any

from dispatch.working_time import WorkCalendar, extension_unit, working_deadline

__all__ = [
    "ACTIONS",
    "ACTION_LABELS",
    "ACTOR_ROLES",
    "Actor",
    "CaseFacts",
    "LEVEL_LABELS",
    "MAX_EXTENSION_HOURS",
    "OPEN_STATES",
    "ROLES",
    "ROLE_LABELS",
    "RULES",
    "Rule",
    "SCOPE_FREE_ROLES",
    "STATES",
    "STATE_LABELS",
    "SYSTEM_ACTOR",
    "SYSTEM_ROLE",
    "TERMINAL_STATES",
    "Transition",
    "TransitionRefused",
    "allowed_actions",
    "check_role",
    "plan_transition",
]

UTC = timezone.utc

# ----------------------------------------------------------------------------------------
# states, roles, labels

STATES = ("reported", "accepted", "rejected", "merged", "dispatched", "signed", "resolved",
          "verified", "closed", "rework", "returned", "suspended")
TERMINAL_STATES = ("rejected", "merged", "closed")
OPEN_STATES = tuple(s for s in STATES if s not in TERMINAL_STATES)

STATE_LABELS = {
    "reported": "已上报",
    "accepted": "已立案",
    "rejected": "不予立案",
    "merged": "已合并",
    "dispatched": "已派遣",
    "signed": "已签收",
    "resolved": "已处置",
    "verified": "核查通过",
    "closed": "已结案",
    "rework": "返工",
    "returned": "已退回",
    "suspended": "挂账",
}

ACTIONS = ("accept", "reject", "dispatch", "sign", "resolve", "verify", "rework", "return",
           "close", "escalate", "extend", "approve_extension", "suspend", "supervise")

ACTION_LABELS = {
    "accept": "立案",
    "reject": "不予立案",
    "dispatch": "派遣",
    "sign": "签收",
    "resolve": "处置反馈",
    "verify": "核查通过",
    "rework": "返工",
    "return": "退回",
    "close": "结案",
    "escalate": "升级",
    "extend": "申请延期",
    "approve_extension": "批准延期",
    "suspend": "挂账",
    "supervise": "督办",
}

# the roles of people and tokens (same as data.tokens.ROLES) ...
ROLES = ("admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall")
# ... and the platform itself, for the automatic escalation when a deadline passes
SYSTEM_ROLE = "system"
ACTOR_ROLES = ROLES + (SYSTEM_ROLE,)
SCOPE_FREE_ROLES = ("admin", SYSTEM_ROLE)

ROLE_LABELS = {
    "admin": "管理员",
    "duty_officer": "值班员",
    "leader": "领导",
    "unit_handler": "处置单位",
    "grid_member": "网格员",
    "wall": "大屏",
    "system": "系统",
}

LEVEL_LABELS = {1: "市级", 2: "区县级", 3: "街道（镇）级", 4: "社区（村）级", 5: "网格级"}
CITY_LEVEL = 1

# an extension request may ask for at most this many working hours (100 working days of 7.5 h)
MAX_EXTENSION_HOURS = 750


# ----------------------------------------------------------------------------------------
# the rules table

@dataclass(frozen=True)
class Rule:
    """One action: from which states, to which state (``None``: the state stays), who may do it,
    and what it needs. ``note_label`` names the note in messages ("退回理由")."""

    action: str
    from_states: tuple[str, ...]
    to_state: str | None
    roles: tuple[str, ...]
    needs_note: bool = False
    note_label: str = "说明"
    needs_hours: bool = False
    takes_unit: bool = False

    @property
    def label(self) -> str:
        return ACTION_LABELS[self.action]


_OFFICE = ("duty_officer", "admin")
_UNIT = ("unit_handler",)
_UNIT_OR_ADMIN = ("unit_handler", "admin")
_CHECKERS = ("duty_officer", "grid_member", "admin")
_IN_HAND = ("accepted", "dispatched", "signed", "returned", "rework")

RULES: dict[str, Rule] = {r.action: r for r in (
    Rule("accept", ("reported",), "accepted", _OFFICE),
    Rule("reject", ("reported",), "rejected", _OFFICE, needs_note=True, note_label="不予立案理由"),
    Rule("dispatch", ("accepted", "returned", "rework", "suspended"), "dispatched", _OFFICE,
         takes_unit=True),
    Rule("sign", ("dispatched",), "signed", _UNIT_OR_ADMIN),
    Rule("resolve", ("signed",), "resolved", _UNIT_OR_ADMIN, needs_note=True,
         note_label="处置情况说明"),
    Rule("return", ("dispatched", "signed"), "returned", _UNIT, needs_note=True,
         note_label="退回理由"),
    Rule("verify", ("resolved",), "verified", _CHECKERS),
    Rule("rework", ("resolved",), "rework", _CHECKERS, needs_note=True, note_label="返工原因"),
    Rule("close", ("verified",), "closed", _OFFICE),
    Rule("escalate", _IN_HAND, None, ("duty_officer", "leader", "admin", SYSTEM_ROLE)),
    Rule("extend", ("dispatched", "signed"), None, _UNIT, needs_note=True, note_label="延期理由",
         needs_hours=True),
    Rule("approve_extension", ("dispatched", "signed"), None, _OFFICE),
    Rule("suspend", _IN_HAND, "suspended", _OFFICE, needs_note=True, note_label="挂账原因"),
    Rule("supervise", OPEN_STATES, None, ("leader", "duty_officer", "admin")),
)}

# states in which an extension request can be pending (and approved)
_EXTENSION_STATES = ("dispatched", "signed")
# the timestamp column each move sets
_STAMPS = {"accepted": "accepted_at", "rejected": "rejected_at", "dispatched": "dispatched_at",
           "resolved": "resolved_at", "closed": "closed_at"}


# ----------------------------------------------------------------------------------------
# inputs and outputs

@dataclass(frozen=True)
class CaseFacts:
    """What the lifecycle needs to know about a case (a snapshot the service reads).

    ``area_codes``: the case's chain, grid → city. ``handling_level``: 1 city … 5 grid.
    ``deadline``: aware datetime or None. ``time_unit``: the category's unit ("working_hours",
    "working_days" on the working clock; "hours", "days" or "minutes" on the calendar clock)."""

    state: str
    version: int = 1
    unit_code: str | None = None
    area_codes: tuple[str, ...] = ()
    handling_level: int | None = None
    supervised: bool = False
    extension_pending_hours: float | None = None
    deadline: datetime | None = None
    time_unit: str = "working_hours"
    rework_count: int = 0
    escalation_count: int = 0
    extension_count: int = 0


@dataclass(frozen=True)
class Actor:
    """Who acts: ``role`` one of :data:`ACTOR_ROLES`, ``area_code`` the node they are scoped to,
    ``unit_code`` their unit (unit handlers)."""

    ident: str
    role: str
    area_code: str = ""
    unit_code: str | None = None


SYSTEM_ACTOR = Actor(ident="system", role=SYSTEM_ROLE, area_code="", unit_code=None)


@dataclass(frozen=True)
class Transition:
    """The planned transition: write ``changes`` to the case, bump its version and append an audit
    row (actor, now, ``from_state``, ``to_state``, ``note``, ``details``) in one transaction."""

    action: str
    from_state: str
    to_state: str
    changes: dict[str, Any]
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def moves(self) -> bool:
        """True when the state changes."""
        return self.from_state != self.to_state


class TransitionRefused(Exception):
    """Refused: ``status`` 400 (bad parameters), 403 (role or scope) or 422 (illegal in the case's
    state); ``code`` a stable machine-readable word; ``message`` Chinese, for people."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def __repr__(self) -> str:
        return f"TransitionRefused({self.status}, {self.code!r}, {self.message!r})"


# ----------------------------------------------------------------------------------------
# checks

def _state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)


def _role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


def _rule(action: str) -> Rule:
    rule = RULES.get(action) if isinstance(action, str) else None
    if rule is None:
        raise TransitionRefused(
            400, "unknown_action",
            f"未知的操作“{action}”，可用操作：" + "、".join(ACTIONS))
    return rule


def _check_actor(facts: CaseFacts, rule: Rule, actor: Actor) -> None:
    if actor.role not in rule.roles:
        raise TransitionRefused(
            403, "forbidden_role",
            f"角色「{_role_label(actor.role)}」无权执行「{rule.label}」")
    if actor.role in SCOPE_FREE_ROLES:
        return
    if not actor.area_code or actor.area_code not in facts.area_codes:
        raise TransitionRefused(403, "out_of_area", "该案件不在您的辖区内")
    if actor.role == "unit_handler" and (not actor.unit_code or actor.unit_code != facts.unit_code):
        raise TransitionRefused(403, "not_your_unit", "该案件不属于您的单位")


def check_role(action: str, actor: Actor) -> Rule:
    """Steps 1–2 alone (unknown action 400, role 403): may ``actor``'s role ever do ``action``,
    whatever the case? It depends on nothing that changes, so a service asks it before the version
    (a wall on an old version is told "not allowed", not "conflict"). Returns the rule."""
    rule = _rule(action)
    if actor.role not in rule.roles:
        raise TransitionRefused(
            403, "forbidden_role",
            f"角色「{_role_label(actor.role)}」无权执行「{rule.label}」")
    return rule


def _check_state(facts: CaseFacts, rule: Rule) -> None:
    state = facts.state
    if state not in rule.from_states:
        allowed = "、".join(_state_label(s) for s in rule.from_states)
        raise TransitionRefused(
            422, "illegal_transition",
            f"案件当前状态为「{_state_label(state)}」，不能执行「{rule.label}」"
            f"（「{rule.label}」仅适用于：{allowed}）")
    action = rule.action
    if action == "escalate":
        level = facts.handling_level
        if level is None:
            raise TransitionRefused(422, "no_handling_level",
                                    "案件尚未确定处置层级，不能执行「升级」")
        if level <= CITY_LEVEL:
            raise TransitionRefused(422, "escalation_limit",
                                    "案件已由市级处置，已是最高层级，不能再执行「升级」")
    elif action == "extend":
        if facts.extension_pending_hours is not None:
            raise TransitionRefused(
                422, "extension_pending",
                f"已有一项待审批的延期申请（{_hours_text(facts.extension_pending_hours)}），"
                "须先审批，不能再执行「申请延期」")
        if facts.deadline is None:
            raise TransitionRefused(422, "no_deadline", "案件没有处置时限，不能执行「申请延期」")
    elif action == "approve_extension":
        if facts.extension_pending_hours is None:
            raise TransitionRefused(422, "no_extension_pending",
                                    "案件没有待审批的延期申请，不能执行「批准延期」")
        if facts.deadline is None:
            raise TransitionRefused(422, "no_deadline", "案件没有处置时限，不能执行「批准延期」")
    elif action == "supervise" and facts.supervised:
        raise TransitionRefused(422, "already_supervised", "案件已在督办中，不能重复执行「督办」")


def _hours_text(hours: float) -> str:
    value = int(hours) if float(hours).is_integer() else hours
    return f"{value} 工作时"


def _check_hours(hours) -> float:
    if hours is None:
        raise TransitionRefused(400, "invalid_hours", "「申请延期」须填写延期时长（工作时，hours）")
    if isinstance(hours, bool) or not isinstance(hours, Real):
        raise TransitionRefused(400, "invalid_hours", f"延期时长须为数字，不能是“{hours}”")
    if not math.isfinite(hours) or hours <= 0:
        raise TransitionRefused(400, "invalid_hours", f"延期时长须大于 0，不能是 {hours}")
    if hours > MAX_EXTENSION_HOURS:
        raise TransitionRefused(
            400, "invalid_hours", f"延期时长最多 {MAX_EXTENSION_HOURS} 工作时，不能是 {hours}")
    return hours


def _aware_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} is a naive datetime ({value.isoformat()}): use aware UTC times")
    return value.astimezone(UTC)


# ----------------------------------------------------------------------------------------
# the function

def plan_transition(facts: CaseFacts, action: str, actor: Actor, *, note: str = "",
                    hours: float | None = None, unit: str | None = None, now: datetime,
                    calendar: WorkCalendar) -> Transition:
    """Plan ``action`` by ``actor`` on the case described by ``facts`` at ``now`` (aware).

    ``note``: the note (required for reject, resolve, return, rework, extend, suspend);
    ``hours``: the working hours asked for (extend); ``unit``: the target unit (dispatch; the
    service has validated it); ``calendar``: the working-time calendar (approve_extension counts
    the new deadline on it; the shipped one is ``data.files.calendar()``). Returns a
    :class:`Transition` or raises :class:`TransitionRefused` (400 / 403 / 422, see the module
    docstring)."""
    rule = _rule(action)
    _check_actor(facts, rule, actor)
    _check_state(facts, rule)

    now = _aware_utc(now, "now")
    note = (note or "").strip()
    if rule.needs_note and not note:
        raise TransitionRefused(400, "note_required", f"「{rule.label}」须填写{rule.note_label}")

    from_state = facts.state
    to_state = rule.to_state or from_state
    changes: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if to_state != from_state:
        changes["state"] = to_state
        stamp = _STAMPS.get(to_state)
        if stamp:
            changes[stamp] = now
        if facts.extension_pending_hours is not None and to_state not in _EXTENSION_STATES:
            changes["extension_pending_hours"] = None     # no orphan request outlives the task
            details["dropped_extension_hours"] = facts.extension_pending_hours

    if action == "dispatch":
        target = unit or None
        if target is None and not facts.unit_code:
            raise TransitionRefused(400, "unit_required", "「派遣」须指定处置单位")
        if target is not None:
            changes["unit_code"] = target
        details["unit"] = target or facts.unit_code
        if target is not None and facts.unit_code and target != facts.unit_code:
            details["previous_unit"] = facts.unit_code
    elif action == "rework":
        changes["rework_count"] = facts.rework_count + 1
    elif action == "escalate":
        new_level = facts.handling_level - 1
        changes["handling_level"] = new_level
        changes["escalation_count"] = facts.escalation_count + 1
        details.update(from_level=facts.handling_level, to_level=new_level,
                       automatic=actor.role == SYSTEM_ROLE)
    elif action == "extend":
        asked = _check_hours(hours)
        changes["extension_pending_hours"] = asked
        details["hours"] = asked
    elif action == "approve_extension":
        asked = facts.extension_pending_hours
        old = _aware_utc(facts.deadline, "deadline")
        # the hours asked run on the case's own clock (calendar hours for emergencies and urgent
        # categories, working hours otherwise): working_time.extension_unit decides
        new = working_deadline(old, asked, extension_unit(facts.time_unit), calendar=calendar)
        changes["deadline_at"] = new
        changes["extension_count"] = facts.extension_count + 1
        changes["extension_pending_hours"] = None
        details.update(hours=asked, old_deadline=old.isoformat(), new_deadline=new.isoformat())
    elif action == "supervise":
        changes["supervised"] = True

    return Transition(action=action, from_state=from_state, to_state=to_state,
                      changes=changes, note=note, details=details)


def allowed_actions(facts: CaseFacts, actor: Actor) -> list[str]:
    """The actions ``actor`` may do on the case now, in :data:`ACTIONS` order (the console's
    buttons). Parameters (note, hours, unit) are not checked: the button asks for them."""
    out = []
    for action in ACTIONS:
        rule = RULES[action]
        try:
            _check_actor(facts, rule, actor)
            _check_state(facts, rule)
        except TransitionRefused:
            continue
        out.append(action)
    return out
