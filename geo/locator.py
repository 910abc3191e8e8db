"""Point location: lon/lat -> grid -> community -> street -> district -> city, via one STRtree over the grids."""
from __future__ import annotations

import threading
from typing import Iterable, Sequence

import numpy as np
import shapely
from shapely.strtree import STRtree

from geo.model import GRID, AreaRecord, by_code, chain_of

__all__ = ["Locator", "OutsideCity"]

_OUTSIDE, _MIXED = -1, -2
# Bulk raster: at most this many cells (memory and build time stay well under a second).
_MAX_CELLS = 600_000
# Cell boxes are widened by this (deg) so that a point assigned to a cell by floor() always
# lies inside the box that was tested, whatever the rounding.
_CELL_PAD = 1e-9
# Cells tested against the tree at a time while building the raster (their boxes: under 2 MB).
_CELL_CHUNK = 4096


class OutsideCity(LookupError):
    """The point is valid but lies in no grid (outside the city, or in water left out of the grids)."""

    def __init__(self, lon: float, lat: float):
        self.lon = lon
        self.lat = lat
        super().__init__(f"坐标({lon}, {lat})不在本市范围内")


def _code_key(code: str) -> tuple[int, str]:
    # Numeric order for digit codes of mixed length (grid suffixes may have 3 or 4 digits).
    return (len(code), code)


