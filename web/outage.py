"""One voice per outage: a shared service (Redis) going away is logged once, with its retry delay, and its return once.

Every part of a process that uses Redis (the live bus's publisher and subscriber, the API rate limit,
the login throttle) reports to the same `Outage` for that URL, so an outage writes one warning and
one info line per process — not one per request, per thread or per retry — and never a traceback
(what failed is summed up in the warning). While it is down, callers ask `may_try()` and skip Redis
until the next retry time, so a request never pays for a connection attempt that is sure to fail;
the retry delay doubles from FIRST_RETRY up to MAX_RETRY.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("ucc.outage")


class Outage:
    FIRST_RETRY = 0.5  # seconds; the live subscriber retries this soon after the first failure
    MAX_RETRY = 5.0  # the cap: a Redis that comes back is noticed within this (and its replay starts)

    def __init__(self, what: str, first_retry: float | None = None, max_retry: float | None = None):
        self.what = what
        self.first_retry = first_retry if first_retry is not None else self.FIRST_RETRY
        self.max_retry = max_retry if max_retry is not None else self.MAX_RETRY
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._delay = self.first_retry

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def may_try(self) -> bool:
        """False while down and before the next retry time: skip the service, do not even connect."""
        return self._down_since is None or time.monotonic() >= self._retry_at

    def failed(self, error: BaseException | str) -> float:
        """A call failed: the first failure of an outage logs one warning; later ones only push the next
        retry back (doubling). Returns the seconds until the next retry."""
        with self._lock:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                self._delay = self.first_retry
                log.warning("%s 不可用（%s），%.1f 秒后重试（间隔逐次加倍，至多 %.0f 秒；期间不再记录）",
                            self.what, _summary(error), self._delay, self.max_retry)
            elif now < self._retry_at:
                return self._retry_at - now  # another caller already failed in this window
            else:
                self._delay = min(self._delay * 2, self.max_retry)
            self._retry_at = now + self._delay
            return self._delay

    def recovered(self) -> None:
        """A call succeeded: if the service was down, say once that it is back."""
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            lasted = time.monotonic() - self._down_since
            self._down_since = None
            self._delay = self.first_retry
            self._retry_at = 0.0
        log.info("%s 已恢复（中断约 %.0f 秒）", self.what, lasted)


def _summary(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)


_registry: dict[str, Outage] = {}
_registry_lock = threading.Lock()


def redis_outage(url: str) -> Outage:
    """The process's one Outage for the Redis at `url` (shared by every user of that Redis)."""
    with _registry_lock:
        outage = _registry.get(url)
        if outage is None:
            outage = _registry[url] = Outage("Redis")
        return outage


class FallbackCounters:
    """Fixed-window counters (the `limits` library) kept in Redis when `redis_url` is set, so every process counts
    together — or, while Redis is away, in this process's memory: the caller keeps working and stays limited, and
    the outage is logged once (above) rather than failing each request. Used by the sign-in throttle and the
    citizens' page."""

    def __init__(self, redis_url: str | None):
        from limits.storage import storage_from_string
        from limits.strategies import FixedWindowRateLimiter

        self.redis_url = redis_url
        self.limiter = FixedWindowRateLimiter(storage_from_string(redis_url or "memory://"))
        self.local = FixedWindowRateLimiter(storage_from_string("memory://")) if redis_url else self.limiter

    def counted(self, use):
        """`use(limiter)` on Redis's counters, or on this process's while Redis is away."""
        if not self.redis_url:
            return use(self.limiter)
        outage = redis_outage(self.redis_url)
        if outage.may_try():
            try:
                result = use(self.limiter)
            except Exception as exc:  # noqa: BLE001 - Redis away: count here meanwhile
                outage.failed(exc)
            else:
                outage.recovered()
                return result
        return use(self.local)
