"""Working-time calendar: deadlines, elapsed working time, SLA states and the holiday data."""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from data import files
from data.files import CALENDAR_DIR, HOLIDAYS_PATH, OFFICE_HOURS_PATH
from dispatch.working_time import (
    WorkCalendar,
    clock_of,
    extension_unit,
    sla_state,
    working_deadline,
    working_time_between,
)

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
NAMES = {"元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"}
H, D, M = "working_hours", "working_days", "minutes"


def sh(*args) -> datetime:
    """A Shanghai wall-clock time, handed to the API in UTC (as stored)."""
    return datetime(*args, tzinfo=SH).astimezone(UTC)


def local(dt: datetime) -> datetime:
    return dt.astimezone(SH).replace(tzinfo=None)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.from_files(CALENDAR_DIR)


def deadline(cal, start, amount, unit):
    return local(cal.working_deadline(start, amount, unit))


# ------------------------------------------------------------------ office day and working days
def test_office_day(cal):
    assert cal.office_day_hours == 7.5
    periods = cal.working_periods(date(2025, 3, 3))  # Monday
    assert [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in periods] == [
        ("08:30", "12:00"), ("13:30", "17:30")]
    assert all(a.tzinfo is not None and a.utcoffset() == timedelta(hours=8) for a, _ in periods)
    assert cal.working_periods(date(2025, 3, 8)) == []      # Saturday
    assert cal.working_periods(date(2025, 10, 1)) == []     # 国庆节
    assert cal.is_working_time(sh(2025, 3, 3, 9))
    assert not cal.is_working_time(sh(2025, 3, 3, 12, 30))  # lunch break
    assert not cal.is_working_time(sh(2025, 3, 3, 17, 30))  # periods are [start, end)
    assert not cal.is_working_time(sh(2025, 3, 8, 9))       # Saturday


def test_working_days_weekends_holidays_and_makeup_days(cal):
    assert cal.is_working_day(date(2025, 3, 3))          # Monday
    assert not cal.is_working_day(date(2025, 3, 8))      # Saturday
    assert not cal.is_working_day(date(2025, 3, 9))      # Sunday
    assert not cal.is_working_day(date(2025, 10, 8))     # 国庆节、中秋节 (Wednesday)
    assert not cal.is_working_day(date(2026, 2, 23))     # 春节 2026 (Monday)
    assert cal.is_working_day(date(2026, 2, 14))         # 调休 Saturday
    assert cal.is_working_day(date(2025, 10, 11))        # 调休 Saturday
    assert cal.is_working_day(date(2025, 9, 28))         # 调休 Sunday
    assert cal.is_working_day(date(2024, 2, 9))          # 除夕 2024: not a holiday
    assert not cal.is_working_day(date(2025, 1, 28))     # 除夕 2025: a holiday (new rules)
    assert cal.is_working_day("2025-01-26")
    assert cal.holiday_name(date(2025, 1, 29)) == "春节"
    assert cal.holiday_name(date(2025, 1, 26)) == "春节"
    assert cal.holiday_name(date(2025, 3, 3)) is None
    # an aware datetime is judged by its Shanghai date: 2025-09-30 17:00 UTC = 10-01 01:00 +08
    assert not cal.is_working_day(datetime(2025, 9, 30, 17, tzinfo=UTC))


# ------------------------------------------------------------------ working hours
def test_four_and_two_working_hours_within_a_day(cal):
    assert deadline(cal, sh(2025, 3, 3, 8, 30), 4, H) == datetime(2025, 3, 3, 14, 0)
    assert deadline(cal, sh(2025, 3, 3, 10), 4, H) == datetime(2025, 3, 3, 15, 30)
    assert deadline(cal, sh(2025, 3, 3, 10), 2, H) == datetime(2025, 3, 3, 12, 0)  # earliest instant
    assert deadline(cal, sh(2025, 3, 3, 16), 2, H) == datetime(2025, 3, 4, 9, 0)
    assert deadline(cal, sh(2025, 3, 3, 9, 15), 0.25, H) == datetime(2025, 3, 3, 9, 30)


def test_deadline_across_a_weekend(cal):
    # Friday 16:00 + 4 h: 1.5 h on Friday, 2.5 h on Monday
    assert deadline(cal, sh(2025, 3, 7, 16), 4, H) == datetime(2025, 3, 10, 11, 0)
    assert deadline(cal, sh(2025, 3, 7, 16), 2, D) == datetime(2025, 3, 11, 16, 0)


