"""The sign-in throttle: failed sign-ins counted per address and name, and per address across all
names (one password tried on every user), in Redis when REDIS_URL is set (shared by the processes)."""
from __future__ import annotations

import math
import time
from typing import Callable, TypeVar

from limits import parse
from limits.strategies import FixedWindowRateLimiter

from web.outage import FallbackCounters

T = TypeVar("T")


class LoginThrottle:
    """`per_name`, `per_address`: limits' syntax ("10 per minute"), from config.Settings.

    With `redis_url` the counts live in Redis (every process counts together) — or, while Redis is
    away, in this process's memory: sign-in keeps working and stays throttled, and the outage is
    logged once (web/outage.py) rather than as a 500 with a traceback per attempt."""

    def __init__(self, redis_url: str | None, per_name: str, per_address: str):
        self.counters = FallbackCounters(redis_url)
        self.rules = ((parse(per_name), "login-name", True), (parse(per_address), "login-address", False))

    def _keys(self, address: str, name: str):
        for limit, namespace, by_name in self.rules:
            yield limit, (namespace, address or "?", name.strip().lower()) if by_name else (namespace, address or "?")

    def _counted(self, use: Callable[[FixedWindowRateLimiter], T]) -> T:
        return self.counters.counted(use)

    def wait_seconds(self, address: str, name: str) -> int:
        """0 when another try is allowed; otherwise the seconds until the fullest window resets."""
        def wait(limiter: FixedWindowRateLimiter) -> int:
            longest = 0
            for limit, keys in self._keys(address, name):
                if not limiter.test(limit, *keys):
                    reset_at = limiter.get_window_stats(limit, *keys).reset_time
                    longest = max(longest, max(1, math.ceil(reset_at - time.time())))
            return longest

        return self._counted(wait)

    def failed(self, address: str, name: str) -> None:
        def hit(limiter: FixedWindowRateLimiter) -> None:
            for limit, keys in self._keys(address, name):
                limiter.hit(limit, *keys)

        self._counted(hit)
