"""The city's vital-sign indicators as data: code, Chinese name, unit, wall panel, cockpit theme, valid range, freshness.

Pure (no files, no database): data/files.py reads data/catalog/city_indicators.json and hands the parsed JSON
to :func:`indicator_catalog_from_data`, which checks every entry and raises :class:`IndicatorCatalogError`
listing every problem at once (docs/indicators.md). Not the plan's key indicators (figures/plan_indicators.py):
those are yearly targets; these are time series read every few minutes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dispatch.errors import RulesFileError

# the wall's thematic panels the feed fills (layouts/wall.py PANELS), in their order
PANELS = {"safety": "公共安全", "traffic": "交通出行", "utilities": "公用事业", "economy": "民生经济"}
# the cockpit's themes an indicator may be shown on (figures/cockpit.py THEMES, without the overview)
COCKPIT_THEMES = ("city", "emergency", "environment", "traffic", "public", "economy")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_FRESH_S = 31 * 24 * 3600


class IndicatorCatalogError(RulesFileError):
    TITLE = "城市体征指标目录有误"


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator of the feed: what it is, where it is shown, which values are credible, how fresh it must be."""

    code: str
    name: str
    unit: str
    panel: str
    theme: str
    low: float
    high: float
    fresh_s: int
    decimals: int = 1

    def valid(self, value) -> bool:
        return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
                and self.low <= value <= self.high)


@dataclass(frozen=True)
class IndicatorCatalog:
    indicators: dict[str, IndicatorSpec]
    demo_source_prefix: str

    def get(self, code: str) -> IndicatorSpec | None:
        return self.indicators.get(code)

    def of_panel(self, panel: str) -> list[IndicatorSpec]:
        return [s for s in self.indicators.values() if s.panel == panel]

    def of_theme(self, theme: str) -> list[IndicatorSpec]:
        """The indicators of a cockpit theme; the overview ("overview" or None) shows them all."""
        return [s for s in self.indicators.values() if theme in (None, "overview") or s.theme == theme]

    def is_demo(self, source: str | None) -> bool:
        return bool(source) and source.startswith(self.demo_source_prefix)


def indicator_catalog_from_data(data) -> IndicatorCatalog:
    """The catalog of the parsed JSON file, every entry checked (IndicatorCatalogError lists all problems)."""
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("indicators"), list):
        raise IndicatorCatalogError(["文件应为 {\"indicators\": [...]} 形式的 JSON 对象"])
    prefix = data.get("demo_source_prefix", "demo/")
    if not isinstance(prefix, str) or not prefix:
        problems.append("demo_source_prefix 应为非空字符串")
    out: dict[str, IndicatorSpec] = {}
    for i, item in enumerate(data["indicators"], start=1):
        where = f"第 {i} 项"
        if not isinstance(item, dict):
            problems.append(f"{where}应为 JSON 对象")
            continue
        code = item.get("code")
        if not isinstance(code, str) or not _CODE.match(code):
            problems.append(f"{where}：code 应为小写字母开头的 1–40 位字母、数字或下划线")
            continue
        where = f"指标 {code}"
        if code in out:
            problems.append(f"{where}重复")
            continue
        name, unit = item.get("name"), item.get("unit", "")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}：缺少中文名称 name")
        if not isinstance(unit, str) or len(unit) > 20:
            problems.append(f"{where}：unit 应为至多 20 字的字符串（无单位写空字符串）")
        panel, theme = item.get("panel"), item.get("theme")
        if panel not in PANELS:
            problems.append(f"{where}：panel 应为 {'、'.join(PANELS)} 之一")
        if theme not in COCKPIT_THEMES:
            problems.append(f"{where}：theme 应为 {'、'.join(COCKPIT_THEMES)} 之一")
        rng = item.get("range")
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                              and math.isfinite(x) for x in rng) and rng[0] < rng[1]):
            problems.append(f"{where}：range 应为 [下限, 上限] 两个数且下限小于上限")
            rng = [0, 1]
        fresh = item.get("fresh_s")
        if isinstance(fresh, bool) or not isinstance(fresh, int) or not 1 <= fresh <= MAX_FRESH_S:
            problems.append(f"{where}：fresh_s（多久以内算新鲜，秒）应为 1 到 {MAX_FRESH_S} 之间的整数")
            fresh = 1
        decimals = item.get("decimals", 1)
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 4:
            problems.append(f"{where}：decimals 应为 0 到 4 之间的整数")
            decimals = 1
        out[code] = IndicatorSpec(code, str(name or ""), str(unit or ""), str(panel), str(theme), float(rng[0]),
                                  float(rng[1]), fresh, decimals)
    if problems:
        raise IndicatorCatalogError(problems)
    return IndicatorCatalog(out, prefix)
