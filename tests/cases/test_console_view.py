"""The console's queue read (cases/queue.py) on SQLite and the real PostgreSQL: paging, each filter,
sorting, scoping like CaseService.list; the detail; and one page with 100,000 cases (SQLite)."""
from __future__ import annotations

import shutil
import statistics
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from cases import queue as cv
from cases.service import ServiceError
from data.tokens import Principal
from tests.factories import small_world

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai
CITY = Principal("user", "duty", "duty_officer", "320400")
STREET = Principal("user", "baizhuang", "duty_officer", "320402001")  # the demo's 白庄街道 code
ADMIN = Principal("user", "admin", "admin", "320400")
# points in rect_city: street 320402001 (two grids), street 320402002, district 320403
IN_STREET, IN_STREET_2 = (119.905, 31.705), (119.935, 31.735)
OTHER_STREET, OTHER_DISTRICT = (119.905, 31.765), (119.95, 31.71)
GARBAGE, MANHOLE, DISPUTE, ACCIDENT = "020102", "010151", "030103", "040104"


def _all(f=None, principal=CITY, service=None, sort=None, now=None):
    return cv.queue_page(service, principal, f or cv.QueueFilters(), 0, 500, sort, now=now)


@pytest.fixture
def world(empty_db):
    """Twelve cases over two districts, three streets, four kinds, four sources, in several states."""
    service, clock = small_world(empty_db, T0)
    plan = [
        (GARBAGE, IN_STREET, "patrol", {}), (MANHOLE, IN_STREET_2, "hotline", {}),
        (DISPUTE, IN_STREET, "citizen", {}), (ACCIDENT, IN_STREET_2, "hotline", {"severity": 4}),
        (GARBAGE, OTHER_STREET, "iot", {}), (MANHOLE, OTHER_STREET, "patrol", {}),
        (DISPUTE, OTHER_DISTRICT, "hotline", {}), (GARBAGE, OTHER_DISTRICT, "video", {}),
        (MANHOLE, OTHER_DISTRICT, "citizen", {}), (GARBAGE, (119.915, 31.715), "patrol", {}),
        (DISPUTE, (119.96, 31.72), "patrol", {}), (GARBAGE, (119.91, 31.775), "hotline", {}),
    ]
    ids = []
    for i, (cat, (lon, lat), source, extra) in enumerate(plan):
        clock.now = T0 + timedelta(minutes=7 * i)
        case, _ = service.intake({"category": cat, "lon": lon, "lat": lat, "source": source,
                                  "description": f"第{i}件", **extra}, CITY)
        ids.append(case["id"])
    clock.now = T0 + timedelta(hours=2)
    for cid in ids[:4]:
        service.act(cid, CITY, "accept", 1)
    service.act(ids[0], CITY, "dispatch", 2)
    service.act(ids[1], CITY, "supervise", 2)
    service.act(ids[4], CITY, "reject", 1, note="不属实")
    return service, clock, ids


def test_paging_is_complete_without_overlap_and_newest_first(world):
    service, clock, ids = world
    seen, total = [], None
    for start in range(0, 15, 5):
        page = cv.queue_page(service, CITY, cv.QueueFilters(), start, start + 5, count=start == 0)
        if start == 0:
            total = page["total"]
        else:
            assert page["total"] is None  # counted once, with the first block
        seen += [r["id"] for r in page["rows"]]
    assert total == 12 and len(seen) == 12 and sorted(seen) == sorted(ids)
    assert seen == list(reversed(ids))  # reported 7 minutes apart: newest first
    assert cv.queue_page(service, CITY, cv.QueueFilters(), 100, 200)["rows"] == []


