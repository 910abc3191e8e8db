"""The what-if simulator's rules as data: horizon, replications, history window, the changes a leader may ask.

Pure: data/files.py reads data/catalog/whatif.json and hands the parsed JSON to :meth:`WhatIfRules.from_data`, which
checks it and lists every defect at once (:class:`WhatIfRulesError`). :func:`check_changes` checks a leader's changes
against these rules and the city's codes, and answers every problem in Chinese.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from dispatch.errors import RulesFileError

__all__ = ["WhatIfRules", "WhatIfRulesError", "CHANGE_KINDS", "check_changes"]

CHANGE_KINDS = ("unit_capacity", "category_volume", "extra_reports")


class WhatIfRulesError(RulesFileError):
    TITLE = "推演规则文件有误"


@dataclass(frozen=True)
class Bounds:
    lo: float
    hi: float

    def holds(self, value) -> bool:
        return _number(value) and self.lo <= value <= self.hi


@dataclass(frozen=True)
class WhatIfRules:
    horizon_days: int
    replications: int
    history_days: int
    capacity_quantile: float       # a unit's day capacity: this quantile of its cases resolved per day of the type
    capacity_floor_per_day: float  # a unit that resolved nothing in the window is given this much a day
    dispatch_lag_hours: float      # report → at the unit (the center's 受理 + 派遣)
    time_budget_seconds: float
    seed: int
    max_changes: int
    labels: Mapping[str, str]
    unit_factor: Bounds
    category_factor: Bounds
    extra_count: Bounds
    sources: tuple[str, ...]

    @classmethod
    def from_data(cls, doc: Mapping[str, Any]) -> "WhatIfRules":
        problems: list[str] = []
        if not isinstance(doc, Mapping):
            raise WhatIfRulesError(["推演规则文件应为 JSON 对象"])

        def num(where: str, lo: float, hi: float, integer: bool = False, parent: Mapping | None = None) -> float:
            value = (doc if parent is None else parent).get(where.rsplit(".", 1)[-1])
            if not _number(value) or (integer and int(value) != value):
                problems.append(f"{where} 应为{'整数' if integer else '数字'}")
                return lo
            if not lo <= value <= hi:
                problems.append(f"{where} 应在 {lo:g} 到 {hi:g} 之间")
            return int(value) if integer else float(value)

        def bounds(where: str, part: Mapping, key: str) -> Bounds:
            b = part.get(key) if isinstance(part, Mapping) else None
            if not isinstance(b, Mapping):
                problems.append(f"{where}.{key} 应为 {{min, max}}")
                return Bounds(0, 0)
            lo, hi = num(f"{where}.{key}.min", 0, 1e6, parent=b), num(f"{where}.{key}.max", 0, 1e6, parent=b)
            if lo > hi:
                problems.append(f"{where}.{key} 的 min 不能大于 max")
            return Bounds(lo, hi)

        changes = doc.get("changes")
        if not isinstance(changes, Mapping):
            problems.append("changes 应为对象（变化类型: 边界）")
            changes = {}
        for kind in CHANGE_KINDS:
            if not isinstance(changes.get(kind), Mapping):
                problems.append(f"changes 缺少 {kind}")
        for kind in set(changes) - set(CHANGE_KINDS):
            problems.append(f"changes 中的 {kind} 不是可推演的变化（可用：{', '.join(CHANGE_KINDS)}）")
        part = {k: changes.get(k) if isinstance(changes.get(k), Mapping) else {} for k in CHANGE_KINDS}
        labels = {}
        for kind in CHANGE_KINDS:
            label = part[kind].get("label")
            if not isinstance(label, str) or not label:
                problems.append(f"changes.{kind}.label 应为中文名称")
            labels[kind] = label or kind
        sources = part["extra_reports"].get("sources")
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s for s in sources):
            problems.append("changes.extra_reports.sources 应为非空的来源列表")
            sources = []
        out = dict(
            horizon_days=num("horizon_days", 1, 31, integer=True),
            replications=num("replications", 1, 1000, integer=True),
            history_days=num("history_days", 7, 366, integer=True),
            capacity_quantile=num("capacity_quantile", 0.5, 1),
            capacity_floor_per_day=num("capacity_floor_per_day", 0, 1000),
            dispatch_lag_hours=num("dispatch_lag_hours", 0, 72),
            time_budget_seconds=num("time_budget_seconds", 1, 3600),
            seed=num("seed", 0, 2**31 - 1, integer=True),
            max_changes=num("max_changes", 1, 100, integer=True),
            labels=labels,
            unit_factor=bounds("changes.unit_capacity", part["unit_capacity"], "factor"),
            category_factor=bounds("changes.category_volume", part["category_volume"], "factor"),
            extra_count=bounds("changes.extra_reports", part["extra_reports"], "count"),
            sources=tuple(sources),
        )
        if problems:
            raise WhatIfRulesError(problems)
        return cls(**out)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _codes(value) -> list[str] | None:
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def check_changes(changes, rules: WhatIfRules, *, units: Iterable[str], categories: Mapping[str, str],
                  areas: Iterable[str]) -> tuple[list[dict], list[str]]:
    """(the changes normalised, every problem in Chinese). ``categories`` maps each category code to its kind
    (a change may name a category, a kind of cases, or a list of either); ``units`` and ``areas`` are the city's
    codes. The normalised category_volume names its categories as a sorted list under ``categories``."""
    problems: list[str] = []
    if not isinstance(changes, list) or not changes:
        return [], ["changes 应为非空列表，每项是一个变化（如 {\"kind\": \"unit_capacity\", \"unit\": \"…\", "
                    "\"factor\": 0.7}）"]
    if len(changes) > rules.max_changes:
        return [], [f"一次最多推演 {rules.max_changes} 项变化，收到 {len(changes)} 项"]
    units, areas = set(units), set(areas)
    kinds = set(categories.values())
    out: list[dict] = []
    for n, change in enumerate(changes, start=1):
        where = f"第 {n} 项变化"
        if not isinstance(change, Mapping):
            problems.append(f"{where}应为对象")
            continue
        kind = change.get("kind")
        if kind not in CHANGE_KINDS:
            problems.append(f"{where}的 kind 应为 {', '.join(CHANGE_KINDS)} 之一，收到 {str(kind)[:40]!r}")
            continue
        label = rules.labels[kind]
        allowed = {"kind", "unit", "factor"} if kind == "unit_capacity" else (
            {"kind", "category", "factor"} if kind == "category_volume" else {"kind", "area", "count", "source"})
        extra = sorted(str(k)[:40] for k in set(change) - allowed)
        if extra:
            problems.append(f"{where}（{label}）不认识的字段：{', '.join(extra)}")
        if kind in ("unit_capacity", "category_volume"):
            bounds = rules.unit_factor if kind == "unit_capacity" else rules.category_factor
            factor = change.get("factor")
            if not bounds.holds(factor):
                problems.append(f"{where}（{label}）的 factor 应为 {bounds.lo:g} 到 {bounds.hi:g} 之间的倍数"
                                f"（如 0.7 表示减少 30%），收到 {str(factor)[:40]!r}")
        if kind == "unit_capacity":
            unit = change.get("unit")
            if not isinstance(unit, str) or unit not in units:
                problems.append(f"{where}（{label}）：未知部门 {str(unit)[:60]!r}")
            else:
                out.append({"kind": kind, "unit": unit, "factor": float(change["factor"])})
        elif kind == "category_volume":
            codes = _codes(change.get("category"))
            if codes is None:
                problems.append(f"{where}（{label}）的 category 应为类别编码、案件大类（{', '.join(sorted(kinds))}）"
                                "或它们的列表")
                continue
            chosen: set[str] = set()
            for code in codes:
                if code in categories:
                    chosen.add(code)
                elif code in kinds:
                    chosen |= {c for c, k in categories.items() if k == code}
                else:
                    problems.append(f"{where}（{label}）：未知类别 {code[:60]!r}")
            if chosen and bounds.holds(change.get("factor")):
                out.append({"kind": kind, "category": change["category"], "categories": sorted(chosen),
                            "factor": float(change["factor"])})
        else:
            area, count, source = change.get("area"), change.get("count"), change.get("source")
            ok = True
            if not isinstance(area, str) or area not in areas:
                problems.append(f"{where}（{label}）：未知区域 {str(area)[:60]!r}")
                ok = False
            b = rules.extra_count
            if not rules.extra_count.holds(count) or int(count) != count:
                problems.append(f"{where}（{label}）的 count 应为 {b.lo:g} 到 {b.hi:g} 之间的整数，收到 "
                                f"{str(count)[:40]!r}")
                ok = False
            if source is not None and source not in rules.sources:
                problems.append(f"{where}（{label}）的 source 应为 {', '.join(rules.sources)} 之一，收到 "
                                f"{str(source)[:40]!r}")
                ok = False
            if ok:
                out.append({"kind": kind, "area": area, "count": int(count), "source": source})
    return (out if not problems else []), problems
