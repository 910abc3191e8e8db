"""Open311 GeoReport v2 at /open311/v2, spoken to as an outside client would: over HTTP against the running server
(tests/serving.py), form-encoded POSTs, .json and .xml reads parsed as such, the spec's errors — and an existing
Open311 client from PyPI (georeport) pointed at us as at any other city's endpoint."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
import requests
from georeport import GeoReport

from tests.serving import AppProcess

PHONE = "13812345678"


@pytest.fixture(scope="module")
def city(tmp_path_factory, demo_sqlite_url):
    """The real app (`python app.py`) over a copy of the demo city, with an Open311 key, an admin's token and a
    duty officer's token; `points` inside the city, `street` an area whose name an address may use."""
    from data import files
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.tokens import create_token

    d = tmp_path_factory.mktemp("open311")
    path = d / "open311.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    with db.session() as s:
        keys = {role: create_token(s, role, label="open311 test") for role in ("open311", "admin", "duty_officer")}
    areas = AreaDirectory(db)
    grids = sorted((r for r in areas.records() if r.level == 5), key=lambda r: r.code)
    points = [(r.geometry.representative_point().x, r.geometry.representative_point().y) for r in grids[::400][:6]]
    street = sorted((r for r in areas.records() if r.level == 3), key=lambda r: r.code)[5]
    from cases.service import CaseService

    public = files.public_services(CaseService(db, areas).catalog())
    db.dispose()
    # reads are limited per address (test_anonymous_reads_are_rate_limited_per_address): not this module's many
    app = AppProcess(f"sqlite:///{path}", d / "app.log", UCC_SEED_HISTORY="0",
                     UCC_OPEN311_RATE_LIMIT="10000 per minute").wait_ready()
    app.keys, app.points, app.street, app.public, app.db_path = keys, points, street, public, path
    app.base = app.url + "/open311/v2"
    yield app
    app.stop()


def post(city, fmt="json", **form):
    """A form-encoded POST of a service request (requests sends application/x-www-form-urlencoded)."""
    return requests.post(f"{city.base}/requests.{fmt}", data=form, timeout=15)


def report(city, point=0, **form):
    lon, lat = city.points[point]
    values = dict(api_key=city.keys["open311"], service_code=city.public.services[0].code, lat=f"{lat:.6f}",
                  long=f"{lon:.6f}", description="人行道井盖缺失，行人易绊倒")
    values.update(form)
    resp = post(city, **values)
    assert resp.status_code == 200, resp.text
    return resp.json()[0]


def intake_key(city, case_id: int) -> str:
    """The key a case's intake was made with, read from the database: a realtime service's POST answers the id, so
    the report's token is in no answer (docs/open-interfaces.md)."""
    import sqlite3

    with sqlite3.connect(city.db_path) as conn:
        return conn.execute("SELECT idempotency_key FROM cases WHERE id = ?", (case_id,)).fetchone()[0]


def staff(city, method, path, role="admin", body=None):
    req = urllib.request.Request(city.url + "/api/v1" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {city.keys[role]}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def spec_error(resp, status: int, fmt: str = "json") -> str:
    """The description of the spec's error answer, after checking its status, content type and shape."""
    assert resp.status_code == status, resp.text
    if fmt == "json":
        assert resp.headers["Content-Type"].startswith("application/json")
        body = resp.json()
        assert isinstance(body, list) and len(body) == 1 and body[0]["code"] == status
        return body[0]["description"]
    assert resp.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(resp.content)
    assert root.tag == "errors" and [e.tag for e in root] == ["error"]
    assert root.find("error/code").text == str(status)
    return root.find("error/description").text


# ---- discovery and services ---------------------------------------------------------------------------
def test_discovery_names_the_v2_endpoint_and_both_formats(city):
    for path in ("/open311/discovery", "/open311/v2/discovery"):
        body = requests.get(f"{city.url}{path}.json", timeout=10).json()
        endpoint = body["endpoints"][0]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["url"] == city.base and endpoint["type"] == "production"
        assert set(endpoint["formats"]) == {"text/xml", "application/json"}
        assert body["contact"] and body["key_service"]
    resp = requests.get(f"{city.url}/open311/discovery.xml", timeout=10)
    assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert resp.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = ET.fromstring(resp.content)
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]


