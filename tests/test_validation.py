"""The input screen, the page table on Dash callbacks, wrong-typed callback inputs, full photo decoding and
the fallback for failures: the cases an outside tester found answered 500, each now a clear refusal."""
from __future__ import annotations

import io
import pkgutil
import re

import pytest
from PIL import Image

import callbacks
from cases.photos import check_photo, save_photo
from dispatch import access
from dispatch.errors import ServiceError
from tests.fuzzing import (BIG, DASH_CALLBACK, callback_body, counts, csrf_header, dash_app_of, send_json,
                           server_callbacks, sign_in)

CJK = re.compile(r"[\u4e00-\u9fff]")
POINT = (119.9745, 31.7847)  # 天宁区, inside the demo city
SHOW_CASE = "..cs-detail.children...cs-case.data...cs-side.className...cs-root.className.."


@pytest.fixture
def officer(token_for):
    return {"Authorization": f"Bearer {token_for('duty_officer', '320400')}"}


def _refusal(resp, status: int) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    body = resp.get_json()
    assert set(body) >= {"error", "message"} and CJK.search(body["message"]), body
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


def _intake(client, headers, **extra) -> dict:
    body = {"category": "010151", "lon": POINT[0], "lat": POINT[1], "description": "井盖缺失", "source": "hotline"}
    body.update(extra)
    return send_json(client, "POST", "/api/v1/events", body, headers)


# ---- the API ---------------------------------------------------------------------------------------
def test_ids_past_64_bits_are_refused_not_500(client, officer, demo_app):
    before = counts(demo_app.extensions["ucc"].db)
    _refusal(client.get(f"/api/v1/events/{BIG}", headers=officer), 400)
    _refusal(send_json(client, "POST", f"/api/v1/events/{10**25}/actions", {"action": "accept", "version": 1},
                         officer), 400)
    _refusal(client.get("/photos/99999999999999999999999", headers=officer), 400)  # was an HTML 500 page
    case = _intake(client, officer).get_json()
    _refusal(send_json(client, "POST", f"/api/v1/events/{case['id']}/actions", {"action": "accept", "version": BIG},
                         officer), 400)
    _refusal(client.get(f"/api/v1/events?after={BIG}", headers=officer), 400)
    assert client.get(f"/api/v1/events/{2**63 - 1}", headers=officer).status_code == 404  # the largest id: none
    assert counts(demo_app.extensions["ucc"].db)[0] == before[0] + 1  # only the good intake


@pytest.mark.parametrize("field, value", [
    ("description", "井盖\x00缺失"), ("idempotency_key", "key\x00"), ("description", "bell\x07"),
    ("description", "x" * 30_000), ("occurred_at", "0001-01-01T00:00:00+14:00"),
    ("occurred_at", "9999-12-31T23:59:59-14:00"), ("occurred_at", "1899-12-31T00:00:00+08:00"),
    ("lon", 2**70), ("severity", BIG),
])
def test_hostile_intake_fields_are_refused_and_write_nothing(client, officer, demo_app, field, value):
    before = counts(demo_app.extensions["ucc"].db)
    _refusal(_intake(client, officer, **{field: value}), 400)
    assert counts(demo_app.extensions["ucc"].db) == before


def test_free_text_keeps_tabs_and_newlines(client, officer):
    resp = _intake(client, officer, description="井盖缺失\n\t第二行\r\n")
    assert resp.status_code == 201, resp.get_json()


def test_control_characters_and_long_values_in_query_strings_are_refused(client, officer):
    _refusal(client.get("/api/v1/events?area=320400%00", headers=officer), 400)
    _refusal(client.get("/api/v1/events?state=" + "x" * 5000, headers=officer), 400)
    _refusal(client.get("/api/v1/kpis?start=0001-01-01&end=9999-12-31", headers=officer), 400)
    _refusal(client.put("/api/v1/indicators/GOV-02", json={"value": 1, "as_of": "0001-01-01"},
                        headers=officer), 403)  # a duty officer may not update indicators at all


