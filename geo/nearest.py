"""Nearest points to a place, nearest first, through a spatial index (an STRtree per kind), with filters.

The points (emergency resources) are projected once to an azimuthal equidistant projection centred on their
extent, where an STRtree finds the candidates within a radius; the distances answered are ellipsoidal (WGS 84,
pyproj.Geod), computed for those candidates only. The walk starts with a radius expected to hold about twice as
many matches as asked for and doubles it until `limit` matches are certain: a match is certain when its
ellipsoidal distance is within the searched radius shrunk by the projection's worst distance error there, so the
answer (ids, order, distances) is exactly that of a scan of every point (tested against one, and the bench runs
both). Filters (kind, specialty, owner) are applied while walking: the kind picks its own tree, the others mask
the candidates of each step.

Pure: numpy, shapely and pyproj only. Build one with :meth:`NearestIndex.build`; it is read-only afterwards and
safe to share between threads.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.strtree import STRtree

__all__ = ["NearestIndex", "Hit", "geodesic_m"]

_GEOD = Geod(ellps="WGS84")
_EARTH_R = 6_371_000.0
# The azimuthal equidistant projection keeps distances from its centre; between two other points it stretches
# them by at most about c²/6 (c: their angular distance from the centre, in radians). Doubled, plus a floor for
# the ellipsoid's own departure from the sphere the bound is derived on.
_ERROR_FLOOR = 1e-4
_MIN_RADIUS_M = 200.0


def geodesic_m(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Ellipsoidal (WGS 84) distances in metres from one point to many."""
    lons = np.asarray(lons, dtype=float)
    if lons.size == 0:
        return np.zeros(0)
    _, _, d = _GEOD.inv(np.full(lons.shape, lon), np.full(lons.shape, lat), lons, np.asarray(lats, dtype=float))
    return np.asarray(d, dtype=float)


@dataclass(frozen=True)
class Hit:
    index: int  # the point's position in the lists the index was built from
    id: str
    distance_m: float


class _Subset:
    """One tree over some of the points (all of them, or those of one kind)."""

    def __init__(self, members: np.ndarray, x: np.ndarray, y: np.ndarray):
        self.members = members  # positions in the full arrays, in tree order
        self.tree = STRtree(shapely.points(x[members], y[members]))
        if len(members):
            self.bounds = (float(x[members].min()), float(y[members].min()),
                           float(x[members].max()), float(y[members].max()))
        else:
            self.bounds = (0.0, 0.0, 0.0, 0.0)
        w, h = self.bounds[2] - self.bounds[0], self.bounds[3] - self.bounds[1]
        self.area_m2 = max(w, 1.0) * max(h, 1.0)


