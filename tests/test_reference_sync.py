"""The catalog sync (data.reference.sync_catalog): an old database brought to the shipped catalog,
on SQLite and PostgreSQL; and the demo city routing every category without the manual queue."""
from __future__ import annotations

import shutil
from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, text

from data import files
from data.areas import replace_hierarchy
from data.db import Database
from data.models import Case, Category
from data.reference import ensure_units, read_catalog, read_units, sync_catalog
from dispatch.catalog import CatalogError
from dispatch.routing import route_case
from dispatch.units import index_units
from geo.model import AreaRecord
from tests.factories import rect_city

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
# categories this catalog version adds (GB/T 30428.2 class 06): an old database never had them
NEW_IN_THIS_VERSION = {"010601", "010603", "010604", "010606"}
OLD_MAJOR = {"0103": "市容环卫设施", "0104": "园林绿化设施"}  # the old names of two component classes


def _old_catalog_rows() -> list[Category]:
    """The catalog as the previous version shipped it: every renamed category under its old code
    and name (with the old kind of its code), the others as they are, the 06 class missing."""
    catalog = files.catalog()
    changes = files.code_changes(catalog)
    moved_to = {ch.new_code for ch in changes}
    rows = []
    for ch in changes:
        c = catalog[ch.new_code]
        kind = {"01": "component", "02": "event"}[ch.old_code[:2]]
        rows.append(_row(c, code=ch.old_code, name=ch.old_name, kind=kind,
                         major_class=OLD_MAJOR.get(ch.old_code[:4], c.major_class)))
    for c in catalog.values():
        if c.code not in moved_to and c.code not in NEW_IN_THIS_VERSION and c.code not in {ch.old_code for ch in changes}:
            rows.append(_row(c, major_class=OLD_MAJOR.get(c.major_code, c.major_class)))
    return rows


def _row(c, **over) -> Category:
    values = dict(code=c.code, name=c.name, major_class=c.major_class, kind=c.kind,
                  filing_criterion=c.filing_criterion, closing_criterion=c.closing_criterion, unit_type=c.unit_type,
                  level=c.level, time_limit=float(c.time_limit), time_unit=c.time_unit, urgency=c.urgency,
                  assist_unit_types=list(c.assist_unit_types), stages=[[s.name, s.time_limit, s.time_unit] for s in c.stages])
    values.update(over)
    return Category(**values)


def _case(code, kind, grid, n=1) -> list[Case]:
    return [Case(state="reported", category_code=code, kind=kind, source="patrol", lon=119.91, lat=31.71,
                 grid_code=grid, district_code=grid[:6], reported_at=T0, updated_at=T0) for _ in range(n)]


@pytest.fixture
def old_db(empty_db):
    """A database loaded with the previous catalog: cases under old codes, one local category."""
    grid = [r.code for r in rect_city() if r.level == 5][0]
    with empty_db.session() as s:
        replace_hierarchy(s, rect_city())
        s.add_all(_old_catalog_rows())
        s.add(_row(files.catalog()["020102"], code="029901", name="本市自定义类别", major_class="本市扩展"))
        s.flush()
        s.add_all(_case("020101", "event", grid, 3)      # 暴露垃圾 → 020102
                  + _case("020301", "event", grid, 2)    # 违法搭建 → 020101 (the code 暴露垃圾 leaves)
                  + _case("010111", "component", grid)   # 供水管道渗漏: a component → event 020402
                  + _case("020501", "event", grid)       # 路面积水 → 020406 (突发事件 is class 04)
                  + _case("010104", "component", grid)   # 雨水箅子破损: its code stays
                  + _case("029901", "event", grid))      # a city's own category: kept
    return empty_db


def _cases_by_code(db) -> Counter:
    with db.session() as s:
        return Counter({(code, kind): n for code, kind, n in s.execute(
            select(Case.category_code, Case.kind, func.count()).group_by(Case.category_code, Case.kind))})


def test_an_old_database_is_brought_to_the_new_catalog_with_its_cases(old_db):
    with old_db.session() as s:
        report = sync_catalog(s)
    assert report.renamed["020101"] == "020102" and report.renamed["020301"] == "020101"
    assert report.renamed["010111"] == "020402" and report.renamed["020501"] == "020406"
    assert len(report.renamed) == len(files.code_changes())
    old_codes = {r.code for r in _old_catalog_rows()}
    assert set(report.added) == set(files.catalog()) - old_codes  # codes new to it, renames' targets included
    assert NEW_IN_THIS_VERSION <= set(report.added)
    assert report.cases_moved == 7
    assert report.kept == [("029901", "本市自定义类别", 1)]
    assert report.repurposed == []
    assert _cases_by_code(old_db) == Counter({("020102", "event"): 3, ("020101", "event"): 2,
                                              ("020402", "event"): 1, ("020406", "event"): 1,
                                              ("010104", "component"): 1, ("029901", "event"): 1})
    with old_db.session() as s:
        db_catalog = read_catalog(s)
    shipped = files.catalog()
    assert set(db_catalog) == set(shipped) | {"029901"}
    for code, c in shipped.items():
        assert db_catalog[code] == c, code  # every field as the file says (major class names included)
    assert db_catalog["020101"].name == "违法搭建" and db_catalog["010305"].major_class == "市容环境"
    lines = "\n".join(report.lines())
    assert "020101→020102" in lines and "029901" in lines and "7 件" in lines


