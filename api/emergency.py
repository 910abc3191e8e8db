"""The /api/v1 emergency endpoints: the plans (read; an administrator edits one), the active responses, a report's
draft. The response's actions go through POST /api/v1/events/ID/actions (api/v1.py)."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from api.v1 import json_body, authenticate
from web.services import services

bp = Blueprint("api_emergency", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


@bp.get("/plans")
def plans():
    items = services().responses.plan_list()
    return jsonify({"items": items, "total": len(items), "sources": list(services().responses.plans().sources)})


@bp.get("/plans/<code>")
def plan(code: str):
    return jsonify(services().responses.plan(code))


@bp.put("/plans/<code>")
def save_plan(code: str):
    return jsonify(services().responses.save_plan(g.principal, code, json_body()))


@bp.get("/emergencies")
def emergencies():
    """The active responses in the caller's scope, gravest first (overdue reports and unacknowledged tasks)."""
    items = services().responses.active(g.principal)
    return jsonify({"items": items, "total": len(items)})


@bp.get("/events/<int:case_id>/reports/draft")
def report_draft(case_id: int):
    return jsonify(services().responses.draft(case_id, g.principal, request.args.get("kind") or "first"))
