"""GET /api/v1/assessment/report?month=YYYY-MM&format=xlsx|pdf: the monthly assessment report as a download.

The cockpit's download button is a plain link, so the route takes the signed-in session as well as a
bearer token (like /photos/); /api/ is open in the page guard, so it authenticates itself. The report
is made in memory (a month's report is tens of kilobytes to a few megabytes) and answered with the
name cities give it, in Chinese (RFC 6266 filename*, with an ASCII fallback).
"""
from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, request

from api.v1 import bearer_principal, bearer_token
from dispatch.errors import ServiceError
from figures.report import FORMATS, MIME, render, report_data, report_filename
from web.principal import current_principal
from web.services import services

bp = Blueprint("api_assessment_report", __name__, url_prefix="/api/v1")

ALLOWED_ROLES = ("admin", "leader", "duty_officer")


def _principal():
    """The bearer token's principal when the request carries one (an API client), else the signed-in person."""
    token = bearer_token()
    if token is not None:
        principal = bearer_principal(token)
        if principal is None:
            raise ServiceError(401, "unauthorized", "令牌无效或已吊销")
        return principal
    principal = current_principal()
    if principal is None:
        raise ServiceError(401, "unauthorized", "请先登录，或提供 Authorization: Bearer TOKEN")
    return principal


@bp.get("/assessment/report")
def assessment_report():
    principal = _principal()
    if principal.role not in ALLOWED_ROLES:
        raise ServiceError(403, "forbidden", "只有管理员、领导和值班员可以下载考核通报")
    month = request.args.get("month") or ""
    if not month:
        raise ServiceError(400, "bad_request", "缺少参数 month（YYYY-MM）")
    fmt = (request.args.get("format") or "xlsx").lower()
    if fmt not in FORMATS:
        raise ServiceError(400, "bad_request", f"参数 format 应为 xlsx 或 pdf，收到 {fmt!r}")
    data = report_data(services().cases, month, principal=principal)  # a bad month answers 400
    body = render(data, fmt)
    name = report_filename(data, fmt)
    resp = Response(body, mimetype=MIME[fmt])
    resp.headers["Content-Disposition"] = (f"attachment; filename=\"assessment-report-{data['month']}.{fmt}\"; "
                                           f"filename*=UTF-8''{quote(name, safe='')}")
    resp.headers["Cache-Control"] = "private, no-store"  # figures of a month in progress change by the hour
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
