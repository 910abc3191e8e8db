"""The hierarchy as the app uses it: a locator and map records cached per hierarchy version."""
from __future__ import annotations

import threading
import time

import shapely

from data.areas import hierarchy_version, load_records
from data.db import Database
from geo.address import AddressPlace, place_of_address
from geo.locator import Locator
from geo.model import GRID, AreaRecord, chain_of


class AreaDirectory:
    """Caches the hierarchy in memory; rebuilds when another process imports a new one."""

    RECHECK_SECONDS = 5.0

    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.Lock()
        self._version: str | None = None
        self._checked_at = 0.0
        self._records: list[AreaRecord] = []
        self._locator: Locator | None = None
        self._index: dict[str, AreaRecord] = {}
        self._children: dict[str | None, list[AreaRecord]] = {}

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._locator is not None and now - self._checked_at < self.RECHECK_SECONDS:
            return
        with self._lock:
            with self.db.session() as s:
                version = hierarchy_version(s)
                if version == self._version and self._locator is not None:
                    self._checked_at = now
                    return
                records = load_records(s)
            children: dict[str | None, list[AreaRecord]] = {}
            for r in sorted(records, key=lambda r: r.code):
                children.setdefault(r.parent, []).append(r)
            self._records = records
            self._index = {r.code: r for r in records}
            self._children = children
            self._locator = Locator.from_records(records) if records else None
            self._version = version
            self._checked_at = now

    def invalidate(self) -> None:
        self._checked_at = 0.0
        self._version = None

    def records(self, max_level: int = 5) -> list[AreaRecord]:
        self._refresh()
        return [r for r in self._records if r.level <= max_level]

    def get(self, code: str) -> AreaRecord | None:
        self._refresh()
        return self._index.get(code)

    def children(self, code: str) -> list[AreaRecord]:
        """The area's children, by code (kept with the hierarchy: a drill-down asks for them on every click)."""
        self._refresh()
        return list(self._children.get(code, ()))

    def chain(self, code: str) -> list[AreaRecord]:
        """The area and its ancestors, up to the city."""
        self._refresh()
        return chain_of(code, self._index)

    def neighbours(self, code: str) -> list[AreaRecord]:
        """The grids that touch or overlap grid `code` (sharing a border or a corner), by code; not the grid itself.
        Through the locator's STRtree, not a loop over the grids. [] for an unknown code or an area above grids."""
        area = self.get(code)
        locator = self.locator()
        if area is None or locator is None or area.level != GRID:
            return []
        hits = locator.tree.query(area.geometry, predicate="intersects")
        return [locator.grids[i] for i in sorted(int(h) for h in hits) if locator.grids[i].code != code]

    def grids_in_box(self, box: tuple[float, float, float, float], limit: int = 3000) -> list[AreaRecord]:
        """The grids meeting a lon/lat box (min lon, min lat, max lon, max lat), by code, at most `limit` (a map's
        surroundings). Through the locator's STRtree."""
        locator = self.locator()
        if locator is None:
            return []
        hits = locator.tree.query(shapely.box(*box), predicate="intersects")
        return [locator.grids[i] for i in sorted(int(h) for h in hits)[:limit]]

    def locator(self) -> Locator | None:
        self._refresh()
        return self._locator

    def place_of_address(self, text: str) -> AddressPlace | None:
        """The point an address in words names, by the hierarchy's names (geo/address.py), or None."""
        self._refresh()
        return place_of_address(text, self._records)
