"""Routing: which unit handles a case, at which level, and why — in words a duty officer can read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from dispatch.catalog import Category, UnitType
from dispatch.units import UnitRecord, find_unit

LEVEL_NAMES = {1: "市级", 2: "区级", 3: "街道级", 4: "社区级", 5: "网格级"}
SEVERITY_NAMES = {1: "Ⅰ级（特别重大）", 2: "Ⅱ级（重大）", 3: "Ⅲ级（较大）", 4: "Ⅳ级（一般）"}
# Severity IV starts at district level, III at the city; II and I at the city and reported upward.
SEVERITY_LEVEL = {4: 2, 3: 1, 2: 1, 1: 1}


@dataclass(frozen=True)
class RouteDecision:
    unit_code: str | None          # None: the command center's manual queue
    assist_unit_codes: tuple[str, ...]
    handling_level: int
    reason: str
    report_upward: bool = False

    @property
    def manual(self) -> bool:
        return self.unit_code is None


def start_level(category: Category, severity: int | None) -> int:
    if category.is_emergency:
        return SEVERITY_LEVEL.get(severity or 4, 2)
    return category.level


def _place(chain: Sequence) -> str:
    # chain is grid → city; name it from the district down, as officers say it.
    return "".join(n.name for n in reversed(chain) if n.level >= 2)


def _assist_level(unit_type: UnitType, lead_level: int) -> int:
    """The level at which an assisting type joins: its own level nearest the lead's, preferring
    at or above it; a type that only exists below (street office) joins where the case is."""
    above = [lv for lv in unit_type.levels if lv <= lead_level]
    return max(above) if above else min(unit_type.levels)


def route_case(category: Category, chain: Sequence, unit_index: Mapping, unit_types: Mapping[str, UnitType],
               severity: int | None = None, level: int | None = None) -> RouteDecision:
    """Route a case located at `chain` (grid → city). `level` overrides the starting level
    (escalation re-routes one level up with the same rule)."""
    target = level if level is not None else start_level(category, severity)
    type_name = unit_types[category.unit_type].name if category.unit_type in unit_types else category.unit_type
    lead = find_unit(unit_index, chain, category.unit_type, target)
    where = _place(chain)
    head = f"「{category.name}」按指挥手册由{type_name}在{LEVEL_NAMES.get(target, target)}处置"
    if category.is_emergency:
        head = f"「{category.name}」{SEVERITY_NAMES.get(severity or 4, '')}应急事件，由{type_name}牵头、{LEVEL_NAMES[target]}启动"
    if lead is None:
        return RouteDecision(None, (), target,
                             f"{head}；案件位于{where}，本级及以上均无{type_name}，转指挥中心人工派遣。")
    parts = [f"{head}；案件位于{where}，派往{lead.name}"]
    if lead.level != target:
        parts.append(f"（{LEVEL_NAMES.get(target)}无{type_name}，上溯至{LEVEL_NAMES.get(lead.level)}）")
    assists: list[UnitRecord] = []
    if category.is_emergency:
        for t in category.assist_unit_types:
            ut = unit_types.get(t)
            if ut is None:
                continue
            u = find_unit(unit_index, chain, t, _assist_level(ut, target))
            if u is not None and u.code != lead.code and u not in assists:
                assists.append(u)
        if assists:
            parts.append("；协同单位：" + "、".join(u.name for u in assists))
    upward = bool(category.is_emergency and (severity or 4) <= 2)
    if upward:
        parts.append("；重大及以上事件须向省级报告")
    return RouteDecision(lead.code, tuple(u.code for u in assists), lead.level, "".join(parts) + "。", upward)
