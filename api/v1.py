"""The /api/v1 blueprint: authentication by bearer token and the area endpoints."""
from __future__ import annotations

import os
from dataclasses import MISSING, fields as dataclass_fields
from datetime import date
from typing import Annotated, Any

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import ConfigDict, Field, create_model, field_validator

from web.services import services
from api.openapi import body_object, body_of, operation, query_of
from api.ratelimit import ApiRateLimit
from api.schemas import (Answer, AreaRef, Body, CaseObject, CasePage, Code, Paged, PerPage, Query,
                         QueryTime, Text)
from cases.service import IntakeRequest
from data.areas import get_area, list_areas
from dispatch.emergency_plans import RESPONSE_ACTIONS
from dispatch.errors import ServiceError
from data.units_repo import list_units
from figures import service as figures
from figures.definitions import Kpis as KpiFigures
from data.tokens import PrincipalCache, resolve_token
from dispatch.access import DEVICE_ROLE, HOTLINE_ROLE, OPEN311_ROLE
from geo.locator import OutsideCity

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

# the only views a device token reaches (dispatch/access.py)
DEVICE_ENDPOINTS = frozenset({"api_devices.post_telemetry", "api_indicators.post_readings"})
# the only views the 12345 system's token reaches (dispatch/access.py); what it reads there is its own tickets'
# cases (cases/service.py's scope)
HOTLINE_ENDPOINTS = frozenset({"api_hotline.post_ticket", "api_hotline.get_ticket", "api_hotline.post_callback",
                               "api_v1.get_event", "api_v1.list_events"})


def init_limits(app) -> None:
    """Attach the API rate limit (UCC_API_RATE_LIMIT, per token); Redis-backed when REDIS_URL is set so
    every process counts together. Also the token → principal cache of authenticate():
    UCC_TOKEN_CACHE_SECONDS (default 5; 0 = off) is how long a revoked token may still be accepted."""
    settings = services(app).settings
    ttl = float(os.environ.get("UCC_TOKEN_CACHE_SECONDS") or 5.0)
    app.extensions["ucc_principals"] = PrincipalCache(ttl=ttl)
    ApiRateLimit(settings.api_rate_limit, settings.redis_url or "memory://").install(app)


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def bearer_principal(token: str):
    """The principal of a bearer token, or None (unknown or revoked)."""
    cache = current_app.extensions.get("ucc_principals")
    if cache is not None:
        # Cached for a few seconds (see init_limits): no session and SELECT on every request.
        return cache.resolve(services().db, token)
    with services().db.session() as s:
        return resolve_token(s, token)


@bp.before_request
def authenticate():
    token = bearer_token()
    if token is None:
        raise ServiceError(401, "unauthorized", "需要 Authorization: Bearer TOKEN 请求头")
    principal = bearer_principal(token)
    if principal is None:
        raise ServiceError(401, "unauthorized", "令牌无效或已吊销")
    if principal.role == HOTLINE_ROLE and request.endpoint not in HOTLINE_ENDPOINTS:
        raise ServiceError(403, "forbidden", "12345 热线令牌只能派单、回访（/api/v1/hotline/tickets…），"
                                          "查看本系统工单的案件和拉取其变化（GET /api/v1/events）")
    if principal.role == DEVICE_ROLE and request.endpoint not in DEVICE_ENDPOINTS:
        raise ServiceError(403, "forbidden", "设备令牌只能上报遥测数据（POST /api/v1/devices/设备编号/telemetry）"
                                          "和体征指标读数（POST /api/v1/indicators）")
    if principal.role == OPEN311_ROLE:  # CONTRACT: reports and reads public fields only, at /open311/v2
        raise ServiceError(403, "forbidden", "Open311 令牌只能用于 /open311/v2/ 接口（提交和查询公开的诉求）")
    g.principal = principal


def _area_ref(rec) -> dict:
    return {"code": rec.code, "name": rec.name, "level": rec.level}


# ---- the models this blueprint reads and answers (api/openapi.py) ---------------------------------------------
class AreasQuery(Paged):
    level: int | None = Field(None, ge=1, le=5, description="1 市 … 5 网格")
    parent: Code | None = Field(None, description="上级区域编码")


class Area(Answer):
    code: str
    name: str
    level: int
    parent: str | None


class AreaPage(Answer):
    items: list[Area]
    total: int
    page: int
    per_page: int


class LocateQuery(Query):
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="经度（WGS84）")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="纬度（WGS84）")


class Chain(Answer):
    chain: list[AreaRef] = Field(description="网格 → 市")