class Locator:
    """Finds the grid holding a point and returns its chain up to the city.

    Grids are sorted by code and the tree is built in that order, so tree index order is code
    order: a point on a border shared by several grids gets the smallest code, every time.
    Safe to share between threads: single lookups only read, bulk lookups take a lock.
    """

    def __init__(self, grids: Sequence[AreaRecord], chains: Sequence[tuple[AreaRecord, ...]], *,
                 use_native: bool = True, cell_deg: float | None = None):
        if not grids:
            raise ValueError("no grids (level 5) to locate in")
        if len(chains) != len(grids):
            raise ValueError("one chain per grid expected")
        order = sorted(range(len(grids)), key=lambda i: _code_key(grids[i].code))
        self.grids: tuple[AreaRecord, ...] = tuple(grids[i] for i in order)
        self.chains: tuple[tuple[AreaRecord, ...], ...] = tuple(tuple(chains[i]) for i in order)
        self.grid_codes: np.ndarray = np.array([g.code for g in self.grids])
        # Copies, so that preparing them leaves the callers' geometries untouched.
        self._geoms = shapely.from_wkb(shapely.to_wkb(np.array([g.geometry for g in self.grids], dtype=object)))
        self.tree = STRtree(self._geoms)
        self._cell_deg = cell_deg
        self._raster: _Raster | None = None
        self._raster_lock = threading.Lock()
        self._bulk_lock = threading.Lock()
        self._hits = self._public_hits()
        self.native = False
        if use_native:
            native = self._native_hits()
            if native is not None:
                self._hits = native
                self.native = True

    @classmethod
    def from_records(cls, records: Iterable[AreaRecord], *, use_native: bool = True,
                     cell_deg: float | None = None) -> "Locator":
        """Locator over the level-5 records; each grid's chain is resolved once, here."""
        records = list(records)
        index = by_code(records)
        grids = [r for r in records if r.level == GRID]
        chains = [tuple(chain_of(g.code, index)) for g in grids]
        return cls(grids, chains, use_native=use_native, cell_deg=cell_deg)

    # -- single point -------------------------------------------------------------------------

    def _public_hits(self):
        query, points = self.tree.query, shapely.points

        def hits(lon, lat):
            return query(points((lon, lat)), predicate="intersects")

        return hits

    def _native_hits(self):
        """The same tree query minus the Python wrappers, or None if shapely's internals changed.

        For one point, Point()/STRtree.query spend most of their time on argument handling; the
        extension-level calls do the identical GEOS work in under half the time. Being internals,
        they are checked against the public path here and dropped on any difference or error.
        """
        try:
            from shapely.creation import HandleNaN
            from shapely.strtree import BinaryPredicate

            query = self.tree._tree.query
            predicate = int(BinaryPredicate.intersects.value)
            points = shapely.lib.points
            handle_nan = np.intc(HandleNaN.allow.value)

            def hits(lon, lat):
                return query(points(((lon, lat),), handle_nan), predicate)[1]

            public = self._public_hits()
            probes = [tuple(c) for c in shapely.get_coordinates(shapely.point_on_surface(self._geoms[::97]))]
            probes += [tuple(c) for c in shapely.get_coordinates(self._geoms[0])[:3]]  # border points
            probes += [(0.0, 0.0), (1, 2)]
            for lon, lat in probes:
                if sorted(hits(lon, lat).tolist()) != sorted(public(lon, lat).tolist()):
                    return None
            return hits
        except (AttributeError, ImportError, TypeError, ValueError, IndexError):
            return None

    def locate(self, lon: float, lat: float) -> tuple[AreaRecord, ...]:
        """(grid, community, street, district, city) holding the point; border points go to the smallest code.

        Raises ValueError for non-finite or out-of-range coordinates, OutsideCity when no grid holds the point.
        """
        # One chained comparison also rejects NaN and ±inf (every comparison with NaN is False).
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise ValueError(f"坐标无效: ({lon!r}, {lat!r}); 经度须在[-180, 180], 纬度须在[-90, 90]")
        hits = self._hits(lon, lat)
        if len(hits) == 1:
            return self.chains[hits[0]]
        if len(hits):
            return self.chains[hits.min()]
        raise OutsideCity(lon, lat)

    # -- many points --------------------------------------------------------------------------

    def locate_many(self, lons, lats) -> np.ndarray:
        """Grid index (into .grids / .grid_codes / .chains) for each point, -1 outside every grid.

        Same answer as locate() for every point, borders included. Raises ValueError if any
        coordinate is non-finite or out of range.
        """
        x = np.asarray(lons, dtype=np.float64)
        y = np.asarray(lats, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"lons and lats differ in shape: {x.shape} vs {y.shape}")
        shape = x.shape
        x = x.ravel()
        y = y.ravel()
        valid = (x >= -180.0) & (x <= 180.0) & (y >= -90.0) & (y <= 90.0)
        if not valid.all():
            i = int(np.flatnonzero(~valid)[0])
            raise ValueError(f"坐标无效: 第{i}个点 ({x[i]!r}, {y[i]!r})")
        raster = self._get_raster()
        # GEOS prepared geometries build some indexes lazily and are not safe to share across
        # threads while doing so (libgeos/geos#825); bulk calls are vectorised, so queueing them is cheap.
        with self._bulk_lock:
            out = raster.locate(x, y)
        return out.reshape(shape)

    def _get_raster(self) -> "_Raster":
        # Built on first bulk use (~0.3 s), so single-point users never pay for it.
        if self._raster is None:
            with self._raster_lock:
                if self._raster is None:
                    self._raster = _Raster(self.tree, self._geoms, self._cell_deg)
        return self._raster

    # -- index helpers ------------------------------------------------------------------------

    def chain(self, index: int) -> tuple[AreaRecord, ...]:
        """Chain of the grid at an index returned by locate_many (which must not be -1)."""
        if index < 0:
            raise IndexError("index -1 means outside the city")
        return self.chains[index]

    def codes_of(self, indices) -> np.ndarray:
        """Grid codes (object array) for indices from locate_many, None where the index is -1."""
        idx = np.asarray(indices)
        out = np.full(idx.shape, None, dtype=object)
        inside = idx >= 0
        out[inside] = self.grid_codes[idx[inside]].tolist()
        return out

    def __len__(self) -> int:
        return len(self.grids)


