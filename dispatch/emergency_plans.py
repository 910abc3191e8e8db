"""Emergency plans (预案) as data, and the rules of a response under one: levels, who commands, the units' tasks, the
checklist and the information reports' deadlines (issue 17, docs/emergency.md).

Pure: data/files.py reads data/catalog/emergency_plans.json (or an administrator's edited plan from the database)
and hands the parsed JSON to :func:`plans_from_data`, which checks it and lists every defect at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Sequence

from dispatch.errors import RulesFileError
from dispatch.routing import LEVEL_NAMES, SEVERITY_NAMES, assist_level
from dispatch.units import UnitRecord, find_unit

LEVELS = (1, 2, 3, 4)  # event levels: 1 特别重大 … 4 一般
EVENT_LEVEL_NAMES = SEVERITY_NAMES
REPORT_KINDS = {"first": "首报", "update": "续报", "final": "终报", "upward": "向省级报告"}
RESOURCE_TYPES = {"team": "救援队伍", "warehouse": "物资仓库", "equipment": "装备车辆", "shelter": "避难场所"}
# the actions on an emergency case's response (POST /events/ID/actions), and the resources' (emergency/resources.py)
RESPONSE_ACTION_LABELS = {"activate_plan": "启动预案", "change_level": "调整响应等级", "acknowledge": "签收联动任务",
                          "check_item": "完成处置措施", "report": "报送信息", "end_response": "结束应急响应",
                          "allocate_resource": "调配资源", "release_resource": "归还资源"}
RESPONSE_ACTIONS = ("activate_plan", "change_level", "acknowledge", "check_item", "report", "end_response")
# who commands a response: these roles, scoped to an area at or above the commanding level
COMMAND_ROLES = ("admin", "duty_officer", "leader")


class PlanFileError(RulesFileError):
    TITLE = "应急预案文件有误"


@dataclass(frozen=True)
class ReportDeadlines:
    first_minutes: float   # 首报: after the plan's activation (the event's confirmation)
    update_hours: float    # 续报: after the last report, while the response lasts
    final_hours: float     # 终报: after the handling is done (the case resolved)

    def to_dict(self) -> dict:
        return {"first_minutes": self.first_minutes, "update_hours": self.update_hours,
                "final_hours": self.final_hours}


@dataclass(frozen=True)
class ResourceNeed:
    type: str
    specialty: str | None = None
    item: str | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {"type": self.type, "type_label": RESOURCE_TYPES[self.type], "specialty": self.specialty,
                "item": self.item, "note": self.note}


@dataclass(frozen=True)
class PlanLevel:
    """What a plan says of one event level: its criteria and the response it starts."""

    level: int
    criteria: str
    response_name: str
    commanding_level: int            # an area level: 1 city, 2 district
    upward_report: bool              # reported to the province (levels II and I)
    acknowledge_minutes: float       # each unit's time to acknowledge its task
    lead_unit_type: str | None       # None: the category's own (the general plan)
    assist_unit_types: tuple[str, ...] | None
    checklist: tuple[str, ...]       # this level's actions and every lower level's
    resources: tuple[ResourceNeed, ...]

    def to_dict(self) -> dict:
        return {"level": self.level, "level_label": EVENT_LEVEL_NAMES[self.level], "criteria": self.criteria,
                "response_name": self.response_name, "commanding_level": self.commanding_level,
                "commanding_level_label": LEVEL_NAMES.get(self.commanding_level), "upward_report": self.upward_report,
                "acknowledge_minutes": self.acknowledge_minutes, "lead_unit_type": self.lead_unit_type,
                "assist_unit_types": list(self.assist_unit_types) if self.assist_unit_types is not None else None,
                "checklist": list(self.checklist), "resources": [r.to_dict() for r in self.resources]}


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    categories: tuple[str, ...]
    general: bool                    # the plan for emergency categories no other plan names
    levels: Mapping[int, PlanLevel]
    deadlines: ReportDeadlines
    raw: dict = field(compare=False, repr=False)  # as written (what an administrator edits)

    def level(self, n: int) -> PlanLevel:
        return self.levels[n]

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "categories": list(self.categories), "general": self.general,
                "report_deadlines": self.deadlines.to_dict(),
                "levels": [self.levels[n].to_dict() for n in LEVELS]}


@dataclass(frozen=True)
class Plans:
    by_code: Mapping[str, Plan]
    sources: tuple[str, ...] = ()

    def for_category(self, category_code: str) -> Plan | None:
        """The plan naming the category, else the general plan (None when neither exists)."""
        general = None
        for p in self.by_code.values():
            if category_code in p.categories:
                return p
            if p.general:
                general = p
        return general

    def get(self, code: str) -> Plan | None:
        return self.by_code.get(code)


# ---- reading and checking --------------------------------------------------------------------
def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _text(v, limit: int = 200) -> bool:
    return isinstance(v, str) and 0 < len(v.strip()) <= limit


def _deadlines(raw, where: str, problems: list[str], default: ReportDeadlines | None) -> ReportDeadlines | None:
    if raw is None:
        if default is None:
            problems.append(f"{where}：缺少 report_deadlines")
        return default
    if not isinstance(raw, dict):
        problems.append(f"{where}：report_deadlines 须为对象")
        return default
    base = default.to_dict() if default else {}
    merged = {**base, **raw}
    bad = [k for k in ("first_minutes", "update_hours", "final_hours") if not _num(merged.get(k))]
    unknown = sorted(set(raw) - {"first_minutes", "update_hours", "final_hours"})
    if unknown:
        problems.append(f"{where}：report_deadlines 含未知项 {', '.join(unknown)}")
    if bad:
        problems.append(f"{where}：report_deadlines 的 {', '.join(bad)} 须为正数")
        return default
    return ReportDeadlines(float(merged["first_minutes"]), float(merged["update_hours"]), float(merged["final_hours"]))


def _by_level(raw, where: str, name: str, problems: list[str], need_all: bool) -> dict[int, object]:
    if not isinstance(raw, dict):
        problems.append(f"{where}：{name} 须为按等级（\"1\"–\"4\"）的对象")
        return {}
    out = {}
    for k, v in raw.items():
        if k not in ("1", "2", "3", "4"):
            problems.append(f"{where}：{name} 的等级 {k!r} 无效（应为 1–4）")
            continue
        out[int(k)] = v
    missing = [n for n in LEVELS if n not in out]
    if need_all and missing:
        problems.append(f"{where}：{name} 缺少等级 {', '.join(map(str, missing))}")
    return out


def _unit_types(raw, where: str, what: str, unit_type_codes, problems: list[str]) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        problems.append(f"{where}：{what} 须为单位类型代码的列表")
        return ()
    unknown = [t for t in raw if unit_type_codes is not None and t not in unit_type_codes]
    if unknown:
        problems.append(f"{where}：{what} 含未知单位类型 {', '.join(unknown)}")
    return tuple(t for t in raw if t not in unknown)


def _resources(raw, where: str, problems: list[str]) -> list[ResourceNeed]:
    if not isinstance(raw, list):
        problems.append(f"{where}：须为资源需求的列表")
        return []
    out = []
    for i, r in enumerate(raw, 1):
        if not isinstance(r, dict) or r.get("type") not in RESOURCE_TYPES:
            problems.append(f"{where} 第 {i} 项：type 须为 {', '.join(RESOURCE_TYPES)} 之一")
            continue
        for key in ("specialty", "item"):
            if r.get(key) is not None and not _text(r[key], 100):
                problems.append(f"{where} 第 {i} 项：{key} 须为不超过 100 字的文字")
        out.append(ResourceNeed(r["type"], r.get("specialty"), r.get("item"), str(r.get("note") or "")))
    return out


def plan_from_data(raw, defaults: Mapping[int, dict], deadlines: ReportDeadlines | None, problems: list[str],
                   category_codes=None, unit_type_codes=None) -> Plan | None:
    """One plan (as the file or an administrator writes it), checked; its defects appended to `problems`."""
    if not isinstance(raw, dict):
        problems.append("预案须为对象")
        return None
    code = raw.get("code")
    where = f"预案 {code}" if isinstance(code, str) else "预案"
    before = len(problems)
    if not isinstance(code, str) or not code.replace("_", "").isalnum() or not code.isascii() or len(code) > 40:
        problems.append(f"{where}：code 须为不超过 40 位的字母、数字或下划线")
    if not _text(raw.get("name"), 100):
        problems.append(f"{where}：name 须为不超过 100 字的名称")
    general = raw.get("general", False) is True
    cats = raw.get("categories", [])
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        problems.append(f"{where}：categories 须为类别代码的列表")
        cats = []
    if category_codes is not None:
        wrong = [c for c in cats if c not in category_codes]
        if wrong:
            problems.append(f"{where}：categories 含非应急类别或未知类别 {', '.join(wrong)}")
    if not general and not cats:
        problems.append(f"{where}：须列出适用的应急类别（或标为 general 总体预案）")
    lead = raw.get("lead_unit_type")
    if lead is None and not general:
        problems.append(f"{where}：须指定牵头单位类型 lead_unit_type")
    if lead is not None and (not isinstance(lead, str) or (unit_type_codes is not None and lead not in unit_type_codes)):
        problems.append(f"{where}：lead_unit_type {lead!r} 不是已知的单位类型")
    assists = _unit_types(raw.get("assist_unit_types"), where, "assist_unit_types", unit_type_codes, problems)
    criteria = _by_level(raw.get("criteria"), where, "criteria", problems, need_all=True)
    for n, text in criteria.items():
        if not _text(text, 500):
            problems.append(f"{where}：第 {n} 级的分级标准 criteria 须为不超过 500 字的文字")
    lists = _by_level(raw.get("checklist", {}), where, "checklist", problems, need_all=False)
    for n, items in lists.items():
        if not isinstance(items, list) or not items or not all(_text(i) for i in items):
            problems.append(f"{where}：第 {n} 级的 checklist 须为非空的文字列表（每项不超过 200 字）")
            lists[n] = []
    needs = {n: _resources(v, f"{where} 第 {n} 级 resources", problems)
             for n, v in _by_level(raw.get("resources", {}), where, "resources", problems, need_all=False).items()}
    overrides = _by_level(raw.get("levels", {}), where, "levels", problems, need_all=False)
    plan_deadlines = _deadlines(raw.get("report_deadlines"), where, problems, deadlines)
    unknown = sorted(set(raw) - {"code", "name", "categories", "general", "lead_unit_type", "assist_unit_types",
                                 "criteria", "checklist", "resources", "levels", "report_deadlines", "source", "_comment"})
    if unknown:
        problems.append(f"{where}：含未知项 {', '.join(unknown)}")
    levels: dict[int, PlanLevel] = {}
    for n in LEVELS:
        response = {**defaults.get(n, {}), **(overrides.get(n) or {})}
        if not _text(response.get("response_name"), 40):
            problems.append(f"{where}：第 {n} 级缺少响应名称 response_name")
        if response.get("commanding_level") not in (1, 2):
            problems.append(f"{where}：第 {n} 级的 commanding_level 须为 1（市级）或 2（区级）")
        if not isinstance(response.get("upward_report"), bool):
            problems.append(f"{where}：第 {n} 级的 upward_report 须为 true 或 false")
        if not _num(response.get("acknowledge_minutes")):
            problems.append(f"{where}：第 {n} 级的 acknowledge_minutes 须为正数")
        if len(problems) > before:
            continue
        # a level carries its own actions and every lower level's (IV's first): a III response does IV's too
        checklist = tuple(i for m in sorted(LEVELS, reverse=True) if m >= n for i in lists.get(m, []))
        resources = tuple(r for m in sorted(LEVELS, reverse=True) if m >= n for r in needs.get(m, []))
        levels[n] = PlanLevel(n, criteria[n].strip(), response["response_name"], response["commanding_level"],
                              response["upward_report"], float(response["acknowledge_minutes"]), lead, assists,
                              tuple(dict.fromkeys(checklist)), resources)
    if len(problems) > before:
        return None
    return Plan(code, raw["name"].strip(), tuple(cats), general, levels, plan_deadlines, raw)


def plans_from_data(data, category_codes=None, unit_type_codes=None, edited: Iterable[dict] = ()) -> Plans:
    """The city's plans from the parsed file, with the administrator's edited plans (`edited`, the same shape)
    in place of the file's of the same code. `category_codes`: the emergency categories; `unit_type_codes`: the
    unit types. Raises PlanFileError listing every defect."""
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("plans"), list):
        raise PlanFileError(["文件须为含 plans 列表的对象"])
    deadlines = _deadlines(data.get("report_deadlines"), "文件", problems, None)
    defaults = {n: v for n, v in _by_level(data.get("levels"), "文件", "levels", problems, need_all=True).items()
                if isinstance(v, dict)}
    raws = {p.get("code") if isinstance(p, dict) else i: p for i, p in enumerate(data["plans"])}
    if len(raws) != len(data["plans"]):
        problems.append("文件：预案代码 code 重复")
    for p in edited:
        raws[p.get("code")] = p
    by_code: dict[str, Plan] = {}
    for raw in raws.values():
        plan = plan_from_data(raw, defaults, deadlines, problems, category_codes, unit_type_codes)
        if plan is not None:
            by_code[plan.code] = plan
    claimed: dict[str, str] = {}
    for raw in raws.values():  # as written: a plan refused for another defect still claims its categories
        cats = raw.get("categories") if isinstance(raw, dict) else None
        for c in cats if isinstance(cats, list) else ():
            if isinstance(c, str) and c in claimed:
                problems.append(f"类别 {c} 同时属于预案 {claimed[c]} 和 {raw.get('code')}")
            claimed[c] = raw.get("code")
    if sum(isinstance(r, dict) and r.get("general") is True for r in raws.values()) > 1:
        problems.append("只能有一个总体预案（general）")
    if problems:
        raise PlanFileError(problems)
    return Plans(by_code, tuple(data.get("_sources") or ()))


# ---- the rules of a response ---------------------------------------------------------------------
def may_command(role: str, area_level: int | None, commanding_level: int) -> bool:
    """Whether someone of `role` scoped to an area of `area_level` may command a response at `commanding_level`:
    a commanding role whose area is at that level or above (a district officer commands a level IV response in
    the district; a city-level response needs the city's)."""
    return role in COMMAND_ROLES and area_level is not None and area_level <= commanding_level


@dataclass(frozen=True)
class TaskPlan:
    unit_code: str
    role: str  # lead | assist


def task_units(level: PlanLevel, category_unit_type: str, category_assists: Sequence[str], chain: Sequence,
               unit_index: Mapping, unit_types: Mapping) -> list[TaskPlan]:
    """The units a response at `level` tasks for an event located at `chain` (grid → city): the lead type's unit
    at the commanding level (or the nearest above), then each assisting type's at the level it serves nearest
    the lead's — as routing finds an emergency's joint units (dispatch.routing)."""
    lead_type = level.lead_unit_type or category_unit_type
    assist_types = level.assist_unit_types if level.assist_unit_types is not None else tuple(category_assists)
    out: list[TaskPlan] = []
    lead = find_unit(unit_index, chain, lead_type, level.commanding_level) if lead_type in unit_types else None
    lead_level = lead.level if lead is not None else level.commanding_level
    if lead is not None:
        out.append(TaskPlan(lead.code, "lead"))
    for t in assist_types:
        ut = unit_types.get(t)
        if ut is None:
            continue
        u: UnitRecord | None = find_unit(unit_index, chain, t, assist_level(ut, lead_level))
        if u is not None and all(u.code != x.unit_code for x in out):
            out.append(TaskPlan(u.code, "assist"))
    return out


@dataclass(frozen=True)
class ReportDue:
    kind: str
    due_at: datetime | None
    filed_at: datetime | None
    overdue: bool     # filed late, or due and not filed by now

    def to_dict(self, iso) -> dict:
        return {"kind": self.kind, "kind_label": REPORT_KINDS[self.kind], "due_at": iso(self.due_at),
                "filed_at": iso(self.filed_at), "overdue": self.overdue}


def next_report(deadlines: ReportDeadlines, activated_at: datetime, filed: Sequence[tuple[str, datetime]],
                handling_done_at: datetime | None, ended: bool, now: datetime) -> ReportDue | None:
    """The next information report the response owes, with its deadline (None when none is owed):
    首报 within `first_minutes` of the activation; once it is filed, a 续报 every `update_hours` after the latest
    report while the response lasts; once the handling is done (the case resolved), the 终报 within `final_hours`
    of it. After the 终报, nothing more."""
    kinds = [k for k, _ in filed]
    if ended or "final" in kinds:
        return None
    if "first" not in kinds:
        due = activated_at + timedelta(minutes=deadlines.first_minutes)
        return ReportDue("first", due, None, now > due)
    if handling_done_at is not None:
        due = handling_done_at + timedelta(hours=deadlines.final_hours)
        return ReportDue("final", due, None, now > due)
    last = max(at for k, at in filed if k in ("first", "update"))
    due = last + timedelta(hours=deadlines.update_hours)
    return ReportDue("update", due, None, now > due)


def report_due_for(kind: str, deadlines: ReportDeadlines, activated_at: datetime,
                   filed: Sequence[tuple[str, datetime]], handling_done_at: datetime | None,
                   now: datetime) -> datetime | None:
    """The deadline a report of `kind` filed now answers (kept on its row, so a late one stays late)."""
    owed = next_report(deadlines, activated_at, filed, handling_done_at, False, now)
    if owed is not None and owed.kind == kind:
        return owed.due_at
    if kind == "final" and handling_done_at is not None:
        return handling_done_at + timedelta(hours=deadlines.final_hours)
    return None


def check_report_order(kind: str, filed_kinds: Sequence[str]) -> str | None:
    """Why a report of `kind` may not be filed now (a Chinese message), or None."""
    if kind not in ("first", "update", "final"):
        return f"报告类型 {kind} 无效（first 首报、update 续报、final 终报）"
    if "final" in filed_kinds:
        return "终报已报送，不能再报"
    if kind == "first" and "first" in filed_kinds:
        return "首报已报送，请报续报或终报"
    if kind in ("update", "final") and "first" not in filed_kinds:
        return f"须先报送首报，才能报{REPORT_KINDS[kind]}"
    return None


def upward_text(plan: Plan, level: PlanLevel, what: str, where: str, when: str) -> str:
    """The upward report's text to the province for a level II or I event (edited by nobody: it is a record)."""
    return (f"【{EVENT_LEVEL_NAMES[level.level]}突发事件报告】{when}，{where}发生{what}。"
            f"已启动《{plan.name}》{level.response_name}，由{LEVEL_NAMES[level.commanding_level]}统一指挥处置，"
            f"现按规定向省级报告，后续情况将及时续报。")