def test_services_are_the_public_categories_in_json_and_xml(city):
    resp = requests.get(f"{city.base}/services.json", params={"jurisdiction_id": "changzhou"}, timeout=10)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    services = resp.json()
    assert [s["service_code"] for s in services] == [s.code for s in city.public.services]
    first = services[0]
    assert set(first) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert first["metadata"] is False and first["type"] == "realtime"
    assert first["service_name"] in first["keywords"].split(",")
    assert not {"突发事件", "综合整治"} & {s["group"] for s in services}  # emergencies are 110/119/12345's
    root = ET.fromstring(requests.get(f"{city.base}/services.xml", timeout=10).content)
    assert root.tag == "services" and {e.tag for e in root} == {"service"}
    assert [e.findtext("service_code") for e in root] == [s["service_code"] for s in services]
    assert root.find("service/metadata").text == "false"


def test_a_service_definition_and_an_unknown_service(city):
    code = city.public.services[0].code
    assert requests.get(f"{city.base}/services/{code}.json", timeout=10).json() == {"service_code": code,
                                                                                   "attributes": []}
    root = ET.fromstring(requests.get(f"{city.base}/services/{code}.xml", timeout=10).content)
    assert root.tag == "service_definition" and root.findtext("service_code") == code
    assert "999999" in spec_error(requests.get(f"{city.base}/services/999999.json", timeout=10), 404)
    spec_error(requests.get(f"{city.base}/services/999999.xml", timeout=10), 404, "xml")


# ---- POST requests ----------------------------------------------------------------------------------------
def test_a_form_encoded_report_is_created_routed_and_masked_for_the_public(city):
    answer = report(city, description=f"井盖缺失，请联系我 {PHONE}，谢谢", phone=PHONE, email="li@example.com",
                    first_name="李", last_name="四", jurisdiction_id="changzhou",
                    media_url="https://example.com/p/1.jpg")
    rid = answer["service_request_id"]
    # realtime: the id at once, and so no token (the spec: never both)
    assert isinstance(rid, int) and "已受理" in answer["service_notice"]
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    # the case is real: through the intake, routed to a unit, source open311 (what the staff's API says)
    status, case = staff(city, "GET", f"/events/{rid}")
    assert status == 200 and case["source"] == "open311" and case["state"] == "reported"
    assert case["unit"] and case["unit"]["name"] and case["deadline"]
    assert case["reporter_phone"] == PHONE  # the office may call back
    # the public read: the phone masked in the text, never a contact detail
    resp = requests.get(f"{city.base}/requests/{rid}.json", timeout=10)
    [read] = resp.json()
    assert read["service_request_id"] == rid and read["status"] == "open"
    assert read["description"] == "井盖缺失，请联系我 138****5678，谢谢"
    assert PHONE not in resp.text and "li@example.com" not in resp.text and "李四" not in resp.text
    assert read["agency_responsible"] == case["unit"]["name"]
    assert read["media_url"] == "https://example.com/p/1.jpg"
    assert read["requested_datetime"].endswith("+08:00") and read["expected_datetime"].endswith("+08:00")
    assert read["service_code"] == city.public.services[0].code and read["service_name"]
    assert abs(read["lat"] - case["lat"]) < 1e-9 and abs(read["long"] - case["lon"]) < 1e-9
    assert read["address"] == "，".join(a["name"] for a in case["chain"])  # most specific first: grid → city
    assert read["status_notes"] is None and read["zipcode"] is None
    # the report's token (the key its intake was made with) resolves to the request
    token = intake_key(city, rid)
    assert token.startswith("open311-")
    assert requests.get(f"{city.base}/tokens/{token}.json", timeout=10).json() == [
        {"service_request_id": rid, "token": token}]
    root = ET.fromstring(requests.get(f"{city.base}/tokens/{token}.xml", timeout=10).content)
    assert root.tag == "service_requests" and root.findtext("request/service_request_id") == str(rid)


