"""Telemetry repository: a batch of readings stored once per (device, ts), the devices' last values, range reads, roll-up."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from data.models import Device, Telemetry, TelemetryHourly

_IN_CHUNK = 500  # ids per IN (…)
TELEMETRY = Telemetry.__table__
HOURLY = TelemetryHourly.__table__
DEVICES = Device.__table__


def _insert(session: Session, table):
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


def read_series(session: Session, device_id: str, start: datetime | None = None, end: datetime | None = None,
                limit: int = 10_000) -> list[tuple[datetime, dict]]:
    """A device's readings with start <= ts < end, oldest first (the primary key's range), at most `limit`."""
    q = select(TELEMETRY.c.ts, TELEMETRY.c["values"]).where(TELEMETRY.c.device_id == device_id)
    if start is not None:
        q = q.where(TELEMETRY.c.ts >= start)
    if end is not None:
        q = q.where(TELEMETRY.c.ts < end)
    return [(ts, values) for ts, values in session.execute(q.order_by(TELEMETRY.c.ts).limit(limit))]


def read_hourly(session: Session, device_id: str, start: datetime | None = None,
                end: datetime | None = None) -> list[tuple]:
    """A device's hourly roll-ups (hour, key, min, max, avg, count) with start <= hour < end, by hour and key."""
    q = select(HOURLY.c.hour, HOURLY.c.key, HOURLY.c.min, HOURLY.c.max, HOURLY.c.avg, HOURLY.c.count).where(
        HOURLY.c.device_id == device_id)
    if start is not None:
        q = q.where(HOURLY.c.hour >= start)
    if end is not None:
        q = q.where(HOURLY.c.hour < end)
    return [tuple(r) for r in session.execute(q.order_by(HOURLY.c.hour, HOURLY.c.key))]


def roll_up_chunk(session: Session, cutoff: datetime, limit: int = 20_000) -> int:
    """Roll up to `limit` of the oldest raw rows before `cutoff` into telemetry_hourly and delete them, in the
    caller's transaction; returns how many raw rows went (0: nothing left before the cutoff). The rows rolled up
    are the ones this transaction deleted (DELETE … RETURNING), so two processes running it at once never count
    a row twice. An hour split over two chunks merges into its hourly row (min of mins, max of maxes, the
    count-weighted mean): the result does not depend on the chunking. Numbers and flags (as 0/1) are rolled up;
    strings are not kept."""
    keys = [tuple(k) for k in session.execute(select(TELEMETRY.c.device_id, TELEMETRY.c.ts)
                                               .where(TELEMETRY.c.ts < cutoff)
                                               .order_by(TELEMETRY.c.ts, TELEMETRY.c.device_id).limit(limit))]
    if not keys:
        return 0
    acc: dict[tuple, list] = {}
    for i in range(0, len(keys), _IN_CHUNK):
        gone = session.execute(delete(TELEMETRY).where(tuple_(TELEMETRY.c.device_id, TELEMETRY.c.ts)
                                                       .in_(keys[i:i + _IN_CHUNK]))
                               .returning(TELEMETRY.c.device_id, TELEMETRY.c.ts, TELEMETRY.c["values"]))
        for device_id, ts, values in gone:
            hour = ts.replace(minute=0, second=0, microsecond=0)
            for key, value in (values or {}).items():
                if isinstance(value, str) or value is None:
                    continue
                v = float(value)
                a = acc.get((device_id, hour, key))
                if a is None:
                    acc[(device_id, hour, key)] = [v, v, v, 1]
                else:
                    a[0], a[1], a[2], a[3] = min(a[0], v), max(a[1], v), a[2] + v, a[3] + 1
    merge_hourly(session, [{"device_id": d, "hour": h, "key": k, "min": a[0], "max": a[1], "avg": a[2] / a[3],
                            "count": a[3]} for (d, h, k), a in sorted(acc.items())])
    return len(keys)


def merge_hourly(session: Session, rows: list[dict]) -> None:
    """Insert hourly rows, or merge each into the row of its (device, hour, key) when there is one."""
    if not rows:
        return
    stmt = _insert(session, HOURLY)
    ex, pg = stmt.excluded, session.get_bind().dialect.name == "postgresql"
    low, high = (func.least, func.greatest) if pg else (func.min, func.max)  # SQLite's two-argument min/max
    total = HOURLY.c.count + ex.count
    stmt = stmt.on_conflict_do_update(index_elements=["device_id", "hour", "key"], set_={
        "min": low(HOURLY.c.min, ex.min), "max": high(HOURLY.c.max, ex.max),
        "avg": (HOURLY.c.avg * HOURLY.c.count + ex.avg * ex.count) / total, "count": total})
    session.connection().execute(stmt, rows)


