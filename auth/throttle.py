"""The sign-in throttle: failed sign-ins counted per address and name, and per address across all
names (one password tried on every user), in Redis when REDIS_URL is set (shared by the processes)."""
from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter


class LoginThrottle:
    """`per_name`, `per_address`: limits' syntax ("10 per minute"), from config.Settings."""

    def __init__(self, storage_url: str, per_name: str, per_address: str):
        self.limiter = FixedWindowRateLimiter(storage_from_string(storage_url))
        self.rules = ((parse(per_name), "login-name", True), (parse(per_address), "login-address", False))

    def _keys(self, address: str, name: str):
        for limit, namespace, by_name in self.rules:
            yield limit, (namespace, address or "?", name.strip().lower()) if by_name else (namespace, address or "?")

    def wait_seconds(self, address: str, name: str) -> int:
        """0 when another try is allowed; otherwise the seconds until the fullest window resets."""
        wait = 0
        for limit, keys in self._keys(address, name):
            if not self.limiter.test(limit, *keys):
                reset_at = self.limiter.get_window_stats(limit, *keys).reset_time
                wait = max(wait, max(1, math.ceil(reset_at - time.time())))
        return wait

    def failed(self, address: str, name: str) -> None:
        for limit, keys in self._keys(address, name):
            self.limiter.hit(limit, *keys)
