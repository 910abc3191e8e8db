"""Open311 GeoReport v2 at /open311/v2 (and its discovery at /open311/discovery): the HTTP edge of cases/open311.py.

Each view reads the query or the form-encoded body, calls the service and answers the spec's document in the format
the path names (.json or .xml). Reads are anonymous (limited per address, api/ratelimit.py); a POST carries its
api_key in the form. Every refusal here, in routing, in the request screen or the body limits answers the spec's
error format (web/errors.error_response, web/limits.py), never a page.
"""
from __future__ import annotations

from dataclasses import fields

from flask import Blueprint, Response, current_app, request

from api.ratelimit import ApiRateLimit
from api.v1 import bearer_principal
from cases.open311 import FORMATS, Open311, Open311Error, Report, render
from dispatch.errors import ServiceError
from web.errors import error_response
from web.services import services

bp = Blueprint("open311", __name__, url_prefix="/open311")
FMT = "<any(json, xml):fmt>"


def init_limits(app) -> None:
    """Open311's own rate limit (UCC_OPEN311_RATE_LIMIT, per client address: reads carry no key), counted apart from
    the API's; in Redis when REDIS_URL is set, so every process counts together."""
    settings = services(app).settings
    ApiRateLimit(settings.open311_rate_limit, settings.redis_url or "memory://", prefix="/open311",
                 scope="open311").install(app)


def open311() -> Open311:
    """The app's Open311 resources (built on first use: they only read the app's services)."""
    built = current_app.extensions.get("ucc_open311")
    if built is None:
        app = services()
        built = current_app.extensions["ucc_open311"] = Open311(app.cases, app.areas, app.settings.jurisdiction)
    return built


def answer(document: str, body, fmt: str, status: int = 200) -> Response:
    return Response(render(document, body, fmt), status=status, content_type=FORMATS[fmt])


@bp.before_request
def jurisdiction():
    open311().check_jurisdiction(request.values.get("jurisdiction_id"))


@bp.errorhandler(Open311Error)
def refused(err: Open311Error):
    return error_response(err.status, "open311", err.description)


@bp.errorhandler(ServiceError)
def service_refused(err: ServiceError):
    return error_response(err.status, err.code, err.message)


@bp.get(f"/discovery.{FMT}")
@bp.get(f"/v2/discovery.{FMT}")
def discovery(fmt: str):
    return answer("discovery", open311().discovery(request.url_root.rstrip("/") + "/open311/v2"), fmt)


@bp.get(f"/v2/services.{FMT}")
def service_list(fmt: str):
    return answer("services", open311().services(), fmt)


@bp.get(f"/v2/services/<code>.{FMT}")
def service_definition(code: str, fmt: str):
    return answer("service_definition", open311().service_definition(code), fmt)


@bp.get(f"/v2/requests.{FMT}")
def request_list(fmt: str):
    args = request.args
    return answer("requests", open311().requests(
        service_request_id=args.get("service_request_id"), service_code=args.get("service_code"),
        start_date=args.get("start_date"), end_date=args.get("end_date"), status=args.get("status")), fmt)


@bp.post(f"/v2/requests.{FMT}")
def post_request(fmt: str):
    form = request.values  # the spec's arguments are form-encoded; a query string may carry some of them too
    key = (form.get("api_key") or "").strip()
    principal = bearer_principal(key) if key else None
    report = Report(**{f.name: form.get(f.name) for f in fields(Report)})
    return answer("requests", open311().report(report, principal), fmt)


@bp.get(f"/v2/requests/<service_request_id>.{FMT}")
def one_request(service_request_id: str, fmt: str):
    return answer("requests", open311().request(service_request_id), fmt)


@bp.get(f"/v2/tokens/<token>.{FMT}")
def token(token: str, fmt: str):
    return answer("requests", open311().token(token), fmt)


@bp.route("", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route("/<path:_unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_endpoint(_unknown: str = ""):
    # Without this, Dash's page catch-all would answer unknown Open311 paths with HTML.
    raise Open311Error(404, f"没有这个接口：{request.path}（见 /open311/discovery.json，格式后缀 .json 或 .xml）")
