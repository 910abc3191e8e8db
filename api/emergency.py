"""The /api/v1 emergency endpoints: the plans (read; an administrator edits one), the active responses, a report's
draft. The response's actions go through POST /api/v1/events/ID/actions (api/v1.py)."""
from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, g, jsonify
from pydantic import ConfigDict, Field

from api.openapi import body_object, operation, query_of
from api.schemas import Answer, Body, Query
from api.v1 import authenticate
from web.services import services

bp = Blueprint("api_emergency", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1
TAG = "应急指挥"


class Plan(Answer):
    code: str
    name: str
    categories: list[str]
    levels: list[dict[str, Any]]


class Plans(Answer):
    items: list[Plan]
    total: int
    sources: list[str]


class PlanBody(Body):
    """A whole plan as its file writes it (data/catalog/emergency_plans.json); checked with every other plan."""

    model_config = ConfigDict(extra="allow")

    code: str | None = Field(None, description="须与地址中的 code 一致（可省略）")
    name: str = Field(description="预案名称")
    categories: list[str] = Field(description="适用的事件类别编码")
    levels: list[dict[str, Any]] = Field(description="分级响应：level、criteria、commanding_level、牵头与协办单位类型、检查单")


class Emergencies(Answer):
    items: list[dict[str, Any]]
    total: int


class DraftQuery(Query):
    kind: Literal["first", "update", "final"] = Field("first", description="first 首报、update 续报、final 终报")


class Draft(Answer):
    kind: str


@bp.get("/plans")
@operation("应急预案列表", responses={200: Plans}, tags=(TAG,))
def plans():
    items = services().responses.plan_list()
    return jsonify({"items": items, "total": len(items), "sources": list(services().responses.plans().sources)})


@bp.get("/plans/<code>")
@operation("一个应急预案", responses={200: Plan}, tags=(TAG,))
def plan(code: str):
    return jsonify(services().responses.plan(code))


@bp.put("/plans/<code>")
@operation("编辑应急预案（管理员）", body=PlanBody, responses={200: Plan}, tags=(TAG,))
def save_plan(code: str):
    # the plan's own checks (who may, then every problem with every other plan) read it
    return jsonify(services().responses.save_plan(g.principal, code, body_object()))


@bp.get("/emergencies")
@operation("进行中的应急响应（最紧迫的在前）", responses={200: Emergencies}, tags=(TAG,))
def emergencies():
    """The active responses in the caller's scope, gravest first (overdue reports and unacknowledged tasks)."""
    items = services().responses.active(g.principal)
    return jsonify({"items": items, "total": len(items)})


@bp.get("/events/<int:case_id>/reports/draft")
@operation("信息报送草稿（首报、续报、终报）", query=DraftQuery, responses={200: Draft}, tags=(TAG,))
def report_draft(case_id: int):
    return jsonify(services().responses.draft(case_id, g.principal, query_of(DraftQuery).kind))
