"""Persistence on SQLite and the real PostgreSQL: migrations, the hierarchy, tokens, case rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import shapely
from sqlalchemy import select, func

from data.areas import hierarchy_version, list_areas, load_records, replace_hierarchy
from data.models import ApiToken, Area, Case, CaseHistory, Category, Unit
from data.schema import current_revision, init_db
from data.tokens import create_token, resolve_token
from tests.factories import rect_city


def test_init_db_is_idempotent(empty_db):
    first = current_revision(empty_db)
    assert first is not None
    assert init_db(empty_db) == first
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area)) == 0


def test_hierarchy_round_trip(empty_db):
    records = rect_city()
    with empty_db.session() as s:
        assert replace_hierarchy(s, records) == len(records)
    with empty_db.session() as s:
        back = load_records(s)
        version = hierarchy_version(s)
    assert version
    assert [(r.code, r.name, r.level, r.parent, r.population) for r in back] == \
        sorted((r.code, r.name, r.level, r.parent, r.population) for r in records)
    original = {r.code: r.geometry for r in records}
    assert all(shapely.equals_exact(r.geometry, original[r.code], 1e-12) for r in back)


def test_list_areas_pages_by_level_and_parent(empty_db):
    with empty_db.session() as s:
        replace_hierarchy(s, rect_city())
    with empty_db.session() as s:
        items, total = list_areas(s, level=5, page=2, per_page=10)
        assert total == 2 * 2 * 2 * 3 and len(items) == 10
        kids, n = list_areas(s, parent="320402")
        assert n == 2 and {k["code"] for k in kids} == {"320402001", "320402002"}
        assert all(k["parent"] == "320402" and k["level"] == 3 for k in kids)


def test_replace_is_refused_while_referenced_and_changes_nothing(empty_db):
    with empty_db.session() as s:
        replace_hierarchy(s, rect_city())
        s.add(Unit(code="U1", name="测试单位", unit_type="street_office", level=3, area_code="320402001"))
    with empty_db.session() as s:
        before = hierarchy_version(s)
    smaller = [r for r in rect_city() if not r.code.startswith("320402")]
    with pytest.raises(ValueError, match="320402001"):
        with empty_db.session() as s:
            replace_hierarchy(s, smaller)
    with empty_db.session() as s:
        assert hierarchy_version(s) == before
        assert s.scalar(select(func.count()).select_from(Area)) == len(rect_city())


def test_replace_with_new_hierarchy_keeps_referenced_codes(empty_db):
    with empty_db.session() as s:
        replace_hierarchy(s, rect_city())
        s.add(Unit(code="U1", name="测试单位", unit_type="street_office", level=3, area_code="320402001"))
    renamed = rect_city()
    for r in renamed:
        r.name = "新" + r.name
    with empty_db.session() as s:
        replace_hierarchy(s, renamed)
    with empty_db.session() as s:
        assert s.get(Area, "320402001").name.startswith("新")
        assert s.get(Unit, "U1").area_code == "320402001"


def test_tokens_are_stored_hashed_and_resolve_to_role_and_area(empty_db):
    with empty_db.session() as s:
        replace_hierarchy(s, rect_city())
    with empty_db.session() as s:
        token = create_token(s, "duty_officer", "320402")
    with empty_db.session() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
        assert token not in stored and len(stored) == 1
        p = resolve_token(s, token)
        assert (p.role, p.area_code) == ("duty_officer", "320402")
        assert resolve_token(s, token + "x") is None
        city_token = create_token(s, "wall")
        assert resolve_token(s, city_token).area_code == "320400"


@pytest.mark.parametrize("role,area,unit,message", [
    ("mayor", None, None, "未知角色"),
    ("leader", "999999", None, "不存在"),
    ("unit_handler", "320402", None, "--unit"),
    ("unit_handler", "320402", "NOPE", "单位编码"),
])
def test_bad_token_requests_are_refused(empty_db, role, area, unit, message):
    with empty_db.session() as s:
        replace_hierarchy(s, rect_city())
    with pytest.raises(ValueError, match=message):
        with empty_db.session() as s:
            create_token(s, role, area, unit)
    with empty_db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_case_and_history_rows_keep_utc(empty_db):
    with empty_db.session() as s:
        replace_hierarchy(s, rect_city())
        s.add(Category(code="C1", name="暴露垃圾", major_class="市容环境", kind="event", unit_type="sanitation",
                       level=3, time_limit=4, time_unit="working_hours"))
    reported = datetime(2026, 11, 25, 1, 2, 3, tzinfo=timezone(timedelta(hours=8)))
    with empty_db.session() as s:
        case = Case(state="reported", category_code="C1", kind="event", source="hotline", lon=119.91,
                    lat=31.71, grid_code="320402001001001", district_code="320402", reported_at=reported)
        s.add(case)
        s.flush()
        s.add(CaseHistory(case_id=case.id, actor="test", action="report", to_state="reported"))
        case_id = case.id
    with empty_db.session() as s:
        back = s.get(Case, case_id)
        assert back.reported_at == reported and back.reported_at.tzinfo == timezone.utc
        assert back.version == 1
        assert s.scalar(select(func.count()).select_from(CaseHistory).where(CaseHistory.case_id == case_id)) == 1
    with pytest.raises(Exception):
        with empty_db.session() as s:
            s.add(Case(state="reported", category_code="C1", kind="event", source="hotline", lon=0, lat=0,
                       grid_code="NOT-AN-AREA", district_code="x"))


def test_the_migrations_build_the_models_indexes_of_cases(empty_db):
    """The model's indexes on cases (data/models.py, with their SQLite and PostgreSQL forms) are the ones the
    migrations build, by name: a migration that adds an index without the model, or the reverse, fails here.
    (Alembic's compare_metadata cannot say it: it reflects no expression index on SQLite and reads the two
    dialect forms of one covering index as a change.)"""
    expected = {ix.name for ix in Case.__table__.indexes if ix.name.startswith("ix_")}
    with empty_db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'cases' AND schemaname = current_schema()"
        built = {name for (name,) in conn.exec_driver_sql(sql) if name.startswith("ix_")}
    assert built == expected
    assert "ix_cases_closed_grid" in built


def test_the_migrations_build_the_models_indexes_of_case_history(empty_db):
    """case_history's indexes are the model's (0017: a case's rows by act and time, in place of case_id alone)."""
    expected = {ix.name for ix in CaseHistory.__table__.indexes}
    with empty_db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'case_history'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'case_history' AND schemaname = current_schema()"
        built = {name for (name,) in conn.exec_driver_sql(sql) if name.startswith("ix_")}
    assert built == expected == {"ix_case_history_action_at", "ix_case_history_case_action_at"}
