"""The emergency endpoints over the demo city: the plans (an administrator's edit checked and used), a response driven
through POST /events/ID/actions by an officer and the units' handlers, the active list, a report's draft."""
from __future__ import annotations

import copy

LON, LAT = 119.975, 31.79   # central Changzhou (天宁区, 320402)
GAS_LEAK = "040102"


def _headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _act(client, headers, case, action, **body):
    return client.post(f"/api/v1/events/{case['id']}/actions", json={"action": action, "version": case["version"], **body},
                       headers=headers)


def _error(resp, status, code):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == code and resp.get_json()["message"]


def _accepted_gas_leak(client, officer):
    made = client.post("/api/v1/events", json={"category": GAS_LEAK, "lon": LON, "lat": LAT, "severity": 4,
                                                "description": "燃气泄漏", "source": "hotline"}, headers=officer)
    assert made.status_code == 201, made.get_data(as_text=True)
    case = made.get_json()
    assert case["response"] is None
    return _act(client, officer, case, "accept").get_json()


def test_plans_are_listed_with_their_levels_and_sources(client, officer):
    body = client.get("/api/v1/plans", headers=officer).get_json()
    codes = {p["code"] for p in body["items"]}
    assert {"fire", "waterlogging", "road_collapse", "gas_leak", "hazardous_chemicals", "traffic_accident"} <= codes
    assert body["sources"] and any("突发事件应对法" in s for s in body["sources"])
    gas = next(p for p in body["items"] if p["code"] == "gas_leak")
    assert [lv["level"] for lv in gas["levels"]] == [1, 2, 3, 4]
    assert [lv["commanding_level"] for lv in gas["levels"]] == [1, 1, 1, 2]
    assert gas["levels"][0]["upward_report"] is True and gas["report_deadlines"]["first_minutes"] == 30
    assert client.get("/api/v1/plans/nope", headers=officer).status_code == 404


def test_a_response_through_the_api_by_the_officer_and_the_units(client, officer, token_for):
    district = _headers(token_for("duty_officer", "320402"))
    case = _accepted_gas_leak(client, officer)
    _error(_act(client, district, case, "activate_plan", level=9), 400, "bad_request")
    street = _headers(token_for("duty_officer", "320402001"))
    _error(_act(client, street, case, "activate_plan", level=4), 403, "forbidden")
    resp = _act(client, district, case, "activate_plan", level=4)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    case = resp.get_json()
    tasks = case["response"]["tasks"]
    assert len(tasks) >= 3 and tasks[0]["role"] == "lead"
    lead = tasks[0]["unit"]["code"]
    lead_handler = _headers(token_for("unit_handler", "320402", lead))
    case = _act(client, lead_handler, case, "acknowledge").get_json()
    assert case["response"]["tasks"][0]["acknowledged_at"]
    _error(_act(client, lead_handler, case, "acknowledge"), 422, "already_acknowledged")
    draft = client.get(f"/api/v1/events/{case['id']}/reports/draft?kind=first", headers=district).get_json()
    assert draft["text"].startswith("【首报】")
    case = _act(client, district, case, "report", kind="first", text=draft["text"], fields={"injuries": 2}).get_json()
    assert [r["kind"] for r in case["response"]["reports"]] == ["first", "update"]  # the update now owed
    active = client.get("/api/v1/emergencies", headers=officer).get_json()["items"]
    assert [a["case_id"] for a in active] == [case["id"]] and active[0]["next_report"]["kind"] == "update"
    # a unit handler reads the list of the responses their unit is in; another district's officer sees none
    assert client.get("/api/v1/emergencies", headers=_headers(token_for("duty_officer", "320411"))).get_json()["total"] == 0
    _error(_act(client, district, case, "end_response"), 422, "final_report_missing")
    _error(client.get(f"/api/v1/events/{case['id']}/reports/draft?kind=weekly", headers=district), 400, "bad_request")


def test_an_administrator_edits_a_plan_checked_before_it_is_kept(client, officer, token_for):
    admin = _headers(token_for("admin"))
    plan = client.get("/api/v1/plans/gas_leak", headers=officer).get_json()["raw"]
    edited = copy.deepcopy(plan)
    edited["checklist"]["4"] = ["通知燃气公司抢修", "疏散周边群众"]
    _error(client.put("/api/v1/plans/gas_leak", json=edited, headers=officer), 403, "forbidden")
    broken = copy.deepcopy(edited)
    broken["lead_unit_type"] = "no_such_type"
    broken["criteria"].pop("2")
    resp = client.put("/api/v1/plans/gas_leak", json=broken, headers=admin)
    _error(resp, 400, "invalid_plan")
    assert len(resp.get_json()["problems"]) == 2, "every problem is named at once"
    stolen = copy.deepcopy(edited)
    stolen["categories"] = [GAS_LEAK, "040101"]  # 火灾 belongs to the fire plan
    _error(client.put("/api/v1/plans/gas_leak", json=stolen, headers=admin), 400, "invalid_plan")
    resp = client.put("/api/v1/plans/gas_leak", json=edited, headers=admin)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["levels"][3]["checklist"] == ["通知燃气公司抢修", "疏散周边群众"]
    # the next activation uses the edited plan
    case = _accepted_gas_leak(client, officer)
    case = _act(client, officer, case, "activate_plan", level=4).get_json()
    assert [i["item"] for i in case["response"]["checklist"]] == ["通知燃气公司抢修", "疏散周边群众"]
