"""Each stage of a case with its start, deadline, end and whether it ran late: the stage clocks shown to people.

Pure Python. The stamps on the case say when each stage started and ended; the center's limits
(:class:`dispatch.center_rules.CenterRules`) say how long each may take, on the category's clock
(working hours or calendar hours); the unit's handling stage ends at the case's own deadline
(counted from 派遣, moved by 延期 and 挂账).
"""
from __future__ import annotations

from datetime import datetime
from typing import Mapping

from dispatch.center_rules import CenterRules
from dispatch.working_time import WARNING_FRACTION, WorkCalendar, extension_unit

__all__ = ["stage_clocks"]

_ENDED = ("rejected", "merged", "voided")


def _first(*values):
    return next((v for v in values if v is not None), None)


def stage_clocks(stamps: Mapping[str, datetime | None], state: str, time_unit: str,
                 rules: CenterRules, calendar: WorkCalendar, now: datetime) -> list[dict]:
    """The case's stages so far, in order: ``name``, ``label``, ``started_at``, ``deadline``,
    ``done_at``, ``overdue``, ``warning`` (80 % of the stage's time gone while it is open) and
    ``paused`` (the handling stage of a suspended case). ``stamps`` holds the case's columns
    (reported_at, check_requested_at, checked_at, accepted_at, rejected_at, voided_at, returned_at,
    dispatched_at, signed_at, resolved_at, verified_at, closed_at, suspended_at, deadline_at)."""
    g = stamps.get
    unit = extension_unit(time_unit)
    ended_at = _first(g("voided_at"), g("rejected_at")) if state in _ENDED else None
    spans: list[tuple[str, datetime | None, datetime | None]] = []
    if g("check_requested_at"):
        spans.append(("accept", g("reported_at"), g("check_requested_at")))
        spans.append(("check", g("check_requested_at"), g("checked_at")))
        if g("checked_at"):
            spans.append(("file", g("checked_at"), _first(g("accepted_at"), g("rejected_at"))))
    else:
        spans.append(("accept", g("reported_at"), _first(g("accepted_at"), g("rejected_at"))))
    if g("accepted_at"):
        start, done = g("accepted_at"), g("dispatched_at")
        if state == "returned":          # waiting for the center's 改派 or 驳回 since the return
            start, done = g("returned_at") or start, None
        elif g("returned_at") and done and start <= g("returned_at") <= done:
            start = g("returned_at")
        spans.append(("dispatch", start, done))
    if g("dispatched_at") and state != "returned":
        spans.append(("handle", g("dispatched_at"), g("resolved_at")))
    if g("resolved_at"):
        spans.append(("review", g("resolved_at"), g("verified_at")))
    if g("verified_at"):
        spans.append(("close", g("verified_at"), g("closed_at")))

    out = []
    for name, start, done in spans:
        if start is None:
            continue
        stage = rules.stage(name)
        paused = name == "handle" and state == "suspended" and done is None
        if done is None and ended_at is not None:
            done = ended_at
        if name == "handle":
            deadline = g("deadline_at")
        else:
            deadline = calendar.working_deadline(start, stage.limit_hours, unit)
        upto = done or (g("suspended_at") if paused else None) or now
        overdue = deadline is not None and upto > deadline
        warning = False
        if deadline is not None and done is None and not paused and not overdue:
            total = calendar.working_time_between(start, deadline, unit)
            gone = calendar.working_time_between(start, now, unit)
            warning = total > 0 and gone / total >= WARNING_FRACTION
        out.append({"name": name, "label": stage.label, "started_at": start, "deadline": deadline,
                    "done_at": done, "overdue": overdue, "warning": warning, "paused": paused})
    return out
