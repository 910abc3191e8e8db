"""Indicator readings repository: batches stored once per (code, ts), range reads, the latest value and the one a day before."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from data.models import IndicatorReading

READINGS = IndicatorReading.__table__
_ROWS_PER_STATEMENT = 5000  # rows a call (SQLAlchemy splits them into statements within the driver's limits)


def insert_readings(session: Session, rows: list[dict]) -> set[tuple[str, datetime]]:
    """rows {code, ts, value, unit, source, received_at} (ts aware UTC, whole milliseconds), each (code, ts) once:
    a reading already stored is skipped (ON CONFLICT DO NOTHING). Returns the (code, ts) keys inserted."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (insert(READINGS).on_conflict_do_nothing(index_elements=["code", "ts"])
            .returning(READINGS.c.code, READINGS.c.ts))
    inserted: set[tuple[str, datetime]] = set()
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        # executemany: SQLAlchemy batches the rows into multi-row INSERTs ("insertmanyvalues"), RETURNING kept
        inserted.update((code, ts) for code, ts in session.execute(stmt, rows[i:i + _ROWS_PER_STATEMENT]))
    return inserted

def read_series(session: Session, code: str, start: datetime | None = None, end: datetime | None = None,
                limit: int = 20_000) -> list[tuple[datetime, float, str, str]]:
    """(ts, value, unit, source) of an indicator with start <= ts < end, oldest first (the primary key's range)."""
    q = select(READINGS.c.ts, READINGS.c.value, READINGS.c.unit, READINGS.c.source).where(READINGS.c.code == code)
    if start is not None:
        q = q.where(READINGS.c.ts >= start)
    if end is not None:
        q = q.where(READINGS.c.ts < end)
    return [tuple(r) for r in session.execute(q.order_by(READINGS.c.ts).limit(limit))]


def latest_before(session: Session, code: str, before: datetime | None = None) -> tuple | None:
    """(ts, value, unit, source) of the newest reading of `code` at or before `before` (None: the newest of all)."""
    q = select(READINGS.c.ts, READINGS.c.value, READINGS.c.unit, READINGS.c.source).where(READINGS.c.code == code)
    if before is not None:
        q = q.where(READINGS.c.ts <= before)
    row = session.execute(q.order_by(READINGS.c.ts.desc()).limit(1)).first()
    return tuple(row) if row is not None else None


def newest_ts(session: Session) -> datetime | None:
    """The newest reading's time over every indicator (the demo feeder resumes from it)."""
    return session.execute(select(func.max(READINGS.c.ts))).scalar()


def reading_count(session: Session, code: str | None = None) -> int:
    q = select(func.count()).select_from(READINGS)
    if code is not None:
        q = q.where(READINGS.c.code == code)
    return session.execute(q).scalar_one()
