"""Each day's type for the forecasts and the surge check: weekday, working day, public holiday (放假), make-up
working day (调休上班), from the working-time calendar (data/calendar/holidays_cn.json)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Iterable

import numpy as np

# the columns of day_features, in order
COLUMNS = ("weekday", "working", "holiday", "makeup")
WEEKDAY, WORKING, HOLIDAY, MAKEUP = range(4)
# a day's type in one word (the hour-of-day profile is kept per type)
DAY_TYPES = ("workday", "weekend", "holiday", "makeup")


def _as_date(d) -> date:
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    if isinstance(d, np.datetime64):
        return date.fromisoformat(str(d.astype("datetime64[D]")))
    if hasattr(d, "date"):  # a pandas Timestamp
        return d.date()
    return date.fromisoformat(str(d))


def day_features(dates: Iterable, calendar) -> np.ndarray:
    """An int array, one row per date, columns COLUMNS: weekday (0 Monday … 6 Sunday), 1 on a working day (a
    make-up working day included), 1 on a public holiday (every day of a 放假 range, weekends included), 1 on a
    make-up working day (a Saturday or Sunday worked in exchange). `calendar`: a dispatch.working_time.WorkCalendar
    (data.files.calendar())."""
    days = [_as_date(d) for d in dates]
    out = np.zeros((len(days), len(COLUMNS)), dtype=np.int64)
    for i, d in enumerate(days):
        out[i, WEEKDAY] = d.weekday()
        out[i, WORKING] = calendar.is_working_day(d)
        out[i, HOLIDAY] = d in calendar.holidays
        out[i, MAKEUP] = d in calendar.workdays
    return out


def day_types(features: np.ndarray) -> np.ndarray:
    """Each row's type in DAY_TYPES: a holiday, a make-up working day, an ordinary working day, or a weekend day."""
    out = np.where(features[:, WORKING] == 1, "workday", "weekend").astype(object)
    out[features[:, MAKEUP] == 1] = "makeup"
    out[features[:, HOLIDAY] == 1] = "holiday"
    return out
