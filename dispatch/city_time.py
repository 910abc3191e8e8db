"""The city's time zone, defined once: times are stored in UTC and shown, and counted, in it.

Working time counts in the calendar's own zone (data/calendar/office_hours.json, the same zone for
every Chinese city); days of a period, "today" and every time shown to a person are in CITY_TZ.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc


def local(dt: datetime) -> datetime:
    """An aware time as the city's wall clock shows it."""
    return dt.astimezone(CITY_TZ)


def local_iso(dt: datetime | None) -> str | None:
    """ISO 8601 with the city's offset, to the second (how the API and the pages show times)."""
    return dt.astimezone(CITY_TZ).isoformat(timespec="seconds") if dt else None


def city_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(CITY_TZ).date()


def day_start(day: date) -> datetime:
    """00:00 of `day` in the city, in UTC."""
    return datetime.combine(day, time.min, CITY_TZ).astimezone(UTC)

