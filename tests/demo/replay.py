"""A case's life replayed through dispatch.lifecycle.plan_transition: the columns, history details and
协办 / 催办督办 / 扣分 rows that CaseService.act would have written for the same acts, to hold written
cases against (the backfill writes rows directly; the simulator's decisions are walked without a database).

:class:`Replay` keeps a case's columns as intake wrote them and applies each act as the service does
(plan_transition's changes, version, the rows a Transition carries); :func:`check_replay` runs a
written case's history through it and asserts that every row and column matches.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

from dispatch import lifecycle

UTC = timezone.utc
# the columns of a case act() maintains (compared after a replay)
STAMPS = ("accepted_at", "rejected_at", "dispatched_at", "signed_at", "resolved_at", "verified_at", "closed_at",
          "voided_at", "returned_at", "suspended_at", "resumed_at", "check_requested_at", "checked_at",
          "callback_at", "suspension_requested_at")
COLUMNS = STAMPS + ("state", "version", "unit_code", "deadline_at", "warning_at", "handling_level", "supervised",
                    "supervision_level", "supervision_deadline", "extension_pending_hours",
                    "state_before_suspension", "suspension_remaining_hours", "check_result", "callback_result",
                    "callback_note", "rework_count", "extension_count", "escalation_count", "urge_count",
                    "reassign_count", "reopen_count", "penalty_points", "reporter_count", "assist_units")
REMINDER_RULES = {"urge": "urge_at_warning", "supervise": "supervise_at_deadline"}


def actor_of(ident: str, city: str, chain: tuple[str, ...]) -> lifecycle.Actor:
    """The lifecycle's actor behind a history row's actor (the simulated people and the scheduler)."""
    if ident.startswith("system:"):
        return lifecycle.Actor(ident=ident, role=lifecycle.SYSTEM_ROLE)
    if ident.startswith("sim:unit:"):
        return lifecycle.Actor(ident, "unit_handler", city, ident.removeprefix("sim:unit:"), 1)
    if ident.startswith("sim:grid:"):
        return lifecycle.Actor(ident, "grid_member", ident.removeprefix("sim:grid:"), None, 5)
    if ident == "sim:leader":
        return lifecycle.Actor(ident, "leader", city, None, 1)
    return lifecycle.Actor(ident, "duty_officer", city, None, 1)


class Replay:
    """A case's columns from its intake on, moved by plan_transition as act() moves them."""

    def __init__(self, *, category, chain: tuple[str, ...], source: str, reported_at: datetime,
                 unit_code: str | None, handling_level: int | None, calendar, rules, assist_units=()):
        self.category, self.chain, self.source = category, chain, source
        self.calendar, self.rules = calendar, rules
        self.col = dict.fromkeys(COLUMNS)
        self.col.update(state="reported", version=1, unit_code=unit_code, handling_level=handling_level,
                        supervised=False, rework_count=0, extension_count=0, escalation_count=0, urge_count=0,
                        reassign_count=0, reopen_count=0, penalty_points=0.0, reporter_count=1,
                        assist_units=list(assist_units),
                        deadline_at=calendar.working_deadline(reported_at, category.time_limit, category.time_unit))
        self.reported_at = reported_at
        self.assists: dict[str, dict] = {}
        self.supervision: list[tuple] = []
        self.penalties: list[tuple] = []
        self.history: list[dict] = [{"at": reported_at, "action": "report", "from": None, "to": "reported",
                                     "note": "", "details": None}]

    def facts(self) -> lifecycle.CaseFacts:
        c = self.col
        return lifecycle.CaseFacts(
            state=c["state"], version=c["version"], unit_code=c["unit_code"], area_codes=self.chain,
            handling_level=c["handling_level"] or 5, supervised=c["supervised"],
            supervision_level=c["supervision_level"], extension_pending_hours=c["extension_pending_hours"],
            suspension_requested=c["suspension_requested_at"] is not None,
            state_before_suspension=c["state_before_suspension"],
            suspension_remaining_hours=c["suspension_remaining_hours"], deadline=c["deadline_at"],
            time_limit=self.category.time_limit, time_unit=self.category.time_unit,
            dispatched_at=c["dispatched_at"], resumed_at=c["resumed_at"], closed_at=c["closed_at"],
            callback_at=c["callback_at"], callback_result=c["callback_result"], source=self.source,
            assists=self._assist_facts(),
            rework_count=c["rework_count"], escalation_count=c["escalation_count"],
            extension_count=c["extension_count"], urge_count=c["urge_count"], reassign_count=c["reassign_count"],
            reopen_count=c["reopen_count"], penalty_points=c["penalty_points"])

    def _assist_facts(self) -> tuple:
        """As CaseService._facts: the units intake routed as assisting, then those added, each with its row."""
        codes = list(self.col["assist_units"] or []) + [u for u in self.assists if u not in (self.col["assist_units"] or [])]
        out = []
        for u in codes:
            a = self.assists.get(u)
            out.append(lifecycle.AssistFacts(u, a is not None and a["signed_at"] is not None,
                                             a is not None and a["reported_at"] is not None))
        return tuple(out)

    def merge(self, at: datetime) -> None:
        self.col["version"] += 1
        self.col["reporter_count"] += 1
        self.history.append({"at": at, "action": "merge", "from": self.col["state"], "to": self.col["state"],
                             "note": "", "details": None})

    def act(self, action: str, actor: lifecycle.Actor, at: datetime, note: str = "", **kw) -> lifecycle.Transition:
        """plan_transition, then what act() writes (raises TransitionRefused when the act is illegal)."""
        reminder = REMINDER_RULES.get(action) if actor.role == lifecycle.SYSTEM_ROLE else None
        t = lifecycle.plan_transition(self.facts(), action, actor, note=note, now=at, calendar=self.calendar,
                                      rules=self.rules, reminder=reminder, **kw)
        self.col.update(t.changes)
        self.col["version"] += 1
        if t.assist is not None:
            op, code = t.assist["op"], t.assist["unit_code"]
            if op == "add":
                self.assists[code] = {"added_at": at, "signed_at": None, "reported_at": None, "note": None}
            else:  # an intake-routed assisting unit gets its row when it first acts (CaseService._write_rows)
                row = self.assists.setdefault(code, {"added_at": at, "signed_at": None, "reported_at": None,
                                                     "note": None})
                if op == "sign":
                    row["signed_at"] = at
                else:
                    row.update(reported_at=at, note=t.assist["note"])
        if t.supervision is not None:
            v = t.supervision
            self.supervision.append((v["kind"], v["unit_code"], v["level"], at, v["deadline_at"], v["for_deadline"],
                                     actor.ident, v["automatic"], v["rule"], t.note))
        for p in t.penalties:
            self.penalties.append((p["unit_code"], p["points"], p["rule"], p["reason"], at))
        self.history.append({"at": at, "action": action, "from": t.from_state, "to": t.to_state,
                             "note": t.note or note, "details": t.details or None})
        return t

    # -- the case object next_steps reads (the service's case_dict, as far as the simulator looks)
    def case_dict(self, case_id: int, kind: str) -> dict:
        c = self.col
        iso = lambda v: None if v is None else v.astimezone(UTC).isoformat()  # noqa: E731
        return {
            "id": case_id, "state": c["state"], "version": c["version"], "kind": kind, "source": self.source,
            "category": {"code": self.category.code, "kind": kind},
            "chain": [{"code": code, "level": 5 - i} for i, code in enumerate(self.chain)],
            "unit": {"code": c["unit_code"]} if c["unit_code"] else None, "deadline": iso(c["deadline_at"]),
            "handling_level": c["handling_level"], "time_unit": self.category.time_unit,
            "supervised": c["supervised"], "extension_pending_hours": c["extension_pending_hours"],
            "extension_count": c["extension_count"], "rework_count": c["rework_count"],
            "reassign_count": c["reassign_count"], "reopen_count": c["reopen_count"], "check_result": c["check_result"],
            "suspension": ({"state": "requested", "since": iso(c["suspension_requested_at"])}
                           if c["suspension_requested_at"] is not None else None),
            "assists": [{"unit": {"code": u}, "added_at": iso(a["added_at"]), "signed_at": iso(a["signed_at"]),
                         "reported_at": iso(a["reported_at"])} for u, a in self.assists.items()],
            "callback": None if c["callback_at"] is None else {"result": c["callback_result"],
                                                                "at": iso(c["callback_at"])},
            **{k: iso(c[k]) for k in STAMPS}, "reported_at": iso(self.reported_at),
            "updated_at": iso(self.history[-1]["at"]),
            "history": [{"at": iso(h["at"]), "action": h["action"], "from": h["from"], "to": h["to"],
                         "note": h["note"]} for h in self.history],
        }


