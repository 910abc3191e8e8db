"""The case service: intake and lifecycle actions as single transactions (case row + audit row +
outbox event), reads shaped as the API's case object, and the KPI query. Rules live in dispatch/.

Durable intake. When intake() returns, the case, its history row and its outbox event are committed in
ONE transaction: validate → locate → route → deadline (before the transaction) → lock → dedupe →
INSERT case + history + event → COMMIT → shape the answer from the values written (no re-read) →
notify the listeners. The write path uses SQLAlchemy Core statements compiled once per dialect and run
on the DBAPI cursor of one engine.begin() Connection: no ORM objects, no flushes.

- Dedupe runs inside the write transaction, after a lock that makes it exact under concurrency: on
  SQLite the transaction starts with BEGIN IMMEDIATE (the database's write lock: the SELECT sees every
  committed case and nobody adds one before our COMMIT, across threads and processes); on PostgreSQL a
  transaction-scoped advisory lock per category and coarse cell (every cell the dedupe box touches,
  taken in sorted order), so two reports of the same problem serialize and the second one merges.
- Idempotency: the unique index on cases.idempotency_key decides; a replay (IntegrityError) is answered
  with the case the key made, as GET /events/ID answers it.
- Group commit: concurrent intakes of one process share a transaction (see _commit_intake); each caller
  still returns only after the COMMIT that carries its case.
- recent_cases: the answer of each intake-created outbox event, for listeners (the live bus) that would
  otherwise read the case back (see __init__).
"""
from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import OrderedDict
from datetime import date, datetime, timedelta
from typing import Annotated, Callable, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import BigInteger, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from data.area_directory import AreaDirectory
from data.db import Database
from data.models import Case, CaseAssist, CaseEvent, CaseHistory, CasePenalty, CaseSupervision, UTCDateTime, utcnow
from data.models import Unit as UnitRow
from data import files
from data.reference import read_catalog, read_units
from data.tokens import Principal
from dispatch import lifecycle
from dispatch.access import HOTLINE_ROLE, HOTLINE_SYSTEM
from dispatch.city_time import local_iso as _iso
from dispatch.emergency_plans import RESPONSE_ACTION_LABELS
from dispatch.errors import ServiceError
from dispatch.limits import EARLIEST_DAY, LATEST_DAY, day_in_range, is_int64
from figures.period import is_overdue, not_overdue_now, overdue_now, unindexed
from dispatch.routing import route_case
from dispatch.stages import stage_clocks
from dispatch.working_time import clock_of, extension_unit
from dispatch.units import index_units
from geo.locator import OutsideCity

SOURCES = ("hotline", "patrol", "citizen", "iot", "video", "api", "open311")
SOURCE_LABELS = {"hotline": "12345热线", "patrol": "网格巡查", "citizen": "市民随手拍", "iot": "物联感知",
                 "video": "视频智能识别", "api": "系统接口", "open311": "Open311"}
CLOSED_FOR_DEDUPE = ("rejected", "merged", "closed", "verified", "voided")
NOT_OPEN = lifecycle.TERMINAL_STATES
# the stamps wave 2 adds to the case object (CONTRACT.md), and those the stage clocks read
_WAVE2_STAMPS = ("signed_at", "verified_at", "voided_at", "returned_at", "suspended_at", "resumed_at",
                 "check_requested_at", "checked_at", "callback_at")
# the column that remembers, per trigger of an automatic reminder, the deadline it was sent for
# a ticket reported more than once keeps each report; a number shared by more than this is not a ticket
MAX_TICKET_CASES = 20
_REMINDER_MARKS = {"warning": "auto_urged_deadline", "deadline": "auto_supervised_deadline"}
_STAGE_STAMPS = ("reported_at", "check_requested_at", "checked_at", "accepted_at", "rejected_at", "voided_at",
                 "returned_at", "dispatched_at", "signed_at", "resolved_at", "verified_at", "closed_at",
                 "suspended_at", "deadline_at")
PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
FIELD_LABELS = {"category": "事件类别", "lon": "经度", "lat": "纬度", "description": "问题描述", "source": "来源渠道",
                "severity": "事件等级", "reporter_phone": "联系电话", "occurred_at": "发生时间",
                "idempotency_key": "幂等键", "external_ref": "外部工单号", "external_system": "外部系统",
                # a 12345 ticket's and callback's fields (cases/hotline.py)
                "ticket_no": "工单号", "caller": "来电人", "phone": "来电号码", "content": "诉求内容", "address": "地址",
                "category_hint": "诉求分类", "deadline": "办结时限", "satisfaction": "回访满意度", "note": "回访说明"}
# Roles that need the reporter's number to call back; everyone else sees it masked.
PHONE_ROLES = ("admin", "duty_officer")
# Roles that may not report an event, and why (everyone else reports within their area).
NO_INTAKE_ROLES = {"wall": "大屏令牌只能读取，不能上报事件",
                   "leader": "领导账号可查看、督办和升级案件，不能上报事件"}


# The checks an intake model applies to its fields (IntakeRequest here, the 12345 ticket in cases/hotline.py): one
# wording of each refusal.
def finite_number(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError("必须是有限数字")
    return v


def phone_number(v: str | None) -> str | None:
    if v in (None, ""):
        return None
    if not PHONE_RE.match(v):
        raise ValueError("格式不正确（手机 11 位，或区号-座机号）")
    return v


def aware_time(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("须带时区偏移（如 2026-11-25T09:30:00+08:00）")
    if v is not None and not day_in_range(v):  # past these, the shift to UTC overflows
        raise ValueError(f"须在 {EARLIEST_DAY.year}–{LATEST_DAY.year} 年之间")
    return v


# the field types of an intake model, each with its check (pydantic's way to reuse a validator)
FiniteFloat = Annotated[float, AfterValidator(finite_number)]
PhoneNumber = Annotated[str | None, AfterValidator(phone_number)]
AwareTime = Annotated[datetime | None, AfterValidator(aware_time)]


class IntakeRequest(BaseModel):
    # the example is the API document's (/api/v1/openapi.json): a manhole cover missing in the demo city
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"category": "010151", "lon": 119.9745, "lat": 31.7847, "description": "井盖缺失", "source": "hotline"}]})

    category: str = Field(min_length=1, max_length=20)
    lon: FiniteFloat
    lat: FiniteFloat
    description: str = Field(default="", max_length=2000)
    source: Literal["hotline", "patrol", "citizen", "iot", "video", "api", "open311"]
    severity: int | None = Field(default=None, ge=1, le=4)
    reporter_phone: PhoneNumber = Field(default=None, max_length=20)
    occurred_at: AwareTime = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)
    # the hotline's (12345) ticket number and the system it comes from (CONTRACT: external_ref)
    external_ref: str | None = Field(default=None, min_length=1, max_length=64)
    external_system: str | None = Field(default=None, min_length=1, max_length=32)