def test_a_report_by_address_string_in_xml_with_a_generic_client(city):
    form = urllib.parse.urlencode({"api_key": city.keys["open311"], "service_code": city.public.services[1].code,
                                   "address_string": f"常州市{city.street.name}人民路口",
                                   "description": "路灯不亮"}).encode()
    req = urllib.request.Request(f"{city.base}/requests.xml", data=form, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/xml; charset=utf-8"
        root = ET.fromstring(resp.read())
    assert root.tag == "service_requests"
    rid = int(root.findtext("request/service_request_id"))
    assert root.findtext("request/service_notice") and root.find("request/token") is None
    status, case = staff(city, "GET", f"/events/{rid}")
    assert status == 200 and city.street.code in {a["code"] for a in case["chain"]}
    xml = ET.fromstring(requests.get(f"{city.base}/requests/{rid}.xml", timeout=10).content)
    request_el = xml.find("request")
    assert request_el.findtext("address") == f"常州市{city.street.name}人民路口"
    assert request_el.findtext("description") == "路灯不亮" and request_el.findtext("status") == "open"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_spec_errors_of_a_post(city, fmt):
    code = city.public.services[0].code
    lon, lat = city.points[0]
    where = {"lat": str(lat), "long": str(lon)}
    assert "api_key" in spec_error(post(city, fmt, service_code=code, **where), 403, fmt)
    assert "api_key" in spec_error(post(city, fmt, api_key="ucc_not-a-key", service_code=code, **where), 403, fmt)
    assert "open311" in spec_error(post(city, fmt, api_key=city.keys["duty_officer"], service_code=code, **where),
                                   403, fmt)
    key = city.keys["open311"]
    assert "service_code" in spec_error(post(city, fmt, api_key=key, **where), 400, fmt)
    assert "999999" in spec_error(post(city, fmt, api_key=key, service_code="999999", **where), 404, fmt)
    assert "位置" in spec_error(post(city, fmt, api_key=key, service_code=code, description="无位置"), 400, fmt)
    assert "无法定位" in spec_error(post(city, fmt, api_key=key, service_code=code, address_string="火星基地"), 400, fmt)
    assert "不在本市" in spec_error(post(city, fmt, api_key=key, service_code=code, lat="39.9", long="116.4"), 400, fmt)
    assert "long" in spec_error(post(city, fmt, api_key=key, service_code=code, lat="31.7"), 400, fmt)
    assert "jurisdiction_id" in spec_error(post(city, fmt, api_key=key, service_code=code, jurisdiction_id="beijing",
                                                **where), 404, fmt)
    assert "联系电话" in spec_error(post(city, fmt, api_key=key, service_code=code, phone="12", **where), 400, fmt)
    assert "media_url" in spec_error(post(city, fmt, api_key=key, service_code=code, media_url="file:///etc/passwd",
                                          **where), 400, fmt)


def test_a_key_made_by_the_cli_posts(city):
    import os
    import subprocess
    import sys

    from tests.serving import ROOT

    made = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "create-token", "--role", "open311",
                           "--label", "某 Open311 应用"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, DATABASE_URL=f"sqlite:///{city.db_path}", UCC_SECRET_KEY="test-secret"))
    assert made.returncode == 0, made.stderr
    assert report(city, point=1, api_key=made.stdout.strip().splitlines()[-1])["service_request_id"]


def test_an_administrator_may_post_and_other_keys_do_not_reach_the_staff_api(city):
    assert report(city, point=2, api_key=city.keys["admin"])["service_request_id"]
    status, body = staff(city, "GET", "/events", role="open311")
    assert status == 403 and "Open311" in body["message"]


