"""Spatial hotspots of the grid cells (Getis-Ord Gi*, FDR-corrected) over the last N full days: `hotspot` findings."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.stats import norm, poisson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data.areas import hierarchy_version, load_records
from data.db import Database
from data.models import Case
from dispatch.city_time import city_today, day_start
from dispatch.warning_rules import HotspotRules, WarningRules
from figures.case_counts import case_ids
from foresight.findings import Finding

UTC = timezone.utc
MAX_GRIDS_LISTED = 50  # a finding's evidence names at most this many grids (the hottest first)


@dataclass
class GridWeights:
    """The grids' spatial weights (libpysal W, binary), their order, and each grid's street and district."""

    w: object
    codes: list[str]
    street_of: dict[str, str]
    district_of: dict[str, str]
    islands_linked: int  # grids without a contiguous neighbour, linked to their k nearest


_cache: dict[tuple, GridWeights] = {}
_cache_lock = threading.Lock()


def grid_weights(s: Session, rules: HotspotRules, db_key: str = "") -> GridWeights | None:
    """The weights of the current hierarchy, built once per hierarchy version (and weights rule) and kept: 5,891
    grids take ~0.4 s with libpysal's Queen, the windows' Gi* then reuse them every hour."""
    version = hierarchy_version(s)
    key = (db_key, version, rules.weights, rules.island_neighbours)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            return found
        records = load_records(s)
        grids = [r for r in records if r.level == 5 and not r.geometry.is_empty]
        if len(grids) < 2:
            return None
        built = _build(records, grids, rules)
        for old in [k for k in _cache if k[0] == db_key]:
            del _cache[old]  # an older hierarchy of the same database
        _cache[key] = built
        return built


def _build(records, grids, rules: HotspotRules) -> GridWeights:
    from libpysal.weights import W, Queen, Rook

    codes = [g.code for g in grids]
    cls = Queen if rules.weights == "queen" else Rook
    w = cls.from_iterable([g.geometry for g in grids], ids=codes, silence_warnings=True)
    islands = list(w.islands)
    if islands:
        # a grid with no contiguous neighbour (an island, a gap in an imported city) takes its k nearest by
        # centre, both ways (W stays symmetric): Gi* of a grid with no neighbour would only test the grid itself
        from scipy.spatial import cKDTree

        centres = np.array([[g.geometry.centroid.x, g.geometry.centroid.y] for g in grids])
        tree = cKDTree(centres)
        neighbours = {c: set(n) for c, n in w.neighbors.items()}
        k = min(rules.island_neighbours, len(codes) - 1)
        index = {c: i for i, c in enumerate(codes)}
        for code in islands:
            _, near = tree.query(centres[index[code]], k=k + 1)
            for j in np.atleast_1d(near):
                other = codes[int(j)]
                if other != code:
                    neighbours[code].add(other)
                    neighbours[other].add(code)
        w = W({c: sorted(n) for c, n in neighbours.items()}, id_order=codes, silence_warnings=True)
    by_code = {r.code: r for r in records}
    street_of, district_of = {}, {}
    for code in codes:
        up = by_code[code]
        while up is not None and up.level > 2:
            if up.level == 3:
                street_of[code] = up.code
            up = by_code.get(up.parent) if up.parent else None
        if up is not None and up.level == 2:
            district_of[code] = up.code
    w.transform = "B"
    return GridWeights(w, list(w.id_order), street_of, district_of, len(islands))


def window(at: datetime, days: int) -> tuple[datetime, datetime]:
    """The last `days` full local days before the day of `at`: [start, end) in UTC. A day's windows are the same
    at every hourly run of that day, so a hotspot is one warning a day, not one an hour."""
    today = city_today(at)
    return day_start(today - timedelta(days=days)), day_start(today)


def grid_counts(s: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Cases reported per grid in [start, end), counted as figures.case_counts counts them (every report, a merged
    duplicate too), in one GROUP BY: the window is whole local days already, and daily_counts' per-day buckets
    cost 4× as much at a million cases (bench/bench_hotspots.py)."""
    q = (select(Case.grid_code, func.count()).where(Case.reported_at >= start.astimezone(UTC),
                                                    Case.reported_at < end.astimezone(UTC))
         .group_by(Case.grid_code))
    return {str(k): int(v) for k, v in s.execute(q).all() if k is not None}


