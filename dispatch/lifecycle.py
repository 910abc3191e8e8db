"""The case lifecycle as a 数字城管 command center runs it (GB/T 30428 style): the rules table plus one function.

Pure Python (standard library and :mod:`dispatch.working_time` / :mod:`dispatch.center_rules`). Nothing
here touches a database: :func:`plan_transition` looks at a snapshot of a case (:class:`CaseFacts`), the
person acting (:class:`Actor`) and the request, and either returns a :class:`Transition` — the new state,
the field values and the rows (协办, 催办/督办, 扣分) the service must write, in one transaction with its
audit row — or raises :class:`TransitionRefused` with an HTTP status, a stable code and a Chinese message.

States and actions
------------------
``reported → (verifying ⇄ 核实) → accepted (立案) | rejected (不予立案) | merged (重复合并, at intake) →
dispatched (派遣) → signed (签收) → resolved (处置反馈) → verified (核查通过) → closed (结案)``.

- 核实: ``verify_request`` (center) sends a reported case to the grid member of its grid
  (``verifying``); ``report_check`` (grid member: ``result`` confirmed 属实 / unfounded 不属实) brings it
  back to ``reported`` for the center to accept or reject.
- ``void`` (作废, with a reason) ends any open case (``voided``).
- The unit's ``return`` (退回) goes to the center, which ``reassign``s (改派: another unit, the handling
  clock restarts) or ``refuse_return``s (驳回: back to the same unit, whose clock runs on).
- A failed check (``rework``, 返工) goes back to dispatch; each dispatch, 改派 and 重办 restarts the
  handling clock: the handling deadline counts from 派遣, not from the report.
- ``extend`` (the unit asks) → ``approve_extension`` (the deadline moves) / ``deny_extension``;
  ``request_suspension`` (挂账, the unit asks) → ``approve_suspension`` / ``deny_suspension``; the center
  may also ``suspend`` directly. Suspension stops the clock: ``resume`` (解挂) returns the case to the
  state it left with the handling time that was left.
- ``add_assist`` (协办): assisting units see the case, ``sign`` and report (``resolve``) on their own
  part; only the lead unit moves the case.
- ``urge`` (催办) and ``supervise`` (督办, with its level and own deadline) leave the case where it is
  and with its unit; they are recorded, and cost the unit penalty points (rules as data:
  ``data/catalog/center_rules.json``). The scheduler sends them at the warning (80 %) and the deadline.
- ``escalate`` (升级) is a person's explicit act with a reason: handling goes one level up.
- ``callback`` (回访) after closing, for hotline, citizen and Open311 cases: satisfied / basically
  satisfied / unsatisfied; an unsatisfied callback may ``reopen`` (重办) the case to the same unit
  with a new deadline.

Order of checks (the first failure is the answer)
-------------------------------------------------
1. unknown action → **400** ``unknown_action``;
2. the actor's role may not do the action → **403** ``forbidden_role``;
3. scope: the actor's area must be on the case's chain — ``admin`` and ``system`` act everywhere →
   **403** ``out_of_area``; a ``unit_handler`` acts only on cases of their unit → **403**
   ``not_your_unit`` (an assisting unit only signs and reports its part: ``assist_only``);
4. the case's state is not one the action starts from → **422** ``illegal_transition``, then the
   action's own conditions → **422** (each with its code, see :func:`_check_state`);
5. parameters → **400**: ``note_required``, ``invalid_hours``, ``unit_required``, ``invalid_result``,
   ``invalid_satisfaction``.

The version check (409) and the validation of a target unit are the service's job.
:func:`allowed_actions` runs steps 1–4 for every action (what buttons to show).

Field changes
-------------
``Transition.changes`` maps column names of ``cases`` to their new values; every move stamps its
column (``accepted_at``, ``dispatched_at``, ``signed_at``, ``resolved_at``, ``verified_at``,
``closed_at``, ``voided_at``, ``returned_at``, ``suspended_at``, ``resumed_at``, ``check_requested_at``,
``checked_at``, ``callback_at``). ``Transition.assist``, ``.supervision`` and ``.penalties`` are rows for
``case_assists``, ``case_supervision`` and ``case_penalties``. Times are aware UTC datetimes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from numbers import Real
from typing import Any

from dispatch.access import HOTLINE_ROLE
from dispatch.center_rules import DEFAULT_RULES, CenterRules
from dispatch.working_time import WARNING_FRACTION, WorkCalendar, clock_of, extension_unit, working_deadline

__all__ = [
    "ACTIONS",
    "ACTION_LABELS",
    "ACTOR_ROLES",
    "Actor",
    "AssistFacts",
    "CALLBACK_SOURCES",
    "CHECK_RESULTS",
    "CaseFacts",
    "HANDLING_STATES",
    "LEVEL_LABELS",
    "MAX_EXTENSION_HOURS",
    "OPEN_STATES",
    "ROLES",
    "ROLE_LABELS",
    "RULES",
    "Rule",
    "SATISFACTION",
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

STATES = ("reported", "verifying", "accepted", "rejected", "merged", "dispatched", "signed", "resolved",
          "verified", "closed", "rework", "returned", "suspended", "voided")
TERMINAL_STATES = ("rejected", "merged", "closed", "voided")
OPEN_STATES = tuple(s for s in STATES if s not in TERMINAL_STATES)
# the states in which the unit holds the case and its handling clock runs (data.models.IN_HAND_SQL)
HANDLING_STATES = ("dispatched", "signed")

STATE_LABELS = {
    "reported": "已上报",
    "verifying": "核实中",
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
    "voided": "已作废",
}

ACTIONS = ("accept", "reject", "verify_request", "report_check", "dispatch", "sign", "resolve", "return",
           "reassign", "refuse_return", "verify", "rework", "close", "extend", "approve_extension",
           "deny_extension", "request_suspension", "approve_suspension", "deny_suspension", "suspend",
           "resume", "add_assist", "urge", "supervise", "escalate", "void", "callback", "reopen")

ACTION_LABELS = {
    "accept": "立案",
    "reject": "不予立案",
    "verify_request": "派发核实",
    "report_check": "核实反馈",
    "dispatch": "派遣",
    "sign": "签收",
    "resolve": "处置反馈",
    "return": "退回",
    "reassign": "改派",
    "refuse_return": "驳回退回",
    "verify": "核查通过",
    "rework": "返工",
    "close": "结案",
    "extend": "申请延期",
    "approve_extension": "批准延期",
    "deny_extension": "驳回延期",
    "request_suspension": "申请挂账",
    "approve_suspension": "批准挂账",
    "deny_suspension": "驳回挂账",
    "suspend": "挂账",
    "resume": "解挂",
    "add_assist": "增加协办单位",
    "urge": "催办",
    "supervise": "督办",
    "escalate": "升级",
    "void": "作废",
    "callback": "回访",
    "reopen": "重办",
}

# the roles of people and tokens (same as data.tokens.ROLES) ...
ROLES = ("admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall")
# ... and the platform itself, for the automatic 催办 and 督办 as deadlines near and pass
SYSTEM_ROLE = "system"
ACTOR_ROLES = ROLES + (SYSTEM_ROLE, HOTLINE_ROLE)  # the 12345 system records its callbacks (see RULES)
SCOPE_FREE_ROLES = ("admin", SYSTEM_ROLE)

ROLE_LABELS = {
    "admin": "管理员",
    "duty_officer": "值班员",
    "leader": "领导",
    "unit_handler": "处置单位",
    "grid_member": "网格员",
    "wall": "大屏",
    "device": "物联设备",
    "hotline": "12345热线",
    "system": "系统",
}

LEVEL_LABELS = {1: "市级", 2: "区县级", 3: "街道（镇）级", 4: "社区（村）级", 5: "网格级"}
CITY_LEVEL = 1

# 核实 answers and 回访 results (CONTRACT.md), with their Chinese words (accepted as input too)
CHECK_RESULTS = {"confirmed": "属实", "unfounded": "不属实"}
SATISFACTION = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
# the channels whose reporter the center calls back (回访): a person who can be asked
CALLBACK_SOURCES = ("hotline", "citizen", "open311")

# an extension request may ask for at most this many hours (100 working days of 7.5 h)
MAX_EXTENSION_HOURS = 750
# a 督办 gives the unit at least this long (a deadline of a few seconds would be late at once)
MIN_SUPERVISION_HOURS = 1


# ----------------------------------------------------------------------------------------
# the rules table

@dataclass(frozen=True)
class Rule:
    """One action: from which states, to which state (``None``: the state stays; ``resume`` goes back
    to the state the case was suspended from), who may do it, and what it needs. ``note_label`` names
    the note in messages ("退回理由")."""

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
_OVERSEERS = ("leader", "duty_officer", "admin", SYSTEM_ROLE)
_IN_HAND = ("accepted", "dispatched", "signed", "returned", "rework")
_HANDLING = HANDLING_STATES

RULES: dict[str, Rule] = {r.action: r for r in (
    Rule("accept", ("reported",), "accepted", _OFFICE),
    Rule("reject", ("reported",), "rejected", _OFFICE, needs_note=True, note_label="不予立案理由"),
    Rule("verify_request", ("reported",), "verifying", _OFFICE),
    Rule("report_check", ("verifying",), "reported", ("grid_member", "admin")),
    Rule("dispatch", ("accepted", "rework"), "dispatched", _OFFICE, takes_unit=True),
    Rule("sign", ("dispatched",), "signed", _UNIT_OR_ADMIN),
    Rule("resolve", ("signed",), "resolved", _UNIT_OR_ADMIN, needs_note=True, note_label="处置情况说明"),
    Rule("return", _HANDLING, "returned", _UNIT, needs_note=True, note_label="退回理由"),
    Rule("reassign", ("returned",) + _HANDLING, "dispatched", _OFFICE, needs_note=True, note_label="改派理由",
         takes_unit=True),
    Rule("refuse_return", ("returned",), "dispatched", _OFFICE, needs_note=True, note_label="驳回理由"),
    Rule("verify", ("resolved",), "verified", _CHECKERS),
    Rule("rework", ("resolved",), "rework", _CHECKERS, needs_note=True, note_label="返工原因"),
    Rule("close", ("verified",), "closed", _OFFICE),
    Rule("extend", _HANDLING, None, _UNIT, needs_note=True, note_label="延期理由", needs_hours=True),
    Rule("approve_extension", _HANDLING, None, _OFFICE),
    Rule("deny_extension", _HANDLING, None, _OFFICE, needs_note=True, note_label="驳回理由"),
    Rule("request_suspension", _HANDLING, None, _UNIT, needs_note=True, note_label="挂账理由"),
    Rule("approve_suspension", _HANDLING, "suspended", _OFFICE),
    Rule("deny_suspension", _HANDLING, None, _OFFICE, needs_note=True, note_label="驳回理由"),
    Rule("suspend", _IN_HAND, "suspended", _OFFICE, needs_note=True, note_label="挂账原因"),
    Rule("resume", ("suspended",), None, _OFFICE),
    Rule("add_assist", _IN_HAND, None, _OFFICE, takes_unit=True),
    Rule("urge", _HANDLING, None, _OVERSEERS),
    Rule("supervise", _IN_HAND, None, _OVERSEERS),
    Rule("escalate", _IN_HAND, None, ("duty_officer", "leader", "admin"), needs_note=True,
         note_label="升级理由"),
    Rule("void", OPEN_STATES, "voided", _OFFICE, needs_note=True, note_label="作废理由"),
    # the center calls back (回访); the 12345 system calls its callers back itself and reports the answer
    # (cases/hotline.py): it may record the callback and, when the caller is not satisfied, reopen the case (through
    # POST /api/v1/hotline/…/callback only); a citizen rates their own case on /public through a system principal
    # (cases/citizen.py: the edge has proved the case is theirs)
    Rule("callback", ("closed",), None, _OFFICE + (HOTLINE_ROLE, SYSTEM_ROLE)),
    Rule("reopen", ("closed",), "dispatched", _OFFICE + (HOTLINE_ROLE,), needs_note=True, note_label="重办原因"),
)}

# what an assisting unit (协办) may do, and in which states of the case
_ASSIST_ACTIONS = ("sign", "resolve")
# the timestamp column each move sets
_STAMPS = {"accepted": "accepted_at", "rejected": "rejected_at", "dispatched": "dispatched_at",
           "signed": "signed_at", "resolved": "resolved_at", "verified": "verified_at", "closed": "closed_at",
           "voided": "voided_at", "returned": "returned_at", "suspended": "suspended_at",
           "verifying": "check_requested_at"}
# the moves that hand the case to a unit anew: its handling clock restarts and the round's stamps clear
_RESTARTS = ("dispatch", "reassign", "reopen")


# ----------------------------------------------------------------------------------------
# inputs and outputs

@dataclass(frozen=True)
class AssistFacts:
    """One assisting unit of the case (协办) and how far it got."""

    unit_code: str
    signed: bool = False
    reported: bool = False


@dataclass(frozen=True)
class CaseFacts:
    """What the lifecycle needs to know about a case (a snapshot the service reads).

    ``area_codes``: the case's chain, grid → city. ``handling_level``: 1 city … 5 grid.
    ``deadline``: the handling deadline (aware) or None. ``time_limit`` / ``time_unit``: the category's
    handling limit and unit ("working_hours", "working_days" on the working clock; "hours", "days",
    "minutes" on the calendar clock)."""

    state: str
    version: int = 1
    unit_code: str | None = None
    area_codes: tuple[str, ...] = ()
    handling_level: int | None = None
    supervised: bool = False
    supervision_level: int | None = None
    extension_pending_hours: float | None = None
    suspension_requested: bool = False
    state_before_suspension: str | None = None
    suspension_remaining_hours: float | None = None
    deadline: datetime | None = None
    time_limit: float | None = None
    time_unit: str = "working_hours"
    dispatched_at: datetime | None = None
    resumed_at: datetime | None = None
    closed_at: datetime | None = None
    callback_at: datetime | None = None
    callback_result: str | None = None
    source: str = ""
    assists: tuple[AssistFacts, ...] = ()
    rework_count: int = 0
    escalation_count: int = 0
    extension_count: int = 0
    urge_count: int = 0
    reassign_count: int = 0
    reopen_count: int = 0
    penalty_points: float = 0.0

    def assist(self, unit_code: str | None) -> AssistFacts | None:
        return next((a for a in self.assists if a.unit_code == unit_code), None) if unit_code else None


@dataclass(frozen=True)
class Actor:
    """Who acts: ``role`` one of :data:`ACTOR_ROLES`, ``area_code`` the node they are scoped to,
    ``unit_code`` their unit (unit handlers), ``level`` their area's level (1 city … 5 grid: the
    level a leader's 督办 is made at)."""

    ident: str
    role: str
    area_code: str = ""
    unit_code: str | None = None
    level: int | None = None


