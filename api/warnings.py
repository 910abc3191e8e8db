"""The /api/v1 early warnings (docs/foresight.md, Warnings): the list and one warning, and a duty officer's acknowledge,
dismiss and 专项整治 (campaign)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from pydantic import Field

from api.openapi import body_of, operation, query_of
from api.schemas import Answer, Body, CaseObject, Query, Text
from api.v1 import authenticate, enabled
from foresight.warnings import MAX_LIMIT
from web.services import services

bp = Blueprint("api_warnings", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1
TAG = "态势预见"


class WarningsQuery(Query):
    status: Text | None = Field(None, description="open、acknowledged、dismissed 或 tasked")
    kind: Text | None = Field(None, description="surge、hotspot 或 recurrent")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="最多条数")


class EarlyWarning(Answer):
    id: int
    kind: str
    area: Any
    category: Any
    window_start: str | None
    window_end: str | None
    observed: float | None
    expected: float | None
    upper: float | None
    cases: Any
    status: str


class Warnings(Answer):
    items: list[EarlyWarning]
    total: int


class DismissBody(Body):
    reason: Any = Field(None, description="排除原因（必填）")


class CampaignBody(Body):
    unit_code: Any = Field(None, description="牵头单位编码（须负责预警区域）")
    note: Any = Field(None, description="备注")


class Campaign(Answer):
    warning: EarlyWarning
    case: CaseObject


def _service():
    return enabled(services().warnings, "预警服务")


@bp.get("/warnings")
@operation("预警列表（最新的在前）", query=WarningsQuery, responses={200: Warnings}, tags=(TAG,))
def warnings_list():
    q = query_of(WarningsQuery)
    return jsonify(_service().list(g.principal, status=q.status, kind=q.kind, limit=q.limit))


@bp.get("/warnings/<int:warning_id>")
@operation("一条预警", responses={200: EarlyWarning}, tags=(TAG,))
def warning(warning_id: int):
    return jsonify(_service().get(warning_id, g.principal))


@bp.post("/warnings/<int:warning_id>/acknowledge")
@operation("确认预警", responses={200: EarlyWarning}, tags=(TAG,))
def acknowledge(warning_id: int):
    return jsonify(_service().acknowledge(warning_id, g.principal))


@bp.post("/warnings/<int:warning_id>/dismiss")
@operation("排除预警（须写明原因）", body=DismissBody, responses={200: EarlyWarning}, tags=(TAG,))
def dismiss(warning_id: int):
    return jsonify(_service().dismiss(warning_id, g.principal, body_of(DismissBody).reason))


@bp.post("/warnings/<int:warning_id>/campaign")
@operation("预警转专项整治案件", body=CampaignBody, responses={201: Campaign}, tags=(TAG,))
def campaign(warning_id: int):
    """→ a 专项整治 case led by body.unit_code: 201 with `{warning, case}`."""
    body = body_of(CampaignBody)
    return jsonify(_service().to_campaign(warning_id, g.principal, body.unit_code, body.note or "")), 201
