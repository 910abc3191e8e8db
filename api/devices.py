"""The /api/v1 sensing endpoints: the device types in force, the fleet and its alarms within the reader's scope,
telemetry in and out."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from api.v1 import MAX_PER_PAGE, datetime_arg, int_arg, json_body, authenticate
from dispatch.access import TELEMETRY_STATS_READERS
from dispatch.errors import ServiceError
from web.services import services

bp = Blueprint("api_devices", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


def _text_arg(name: str) -> str | None:
    value = request.args.get(name)
    return value.strip() or None if value is not None else None


@bp.get("/device-types")
def device_types():
    items = services().devices.type_items()
    return jsonify({"items": items, "total": len(items)})


@bp.get("/devices")
def devices():
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    return jsonify(services().devices.list(g.principal, type_=_text_arg("type"), status=_text_arg("status"),
                                           area=_text_arg("area"), page=page, per_page=per_page,
                                           search=_text_arg("q")))


@bp.get("/devices/<device_id>")
def device(device_id: str):
    return jsonify(services().devices.get(g.principal, device_id))


@bp.get("/alarms")
def alarms():
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    return jsonify(services().alarms.list(g.principal, status=_text_arg("status"), severity=_text_arg("severity"),
                                          device=_text_arg("device"), page=page, per_page=per_page))


@bp.post("/alarms/<int:alarm_id>/actions")
def act_on_alarm(alarm_id: int):
    data = json_body()
    return jsonify(services().alarms.act(g.principal, alarm_id, data.get("action")))


@bp.post("/devices/<device_id>/telemetry")
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
def device_telemetry(device_id: str):
    start = datetime_arg("start") if request.args.get("start") else None
    end = datetime_arg("end") if request.args.get("end") else None
    return jsonify(services().devices.telemetry(g.principal, device_id, key=_text_arg("key"), start=start, end=end))


@bp.get("/telemetry/stats")
def telemetry_stats():
    """The ingest's counters since the process started (the operations view reads them)."""
    if g.principal.role not in TELEMETRY_STATS_READERS:
        raise ServiceError(403, "forbidden", "只有管理员可以查看遥测接入统计")
    return jsonify(services().telemetry.stats())