def test_a_note_with_nul_is_refused_before_the_case_moves(client, officer, demo_app):
    case = _intake(client, officer).get_json()
    before = counts(demo_app.extensions["ucc"].db)
    _refusal(client.post(f"/api/v1/events/{case['id']}/actions",
                         json={"action": "accept", "version": case["version"], "note": "ok\x00"}, headers=officer), 400)
    assert counts(demo_app.extensions["ucc"].db) == before
    assert client.get(f"/api/v1/events/{case['id']}", headers=officer).get_json()["state"] == case["state"]


# ---- pages and static paths ---------------------------------------------------------------------------
def test_pages_answer_a_chinese_message_for_bad_query_values(client):
    sign_in(client, "leader")
    resp = client.get("/cockpit?area=%00")
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    text = resp.get_data(as_text=True)
    assert "控制字符" in text and "Traceback" not in text
    assert client.get(f"/cockpit?area={BIG}&theme=%F0%9D%94%98").status_code == 200  # unknown: the city


def test_a_component_suite_path_outside_the_packages_is_a_404_for_anyone(client):
    for path in ("/_dash-component-suites/..%2f..%2fconfig.py", "/_dash-component-suites/dash/../../app.py",
                 "/_dash-component-suites/nope/x.js"):
        resp = client.get(path)
        assert resp.status_code == 404, (path, resp.status_code)
    sign_in(client, "duty")
    assert client.get("/_dash-component-suites/..%2f..%2fconfig.py").status_code == 404


# ---- Dash callbacks belong to their page ---------------------------------------------------------------
def test_every_callback_belongs_to_a_page_or_is_shared_on_purpose(demo_app):
    dash_app = dash_app_of(demo_app)
    for key in dash_app.callback_map:
        page = callbacks.page_of(key)
        assert page is not None or callbacks.shared_on_purpose(key), f"callback {key} belongs to no page"
        assert page is None or access.page_for(page) is not None, (key, page)
    # every module of callbacks/ holds a page's callbacks, but the helpers named here
    modules = {m.name for m in pkgutil.iter_modules(callbacks.__path__)}
    assert modules - set(callbacks.PAGE_OF_MODULE) == {"guard", "inputs"}
    # the console's case detail is the console's
    assert callbacks.page_of(SHOW_CASE) == "/console"


def _post_callback(client, key: str, values: list, changed: int = 0):
    entry = server_callbacks(dash_app_of(client.application))[key]
    return send_json(client, "POST", DASH_CALLBACK, callback_body(key, entry, values, changed), csrf_header(client))


@pytest.mark.parametrize("user, status", [("wall", 403), ("grid", 403), ("handler", 403), ("duty", 200),
                                          ("leader", 200)])
def test_the_console_case_detail_only_for_the_consoles_roles(client, officer, user, status):
    case = _intake(client, officer).get_json()
    sign_in(client, user)
    resp = _post_callback(client, SHOW_CASE, [{"id": case["id"]}, None])
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    if status == 403:
        assert "指挥调度台" in resp.get_json()["message"]
    else:
        assert f"#{case['id']}" in resp.get_data(as_text=True)


def test_unknown_and_browser_side_callbacks_are_400(client):
    sign_in(client, "duty")
    resp = client.post(DASH_CALLBACK, json={"output": "nope.children", "inputs": []}, headers=csrf_header(client))
    assert _refusal(resp, 400)["error"] == "unknown_callback"
    resp = client.post(DASH_CALLBACK, json={"output": "cs-help.hidden", "inputs": []}, headers=csrf_header(client))
    assert _refusal(resp, 400)["error"] == "unknown_callback"
    _refusal(client.post(DASH_CALLBACK, json=[1, 2], headers=csrf_header(client)), 400)


# ---- wrong-typed callback inputs ---------------------------------------------------------------------
ACT = next(k for k in callbacks.PAGE_OF_OUTPUT if k.startswith("..cs-act-form.className"))


