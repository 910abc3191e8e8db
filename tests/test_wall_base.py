"""GET /wall/base.json: the wall map's static half (boundaries, grid shapes) for signed-in screens only."""
from __future__ import annotations

from data.tokens import create_token


def _wall_client(demo_app):
    client = demo_app.test_client()
    with demo_app.extensions["ucc"].db.session() as s:
        token = create_token(s, "wall", label="大屏")
    assert client.get(f"/wall?token={token}").status_code == 200
    return client


def test_nobody_signed_in_gets_401_not_the_map(demo_app):
    resp = demo_app.test_client().get("/wall/base.json")
    assert resp.status_code == 401 and "登录" in resp.get_json()["message"]
    assert b"district-fill" not in resp.get_data()


def test_a_wall_screen_gets_boundaries_grids_and_labels_then_304_while_nothing_changed(demo_app):
    client = _wall_client(demo_app)
    resp = client.get("/wall/base.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    layers = {layer["id"]: layer for layer in body["base"]["layers"]}
    assert {"district-fill", "grids", "streets", "district-lines"} <= set(layers)
    assert layers["streets"]["@@type"] == "LineLayer"
    # every district has a name to show and a boundary ring; every grid a shape
    districts = {row["code"] for row in layers["district-fill"]["data"]}
    assert {label["code"] for label in body["base"]["labels"]} == districts
    assert len(body["base"]["outlines"]["district-lines"]) >= len(districts)
    assert body["geo"]["n"] > 0 and len(body["geo"]["rings"]) >= body["geo"]["n"]
    # the page's layout names the version it expects; the browser revalidates with the ETag
    assert resp.headers["ETag"] == f'"{body["v"]}"'
    again = client.get("/wall/base.json", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    assert client.get("/wall/base.json", headers={"If-None-Match": '"old"'}).status_code == 200
