"""The demo's emergency command: the simulator's emergencies commanded as a center would, through the real response
actions — the plan activated at the reported level once the case is accepted, the units acknowledging (a few late),
the checklist ticked, the information reports filed from their drafts (now and then late), the final report and the
end once the handling is done. Each step's time is drawn from the case and unit (stable across restarts)."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from cases.service import CaseService
from data.tokens import Principal
from dispatch.errors import ServiceError
from emergency.response import ACTIVATABLE_STATES, ResponseService

log = logging.getLogger("ucc.demo")

RECENT = timedelta(hours=6)  # emergencies reported this long ago or less are commanded (older: left as they are)


def _draw(*key, low: float, high: float) -> float:
    """A number in [low, high) fixed by `key`: the same step happens at the same time after a restart."""
    digest = hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=8).digest()
    return low + (high - low) * int.from_bytes(digest, "big") / 2 ** 64


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


class EmergencyDrill:
    def __init__(self, responses: ResponseService, cases: CaseService):
        self.responses, self.cases = responses, cases
        city = cases.areas.records(max_level=1)
        self.commander = Principal("user", "demo:指挥员", "duty_officer", city[0].code if city else "")

    def step(self, now: datetime | None = None) -> int:
        """One round: every step now due, each in its own action; returns how many were taken."""
        now = now or self.cases.clock()
        done = 0
        listed = self.cases.list(self.commander, kind="emergency", state=",".join(ACTIVATABLE_STATES),
                                 per_page=100)["items"]
        for case in listed:
            if case.get("response") is None and now - _when(case["reported_at"]) < RECENT:
                done += self._try(case, self.commander, "activate_plan", level=case["severity"] or 4)
        for brief in self.responses.active(self.commander):
            try:
                case = self.cases.get(brief["case_id"], None)
            except ServiceError:
                continue
            done += self._advance(case, now)
        return done

    def _try(self, case: dict, who: Principal, action: str, **kw) -> int:
        try:
            self.responses.act(case["id"], who, action, case["version"], **kw)
            return 1
        except ServiceError as exc:  # a concurrent move of the simulator (409) or a step no longer possible
            log.debug("演示应急 %s #%s: %s", action, case["id"], exc.message)
            return 0

    def _advance(self, case: dict, now: datetime) -> int:
        """The first step now due of this response (one a round: each takes the case's next version)."""
        r = case["response"]
        started = _when(r["activated_at"])
        for t in r["tasks"]:
            if t["acknowledged_at"] is None and now >= started + timedelta(
                    minutes=_draw(case["id"], t["unit"]["code"], low=3, high=38)):
                unit = t["unit"]["code"]
                handler = Principal("user", f"demo:{unit}", "unit_handler", unit.split("-")[1], unit)
                return self._try(case, handler, "acknowledge")
        for i in r["checklist"]:
            if i["done_at"] is None and now >= started + timedelta(
                    minutes=i["position"] * _draw(case["id"], "check", low=6, high=20)):
                return self._try(case, self.commander, "check_item", item=i["position"])
        owed = r["next_report"]
        if owed is None:
            filed = {x["kind"] for x in r["reports"] if x["filed_at"]}
            return self._try(case, self.commander, "end_response") if "final" in filed else 0
        due = _when(owed["due_at"])
        # most reports a little before their deadline, about one in six a little after
        at = due + timedelta(minutes=_draw(case["id"], owed["kind"], len(r["reports"]), low=-25, high=6))
        done = case["resolved_at"] or case["closed_at"]
        if owed["kind"] == "final" and done:  # the final report a few hours after the handling, not a day
            at = _when(done) + timedelta(minutes=_draw(case["id"], "final", low=60, high=300))
        if now < at:
            return 0
        draft = self.responses.draft(case["id"], None, owed["kind"])
        fields = dict(draft["fields"])
        if owed["kind"] == "first":
            fields["evacuated"] = int(_draw(case["id"], "evacuated", low=0, high=300))
        return self._try(case, self.commander, "report", kind=owed["kind"], text=draft["text"], fields=fields)
