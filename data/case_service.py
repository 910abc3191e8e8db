"""The case service: intake and lifecycle actions as single transactions (case row + audit row +
outbox event), reads shaped as the API's case object, and the KPI query. Rules live in dispatch/."""
from __future__ import annotations

import math
import re
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from data.area_directory import AreaDirectory
from data.db import Database
from data.models import Case, CaseEvent, CaseHistory, utcnow
from data.models import Unit as UnitRow
from data.reference import read_catalog, read_units, unit_types
from data.tokens import Principal
from dispatch import lifecycle
from dispatch.kpi import KpiCase, compute_grouped, compute_kpis
from dispatch.routing import route_case
from dispatch.units import index_units
from dispatch.working_time import default_calendar
from geo.locator import OutsideCity

SHANGHAI = ZoneInfo("Asia/Shanghai")
SOURCES = ("hotline", "patrol", "citizen", "iot", "video", "api", "open311")
SOURCE_LABELS = {"hotline": "12345热线", "patrol": "网格巡查", "citizen": "市民随手拍", "iot": "物联感知",
                 "video": "视频智能识别", "api": "系统接口", "open311": "Open311"}
CLOSED_FOR_DEDUPE = ("rejected", "merged", "closed", "verified")
NOT_OPEN = ("rejected", "merged", "closed")
PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
FIELD_LABELS = {"category": "事件类别", "lon": "经度", "lat": "纬度", "description": "问题描述", "source": "来源渠道",
                "severity": "事件等级", "reporter_phone": "联系电话", "occurred_at": "发生时间",
                "idempotency_key": "幂等键"}
# Roles that need the reporter's number to call back; everyone else sees it masked.
PHONE_ROLES = ("admin", "duty_officer")


