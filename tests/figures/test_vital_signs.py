"""The city's vital signs on the screens (SQLite and PostgreSQL): each theme panel carries its indicators' latest values
with unit, source, time, the change since yesterday and a sparkline; a value past its freshness is stale; a panel
with no reading says so; the 演示数据 flag only where the demo feeder is the source; and the wall's snapshot carries
them (the demo city's seed backfills the feed)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from data import files
from figures import vital_signs
from sensing.indicators import IndicatorIngest

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)  # 10:00 in the city


def post(ingest, code, ts, value, source="交通运行监测平台"):
    spec = files.city_indicators().get(code)
    ingest.post([{"code": code, "ts": ts.isoformat(), "value": value, "unit": spec.unit, "source": source}],
                arrival=NOW)


def test_latest_values_stale_empty_and_demo(empty_db):
    ingest = IndicatorIngest(empty_db, files.city_indicators)
    with empty_db.session() as s:
        panels = vital_signs.wall_panels(s, NOW)
    assert list(panels) == ["safety", "traffic", "utilities", "economy"]
    assert all(p["empty"] and not p["demo"] for p in panels.values())
    assert all(i["value"] is None and i["text"] == "—" for i in panels["traffic"]["items"])

    post(ingest, "congestion_index", NOW - timedelta(days=1, minutes=5), 1.5)   # yesterday, about the same time
    post(ingest, "congestion_index", NOW - timedelta(hours=1), 1.7)
    post(ingest, "congestion_index", NOW - timedelta(minutes=3), 1.92)
    post(ingest, "road_speed", NOW - timedelta(hours=2), 33.3)                   # fresh for 15 minutes only
    post(ingest, "power_load", NOW - timedelta(minutes=1), 905, source="demo/电网调度自动化系统")
    with empty_db.session() as s:
        panels = vital_signs.wall_panels(s, NOW)
    traffic = panels["traffic"]
    assert not traffic["empty"] and not traffic["demo"] and traffic["stale"]
    by_code = {i["code"]: i for i in traffic["items"]}
    c = by_code["congestion_index"]
    assert (c["value"], c["text"], c["unit"], c["source_label"], c["when"]) == (1.92, "1.92", "", "交通运行监测平台",
                                                                               "09:57")
    assert c["ts"] == "2026-12-07T09:57:00+08:00" and not c["stale"] and not c["demo"]
    assert c["delta"] == 0.42 and c["delta_text"] == "较昨日同时 +0.42"
    assert len(c["spark"]) == vital_signs.SPARK_POINTS and c["spark"][-1] == 1.92 and c["spark"][0] is None
    s_ = by_code["road_speed"]
    assert s_["stale"] and s_["text"] == "33.3" and s_["unit"] == "km/h" and s_["age_s"] == 7200
    assert s_["delta"] is None and s_["delta_text"] == ""
    assert by_code["metro_inflow"]["value"] is None
    utilities = panels["utilities"]
    assert utilities["demo"] and not utilities["empty"]
    power = next(i for i in utilities["items"] if i["code"] == "power_load")
    assert power["demo"] and power["source_label"] == "电网调度自动化系统" and power["text"] == "905"
    assert panels["safety"]["empty"] and panels["economy"]["empty"]

    with empty_db.session() as s:
        view = vital_signs.theme_view(s, "traffic", NOW, span="7d")
        assert view["code"] == "congestion_index" and [i["code"] for i in view["items"]] == [
            "congestion_index", "road_speed", "metro_inflow"]
        assert view["series"]["unit"] == "" and view["series"]["y"] == [1.5, 1.81]  # hourly means
        day = vital_signs.theme_view(s, "traffic", NOW, code="road_speed")
        assert day["code"] == "road_speed" and day["series"]["y"] == [33.3]
        assert vital_signs.theme_view(s, "city", NOW)["items"] == []
        assert len(vital_signs.theme_view(s, "overview", NOW)["items"]) == len(files.city_indicators().indicators)


def test_the_wall_snapshot_carries_the_demo_feed(demo_app):
    from figures.wall import snapshot
    from web.services import services

    from demo.indicator_feed import IndicatorFeeder

    app = services(demo_app)
    # the demo database was seeded when the test session began (maybe half an hour ago, past some indicators'
    # freshness): the feeder catches up to now, as a server's start does
    IndicatorFeeder(app.indicators, lambda: datetime.now(timezone.utc)).catch_up()
    snap = snapshot(app, datetime.now(timezone.utc))
    vitals = snap["vital_signs"]
    assert set(vitals) == {"safety", "traffic", "utilities", "economy"}
    for panel in vitals.values():
        assert not panel["empty"] and panel["demo"]  # the demo seed backfilled the last 7 days, from the demo feeder
        for item in panel["items"]:
            assert item["value"] is not None and not item["stale"] and item["demo"], item
            assert item["source_label"] and not item["source_label"].startswith("demo/")
            assert item["delta_text"].startswith("较昨日同时")
    # a reading posted now is on the next snapshot (the shared read of the vital signs is dropped when one is stored)
    app.indicators.post({"code": "power_load", "ts": datetime.now(timezone.utc).isoformat(), "value": 1234,
                         "unit": "万千瓦", "source": "电网调度自动化系统"})
    again = snapshot(app, datetime.now(timezone.utc))["vital_signs"]["utilities"]
    power = next(i for i in again["items"] if i["code"] == "power_load")
    assert (power["text"], power["demo"], power["source_label"]) == ("1,234", False, "电网调度自动化系统")
    assert again["demo"]  # the panel's other values still come from the demo feeder


def test_the_wall_page_has_no_fixed_numbers(demo_app):
    """The four theme panels are containers the page fills from the snapshot (no value, no badge written in the layout)."""
    from layouts.wall import _theme_panels

    with demo_app.test_request_context("/wall"):
        panels = {p.id: p for p in _theme_panels()}
    for key in ("safety", "traffic", "utilities", "economy"):
        text = str(panels[f"wall-panel-{key}"].to_plotly_json())
        assert f"wall-vital-{key}" in text and f"wall-vital-badge-{key}" in text
        assert "演示数据" not in text  # the badge is the snapshot's to show
