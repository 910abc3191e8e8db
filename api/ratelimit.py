"""The API's rate limit: a fixed window per token (or per address) over the `limits` library.

Flask-Limiter did the same at ~440 µs a request (route introspection, header bookkeeping); this is
one counter increment. With REDIS_URL the counters live in Redis, so every process counts together;
if Redis is away the request is served (availability over the limit), as before, and the outage is
logged once per process (web/outage.py), Redis not even tried again until its next retry time.
"""
from __future__ import annotations

import logging
import time
from hashlib import sha256

from flask import Flask, request
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from web.errors import error_response
from web.outage import Outage, redis_outage

log = logging.getLogger("ucc.api")


class ApiRateLimit:
    """One limit over the requests whose path starts with `prefix` (the API's; Open311's has its own, counted apart
    under `scope`)."""

    def __init__(self, limit: str, storage_uri: str, prefix: str = "/api/", scope: str = "api"):
        self.item = parse(limit)
        self.text = limit
        self.prefix, self.scope = prefix, scope
        self.limiter = FixedWindowRateLimiter(storage_from_string(storage_uri))
        self.outage: Outage | None = redis_outage(storage_uri) if storage_uri.startswith("redis") else None

    @staticmethod
    def key() -> str:
        # Per token (hashed) when there is one, else per address: one busy client cannot starve the rest.
        header = request.headers.get("Authorization", "")
        return sha256(header.encode()).hexdigest()[:16] if header else (request.remote_addr or "?")

    def check(self):
        if not request.path.startswith(self.prefix):
            return None
        key = self.key()
        outage = self.outage
        if outage is not None and not outage.may_try():
            return None  # the counter store is away: serve without a limit until the next retry
        try:
            allowed = self.limiter.hit(self.item, self.scope, key)
        except Exception as exc:  # noqa: BLE001 - the counter store is away: serve rather than fail
            if outage is not None:
                outage.failed(exc)
            else:
                log.warning("rate-limit store unavailable; serving without a limit (%s)", exc)
            return None
        if outage is not None:
            outage.recovered()
        if allowed:
            return None
        reset = self.limiter.get_window_stats(self.item, self.scope, key).reset_time
        response = error_response(429, "too_many_requests", f"请求过于频繁（上限 {self.text}），请稍后再试")
        response.headers["Retry-After"] = str(max(1, int(reset - time.time() + 0.999)))
        return response

    def install(self, app: Flask) -> None:
        app.before_request(self.check)