SYSTEM_ACTOR = Actor(ident="system", role=SYSTEM_ROLE, area_code="", unit_code=None)


@dataclass(frozen=True)
class Transition:
    """The planned transition: write ``changes`` to the case, bump its version, write the ``assist``,
    ``supervision`` and ``penalties`` rows and append an audit row (actor, now, ``from_state``,
    ``to_state``, ``note``, ``details``), all in one transaction."""

    action: str
    from_state: str
    to_state: str
    changes: dict[str, Any]
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    assist: dict[str, Any] | None = None
    supervision: dict[str, Any] | None = None
    penalties: tuple[dict[str, Any], ...] = ()

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


def _assisting(facts: CaseFacts, actor: Actor) -> bool:
    """True when ``actor`` is a handler of an assisting unit (not the lead) of the case."""
    return (actor.role == "unit_handler" and bool(actor.unit_code) and actor.unit_code != facts.unit_code
            and facts.assist(actor.unit_code) is not None)


def _check_actor(facts: CaseFacts, rule: Rule, actor: Actor) -> None:
    check_role(rule.action, actor)
    if actor.role in SCOPE_FREE_ROLES:
        return
    if not actor.area_code or actor.area_code not in facts.area_codes:
        raise TransitionRefused(403, "out_of_area", "该案件不在您的辖区内")
    if actor.role == "unit_handler" and (not actor.unit_code or actor.unit_code != facts.unit_code):
        if not _assisting(facts, actor):
            raise TransitionRefused(403, "not_your_unit", "该案件不属于您的单位")
        if rule.action not in _ASSIST_ACTIONS:
            raise TransitionRefused(403, "assist_only",
                                    f"协办单位只能签收和反馈协办情况，不能执行「{rule.label}」")


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


