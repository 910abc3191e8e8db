"""The lifecycle of issue 14 through the case service, on SQLite and the real PostgreSQL, on a clock the
tests move: the scheduler's 催办 at 80 % and 督办 at the deadline, 挂账/解挂, 改派, 驳回, 延期, 回访/重办,
协办, 核实, 作废, the case object of CONTRACT.md, one audit row per step and 409 on a stale version."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from cases.service import CaseService, ServiceError
from data.models import CasePenalty, CaseSupervision
from data.tokens import Principal
from tests.factories import small_world

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
RULES_FILE = json.loads((Path(__file__).resolve().parents[2] / "data/catalog/center_rules.json")
                        .read_text(encoding="utf-8"))
POINTS = RULES_FILE["penalties"]


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)


def iso(*args) -> str:
    """How the case object writes a time: the city's offset, to the second."""
    return datetime(*args, tzinfo=SH).isoformat()


T0 = sh(2026, 11, 23, 10, 0)                  # Monday 10:00
POINT = {"lon": 119.905, "lat": 31.705}       # grid 320402001001001 of rect_city
GRID = "320402001001001"
GARBAGE = "020102"                            # 暴露垃圾: 4 working hours, routed to the district bureau
LEAD = "U-320402-city_management"
ASSIST = "U-320402001-street_office"
OTHER = "U-320402-housing_construction"
FAR_UNIT = "U-320403-housing_construction"   # serves the other district

OFFICER = Principal("user", "officer", "duty_officer", "320400")
LEADER = Principal("user", "leader", "leader", "320402")
GRID_MEMBER = Principal("user", "grid1", "grid_member", GRID)
OTHER_GRID_MEMBER = Principal("user", "grid2", "grid_member", "320402001001002")


def handler(unit: str, area: str = "320402") -> Principal:
    return Principal("user", f"handler:{unit}", "unit_handler", area, unit)


@pytest.fixture
def world(empty_db):
    return small_world(empty_db, T0)


def report(service, **extra) -> dict:
    body = {"category": GARBAGE, "description": "路边垃圾堆放", "source": "hotline", **POINT, **extra}
    return service.intake(body, OFFICER)[0]


def act(service, case: dict, who: Principal, action: str, **kw) -> dict:
    return service.act(case["id"], who, action, case["version"], **kw)


def refused(status: int, code: str, service, case: dict, who: Principal, action: str, **kw) -> ServiceError:
    before = service.get(case["id"], None)
    with pytest.raises(ServiceError) as info:
        act(service, case, who, action, **kw)
    err = info.value
    assert (err.status, err.code) == (status, code), err.message
    assert err.message
    after = service.get(case["id"], None)
    assert (after["version"], after["state"], len(after["history"])) == \
        (before["version"], before["state"], len(before["history"])), "a refusal writes nothing"
    return err


def dispatched(service, clock, at: datetime = T0, **extra) -> dict:
    clock.now = at
    case = report(service, **extra)
    case = act(service, case, OFFICER, "accept")
    return act(service, case, OFFICER, "dispatch")


def rows(service, model, case_id: int) -> list:
    with service.db.session() as s:
        return list(s.scalars(select(model).where(model.case_id == case_id).order_by(model.id)))


# ----------------------------------------------------------------------------------------
# 催办 at 80 %, 督办 at 100 %: the scheduler (remind_due), rules as data

