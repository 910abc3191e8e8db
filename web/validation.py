"""The screen in front of every request: 64-bit ids, clean and bounded text, sane JSON — refused before any handler.

One before_request for the whole server (API, pages, photos, Dash callbacks), with the limits of
dispatch/limits.py. What it refuses answers 400 in the caller's form (web/errors.refuse: the
contract's JSON, or a page message) and reaches no handler, so it can change nothing. What each
field means (a category code, a version, a day) is still the services' check; this only keeps out
what no field may hold: integers a 64-bit column cannot store, control characters (NUL, which
PostgreSQL refuses in text), lone surrogates, oversized strings and absurd nesting.
"""
from __future__ import annotations

import re

from flask import Flask, request

from dispatch.limits import (INT64_MAX, INT64_MIN, MAX_API_STRING, MAX_CALLBACK_STRING, MAX_JSON_DEPTH,
                             MAX_JSON_ITEMS, MAX_PATH, MAX_QUERY_PARAMS, MAX_QUERY_VALUE, bad_character,
                             describe_character, is_int64)
from web.errors import refuse

DASH_CALLBACK_PATH = "/_dash-update-component"
OPEN311_PATHS = "/open311/"
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Refused(Exception):
    """A request the screen keeps out: its Chinese message."""


def _check_query() -> None:
    path = request.path
    if len(path) > MAX_PATH:
        raise Refused(f"请求路径过长（最多 {MAX_PATH} 字符）")
    ch = bad_character(path)
    if ch is not None:
        raise Refused(f"请求路径含有不允许的控制字符（{describe_character(ch)}）")
    args = request.args
    if sum(1 for _ in args.items(multi=True)) > MAX_QUERY_PARAMS:  # repeated keys count too
        raise Refused(f"查询参数过多（最多 {MAX_QUERY_PARAMS} 个）")
    for key, value in args.items(multi=True):
        for text in (key, value):
            ch = bad_character(text)
            if ch is not None:
                raise Refused(f"参数 {_shown(key)} 含有不允许的控制字符（{describe_character(ch)}）")
        if len(value) > MAX_QUERY_VALUE or len(key) > MAX_QUERY_VALUE:
            raise Refused(f"参数 {_shown(key)} 过长（最多 {MAX_QUERY_VALUE} 字符）")
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and not is_int64(value):
            raise Refused(f"编号 {name} 超出范围（须在 {INT64_MIN} 到 {INT64_MAX} 之间）")


def _shown(key: str) -> str:
    clean = "".join(ch if bad_character(ch) is None else "?" for ch in key[:40])
    return clean or "（空）"


def check_json(value, max_string: int) -> None:
    """Walk a parsed JSON body: every integer within 64 bits, every string clean (free text: tab,
    newline and return allowed) and at most `max_string` long, nesting and size bounded."""
    stack = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_JSON_ITEMS:
            raise Refused(f"请求体过大（最多 {MAX_JSON_ITEMS} 个值）")
        if depth > MAX_JSON_DEPTH:
            raise Refused(f"请求体嵌套过深（最多 {MAX_JSON_DEPTH} 层）")
        if isinstance(item, str):
            _check_string(item, max_string)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not is_int64(item):
                raise Refused(f"整数 {item} 超出范围（须在 {INT64_MIN} 到 {INT64_MAX} 之间）")
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_string(str(key), max_string)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


_BASE64_DATA = re.compile(r"data:[\w.+/-]*;base64,[A-Za-z0-9+/=]*\Z")


def _check_string(text: str, max_string: int) -> None:
    if len(text) > max_string:
        raise Refused(f"文本过长（{len(text)} 字符，最多 {max_string} 字符）")
    if len(text) > 4096 and _BASE64_DATA.match(text):
        # a photo's data URL (MBs): base64 has no control characters to find, and cases/photos.py
        # decodes it with validate=True, which refuses any other byte
        return
    ch = bad_character(text, free_text=True)
    if ch is not None:
        raise Refused(f"文本含有不允许的控制字符（{describe_character(ch)}）")


def _check_body() -> None:
    if request.method not in BODY_METHODS:
        return
    path = request.path
    if path == DASH_CALLBACK_PATH:
        limit = MAX_CALLBACK_STRING  # a photo travels as a data URL in a callback's state
    elif path.startswith("/api/"):
        limit = MAX_API_STRING
    elif path.startswith(OPEN311_PATHS):
        # Open311's POST is form-encoded (GeoReport v2): each field screened like a JSON string
        for key, value in request.form.items(multi=True):
            _check_string(key, MAX_QUERY_VALUE)
            _check_string(value, MAX_API_STRING)
        return
    else:
        return  # forms (/login) are checked by their views
    if not request.is_json:
        return
    body = request.get_json(silent=True)  # parsed once: the handler reads the same cached body
    if body is not None:
        check_json(body, limit)


def screen_request():
    """before_request: None to go on, or the 400 refusal."""
    try:
        _check_query()
        _check_body()
    except Refused as exc:
        return refuse(400, "bad_request", str(exc))
    return None


def install(app: Flask) -> None:
    """Screen every request of `app`, before its other hooks (rate limit aside) and every handler."""
    app.before_request(screen_request)
