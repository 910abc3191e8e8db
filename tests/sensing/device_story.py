"""A demo cover's day told through the real ingest (and so the alarm engine): normal readings every 10 minutes for
30 hours, then the cover lifted (tilt 30° for 3 s: a critical alarm, its case opened through the intake) and put
back; at the end its battery runs low (a warning alarm left active). Used by the /devices tests, the browser test and the screenshots."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from data.models import Alarm, Device, utcnow
from sensing.telemetry import Message

HANDLER_UNIT = "U-320402-city_management"  # the demo's `handler` (天宁区城管局)


def pick_cover(services, unit: str = HANDLER_UNIT) -> str:
    """A manhole cover of `unit`, online, by id."""
    with services.db.session() as s:
        return s.scalar(select(Device.id).where(Device.type == "manhole_cover", Device.unit_code == unit,
                                                Device.status == "online").order_by(Device.id).limit(1))


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def tell(services, device_id: str, now: datetime | None = None, lifted_hours_ago: float = 3.0) -> dict:
    """Feed the story; returns {device, alarm, case, lifted_at}."""
    now = now or utcnow()
    start = now - timedelta(hours=30)
    lifted = now - timedelta(hours=lifted_hours_ago)
    readings = []
    t, i = start, 0
    while t < now - timedelta(minutes=1):
        if not (lifted - timedelta(minutes=10) < t < lifted + timedelta(minutes=10)):
            readings.append({"ts": _ms(t), "values": {"tilt_deg": round(1.2 + (i % 7) * 0.3, 1),
                                                      "displacement_mm": round(2 + (i % 5) * 0.8, 1),
                                                      "water_level_cm": -120 + (i % 11) * 3,
                                                      "battery_pct": max(40, 92 - i // 20)}})
        t += timedelta(minutes=10)
        i += 1
    episode = [(0, 30.0), (1, 31.5), (3, 32.0), (30, 3.0), (35, 2.0), (45, 1.5)]
    readings += [{"ts": _ms(lifted + timedelta(seconds=s)), "values": {"tilt_deg": v}} for s, v in episode]
    readings.sort(key=lambda r: r["ts"])
    for r in readings[-3:]:
        r["values"] = {**r["values"], "battery_pct": 15}  # a flat battery at the end: a warning still active
    for k in range(0, len(readings), 500):
        services.telemetry.ingest([Message(device_id, readings[k:k + 500], now)])
    with services.db.session() as s:
        alarm = s.scalars(select(Alarm).where(Alarm.device_id == device_id, Alarm.rule_code == "cover_tilt")
                          .order_by(Alarm.id.desc())).first()
        ids = (alarm.id, alarm.case_id) if alarm is not None else (None, None)
    return {"device": device_id, "alarm": ids[0], "case": ids[1], "lifted_at": lifted}
