"""The first slice of the HTTP API: bearer tokens, GET /api/v1/areas and /api/v1/areas/locate."""
from __future__ import annotations

import pytest

DISTRICTS = {"320402": "天宁区", "320404": "钟楼区", "320411": "新北区", "320412": "武进区",
             "320413": "金坛区", "320481": "溧阳市", "320491": "常州经开区"}


@pytest.fixture
def auth(token_for):
    return {"Authorization": f"Bearer {token_for('wall')}"}


def _assert_json_error(resp, status, code=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    # the contract's error object; a wrong parameter also names itself in `fields` (api/openapi.query_of)
    assert {"error", "message"} <= set(body) <= {"error", "message", "fields"} and body["message"]
    if code:
        assert body["error"] == code
    assert "Traceback" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
def test_requests_without_a_valid_token_get_401(client, headers):
    _assert_json_error(client.get("/api/v1/areas", headers=headers), 401, "unauthorized")


def test_districts_are_listed_with_names_and_parents(client, auth):
    body = client.get("/api/v1/areas?level=2", headers=auth).get_json()
    assert body["total"] == 7 and body["page"] == 1
    assert {a["code"]: a["name"] for a in body["items"]} == DISTRICTS
    assert all(a["level"] == 2 and a["parent"] == "320400" for a in body["items"])


def test_areas_page_through_every_level(client, auth):
    for level, total in ((1, 1), (3, 62), (4, 1030), (5, 5891)):
        body = client.get(f"/api/v1/areas?level={level}&per_page=500", headers=auth).get_json()
        assert body["total"] == total
    seen = set()
    page = 1
    while True:
        body = client.get(f"/api/v1/areas?level=4&per_page=200&page={page}", headers=auth).get_json()
        if not body["items"]:
            break
        seen |= {a["code"] for a in body["items"]}
        page += 1
    assert len(seen) == 1030 and page == 7


def test_children_of_a_district(client, auth):
    body = client.get("/api/v1/areas?parent=320402", headers=auth).get_json()
    assert body["total"] >= 1
    assert all(a["parent"] == "320402" and a["level"] == 3 and a["code"].startswith("320402")
               for a in body["items"])


@pytest.mark.parametrize("query,status", [("level=9", 400), ("level=abc", 400), ("per_page=0", 400),
                                          ("per_page=100000", 400), ("page=-1", 400),
                                          ("parent=999999", 404)])
def test_bad_area_queries_get_clear_errors(client, auth, query, status):
    _assert_json_error(client.get(f"/api/v1/areas?{query}", headers=auth), status)


def test_locate_gives_the_chain_grid_to_city(client, auth):
    # Central Changzhou (天宁区, near the 红梅公园).
    body = client.get("/api/v1/areas/locate?lon=119.975&lat=31.79", headers=auth).get_json()
    chain = body["chain"]
    assert [a["level"] for a in chain] == [5, 4, 3, 2, 1]
    assert chain[-1] == {"code": "320400", "name": "常州市", "level": 1}
    assert chain[3]["code"] in DISTRICTS
    for child, parent in zip(chain[:3], chain[1:4]):  # district codes do not extend the city's
        assert child["code"].startswith(parent["code"])


def test_locate_outside_the_city_is_404(client, auth):
    _assert_json_error(client.get("/api/v1/areas/locate?lon=121.47&lat=31.23", headers=auth), 404, "outside_city")


@pytest.mark.parametrize("query", ["lon=119.9", "lat=31.7", "lon=abc&lat=31.7", "lon=nan&lat=31.7",
                                   "lon=200&lat=31.7", "lon=119.9&lat=-95"])
def test_locate_rejects_bad_coordinates(client, auth, query):
    _assert_json_error(client.get(f"/api/v1/areas/locate?{query}", headers=auth), 400, "bad_request")


def test_unknown_endpoint_and_method_are_json(client, auth):
    _assert_json_error(client.get("/api/v1/nothing-here", headers=auth), 404)
    _assert_json_error(client.post("/api/v1/areas", headers=auth), 405)


def test_too_many_requests_get_429(demo_sqlite_url, tmp_path):
    import shutil

    from app import create_app
    from data.tokens import create_token
    from tests.conftest import make_settings

    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), tmp_path / "rl.db")
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'rl.db'}", api_rate_limit="5 per minute"))
    with app.extensions["ucc"].db.session() as s:
        token = create_token(s, "wall")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    codes = [client.get("/api/v1/areas?level=2", headers=headers).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    refused = client.get("/api/v1/areas?level=2", headers=headers)
    _assert_json_error(refused, 429, "too_many_requests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60  # a client knows when to come back
    # another client is not starved by the first one
    with app.extensions["ucc"].db.session() as s:
        other = create_token(s, "wall")
    assert client.get("/api/v1/areas?level=2", headers={"Authorization": f"Bearer {other}"}).status_code == 200
