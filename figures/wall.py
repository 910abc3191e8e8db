"""What the wall reads from the database, shaped for the page: the snapshot, the hexagon points,
the grid geometry (cached per hierarchy version) and the wall token's principal."""
from __future__ import annotations

import threading
import time
from datetime import datetime

import shapely

from figures import assessment as am, devices_map, foresight_view, period, rollup, vital_signs
from figures.definitions import period_bounds
from dispatch.city_time import city_today
from data.areas import hierarchy_version
from data.tokens import Principal
from geo.model import GRID
from dispatch.city_time import local_iso as _iso

GRID_TOLERANCE = 0.0004      # degrees (~40 m): grids are drawn, not measured
QUANT = 10_000               # coordinates sent as integer 1e-4 degrees (~10 m), delta-coded per ring
NEWEST = 12
KINDS = ("component", "event", "grid", "emergency")
SEVERITY_LABELS = {1: "Ⅰ级", 2: "Ⅱ级", 3: "Ⅲ级", 4: "Ⅳ级"}

_versioned_lock = threading.RLock()  # re-entrant: one cached value may be built from another
_versioned: dict[str, tuple[str, object]] = {}


# ---- data shaping (shared with callbacks/wall.py) ---------------------------------------------------
def case_lite(row: dict, areas) -> dict:
    """A stats row shaped like the API's case object (the fields the wall uses), so the page treats
    rows of a refresh and cases of the live stream alike."""
    chain = [{"code": a.code, "name": a.name, "level": a.level} for a in areas.chain(row["grid_code"])]
    return {"id": row["id"], "state": row["state"], "state_label": row["state_label"], "version": row["version"],
            "category": {"code": row["category_code"], "name": row["category_name"], "kind": row["kind"]},
            "kind": row["kind"], "lon": round(row["lon"], 5), "lat": round(row["lat"], 5), "chain": chain,
            "severity": row["severity"], "reported_at": _iso(row["reported_at"]), "overdue": row["overdue"],
            "updated_at": _iso(row["updated_at"])}


def _rate(v: float | None) -> float | None:
    return None if v is None else round(v * 100, 1)


SNAPSHOT_SHARE_S = 2.0  # screens refreshing within this many seconds of each other share one read
_snapshots: dict[str, tuple[float, dict]] = {}
_reading: dict[str, threading.Event] = {}  # a read in flight per database: later callers wait for it
_snap_lock = threading.Lock()


def snapshot(services, now: datetime | None = None) -> dict:
    """Everything the wall shows from the database, in one read (marks first: what comes after is
    replayed live). The wall screens of a hall re-read it after each burst of case changes: a read
    younger than SNAPSHOT_SHARE_S with no case event since is shared, and callers arriving while a
    read is in flight wait for that read instead of starting their own. With an explicit `now`
    (tests, benchmarks) it is always read."""
    if now is not None:
        return _read_snapshot(services, now)
    key = services.db.url
    while True:
        hit = _snapshots.get(key)
        if hit is not None and time.monotonic() - hit[0] < SNAPSHOT_SHARE_S:
            with services.db.session() as s:
                head = period.marks(s).head_seq  # a fraction of a millisecond
            if head == hit[1]["head_seq"]:  # nothing happened since: the same figures
                return hit[1]
        with _snap_lock:
            busy = _reading.get(key)
            if busy is None:
                busy = _reading[key] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            busy.wait(30)
            continue  # the read just made is shared (or, if an event came meanwhile, read again)
        try:
            snap = _read_snapshot(services, services.cases.clock())
            # aged from when it is ready, not from when it began: a read slower than the window
            # (a loaded machine) would otherwise be stale on arrival and every screen would read
            # again; what happened during the read moved head_seq past the marks and is caught above
            _snapshots[key] = (time.monotonic(), snap)
            return snap
        finally:
            with _snap_lock:
                _reading.pop(key, None)
            busy.set()


def prefetch_snapshot(services) -> None:
    """Starts a snapshot read in the background (the /wall page asks for it when its HTML is served:
    the layout request that follows ~0.5 s later, once the scripts ran, then finds it made)."""
    if services.db.url in _reading:
        return
    threading.Thread(target=snapshot, args=(services,), name="wall-prefetch", daemon=True).start()


