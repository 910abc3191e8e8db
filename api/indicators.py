"""The /api/v1/indicators blueprint: the plan's key indicators (read by any token, updated by admin or leader) and the
city's vital-sign series (posted by a device token or an admin, read by any token): docs/indicators.md."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from web.services import services
from api.v1 import datetime_arg, authenticate
from dispatch.access import INDICATOR_SENDERS
from dispatch.errors import ServiceError
from figures.plan_indicators import get_indicator, history, list_indicators, update_from_request

bp = Blueprint("api_indicators", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1

# GET /api/v1/indicators answers the vital-sign series when one of these is given, the plan's indicators otherwise
SERIES_ARGS = ("code", "start", "end")


def _db():
    return services().db


def _answer(fn, *args, status: int = 200):
    with _db().session() as s:  # a ServiceError answers through web.errors' fallback
        body = fn(s, *args)
    resp = jsonify(body)
    resp.status_code = status
    return resp


@bp.get("/indicators")
def indicators():
    """Two readings of one path (CONTRACT.md has both): with code (and start, end) a vital sign's series
    `{code, name, unit, items: [{ts, value, unit, source}]}`; without, the plan's key indicators (theme=)."""
    if any(request.args.get(name) not in (None, "") for name in SERIES_ARGS):
        if request.args.get("theme"):
            raise ServiceError(400, "bad_request", "theme 用于规划指标列表，不能与 code、start、end（体征指标序列）同用")
        start = datetime_arg("start") if request.args.get("start") else None
        end = datetime_arg("end") if request.args.get("end") else None
        return jsonify(services().indicators.series((request.args.get("code") or "").strip() or None, start, end))
    theme = request.args.get("theme") or None
    return _answer(lambda s: {"items": list_indicators(s, theme)})


@bp.post("/indicators")
def post_readings():
    """Vital-sign readings in: one `{code, ts, value, unit, source}` or a list, all-or-nothing (400 naming every bad
    reading); answers how many were stored and how many were duplicates."""
    if g.principal.role not in INDICATOR_SENDERS:
        raise ServiceError(403, "forbidden", "只有设备令牌（create-token --role device）或管理员可以上报体征指标读数")
    return jsonify(services().indicators.post(request.get_data(cache=False)))


@bp.get("/indicators/<code>")
def indicator(code: str):
    return _answer(lambda s: {**get_indicator(s, code), "history": history(s, code)})


@bp.put("/indicators/<code>")
def update_indicator(code: str):
    payload = request.get_json(silent=True)
    principal = g.principal
    return _answer(lambda s: update_from_request(s, code, payload, principal.role, principal.ident))
