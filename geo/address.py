"""An address in words → a point, by the hierarchy's own names (until a city's gazetteer is imported).

The hotline (12345) and Open311 clients may send an address instead of a point. Without a 地名地址 gazetteer the
best the city's own data can say is which area the address names: the deepest area (grid before community before
street before district) whose name appears in the text, and a point inside it. A city that imports its places
(issue 20) answers more precisely; this stays the fallback.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from geo.model import AreaRecord

# Suffixes an address may leave out ("湖塘" for 湖塘镇, "新北" for 新北区); a stem shorter than 2 characters is
# too common to mean a place.
_SUFFIXES = ("街道办事处", "街道", "社区", "网格", "管委会", "开发区", "镇", "乡", "村", "区", "市", "县")


@dataclass(frozen=True)
class AddressPlace:
    lon: float
    lat: float
    area: AreaRecord  # the deepest area the address names
    matched: str  # the words of the address that named it


def _stems(name: str) -> list[str]:
    stems = [name]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            stems.append(name[: -len(suffix)])
            break
    return stems


def place_of_address(text: str, records: Iterable[AreaRecord]) -> AddressPlace | None:
    """The point an address names, or None when it names no area of the city. Deepest level wins; then the longest
    match (a full name before a stem); then the code, so the answer never depends on the records' order."""
    text = "".join((text or "").split())
    if not text:
        return None
    best: tuple[int, int, str] | None = None
    best_rec: AreaRecord | None = None
    best_match = ""
    for rec in records:
        for stem in _stems(rec.name):
            if stem and stem in text:
                key = (rec.level, len(stem), rec.code)
                if best is None or key[:2] > best[:2] or (key[:2] == best[:2] and key[2] < best[2]):
                    best, best_rec, best_match = key, rec, stem
                break
    if best_rec is None:
        return None
    point = best_rec.geometry.representative_point()  # inside the area, unlike a centroid of a crescent
    return AddressPlace(lon=float(point.x), lat=float(point.y), area=best_rec, matched=best_match)