def test_the_scheduler_urges_at_80_percent_and_supervises_at_the_deadline_once_each(world):
    service, clock = world
    case = dispatched(service, clock)
    assert (case["deadline"], case["warning_at"]) == (iso(2026, 11, 23, 15, 30), iso(2026, 11, 23, 14, 42))
    assert case["handling_level"] == 2 and case["unit"]["code"] == LEAD

    clock.now = sh(2026, 11, 23, 14, 41)
    assert service.remind_due() == 0
    assert service.get(case["id"], None)["version"] == case["version"]

    clock.now = sh(2026, 11, 23, 14, 43)
    assert service.remind_due() == 1
    urged = service.get(case["id"], OFFICER)
    assert (urged["state"], urged["unit"]["code"], urged["handling_level"]) == ("dispatched", LEAD, 2)
    assert urged["version"] == case["version"] + 1 and urged["urge_count"] == 1
    assert [(s["kind"], s["automatic"], s["rule"], s["for_deadline"], s["unit"]["code"])
            for s in urged["supervision"]] == [("urge", True, "urge_at_warning", iso(2026, 11, 23, 15, 30), LEAD)]
    assert [(p["rule"], p["points"], p["unit"]["code"]) for p in urged["penalties"]] == [("urge", POINTS["urge"], LEAD)]
    assert urged["penalty_points"] == POINTS["urge"] == 0.5
    last = urged["history"][-1]
    assert (last["action"], last["from"], last["to"], last["actor"]) == ("urge", "dispatched", "dispatched",
                                                                           "system:scheduler")
    assert last["note"] == RULES_FILE["reminders"][0]["note"]
    [sup] = rows(service, CaseSupervision, case["id"])
    assert (sup.kind, sup.automatic, sup.rule, sup.unit_code) == ("urge", True, "urge_at_warning", LEAD)
    [pen] = rows(service, CasePenalty, case["id"])
    assert (pen.unit_code, pen.points, pen.rule) == (LEAD, POINTS["urge"], "urge")

    assert service.remind_due() == 0                   # the same deadline is urged once
    clock.now = sh(2026, 11, 23, 15, 29)
    assert service.remind_due() == 0

    clock.now = sh(2026, 11, 23, 15, 31)
    assert service.remind_due() == 1
    late = service.get(case["id"], OFFICER)
    assert (late["state"], late["unit"]["code"], late["handling_level"]) == ("dispatched", LEAD, 2)
    assert late["overdue"] is True and late["supervised"] is True
    assert late["supervision_level"] == 1                  # a level above the district's handling
    assert late["supervision_deadline"] == iso(2026, 11, 24, 15, 31)     # its own: 7.5 working hours
    sup = late["supervision"][-1]
    assert (sup["kind"], sup["automatic"], sup["rule"], sup["level"], sup["level_label"], sup["deadline"]) == \
        ("supervise", True, "supervise_at_deadline", 1, "市级", iso(2026, 11, 24, 15, 31))
    assert [p["points"] for p in late["penalties"]] == [POINTS["urge"], POINTS["supervise"]]
    assert late["penalty_points"] == POINTS["urge"] + POINTS["supervise"]
    assert [r.rule for r in rows(service, CaseSupervision, case["id"])] == ["urge_at_warning", "supervise_at_deadline"]

    assert service.remind_due() == 0
    clock.now += timedelta(days=3)
    assert service.remind_due() == 0
    final = service.get(case["id"], OFFICER)
    assert [h["action"] for h in final["history"]] == ["report", "accept", "dispatch", "urge", "supervise"]


def test_both_reminders_at_once_for_a_case_found_late(world):
    service, clock = world
    case = dispatched(service, clock)
    clock.now = sh(2026, 11, 24, 9, 0)
    assert service.remind_due() == 2
    case = service.get(case["id"], OFFICER)
    assert [s["kind"] for s in case["supervision"]] == ["urge", "supervise"] and case["version"] == 5


def test_an_approved_extension_gives_a_new_deadline_that_is_reminded_anew(world):
    service, clock = world
    case = dispatched(service, clock)
    clock.now = sh(2026, 11, 23, 14, 43)
    assert service.remind_due() == 1
    lead = handler(LEAD)
    case = service.get(case["id"], lead)
    case = act(service, case, lead, "sign")
    clock.now = sh(2026, 11, 23, 15, 0)
    case = act(service, case, lead, "extend", hours=4, note="需协调供电部门断电")
    assert case["extension_pending_hours"] == 4 and case["deadline"] == iso(2026, 11, 23, 15, 30)
    clock.now = sh(2026, 11, 23, 15, 10)
    case = act(service, case, OFFICER, "approve_extension")
    # 15:30 + 4 working hours = Tuesday 10:30; the warning: 80 % of the 8 h from 派遣 = Tuesday 08:54
    assert (case["deadline"], case["warning_at"]) == (iso(2026, 11, 24, 10, 30), iso(2026, 11, 24, 8, 54))
    assert case["extension_count"] == 1 and case["extension_pending_hours"] is None

    clock.now = sh(2026, 11, 23, 15, 31)       # the old deadline: nothing, it is not the case's any more
    assert service.remind_due() == 0
    clock.now = sh(2026, 11, 24, 8, 53)
    assert service.remind_due() == 0
    clock.now = sh(2026, 11, 24, 8, 55)
    assert service.remind_due() == 1
    clock.now = sh(2026, 11, 24, 10, 31)
    assert service.remind_due() == 1
    assert service.remind_due() == 0
    case = service.get(case["id"], OFFICER)
    assert [(s["kind"], s["for_deadline"]) for s in case["supervision"]] == [
        ("urge", iso(2026, 11, 23, 15, 30)), ("urge", iso(2026, 11, 24, 10, 30)),
        ("supervise", iso(2026, 11, 24, 10, 30))]
    assert case["urge_count"] == 2 and case["state"] == "signed" and case["unit"]["code"] == LEAD
    assert case["penalty_points"] == 2 * POINTS["urge"] + POINTS["supervise"]