# ---- GET requests: filters and defaults ------------------------------------------------------------------
def test_requests_filters_by_id_code_status_and_dates(city):
    codes = [s.code for s in city.public.services]
    first = report(city, point=3, service_code=codes[2], description="垃圾满溢")["service_request_id"]
    second = report(city, point=4, service_code=codes[3], description="占道经营")["service_request_id"]
    # the office rejects the second, with a note that names a phone: the public sees it masked as status_notes
    status, case = staff(city, "GET", f"/events/{second}")
    status, _ = staff(city, "POST", f"/events/{second}/actions",
                      body={"action": "reject", "version": case["version"], "note": f"不属于受理范围，请致电 {PHONE}"})
    assert status == 200

    def ids(**params):
        resp = requests.get(f"{city.base}/requests.json", params=params, timeout=10)
        assert resp.status_code == 200, resp.text
        return [r["service_request_id"] for r in resp.json()], resp.json()

    assert ids(service_request_id=f"{first},{second}")[0] == [second, first]  # newest first
    assert ids(service_code=codes[2])[0][0] == first and second not in ids(service_code=codes[2])[0]
    closed, items = ids(status="closed")
    assert second in closed and first not in closed
    rejected = next(r for r in items if r["service_request_id"] == second)
    assert rejected["status_notes"] == "不属于受理范围，请致电 138****5678"
    assert first in ids(status="open")[0] and second not in ids(status="open")[0]
    assert {first, second} <= set(ids(status="open,closed")[0])
    assert {first, second} <= set(ids()[0])  # the default: the most recent 90 days
    assert ids(start_date="2020-01-01T00:00:00Z", end_date="2020-03-01T00:00:00+08:00")[0] == []
    # the id list overrides the other filters (the spec)
    assert ids(service_request_id=str(second), status="open")[0] == [second]
    root = ET.fromstring(requests.get(f"{city.base}/requests.xml", params={"service_request_id": second},
                                      timeout=10).content)
    assert root.tag == "service_requests" and root.findtext("request/status") == "closed"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_spec_errors_of_reads(city, fmt):
    get = lambda path, **params: requests.get(f"{city.base}/{path}.{fmt}", params=params, timeout=10)  # noqa: E731
    assert "99999999" in spec_error(get("requests/99999999"), 404, fmt)
    assert "jurisdiction_id" in spec_error(get("services", jurisdiction_id="nanjing"), 404, fmt)
    assert "status" in spec_error(get("requests", status="pending"), 400, fmt)
    assert "90" in spec_error(get("requests", start_date="2026-01-01T00:00:00Z", end_date="2026-06-01T00:00:00Z"),
                              400, fmt)
    assert "start_date" in spec_error(get("requests", start_date="yesterday"), 400, fmt)
    assert "service_code" in spec_error(get("requests", service_code="999999"), 400, fmt)
    assert "service_request_id" in spec_error(get("requests", service_request_id="abc"), 400, fmt)
    assert "token" in spec_error(get("tokens/not-a-token"), 404, fmt)
    # not an interface: the spec's error, never a page of the web app
    spec_error(requests.get(f"{city.base}/nothing.{fmt}", timeout=10), 404, fmt)
    spec_error(requests.get(f"{city.base}/services.html", timeout=10), 404)
    spec_error(requests.get(f"{city.url}/open311", timeout=10), 404)
    spec_error(requests.delete(f"{city.base}/requests.{fmt}", timeout=10), 404, fmt)


def test_the_screen_and_the_body_limit_answer_in_the_spec_format(city):
    key, code = city.keys["open311"], city.public.services[0].code
    resp = post(city, "xml", api_key=key, service_code=code, address_string="湖塘\x00镇")
    assert "控制字符" in spec_error(resp, 400, "xml")
    resp = post(city, "json", api_key=key, service_code=code, description="很长" * 40_000)
    assert "请求体过大" in spec_error(resp, 413)


# ---- an existing client ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_existing_open311_client_reads_us_like_any_city(city, fmt):
    rid = report(city, point=5, description=f"树木倒伏 {PHONE}")["service_request_id"]
    client = GeoReport(city.base, jurisdiction="changzhou", output_format=fmt)
    services = client.get_service_list()
    assert [s["service_code"] for s in services] == [s.code for s in city.public.services]
    code = services[0]["service_code"]
    assert client.get_service_definition(code)["service_code"] == code
    one = client.get_service_request(str(rid))
    assert str(one["service_request_id"]) == str(rid) and one["status"] == "open"
    assert one["description"] == "树木倒伏 138****5678"
    listed = client.get_service_requests(service_request_id=str(rid))
    listed = listed if isinstance(listed, list) else [listed]  # xmltodict: a single element is not a list
    assert [str(r["service_request_id"]) for r in listed] == [str(rid)]