def test_each_filter(world):
    service, clock, ids = world
    F = cv.QueueFilters.from_form

    def ids_of(**kw):
        return sorted(r["id"] for r in _all(F(**kw), service=service)["rows"])

    assert ids_of(states=["accepted"]) == sorted(ids[1:4])
    assert ids_of(states=["dispatched", "rejected"]) == sorted([ids[0], ids[4]])
    assert ids_of(kind="component") == sorted([ids[1], ids[5], ids[8]])
    assert ids_of(kind="emergency") == [ids[3]]
    assert ids_of(category=DISPUTE) == sorted([ids[2], ids[6], ids[10]])
    assert ids_of(area="320402001") == sorted([ids[0], ids[1], ids[2], ids[3], ids[9]])
    assert ids_of(area="320403") == sorted([ids[6], ids[7], ids[8], ids[10]])
    assert ids_of(area="320402001002") == sorted([ids[1], ids[3]])  # a community
    assert ids_of(source="hotline") == sorted([ids[1], ids[3], ids[6], ids[11]])
    assert ids_of(supervised="yes") == [ids[1]]
    assert len(ids_of(supervised="no")) == 11
    assert ids_of(overdue="yes") == [ids[3]]  # the emergency had 60 calendar minutes
    # a month later every accepted case not closed is overdue; the reports not yet accepted (立案) are
    # not, however old their deadline, nor the rejected one (docs/figures.md: one meaning of overdue)
    clock.now = T0 + timedelta(days=30)
    overdue = ids_of(overdue="yes")
    assert overdue == sorted(ids[:4])
    assert sorted(overdue + ids_of(overdue="no")) == sorted(ids)
    # filters combine, and the total counts what the filters keep (a kind counts through its categories)
    both = _all(F(kind="event", source="patrol"), service=service)
    assert sorted(r["id"] for r in both["rows"]) == sorted([ids[0], ids[9]]) and both["total"] == 2
    assert _all(F(kind="component"), service=service)["total"] == 3


def test_bad_filter_values_are_refused_in_chinese(world):
    service, _, _ = world
    for kw, word in (({"states": ["open"]}, "未知状态"), ({"kind": "x"}, "未知类型"), ({"source": "fax"}, "未知来源"),
                     ({"overdue": "maybe"}, "无法识别")):
        with pytest.raises(ServiceError) as exc:
            cv.QueueFilters.from_form(**kw)
        assert exc.value.status == 400 and word in exc.value.message
    with pytest.raises(ServiceError) as exc:
        _all(cv.QueueFilters(category="999999"), service=service)
    assert exc.value.status == 400


def test_sorting(world):
    service, clock, ids = world

    def order(col, direction):
        return [r["id"] for r in _all(service=service, sort=[{"colId": col, "sort": direction}])["rows"]]

    assert order("id", "asc") == sorted(ids)
    assert order("id", "desc") == sorted(ids, reverse=True)
    assert order("reported_at", "asc") == ids
    by_deadline = _all(service=service, sort=[{"colId": "deadline", "sort": "asc"}])["rows"]
    deadlines = [service.get(r["id"], CITY)["deadline"] for r in by_deadline]
    assert deadlines == sorted(deadlines) and len(by_deadline) == 12
    # the emergency (calendar minutes) is due first, the 7-working-day-ish ones last
    assert by_deadline[0]["id"] == ids[3]
    states = [r["state"] for r in _all(service=service, sort=[{"colId": "state", "sort": "asc"}])["rows"]]
    assert states == sorted(states)
    # an unknown column falls back to newest first
    assert order("description", "asc") == list(reversed(ids))


def test_street_officer_sees_only_its_street(world):
    service, _, ids = world
    street = _all(service=service, principal=STREET)
    expected = [ids[0], ids[1], ids[2], ids[3], ids[9]]
    assert sorted(r["id"] for r in street["rows"]) == sorted(expected) and street["total"] == 5
    for r in street["rows"]:
        assert "320402001" in {a["code"] for a in service.get(r["id"], STREET)["chain"]}
    # exactly what CaseService.list (the API) gives the same principal
    listed = service.list(STREET, per_page=100)
    assert sorted(c["id"] for c in listed["items"]) == sorted(expected)
    # narrowing inside the street works; outside it is refused; unknown areas are 404
    assert len(_all(cv.QueueFilters(area="320402001002"), principal=STREET, service=service)["rows"]) == 2
    with pytest.raises(ServiceError) as exc:
        _all(cv.QueueFilters(area="320403"), principal=STREET, service=service)
    assert exc.value.status == 403
    with pytest.raises(ServiceError) as exc:
        _all(cv.QueueFilters(area="999999"), principal=STREET, service=service)
    assert exc.value.status == 404
    assert len(_all(service=service, principal=ADMIN)["rows"]) == 12
    # the street's filter choices stay in the street
    assert {o["value"] for o in cv.area_options(service, STREET)} <= {"320402001", "320402001001", "320402001002"}
    # and so does finding a case by number
    with pytest.raises(ServiceError) as exc:
        cv.find_case(service, STREET, f"#{ids[6]}")
    assert exc.value.status == 403
    assert cv.find_case(service, STREET, f" ＃{ids[0]} ") == ids[0]