def test_a_denied_extension_moves_nothing(world):
    service, clock = world
    case = dispatched(service, clock)
    lead = handler(LEAD)
    clock.now = sh(2026, 11, 23, 11, 0)
    case = act(service, case, lead, "extend", hours=8, note="材料未到")
    case = act(service, case, OFFICER, "deny_extension", note="时限内可完成")
    assert (case["deadline"], case["warning_at"]) == (iso(2026, 11, 23, 15, 30), iso(2026, 11, 23, 14, 42))
    assert case["extension_count"] == 0 and case["extension_pending_hours"] is None
    assert case["history"][-1]["note"] == "时限内可完成"
    clock.now = sh(2026, 11, 23, 15, 31)
    assert service.remind_due() == 2


def test_two_schedulers_at_once_send_each_reminder_once(world):
    service, clock = world
    ids = [dispatched(service, clock, lon=POINT["lon"] + 0.002 * i)["id"] for i in range(4)]
    clock.now = sh(2026, 11, 23, 15, 31)
    others = [CaseService(service.db, service.areas, clock=clock) for _ in range(2)]
    start = threading.Barrier(3)
    sent, errors = [], []

    def run(s):
        try:
            start.wait()
            sent.append(s.remind_due())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in [service, *others]]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and sum(sent) == 8
    for case_id in ids:
        case = service.get(case_id, OFFICER)
        assert [s["kind"] for s in case["supervision"]] == ["urge", "supervise"], case_id
        assert [h["action"] for h in case["history"]][-2:] == ["urge", "supervise"]
        assert len(rows(service, CasePenalty, case_id)) == 2
    assert sum(s.remind_due() for s in [service, *others]) == 0


def test_a_scheduler_running_between_another_ones_reminder_and_its_mark_sends_nothing_more(world):
    """Process A sends the urge; process B runs its whole pass before A notes the urge as sent: B must
    see that it was sent (the note belongs to the urge's own transaction)."""
    service, clock = world
    case = dispatched(service, clock)
    clock.now = sh(2026, 11, 23, 14, 43)
    other = CaseService(service.db, service.areas, clock=clock)
    real_act = service.act
    by_other = []

    def act_then_the_other_runs(*args, **kw):
        out = real_act(*args, **kw)
        by_other.append(other.remind_due())
        return out

    service.act = act_then_the_other_runs
    assert service.remind_due() + sum(by_other) == 1
    assert service.get(case["id"], OFFICER)["urge_count"] == 1


def test_a_reminder_crossed_by_a_person_is_sent_at_the_next_run(world):
    """The handler signs between the scheduler's read and its urge: the urge meets a new version (409)
    and is not lost: the next run sends it."""
    service, clock = world
    case = dispatched(service, clock)
    clock.now = sh(2026, 11, 23, 14, 43)
    real_act = service.act
    lead = handler(LEAD)

    def crossed(case_id, principal, action, version, **kw):
        if principal.role == "system" and not crossed.done:
            crossed.done = True
            real_act(case_id, lead, "sign", version)
        return real_act(case_id, principal, action, version, **kw)

    crossed.done = False
    service.act = crossed
    assert service.remind_due() == 0
    service.act = real_act
    assert service.remind_due() == 1
    case = service.get(case["id"], OFFICER)
    assert case["state"] == "signed" and case["urge_count"] == 1


def test_no_reminder_for_a_case_out_of_the_units_hands(world):
    service, clock = world
    suspended = dispatched(service, clock)
    suspended = act(service, suspended, OFFICER, "suspend", note="等待专项资金")
    resolved = dispatched(service, clock, lon=POINT["lon"] + 0.01)
    lead = handler(LEAD)
    resolved = act(service, act(service, resolved, lead, "sign"), lead, "resolve", note="已清运")
    returned = dispatched(service, clock, lon=POINT["lon"] + 0.02)
    returned = act(service, returned, lead, "return", note="非本单位职责")
    clock.now = sh(2026, 11, 25, 9, 0)
    assert service.remind_due() == 0
    for case in (suspended, resolved, returned):
        assert service.get(case["id"], OFFICER)["supervision"] == []


def test_a_person_urges_and_supervises_by_hand(world):
    service, clock = world
    case = dispatched(service, clock)
    clock.now = sh(2026, 11, 23, 11, 0)
    case = act(service, case, LEADER, "urge", note="群众反映强烈，请尽快处置")
    assert case["state"] == "dispatched" and case["urge_count"] == 1
    sup = case["supervision"][-1]
    assert (sup["kind"], sup["automatic"], sup["rule"], sup["actor"], sup["level"]) == ("urge", False, None, "leader", 2)
    case = act(service, case, LEADER, "supervise", hours=4, note="区领导督办")
    assert case["supervision_level"] == 2 and case["supervision_deadline"] == iso(2026, 11, 23, 16, 30)
    refused(422, "already_supervised", service, case, LEADER, "supervise")
    # the scheduler's 督办 a level higher still comes at the deadline
    clock.now = sh(2026, 11, 23, 15, 31)
    assert service.remind_due() == 2
    case = service.get(case["id"], OFFICER)
    assert [(s["kind"], s["level"], s["automatic"]) for s in case["supervision"]] == [
        ("urge", 2, False), ("supervise", 2, False), ("urge", None, True), ("supervise", 1, True)]
    refused(403, "forbidden_role", service, case, GRID_MEMBER, "urge")
    refused(403, "forbidden_role", service, case, handler(LEAD), "supervise")