def test_anonymous_reads_are_rate_limited_per_address(demo_sqlite_url, tmp_path):
    from app import create_app
    from tests.conftest import make_settings

    dst = tmp_path / "app.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), dst)
    app = create_app(make_settings(f"sqlite:///{dst}", open311_rate_limit="3 per minute"))
    client = app.test_client()
    try:
        assert [client.get("/open311/v2/services.json").status_code for _ in range(3)] == [200] * 3
        resp = client.get("/open311/v2/services.xml")
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
        root = ET.fromstring(resp.data)
        assert root.tag == "errors" and root.findtext("error/code") == "429"
        # counted apart from the staff's API
        assert client.get("/api/v1/areas").status_code == 401
    finally:
        app.extensions["ucc"].db.dispose()


def test_hostile_requests_never_fail_and_refusals_change_nothing(demo_app, token_for):
    """A seeded run of hostile Open311 requests in-process (tests/fuzzing.py's values): none answers 5xx, each refusal
    is the spec's error document and changes no row."""
    import random
    from urllib.parse import quote

    from tests.fuzzing import HOSTILE, HOSTILE_TEXT, counts

    rng = random.Random(20261208)
    client, db = demo_app.test_client(), demo_app.extensions["ucc"].db
    keys = [token_for("open311"), token_for("admin"), "ucc_nope", ""]
    fields = ("service_code", "lat", "long", "address_string", "address_id", "description", "media_url", "phone",
              "email", "jurisdiction_id", "attribute[x]", "account_id")
    paths = ("discovery", "services", "services/010101", "services/%00", "requests", "requests/1", "requests/abc",
             f"requests/{2**63}", "tokens/open311-x", "tokens/%00", "nope")
    text = lambda: str(rng.choice(HOSTILE + HOSTILE_TEXT))  # noqa: E731
    for _ in range(300):
        fmt = rng.choice(["json", "xml", "html", ""])
        before = counts(db)
        if rng.random() < 0.5:
            form = {"api_key": rng.choice(keys), "service_code": rng.choice(["010101", "020102", text()]),
                    "lat": "31.78", "long": "119.97"}
            for name in rng.sample(fields, k=rng.randint(1, 4)):
                form[name] = text()
            form = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in form.items()}
            resp = client.post(f"/open311/v2/requests.{fmt}", data=form)
        else:
            query = "&".join(f"{n}={quote(text(), safe='', errors='surrogatepass')}" for n in
                             rng.sample(("service_request_id", "service_code", "start_date", "end_date", "status",
                                         "jurisdiction_id"), k=rng.randint(0, 3)))
            resp = client.get(f"/open311/v2/{rng.choice(paths)}.{fmt}?{query}")
        assert resp.status_code < 500, resp.get_data(as_text=True)[:300]
        if resp.status_code >= 400:
            assert counts(db) == before
            if fmt == "xml":
                assert ET.fromstring(resp.data).tag == "errors"
            else:
                body = resp.get_json()
                assert isinstance(body, list) and body[0]["code"] == resp.status_code and body[0]["description"]


def test_every_state_of_the_lifecycle_has_an_open311_status():
    from cases.open311 import STATUS_OF_STATE
    from dispatch.lifecycle import STATES

    assert set(STATUS_OF_STATE) == set(STATES) and set(STATUS_OF_STATE.values()) == {"open", "closed"}
    assert STATUS_OF_STATE["resolved"] == "open" and STATUS_OF_STATE["rejected"] == "closed"


def test_a_second_report_of_the_same_problem_joins_the_first(city):
    code = city.public.services[4].code
    first = report(city, point=1, service_code=code, description="路面坑洼")["service_request_id"]
    second = report(city, point=1, service_code=code, description="这里路面有个坑")
    assert f"受理编号 {first}" in second["service_notice"]
    [read] = requests.get(f"{city.base}/requests/{second['service_request_id']}.json", timeout=10).json()
    assert read["status"] == "open" and f"受理编号 {first}" in read["status_notes"]
    assert read["description"] == "这里路面有个坑"