def test_scope_clauses_prefix_is_a_range_with_the_same_rows(world):
    """A street's scope is a range on grid_code (index-friendly), selecting exactly LIKE 'code%'."""
    service, _, _ = world
    from data.models import Case

    clauses = service.scope_clauses(STREET)
    compiled = str(clauses[0].compile(compile_kwargs={"literal_binds": True}))
    assert "LIKE" not in compiled and "320402002" in compiled
    with service.db.session() as s:
        by_range = set(s.scalars(select(Case.id).where(*clauses)))
        by_like = set(s.scalars(select(Case.id).where(Case.grid_code.like("320402001%"))))
    assert by_range == by_like and len(by_range) == 5
    assert service._code_prefix(Case.grid_code, "99").compare(Case.grid_code.like("99%"))


def test_rows_carry_what_the_grid_shows(world):
    service, _, ids = world
    rows = {r["id"]: r for r in _all(service=service)["rows"]}
    r = rows[ids[3]]
    assert r["rid"] == str(ids[3]) and r["kind_label"] == "应急事件" and r["source"] == "12345热线"
    assert r["state_label"] == "已立案" and "Ⅳ级" in r["flags"] and r["area"].count("·") == 1
    assert rows[ids[1]]["supervised"] and "督办" in rows[ids[1]]["flags"]
    assert all(row["unit"] for row in rows.values())


def test_detail_actions_countdown_and_criteria(world):
    service, clock, ids = world
    d = cv.case_detail(service, ids[5], CITY)  # reported
    assert [a["action"] for a in d["actions"]] == ["accept", "reject", "verify_request", "void"]
    reject = next(a for a in d["actions"] if a["action"] == "reject")
    assert reject["needs_note"] and reject["note_label"] == "不予立案理由" and reject["form"]
    assert not next(a for a in d["actions"] if a["action"] == "accept")["form"]  # 立案 acts at once
    assert d["category"]["filing"] and d["category"]["closing"]
    # a report races the center's 受理 clock (30 minutes), not the unit's handling deadline
    assert d["countdown"]["label"] == "受理时限" and d["countdown"]["state"] == "overdue"
    assert d["countdown"]["text"].startswith("已超期")
    assert service.allowed_actions(ids[0], CITY) == ["reassign", "suspend", "add_assist", "urge", "supervise",
                                                     "escalate", "void"]  # dispatched
    assert service.allowed_actions(ids[4], CITY) == []  # rejected: nothing left to do
    leader = Principal("user", "leader", "leader", "320400")
    assert service.allowed_actions(ids[0], leader) == ["urge", "supervise", "escalate"]
    with pytest.raises(ServiceError) as exc:
        service.allowed_actions(ids[6], STREET)
    assert exc.value.status == 403
    units = cv.dispatch_units(service, d["case"])
    assert units[0]["value"] == d["case"]["unit"]["code"] and len(units) > 3
    handling = cv.case_detail(service, ids[0], CITY)["countdown"]  # dispatched: the unit's clock from 派遣
    assert handling["label"] == "处置时限" and handling["state"] == "normal" and handling["text"].startswith("剩余")
    filed = cv.case_detail(service, ids[2], CITY)["countdown"]  # accepted: the center's 派遣 clock
    assert filed["label"] == "派遣时限"
    clock.now = T0 + timedelta(days=5)
    late = cv.case_detail(service, ids[0], CITY)["countdown"]  # dispatched
    assert late["state"] == "overdue" and late["text"].startswith("已超期")
    waiting = cv.case_detail(service, ids[5], CITY)  # still reported: its 受理 ran late, the case is not overdue
    assert waiting["case"]["overdue"] is False and waiting["countdown"]["state"] == "overdue"
    assert cv.case_detail(service, ids[4], CITY)["countdown"]["state"] == "done"
    # the handling deadline of a report not accepted yet is not overdue (the old reading, still the countdown's)
    tick = cv.countdown(service, waiting["case"]["deadline"], waiting["case"]["time_unit"], "reported", overdue=False)
    assert tick["state"] == "warning" and "尚未立案" in tick["text"]
    # the emergency counts calendar minutes
    emergency = service.get(ids[3], CITY)
    due = datetime.fromisoformat(emergency["deadline"])
    tick = cv.countdown(service, emergency["deadline"], "minutes", "accepted", now=due - timedelta(minutes=25))
    assert tick["text"] == "剩余 25 分钟"
    # a calendar-clock category (井盖缺失, 2 小时) counts calendar time too, even on a holiday night
    due = datetime(2025, 9, 30, 12, 0, tzinfo=timezone.utc)                    # 20:00 on the eve of 国庆
    tick = cv.countdown(service, due.isoformat(), "hours", "accepted", now=due - timedelta(minutes=25))
    assert tick["text"] == "剩余 25 分钟"
    tick = cv.countdown(service, due.isoformat(), "hours", "accepted", now=due + timedelta(hours=14))
    assert tick["state"] == "overdue" and tick["text"] == "已超期 14.0 小时"  # not 0: the holiday counts


