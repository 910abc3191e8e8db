"""Reference data in the database: the catalog and the units, loaded from the data files (data.files)
and read back as the dispatch core's plain records."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data import files
from data.areas import load_records
from data.models import Category as CategoryRow
from data.models import Unit as UnitRow
from dispatch.catalog import Category, Stage
from dispatch.units import UnitRecord, demo_units


def ensure_catalog(session: Session) -> int:
    """Load the shipped dispatch manual when the table is empty; returns rows written."""
    if session.scalar(select(func.count()).select_from(CategoryRow)):
        return 0
    catalog = files.catalog()
    for c in catalog.values():
        session.add(CategoryRow(
            code=c.code, name=c.name, major_class=c.major_class, kind=c.kind,
            filing_criterion=c.filing_criterion, closing_criterion=c.closing_criterion,
            unit_type=c.unit_type, level=c.level, time_limit=float(c.time_limit), time_unit=c.time_unit,
            urgency=c.urgency, assist_unit_types=list(c.assist_unit_types),
            stages=[[s.name, s.time_limit, s.time_unit] for s in c.stages]))
    session.flush()
    return len(catalog)


def ensure_units(session: Session) -> int:
    """Generate the default units (bureaus, offices, committees, grid members, utilities) for the
    hierarchy in the database when there are none yet."""
    if session.scalar(select(func.count()).select_from(UnitRow)):
        return 0
    units = demo_units(load_records(session), files.unit_types(), files.unit_patterns())
    session.add_all(UnitRow(code=u.code, name=u.name, unit_type=u.unit_type, level=u.level,
                            area_code=u.area_code, primary=u.primary) for u in units)
    session.flush()
    return len(units)


def read_catalog(session: Session) -> dict[str, Category]:
    out = {}
    for r in session.scalars(select(CategoryRow).order_by(CategoryRow.code)):
        limit = int(r.time_limit) if float(r.time_limit).is_integer() else r.time_limit
        out[r.code] = Category(
            code=r.code, name=r.name, major_class=r.major_class, kind=r.kind,
            filing_criterion=r.filing_criterion, closing_criterion=r.closing_criterion,
            unit_type=r.unit_type, level=r.level, time_limit=limit, time_unit=r.time_unit,
            urgency=r.urgency, assist_unit_types=tuple(r.assist_unit_types or ()),
            stages=tuple(Stage(*s) for s in (r.stages or ())))
    return out


def read_units(session: Session) -> list[UnitRecord]:
    rows = session.execute(select(UnitRow.code, UnitRow.name, UnitRow.unit_type, UnitRow.level,
                                  UnitRow.area_code, UnitRow.primary).where(UnitRow.active.is_(True)))
    return [UnitRecord(*r) for r in rows]
