"""The /api/v1 blueprint: authentication by bearer token and the area endpoints."""
from __future__ import annotations

import math
import os

from flask import Blueprint, current_app, g, jsonify, request

from web.services import services
from api.ratelimit import ApiRateLimit
from data.areas import get_area, list_areas
from dispatch.emergency_plans import RESPONSE_ACTIONS
from dispatch.errors import ServiceError
from data.units_repo import list_units
from figures import service as figures
from data.tokens import PrincipalCache, resolve_token
from dispatch.access import DEVICE_ROLE, HOTLINE_ROLE, OPEN311_ROLE
from geo.locator import OutsideCity

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

MAX_PER_PAGE = 500
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


# The argument and body readers below are shared by every /api/v1 blueprint (devices, emergency, resources,
# indicators, forecast, warnings, what-if): one wording of each refusal.
def int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(400, "bad_request", f"参数 {name} 应为整数，收到 {raw!r}")
    if not lo <= value <= hi:
        raise ServiceError(400, "bad_request", f"参数 {name} 应在 {lo} 到 {hi} 之间，收到 {value}")
    return value


def _float_arg(name: str) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        raise ServiceError(400, "bad_request", f"缺少参数 {name}")
    try:
        value = float(raw)
    except ValueError:
        raise ServiceError(400, "bad_request", f"参数 {name} 应为数字，收到 {raw!r}")
    if not math.isfinite(value):
        raise ServiceError(400, "bad_request", f"参数 {name} 应为有限数字")
    return value


def _area_ref(rec) -> dict:
    return {"code": rec.code, "name": rec.name, "level": rec.level}


@bp.get("/areas")
def areas():
    level = int_arg("level", None, 1, 5)
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    parent = request.args.get("parent") or None
    with services().db.session() as s:
        if parent is not None and get_area(s, parent) is None:
            raise ServiceError(404, "not_found", f"上级区域 {parent} 不存在")
        items, total = list_areas(s, level=level, parent=parent, page=page, per_page=per_page)
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


@bp.get("/areas/locate")
def locate():
    lon, lat = _float_arg("lon"), _float_arg("lat")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ServiceError(400, "bad_request", f"经纬度超出范围：lon={lon}, lat={lat}")
    locator = services().areas.locator()
    if locator is None:
        raise ServiceError(404, "not_found", "尚未导入城市网格")
    try:
        chain = locator.locate(lon, lat)
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


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError(400, "bad_request", "请求体须为 JSON 对象（Content-Type: application/json）")
    return data


@bp.post("/events")
def create_event():
    data = json_body()

    def run():
        case, created = _cases().intake(data, g.principal, actor=g.principal.ident)
        return jsonify(case), 201

    return run()


@bp.get("/events/<int:case_id>")
def get_event(case_id: int):
    return (jsonify(_cases().get(case_id, g.principal)))


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ServiceError(400, "bad_request", f"参数 {name} 应为 true 或 false")


@bp.get("/events")
def list_events():
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    overdue = _bool_arg("overdue")
    after = int_arg("after", None, 1, 2**62)  # keyset: the `next` of the previous page
    ref = request.args.get("external_ref")
    if ref is not None:  # the hotline reads its ticket by number
        return jsonify(_cases().by_external_ref(g.principal, ref, request.args.get("external_system") or None))
    since = request.args.get("updated_since")
    if since is not None:  # what changed since a time, oldest first (the hotline closes its loop from it)
        return jsonify(_cases().changed_since(g.principal, datetime_arg("updated_since"),
                                              request.args.get("cursor") or None, per_page))
    return (jsonify(_cases().list(
        g.principal, state=request.args.get("state") or None, kind=request.args.get("kind") or None,
        area=request.args.get("area") or None, overdue=overdue, page=page, per_page=per_page, after=after,
        count=bool(_bool_arg("count")))))


@bp.post("/events/<int:case_id>/actions")
def act_on_event(case_id: int):
    data = json_body()
    action = data.get("action")
    if not isinstance(action, str) or not action:
        raise ServiceError(400, "bad_request", "缺少 action")
    note = data.get("note") or ""
    if not isinstance(note, str):
        raise ServiceError(400, "bad_request", "note 须为文本")
    unit = data.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise ServiceError(400, "bad_request", "unit 须为单位编码文本")
    if action in RESPONSE_ACTIONS:  # an emergency's response (emergency/response.py)
        return jsonify(services().responses.act(case_id, g.principal, action, data.get("version"), plan=data.get("plan"),
                                                level=data.get("level"), item=data.get("item"), kind=data.get("kind"),
                                                text=data.get("text"), fields=data.get("fields"), note=note))
    return jsonify(_cases().act(case_id, g.principal, action, data.get("version"), note=note,
                                hours=data.get("hours"), unit=unit, result=data.get("result"),
                                satisfaction=data.get("satisfaction")))


def _date_arg(name: str):
    from datetime import date

    raw = request.args.get(name)
    if not raw:
        raise ServiceError(400, "bad_request", f"缺少参数 {name}（YYYY-MM-DD）")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ServiceError(400, "bad_request", f"参数 {name} 应为 YYYY-MM-DD，收到 {raw!r}")


def datetime_arg(name: str):
    from datetime import datetime

    raw = request.args.get(name) or ""
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+").replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(400, "bad_request", f"参数 {name} 应为带时区的 ISO 8601 时间，收到 {raw!r}")
    if value.tzinfo is None:
        raise ServiceError(400, "bad_request", f"参数 {name} 须带时区偏移（如 2026-12-07T09:30:00+08:00）")
    return value


@bp.get("/kpis")
def kpis():
    start, end = _date_arg("start"), _date_arg("end")
    by = request.args.get("by") or None
    return jsonify(figures.kpis(_cases(), start, end, by, g.principal))  # a refusal answers 400


@bp.get("/assessment")
def assessment():
    """CONTRACT.md's Assessment: ?start=&end=&by= for any period, or ?month=YYYY-MM&by= for a month with each
    item's previous month (previous_score, previous_rank, rank_change)."""
    by = request.args.get("by") or "district"
    if request.args.get("month"):
        return jsonify(figures.monthly_ranking(_cases(), request.args["month"], by, g.principal))
    start, end = _date_arg("start"), _date_arg("end")
    return jsonify(figures.assessment(_cases(), start, end, by, g.principal))


@bp.get("/categories")
def categories():
    items = [{"code": c.code, "name": c.name, "kind": c.kind, "major_class": c.major_class, "level": c.level,
              "time_limit": c.time_limit, "time_unit": c.time_unit, "time_limit_text": c.time_limit_text,
              "clock": c.clock,
              "urgency": c.urgency, "unit_type": c.unit_type, "filing_criterion": c.filing_criterion,
              "closing_criterion": c.closing_criterion, "assist_unit_types": list(c.assist_unit_types)}
             for c in _cases().catalog().values()]
    kind = request.args.get("kind")
    if kind:
        items = [i for i in items if i["kind"] == kind]
    return jsonify({"items": items, "total": len(items)})


@bp.get("/units")
def units():
    area = request.args.get("area") or None
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 100, 1, MAX_PER_PAGE)
    with services().db.session() as s:
        if area is not None and get_area(s, area) is None:
            raise ServiceError(404, "not_found", f"区域 {area} 不存在")
        items, total = list_units(s, area=area, page=page, per_page=per_page)
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


@bp.get("/<path:_unknown>")
def unknown_endpoint(_unknown):
    # Without this, Dash's page catch-all would answer unknown API paths with HTML.
    raise ServiceError(404, "not_found", f"没有这个接口：{request.path}")