def test_deadline_across_national_day_2025(cal):
    # 2025-10-01..08 off (国庆节、中秋节 merged); 10-11 (Saturday) is a working day
    assert deadline(cal, sh(2025, 9, 30, 16), 4, H) == datetime(2025, 10, 9, 11, 0)
    assert deadline(cal, sh(2025, 9, 30, 16), 3, D) == datetime(2025, 10, 11, 16, 0)
    assert cal.working_time_between(sh(2025, 9, 30, 17, 30), sh(2025, 10, 9, 8, 30), H) == 0


def test_deadline_across_spring_festival_2026(cal):
    # 2026-02-15..23 off; 02-14 and 02-28 (Saturdays) are working days
    assert deadline(cal, sh(2026, 2, 13, 16), 4, H) == datetime(2026, 2, 14, 11, 0)
    assert deadline(cal, sh(2026, 2, 14, 16), 4, H) == datetime(2026, 2, 24, 11, 0)
    assert deadline(cal, sh(2026, 2, 13, 15), 20, D) == datetime(2026, 3, 19, 15, 0)


def test_makeup_saturday_counts(cal):
    # 2025-10-10 (Friday) 16:00 + 4 h: 1.5 h Friday, 2.5 h on the make-up Saturday 10-11
    assert deadline(cal, sh(2025, 10, 10, 16), 4, H) == datetime(2025, 10, 11, 11, 0)
    # a case reported on the make-up Sunday 2025-09-28 is counted from that morning
    assert deadline(cal, sh(2025, 9, 28, 7), 2, H) == datetime(2025, 9, 28, 10, 30)
    # the same Saturday without the make-up rule would push the deadline to Monday
    plain = WorkCalendar(years=[2025])
    assert deadline(plain, sh(2025, 10, 10, 16), 4, H) == datetime(2025, 10, 13, 11, 0)


@pytest.mark.parametrize(
    "start, expected",
    [
        ((2025, 3, 4, 22, 0), (2025, 3, 5, 10, 30)),    # night
        ((2025, 3, 5, 6, 0), (2025, 3, 5, 10, 30)),     # early morning
        ((2025, 3, 4, 12, 30), (2025, 3, 4, 15, 30)),   # lunch break
        ((2025, 3, 4, 12, 0), (2025, 3, 4, 15, 30)),    # the minute the break starts
        ((2025, 3, 9, 10, 0), (2025, 3, 10, 10, 30)),   # Sunday
        ((2025, 3, 7, 17, 30), (2025, 3, 10, 10, 30)),  # Friday, closing time
        ((2025, 10, 3, 10, 0), (2025, 10, 9, 10, 30)),  # public holiday
    ],
)
def test_start_outside_office_hours(cal, start, expected):
    assert deadline(cal, sh(*start), 2, H) == datetime(*expected)


# ------------------------------------------------------------------ working days
def test_working_days_rule(cal):
    # N working days = N x 7.5 working hours: Monday 10:00 + 2 days = Wednesday 10:00
    assert deadline(cal, sh(2025, 3, 3, 10), 2, D) == datetime(2025, 3, 5, 10, 0)
    assert deadline(cal, sh(2025, 3, 3, 10), 2, D) == deadline(cal, sh(2025, 3, 3, 10), 15, H)
    assert deadline(cal, sh(2025, 3, 3, 8, 30), 1, D) == datetime(2025, 3, 3, 17, 30)
    assert deadline(cal, sh(2025, 3, 3, 17, 30), 1, D) == datetime(2025, 3, 4, 17, 30)
    assert deadline(cal, sh(2025, 3, 8, 11), 1, D) == datetime(2025, 3, 10, 17, 30)  # Saturday
    assert deadline(cal, sh(2025, 3, 3, 10), 0.5, D) == datetime(2025, 3, 3, 15, 15)


