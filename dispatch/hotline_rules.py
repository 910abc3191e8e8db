"""The 12345 exchange's rules as the city's data says: the push's retry schedule, which steps are pushed and in what
words, what a 不满意 callback does, and the hotline's class names → our categories.

Pure: data/files.py reads data/catalog/hotline.json and hotline_categories.json and hands them here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from dispatch.catalog import Category
from dispatch.errors import RulesFileError
from dispatch.lifecycle import ACTIONS, SATISFACTION, STATES

UNSATISFIED_POLICIES = ("reopen", "record")
# the steps of a case that are not lifecycle actions but are part of its story (cases.service._INTAKE_LABELS)
_INTAKE_STEPS = ("report", "merge")


class HotlineRulesError(RulesFileError):
    TITLE = "12345 对接规则文件有误"


@dataclass(frozen=True)
class PushSchedule:
    """When a failed push is tried again: attempt n (1-based) waits first_delay · factor^(n−1), capped; a delivery
    is dead after max_attempts failures or once older than max_age_hours."""

    first_delay_seconds: float = 30.0
    factor: float = 2.0
    max_delay_seconds: float = 3600.0
    max_attempts: int = 12
    max_age_hours: float = 48.0
    timeout_seconds: float = 10.0
    round_seconds: float = 5.0
    batch: int = 50
    lease_seconds: float = 120.0

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt (1 → first_delay)."""
        return min(self.max_delay_seconds, self.first_delay_seconds * self.factor ** max(0, failures - 1))


@dataclass(frozen=True)
class HotlineRules:
    push: PushSchedule
    pushed_actions: frozenset[str]
    status_words: Mapping[str, str]
    unsatisfied: str

    def pushes(self, action: str, from_state: str | None, to_state: str) -> bool:
        """Whether a step of a 12345 case is pushed: every change of state, and the listed actions."""
        return from_state != to_state or action in self.pushed_actions

    def status_word(self, state: str) -> str:
        return self.status_words.get(state, state)


def hotline_rules_from_data(doc: Any) -> HotlineRules:
    """Checked rules (every defect listed at once)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise HotlineRulesError(["文件须为 JSON 对象"])
    raw = doc.get("push") or {}
    values: dict[str, float] = {}
    defaults = PushSchedule()
    for name in PushSchedule.__dataclass_fields__:
        v = raw.get(name, getattr(defaults, name))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            problems.append(f"push.{name} 须为正数，收到 {v!r}")
            continue
        values[name] = v
    if values.get("factor", 2) < 1:
        problems.append("push.factor 须不小于 1（退避间隔不能越来越短）")
    for name in ("max_attempts", "batch"):
        if name in values and int(values[name]) != values[name]:
            problems.append(f"push.{name} 须为整数")
    pushed = doc.get("pushed_actions") or []
    known = set(ACTIONS) | set(_INTAKE_STEPS)
    for a in pushed:
        if a not in known:
            problems.append(f"pushed_actions 中的 {a!r} 不是已知的动作")
    words = doc.get("status_words") or {}
    for s in words:
        if s not in STATES:
            problems.append(f"status_words 中的 {s!r} 不是已知的案件状态")
    unsatisfied = doc.get("unsatisfied", "reopen")
    if unsatisfied not in UNSATISFIED_POLICIES:
        problems.append(f"unsatisfied 须为 {' 或 '.join(UNSATISFIED_POLICIES)}，收到 {unsatisfied!r}")
    if problems:
        raise HotlineRulesError(problems)
    schedule = PushSchedule(**{k: (int(v) if k in ("max_attempts", "batch") else float(v)) for k, v in values.items()})
    return HotlineRules(schedule, frozenset(pushed), dict(words), unsatisfied)


# ---- the hotline's class names → our categories ---------------------------------------------------------------
@dataclass(frozen=True)
class CategoryMatch:
    category: Category
    how: str  # code | name | class | keyword | content


class HotlineCategories:
    """What a ticket's category_hint (or, without one, its content) names in our catalog. See data/catalog/
    hotline_categories.json's _about for the order of the matches."""

    def __init__(self, classes: Mapping[str, str], catalog: Mapping[str, Category]):
        self.classes = dict(classes)
        self.catalog = catalog
        self._by_name = {c.name: c for c in catalog.values()}
        # the keyword table: our names and the hotline's class names, longest first (a longer name is the more
        # specific one: 人行道破损 before 道路破损), then by text, so the answer never depends on dict order
        words = [(name, cat) for name, cat in self._by_name.items()]
        words += [(name, catalog[code]) for name, code in self.classes.items()]
        self._keywords = sorted(words, key=lambda w: (-len(w[0]), w[0]))

    def match(self, hint: str | None, content: str = "") -> CategoryMatch | None:
        hint = "".join((hint or "").split())
        if hint:
            if hint in self.catalog:
                return CategoryMatch(self.catalog[hint], "code")
            if hint in self._by_name:
                return CategoryMatch(self._by_name[hint], "name")
            levels = [hint] + [p for p in reversed(hint.replace("\\", "/").replace(">", "/").split("/")) if p]
            for level in levels:
                if level in self.classes:
                    return CategoryMatch(self.catalog[self.classes[level]], "class")
                if level in self._by_name:
                    return CategoryMatch(self._by_name[level], "name")
            found = self._keyword(hint)
            return CategoryMatch(found, "keyword") if found is not None else None
        found = self._keyword("".join((content or "").split()))
        return CategoryMatch(found, "content") if found is not None else None

    def _keyword(self, text: str) -> Category | None:
        if not text:
            return None
        return next((cat for word, cat in self._keywords if len(word) >= 2 and word in text), None)


def hotline_categories_from_data(doc: Any, catalog: Mapping[str, Category]) -> HotlineCategories:
    """Checked class map: every code must be in the catalog."""
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), dict):
        raise HotlineRulesError(["12345 分类对照表须有 classes 对象（分类名 → 类别编码）"])
    problems = [f"classes 中「{name}」对应的类别编码 {code!r} 不在类别目录中"
                for name, code in doc["classes"].items() if code not in catalog]
    if problems:
        raise HotlineRulesError(problems)
    return HotlineCategories(doc["classes"], catalog)


def satisfaction_of(word: str | None) -> str | None:
    """The callback's satisfaction as our code, from the code or its Chinese word; None when neither."""
    if not isinstance(word, str):
        return None
    word = word.strip()
    if word in SATISFACTION:
        return word
    return next((code for code, label in SATISFACTION.items() if label == word), None)
