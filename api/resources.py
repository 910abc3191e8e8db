"""The /api/v1 emergency resource endpoints (CONTRACT.md, Emergency): the resources nearest to a point or a page of
them, one resource, and a case's allocations — allocate, release, list."""
from __future__ import annotations

import math

from flask import Blueprint, g, jsonify, request

from api.v1 import MAX_PER_PAGE, int_arg, json_body, authenticate, enabled
from dispatch.errors import ServiceError
from emergency.resources import MAX_LIMIT
from web.services import services

bp = Blueprint("api_resources", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


def _text_arg(name: str) -> str | None:
    value = request.args.get(name)
    return value.strip() or None if value is not None else None


def _near() -> tuple[float, float] | None:
    raw = request.args.get("near")
    if raw is None or not raw.strip():
        return None
    parts = raw.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lon, lat = float(parts[0]), float(parts[1])
    except ValueError:
        raise ServiceError(400, "bad_request", f"参数 near 须为 经度,纬度（如 119.97,31.78），收到 {raw[:60]!r}")
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ServiceError(400, "bad_request", "参数 near 须为有限数字")
    return lon, lat


def _radius() -> float | None:
    raw = request.args.get("radius_m")
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ServiceError(400, "bad_request", f"参数 radius_m 应为米数，收到 {raw[:40]!r}")
    return value  # the service checks its range (> 0, finite)


def _resources():
    return enabled(services().resources, "应急资源服务")


@bp.get("/resources")
def resources():
    """With `near=LON,LAT`: the nearest first (`type`, `specialty`, `status`, `radius_m`, `limit`); without: a page by id
    (`type`, `specialty`, `status`, `page`, `per_page`)."""
    near = _near()
    type_, specialty = _text_arg("type"), _text_arg("specialty")
    if near is not None:
        limit = int_arg("limit", 20, 1, MAX_LIMIT)
        return jsonify(_resources().nearest(near[0], near[1], type=type_, specialty=specialty, radius_m=_radius(),
                                            limit=limit, principal=g.principal, status=_text_arg("status")))
    if request.args.get("radius_m") or request.args.get("limit"):
        raise ServiceError(400, "bad_request", "radius_m 和 limit 须与 near=经度,纬度 一起使用")
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    return jsonify(_resources().list(g.principal, type_=type_, specialty=specialty, status=_text_arg("status"),
                                     page=page, per_page=per_page))


@bp.get("/resources/<resource_id>")
def resource(resource_id: str):
    return jsonify(_resources().get(g.principal, resource_id))


@bp.get("/events/<int:case_id>/resources")
def case_allocations(case_id: int):
    return jsonify(_resources().allocations(case_id, g.principal))


@bp.post("/events/<int:case_id>/resources")
def allocate(case_id: int):
    """`{"resource", "item"?, "quantity"?}` → 201 with the allocation; 409 when not enough is left."""
    data = json_body()
    unknown = sorted(set(data) - {"resource", "item", "quantity"})
    if unknown:
        raise ServiceError(400, "bad_request", f"未知字段：{'、'.join(str(k)[:40] for k in unknown[:5])}（可用：resource、item、quantity）")
    if "resource" not in data:
        raise ServiceError(400, "bad_request", "缺少 resource（资源编号）")
    out = _resources().allocate(case_id, g.principal, data.get("resource"), item=data.get("item"),
                                quantity=data.get("quantity"))
    return jsonify(out), 201


@bp.delete("/events/<int:case_id>/resources/<int:allocation_id>")
def release(case_id: int, allocation_id: int):
    return jsonify(_resources().release(case_id, allocation_id, g.principal))
