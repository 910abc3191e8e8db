"""The /api/v1 sensing endpoints: the device types in force, the fleet and its alarms within the reader's scope,
telemetry in and out."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from pydantic import Field, RootModel

from api.openapi import body_of, operation, query_of
from api.schemas import Answer, Body, Code, Paged, Query, QueryTime, Text
from api.v1 import authenticate
from dispatch.access import TELEMETRY_STATS_READERS
from dispatch.errors import ServiceError
from web.services import services

bp = Blueprint("api_devices", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1
TAG = "物联感知"


class Listed(Answer):
    items: list[dict[str, Any]]
    total: int


class DevicesQuery(Paged):
    type: Text | None = Field(None, description="设备类型代码，如 manhole_cover")
    status: Text | None = Field(None, description="online、offline、alarm 或 maintenance")
    area: Code | None = Field(None, description="区域编码")
    q: Text | None = Field(None, description="按编号或名称搜索")


class Device(Answer):
    id: str
    type: str
    name: str
    lon: float
    lat: float
    unit: dict[str, Any] | None
    status: str
    last_seen: str | None
    values: dict[str, Any] | None


class DevicePage(Answer):
    items: list[Device]
    total: int
    page: int
    per_page: int


class AlarmsQuery(Paged):
    status: Text | None = Field(None, description="active、acknowledged 或 cleared")
    severity: Text | None = Field(None, description="critical、major、minor 或 warning")
    device: Text | None = Field(None, description="设备编号")


class Alarm(Answer):
    id: int
    device: Any
    rule: Any
    severity: str
    status: str
    started_at: str | None
    cleared_at: str | None
    values: Any
    case_id: int | None


class AlarmPage(Answer):
    items: list[Alarm]
    total: int
    page: int
    per_page: int


def _one_of_actions(schema: dict) -> None:
    schema.pop("default", None)  # absent is refused (by the service); the description shows only what is allowed
    schema["enum"] = ["acknowledge", "clear"]


class AlarmAction(Body):
    # described, not screened here: the alarm service's refusal names both actions
    action: Any = Field(None, description="acknowledge 确认，clear 解除", json_schema_extra=_one_of_actions)


class Reading(RootModel[Any]):
    """CONTRACT.md's telemetry payload: `{"ts": 毫秒, "values": {KEY: 值}}`, a list of such, or a flat `{KEY: 值}`
    (the time of arrival). Read by the telemetry service, which names each refused reading."""

    root: dict[str, Any] | list[dict[str, Any]]


class TelemetryOutcome(Answer):
    device: str
    readings: int
    stored: int
    duplicates: int
    refused: list[dict[str, Any]]


class TelemetryQuery(Query):
    key: Text | None = Field(None, description="读数键，如 water_level_cm")
    start: QueryTime | None = None
    end: QueryTime | None = None


class Telemetry(Answer):
    items: list[dict[str, Any]]


class TelemetryStats(Answer):
    since: str | None
    stored: int


@bp.get("/device-types")
@operation("设备类型及其告警规则", responses={200: Listed}, tags=(TAG,))
def device_types():
    items = services().devices.type_items()
    return jsonify({"items": items, "total": len(items)})


@bp.get("/devices")
@operation("设备列表（读者辖区内）", query=DevicesQuery, responses={200: DevicePage}, tags=(TAG,))
def devices():
    q = query_of(DevicesQuery)
    return jsonify(services().devices.list(g.principal, type_=q.type, status=q.status, area=q.area, page=q.page,
                                           per_page=q.per_page, search=q.q))


@bp.get("/devices/<device_id>")
@operation("一台设备", responses={200: Device}, tags=(TAG,))
def device(device_id: str):
    return jsonify(services().devices.get(g.principal, device_id))


@bp.get("/alarms")
@operation("告警列表", query=AlarmsQuery, responses={200: AlarmPage}, tags=(TAG,))
def alarms():
    q = query_of(AlarmsQuery)
    return jsonify(services().alarms.list(g.principal, status=q.status, severity=q.severity, device=q.device,
                                          page=q.page, per_page=q.per_page))


@bp.post("/alarms/<int:alarm_id>/actions")
@operation("确认或解除告警", body=AlarmAction, responses={200: Alarm}, tags=(TAG,))
def act_on_alarm(alarm_id: int):
    data = body_of(AlarmAction)
    return jsonify(services().alarms.act(g.principal, alarm_id, data.action))


@bp.post("/devices/<device_id>/telemetry")
@operation("上报遥测（设备令牌）", body=Reading, responses={200: TelemetryOutcome, 422: TelemetryOutcome}, tags=(TAG,),
           description="422：没有一条读数可保存（答复同样列出每条被拒的读数）。")
def post_telemetry(device_id: str):
    """CONTRACT.md's telemetry payload over HTTP (a device token): what was stored and what was refused."""
    app = services()
    app.devices.check_sender(g.principal, device_id)
    out = app.telemetry.ingest_one(device_id, request.get_data(cache=False))
    body = out.to_dict()
    if out.stored == 0 and out.duplicates == 0:
        body.update(error="unprocessable", message="没有可保存的读数：" + "；".join(r["message"] for r in out.refused[:5]))
        return jsonify(body), 422
    return jsonify(body)


@bp.get("/devices/<device_id>/telemetry")
@operation("一台设备的遥测序列", query=TelemetryQuery, responses={200: Telemetry}, tags=(TAG,))
def device_telemetry(device_id: str):
    q = query_of(TelemetryQuery)
    return jsonify(services().devices.telemetry(g.principal, device_id, key=q.key, start=q.start, end=q.end))


@bp.get("/telemetry/stats")
@operation("遥测接入统计（本进程启动以来，管理员）", responses={200: TelemetryStats}, tags=(TAG,))
def telemetry_stats():
    """The ingest's counters since the process started (the operations view reads them)."""
    if g.principal.role not in TELEMETRY_STATS_READERS:
        raise ServiceError(403, "forbidden", "只有管理员可以查看遥测接入统计")
    return jsonify(services().telemetry.stats())
