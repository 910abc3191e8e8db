"""/api/v1/openapi.json: a valid OpenAPI 3.1 document, open without a token, that describes every /api/v1 endpoint
(a new endpoint without its marks fails here), with the models the views read through; and /api/docs, the page that
renders it from local assets only."""
from __future__ import annotations

import re

from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

import pytest

UNDOCUMENTED = {"/api/v1/<path:_unknown>", "/api/v1/openapi.json"}  # the catch-all 404 and the document itself


def _document(client) -> dict:
    resp = client.get("/api/v1/openapi.json")  # no Authorization header
    assert resp.status_code == 200 and resp.mimetype == "application/json", resp.get_data(as_text=True)[:300]
    return resp.get_json()


def test_the_document_is_valid_openapi_31_and_needs_no_token(client):
    doc = _document(client)
    validate(doc)  # openapi-spec-validator picks the 3.1 schema from `openapi`
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "城市运行管理平台 API" and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "API 令牌（create-token 生成）"}
    assert {"error", "message"} <= set(doc["components"]["schemas"]["ErrorBody"]["required"])


def test_a_broken_document_is_caught_by_the_validator(client):
    doc = _document(client)
    doc["paths"]["/api/v1/events"]["get"]["responses"] = "none"  # the validator is not a rubber stamp
    with pytest.raises(OpenAPIValidationError):
        validate(doc)


def test_every_api_rule_is_documented(demo_app, client):
    paths = _document(client)["paths"]
    missing = []
    for rule in demo_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule in UNDOCUMENTED:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {rule.rule} ({rule.endpoint}: mark it with api.openapi.operation)")
    assert not missing, "\n".join(missing)
    assert len(paths) >= 30


def test_the_document_describes_what_the_views_read(client):
    paths = _document(client)["paths"]
    events = paths["/api/v1/events"]
    params = {p["name"]: p for p in events["get"]["parameters"]}
    assert params["per_page"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    assert params["updated_since"]["schema"]["format"] == "date-time" and not params["page"]["required"]
    assert events["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IntakeRequest"}
    assert set(events["post"]["responses"]) >= {"201", "400", "401", "403", "409", "422", "429"}
    case_id = paths["/api/v1/events/{case_id}"]["get"]["parameters"][0]
    assert case_id["in"] == "path" and case_id["schema"]["type"] == "integer"
    report = paths["/api/v1/assessment/report"]["get"]["responses"]["200"]["content"]
    assert set(report) == {"application/pdf", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def test_a_wrong_parameter_is_named_in_the_models_words(client, officer):
    resp = client.get("/api/v1/events?per_page=0&page=x", headers=officer)
    body = resp.get_json()
    assert resp.status_code == 400 and body["error"] == "bad_request"
    assert body["fields"] == {"page": "参数 page 应为整数，收到 'x'", "per_page": "参数 per_page 应在 1 到 500 之间，收到 0"}
    ok = client.get("/api/v1/events?per_page=2&state=&page=", headers=officer)  # empty = absent, as before
    assert ok.status_code == 200 and ok.get_json()["per_page"] == 2


def test_the_docs_page_loads_only_local_assets(client):
    resp = client.get("/api/docs")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<title>城市运行管理平台 · 接口文档</title>" in html
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    for ref in refs:
        assert client.get(ref).status_code == 200, ref
    assert 'url: "/api/v1/openapi.json"' in html and "validatorUrl: null" in html


def test_a_path_no_endpoint_has_is_a_404_for_every_method(client, officer):
    for method, path in (("POST", "/api/v1/alarms/-1/actions"), ("DELETE", "/api/v1/events/abc/resources/1"),
                         ("PUT", "/api/v1/nope"), ("GET", "/api/v1/nope")):
        resp = client.open(path, method=method, headers=officer, json={})
        assert resp.status_code == 404 and resp.get_json()["error"] == "not_found", (method, path, resp.status_code)
    wrong_method = client.delete("/api/v1/areas", headers=officer)  # the path exists: that method does not
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"] == "method_not_allowed"