# ----------------------------------------------------------------------------------------
# the clock: 挂账 stops it, 解挂 resumes it, 改派 and 重办 restart it, 驳回 lets it run

def test_a_suspension_stops_the_clock_and_the_resumption_keeps_exactly_what_was_left(world):
    service, clock = world
    case = dispatched(service, clock)
    lead = handler(LEAD)
    clock.now = sh(2026, 11, 23, 11, 0)
    case = act(service, case, lead, "request_suspension", note="需等待管线迁改")
    assert case["state"] == "dispatched" and case["suspension"] == {"state": "requested",
                                                                    "since": iso(2026, 11, 23, 11, 0)}
    refused(422, "suspension_pending", service, case, lead, "request_suspension", note="再申请")
    case = act(service, case, OFFICER, "approve_suspension")
    assert case["state"] == "suspended" and case["suspended_at"] == iso(2026, 11, 23, 11, 0)
    assert case["suspension"] == {"state": "suspended", "since": iso(2026, 11, 23, 11, 0),
                                  "from_state": "dispatched", "remaining_hours": 3.0}
    assert case["sla"] is None
    handle = next(s for s in case["stages"] if s["name"] == "handle")
    assert handle["paused"] is True and handle["done_at"] is None
    refused(403, "forbidden_role", service, case, lead, "resume")
    # two days (and the old deadline) go by while suspended; nothing is reminded
    clock.now = sh(2026, 11, 25, 16, 0)
    assert service.remind_due() == 0
    case = act(service, service.get(case["id"], OFFICER), OFFICER, "resume")
    assert case["state"] == "dispatched" and case["resumed_at"] == iso(2026, 11, 25, 16, 0)
    assert case["suspension"] is None
    # 3 working hours from Wednesday 16:00: 1.5 h that day, 1.5 h on Thursday
    assert (case["deadline"], case["warning_at"]) == (iso(2026, 11, 26, 10, 0), iso(2026, 11, 26, 9, 24))
    assert case["overdue"] is False and case["sla"]["state"] == "normal"
    clock.now = sh(2026, 11, 26, 9, 25)
    assert service.remind_due() == 1


def test_the_calendar_clock_runs_through_national_day_and_the_working_clock_waits(world):
    """井盖缺失 (2 calendar hours) dispatched on 30 September 2025 at 18:00 is due at 20:00 that night and
    reminded on the holiday night; 暴露垃圾 (4 working hours) dispatched on Friday 10 October at 16:00
    runs on into Saturday 11 October, a make-up working day (调休)."""
    service, clock = world
    cover = dispatched(service, clock, sh(2025, 9, 30, 18, 0), category="010151", description="井盖缺失")
    assert (cover["clock"], cover["time_unit"]) == ("calendar", "hours")
    assert (cover["deadline"], cover["warning_at"]) == (iso(2025, 9, 30, 20, 0), iso(2025, 9, 30, 19, 36))
    clock.now = sh(2025, 9, 30, 19, 37)
    assert service.remind_due() == 1
    clock.now = sh(2025, 9, 30, 20, 1)
    assert service.remind_due() == 1
    cover = service.get(cover["id"], OFFICER)
    assert cover["supervision_deadline"] == iso(2025, 10, 1, 20, 1)      # 24 calendar hours, on 国庆
    assert cover["overdue"] is True

    garbage = dispatched(service, clock, sh(2025, 10, 10, 16, 0), lon=POINT["lon"] + 0.01)
    assert (garbage["clock"], garbage["deadline"]) == ("working", iso(2025, 10, 11, 11, 0))
    clock.now = sh(2025, 10, 11, 10, 0)                                  # Saturday, but a working day
    assert service.get(garbage["id"], OFFICER)["sla"] == {"state": "normal", "elapsed_fraction": 0.75}


def test_an_overdue_case_stays_overdue_through_a_suspension(world):
    service, clock = world
    case = dispatched(service, clock)
    clock.now = sh(2026, 11, 24, 10, 0)                      # 3.5 working hours late
    case = act(service, case, OFFICER, "suspend", note="等待上级批复")
    assert case["suspension"]["remaining_hours"] == -3.5
    clock.now = sh(2026, 11, 25, 10, 0)
    case = act(service, case, OFFICER, "resume")
    assert case["state"] == "dispatched" and case["deadline"] == iso(2026, 11, 23, 15, 30)
    assert case["overdue"] is True and case["sla"]["state"] == "overdue"


