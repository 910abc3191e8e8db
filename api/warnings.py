"""The /api/v1 early warnings (docs/foresight.md, Warnings): the list and one warning, and a duty officer's acknowledge,
dismiss and 专项整治 (campaign)."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from api.v1 import json_body, authenticate, enabled
from dispatch.errors import ServiceError
from web.services import services

bp = Blueprint("api_warnings", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


def _service():
    return enabled(services().warnings, "预警服务")


@bp.get("/warnings")
def warnings_list():
    raw = request.args.get("limit")
    if raw is not None and not (raw.isdigit() and len(raw) <= 6):
        raise ServiceError(400, "bad_request", "limit 须为正整数")
    return jsonify(_service().list(g.principal, status=request.args.get("status") or None,
                                   kind=request.args.get("kind") or None, limit=int(raw) if raw else 100))


@bp.get("/warnings/<int:warning_id>")
def warning(warning_id: int):
    return jsonify(_service().get(warning_id, g.principal))


@bp.post("/warnings/<int:warning_id>/acknowledge")
def acknowledge(warning_id: int):
    return jsonify(_service().acknowledge(warning_id, g.principal))


@bp.post("/warnings/<int:warning_id>/dismiss")
def dismiss(warning_id: int):
    body = json_body()
    return jsonify(_service().dismiss(warning_id, g.principal, body.get("reason")))


@bp.post("/warnings/<int:warning_id>/campaign")
def campaign(warning_id: int):
    """→ a 专项整治 case led by body.unit_code: 201 with `{warning, case}`."""
    body = json_body()
    return jsonify(_service().to_campaign(warning_id, g.principal, body.get("unit_code"), body.get("note") or "")), 201
