"""Emergency responses under their plans: activate a plan at a confirmed level, raise or lower it, the units' tasks and
acknowledgements, the checklist, the information reports (首报, 续报, 终报) and their deadlines, the end of the
response — each an action on the case, through its version, history and outbox (docs/emergency.md)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cases.service import CaseService
from data import files
from data.area_directory import AreaDirectory
from data.db import Database
from data.models import (Case, EmergencyChecklistItem, EmergencyPlanEdit, EmergencyReport, EmergencyResponse,
                         EmergencyTask, Resource, ResourceAllocation)
from data.tokens import Principal
from dispatch import lifecycle
from dispatch.city_time import local_iso as iso
from dispatch.emergency_plans import (EVENT_LEVEL_NAMES, LEVELS, REPORT_KINDS, RESPONSE_ACTIONS, Plan, PlanFileError,
                                      PlanLevel, Plans, check_report_order, may_command, next_report,
                                      report_due_for, task_units, upward_text)
from dispatch.errors import ServiceError
from dispatch.routing import LEVEL_NAMES

# a plan is activated on an accepted (立案) emergency that is still being handled
ACTIVATABLE_STATES = ("accepted", "dispatched", "signed", "rework", "returned", "suspended")
# the figures an information report carries besides its text (the draft fills them from the last report)
REPORT_FIELDS = {"deaths": "死亡", "injuries": "受伤", "missing": "失联", "evacuated": "疏散转移"}
REPORT_TEXT_FIELDS = {"losses": "直接经济损失"}
TEXT_LIMIT = 4000


def _level_arg(level) -> int:
    if not isinstance(level, int) or isinstance(level, bool) or level not in LEVELS:
        raise ServiceError(400, "bad_request", "level 须为事件等级 1–4（1 特别重大、2 重大、3 较大、4 一般）")
    return level


def _fields_arg(fields) -> dict | None:
    if fields is None:
        return None
    if not isinstance(fields, dict):
        raise ServiceError(400, "bad_request", "fields 须为对象（死亡、受伤、失联、疏散人数与损失）")
    unknown = sorted(set(fields) - set(REPORT_FIELDS) - set(REPORT_TEXT_FIELDS))
    if unknown:
        raise ServiceError(400, "bad_request", f"fields 含未知项 {', '.join(unknown)}")
    for k in REPORT_FIELDS:
        v = fields.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 10_000_000):
            raise ServiceError(400, "bad_request", f"{REPORT_FIELDS[k]}人数 {k} 须为 0 以上的整数")
    v = fields.get("losses")
    if v is not None and (not isinstance(v, str) or len(v) > 200):
        raise ServiceError(400, "bad_request", "losses 须为不超过 200 字的文字")
    return {k: v for k, v in fields.items() if v is not None}


class ResponseService:
    """The emergency responses of a database; registers the `response` field of the case objects with `cases`."""

    def __init__(self, db: Database, areas: AreaDirectory, cases: CaseService):
        self.db, self.areas, self.cases = db, areas, cases
        self._plans: Plans | None = None
        self._plans_key = None
        self._lock = threading.Lock()
        cases.case_readers.append(self._case_fields)

    # ---- plans -------------------------------------------------------------------------------------
    def plans(self) -> Plans:
        """The file's plans with the administrator's edits, re-read when an edit lands (in any process)."""
        with self.db.session() as s:
            key = tuple(s.execute(select(func.count(), func.max(EmergencyPlanEdit.updated_at))).one())
            if key == self._plans_key and self._plans is not None:
                return self._plans
            edited = [r.body for r in s.scalars(select(EmergencyPlanEdit))]
        plans = files.emergency_plans(edited, self.cases.catalog())
        with self._lock:
            self._plans, self._plans_key = plans, key
        return plans

    def plan_list(self) -> list[dict]:
        return [p.to_dict() for p in self.plans().by_code.values()]

    def plan(self, code: str) -> dict:
        found = self.plans().get(code)
        if found is None:
            raise ServiceError(404, "not_found", f"预案 {code} 不存在")
        return {**found.to_dict(), "raw": found.raw}

    def save_plan(self, principal: Principal, code: str, body) -> dict:
        """An administrator's edit of a plan (the whole plan, as the file writes it): checked with every other plan
        (a category claimed twice is refused), then kept; 400 with every problem otherwise."""
        if principal.role != "admin":
            raise ServiceError(403, "forbidden", "只有管理员可以编辑应急预案")
        if not isinstance(body, dict) or body.get("code", code) != code:
            raise ServiceError(400, "bad_request", "预案须为对象，且 code 与地址中的一致")
        body = {**body, "code": code}
        with self.db.session() as s:
            edited = {r.code: r.body for r in s.scalars(select(EmergencyPlanEdit))}
        edited[code] = body
        try:
            files.emergency_plans(list(edited.values()), self.cases.catalog())
        except PlanFileError as exc:
            raise ServiceError(400, "invalid_plan", "预案有误：" + "；".join(exc.problems), {"problems": exc.problems})
        now = self.cases.clock()
        with self.db.session() as s:
            row = s.get(EmergencyPlanEdit, code)
            if row is None:
                s.add(EmergencyPlanEdit(code=code, body=body, updated_at=now, updated_by=principal.ident))
            else:
                row.body, row.updated_at, row.updated_by = body, now, principal.ident
        return self.plan(code)

    # ---- acting ------------------------------------------------------------------------------------
    def act(self, case_id: int, principal: Principal, action: str, version, plan: str | None = None,
            level=None, item=None, kind: str | None = None, text: str | None = None, fields=None,
            note: str = "") -> dict:
        """One of RESPONSE_ACTIONS on an emergency case; the case object after it (with its `response`)."""
        if action not in RESPONSE_ACTIONS:
            raise ServiceError(400, "bad_request", f"未知的应急操作 {action}")
        note = (note or "").strip()
        if len(note) > 2000:
            raise ServiceError(400, "bad_request", "备注过长（最多 2000 字）")
        if plan is not None and (not isinstance(plan, str) or len(plan) > 40):
            raise ServiceError(400, "bad_request", "plan 须为预案代码")
        if action in ("activate_plan", "change_level"):
            level = _level_arg(level)
        if action == "report":
            if kind not in ("first", "update", "final"):
                raise ServiceError(400, "bad_request", "kind 须为 first（首报）、update（续报）或 final（终报）")
            if not isinstance(text, str) or not text.strip() or len(text) > TEXT_LIMIT:
                raise ServiceError(400, "bad_request", f"报告正文 text 不能为空（最多 {TEXT_LIMIT} 字）")
            fields = _fields_arg(fields)
        if action == "check_item" and not (isinstance(item, str) and 0 < len(item) <= 200) \
                and not (isinstance(item, int) and not isinstance(item, bool)):
            raise ServiceError(400, "bad_request", "item 须为处置措施的序号或内容")
        plans = self.plans()
        state: dict = {}

        def authorize(s: Session, case: Case, actor: lifecycle.Actor) -> None:
            if case.kind != "emergency":
                raise ServiceError(422, "not_emergency", "只有应急事件才能启动预案和应急响应")
            response = s.get(EmergencyResponse, case.id)
            state["response"] = response
            if action == "acknowledge":
                return self._authorize_task(s, case, actor, response)
            if action == "check_item" and actor.role == "unit_handler":
                return self._authorize_lead(s, case, actor, response)
            if action == "activate_plan" and response is None:
                chosen = self._plan_for(plans, case, plan)
                state["plan"] = chosen
                need = chosen.level(level).commanding_level
            else:
                if response is None:
                    raise ServiceError(422, "no_response", "该事件尚未启动应急预案")
                chosen = plans.get(response.plan_code)
                if chosen is None:
                    raise ServiceError(422, "plan_missing", f"预案 {response.plan_code} 已不存在")
                state["plan"] = chosen
                need = response.commanding_level
                if action == "change_level":
                    need = min(need, chosen.level(level).commanding_level)
            if not may_command(actor.role, actor.level, need):
                where = LEVEL_NAMES.get(actor.level, "无辖区") if actor.level else "无辖区"
                raise ServiceError(403, "forbidden", f"该应急响应由{LEVEL_NAMES[need]}指挥，您（{where}）无权操作")

        def decide(s: Session, case: Case, actor: lifecycle.Actor, now: datetime):
            step = getattr(self, "_" + action)
            return step(s, case, actor, now, state, level=level, item=item, kind=kind, text=text, fields=fields,
                        note=note)

        return self.cases.act_outside(case_id, principal, action, version, authorize, decide)

    @staticmethod
    def _plan_for(plans: Plans, case: Case, code: str | None) -> Plan:
        if code is None:
            found = plans.for_category(case.category_code)
            if found is None:
                raise ServiceError(422, "no_plan", "该类应急事件没有适用的预案")
            return found
        found = plans.get(code)
        if found is None:
            raise ServiceError(404, "not_found", f"预案 {code} 不存在")
        if not found.general and case.category_code not in found.categories:
            raise ServiceError(422, "plan_not_for_category", f"《{found.name}》不适用于该类事件")
        return found

    @staticmethod
    def _authorize_task(s: Session, case: Case, actor, response) -> None:
        if response is None or response.status != "active":
            raise ServiceError(422, "no_response", "该事件没有进行中的应急响应")
        if actor.role != "unit_handler" or not actor.unit_code:
            raise ServiceError(403, "forbidden", "联动任务须由任务单位的处置人员签收")
        task = s.scalars(select(EmergencyTask).where(EmergencyTask.case_id == case.id,
                                                     EmergencyTask.unit_code == actor.unit_code)).first()
        if task is None:
            raise ServiceError(403, "forbidden", "您的单位在该应急响应中没有任务")

    @staticmethod
    def _authorize_lead(s: Session, case: Case, actor, response) -> None:
        if response is None:
            raise ServiceError(422, "no_response", "该事件尚未启动应急预案")
        lead = s.scalars(select(EmergencyTask.unit_code).where(EmergencyTask.case_id == case.id,
                                                               EmergencyTask.role == "lead")).first()
        if actor.unit_code is None or actor.unit_code != lead:
            raise ServiceError(403, "forbidden", "处置措施由指挥人员或牵头单位勾选")

    def _tasks_for(self, s: Session, case: Case, plan: Plan, level: PlanLevel, now: datetime,
                   changes: dict) -> list[str]:
        """The tasks of `level` not yet given (a raised level adds units, a lowered one keeps those given); the case's
        assisting units widened to them, so each unit's handlers see the case and hear it live."""
        category = self.cases.catalog()[case.category_code]
        unit_index, unit_types = self.cases.routing_refs()
        chain = self.areas.chain(case.grid_code)
        have = {t.unit_code: t for t in s.scalars(select(EmergencyTask).where(EmergencyTask.case_id == case.id))}
        added = []
        for t in task_units(level, category.unit_type, category.assist_unit_types, chain, unit_index, unit_types):
            if t.unit_code in have:
                continue
            s.add(EmergencyTask(case_id=case.id, unit_code=t.unit_code, role=t.role, assigned_at=now,
                                deadline_at=now + timedelta(minutes=level.acknowledge_minutes)))
            added.append(t.unit_code)
        assists = list(case.assist_units or [])
        for code in added:
            if code != case.unit_code and code not in assists:
                assists.append(code)
        if assists != list(case.assist_units or []):
            changes["assist_units"] = assists
        return added

    @staticmethod
    def _checklist_for(s: Session, case: Case, level: PlanLevel) -> int:
        have = {r.item for r in s.scalars(select(EmergencyChecklistItem).where(EmergencyChecklistItem.case_id == case.id))}
        position = len(have)
        added = 0
        for text in level.checklist:
            if text not in have:
                position += 1
                added += 1
                s.add(EmergencyChecklistItem(case_id=case.id, position=position, item=text, level=level.level))
        return added

    def _upward(self, s: Session, case: Case, plan: Plan, level: PlanLevel, actor, now: datetime) -> bool:
        """The record of the report to the province for a level II or I event, once per response."""
        if not level.upward_report:
            return False
        done = s.scalars(select(EmergencyReport.id).where(EmergencyReport.case_id == case.id,
                                                          EmergencyReport.kind == "upward")).first()
        if done is not None:
            return False
        category = self.cases.catalog()[case.category_code]
        where = "".join(a["name"] for a in reversed(self.cases.chain(case.grid_code)) if a["level"] >= 2)
        s.add(EmergencyReport(case_id=case.id, kind="upward", due_at=None, filed_at=now, filed_by=actor.ident,
                              text=upward_text(plan, level, category.name, where, iso(case.occurred_at or case.reported_at))))
        return True

    def _names(self, codes) -> str:
        return "、".join(self.cases.unit_ref(c)["name"] for c in codes)

    def _activate_plan(self, s, case, actor, now, state, level, note, **_):
        plan: Plan = state["plan"]
        if state["response"] is not None:
            raise ServiceError(422, "already_active", "该事件已启动应急预案；调整等级请用「调整响应等级」")
        if case.state not in ACTIVATABLE_STATES:
            label = lifecycle.STATE_LABELS.get(case.state, case.state)
            raise ServiceError(422, "illegal_transition", f"案件状态为「{label}」，须立案后、处置完成前启动预案")
        lv = plan.level(level)
        s.add(EmergencyResponse(case_id=case.id, plan_code=plan.code, level=level,
                                commanding_level=lv.commanding_level, status="active", activated_at=now,
                                activated_by=actor.ident))
        changes = {"severity": level, "report_upward": lv.upward_report}
        added = self._tasks_for(s, case, plan, lv, now, changes)
        self._checklist_for(s, case, lv)
        upward = self._upward(s, case, plan, lv, actor, now)
        text = (f"启动《{plan.name}》{lv.response_name}（{EVENT_LEVEL_NAMES[level]}），由{LEVEL_NAMES[lv.commanding_level]}"
                f"指挥；任务单位：{self._names(added) or '无'}" + ("；已向省级报告" if upward else "")
                + (f"。{note}" if note else ""))
        return text, {"plan": plan.code, "level": level, "units": added}, changes

    def _change_level(self, s, case, actor, now, state, level, note, **_):
        response: EmergencyResponse = state["response"]
        plan: Plan = state["plan"]
        if response.status != "active":
            raise ServiceError(422, "response_ended", "应急响应已结束")
        if response.level == level:
            raise ServiceError(422, "same_level", f"当前已是{EVENT_LEVEL_NAMES[level]}")
        before = response.level
        lv = plan.level(level)
        response.level, response.commanding_level = level, lv.commanding_level
        changes = {"severity": level, "report_upward": case.report_upward or lv.upward_report}
        added = self._tasks_for(s, case, plan, lv, now, changes)
        self._checklist_for(s, case, lv)
        upward = self._upward(s, case, plan, lv, actor, now)
        way = "提升" if level < before else "降低"
        text = (f"响应等级由{EVENT_LEVEL_NAMES[before]}{way}为{EVENT_LEVEL_NAMES[level]}（{lv.response_name}，"
                f"{LEVEL_NAMES[lv.commanding_level]}指挥）" + (f"；新增任务单位：{self._names(added)}" if added else "")
                + ("；已向省级报告" if upward else "") + (f"。{note}" if note else ""))
        return text, {"from_level": before, "level": level, "units": added}, changes

    def _acknowledge(self, s, case, actor, now, state, note, **_):
        task = s.scalars(select(EmergencyTask).where(EmergencyTask.case_id == case.id,
                                                     EmergencyTask.unit_code == actor.unit_code)).one()
        if task.acknowledged_at is not None:
            raise ServiceError(422, "already_acknowledged", "本单位已签收该联动任务")
        task.acknowledged_at, task.acknowledged_by = now, actor.ident
        late = now > task.deadline_at
        text = f"{self.cases.unit_ref(task.unit_code)['name']}签收{'牵头' if task.role == 'lead' else '联动'}任务" \
               + ("（超时）" if late else "") + (f"。{note}" if note else "")
        return text, {"unit": task.unit_code, "late": late}, {}

    def _check_item(self, s, case, actor, now, state, item, note, **_):
        rows = list(s.scalars(select(EmergencyChecklistItem).where(EmergencyChecklistItem.case_id == case.id)
                              .order_by(EmergencyChecklistItem.position)))
        found = next((r for r in rows if (r.position == item if isinstance(item, int) else r.item == item)), None)
        if found is None:
            raise ServiceError(422, "unknown_item", f"处置措施 {item} 不在本响应的清单中")
        if found.done_at is not None:
            raise ServiceError(422, "already_done", f"「{found.item}」已于 {iso(found.done_at)} 完成")
        found.done_at, found.done_by = now, actor.ident
        return f"完成处置措施：{found.item}" + (f"。{note}" if note else ""), {"item": found.item}, {}

    def _report(self, s, case, actor, now, state, kind, text, fields, **_):
        response: EmergencyResponse = state["response"]
        plan: Plan = state["plan"]
        if response.status != "active":
            raise ServiceError(422, "response_ended", "应急响应已结束")
        earlier = [r for r in self._reports(s, case.id) if r.kind != "upward"]
        filed = [(r.kind, r.filed_at) for r in earlier]
        if fields is None and earlier:  # nothing new on the casualties: the figures last reported stand
            fields = earlier[-1].fields
        why = check_report_order(kind, [k for k, _ in filed])
        if why:
            raise ServiceError(422, "report_order", why)
        due = report_due_for(kind, plan.deadlines, response.activated_at, filed, self._handling_done(case), now)
        s.add(EmergencyReport(case_id=case.id, kind=kind, due_at=due, filed_at=now, filed_by=actor.ident,
                              text=text.strip(), fields=fields))
        late = due is not None and now > due
        return (f"报送{REPORT_KINDS[kind]}" + ("（超时）" if late else ""), {"kind": kind, "late": late}, {})

    def _end_response(self, s, case, actor, now, state, note, **_):
        response: EmergencyResponse = state["response"]
        if response.status != "active":
            raise ServiceError(422, "response_ended", "应急响应已结束")
        if not any(r.kind == "final" for r in self._reports(s, case.id)):
            raise ServiceError(422, "final_report_missing", "须先报送终报，才能结束应急响应")
        response.status, response.ended_at, response.ended_by = "ended", now, actor.ident
        return "结束应急响应" + (f"。{note}" if note else ""), {}, {}

    # ---- reading -----------------------------------------------------------------------------------
    @staticmethod
    def _reports(s: Session, case_id: int) -> list[EmergencyReport]:
        return list(s.scalars(select(EmergencyReport).where(EmergencyReport.case_id == case_id)
                              .order_by(EmergencyReport.id)))

    @staticmethod
    def _handling_done(case: Case) -> datetime | None:
        """When the handling was reported done (the 终报 is due a day after): the unit's 处置反馈, or the close."""
        if case.state in ("resolved", "verified", "closed"):
            return case.resolved_at or case.closed_at
        return None

    def _case_fields(self, s: Session, cases: list[Case]) -> dict[int, dict]:
        """The `response` of each emergency case (None before a plan is activated)."""
        ids = [c.id for c in cases if c.kind == "emergency"]
        if not ids:
            return {}
        now = self.cases.clock()
        responses = {r.case_id: r for r in s.scalars(select(EmergencyResponse).where(EmergencyResponse.case_id.in_(ids)))}
        out: dict[int, dict] = {i: {"response": None} for i in ids}
        by_id = {c.id: c for c in cases}
        plans = self.plans() if responses else None
        for case_id, r in responses.items():
            out[case_id]["response"] = self._response_dict(s, by_id[case_id], r, plans, now)
        return out

    def _response_dict(self, s: Session, case: Case, r: EmergencyResponse, plans: Plans, now: datetime) -> dict:
        plan = plans.get(r.plan_code)
        lv = plan.level(r.level) if plan is not None else None
        tasks = list(s.scalars(select(EmergencyTask).where(EmergencyTask.case_id == case.id).order_by(EmergencyTask.id)))
        items = list(s.scalars(select(EmergencyChecklistItem).where(EmergencyChecklistItem.case_id == case.id)
                               .order_by(EmergencyChecklistItem.position)))
        reports = self._reports(s, case.id)
        owed = None
        if plan is not None:
            owed = next_report(plan.deadlines, r.activated_at,
                               [(x.kind, x.filed_at) for x in reports if x.kind != "upward"],
                               self._handling_done(case), r.status != "active", now)
        allocated = s.execute(select(ResourceAllocation, Resource.name, Resource.type)
                              .join(Resource, Resource.id == ResourceAllocation.resource_id)
                              .where(ResourceAllocation.case_id == case.id).order_by(ResourceAllocation.id)).all()
        return {
            "plan": {"code": r.plan_code, "name": plan.name if plan else r.plan_code},
            "level": r.level, "level_label": EVENT_LEVEL_NAMES[r.level],
            "response_name": lv.response_name if lv else None,
            "commanding_level": r.commanding_level, "commanding_level_label": LEVEL_NAMES.get(r.commanding_level),
            "status": r.status, "activated_at": iso(r.activated_at), "activated_by": r.activated_by,
            "ended_at": iso(r.ended_at), "ended_by": r.ended_by,
            "tasks": [{"unit": self.cases.unit_ref(t.unit_code), "role": t.role, "assigned_at": iso(t.assigned_at),
                       "deadline": iso(t.deadline_at), "acknowledged_at": iso(t.acknowledged_at),
                       "acknowledged_by": t.acknowledged_by,
                       "overdue": (t.acknowledged_at or now) > t.deadline_at} for t in tasks],
            "checklist": [{"position": i.position, "item": i.item, "level": i.level, "done_at": iso(i.done_at),
                           "by": i.done_by} for i in items],
            "reports": [{"id": x.id, "kind": x.kind, "kind_label": REPORT_KINDS[x.kind], "due_at": iso(x.due_at),
                         "filed_at": iso(x.filed_at), "filed_by": x.filed_by, "text": x.text, "fields": x.fields or {},
                         "late": x.due_at is not None and x.filed_at > x.due_at} for x in reports]
                       + ([{"id": None, "kind": owed.kind, "kind_label": REPORT_KINDS[owed.kind],
                            "due_at": iso(owed.due_at), "filed_at": None, "filed_by": None, "text": None, "fields": {},
                            "late": owed.overdue}] if owed else []),
            "next_report": None if owed is None else {"kind": owed.kind, "kind_label": REPORT_KINDS[owed.kind],
                                                      "due_at": iso(owed.due_at), "overdue": owed.overdue},
            "resources": [{"id": a.id, "resource": a.resource_id, "name": name, "type": rtype, "item": a.item,
                           "quantity": a.quantity, "allocated_at": iso(a.allocated_at), "allocated_by": a.allocated_by,
                           "released_at": iso(a.released_at)} for a, name, rtype in allocated],
        }

    def active(self, principal: Principal) -> list[dict]:
        """The active responses the principal may see, gravest first, each with its next report and the units that
        have not acknowledged: what the console, the wall and the leaders are warned of."""
        with self.db.session() as s:
            rows = list(s.execute(select(EmergencyResponse, Case).join(Case, Case.id == EmergencyResponse.case_id)
                                  .where(EmergencyResponse.status == "active")
                                  .order_by(EmergencyResponse.level, EmergencyResponse.activated_at)))
            visible = [(r, c) for r, c in rows if self.cases.can_see(principal, c)]
            if not visible:
                return []
            plans, now = self.plans(), self.cases.clock()
            out = []
            for r, c in visible:
                d = self._response_dict(s, c, r, plans, now)
                category = self.cases.catalog().get(c.category_code)
                out.append({"case_id": c.id, "category": category.name if category else c.category_code,
                            "lon": c.lon, "lat": c.lat, "grid_code": c.grid_code, "district_code": c.district_code,
                            "state": c.state, "plan": d["plan"], "level": d["level"], "level_label": d["level_label"],
                            "response_name": d["response_name"], "commanding_level": d["commanding_level"],
                            "activated_at": d["activated_at"], "next_report": d["next_report"],
                            "place": "".join(a["name"] for a in reversed(self.cases.chain(c.grid_code))
                                             if a["level"] in (2, 3)),
                            "tasks": [{"unit": t["unit"]["name"], "role": t["role"],
                                       "acknowledged": t["acknowledged_at"] is not None,
                                       "overdue": t["acknowledged_at"] is None and t["overdue"]} for t in d["tasks"]],
                            "unacknowledged": [t["unit"] for t in d["tasks"] if t["acknowledged_at"] is None],
                            "overdue_tasks": [t["unit"] for t in d["tasks"]
                                              if t["acknowledged_at"] is None and t["overdue"]],
                            "checklist_done": sum(1 for i in d["checklist"] if i["done_at"]),
                            "checklist_total": len(d["checklist"])})
            return out

    def awaiting(self, principal: Principal, limit: int = 30) -> list[dict]:
        """The emergency cases the principal may see that could get a plan and have none yet (accepted, still being
        handled, no response), gravest then newest first: what /emergency offers to 启动预案. Each with the plan
        that would apply (the category's, else the general plan)."""
        plans = self.plans()
        with self.db.session() as s:
            rows = list(s.scalars(select(Case).outerjoin(EmergencyResponse, EmergencyResponse.case_id == Case.id)
                                  .where(Case.kind == "emergency", Case.state.in_(ACTIVATABLE_STATES),
                                         EmergencyResponse.case_id.is_(None), *self.cases.scope_clauses(principal))
                                  .order_by(func.coalesce(Case.severity, 9), Case.id.desc()).limit(limit)))
        out = []
        for c in rows:
            category = self.cases.catalog().get(c.category_code)
            plan = plans.for_category(c.category_code)
            out.append({"case_id": c.id, "category": category.name if category else c.category_code,
                        "lon": c.lon, "lat": c.lat, "grid_code": c.grid_code, "state": c.state,
                        "state_label": lifecycle.STATE_LABELS.get(c.state, c.state), "severity": c.severity,
                        "severity_label": EVENT_LEVEL_NAMES.get(c.severity) if c.severity else None,
                        "reported_at": iso(c.reported_at),
                        "plan": {"code": plan.code, "name": plan.name} if plan else None})
        return out

    def plan_for_case(self, category_code: str) -> dict | None:
        """The plan `activate_plan` would choose for a category (its own, else the general plan), with its levels."""
        plan = self.plans().for_category(category_code)
        return plan.to_dict() if plan is not None else None

    def unit_tasks(self, principal: Principal) -> list[dict]:
        """A unit handler's tasks in the active responses (unacknowledged first, then by deadline): what the unit
        workspace asks them to acknowledge."""
        if principal.role != "unit_handler" or not principal.unit_code:
            return []
        now = self.cases.clock()
        with self.db.session() as s:
            rows = s.execute(select(EmergencyTask, EmergencyResponse, Case)
                             .join(EmergencyResponse, EmergencyResponse.case_id == EmergencyTask.case_id)
                             .join(Case, Case.id == EmergencyTask.case_id)
                             .where(EmergencyTask.unit_code == principal.unit_code,
                                    EmergencyResponse.status == "active")).all()
            plans = self.plans() if rows else None
            out = []
            for t, r, c in rows:
                if not self.cases.can_see(principal, c):
                    continue
                plan = plans.get(r.plan_code)
                category = self.cases.catalog().get(c.category_code)
                out.append({"case_id": c.id, "version": c.version,
                            "category": category.name if category else c.category_code,
                            "description": c.description, "level": r.level, "level_label": EVENT_LEVEL_NAMES[r.level],
                            "plan": plan.name if plan else r.plan_code, "role": t.role,
                            "deadline": iso(t.deadline_at), "acknowledged_at": iso(t.acknowledged_at),
                            "overdue": t.acknowledged_at is None and now > t.deadline_at,
                            "minutes_left": (t.deadline_at - now).total_seconds() / 60})
        out.sort(key=lambda x: (x["acknowledged_at"] is not None, x["deadline"] or ""))
        return out

    def draft(self, case_id: int, principal: Principal, kind: str) -> dict:
        """A report's draft from the case (what, where, when, level, casualties and losses as last reported, the
        actions taken, the units and resources deployed), for the officer to edit before filing."""
        if kind not in ("first", "update", "final"):
            raise ServiceError(400, "bad_request", "kind 须为 first（首报）、update（续报）或 final（终报）")
        case = self.cases.get(case_id, principal)
        r = case.get("response")
        if r is None:
            raise ServiceError(422, "no_response", "该事件尚未启动应急预案")
        last = next((x for x in reversed(r["reports"]) if x["filed_at"] and x["kind"] != "upward"), None)
        fields = dict(last["fields"]) if last else {"deaths": 0, "injuries": 0, "missing": 0, "evacuated": 0}
        where = "".join(a["name"] for a in reversed(case["chain"]) if a["level"] >= 2)
        at = datetime.fromisoformat(case["occurred_at"] or case["reported_at"])  # already the city's wall clock
        when = f"{at.year}年{at.month}月{at.day}日{at.hour:02d}时{at.minute:02d}分"
        done = [i["item"] for i in r["checklist"] if i["done_at"]]
        acked = [t["unit"]["name"] for t in r["tasks"] if t["acknowledged_at"]]
        waiting = [t["unit"]["name"] for t in r["tasks"] if not t["acknowledged_at"]]
        deployed = [f"{a['name']}" + (f"{a['item']}{a['quantity']:g}" if a["item"] else "")
                    for a in r["resources"] if not a["released_at"]]
        people = "，".join(f"{label}{fields.get(k, 0)}人" for k, label in REPORT_FIELDS.items())
        losses = fields.get("losses") or "正在核实"
        head = {"first": "首报", "update": f"续报{sum(1 for x in r['reports'] if x['kind'] == 'update' and x['filed_at']) + 1}",
                "final": "终报"}[kind]
        lines = [f"【{head}】{case['category']['name']}（{r['level_label']}）",
                 f"时间地点：{when}，{where}（{case['chain'][0]['name']}）。",
                 f"事件情况：{case['description'] or case['category']['name']}。",
                 f"人员伤亡：{people}；直接经济损失：{losses}。",
                 f"响应情况：已启动《{r['plan']['name']}》{r['response_name']}，由{r['commanding_level_label']}指挥。",
                 f"到位单位：{'、'.join(acked) or '无'}" + (f"；未签收：{'、'.join(waiting)}" if waiting else "") + "。",
                 f"已采取措施：{'；'.join(done) or '先期处置中'}。",
                 f"投入资源：{'、'.join(deployed) or '无'}。"]
        if kind == "final":
            lines.append("处置结果：现场处置完毕，下一步做好善后与调查评估。")
        else:
            lines.append("下一步：继续处置，及时续报。")
        return {"kind": kind, "kind_label": REPORT_KINDS[kind], "text": "\n".join(lines), "fields": fields}
