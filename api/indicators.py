"""The /api/v1/indicators blueprint: the plan's key indicators, read by any token, updated by admin or leader."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from web.services import services
from api.v1 import authenticate
from figures.plan_indicators import get_indicator, history, list_indicators, update_from_request

bp = Blueprint("api_indicators", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


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
    theme = request.args.get("theme") or None
    return _answer(lambda s: {"items": list_indicators(s, theme)})


@bp.get("/indicators/<code>")
def indicator(code: str):
    return _answer(lambda s: {**get_indicator(s, code), "history": history(s, code)})


@bp.put("/indicators/<code>")
def update_indicator(code: str):
    payload = request.get_json(silent=True)
    principal = g.principal
    return _answer(lambda s: update_from_request(s, code, payload, principal.role, principal.ident))