def _refuse(code: str, message: str) -> None:
    raise TransitionRefused(422, code, message)


def _check_assist_state(facts: CaseFacts, rule: Rule, actor: Actor) -> None:
    """An assisting unit signs its part once while the lead holds the case, then reports once."""
    mine = facts.assist(actor.unit_code)
    if facts.state not in _HANDLING:
        _refuse("illegal_transition", f"案件当前状态为「{_state_label(facts.state)}」，协办单位不能执行「{rule.label}」"
                f"（仅适用于：{'、'.join(_state_label(s) for s in _HANDLING)}）")
    if rule.action == "sign" and mine.signed:
        _refuse("already_signed", "本单位已签收该协办任务")
    if rule.action == "resolve":
        if not mine.signed:
            _refuse("assist_not_signed", "须先签收协办任务，才能反馈协办情况")
        if mine.reported:
            _refuse("already_reported", "本单位已反馈协办情况")


def _check_state(facts: CaseFacts, rule: Rule, actor: Actor) -> None:
    if _assisting(facts, actor):
        _check_assist_state(facts, rule, actor)
        return
    state = facts.state
    if state not in rule.from_states:
        allowed = "、".join(_state_label(s) for s in rule.from_states)
        _refuse("illegal_transition",
                f"案件当前状态为「{_state_label(state)}」，不能执行「{rule.label}」"
                f"（「{rule.label}」仅适用于：{allowed}）")
    action = rule.action
    if action == "escalate":
        level = facts.handling_level
        if level is None:
            _refuse("no_handling_level", "案件尚未确定处置层级，不能执行「升级」")
        if level <= CITY_LEVEL:
            _refuse("escalation_limit", "案件已由市级处置，已是最高层级，不能再执行「升级」")
    elif action == "extend":
        if facts.extension_pending_hours is not None:
            _refuse("extension_pending",
                    f"已有一项待审批的延期申请（{_hours_text(facts.extension_pending_hours, facts.time_unit)}），"
                    "须先审批，不能再执行「申请延期」")
        if facts.deadline is None:
            _refuse("no_deadline", "案件没有处置时限，不能执行「申请延期」")
    elif action in ("approve_extension", "deny_extension"):
        if facts.extension_pending_hours is None:
            _refuse("no_extension_pending", f"案件没有待审批的延期申请，不能执行「{rule.label}」")
        if facts.deadline is None:
            _refuse("no_deadline", f"案件没有处置时限，不能执行「{rule.label}」")
    elif action == "request_suspension" and facts.suspension_requested:
        _refuse("suspension_pending", "已有一项待审批的挂账申请，不能重复申请")
    elif action in ("approve_suspension", "deny_suspension") and not facts.suspension_requested:
        _refuse("no_suspension_pending", f"案件没有待审批的挂账申请，不能执行「{rule.label}」")
    elif action in ("urge", "supervise") and not facts.unit_code:
        _refuse("no_unit", f"案件尚无责任单位，不能执行「{rule.label}」")
    elif action == "supervise" and facts.supervised and facts.supervision_level is not None and \
            actor.role != SYSTEM_ROLE and (actor.level or CITY_LEVEL) >= facts.supervision_level:
        _refuse("already_supervised",
                f"案件已由{LEVEL_LABELS.get(facts.supervision_level, '')}督办，不能重复执行「督办」")
    elif action == "supervise" and facts.supervised and facts.supervision_level is None:
        _refuse("already_supervised", "案件已在督办中，不能重复执行「督办」")
    elif action == "callback":
        if facts.source not in CALLBACK_SOURCES:
            _refuse("no_callback", "只有热线、市民和 Open311 来源的案件需要回访")
        if _called_back(facts):
            _refuse("already_called_back", "该案件本次结案后已回访")
    elif action == "reopen" and not (_called_back(facts) and facts.callback_result == "unsatisfied"):
        _refuse("not_unsatisfied", "只有回访不满意的案件可以重办")


