"""The command center's rules as data: its stage limits, the automatic 催办/督办 and the penalty points.

Pure Python. :meth:`CenterRules.from_data` checks a parsed ``data/catalog/center_rules.json`` and
reports every problem at once (:class:`CenterRulesError`); :data:`DEFAULT_RULES` are the shipped
defaults for code that runs without the file (tests of the pure core).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from dispatch.errors import RulesFileError

__all__ = ["CenterRules", "CenterRulesError", "DEFAULT_RULES", "Reminder", "STAGES", "StageLimit"]

# The stages of a case, in order: the center's (受理, 核实, 立案, 派遣, 核查, 结案) and the unit's
# handling (处置), whose limit is the category's own.
STAGES = ("accept", "check", "file", "dispatch", "handle", "review", "close")
STAGE_LABELS = {"accept": "受理", "check": "核实", "file": "立案", "dispatch": "派遣", "handle": "处置",
                "review": "核查", "close": "结案"}
REMINDER_KINDS = ("urge", "supervise")
REMINDER_TRIGGERS = ("warning", "deadline")
PENALTY_ACTS = ("urge", "supervise", "reopen")
CLOCKS = ("working", "calendar")


class CenterRulesError(RulesFileError):
    TITLE = "指挥中心规则文件有误"


@dataclass(frozen=True)
class StageLimit:
    name: str
    label: str
    limit_hours: float | None     # None: the category's handling limit (处置)


@dataclass(frozen=True)
class Reminder:
    """One automatic reminder: ``kind`` urge (催办) or supervise (督办), sent when the handling
    clock reaches ``at`` (its warning, 80 %, or its deadline); a 督办 is made ``levels_up`` levels
    above the handling level (never above the city)."""

    id: str
    kind: str
    at: str
    note: str
    levels_up: int = 1


@dataclass(frozen=True)
class CenterRules:
    stages: tuple[StageLimit, ...]
    reminders: tuple[Reminder, ...]
    supervision_deadline_hours: Mapping[str, float]
    penalties: Mapping[str, float]

    def stage(self, name: str) -> StageLimit:
        return next(s for s in self.stages if s.name == name)

    def penalty(self, act: str) -> float:
        return float(self.penalties.get(act, 0.0))

    @classmethod
    def from_data(cls, doc: Mapping[str, Any]) -> "CenterRules":
        bad: list[str] = []
        if not isinstance(doc, Mapping):
            raise CenterRulesError(["规则文件须为 JSON 对象"])
        stages = []
        seen = set()
        for i, row in enumerate(doc.get("stages") or []):
            name = row.get("name") if isinstance(row, Mapping) else None
            if name not in STAGES:
                bad.append(f"第 {i + 1} 个阶段“{name}”未知（应为 {', '.join(STAGES)}）")
                continue
            if name in seen:
                bad.append(f"阶段“{name}”重复")
            seen.add(name)
            limit = row.get("limit_hours")
            if name == "handle":
                if limit is not None:
                    bad.append("处置阶段的时限取自事件类别，limit_hours 须为 null")
            elif not _positive(limit):
                bad.append(f"阶段“{name}”的时限 limit_hours 须为大于 0 的数字，不能是 {limit!r}")
                continue
            stages.append(StageLimit(name, str(row.get("label") or STAGE_LABELS[name]),
                                     None if limit is None else float(limit)))
        missing = [s for s in STAGES if s not in seen]
        if missing:
            bad.append("缺少阶段：" + "、".join(missing))
        reminders = []
        for i, row in enumerate(doc.get("reminders") or []):
            if not isinstance(row, Mapping):
                bad.append(f"第 {i + 1} 条提醒规则须为对象")
                continue
            rid, kind, at = row.get("id"), row.get("kind"), row.get("at")
            if not isinstance(rid, str) or not rid or len(rid) > 40:
                bad.append(f"第 {i + 1} 条提醒规则须有 id（1–40 字符）")
            if kind not in REMINDER_KINDS:
                bad.append(f"提醒规则“{rid}”的 kind 须为 urge 或 supervise，不能是 {kind!r}")
            if at not in REMINDER_TRIGGERS:
                bad.append(f"提醒规则“{rid}”的 at 须为 warning 或 deadline，不能是 {at!r}")
            up = row.get("levels_up", 1)
            if not isinstance(up, int) or isinstance(up, bool) or not 0 <= up <= 4:
                bad.append(f"提醒规则“{rid}”的 levels_up 须为 0–4 的整数")
                up = 1
            reminders.append(Reminder(str(rid), str(kind), str(at), str(row.get("note") or ""), up))
        ids = [r.id for r in reminders]
        if len(set(ids)) != len(ids):
            bad.append("提醒规则的 id 重复")
        for at in REMINDER_TRIGGERS:
            if sum(r.at == at for r in reminders) > 1:
                bad.append(f"同一时点（{at}）只能有一条提醒规则")
        sdh = doc.get("supervision_deadline_hours") or {}
        for clock in CLOCKS:
            if not _positive(sdh.get(clock)):
                bad.append(f"supervision_deadline_hours.{clock} 须为大于 0 的数字")
        pen = doc.get("penalties") or {}
        for act, points in pen.items():
            if act not in PENALTY_ACTS:
                bad.append(f"扣分规则“{act}”未知（应为 {', '.join(PENALTY_ACTS)}）")
            elif not isinstance(points, (int, float)) or isinstance(points, bool) or not math.isfinite(points) \
                    or not 0 <= points <= 100:
                bad.append(f"扣分规则“{act}”的分值须为 0–100 的数字")
        if bad:
            raise CenterRulesError(bad)
        order = {n: i for i, n in enumerate(STAGES)}
        return cls(stages=tuple(sorted(stages, key=lambda s: order[s.name])), reminders=tuple(reminders),
                   supervision_deadline_hours={c: float(sdh[c]) for c in CLOCKS},
                   penalties={a: float(p) for a, p in pen.items()})


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


DEFAULT_RULES = CenterRules.from_data({
    "stages": [{"name": "accept", "limit_hours": 0.5}, {"name": "check", "limit_hours": 1},
               {"name": "file", "limit_hours": 0.5}, {"name": "dispatch", "limit_hours": 0.5},
               {"name": "handle", "limit_hours": None}, {"name": "review", "limit_hours": 1},
               {"name": "close", "limit_hours": 1}],
    "reminders": [{"id": "urge_at_warning", "kind": "urge", "at": "warning", "note": "处置时限已过 80%，系统自动催办"},
                  {"id": "supervise_at_deadline", "kind": "supervise", "at": "deadline", "levels_up": 1,
                   "note": "已超过处置时限，系统自动督办"}],
    "supervision_deadline_hours": {"working": 7.5, "calendar": 24},
    "penalties": {"urge": 0.5, "supervise": 2, "reopen": 2},
})
