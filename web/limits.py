"""Request body limits per route class: too large is refused with 413 before it is read, short or malformed with 400.

A WSGI middleware around the whole app (Flask, Dash, Socket.IO), so no view, callback or form
parser ever sees a body that is larger than its route class allows, shorter than its declared
``Content-Length``, or broken in its chunked framing:

* a declared ``Content-Length`` above the limit is answered 413 at once, nothing read;
* a chunked body (no ``Content-Length``) is read up to limit + 1 bytes: one byte over is a 413;
* a body is read exactly to its declared length; fewer bytes (the client half-closed early) is a
  400, and the app is not called, so it creates nothing. (gunicorn marks its input as terminated,
  so Werkzeug trusts it and would otherwise hand the app whatever arrived);
* a read that fails (malformed chunk sizes, a missing terminator, a dropped connection) is a 400,
  never a 500.

An accepted body is handed on in memory (``io.BytesIO``); the limits bound that memory. The limits
are settings (config.py: ``UCC_MAX_BODY_API``, ``UCC_MAX_BODY_PAGES``, ``UCC_MAX_BODY``); the
route classes are :data:`ROUTE_CLASSES`. Answers are the contract's JSON error (Open311 GeoReport v2's error
document under /open311, as web/errors.error_response answers there).
"""
from __future__ import annotations

import html
import io
import json
import logging

from cases.open311 import error_document, format_of_path
from cases.photos import MAX_BYTES as MAX_PHOTO_BYTES
from web.errors import is_open311

log = logging.getLogger("ucc.limits")

# Path prefix → the Settings field that limits it; the first match wins, else Settings.max_body.
ROUTE_CLASSES = (
    ("/api/", "max_body_api"),                          # JSON API: intake, actions, indicators
    ("/_dash-update-component", "max_body_pages"),      # Dash callbacks: a photo arrives base64 inside
    ("/open311/", "max_body_api"),                      # Open311 GeoReport v2: a form-encoded service request
    ("/public/report", "max_body_public"),              # the citizens' report form: a photo, multipart
)
# A Dash callback carrying the largest photo: base64 (4 bytes per 3) of the photo plus the rest of
# the callback's inputs and states (the form's fields, the page's stores).
PAGES_DEFAULT = 4 * -(-MAX_PHOTO_BYTES // 3) + 1024 * 1024
# The citizens' form: the largest photo as raw bytes (multipart, no base64) plus its fields and boundaries.
PUBLIC_DEFAULT = MAX_PHOTO_BYTES + 256 * 1024
_STEP = 64 * 1024   # read in steps: a declared length is a promise, not a buffer size


def size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} 字节"


def limits_from_settings(settings) -> tuple[tuple[tuple[str, int], ...], int]:
    """(prefix, limit) per route class and the default limit, from the settings."""
    classes = []
    for prefix, field in ROUTE_CLASSES:
        value = getattr(settings, field)
        if value is None and field == "max_body_pages":
            value = PAGES_DEFAULT
        if value is None and field == "max_body_public":
            value = PUBLIC_DEFAULT
        classes.append((prefix, int(value)))
    return tuple(classes), int(settings.max_body)


class BodyLimits:
    """The middleware; ``app`` is the WSGI app it guards."""

    def __init__(self, app, classes: tuple[tuple[str, int], ...], default: int):
        self.app = app
        self.classes = classes
        self.default = default

    @classmethod
    def install(cls, server, settings) -> "BodyLimits":
        classes, default = limits_from_settings(settings)
        guard = cls(server.wsgi_app, classes, default)
        server.wsgi_app = guard
        server.extensions["ucc_body_limits"] = guard
        return guard

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.classes:
            if path.startswith(prefix):
                return limit
        return self.default

    def __call__(self, environ, start_response):
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
        if not chunked and declared in ("", "0"):
            return self.app(environ, start_response)   # no body (GET, WebSocket upgrade): untouched
        path = environ.get("PATH_INFO") or ""
        limit = self.limit_for(path)
        stream = environ["wsgi.input"]
        if chunked:
            body = self._read(stream, limit + 1, environ)
            if body is None:
                return _refuse(start_response, 400, "bad_body", "请求体格式错误（分块传输编码无效或连接中断），未做任何处理", path)
            if len(body) > limit:
                return self._too_large(environ, start_response, None, limit)
        else:
            if not (declared.isascii() and declared.isdigit() and len(declared) <= 18):
                return _refuse(start_response, 400, "bad_content_length", f"Content-Length 无效：{declared[:40]!r}", path)
            length = int(declared)
            if length > limit:
                return self._too_large(environ, start_response, length, limit)
            body = self._read(stream, length, environ)
            if body is None:
                return _refuse(start_response, 400, "bad_body", "读取请求体失败（连接中断），未做任何处理", path)
            if len(body) < length:
                log.info("short body refused: %s %s declared %d, got %d", environ.get("REQUEST_METHOD"), path,
                         length, len(body))
                return _refuse(start_response, 400, "incomplete_body",
                               f"请求体不完整：声明 {length} 字节，只收到 {len(body)} 字节，未做任何处理", path)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)

    @staticmethod
    def _read(stream, most: int, environ) -> bytes | None:
        """Up to ``most`` bytes (fewer at the end of the body); None when reading fails."""
        buf = bytearray()
        try:
            while len(buf) < most:
                chunk = stream.read(min(_STEP, most - len(buf)))
                if not chunk:
                    break
                buf += chunk
        except Exception as exc:  # noqa: BLE001 - the server's reader says the framing is broken
            log.info("unreadable body refused: %s %s: %r", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), exc)
            return None
        return bytes(buf)

    @staticmethod
    def _too_large(environ, start_response, length: int | None, limit: int):
        log.info("body over the limit refused: %s %s %s > %d", environ.get("REQUEST_METHOD"),
                 environ.get("PATH_INFO"), length if length is not None else "chunked", limit)
        got = f"（{size_text(length)}）" if length is not None else ""
        return _refuse(start_response, 413, "payload_too_large", f"请求体过大{got}，此处上限为 {size_text(limit)}",
                       environ.get("PATH_INFO") or "", environ.get("HTTP_ACCEPT") or "")


# what a citizen's browser shows when the /public form was sent without its script (which refuses a large photo
# before sending): a page in their language with the way back, not an API error
_PUBLIC_PAGE = ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                "content=\"width=device-width, initial-scale=1\"><title>未能提交</title></head>"
                "<body style=\"font-family: sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; "
                "line-height: 1.6\"><h1 style=\"font-size: 1.4rem\">未能提交</h1><p>{message}。</p>"
                "<p>照片请选择 8 MB 以内的一张（可在手机相册中缩小后再选）。</p>"
                "<p><a href=\"/public\" style=\"font-size: 1.1rem\">返回重新填写</a></p></body></html>")


def _refuse(start_response, status: int, code: str, message: str, path: str = "", accept: str = ""):
    """The contract's JSON error; on Open311's paths the GeoReport v2 error document (web/errors.error_response);
    to a browser on the citizens' page, a page."""
    if is_open311(path):
        body, content_type = error_document(status, message, format_of_path(path))
    elif path.startswith("/public") and "text/html" in accept:
        body, content_type = _PUBLIC_PAGE.format(message=html.escape(message)).encode(), "text/html; charset=utf-8"
    else:
        body, content_type = json.dumps({"error": code, "message": message}, ensure_ascii=False).encode(), \
            "application/json; charset=utf-8"
    reason = {400: "BAD REQUEST", 413: "CONTENT TOO LARGE"}[status]
    start_response(f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