def test_reassign_restarts_the_clock_for_another_unit(world):
    service, clock = world
    case = dispatched(service, clock)
    lead, other = handler(LEAD), handler(OTHER)
    clock.now = sh(2026, 11, 23, 10, 10)
    case = act(service, case, lead, "sign")
    assert case["signed_at"] == iso(2026, 11, 23, 10, 10)
    clock.now = sh(2026, 11, 23, 11, 0)
    case = act(service, case, lead, "return", note="属于住建部门职责")
    assert case["state"] == "returned" and case["returned_at"] == iso(2026, 11, 23, 11, 0)
    refused(422, "same_unit", service, case, OFFICER, "reassign", unit=LEAD, note="改派")
    refused(422, "unit_out_of_area", service, case, OFFICER, "reassign", unit=FAR_UNIT, note="改派")
    refused(422, "unknown_unit", service, case, OFFICER, "reassign", unit="U-nowhere", note="改派")
    refused(400, "unit_required", service, case, OFFICER, "reassign", note="改派")
    clock.now = sh(2026, 11, 23, 16, 0)
    case = act(service, case, OFFICER, "reassign", unit=OTHER, note="改由住建部门处置")
    assert (case["state"], case["unit"]["code"], case["reassign_count"]) == ("dispatched", OTHER, 1)
    assert case["signed_at"] is None and case["dispatched_at"] == iso(2026, 11, 23, 16, 0)
    assert case["deadline"] == iso(2026, 11, 24, 11, 0)          # 1.5 h Monday, 2.5 h Tuesday
    assert case["history"][-1]["note"] == "改由住建部门处置"
    # the old unit no longer sees it; the new one signs
    with pytest.raises(ServiceError) as info:
        service.get(case["id"], lead)
    assert info.value.status == 403
    refused(403, "not_your_unit", service, case, lead, "sign")
    assert act(service, case, other, "sign")["state"] == "signed"


def test_refuse_return_sends_the_case_back_on_its_running_clock(world):
    service, clock = world
    case = dispatched(service, clock)
    lead = handler(LEAD)
    clock.now = sh(2026, 11, 23, 14, 0)
    case = act(service, case, lead, "return", note="不属于本单位职责")
    refused(400, "note_required", service, case, OFFICER, "refuse_return")
    clock.now = sh(2026, 11, 23, 14, 10)
    case = act(service, case, OFFICER, "refuse_return", note="属于贵单位职责，请继续处置")
    assert (case["state"], case["unit"]["code"], case["reassign_count"]) == ("dispatched", LEAD, 0)
    assert case["deadline"] == iso(2026, 11, 23, 15, 30) and case["dispatched_at"] == iso(2026, 11, 23, 10, 0)
    # 14:50: 3 h 20 min of the 4 working hours are gone, counted from the 派遣
    clock.now = sh(2026, 11, 23, 14, 50)
    case = service.get(case["id"], lead)
    assert case["sla"] == {"state": "warning", "elapsed_fraction": round(10 / 12, 4)}
    assert act(service, case, lead, "sign")["state"] == "signed"


def closed_case(service, clock, **extra) -> dict:
    case = dispatched(service, clock, **extra)
    lead = handler(LEAD)
    for who, action, kw in ((lead, "sign", {}), (lead, "resolve", {"note": "已清运"}), (GRID_MEMBER, "verify", {}),
                            (OFFICER, "close", {})):
        clock.now += timedelta(minutes=20)
        case = act(service, case, who, action, **kw)
    return case


def test_an_unsatisfied_callback_reopens_the_case_to_the_same_unit_with_a_new_deadline(world):
    service, clock = world
    case = closed_case(service, clock)
    assert case["state"] == "closed" and case["closed_at"] == iso(2026, 11, 23, 11, 20)
    refused(422, "not_unsatisfied", service, case, OFFICER, "reopen", note="重办")
    refused(400, "invalid_satisfaction", service, case, OFFICER, "callback", satisfaction="还行")
    clock.now = sh(2026, 11, 24, 9, 0)
    case = act(service, case, OFFICER, "callback", satisfaction="unsatisfied", note="市民称垃圾仍未清理干净")
    assert case["state"] == "closed" and case["callback"] == {
        "result": "unsatisfied", "result_label": "不满意", "note": "市民称垃圾仍未清理干净",
        "at": iso(2026, 11, 24, 9, 0)}
    refused(422, "already_called_back", service, case, OFFICER, "callback", satisfaction="satisfied")
    clock.now = sh(2026, 11, 24, 10, 0)
    case = act(service, case, OFFICER, "reopen", note="回访不满意，重办")
    assert (case["state"], case["unit"]["code"], case["reopen_count"]) == ("dispatched", LEAD, 1)
    assert case["closed_at"] is None and case["verified_at"] is None and case["resolved_at"] is None
    assert case["dispatched_at"] == iso(2026, 11, 24, 10, 0)
    assert (case["deadline"], case["warning_at"]) == (iso(2026, 11, 24, 15, 30), iso(2026, 11, 24, 14, 42))
    assert [(p["rule"], p["points"], p["unit"]["code"]) for p in case["penalties"]] == [
        ("reopen", POINTS["reopen"], LEAD)]
    assert case["penalty_points"] == POINTS["reopen"]
    assert case["overdue"] is False


