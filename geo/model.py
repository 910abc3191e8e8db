"""Plain data for the five-level hierarchy: one AreaRecord per node, grid -> city."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from shapely.geometry.base import BaseGeometry

# Level numbers are part of the outside interface (CONTRACT.md: 1 city ... 5 grid).
CITY, DISTRICT, STREET, COMMUNITY, GRID = 1, 2, 3, 4, 5
LEVELS = (CITY, DISTRICT, STREET, COMMUNITY, GRID)
LEVEL_KEYS = {CITY: "city", DISTRICT: "district", STREET: "street", COMMUNITY: "community", GRID: "grid"}
LEVEL_NAMES_ZH = {CITY: "市", DISTRICT: "区县", STREET: "街道/镇", COMMUNITY: "社区/村", GRID: "网格"}


@dataclass
class AreaRecord:
    """One node of the hierarchy. Coordinates are lon/lat (WGS84-like, as delivered)."""

    code: str
    name: str
    level: int
    parent: str | None
    geometry: BaseGeometry
    population: int | None = None
    is_demo: bool = False
    extra: dict = field(default_factory=dict)


def by_code(records: Iterable[AreaRecord]) -> dict[str, AreaRecord]:
    return {r.code: r for r in records}


def chain_of(code: str, index: dict[str, AreaRecord]) -> list[AreaRecord]:
    """The node and its ancestors, from the node up to the city."""
    out = []
    node = index.get(code)
    while node is not None:
        out.append(node)
        node = index.get(node.parent) if node.parent else None
    return out
