"""The one handler of the error family (dispatch/errors.py): the contract's JSON error, never a stack trace."""
from __future__ import annotations

from html import escape

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from cases.open311 import error_document, format_of_path
from dispatch.errors import ServiceError

OPEN311_PREFIX = "/open311"


def is_open311(path: str) -> bool:
    return path == OPEN311_PREFIX or path.startswith(OPEN311_PREFIX + "/")


def error_response(status: int, code: str, message: str, **extra):
    """The contract's JSON error; on Open311's paths the GeoReport v2 error document (its code is the status)."""
    if is_open311(request.path):
        body, content_type = error_document(status, message, format_of_path(request.path))
        return current_app.response_class(body, status=status, content_type=content_type)
    resp = jsonify({"error": code, "message": message, **extra})
    resp.status_code = status
    return resp


def refusal_response(err: ServiceError):
    """{"error", "message"} plus the refusal's details (validation `fields`, a conflict's current `case`)."""
    return error_response(err.status, err.code, err.message, **err.details)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 422: "unprocessable",
               429: "too_many_requests"}
# Routes whose callers read JSON: the API, Dash's callback and layout requests, photos (fetched by
# API clients and <img> alike: a plain status, no page).
JSON_PREFIXES = ("/api/", "/_dash-", "/photos/", "/open311/")
INTERNAL_MESSAGE = "服务器内部错误，已记录"


def wants_json() -> bool:
    """Whether this request's caller reads JSON (so an error is the contract's JSON, not a page)."""
    path = request.path
    return path.startswith(JSON_PREFIXES) or path.endswith(".json") or request.is_json


def page_message(status: int, message: str):
    """A refusal or failure as a small page in Chinese, for a page route (no details, no trace)."""
    body = ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            "<title>城市运行管理平台</title></head><body class=\"ucc-refusal\">"
            f"<h1>城市运行管理平台</h1><p>{escape(message)}</p><p><a href=\"/\">返回首页</a></p></body></html>")
    return body, status, {"Content-Type": "text/html; charset=utf-8"}


def refuse(status: int, code: str, message: str):
    """A refusal in the caller's form: the contract's JSON, or a page message."""
    return error_response(status, code, message) if wants_json() else page_message(status, message)


def _only_a_catch_all() -> bool:
    """Whether the request's path reaches no endpoint but a catch-all (a view marked `catch_all`, e.g. /api/v1's
    JSON 404): then a method the catch-all does not take is still "no such endpoint", a 404 — `POST
    /api/v1/alarms/-1/actions` (no id is negative) as much as `GET /api/v1/nope` — not a 405."""
    try:
        endpoint, _args = current_app.url_map.bind_to_environ(request.environ).match(method="GET")
    except HTTPException:
        return False
    return getattr(current_app.view_functions.get(endpoint), "catch_all", False)


def register_app_fallback(app) -> None:
    """What no blueprint handled: routing errors (404, 405), refusals and failures of Dash callbacks,
    photos and pages. JSON routes answer the contract's JSON; pages a short Chinese page; a failure
    is logged with its trace and shown to nobody."""

    @app.errorhandler(ServiceError)
    def _refused(err: ServiceError):
        if wants_json():
            return refusal_response(err)
        return page_message(err.status, err.message)

    @app.errorhandler(HTTPException)
    def _fallback(err: HTTPException):
        status = err.code or 500
        if status == 405 and _only_a_catch_all():
            return error_response(404, "not_found", f"没有这个接口：{request.path[:200]}")
        if wants_json():
            return error_response(status, _HTTP_CODES.get(status, "http_error"),
                                  INTERNAL_MESSAGE if status >= 500 else (err.description or ""))
        if status >= 500:
            return page_message(status, INTERNAL_MESSAGE)
        return err

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if isinstance(err, HTTPException):  # Flask offers HTTP errors here too when this is the closest handler
            return _fallback(err)
        bp_logger(err)
        if wants_json():
            return error_response(500, "internal_error", INTERNAL_MESSAGE)
        return page_message(500, INTERNAL_MESSAGE)


def bp_logger(err: Exception) -> None:
    from flask import current_app

    current_app.logger.error("unhandled error on %s %s", request.method, request.path,
                             exc_info=(type(err), err, err.__traceback__))