def _read_snapshot(services, now: datetime) -> dict:
    with services.db.session() as s:
        marks = period.marks(s)
        today = period.today_figures(s, now, max_case_id=marks.max_case_id)
        ranking = rollup.district_ranking(s, now)
        grids = period.grid_counts(s, now)
        trend = period.hourly_trend(s, now, max_case_id=marks.max_case_id)
        newest = period.newest_cases(s, now, NEWEST)
        points = period.today_points(s, now)
        emergencies = period.open_emergencies(s, now, 200)
        top = period.category_top(s, now, 5)
        fleet = _fleet(services, s)
        alarms = devices_map.open_alarms(s, services.devices.types(), services.areas)
        # read at most every 15 s while no reading arrives (they change every few minutes)
        vitals = vital_signs.wall_panels_shared(s, services.db.url, now)
    # this month's assessment score of each district, from the rollup's figures
    score_districts(services.cases, ranking["districts"], now)
    index = grid_order(services)
    month = ranking["month"]
    severity = {str(k): 0 for k in SEVERITY_LABELS}
    for e in emergencies:
        if e["severity"] in SEVERITY_LABELS:
            severity[str(e["severity"])] += 1
    open_counts = [o for o, _ in grids.values()]
    over_counts = [d for _, d in grids.values()]
    return {
        "generated_at": _iso(now), "now_ms": int(now.timestamp() * 1000), "day": today["day"],
        "max_case_id": marks.max_case_id, "head_seq": marks.head_seq,
        "today": today,
        "month": {"start": ranking["month_start"], "received": month["received"], "accepted": month["accepted"],
                  "due": month["due"], "closed": month["closed"], "closure_rate": _rate(month["closure_rate"]),
                  "on_time_rate": _rate(month["on_time_rate"]), "rework_rate": _rate(month["rework_rate"]),
                  "mean_handling_hours": None if month["mean_handling_hours"] is None
                  else round(month["mean_handling_hours"], 1)},
        "ranking": [{"code": r["code"], "name": r["name"], "rank": r["rank"], "received_today": r["received_today"],
                     "open": r["open"], "overdue": r["overdue"], "on_time_rate": _rate(r["on_time_rate"]),
                     "score": None if r["score"] is None else round(r["score"], 1), "grade": r["grade"]}
                    for r in ranking["districts"]],
        "trend": trend,
        # [grid index in wall-geo's order, open, overdue] for the grids with an open case
        "grids": [[index[code], o, d] for code, (o, d) in grids.items() if code in index],
        "breaks": {"open": period.nice_breaks(open_counts), "overdue": period.nice_breaks(over_counts)},
        "newest": [case_lite(r, services.areas) for r in newest],
        # [id, lon, lat, kind index, flags: 1 open, 2 overdue]
        "points": [[p["id"], round(p["lon"], 5), round(p["lat"], 5), KINDS.index(p["kind"]) if p["kind"] in KINDS else 1,
                    (1 if p["open"] else 0) | (2 if p["overdue"] else 0)] for p in points],
        "emergencies": [case_lite(r, services.areas) for r in emergencies[:40]],
        "emergency_severity": severity,
        "top_categories": top,
        # the active emergency responses: a level III or graver one takes the wall over (assets/wall.js)
        "responses": _responses(services),
        # the device layer (clusters by street, offline points) and the open alarms (the map's marks, the ticker)
        "devices": fleet,
        "alarms": alarms,
        # the four theme panels' latest indicator readings (figures/vital_signs.py; assets/wall.js paints them)
        "vital_signs": vitals,
        # the open early warnings, newest first, and their hot grids and recurring spots (None: no warning service)
        "warnings": _warnings(services),
    }


# ---- the device fleet by street ------------------------------------------------------------------------------------
WALL_PRINCIPAL = Principal("system", "wall", "admin", None)  # the wall shows the whole city


def _responses(services) -> list[dict]:
    """The active emergency responses, gravest first, with their units, owed report and checklist progress (the
    emergency room's, reached through the app's services: figures sits below it). None when it is not built."""
    responses = getattr(services, "responses", None)
    return responses.active(WALL_PRINCIPAL) if responses is not None else []


WALL_WARNINGS = 3  # the warnings card's lines


