"""Unit repository: the units of an area (and of the areas below it), paged."""
from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from data.models import Unit


def list_units(session: Session, area: str | None = None, page: int = 1, per_page: int = 100):
    q = select(Unit).where(Unit.active.is_(True))
    if area is not None:
        q = q.where(or_(Unit.area_code == area, Unit.area_code.like(area + "%")))
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.scalars(q.order_by(Unit.level, Unit.code).offset((page - 1) * per_page).limit(per_page))
    return [{"code": u.code, "name": u.name, "unit_type": u.unit_type, "level": u.level, "area": u.area_code}
            for u in rows], total


def active_units(session: Session) -> list[tuple[str, str, str | None]]:
    """Every active unit as (code, name, area code), by level then name: the pickers' list."""
    q = select(Unit.code, Unit.name, Unit.area_code).where(Unit.active.is_(True)).order_by(Unit.level, Unit.name)
    return [tuple(r) for r in session.execute(q)]