# ---- 100,000 cases ------------------------------------------------------------------------------------------
def _plans(db, statement, params) -> list[str]:
    with db.engine.connect() as conn:
        return [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)]


def test_a_queue_page_with_100000_cases_is_one_index_walk(demo_sqlite_url, tmp_path):
    """Every filter's first page (and its count) reads an index, never the whole table, and is fast."""
    from sqlalchemy import event

    from bench.bench_wall import fill_cases
    from data.area_directory import AreaDirectory
    from cases.service import CaseService
    from data.db import Database

    path = tmp_path / "big.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    fill_cases(path, 100_000, now=datetime.now(timezone.utc), days=365, seed=11)
    db = Database(f"sqlite:///{path}")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE cases SET supervised = 1 WHERE id % 997 = 0"))
    service = CaseService(db, AreaDirectory(db))
    F = cv.QueueFilters.from_form
    cases = [
        ("newest", CITY, F(), None), ("street", STREET, F(), None),
        ("state closed", CITY, F(states=["closed"]), None), ("open states", CITY, F(states=["accepted", "signed"]), None),
        ("kind emergency", CITY, F(kind="emergency"), None), ("category", CITY, F(category=GARBAGE), None),
        ("district", CITY, F(area="320411"), None), ("source", CITY, F(source="hotline"), None),
        ("overdue", CITY, F(overdue="yes"), None), ("supervised", CITY, F(supervised="yes"), None),
        ("by deadline", CITY, F(), [{"colId": "deadline", "sort": "asc"}]),
        ("by state", CITY, F(), [{"colId": "state", "sort": "desc"}]),
    ]
    statements = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM cases" in statement and not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    timings = {}
    for name, principal, filters, sort in cases:
        cv.queue_page(service, principal, filters, 0, 100, sort)  # warm
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            page = cv.queue_page(service, principal, filters, 0, 100, sort, count=False)
            runs.append(time.perf_counter() - t)
        timings[name] = statistics.median(runs) * 1000
        assert page["rows"], name
        event.listen(db.engine, "before_cursor_execute", grab)
        try:
            cv.queue_page(service, principal, filters, 0, 100, sort, count=True)
        finally:
            event.remove(db.engine, "before_cursor_execute", grab)
        for statement, params in statements:
            for detail in _plans(db, statement, params):
                if detail.startswith(("SCAN cases", "SEARCH cases")) and "INDEX" not in detail:
                    pytest.fail(f"{name}: full scan: {detail}")
                if "TEMP B-TREE" in detail and name in ("newest", "state closed", "district", "category", "source",
                                                         "by deadline", "by state"):
                    pytest.fail(f"{name}: sorts instead of walking its index: {detail}")
        statements.clear()
    deep = time.perf_counter()
    cv.queue_page(service, CITY, F(), 90_000, 90_100, count=False)
    timings["page at row 90,000"] = (time.perf_counter() - deep) * 1000
    print("\nqueue page, 100,000 cases (SQLite, median ms): "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    assert max(v for k, v in timings.items() if k != "page at row 90,000") < 150
    db.dispose()


def test_detail_shows_the_cases_photos(world, tmp_path):
    service, _, ids = world
    assert cv.case_detail(service, ids[5], CITY)["photos"] == []
    from cases.photos import save_photo

    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (1, 1), (255, 255, 255, 0)).save(buf, format="PNG")  # a whole PNG: photos are decoded in full
    png = buf.getvalue()
    save_photo(service, ids[5], png, "现场.png", "report", "user:duty", CITY, root=tmp_path)
    photos = cv.case_detail(service, ids[5], CITY)["photos"]
    assert len(photos) == 1 and photos[0]["url"].startswith("/photos/") and photos[0]["kind"] == "report"


