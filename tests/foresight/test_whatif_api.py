"""POST /api/v1/whatif and GET /api/v1/whatif/ID on SQLite and PostgreSQL: 202 with the id, then the run's progress
and its result per unit; bad changes 400 with Chinese messages; no token 401; a role that does not decide 403."""
from __future__ import annotations

import time

import pytest

from data.tokens import create_token
from tests.conftest import make_database, make_settings
from tests.foresight.whatif_world import AT, BUSY, build


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    from app import create_app
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path_factory.mktemp("whatifapi"))
    init_db(db)
    build(db)
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True
    client = app.test_client()

    def token(role="leader", area="320400", unit=None):
        with db.session() as s:
            return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}

    yield client, token
    svc = app.extensions["ucc"].whatif
    for thread in list(svc.threads.values()):
        thread.join(30)
    app.extensions["ucc"].db.dispose()
    db.dispose()
    if schema:
        schema.drop()


def error(resp, status) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert {"error", "message"} <= set(body)
    return body["message"]


def test_a_run_is_submitted_then_polled_to_its_result(api):
    client, token = api
    headers = token()
    body = {"changes": [{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}], "at": AT.isoformat()}
    resp = client.post("/api/v1/whatif", json=body, headers=headers)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    run_id = resp.get_json()["id"]
    deadline = time.monotonic() + 60
    while True:
        run = client.get(f"/api/v1/whatif/{run_id}", headers=headers).get_json()
        assert {"id", "status", "progress", "change", "as_of"} <= set(run)
        if run["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        assert "result" not in run
        time.sleep(0.05)
    assert run["status"] == "done", run.get("error")
    assert run["as_of"] == AT.isoformat() and run["id"] == run_id
    result = run["result"]
    busy = next(u for u in result["units"] if u["code"] == BUSY)
    for side in ("baseline", "changed"):
        assert {"overdue", "on_time_rate", "score", "resolved"} <= set(busy[side])
    assert busy["difference"]["overdue"] > 0 and busy["difference"]["score"] < 0
    assert {"baseline", "changed", "difference"} <= set(result["city"])


def test_one_change_may_be_posted_alone(api):
    client, token = api
    resp = client.post("/api/v1/whatif", json={"kind": "extra_reports", "area": "320403", "count": 200,
                                               "source": "patrol", "at": AT.isoformat()}, headers=token("duty_officer"))
    assert resp.status_code == 202
    run = client.get(f"/api/v1/whatif/{resp.get_json()['id']}", headers=token("admin")).get_json()
    assert run["change"]["changes"] == [{"kind": "extra_reports", "area": "320403", "count": 200,
                                         "source": "patrol"}]


@pytest.mark.parametrize("body, words", [
    ({"changes": [{"kind": "unit_capacity", "unit": "U-nowhere", "factor": 0.5}]}, "未知部门"),
    ({"changes": [{"kind": "category_volume", "category": "xx", "factor": 2}]}, "未知类别"),
    ({"changes": [{"kind": "extra_reports", "area": "000000", "count": 200}]}, "未知区域"),
    ({"changes": []}, "非空列表"),
    ({"changes": [{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}], "at": "2026-11-23"}, "时区"),
])
def test_bad_changes_are_400_in_chinese(api, body, words):
    client, token = api
    assert words in error(client.post("/api/v1/whatif", json=body, headers=token()), 400)


def test_a_body_that_is_not_json_is_400(api):
    client, token = api
    assert "JSON" in error(client.post("/api/v1/whatif", data="x", headers=token()), 400)


def test_tokens_and_roles(api):
    client, token = api
    body = {"changes": [{"kind": "unit_capacity", "unit": BUSY, "factor": 0.5}]}
    error(client.post("/api/v1/whatif", json=body), 401)
    assert "推演" in error(client.post("/api/v1/whatif", json=body, headers=token("grid_member", "320402")), 403)
    assert "推演" in error(client.get("/api/v1/whatif/1", headers=token("unit_handler", "320402", BUSY)), 403)
    error(client.get("/api/v1/whatif/999999", headers=token()), 404)