def test_seven_and_twenty_working_days(cal):
    # penalty decision 7 working days, demolition 20 working days (illegal construction)
    assert deadline(cal, sh(2025, 3, 3, 10), 7, D) == datetime(2025, 3, 12, 10, 0)
    assert deadline(cal, sh(2025, 3, 3, 10), 20, D) == datetime(2025, 3, 31, 10, 0)
    # 20 working days across 国庆 2025, counting the make-up days 09-28 and 10-11
    assert deadline(cal, sh(2025, 9, 22, 10), 20, D) == datetime(2025, 10, 24, 10, 0)
    # across 元旦 and 春节 2025 (01-01 and 01-28..02-04 off, 01-26 and 02-08 worked)
    assert deadline(cal, sh(2024, 12, 30, 9), 20, D) == datetime(2025, 1, 27, 9, 0)
    assert deadline(cal, sh(2024, 12, 30, 9), 25, D) == datetime(2025, 2, 10, 9, 0)


def test_long_spans(cal):
    start = sh(2024, 1, 2, 9)
    end = cal.working_deadline(start, 700, D)
    assert cal.working_time_between(start, end, D) == 700
    assert local(end).year == 2026


# ------------------------------------------------------------------ calendar minutes
def test_calendar_minutes_for_emergencies(cal):
    # across midnight
    assert deadline(cal, sh(2025, 3, 4, 23, 30), 60, M) == datetime(2025, 3, 5, 0, 30)
    # holidays and weekends do not matter
    assert deadline(cal, sh(2026, 2, 16, 23, 50), 30, M) == datetime(2026, 2, 17, 0, 20)
    assert deadline(cal, sh(2025, 10, 1, 12, 0), 90, M) == datetime(2025, 10, 1, 13, 30)
    assert deadline(cal, sh(2025, 3, 8, 3, 0), 15, M) == datetime(2025, 3, 8, 3, 15)
    assert cal.working_time_between(sh(2025, 9, 30, 23), sh(2025, 10, 1, 1), M) == 120


# ------------------------------------------------------------------ clocks (issue 14)
def test_units_name_their_clock():
    assert {u: clock_of(u) for u in ("working_hours", "working_days", "minutes", "hours", "days")} == {
        "working_hours": "working", "working_days": "working",
        "minutes": "calendar", "hours": "calendar", "days": "calendar"}
    assert extension_unit("working_days") == extension_unit("working_hours") == "working_hours"
    assert extension_unit("hours") == extension_unit("days") == extension_unit("minutes") == "hours"
    with pytest.raises(ValueError, match="weeks"):
        clock_of("weeks")


def test_calendar_clock_over_national_day(cal):
    # 井盖缺失 (2 h, calendar clock) reported on 30 September 2025 at 18:00: due at 20:00 that night,
    # not on 9 October as 2 working hours over the 国庆 holiday (10-01..10-08) would be
    start = sh(2025, 9, 30, 18, 0)
    assert deadline(cal, start, 2, "hours") == datetime(2025, 9, 30, 20, 0)
    assert deadline(cal, start, 2, H) == datetime(2025, 10, 9, 10, 30)     # what the working clock says
    assert deadline(cal, start, 1, "days") == datetime(2025, 10, 1, 18, 0)  # 1 day = 24 h, holiday or not
    assert deadline(cal, start, 3, "days") == datetime(2025, 10, 3, 18, 0)
    assert deadline(cal, start, 2, "hours") == deadline(cal, start, 120, M)
    assert cal.working_time_between(start, sh(2025, 10, 2, 18, 0), "hours") == 48
    assert cal.working_time_between(start, sh(2025, 10, 2, 18, 0), "days") == 2
    # the SLA state counts calendar time too: 1.6 h of 2 h is the 80 % warning, at night, on a holiday
    due = cal.working_deadline(start, 2, "hours")
    assert cal.sla_state(start, due, sh(2025, 9, 30, 19, 36), "hours") == ("warning", 0.8)
    assert cal.sla_state(start, due, sh(2025, 10, 1, 9, 0), "hours")[0] == "overdue"


@pytest.mark.parametrize("start, amount, unit, expected", [
    ((2025, 3, 7, 16, 30), 2, H, (2025, 3, 10, 9, 30)),     # Friday → over the weekend to Monday
    ((2025, 9, 30, 18, 0), 2, H, (2025, 10, 9, 10, 30)),    # over 国庆 2025
    ((2025, 10, 10, 17, 0), 2, H, (2025, 10, 11, 10, 0)),   # into the make-up working Saturday 10-11
    ((2025, 9, 26, 17, 0), 1, D, (2025, 9, 28, 17, 0)),     # make-up Sunday 09-28 counts as a working day
])
def test_working_clock_is_unchanged_across_weekends_holidays_and_makeup_days(cal, start, amount, unit, expected):
    assert deadline(cal, sh(*start), amount, unit) == datetime(*expected)