# ---- the forms, the unit pickers, the marks, the 督办件 list (issue 14) -----------------------------------------------
def test_each_action_asks_for_what_its_rule_needs():
    from dispatch import lifecycle

    for action in lifecycle.ACTIONS:
        spec = cv.action_spec(action)
        rule = lifecycle.RULES[action]
        assert spec["label"] == rule.label and spec["unit"] == rule.takes_unit
        if rule.needs_note:  # the rule's own words label the field
            assert spec["note"] == "required" and spec["note_label"] == rule.note_label and spec["form"]
        if rule.needs_hours or rule.takes_unit:
            assert spec["form"]
    extend = cv.action_spec("extend")
    assert extend["hours"] == "required" and extend["hours_label"] == "延期时长（工作时）"
    assert cv.action_spec("extend", "calendar")["hours_label"] == "延期时长（小时）"
    sup = cv.action_spec("supervise", "working", 7.5)
    assert sup["hours"] == "optional" and "选填" in sup["hours_label"] and "7.5" in sup["hours_label"]
    assert sup["note"] == "optional" and sup["form"]
    check = cv.action_spec("report_check")
    assert check["choices_name"] == "result" and [c["label"] for c in check["choices"]] == ["属实", "不属实"]
    call = cv.action_spec("callback")
    assert call["choices_name"] == "satisfaction" and call["note"] == "optional"
    assert [c["label"] for c in call["choices"]] == ["满意", "基本满意", "不满意"]
    assert cv.action_spec("reassign")["unit_label"] == "改派给" and cv.action_spec("reassign")["note_label"] == "改派理由"
    for direct in ("accept", "urge", "sign", "close", "approve_extension", "approve_suspension", "resume", "verify"):
        assert not cv.action_spec(direct)["form"], direct


def test_unit_pickers_offer_what_the_service_accepts(world):
    service, clock, ids = world
    case = service.get(ids[0], CITY)  # dispatched to its routed unit
    lead = case["unit"]["code"]
    choices = cv.unit_choices(service, case, service.allowed_actions(ids[0], CITY))
    assert set(choices) == {"reassign", "add_assist"}
    assert lead not in [o["value"] for o in choices["reassign"]["options"]] and choices["reassign"]["value"] is None
    helper = choices["add_assist"]["options"][0]["value"]
    service.act(ids[0], CITY, "add_assist", case["version"], unit=helper)
    case = service.get(ids[0], CITY)
    again = cv.unit_choices(service, case, ["add_assist", "reassign"])
    assert helper not in [o["value"] for o in again["add_assist"]["options"]]
    assert helper not in [o["value"] for o in again["reassign"]["options"]]  # the service refuses it
    with pytest.raises(ServiceError) as exc:
        service.act(ids[0], CITY, "reassign", case["version"], unit=helper, note="改派给协办单位")
    assert exc.value.code == "unit_is_assisting"
    # 派遣 preselects the routed unit; every unit offered serves the case's area (the service takes it)
    filed = service.get(ids[2], CITY)
    dispatch = cv.unit_choices(service, filed, ["dispatch"])["dispatch"]
    assert dispatch["value"] == filed["unit"]["code"] == dispatch["options"][0]["value"]
    other = dispatch["options"][-1]["value"]
    assert service.act(ids[2], CITY, "dispatch", filed["version"], unit=other)["unit"]["code"] == other


