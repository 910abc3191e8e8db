"""The /api/v1/indicators blueprint: the plan's key indicators (read by any token, updated by admin or leader) and the
city's vital-sign series (posted by a device token or an admin, read by any token): docs/indicators.md."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from pydantic import Field, RootModel

from web.services import services
from api.openapi import operation, query_of
from api.schemas import Answer, Body, Code, Query, QueryTime, Text
from api.v1 import authenticate
from dispatch.access import INDICATOR_SENDERS
from dispatch.errors import ServiceError
from figures.plan_indicators import get_indicator, history, list_indicators, update_from_request

bp = Blueprint("api_indicators", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1
TAG = "指标"


class IndicatorsQuery(Query):
    theme: Text | None = Field(None, description="规划指标的主题（不与 code、start、end 同用）")
    code: Code | None = Field(None, description="体征指标代码：答复其读数序列")
    start: QueryTime | None = Field(None, description="序列起点（默认 end 前 24 小时）")
    end: QueryTime | None = Field(None, description="序列终点（不含，默认现在）")


class PlanIndicators(Answer):
    """The plan's key indicators (no code, start or end given)."""

    items: list[dict[str, Any]]


class Series(Answer):
    """A vital sign's readings, oldest first."""

    code: str
    name: str
    unit: str | None
    items: list[dict[str, Any]]


class IndicatorsAnswer(RootModel[Series | PlanIndicators]):
    root: Series | PlanIndicators


class Readings(RootModel[Any]):
    """One reading `{code, ts, value, unit, source}` or a list, all or nothing; read by the indicator service, which
    names every bad reading."""

    root: dict[str, Any] | list[dict[str, Any]]


class Stored(Answer):
    readings: int
    stored: int
    duplicates: int


class Indicator(Answer):
    code: str
    name: str
    history: list[dict[str, Any]] | None = None


class IndicatorUpdate(Body):
    value: Any = Field(description="新值（数字）")
    as_of: Any = Field(description="截至日 YYYY-MM-DD")


def _db():
    return services().db


def _answer(fn, *args, status: int = 200):
    with _db().session() as s:  # a ServiceError answers through web.errors' fallback
        body = fn(s, *args)
    resp = jsonify(body)
    resp.status_code = status
    return resp


@bp.get("/indicators")
@operation("规划关键指标，或一个体征指标的读数序列", query=IndicatorsQuery, responses={200: IndicatorsAnswer},
           tags=(TAG,))
def indicators():
    """Two readings of one path (CONTRACT.md has both): with code (and start, end) a vital sign's series
    `{code, name, unit, items: [{ts, value, unit, source}]}`; without, the plan's key indicators (theme=)."""
    q = query_of(IndicatorsQuery)
    if q.code is not None or q.start is not None or q.end is not None:
        if q.theme:
            raise ServiceError(400, "bad_request", "theme 用于规划指标列表，不能与 code、start、end（体征指标序列）同用")
        return jsonify(services().indicators.series(q.code, q.start, q.end))
    return _answer(lambda s: {"items": list_indicators(s, q.theme)})


@bp.post("/indicators")
@operation("上报体征指标读数（设备令牌或管理员）", body=Readings, responses={200: Stored}, tags=(TAG,))
def post_readings():
    """Vital-sign readings in: one `{code, ts, value, unit, source}` or a list, all-or-nothing (400 naming every bad
    reading); answers how many were stored and how many were duplicates."""
    if g.principal.role not in INDICATOR_SENDERS:
        raise ServiceError(403, "forbidden", "只有设备令牌（create-token --role device）或管理员可以上报体征指标读数")
    return jsonify(services().indicators.post(request.get_data(cache=False)))


@bp.get("/indicators/<code>")
@operation("一个规划指标及其历史", responses={200: Indicator}, tags=(TAG,))
def indicator(code: str):
    return _answer(lambda s: {**get_indicator(s, code), "history": history(s, code)})


@bp.put("/indicators/<code>")
@operation("更新规划指标的值（管理员或领导）", body=IndicatorUpdate, responses={200: Indicator}, tags=(TAG,))
def update_indicator(code: str):
    payload = request.get_json(silent=True)  # the indicator's own rule reads it (figures.plan_indicators)
    principal = g.principal
    return _answer(lambda s: update_from_request(s, code, payload, principal.role, principal.ident))
