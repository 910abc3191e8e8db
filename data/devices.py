"""Device repository: write a checked batch of devices (new ones inserted, known ones updated), read and page the fleet."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from data.models import Device, utcnow

_IN_CHUNK = 500  # ids per IN (…)
# what an import sets; status, last_seen, last_values and created_at are the device's own history and stay
IMPORTED_FIELDS = ("type", "name", "lon", "lat", "grid_code", "district_code", "unit_code")


def existing_ids(session: Session, ids: Iterable[str]) -> set[str]:
    """Those of `ids` that are registered already."""
    ids = list(ids)
    found: set[str] = set()
    for i in range(0, len(ids), _IN_CHUNK):
        found.update(session.scalars(select(Device.id).where(Device.id.in_(ids[i:i + _IN_CHUNK]))))
    return found


def write_devices(session: Session, rows: list[dict], status: str = "offline", now: datetime | None = None) -> tuple[int, int]:
    """Insert the rows whose id is new, update the imported fields of the others (in the caller's transaction).
    New devices start with `status` (offline: nothing heard from them yet) unless a row brings its own
    status, last_seen and last_values (the demo fleet). Returns (inserted, updated)."""
    if not rows:
        return 0, 0
    known = existing_ids(session, [r["id"] for r in rows])
    now = now or utcnow()
    new = [{"status": status, "last_seen": None, "last_values": None, "created_at": now, **r}
           for r in rows if r["id"] not in known]
    old = [{"b_id": r["id"], **{k: r[k] for k in IMPORTED_FIELDS}} for r in rows if r["id"] in known]
    insert_rows(session, new)
    if old:
        # executemany: the SET clause is made of the parameters' other keys (IMPORTED_FIELDS)
        session.connection().execute(update(Device.__table__).where(Device.__table__.c.id == bindparam("b_id")), old)
    return len(new), len(old)


def insert_rows(session: Session, rows: list[dict]) -> None:
    """Insert complete device rows (every column given) with one Core executemany, in the caller's transaction
    (no ORM objects; multi-row VALUES statements were slower still: SQLAlchemy compiles each one anew)."""
    if rows:
        session.connection().execute(insert(Device.__table__), rows)


def get_device(session: Session, device_id: str) -> Device | None:
    return session.get(Device, device_id)


def code_prefix(column, prefix: str):
    """`column` starts with `prefix`, as a range when the codes are digits (a btree index serves a range on
    SQLite and PostgreSQL alike; LIKE 'p%' scans), else LIKE with the wildcards escaped."""
    if not prefix.isdigit() or set(prefix) == {"9"}:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(escaped + "%", escape="\\")
    upper = str(int(prefix) + 1).zfill(len(prefix))  # '320402009' → '320402010': past every p…
    return and_(column >= prefix, column < upper)


def device_filters(*, district: str | None = None, grid: str | None = None, grid_prefix: str | None = None,
                   unit: str | None = None, box: tuple[float, float, float, float] | None = None) -> list:
    """The WHERE terms of a device's area and unit (list_devices, and data.alarms on an alarm's device):
    `district` (level 2), `grid` (level 5), `grid_prefix` (a street or community: its grids' codes start with
    its code, as the hierarchy's codes do), `unit` (the responsible unit)."""
    where = []
    if district is not None:
        where.append(Device.district_code == district)
    if grid is not None:
        where.append(Device.grid_code == grid)
    if grid_prefix is not None:
        where.append(code_prefix(Device.grid_code, grid_prefix))
    if unit is not None:
        where.append(Device.unit_code == unit)
    if box is not None:  # (min lon, min lat, max lon, max lat): the devices around a point (sensing's `near`)
        where += [Device.lon >= box[0], Device.lon <= box[2], Device.lat >= box[1], Device.lat <= box[3]]
    return where


def _contains(column, text: str):
    """`column` contains `text` (case-insensitive), with LIKE's wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like("%" + escaped.lower() + "%", escape="\\")


def search_filter(search: str | None) -> list:
    """The WHERE term of a search box: the id or the name contains the text."""
    return [or_(_contains(Device.id, search), _contains(Device.name, search))] if search else []


def list_devices(session: Session, *, type_: str | None = None, status: str | None = None,
                 district: str | None = None, grid: str | None = None, grid_prefix: str | None = None,
                 unit: str | None = None, search: str | None = None, page: int = 1,
                 per_page: int = 50) -> tuple[list[Device], int]:
    """A page of devices (by id) and how many match. Area filters: `district` (level 2), `grid` (level 5),
    `grid_prefix` (a street or community: its grids' codes start with its code, as the hierarchy's codes do);
    `search`: the id or the name contains it."""
    where = device_filters(district=district, grid=grid, grid_prefix=grid_prefix, unit=unit) + search_filter(search)
    if type_ is not None:
        where.append(Device.type == type_)
    if status is not None:
        where.append(Device.status == status)
    total = session.scalar(select(func.count()).select_from(Device).where(*where)) or 0
    rows = session.scalars(select(Device).where(*where).order_by(Device.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), total


def devices_in_box(session: Session, box: tuple[float, float, float, float], *, district: str | None = None,
                   grid: str | None = None, grid_prefix: str | None = None, unit: str | None = None,
                   limit: int = 5000) -> list[Device]:
    """The devices inside a lon/lat box (min lon, min lat, max lon, max lat), by id, at most `limit`; the area
    and unit filters as list_devices reads them."""
    where = device_filters(district=district, grid=grid, grid_prefix=grid_prefix, unit=unit, box=box)
    return list(session.scalars(select(Device).where(*where).order_by(Device.id).limit(limit)))


def status_counts(session: Session, *, type_: str | None = None, district: str | None = None,
                  grid: str | None = None, grid_prefix: str | None = None, unit: str | None = None,
                  search: str | None = None) -> dict[str, int]:
    """How many devices of each status match the filters (list_devices's, but the status)."""
    where = device_filters(district=district, grid=grid, grid_prefix=grid_prefix, unit=unit) + search_filter(search)
    if type_ is not None:
        where.append(Device.type == type_)
    return dict(session.execute(select(Device.status, func.count()).where(*where).group_by(Device.status)).all())


def device_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Device)) or 0


def counts_by_type(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Device.type, func.count()).group_by(Device.type)).all())


def reporting_fleet(session: Session, *, offline_too: bool = False, type_: str | None = None,
                    limit: int | None = None) -> list[tuple]:
    """(id, type, last_seen, last_values) of the devices heard from (online or in alarm): the ones the demo's
    device feed keeps reporting (an offline or maintained device stays quiet). `offline_too`: every device but
    those in maintenance (the MQTT simulator brings a newly imported fleet to life); `type_`, `limit`: the
    first `limit` devices of a type."""
    statuses = ("online", "alarm", "offline") if offline_too else ("online", "alarm")
    q = select(Device.id, Device.type, Device.last_seen, Device.last_values).where(Device.status.in_(statuses))
    if type_ is not None:
        q = q.where(Device.type == type_)
    q = q.order_by(Device.id)
    if limit is not None:
        q = q.limit(limit)
    return [tuple(r) for r in session.execute(q).all()]
