"""Alarm repository: the alarms of devices and rules, their history, and the alarm engine's running state."""
from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.orm import Session

from data.devices import device_filters
from data.models import Alarm, AlarmHistory, AlarmState, Device
from dispatch.devices import SEVERITIES



# The devices of a batch that readings meeting no condition cannot change: online, no run under way, no open alarm.
# One statement text whatever the batch, its ids one JSON parameter taken apart by the database, on a raw cursor:
# 500 expanding parameters made each read a new statement for SQLAlchemy to compile and the driver to parse, and
# the rows came back one fetch each (a tenth of the alarm engine's time a batch).
_QUIET = ("SELECT d.id FROM devices d WHERE d.id IN ({ids}) AND d.status = 'online' "
          "AND NOT EXISTS (SELECT 1 FROM alarm_states s WHERE s.device_id = d.id "
          "AND (s.raise_count > 0 OR s.clear_count > 0)) "
          "AND NOT EXISTS (SELECT 1 FROM alarms a WHERE a.device_id = d.id AND a.status != 'cleared')")
_QUIET_SQLITE = _QUIET.format(ids="SELECT value FROM json_each(?)")
_QUIET_PG = _QUIET.format(ids="SELECT json_array_elements_text(CAST(%s AS json))")


def quiet_devices(conn: Connection, device_ids: list[str]) -> set[str]:
    """Those of `device_ids` online with no run under way and no open alarm (the alarm engine's quick path)."""
    if not device_ids:
        return set()
    cur = conn.connection.cursor()
    try:
        cur.execute(_QUIET_PG if conn.dialect.name == "postgresql" else _QUIET_SQLITE,
                    (orjson.dumps(device_ids).decode(),))
        return {row[0] for row in cur.fetchall()}
    finally:
        cur.close()


def open_alarms(session: Session, device_id: str) -> dict[str, Alarm]:
    """The device's open alarms (active or acknowledged) by rule code."""
    rows = session.scalars(select(Alarm).where(Alarm.device_id == device_id, Alarm.status != "cleared"))
    return {a.rule_code: a for a in rows}


def states(session: Session, device_id: str) -> dict[str, AlarmState]:
    """The engine's stored state rows of the device, by rule code."""
    return {r.rule_code: r for r in session.scalars(select(AlarmState).where(AlarmState.device_id == device_id))}


def save_state(session: Session, rows: dict[str, AlarmState], device_id: str, rule_code: str, *,
               raise_since: datetime | None, raise_count: int, clear_since: datetime | None, clear_count: int,
               last_ts: datetime | None) -> None:
    """Write one rule's state when it differs from the stored row (a reading that changes nothing writes nothing)."""
    values = dict(raise_since=raise_since, raise_count=raise_count, clear_since=clear_since,
                  clear_count=clear_count, last_ts=last_ts)
    row = rows.get(rule_code)
    if row is None:
        row = rows[rule_code] = AlarmState(device_id=device_id, rule_code=rule_code, **values)
        session.add(row)
        return
    for k, v in values.items():
        if getattr(row, k) != v:
            setattr(row, k, v)


def add_history(session: Session, alarm: Alarm, at: datetime, actor: str, action: str, from_status: str | None,
                to_status: str, note: str = "", values: dict | None = None) -> None:
    session.add(AlarmHistory(alarm_id=alarm.id, at=at, actor=actor, action=action, from_status=from_status,
                             to_status=to_status, note=note, values=values))


def history(session: Session, alarm_id: int) -> list[AlarmHistory]:
    return list(session.scalars(select(AlarmHistory).where(AlarmHistory.alarm_id == alarm_id)
                                .order_by(AlarmHistory.id)))


def last_case_of(session: Session, device_id: str, rule_code: str) -> int | None:
    """The case of the device and rule's latest alarm that has one (whether it is still open is the caller's
    question: cases live above this room's knowledge of their states)."""
    return session.scalar(select(Alarm.case_id).where(Alarm.device_id == device_id, Alarm.rule_code == rule_code,
                                                      Alarm.case_id.is_not(None))
                          .order_by(Alarm.id.desc()).limit(1))