def _warnings(services) -> dict | None:
    """The open warnings as the wall shows them (kind, place, category, observed vs expected, window) and the map's
    marks: a ring at each warned hot grid (the cluster's centre, not each of its grids: the wall is read from afar)
    and at each recurring spot. None when the app runs without the warning service."""
    warnings = getattr(services, "warnings", None)
    if warnings is None:
        return None
    listed = warnings.list(WALL_PRINCIPAL, status="open", kind=None, limit=200)
    items = listed["items"]
    names = {code: c.name for code, c in services.cases.catalog().items()}
    rows = foresight_view.warning_rows(items[:WALL_WARNINGS], services.areas, names)
    marks: dict[tuple, list] = {}
    for w in foresight_view.with_evidence(warnings, WALL_PRINCIPAL, items):
        ev = w.get("evidence") or {}
        if w["kind"] == "recurrent" and isinstance(ev.get("lon"), (int, float)) and isinstance(ev.get("lat"), (int, float)):
            lon, lat = ev["lon"], ev["lat"]
        else:
            rec = services.areas.get(w["area"])
            if rec is None:
                continue
            pt = rec.geometry.representative_point()
            lon, lat = pt.x, pt.y
        kind = 1 if w["kind"] == "recurrent" else 0
        marks.setdefault((round(lon, 4), round(lat, 4), kind), [round(lon, 5), round(lat, 5), kind])
    return {"total": listed["total"],
            "items": [{k: r[k] for k in ("id", "kind", "kind_label", "district", "spot", "category", "observed",
                                         "expected", "window")} for r in rows],
            # [lon, lat, 0 hot grid | 1 recurring spot]
            "marks": list(marks.values())}


FLEET_TTL_S = 30.0  # a GROUP BY of the whole fleet (~0.35 s at 100,000 devices): the statuses move slowly, and the
_fleets: dict[str, tuple[float, dict]] = {}  # open alarms (the urgent part) are read every time and come live


def _fleet(services, s) -> dict:
    key = services.db.url
    hit = _fleets.get(key)
    if hit is not None and time.monotonic() - hit[0] < FLEET_TTL_S:
        return hit[1]
    fleet = devices_map.fleet(s, services.areas)
    _fleets[key] = (time.monotonic(), fleet)
    return fleet


# ---- the districts' assessment score (综合指标值) ---------------------------------------------------------
EXTRAS_TTL_S = 60.0
_extras: dict[tuple, tuple[float, tuple]] = {}


def _district_extras(cases, first, last) -> tuple[dict[str, int], dict[str, int]]:
    """({district: accepted cases of the period found by the grid members' patrol}, {district: grids}), kept
    EXTRAS_TTL_S: what a district's score needs that the month rollup does not hold (10 of its 100 points)."""
    key = (cases.db.url, first, last)
    hit = _extras.get(key)
    if hit is not None and time.monotonic() - hit[0] < EXTRAS_TTL_S:
        return hit[1]
    S, E = period_bounds(first, last)
    owner = am.grid_owners(cases.areas.records(), 2)
    patrol: dict[str, int] = {}
    with cases.db.session() as s:
        for g, f in am.accepted_by_grid(s, S, E).items():
            d = owner.get(g)
            if d is not None:
                patrol[d] = patrol.get(d, 0) + f["patrol_accepted"]
    grids: dict[str, int] = {}
    for d in owner.values():
        grids[d] = grids.get(d, 0) + 1
    if len(_extras) > 16:
        _extras.clear()
    _extras[key] = (time.monotonic(), (patrol, grids))
    return patrol, grids


def score_districts(cases, rows: list[dict], now: datetime) -> list[dict]:
    """The wall's districts (figures.rollup.district_ranking's rows: this month to today's accepted, due, closure
    and on-time rates) with this month's score and grade by figures.assessment.score_area, the one definition,
    ranked as the assessment ranks areas (score, then the on-time rate; no score: last, unranked)."""
    from data import files

    rules = files.assessment_rules()
    last = city_today(now)
    first = last.replace(day=1)
    patrol, grids = _district_extras(cases, first, last)
    days = (last - first).days + 1
    for r in rows:
        item = am.score_area({"grids": grids.get(r["code"], 0), "accepted": r["accepted"],
                              "patrol_accepted": patrol.get(r["code"], 0), "due": r["due"],
                              "closure_rate": r["closure_rate"], "on_time_rate": r["on_time_rate"]}, days, rules)
        r.update(score=item["score"], grade=item["grade"])
    rules.rank(rows, "area")
    return rows


