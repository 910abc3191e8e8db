"""GET /api/v1/assessment/report?month=YYYY-MM&format=xlsx|pdf: the monthly assessment report as a download.

The cockpit's download button is a plain link, so the route takes the signed-in session as well as a
bearer token (like /photos/); /api/ is open in the page guard, so it authenticates itself. The report
is made in memory (a month's report is tens of kilobytes to a few megabytes) and answered with the
name cities give it, in Chinese (RFC 6266 filename*, with an ASCII fallback).
"""
from __future__ import annotations

from urllib.parse import quote

from typing import Literal

from flask import Blueprint, Response
from pydantic import Field, field_validator

from api.openapi import operation, query_of
from api.schemas import Query
from api.v1 import bearer_principal, bearer_token
from dispatch.errors import ServiceError
from figures.report import FORMATS, MIME, render, report_data, report_filename
from web.principal import current_principal
from web.services import services

bp = Blueprint("api_assessment_report", __name__, url_prefix="/api/v1")

ALLOWED_ROLES = ("admin", "leader", "duty_officer")


class ReportQuery(Query):
    month: str = Field(max_length=20, pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    format: Literal["xlsx", "pdf"] = Field("xlsx", description="xlsx 或 pdf")

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, v):
        return v.lower() if isinstance(v, str) else v


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
@operation("月度考核通报（下载）", query=ReportQuery, responses={200: None}, tags=("统计与考核",),
           media=tuple(MIME[f] for f in FORMATS),
           description="管理员、领导和值班员；也接受已登录的会话（驾驶舱的下载链接）。")
def assessment_report():
    principal = _principal()
    if principal.role not in ALLOWED_ROLES:
        raise ServiceError(403, "forbidden", "只有管理员、领导和值班员可以下载考核通报")
    q = query_of(ReportQuery)
    fmt = q.format
    data = report_data(services().cases, q.month, principal=principal)  # a bad month answers 400
    body = render(data, fmt)
    name = report_filename(data, fmt)
    resp = Response(body, mimetype=MIME[fmt])
    resp.headers["Content-Disposition"] = (f"attachment; filename=\"assessment-report-{data['month']}.{fmt}\"; "
                                           f"filename*=UTF-8''{quote(name, safe='')}")
    resp.headers["Cache-Control"] = "private, no-store"  # figures of a month in progress change by the hour
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