class NearestIndex:
    """Points with an id, a kind and optional attributes, searchable nearest-first."""

    def __init__(self, ids: Sequence[str], lons, lats, kinds: Sequence[str], specialties: Sequence[str | None],
                 owners: Sequence[str | None], version=None):
        self.version = version  # whatever the caller uses to know when to rebuild
        self.ids = np.array(list(ids), dtype=object)
        self.lons = np.asarray(lons, dtype=float)
        self.lats = np.asarray(lats, dtype=float)
        self.kinds = np.array(list(kinds), dtype=object)
        self.specialties = np.array(list(specialties), dtype=object)
        self.owners = np.array(list(owners), dtype=object)
        n = len(self.ids)
        if not (len(self.lons) == len(self.lats) == len(self.kinds) == len(self.specialties) == len(self.owners) == n):
            raise ValueError("one lon, lat, kind, specialty and owner per id expected")
        if n:
            lon0 = float((self.lons.min() + self.lons.max()) / 2)
            lat0 = float((self.lats.min() + self.lats.max()) / 2)
        else:
            lon0, lat0 = 0.0, 0.0
        self.centre = (lon0, lat0)
        self._to_xy = Transformer.from_crs(
            "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m", always_xy=True)
        x, y = self._to_xy.transform(self.lons, self.lats)
        self.x, self.y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        # the farthest point from the centre, as an angle: bounds the projection's error for every query
        self._c_max = float(np.hypot(self.x, self.y).max() / _EARTH_R) if n else 0.0
        self._all = _Subset(np.arange(n), self.x, self.y)
        self._by_kind = {k: _Subset(np.flatnonzero(self.kinds == k), self.x, self.y) for k in set(self.kinds.tolist())}
        # how many points each filter keeps, per kind (None: every kind): the walk's first radius, without a scan
        self._counts: Counter = Counter()
        for k, sp, ow in zip(self.kinds.tolist(), self.specialties.tolist(), self.owners.tolist()):
            for key in ((k, "specialty", sp), (None, "specialty", sp), (k, "owner", ow), (None, "owner", ow)):
                self._counts[key] += 1

    @classmethod
    def build(cls, rows: Sequence[tuple], version=None) -> "NearestIndex":
        """From rows (id, lon, lat, kind, specialty, owner)."""
        cols = list(zip(*rows)) if rows else [[], [], [], [], [], []]
        return cls(cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], version=version)

    def __len__(self) -> int:
        return len(self.ids)

    def kinds_present(self) -> set[str]:
        return set(self._by_kind)

    def _error(self, qx: float, qy: float) -> float:
        """A bound on |projected − ellipsoidal| / ellipsoidal distance between the query and any point."""
        c = max(self._c_max, math.hypot(qx, qy) / _EARTH_R)
        return _ERROR_FLOOR + c * c / 3.0

    def nearest(self, lon: float, lat: float, limit: int = 20, kind: str | None = None,
                specialty: str | None = None, owner: str | None = None, radius_m: float | None = None) -> list[Hit]:
        """Up to `limit` points nearest to (lon, lat), nearest first (ties by id), that are of `kind`, have
        `specialty` and belong to `owner` (each when given), within `radius_m` metres when given."""
        if limit <= 0 or not len(self.ids):
            return []
        sub = self._all if kind is None else self._by_kind.get(kind)
        if sub is None or not len(sub.members):
            return []
        qx, qy = self._to_xy.transform(lon, lat)
        eps = self._error(qx, qy)
        # beyond this radius every point of the subset is a candidate
        minx, miny, maxx, maxy = sub.bounds
        cover = math.hypot(max(abs(qx - minx), abs(qx - maxx)), max(abs(qy - miny), abs(qy - maxy))) * (1 + eps) + 1.0
        # a first radius expected to hold twice `limit` matches, from the subset's density and the filters' share
        share = 1.0
        for field, value in (("specialty", specialty), ("owner", owner)):
            if value is not None:
                n = self._counts[(kind, field, value)]
                if n == 0:
                    return []
                share = min(share, n / len(sub.members))
        r = max(_MIN_RADIUS_M, math.sqrt(2.0 * limit * sub.area_m2 / (math.pi * len(sub.members) * share)))
        cap = None if radius_m is None else radius_m * (1 + eps) + 1.0
        point = shapely.Point(qx, qy)
        while True:
            search = min(r, cover) if cap is None else min(r, cover, cap)
            found = sub.tree.query(point, predicate="dwithin", distance=search)
            members = sub.members[found]
            if specialty is not None or owner is not None:
                members = members[self._mask(members, specialty, owner)]
            d = geodesic_m(lon, lat, self.lons[members], self.lats[members])
            complete = search >= cover or (cap is not None and search >= cap)
            sure = np.inf if complete else search / (1 + eps)
            if radius_m is not None:
                sure = min(sure, radius_m)
            keep = d <= sure
            if complete or keep.sum() >= limit:
                members, d = members[keep], d[keep]
                order = np.lexsort((self.ids[members].astype(str), d))[:limit]
                return [Hit(int(members[i]), str(self.ids[members[i]]), float(d[i])) for i in order]
            r = search * 2.0

    def _mask(self, members: np.ndarray, specialty: str | None, owner: str | None) -> np.ndarray:
        ok = np.ones(len(members), dtype=bool)
        if specialty is not None:
            ok &= self.specialties[members] == specialty
        if owner is not None:
            ok &= self.owners[members] == owner
        return ok

    def scan(self, lon: float, lat: float, limit: int = 20, kind: str | None = None, specialty: str | None = None,
             owner: str | None = None, radius_m: float | None = None) -> list[Hit]:
        """The same answer by brute force: the distance to every point, sorted (the tests' and the bench's
        reference)."""
        members = np.arange(len(self.ids))
        if kind is not None:
            members = members[self.kinds == kind]
        members = members[self._mask(members, specialty, owner)]
        d = geodesic_m(lon, lat, self.lons[members], self.lats[members])
        if radius_m is not None:
            members, d = members[d <= radius_m], d[d <= radius_m]
        order = np.lexsort((self.ids[members].astype(str), d))[:limit]
        return [Hit(int(members[i]), str(self.ids[members[i]]), float(d[i])) for i in order]