# ------------------------------------------------------------------ time zones
def test_utc_in_utc_out_counted_in_shanghai(cal):
    # Sunday 2025-03-02 23:00 UTC is Monday 07:00 in Changzhou: counting starts 08:30 +08
    start = datetime(2025, 3, 2, 23, 0, tzinfo=UTC)
    end = working_deadline(start, 2, H, calendar=cal)
    assert end.tzinfo == UTC
    assert end == datetime(2025, 3, 3, 2, 30, tzinfo=UTC)          # 10:30 +08
    # Monday 00:30 UTC = 08:30 +08; one working day later = 17:30 +08 = 09:30 UTC
    assert working_deadline(datetime(2025, 3, 3, 0, 30, tzinfo=UTC), 1, D,
                            calendar=cal) == datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
    # any aware zone is accepted and means the same instant
    ny = datetime(2025, 3, 2, 18, 0, tzinfo=ZoneInfo("America/New_York"))  # = 23:00 UTC
    assert working_deadline(ny, 2, H, calendar=cal) == end
    assert working_deadline(start.astimezone(SH), 30, M, calendar=cal).tzinfo == UTC


# ------------------------------------------------------------------ inverse
def test_working_time_between(cal):
    assert cal.working_time_between(sh(2025, 3, 3, 10), sh(2025, 3, 3, 15, 30), H) == 4
    assert cal.working_time_between(sh(2025, 3, 3, 10), sh(2025, 3, 5, 10), D) == 2
    assert cal.working_time_between(sh(2025, 3, 3, 12), sh(2025, 3, 3, 13, 30), H) == 0  # lunch
    assert cal.working_time_between(sh(2025, 3, 7, 17, 30), sh(2025, 3, 10, 8, 30), H) == 0
    assert cal.working_time_between(sh(2025, 3, 5, 10), sh(2025, 3, 3, 10), D) == -2


@pytest.mark.parametrize("unit", [H, D, M])
def test_round_trip(cal, unit):
    rng = random.Random(20251001)
    lo = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    hi = datetime(2027, 10, 1, tzinfo=UTC).timestamp()
    for _ in range(3000):
        start = datetime.fromtimestamp(rng.uniform(lo, hi), tz=UTC).replace(microsecond=0)
        amount = {H: rng.choice([0.5, 1, 2, 4, 8, 24, rng.uniform(0, 300)]),
                  D: rng.choice([1, 2, 3, 5, 7, 10, 20, rng.uniform(0, 60)]),
                  M: rng.choice([5, 15, 30, 60, 120, rng.uniform(0, 10000)])}[unit]
        end = cal.working_deadline(start, amount, unit)
        assert end >= start
        assert cal.working_time_between(start, end, unit) == pytest.approx(amount, abs=1e-6)


def test_zero_amount_and_bad_arguments(cal):
    start = sh(2025, 3, 8, 10)   # Saturday
    assert cal.working_deadline(start, 0, H) == start
    with pytest.raises(ValueError, match="amount"):
        cal.working_deadline(start, -1, H)
    with pytest.raises(ValueError, match="amount"):
        cal.working_deadline(start, float("nan"), D)
    # ("hours" and "days" are the calendar clock's units since issue 14: unknown ones are refused)
    with pytest.raises(ValueError, match="unit"):
        cal.working_deadline(start, 1, "weeks")
    with pytest.raises(ValueError, match="unit"):
        cal.working_time_between(start, start, "working_weeks")