def validation_message(err: ValidationError) -> tuple[str, dict]:
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
        elif e["type"] in ("string_type", "str_type"):
            msg = "须为文本"
        elif e["type"] == "list_type":
            msg = "须为列表"
        elif e["type"] in ("dict_type", "model_type", "model_attributes_type"):
            msg = "须为对象"
        elif e["type"] in ("bool_type", "bool_parsing"):
            msg = "须为 true 或 false"
        elif e["type"] == "literal_error":
            msg = "须为 " + str(e.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", "、") + " 之一"
        elif e["type"] == "extra_forbidden":
            msg = "不是可用的字段"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        fields[name] = f"{label}{msg}" if msg.startswith(("必", "须", "过", "不", "格")) else f"{label}：{msg}"
    return "；".join(fields.values()), {"fields": fields}


def _assist_codes(case: Case, rows) -> list[str]:
    """The case's assisting units: those intake's route named (cases.assist_units), then any added later."""
    codes = list(case.assist_units or ())
    return codes + [c for c in rows if c not in codes]


# the history's steps that are not actions: how a case came in
_INTAKE_LABELS = {"report": "上报", "merge": "合并上报", "alarm_note": "物联告警",
                  "campaign_assign": "专项整治指定牵头单位"}  # foresight/warnings.py
# (调配资源 / 归还资源 are named with the response's actions: dispatch.emergency_plans.RESPONSE_ACTION_LABELS)


def _action_label(action: str) -> str:
    return (lifecycle.ACTION_LABELS.get(action) or RESPONSE_ACTION_LABELS.get(action)
            or _INTAKE_LABELS.get(action, action))


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def haversine_m(lon1, lat1, lon2, lat2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


# ---- statements of the intake write path, built once -----------------------------------------------
# What dedupe and a merge need of the candidate cases: no ORM objects, no other columns. (state != each
# closed state rather than NOT IN: plain bound values, no IN list to expand at every execution.)
_DEDUPE = select(Case.id, Case.lon, Case.lat, Case.version, Case.state, Case.reporter_count, Case.kind,
                 Case.time_unit, Case.grid_code, Case.unit_code).where(
    Case.category_code == bindparam("category"),
    Case.reported_at >= bindparam("since"),
    *(Case.state != s for s in CLOSED_FOR_DEDUPE),
    Case.lat.between(bindparam("lat0"), bindparam("lat1")),
    Case.lon.between(bindparam("lon0"), bindparam("lon1")),
)
_CREATE_KEYS = ("state", "version", "category_code", "kind", "source", "description", "lon", "lat", "grid_code",
                "district_code", "severity", "reporter_phone", "reporter_count", "idempotency_key", "unit_code",
                "assist_units", "handling_level", "route_reason", "report_upward", "time_unit", "supervised",
                "escalation_count", "rework_count", "extension_count", "occurred_at", "reported_at", "deadline_at",
                "updated_at", "external_ref", "external_system")
# (the lifecycle's counters — urge_count, reassign_count, reopen_count, penalty_points — start at the
# database's default 0: no key of this INSERT)
# A merged report has no route, unit or deadline of its own (NULL, as the ORM wrote it).
_MERGED_KEYS = tuple(k for k in _CREATE_KEYS if k not in ("unit_code", "assist_units", "handling_level",
                                                           "deadline_at")) + ("merged_into_id",)
_HISTORY_KEYS = ("case_id", "at", "actor", "action", "from_state", "to_state", "note")
_EVENT_KEYS = ("case_id", "type", "at", "grid_code", "unit_code")
_BUMP_TARGET = (update(Case)
                .where(Case.id == bindparam("target_id"), Case.version == bindparam("target_version"))
                .values(reporter_count=Case.reporter_count + 1, version=Case.version + 1,
                        updated_at=bindparam("now", type_=UTCDateTime())))
_BY_KEY = select(Case.id).where(Case.idempotency_key == bindparam("key"))
_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(bindparam("k", type_=BigInteger())))
T_ID, T_LON, T_LAT, T_VERSION, T_STATE, T_COUNT, T_KIND, T_UNIT_TIME, T_GRID, T_UNIT = range(10)


def _memo(proc, cache: dict):
    """A datetime bind processor remembering what it made of the last few values: one intake binds
    its `now` four times (reported_at, updated_at, history, event). `cache` is shared by the
    statements of one engine; entries hold their value, so an id is never reused while cached."""

    def process(value):
        if value is None:
            return proc(value)
        hit = cache.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if len(cache) >= 8:
            cache.clear()
        out = proc(value)
        cache[id(value)] = (value, out)
        return out

    return process


class _Prepared:
    """A Core statement compiled once for a dialect and run on the DBAPI cursor of the transaction's
    Connection: the SQL text, the order of the parameters and their type processing (UTC datetimes,
    JSON, booleans) are SQLAlchemy's; what is skipped is the per-call execution context (about 25 µs a
    statement here, more than SQLite takes to run one of these)."""

    __slots__ = ("sql", "positional", "names", "template", "fill", "procs", "lastrowid")

    def __init__(self, stmt, dialect, keys: tuple[str, ...] | None = None, pk=None, memo: dict | None = None):
        self.lastrowid = False
        if pk is not None:
            if dialect.name == "sqlite":
                self.lastrowid = True  # the rowid of the INSERT, no RETURNING needed
            else:
                stmt = stmt.returning(pk)
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys)) if keys else stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = compiled.positional
        names = (list(compiled.positiontup) if compiled.positional
                 else list(dict.fromkeys(compiled.bind_names.values())))
        if keys is not None and set(names) != set(keys):
            # A column with a Python-side default that these keys do not set (SQLAlchemy would fill it in
            # at each execution; this runner does not): add it to the keys and give it its value.
            raise ValueError(f"{stmt.table.name}: statement binds {sorted(set(names) - set(keys))} too; "
                             f"add them to the intake keys")
        self.names = tuple(names)
        template: list = [None] * len(names)
        fill, procs = [], []
        for i, name in enumerate(names):
            bp = compiled.binds[name]
            proc = bp.type.dialect_impl(dialect).bind_processor(dialect)
            if bp.required or (keys is not None and name in keys):
                fill.append((i, name))
                if proc is not None:
                    if memo is not None and isinstance(bp.type, UTCDateTime):
                        proc = _memo(proc, memo)
                    procs.append((i, proc))
            else:  # a literal of the statement (the closed states, the + 1): processed once
                value = bp.effective_value
                template[i] = proc(value) if proc else value
        self.template = template if len(fill) < len(names) else None
        self.fill, self.procs = tuple(fill), tuple(procs)

    def args(self, params: dict):
        if self.template is None:
            values = [params[n] for n in self.names]
        else:
            values = self.template.copy()
            for i, n in self.fill:
                values[i] = params[n]
        for i, proc in self.procs:
            values[i] = proc(values[i])
        if self.positional:
            return values
        return dict(zip(self.names, values))

    def run(self, cur, params: dict):
        cur.execute(self.sql, self.args(params))
        return cur

    def insert(self, cur, params: dict) -> int:
        cur.execute(self.sql, self.args(params))
        return cur.lastrowid if self.lastrowid else cur.fetchone()[0]


class _Statements:
    """The intake statements compiled for one engine's dialect."""

    def __init__(self, dialect):
        self.dialect = dialect.name
        self.dbapi_error = dialect.loaded_dbapi.Error
        memo: dict = {}
        self.dedupe = _Prepared(_DEDUPE, dialect)
        self.create = _Prepared(insert(Case), dialect, _CREATE_KEYS, pk=Case.id, memo=memo)
        self.merged = _Prepared(insert(Case), dialect, _MERGED_KEYS, pk=Case.id, memo=memo)
        self.history = _Prepared(insert(CaseHistory), dialect, _HISTORY_KEYS, memo=memo)
        self.event = _Prepared(insert(CaseEvent), dialect, _EVENT_KEYS, pk=CaseEvent.seq, memo=memo)
        self.bump = _Prepared(_BUMP_TARGET, dialect, memo=memo)
        self.lock = _Prepared(_ADVISORY_LOCK, dialect) if dialect.name == "postgresql" else None


class _Intake:
    """One report on its way through the write path: what was decided before the transaction, and
    what came out of it."""

    __slots__ = ("req", "category", "chain", "grid_code", "district_code", "now", "actor", "principal",
                 "decision", "deadline", "case_id", "values", "history", "seqs", "answer", "error", "done",
                 "wake")

    def __init__(self, req, category, chain, grid_code, district_code, now, actor, principal, decision, deadline):
        self.req, self.category, self.chain = req, category, chain
        self.grid_code, self.district_code, self.now, self.actor = grid_code, district_code, now, actor
        self.principal, self.decision, self.deadline = principal, decision, deadline
        self.case_id: int | None = None
        self.values: dict | None = None
        self.history: dict | None = None
        self.seqs: list[int] = []
        self.answer: dict | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Lock()  # held until the writer releases it (group commit)
        self.wake.acquire()