class EventsQuery(Paged):
    keep_empty = ("external_ref",)  # an empty ticket number is refused by the service, not read as "no filter"

    state: Text | None = Field(None, description="状态，可用逗号分隔多个")
    kind: Text | None = Field(None, description="component、event、grid 或 emergency")
    area: Code | None = Field(None, description="区域编码")
    overdue: bool | None = None
    after: int | None = Field(None, ge=1, le=2**62, description="键集分页：上一页的 next")
    count: bool = Field(False, description="为 true 时计算 total")
    external_ref: str | None = Field(None, description="12345 工单号：该工单的案件")
    external_system: Annotated[str, Field(max_length=32)] | None = None
    updated_since: QueryTime | None = Field(None, description="此时间之后变更的案件（最早的在前）")
    cursor: Annotated[str, Field(max_length=100)] | None = Field(None, description="updated_since 的下一页游标")


class ActionBody(Body):
    """A lifecycle action, or an emergency response's (CONTRACT.md, POST /events/ID/actions)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
        {"action": "accept", "version": 1, "note": "受理"}]})  # a reported case's first step
    action: str = Field(min_length=1, max_length=40, description="动作，如 accept、dispatch、resolve")
    version: Any = Field(None, description="案件的当前 version（乐观锁）")
    note: Annotated[str, Field(max_length=2000)] | None = Field(None, description="意见、理由")
    unit: Annotated[str, Field(max_length=64)] | None = Field(None, description="单位编码")
    units: Any = Field(None, description="联合派遣的协办单位")
    hours: Any = Field(None, description="延期的小时数")
    result: Any = None
    satisfaction: Any = Field(None, description="satisfied、basically_satisfied 或 unsatisfied")
    plan: Any = None
    level: Any = None
    item: Any = None
    kind: Any = None
    text: Any = None
    fields: Any = None

    @field_validator("action", mode="before")
    @classmethod
    def _action_text(cls, v: Any) -> Any:
        if not isinstance(v, str) or not v:
            raise ValueError("缺少 action")
        return v


class DaysQuery(Query):
    start: date = Field(description="起始日 YYYY-MM-DD")
    end: date = Field(description="截止日 YYYY-MM-DD（含）")
    by: Text | None = Field(None, description="分组：district、unit 或 category")


class AssessmentQuery(Query):
    start: date | None = Field(None, description="起始日（与 month 二选一）")
    end: date | None = None
    month: Annotated[str, Field(max_length=20)] | None = Field(None, description="YYYY-MM：该月及上月对比")
    by: Text = Field("district", description="city、district、street、community、grid、unit 或 person")


# the KPI fields as figures/definitions.py defines them (one definition: a figure added there is described here)
Kpis = create_model("Kpis", __base__=Answer, **{
    f.name: (f.type, ... if f.default is MISSING else f.default) for f in dataclass_fields(KpiFigures)})


class Assessment(Answer):
    by: str
    items: list[dict[str, Any]]


class CategoriesQuery(Query):
    kind: Text | None = Field(None, description="component、event、grid 或 emergency")


class Category(Answer):
    code: str
    name: str
    kind: str
    level: int | None
    time_limit: float | None
    clock: str | None


class Categories(Answer):
    items: list[Category]
    total: int


class UnitsQuery(Paged):
    area: Code | None = Field(None, description="区域编码")
    per_page: PerPage = 100


class Units(Answer):
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int


TAG_AREAS, TAG_CASES, TAG_FIGURES = "区域与目录", "案件", "统计与考核"


@bp.get("/areas")
@operation("区域列表", query=AreasQuery, responses={200: AreaPage}, tags=(TAG_AREAS,))
def areas():
    q = query_of(AreasQuery)
    with services().db.session() as s:
        if q.parent is not None and get_area(s, q.parent) is None:
            raise ServiceError(404, "not_found", f"上级区域 {q.parent} 不存在")
        items, total = list_areas(s, level=q.level, parent=q.parent, page=q.page, per_page=q.per_page)
    return jsonify({"items": items, "total": total, "page": q.page, "per_page": q.per_page})


@bp.get("/areas/locate")
@operation("一个点所在的区域链（网格 → 市）", query=LocateQuery, responses={200: Chain}, tags=(TAG_AREAS,))
def locate():
    q = query_of(LocateQuery)
    locator = services().areas.locator()
    if locator is None:
        raise ServiceError(404, "not_found", "尚未导入城市网格")
    try:
        chain = locator.locate(q.lon, q.lat)
    except OutsideCity as exc:
        raise ServiceError(404, "outside_city", str(exc))
    return jsonify({"chain": [_area_ref(r) for r in chain]})


# ---- cases ------------------------------------------------------------------------------------
def _cases():
    return services().cases


def enabled(service, what: str):
    """`service` of the app's services, or a 404 naming it when the app was built without it."""
    if service is None:
        raise ServiceError(404, "not_found", f"{what}未启用")
    return service


@bp.post("/events")
@operation("上报事件（受理入口）", body=IntakeRequest, responses={201: CaseObject}, tags=(TAG_CASES,),
           description="重复上报并入未结案件时答复中 merged_into 指明；同一 idempotency_key 再次提交答复首次的结果。")
def create_event():
    # intake reads the body through IntakeRequest itself (its refusals are `invalid`, CONTRACT.md)
    case, _created = _cases().intake(body_object(), g.principal, actor=g.principal.ident)
    return jsonify(case), 201


