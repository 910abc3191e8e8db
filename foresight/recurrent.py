"""Recurring spots (高发问题点位): the same category reported at the same place again and again, as `recurrent` findings."""
from __future__ import annotations

import functools
from collections import Counter
from datetime import datetime, timedelta

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import select

from data.db import Database
from data.models import Case, EarlyWarning
from dispatch.warning_rules import WarningRules
from foresight.findings import Finding


@functools.lru_cache(maxsize=8)
def _to_metres(zone: int):
    """lon/lat → metres in the UTM zone (WGS 84): distances of tens of metres are true to well under 1 %."""
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + zone}", always_xy=True)


def utm_zone(lon: float) -> int:
    return int((lon + 180) // 6) % 60 + 1


def spot_id(lon: float, lat: float) -> str:
    """A spot's stable name: its centre rounded to 1e-4 degree (about 10 m)."""
    return f"{lon:.4f},{lat:.4f}"


def detect(db: Database, at: datetime, rules: WarningRules, campaign_category: str | None = None,
           keep_names: bool = True) -> list[Finding]:
    """Each category's spots with at least `min_repeats` cases within `radius_m` of one another's centre in the
    last `period_days` before `at`. Densest first: the case with the most same-category cases within the radius
    is a spot's centre, those cases its members (each case in one spot at most). A spot near one still warned of
    (open or acknowledged, same category, within the radius) keeps that warning's spot name, so that it stays one
    warning while it lasts although its centre drifts with the sliding period (`keep_names=False`: not read, for a
    database without the warnings table, bench/bench_hotspots.py)."""
    rr = rules.recurrent
    start = at - timedelta(days=rr.period_days)
    skip = campaign_category or rules.campaign_category
    with db.session() as s:
        # Core rows, not the ORM's: a month of a million cases is read in half the time
        rows = s.connection().execute(
            select(Case.id, Case.category_code, Case.lon, Case.lat, Case.grid_code, Case.district_code)
            .where(Case.reported_at >= start, Case.reported_at < at, Case.merged_into_id.is_(None),
                   Case.category_code != skip)).all()
        known = s.execute(select(EarlyWarning.category_code, EarlyWarning.evidence)
                          .where(EarlyWarning.kind == "recurrent",
                                 EarlyWarning.status.in_(("open", "acknowledged")))).all() if keep_names else []
    if not rows:
        return []
    columns = list(zip(*rows))
    ids = np.array(columns[0], dtype=np.int64)
    lon = np.array(columns[2], dtype=float)
    lat = np.array(columns[3], dtype=float)
    zone = utm_zone(float(np.median(lon)))
    x, y = _to_metres(zone).transform(lon, lat)
    xy = np.column_stack([x, y])
    codes, inverse = np.unique(np.array([c or "" for c in columns[1]]), return_inverse=True)
    by_category = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    grids, districts = columns[4], columns[5]
    known_by_cat: dict[str, list[tuple[str, np.ndarray]]] = {}
    for cat, ev in known:
        if isinstance(ev, dict) and "spot" in ev and "lon" in ev and "lat" in ev:
            kx, ky = _to_metres(zone).transform(ev["lon"], ev["lat"])
            known_by_cat.setdefault(cat, []).append((ev["spot"], np.array([kx, ky])))
    out: list[Finding] = []
    for cat, idx in zip(codes.tolist(), by_category):
        if idx.size < rr.min_repeats:
            continue
        pts = xy[idx]
        tree = cKDTree(pts)
        density = tree.query_ball_point(pts, rr.radius_m, return_length=True)
        taken = np.zeros(idx.size, dtype=bool)
        # densest first; ties by the older case id, so that the same cases give the same spots
        dense = np.flatnonzero(density >= rr.min_repeats)
        for i in dense[np.lexsort((ids[idx[dense]], -density[dense]))]:
            if taken[i]:
                continue
            members = [j for j in tree.query_ball_point(pts[i], rr.radius_m) if not taken[j]]
            if len(members) < rr.min_repeats:
                continue
            taken[members] = True
            out.append(_finding(cat, idx[members], i, idx, ids, lon, lat, pts, grids, districts, known_by_cat,
                                rr, start, at))
    out.sort(key=lambda f: (-f.observed, f.dedupe_key))
    return out[:rr.max_spots]


def _finding(cat, members, centre_i, idx, ids, lon, lat, pts, grids, districts, known_by_cat, rr, start,
             at) -> Finding:
    centre_lon, centre_lat = float(lon[idx[centre_i]]), float(lat[idx[centre_i]])
    name = spot_id(centre_lon, centre_lat)
    for known_name, where in known_by_cat.get(cat, ()):
        if float(np.hypot(*(pts[centre_i] - where))) <= rr.radius_m:
            name, centre_lon, centre_lat = known_name, None, None
            break
    if centre_lon is None:  # the warned spot's own centre stays its place
        centre_lon, centre_lat = (float(v) for v in name.split(","))
    grid = Counter(grids[j] for j in members).most_common(1)[0][0]
    district = Counter(districts[j] for j in members).most_common(1)[0][0]
    case_ids = sorted((int(ids[j]) for j in members), reverse=True)
    return Finding(kind="recurrent", area_code=grid, district_code=district, category_code=cat, window_start=start,
                   window_end=at, observed=len(members), expected=None, upper=None, score=float(len(members)),
                   evidence={"spot": name, "lon": centre_lon, "lat": centre_lat, "radius_m": rr.radius_m,
                             "count": len(members), "period_days": rr.period_days, "min_repeats": rr.min_repeats},
                   case_ids=case_ids)
