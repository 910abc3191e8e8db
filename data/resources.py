"""Emergency resource repository: write checked resources and stock, read them for the index and the API, and the
guarded updates that take and give back what an allocation holds (never below zero, never above capacity)."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Iterable

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from data.models import Meta, Resource, ResourceAllocation, ResourceStock, Unit, utcnow

_IN_CHUNK = 500  # ids per IN (…)
# the meta row whose value changes with every write of the resources' positions, types and specialties: the
# nearest-resource index (emergency/resources.py) rebuilds when it moved
VERSION_KEY = "resources_version"
# what an import sets; status and occupancy are the resource's own state and stay
IMPORTED_FIELDS = ("type", "name", "lon", "lat", "grid_code", "district_code", "unit_code", "specialty", "capacity")


def _chunks(ids: list, n: int = _IN_CHUNK):
    for i in range(0, len(ids), n):
        yield ids[i:i + n]


# ---- writes of an import or the demo seed ---------------------------------------------------------
def write_resources(session: Session, rows: list[dict], now: datetime | None = None) -> tuple[int, int]:
    """Insert the rows whose id is new, update the imported fields of the others (status and occupancy stay), in
    the caller's transaction; the index version moves (an allocation leaves it and `updated_at` alone). Returns
    (inserted, updated)."""
    if not rows:
        return 0, 0
    _bump_version(session)
    now = now or utcnow()
    known: set[str] = set()
    for chunk in _chunks([r["id"] for r in rows]):
        known.update(session.scalars(select(Resource.id).where(Resource.id.in_(chunk))))
    new = [{"occupancy": 0, "status": "available", **{k: r.get(k) for k in ("id",) + IMPORTED_FIELDS},
            "updated_at": now, **({"status": r["status"]} if r.get("status") else {})}
           for r in rows if r["id"] not in known]
    if new:
        session.connection().execute(insert(Resource.__table__), new)
    old = [r for r in rows if r["id"] in known]
    for r in old:
        session.execute(update(Resource).where(Resource.id == r["id"])
                        .values(**{k: r.get(k) for k in IMPORTED_FIELDS}, updated_at=now))
    return len(new), len(old)


def write_stock(session: Session, rows: list[dict]) -> int:
    """Set the stock of (resource_id, item) to the rows' quantity and unit (an import states what a warehouse
    holds now), in the caller's transaction. Items of a warehouse the rows do not name stay."""
    if not rows:
        return 0
    keys = {(r["resource_id"], r["item"]) for r in rows}
    ids = sorted({k[0] for k in keys})
    known: set[tuple[str, str]] = set()
    for chunk in _chunks(ids):
        known.update(tuple(x) for x in session.execute(
            select(ResourceStock.resource_id, ResourceStock.item).where(ResourceStock.resource_id.in_(chunk))).all())
    new = [{"resource_id": r["resource_id"], "item": r["item"], "quantity": r["quantity"], "unit": r["unit"]}
           for r in rows if (r["resource_id"], r["item"]) not in known]
    if new:
        session.connection().execute(insert(ResourceStock.__table__), new)
    for r in rows:
        if (r["resource_id"], r["item"]) in known:
            session.execute(update(ResourceStock).where(ResourceStock.resource_id == r["resource_id"],
                                                        ResourceStock.item == r["item"])
                            .values(quantity=r["quantity"], unit=r["unit"]))
    return len(rows)


def existing_ids(session: Session, ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(ids)):
        found.update(session.scalars(select(Resource.id).where(Resource.id.in_(chunk))))
    return found


def types_of(session: Session, ids: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in _chunks(list(ids)):
        out.update(session.execute(select(Resource.id, Resource.type).where(Resource.id.in_(chunk))).all())
    return out


# ---- reads ------------------------------------------------------------------------------------------
def resource_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Resource)) or 0


def index_version(session: Session) -> str | None:
    """What changes when a resource is added, moved, retyped or removed (every write of this module but the
    allocations' bumps it): one primary-key read, where a count of the table scanned it (10 ms at 10,000 rows)."""
    meta = session.get(Meta, VERSION_KEY)
    return meta.value if meta is not None else None


def _bump_version(session: Session) -> None:
    value = uuid.uuid4().hex
    if session.execute(update(Meta).where(Meta.key == VERSION_KEY).values(value=value)).rowcount == 0:
        session.add(Meta(key=VERSION_KEY, value=value))


def index_rows(session: Session) -> list[tuple]:
    """(id, lon, lat, type, specialty, unit_code) of every resource: what the nearest-resource index holds."""
    return [tuple(r) for r in session.execute(
        select(Resource.id, Resource.lon, Resource.lat, Resource.type, Resource.specialty, Resource.unit_code)
        .order_by(Resource.id)).all()]


def get_resources(session: Session, ids: list[str]) -> dict[str, Resource]:
    out: dict[str, Resource] = {}
    for chunk in _chunks(ids):
        out.update((r.id, r) for r in session.scalars(select(Resource).where(Resource.id.in_(chunk))))
    return out


def resource_rows(session: Session, ids: list[str]) -> dict[str, object]:
    """The rows of `ids` (read-only, attribute access as on the model: no ORM objects for an answer's reads)."""
    table = Resource.__table__
    out: dict[str, object] = {}
    for chunk in _chunks(ids):
        out.update((r.id, r) for r in session.execute(select(table).where(table.c.id.in_(chunk))))
    return out


def stock_of(session: Session, ids: list[str]) -> dict[str, list]:
    """Each resource's stock rows (resource_id, item, quantity, unit), by item."""
    table = ResourceStock.__table__
    out: dict[str, list] = {}
    for chunk in _chunks(ids):
        for row in session.execute(select(table).where(table.c.resource_id.in_(chunk))
                                   .order_by(table.c.resource_id, table.c.item)):
            out.setdefault(row.resource_id, []).append(row)
    return out