@bp.get("/events/<int:case_id>")
@operation("一个案件", responses={200: CaseObject}, tags=(TAG_CASES,))
def get_event(case_id: int):
    return jsonify(_cases().get(case_id, g.principal))


@bp.get("/events")
@operation("案件列表（分页），或按 12345 工单号、按变更时间读取", query=EventsQuery, responses={200: CasePage},
           tags=(TAG_CASES,))
def list_events():
    q = query_of(EventsQuery)
    if q.external_ref is not None:  # the hotline reads its ticket by number
        return jsonify(_cases().by_external_ref(g.principal, q.external_ref, q.external_system))
    if q.updated_since is not None:  # what changed since a time, oldest first (the hotline closes its loop from it)
        return jsonify(_cases().changed_since(g.principal, q.updated_since, q.cursor, q.per_page))
    return jsonify(_cases().list(g.principal, state=q.state, kind=q.kind, area=q.area, overdue=q.overdue,
                                 page=q.page, per_page=q.per_page, after=q.after, count=q.count))


@bp.post("/events/<int:case_id>/actions")
@operation("对案件执行动作（流转、应急响应）", body=ActionBody, responses={200: CaseObject}, tags=(TAG_CASES,),
           description="409：version 已过期（答复带当前 case）；422：当前状态不允许该动作。")
def act_on_event(case_id: int):
    data = body_of(ActionBody)
    note = data.note or ""
    if data.action in RESPONSE_ACTIONS:  # an emergency's response (emergency/response.py)
        return jsonify(services().responses.act(case_id, g.principal, data.action, data.version, plan=data.plan,
                                                level=data.level, item=data.item, kind=data.kind,
                                                text=data.text, fields=data.fields, note=note))
    return jsonify(_cases().act(case_id, g.principal, data.action, data.version, note=note,
                                hours=data.hours, unit=data.unit, result=data.result,
                                satisfaction=data.satisfaction))


@bp.get("/kpis")
@operation("关键绩效指标（与 kpi 命令相同）", query=DaysQuery, responses={200: Kpis}, tags=(TAG_FIGURES,))
def kpis():
    q = query_of(DaysQuery)
    return jsonify(figures.kpis(_cases(), q.start, q.end, q.by, g.principal))  # a refusal answers 400


@bp.get("/assessment")
@operation("考核评价", query=AssessmentQuery, responses={200: Assessment}, tags=(TAG_FIGURES,),
           description="?start=&end=&by= 任意时段；或 ?month=YYYY-MM&by= 某月，并附上月得分与名次变化。")
def assessment():
    """CONTRACT.md's Assessment: ?start=&end=&by= for any period, or ?month=YYYY-MM&by= for a month with each
    item's previous month (previous_score, previous_rank, rank_change)."""
    q = query_of(AssessmentQuery)
    if q.month:
        return jsonify(figures.monthly_ranking(_cases(), q.month, q.by, g.principal))
    if q.start is None or q.end is None:
        raise ServiceError(400, "bad_request", f"缺少参数 {'start' if q.start is None else 'end'}（YYYY-MM-DD）")
    return jsonify(figures.assessment(_cases(), q.start, q.end, q.by, g.principal))


@bp.get("/categories")
@operation("事件类别目录", query=CategoriesQuery, responses={200: Categories}, tags=(TAG_AREAS,))
def categories():
    q = query_of(CategoriesQuery)
    items = [{"code": c.code, "name": c.name, "kind": c.kind, "major_class": c.major_class, "level": c.level,
              "time_limit": c.time_limit, "time_unit": c.time_unit, "time_limit_text": c.time_limit_text,
              "clock": c.clock,
              "urgency": c.urgency, "unit_type": c.unit_type, "filing_criterion": c.filing_criterion,
              "closing_criterion": c.closing_criterion, "assist_unit_types": list(c.assist_unit_types)}
             for c in _cases().catalog().values()]
    if q.kind:
        items = [i for i in items if i["kind"] == q.kind]
    return jsonify({"items": items, "total": len(items)})


@bp.get("/units")
@operation("处置单位列表", query=UnitsQuery, responses={200: Units}, tags=(TAG_AREAS,))
def units():
    q = query_of(UnitsQuery)
    with services().db.session() as s:
        if q.area is not None and get_area(s, q.area) is None:
            raise ServiceError(404, "not_found", f"区域 {q.area} 不存在")
        items, total = list_units(s, area=q.area, page=q.page, per_page=q.per_page)
    return jsonify({"items": items, "total": total, "page": q.page, "per_page": q.per_page})


@bp.get("/<path:_unknown>")
def unknown_endpoint(_unknown):
    # Without this, Dash's page catch-all would answer unknown API paths with HTML.
    raise ServiceError(404, "not_found", f"没有这个接口：{request.path}")


unknown_endpoint.catch_all = True  # other methods on such a path are a 404 too (web/errors._only_a_catch_all)