class CaseService:
    # How many of the newest intake-created outbox events keep their shaped case in recent_cases.
    RECENT_CASES = 4096
    # At most this many intakes share one transaction (group commit).
    MAX_BATCH = 64
    # A new writer first lets the GIL go once when other intakes are being prepared, so that they
    # join its transaction (measured: fewer, fuller commits and less CPU per event with 4+ threads).
    YIELD_TO_PREPARING = True

    def __init__(self, db: Database, areas: AreaDirectory, dedupe_meters: float = 50.0, dedupe_hours: float = 24.0,
                 clock: Callable[[], datetime] = utcnow):
        self.db, self.areas = db, areas
        self.dedupe_meters, self.dedupe_hours = dedupe_meters, dedupe_hours
        self.clock = clock
        self.calendar = files.calendar()
        self.rules = files.center_rules()
        self._ref_lock = threading.Lock()
        self._catalog = None
        self._unit_types = None
        self._route_exceptions = ()
        self._unit_index = None
        self._unit_names: dict[str, str] = {}
        self.listeners: list[Callable[[list[int]], None]] = []  # told the outbox seqs after commit
        # another room's fields of the case objects (an emergency's `response`): (session, cases) → {id: fields}
        self.case_readers: list[Callable[[Session, list[Case]], dict[int, dict]]] = []
        # For listeners: outbox seq → the case as GET /events/ID answers it for no particular principal
        # (case_dict(case, history, None): phone masked, history included), for the "created" events
        # intake wrote lately. Filled before the listeners are told, only while there are listeners,
        # newest RECENT_CASES kept. A listener may take (pop) the case of a seq it was told instead of
        # reading case + history back; every such event has type "created" and the case's lead unit
        # (case["unit"]) as its unit_code. A seq not in here (a merge's "updated" event on the target,
        # an action, an evicted one) must be read back. Treat the dicts as read-only.
        self.recent_cases: OrderedDict[int, dict] = OrderedDict()
        self._stmts: _Statements | None = None
        self._gc_mutex = threading.Lock()
        self._gc_queue: list[_Intake] = []
        self._gc_busy = False
        self._gc_preparing = 0

    # ---- reference data -------------------------------------------------------------------
    def reload_reference(self) -> None:
        with self._ref_lock, self.db.session() as s:
            catalog = read_catalog(s)
            units = read_units(s)
            # Assign the catalog last: other threads take "catalog loaded" to mean "all loaded".
            self._unit_types = files.unit_types()
            # checked against the file's catalog, not the database's: a rule names current codes
            self._route_exceptions = files.routing_exceptions(types=self._unit_types)
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

    def routing_refs(self):
        """(the units by (area, type), the unit types): what routing and an emergency plan's tasks find units in."""
        return self._routing_refs()

    def unit_ref(self, code: str | None) -> dict | None:
        """{code, name} of a unit, as the case objects name units."""
        return self._unit_ref(code)

    def chain(self, grid_code: str) -> list[dict]:
        """The areas of a grid, grid → city, as the case objects list them."""
        return self._chain(grid_code)

    # ---- shaping --------------------------------------------------------------------------
    def _chain(self, grid_code: str) -> list[dict]:
        return [{"code": a.code, "name": a.name, "level": a.level} for a in self.areas.chain(grid_code)]

    def _unit_ref(self, code: str | None) -> dict | None:
        if code is None:
            return None
        self.catalog()
        return {"code": code, "name": self._unit_names.get(code, code)}

    def case_dict(self, case: Case, history: list[CaseHistory] | None, principal: Principal | None,
                  now: datetime | None = None, extras: dict | None = None) -> dict:
        """The case as the API answers it. ``extras``: its 协办, 催办/督办 and 扣分 rows as
        :meth:`case_dicts` reads them (empty lists when not given)."""
        now = now or self.clock()
        cat = self.catalog().get(case.category_code)
        overdue = is_overdue(case.state, case.accepted_at, case.rejected_at, case.closed_at, case.deadline_at, now)
        sla = self._sla(case.state, case.accepted_at, case.closed_at, self._clock_start(case), case.deadline_at,
                        case.time_unit, now, overdue)
        extras = extras or {}
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
            "deadline": _iso(case.deadline_at), "time_unit": case.time_unit, "clock": clock_of(case.time_unit),
            "overdue": overdue, "sla": sla,
            "severity": case.severity, "reporter_phone": phone, "reporter_count": case.reporter_count,
            "merged_into": case.merged_into_id, "supervised": case.supervised,
            "escalation_count": case.escalation_count, "rework_count": case.rework_count,
            "extension_count": case.extension_count, "extension_pending_hours": case.extension_pending_hours,
            "occurred_at": _iso(case.occurred_at), "reported_at": _iso(case.reported_at),
            "accepted_at": _iso(case.accepted_at), "rejected_at": _iso(case.rejected_at),
            "dispatched_at": _iso(case.dispatched_at), "resolved_at": _iso(case.resolved_at),
            "closed_at": _iso(case.closed_at), "updated_at": _iso(case.updated_at),
            **{k: _iso(getattr(case, k)) for k in _WAVE2_STAMPS},
            "warning_at": _iso(case.warning_at),
            "check_result": case.check_result,
            "stages": self._stages(case, now),
            "suspension": self._suspension(case),
            "assists": extras.get("assists", []),
            "supervision": extras.get("supervision", []),
            "supervision_level": case.supervision_level,
            "supervision_deadline": _iso(case.supervision_deadline),
            "urge_count": case.urge_count or 0, "reassign_count": case.reassign_count or 0,
            "reopen_count": case.reopen_count or 0,
            "penalties": extras.get("penalties", []), "penalty_points": case.penalty_points or 0.0,
            "callback": None if case.callback_at is None else {
                "result": case.callback_result,
                "result_label": lifecycle.SATISFACTION.get(case.callback_result, case.callback_result),
                "note": case.callback_note or "", "at": _iso(case.callback_at)},
            "external_ref": case.external_ref, "external_system": case.external_system,
        }
        if history is not None:
            out["history"] = [{"at": _iso(h.at), "actor": h.actor, "action": h.action,
                               "action_label": _action_label(h.action),
                               "from": h.from_state, "to": h.to_state, "note": h.note} for h in history]
        return out

    @staticmethod
    def _clock_start(case) -> datetime:
        """Where the handling clock last started: 派遣 (or the report, before any), or 解挂 after it."""
        start = case.dispatched_at or case.reported_at
        resumed = getattr(case, "resumed_at", None)
        return resumed if resumed is not None and resumed > start else start

    def _stages(self, case: Case, now: datetime) -> list[dict]:
        return self._stage_list({k: getattr(case, k) for k in _STAGE_STAMPS}, case.state, case.time_unit, now)

    def _stage_list(self, stamps: dict, state: str, time_unit: str, now: datetime) -> list[dict]:
        """dispatch.stages.stage_clocks with its times in the city's ISO form."""
        out = stage_clocks(stamps, state, time_unit, self.rules, self.calendar, now)
        for st in out:
            for k in ("started_at", "deadline", "done_at"):
                st[k] = _iso(st[k])
        return out

    def _new_stages(self, state: str, reported: datetime, time_unit: str,
                    reported_iso: str | None = None) -> list[dict]:
        """The stage clocks of a report written this instant: 受理 open since the report (none for a merged one).
        What stage_clocks answers for it, worked out directly (intake's hot path: one deadline, no
        elapsed-time sums; tests/demo/test_runner.py holds the two equal): no time has gone, so neither late
        nor warned."""
        if state != "reported":
            return []
        stage = self.rules.stage("accept")
        deadline = self.calendar.working_deadline(reported, stage.limit_hours, extension_unit(time_unit))
        return [{"name": "accept", "label": stage.label, "started_at": reported_iso or _iso(reported),
                 "deadline": _iso(deadline), "done_at": None, "overdue": False, "warning": False, "paused": False}]

    @staticmethod
    def _suspension(case: Case) -> dict | None:
        """挂账: the unit's pending request, or the stopped clock and the time it had left."""
        if case.state == "suspended":
            return {"state": "suspended", "since": _iso(case.suspended_at), "from_state": case.state_before_suspension,
                    "remaining_hours": case.suspension_remaining_hours}
        if case.suspension_requested_at is not None:
            return {"state": "requested", "since": _iso(case.suspension_requested_at)}
        return None

    def _sla(self, state, accepted_at, closed_at, clock_start, deadline_at, time_unit, now, overdue: bool):
        """The deadline's countdown while the case can be overdue (accepted, not closed: docs/figures.md),
        else None; its "overdue" state is exactly the case's `overdue` (figures.period.is_overdue). It counts
        from where the handling clock last started (派遣, 解挂); a suspended or voided case has none running."""
        if deadline_at is None or accepted_at is None or closed_at is not None or state in NOT_OPEN \
                or state == "suspended":
            return None
        st, frac = self.calendar.sla_state(min(clock_start, deadline_at), deadline_at, now, time_unit)
        if st == "overdue" and not overdue:  # the instant of the deadline itself: not late yet
            st = "warning"
        return {"state": "overdue" if overdue else st, "elapsed_fraction": round(frac, 4)}

    # ---- scope ----------------------------------------------------------------------------
    def _area_clause(self, area_code: str, indexed: bool = True):
        """The cases of an area; `indexed=False` spells it so that no index serves it (a filter checked on
        the rows another index or the primary key found)."""
        area = self.areas.get(area_code)
        if area is None:
            raise ServiceError(404, "not_found", f"区域 {area_code} 不存在")
        col = (lambda c: c) if indexed else unindexed
        if area.level == 1:
            return None
        if area.level == 2:
            return col(Case.district_code) == area_code
        if area.level == 5:
            return col(Case.grid_code) == area_code
        return self._code_prefix(col(Case.grid_code), area_code)

    def can_see(self, principal: Principal, case: Case) -> bool:
        """The one read rule (GET, actions, list, KPIs and the live rooms agree with it): admins see
        everything; everyone else the cases of their area; a unit handler, of those, only the cases
        of their unit (lead or assisting, as the live rooms deliver them)."""
        if principal.role == "admin":
            return True
        if not self._in_area(principal, case):
            return False
        if principal.role == HOTLINE_ROLE:  # the 12345 system reads the cases of its own tickets only
            return case.external_system == HOTLINE_SYSTEM
        if principal.role == "unit_handler":
            return bool(principal.unit_code) and (
                principal.unit_code == case.unit_code or principal.unit_code in (case.assist_units or ()))
        return True

    def _in_area(self, principal: Principal, case: Case) -> bool:
        """The area half of can_see (the part no action changes)."""
        return principal.role == "admin" or principal.area_code in {a["code"] for a in self._chain(case.grid_code)}

    def _unit_clause(self, principal: Principal):
        """For a unit handler: only the cases of their unit (lead or assisting); None for others."""
        from sqlalchemy import String, cast

        if principal.role != "unit_handler":
            return None
        unit = principal.unit_code or ""
        return or_(Case.unit_code == unit, cast(Case.assist_units, String).contains(f'"{unit}"', autoescape=True))

    # ---- intake (see "Durable intake" in the module docstring) ------------------------------
    def intake(self, payload: dict, principal: Principal | None, actor: str = "api") -> tuple[dict, bool]:
        """Validate, locate, route, set the deadline, persist with history and outbox event in one
        transaction. Returns (case object, created); created is False for a replayed idempotency key."""
        req = self._intake_request(payload, principal)
        with self._gc_mutex:
            self._gc_preparing += 1  # tells a writer that this intake is about to queue (group commit)
        try:
            job = self._prepare(req, principal, actor)
        except BaseException as exc:
            with self._gc_mutex:
                self._gc_preparing -= 1
            # A replay is answered with the case it made even if the world changed since (as before
            # the unique index took over the check): only on this refusal path, so it costs nothing.
            if isinstance(exc, ServiceError) and req.idempotency_key:
                existing = self._by_idempotency_key(req.idempotency_key, principal)
                if existing is not None:
                    return existing, False
            raise
        self._commit_intake(job)
        if job.error is not None:
            if isinstance(job.error, IntegrityError) and req.idempotency_key:
                # The unique index refused the key: a replay (or a concurrent twin that won). Answer
                # with the case it made, exactly as a later GET would.
                existing = self._by_idempotency_key(req.idempotency_key, principal)
                if existing is not None:
                    return existing, False
            raise job.error
        self._after_commit(job)
        if job.answer is None:  # shaping failed after the commit: the case is safe, read it back
            return self.get(job.case_id, principal), True
        return job.answer, True

    def _intake_request(self, payload, principal: Principal | None) -> IntakeRequest:
        """The report as intake (and preview) accept it, or a 400/403 ServiceError saying why not."""
        # Who may report comes first (DESIGN.md: officers take reports from every channel, grid members
        # and handlers report what they find; a wall only shows, a leader views, supervises, escalates).
        if principal is not None and principal.role in NO_INTAKE_ROLES:
            raise ServiceError(403, "forbidden", NO_INTAKE_ROLES[principal.role])
        if not isinstance(payload, dict):
            raise ServiceError(400, "bad_request", "请求体须为 JSON 对象")
        try:
            req = IntakeRequest.model_validate(payload)
        except ValidationError as exc:
            msg, details = validation_message(exc)
            raise ServiceError(400, "invalid", msg, details)
        return req

    def _prepare(self, req: IntakeRequest, principal: Principal | None, actor: str) -> "_Intake":
        """Everything before the write: category, location, scope, time, route and deadline."""
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
        if principal is not None and principal.role != "admin" and principal.area_code not in {a.code for a in chain}:
            raise ServiceError(403, "forbidden", "上报位置不在您的辖区内")
        now = self.clock()
        if req.occurred_at and req.occurred_at > now + timedelta(minutes=5):
            raise ServiceError(400, "invalid", "发生时间不能晚于当前时间", {"fields": {"occurred_at": "晚于当前时间"}})
        unit_index, types = self._routing_refs()
        decision = route_case(category, chain, unit_index, types, severity=req.severity,
                              exceptions=self._route_exceptions)
        deadline = self.calendar.working_deadline(now, category.time_limit, category.time_unit)
        district = next(a for a in chain if a.level == 2)
        return _Intake(req, category, chain, chain[0].code, district.code, now, actor, principal, decision, deadline)

    # -- the write: one transaction per intake, or per batch of concurrent intakes ------------------
    def _commit_intake(self, job: "_Intake") -> None:
        """Write `job` durably; on return job.case_id or job.error is set.

        Group commit: the intakes of this process queue here. A caller that finds no write in progress
        becomes the writer: it commits everything queued by then in ONE transaction, wakes the callers
        whose cases that commit carried, and hands the writer's role to the first caller still queued.
        Every caller returns only once the transaction holding its case has committed. Alone, a caller
        writes its own case at once: no thread hand-off, no added wait."""
        others = 0
        with self._gc_mutex:
            self._gc_preparing -= 1
            self._gc_queue.append(job)
            if self._gc_busy:
                lead = False
            else:
                self._gc_busy = lead = True
                others = self._gc_preparing
        if others and self.YIELD_TO_PREPARING:
            # Other intakes are being validated and routed in this process right now: give them the
            # moment they need to join this transaction (one COMMIT for all) instead of each its own.
            time.sleep(0)
        if not lead:
            job.wake.acquire()  # released by the writer: committed (done), or our turn to write
            if job.done:
                return
        queue = self._gc_queue
        with self._gc_mutex:
            batch = queue[:self.MAX_BATCH]
            del queue[:self.MAX_BATCH]
        try:
            self._write_batch(batch)
        finally:
            for j in batch:
                if j.case_id is None and j.error is None:
                    j.error = RuntimeError("intake interrupted before its commit")
                j.done = True
                if j is not job:
                    j.wake.release()
            with self._gc_mutex:
                if queue:
                    queue[0].wake.release()  # still busy: the next caller in line writes
                else:
                    self._gc_busy = False

    def _write_batch(self, batch: list["_Intake"]) -> None:
        try:
            self._write(batch)
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            if len(batch) == 1:
                batch[0].error = exc
                return
            # Something in the batch failed and the whole transaction rolled back (typically a replayed
            # idempotency key hitting the unique index): write each one alone, so that only the failing
            # intake gets the error and the others are committed as usual.
            for j in batch:
                try:
                    self._write([j])
                except Exception as exc1:  # noqa: BLE001
                    j.error = exc1

    def _statements(self) -> _Statements:
        st = self._stmts
        if st is None:
            st = self._stmts = _Statements(self.db.engine.dialect)
        return st

    def _write(self, jobs: list["_Intake"]) -> list[int]:
        """One transaction for the jobs: lock, then per job dedupe + rows; commit. Returns the outbox
        seqs in commit order. A job refused inside the transaction (merge target changed meanwhile)
        gets its error and writes nothing; any other failure rolls the whole transaction back and is
        raised."""
        st = self._statements()
        for job in jobs:
            job.case_id, job.values, job.history, job.seqs, job.error = None, None, None, [], None
        seqs: list[int] = []
        sql = "COMMIT"
        try:
            with self.db.write_transaction() as cur:
                if st.lock is not None:
                    sql = st.lock.sql
                    keys = sorted({k for j in jobs for k in self._lock_keys(j.category.code, j.req.lon, j.req.lat)})
                    for key in keys:  # sorted: two batches never wait on each other in a cycle
                        st.lock.run(cur, {"k": key})
                for job in jobs:
                    sql = None
                    target = self._duplicate_of(cur, job.category.code, job.req.lon, job.req.lat, job.now)
                    try:
                        if target is not None:
                            self._merge(cur, job, target)
                        else:
                            self._create(cur, job)
                    except ServiceError as exc:
                        job.error = exc
                        continue
                    seqs.extend(job.seqs)
                sql = "COMMIT"
        except st.dbapi_error as exc:
            # As SQLAlchemy would have raised it (IntegrityError, OperationalError, ...).
            raise DBAPIError.instance(sql, None, exc, st.dbapi_error, dialect=self.db.engine.dialect) from exc
        return seqs

    def _after_commit(self, job: "_Intake") -> None:
        """In the caller's thread, once its case is committed: shape the answer, keep the case for the
        live bus, tell the listeners."""
        try:
            job.answer = self._fresh_case_dict(job.values, job.chain, job.history, job.principal)
            if self.listeners:
                # For the live bus: the case as GET /events/ID answers it for no one in particular
                # (phone masked); its own top-level dict, the nested values shared with the answer.
                answer = job.answer
                self._remember(job.seqs[0], {**answer, "reporter_phone": mask_phone(job.values["reporter_phone"])})
        except Exception:  # noqa: BLE001 - the case is committed; intake() reads it back instead
            import logging

            logging.getLogger("ucc.intake").exception("shaping the new case failed")
        self._notify(job.seqs)

    def _remember(self, seq: int, case: dict) -> None:
        recent = self.recent_cases
        recent[seq] = case
        try:
            while len(recent) > self.RECENT_CASES:
                recent.popitem(last=False)
        except KeyError:  # emptied meanwhile by a consumer
            pass

    def _by_idempotency_key(self, key: str, principal) -> dict | None:
        with self.db.engine.connect() as conn:
            case_id = conn.execute(_BY_KEY, {"key": key}).scalar()
        return self.get(case_id, principal) if case_id is not None else None

    def _duplicate_of(self, cur, category_code: str, lon: float, lat: float, now: datetime):
        """The nearest open case of the same category within dedupe_meters reported within
        dedupe_hours, as a tuple in the column order of _DEDUPE (T_ID, T_LON, ...), or None.
        `cur`: the DBAPI cursor of the write transaction, or a Connection or Session."""
        if isinstance(cur, (Connection, Session)):
            conn = cur.connection() if isinstance(cur, Session) else cur
            cur = conn.connection.cursor()
        dlat = self.dedupe_meters / 111_320.0
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        rows = self._statements().dedupe.run(cur, {
            "category": category_code, "since": now - timedelta(hours=self.dedupe_hours),
            "lat0": lat - dlat, "lat1": lat + dlat, "lon0": lon - dlon, "lon1": lon + dlon}).fetchall()
        best = None
        for c in rows:
            d = haversine_m(lon, lat, c[T_LON], c[T_LAT])
            if d <= self.dedupe_meters and (best is None or d < best[0]):
                best = (d, c)
        return best[1] if best else None

    def _lock_keys(self, category_code: str, lon: float, lat: float) -> list[int]:
        """PostgreSQL advisory-lock keys of the coarse cells the dedupe box of a report touches.
        Two reports that could merge share the cell of either point, so they serialize."""
        dlat = self.dedupe_meters / 111_320.0
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        cell = max(4 * dlat, 1e-6)
        keys = []
        for i in range(math.floor((lat - dlat) / cell), math.floor((lat + dlat) / cell) + 1):
            # Each row of cells has its own width (wider toward the poles, one cell beyond 80°), so
            # every report computes the same cells whatever its own latitude.
            edge = min(90.0, max(abs(i * cell), abs((i + 1) * cell)))
            c = math.cos(math.radians(edge))
            if c < 0.17:
                cols = [0]
            else:
                width = cell / c
                cols = range(math.floor((lon - dlon) / width), math.floor((lon + dlon) / width) + 1)
            for j in cols:
                digest = hashlib.blake2b(f"ucc-dedupe|{category_code}|{i}|{j}".encode(), digest_size=8).digest()
                keys.append(int.from_bytes(digest, "big", signed=True))
        return keys

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

    def _create(self, cur, job: "_Intake") -> None:
        st = self._statements()
        req, category, decision, now = job.req, job.category, job.decision, job.now
        v = {"state": "reported", "version": 1, "category_code": category.code, "kind": category.kind,
             "source": req.source, "description": req.description, "lon": req.lon, "lat": req.lat,
             "grid_code": job.grid_code, "district_code": job.district_code, "severity": req.severity,
             "reporter_phone": req.reporter_phone, "reporter_count": 1, "idempotency_key": req.idempotency_key,
             "unit_code": decision.unit_code, "assist_units": list(decision.assist_unit_codes),
             "handling_level": decision.handling_level, "route_reason": decision.reason,
             "report_upward": decision.report_upward, "time_unit": category.time_unit, "supervised": False,
             "escalation_count": 0, "rework_count": 0, "extension_count": 0, "occurred_at": req.occurred_at,
             "reported_at": now, "deadline_at": job.deadline, "updated_at": now,
             "external_ref": req.external_ref, "external_system": req.external_system}
        case_id = v["id"] = st.create.insert(cur, v)
        h = {"case_id": case_id, "at": now, "actor": job.actor, "action": "report", "from_state": None,
             "to_state": "reported", "note": f"{SOURCE_LABELS[req.source]}上报；{decision.reason}"}
        st.history.run(cur, h)
        seq = st.event.insert(cur, {"case_id": case_id, "type": "created", "at": now, "grid_code": job.grid_code,
                                    "unit_code": decision.unit_code})
        job.case_id, job.values, job.history, job.seqs = case_id, v, h, [seq]

    def _merge(self, cur, job: "_Intake", target) -> None:
        st = self._statements()
        req, now = job.req, job.now
        target_id, target_state = target[T_ID], target[T_STATE]
        st.bump.run(cur, {"target_id": target_id, "target_version": target[T_VERSION], "now": now})
        if cur.rowcount != 1:
            raise ServiceError(409, "conflict", "目标案件刚被他人修改，请重试")
        v = {"state": "merged", "version": 1, "category_code": job.category.code, "kind": target[T_KIND],
             "source": req.source, "description": req.description, "lon": req.lon, "lat": req.lat,
             "grid_code": job.grid_code, "district_code": job.district_code, "severity": req.severity,
             "reporter_phone": req.reporter_phone, "reporter_count": 1, "idempotency_key": req.idempotency_key,
             "merged_into_id": target_id, "time_unit": target[T_UNIT_TIME],
             "route_reason": f"与案件 #{target_id} 同类且相距不足 {self.dedupe_meters:g} 米、{self.dedupe_hours:g} 小时内，合并",
             "report_upward": False, "supervised": False, "escalation_count": 0, "rework_count": 0,
             "extension_count": 0, "occurred_at": req.occurred_at, "reported_at": now, "updated_at": now,
             "external_ref": req.external_ref, "external_system": req.external_system}
        dup_id = v["id"] = st.merged.insert(cur, v)
        h = {"case_id": dup_id, "at": now, "actor": job.actor, "action": "merge", "from_state": None,
             "to_state": "merged", "note": f"重复上报，已合并到案件 #{target_id}"}
        st.history.run(cur, h)
        st.history.run(cur, {"case_id": target_id, "at": now, "actor": job.actor, "action": "merge",
                             "from_state": target_state, "to_state": target_state,
                             "note": f"合并重复上报 #{dup_id}（第 {target[T_COUNT] + 1} 位上报人）"})
        seq = st.event.insert(cur, {"case_id": dup_id, "type": "created", "at": now, "grid_code": job.grid_code,
                                    "unit_code": None})
        seq2 = st.event.insert(cur, {"case_id": target_id, "type": "updated", "at": now,
                                     "grid_code": target[T_GRID], "unit_code": target[T_UNIT]})
        job.case_id, job.values, job.history, job.seqs = dup_id, v, h, [seq, seq2]

    def _fresh_case_dict(self, v: dict, chain, history: dict, principal: Principal | None) -> dict:
        """case_dict of a case written this instant, from the values written (no re-read): its SLA is
        (normal, 0) while its deadline lies ahead, its chain is the locator's, its history one row."""
        state, deadline, reported = v["state"], v.get("deadline_at"), v["reported_at"]
        cat = self.catalog().get(v["category_code"])
        names = self._unit_names
        sla = None  # a new report is not accepted yet: no countdown, never overdue (docs/figures.md)
        phone = v["reporter_phone"]
        if principal is None or principal.role not in PHONE_ROLES:
            phone = mask_phone(phone)
        code = v.get("unit_code")
        lead = {"code": code, "name": names.get(code, code)} if code is not None else None
        units = [lead] if lead else []
        for c in v.get("assist_units") or ():
            units.append({"code": c, "name": names.get(c, c)})
        kind = v["kind"]
        at = _iso(reported)
        updated = v["updated_at"]
        occurred = v["occurred_at"]
        action = history["action"]
        return {
            "id": v["id"], "state": state, "state_label": lifecycle.STATE_LABELS.get(state, state),
            "version": v["version"],
            "category": {"code": v["category_code"], "name": cat.name if cat else v["category_code"],
                         "kind": kind, "major_class": cat.major_class if cat else None},
            "kind": kind, "source": v["source"], "description": v["description"],
            "lon": v["lon"], "lat": v["lat"],
            "chain": [{"code": a.code, "name": a.name, "level": a.level} for a in chain],
            "unit": lead, "units": units,
            "handling_level": v.get("handling_level"), "route_reason": v["route_reason"],
            "report_upward": v["report_upward"],
            "deadline": _iso(deadline), "time_unit": v["time_unit"], "clock": clock_of(v["time_unit"]),
            "overdue": False, "sla": sla,
            "severity": v["severity"], "reporter_phone": phone, "reporter_count": v["reporter_count"],
            "merged_into": v.get("merged_into_id"), "supervised": v["supervised"],
            "escalation_count": 0, "rework_count": 0, "extension_count": 0, "extension_pending_hours": None,
            "occurred_at": _iso(occurred) if occurred is not None else None, "reported_at": at,
            "accepted_at": None, "rejected_at": None, "dispatched_at": None, "resolved_at": None,
            "closed_at": None, "updated_at": at if updated is reported else _iso(updated),
            **dict.fromkeys(_WAVE2_STAMPS), "warning_at": None, "check_result": None,
            "stages": self._new_stages(state, reported, v["time_unit"], at),
            "suspension": None, "assists": [], "supervision": [], "supervision_level": None,
            "supervision_deadline": None, "urge_count": 0, "reassign_count": 0, "reopen_count": 0,
            "penalties": [], "penalty_points": 0.0, "callback": None,
            "external_ref": v.get("external_ref"), "external_system": v.get("external_system"),
            **({"response": None} if v["kind"] == "emergency" else {}),  # a new row has no response yet
            "history": [{"at": at if history["at"] is reported else _iso(history["at"]), "actor": history["actor"],
                         "action": action, "action_label": _action_label(action),
                         "from": history["from_state"], "to": history["to_state"], "note": history["note"]}],
        }

    # ---- reads ----------------------------------------------------------------------------
    def visible_case(self, s: Session, case_id: int, principal: Principal | None) -> Case:
        """The case row, if `principal` may see it (None: the system, sees all); else 404 or 403."""
        case = s.get(Case, case_id) if is_int64(case_id) else None  # no row has an id past 64 bits
        if case is None:
            raise ServiceError(404, "not_found", f"案件 #{case_id} 不存在")
        if principal is not None and not self.can_see(principal, case):
            raise ServiceError(403, "forbidden", "该案件不在您的辖区内")
        return case

    def get(self, case_id: int, principal: Principal | None) -> dict:
        with self.db.session() as s:
            case = self.visible_case(s, case_id, principal)
            return self.case_dicts(s, [case], principal)[0]

    def case_dicts(self, s: Session, cases: list[Case], principal: Principal | None,
                   now: datetime | None = None) -> list[dict]:
        """The API's case objects of ``cases`` (rows of session ``s``), in their order: each with its history,
        协办 units, 催办/督办 and 扣分, read in one query per table for all of them."""
        now = now or self.clock()
        ids = [c.id for c in cases]
        hist: dict[int, list] = {i: [] for i in ids}
        extras: dict[int, dict] = {i: {"assists": [], "supervision": [], "penalties": []} for i in ids}
        if ids:
            for h in s.scalars(select(CaseHistory).where(CaseHistory.case_id.in_(ids)).order_by(CaseHistory.id)):
                hist[h.case_id].append(h)
            for a in s.scalars(select(CaseAssist).where(CaseAssist.case_id.in_(ids)).order_by(CaseAssist.id)):
                extras[a.case_id]["assists"].append({
                    "unit": self._unit_ref(a.unit_code), "added_at": _iso(a.added_at), "signed_at": _iso(a.signed_at),
                    "reported_at": _iso(a.reported_at), "note": a.report_note or ""})
            for r in s.scalars(select(CaseSupervision).where(CaseSupervision.case_id.in_(ids))
                               .order_by(CaseSupervision.id)):
                extras[r.case_id]["supervision"].append({
                    "kind": r.kind, "kind_label": lifecycle.ACTION_LABELS[r.kind], "unit": self._unit_ref(r.unit_code),
                    "level": r.level, "level_label": lifecycle.LEVEL_LABELS.get(r.level), "at": _iso(r.at),
                    "deadline": _iso(r.deadline_at), "for_deadline": _iso(r.for_deadline), "actor": r.actor,
                    "automatic": r.automatic, "rule": r.rule, "note": r.note})
            for p in s.scalars(select(CasePenalty).where(CasePenalty.case_id.in_(ids)).order_by(CasePenalty.id)):
                extras[p.case_id]["penalties"].append({
                    "unit": self._unit_ref(p.unit_code), "points": p.points, "rule": p.rule,
                    "rule_label": lifecycle.ACTION_LABELS.get(p.rule, p.rule), "reason": p.reason, "at": _iso(p.at)})
        for c in cases:  # the assisting units intake's route named, before they act (no row yet)
            listed = {a["unit"]["code"] for a in extras[c.id]["assists"]}
            extras[c.id]["assists"][:0] = [
                {"unit": self._unit_ref(code), "added_at": _iso(c.reported_at), "signed_at": None, "reported_at": None,
                 "note": ""} for code in (c.assist_units or ()) if code not in listed]
        out = [self.case_dict(c, hist[c.id], principal, now, extras[c.id]) for c in cases]
        for reader in self.case_readers:
            more = reader(s, cases)
            for d in out:
                d.update(more.get(d["id"], {}))
        return out

    def list(self, principal: Principal, state: str | None = None, kind: str | None = None, area: str | None = None,
             overdue: bool | None = None, page: int = 1, per_page: int = 50, after: int | None = None,
             count: bool = False) -> dict:
        """A page of the cases `principal` may see, newest (highest id) first: `{items, next, page, per_page}`
        and `total` when `count` (counting the whole scope costs what the scope holds; a page does not).
        `after`: the `next` of the previous page (keyset: the cases with a lower id, however many were
        added meanwhile); otherwise `page` (an offset). `next` is None on the last page."""
        if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 1):
            raise ServiceError(400, "bad_request", "after 须为正整数（上一页返回的 next）")
        states = [x for x in (state or "").split(",") if x]
        bad = [x for x in states if x not in lifecycle.STATES]
        if bad:
            raise ServiceError(400, "bad_request", f"未知状态 {', '.join(bad)}")
        if kind and kind not in ("component", "event", "grid", "emergency"):
            raise ServiceError(400, "bad_request", f"未知类型 {kind}（component, event, grid, emergency）")
        now = self.clock()
        # Two ways to a page. Few matching cases (the overdue, the open states, a community or a grid):
        # read them through their index and sort by id (the answer's size). Many (everything, a district,
        # closed cases): walk the primary key from the top and stop at the page, every filter checked on
        # the way (per_page / the share of cases that match: the same at 10 k or 10 M cases); the filters
        # are then spelt so that no index can lure the planner into reading the scope's whole history.
        levels = [a.level for a in (self.areas.get(c) for c in (area, principal.area_code) if c) if a is not None]
        few = overdue is True or (bool(states) and set(states) <= set(lifecycle.OPEN_STATES)) or max(levels or [1]) >= 4

        def clauses(indexed: bool) -> list:
            out = self.scope_clauses(principal, area, indexed=indexed)
            col = (lambda c: c) if indexed else unindexed
            if states:
                out.append(col(Case.state).in_(states))
            if kind:
                out.append(col(Case.kind) == kind)
            if overdue is True:
                out.append(overdue_now(now))
            elif overdue is False:
                out.append(not_overdue_now(now))
            return out

        with self.db.session() as s:
            if few:
                # The page's ids first, from the index that holds the matches (covering: the overdue in a
                # district, the open states), sorted after reading ("id + 0": never by walking the primary
                # key, which PostgreSQL would misjudge as soon as the matches are old); then those rows.
                q = select(Case.id).where(*clauses(True)).order_by((Case.id + 0).desc())
            else:
                q = select(Case).where(*clauses(False)).order_by(Case.id.desc())
            q = q.where(Case.id < after) if after is not None else q.offset((page - 1) * per_page)
            rows = s.scalars(q.limit(per_page + 1)).all()
            more = len(rows) > per_page
            rows = rows[:per_page]
            if few and rows:
                rows = s.scalars(select(Case).where(Case.id.in_(rows)).order_by(Case.id.desc())).all()
            total = s.scalar(select(func.count()).select_from(Case).where(*clauses(True))) if count else None
            ids = [c.id for c in rows]
            items = self.case_dicts(s, list(rows), principal, now)
        out = {"items": items, "next": ids[-1] if more else None, "page": page, "per_page": per_page}
        if count:
            out["total"] = total
        return out

    # ---- the hotline's loop: a ticket by its number, the cases changed since a time -------------------
    def by_external_ref(self, principal: Principal, ref: str, system: str | None = None) -> dict:
        """The cases of a hotline ticket (12345: its number, optionally its system) that ``principal`` may
        see: ``{items, next: None}`` (one item, or more if the ticket was reported more than once). A ticket
        merged at intake into an open case (a repeat report) is followed by that case, where its problem is
        handled: the merged row itself never changes again."""
        if not isinstance(ref, str) or not 1 <= len(ref) <= 64:
            raise ServiceError(400, "bad_request", "external_ref 须为 1–64 字的工单号")
        if system is not None and (not isinstance(system, str) or len(system) > 32):
            raise ServiceError(400, "bad_request", "external_system 须为不超过 32 字的系统名")
        with self.db.session() as s:
            scope = self.scope_clauses(principal)
            q = select(Case).where(Case.external_ref == ref, *scope)
            if system:
                q = q.where(Case.external_system == system)
            rows = list(s.scalars(q.order_by(Case.id).limit(MAX_TICKET_CASES)))
            targets = {r.merged_into_id for r in rows if r.merged_into_id is not None} - {r.id for r in rows}
            if targets:
                found = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(targets), *scope))}
                rows = [x for r in rows for x in ([r] + ([found[r.merged_into_id]]
                                                          if r.merged_into_id in found else []))]
            return {"items": self.case_dicts(s, rows, principal), "next": None}

    def changed_since(self, principal: Principal, since: datetime, cursor: str | None = None,
                      per_page: int = 50) -> dict:
        """The cases ``principal`` may see changed at or after ``since`` (aware), oldest change first:
        ``{items, next}``; ``next`` is the cursor of the following page (None on the last), given back as
        ``cursor`` — exact to the microsecond, where the times shown are to the second."""
        if since.tzinfo is None:
            raise ServiceError(400, "bad_request", "updated_since 须带时区偏移（如 2026-12-07T09:30:00+08:00）")
        if not day_in_range(since):
            raise ServiceError(400, "bad_request", f"updated_since 须在 {EARLIEST_DAY.year}–{LATEST_DAY.year} 年之间")
        order = (Case.updated_at, Case.id)
        where = [Case.updated_at >= since, *self.scope_clauses(principal)]
        if cursor:
            try:
                at_text, id_text = cursor.split("~")
                # a cursor pasted into a URL unencoded has its offset's "+" read as a space
                at, last_id = datetime.fromisoformat(at_text.replace(" ", "+")), int(id_text)
                if at.tzinfo is None or not day_in_range(at) or not is_int64(last_id):
                    raise ValueError(cursor)
            except ValueError:
                raise ServiceError(400, "bad_request", "cursor 无效：请使用上一页返回的 next")
            where.append(or_(Case.updated_at > at, and_(Case.updated_at == at, Case.id > last_id)))
        with self.db.session() as s:
            rows = list(s.scalars(select(Case).where(*where).order_by(*order).limit(per_page + 1)))
            more = len(rows) > per_page
            rows = rows[:per_page]
            items = self.case_dicts(s, rows, principal)
        last = rows[-1] if rows else None
        return {"items": items,
                "next": f"{last.updated_at.isoformat()}~{last.id}" if more and last is not None else None}

    # ---- actions --------------------------------------------------------------------------
    def _facts(self, s: Session, case: Case) -> "lifecycle.CaseFacts":
        category = self.catalog().get(case.category_code)
        rows = {a.unit_code: lifecycle.AssistFacts(a.unit_code, a.signed_at is not None, a.reported_at is not None)
                for a in s.scalars(select(CaseAssist).where(CaseAssist.case_id == case.id).order_by(CaseAssist.id))}
        # the assisting units intake's route named (emergencies' joint dispatch) have a row once they act
        assists = tuple(rows.get(code) or lifecycle.AssistFacts(code) for code in _assist_codes(case, rows))
        return lifecycle.CaseFacts(
            state=case.state, version=case.version, unit_code=case.unit_code,
            area_codes=tuple(a["code"] for a in self._chain(case.grid_code)),
            handling_level=case.handling_level or 5, supervised=case.supervised,
            supervision_level=case.supervision_level,
            extension_pending_hours=case.extension_pending_hours,
            suspension_requested=case.suspension_requested_at is not None,
            state_before_suspension=case.state_before_suspension,
            suspension_remaining_hours=case.suspension_remaining_hours, deadline=case.deadline_at,
            time_limit=category.time_limit if category is not None else None, time_unit=case.time_unit,
            dispatched_at=case.dispatched_at, resumed_at=case.resumed_at, closed_at=case.closed_at,
            callback_at=case.callback_at, callback_result=case.callback_result, source=case.source,
            assists=assists, rework_count=case.rework_count, escalation_count=case.escalation_count,
            extension_count=case.extension_count, urge_count=case.urge_count or 0,
            reassign_count=case.reassign_count or 0, reopen_count=case.reopen_count or 0,
            penalty_points=case.penalty_points or 0.0)

    def _actor(self, principal: Principal, actor_name: str | None = None) -> "lifecycle.Actor":
        """The lifecycle's view of who acts; ``level`` is their area's (a leader's 督办 is made at it)."""
        area = self.areas.get(principal.area_code) if principal.area_code else None
        return lifecycle.Actor(ident=actor_name or principal.ident, role=principal.role,
                               area_code=principal.area_code, unit_code=principal.unit_code,
                               level=area.level if area is not None else None)

    def _target_unit(self, s: Session, unit: str, facts: "lifecycle.CaseFacts", what: str) -> None:
        """A unit named by an action (派遣, 改派, 协办) must exist and serve the case's area: its handlers could
        neither see nor sign it otherwise."""
        target = s.get(UnitRow, unit)
        if target is None:
            raise ServiceError(422, "unknown_unit", f"单位 {unit} 不存在")
        if target.area_code not in facts.area_codes:
            raise ServiceError(422, "unit_out_of_area", f"单位「{target.name}」不负责案件所在区域，不能{what}")

    def act(self, case_id: int, principal: Principal, action: str, version, note: str = "",
            hours=None, unit: str | None = None, actor_name: str | None = None, result: str | None = None,
            satisfaction: str | None = None, reminder: str | None = None, level: int | None = None) -> dict:
        if not isinstance(version, int) or isinstance(version, bool):
            raise ServiceError(400, "bad_request", "须提供整数 version（当前案件版本号）")
        if hours is not None and (not isinstance(hours, (int, float)) or isinstance(hours, bool)):
            raise ServiceError(400, "bad_request", "hours 须为数字")
        for name, value in (("unit", unit), ("result", result), ("satisfaction", satisfaction)):
            if value is not None and (not isinstance(value, str) or len(value) > 40):
                raise ServiceError(400, "bad_request", f"{name} 须为不超过 40 字的字符串")
        note = (note or "").strip()
        if len(note) > 2000:
            raise ServiceError(400, "bad_request", "备注过长（最多 2000 字）")
        actor = self._actor(principal, actor_name)
        now = self.clock()

        def check_role(s, case, actor):
            try:
                lifecycle.check_role(action, actor)
            except lifecycle.TransitionRefused as exc:
                raise ServiceError(exc.status, exc.code, exc.message)

        with self.db.session() as s:
            case = self._case_to_act_on(s, case_id, principal, actor, version, now, check_role)
            facts = self._facts(s, case)
            if unit is not None and lifecycle.RULES[action].takes_unit:
                self._target_unit(s, unit, facts, lifecycle.ACTION_LABELS[action])
            try:
                t = lifecycle.plan_transition(facts, action, actor, note=note, hours=hours, unit=unit, result=result,
                                              satisfaction=satisfaction, now=now, calendar=self.calendar,
                                              rules=self.rules, reminder=reminder, level=level)
            except lifecycle.TransitionRefused as exc:
                raise ServiceError(exc.status, exc.code, exc.message)
            changes = dict(t.changes)
            rule = next((r for r in self.rules.reminders if r.id == reminder), None) \
                if reminder is not None and principal.role == "system" else None
            if rule is not None:
                # the scheduler's note that this deadline was reminded, in the reminder's own transaction:
                # a scheduler reading the case after this commit finds it sent (remind_due)
                changes[_REMINDER_MARKS[rule.at]] = case.deadline_at
            if action == "escalate":
                changes.update(self._reroute(case, changes["handling_level"]))
            changes["version"] = case.version + 1
            changes["updated_at"] = now
            done = s.execute(update(Case).where(Case.id == case.id, Case.version == version).values(**changes))
            if done.rowcount != 1:
                raise ServiceError(409, "conflict", "案件已被他人修改，请刷新后重试")
            self._write_rows(s, case.id, t, actor, now)
            s.add(CaseHistory(case_id=case.id, at=now, actor=actor.ident, action=action, from_state=t.from_state,
                              to_state=t.to_state, note=t.note or note, details=t.details or None))
            s.refresh(case)
            self._add_event(s, case, "updated")
            seqs = self._flush_events(s)
        self._notify(seqs)
        return self.get(case_id, principal if principal.role != "system" else None)

    def _case_to_act_on(self, s: Session, case_id, principal: Principal, actor: "lifecycle.Actor", version: int,
                        now: datetime, authorize) -> Case:
        """The case row an action may go on, or the refusal. Order: what never changes first (the case 404, its
        area 403, `authorize(s, case, actor)`: the role, 400/403), then the version (409), then what a concurrent
        change may have taken away (the unit: a stale handler gets the 409)."""
        case = s.get(Case, case_id) if is_int64(case_id) else None
        if case is None:
            raise ServiceError(404, "not_found", f"案件 #{case_id} 不存在")
        if principal.role != "system" and not self._in_area(principal, case):
            raise ServiceError(403, "forbidden", "该案件不在您的辖区内")
        authorize(s, case, actor)
        visible = principal.role == "system" or self.can_see(principal, case)
        if case.version != version and not visible:  # no details for whom may not see it now
            raise ServiceError(409, "conflict", f"案件已被他人修改（您的版本 {version}），请刷新后重试")
        if not visible:
            raise ServiceError(403, "not_your_unit", "该案件不属于您的单位")
        if case.version != version:
            raise ServiceError(409, "conflict",
                               f"案件已被他人修改（您的版本 {version}，当前版本 {case.version}，当前状态「"
                               f"{lifecycle.STATE_LABELS.get(case.state, case.state)}」），请刷新后重试",
                               {"case": self.case_dict(case, None, principal, now)})
        return case

    def act_outside(self, case_id: int, principal: Principal, action: str, version, authorize, decide) -> dict:
        """An action of another room on a case (an emergency response's: emergency/response.py), held to the
        checks of :meth:`act` (`authorize(s, case, actor)` in the role's place) and written as `act` writes:
        `decide(s, case, actor, now)` writes its own rows in this transaction (raising ServiceError before any, to
        refuse) and returns (history note, history details, changes to the case row); the case's version goes up,
        its history row and outbox event are written, and the listeners hear it after the commit."""
        if not isinstance(version, int) or isinstance(version, bool):
            raise ServiceError(400, "bad_request", "须提供整数 version（当前案件版本号）")
        actor = self._actor(principal)
        now = self.clock()
        with self.db.session() as s:
            case = self._case_to_act_on(s, case_id, principal, actor, version, now, authorize)
            note, details, changes = decide(s, case, actor, now)
            changes = {**changes, "version": case.version + 1, "updated_at": now}
            done = s.execute(update(Case).where(Case.id == case.id, Case.version == version).values(**changes))
            if done.rowcount != 1:
                raise ServiceError(409, "conflict", "案件已被他人修改，请刷新后重试")
            s.add(CaseHistory(case_id=case.id, at=now, actor=actor.ident, action=action, from_state=case.state,
                              to_state=case.state, note=note, details=details or None))
            s.refresh(case)
            self._add_event(s, case, "updated")
            seqs = self._flush_events(s)
        self._notify(seqs)
        return self.get(case_id, principal if principal.role != "system" else None)

    @staticmethod
    def _write_rows(s: Session, case_id: int, t: "lifecycle.Transition", actor: "lifecycle.Actor",
                    now: datetime) -> None:
        """The 协办, 催办/督办 and 扣分 rows a transition carries, in its transaction."""
        if t.assist is not None:
            op, code = t.assist["op"], t.assist["unit_code"]
            if op == "add":
                s.add(CaseAssist(case_id=case_id, unit_code=code, added_at=now))
            else:
                values = {"signed_at": now} if op == "sign" else {"reported_at": now, "report_note": t.assist["note"]}
                done = s.execute(update(CaseAssist).where(CaseAssist.case_id == case_id, CaseAssist.unit_code == code)
                                 .values(**values))
                if done.rowcount == 0:  # a unit intake's route made assisting (emergencies) signs first
                    s.add(CaseAssist(case_id=case_id, unit_code=code, added_at=now, **values))
        if t.supervision is not None:
            v = t.supervision
            s.add(CaseSupervision(case_id=case_id, kind=v["kind"], unit_code=v["unit_code"], level=v["level"], at=now,
                                  deadline_at=v["deadline_at"], for_deadline=v["for_deadline"], actor=actor.ident,
                                  automatic=v["automatic"], rule=v["rule"], note=t.note))
        for p in t.penalties:
            s.add(CasePenalty(case_id=case_id, unit_code=p["unit_code"], points=p["points"], rule=p["rule"],
                              reason=p["reason"], at=now))

    def _reroute(self, case: Case, level: int) -> dict:
        category = self.catalog()[case.category_code]
        unit_index, types = self._routing_refs()
        chain = self.areas.chain(case.grid_code)
        decision = route_case(category, chain, unit_index, types, severity=case.severity, level=level,
                              exceptions=self._route_exceptions)
        out = {"route_reason": f"升级至{decision.reason}"}
        if decision.unit_code is not None:
            out["unit_code"] = decision.unit_code
        return out

    # ---- notes from outside the lifecycle (an alarm's clear or re-fire: sensing/alarms.py) ---------
    def case_state(self, case_id: int) -> tuple[str, int | None] | None:
        """(state, merged_into_id) of a case, or None when there is none."""
        with self.db.session() as s:
            row = s.execute(select(Case.state, Case.merged_into_id).where(Case.id == case_id)).first()
        return None if row is None else (row[0], row[1])

    def is_open(self, case_id: int) -> bool:
        """Whether the case is still being handled (not rejected, merged, closed or voided)."""
        found = self.case_state(case_id)
        return found is not None and found[0] not in NOT_OPEN

    def add_note(self, case_id: int, actor: str, note: str, action: str = "alarm_note") -> bool:
        """A history row on the case that changes nothing else of it (the version moves, as a merge's note does,
        so that live clients take the newer case), with its outbox event, in one transaction. False when the
        case does not exist."""
        now = self.clock()
        for _ in range(3):  # a concurrent action moved the version: read it again
            with self.db.session() as s:
                case = s.get(Case, case_id) if is_int64(case_id) else None
                if case is None:
                    return False
                done = s.execute(update(Case).where(Case.id == case_id, Case.version == case.version)
                                 .values(version=case.version + 1, updated_at=now))
                if done.rowcount != 1:
                    continue
                s.add(CaseHistory(case_id=case_id, at=now, actor=actor, action=action, from_state=case.state,
                                  to_state=case.state, note=note[:2000]))
                self._add_event(s, case, "updated")
                seqs = self._flush_events(s)
            self._notify(seqs)
            return True
        raise ServiceError(409, "conflict", f"案件 #{case_id} 正被频繁修改，备注未写入，请重试")

    def record_act(self, case_id: int, principal: Principal, action: str,
                   work: Callable[[Session, Case], tuple[str, object]]) -> object:
        """Another room's act on a case (an emergency resource allocated or released), in one transaction with
        the case's history row and outbox event: the case is read as `principal` may see it (404/403), then
        `work(s, case)` makes the room's own checks and writes in session `s` — raising ServiceError writes
        nothing — and returns (the history note, its result). The case's version moves (as add_note's) so that
        live clients take the newer case; the listeners are told after the commit. Returns work's result."""
        with self.db.session() as s:
            case = self.visible_case(s, case_id, principal)
            note, result = work(s, case)
            now = self.clock()
            s.execute(update(Case).where(Case.id == case.id).values(version=Case.version + 1, updated_at=now))
            s.add(CaseHistory(case_id=case.id, at=now, actor=principal.ident, action=action, from_state=case.state,
                              to_state=case.state, note=note[:2000]))
            self._add_event(s, case, "updated")
            seqs = self._flush_events(s)
        self._notify(seqs)
        return result

    # ---- the reminders' scheduler (催办 at the warning, 督办 at the deadline) ---------------------
    def remind_due(self, limit: int = 500) -> int:
        """Send the automatic reminders of the center's rules (data/catalog/center_rules.json): an urge
        (催办) to the unit of each case in its hands past its warning (80 %), a 督办 a level above the
        handling level once its deadline has passed; once per rule and deadline (a new deadline is
        reminded anew). The case stays where it is, with its unit. Safe in several processes: the
        version-guarded update lets one win, and the reminder notes its deadline as reminded in its own
        transaction. A case changed since it was read (409) is read again at the next run; a reminder
        refused for good (already supervised higher) is noted so and not tried again. Returns how many
        reminders were sent."""
        now = self.clock()
        system = Principal(kind="system", ident="system:scheduler", role="system", area_code="", unit_code=None)
        in_hand = Case.state.in_(lifecycle.HANDLING_STATES)
        n = 0
        for rule in self.rules.reminders:
            # one mark per trigger (center_rules allows one rule per trigger): the deadline it was sent for
            mark = _REMINDER_MARKS[rule.at]
            column = getattr(Case, mark)
            reached = Case.warning_at <= now if rule.at == "warning" else Case.deadline_at < now
            due = (reached, in_hand, or_(column.is_(None), column != Case.deadline_at))
            with self.db.session() as s:
                rows = s.execute(select(Case.id, Case.version, Case.handling_level, Case.deadline_at)
                                 .where(*due).order_by(Case.deadline_at, Case.id).limit(limit)).all()
            for case_id, version, handling_level, deadline in rows:
                level = max(1, (handling_level or 5) - rule.levels_up)
                try:
                    self.act(case_id, system, rule.kind, version, note=rule.note, reminder=rule.id, level=level)
                except ServiceError as exc:
                    if exc.status == 409:
                        # changed since read: another process sent it (and noted it), or a person acted
                        # meanwhile and the case is read again at the next run
                        continue
                    with self.db.session() as s:  # nothing to remind for this deadline: not again
                        s.execute(update(Case).where(Case.id == case_id, Case.deadline_at == deadline)
                                  .values(**{mark: deadline}))
                    continue
                n += 1
        return n

    # ---- assessment -------------------------------------------------------------------------
    def kpis(self, start: date, end: date, by: str | None = None, principal: Principal | None = None) -> dict:
        """figures.service.kpis (the figures' one entry point) over this service's cases."""
        from figures.service import kpis

        return kpis(self, start, end, by, principal)

    def unit_name(self, code: str) -> str:
        """The unit's name (its code when unknown)."""
        return self._unit_ref(code)["name"]

    # ---- the console: scope, buttons and the intake preview ------------------------------------
    def scope_clauses(self, principal: Principal, area: str | None = None, indexed: bool = True) -> list:
        """WHERE clauses on `cases` for what `principal` may see, narrowed to `area` if given (404 unknown
        area, 403 outside the principal's area): the scoping of list(), for other reads of the queue.
        `indexed=False`: the area spelt so that no index serves it (see _area_clause)."""
        clauses = []
        scope = self._area_clause(principal.area_code, indexed) if principal.role != "admin" else None
        if scope is not None:
            clauses.append(scope)
        if area:
            if self.areas.get(area) is None:
                raise ServiceError(404, "not_found", f"区域 {area} 不存在")
            if principal.role != "admin" and principal.area_code not in {a.code for a in self.areas.chain(area)}:
                raise ServiceError(403, "forbidden", f"区域 {area} 不在您的辖区内")
            clause = self._area_clause(area, indexed)
            if clause is not None:
                clauses.append(clause)
        unit_scope = self._unit_clause(principal)
        if unit_scope is not None:
            clauses.append(unit_scope)
        if principal.role == HOTLINE_ROLE:  # its own tickets' cases (can_see)
            clauses.append(Case.external_system == HOTLINE_SYSTEM)
        return clauses

    @staticmethod
    def _code_prefix(column, prefix: str):
        """`column` starts with `prefix`, as a range when the codes are digits: a btree index serves a
        range on SQLite and PostgreSQL alike, where LIKE 'p%' scans the table (SQLite's LIKE ignores
        case, PostgreSQL's needs the C collation)."""
        if not prefix.isdigit() or set(prefix) == {"9"}:
            return column.like(prefix + "%")
        upper = str(int(prefix) + 1).zfill(len(prefix))  # '320402009' → '320402010': past every p…
        return and_(column >= prefix, column < upper)

    def allowed_actions(self, case_id: int, principal: Principal) -> list[str]:
        """The lifecycle actions `principal` may do on the case now (lifecycle.allowed_actions: role,
        scope and state; the parameters are asked for when acting)."""
        with self.db.session() as s:
            facts = self._facts(s, self.visible_case(s, case_id, principal))
        return lifecycle.allowed_actions(facts, self._actor(principal))

    def preview(self, payload: dict, principal: Principal | None) -> dict:
        """Where a report would go, without writing anything: intake's own validation, location, scope,
        route and deadline (the same refusals, the same messages), plus the open case it would merge
        into, if any. For the hotline form, before the officer submits."""
        req = self._intake_request(payload, principal)
        job = self._prepare(req, principal, actor="preview")
        decision, category = job.decision, job.category
        with self.db.engine.connect() as conn:
            duplicate = self._duplicate_of(conn, category.code, req.lon, req.lat, job.now)
        units = [self._unit_ref(c) for c in (decision.unit_code, *decision.assist_unit_codes) if c is not None]
        return {
            "category": {"code": category.code, "name": category.name, "kind": category.kind,
                         "major_class": category.major_class, "time_limit": category.time_limit_text,
                         "urgency": category.urgency},
            "lon": req.lon, "lat": req.lat,
            "chain": [{"code": a.code, "name": a.name, "level": a.level} for a in job.chain],
            "unit": self._unit_ref(decision.unit_code), "units": units,
            "handling_level": decision.handling_level, "route_reason": decision.reason,
            "report_upward": decision.report_upward, "severity": req.severity,
            "deadline": _iso(job.deadline), "time_unit": category.time_unit, "clock": category.clock,
            "merge_into": duplicate[T_ID] if duplicate is not None else None,
        }
