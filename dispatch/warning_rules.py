"""The early warnings' rules as data: hotspot windows, weights and correction, recurring spots, who is told, the
专项整治 case's category (data/catalog/warning_rules.json, docs/foresight.md).

Pure: data/files.py reads the file and hands the parsed JSON to :func:`warning_rules_from_data`, which checks it
and lists every defect at once (:class:`WarningRulesError`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from dispatch.errors import RulesFileError

# the levels a warning's duty officers may sit at (area levels of the hierarchy)
NOTIFY_LEVELS = {"city": 1, "district": 2, "street": 3, "community": 4}
WARNING_KINDS = ("surge", "hotspot", "recurrent")
WEIGHTS = ("queen", "rook")


class WarningRulesError(RulesFileError):
    TITLE = "预警规则文件有误"


@dataclass(frozen=True)
class HotspotRules:
    windows_days: tuple[int, ...]   # each window ends at the start of the local day of the run
    weights: str                    # queen | rook contiguity of the grid polygons
    island_neighbours: int          # k nearest (by centre) for a grid with no contiguous neighbour
    permutations: int               # 0: the analytical z (normal) p value; else the permutation pseudo p
    fdr_alpha: float                # Benjamini–Hochberg over all the grids of a window
    min_cases: int                  # a cluster with fewer cases in the window is no warning
    min_cluster_grids: int
    max_clusters: int               # per window, the hottest (by the cluster's highest z)


@dataclass(frozen=True)
class RecurrentRules:
    radius_m: float
    min_repeats: int
    period_days: int
    max_spots: int


@dataclass(frozen=True)
class WarningRules:
    hotspots: HotspotRules
    recurrent: RecurrentRules
    notify: dict[str, int]          # kind → the area level whose duty officers are told
    campaign_category: str
    campaign_max_cases_named: int
    sources: tuple[str, ...] = ()


def _int(raw: dict, key: str, where: str, problems: list[str], low: int, high: int) -> int:
    v = raw.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        problems.append(f"{where}.{key} 须为 {low} 到 {high} 之间的整数（现为 {v!r}）")
        return low
    return v


def _float(raw: dict, key: str, where: str, problems: list[str], low: float, high: float) -> float:
    v = raw.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not low < v <= high:
        problems.append(f"{where}.{key} 须为大于 {low:g}、不超过 {high:g} 的数（现为 {v!r}）")
        return high
    return float(v)


def _section(data: dict, key: str, problems: list[str]) -> dict:
    raw = data.get(key)
    if not isinstance(raw, dict):
        problems.append(f"缺少对象 {key}")
        return {}
    return raw


def warning_rules_from_data(data, category_codes=None) -> WarningRules:
    """The rules from the parsed file; `category_codes`: the catalog's codes (the campaign category must be one).
    Raises WarningRulesError listing every defect."""
    if not isinstance(data, dict):
        raise WarningRulesError(["文件须为 JSON 对象"])
    problems: list[str] = []
    h = _section(data, "hotspots", problems)
    windows = h.get("windows_days")
    if not isinstance(windows, list) or not windows or not all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 366 for d in windows):
        problems.append(f"hotspots.windows_days 须为 1 到 366 天的整数列表（现为 {windows!r}）")
        windows = [7]
    elif len(set(windows)) != len(windows):
        problems.append("hotspots.windows_days 有重复的天数")
    weights = h.get("weights")
    if weights not in WEIGHTS:
        problems.append(f"hotspots.weights 须为 {' 或 '.join(WEIGHTS)}（现为 {weights!r}）")
    hotspots = HotspotRules(
        windows_days=tuple(windows), weights=weights if weights in WEIGHTS else "queen",
        island_neighbours=_int(h, "island_neighbours", "hotspots", problems, 1, 20),
        permutations=_int(h, "permutations", "hotspots", problems, 0, 99999),
        fdr_alpha=_float(h, "fdr_alpha", "hotspots", problems, 0.0, 0.5),
        min_cases=_int(h, "min_cases", "hotspots", problems, 1, 1_000_000),
        min_cluster_grids=_int(h, "min_cluster_grids", "hotspots", problems, 1, 1000),
        max_clusters=_int(h, "max_clusters", "hotspots", problems, 1, 1000))
    r = _section(data, "recurrent", problems)
    recurrent = RecurrentRules(radius_m=_float(r, "radius_m", "recurrent", problems, 0.0, 5000.0),
                               min_repeats=_int(r, "min_repeats", "recurrent", problems, 2, 100_000),
                               period_days=_int(r, "period_days", "recurrent", problems, 1, 366),
                               max_spots=_int(r, "max_spots", "recurrent", problems, 1, 100_000))
    n = _section(data, "notify", problems)
    notify = {}
    for kind in WARNING_KINDS:
        level = n.get(kind)
        if level not in NOTIFY_LEVELS:
            problems.append(f"notify.{kind} 须为 {'、'.join(NOTIFY_LEVELS)} 之一（现为 {level!r}）")
        else:
            notify[kind] = NOTIFY_LEVELS[level]
    for kind in set(n) - set(WARNING_KINDS):
        problems.append(f"notify 中有未知的预警类型 {kind}")
    c = _section(data, "campaign", problems)
    category = c.get("category")
    if not isinstance(category, str) or not category:
        problems.append("campaign.category 须为事件类别编码")
    elif category_codes is not None and category not in category_codes:
        problems.append(f"campaign.category {category} 不在事件类别目录中")
    max_named = _int(c, "max_cases_named", "campaign", problems, 1, 500)
    if problems:
        raise WarningRulesError(problems)
    return WarningRules(hotspots, recurrent, notify, category, max_named, tuple(data.get("_sources") or ()))
