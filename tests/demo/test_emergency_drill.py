"""The demo's emergency command (demo/emergency_drill.py) over rect_city on a moved clock: an accepted emergency is
commanded to its end through the real actions — plan, every unit's acknowledgement, the checklist, first report,
updates, the final report once handled, the end — and an old or unaccepted one is left alone."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from data.area_directory import AreaDirectory
from data.tokens import Principal
from demo.emergency_drill import EmergencyDrill
from emergency.response import ResponseService
from tests.factories import small_world

T0 = datetime(2026, 11, 23, 22, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
OFFICER = Principal("user", "officer", "duty_officer", "320400")
POINT = {"lon": 119.905, "lat": 31.705}


@pytest.fixture
def drill(tmp_path):
    from data.db import Database
    from data.schema import init_db

    db = Database(f"sqlite:///{tmp_path / 'drill.db'}")
    init_db(db)
    cases, clock = small_world(db, T0)
    responses = ResponseService(db, AreaDirectory(db), cases)
    return cases, responses, clock, EmergencyDrill(responses, cases)


def test_an_emergency_is_commanded_to_its_end(drill):
    cases, responses, clock, d = drill
    body = {"category": "040102", "description": "燃气泄漏", "source": "hotline", "severity": 4, **POINT}
    case = cases.intake(body, OFFICER)[0]
    waiting = cases.intake({**body, "lon": 119.915}, OFFICER)[0]  # never accepted: no plan for it
    case = cases.act(case["id"], OFFICER, "accept", case["version"])
    for _ in range(10 * 30):  # ten hours, a round every two minutes
        clock.now += timedelta(minutes=2)
        d.step()
        case = cases.get(case["id"], None)
        if case["response"] and case["state"] == "accepted" and clock.now - T0 > timedelta(hours=4):
            # the handling (the simulator's part): dispatched, signed and resolved by the lead
            lead = case["unit"]["code"]
            handler = Principal("user", "h", "unit_handler", lead.split("-")[1], lead)
            case = cases.act(case["id"], OFFICER, "dispatch", case["version"], unit=lead)
            case = cases.act(case["id"], handler, "sign", case["version"])
            case = cases.act(case["id"], handler, "resolve", case["version"], note="已处置")
    r = case["response"]
    assert r["status"] == "ended", r
    assert all(t["acknowledged_at"] for t in r["tasks"]) and all(i["done_at"] for i in r["checklist"])
    kinds = [x["kind"] for x in r["reports"]]
    assert kinds[0] == "first" and kinds[-1] == "final" and "update" in kinds
    assert cases.get(waiting["id"], None)["response"] is None
    # stable: the same case and unit take the same time again (a restart replays the same story)
    assert d.step() == 0