def test_queue_rows_mark_supervision_urges_and_the_new_states(world):
    service, clock, ids = world
    service.act(ids[0], CITY, "urge", 3)
    checking = service.act(ids[5], CITY, "verify_request", 1)
    voided = service.act(ids[6], CITY, "void", 1, note="重复上报")
    rows = {r["id"]: r for r in _all(service=service)["rows"]}
    assert rows[ids[1]]["supervised"] and rows[ids[1]]["supervision_level"] == 1
    assert "市级督办" in rows[ids[1]]["flags"] and not rows[ids[1]]["sup_late"]
    assert rows[ids[0]]["urge_count"] == 1 and "催办×1" in rows[ids[0]]["flags"]
    assert rows[checking["id"]]["state_label"] == "核实中" and rows[voided["id"]]["state_label"] == "已作废"
    # the filter keeps working: 督办 only
    sup = _all(cv.QueueFilters.from_form(supervised="yes"), service=service)["rows"]
    assert [r["id"] for r in sup] == [ids[1]]
    # past its own deadline the 督办 reads 逾期
    clock.now = T0 + timedelta(days=5)
    late = {r["id"]: r for r in _all(service=service, now=clock.now)["rows"]}[ids[1]]
    assert late["sup_late"] and "市级督办逾期" in late["flags"]


def test_a_leader_sees_what_is_under_supervision_at_their_level(world):
    service, clock, ids = world
    city_leader = Principal("user", "leader", "leader", "320400")
    district_leader = Principal("user", "dl", "leader", "320402")
    street_officer = STREET
    service.act(ids[0], district_leader, "supervise", 3, note="区领导督办")   # level 2, the district's
    city = cv.supervised_cases(service, city_leader)
    # the nearest 督办 deadline first (7.5 working hours for 垃圾, 24 calendar hours for 井盖: the same
    # instant from a Monday 11:00), ties by id
    assert [i["id"] for i in city["items"]] == [ids[0], ids[1]]
    assert city["total"] == 2 and city["late"] == 0 and city["scope_label"] == "市级及以下督办"
    district_made, city_made = city["items"]
    assert city_made["level_label"] == "市级督办" and city_made["own"] and city_made["by"] == "duty"
    assert district_made["level_label"] == "区级督办" and not district_made["own"] and district_made["by"] == "dl"
    assert district_made["deadline"] <= city_made["deadline"] and not city_made["late"]
    district = cv.supervised_cases(service, district_leader)
    assert [i["id"] for i in district["items"]] == [ids[0]] and district["items"][0]["own"]  # not the city's
    # a duty officer follows every 督办 of their area up, whoever made it
    street = cv.supervised_cases(service, street_officer)  # both in 320402001: the city's 督办 too
    assert {i["id"] for i in street["items"]} == {ids[0], ids[1]} and street["scope_label"] == "辖区内全部督办"
    other_street = Principal("user", "o", "duty_officer", "320402002")
    assert cv.supervised_cases(service, other_street)["items"] == []
    # deadlines pass: the late ones are counted and listed first; a case that ends leaves the list
    clock.now = T0 + timedelta(days=5)
    later = cv.supervised_cases(service, city_leader)
    assert later["late"] == 2 and all(i["late"] for i in later["items"])
    service.act(ids[1], CITY, "void", service.get(ids[1], CITY)["version"], note="误报")
    assert [i["id"] for i in cv.supervised_cases(service, city_leader)["items"]] == [ids[0]]
