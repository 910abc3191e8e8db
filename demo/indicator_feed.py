"""The demo feeder of the city's vital signs: realistic series (rush hours, demand dips, weekend crowds) through the real ingest.

`IndicatorSeries.value(at)` is pure and deterministic: the value of a series at a time depends on the seed, the
series and the time only (data/demo_indicator_feed.json: base x daily shape x weekly shape x a slow wobble x a
little noise, clipped to the catalog's range), so a backfill and the live feed agree reading for reading and a
re-run is a duplicate, not a second value. Readings fall on the clock (every `every_s` seconds of epoch time).
`IndicatorFeeder` hands them to sensing.indicators.IndicatorIngest: `catch_up` fills the last `backfill_days`
(what is missing since the newest stored reading), `step` adds what fell due since (scheduler.start_indicator_feed).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from dispatch.city_time import CITY_TZ
from dispatch.indicators import IndicatorCatalog, IndicatorSpec

DAY_S = 86400.0


@dataclass(frozen=True)
class IndicatorSeries:
    spec: IndicatorSpec
    source: str
    every_s: int
    base: float
    daily: tuple[float, ...]
    daily_weekend: tuple[float, ...] | None
    weekly: tuple[float, ...]
    noise: float
    wobble: float
    wobble_days: float
    seed: int

    @property
    def phase(self) -> float:
        return (zlib.crc32(self.spec.code.encode()) % 1000) / 1000 * 2 * math.pi

    def shape(self, at: datetime) -> float:
        """The series' deterministic shape at `at` (no noise): daily x weekly, city time."""
        local = at.astimezone(CITY_TZ)
        weekend = local.weekday() >= 5
        daily = self.daily_weekend if weekend and self.daily_weekend else self.daily
        h = local.hour + local.minute / 60 + local.second / 3600
        i = int(h) % 24
        frac = h - int(h)
        return (daily[i] * (1 - frac) + daily[(i + 1) % 24] * frac) * self.weekly[local.weekday()]

    def value(self, at: datetime) -> float:
        t = at.timestamp()
        slot = int(t // self.every_s)
        noise = np.random.default_rng([self.seed, zlib.crc32(self.spec.code.encode()), slot]).normal()
        wobble = 1 + self.wobble * math.sin(2 * math.pi * t / (self.wobble_days * DAY_S) + self.phase)
        v = self.base * self.shape(at) * wobble * (1 + self.noise * noise)
        v = min(self.spec.high, max(self.spec.low, v))
        return round(v, self.spec.decimals)

    def times(self, start: datetime, end: datetime) -> list[datetime]:
        """The reading times of the series with start < ts <= end (on the clock: multiples of every_s)."""
        first = math.floor(start.timestamp() / self.every_s) + 1
        last = math.floor(end.timestamp() / self.every_s)
        return [datetime.fromtimestamp(k * self.every_s, tz=timezone.utc) for k in range(first, last + 1)]


def load_series(settings: dict, catalog: IndicatorCatalog) -> list[IndicatorSeries]:
    """The series of data/demo_indicator_feed.json, for codes of the catalog (a code the catalog lacks: ValueError)."""
    seed = int(settings.get("seed", 0))
    out = []
    for code, p in settings["series"].items():
        spec = catalog.get(code)
        if spec is None:
            raise ValueError(f"demo_indicator_feed.json: 指标 {code} 不在 city_indicators.json 中")
        if not str(p["source"]).startswith(catalog.demo_source_prefix):
            raise ValueError(f"demo_indicator_feed.json: 指标 {code} 的 source 须以 {catalog.demo_source_prefix} 开头")
        daily = tuple(float(x) for x in p["daily"])
        weekend = tuple(float(x) for x in p["daily_weekend"]) if p.get("daily_weekend") else None
        weekly = tuple(float(x) for x in p.get("weekly", [1.0] * 7))
        if len(daily) != 24 or (weekend and len(weekend) != 24) or len(weekly) != 7:
            raise ValueError(f"demo_indicator_feed.json: 指标 {code} 的 daily 应为 24 个数，weekly 应为 7 个数")
        out.append(IndicatorSeries(spec, p["source"], int(p["every_s"]), float(p["base"]), daily, weekend, weekly,
                                   float(p.get("noise_pct", 0)) / 100, float(p.get("wobble_pct", 0)) / 100,
                                   float(p.get("wobble_days", 7)), seed))
    return out


class IndicatorFeeder:
    """Drives the demo series through the real ingest (sensing.indicators.IndicatorIngest)."""

    def __init__(self, ingest, clock, settings: dict | None = None):
        from data import files

        self.ingest, self.clock = ingest, clock
        self.settings = settings or files.demo_indicator_feed()
        self.series = load_series(self.settings, ingest.catalog)
        self.backfill = timedelta(days=float(self.settings.get("backfill_days", 7)))
        self.round_s = float(min(s.every_s for s in self.series)) if self.series else 300.0
        self._last: dict[str, datetime] = {}

    def readings(self, s: IndicatorSeries, start: datetime, end: datetime) -> list:
        from sensing.indicators import Reading

        return [Reading(s.spec.code, ts, s.value(ts), s.spec.unit, s.source) for ts in s.times(start, end)]

    def catch_up(self, now: datetime | None = None) -> int:
        """The last `backfill_days` of every series, from its newest stored reading on (a fresh database: all of
        them; a restart: the gap while the server was down); how many readings were stored."""
        now = now or self.clock()
        floor = now - self.backfill
        stored = 0
        for s in self.series:
            have = self.ingest.latest(s.spec.code)
            start = max(floor, have[0]) if have is not None and have[0] <= now else floor
            batch = self.readings(s, start, now)
            if batch:
                stored += self.ingest.store_readings(batch, now)[0]
            self._last[s.spec.code] = now
        return stored

    def step(self, now: datetime | None = None) -> int:
        """What fell due since the last call (the first call catches up); how many readings were stored."""
        now = now or self.clock()
        if not self._last:
            return self.catch_up(now)
        batch = []
        for s in self.series:
            last = self._last.get(s.spec.code, now - timedelta(seconds=s.every_s))
            batch += self.readings(s, min(last, now), now)
            self._last[s.spec.code] = max(last, now)
        return self.ingest.store_readings(batch, now)[0] if batch else 0
