"""How a city scores its assessment (督办考核) as data: weights, the 立案数 bands, grades, ranks.

Pure Python. :meth:`AssessmentRules.from_data` checks a parsed ``data/catalog/assessment.json`` and
reports every problem at once (:class:`AssessmentRulesError`); :data:`DEFAULT_RULES` are the contract's
defaults (CONTRACT.md, section Assessment). A composite score is ``constant + Σ weight × rate`` over the
item's rates (a null rate counts as 0), so "10 × (1 − rework_rate)" is written as constant 10 and weight −10.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from dispatch.errors import RulesFileError

__all__ = ["AssessmentRules", "AssessmentRulesError", "Scoring", "DEFAULT_RULES", "KINDS"]

#: What is scored: areas (区域评价), units (部门评价) and the two posts (岗位评价).
KINDS = ("area", "unit", "grid_member", "duty_officer")


class AssessmentRulesError(RulesFileError):
    TITLE = "考核规则文件有误"


@dataclass(frozen=True)
class Scoring:
    """One kind's score: ``constant + Σ weights[rate] × rate``; ties broken by ``tie_break``."""

    weights: tuple[tuple[str, float], ...]
    constant: float
    tie_break: str

    def score(self, item: Mapping[str, Any]) -> float:
        return self.constant + sum(w * (item.get(name) or 0.0) for name, w in self.weights)


@dataclass(frozen=True)
class AssessmentRules:
    scoring: Mapping[str, Scoring]
    accepted_bands: tuple[tuple[str, float, float], ...]  # ("max" | "below", limit, score), in order
    accepted_otherwise: float
    grades: tuple[tuple[float, str], ...]                  # (min score, grade), highest first
    grade_otherwise: str

    def accepted_score(self, per_grid: float | None) -> float | None:
        """立案数分值 of the accepted cases per grid and 30 days: the first band that holds it."""
        if per_grid is None:
            return None
        for kind, limit, score in self.accepted_bands:
            if (per_grid <= limit) if kind == "max" else (per_grid < limit):
                return score
        return self.accepted_otherwise

    def grade(self, score: float | None) -> str | None:
        if score is None:
            return None
        for least, grade in self.grades:
            if score >= least - 1e-9:  # 90 computed as 89.99999999999999 is still an A
                return grade
        return self.grade_otherwise

    def rank(self, items: list[dict], kind: str) -> None:
        """Sets each item's ``rank``: score descending, then the kind's tie-break rate descending (null
        after every rate), then code; null scores last and unranked (rank None). Items are sorted in that
        order, in place."""
        tie = self.scoring[kind].tie_break
        items.sort(key=lambda i: (i["score"] is None, -(i["score"] or 0.0), i.get(tie) is None, -(i.get(tie) or 0.0),
                                  str(i["code"])))
        for n, item in enumerate(items, start=1):
            item["rank"] = n if item["score"] is not None else None

    @classmethod
    def from_data(cls, doc: Mapping[str, Any]) -> "AssessmentRules":
        problems: list[str] = []

        def number(value, where: str, *, lo: float | None = None) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"{where} 应为数字")
                return 0.0
            if lo is not None and value < lo:
                problems.append(f"{where} 不能小于 {lo:g}")
            return float(value)

        if not isinstance(doc, Mapping):
            raise AssessmentRulesError(["考核规则文件应为 JSON 对象"])
        scoring: dict[str, Scoring] = {}
        for kind in KINDS:
            part = doc.get(kind)
            if not isinstance(part, Mapping):
                problems.append(f"缺少 {kind} 的评分规则")
                continue
            weights = part.get("weights")
            if not isinstance(weights, Mapping) or not weights:
                problems.append(f"{kind}.weights 应为非空对象（指标: 权重）")
                weights = {}
            pairs = tuple((str(k), number(v, f"{kind}.weights.{k}")) for k, v in weights.items())
            tie = part.get("tie_break")
            if not isinstance(tie, str) or not tie:
                problems.append(f"{kind}.tie_break 应为指标名")
                tie = ""
            scoring[kind] = Scoring(pairs, number(part.get("constant", 0), f"{kind}.constant"), tie)
        area = doc.get("area") if isinstance(doc.get("area"), Mapping) else {}
        bands = []
        last = -math.inf
        for n, band in enumerate(area.get("accepted_bands") or [], start=1):
            where = f"area.accepted_bands 第 {n} 档"
            if not isinstance(band, Mapping) or len({"max", "below"} & set(band)) != 1:
                problems.append(f"{where} 应有 max 或 below 之一和 score")
                continue
            kind = "max" if "max" in band else "below"
            limit = number(band[kind], f"{where}.{kind}", lo=0)
            if limit < last:
                problems.append(f"{where} 的上限应不小于上一档")
            last = limit
            bands.append((kind, limit, number(band.get("score"), f"{where}.score", lo=0)))
        if not bands:
            problems.append("area.accepted_bands 应至少有一档")
        grades = []
        for n, g in enumerate(doc.get("grades") or [], start=1):
            if not isinstance(g, Mapping) or not isinstance(g.get("grade"), str) or not g.get("grade"):
                problems.append(f"grades 第 {n} 项应有 min 和 grade")
                continue
            grades.append((number(g.get("min"), f"grades 第 {n} 项 min"), g["grade"]))
        if [m for m, _ in grades] != sorted((m for m, _ in grades), reverse=True):
            problems.append("grades 应按 min 从高到低排列")
        otherwise = doc.get("grade_otherwise")
        if not isinstance(otherwise, str) or not otherwise:
            problems.append("grade_otherwise 应为等级名")
        if problems:
            raise AssessmentRulesError(problems)
        return cls(scoring=scoring, accepted_bands=tuple(bands),
                   accepted_otherwise=number(area.get("accepted_otherwise", 0), "area.accepted_otherwise", lo=0),
                   grades=tuple(grades), grade_otherwise=otherwise)


DEFAULT_RULES = AssessmentRules.from_data({
    "area": {"weights": {"patrol_share": 10, "accepted_score": 20, "closure_rate": 30, "on_time_rate": 40},
             "accepted_bands": [{"max": 0, "score": 1.0}, {"below": 3, "score": 0.9}, {"below": 5, "score": 0.75},
                                {"below": 7, "score": 0.6}, {"below": 9, "score": 0.4}],
             "accepted_otherwise": 0.0, "tie_break": "on_time_rate"},
    "unit": {"weights": {"on_time_handling_rate": 60, "handling_rate": 30, "rework_rate": -10}, "constant": 10,
             "tie_break": "on_time_handling_rate"},
    "grid_member": {"weights": {"valid_rate": 40, "missed_rate": -20, "on_time_site_check_rate": 20,
                                "on_time_review_rate": 20}, "constant": 20, "tie_break": "on_time_check_rate"},
    "duty_officer": {"weights": {"on_time_accept_rate": 25, "on_time_dispatch_rate": 25, "accurate_accept_rate": 25,
                                 "accurate_dispatch_rate": 25}, "tie_break": "on_time_accept_rate"},
    "grades": [{"min": 90, "grade": "A"}, {"min": 75, "grade": "B"}, {"min": 60, "grade": "C"},
               {"min": 40, "grade": "D"}],
    "grade_otherwise": "E",
})
