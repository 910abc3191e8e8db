"""The demo feeder of the city's vital signs: its daily and weekly shapes (rush hours, demand dips, the afternoon power
peak, weekend crowds), deterministic values within the catalog's ranges, and a backfill through the real ingest
that a restart resumes without writing anything twice."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from data import files
from data.indicator_readings import reading_count
from demo.indicator_feed import IndicatorFeeder, load_series
from dispatch.city_time import CITY_TZ
from sensing.indicators import IndicatorIngest

WEDNESDAY = datetime(2026, 12, 2, tzinfo=CITY_TZ)
SATURDAY = datetime(2026, 12, 5, tzinfo=CITY_TZ)


def series():
    return {s.spec.code: s for s in load_series(files.demo_indicator_feed(), files.city_indicators())}


def mean(s, day: datetime, hour: float, days: int = 3) -> float:
    """The mean of the series at `hour` over `days` like days (weekdays a week apart), smoothing its noise."""
    vals = [s.value(day + timedelta(weeks=k, hours=hour)) for k in range(days)]
    return sum(vals) / len(vals)


def test_the_daily_and_weekly_shapes():
    sr = series()
    c = sr["congestion_index"]
    assert mean(c, WEDNESDAY, 8) > 1.5 * mean(c, WEDNESDAY, 3)          # the morning rush
    assert mean(c, WEDNESDAY, 18) > 1.5 * mean(c, WEDNESDAY, 3)         # the evening rush
    assert mean(c, WEDNESDAY, 8) > mean(c, SATURDAY, 8)                 # no rush on Saturday morning
    assert mean(sr["road_speed"], WEDNESDAY, 8) < mean(sr["road_speed"], WEDNESDAY, 3)
    w = sr["water_pressure"]
    assert mean(w, WEDNESDAY, 7.5) < 0.85 * mean(w, WEDNESDAY, 3)       # morning demand dip
    assert mean(w, WEDNESDAY, 19) < 0.85 * mean(w, WEDNESDAY, 3)        # evening demand dip
    p = sr["power_load"]
    assert mean(p, WEDNESDAY, 15) > max(mean(p, WEDNESDAY, 9), mean(p, WEDNESDAY, 3), mean(p, WEDNESDAY, 21))
    assert mean(p, SATURDAY, 15) < mean(p, WEDNESDAY, 15)
    t = sr["tourist_flow"]
    assert mean(t, SATURDAY, 14) > 2 * mean(t, WEDNESDAY, 14)          # weekend crowds
    assert mean(t, WEDNESDAY, 3) == 0                                   # parks are closed at night
    aqi = sr["aqi"]
    assert 20 < mean(aqi, WEDNESDAY, 12) < 150


def test_values_are_deterministic_on_the_clock_and_within_range():
    a, b = series(), series()
    for code, s in a.items():
        times = s.times(WEDNESDAY, WEDNESDAY + timedelta(days=7))
        assert len(times) == 7 * 86400 // s.every_s
        assert all(t.timestamp() % s.every_s == 0 for t in times)
        values = [s.value(t) for t in times]
        assert values == [b[code].value(t) for t in times]
        assert all(s.spec.low <= v <= s.spec.high for v in values), code
        assert len(set(values)) > 1
        assert s.source.startswith(files.city_indicators().demo_source_prefix)


def test_backfill_and_resume_through_the_ingest(empty_db):
    now = datetime(2026, 12, 7, 4, 2, 30, tzinfo=timezone.utc)
    ingest = IndicatorIngest(empty_db, files.city_indicators)
    feeder = IndicatorFeeder(ingest, lambda: now)
    n = feeder.catch_up(now)
    per_day = sum(86400 // s.every_s for s in feeder.series)
    assert n == 7 * per_day
    assert IndicatorFeeder(ingest, lambda: now).catch_up(now) == 0  # a restart writes nothing twice
    later = now + timedelta(minutes=10)
    assert feeder.step(later) == sum(1 for s in feeder.series for _ in s.times(now, later))
    assert feeder.step(later) == 0
    resumed = IndicatorFeeder(ingest, lambda: later + timedelta(hours=1))
    assert resumed.step() == sum(len(s.times(later, later + timedelta(hours=1))) for s in resumed.series)
    with empty_db.session() as s:
        assert reading_count(s, "congestion_index") == 7 * 288 + 2 + 12


def test_the_scheduler_runs_the_feeder_in_process(empty_db):
    """With the simulators on, scheduler.start_indicator_feed backfills at once and keeps feeding (a thread)."""
    import threading
    import time
    from types import SimpleNamespace

    from scheduler import start_indicator_feed

    now = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)
    services = SimpleNamespace(indicators=IndicatorIngest(empty_db, files.city_indicators),
                               cases=SimpleNamespace(clock=lambda: now))
    stop = threading.Event()
    thread = start_indicator_feed(services, stop)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with empty_db.session() as s:
                if reading_count(s, "power_load") == 7 * 288:
                    break
            time.sleep(0.1)
        with empty_db.session() as s:
            assert reading_count(s, "power_load") == 7 * 288
    finally:
        stop.set()
        thread.join(10)
