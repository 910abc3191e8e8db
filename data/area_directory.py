"""The hierarchy as the app uses it: a locator and map records cached per hierarchy version."""
from __future__ import annotations

import threading
import time

from data.areas import hierarchy_version, load_records
from data.db import Database
from geo.locator import Locator
from geo.model import AreaRecord, chain_of


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

    def locator(self) -> Locator | None:
        self._refresh()
        return self._locator