def _called_back(facts: CaseFacts) -> bool:
    """A callback was made after the case's latest closing."""
    return facts.callback_at is not None and (facts.closed_at is None or facts.callback_at >= facts.closed_at)


def _hours_text(hours: float, time_unit: str = "working_hours") -> str:
    value = int(hours) if float(hours).is_integer() else round(hours, 2)
    return f"{value} {'工作时' if clock_of(time_unit) == 'working' else '小时'}"


def _check_hours(hours, what: str = "延期时长") -> float:
    if hours is None:
        raise TransitionRefused(400, "invalid_hours", f"须填写{what}（hours）")
    if isinstance(hours, bool) or not isinstance(hours, Real):
        raise TransitionRefused(400, "invalid_hours", f"{what}须为数字，不能是“{hours}”")
    if not math.isfinite(hours) or hours <= 0:
        raise TransitionRefused(400, "invalid_hours", f"{what}须大于 0，不能是 {hours}")
    if hours > MAX_EXTENSION_HOURS:
        raise TransitionRefused(400, "invalid_hours", f"{what}最多 {MAX_EXTENSION_HOURS} 小时，不能是 {hours}")
    return float(hours)


def _word(value, words: dict[str, str], code: str, what: str) -> str:
    """``value`` as one of ``words``' keys (the Chinese word is accepted too), or a 400."""
    if isinstance(value, str):
        value = value.strip()
        for key, label in words.items():
            if value in (key, label):
                return key
    raise TransitionRefused(400, code, f"{what}须为：" + "、".join(f"{k}（{v}）" for k, v in words.items()))


