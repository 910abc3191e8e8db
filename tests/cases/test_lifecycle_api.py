"""The lifecycle of issue 14 through the HTTP API over the demo city: the hotline's ticket number
(external_ref) and the cases changed since a time, paged by cursor; the new actions' parameters
(result, hours, unit, satisfaction) reach the lifecycle; refusals are the contract's JSON errors."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

LON, LAT = 119.975, 31.79          # central 天宁区 (320402)
GARBAGE = "020102"


def _post(client, headers, **body):
    payload = {"category": GARBAGE, "lon": LON, "lat": LAT, "description": "路边垃圾堆放", "source": "hotline"}
    payload.update(body)
    resp = client.post("/api/v1/events", json=payload, headers=headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def _act(client, headers, case, action, status=200, **extra):
    resp = client.post(f"/api/v1/events/{case['id']}/actions",
                       json={"action": action, "version": case["version"], **extra}, headers=headers)
    assert resp.status_code == status, (action, resp.get_data(as_text=True))
    return resp.get_json()


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _get(client, headers, status=200, **args):
    resp = client.get("/api/v1/events?" + urlencode(args), headers=headers)
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    if status != 200:
        assert body["error"] and body["message"] and "Traceback" not in resp.get_data(as_text=True)
    return body


def test_a_hotline_ticket_is_found_by_its_number(client, officer, token_for):
    case = _post(client, officer, external_ref="12345-20261207-0001", external_system="12345",
                 reporter_phone="13812341234")
    assert (case["external_ref"], case["external_system"]) == ("12345-20261207-0001", "12345")
    _post(client, officer, lon=LON + 0.01, external_ref="12345-20261207-0002", external_system="12345")

    body = _get(client, officer, external_ref="12345-20261207-0001")
    assert [c["id"] for c in body["items"]] == [case["id"]] and body["next"] is None
    found = body["items"][0]
    assert found == client.get(f"/api/v1/events/{case['id']}", headers=officer).get_json()
    assert [c["id"] for c in _get(client, officer, external_ref="12345-20261207-0001",
                                  external_system="12345")["items"]] == [case["id"]]
    assert _get(client, officer, external_ref="12345-20261207-0001", external_system="open311")["items"] == []
    assert _get(client, officer, external_ref="12345-20991231-9999")["items"] == []
    # another district's officer does not learn of the ticket
    liyang = _auth(token_for("duty_officer", area="320481"))
    assert _get(client, liyang, external_ref="12345-20261207-0001")["items"] == []
    _get(client, officer, 400, external_ref="")
    _get(client, officer, 400, external_ref="x" * 65)


def test_the_cases_changed_since_a_time_page_by_cursor_oldest_first(client, officer):
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    ids = [_post(client, officer, lon=LON + 0.002 * i)["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        args = {"updated_since": since.isoformat(), "per_page": 2}
        if cursor:
            args["cursor"] = cursor
        body = _get(client, officer, **args)
        pages += 1
        seen += [c["id"] for c in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
        assert len(body["items"]) == 2
    assert seen == ids and pages == 3

    # a change moves the case to the end of the stream, and a reader from just before sees only it
    first = client.get(f"/api/v1/events/{ids[0]}", headers=officer).get_json()
    before = datetime.now(timezone.utc)
    accepted = _act(client, officer, first, "accept")
    body = _get(client, officer, updated_since=before.isoformat())
    assert [(c["id"], c["state"], c["version"]) for c in body["items"]] == [(ids[0], "accepted", accepted["version"])]
    assert [c["id"] for c in _get(client, officer, updated_since=since.isoformat())["items"]] == ids[1:] + ids[:1]

    _get(client, officer, 400, updated_since="2026-12-07T09:30:00")          # no offset
    _get(client, officer, 400, updated_since=since.isoformat(), cursor="yesterday")


def test_a_cursor_pasted_into_the_url_unencoded_still_works(client, officer):
    """The cursor carries the time's offset ("+00:00"); a client that pastes it into the query string as
    it came gets "+" read as a space — as updated_since is forgiven, so is the cursor."""
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    ids = [_post(client, officer, lon=LON + 0.002 * i)["id"] for i in range(3)]
    first = _get(client, officer, updated_since=since.isoformat(), per_page=2)
    cursor = first["next"]
    assert "+" in cursor
    resp = client.get(f"/api/v1/events?updated_since={quote(since.isoformat())}&per_page=2&cursor={cursor}",
                      headers=officer)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [c["id"] for c in first["items"] + resp.get_json()["items"]] == ids


def test_the_whole_lifecycle_through_the_api(client, officer, token_for):
    case = _post(client, officer, external_ref="12345-20261207-0100")
    grid = case["chain"][0]["code"]
    street = next(a["code"] for a in case["chain"] if a["level"] == 3)
    lead_unit = case["unit"]["code"]
    units = client.get(f"/api/v1/units?area={street}&per_page=500", headers=officer).get_json()["items"]
    helper_unit = next(u["code"] for u in units if u["unit_type"] == "street_office")
    grid_member = _auth(token_for("grid_member", area=grid))
    lead = _auth(token_for("unit_handler", unit=lead_unit))
    helper = _auth(token_for("unit_handler", unit=helper_unit))
    leader = _auth(token_for("leader"))

    case = _act(client, officer, case, "verify_request")
    body = _act(client, grid_member, case, "report_check", 400, result="maybe")
    assert body["error"] == "invalid_result"
    case = _act(client, grid_member, case, "report_check", result="confirmed", note="现场属实")
    assert (case["state"], case["check_result"]) == ("reported", "confirmed")
    case = _act(client, officer, case, "accept")
    case = _act(client, officer, case, "dispatch")
    case = _act(client, officer, case, "add_assist", unit=helper_unit)
    assert [u["code"] for u in case["units"]] == [lead_unit, helper_unit]
    case = _act(client, helper, case, "sign")
    body = _act(client, helper, case, "return", 403, note="不归我们")
    assert body["error"] == "assist_only"
    case = _act(client, lead, case, "sign")
    body = _act(client, lead, case, "extend", 400, hours="two", note="延期")
    assert body["error"] == "bad_request"
    case = _act(client, lead, case, "extend", hours=2, note="需协调")
    case = _act(client, officer, case, "approve_extension")
    assert case["extension_count"] == 1
    case = _act(client, leader, case, "urge", note="请抓紧")
    assert case["urge_count"] == 1 and case["penalty_points"] == 0.5
    case = _act(client, helper, case, "resolve", note="已配合")
    case = _act(client, lead, case, "resolve", note="已清运")
    case = _act(client, grid_member, case, "verify")
    case = _act(client, officer, case, "close")
    body = _act(client, officer, case, "callback", 400, satisfaction="so-so")
    assert body["error"] == "invalid_satisfaction"
    case = _act(client, officer, case, "callback", satisfaction="不满意", note="仍有异味")
    assert case["callback"]["result"] == "unsatisfied" and case["callback"]["note"] == "仍有异味"
    stale = dict(case)
    case = _act(client, officer, case, "reopen", note="回访不满意")
    assert (case["state"], case["unit"]["code"], case["closed_at"]) == ("dispatched", lead_unit, None)
    body = _act(client, officer, stale, "void", 409, note="作废")
    assert body["error"] == "conflict" and body["case"]["state"] == "dispatched"
    assert [h["action"] for h in case["history"]] == [
        "report", "verify_request", "report_check", "accept", "dispatch", "add_assist", "sign", "sign", "extend",
        "approve_extension", "urge", "resolve", "resolve", "verify", "close", "callback", "reopen"]
    # the hotline reads it back by its ticket
    assert _get(client, officer, external_ref="12345-20261207-0100")["items"][0]["version"] == case["version"]


def test_a_repeat_ticket_merged_into_an_open_case_leads_to_that_case(client, officer):
    """The hotline's second ticket for the same problem is merged at intake: looking it up by its number
    answers the merged report and the open case where the problem is handled."""
    first = _post(client, officer, lon=LON + 0.02, external_ref="T-100")
    again = _post(client, officer, lon=LON + 0.02 + 0.0001, external_ref="T-200")
    assert again["state"] == "merged" and again["merged_into"] == first["id"]
    items = _get(client, officer, external_ref="T-200")["items"]
    assert [(c["id"], c["state"]) for c in items] == [(again["id"], "merged"), (first["id"], "reported")]
    _get(client, officer, 400, external_ref="T-200", external_system="x" * 33)
