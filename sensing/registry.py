"""The device registry as the edges read it: the device types in force, and the fleet within a reader's scope."""
from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta

from sqlalchemy import select

from data import files
from data.area_directory import AreaDirectory
from data.db import Database
from cases.service import haversine_m
from data.devices import devices_in_box, get_device, list_devices, status_counts
from data.telemetry import read_hourly, read_series
from data.models import Device, Unit, utcnow
from data.tokens import Principal
from dispatch.access import DEVICE_READERS, DEVICE_ROLE, TELEMETRY_SENDERS
from dispatch.devices import DEVICE_STATUSES, SEVERITIES, STATUS_LABELS, DeviceType
from dispatch.errors import ServiceError
from dispatch.limits import bad_character, day_in_range

MAX_PER_PAGE = 500
MAX_SEARCH = 64  # characters of a search (an id is at most 64)
MAX_SERIES = 10_000  # readings in one answer of GET /devices/ID/telemetry (more: `truncated`, ask a shorter span)
DEFAULT_SPAN = timedelta(hours=24)
MAX_NEAR_RADIUS_M = 50_000  # a `near` read: at most this far from the point
MAX_NEAR = 2000             # and at most this many devices (or alarms) in its answer
_BOX_CAP = 20_000           # devices read from the box before the exact distance is checked