def _aware_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} is a naive datetime ({value.isoformat()}): use aware UTC times")
    return value.astimezone(UTC)


# ----------------------------------------------------------------------------------------
# clocks

def handling_clock(start: datetime, facts: CaseFacts, calendar: WorkCalendar) -> dict[str, datetime | None]:
    """The handling deadline and its warning counted from ``start`` on the category's clock (派遣, 改派
    and 重办 start it): ``{"deadline_at", "warning_at"}``. No limit known: both None."""
    if facts.time_limit is None:
        return {"deadline_at": None, "warning_at": None}
    return {"deadline_at": working_deadline(start, facts.time_limit, facts.time_unit, calendar=calendar),
            "warning_at": working_deadline(start, WARNING_FRACTION * facts.time_limit, facts.time_unit,
                                           calendar=calendar)}


def warning_between(start: datetime, deadline: datetime, time_unit: str, calendar: WorkCalendar) -> datetime:
    """The instant 80 % of the time from ``start`` to ``deadline`` has run, on the case's clock."""
    unit = extension_unit(time_unit)
    total = max(0.0, calendar.working_time_between(start, deadline, unit))
    return working_deadline(start, WARNING_FRACTION * total, unit, calendar=calendar)


# ----------------------------------------------------------------------------------------
# the function

