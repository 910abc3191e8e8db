"""Area repository: write a validated hierarchy in one transaction, read it back, page through it."""
from __future__ import annotations

import math
import uuid

import shapely
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from data.models import ApiToken, Area, Case, Device, Meta, Unit, User
from geo.model import AreaRecord

HIERARCHY_VERSION_KEY = "hierarchy_version"


def _area_km2(geom) -> float:
    # Local equirectangular scale: plenty for display figures at a city's size.
    lat = geom.centroid.y
    return geom.area * (111.32**2) * math.cos(math.radians(lat))


def hierarchy_version(session: Session) -> str | None:
    meta = session.get(Meta, HIERARCHY_VERSION_KEY)
    return meta.value if meta else None


def area_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Area)) or 0


def referenced_codes_outside(session: Session, keep: set[str]) -> dict[str, set[str]]:
    """Area codes that cases, devices, units, users or tokens still use but the new hierarchy lacks."""
    found: dict[str, set[str]] = {}
    for label, column in (("cases", Case.grid_code), ("devices", Device.grid_code), ("units", Unit.area_code),
                          ("users", User.area_code), ("api_tokens", ApiToken.area_code)):
        used = set(session.scalars(select(column).distinct()))
        missing = used - keep
        if missing:
            found[label] = missing
    return found


def replace_hierarchy(session: Session, records: list[AreaRecord]) -> int:
    """Make the areas table equal to `records` (validated beforehand). Runs inside the caller's
    transaction, so a failure leaves the old hierarchy untouched. Returns the number written."""
    new_codes = {r.code for r in records}
    blocked = referenced_codes_outside(session, new_codes)
    if blocked:
        detail = "; ".join(f"{k}: {', '.join(sorted(v)[:10])}" for k, v in blocked.items())
        raise ValueError(f"仍有数据引用新网格中不存在的区域编码，未做任何修改：{detail}")
    existing = set(session.scalars(select(Area.code)))
    # Detach parents first so rows can be removed and rewritten in any order.
    session.execute(update(Area).values(parent_code=None))
    stale = existing - new_codes
    if stale:
        session.execute(delete(Area).where(Area.code.in_(stale)))
    session.flush()
    rows = []
    for r in sorted(records, key=lambda r: (r.level, r.code)):
        c = r.geometry.centroid
        rep = r.geometry.representative_point() if not r.geometry.contains(c) else c
        rows.append(dict(code=r.code, name=r.name, level=r.level, parent_code=r.parent,
                         geometry=shapely.to_wkb(r.geometry), population=r.population,
                         area_km2=_area_km2(r.geometry), centroid_lon=rep.x, centroid_lat=rep.y,
                         is_demo=bool(r.is_demo)))
    keep = existing & new_codes
    for row in rows:
        parent = row.pop("parent_code")
        if row["code"] in keep:
            session.execute(update(Area).where(Area.code == row["code"]).values(**row))
        else:
            session.add(Area(**row))
        row["parent_code"] = parent
    session.flush()
    for row in rows:
        if row["parent_code"]:
            session.execute(update(Area).where(Area.code == row["code"]).values(parent_code=row["parent_code"]))
    _bump_version(session)
    return len(rows)


def _bump_version(session: Session) -> None:
    meta = session.get(Meta, HIERARCHY_VERSION_KEY)
    value = uuid.uuid4().hex
    if meta is None:
        session.add(Meta(key=HIERARCHY_VERSION_KEY, value=value))
    else:
        meta.value = value


def load_records(session: Session, max_level: int = 5) -> list[AreaRecord]:
    rows = session.execute(
        select(Area.code, Area.name, Area.level, Area.parent_code, Area.geometry, Area.population, Area.is_demo)
        .where(Area.level <= max_level).order_by(Area.code)
    ).all()
    geoms = shapely.from_wkb([r.geometry for r in rows]) if rows else []
    return [AreaRecord(code=r.code, name=r.name, level=r.level, parent=r.parent_code, geometry=g,
                       population=r.population, is_demo=r.is_demo) for r, g in zip(rows, geoms)]


def area_to_dict(area: Area) -> dict:
    return {"code": area.code, "name": area.name, "level": area.level, "parent": area.parent_code,
            "population": area.population, "area_km2": round(area.area_km2, 3),
            "centroid": [round(area.centroid_lon, 6), round(area.centroid_lat, 6)], "is_demo": area.is_demo}


def list_areas(session: Session, level: int | None = None, parent: str | None = None,
               page: int = 1, per_page: int = 50) -> tuple[list[dict], int]:
    q = select(Area)
    if level is not None:
        q = q.where(Area.level == level)
    if parent is not None:
        q = q.where(Area.parent_code == parent)
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    items = session.scalars(q.order_by(Area.code).offset((page - 1) * per_page).limit(per_page)).all()
    return [area_to_dict(a) for a in items], total


def get_area(session: Session, code: str) -> Area | None:
    return session.get(Area, code)