def test_only_a_caller_is_called_back(world):
    service, clock = world
    case = closed_case(service, clock, source="patrol")
    refused(422, "no_callback", service, case, OFFICER, "callback", satisfaction="satisfied")


# ----------------------------------------------------------------------------------------
# 协办, 核实, 作废

def test_an_assisting_unit_sees_signs_and_reports_its_part_and_the_lead_closes(world):
    service, clock = world
    case = dispatched(service, clock)
    assist, lead = handler(ASSIST, "320402001"), handler(LEAD)
    with pytest.raises(ServiceError):
        service.get(case["id"], assist)                     # not yet its case
    refused(400, "unit_required", service, case, OFFICER, "add_assist")
    refused(422, "unit_out_of_area", service, case, OFFICER, "add_assist", unit=FAR_UNIT)
    refused(422, "assist_is_lead", service, case, OFFICER, "add_assist", unit=LEAD)
    clock.now = sh(2026, 11, 23, 10, 5)
    case = act(service, case, OFFICER, "add_assist", unit=ASSIST)
    assert case["state"] == "dispatched" and [u["code"] for u in case["units"]] == [LEAD, ASSIST]
    assert case["assists"] == [{"unit": {"code": ASSIST, "name": case["assists"][0]["unit"]["name"]},
                                "added_at": iso(2026, 11, 23, 10, 5), "signed_at": None, "reported_at": None,
                                "note": ""}]
    refused(422, "already_assisting", service, case, OFFICER, "add_assist", unit=ASSIST)

    # the assisting unit sees the case, in its list too, and may only sign and report its part
    assert service.get(case["id"], assist)["id"] == case["id"]
    assert case["id"] in [c["id"] for c in service.list(assist)["items"]]
    assert service.allowed_actions(case["id"], assist) == ["sign"]
    refused(422, "assist_not_signed", service, case, assist, "resolve", note="已配合")
    clock.now = sh(2026, 11, 23, 10, 30)
    case = act(service, case, assist, "sign")
    assert case["state"] == "dispatched" and case["signed_at"] is None        # the lead has not signed
    assert case["assists"][0]["signed_at"] == iso(2026, 11, 23, 10, 30)
    assert case["history"][-1]["actor"] == assist.ident and case["history"][-1]["action"] == "sign"
    refused(422, "already_signed", service, case, assist, "sign")
    err = refused(403, "assist_only", service, case, assist, "return", note="不归我们管")
    assert "协办单位只能签收和反馈协办情况" in err.message
    refused(403, "assist_only", service, case, assist, "extend", hours=2, note="延期")
    refused(400, "note_required", service, case, assist, "resolve")
    case = act(service, case, lead, "sign")
    clock.now = sh(2026, 11, 23, 11, 0)
    case = act(service, case, assist, "resolve", note="已配合完成断电")
    assert case["state"] == "signed" and case["resolved_at"] is None
    assert (case["assists"][0]["reported_at"], case["assists"][0]["note"]) == (iso(2026, 11, 23, 11, 0),
                                                                               "已配合完成断电")
    refused(422, "already_reported", service, case, assist, "resolve", note="再报")
    assert service.allowed_actions(case["id"], assist) == []
    case = act(service, case, lead, "resolve", note="已清运完毕")
    refused(403, "forbidden_role", service, case, assist, "verify")
    refused(403, "forbidden_role", service, case, assist, "close")
    case = act(service, act(service, case, OFFICER, "verify"), OFFICER, "close")
    assert case["state"] == "closed" and case["assists"][0]["reported_at"] == iso(2026, 11, 23, 11, 0)