def _details(value):
    if value is None or value == "null":
        return None
    return json.loads(value) if isinstance(value, str) else value


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return a == b


def check_replay(case, history, events, assists, supervision, penalties, *, catalog, calendar, rules, city: str,
                 chain: tuple[str, ...]) -> Replay:
    """Assert that the written case (ORM rows of the case, its history, outbox events, 协办, 催办/督办 and
    扣分 rows) is what act() writes for the acts its history records. Returns the replay."""
    where = f"case #{case.id} ({case.idempotency_key})"
    cat = catalog[case.category_code]
    first = history[0]
    assert first.action == "report" and first.from_state is None and first.to_state == "reported", where
    r = Replay(category=cat, chain=chain, source=case.source, reported_at=case.reported_at,
               unit_code=events[0].unit_code, handling_level=case.handling_level, calendar=calendar, rules=rules,
               assist_units=_intake_assists(case, history))
    for h, ev in zip(history[1:], events[1:]):
        if h.action == "merge":
            r.merge(h.at)
            continue
        d = _details(h.details) or {}
        actor = actor_of(h.actor, city, chain)
        kw = {}
        if h.action == "extend":
            kw["hours"] = d["hours"]
        elif h.action in ("dispatch", "reassign") and "unit" in d:
            kw["unit"] = d["unit"]
        elif h.action == "add_assist":
            kw["unit"] = d["assist_unit"]
        elif h.action == "report_check":
            kw["result"] = d["result"]
        elif h.action == "callback":
            kw["satisfaction"] = d["satisfaction"]
        elif h.action == "supervise" and actor.role == lifecycle.SYSTEM_ROLE:
            kw["level"] = d["level"]
        try:
            t = r.act(h.action, actor, h.at, h.note or "", **kw)
        except lifecycle.TransitionRefused as exc:
            raise AssertionError(f"{where}: {h.action} by {h.actor} at {h.at} refused: {exc!r}") from None
        assert (t.from_state, t.to_state) == (h.from_state, h.to_state), (where, h.action)
        assert (t.details or None) == _details(h.details), (where, h.action, t.details, h.details)
        assert (t.note or h.note or "") == (h.note or ""), (where, h.action)
        assert ev.unit_code == r.col["unit_code"], (where, h.action, ev.unit_code, r.col["unit_code"])
        assert ev.at == h.at and ev.type == "updated", where
    for name in COLUMNS:
        want, got = r.col[name], getattr(case, name)
        if name == "assist_units":
            got = list(got or [])
        assert _same(want, got), (where, name, want, got)
    got_assists = {a.unit_code: {"added_at": a.added_at, "signed_at": a.signed_at, "reported_at": a.reported_at,
                                 "note": a.report_note} for a in assists}
    assert got_assists == r.assists, (where, got_assists, r.assists)
    got_sup = [(s.kind, s.unit_code, s.level, s.at, s.deadline_at, s.for_deadline, s.actor, s.automatic, s.rule,
                s.note) for s in supervision]
    assert got_sup == r.supervision, (where, got_sup, r.supervision)
    got_pen = [(p.unit_code, p.points, p.rule, p.reason, p.at) for p in penalties]
    assert got_pen == r.penalties, (where, got_pen, r.penalties)
    return r


def _intake_assists(case, history) -> list[str]:
    """The assisting units intake routed the case to (an emergency's 协同单位): the case's assist_units but
    those an add_assist appended."""
    added = {(h.details or {}).get("assist_unit") for h in history if h.action == "add_assist"}
    return [u for u in (case.assist_units or []) if u not in added]


def first_round_after(t: datetime, seconds: float) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=seconds)
    return epoch + -((epoch - t) // step) * step