def unit_names(session: Session, codes: Iterable[str | None]) -> dict[str, str]:
    codes = sorted({c for c in codes if c})
    if not codes:
        return {}
    return dict(session.execute(select(Unit.code, Unit.name).where(Unit.code.in_(codes))).all())


def list_resources(session: Session, *, type_: str | None = None, specialty: str | None = None,
                   status: str | None = None, unit: str | None = None, page: int = 1,
                   per_page: int = 50) -> tuple[list[Resource], int]:
    """A page of resources (by id) and how many match."""
    where = []
    if type_ is not None:
        where.append(Resource.type == type_)
    if specialty is not None:
        where.append(Resource.specialty == specialty)
    if status is not None:
        where.append(Resource.status == status)
    if unit is not None:
        where.append(Resource.unit_code == unit)
    total = session.scalar(select(func.count()).select_from(Resource).where(*where)) or 0
    rows = session.scalars(select(Resource).where(*where).order_by(Resource.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return list(rows), total


def counts_by_type_status(session: Session) -> list[tuple[str, str, int, int, int]]:
    """(type, status, resources, capacity, occupancy) for every pair present."""
    return [tuple(r) for r in session.execute(
        select(Resource.type, Resource.status, func.count(), func.coalesce(func.sum(Resource.capacity), 0),
               func.coalesce(func.sum(Resource.occupancy), 0))
        .group_by(Resource.type, Resource.status).order_by(Resource.type, Resource.status)).all()]


def stock_totals(session: Session) -> list[tuple[str, str, float]]:
    """(item, unit, total quantity) over every warehouse."""
    return [tuple(r) for r in session.execute(
        select(ResourceStock.item, ResourceStock.unit, func.sum(ResourceStock.quantity))
        .group_by(ResourceStock.item, ResourceStock.unit).order_by(ResourceStock.item)).all()]


# ---- the guarded updates of an allocation (each one statement: the database decides who wins) --------------
def take_whole(session: Session, resource_id: str) -> bool:
    """available → deployed; False when it was not available (another allocation won, or in maintenance)."""
    done = session.execute(update(Resource).where(Resource.id == resource_id, Resource.status == "available")
                           .values(status="deployed"))
    return done.rowcount == 1


def give_back_whole(session: Session, resource_id: str) -> None:
    session.execute(update(Resource).where(Resource.id == resource_id, Resource.status == "deployed")
                    .values(status="available"))


def take_places(session: Session, resource_id: str, places: int) -> bool:
    """A shelter's occupancy + places, only while it stays within the capacity and the shelter is open."""
    done = session.execute(update(Resource).where(
        Resource.id == resource_id, Resource.status != "maintenance",
        Resource.occupancy + places <= func.coalesce(Resource.capacity, 0)).values(occupancy=Resource.occupancy + places))
    return done.rowcount == 1


def give_back_places(session: Session, resource_id: str, places: int) -> None:
    session.execute(update(Resource).where(Resource.id == resource_id)
                    .values(occupancy=case((Resource.occupancy > places, Resource.occupancy - places), else_=0)))


def take_stock(session: Session, resource_id: str, item: str, quantity: float) -> bool:
    """quantity − q only where quantity ≥ q: stock never goes below zero, and of two takers of the last units
    exactly one gets them (the other's WHERE no longer holds when it runs)."""
    done = session.execute(update(ResourceStock).where(
        ResourceStock.resource_id == resource_id, ResourceStock.item == item, ResourceStock.quantity >= quantity)
        .values(quantity=ResourceStock.quantity - quantity))
    return done.rowcount == 1


def give_back_stock(session: Session, resource_id: str, item: str, quantity: float) -> None:
    session.execute(update(ResourceStock).where(ResourceStock.resource_id == resource_id, ResourceStock.item == item)
                    .values(quantity=ResourceStock.quantity + quantity))


def stock_left(session: Session, resource_id: str, item: str) -> ResourceStock | None:
    return session.get(ResourceStock, (resource_id, item), populate_existing=True)


def add_allocation(session: Session, **values) -> ResourceAllocation:
    row = ResourceAllocation(**values)
    session.add(row)
    session.flush()
    return row


def close_allocation(session: Session, allocation_id: int, case_id: int, at: datetime, by: str) -> bool:
    """Marks an open allocation of the case released; False when it was released already (or is not the case's)."""
    done = session.execute(update(ResourceAllocation).where(
        ResourceAllocation.id == allocation_id, ResourceAllocation.case_id == case_id,
        ResourceAllocation.released_at.is_(None)).values(released_at=at, released_by=by))
    return done.rowcount == 1


def allocations_of(session: Session, case_id: int) -> list[tuple[ResourceAllocation, Resource]]:
    """A case's allocations (open and released), oldest first, each with its resource."""
    return [tuple(r) for r in session.execute(
        select(ResourceAllocation, Resource).join(Resource, Resource.id == ResourceAllocation.resource_id)
        .where(ResourceAllocation.case_id == case_id).order_by(ResourceAllocation.id)).all()]


def open_allocations_of_resource(session: Session, resource_id: str) -> int:
    return session.scalar(select(func.count()).select_from(ResourceAllocation).where(
        and_(ResourceAllocation.resource_id == resource_id, ResourceAllocation.released_at.is_(None)))) or 0


def delete_all(session: Session) -> None:
    """Every resource, its stock and allocations (tests and the bench start from nothing)."""
    _bump_version(session)
    session.execute(delete(ResourceAllocation))
    session.execute(delete(ResourceStock))
    session.execute(delete(Resource))
