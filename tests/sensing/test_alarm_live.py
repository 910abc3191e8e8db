"""Alarms on the live stream and the wall's snapshot: a raise, its acknowledgement and its clearing reach the rooms of
the device's areas and unit (and no one else) as `alarm_event`; the wall's snapshot carries the fleet by street and
the open alarms counted by severity; and the whole path from the machine's Mosquitto to the wall's stream. The demo
city's app, as it runs (SQLite)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from data.models import Device
from figures.wall import snapshot


def _a_cover(demo_app) -> Device:
    with demo_app.extensions["ucc"].db.session() as s:
        return s.scalars(select(Device).where(Device.type == "manhole_cover", Device.status == "online")
                         .order_by(Device.id).limit(1)).one()


def _lift(client, token, device_id: str) -> None:
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    r = client.post(f"/api/v1/devices/{device_id}/telemetry", headers={"Authorization": f"Bearer {token}"},
                    json=[{"ts": now - 3000, "values": {"tilt_deg": 31}}, {"ts": now, "values": {"tilt_deg": 34}}])
    assert r.status_code == 200 and r.get_json()["stored"] == 2, r.get_json()


def _alarms(client) -> list[dict]:
    return [p["args"][0]["alarm"] for p in client.get_received("/live") if p["name"] == "alarm_event"]


def _wait(clients: dict, want, seconds: float = 5.0) -> dict[str, list[dict]]:
    got: dict[str, list[dict]] = {k: [] for k in clients}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for k, c in clients.items():
            got[k] += _alarms(c)
        if want(got):
            break
        time.sleep(0.05)
    time.sleep(0.3)  # anything that should not come has had its chance
    for k, c in clients.items():
        got[k] += _alarms(c)
    return got


def test_an_alarm_reaches_the_rooms_of_its_device_and_no_others(demo_app, token_for):
    services = demo_app.extensions["ucc"]
    live = demo_app.extensions["ucc_live"]
    device = _a_cover(demo_app)
    other_district = next(r.code for r in services.areas.records(max_level=2)
                          if r.level == 2 and r.code != device.district_code)
    with services.db.session() as s:
        other_unit = s.scalar(select(Device.unit_code).where(Device.unit_code != device.unit_code).limit(1))
    tokens = {"wall": token_for("wall"), "district": token_for("leader", device.district_code),
              "unit": token_for("unit_handler", None, device.unit_code),
              "other_district": token_for("leader", other_district),
              "other_unit": token_for("unit_handler", None, other_unit)}
    clients = {k: live.socketio.test_client(demo_app, namespace="/live", auth={"token": t}) for k, t in tokens.items()}
    assert all(c.is_connected("/live") for c in clients.values())
    for c in clients.values():
        c.emit("resync", {"since": None}, namespace="/live", callback=True)
        c.get_received("/live")

    client = demo_app.test_client()
    _lift(client, token_for("device"), device.id)
    hearers = ("wall", "district", "unit")
    got = _wait(clients, lambda g: all(g[k] for k in hearers))
    for k in hearers:
        raised = [a for a in got[k] if a["device"] == device.id]
        assert raised, f"{k} heard nothing"
        first = raised[0]
        assert (first["rule"], first["severity"], first["status"]) == ("cover_tilt", "critical", "active")
        assert first["rule_name"] and first["severity_label"] == "紧急" and first["type_name"] == "智慧井盖"
        assert (first["lon"], first["lat"]) == (device.lon, device.lat) and first["district"]
    assert not got["other_district"] and not got["other_unit"]
    # the alarm's case (opened through the intake after the alarm's commit) comes as the same alarm again
    alarm_id = got["wall"][0]["id"]
    assert any(a["id"] == alarm_id and a["case_id"] for a in got["wall"]), got["wall"]

    # acknowledged, then cleared by the duty officer: each step is heard
    officer = {"Authorization": f"Bearer {token_for('duty_officer')}"}
    for action, status in (("acknowledge", "acknowledged"), ("clear", "cleared")):
        r = client.post(f"/api/v1/alarms/{alarm_id}/actions", json={"action": action}, headers=officer)
        assert r.status_code == 200, r.get_json()
        got = _wait({"wall": clients["wall"], "other_unit": clients["other_unit"]},
                    lambda g: any(a["status"] == status for a in g["wall"]))
        assert [a["status"] for a in got["wall"] if a["id"] == alarm_id][-1] == status
        assert not got["other_unit"]
    for c in clients.values():
        c.disconnect(namespace="/live")


def test_the_wall_snapshot_carries_the_fleet_and_the_open_alarms(demo_app, token_for):
    services = demo_app.extensions["ucc"]
    before = snapshot(services, now=services.cases.clock())
    devices = before["devices"]
    assert devices["total"] == sum(devices["counts"].values()) > 1000
    # one cluster per street, holding every device once
    streets = {r.code for r in services.areas.records(max_level=3) if r.level == 3}
    assert 0 < len(devices["clusters"]) <= len(streets)
    assert sum(c[2] for c in devices["clusters"]) == devices["total"]
    assert sum(c[3] for c in devices["clusters"]) == devices["counts"]["offline"] == len(devices["offline"])

    device = _a_cover(demo_app)
    _lift(demo_app.test_client(), token_for("device"), device.id)
    after = snapshot(services, now=services.cases.clock())
    alarms = after["alarms"]
    assert alarms["total"] == before["alarms"]["total"] + 1
    assert alarms["by_severity"]["critical"] == before["alarms"]["by_severity"]["critical"] + 1
    mine = [a for a in alarms["items"] if a["device"] == device.id]
    assert len(mine) == 1 and mine[0]["status"] == "active" and mine[0]["street"]
    # the most severe first
    order = ["critical", "major", "minor", "warning"]
    ranks = [order.index(a["severity"]) for a in alarms["items"]]
    assert ranks == sorted(ranks)
    # the fleet's GROUP BY is kept FLEET_TTL_S (the alarms above are read every time): the same layer until then
    assert after["devices"] is devices
    import figures.wall as wall_figures

    wall_figures._fleets.pop(services.db.url, None)  # as when FLEET_TTL_S has passed
    later = snapshot(services, now=services.cases.clock())
    assert later["devices"]["counts"]["alarm"] == devices["counts"]["alarm"] + 1


@pytest.mark.mqtt
def test_publish_to_the_broker_stored_alarm_case_and_the_wall_hears_it(demo_app, token_for):
    """The whole path on the machine's Mosquitto: a lifted cover published at QoS 1 → the consumer stores it → the
    rule → the alarm → its case through the intake → `alarm_event` (with the case) on a wall's live stream."""
    import uuid

    from data.models import Alarm, Case, Telemetry
    from sensing_mqtt.consumer import TelemetryConsumer
    from tests.sensing.mqtt_broker import require_shared_broker
    from tests.sensing.test_mqtt import Publisher, wait_for

    url = require_shared_broker()
    services = demo_app.extensions["ucc"]
    live = demo_app.extensions["ucc_live"]
    wall = live.socketio.test_client(demo_app, namespace="/live", auth={"token": token_for("wall")})
    wall.emit("resync", {"since": None}, namespace="/live", callback=True)
    wall.get_received("/live")
    consumer = TelemetryConsumer(services.telemetry, url, client_id="test-e2e-" + uuid.uuid4().hex[:8]).start()
    pub = Publisher(url)
    try:
        assert consumer.wait_connected(10)
        device = _a_cover(demo_app)
        now = int(datetime.now(timezone.utc).timestamp() * 1000)
        pub.publish(device.id, [{"ts": now - 3000, "values": {"tilt_deg": 31.0}},
                                {"ts": now, "values": {"tilt_deg": 34.0}}], n=1)
        heard: list[dict] = []

        def case_heard():
            heard.extend(_alarms(wall))
            return any(a["device"] == device.id and a["case_id"] for a in heard)

        assert wait_for(case_heard, timeout=15), heard
        assert 1 in pub.acked
        with services.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Telemetry).where(Telemetry.device_id == device.id)) == 2
            alarm = s.scalars(select(Alarm).where(Alarm.device_id == device.id)).one()
            case = s.get(Case, alarm.case_id)
            assert (alarm.rule_code, alarm.status) == ("cover_tilt", "active")
            assert case.source == "iot" and device.id in case.description
        first = next(a for a in heard if a["device"] == device.id)
        assert first["status"] == "active" and first["severity"] == "critical"
    finally:
        pub.close()
        consumer.stop()
        wall.disconnect(namespace="/live")