def plan_transition(facts: CaseFacts, action: str, actor: Actor, *, note: str = "",
                    hours: float | None = None, unit: str | None = None, result: str | None = None,
                    satisfaction: str | None = None, now: datetime, calendar: WorkCalendar,
                    rules: CenterRules = DEFAULT_RULES, reminder: str | None = None,
                    level: int | None = None) -> Transition:
    """Plan ``action`` by ``actor`` on the case described by ``facts`` at ``now`` (aware).

    ``note``: the note (required where the rule says); ``hours``: the hours asked (extend) or a 督办's
    own time limit (supervise, optional: the rules' default); ``unit``: the target unit (dispatch,
    reassign, add_assist; the service has validated it); ``result``: the 核实 answer (report_check);
    ``satisfaction``: the 回访 result (callback); ``calendar``: the working-time calendar; ``rules``:
    the center's rules (penalties, 督办 deadline); ``reminder``: the id of the automatic rule that
    sends an urge or supervise; ``level``: the level an automatic 督办 is made at. Returns a
    :class:`Transition` or raises :class:`TransitionRefused` (see the module docstring)."""
    rule = _rule(action)
    _check_actor(facts, rule, actor)
    _check_state(facts, rule, actor)

    now = _aware_utc(now, "now")
    note = (note or "").strip()
    if rule.needs_note and not note:
        raise TransitionRefused(400, "note_required", f"「{rule.label}」须填写{rule.note_label}")

    from_state = facts.state
    if _assisting(facts, actor):
        op = "sign" if action == "sign" else "report"
        if op == "report" and not note:
            raise TransitionRefused(400, "note_required", "「反馈协办情况」须填写协办情况说明")
        return Transition(action=action, from_state=from_state, to_state=from_state, changes={}, note=note,
                          details={"assist_unit": actor.unit_code},
                          assist={"op": op, "unit_code": actor.unit_code, "note": note})

    to_state = rule.to_state or from_state
    if action == "resume":
        to_state = facts.state_before_suspension or "accepted"
    changes: dict[str, Any] = {}
    details: dict[str, Any] = {}
    assist = supervision = None
    penalties: list[dict[str, Any]] = []
    if to_state != from_state:
        changes["state"] = to_state
        stamp = _STAMPS.get(to_state)
        # 解挂 returns to a state the case had already reached; 驳回 is no new 派遣: the handling clock
        # started at the 派遣 and runs on (the countdown, the stage and the unit's figures count from it)
        if stamp and action not in ("resume", "refuse_return"):
            changes[stamp] = now
    # No orphan request outlives the task: a pending 延期 or 挂账 request ends when the case leaves the
    # unit's hands, and with a new round (派遣, 改派, 重办), whose unit asks anew if it needs to.
    if (to_state != from_state and to_state not in _HANDLING) or action in _RESTARTS:
        if facts.extension_pending_hours is not None:
            changes["extension_pending_hours"] = None
            details["dropped_extension_hours"] = facts.extension_pending_hours
        if facts.suspension_requested:
            changes["suspension_requested_at"] = None
            details["dropped_suspension_request"] = True

    def penalize(act: str, reason: str) -> None:
        points = rules.penalty(act)
        if points > 0 and facts.unit_code:
            penalties.append({"unit_code": facts.unit_code, "points": points, "rule": act, "reason": reason})
            changes["penalty_points"] = facts.penalty_points + points

    if action in _RESTARTS:
        target = unit or None
        if action == "dispatch" and target is None and not facts.unit_code:
            raise TransitionRefused(400, "unit_required", "「派遣」须指定处置单位")
        if action == "reassign":
            if target is None:
                raise TransitionRefused(400, "unit_required", "「改派」须指定新的处置单位")
            if target == facts.unit_code:
                _refuse("same_unit", "改派须选择另一个处置单位")
            if facts.assist(target) is not None:
                _refuse("unit_is_assisting", "该单位已是本案协办单位，不能改派为主办单位")
            changes["reassign_count"] = facts.reassign_count + 1
        if action == "reopen":
            target = None
            changes["reopen_count"] = facts.reopen_count + 1
            changes["closed_at"] = None
            penalize("reopen", "回访不满意，重办")
        if target is not None:
            changes["unit_code"] = target
        details["unit"] = target or facts.unit_code
        if target is not None and facts.unit_code and target != facts.unit_code:
            details["previous_unit"] = facts.unit_code
        changes["dispatched_at"] = now
        # a new round: the unit signs, resolves and is checked anew; the last round's 督办 was about the
        # last round (a new deadline is reminded and supervised anew)
        changes.update(signed_at=None, resolved_at=None, verified_at=None)
        if facts.supervised:
            changes.update(supervised=False, supervision_level=None, supervision_deadline=None)
            details["ended_supervision_level"] = facts.supervision_level
        clock = handling_clock(now, facts, calendar)
        changes.update(clock)
        if clock["deadline_at"] is not None:
            details["deadline"] = clock["deadline_at"].isoformat()
    elif action == "refuse_return":
        details["unit"] = facts.unit_code       # back to the same unit; its clock ran on meanwhile
        changes["signed_at"] = None             # it signs for the case again
    elif action == "report_check":
        answer = _word(result, CHECK_RESULTS, "invalid_result", "核实结果 result")
        changes.update(checked_at=now, check_result=answer)
        details["result"] = answer
    elif action == "rework":
        changes["rework_count"] = facts.rework_count + 1
    elif action == "escalate":
        new_level = facts.handling_level - 1
        changes["handling_level"] = new_level
        changes["escalation_count"] = facts.escalation_count + 1
        details.update(from_level=facts.handling_level, to_level=new_level)
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
        # the warning moves with it: 80 % of the way from the clock's latest start to the new deadline
        start = max((t for t in (facts.dispatched_at, facts.resumed_at) if t is not None), default=now)
        changes["deadline_at"] = new
        changes["warning_at"] = warning_between(min(start, new), new, facts.time_unit, calendar)
        changes["extension_count"] = facts.extension_count + 1
        changes["extension_pending_hours"] = None
        details.update(hours=asked, old_deadline=old.isoformat(), new_deadline=new.isoformat())
    elif action == "deny_extension":
        changes["extension_pending_hours"] = None
        details["hours"] = facts.extension_pending_hours
    elif action == "request_suspension":
        changes["suspension_requested_at"] = now
    elif action == "deny_suspension":
        changes["suspension_requested_at"] = None
    elif action in ("suspend", "approve_suspension"):
        # the clock stops: keep the handling time left (negative when already overdue)
        changes["suspension_requested_at"] = None
        changes["state_before_suspension"] = from_state
        remaining = None
        if facts.deadline is not None:
            remaining = calendar.working_time_between(now, facts.deadline, extension_unit(facts.time_unit))
        changes["suspension_remaining_hours"] = remaining
        details["remaining_hours"] = None if remaining is None else round(remaining, 4)
    elif action == "resume":
        changes["resumed_at"] = now
        changes.update(state_before_suspension=None, suspension_remaining_hours=None)
        left = facts.suspension_remaining_hours
        if left is not None and left > 0:
            new = working_deadline(now, left, extension_unit(facts.time_unit), calendar=calendar)
            changes["deadline_at"] = new
            changes["warning_at"] = warning_between(now, new, facts.time_unit, calendar)
            details.update(remaining_hours=round(left, 4), new_deadline=new.isoformat())
        # an overdue case stays overdue: its deadline is not moved
    elif action == "add_assist":
        if unit is None:
            raise TransitionRefused(400, "unit_required", "「增加协办单位」须指定协办单位")
        if unit == facts.unit_code:
            _refuse("assist_is_lead", "该单位是主办单位，不能同时协办")
        if facts.assist(unit) is not None:
            _refuse("already_assisting", "该单位已是协办单位")
        changes["assist_units"] = [a.unit_code for a in facts.assists] + [unit]
        assist = {"op": "add", "unit_code": unit}
        details["assist_unit"] = unit
    elif action == "urge":
        changes["urge_count"] = facts.urge_count + 1
        supervision = {"kind": "urge", "unit_code": facts.unit_code, "level": actor.level,
                       "deadline_at": None, "for_deadline": facts.deadline,
                       "automatic": actor.role == SYSTEM_ROLE, "rule": reminder}
        penalize("urge", note or "催办")
    elif action == "supervise":
        at_level = level if actor.role == SYSTEM_ROLE and level else (actor.level or CITY_LEVEL)
        if actor.role == SYSTEM_ROLE and facts.supervised and facts.supervision_level is not None \
                and at_level >= facts.supervision_level:
            _refuse("already_supervised",
                    f"案件已由{LEVEL_LABELS.get(facts.supervision_level, '')}督办，不能重复执行「督办」")
        limit = _check_hours(hours, "督办时限") if hours is not None else \
            rules.supervision_deadline_hours[clock_of(facts.time_unit)]
        if limit < MIN_SUPERVISION_HOURS:
            raise TransitionRefused(400, "invalid_hours", f"督办时限至少 {MIN_SUPERVISION_HOURS} 小时，不能是 {hours}")
        own = working_deadline(now, limit, extension_unit(facts.time_unit), calendar=calendar)
        changes.update(supervised=True, supervision_level=at_level, supervision_deadline=own)
        supervision = {"kind": "supervise", "unit_code": facts.unit_code, "level": at_level,
                       "deadline_at": own, "for_deadline": facts.deadline,
                       "automatic": actor.role == SYSTEM_ROLE, "rule": reminder}
        details.update(level=at_level, deadline=own.isoformat())
        penalize("supervise", note or f"{LEVEL_LABELS.get(at_level, '')}督办")
    elif action == "callback":
        answer = _word(satisfaction, SATISFACTION, "invalid_satisfaction", "回访结果 satisfaction")
        changes.update(callback_at=now, callback_result=answer, callback_note=note or None)
        details["satisfaction"] = answer
    elif action == "void":
        details["from_state"] = from_state

    return Transition(action=action, from_state=from_state, to_state=to_state, changes=changes, note=note,
                      details=details, assist=assist, supervision=supervision, penalties=tuple(penalties))


def allowed_actions(facts: CaseFacts, actor: Actor) -> list[str]:
    """The actions ``actor`` may do on the case now, in :data:`ACTIONS` order (the console's
    buttons). Parameters (note, hours, unit, result) are not checked: the button asks for them."""
    out = []
    for action in ACTIONS:
        rule = RULES[action]
        try:
            _check_actor(facts, rule, actor)
            _check_state(facts, rule, actor)
        except TransitionRefused:
            continue
        out.append(action)
    return out