class ServiceError(Exception):
    """A refusal the edges turn into a status and a Chinese message; nothing was changed."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class IntakeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    category: str = Field(min_length=1, max_length=20)
    lon: float
    lat: float
    description: str = Field(default="", max_length=2000)
    source: Literal["hotline", "patrol", "citizen", "iot", "video", "api", "open311"]
    severity: int | None = Field(default=None, ge=1, le=4)
    reporter_phone: str | None = Field(default=None, max_length=20)
    occurred_at: datetime | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("lon", "lat")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("必须是有限数字")
        return v

    @field_validator("reporter_phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not PHONE_RE.match(v):
            raise ValueError("格式不正确（手机 11 位，或区号-座机号）")
        return v

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("须带时区偏移（如 2026-11-25T09:30:00+08:00）")
        return v


def _validation_message(err: ValidationError) -> tuple[str, dict]:
    fields = {}
    for e in err.errors():
        name = str(e["loc"][0]) if e["loc"] else "?"
        label = FIELD_LABELS.get(name, name)
        msg = e.get("msg", "")
        if e["type"] == "missing":
            msg = "必填"
        elif e["type"] == "literal_error" and name == "source":
            msg = "须为 " + "、".join(SOURCES) + " 之一"
        elif e["type"] in ("float_parsing", "float_type", "int_parsing", "int_type"):
            msg = "须为数字"
        elif e["type"] in ("greater_than_equal", "less_than_equal") and name == "severity":
            msg = "须为 1–4（Ⅰ特别重大 … Ⅳ一般）"
        elif e["type"] == "string_too_long":
            msg = f"过长（最多 {e.get('ctx', {}).get('max_length')} 字）"
        elif e["type"] == "string_too_short":
            msg = "不能为空"
        elif e["type"].startswith("datetime"):
            msg = "须为 ISO 8601 时间（带时区偏移）"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        fields[name] = f"{label}{msg}" if msg.startswith(("必", "须", "过", "不", "格")) else f"{label}：{msg}"
    return "；".join(fields.values()), {"fields": fields}


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(SHANGHAI).isoformat(timespec="seconds") if dt else None


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def haversine_m(lon1, lat1, lon2, lat2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


class CaseService:
    def __init__(self, db: Database, areas: AreaDirectory, dedupe_meters: float = 50.0, dedupe_hours: float = 24.0,
                 clock: Callable[[], datetime] = utcnow):
        self.db, self.areas = db, areas
        self.dedupe_meters, self.dedupe_hours = dedupe_meters, dedupe_hours
        self.clock = clock
        self.calendar = default_calendar()
        self._ref_lock = threading.Lock()
        self._catalog = None
        self._unit_types = None
        self._unit_index = None
        self._unit_names: dict[str, str] = {}
        self.listeners: list[Callable[[list[int]], None]] = []  # told the outbox seqs after commit

    # ---- reference data -------------------------------------------------------------------
    def reload_reference(self) -> None:
        with self._ref_lock, self.db.session() as s:
            catalog = read_catalog(s)
            units = read_units(s)
            # Assign the catalog last: other threads take "catalog loaded" to mean "all loaded".
            self._unit_types = unit_types()
            self._unit_index = index_units(units)
            self._unit_names = {u.code: u.name for u in units}
            self._catalog = catalog

    def catalog(self):
        if self._catalog is None:
            self.reload_reference()
        return self._catalog

    def _routing_refs(self):
        self.catalog()
        return self._unit_index, self._unit_types

    # ---- shaping --------------------------------------------------------------------------
    def _chain(self, grid_code: str) -> list[dict]:
        return [{"code": a.code, "name": a.name, "level": a.level} for a in self.areas.chain(grid_code)]

    def _unit_ref(self, code: str | None) -> dict | None:
        if code is None:
            return None
        self.catalog()
        return {"code": code, "name": self._unit_names.get(code, code)}

    def case_dict(self, case: Case, history: list[CaseHistory] | None, principal: Principal | None,
                  now: datetime | None = None) -> dict:
        now = now or self.clock()
        cat = self.catalog().get(case.category_code)
        sla = None
        if case.deadline_at and case.state not in NOT_OPEN and case.state != "verified":
            start = case.reported_at
            state, frac = self.calendar.sla_state(start, case.deadline_at, now, case.time_unit)
            sla = {"state": state, "elapsed_fraction": round(frac, 4)}
        phone = case.reporter_phone
        if principal is None or principal.role not in PHONE_ROLES:
            phone = mask_phone(phone)
        lead = self._unit_ref(case.unit_code)
        out = {
            "id": case.id, "state": case.state, "state_label": lifecycle.STATE_LABELS.get(case.state, case.state),
            "version": case.version,
            "category": {"code": case.category_code, "name": cat.name if cat else case.category_code,
                         "kind": case.kind, "major_class": cat.major_class if cat else None},
            "kind": case.kind, "source": case.source, "description": case.description,
            "lon": case.lon, "lat": case.lat, "chain": self._chain(case.grid_code),
            "unit": lead, "units": [u for u in [lead] + [self._unit_ref(c) for c in (case.assist_units or [])] if u],
            "handling_level": case.handling_level, "route_reason": case.route_reason,
            "report_upward": case.report_upward,
            "deadline": _iso(case.deadline_at), "time_unit": case.time_unit,
            "overdue": bool(sla and sla["state"] == "overdue"), "sla": sla,
            "severity": case.severity, "reporter_phone": phone, "reporter_count": case.reporter_count,
            "merged_into": case.merged_into_id, "supervised": case.supervised,
            "escalation_count": case.escalation_count, "rework_count": case.rework_count,
            "extension_count": case.extension_count, "extension_pending_hours": case.extension_pending_hours,
            "occurred_at": _iso(case.occurred_at), "reported_at": _iso(case.reported_at),
            "accepted_at": _iso(case.accepted_at), "rejected_at": _iso(case.rejected_at),
            "dispatched_at": _iso(case.dispatched_at), "resolved_at": _iso(case.resolved_at),
            "closed_at": _iso(case.closed_at), "updated_at": _iso(case.updated_at),
        }
        if history is not None:
            out["history"] = [{"at": _iso(h.at), "actor": h.actor, "action": h.action,
                               "action_label": lifecycle.ACTION_LABELS.get(h.action, h.action),
                               "from": h.from_state, "to": h.to_state, "note": h.note} for h in history]
        return out

    # ---- scope ----------------------------------------------------------------------------
    def _area_clause(self, area_code: str):
        area = self.areas.get(area_code)
        if area is None:
            raise ServiceError(404, "not_found", f"区域 {area_code} 不存在")
        if area.level == 1:
            return None
        if area.level == 2:
            return Case.district_code == area_code
        if area.level == 5:
            return Case.grid_code == area_code
        return Case.grid_code.like(area_code + "%")

    def can_see(self, principal: Principal, case: Case) -> bool:
        if principal.role == "admin":
            return True
        return principal.area_code in {a["code"] for a in self._chain(case.grid_code)}

    # ---- intake ---------------------------------------------------------------------------
    def intake(self, payload: dict, principal: Principal | None, actor: str = "api") -> tuple[dict, bool]:
        """Validate, locate, route, set the deadline, persist with history and outbox event in one
        transaction. Returns (case object, created); created is False for a replayed idempotency key."""
        if not isinstance(payload, dict):
            raise ServiceError(400, "bad_request", "请求体须为 JSON 对象")
        try:
            req = IntakeRequest.model_validate(payload)
        except ValidationError as exc:
            msg, details = _validation_message(exc)
            raise ServiceError(400, "invalid", msg, details)
        if principal is not None and principal.role == "wall":
            raise ServiceError(403, "forbidden", "大屏令牌只能读取，不能上报事件")
        if req.idempotency_key:
            existing = self._by_idempotency_key(req.idempotency_key, principal)
            if existing is not None:
                return existing, False
        category = self.catalog().get(req.category)
        if category is None:
            raise ServiceError(422, "unknown_category", f"未知的事件类别编码 {req.category}")
        if category.is_emergency and req.severity is None:
            raise ServiceError(400, "invalid", "应急事件须填写事件等级 severity（1–4）",
                               {"fields": {"severity": "应急事件必填"}})
        if not category.is_emergency and req.severity is not None:
            raise ServiceError(400, "invalid", "只有应急事件才有事件等级 severity",
                               {"fields": {"severity": "非应急事件不填"}})
        if not (-180 <= req.lon <= 180 and -90 <= req.lat <= 90):
            raise ServiceError(400, "invalid", f"经纬度超出范围：lon={req.lon}, lat={req.lat}")
        locator = self.areas.locator()
        if locator is None:
            raise ServiceError(503, "no_city", "尚未导入城市网格")
        try:
            chain = locator.locate(req.lon, req.lat)
        except OutsideCity as exc:
            raise ServiceError(422, "outside_city", str(exc))
        grid, district = chain[0], next(a for a in chain if a.level == 2)
        if principal is not None and principal.role != "admin" and principal.area_code not in {a.code for a in chain}:
            raise ServiceError(403, "forbidden", "上报位置不在您的辖区内")
        now = self.clock()
        if req.occurred_at and req.occurred_at > now + timedelta(minutes=5):
            raise ServiceError(400, "invalid", "发生时间不能晚于当前时间", {"fields": {"occurred_at": "晚于当前时间"}})
        try:
            with self.db.session() as s:
                target = self._duplicate_of(s, category.code, req.lon, req.lat, now)
                if target is not None:
                    case = self._merge(s, target, req, grid.code, district.code, now, actor)
                else:
                    case = self._create(s, category, chain, req, grid.code, district.code, now, actor)
                case_id = case.id
                seqs = self._flush_events(s)
        except IntegrityError:
            # Two requests with the same idempotency key raced: the other one won; answer with its case.
            if req.idempotency_key:
                existing = self._by_idempotency_key(req.idempotency_key, principal)
                if existing is not None:
                    return existing, False
            raise
        self._notify(seqs)
        return self.get(case_id, principal), True

    def _by_idempotency_key(self, key: str, principal) -> dict | None:
        with self.db.session() as s:
            case_id = s.scalar(select(Case.id).where(Case.idempotency_key == key))
        return self.get(case_id, principal) if case_id is not None else None

    def _duplicate_of(self, s, category_code: str, lon: float, lat: float, now: datetime) -> Case | None:
        dlat = self.dedupe_meters / 111_320.0
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        rows = s.scalars(select(Case).where(
            Case.category_code == category_code,
            Case.reported_at >= now - timedelta(hours=self.dedupe_hours),
            Case.state.not_in(CLOSED_FOR_DEDUPE),
            Case.lat.between(lat - dlat, lat + dlat), Case.lon.between(lon - dlon, lon + dlon),
        )).all()
        best = None
        for c in rows:
            d = haversine_m(lon, lat, c.lon, c.lat)
            if d <= self.dedupe_meters and (best is None or d < best[0]):
                best = (d, c)
        return best[1] if best else None

    def _add_event(self, s, case: Case, kind: str) -> None:
        ev = CaseEvent(case_id=case.id, type=kind, at=self.clock(), grid_code=case.grid_code, unit_code=case.unit_code)
        s.add(ev)
        s.info.setdefault("ucc_events", []).append(ev)

    def _flush_events(self, s) -> list[int]:
        s.flush()
        return [ev.seq for ev in s.info.pop("ucc_events", [])]

    def _notify(self, seqs: list[int]) -> None:
        for listener in self.listeners:
            try:
                listener(seqs)
            except Exception:  # noqa: BLE001 - live delivery must never undo an accepted event
                import logging

                logging.getLogger("ucc.live").exception("listener failed")

    def _create(self, s, category, chain, req: IntakeRequest, grid_code, district_code, now, actor) -> Case:
        unit_index, types = self._routing_refs()
        decision = route_case(category, chain, unit_index, types, severity=req.severity)
        deadline = self.calendar.working_deadline(now, category.time_limit, category.time_unit)
        case = Case(state="reported", version=1, category_code=category.code, kind=category.kind, source=req.source,
                    description=req.description, lon=req.lon, lat=req.lat, grid_code=grid_code,
                    district_code=district_code, severity=req.severity, reporter_phone=req.reporter_phone,
                    idempotency_key=req.idempotency_key, unit_code=decision.unit_code,
                    assist_units=list(decision.assist_unit_codes), handling_level=decision.handling_level,
                    route_reason=decision.reason, report_upward=decision.report_upward,
                    time_unit=category.time_unit, occurred_at=req.occurred_at, reported_at=now,
                    deadline_at=deadline, updated_at=now)
        s.add(case)
        s.flush()
        s.add(CaseHistory(case_id=case.id, at=now, actor=actor, action="report", from_state=None,
                          to_state="reported", note=f"{SOURCE_LABELS[req.source]}上报；{decision.reason}"))
        self._add_event(s, case, "created")
        return case

    def _merge(self, s, target: Case, req: IntakeRequest, grid_code, district_code, now, actor) -> Case:
        dup = Case(state="merged", version=1, category_code=target.category_code, kind=target.kind, source=req.source,
                   description=req.description, lon=req.lon, lat=req.lat, grid_code=grid_code,
                   district_code=district_code, severity=req.severity, reporter_phone=req.reporter_phone,
                   idempotency_key=req.idempotency_key, merged_into_id=target.id, time_unit=target.time_unit,
                   route_reason=f"与案件 #{target.id} 同类且相距不足 {self.dedupe_meters:g} 米、{self.dedupe_hours:g} 小时内，合并",
                   occurred_at=req.occurred_at, reported_at=now, updated_at=now)
        s.add(dup)
        s.flush()
        s.add(CaseHistory(case_id=dup.id, at=now, actor=actor, action="merge", from_state=None, to_state="merged",
                          note=f"重复上报，已合并到案件 #{target.id}"))
        done = s.execute(update(Case).where(Case.id == target.id, Case.version == target.version).values(
            reporter_count=Case.reporter_count + 1, version=Case.version + 1, updated_at=now))
        if done.rowcount != 1:
            raise ServiceError(409, "conflict", "目标案件刚被他人修改，请重试")
        s.add(CaseHistory(case_id=target.id, at=now, actor=actor, action="merge", from_state=target.state,
                          to_state=target.state, note=f"合并重复上报 #{dup.id}（第 {target.reporter_count + 1} 位上报人）"))
        s.refresh(target)
        self._add_event(s, dup, "created")
        self._add_event(s, target, "updated")
        return dup

    # ---- reads ----------------------------------------------------------------------------
    def get(self, case_id: int, principal: Principal | None) -> dict:
        with self.db.session() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise ServiceError(404, "not_found", f"案件 #{case_id} 不存在")
            if principal is not None and not self.can_see(principal, case):
                raise ServiceError(403, "forbidden", "该案件不在您的辖区内")
            history = s.scalars(select(CaseHistory).where(CaseHistory.case_id == case_id).order_by(CaseHistory.id)).all()
            return self.case_dict(case, list(history), principal)

    def list(self, principal: Principal, state: str | None = None, kind: str | None = None, area: str | None = None,
             overdue: bool | None = None, page: int = 1, per_page: int = 50) -> dict:
        clauses = []
        scope = self._area_clause(principal.area_code) if principal.role != "admin" else None
        if scope is not None:
            clauses.append(scope)
        if area:
            if self.areas.get(area) is None:
                raise ServiceError(404, "not_found", f"区域 {area} 不存在")
            if principal.role != "admin" and principal.area_code not in {a.code for a in self.areas.chain(area)}:
                raise ServiceError(403, "forbidden", f"区域 {area} 不在您的辖区内")
            clause = self._area_clause(area)
            if clause is not None:
                clauses.append(clause)
        if state:
            states = [x for x in state.split(",") if x]
            bad = [x for x in states if x not in lifecycle.STATES]
            if bad:
                raise ServiceError(400, "bad_request", f"未知状态 {', '.join(bad)}")
            clauses.append(Case.state.in_(states))
        if kind:
            if kind not in ("component", "event", "grid", "emergency"):
                raise ServiceError(400, "bad_request", f"未知类型 {kind}（component, event, grid, emergency）")
            clauses.append(Case.kind == kind)
        now = self.clock()
        if overdue is not None:
            is_overdue = and_(Case.deadline_at < now, Case.state.not_in(NOT_OPEN + ("verified",)))
            clauses.append(is_overdue if overdue else ~is_overdue)
        if principal.role == "unit_handler" and principal.unit_code:
            clauses.append(Case.unit_code == principal.unit_code)
        with self.db.session() as s:
            q = select(Case).where(*clauses)
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.scalars(q.order_by(Case.id.desc()).offset((page - 1) * per_page).limit(per_page)).all()
            ids = [c.id for c in rows]
            hist: dict[int, list] = {i: [] for i in ids}
            if ids:
                for h in s.scalars(select(CaseHistory).where(CaseHistory.case_id.in_(ids)).order_by(CaseHistory.id)):
                    hist[h.case_id].append(h)
            items = [self.case_dict(c, hist[c.id], principal, now) for c in rows]
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    # ---- actions --------------------------------------------------------------------------
    def _facts(self, case: Case) -> "lifecycle.CaseFacts":
        return lifecycle.CaseFacts(
            state=case.state, version=case.version, unit_code=case.unit_code,
            area_codes=tuple(a["code"] for a in self._chain(case.grid_code)),
            handling_level=case.handling_level or 5, supervised=case.supervised,
            extension_pending_hours=case.extension_pending_hours, deadline=case.deadline_at,
            time_unit=case.time_unit, rework_count=case.rework_count,
            escalation_count=case.escalation_count, extension_count=case.extension_count)

    def act(self, case_id: int, principal: Principal, action: str, version, note: str = "",
            hours=None, unit: str | None = None, actor_name: str | None = None) -> dict:
        if not isinstance(version, int) or isinstance(version, bool):
            raise ServiceError(400, "bad_request", "须提供整数 version（当前案件版本号）")
        if hours is not None and (not isinstance(hours, (int, float)) or isinstance(hours, bool)):
            raise ServiceError(400, "bad_request", "hours 须为数字")
        note = (note or "").strip()
        if len(note) > 2000:
            raise ServiceError(400, "bad_request", "备注过长（最多 2000 字）")
        actor = lifecycle.Actor(ident=actor_name or principal.ident, role=principal.role,
                                area_code=principal.area_code, unit_code=principal.unit_code)
        now = self.clock()
        with self.db.session() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise ServiceError(404, "not_found", f"案件 #{case_id} 不存在")
            if principal.role != "system" and not self.can_see(principal, case):
                raise ServiceError(403, "forbidden", "该案件不在您的辖区内")
            if case.version != version:
                raise ServiceError(409, "conflict",
                                   f"案件已被他人修改（您的版本 {version}，当前版本 {case.version}，当前状态「"
                                   f"{lifecycle.STATE_LABELS.get(case.state, case.state)}」），请刷新后重试",
                                   {"case": self.case_dict(case, None, principal, now)})
            if action == "dispatch" and unit is not None and s.get(UnitRow, unit) is None:
                raise ServiceError(422, "unknown_unit", f"单位 {unit} 不存在")
            try:
                t = lifecycle.plan_transition(self._facts(case), action, actor, note=note, hours=hours, unit=unit, now=now)
            except lifecycle.TransitionRefused as exc:
                raise ServiceError(exc.status, exc.code, exc.message)
            changes = dict(t.changes)
            if action == "escalate":
                changes.update(self._reroute(case, changes["handling_level"]))
            changes["version"] = case.version + 1
            changes["updated_at"] = now
            done = s.execute(update(Case).where(Case.id == case.id, Case.version == version).values(**changes))
            if done.rowcount != 1:
                raise ServiceError(409, "conflict", "案件已被他人修改，请刷新后重试")
            s.add(CaseHistory(case_id=case.id, at=now, actor=actor.ident, action=action, from_state=t.from_state,
                              to_state=t.to_state, note=t.note or note, details=t.details or None))
            s.refresh(case)
            self._add_event(s, case, "updated")
            seqs = self._flush_events(s)
        self._notify(seqs)
        return self.get(case_id, principal if principal.role != "system" else None)

    def _reroute(self, case: Case, level: int) -> dict:
        category = self.catalog()[case.category_code]
        unit_index, types = self._routing_refs()
        chain = self.areas.chain(case.grid_code)
        decision = route_case(category, chain, unit_index, types, severity=case.severity, level=level)
        out = {"route_reason": f"升级至{decision.reason}"}
        if decision.unit_code is not None:
            out["unit_code"] = decision.unit_code
        return out

    # ---- escalation scheduler ---------------------------------------------------------------
    def escalate_overdue(self, limit: int = 500) -> int:
        """Escalate each open case whose deadline passed, once per missed deadline, one level up,
        never beyond the city. Safe in several processes: the version-guarded update lets one win."""
        now = self.clock()
        system = Principal(kind="system", ident="system:scheduler", role="system", area_code="", unit_code=None)
        with self.db.session() as s:
            rows = s.execute(select(Case.id, Case.version).where(
                Case.deadline_at < now, Case.state.in_(("accepted", "dispatched", "signed", "returned", "rework")),
                Case.handling_level > 1,
                or_(Case.auto_escalated_deadline.is_(None), Case.auto_escalated_deadline != Case.deadline_at),
            ).order_by(Case.deadline_at).limit(limit)).all()
        n = 0
        for case_id, version in rows:
            try:
                self.act(case_id, system, "escalate", version, note="超过处置时限，系统自动升级")
            except ServiceError:
                continue  # another process got there first, or the case moved on
            with self.db.session() as s:
                s.execute(update(Case).where(Case.id == case_id).values(auto_escalated_deadline=Case.deadline_at))
            n += 1
        return n

    # ---- assessment -------------------------------------------------------------------------
    def kpis(self, start: date, end: date, by: str | None = None, principal: Principal | None = None) -> dict:
        if end < start:
            raise ServiceError(400, "bad_request", "结束日期早于开始日期")
        if by not in (None, "district", "unit", "category"):
            raise ServiceError(400, "bad_request", "by 须为 district、unit 或 category")
        lo = datetime.combine(start, datetime.min.time(), SHANGHAI).astimezone(timezone.utc)
        hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), SHANGHAI).astimezone(timezone.utc)
        clauses = [Case.reported_at < hi, or_(Case.reported_at >= lo, Case.accepted_at >= lo, Case.deadline_at >= lo,
                                              Case.closed_at >= lo, Case.closed_at.is_(None))]
        if principal is not None and principal.role != "admin":
            scope = self._area_clause(principal.area_code)
            if scope is not None:
                clauses.append(scope)
        cols = (Case.id, Case.state, Case.reported_at, Case.accepted_at, Case.rejected_at, Case.closed_at,
                Case.deadline_at, Case.rework_count, Case.extension_count, Case.unit_code, Case.district_code,
                Case.category_code)
        with self.db.session() as s:
            rows = [KpiCase(id=r[0], state=r[1], reported_at=r[2], accepted_at=r[3], rejected_at=r[4], closed_at=r[5],
                            deadline_at=r[6], rework_count=r[7], extension_count=r[8], unit_code=r[9],
                            district_code=r[10], category_code=r[11], merged=r[1] == "merged")
                    for r in s.execute(select(*cols).where(*clauses))]
        now = self.clock()
        total = compute_kpis(rows, start, end, now=now).to_dict()
        out = {"start": start.isoformat(), "end": end.isoformat(), **total}
        if by:
            groups = compute_grouped(rows, start, end, by, now=now)
            out["by"] = by
            out["groups"] = [{"key": k, "name": self._group_name(by, k), **v.to_dict()} for k, v in sorted(groups.items())]
        return out

    def _group_name(self, by: str, key: str | None) -> str | None:
        if key is None:
            return None
        if by == "district":
            a = self.areas.get(key)
            return a.name if a else key
        if by == "unit":
            return self._unit_ref(key)["name"]
        c = self.catalog().get(key)
        return c.name if c else key