def telemetry_count(session: Session, device_id: str | None = None) -> int:
    q = select(func.count()).select_from(TELEMETRY)
    if device_id is not None:
        q = q.where(TELEMETRY.c.device_id == device_id)
    return session.scalar(q) or 0


# ---- the hot path: one batch on a DBAPI cursor (Database.write_transaction) --------------------------
# SQLAlchemy's per-row bind processing (stdlib json, the UTCDateTime decorator, RETURNING rows) took half of a
# batch's time; these statements are written once per dialect and fed plain tuples. Times are stored exactly as
# UTCDateTime stores them (naive UTC; on SQLite the text form SQLAlchemy writes), so the ORM reads these rows
# and (device_id, ts) conflicts match whichever path wrote the first row.
# PostgreSQL gets the whole batch as one JSON document a statement (the read, the insert, the update), taken
# apart by the server (json_array_elements): orjson writes it in C, where psycopg dumps a Python list or
# array parameter element by element in Python (a regex per string) and a 500-row VALUES list was 2,000
# parameters to bind; the devices' update was one statement a device (executemany). Together they made
# PostgreSQL the slower database (docs/status.md, Issue 16).
_ROWS_PER_STATEMENT = 5000  # SQLite: readings a statement (a batch is 1,000 messages, a message up to 1,000)

# Times go to PostgreSQL as their integers and come back as integers, made exact by the server (whole seconds and
# microseconds as intervals: the double in interval * number is exact for both), instead of a text a time in Python
# (%% is the driver's escape of the modulo).
_PG_TIME = "(TIMESTAMP '1970-01-01' + ({t} / 1000000) * INTERVAL '1 second' + ({t} %% 1000000) * INTERVAL '1 microsecond')"
_PG_STATES = ("SELECT id, type, status, CAST(EXTRACT(EPOCH FROM last_seen) * 1000000 AS bigint), "
              "CAST(last_values AS text) FROM devices "  # orjson reads it
              "WHERE id IN (SELECT json_array_elements_text(CAST(%s AS json)))")
# json_to_recordset parses the document once (json_array_elements and an ->> per column parsed each row's text
# again per column: twice as slow); a reading's values stay the device's JSON text, as sent. It answers the rows
# NOT inserted (duplicates: almost always none) instead of the 1,000 inserted, which the driver made datetimes.
_PG_INSERT = ("WITH x AS MATERIALIZED (SELECT d, " + _PG_TIME.format(t="t") + " AS t, v, " + _PG_TIME.format(t="r")
              + " AS r FROM json_to_recordset(CAST(%s AS json)) AS x(d text, t bigint, v json, r bigint)), "
              'i AS (INSERT INTO telemetry (device_id, ts, "values", received_at) SELECT d, t, v, r FROM x '
              "ON CONFLICT (device_id, ts) DO NOTHING RETURNING device_id, ts) "
              "SELECT d, t FROM x EXCEPT SELECT device_id, ts FROM i")
_PG_UPDATE = ("UPDATE devices SET last_seen = " + _PG_TIME.format(t="x.t") + ", last_values = x.v, status = x.s "
              "FROM json_to_recordset(CAST(%s AS json)) AS x(d text, t bigint, v json, s text) WHERE devices.id = x.d")


_EPOCH = datetime(1970, 1, 1)  # naive UTC, as stored
_ONE_US = timedelta(microseconds=1)
_ONE_S = timedelta(seconds=1)
_SECONDS_CAP = 100_000  # seconds' texts kept (a batch spans a few; a backlog of history a few thousand)


_SECONDS_OF: dict[str, int] = {}  # a stored second's text → its seconds since the epoch (bounded)


def us_of(value) -> int | None:
    """Microseconds since the epoch (UTC) of a time as a driver answers it: the text SQLite keeps, a naive UTC
    datetime from PostgreSQL, or an aware datetime."""
    if value is None or type(value) is int:  # PostgreSQL's device read answers the integer itself
        return value
    if isinstance(value, str):
        # the batch's devices' last_seen, each read: 'YYYY-MM-DD HH:MM:SS.ffffff' as stored, its second kept
        if len(value) == 26 and value[19] == ".":
            sec = _SECONDS_OF.get(value[:19])
            if sec is None:
                if len(_SECONDS_OF) >= _SECONDS_CAP:
                    _SECONDS_OF.clear()
                sec = _SECONDS_OF[value[:19]] = (datetime.fromisoformat(value[:19]) - _EPOCH) // _ONE_S
            return sec * 1_000_000 + int(value[20:])
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return (value - _EPOCH) // _ONE_US