def test_the_sync_is_idempotent(old_db):
    with old_db.session() as s:
        sync_catalog(s)
    before = _cases_by_code(old_db)
    with old_db.session() as s:
        again = sync_catalog(s)
    assert (again.added, again.updated, again.renamed, again.cases_moved) == ([], [], {}, 0)
    assert again.kept == [("029901", "本市自定义类别", 1)]
    assert _cases_by_code(old_db) == before  # 违法搭建's cases under 020101 are not moved again


def test_a_fresh_database_gets_the_whole_catalog(empty_db):
    with empty_db.session() as s:
        report = sync_catalog(s)
    assert len(report.added) == len(files.catalog()) and not report.renamed and not report.kept
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Category)) == len(files.catalog())


def test_a_code_reused_without_a_rename_is_reported(empty_db):
    with empty_db.session() as s:
        c = files.catalog()["020551"]
        s.add(_row(c, name="某市旧类别"))  # the same code meant something else here, and no rename says so
    with empty_db.session() as s:
        report = sync_catalog(s)
    assert report.repurposed == [("020551", "某市旧类别", "占道经营")]
    assert any("020551" in line and "改变含义" in line for line in report.lines())


def test_a_bad_data_file_changes_nothing(old_db, tmp_path, monkeypatch):
    bad = tmp_path / "code_changes.csv"
    bad.write_text("old_code,old_name,new_code,reason\n020101,暴露垃圾,029999,无此编码\n", encoding="utf-8")
    monkeypatch.setattr(files, "CODE_CHANGES_PATH", bad)
    before = _cases_by_code(old_db)
    with pytest.raises(CatalogError) as info:
        with old_db.session() as s:
            sync_catalog(s)
    assert "029999" in str(info.value)
    assert _cases_by_code(old_db) == before
    with old_db.session() as s:
        assert s.get(Category, "010601") is None and s.get(Category, "020301").name == "违法搭建"


# ----------------------------------------------------------------------------------------
# the demo city: every category routes, at a grid of every district, through the database

@pytest.fixture
def demo_copy(demo_sqlite_url, tmp_path):
    dst = tmp_path / "demo.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), dst)
    db = Database(f"sqlite:///{dst}")
    yield db
    db.dispose()


def test_demo_city_routes_every_category_in_every_district_without_the_manual_queue(demo_copy, capsys):
    with demo_copy.session() as s:
        catalog, units = read_catalog(s), read_units(s)
        areas = {code: (name, level, parent) for code, name, level, parent in
                 s.execute(text("SELECT code, name, level, parent_code FROM areas"))}
    types = files.unit_types()
    rules = files.routing_exceptions(types=types, area_codes=areas)
    index = index_units(units)

    def chain(code):
        out = []
        while code:
            name, level, parent = areas[code]
            out.append(AreaRecord(code, name, level, parent, None))
            code = parent
        return out

    districts = sorted(c for c, (_, lv, _) in areas.items() if lv == 2)
    assert len(districts) == 7
    manual, routed, lights = [], 0, {}
    for d in districts:
        grid = min(c for c, (_, lv, _) in areas.items() if lv == 5 and c.startswith(d))
        for c in catalog.values():
            for severity in ((4, 1) if c.is_emergency else (None,)):
                decision = route_case(c, chain(grid), index, types, severity=severity, exceptions=rules)
                routed += 1
                if decision.manual:
                    manual.append((d, c.code, c.name))
        lights[d] = route_case(catalog["010118"], chain(grid), index, types, exceptions=rules)
    with capsys.disabled():
        print(f"\nrouted {routed} (category, district) pairs of {len(catalog)} categories in {len(districts)} "
              f"districts: {len(manual)} to the manual queue")
    assert manual == []  # the catalog names no category that must go to the manual queue
    for d in ("320402", "320404", "320411"):  # 天宁, 钟楼, 新北: the city's street-lighting office
        assert lights[d].unit_code == "U-320400-street_lighting", d
        assert "由市城市照明管理处管养" in lights[d].reason
    for d in ("320412", "320413", "320481", "320491"):
        assert lights[d].unit_code == f"U-{d}-city_management", d


def test_seed_demo_brings_an_already_seeded_database_forward(demo_copy):
    from demo.seed import seed_demo

    with demo_copy.session() as s:  # as if seeded before: an old class name, no street-lighting office, no devices
        s.execute(text("UPDATE categories SET major_class = '市容环卫设施' WHERE code = '010305'"))
        s.execute(text("DELETE FROM devices"))
        s.execute(text("DELETE FROM units WHERE code = 'U-320400-street_lighting'"))
        s.execute(text("DELETE FROM resource_stock"))  # ... and no emergency resources
        s.execute(text("DELETE FROM resources"))
    said = []
    assert seed_demo(demo_copy, progress=said.append) is False
    assert "更新类别 1 个" in said and "新增处置单位 1 个" in said
    assert any(line.startswith("已写入 6,093 台演示物联设备") for line in said)  # the fleet, after its units
    assert any(line.startswith("已写入 328 项演示应急资源") for line in said)
    with demo_copy.session() as s:
        assert read_catalog(s)["010305"].major_class == "市容环境"
        assert ensure_units(s) == 0
    said.clear()
    seed_demo(demo_copy, progress=said.append)
    assert said == []  # up to date: nothing to say