# ------------------------------------------------------------------ SLA state
def test_sla_warning_at_80_and_overdue_at_100_percent(cal):
    start = sh(2025, 3, 3, 8, 30)                      # exposed garbage: 4 working hours
    due = cal.working_deadline(start, 4, H)
    assert local(due) == datetime(2025, 3, 3, 14, 0)
    state = lambda *now: cal.sla_state(start, due, sh(*now), H)  # noqa: E731
    assert state(2025, 3, 3, 8, 30) == ("normal", 0.0)
    assert state(2025, 3, 3, 11, 30) == ("normal", 0.75)
    s, f = state(2025, 3, 3, 11, 41)
    assert s == "normal" and f < 0.8
    assert state(2025, 3, 3, 11, 42) == ("warning", pytest.approx(0.8))
    # the lunch break does not use time: still 3.5 h of 4 at 13:00
    assert state(2025, 3, 3, 13, 0) == ("warning", 0.875)
    assert state(2025, 3, 3, 14, 0) == ("overdue", 1.0)
    assert state(2025, 3, 4, 9, 0) == ("overdue", pytest.approx(1 + 4 / 4))  # 8 h used of 4


def test_sla_measured_in_working_time_over_a_weekend(cal):
    start = sh(2025, 3, 6, 8, 30)                      # Thursday, 2 working days
    due = cal.working_deadline(start, 2, D)
    assert local(due) == datetime(2025, 3, 7, 17, 30)
    # 80 % of 15 h = 12 h: Friday 12:00 is 11 h, 14:30 is 12 h
    assert sla_state(start, due, sh(2025, 3, 7, 12, 0), D, calendar=cal)[0] == "normal"
    assert sla_state(start, due, sh(2025, 3, 7, 14, 30), D, calendar=cal) == ("warning", 0.8)
    assert sla_state(start, due, sh(2025, 3, 8, 10, 0), D, calendar=cal) == ("overdue", 1.0)


def test_sla_calendar_minutes(cal):
    start = sh(2025, 10, 1, 23, 50)                    # emergency during the holiday
    due = cal.working_deadline(start, 30, M)
    assert cal.sla_state(start, due, start + timedelta(minutes=23), M)[0] == "normal"
    assert cal.sla_state(start, due, start + timedelta(minutes=24), M) == ("warning", 0.8)
    assert cal.sla_state(start, due, start + timedelta(minutes=30), M) == ("overdue", 1.0)
    assert cal.sla_state(start, due, start + timedelta(minutes=45), M) == ("overdue", 1.5)
    assert cal.sla_state(start, due, start - timedelta(minutes=5), M) == ("normal", 0.0)