def test_wrong_typed_console_inputs_are_refused_with_a_message(client, officer, demo_app):
    case = _intake(client, officer).get_json()
    sign_in(client, "duty")
    before = counts(demo_app.extensions["ucc"].db)
    for bad in ({"id": "abc"}, {"id": BIG - 1 + 1}, {"id": [1]}, "abc", [case["id"]], {"id": "9" * 5000}):
        resp = _post_callback(client, SHOW_CASE, [bad, None])
        assert resp.status_code == 400, (bad, resp.status_code, resp.get_data(as_text=True)[:200])
        assert CJK.search(resp.get_json()["message"])
    # the action form: a store without its version, then an action nobody knows
    entry = server_callbacks(dash_app_of(demo_app))[ACT]
    n_in = len(entry["inputs"])
    # cs-act-go pressed, no version (states: the case, the pending action, note, hours, unit, choice, the pickers)
    values = [[1], 1, None, {"id": case["id"]}, "accept", "", None, None, None, None]
    body = callback_body(ACT, entry, values, changed=1)
    resp = send_json(client, "POST", DASH_CALLBACK, body, csrf_header(client))
    assert resp.status_code == 400 and "version" in resp.get_json()["message"]
    values[3] = {"id": case["id"], "version": case["version"]}
    values[4] = "explode"
    resp = client.post(DASH_CALLBACK, json=callback_body(ACT, entry, values, changed=1), headers=csrf_header(client))
    assert resp.status_code == 200 and "未知操作" in resp.get_data(as_text=True)
    assert n_in == 3
    assert counts(demo_app.extensions["ucc"].db) == before


# ---- photos ------------------------------------------------------------------------------------------
def _image(fmt: str, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 60, 40)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_and_corrupt_images_are_refused_before_anything_is_written(demo_app, tmp_path, fmt):
    good = _image(fmt)
    assert check_photo(good).name == fmt.lower()
    corrupt = bytearray(good)
    corrupt[len(good) // 2] ^= 0xFF
    service = demo_app.extensions["ucc"].cases
    case, _ = service.intake({"category": "010151", "lon": POINT[0], "lat": POINT[1], "description": "井盖缺失",
                              "source": "hotline"}, None)
    before, root = counts(service.db), tmp_path / "photos"
    for bad in (good[:8 + 12], good[: len(good) // 2], good[:-6]) + ((bytes(corrupt),) if fmt == "PNG" else ()):
        with pytest.raises(ServiceError) as err:
            save_photo(service, case["id"], bad, "现场." + fmt.lower(), "report", "t", None, root=root)
        assert err.value.status == 400 and "损坏" in err.value.message
    assert counts(service.db) == before and not root.exists()


def test_an_image_claiming_too_many_pixels_is_refused_from_its_header():
    with pytest.raises(ServiceError) as err:
        check_photo(_image("PNG", (8000, 7000)))
    assert err.value.status == 400 and "像素" in err.value.message


# ---- failures: JSON or a Chinese page, never a trace ---------------------------------------------------
def test_an_unexpected_failure_answers_json_on_json_routes_and_a_plain_page_elsewhere(demo_app, caplog):
    def boom():
        raise RuntimeError("secret detail")

    demo_app.add_url_rule("/photos/boom-test", "boom_photo", boom)
    demo_app.add_url_rule("/boom-test", "boom_page", boom)
    client = demo_app.test_client()
    sign_in(client, "admin")
    resp = client.get("/photos/boom-test")
    assert resp.status_code == 500 and resp.get_json()["error"] == "internal_error"
    assert "secret" not in resp.get_data(as_text=True)
    resp = client.get("/boom-test")
    assert resp.status_code == 500 and resp.mimetype == "text/html"
    text = resp.get_data(as_text=True)
    assert "服务器内部错误" in text and "secret" not in text and "Traceback" not in text
    assert "secret detail" in caplog.text  # logged for the operators