def without_case(session: Session, rule_codes: list[str], offline_rule: str, offline_types: list[str],
                 limit: int = 100) -> list[Alarm]:
    """Open alarms of dispatching rules (and offline alarms of the types whose offline alarm opens a case) still
    without their case (the intake after their commit did not finish: a crash, the database away): what the
    scheduler's round opens again, idempotently."""
    which = []
    if rule_codes:
        which.append(Alarm.rule_code.in_(rule_codes))
    if offline_types:
        which.append(and_(Alarm.rule_code == offline_rule,
                          Alarm.device_id.in_(select(Device.id).where(Device.type.in_(offline_types)))))
    if not which:
        return []
    return list(session.scalars(select(Alarm).where(Alarm.status != "cleared", Alarm.case_id.is_(None), or_(*which))
                                .order_by(Alarm.id).limit(limit)))


SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # gravest first
OPEN = "open"  # a status filter: active or acknowledged


def list_alarms(session: Session, *, status: str | None = None, severity: str | None = None,
                device: str | None = None, district: str | None = None, grid: str | None = None,
                grid_prefix: str | None = None, unit: str | None = None, page: int = 1,
                per_page: int = 50, by_severity: bool = False) -> tuple[list[tuple[Alarm, Device]], int]:
    """A page of alarms (newest first; with `by_severity`, gravest first and then newest) with their devices,
    and how many match; the area filters as data.devices.list_devices reads them, on the alarm's device.
    `status` "open": active or acknowledged."""
    where = device_filters(district=district, grid=grid, grid_prefix=grid_prefix, unit=unit)
    if status == OPEN:
        where.append(Alarm.status != "cleared")
    elif status is not None:
        where.append(Alarm.status == status)
    if severity is not None:
        where.append(Alarm.severity == severity)
    if device is not None:
        where.append(Alarm.device_id == device)
    joined = select(Alarm, Device).join(Device, Device.id == Alarm.device_id).where(*where)
    total = session.scalar(select(func.count()).select_from(Alarm).join(Device, Device.id == Alarm.device_id)
                           .where(*where)) or 0
    order = [Alarm.id.desc()]
    if by_severity:
        order = [case(SEVERITY_RANK, value=Alarm.severity, else_=len(SEVERITY_RANK)), Alarm.started_at.desc(),
                 Alarm.id.desc()]
    rows = session.execute(joined.order_by(*order).offset((page - 1) * per_page).limit(per_page)).all()
    return [(a, d) for a, d in rows], total


def open_alarms_in_box(session: Session, box: tuple[float, float, float, float], *, district: str | None = None,
                      grid: str | None = None, grid_prefix: str | None = None, unit: str | None = None,
                      limit: int = 1000) -> list[tuple[Alarm, Device]]:
    """The open alarms (active or acknowledged) of the devices inside a lon/lat box, gravest then newest first."""
    where = device_filters(district=district, grid=grid, grid_prefix=grid_prefix, unit=unit, box=box)
    order = [case(SEVERITY_RANK, value=Alarm.severity, else_=len(SEVERITY_RANK)), Alarm.started_at.desc(), Alarm.id.desc()]
    rows = session.execute(select(Alarm, Device).join(Device, Device.id == Alarm.device_id)
                           .where(Alarm.status != "cleared", *where).order_by(*order).limit(limit)).all()
    return [(a, d) for a, d in rows]


def with_devices(session: Session, alarm_ids: list[int]) -> list[tuple[Alarm, Device]]:
    """The alarms `alarm_ids` with their devices, in id order."""
    rows = session.execute(select(Alarm, Device).join(Device, Device.id == Alarm.device_id)
                           .where(Alarm.id.in_(alarm_ids)).order_by(Alarm.id)).all()
    return [(a, d) for a, d in rows]


def alarms_of_case(session: Session, case_id: int) -> list[tuple[Alarm, Device]]:
    """The alarms that opened or joined a case, with their devices, oldest first."""
    rows = session.execute(select(Alarm, Device).join(Device, Device.id == Alarm.device_id)
                           .where(Alarm.case_id == case_id).order_by(Alarm.id)).all()
    return [(a, d) for a, d in rows]


def silent_devices(session: Session, type_code: str, before: datetime, limit: int = 1000) -> list[Device]:
    """Devices of a type heard last before `before` (or never, counted from their registration) that are not
    offline or in maintenance yet: those the offline round marks."""
    heard = func.coalesce(Device.last_seen, Device.created_at)
    return list(session.scalars(select(Device).where(Device.type == type_code,
                                                     Device.status.in_(("online", "alarm")), heard < before)
                                .order_by(Device.id).limit(limit)))
