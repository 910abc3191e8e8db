"""A stored warning on the live stream: `warning_event` reaches the responsible street's officers, the district's and
the wall (the city's room), and not a grid member below the street nor another street. The demo city's app (SQLite)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from tests.factories import add_case_row

LON, LAT = 119.975, 31.79   # central Changzhou (天宁区, 320402)
AT = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def _warnings(client) -> list[dict]:
    return [p["args"][0]["warning"] for p in client.get_received("/live") if p["name"] == "warning_event"]


def test_a_new_warning_reaches_the_responsible_officers_and_no_others(demo_app, token_for):
    services = demo_app.extensions["ucc"]
    live = demo_app.extensions["ucc_live"]
    chain = services.areas.locator().locate(LON, LAT)
    grid, street, district = chain[0].code, chain[2].code, chain[3].code
    other_street = next(r.code for r in services.areas.children(district) if r.code != street)
    tokens = {"wall": token_for("wall"), "district": token_for("duty_officer", district),
              "street": token_for("duty_officer", street), "grid": token_for("grid_member", grid),
              "other_street": token_for("duty_officer", other_street)}
    clients = {k: live.socketio.test_client(demo_app, namespace="/live", auth={"token": t}) for k, t in tokens.items()}
    assert all(c.is_connected("/live") for c in clients.values())
    for c in clients.values():
        c.emit("resync", {"since": None}, namespace="/live", callback=True)
        c.get_received("/live")
    for i in range(6):
        add_case_row(services.db, AT - timedelta(days=i + 1), grid=grid, district_code=district,
                     lon=LON, lat=LAT + i * 1e-5, category_code="020505")
    stored = services.warnings.run(AT)
    assert [w["kind"] for w in stored] == ["recurrent"]
    got = {k: [] for k in clients}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(got[k] for k in ("wall", "district", "street")):
        for k, c in clients.items():
            got[k] += _warnings(c)
        time.sleep(0.05)
    time.sleep(0.3)
    for k, c in clients.items():
        got[k] += _warnings(c)
    for k in ("wall", "district", "street"):
        assert [w["id"] for w in got[k]] == [stored[0]["id"]], k
        assert got[k][0]["kind_label"] == "高发问题点位" and got[k][0]["responsible_area"] == street
    assert got["grid"] == [] and got["other_street"] == []
    for c in clients.values():
        c.disconnect(namespace="/live")
