"""The one handler of the error family (dispatch/errors.py): the contract's JSON error, never a stack trace."""
from __future__ import annotations

from flask import jsonify
from werkzeug.exceptions import HTTPException

from dispatch.errors import ServiceError


def error_response(status: int, code: str, message: str, **extra):
    resp = jsonify({"error": code, "message": message, **extra})
    resp.status_code = status
    return resp


def refusal_response(err: ServiceError):
    """{"error", "message"} plus the refusal's details (validation `fields`, a conflict's current `case`)."""
    return error_response(err.status, err.code, err.message, **err.details)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 422: "unprocessable",
               429: "too_many_requests"}


def register_error_handlers(bp) -> None:
    @bp.errorhandler(ServiceError)
    def _refused(err: ServiceError):
        return refusal_response(err)

    @bp.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        return error_response(err.code or 500, _HTTP_CODES.get(err.code, "http_error"), err.description or "")

    @bp.errorhandler(Exception)
    def _unexpected(err: Exception):
        bp_logger(err)
        return error_response(500, "internal_error", "服务器内部错误，已记录")


def register_app_fallback(app) -> None:
    """Errors raised before a blueprint is chosen (e.g. 405 from routing) still answer JSON under /api/."""
    from flask import request

    @app.errorhandler(HTTPException)
    def _fallback(err: HTTPException):
        if request.path.startswith("/api/"):
            return error_response(err.code or 500, _HTTP_CODES.get(err.code, "http_error"), err.description or "")
        return err


def bp_logger(err: Exception) -> None:
    from flask import current_app

    current_app.logger.exception("unhandled API error: %s", err)