def test_verification_by_the_grid_member_then_accept_or_reject(world):
    service, clock = world
    case = report(service)
    clock.now = sh(2026, 11, 23, 10, 10)
    case = act(service, case, OFFICER, "verify_request")
    assert case["state"] == "verifying" and case["check_requested_at"] == iso(2026, 11, 23, 10, 10)
    refused(422, "illegal_transition", service, case, OFFICER, "accept")
    with pytest.raises(ServiceError) as info:
        act(service, case, OTHER_GRID_MEMBER, "report_check", result="confirmed")
    assert info.value.status == 403
    refused(400, "invalid_result", service, case, GRID_MEMBER, "report_check", result="maybe")
    refused(403, "forbidden_role", service, case, OFFICER, "report_check", result="confirmed")
    clock.now = sh(2026, 11, 23, 10, 40)
    case = act(service, case, GRID_MEMBER, "report_check", result="属实", note="现场确认，照片已上传")
    assert (case["state"], case["check_result"], case["checked_at"]) == ("reported", "confirmed",
                                                                         iso(2026, 11, 23, 10, 40))
    assert [s["name"] for s in case["stages"]] == ["accept", "check", "file"]
    check = case["stages"][1]
    assert (check["started_at"], check["done_at"], check["deadline"], check["overdue"]) == (
        iso(2026, 11, 23, 10, 10), iso(2026, 11, 23, 10, 40), iso(2026, 11, 23, 11, 10), False)
    case = act(service, case, OFFICER, "accept")
    assert case["state"] == "accepted" and case["accepted_at"] == iso(2026, 11, 23, 10, 40)

    other = report(service, lon=POINT["lon"] + 0.01)
    other = act(service, other, OFFICER, "verify_request")
    other = act(service, other, GRID_MEMBER, "report_check", result="unfounded", note="现场无垃圾")
    assert other["check_result"] == "unfounded"
    other = act(service, other, OFFICER, "reject", note="核实不属实")
    assert other["state"] == "rejected" and other["rejected_at"]


def test_void_ends_a_case_from_any_open_state(world):
    service, clock = world
    lead = handler(LEAD)
    made = {"reported": report(service)}
    made["verifying"] = act(service, report(service, lon=POINT["lon"] + 0.003), OFFICER, "verify_request")
    made["accepted"] = act(service, report(service, lon=POINT["lon"] + 0.006), OFFICER, "accept")
    made["signed"] = act(service, dispatched(service, clock, lon=POINT["lon"] + 0.009), lead, "sign")
    made["returned"] = act(service, dispatched(service, clock, lon=POINT["lon"] + 0.012), lead, "return",
                           note="非本单位职责")
    made["suspended"] = act(service, dispatched(service, clock, lon=POINT["lon"] + 0.015), OFFICER, "suspend",
                            note="等待资金")
    clock.now = sh(2026, 11, 23, 11, 0)
    for state, case in made.items():
        assert case["state"] == state
        refused(400, "note_required", service, case, OFFICER, "void")
        refused(403, "forbidden_role", service, case, LEADER, "void", note="作废")
        voided = act(service, case, OFFICER, "void", note="重复工单，作废")
        assert voided["state"] == "voided" and voided["voided_at"] == iso(2026, 11, 23, 11, 0), state
        assert voided["history"][-1]["from"] == state and voided["history"][-1]["note"] == "重复工单，作废"
        assert voided["sla"] is None
        assert service.allowed_actions(case["id"], OFFICER) == []
        refused(422, "illegal_transition", service, voided, OFFICER, "void", note="再作废")
    clock.now = sh(2026, 11, 26, 9, 0)
    assert service.remind_due() == 0


# ----------------------------------------------------------------------------------------
# the case object, one audit row per step, 409

CONTRACT_FIELDS = ("id", "state", "version", "category", "source", "chain", "unit", "units", "deadline", "overdue",
                   "history", "clock", "stages", "accepted_at", "dispatched_at", "signed_at", "resolved_at",
                   "verified_at", "closed_at", "voided_at", "assists", "supervision", "penalties", "callback",
                   "external_ref")