def check_near(lon, lat, radius_m, limit) -> None:
    """The arguments of a `near` read (devices, alarms around a point): 400 unless a point, a radius in metres
    (0 < r ≤ MAX_NEAR_RADIUS_M) and a limit 1..MAX_NEAR."""
    for name, v in (("经度", lon), ("纬度", lat), ("半径", radius_m)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ServiceError(400, "bad_request", f"{name}须为数字")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ServiceError(400, "bad_request", f"坐标超出范围：{lon},{lat}")
    if not 0 < radius_m <= MAX_NEAR_RADIUS_M:
        raise ServiceError(400, "bad_request", f"半径须大于 0、不超过 {MAX_NEAR_RADIUS_M:,} 米")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_NEAR:
        raise ServiceError(400, "bad_request", f"limit 须为 1 到 {MAX_NEAR} 之间的整数")


def box_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box holding every point within `radius_m` of (lon, lat) (slightly larger: the exact distance
    is checked after)."""
    dlat = radius_m / 110_574 * 1.01
    dlon = radius_m / (111_320 * max(math.cos(math.radians(lat)), 0.01)) * 1.01
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


class DeviceRegistry:
    """Reads of the fleet, scoped as cases are: admins see every device, the other readers
    (dispatch.access.DEVICE_READERS) those of their area, a unit handler only their unit's."""

    def __init__(self, db: Database, areas: AreaDirectory, types: dict[str, DeviceType] | None = None):
        self.db = db
        self.areas = areas
        self._types = types
        self._lock = threading.Lock()

    def types(self) -> dict[str, DeviceType]:
        """The device types of data/catalog/device_types.json, read and checked once per process."""
        if self._types is None:
            with self._lock:
                if self._types is None:
                    self._types = files.device_types()
        return self._types

    # ---- scope --------------------------------------------------------------------------------
    @staticmethod
    def _check_reader(principal: Principal) -> None:
        if principal.role not in DEVICE_READERS:
            raise ServiceError(403, "forbidden", "当前角色无权查看物联设备")

    def _area_filter(self, code: str) -> dict:
        """The repository's filter for the devices of an area of any level (404 when unknown)."""
        area = self.areas.get(code)
        if area is None:
            raise ServiceError(404, "not_found", f"区域 {code} 不存在")
        if area.level == 1:
            return {}
        if area.level == 2:
            return {"district": code}
        if area.level == 5:
            return {"grid": code}
        return {"grid_prefix": code}  # a street's or a community's grids carry its code as their prefix

    def _in_scope(self, principal: Principal, device: Device) -> bool:
        if principal.role == "admin":
            return True
        if principal.area_code not in {a.code for a in self.areas.chain(device.grid_code)}:
            return False
        return principal.role != "unit_handler" or principal.unit_code == device.unit_code

    # ---- reads --------------------------------------------------------------------------------
    def type_items(self) -> list[dict]:
        return [t.to_dict() for t in self.types().values()]

    def _check_filters(self, type_, status, area, search) -> None:
        if type_ is not None and type_ not in self.types():
            raise ServiceError(400, "bad_request", f"未知的设备类型 {type_[:40]}（可用：{'、'.join(self.types())}）")
        if status is not None and status not in DEVICE_STATUSES:
            raise ServiceError(400, "bad_request",
                               f"未知的设备状态 {status[:40]}（可用：{'、'.join(f'{s}（{STATUS_LABELS[s]}）' for s in DEVICE_STATUSES)}）")
        if area is not None and (bad_character(area) is not None or len(area) > 20):
            raise ServiceError(400, "bad_request", "参数 area 应为区域编码")
        if search is not None and (bad_character(search) is not None or len(search) > MAX_SEARCH):
            raise ServiceError(400, "bad_request", f"搜索内容须为至多 {MAX_SEARCH} 个字符的设备编号或名称")

    def _scope_where(self, principal: Principal, area: str | None) -> dict:
        """The repository's filters of the devices `principal` may see, narrowed to `area` (403 outside theirs)."""
        where: dict = {}
        if area is not None:
            where = self._area_filter(area)
            if principal.role != "admin" and principal.area_code not in {a.code for a in self.areas.chain(area)}:
                raise ServiceError(403, "forbidden", f"区域 {area} 不在您的辖区内")
        elif principal.role != "admin":
            where = self._area_filter(principal.area_code)  # the requested area, when given, lies within it
        if principal.role == "unit_handler":
            where["unit"] = principal.unit_code or ""
        return where

    def list(self, principal: Principal, type_: str | None = None, status: str | None = None,
             area: str | None = None, page: int = 1, per_page: int = 50, search: str | None = None) -> dict:
        """`{items, total, page, per_page}`: a page of the devices `principal` may see, by id; `search`: the id or
        the name contains it (case-insensitive)."""
        self._check_reader(principal)
        search = (search or "").strip() or None
        self._check_filters(type_, status, area, search)
        if not (isinstance(page, int) and page >= 1 and isinstance(per_page, int) and 1 <= per_page <= MAX_PER_PAGE):
            raise ServiceError(400, "bad_request", f"page 须为正整数，per_page 须在 1 到 {MAX_PER_PAGE} 之间")
        where = self._scope_where(principal, area)
        with self.db.session() as s:
            rows, total = list_devices(s, type_=type_, status=status, page=page, per_page=per_page, search=search,
                                       **where)
            names = self._unit_names(s, {d.unit_code for d in rows})
        return {"items": [self.device_dict(d, names) for d in rows], "total": total, "page": page,
                "per_page": per_page}

    def status_counts(self, principal: Principal, type_: str | None = None, area: str | None = None,
                      search: str | None = None, status: str | None = None) -> dict[str, int]:
        """How many of the devices `principal` may see (with the list's filters but the status) are in each
        status: every status of DEVICE_STATUSES, 0 when none, and `total`. `status` is only checked (400 when
        unknown), as the list beside the counts will be filtered by it."""
        self._check_reader(principal)
        search = (search or "").strip() or None
        self._check_filters(type_, status, area, search)
        where = self._scope_where(principal, area)
        with self.db.session() as s:
            found = status_counts(s, type_=type_, search=search, **where)
        out = {st: found.get(st, 0) for st in DEVICE_STATUSES}
        out["total"] = sum(found.values())
        return out

    def get(self, principal: Principal, device_id: str) -> dict:
        """One device with its area chain (404 when unknown or out of the reader's scope: its existence is not told)."""
        self._check_reader(principal)
        with self.db.session() as s:
            device = get_device(s, device_id) if len(device_id) <= 64 else None
            if device is None or not self._in_scope(principal, device):
                raise ServiceError(404, "not_found", f"设备 {device_id} 不存在")
            names = self._unit_names(s, {device.unit_code})
        out = self.device_dict(device, names)
        out["chain"] = [{"code": a.code, "name": a.name, "level": a.level} for a in self.areas.chain(device.grid_code)]
        return out

    def near(self, principal: Principal, lon: float, lat: float, radius_m: float = 3000, limit: int = 500) -> dict:
        """`{items, total, counts, radius_m}`: the devices `principal` may see within `radius_m` metres of (lon, lat)
        (great-circle distance), nearest first, each with its `distance_m`; `total` and `counts` (by status) of all
        of them, `items` the nearest `limit`. A box on lon/lat narrows the read in the database."""
        self._check_reader(principal)
        check_near(lon, lat, radius_m, limit)
        where = self._scope_where(principal, None)
        with self.db.session() as s:
            rows = devices_in_box(s, box_around(lon, lat, radius_m), limit=_BOX_CAP, **where)
            found = sorted(((haversine_m(lon, lat, d.lon, d.lat), d) for d in rows), key=lambda t: (t[0], t[1].id))
            found = [(m, d) for m, d in found if m <= radius_m]
            names = self._unit_names(s, {d.unit_code for _, d in found[:limit]})
        counts = {st: 0 for st in DEVICE_STATUSES}
        for _, d in found:
            counts[d.status] = counts.get(d.status, 0) + 1
        items = [{**self.device_dict(d, names), "distance_m": round(m, 1)} for m, d in found[:limit]]
        return {"items": items, "total": len(found), "counts": counts, "radius_m": radius_m}

    @staticmethod
    def _unit_names(s, codes: set[str]) -> dict[str, str]:
        if not codes:
            return {}
        return dict(s.execute(select(Unit.code, Unit.name).where(Unit.code.in_(sorted(codes)))).all())

    def device_dict(self, d: Device, unit_names: dict[str, str]) -> dict:
        """The API's device (CONTRACT.md, Sensing): id, type, name, lon, lat, unit, status, last_seen, values."""
        t = self.types().get(d.type)
        return {"id": d.id, "type": d.type, "type_name": t.name if t else d.type, "name": d.name,
                "lon": d.lon, "lat": d.lat, "unit": {"code": d.unit_code, "name": unit_names.get(d.unit_code, d.unit_code)},
                "status": d.status, "status_label": STATUS_LABELS.get(d.status, d.status),
                "last_seen": d.last_seen, "values": d.last_values or {}, "grid": d.grid_code,
                "district": d.district_code, "created_at": d.created_at}

    # ---- telemetry -------------------------------------------------------------------------------
    def check_sender(self, principal: Principal, device_id: str) -> None:
        """Whether `principal` may post telemetry for the device: a device token (or an admin) within its area;
        404 when the device is unknown or outside the token's area (its existence is not told)."""
        if principal.role not in TELEMETRY_SENDERS:
            raise ServiceError(403, "forbidden", "只有设备令牌（create-token --role device）可以上报遥测数据")
        with self.db.session() as s:
            device = get_device(s, device_id) if len(device_id) <= 64 else None
            if device is None or (principal.role == DEVICE_ROLE and principal.area_code not in
                                  {a.code for a in self.areas.chain(device.grid_code)}):
                raise ServiceError(404, "not_found", f"设备 {device_id[:64]} 不存在")

    def telemetry(self, principal: Principal, device_id: str, key: str | None = None, start: datetime | None = None,
                  end: datetime | None = None, now: datetime | None = None) -> dict:
        """`{items: [{ts, values}]}`: a device's readings with start <= ts < end (default: the 24 hours before
        now), oldest first, scoped as GET /devices/ID; with `key`, only the readings that have it, and only it."""
        device = self.get(principal, device_id)  # 403/404 as the device itself
        t = self.types().get(device["type"])
        if key is not None and (t is None or t.key(key) is None):
            known = "、".join(k.key for k in t.keys) if t else ""
            raise ServiceError(400, "bad_request", f"设备类型 {device['type']} 没有键 {key[:40]}（可用：{known}）")
        start, end = _span(start, end, now)
        with self.db.session() as s:
            rows = read_series(s, device_id, start, end, limit=MAX_SERIES + 1)
        truncated = len(rows) > MAX_SERIES
        items = []
        for ts, values in rows[:MAX_SERIES]:
            if key is None:
                items.append({"ts": ts, "values": values})
            elif key in values:
                items.append({"ts": ts, "values": {key: values[key]}})
        return {"device": device_id, "key": key, "start": start, "end": end, "items": items, "truncated": truncated}

    # ---- a key's values over time, for charts ------------------------------------------------------
    def series(self, principal: Principal, device_id: str, key: str, start: datetime | None = None,
               end: datetime | None = None, now: datetime | None = None) -> dict:
        """One key of a device over time, scoped as GET /devices/ID (see :meth:`series_of`)."""
        return self.series_of(self.get(principal, device_id), key, start, end, now)

    def series_of(self, device: dict, key: str, start: datetime | None = None, end: datetime | None = None,
                  now: datetime | None = None) -> dict:
        """A numeric or flag key of `device` (a device dict the caller may see) with start <= ts < end (default:
        the 24 hours before now), oldest first, as chart points `{ts, value, min, max}` (flags as 0/1). A span
        over 48 hours is read by the hour (`resolution` "hour": each hour's mean, min and max, from the raw
        readings and the retention's roll-up, `telemetry_hourly`); a shorter one reading by reading ("raw"). With
        the key's `name` and `unit` from the device type and the `thresholds` of the type's rules on it
        (`{value, op, rule, name, severity}`)."""
        t = self.types().get(device["type"])
        spec = t.key(key) if t is not None and isinstance(key, str) else None
        if spec is None or spec.kind not in CHART_KINDS:
            known = "、".join(k.key for k in chart_keys(t)) if t else ""
            raise ServiceError(400, "bad_request", f"设备类型 {device['type']} 没有可绘图的键 {str(key)[:40]}（可用：{known}）")
        start, end = _span(start, end, now)
        hourly = end - start > HOURLY_AFTER
        with self.db.session() as s:
            rows = read_series(s, device["id"], start, end, limit=(MAX_RAW_BY_HOUR if hourly else MAX_SERIES) + 1)
            rolled = [r for r in read_hourly(s, device["id"], _hour(start), end) if r[1] == key] if hourly else []
        truncated = len(rows) > (MAX_RAW_BY_HOUR if hourly else MAX_SERIES)
        rows = rows[:-1] if truncated else rows
        raw = [(ts, _number(values.get(key))) for ts, values in rows if _number(values.get(key)) is not None]
        if hourly:
            points = _by_hour(raw, rolled)
        else:
            points = [{"ts": ts, "value": v, "min": v, "max": v} for ts, v in raw]
        return {"device": device["id"], "key": key, "name": spec.name, "unit": spec.unit, "kind": spec.kind,
                "start": start, "end": end, "resolution": "hour" if hourly else "raw", "points": points,
                "truncated": truncated, "thresholds": thresholds(t, key)}


CHART_KINDS = ("number", "bool")  # strings (a camera's event) are not drawn
HOURLY_AFTER = timedelta(hours=48)  # a longer span is drawn by the hour
MAX_RAW_BY_HOUR = 100_000  # raw readings folded into hours in one answer (a reading every 6 s for a week)


def chart_keys(t: DeviceType | None) -> list:
    """The keys of a type that a chart can draw (numbers and flags), in the type's order."""
    return [k for k in t.keys if k.kind in CHART_KINDS] if t is not None else []


def thresholds(t: DeviceType | None, key: str, rule_code: str | None = None) -> list[dict]:
    """The numeric limits the type's rules (or the one rule `rule_code`) put on `key`: the lines a chart draws."""
    out = []
    for rule in (t.rules if t is not None else ()):
        if rule_code is not None and rule.code != rule_code:
            continue
        for p in rule.condition.predicates:
            if p.key == key and isinstance(p.value, (int, float)) and not isinstance(p.value, bool):
                out.append({"value": p.value, "op": p.op, "rule": rule.code, "name": rule.name,
                            "severity": rule.severity})
    return out


def _number(value) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _by_hour(raw: list[tuple[datetime, float]], rolled: list[tuple]) -> list[dict]:
    """Hourly points from raw readings and roll-up rows (hour, key, min, max, avg, count) of the same key; an hour
    in both merges (count-weighted mean)."""
    acc: dict[datetime, list] = {}
    for ts, v in raw:
        a = acc.setdefault(_hour(ts), [v, v, 0.0, 0])
        a[0], a[1], a[2], a[3] = min(a[0], v), max(a[1], v), a[2] + v, a[3] + 1
    for hour, _key, low, high, avg, count in rolled:
        if count:
            a = acc.setdefault(hour, [low, high, 0.0, 0])
            a[0], a[1], a[2], a[3] = min(a[0], low), max(a[1], high), a[2] + avg * count, a[3] + count
    return [{"ts": h, "value": a[2] / a[3], "min": a[0], "max": a[1]} for h, a in sorted(acc.items()) if a[3]]


def _span(start: datetime | None, end: datetime | None, now: datetime | None) -> tuple[datetime, datetime]:
    """A read's [start, end): end defaults to now, start to DEFAULT_SPAN before end; 400 outside 1900–2999 or
    when start is not before end."""
    end = end or now or utcnow()
    start = start or end - DEFAULT_SPAN
    if not (day_in_range(start) and day_in_range(end)):
        raise ServiceError(400, "bad_request", "start 和 end 须在 1900–2999 年之间")
    if start >= end:
        raise ServiceError(400, "bad_request", "start 须早于 end")
    return start, end


def focus_key(dtype, alarms: list[dict]) -> str | None:
    """The key a device's chart opens on: that of its gravest open alarm's rule, else of its latest alarm's, else
    its first chartable key (None: nothing to chart). `alarms`: the device's alarms as AlarmService.list gives them."""
    known = [k.key for k in chart_keys(dtype)]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    ordered = sorted(alarms, key=lambda a: (a["status"] == "cleared", rank.get(a["severity"], len(rank)), -a["id"]))
    rules = {r.code: r for r in (dtype.rules if dtype else ())}
    for a in ordered:
        rule = rules.get(a["rule"])
        for p in (rule.condition.predicates if rule else ()):
            if p.key in known:
                return p.key
    return known[0] if known else None
