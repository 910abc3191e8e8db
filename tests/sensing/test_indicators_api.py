"""The city's vital signs over HTTP on SQLite and the real PostgreSQL: a device token (or an admin) posts readings, one
or a list, all-or-nothing with every bad reading named (400, nothing stored, never a 500), duplicates stored once;
GET /api/v1/indicators?code=&start=&end= answers the series while the plan's indicators keep their reading of the path."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from data.indicator_readings import reading_count
from data.tokens import create_token
from tests.conftest import make_database, make_settings
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request, tmp_path):
    from app import create_app
    from data.schema import init_db

    db, schema = make_database(request.param, tmp_path)
    init_db(db)
    small_world(db, NOW)
    app = create_app(make_settings(db.url))
    app.config["TESTING"] = True

    def token(role="admin", area=None, unit=None):
        with db.session() as s:
            return {"Authorization": f"Bearer {create_token(s, role, area, unit)}"}

    yield app.test_client(), token, db
    app.extensions["ucc"].db.dispose()
    db.dispose()
    if schema:
        schema.drop()


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def count(db, code=None) -> int:
    with db.session() as s:
        return reading_count(s, code)


def test_post_one_a_list_and_duplicates_then_read_the_series(api):
    client, token, db = api
    device = token("device")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    one = {"code": "congestion_index", "ts": (now - timedelta(minutes=10)).astimezone(
        timezone(timedelta(hours=8))).isoformat(), "value": 1.85, "unit": "", "source": "交通运行监测平台"}
    r = client.post("/api/v1/indicators", json=one, headers=device)
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"readings": 1, "stored": 1, "duplicates": 0}
    batch = [{"code": "congestion_index", "ts": ms(now - timedelta(minutes=5)), "value": 1.9, "unit": "",
              "source": "交通运行监测平台"},
             {"code": "congestion_index", "ts": ms(now), "value": 2.05, "source": "交通运行监测平台"},  # unit optional
             {"code": "water_pressure", "ts": ms(now), "value": 0.31, "unit": "MPa", "source": "供水调度 SCADA"}]
    r = client.post("/api/v1/indicators", json=batch, headers=token("admin"))
    assert r.get_json() == {"readings": 3, "stored": 3, "duplicates": 0}
    again = client.post("/api/v1/indicators", json=batch + [one], headers=device).get_json()
    assert again == {"readings": 4, "stored": 0, "duplicates": 4}
    assert count(db) == 4

    reader = token("leader")
    series = client.get("/api/v1/indicators", query_string={"code": "congestion_index"}, headers=reader).get_json()
    assert series["code"] == "congestion_index" and series["name"] == "主城区交通拥堵指数"
    assert [i["value"] for i in series["items"]] == [1.85, 1.9, 2.05]
    assert set(series["items"][0]) == {"ts", "value", "unit", "source"}
    assert series["items"][0]["source"] == "交通运行监测平台"
    assert series["items"][0]["ts"] == (now - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    # start <= ts < end
    window = client.get("/api/v1/indicators", headers=reader, query_string={
        "code": "congestion_index", "start": (now - timedelta(minutes=5)).isoformat(), "end": now.isoformat()}).get_json()
    assert [i["value"] for i in window["items"]] == [1.9]
    # the plan's key indicators keep the path without code/start/end
    from figures.plan_indicators import seed_indicators

    with db.session() as s:
        seed_indicators(s)
    plan = client.get("/api/v1/indicators", headers=reader)
    assert plan.status_code == 200 and plan.get_json()["items"] and "target_2025" in plan.get_json()["items"][0]


def test_bad_readings_are_refused_whole_with_every_problem_named(api):
    client, token, db = api
    device = token("device")
    now = datetime.now(timezone.utc)
    good = {"code": "aqi", "ts": ms(now), "value": 55, "unit": "", "source": "环境监测站"}
    bad = [good,
           {"code": "no_such_code", "ts": ms(now), "value": 1, "source": "x"},
           {"code": "aqi", "ts": "yesterday", "value": 900, "source": "环境监测站"},
           {"code": "water_pressure", "ts": ms(now), "value": 0.3, "unit": "kPa", "source": "SCADA"},
           {"code": "aqi", "ts": ms(now + timedelta(hours=2)), "value": True, "source": "环境监测站", "extra": 1}]
    r = client.post("/api/v1/indicators", json=bad, headers=device)
    assert r.status_code == 400
    body = r.get_json()
    assert body["error"] == "bad_request" and "未保存" in body["message"]
    problems = body["problems"]
    assert [p.split("：")[0] for p in problems] == ["第 2 条", "第 3 条", "第 4 条", "第 5 条"]
    assert "未知指标代码 'no_such_code'" in problems[0]
    assert "ISO 8601" in problems[1] and "0–500" in problems[1]
    assert "单位应为 MPa" in problems[2]
    assert "多余字段 extra" in problems[3] and "value 应为数值" in problems[3] and "10 分钟" in problems[3]
    assert count(db) == 0  # all or nothing

    for payload, words in ((b"{not json", "不是合法的 JSON"), (b"[]", "列表为空"), (b"42", "应为一条读数"),
                           ({"code": "aqi", "value": 3, "source": "x"}, "缺少 ts"),
                           ({"code": "aqi", "ts": "2026-12-01T10:00:00", "value": 3, "source": "x"}, "须带时区"),
                           ({"code": "aqi", "ts": ms(now), "value": 3}, "缺少 source")):
        kw = {"json": payload} if not isinstance(payload, bytes) else {"data": payload,
                                                                        "content_type": "application/json"}
        r = client.post("/api/v1/indicators", headers=device, **kw)
        assert r.status_code == 400, (payload, r.get_json())
        assert words in r.get_json()["message"], r.get_json()
    assert count(db) == 0

    reader = token("duty_officer")
    for query, words in (({"code": "nope"}, "未知指标代码"), ({"start": now.isoformat()}, "缺少参数 code"),
                         ({"code": "aqi", "start": now.isoformat(), "end": (now - timedelta(hours=1)).isoformat()},
                          "早于"),
                         ({"code": "aqi", "start": (now - timedelta(days=400)).isoformat()}, "至多查询"),
                         ({"code": "aqi", "start": "2026-12-01"}, "时区"),
                         ({"code": "aqi", "theme": "traffic"}, "theme")):
        r = client.get("/api/v1/indicators", query_string=query, headers=reader)
        assert r.status_code == 400 and words in r.get_json()["message"], (query, r.get_json())


def test_who_may_post_and_read(api):
    client, token, db = api
    reading = {"code": "power_load", "ts": ms(datetime.now(timezone.utc)), "value": 900, "unit": "万千瓦",
               "source": "电网调度"}
    for role in ("leader", "duty_officer", "wall"):
        r = client.post("/api/v1/indicators", json=reading, headers=token(role))
        assert r.status_code == 403 and "设备令牌" in r.get_json()["message"]
    assert client.post("/api/v1/indicators", json=reading).status_code == 401
    assert count(db) == 0
    # a device token posts readings, and reads nothing
    assert client.post("/api/v1/indicators", json=reading, headers=token("device")).status_code == 200
    r = client.get("/api/v1/indicators", query_string={"code": "power_load"}, headers=token("device"))
    assert r.status_code == 403
    assert client.get("/api/v1/indicators", query_string={"code": "power_load"},
                      headers=token("wall")).get_json()["items"][0]["value"] == 900
