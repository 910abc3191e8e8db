"""Reference data in the database: the catalog and the units, loaded and kept in step with the data
files (data.files), and read back as the dispatch core's plain records."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from data import files
from data.models import Area
from data.models import Case as CaseRow
from data.models import Category as CategoryRow
from data.models import Unit as UnitRow
from dispatch.catalog import Category, Stage
from dispatch.units import UnitRecord, demo_units
from geo.model import AreaRecord


@dataclass
class CatalogSync:
    """What one :func:`sync_catalog` did."""

    added: list[str] = field(default_factory=list)             # codes new to the database
    updated: list[str] = field(default_factory=list)           # codes whose row the file changed
    renamed: dict[str, str] = field(default_factory=dict)      # old code → new code (code_changes.csv)
    cases_moved: int = 0                                       # cases whose category_code was renamed
    repurposed: list[tuple[str, str, str]] = field(default_factory=list)  # (code, old name, new name), no rename
    kept: list[tuple[str, str, int]] = field(default_factory=list)  # (code, name, cases): not in the file

    @property
    def written(self) -> int:
        return len(self.added) + len(self.updated)

    def lines(self) -> list[str]:
        """The report, in Chinese, one line a fact (nothing when the database was up to date)."""
        out = []
        if self.added:
            out.append(f"新增类别 {len(self.added)} 个")
        if self.updated:
            out.append(f"更新类别 {len(self.updated)} 个")
        if self.renamed:
            pairs = "，".join(f"{o}→{n}" for o, n in sorted(self.renamed.items()))
            out.append(f"类别改码 {len(self.renamed)} 个（{pairs}），随之改码的案件 {self.cases_moved} 件")
        for code, old, new in self.repurposed:
            out.append(f"注意：类别 {code} 原为“{old}”，现按目录改为“{new}”，其已有案件随之改变含义"
                       f"（code_changes.csv 中没有这次改码）")
        for code, name, n in self.kept:
            out.append(f"保留：类别 {code} {name} 已不在目录中，仍有 {n} 件案件引用，未删除")
        return out


def _row_values(c: Category) -> dict:
    return dict(name=c.name, major_class=c.major_class, kind=c.kind, filing_criterion=c.filing_criterion,
                closing_criterion=c.closing_criterion, unit_type=c.unit_type, level=c.level,
                time_limit=float(c.time_limit), time_unit=c.time_unit, urgency=c.urgency,
                assist_unit_types=list(c.assist_unit_types),
                stages=[[s.name, s.time_limit, s.time_unit] for s in c.stages])


def sync_catalog(session: Session) -> CatalogSync:
    """Bring the database's catalog to the shipped file (data/catalog/categories.csv), in the
    caller's transaction: every category of the file is added or updated; the renames of
    code_changes.csv that this database has not had yet (its old code still carries the old name)
    move the cases of the old code to the new one (and their ``kind`` with them) and drop the old
    row unless the file reuses its code; categories neither in the file nor renamed are kept (cases
    reference them) and reported. Idempotent: a second run changes nothing. A bad data file raises
    CatalogError before anything is written."""
    catalog = files.catalog()
    changes = files.code_changes(catalog)
    report = CatalogSync()
    rows = {r.code: r for r in session.scalars(select(CategoryRow))}

    # Which renames this database still needs is decided on its rows as they are now, before any
    # row is rewritten: a code the file reuses (020101: 暴露垃圾 → 违法搭建) is renamed only while
    # it still carries the old name, so the next run leaves the new owner's cases alone.
    renames = {ch.old_code: ch.new_code for ch in changes
               if ch.old_code in rows and rows[ch.old_code].name == ch.old_name}

    for c in catalog.values():
        values = _row_values(c)
        row = rows.get(c.code)
        if row is None:
            session.add(CategoryRow(code=c.code, **values))
            report.added.append(c.code)
            continue
        if row.name != c.name and c.code not in renames:
            report.repurposed.append((c.code, row.name, c.name))
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        for k, v in changed.items():
            setattr(row, k, v)
        if changed:
            report.updated.append(c.code)
    session.flush()  # every new code exists before a case points at it

    if renames:
        # One statement for every rename: each case is read with its code as it was, so chains and
        # swaps (A → B while B → C) need no order and no temporary codes.
        moved = session.execute(
            update(CaseRow).where(CaseRow.category_code.in_(renames))
            .values(category_code=case(renames, value=CaseRow.category_code),
                    kind=case({old: catalog[new].kind for old, new in renames.items()}, value=CaseRow.category_code))
            .execution_options(synchronize_session=False))
        report.cases_moved = moved.rowcount or 0
        report.renamed = dict(renames)
        for old in renames:
            if old not in catalog:
                session.delete(rows[old])
        session.flush()

    gone = [code for code in rows if code not in catalog and code not in renames]
    if gone:
        counts = dict(session.execute(select(CaseRow.category_code, func.count()).where(CaseRow.category_code.in_(gone))
                                      .group_by(CaseRow.category_code)).all())
        report.kept = [(code, rows[code].name, counts.get(code, 0)) for code in sorted(gone)]
    return report


def ensure_catalog(session: Session) -> int:
    """Load or bring forward the shipped dispatch manual (:func:`sync_catalog`); returns the rows
    added or updated."""
    return sync_catalog(session).written


def check_routing_exceptions(session: Session) -> int:
    """Check data/catalog/routing_exceptions.csv against the hierarchy in the database: CatalogError
    listing every bad row, else the number of exceptions that apply. A file written for another city
    (none of its areas is in this one: the shipped Changzhou rows in a city that imported its own grid)
    applies nowhere and is no error; once one of its areas is the city's, every one must be."""
    codes = set(session.scalars(select(Area.code)))
    if not any(e.area_code in codes for e in files.routing_exceptions()):
        return 0
    return len(files.routing_exceptions(area_codes=codes))


def ensure_units(session: Session) -> int:
    """Generate the default units (bureaus, offices, committees, grid members, utilities) for the
    hierarchy in the database: all of them on an empty table, later only those missing (a unit type
    added to unit_types.csv gets its units; units already there are left as they are)."""
    # the units' names need the nodes' codes, names, levels and parents only: no geometry is read
    nodes = [AreaRecord(code=r.code, name=r.name, level=r.level, parent=r.parent_code, geometry=None)
             for r in session.execute(select(Area.code, Area.name, Area.level, Area.parent_code))]
    units = demo_units(nodes, files.unit_types(), files.unit_patterns())
    have = set(session.scalars(select(UnitRow.code)))
    missing = [u for u in units if u.code not in have]
    session.add_all(UnitRow(code=u.code, name=u.name, unit_type=u.unit_type, level=u.level,
                            area_code=u.area_code, primary=u.primary) for u in missing)
    session.flush()
    return len(missing)


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
