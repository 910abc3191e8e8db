"""Routing: which unit handles a case, at which level, and why — in words a duty officer can read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from dispatch.catalog import Category, RouteException, UnitType
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


def assist_level(unit_type: UnitType, lead_level: int) -> int:
    """The level at which an assisting type joins: its own level nearest the lead's, preferring
    at or above it; a type that only exists below (street office) joins where the case is."""
    above = [lv for lv in unit_type.levels if lv <= lead_level]
    return max(above) if above else min(unit_type.levels)


def _node_code_level(node) -> tuple[str, int]:
    if isinstance(node, Mapping):
        return node["code"], int(node["level"])
    return node.code, int(node.level)


def find_exception(category: Category, chain: Sequence,
                   exceptions: Sequence[RouteException]) -> RouteException | None:
    """The routing exception (data/catalog/routing_exceptions.csv) for a case of ``category``
    located at ``chain``, or None. The most specific one wins: a rule for the code over one for its
    major class, then the rule of the deepest area of the chain (a street's rule inside its
    district's). Emergencies have none: they follow their plans and severity."""
    if category.is_emergency or not exceptions:
        return None
    depth = {code: lv for code, lv in map(_node_code_level, chain)}
    best, best_key = None, None
    for e in exceptions:
        if e.area_code in depth and e.covers(category.code):
            key = (len(e.category), depth[e.area_code])
            if best_key is None or key > best_key:
                best, best_key = e, key
    return best


def route_case(category: Category, chain: Sequence, unit_index: Mapping, unit_types: Mapping[str, UnitType],
               severity: int | None = None, level: int | None = None,
               exceptions: Sequence[RouteException] = ()) -> RouteDecision:
    """Route a case located at `chain` (grid → city). `level` overrides the starting level
    (escalation re-routes one level up with the same rule). `exceptions`: the city's routing
    exceptions by area (data.files.routing_exceptions()); one that applies sends the case to its
    unit type at its level (with `level`, at that level), and says why."""
    exception = find_exception(category, chain, exceptions)
    if exception is not None:
        decision = _route_exception(category, chain, unit_index, unit_types, exception, level)
        if decision is not None:
            return decision
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
    if exception is not None:  # the exception's unit does not exist: the manual's rule, said so
        exc_type = unit_types[exception.unit_type].name if exception.unit_type in unit_types else exception.unit_type
        head += f"（{exception.reason}，但未设{exc_type}，按指挥手册派遣）"
    parts = [f"{head}；案件位于{where}，派往{lead.name}"]
    if lead.level != target:
        parts.append(f"（{LEVEL_NAMES.get(target)}无{type_name}，上溯至{LEVEL_NAMES.get(lead.level)}）")
    assists: list[UnitRecord] = []
    if category.is_emergency:
        for t in category.assist_unit_types:
            ut = unit_types.get(t)
            if ut is None:
                continue
            u = find_unit(unit_index, chain, t, assist_level(ut, target))
            if u is not None and u.code != lead.code and u not in assists:
                assists.append(u)
        if assists:
            parts.append("；协同单位：" + "、".join(u.name for u in assists))
    upward = bool(category.is_emergency and (severity or 4) <= 2)
    if upward:
        parts.append("；重大及以上事件须向省级报告")
    return RouteDecision(lead.code, tuple(u.code for u in assists), lead.level, "".join(parts) + "。", upward)


def _route_exception(category: Category, chain: Sequence, unit_index: Mapping, unit_types: Mapping[str, UnitType],
                     exception: RouteException, level: int | None) -> RouteDecision | None:
    """The decision under ``exception``, or None when no unit of its type serves the case (the
    caller then routes by the manual and says so)."""
    # `level` is an escalation's (or a legacy import's starting) level: never below the exception's own
    target = exception.level if level is None else min(level, exception.level)
    lead = find_unit(unit_index, chain, exception.unit_type, target)
    if lead is None:
        return None
    type_name = unit_types[exception.unit_type].name if exception.unit_type in unit_types else exception.unit_type
    parts = [f"「{category.name}」按区域例外由{type_name}在{LEVEL_NAMES.get(target, target)}处置：{exception.reason}；"
             f"案件位于{_place(chain)}，派往{lead.name}"]
    if lead.level != target:
        parts.append(f"（{LEVEL_NAMES.get(target)}无{type_name}，上溯至{LEVEL_NAMES.get(lead.level)}）")
    return RouteDecision(lead.code, (), lead.level, "".join(parts) + "。")
