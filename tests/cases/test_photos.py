"""Case photos on SQLite and PostgreSQL: checks, content-addressed storage, scope, and GET /photos/<id>."""
from __future__ import annotations

import io
import os
from datetime import datetime, timezone

import pytest
from PIL import Image
from sqlalchemy import event, func, select

from cases.service import ServiceError
from data.models import CasePhoto
from cases.photos import MAX_BYTES, check_photo, decode_data_url, list_photos, save_photo
from data.tokens import Principal, create_token
from tests.factories import small_world

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in Shanghai: office hours
GRID = "320402001001001"  # rect_city: lower-left grid of district 320402
POINT = (119.905, 31.705)
OTHER_DISTRICT = "320403"
MANHOLE = "010151"  # 井盖缺失: the district's city-management bureau


def image_bytes(fmt: str, size=(64, 48), colour=(200, 60, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


def person(role: str, area: str, unit: str | None = None, name: str = "t") -> Principal:
    return Principal(kind="user", ident=f"user:{name}", role=role, area_code=area, unit_code=unit)


@pytest.fixture
def world(empty_db, tmp_path):
    service, _clock = small_world(empty_db, NOW)
    case, _ = service.intake({"category": MANHOLE, "lon": POINT[0], "lat": POINT[1], "description": "井盖缺失",
                              "source": "patrol"}, None)
    root = tmp_path / "photos"
    return empty_db, service, case, root


def files_under(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def row_count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(CasePhoto))


def test_good_jpeg_and_png_are_saved_listed_and_not_duplicated(world):
    db, service, case, root = world
    grid = person("grid_member", GRID, name="grid")
    handler = person("unit_handler", "320402", case["unit"]["code"], name="handler")
    jpeg, png = image_bytes("JPEG"), image_bytes("PNG")

    first = save_photo(service, case["id"], jpeg, "现场.jpg", "report", "user:grid", grid, root=root)
    again = save_photo(service, case["id"], jpeg, "现场.jpg", "report", "user:grid", grid, root=root)  # a retry
    fb = save_photo(service, case["id"], png, "C:\\fakepath\\done.png", "feedback", "user:handler", handler, root=root)

    assert again["id"] == first["id"] and row_count(db) == 2
    photos = list_photos(db, case["id"])
    assert [(p["kind"], p["actor"], p["mime"]) for p in photos] == [
        ("report", "user:grid", "image/jpeg"), ("feedback", "user:handler", "image/png")]
    for p in photos:
        assert p["url"] == f"/photos/{p['id']}" and p["uploaded_at"].endswith("+08:00")
    assert photos[1]["filename"] == "done.png"
    stored = files_under(root)
    assert len(stored) == 2 and all(f.stat().st_size in (len(jpeg), len(png)) for f in stored)
    # content-addressed: the name is the SHA-256 of the bytes
    import hashlib

    assert {f.stem for f in stored} == {hashlib.sha256(jpeg).hexdigest(), hashlib.sha256(png).hexdigest()}
    # WebP is accepted too
    assert check_photo(image_bytes("WEBP")).mime == "image/webp"


@pytest.mark.parametrize("data, name, code", [
    (b"GIF89a" + b"\0" * 100, "a.gif", "bad_photo_type"),
    (b"this is not an image", "fake.jpg", "bad_photo_type"),
    (b"", "empty.jpg", "empty_photo"),
    (b"\xff\xd8\xff\xe0" + b"\0" * MAX_BYTES, "huge.jpg", "photo_too_large"),
])
def test_wrong_type_empty_or_too_big_is_refused_with_nothing_written(world, data, name, code):
    db, service, case, root = world
    with pytest.raises(ServiceError) as exc:
        save_photo(service, case["id"], data, name, "report", "user:duty", person("duty_officer", "320400"), root=root)
    assert exc.value.status == 400 and exc.value.code == code and exc.value.message
    assert files_under(root) == [] and row_count(db) == 0


def test_bad_kind_and_data_urls(world):
    db, service, case, root = world
    with pytest.raises(ServiceError) as exc:
        save_photo(service, case["id"], image_bytes("JPEG"), "a.jpg", "selfie", "x", None, root=root)
    assert exc.value.status == 400
    import base64

    jpeg = image_bytes("JPEG")
    assert decode_data_url("data:image/jpeg;base64," + base64.b64encode(jpeg).decode()) == jpeg
    for bad in ("not a data url", "data:image/jpeg;base64,@@@", None):
        with pytest.raises(ServiceError):
            decode_data_url(bad)
    big = "data:image/jpeg;base64," + "A" * (MAX_BYTES * 4 // 3 + 100)
    with pytest.raises(ServiceError) as exc:
        decode_data_url(big)
    assert exc.value.code == "photo_too_large"
    assert files_under(root) == [] and row_count(db) == 0


@pytest.mark.parametrize("who, kind, status", [
    (person("grid_member", "320403001001001"), "report", 403),      # a grid member of another district
    (person("duty_officer", OTHER_DISTRICT), "report", 403),        # an officer of another district
    (person("unit_handler", "320402", "U-320402-someone_else"), "feedback", 403),  # not the case's unit
    (person("grid_member", GRID), "feedback", 403),                  # feedback is the unit's
    (person("wall", "320400"), "report", 403),                       # the wall only looks
    (person("leader", "320400"), "report", 403),
])
def test_who_may_not_attach(world, who, kind, status):
    db, service, case, root = world
    with pytest.raises(ServiceError) as exc:
        save_photo(service, case["id"], image_bytes("JPEG"), "a.jpg", kind, who.ident, who, root=root)
    assert exc.value.status == status and exc.value.message
    assert files_under(root) == [] and row_count(db) == 0


def test_missing_case_is_404_and_closed_case_refused(world):
    db, service, case, root = world
    with pytest.raises(ServiceError) as exc:
        save_photo(service, 999_999, image_bytes("JPEG"), "a.jpg", "report", "x", person("admin", "320400"), root=root)
    assert exc.value.status == 404
    officer = person("duty_officer", "320400", name="duty")
    service.act(case["id"], officer, "reject", case["version"], note="不属实")
    with pytest.raises(ServiceError) as exc:
        save_photo(service, case["id"], image_bytes("JPEG"), "a.jpg", "report", "x", officer, root=root)
    assert exc.value.status == 422
    assert files_under(root) == [] and row_count(db) == 0


def test_the_file_is_synced_before_its_row_is_written(world, monkeypatch):
    db, service, case, root = world
    seen = []
    real_fsync = os.fsync
    monkeypatch.setattr("cases.photos.os.fsync", lambda fd: (seen.append("fsync"), real_fsync(fd))[1])

    @event.listens_for(db.engine, "before_cursor_execute")
    def _spy(_conn, _cur, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO CASE_PHOTOS"):
            seen.append(("insert", len(files_under(root))))

    try:
        save_photo(service, case["id"], image_bytes("PNG"), "a.png", "report", "x", None, root=root)
    finally:
        event.remove(db.engine, "before_cursor_execute", _spy)
    assert "fsync" in seen and seen.index("fsync") < seen.index(("insert", 1))


def test_photos_of_merged_reports_show_on_the_case(world):
    db, service, case, root = world
    grid = person("grid_member", GRID, name="grid")
    dup, _ = service.intake({"category": MANHOLE, "lon": POINT[0] + 0.0001, "lat": POINT[1], "description": "同一处",
                             "source": "patrol"}, grid)
    assert dup["state"] == "merged" and dup["merged_into"] == case["id"]
    save_photo(service, dup["id"], image_bytes("JPEG"), "b.jpg", "report", "user:grid", grid, root=root)
    photos = list_photos(db, case["id"])
    assert len(photos) == 1 and photos[0]["case_id"] == dup["id"]


# ---- GET /photos/<id> ---------------------------------------------------------------------------
@pytest.fixture
def served(world, monkeypatch):
    from app import create_app
    from tests.conftest import make_settings

    db, service, case, root = world
    monkeypatch.setenv("UCC_PHOTO_DIR", str(root))
    monkeypatch.setenv("UCC_TOKEN_CACHE_SECONDS", "0")
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True
    jpeg = image_bytes("JPEG")
    photo = save_photo(service, case["id"], jpeg, "a.jpg", "report", "x", None)
    yield app, db, case, photo, jpeg
    app.extensions["ucc"].db.dispose()


def _bearer(db, role, area=None, unit=None):
    with db.session() as s:
        return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}


def test_route_serves_the_photo_to_who_may_see_the_case(served):
    app, db, case, photo, jpeg = served
    client = app.test_client()
    url = photo["url"]

    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "unauthorized"
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401

    other = client.get(url, headers=_bearer(db, "duty_officer", OTHER_DISTRICT))
    assert other.status_code == 403 and other.get_json()["message"]

    ok = client.get(url, headers=_bearer(db, "duty_officer"))
    assert ok.status_code == 200 and ok.data == jpeg and ok.mimetype == "image/jpeg"
    assert ok.headers["X-Content-Type-Options"] == "nosniff" and "private" in ok.headers["Cache-Control"]
    assert client.get("/photos/987654", headers=_bearer(db, "duty_officer")).status_code == 404


def _session_of(app, user_id: int) -> str:
    """A signed-in session of the user (data/login_sessions.py), as the sign-in form would start it."""
    from data.login_sessions import start_session

    with app.extensions["ucc"].db.session() as s:
        return start_session(s, app.extensions["ucc_session_rules"].person, user_id=user_id)


def test_route_serves_a_signed_in_person_by_session(served):
    from data.users import create_user

    app, db, case, photo, jpeg = served
    with db.session() as s:
        mine = create_user(s, "handler1", "password-123", "unit_handler", "320402", case["unit"]["code"]).id
        theirs = create_user(s, "officer3", "password-123", "duty_officer", OTHER_DISTRICT).id
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = _session_of(app, mine)
        sess["_fresh"] = True
    resp = client.get(photo["url"])
    assert resp.status_code == 200 and resp.data == jpeg

    other = app.test_client()
    with other.session_transaction() as sess:
        sess["_user_id"] = _session_of(app, theirs)
        sess["_fresh"] = True
    assert other.get(photo["url"]).status_code == 403
