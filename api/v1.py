"""The /api/v1 blueprint: authentication by bearer token and the area endpoints."""
from __future__ import annotations

import math

from flask import Blueprint, current_app, g, jsonify, request

from api.errors import ApiError, register_error_handlers
from data.areas import get_area, list_areas
from data.tokens import resolve_token
from geo.locator import OutsideCity

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
register_error_handlers(bp)

MAX_PER_PAGE = 500


def services():
    return current_app.extensions["ucc"]


@bp.before_request
def authenticate():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "需要 Authorization: Bearer TOKEN 请求头")
    with services().db.session() as s:
        principal = resolve_token(s, token.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "令牌无效或已吊销")
    g.principal = principal


def _int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"参数 {name} 应为整数，收到 {raw!r}")
    if not lo <= value <= hi:
        raise ApiError(400, "bad_request", f"参数 {name} 应在 {lo} 到 {hi} 之间，收到 {value}")
    return value


def _float_arg(name: str) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        raise ApiError(400, "bad_request", f"缺少参数 {name}")
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"参数 {name} 应为数字，收到 {raw!r}")
    if not math.isfinite(value):
        raise ApiError(400, "bad_request", f"参数 {name} 应为有限数字")
    return value


def _area_ref(rec) -> dict:
    return {"code": rec.code, "name": rec.name, "level": rec.level}


@bp.get("/areas")
def areas():
    level = _int_arg("level", None, 1, 5)
    page = _int_arg("page", 1, 1, 10**6)
    per_page = _int_arg("per_page", 50, 1, MAX_PER_PAGE)
    parent = request.args.get("parent") or None
    with services().db.session() as s:
        if parent is not None and get_area(s, parent) is None:
            raise ApiError(404, "not_found", f"上级区域 {parent} 不存在")
        items, total = list_areas(s, level=level, parent=parent, page=page, per_page=per_page)
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


@bp.get("/areas/locate")
def locate():
    lon, lat = _float_arg("lon"), _float_arg("lat")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ApiError(400, "bad_request", f"经纬度超出范围：lon={lon}, lat={lat}")
    locator = services().areas.locator()
    if locator is None:
        raise ApiError(404, "not_found", "尚未导入城市网格")
    try:
        chain = locator.locate(lon, lat)
    except OutsideCity as exc:
        raise ApiError(404, "outside_city", str(exc))
    return jsonify({"chain": [_area_ref(r) for r in chain]})


@bp.get("/<path:_unknown>")
def unknown_endpoint(_unknown):
    # Without this, Dash's page catch-all would answer unknown API paths with HTML.
    raise ApiError(404, "not_found", f"没有这个接口：{request.path}")