# ------------------------------------------------------------------ naive datetimes
def test_naive_datetimes_are_refused(cal):
    naive = datetime(2025, 3, 3, 10)
    aware = sh(2025, 3, 3, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.working_deadline(naive, 4, H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.working_deadline(naive, 30, M)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.working_time_between(aware, naive, H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.sla_state(aware, aware, naive, H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_working_day(naive)
    with pytest.raises(ValueError, match="naive"):
        working_deadline(naive, 1, D, calendar=cal)


# ------------------------------------------------------------------ plain data and fallback
def test_calendar_from_plain_data():
    cal = WorkCalendar(holidays=["2030-10-01", date(2030, 10, 2)], workdays=["2030-09-29"],
                       periods=[("09:00", "12:00"), ("14:00", "18:00")], years=[2030])
    assert cal.office_day_hours == 7
    assert not cal.is_working_day(date(2030, 10, 1))
    assert cal.is_working_day(date(2030, 9, 29))        # a Sunday made a working day
    assert deadline(cal, sh(2030, 9, 30, 17), 2, H) == datetime(2030, 10, 3, 10, 0)
    with pytest.raises(ValueError, match="both"):
        WorkCalendar(holidays=["2030-10-01"], workdays=["2030-10-01"])
    with pytest.raises(ValueError, match="weekend"):
        WorkCalendar(workdays=["2030-10-03"])           # a Thursday
    with pytest.raises(ValueError, match="overlap"):
        WorkCalendar(periods=[("08:00", "12:00"), ("11:00", "13:00")])


def test_calendar_from_data_documents():
    hol = {"years": [{"year": 2030}], "days": [
        {"date": "2030-01-01", "name": "元旦", "type": "holiday"}]}
    office = {"timezone": "Asia/Shanghai", "weekend": ["Saturday", "Sunday"],
              "periods": [{"start": "08:30", "end": "12:00"}]}
    cal = WorkCalendar.from_data(hol, office)
    assert cal.office_day_hours == 3.5
    assert cal.holiday_name("2030-01-01") == "元旦"
    assert deadline(cal, sh(2029, 12, 31, 11), 2, H) == datetime(2030, 1, 2, 9, 30)


def test_years_without_data_fall_back_to_weekends(caplog):
    cal = WorkCalendar.from_files(CALENDAR_DIR)
    with caplog.at_level(logging.WARNING, logger="dispatch.working_time"):
        assert cal.is_working_day(date(2031, 10, 1))     # a Wednesday: no data for 2031
        assert not cal.is_working_day(date(2031, 10, 4))  # Saturday
        end = cal.working_deadline(sh(2031, 9, 30, 16), 4, H)
    assert local(end) == datetime(2031, 10, 1, 11, 0)
    assert "2031" in caplog.text and "weekends only" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dispatch.working_time"):
        cal.is_working_day(date(2031, 5, 1))
    assert "2031" not in caplog.text                     # warned once per year
    # a span running past the data (2027 -> 2028) does not crash either
    start = sh(2027, 12, 20, 9)
    assert cal.working_time_between(start, cal.working_deadline(start, 30, D), D) == 30


def test_the_shipped_calendar_is_loaded_once_per_process(monkeypatch):
    monkeypatch.setattr(files, "_calendar", None)
    loads = []
    real = WorkCalendar.from_files
    monkeypatch.setattr(WorkCalendar, "from_files", classmethod(lambda cls, d: loads.append(d) or real(d)))
    start = threading.Barrier(8)
    got = []

    def take():
        start.wait()
        got.append(files.calendar())

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [CALENDAR_DIR] and len({id(c) for c in got}) == 1 and got[0] is files.calendar()
    assert not files.calendar().is_working_day(date(2026, 10, 1))
    assert working_time_between(sh(2025, 3, 3, 10), sh(2025, 3, 5, 10), D, calendar=files.calendar()) == 2


def test_the_core_has_no_default_calendar():
    with pytest.raises(TypeError):
        working_time_between(sh(2025, 3, 3, 10), sh(2025, 3, 5, 10), D)  # required: no default in the core
    with pytest.raises(TypeError):
        WorkCalendar.from_files()


def test_fast_enough():
    cal = WorkCalendar.from_files(CALENDAR_DIR)
    starts = [sh(2025, 1, 2, 9) + timedelta(minutes=37 * i) for i in range(1000)]
    t0 = time.perf_counter()
    for i in range(20_000):
        cal.working_deadline(starts[i % 1000], 20 if i % 2 else 4, D if i % 2 else H)
    assert time.perf_counter() - t0 < 2.0   # measured ~0.07 s (about 300,000 calls/s)


# ------------------------------------------------------------------ the data file
@pytest.fixture(scope="module")
def holidays_doc():
    return json.loads(HOLIDAYS_PATH.read_text(encoding="utf-8"))


def test_data_every_year_present_with_a_source(holidays_doc):
    years = {y["year"]: y for y in holidays_doc["years"]}
    assert {2024, 2025, 2026, 2027} <= set(years)
    for y in years.values():
        assert y["source"]
        assert y["statutory_days"] == (11 if y["year"] <= 2024 else 13)
    assert years[2027]["provisional"] is True
    assert not any(years[y]["provisional"] for y in (2024, 2025, 2026))
    covered = {date.fromisoformat(e["date"]).year for e in holidays_doc["days"]}
    assert covered == set(years)


def test_data_entries_are_consistent(holidays_doc):
    days = holidays_doc["days"]
    dates = [e["date"] for e in days]
    assert len(dates) == len(set(dates)), "a date is listed twice (e.g. both holiday and workday)"
    assert dates == sorted(dates)
    for e in days:
        d = date.fromisoformat(e["date"])
        assert e["type"] in ("holiday", "workday"), e
        assert e["name"] in NAMES, e
        if e["type"] == "workday":
            assert d.weekday() >= 5, f"make-up working day {d} is not a weekend day"
        if d.year == 2027:
            assert e.get("provisional") is True and "update" in e.get("note", ""), e
        else:
            assert not e.get("provisional"), e


def test_data_holiday_counts_per_year_are_plausible(holidays_doc):
    years = {y["year"]: y for y in holidays_doc["years"]}
    for year, meta in years.items():
        entries = [e for e in holidays_doc["days"] if e["date"].startswith(str(year))]
        hol = [date.fromisoformat(e["date"]) for e in entries if e["type"] == "holiday"]
        work = [e for e in entries if e["type"] == "workday"]
        assert {e["name"] for e in entries if e["type"] == "holiday"} == NAMES, year
        assert 20 <= len(hol) <= 40, year
        assert len(work) <= 8, year
        # statutory days falling on a weekend are made up on weekdays, and every weekday
        # taken off beyond that is worked on a make-up day: weekday holidays - make-up = statutory
        weekday_holidays = sum(1 for d in hol if d.weekday() < 5)
        assert weekday_holidays - len(work) == meta["statutory_days"], year
        per_name = Counter(e["name"] for e in entries if e["type"] == "holiday")
        assert 1 <= per_name["元旦"] <= 3 and 7 <= per_name["春节"] <= 9, year
        assert per_name["国庆节"] + per_name["中秋节"] >= 7, year


def test_data_known_dates(holidays_doc):
    kind = {e["date"]: e["type"] for e in holidays_doc["days"]}

    def span(a, b):
        a, b = date.fromisoformat(a), date.fromisoformat(b)
        return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]

    # 2025 (new rules): 春节 01-28..02-04, make-up 01-26 and 02-08; 劳动节 05-01..05-05
    assert all(kind[d] == "holiday" for d in span("2025-01-28", "2025-02-04"))
    assert kind["2025-01-26"] == kind["2025-02-08"] == kind["2025-04-27"] == "workday"
    assert all(kind[d] == "holiday" for d in span("2025-05-01", "2025-05-05"))
    assert all(kind[d] == "holiday" for d in span("2025-10-01", "2025-10-08"))
    # 2026: 元旦 01-01..03 (04 worked), 春节 02-15..23 (02-14, 02-28 worked), 国庆 10-01..07
    assert all(kind[d] == "holiday" for d in span("2026-02-15", "2026-02-23"))
    assert kind["2026-01-04"] == kind["2026-02-14"] == kind["2026-02-28"] == "workday"
    assert kind["2026-05-09"] == kind["2026-09-20"] == kind["2026-10-10"] == "workday"
    # 2024: 春节 02-10..17 (02-04, 02-18 worked), 国庆 10-01..07 (09-29, 10-12 worked)
    assert all(kind[d] == "holiday" for d in span("2024-02-10", "2024-02-17"))
    assert kind["2024-02-04"] == kind["2024-02-18"] == kind["2024-10-12"] == "workday"
    assert "2024-02-09" not in kind


def test_office_hours_file():
    doc = json.loads(OFFICE_HOURS_PATH.read_text(encoding="utf-8"))
    assert doc["timezone"] == "Asia/Shanghai"
    assert [(p["start"], p["end"]) for p in doc["periods"]] == [("08:30", "12:00"), ("13:30", "17:30")]


@pytest.mark.parametrize("unit,amounts", [("working_hours", (0, 0.5, 1, 7.5, 24)), ("working_days", (1, 3)),
                                          ("minutes", (30,))])
def test_many_ends_within_their_limits_as_one_deadline_each_says(cal, unit, amounts):
    """ends_within (the assessment's batch check) answers what working_deadline answers pair by pair: over
    National Day and 调休 2025, nights and weekends, and ends exactly at a deadline or in the off-hours after it."""
    import random

    rng = random.Random(7)
    base = datetime(2025, 9, 20, tzinfo=timezone.utc)
    for amount in amounts:
        starts, ends = [], []
        for _ in range(3000):
            start = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
            due = cal.working_deadline(start, amount, unit)
            end = rng.choice([due, due - timedelta(microseconds=1), due + timedelta(microseconds=1),
                              due + timedelta(hours=rng.choice([1, 6, 14, 40])),  # off-hours right after, or later
                              start + timedelta(minutes=rng.randrange(0, 60 * 24 * 5)), start - timedelta(hours=1)])
            starts.append(start)
            ends.append(end)
        expected = [e <= cal.working_deadline(s, amount, unit) for s, e in zip(starts, ends)]
        assert cal.ends_within(starts, ends, amount, unit) == expected
        assert 0.2 < sum(expected) / len(expected) < 0.9  # both answers are exercised
    assert cal.ends_within([], [], 1, unit) == []
    with pytest.raises(ValueError):
        cal.ends_within([base], [base.replace(tzinfo=None)], 1, unit)