def test_every_step_is_one_version_and_one_audit_row_and_a_stale_version_is_409(world):
    service, clock = world
    lead, other, assist = handler(LEAD), handler(OTHER), handler(ASSIST, "320402001")
    city = handler("U-320400-city_management", "320400")
    case = report(service, external_ref="12345-20261123-0001")
    steps = [
        (OFFICER, "verify_request", {}, "verifying"),
        (GRID_MEMBER, "report_check", {"result": "confirmed", "note": "属实"}, "reported"),
        (OFFICER, "accept", {}, "accepted"),
        (OFFICER, "dispatch", {}, "dispatched"),
        (OFFICER, "add_assist", {"unit": ASSIST}, "dispatched"),
        (assist, "sign", {}, "dispatched"),
        (lead, "sign", {}, "signed"),
        (lead, "return", {"note": "非本单位职责"}, "returned"),
        (OFFICER, "refuse_return", {"note": "属于贵单位职责"}, "dispatched"),
        (lead, "sign", {}, "signed"),
        (lead, "extend", {"hours": 2, "note": "需协调"}, "signed"),
        (OFFICER, "approve_extension", {}, "signed"),
        (lead, "request_suspension", {"note": "等待管线迁改"}, "signed"),
        (OFFICER, "deny_suspension", {"note": "不予挂账"}, "signed"),
        (lead, "request_suspension", {"note": "仍需等待"}, "signed"),
        (OFFICER, "approve_suspension", {}, "suspended"),
        (OFFICER, "resume", {}, "signed"),
        (LEADER, "urge", {"note": "请抓紧"}, "signed"),
        (LEADER, "supervise", {"note": "区级督办"}, "signed"),
        (LEADER, "escalate", {"note": "需市级协调"}, "signed"),       # handed to the city's bureau
        (city, "return", {"note": "应由区住建部门处置"}, "returned"),
        (OFFICER, "reassign", {"unit": OTHER, "note": "改派住建"}, "dispatched"),
        (other, "sign", {}, "signed"),
        (assist, "resolve", {"note": "已配合"}, "signed"),
        (other, "resolve", {"note": "已处理"}, "resolved"),
        (GRID_MEMBER, "rework", {"note": "仍有残留"}, "rework"),
        (OFFICER, "dispatch", {}, "dispatched"),
        (other, "sign", {}, "signed"),
        (other, "resolve", {"note": "已彻底清理"}, "resolved"),
        (GRID_MEMBER, "verify", {}, "verified"),
        (OFFICER, "close", {}, "closed"),
        (OFFICER, "callback", {"satisfaction": "unsatisfied", "note": "不满意"}, "closed"),
        (OFFICER, "reopen", {"note": "重办"}, "dispatched"),
    ]
    for who, action, kw, state in steps:
        clock.now += timedelta(minutes=7)
        before = case
        case = act(service, case, who, action, **kw)
        assert case["state"] == state, action
        assert case["version"] == before["version"] + 1, action
        assert len(case["history"]) == len(before["history"]) + 1, action
        row = case["history"][-1]
        assert (row["action"], row["from"], row["to"], row["actor"]) == (action, before["state"], state, who.ident)
        assert row["action_label"] == __import__("dispatch.lifecycle").lifecycle.ACTION_LABELS[action]
        assert row["at"] == clock.now.astimezone(SH).isoformat()
        # the version just used is stale now: any next action on it is 409, and writes nothing
        err = refused(409, "conflict", service, before, OFFICER, "void", note="作废")
        assert err.details["case"]["version"] == case["version"]
    assert [h["action"] for h in case["history"]] == ["report"] + [s[1] for s in steps]
    assert case["escalation_count"] == 1 and case["rework_count"] == 1 and case["reassign_count"] == 1
    assert case["extension_count"] == 1 and case["reopen_count"] == 1 and case["urge_count"] == 1
    assert [p["rule"] for p in case["penalties"]] == ["urge", "supervise", "reopen"]

    for field in CONTRACT_FIELDS:
        assert field in case, field
    assert case["clock"] == "working" and case["external_ref"] == "12345-20261123-0001"
    for stage in case["stages"]:
        assert {"name", "started_at", "deadline", "done_at", "overdue"} <= set(stage)
    assert [s["name"] for s in case["stages"]] == ["accept", "check", "file", "dispatch", "handle"]
    assert case["stages"][-1]["started_at"] == case["dispatched_at"] and case["stages"][-1]["done_at"] is None
    assert case["accepted_at"] and case["dispatched_at"] and case["closed_at"] is None
    assert case["callback"]["result"] == "unsatisfied"
    assert [a["unit"]["code"] for a in case["assists"]] == [ASSIST] and case["assists"][0]["reported_at"]
    assert [(s["kind"], s["level"]) for s in case["supervision"]] == [("urge", 2), ("supervise", 2)]
    # the same object from GET
    again = service.get(case["id"], OFFICER)
    assert {k: again[k] for k in CONTRACT_FIELDS} == {k: case[k] for k in CONTRACT_FIELDS}


def test_two_people_on_the_same_version_one_wins(world):
    service, clock = world
    case = dispatched(service, clock)
    lead = handler(LEAD)
    results = []
    start = threading.Barrier(2)

    def go(who, action, kw):
        start.wait()
        try:
            results.append(act(service, case, who, action, **kw)["state"])
        except ServiceError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=go, args=(lead, "return", {"note": "非本单位职责"})),
               threading.Thread(target=go, args=(OFFICER, "void", {"note": "重复"}))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(map(str, results)) in (["409", "returned"], ["409", "voided"])
    final = service.get(case["id"], OFFICER)
    assert final["version"] == case["version"] + 1 and len(final["history"]) == len(case["history"]) + 1
