"""The citizens' page's limits: reports per client address and per phone, failed follow-ups per address and per
ticket number, and the single use of a human check — counted in Redis when REDIS_URL is set (every process
together), else in this process (limits' storages)."""
from __future__ import annotations

import math
import time
from typing import Callable, Iterable, TypeVar

from limits import RateLimitItem, parse, parse_many
from limits.strategies import FixedWindowRateLimiter

from web.outage import FallbackCounters

T = TypeVar("T")
Keyed = tuple[Iterable[RateLimitItem], tuple[str, ...]]


class PublicThrottle:
    """`settings`: config.Settings (its public_* limits). While Redis is away the counts live in this process's
    memory meanwhile: the page keeps working and stays limited, and the outage is logged once (web/outage.py)."""

    def __init__(self, redis_url: str | None, report_address: str, report_phone: str, follow_address: str,
                 follow_number: str, check_ttl_s: int):
        self.counters = FallbackCounters(redis_url)
        self.report_address, self.report_phone = parse_many(report_address), parse_many(report_phone)
        self.follow_address, self.follow_number = parse_many(follow_address), parse_many(follow_number)
        # a check's nonce may be hit once in a window longer than the check lives: a second use always fails
        self.once = parse(f"1 per {max(60, check_ttl_s) + 60} seconds")

    @classmethod
    def from_settings(cls, settings, check_ttl_s: int) -> "PublicThrottle":
        return cls(settings.redis_url, settings.public_report_address_limit, settings.public_report_phone_limit,
                   settings.public_follow_address_limit, settings.public_follow_number_limit, check_ttl_s)

    def _counted(self, use: Callable[[FixedWindowRateLimiter], T]) -> T:
        return self.counters.counted(use)

    def _wait(self, keyed: list[Keyed]) -> int:
        def wait(limiter: FixedWindowRateLimiter) -> int:
            longest = 0
            for items, keys in keyed:
                for item in items:
                    if not limiter.test(item, *keys):
                        reset_at = limiter.get_window_stats(item, *keys).reset_time
                        longest = max(longest, max(1, math.ceil(reset_at - time.time())))
            return longest

        return self._counted(wait)

    def _hit(self, keyed: list[Keyed]) -> None:
        def hit(limiter: FixedWindowRateLimiter) -> None:
            for items, keys in keyed:
                for item in items:
                    limiter.hit(item, *keys)

        self._counted(hit)

    # reports: every try counts against the address; an accepted report against its phone
    def report_wait(self, address: str, phone: str | None) -> int:
        """0 when this address (and phone, when known) may report now; else the seconds until it may."""
        keyed: list[Keyed] = [(self.report_address, ("public-report-address", address or "?"))]
        if phone:
            keyed.append((self.report_phone, ("public-report-phone", phone)))
        return self._wait(keyed)

    def report_tried(self, address: str) -> None:
        self._hit([(self.report_address, ("public-report-address", address or "?"))])

    def report_accepted(self, phone: str) -> None:
        self._hit([(self.report_phone, ("public-report-phone", phone))])

    # follow-ups: only the failed ones count, per address and per number tried
    def follow_wait(self, address: str, number: str) -> int:
        return self._wait([(self.follow_address, ("public-follow-address", address or "?")),
                           (self.follow_number, ("public-follow-number", number[:24] or "?"))])

    def follow_failed(self, address: str, number: str) -> None:
        self._hit([(self.follow_address, ("public-follow-address", address or "?")),
                   (self.follow_number, ("public-follow-number", number[:24] or "?"))])

    def first_use(self, nonce: str) -> bool:
        """True the first time a human check's nonce is used, False ever after (within its life)."""
        return self._counted(lambda limiter: limiter.hit(self.once, "public-check", nonce))


def wait_text(seconds: int) -> str:
    """“3 分钟” / “40 秒”: how long a limited person waits, in words."""
    return f"{-(-seconds // 60)} 分钟" if seconds >= 60 else f"{seconds} 秒"
