"""GET /api/v1/assessment (CONTRACT.md, Assessment): the answer's shape, the scope of who asks, bad input."""
from __future__ import annotations

from tests.factories import city_today

LON, LAT = 119.975, 31.79  # 天宁区


def _headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _post(client, headers, **body):
    payload = {"category": "020102", "lon": LON, "lat": LAT, "description": "路边垃圾堆放", "source": "patrol"}
    payload.update(body)
    resp = client.post("/api/v1/events", json=payload, headers=headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def test_the_assessment_of_the_districts_names_every_district_and_scores_those_with_cases(client, officer):
    case = _post(client, officer)
    client.post(f"/api/v1/events/{case['id']}/actions", json={"action": "accept", "version": case["version"]},
                headers=officer)
    today = city_today().isoformat()
    body = client.get(f"/api/v1/assessment?start={today}&end={today}&by=district", headers=officer).get_json()
    assert body["period"] == {"start": today, "end": today} and body["by"] == "district"
    items = {i["name"]: i for i in body["items"]}
    assert len(items) == 7  # every district of Changzhou, with a case or not
    tianning = items["天宁区"]
    assert (tianning["received"], tianning["accepted"], tianning["patrol_accepted"]) == (1, 1, 1)
    assert tianning["patrol_share"] == 1.0 and tianning["rank"] == 1 and tianning["grade"] in "ABCDE"
    # nothing due yet: 10 × 1 (patrol share) + 20 × the 立案数 band of ~0.1 per grid (0.9) = 28
    assert tianning["score"] == 28.0 and tianning["grade"] == "E"
    others = [i for i in body["items"] if i["name"] != "天宁区"]
    assert all(i["score"] is None and i["rank"] is None for i in others)
    for field in ("due", "closed", "closed_on_time", "closure_rate", "on_time_rate", "overdue_open", "voided",
                  "suspended", "grids", "accepted_per_grid", "accepted_score", "penalty_points"):
        assert field in tianning


def test_the_assessment_answers_each_by_and_refuses_bad_input(client, officer, token_for):
    today = city_today().isoformat()
    for by in ("city", "district", "street", "community", "grid", "unit", "person"):
        resp = client.get(f"/api/v1/assessment?start={today}&end={today}&by={by}", headers=officer)
        assert resp.status_code == 200, (by, resp.get_data(as_text=True))
        assert resp.get_json()["by"] == by
    month = today[:7]
    body = client.get(f"/api/v1/assessment?month={month}&by=district", headers=officer).get_json()
    assert body["month"] == month and all("rank_change" in i for i in body["items"])
    for query, status in (("start=2026-13-01&end=2026-12-01", 400), (f"start={today}&end=2020-01-01", 400),
                          (f"start={today}&end={today}&by=planet", 400), ("month=2026-1", 400),
                          ("month=abcd-ef", 400), (f"end={today}", 400),
                          # year 0 and December 9999 are no months a date can hold (found by schemathesis)
                          ("month=0000-09", 400), ("month=9999-12", 400)):
        resp = client.get(f"/api/v1/assessment?{query}", headers=officer)
        assert resp.status_code == status, (query, resp.get_data(as_text=True))
        assert resp.get_json()["message"]
    wall = _headers(token_for("wall"))
    assert client.get(f"/api/v1/assessment?start={today}&end={today}", headers=wall).status_code == 403


def test_a_district_sees_its_own_items_and_a_unit_handler_its_own_unit(client, officer, token_for):
    today = city_today().isoformat()
    case = _post(client, officer)
    unit = case["unit"]["code"]
    district = _headers(token_for("leader", "320402"))
    body = client.get(f"/api/v1/assessment?start={today}&end={today}&by=street", headers=district).get_json()
    assert body["items"] and all(i["code"].startswith("320402") for i in body["items"])
    handler = _headers(token_for("unit_handler", "320400", unit))
    assert client.get(f"/api/v1/assessment?start={today}&end={today}&by=district", headers=handler).status_code == 403
    body = client.get(f"/api/v1/assessment?start={today}&end={today}&by=unit", headers=handler).get_json()
    assert [i["code"] for i in body["items"]] == [unit]
