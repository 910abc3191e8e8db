"""Issue 17's responses through the service, on SQLite and the real PostgreSQL, on a clock the tests move: a plan
activated at a confirmed level with every unit's task, raised and lowered, acknowledgements, the checklist, the
information reports and their deadlines (one missed), the end, and who may command what."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cases.service import CaseService, ServiceError
from data.area_directory import AreaDirectory
from data.tokens import Principal
from emergency.response import ResponseService
from tests.factories import small_world

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 22, 10, tzinfo=SH)     # a Monday night: emergencies run on calendar minutes
POINT = {"lon": 119.905, "lat": 31.705}            # grid 320402001001001 of rect_city
GAS_LEAK = "040102"

CITY_OFFICER = Principal("user", "city_officer", "duty_officer", "320400")
DISTRICT_OFFICER = Principal("user", "district_officer", "duty_officer", "320402")
STREET_OFFICER = Principal("user", "street_officer", "duty_officer", "320402001")
ADMIN = Principal("user", "admin", "admin", "320400")

DISTRICT_LEAD = "U-320402-housing_construction"
CITY_LEAD = "U-320400-housing_construction"
GAS = "U-320400-gas"
DISTRICT_FIRE = "U-320402-fire_rescue"


def handler(unit: str) -> Principal:
    return Principal("user", f"handler:{unit}", "unit_handler", unit.split("-")[1], unit)


@pytest.fixture
def world(empty_db):
    cases, clock = small_world(empty_db, T0)
    return cases, ResponseService(empty_db, AreaDirectory(empty_db), cases), clock


def gas_leak(cases: CaseService, severity: int = 4) -> dict:
    body = {"category": GAS_LEAK, "description": "小区门口燃气管道泄漏，气味浓烈", "source": "hotline",
            "severity": severity, **POINT}
    case = cases.intake(body, CITY_OFFICER)[0]
    return cases.act(case["id"], CITY_OFFICER, "accept", case["version"])


def act(responses: ResponseService, case: dict, who: Principal, action: str, **kw) -> dict:
    return responses.act(case["id"], who, action, case["version"], **kw)


def refused(status: int, code: str, responses, case, who, action, **kw) -> ServiceError:
    before = responses.cases.get(case["id"], None)
    with pytest.raises(ServiceError) as info:
        act(responses, case, who, action, **kw)
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    after = responses.cases.get(case["id"], None)
    assert (after["version"], len(after["history"]), after.get("response")) == \
        (before["version"], len(before["history"]), before.get("response")), "a refusal writes nothing"
    return info.value


def test_activation_gives_every_unit_its_task_and_the_level_its_checklist(world):
    cases, responses, clock = world
    case = gas_leak(cases)
    assert case["response"] is None
    clock.now += timedelta(minutes=5)
    after = act(responses, case, DISTRICT_OFFICER, "activate_plan", level=4)
    r = after["response"]
    assert (r["plan"]["code"], r["level"], r["commanding_level"], r["status"]) == ("gas_leak", 4, 2, "active")
    assert after["severity"] == 4 and after["version"] == case["version"] + 1
    tasks = {t["unit"]["code"]: t for t in r["tasks"]}
    # the plan's lead at the district, its assisting types each where it serves (gas: the city's utility)
    assert set(tasks) == {DISTRICT_LEAD, GAS, DISTRICT_FIRE, "U-320402-public_security",
                          "U-320402-emergency_management"}
    assert [t["role"] for t in r["tasks"]].count("lead") == 1 and tasks[DISTRICT_LEAD]["role"] == "lead"
    now = clock()
    assert all(t["deadline"] == (now + timedelta(minutes=30)).astimezone(SH).isoformat(timespec="seconds")
               for t in r["tasks"]), "a level IV task is acknowledged within 30 minutes"
    assert [i["item"] for i in r["checklist"]][:2] == ["关闭泄漏点上游阀门，切断气源", "设立警戒区，禁绝火源，疏散警戒区内人员"]
    assert len(r["checklist"]) == 4 and not any(i["done_at"] for i in r["checklist"])
    # every task unit's handlers now see the case (the joint dispatch)
    assert set(tasks) - {after["unit"]["code"]} <= {u["code"] for u in after["units"]}
    assert cases.get(case["id"], handler(GAS))["id"] == case["id"]
    # the first report is owed 30 minutes after the activation
    assert r["next_report"] == {"kind": "first", "kind_label": "首报", "overdue": False,
                                "due_at": (now + timedelta(minutes=30)).astimezone(SH).isoformat(timespec="seconds")}
    last = after["history"][-1]
    assert last["action"] == "activate_plan" and last["action_label"] == "启动预案" and "城镇燃气事故应急预案" in last["note"]
    refused(422, "already_active", responses, after, DISTRICT_OFFICER, "activate_plan", level=4)


def test_who_may_command_follows_the_commanding_level(world):
    cases, responses, clock = world
    case = gas_leak(cases)
    err = refused(403, "forbidden", responses, case, STREET_OFFICER, "activate_plan", level=4)
    assert "区级" in err.message
    # a level III response is the city's: the district's officer may not start it, the city's may
    refused(403, "forbidden", responses, case, DISTRICT_OFFICER, "activate_plan", level=3)
    refused(403, "forbidden", responses, case, handler(DISTRICT_LEAD), "activate_plan", level=4)
    after = act(responses, case, CITY_OFFICER, "activate_plan", level=3)
    assert after["response"]["commanding_level"] == 1
    refused(403, "forbidden", responses, after, DISTRICT_OFFICER, "report", kind="first", text="首报")
    refused(403, "forbidden", responses, after, DISTRICT_OFFICER, "change_level", level=4)


def test_raising_adds_units_and_actions_and_reports_upward_lowering_is_recorded(world):
    cases, responses, clock = world
    case = act(responses, gas_leak(cases), DISTRICT_OFFICER, "activate_plan", level=4)
    # the district may not raise to a city-level response
    refused(403, "forbidden", responses, case, DISTRICT_OFFICER, "change_level", level=2)
    clock.now += timedelta(minutes=20)
    raised = act(responses, case, CITY_OFFICER, "change_level", level=2)
    r = raised["response"]
    assert (r["level"], r["commanding_level"], raised["severity"], raised["report_upward"]) == (2, 1, 2, True)
    tasks = {t["unit"]["code"]: t for t in r["tasks"]}
    assert CITY_LEAD in tasks, "the city's bureau is tasked at a city-level response"
    assert tasks[DISTRICT_LEAD]["role"] == "lead", "the tasks already given stay"
    assert len(r["checklist"]) == 4 + 3 + 2 and "启动市级燃气事故应急指挥部" in [i["item"] for i in r["checklist"]]
    upward = [x for x in r["reports"] if x["kind"] == "upward"]
    assert len(upward) == 1 and "向省级报告" in upward[0]["text"] and "Ⅱ级（重大）" in upward[0]["text"]
    assert raised["history"][-1]["note"].startswith("响应等级由Ⅳ级（一般）提升为Ⅱ级（重大）")
    lowered = act(responses, raised, CITY_OFFICER, "change_level", level=3)
    assert (lowered["response"]["level"], lowered["response"]["commanding_level"]) == (3, 1)
    assert lowered["history"][-1]["note"].startswith("响应等级由Ⅱ级（重大）降低为Ⅲ级（较大）")
    assert len([x for x in lowered["response"]["reports"] if x["kind"] == "upward"]) == 1
    refused(422, "same_level", responses, lowered, CITY_OFFICER, "change_level", level=3)


def test_units_acknowledge_their_own_tasks_late_ones_are_marked(world):
    cases, responses, clock = world
    case = act(responses, gas_leak(cases), DISTRICT_OFFICER, "activate_plan", level=4)
    clock.now += timedelta(minutes=10)
    case = act(responses, case, handler(GAS), "acknowledge")
    task = {t["unit"]["code"]: t for t in case["response"]["tasks"]}
    assert task[GAS]["acknowledged_at"] and task[GAS]["acknowledged_by"] == f"handler:{GAS}" and not task[GAS]["overdue"]
    refused(422, "already_acknowledged", responses, case, handler(GAS), "acknowledge")
    refused(403, "forbidden", responses, case, DISTRICT_OFFICER, "acknowledge")
    # a unit with no task cannot see the case at all
    with pytest.raises(ServiceError) as info:
        act(responses, case, handler("U-320402-city_management"), "acknowledge")
    assert info.value.status == 403
    clock.now += timedelta(minutes=25)  # 35 minutes after the activation: past the 30 allowed
    active = responses.active(CITY_OFFICER)
    assert [u["code"] for u in active[0]["overdue_tasks"]] == [
        t["unit"]["code"] for t in case["response"]["tasks"] if t["unit"]["code"] != GAS]
    case = act(responses, case, handler(DISTRICT_FIRE), "acknowledge")
    assert case["history"][-1]["note"].endswith("（超时）")
    assert {t["unit"]["code"]: t["overdue"] for t in case["response"]["tasks"]}[DISTRICT_FIRE] is True


def test_the_checklist_is_ticked_by_the_command_or_the_lead_unit(world):
    cases, responses, clock = world
    case = act(responses, gas_leak(cases), DISTRICT_OFFICER, "activate_plan", level=4)
    case = act(responses, case, DISTRICT_OFFICER, "check_item", item=1)
    case = act(responses, case, handler(DISTRICT_LEAD), "check_item", item="设立警戒区，禁绝火源，疏散警戒区内人员")
    done = [(i["position"], i["by"]) for i in case["response"]["checklist"] if i["done_at"]]
    assert done == [(1, "district_officer"), (2, f"handler:{DISTRICT_LEAD}")]
    refused(403, "forbidden", responses, case, handler(GAS), "check_item", item=3)
    refused(422, "already_done", responses, case, DISTRICT_OFFICER, "check_item", item=1)
    refused(422, "unknown_item", responses, case, DISTRICT_OFFICER, "check_item", item=99)


def test_reports_first_updates_final_with_deadlines_and_a_missed_one(world):
    cases, responses, clock = world
    case = act(responses, gas_leak(cases), DISTRICT_OFFICER, "activate_plan", level=4)
    activated = clock()
    refused(422, "report_order", responses, case, DISTRICT_OFFICER, "report", kind="update", text="续报")
    clock.now += timedelta(minutes=41)  # the first report was due at 30 minutes: missed
    assert responses.active(DISTRICT_OFFICER)[0]["next_report"]["overdue"] is True
    draft = responses.draft(case["id"], DISTRICT_OFFICER, "first")
    assert draft["text"].startswith("【首报】燃气泄漏（Ⅳ级（一般））") and "城镇燃气事故应急预案" in draft["text"]
    case = act(responses, case, DISTRICT_OFFICER, "report", kind="first", text=draft["text"],
               fields={"deaths": 0, "injuries": 1, "evacuated": 120, "losses": "正在核实"})
    first = [x for x in case["response"]["reports"] if x["filed_at"]][0]
    assert first["late"] is True and first["fields"]["evacuated"] == 120
    assert first["due_at"] == (activated + timedelta(minutes=30)).astimezone(SH).isoformat(timespec="seconds")
    assert case["history"][-1]["note"] == "报送首报（超时）"
    # updates every 2 hours after the latest report
    owed = case["response"]["next_report"]
    assert owed["kind"] == "update" and owed["due_at"] == (clock() + timedelta(hours=2)).astimezone(SH).isoformat(timespec="seconds")
    clock.now += timedelta(minutes=90)
    case = act(responses, case, DISTRICT_OFFICER, "report", kind="update", text="续报一：泄漏已切断")
    assert [x for x in case["response"]["reports"] if x["filed_at"]][-1]["late"] is False
    assert responses.draft(case["id"], DISTRICT_OFFICER, "update")["fields"]["evacuated"] == 120, \
        "a draft carries the figures last reported"
    refused(422, "final_report_missing", responses, case, DISTRICT_OFFICER, "end_response")
    # the handling done (the lead unit's 处置反馈): the final report is owed within a day of it
    case = cases.act(case["id"], CITY_OFFICER, "dispatch", case["version"], unit=DISTRICT_LEAD) \
        if case["state"] == "accepted" else case
    case = cases.act(case["id"], handler(DISTRICT_LEAD), "sign", case["version"])
    case = cases.act(case["id"], handler(DISTRICT_LEAD), "resolve", case["version"], note="泄漏点已修复")
    resolved = clock()
    owed = case["response"]["next_report"]
    assert owed["kind"] == "final" and owed["due_at"] == (resolved + timedelta(hours=24)).astimezone(SH).isoformat(timespec="seconds")
    clock.now += timedelta(hours=3)
    case = act(responses, case, DISTRICT_OFFICER, "report", kind="final", text="终报：处置完毕")
    assert case["response"]["next_report"] is None
    refused(422, "report_order", responses, case, DISTRICT_OFFICER, "report", kind="update", text="再报")
    case = act(responses, case, DISTRICT_OFFICER, "end_response")
    assert case["response"]["status"] == "ended" and case["response"]["ended_by"] == "district_officer"
    assert responses.active(CITY_OFFICER) == []
    refused(422, "response_ended", responses, case, CITY_OFFICER, "change_level", level=3)


def test_bad_input_is_refused_before_anything_changes(world):
    cases, responses, clock = world
    case = gas_leak(cases)
    for kw in ({"level": 7}, {"level": "3"}, {"level": True}, {}):
        refused(400, "bad_request", responses, case, DISTRICT_OFFICER, "activate_plan", **kw)
    refused(404, "not_found", responses, case, DISTRICT_OFFICER, "activate_plan", level=4, plan="nope")
    refused(422, "plan_not_for_category", responses, case, DISTRICT_OFFICER, "activate_plan", level=4, plan="fire")
    case = act(responses, case, DISTRICT_OFFICER, "activate_plan", level=4)
    refused(400, "bad_request", responses, case, DISTRICT_OFFICER, "report", kind="weekly", text="x")
    refused(400, "bad_request", responses, case, DISTRICT_OFFICER, "report", kind="first", text=" ")
    refused(400, "bad_request", responses, case, DISTRICT_OFFICER, "report", kind="first", text="x",
            fields={"deaths": -1})
    refused(400, "bad_request", responses, case, DISTRICT_OFFICER, "report", kind="first", text="x",
            fields={"weather": "rain"})
    refused(400, "bad_request", responses, case, DISTRICT_OFFICER, "check_item", item=None)
    with pytest.raises(ServiceError) as info:
        responses.act(case["id"], DISTRICT_OFFICER, "activate_plan", case["version"] - 1, level=4)
    assert info.value.status == 409
    # an ordinary case has no response
    garbage = cases.intake({"category": "020102", "description": "垃圾", "source": "hotline", **POINT}, CITY_OFFICER)[0]
    garbage = cases.act(garbage["id"], CITY_OFFICER, "accept", garbage["version"])
    refused(422, "not_emergency", responses, garbage, CITY_OFFICER, "activate_plan", level=4)
    assert "response" not in cases.get(garbage["id"], None)


def test_a_plan_is_activated_only_on_an_accepted_open_case(world):
    cases, responses, clock = world
    body = {"category": GAS_LEAK, "description": "燃气味", "source": "hotline", "severity": 4, **POINT}
    case = cases.intake(body, CITY_OFFICER)[0]
    refused(422, "illegal_transition", responses, case, CITY_OFFICER, "activate_plan", level=4)


def test_general_plan_covers_emergencies_without_their_own(world):
    cases, responses, clock = world
    body = {"category": "040106", "description": "电梯困人", "source": "hotline", "severity": 4, **POINT}
    case = cases.intake(body, CITY_OFFICER)[0]
    case = cases.act(case["id"], CITY_OFFICER, "accept", case["version"])
    case = act(responses, case, DISTRICT_OFFICER, "activate_plan", level=4)
    r = case["response"]
    assert r["plan"]["code"] == "general"
    # the category's own lead (market supervision) and assisting types (fire rescue)
    assert [(t["unit"]["code"], t["role"]) for t in r["tasks"]] == [
        ("U-320402-market_supervision", "lead"), ("U-320402-fire_rescue", "assist")]