class _Raster:
    """Regular lon/lat raster over the grids, for bulk lookups without creating Point objects.

    Creating one GEOS point costs about as much as the whole tree query, so bulk lookups use
    this instead: each cell knows the grids whose polygon intersects it (found with the STRtree,
    sorted by index). A cell covered by exactly one grid and touched by no other answers its
    points by arithmetic alone; in the other cells each point is tested against the cell's
    candidates, in index order, with prepared point-in-polygon. Both give exactly the
    intersects + smallest-index answer of Locator.locate.
    """

    def __init__(self, tree: STRtree, geoms: np.ndarray, cell_deg: float | None):
        shapely.prepare(geoms)
        gx0, gy0, gx1, gy1 = shapely.total_bounds(geoms)
        if cell_deg is None:
            # About half the side of a small grid: most points then fall in single-grid cells.
            cell_deg = 0.5 * float(np.sqrt(np.quantile(shapely.area(geoms), 0.25)))
        span = max(gx1 - gx0, gy1 - gy0, 1e-6)
        cell_deg = max(cell_deg, span / 2000.0, float(np.sqrt((gx1 - gx0) * (gy1 - gy0) / _MAX_CELLS)))
        d = cell_deg
        # Half a cell of margin: every grid lies strictly inside the raster.
        self.ox, self.oy, self.d = gx0 - d / 2, gy0 - d / 2, d
        self.nx = int(np.ceil((gx1 + d / 2 - self.ox) / d))
        self.ny = int(np.ceil((gy1 + d / 2 - self.oy) / d))
        # The cells are tested in chunks: a box is a GEOS geometry of ~400 bytes, and boxes for all
        # cells at once (~330,000 for the demo city) would cost ~130 MB that the allocator keeps.
        n_cells = self.nx * self.ny
        self.value = np.full(n_cells, _MIXED, dtype=np.int64)
        cells, grids = [], []
        for start in range(0, n_cells, _CELL_CHUNK):
            c = np.arange(start, min(n_cells, start + _CELL_CHUNK))
            i, j = c % self.nx, c // self.nx
            boxes = shapely.box(self.ox + i * d - _CELL_PAD, self.oy + j * d - _CELL_PAD,
                                self.ox + (i + 1) * d + _CELL_PAD, self.oy + (j + 1) * d + _CELL_PAD)
            cell, grid = tree.query(boxes, predicate="intersects")
            order = np.lexsort((grid, cell))
            cell, grid = cell[order], grid[order].astype(np.int64)
            count = np.bincount(cell, minlength=len(c))
            self.value[start + np.flatnonzero(count == 0)] = _OUTSIDE
            single = np.flatnonzero(count == 1)
            only = grid[(np.cumsum(count) - count)[single]]
            whole = shapely.covers(geoms[only], boxes[single])
            self.value[start + single[whole]] = only[whole]
            cells.append(cell + start)
            grids.append(grid)
        # Chunks come in cell order and are sorted within: the pairs are sorted by (cell, grid).
        cell, grid = np.concatenate(cells), np.concatenate(grids)
        count = np.bincount(cell, minlength=n_cells)
        self.offsets = np.concatenate([[0], np.cumsum(count)])
        self.candidates = grid
        self.geoms = geoms

    def locate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ix = np.floor((x - self.ox) / self.d)
        iy = np.floor((y - self.oy) / self.d)
        inside = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        cell = np.where(inside, iy * self.nx + ix, 0).astype(np.int64)
        out = np.where(inside, self.value[cell], _OUTSIDE)
        mixed = np.flatnonzero(out == _MIXED)
        out[mixed] = _OUTSIDE
        if len(mixed) == 0:
            return out
        c = cell[mixed]
        start = self.offsets[c]
        n = self.offsets[c + 1] - start
        # One (point, candidate) pair per candidate of the point's cell, grouped by point.
        point = np.repeat(mixed, n)
        pos = np.arange(int(n.sum())) + np.repeat(start - (np.cumsum(n) - n), n)
        cand = self.candidates[pos]
        hit = shapely.intersects_xy(self.geoms[cand], x[point], y[point])
        point, cand = point[hit], cand[hit]
        if len(point):
            # Candidates are in ascending index order within each point: the first hit is the smallest.
            first = np.flatnonzero(np.r_[True, point[1:] != point[:-1]])
            out[point[first]] = cand[first]
        return out
