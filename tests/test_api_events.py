"""The case API of CONTRACT.md over the demo city: intake, dedupe, idempotency, reads, actions, KPIs."""
from __future__ import annotations

import pytest

from tests.factories import city_today

# A point in central Changzhou (天宁区) and one ~30 m / ~80 m east of it.
LON, LAT = 119.975, 31.79
NEAR = (LON + 0.0003, LAT)
FAR = (LON + 0.0008, LAT)
GARBAGE = "020102"  # an event category handled by the district's city-management bureau


def _post(client, headers, **body):
    payload = {"category": GARBAGE, "lon": LON, "lat": LAT, "description": "路边垃圾堆放", "source": "hotline"}
    payload.update(body)
    return client.post("/api/v1/events", json=payload, headers=headers)


def _error(resp, status, code=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["message"] and "Traceback" not in resp.get_data(as_text=True)
    if code:
        assert body["error"] == code
    return body


def test_catalog_has_the_code_used_here(client, officer):
    items = client.get("/api/v1/categories", headers=officer).get_json()["items"]
    by_code = {c["code"]: c for c in items}
    assert len(items) >= 60 and {c["kind"] for c in items} == {"component", "event", "grid", "emergency"}
    assert by_code[GARBAGE]["kind"] == "event" and by_code[GARBAGE]["time_limit"] > 0
    # every category names its clock (CONTRACT.md, wave 2): office time, or calendar time for urgent ones
    assert {c["clock"] for c in items} == {"working", "calendar"}
    assert by_code[GARBAGE]["clock"] == "working"
    assert (by_code["010151"]["clock"], by_code["010151"]["time_limit_text"]) == ("calendar", "2 小时")  # 井盖缺失
    assert all(c["clock"] == "calendar" for c in items if c["kind"] == "emergency")


def test_intake_locates_routes_and_sets_a_deadline(client, officer):
    resp = _post(client, officer, reporter_phone="13812341234")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    case = resp.get_json()
    assert case["state"] == "reported" and case["version"] == 1
    assert [a["level"] for a in case["chain"]] == [5, 4, 3, 2, 1]
    assert case["unit"]["code"].startswith("U-")
    assert case["deadline"] and case["overdue"] is False
    assert case["route_reason"] and case["unit"]["name"] in case["route_reason"]
    assert len(case["history"]) == 1 and case["history"][0]["to"] == "reported"
    assert case["reporter_phone"] == "13812341234"  # a duty officer calls back
    assert client.get(f"/api/v1/events/{case['id']}", headers=officer).get_json()["id"] == case["id"]
    assert case["clock"] == "working"


def test_a_case_shows_its_clock(client, officer):
    cover = _post(client, officer, category="010151", description="井盖缺失", lon=LON + 0.003)  # 井盖缺失
    assert cover.status_code == 201, cover.get_data(as_text=True)
    case = client.get(f"/api/v1/events/{cover.get_json()['id']}", headers=officer).get_json()
    assert case["clock"] == "calendar" and case["time_unit"] == "hours"


def test_phone_is_masked_for_a_leader(client, officer, token_for):
    case = _post(client, officer, reporter_phone="13812341234").get_json()
    leader = {"Authorization": f"Bearer {token_for('leader')}"}
    assert client.get(f"/api/v1/events/{case['id']}", headers=leader).get_json()["reporter_phone"] == "138****1234"


@pytest.mark.parametrize("body,status,field", [
    ({"category": None}, 400, "category"), ({"source": "fax"}, 400, "source"), ({"lon": "east"}, 400, "lon"),
    ({"reporter_phone": "12345"}, 400, "reporter_phone"), ({"severity": 9}, 400, "severity"),
    ({"occurred_at": "yesterday"}, 400, "occurred_at"), ({"description": "x" * 2001}, 400, "description"),
])
def test_bad_fields_get_400_naming_the_field(client, officer, body, status, field):
    body = _error(_post(client, officer, **body), status, "invalid")
    assert field in body["fields"]


def test_semantic_refusals(client, officer, token_for):
    _error(_post(client, officer, category="999999"), 422, "unknown_category")
    _error(_post(client, officer, lon=121.47, lat=31.23), 422, "outside_city")
    fire = "040101"
    _error(_post(client, officer, category=fire), 400, "invalid")  # emergencies need a severity
    _error(_post(client, officer, severity=2), 400, "invalid")  # ordinary events have none
    resp = client.post("/api/v1/events", data="not json", headers=officer, content_type="application/json")
    _error(resp, 400)
    wall = {"Authorization": f"Bearer {token_for('wall')}"}
    _error(_post(client, wall), 403)
    _error(client.post("/api/v1/events", json={}), 401)
    assert client.get("/api/v1/events?count=true", headers=officer).get_json()["total"] == 0


def test_duplicate_nearby_merges_and_far_one_does_not(client, officer):
    first = _post(client, officer).get_json()
    dup = _post(client, officer, lon=NEAR[0], lat=NEAR[1]).get_json()
    assert dup["state"] == "merged" and dup["merged_into"] == first["id"]
    target = client.get(f"/api/v1/events/{first['id']}", headers=officer).get_json()
    assert target["reporter_count"] == 2 and target["version"] == 2
    other = _post(client, officer, lon=FAR[0], lat=FAR[1]).get_json()
    assert other["state"] == "reported" and other["merged_into"] is None


def test_same_idempotency_key_gives_the_same_case(client, officer):
    a = _post(client, officer, idempotency_key="hotline-20261125-0001")
    b = _post(client, officer, idempotency_key="hotline-20261125-0001", lon=FAR[0], lat=FAR[1])
    assert a.status_code == 201 and b.status_code == 201
    assert a.get_json()["id"] == b.get_json()["id"]
    assert client.get("/api/v1/events?count=true", headers=officer).get_json()["total"] == 1


def _act(client, headers, case, action, **extra):
    return client.post(f"/api/v1/events/{case['id']}/actions", json={"action": action, "version": case["version"], **extra},
                       headers=headers)


def test_whole_life_through_the_api(client, officer, token_for):
    case = _post(client, officer).get_json()
    handler = {"Authorization": f"Bearer {token_for('unit_handler', unit=case['unit']['code'])}"}
    steps = [(officer, "accept", {}), (officer, "dispatch", {}), (handler, "sign", {}),
             (handler, "resolve", {"note": "已清运"}), (officer, "rework", {"note": "仍有残留"}),
             (officer, "dispatch", {}), (handler, "sign", {}), (handler, "resolve", {"note": "已彻底清理"}),
             (officer, "verify", {}), (officer, "close", {})]
    for headers, action, extra in steps:
        resp = _act(client, headers, case, action, **extra)
        assert resp.status_code == 200, (action, resp.get_data(as_text=True))
        case = resp.get_json()
    assert case["state"] == "closed" and case["rework_count"] == 1 and case["closed_at"]
    assert [h["action"] for h in case["history"]] == ["report"] + [s[1] for s in steps]
    today = city_today().isoformat()
    k = client.get(f"/api/v1/kpis?start={today}&end={today}", headers=officer).get_json()
    assert k["received"] == 1 and k["accepted"] == 1 and k["rework_rate"] == 1.0


def test_stale_version_illegal_transition_and_wrong_role(client, officer, token_for):
    case = _post(client, officer).get_json()
    accepted = _act(client, officer, case, "accept").get_json()
    body = _error(_act(client, officer, case, "reject", note="重复"), 409, "conflict")
    assert body["case"]["state"] == "accepted"  # the officer is shown the new state
    _error(_act(client, officer, accepted, "close"), 422)
    leader = {"Authorization": f"Bearer {token_for('leader')}"}
    _error(_act(client, leader, accepted, "dispatch"), 403)
    _error(_act(client, officer, accepted, "fly"), 400)
    _error(client.post(f"/api/v1/events/{case['id']}/actions", json={"action": "dispatch"}, headers=officer), 400)
    _error(client.post("/api/v1/events/999999/actions", json={"action": "accept", "version": 1}, headers=officer), 404)
    _error(_act(client, officer, accepted, "dispatch", unit="U-nowhere"), 422, "unknown_unit")


def test_other_area_cannot_see_or_act(client, officer, token_for):
    case = _post(client, officer).get_json()
    liyang = {"Authorization": f"Bearer {token_for('duty_officer', area='320481')}"}
    _error(client.get(f"/api/v1/events/{case['id']}", headers=liyang), 403)
    _error(_act(client, liyang, case, "accept"), 403)
    assert client.get("/api/v1/events?count=true", headers=liyang).get_json()["total"] == 0
    tianning = {"Authorization": f"Bearer {token_for('duty_officer', area='320402')}"}
    assert client.get("/api/v1/events?count=true", headers=tianning).get_json()["total"] == 1


def test_list_filters_and_pages(client, officer):
    for i in range(5):
        _post(client, officer, lon=LON + 0.002 * i, lat=LAT)
    body = client.get("/api/v1/events?per_page=2&page=2&state=reported&kind=event&area=320402&count=true", headers=officer).get_json()
    assert body["total"] == 5 and len(body["items"]) == 2 and body["page"] == 2
    assert client.get("/api/v1/events?state=closed&count=true", headers=officer).get_json()["total"] == 0
    assert client.get("/api/v1/events?overdue=true&count=true", headers=officer).get_json()["total"] == 0
    _error(client.get("/api/v1/events?state=flying", headers=officer), 400)
    _error(client.get("/api/v1/events?overdue=maybe", headers=officer), 400)
    _error(client.get("/api/v1/events?area=999", headers=officer), 404)


def test_kpis_endpoint_validates_and_groups(client, officer):
    _post(client, officer)
    today = city_today().isoformat()
    body = client.get(f"/api/v1/kpis?start={today}&end={today}&by=district", headers=officer).get_json()
    for field in ("received", "accepted", "due", "closed", "closed_on_time", "closure_rate", "on_time_rate",
                  "rework_rate", "extension_rate", "overdue_open", "mean_handling_hours"):
        assert field in body
    assert body["received"] == 1 and body["groups"][0]["name"] == "天宁区"
    _error(client.get("/api/v1/kpis?start=2026-13-01&end=2026-12-01", headers=officer), 400)
    _error(client.get(f"/api/v1/kpis?start={today}&end=2020-01-01", headers=officer), 400)
    _error(client.get(f"/api/v1/kpis?start={today}&end={today}&by=planet", headers=officer), 400)


def test_units_of_an_area(client, officer):
    body = client.get("/api/v1/units?area=320402001&per_page=500", headers=officer).get_json()
    types = {u["unit_type"] for u in body["items"]}
    assert {"street_office", "community_committee", "grid_member"} <= types
    _error(client.get("/api/v1/units?area=1", headers=officer), 404)
