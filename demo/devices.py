"""The demo city's sensing fleet: thousands of manhole covers, hundreds of gauges and gas detectors, and the rest.

Deterministic placement (one seed): each device lies inside a grid drawn with the grids' population as
weight, so the fleet is densest in the urban streets as a real one is; bridge sensors come four to a
bridge. Each device answers to a unit of a kind its type names (data/catalog/device_types.json,
unit_types) in its district, or the city-level body of that kind (utilities, the lighting office).
Status and last values are a plausible start (most online with normal readings, a few silent past
their allowed silence, a few in maintenance); the alarm engine of a later increment moves them on.
Written with one bulk INSERT (demo.seed calls it in its transaction).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from data import files
from data.devices import insert_rows
from data.models import Unit
from demo.device_feed import normal_values
from dispatch.city_time import CITY_TZ
from dispatch.devices import DeviceType
from geo.model import GRID, AreaRecord

DEFAULT_SEED = 20261207
# how many of each type (a pilot city of this size monitors 1,840 gas detectors, 333 water gauges and
# 784 bridge sensors; covers are the most numerous, issue 16)
FLEET = {"manhole_cover": 4000, "water_gauge": 333, "gas_detector": 600, "street_light": 800,
         "bridge_sensor": 120, "video_ai": 240}
SENSORS_PER_BRIDGE = 4
PREFIX = {"manhole_cover": "JG", "water_gauge": "JS", "gas_detector": "RQ", "street_light": "LD",
          "bridge_sensor": "QL", "video_ai": "SP"}
# who answers for a device, by type: (unit type, share); a cover belongs to whoever owns the pipe below it
OWNERS = {
    "manhole_cover": (("water_affairs", 0.35), ("water_supply", 0.20), ("power", 0.15), ("telecom", 0.15),
                      ("gas", 0.05), ("city_management", 0.10)),
    "water_gauge": (("water_affairs", 1.0),),
    "gas_detector": (("gas", 1.0),),
    # the district's city-management bureau, or where the routing exceptions say so the city's lighting
    # office (data/catalog/routing_exceptions.csv, 010118 路灯不亮: the unit a dark lamp's case goes to)
    "street_light": (("city_management", 1.0),),
    "bridge_sensor": (("housing_construction", 0.7), ("transport", 0.3)),
    "video_ai": (("city_management", 0.7), ("public_security", 0.3)),
}
OFFLINE_SHARE, MAINTENANCE_SHARE = 0.03, 0.01
STREET_LIGHT_CATEGORY = "010118"  # 路灯不亮


def _points_in(grids: list[AreaRecord], which: np.ndarray, rng: np.random.Generator, tries: int = 24):
    """A random point inside each chosen grid (rejection sampling in its bounds, vectorised); the grid's
    representative point where every try missed (a thin grid)."""
    geoms = np.array([g.geometry for g in grids], dtype=object)
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)[which]
    n = len(which)
    u = rng.random((n, tries, 2))
    xs = bounds[:, None, 0] + u[..., 0] * (bounds[:, None, 2] - bounds[:, None, 0])
    ys = bounds[:, None, 1] + u[..., 1] * (bounds[:, None, 3] - bounds[:, None, 1])
    inside = shapely.contains_xy(np.repeat(geoms[which], tries).reshape(n, tries), xs, ys)
    first = inside.argmax(axis=1)
    hit = inside[np.arange(n), first]
    lon, lat = xs[np.arange(n), first], ys[np.arange(n), first]
    for i in np.flatnonzero(~hit):
        p = geoms[which[i]].representative_point()
        lon[i], lat[i] = p.x, p.y
    return lon, lat


def fleet_rows(records: list[AreaRecord], units: list[tuple[str, str, str, bool]], types: dict[str, DeviceType],
               now: datetime, seed: int = DEFAULT_SEED, fleet: dict[str, int] | None = None,
               owner_by_district: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """The rows of the demo fleet over the hierarchy `records` and the units (code, unit_type, area_code,
    primary). Deterministic for a seed (placement, ids, names, owners); the times count back from `now`.
    `owner_by_district`: {type: {district code: unit type}}, the owner's kind where a district differs."""
    fleet = FLEET if fleet is None else fleet
    rng = np.random.default_rng(seed)
    index = {r.code: r for r in records}
    grids = sorted((r for r in records if r.level == GRID), key=lambda r: r.code)
    if not grids:
        return []
    city = next(r.code for r in records if r.parent is None)
    weight = np.array([max(g.population or 0, 1) for g in grids], dtype=float)
    weight /= weight.sum()
    by_kind: dict[tuple[str, str], list[str]] = {}
    for code, unit_type, area, primary in sorted(units, key=lambda u: (not u[3], u[0])):
        by_kind.setdefault((unit_type, area), []).append(code)

    def ancestor(code: str, level: int) -> AreaRecord:
        node = index[code]
        while node.level > level:
            node = index[node.parent]
        return node

    night = not 6 <= now.astimezone(CITY_TZ).hour < 18
    rows: list[dict] = []
    for type_code, count in fleet.items():
        t = types.get(type_code)
        if t is None or count <= 0:
            continue
        sites = count if type_code != "bridge_sensor" else -(-count // SENSORS_PER_BRIDGE)
        which = rng.choice(len(grids), size=sites, p=weight)
        lon, lat = _points_in(grids, which, rng)
        if type_code == "bridge_sensor":  # four gauges on one bridge, a few metres apart
            which = np.repeat(which, SENSORS_PER_BRIDGE)[:count]
            lon = np.repeat(lon, SENSORS_PER_BRIDGE)[:count] + rng.normal(0, 2e-5, count)
            lat = np.repeat(lat, SENSORS_PER_BRIDGE)[:count] + rng.normal(0, 2e-5, count)
        owners = OWNERS.get(type_code, ())
        kinds = [k for k, _ in owners]
        shares = np.array([s for _, s in owners], dtype=float)
        picks = rng.choice(len(kinds), size=count, p=shares / shares.sum()) if kinds else np.zeros(count, int)
        state = rng.random(count)
        ages = rng.random(count)
        for n in range(count):
            grid = grids[which[n]]
            district, street = ancestor(grid.code, 2), ancestor(grid.code, 3)
            unit_type = (owner_by_district or {}).get(type_code, {}).get(district.code) \
                or (kinds[picks[n]] if kinds else None)
            candidates = by_kind.get((unit_type, district.code)) or by_kind.get((unit_type, city)) or []
            if not candidates:
                continue  # a city without that kind of unit: the device is left out, never given a wrong owner
            unit = candidates[int(rng.integers(len(candidates)))] if len(candidates) > 1 else candidates[0]
            if state[n] < MAINTENANCE_SHARE:
                status, seen = "maintenance", now - timedelta(seconds=t.offline_after_s * (2 + 20 * ages[n]))
            elif state[n] < MAINTENANCE_SHARE + OFFLINE_SHARE:
                status, seen = "offline", now - timedelta(seconds=t.offline_after_s * (1.5 + 10 * ages[n]))
            else:
                status, seen = "online", now - timedelta(seconds=t.offline_after_s * 0.8 * ages[n])
            serial = n + 1
            rows.append({"id": f"{PREFIX.get(type_code, 'DV')}-{district.code}-{serial:05d}",
                         "type": type_code, "name": f"{street.name}{t.name}{serial:04d}号",
                         "lon": round(float(lon[n]), 6), "lat": round(float(lat[n]), 6),
                         "grid_code": grid.code, "district_code": district.code, "unit_code": unit,
                         "status": status, "last_seen": seen, "last_values": normal_values(type_code, rng, night),
                         "created_at": now})
    return rows


def seed_fleet(session: Session, records: list[AreaRecord], types: dict[str, DeviceType], now: datetime,
               seed: int = DEFAULT_SEED) -> tuple[int, float]:
    """Writes the demo fleet (one bulk INSERT, in the caller's transaction); returns (devices, seconds)."""
    started = time.perf_counter()
    units = [tuple(u) for u in session.execute(select(Unit.code, Unit.unit_type, Unit.area_code, Unit.primary)
                                               .where(Unit.active.is_(True)))]
    lights = {e.area_code: e.unit_type for e in files.routing_exceptions() if e.covers(STREET_LIGHT_CATEGORY)}
    rows = fleet_rows(records, units, types, now, seed, owner_by_district={"street_light": lights})
    insert_rows(session, rows)  # multi-row INSERTs: no ORM objects for thousands of rows
    return len(rows), time.perf_counter() - started