# SQLite likewise takes the batch as one JSON document a statement (json_each), the times as integers that it
# writes as text itself (the floor second's datetime and the microseconds, also before 1970): the text of two
# times a reading and the binding of 2,000 parameters a statement were Python's, under the GIL the MQTT client's
# thread needs; SQLite's own work runs without it.
_SQLITE_TEXT = "printf('%s.%06d', datetime(({t} - {t}f) / 1000000, 'unixepoch'), {t}f)"
_SQLITE_INSERT = ('INSERT INTO telemetry (device_id, ts, "values", received_at) SELECT d, '
                  + _SQLITE_TEXT.format(t="t") + ", v, " + _SQLITE_TEXT.format(t="r")
                  + " FROM (SELECT value ->> 0 AS d, value ->> 1 AS t, ((value ->> 1) % 1000000 + 1000000) % 1000000 AS tf,"
                  " value -> 2 AS v, value ->> 3 AS r, ((value ->> 3) % 1000000 + 1000000) % 1000000 AS rf"
                  " FROM json_each(?)) WHERE true ON CONFLICT (device_id, ts) DO NOTHING RETURNING device_id, ts")
_SQLITE_STATES = ("SELECT id, type, status, last_seen, last_values FROM devices "
                  "WHERE id IN (SELECT value FROM json_each(?))")
_SQLITE_UPDATE = ("UPDATE devices SET last_seen = " + _SQLITE_TEXT.format(t="x.t") + ", last_values = x.v, status = x.s"
                  " FROM (SELECT value ->> 0 AS d, value ->> 1 AS t, ((value ->> 1) % 1000000 + 1000000) % 1000000 AS tf,"
                  " value -> 2 AS v, value ->> 3 AS s FROM json_each(?)) AS x WHERE devices.id = x.d")


class BatchWriter:
    """The three statements of a telemetry batch on a raw cursor, for `dialect` (sqlite or postgresql).

    Times go in and out as integers, microseconds since the epoch (UTC): a batch compares, sorts and keys its
    readings by them, and the database writes their text (SQLite) or timestamp (PostgreSQL) itself. Making a
    datetime per reading, then naive, then its text (astimezone, replace, strftime) was an eighth of a batch."""

    def __init__(self, dialect: str):
        self.pg = dialect == "postgresql"

    def device_states(self, cur, ids: list[str]) -> dict[str, tuple]:
        """id → (type, status, last_seen in microseconds or None, last_values) of those of `ids` that are registered."""
        out = {}
        if self.pg:
            cur.execute(_PG_STATES, (orjson.dumps(ids).decode(),))
            found = cur.fetchall()
        else:
            cur.execute(_SQLITE_STATES, (orjson.dumps(ids).decode(),))
            found = cur.fetchall()
        for id_, type_, status, last_seen, last_values in found:
            if isinstance(last_values, str):
                last_values = orjson.loads(last_values)
            out[id_] = (type_, status, us_of(last_seen), last_values)
        return out

    def insert(self, cur, rows: list[tuple]) -> set[tuple[str, int]]:
        """rows (device_id, ts µs, values dict, received_at µs), no (device_id, ts) twice (the caller keeps the
        first); each stored unless stored before (ON CONFLICT DO NOTHING). Returns the keys NOT inserted: the
        duplicates of rows stored before this batch (almost always none)."""
        if self.pg:
            doc = [{"d": device_id, "t": ts, "v": vals, "r": received_at} for device_id, ts, vals, received_at in rows]
            cur.execute(_PG_INSERT, (orjson.dumps(doc).decode(),))
            return {(device_id, us_of(ts)) for device_id, ts in cur.fetchall()}
        not_inserted: set[tuple[str, int]] = set()
        for i in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[i:i + _ROWS_PER_STATEMENT]
            cur.execute(_SQLITE_INSERT, (orjson.dumps(chunk).decode(),))
            done = cur.fetchall()
            if len(done) < len(chunk):  # some were stored before: which (the keys are unique within the batch)
                done = {(device_id, us_of(ts)) for device_id, ts in done}
                not_inserted.update(key for key in ((r[0], r[1]) for r in chunk) if key not in done)
        return not_inserted

    def update_devices(self, cur, updates: list[tuple]) -> None:
        """updates (device_id, last_seen µs, last_values, status)."""
        if not updates:
            return
        if self.pg:
            cur.execute(_PG_UPDATE, (orjson.dumps([{"d": d, "t": t, "v": v, "s": st}
                                                   for d, t, v, st in updates]).decode(),))
        else:
            cur.execute(_SQLITE_UPDATE, (orjson.dumps(updates).decode(),))
