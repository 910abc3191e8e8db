"""Cases reported per area, kind or category and per local hour or day: the series forecasts and warnings read."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo

import pandas as pd
from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from data.models import Area, Case
from dispatch.city_time import CITY_TZ
from figures.period import _zone

UTC = timezone.utc
BYS = ("city", "district", "street", "community", "grid", "kind", "category")
LEVEL_OF = {"street": 3, "community": 4}  # the hierarchy's levels a grid's count is rolled up to


_FORMATS = {"hour": ("%Y-%m-%d %H", "YYYY-MM-DD HH24"), "day": ("%Y-%m-%d", "YYYY-MM-DD")}


def _local_bucket(dialect: str, offset_hours: float, bucket: str):
    """The local hour or day a case was reported in, as text, computed in the database. The city's zone is read as a
    fixed offset (China keeps no daylight saving time; a city that does would see its switch hours off by one)."""
    sqlite_format, pg_format = _FORMATS[bucket]
    if dialect == "sqlite":
        return func.strftime(sqlite_format, Case.reported_at, f"{offset_hours:+g} hours")
    shifted = Case.reported_at + literal_column(f"interval '{offset_hours:g} hours'")
    return func.to_char(shifted, pg_format)


def _key(by: str):
    """The column a count is grouped by (a street's or community's count is its grids', rolled up in _roll_up)."""
    if by == "city":
        return literal_column("'city'")
    if by == "district":
        return Case.district_code
    if by in ("grid", "street", "community"):
        return Case.grid_code
    if by == "kind":
        return Case.kind
    if by == "category":
        return Case.category_code
    raise ValueError(f"by must be one of {', '.join(BYS)}")


def ancestor_of_grids(s: Session, level: int) -> dict[str, str]:
    """Each grid's ancestor at `level` (3 street, 4 community), through the hierarchy: an imported city's codes
    need not nest as the demo's do."""
    parent = dict(s.execute(select(Area.code, Area.parent_code)).all())
    levels = dict(s.execute(select(Area.code, Area.level)).all())
    out = {}
    for code, lvl in levels.items():
        if lvl != 5:
            continue
        up = code
        while up is not None and levels.get(up, 0) > level:
            up = parent.get(up)
        if up is not None and levels.get(up) == level:
            out[code] = up
    return out


def _roll_up(s: Session, frame: pd.DataFrame, level: int, bucket: str) -> pd.DataFrame:
    frame["key"] = frame["key"].map(ancestor_of_grids(s, level))
    return frame.dropna(subset=["key"]).groupby(["key", bucket], as_index=False)["count"].sum()


def _counts(s: Session, by: str, start: datetime, end: datetime, where, zone: tzinfo, bucket: str) -> pd.DataFrame:
    offset = zone.utcoffset(end.replace(tzinfo=None)) or timedelta(0)
    dialect = s.get_bind().dialect.name
    at = _local_bucket(dialect, offset.total_seconds() / 3600, bucket).label(bucket)
    key = _key(by).label("key")
    q = (select(key, at, func.count().label("count"))
         .where(Case.reported_at >= start.astimezone(UTC), Case.reported_at < end.astimezone(UTC), *where)
         .group_by(*((at,) if by == "city" else (key, at))))
    frame = pd.DataFrame(s.execute(q).all(), columns=["key", bucket, "count"])
    frame[bucket] = pd.to_datetime(frame[bucket], format=_FORMATS[bucket][0])
    frame["count"] = frame["count"].astype("int64")
    if by in LEVEL_OF:
        frame = _roll_up(s, frame, LEVEL_OF[by], bucket)
    return frame


def hourly_counts(s: Session, by: str, start: datetime, end: datetime, where=(), tz: str | tzinfo = CITY_TZ,
                  ) -> pd.DataFrame:
    """Cases reported in [start, end) per `by` key and local hour: columns key, hour (naive local datetime), count;
    hours without a case are absent. Every report counts, a duplicate merged into another case too (a report is a
    report: the load the center took in); `where` narrows the cases (e.g. one district)."""
    return _counts(s, by, start, end, where, _zone(tz), "hour")


def daily_counts(s: Session, by: str, first: date, last: date, where=(), tz: str | tzinfo = CITY_TZ) -> pd.DataFrame:
    """Cases reported per `by` key and local day from `first` to `last` (both included): columns key, day (a
    datetime64 at local midnight), count; days without a case are absent (the caller reindexes)."""
    zone = _zone(tz)
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    return _counts(s, by, start, end, where, zone, "day")


def case_ids(s: Session, start: datetime, end: datetime, where=(), limit: int = 500) -> list[int]:
    """The ids of the cases reported in [start, end) that `where` selects, newest first (a warning's evidence)."""
    q = (select(Case.id).where(Case.reported_at >= start.astimezone(UTC), Case.reported_at < end.astimezone(UTC),
                               *where).order_by(Case.reported_at.desc()).limit(limit))
    return list(s.scalars(q))


def grid_category_counts(s: Session, start: datetime, end: datetime, where=(), split=None) -> pd.DataFrame:
    """Cases reported in [start, end) per grid and category: columns grid, category, count (pairs without a case
    are absent). The surge check's shares (a street's or a grid's part of its district's history) and its
    observed counts are sums of these. `split`: a condition on the case (e.g. reported on a day off); the counts
    are then also per its value, in a column `part` (1 where it holds, else 0), from the same single read."""
    cols = [Case.grid_code, Case.category_code]
    if split is not None:
        cols.append(case((split, 1), else_=0).label("part"))
    q = (select(*cols, func.count())
         .where(Case.reported_at >= start.astimezone(UTC), Case.reported_at < end.astimezone(UTC), *where)
         .group_by(*cols))
    names = ["grid", "category"] + (["part"] if split is not None else []) + ["count"]
    frame = pd.DataFrame([tuple(r) for r in s.execute(q)], columns=names)
    frame["count"] = frame["count"].astype("int64")
    return frame
