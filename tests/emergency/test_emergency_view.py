"""How /emergency draws a response (layouts/emergency.py), without a browser: overdue tasks and reports in red, the
countdown, the resources panel with and without the resource service, the map's layers and legend."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import shapely

from geo.model import AreaRecord
from layouts import emergency as view

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 8, 4, 30, tzinfo=SH)


def _iso(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


def _classes(component) -> list[str]:
    """Every className in a component tree."""
    out, todo = [], [component]
    while todo:
        c = todo.pop()
        if isinstance(c, (list, tuple)):
            todo.extend(c)
            continue
        if c is None or isinstance(c, (str, int, float)):
            continue
        cls = getattr(c, "className", None)
        if cls:
            out.append(cls)
        todo.append(getattr(c, "children", None))
    return out


def _text(component) -> str:
    out, todo = [], [component]
    while todo:
        c = todo.pop(0)
        if isinstance(c, (list, tuple)):
            todo[:0] = list(c)
        elif isinstance(c, (str, int, float)):
            out.append(str(c))
        elif c is not None:
            todo.insert(0, getattr(c, "children", None))
    return " ".join(out)


UNIT = {"code": "U-1", "name": "天宁区住房和城乡建设局"}
RESPONSE = {
    "tasks": [{"unit": UNIT, "role": "lead", "deadline": _iso(-5), "acknowledged_at": None, "overdue": True},
              {"unit": {"code": "U-2", "name": "常州港华燃气有限公司"}, "role": "assist", "deadline": _iso(-5),
               "acknowledged_at": _iso(-10), "overdue": False}],
    "checklist": [{"position": 1, "item": "切断气源", "done_at": _iso(-3), "by": "user:duty"},
                  {"position": 2, "item": "设立警戒区", "done_at": None, "by": None}],
    "reports": [{"kind": "first", "kind_label": "首报", "due_at": _iso(-2), "filed_at": None, "text": None,
                 "late": True}],
    "status": "active",
}


def test_overdue_tasks_and_reports_are_red_done_items_say_who_and_when():
    tasks = view.tasks_block(RESPONSE)
    assert "em-task is-overdue" in _classes(tasks) and "超时未签收" in _text(tasks) and "已签收" in _text(tasks)
    checks = view.checklist_block(RESPONSE, may_tick=True)
    assert "duty" in _text(checks) and "（1/2）" in _text(checks)
    ticks = [c for c in _classes(checks) if c.startswith("em-tick")]
    assert ticks.count("em-tick is-done") == 1
    reports = view.reports_block(RESPONSE, NOW)
    assert "em-cd is-over" in _classes(reports) and "已超时 2分钟" in _text(reports)
    assert "剩余 1小时00分" in _text(view.countdown(_iso(60), NOW))
    assert "em-cd is-near" in _classes(view.countdown(_iso(5), NOW))


def test_the_resources_panel_without_and_with_the_service():
    assert "资源数据未接入" in _text(view.resources_panel(None, "资源数据未接入"))
    found = {"items": [{"id": "T1", "type": "team", "name": "天宁区消防救援站", "lon": 119.97, "lat": 31.79,
                        "status": "available", "distance_m": 1234.5}], "total": 1}
    panel = view.resources_panel(found, None)
    assert "救援队伍" in _text(panel) and "1.2 km" in _text(panel)


def test_the_map_draws_the_event_ring_grids_devices_alarms_and_resources():
    grid = AreaRecord("320402004009002", "南塘社区第2网格", 5, "320402004009",
                      shapely.box(119.97, 31.785, 119.98, 31.795), population=1175)
    near = AreaRecord("320402004009001", "南塘社区第1网格", 5, "320402004009",
                      shapely.box(119.98, 31.785, 119.99, 31.795), population=1354)
    case = {"lon": 119.975, "lat": 31.79, "category": {"name": "燃气泄漏"}}
    devices = {"items": [{"lon": 119.976, "lat": 31.791, "status": "online", "name": "积水0128", "type_name": "积水监测",
                          "status_label": "在线", "distance_m": 140.0}], "total": 1,
               "counts": {"online": 1, "offline": 0, "alarm": 0, "maintenance": 0}}
    alarms = {"items": [{"lon": 119.977, "lat": 31.79, "severity": "critical", "rule_name": "燃气浓度超限",
                         "device_name": "燃气0001", "severity_label": "紧急", "status_label": "未确认"}], "total": 1}
    resources = {"items": [{"type": "shelter", "name": "红梅公园避难场所", "lon": 119.96, "lat": 31.8,
                            "distance_m": 1800.0}], "total": 1}
    payload = view.map_payload(case, 3000, grid, [near], [grid, near], devices, alarms, resources)
    layers = {layer["id"]: layer for layer in payload["spec"]["layers"]}
    affected = layers["em-affected"]["data"]
    assert [r["code"] for r in affected] == [near.code, grid.code]  # the event's grid drawn last, on top
    assert "事发网格 · 常住人口 1,175 人" in affected[1]["tip"] and "相邻网格" in affected[0]["tip"]
    assert layers["em-around"]["data"] == []  # the affected grids are not drawn twice
    assert len(layers["em-devices"]["data"]) == len(layers["em-alarms"]["data"]) == len(layers["em-res"]["data"]) == 1
    assert layers["em-event"]["data"][0]["p"] == [119.975, 31.79] and layers["em-devices"]["radiusUnits"] == "pixels"
    minx, miny, maxx, maxy = payload["bounds"]
    assert minx < 119.975 - 0.03 and maxx > 119.975 + 0.03 and miny < 31.79 - 0.026 < 31.79 + 0.026 < maxy
    legend = _text(view.legend(grid, [near], 3000, devices, alarms, True, resources))
    assert "南塘社区第2网格 · 1,175 人" in legend and "常住人口 2,529 人" in legend and "影响半径 3 公里" in legend
    assert "应急资源 1" in legend
    assert "资源数据未接入" in _text(view.legend(grid, [], 3000, None, None, False, None))


def test_resources_are_read_from_the_resource_service_when_it_is_connected(demo_app):
    """callbacks/emergency._surroundings asks services().resources (emergency/resources.py, issue 17 part 4) for the
    nearest within the radius, as the principal; without the service the panel says 资源数据未接入."""
    from types import SimpleNamespace

    from callbacks import emergency as cb
    from data.tokens import Principal

    services = demo_app.extensions["ucc"]
    officer = Principal("user", "duty", "duty_officer", "320400")
    asked = []

    class Resources:
        def nearest(self, lon, lat, type=None, specialty=None, radius_m=None, limit=20, principal=None, status=None):  # noqa: A002
            asked.append((lon, lat, radius_m, limit, principal))
            return {"items": [{"id": "TEAM-1", "type": "team", "type_name": "救援队伍", "name": "天宁区消防救援站",
                               "lon": lon + 0.01, "lat": lat, "status": "available", "status_label": "可用",
                               "capacity": 30, "specialty": "消防", "distance_m": 950.0, "stock": []},
                              {"id": "WH-1", "type": "warehouse", "name": "市应急物资储备库", "lon": lon, "lat": lat + 0.01,
                               "status": "available", "status_label": "可用", "capacity": None, "distance_m": 1110.0,
                               "stock": [{"item": "帐篷", "quantity": 200, "unit": "顶"},
                                         {"item": "折叠床", "quantity": 500, "unit": "张"},
                                         {"item": "矿泉水", "quantity": 3000, "unit": "箱"}]}], "total": 2}

    case = {"lon": 119.975, "lat": 31.79, "chain": [{"code": services.areas.locator().locate(119.975, 31.79)[0].code}]}
    svc = SimpleNamespace(areas=services.areas, devices=services.devices, alarms=services.alarms, resources=Resources())
    around = cb._surroundings(svc, officer, case, 3000)
    assert asked == [(119.975, 31.79, 3000, cb.NEARBY_RESOURCES, officer)] and around["resource_msg"] is None
    panel = _text(view.resources_panel(around["resources"], None, [{"id": 7, "name": "天宁区消防救援站", "type": "team",
                                                                     "item": None, "quantity": 1, "released_at": None}]))
    assert "已调配 1 项" in panel and "消防，30 人" in panel and "帐篷 200顶、折叠床 500张 等 3 项" in panel
    off = cb._surroundings(SimpleNamespace(areas=services.areas, devices=services.devices, alarms=services.alarms,
                                           resources=None), officer, case, 3000)
    assert off["resource_msg"] == "资源数据未接入" and not off["resources_on"]
