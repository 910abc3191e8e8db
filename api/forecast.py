"""GET /api/v1/forecast?days=&by=district|kind&area=&at=: expected case counts per day with prediction intervals and
the backtest against the seasonal-naive baseline (CONTRACT.md, Foresight)."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from api.v1 import datetime_arg, int_arg, authenticate, enabled
from dispatch.access import FORECAST_READERS
from dispatch.errors import ServiceError
from web.services import services

bp = Blueprint("api_forecast", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


@bp.get("/forecast")
def forecast():
    if g.principal.role not in FORECAST_READERS:
        raise ServiceError(403, "forbidden", "只有管理员、领导和值班员可以查看案件量预测")
    svc = enabled(services().forecast, "预测服务")
    days = int_arg("days", 14, 1, svc.rules.max_days)
    by = request.args.get("by") or "district"
    at = datetime_arg("at") if request.args.get("at") else None
    area = (request.args.get("area") or "").strip() or None
    return jsonify(svc.forecast(by, days, at, area, principal=g.principal))
