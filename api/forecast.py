"""GET /api/v1/forecast?days=&by=district|kind&area=&at=: expected case counts per day with prediction intervals and
the backtest against the seasonal-naive baseline (CONTRACT.md, Foresight)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from pydantic import Field

from api.openapi import operation, query_of
from api.schemas import Answer, Code, Query, QueryTime, Text
from api.v1 import authenticate, enabled
from dispatch.access import FORECAST_READERS
from dispatch.errors import ServiceError
from web.services import services

bp = Blueprint("api_forecast", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


class ForecastQuery(Query):
    days: int = Field(14, description="预测天数（1 到预测规则的 max_days，由预测服务检查）")
    by: Text = Field("district", description="district 或 kind")
    area: Code | None = Field(None, description="区域编码")
    at: QueryTime | None = Field(None, description="以此时刻为“现在”")


class ForecastDay(Answer):
    key: str
    date: str
    expected: float
    lower: float
    upper: float


class Forecast(Answer):
    by: str
    days: int
    items: list[ForecastDay]
    backtest: dict[str, Any]


@bp.get("/forecast")
@operation("案件量预测（含预测区间与回测）", query=ForecastQuery, responses={200: Forecast}, tags=("态势预见",))
def forecast():
    if g.principal.role not in FORECAST_READERS:
        raise ServiceError(403, "forbidden", "只有管理员、领导和值班员可以查看案件量预测")
    svc = enabled(services().forecast, "预测服务")
    q = query_of(ForecastQuery)
    return jsonify(svc.forecast(q.by, q.days, q.at, q.area, principal=g.principal))