def heat_points(services, now: datetime | None = None) -> dict:
    """The last 7 days' reports as integer offsets from the city's corner (the hexagon view)."""
    now = now or services.cases.clock()
    with services.db.session() as s:
        pts = period.recent_points(s, now, days=7)
    x0, y0 = _origin(services)
    flat: list[int] = []
    for lon, lat in pts:
        flat += [round((lon - x0) * QUANT), round((lat - y0) * QUANT)]
    return {"origin": [x0, y0], "q": QUANT, "xy": flat, "n": len(pts), "generated_at": _iso(now)}


def _origin(services) -> tuple[float, float]:
    city = [r for r in services.areas.records(max_level=1)]
    minx, miny, _, _ = shapely.total_bounds([r.geometry for r in city])
    return round(float(minx), 4), round(float(miny), 4)


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _varints(values: list[int]) -> str:
    """Signed integers as text: zigzag, then 5 bits a character with a continuation bit (32),
    in the URL-safe base-64 alphabet (nothing to escape in JSON). assets/wall.js decodes it."""
    out = []
    for v in values:
        z = (v << 1) ^ (v >> 63)
        while z >= 32:
            out.append(_B64[32 | (z & 31)])
            z >>= 5
        out.append(_B64[z])
    return "".join(out)


def _encode_ring(coords, x0: float, y0: float) -> str:
    """A ring as its first point and then the steps between points, in 1e-4 degree units."""
    out: list[int] = []
    px = py = None
    for x, y in coords[:-1]:  # the closing point is implied
        qx, qy = round((x - x0) * QUANT), round((y - y0) * QUANT)
        if px is None:
            out += [qx, qy]
        elif (qx, qy) != (px, py):
            out += [qx - px, qy - py]
        else:
            continue
        px, py = qx, qy
    return _varints(out) if len(out) >= 6 else ""


def grid_order(services) -> dict[str, int]:
    """{grid code: its number in grid_geometry's order}."""
    return _grids(services)[1]


def grid_geometry(services) -> dict:
    """The grids (in code order) as simplified, quantised, delta-coded outer rings, cached per
    hierarchy version: {"v", "origin", "q", "n", "rings": ["<varints x0 y0 dx dy ...>", ...], "index":
    [grid number of each ring] or None when each grid is one ring} (about 25 bytes a grid). The
    snapshot names grids by their number here ("order", kept on the server)."""
    return _grids(services)[0]


def per_hierarchy_version(services, name: str, build):
    """(version, build(version)): what is derived from the area hierarchy alone (the wall's grid
    shapes, its base map) is made once per hierarchy version (an import changes it), per `name`."""
    with services.db.session() as s:
        version = hierarchy_version(s) or "none"
    hit = _versioned.get(name)
    if hit is None or hit[0] != version:
        with _versioned_lock:
            hit = _versioned.get(name)
            if hit is None or hit[0] != version:
                hit = _versioned[name] = (version, build(version))
    return hit


def _grids(services) -> tuple[dict, dict[str, int]]:
    return per_hierarchy_version(services, "grids", lambda version: _build_grids(services, version))[1]


def _build_grids(services, version: str) -> tuple[dict, dict[str, int]]:
    records = sorted((r for r in services.areas.records(max_level=GRID) if r.level == GRID), key=lambda r: r.code)
    x0, y0 = _origin(services)
    codes, rings, index = [], [], []
    for i, r in enumerate(records):
        codes.append(r.code)
        geom = shapely.simplify(r.geometry, GRID_TOLERANCE, preserve_topology=True)
        for part in getattr(geom, "geoms", [geom]):
            if part.is_empty or part.geom_type != "Polygon":
                continue
            ring = _encode_ring(shapely.get_coordinates(part.exterior).tolist(), x0, y0)
            if ring:
                rings.append(ring)
                index.append(i)
    out = {"v": version, "origin": [x0, y0], "q": QUANT, "n": len(codes), "rings": rings,
           "index": None if index == list(range(len(codes))) else index}
    return out, {code: i for i, code in enumerate(codes)}
