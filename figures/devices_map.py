"""The device fleet and its open alarms as the maps show them (wall, cockpit): devices clustered by street, the
offline ones one by one, the open alarms with their place and names, and the counts the legends carry."""
from __future__ import annotations

from sqlalchemy import case, func, select

from data.models import Alarm, Device
from dispatch.city_time import local_iso
from dispatch.devices import DEVICE_STATUSES, SEVERITIES, SEVERITY_LABELS, STATUS_LABELS, DeviceType
from data.devices import device_filters
from geo.model import DISTRICT, GRID, STREET

OFFLINE_POINTS = 3000  # offline devices drawn one by one; beyond, the street clusters carry the rest
OPEN_ALARMS = 100      # the open alarms a map and its ticker hold (most severe, then newest, first)
_SEVERITY_ORDER = case({s: i for i, s in enumerate(SEVERITIES)}, value=Alarm.severity, else_=len(SEVERITIES))


def _place(areas, grid_code: str) -> tuple[str, str, list[str]]:
    """(district name, street name, the area codes from the grid up to the city) of a grid."""
    chain = areas.chain(grid_code)
    names = {r.level: r.name for r in chain}
    return names.get(DISTRICT, ""), names.get(STREET, ""), [r.code for r in chain]


def alarm_item(a: Alarm, d: Device, dtype: DeviceType | None, areas) -> dict:
    """One open (or just cleared) alarm as a map draws it and a ticker lists it; `areas` the chain of its
    device's grid (the live stream's audience rooms)."""
    district, street, chain = _place(areas, d.grid_code)
    return {"id": a.id, "device": d.id, "device_name": d.name, "device_type": d.type,
            "type_name": dtype.name if dtype else d.type,
            "rule": a.rule_code, "rule_name": dtype.rule_name(a.rule_code) if dtype else a.rule_code,
            "severity": a.severity, "severity_label": SEVERITY_LABELS.get(a.severity, a.severity),
            "status": a.status, "started_at": local_iso(a.started_at), "updated_at": local_iso(a.updated_at),
            "cleared_at": local_iso(a.cleared_at), "values": a.values or {}, "case_id": a.case_id,
            "lon": d.lon, "lat": d.lat, "unit": d.unit_code, "district": district, "street": street,
            "chain": chain}


def open_alarms(s, types: dict[str, DeviceType], areas, limit: int = OPEN_ALARMS) -> dict:
    """The open alarms (active and acknowledged), most severe then newest first, up to `limit`, with the count
    of all open alarms by severity."""
    rows = _open_alarm_rows(s, [], limit)
    by_severity = {sev: 0 for sev in SEVERITIES}
    for sev, n in s.execute(select(Alarm.severity, func.count()).where(Alarm.status != "cleared")
                            .group_by(Alarm.severity)):
        by_severity[sev] = by_severity.get(sev, 0) + n
    return {"items": [alarm_item(a, d, types.get(d.type), areas) for a, d in rows],
            "by_severity": by_severity, "total": sum(by_severity.values()),
            "severity_labels": SEVERITY_LABELS}


def _street_clusters(s, areas, where: list) -> list[list]:
    """One cluster per street ([lon, lat, devices, offline, in alarm], at the mean position of its devices) of
    the devices matching `where`: grouped by grid in the database, the grids gathered to their streets here."""
    offline = func.sum(case((Device.status == "offline", 1), else_=0))
    alarm = func.sum(case((Device.status == "alarm", 1), else_=0))
    streets: dict[str, list[float]] = {}
    for grid, n, off, alm, lon_sum, lat_sum in s.execute(
            select(Device.grid_code, func.count(), offline, alarm, func.sum(Device.lon), func.sum(Device.lat))
            .where(*where).group_by(Device.grid_code)):
        key = next((r.code for r in areas.chain(grid) if r.level == STREET), grid)
        acc = streets.setdefault(key, [0.0, 0.0, 0, 0, 0])
        for i, v in enumerate((lon_sum, lat_sum, n, off or 0, alm or 0)):
            acc[i] += v
    return [[round(a[0] / a[2], 5), round(a[1] / a[2], 5), a[2], a[3], a[4]] for _, a in sorted(streets.items()) if a[2]]


def _counts(s, where: list) -> dict[str, int]:
    counts = {st: 0 for st in DEVICE_STATUSES}
    for st, n in s.execute(select(Device.status, func.count()).where(*where).group_by(Device.status)):
        counts[st] = counts.get(st, 0) + n
    return counts


def _open_alarm_rows(s, where: list, limit: int):
    return s.execute(select(Alarm, Device).join(Device, Device.id == Alarm.device_id)
                     .where(Alarm.status != "cleared", *where)
                     .order_by(_SEVERITY_ORDER, Alarm.started_at.desc(), Alarm.id.desc()).limit(limit)).all()


def fleet(s, areas, offline_points: int = OFFLINE_POINTS) -> dict:
    """The fleet at city scale: counts by status, one cluster per street, and the offline devices' points
    ([lon, lat])."""
    counts = _counts(s, [])
    points = [[round(lon, 5), round(lat, 5)] for lon, lat in
              s.execute(select(Device.lon, Device.lat).where(Device.status == "offline")
                        .order_by(Device.id).limit(offline_points))]
    return {"counts": counts, "total": sum(counts.values()), "status_labels": STATUS_LABELS,
            "clusters": _street_clusters(s, areas, []), "offline": points}


AREA_POINTS = 5000  # devices drawn one by one in a street's, community's or grid's frame


def for_area(db, areas, types: dict[str, DeviceType], frame) -> dict:
    """The device layer of a map framed on `frame` (an area record): at city and district scale one cluster per
    street; below, each device ([lon, lat, index of its status in DEVICE_STATUSES], at most AREA_POINTS); the
    counts by status and the frame's open alarms, most severe first."""
    level = frame.level
    where = [] if level == 1 else device_filters(district=frame.code) if level == DISTRICT \
        else device_filters(grid=frame.code) if level == GRID else device_filters(grid_prefix=frame.code)
    with db.session() as s:
        out: dict = {"level": level, "clusters": [], "points": [], "counts": _counts(s, where)}
        if level <= DISTRICT:
            out["clusters"] = _street_clusters(s, areas, where)
        else:
            out["points"] = [[round(lon, 5), round(lat, 5), DEVICE_STATUSES.index(st) if st in DEVICE_STATUSES else 0]
                             for lon, lat, st in s.execute(select(Device.lon, Device.lat, Device.status).where(*where)
                                                           .order_by(Device.id).limit(AREA_POINTS))]
        out["alarms"] = [alarm_item(a, d, types.get(d.type), areas) for a, d in _open_alarm_rows(s, where, OPEN_ALARMS)]
    return out
