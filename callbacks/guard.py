"""The page table applied to Dash callbacks: a session may call a callback only if its role may open the page.

A callback request names the callback by its output id (`output` in the JSON body); the registry
in callbacks/__init__.py says whose page that is. Checked before Dash runs anything: an unknown
callback, a browser-side (clientside) one or a malformed body is a 400, another page's callback a
403, each as the contract's JSON error. The services still limit what any callback may see or do.
"""
from __future__ import annotations

from dash.exceptions import CallbackException, DependencyException
from flask import Flask, current_app, request

import callbacks
from dispatch import access
from web.errors import error_response
from web.principal import current_principal
from web.validation import DASH_CALLBACK_PATH


def _check_callback(dash_app):
    if request.path != DASH_CALLBACK_PATH or request.method != "POST":
        return None
    principal = current_principal()
    if principal is None:
        return None  # the sign-in guard has answered 401 already (auth._guard runs first)
    body = request.get_json(silent=True)
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, str) or not output:
        return error_response(400, "bad_request", "回调请求须为 JSON 对象，并指明 output")
    entry = dash_app.callback_map.get(output)
    if entry is None:
        return error_response(400, "unknown_callback", "没有这个回调")
    if "callback" not in entry:
        return error_response(400, "unknown_callback", "该回调在浏览器中运行，服务器不执行")
    page = callbacks.page_of(output)
    if page is None and not callbacks.shared_on_purpose(output):
        # fail closed: a callback nobody placed on a page is nobody's to call
        return error_response(403, "forbidden", "该回调不属于任何页面")
    if page is not None and not access.can_open(principal.role, page):
        label = access.page_for(page).label
        return error_response(403, "forbidden", f"当前角色无权使用「{label}」页面的功能")
    for key in ("inputs", "state", "changedPropIds"):
        if not isinstance(body.get(key, []), list):
            return error_response(400, "bad_request", f"回调请求的 {key} 须为列表")
    if not isinstance(body.get("outputs", []), (list, dict)):
        return error_response(400, "bad_request", "回调请求的 outputs 须为列表或对象")
    return None


def _callback_mismatch(err: CallbackException):
    if type(err) is CallbackException:
        # Dash checks the request's `outputs` against the callback's definition with this exact class:
        # a request that does not match what the page would send
        return error_response(400, "bad_request", "回调请求与回调的定义不符，请刷新页面")
    # its subclasses are the callback's own mistakes (a wrong return value): a failure, logged
    current_app.logger.error("callback failed on %s", request.path, exc_info=(type(err), err, err.__traceback__))
    return error_response(500, "internal_error", "服务器内部错误，已记录")


def _missing_dependency(_err: DependencyException):
    # /_dash-component-suites/<not a registered package or file>: nothing there to serve
    return error_response(404, "not_found", "没有这个文件")


def install(server: Flask, dash_app) -> None:
    """Register the check; after the sign-in guard and CSRF (registered by auth.init_auth), so the
    principal is known and a forged request is refused as such."""
    server.before_request(lambda: _check_callback(dash_app))
    server.register_error_handler(DependencyException, _missing_dependency)
    server.register_error_handler(CallbackException, _callback_mismatch)
