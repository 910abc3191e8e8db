"""`flask warn` and /api/v1/warnings over the demo city (5,891 grids): a recurring spot planted, found by the
command once, then read, acknowledged, dismissed and tasked through the API with the contract's shapes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from data.models import Unit
from tests.factories import add_case_row

LON, LAT = 119.975, 31.79   # central Changzhou (天宁区, 320402)
AT = "2026-11-25T10:00:00+08:00"
CONTRACT_KEYS = {"id", "kind", "area", "category", "window_start", "window_end", "observed", "expected", "upper",
                 "cases"}


def _headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def spot(demo_app):
    """Six 机动车乱停放 reports within a few metres in the days before AT; the grid's chain."""
    svc = demo_app.extensions["ucc"]
    chain = svc.areas.locator().locate(LON, LAT)
    at = datetime.fromisoformat(AT).astimezone(timezone.utc)
    for i in range(6):
        add_case_row(svc.db, at - timedelta(days=i + 1), grid=chain[0].code, district_code=chain[0].code[:6],
                     lon=LON + i * 1e-5, lat=LAT, category_code="020505")
    return [a.code for a in chain]


def _warn(app, *args):
    return app.test_cli_runner().invoke(args=["warn", *args])


def test_flask_warn_stores_a_spot_once_and_refuses_bad_times(demo_app, spot):
    first = _warn(demo_app, "--at", AT)
    assert first.exit_code == 0, first.output
    assert "新存储预警 1 条" in first.output and "高发问题点位" in first.output and "机动车乱停放" in first.output
    assert "街道级值班员" in first.output
    again = _warn(demo_app, "--at", AT)
    assert again.exit_code == 0 and "没有新的预警" in again.output
    for bad, words in [("2026-13-01T00:00:00+08:00", "时间格式有误"), ("2026-11-25T10:00:00", "时区偏移"),
                       ("3026-01-01T00:00:00+08:00", "1900–2999")]:
        result = _warn(demo_app, "--at", bad)
        assert result.exit_code != 0 and words in result.output, result.output


def test_the_api_lists_acknowledges_dismisses_and_tasks(demo_app, client, token_for, spot):
    assert _warn(demo_app, "--at", AT).exit_code == 0
    assert client.get("/api/v1/warnings").status_code == 401
    street = _headers(token_for("duty_officer", spot[2]))
    body = client.get("/api/v1/warnings?kind=recurrent&status=open", headers=street).get_json()
    assert body["total"] == 1
    item = body["items"][0]
    assert CONTRACT_KEYS <= set(item)
    assert item["kind"] == "recurrent" and item["category"] == "020505" and item["observed"] == 6
    assert len(item["cases"]) == 6 and item["window_end"] == AT
    # another street's officer sees none of it
    other = next(r for r in demo_app.extensions["ucc"].areas.records(3) if r.level == 3 and r.code != spot[2])
    assert client.get("/api/v1/warnings", headers=_headers(token_for("duty_officer", other.code))
                      ).get_json()["items"] == []
    for url, status, words in [("/api/v1/warnings?kind=flood", 400, "未知的预警类型"),
                               ("/api/v1/warnings?status=done", 400, "未知的预警状态"),
                               ("/api/v1/warnings?limit=abc", 400, "limit"),
                               ("/api/v1/warnings/999999", 404, "不存在")]:
        resp = client.get(url, headers=street)
        assert resp.status_code == status and words in resp.get_json()["message"], resp.get_data(as_text=True)
    one = client.get(f"/api/v1/warnings/{item['id']}", headers=street).get_json()
    assert one["evidence"]["count"] == 6 and one["evidence"]["radius_m"] > 0
    bad = client.post(f"/api/v1/warnings/{item['id']}/dismiss", json={}, headers=street)
    assert bad.status_code == 400 and "排除原因" in bad.get_json()["message"]
    acked = client.post(f"/api/v1/warnings/{item['id']}/acknowledge", headers=street)
    assert acked.status_code == 200 and acked.get_json()["status"] == "acknowledged"
    with demo_app.extensions["ucc"].db.session() as s:
        unit = s.scalars(select(Unit).where(Unit.area_code == spot[2])).first()
        unit_code = unit.code
    nope = client.post(f"/api/v1/warnings/{item['id']}/campaign", json={"unit_code": "NOPE"}, headers=street)
    assert nope.status_code == 422 and "不存在" in nope.get_json()["message"]
    made = client.post(f"/api/v1/warnings/{item['id']}/campaign", json={"unit_code": unit_code, "note": "集中整治"},
                       headers=street)
    assert made.status_code == 201, made.get_data(as_text=True)
    out = made.get_json()
    assert out["warning"]["status"] == "tasked" and out["warning"]["case_id"] == out["case"]["id"]
    assert out["case"]["category"]["code"] == "023001" and out["case"]["unit"]["code"] == unit_code
    late = client.post(f"/api/v1/warnings/{item['id']}/dismiss", json={"reason": "误报"}, headers=street)
    assert late.status_code == 409 and "已转专项整治" in late.get_json()["message"]