def gi_star(y: np.ndarray, gw: GridWeights, rules: HotspotRules):
    """(z, p, q) per grid: Gi* z (star: the grid itself counts in its neighbourhood), the one-sided p of a high
    value (hot spots only; cold spots are no warning) and the Benjamini–Hochberg q over all the grids."""
    import esda
    from statsmodels.stats.multitest import multipletests

    g = esda.G_Local(y, gw.w, transform="B", permutations=rules.permutations, star=True, keep_simulations=False)
    z = np.asarray(g.Zs, dtype=float)
    if rules.permutations:
        # the pseudo p of the permutations is folded (the nearer tail): keep it for the high side only
        p = np.where(np.asarray(g.Zs) > 0, np.asarray(g.p_sim, dtype=float), 1.0)
    else:
        p = norm.sf(z)  # Ord & Getis (1995): Gi* is asymptotically normal
    z = np.nan_to_num(z, nan=0.0)
    p = np.nan_to_num(p, nan=1.0)
    q = multipletests(p, alpha=rules.fdr_alpha, method="fdr_bh")[1]
    return z, p, q


def detect(db: Database, at: datetime, rules: WarningRules) -> list[Finding]:
    """The hot clusters of each window: grids with z > 0 and q ≤ alpha, adjacent ones grouped into one finding
    (its area the hottest grid, its evidence the grids with z, p, q)."""
    hr = rules.hotspots
    out: list[Finding] = []
    with db.session() as s:
        gw = grid_weights(s, hr, db_key=str(db.engine.url))
        if gw is None:
            return []
        for days in hr.windows_days:
            start, end = window(at, days)
            counts = grid_counts(s, start, end)
            y = np.array([counts.get(c, 0) for c in gw.codes], dtype=float)
            if y.sum() < hr.min_cases or np.all(y == y[0]):
                continue
            z, p, q = gi_star(y, gw, hr)
            out += _clusters(s, gw, y, z, p, q, hr, days, start, end)
    return out


def hot_clusters(gw: GridWeights, y, z, q, hr: HotspotRules) -> list[np.ndarray]:
    """The hot grids (z > 0, q ≤ alpha) grouped by adjacency, each group's indices hottest first; a group with
    fewer than min_cases cases or min_cluster_grids grids is left out; the max_clusters hottest groups."""
    hot = np.flatnonzero((z > 0) & (q <= hr.fdr_alpha))
    if hot.size == 0:
        return []
    sparse = gw.w.sparse.tocsr()[hot][:, hot]
    n, labels = connected_components(sparse, directed=False)
    out = []
    for label in range(n):
        members = hot[labels == label]
        if int(y[members].sum()) < hr.min_cases or members.size < hr.min_cluster_grids:
            continue
        out.append(members[np.argsort(-z[members], kind="stable")])
    out.sort(key=lambda m: -z[m[0]])
    return out[:hr.max_clusters]  # the hottest: a duty officer reads a handful, not a city's every busy corner


def _clusters(s: Session, gw: GridWeights, y, z, p, q, hr: HotspotRules, days: int, start, end) -> list[Finding]:
    mean = float(y.mean())
    found = []
    for members in hot_clusters(gw, y, z, q, hr):
        observed = int(y[members].sum())
        centre = gw.codes[members[0]]
        codes = [gw.codes[i] for i in members]
        grids = [{"code": gw.codes[i], "count": int(y[i]), "z": round(float(z[i]), 3), "p": float(f"{p[i]:.3g}"),
                  "q": float(f"{q[i]:.3g}")} for i in members[:MAX_GRIDS_LISTED]]
        evidence = {"method": "Getis-Ord Gi*", "window_days": days, "weights": hr.weights,
                    "correction": "Benjamini-Hochberg", "alpha": hr.fdr_alpha,
                    "p_value": "permutation" if hr.permutations else "normal",
                    "street": gw.street_of.get(centre), "grid_count": len(codes), "grids": grids}
        ids = case_ids(s, start, end, where=(Case.grid_code.in_(codes),), limit=500)
        found.append(Finding(kind="hotspot", area_code=centre, district_code=gw.district_of.get(centre),
                             category_code=None, window_start=start, window_end=end, observed=observed,
                             expected=round(mean * len(codes), 2),
                             # what chance would reach with the cases spread evenly: the Poisson's 1 - alpha quantile
                             upper=float(poisson.ppf(1 - hr.fdr_alpha, mean * len(codes))),
                             score=round(float(z[members[0]]), 3),
                             evidence=evidence, case_ids=ids))
    return found
