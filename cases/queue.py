"""What the duty officer's console (/console) reads: the case queue a page at a time, a case's detail, the
choices of its forms. Scoped exactly as CaseService.list (its scope_clauses); the rules stay in dispatch/."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from cases.service import NOT_OPEN, SOURCE_LABELS, SOURCES, CaseService, ServiceError
from data.models import Case, Unit
from data.tokens import Principal
from dispatch import lifecycle
from figures.period import is_overdue, not_overdue_now, overdue_now
from dispatch.catalog import KIND_NAMES_ZH, TIME_UNIT_NAMES_ZH, URGENCY_NAMES_ZH
from dispatch.routing import SEVERITY_NAMES
from geo.model import LEVEL_NAMES_ZH
from dispatch.city_time import CITY_TZ
from dispatch.limits import day_in_range, is_int64
from dispatch.working_time import clock_of

KINDS = tuple(KIND_NAMES_ZH)
# The clock stops at these; every other state of an accepted case can be overdue (docs/figures.md: a
# verified case is not closed yet, and the overdue filter and flag are figures.period's overdue_now).
_DONE = NOT_OPEN
# Sortable columns: each is served by an index (cases.id, ix_cases_reported, ix_cases_deadline,
# ix_cases_state), ties broken by id so that pages never overlap or skip. State, category, district,
# source and supervised lead indexes that continue with reported_at (migration 0005): the default order
# walks one of them and stops at the page; the other filters are checked on the walk.
SORTS = {"id": (Case.id,), "reported_at": (Case.reported_at, Case.id), "deadline": (Case.deadline_at, Case.id),
         "state": (Case.state, Case.reported_at, Case.id)}
MAX_BLOCK = 500
FRESH_SECONDS = 120  # a case reported this recently is marked new in the queue
SEVERITY_SHORT = {1: "Ⅰ级", 2: "Ⅱ级", 3: "Ⅲ级", 4: "Ⅳ级"}
SHORT_LEVELS = {1: "市级", 2: "区级", 3: "街道级", 4: "社区级", 5: "网格级"}


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters; empty means no filter. Built from the page's controls by from_form()."""

    states: tuple[str, ...] = ()
    kind: str | None = None
    category: str | None = None
    area: str | None = None
    source: str | None = None
    overdue: bool | None = None
    supervised: bool | None = None

    @classmethod
    def from_form(cls, states=None, kind=None, category=None, area=None, source=None, overdue=None,
                  supervised=None) -> "QueueFilters":
        """Reads the controls' values ("yes"/"no"/None for the two flags); 400 for unknown values."""
        states = tuple(s for s in (states or ()) if s)
        bad = [s for s in states if s not in lifecycle.STATES]
        if bad:
            raise ServiceError(400, "bad_request", f"未知状态 {', '.join(bad)}")
        if kind and kind not in KINDS:
            raise ServiceError(400, "bad_request", f"未知类型 {kind}")
        if source and source not in SOURCES:
            raise ServiceError(400, "bad_request", f"未知来源 {source}")
        return cls(states=states, kind=kind or None, category=category or None, area=area or None,
                   source=source or None, overdue=_flag(overdue), supervised=_flag(supervised))


def _flag(value) -> bool | None:
    if value in (None, "", "all"):
        return None
    if value in (True, "yes", "1", "true"):
        return True
    if value in (False, "no", "0", "false"):
        return False
    raise ServiceError(400, "bad_request", f"无法识别的筛选值 {value!r}")


def _local(dt: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    return dt.astimezone(CITY_TZ).strftime(fmt) if dt else ""


def _where(cases: CaseService, principal: Principal, f: QueueFilters, now: datetime, counting: bool = False) -> list:
    clauses = cases.scope_clauses(principal, f.area)
    if f.states:
        clauses.append(Case.state == f.states[0] if len(f.states) == 1 else Case.state.in_(f.states))
    if f.kind and counting:
        # Counted as its categories (a case's kind is its category's): ix_cases_category_reported answers
        # the count from the index alone. There is no kind index on purpose (see migration 0005).
        clauses.append(Case.category_code.in_(sorted(c.code for c in cases.catalog().values() if c.kind == f.kind)))
    elif f.kind:
        clauses.append(Case.kind == f.kind)  # the page walks the order's index and stops at the page
    if f.category:
        if f.category not in cases.catalog():
            raise ServiceError(400, "bad_request", f"未知的事件类别编码 {f.category}")
        clauses.append(Case.category_code == f.category)
    if f.source:
        clauses.append(Case.source == f.source)
    if f.overdue is True:  # few rows, found through the partial index of the accepted open cases
        clauses.append(overdue_now(now))
    elif f.overdue is False:
        clauses.append(not_overdue_now(now))
    if f.supervised is True:  # spelt as the partial index's predicate ("= 1" on SQLite), which must match
        clauses.append(Case.supervised)
    elif f.supervised is False:
        clauses.append(~Case.supervised)
    return clauses


def _order(sort_model) -> tuple[list, list]:
    """ORDER BY for AG Grid's sortModel ([{colId, sort}]), newest first by default; plus the extra WHERE a
    deadline order needs (cases with no deadline, merged duplicates, have no place in it, and leaving them
    out keeps the index usable on both databases, which put NULLs at opposite ends)."""
    item = next((s for s in (sort_model or []) if s.get("colId") in SORTS), None)
    if item is None:  # newest first: reported_at leads the composite indexes of the filters
        item = {"colId": "reported_at", "sort": "desc"}
    cols = SORTS[item["colId"]]
    desc = item.get("sort") == "desc"
    order = [c.desc() if desc else c.asc() for c in cols]
    extra = [Case.deadline_at.is_not(None)] if item["colId"] == "deadline" else []
    return order, extra


_ROW_COLUMNS = (Case.id, Case.state, Case.version, Case.category_code, Case.kind, Case.source, Case.grid_code,
                Case.unit_code, Case.severity, Case.supervised, Case.reported_at, Case.deadline_at, Case.time_unit,
                Case.reporter_count, Case.escalation_count, Case.description, Unit.name, Case.accepted_at,
                Case.rejected_at, Case.closed_at, Case.dispatched_at, Case.resumed_at, Case.supervision_level,
                Case.supervision_deadline, Case.urge_count)


def queue_page(cases: CaseService, principal: Principal, filters: QueueFilters, start: int = 0, end: int = 100,
               sort_model=None, count: bool = True, now: datetime | None = None) -> dict:
    """Rows [start, end) of the queue: `{"rows": [...], "total": N | None}`. One query per page (an index
    walk that stops at the page, unit names by primary key); `total` is a second, index-only count, made
    only when asked (the grid's first block)."""
    start = max(0, int(start or 0))
    end = max(start, min(int(end or start + 100), start + MAX_BLOCK))
    now = now or cases.clock()
    order, extra = _order(sort_model)
    where = _where(cases, principal, filters, now) + extra
    q = (select(*_ROW_COLUMNS).outerjoin(Unit, Unit.code == Case.unit_code).where(*where)
         .order_by(*order).offset(start).limit(end - start))
    with cases.db.session() as s:
        rows = s.execute(q).all()
        total = None
        if count:
            counted = _where(cases, principal, filters, now, counting=True) + extra
            total = s.scalar(select(func.count()).select_from(Case).where(*counted))
    return {"rows": [_row(cases, r, now) for r in rows], "total": total}


def clock_start(reported: datetime, dispatched: datetime | None, resumed: datetime | None) -> datetime:
    """Where the handling clock last started: 派遣 (the report before any), or 解挂 after it."""
    start = dispatched or reported
    return resumed if resumed is not None and resumed > start else start


def _row(cases: CaseService, r, now: datetime) -> dict:
    (cid, state, version, cat_code, kind, source, grid, unit_code, severity, supervised, reported, deadline,
     time_unit, reporters, escalations, description, unit_name, accepted, rejected, closed, dispatched, resumed,
     sup_level, sup_deadline, urges) = r
    cat = cases.catalog().get(cat_code)
    overdue = is_overdue(state, accepted, rejected, closed, deadline, now)
    sla = "overdue" if overdue else "none"
    if not overdue and deadline is not None and accepted is not None and closed is None and state not in _DONE \
            and state != "suspended":
        start = min(clock_start(reported, dispatched, resumed), deadline)
        sla = cases.calendar.sla_state(start, deadline, now, time_unit)[0]
        sla = "warning" if sla == "overdue" else sla  # the deadline's own instant: not late yet
    chain = {a.level: a.name for a in cases.areas.chain(grid)}
    fresh = (now - reported).total_seconds() < FRESH_SECONDS
    open_ = state not in _DONE
    sup_late = bool(supervised) and open_ and sup_deadline is not None and sup_deadline < now
    sup_flag = ""
    if supervised:
        sup_flag = f"{SHORT_LEVELS.get(sup_level, '')}督办" + ("逾期" if sup_late else "")
    urges = urges or 0
    flags = [f for f in ("新" if fresh else "", sup_flag, f"催办×{urges}" if urges else "",
                         SEVERITY_SHORT.get(severity, ""), f"升级{escalations}次" if escalations else "",
                         f"{reporters}人报" if reporters and reporters > 1 else "") if f]
    return {
        "id": cid, "rid": str(cid), "state": state, "state_label": lifecycle.STATE_LABELS.get(state, state), "version": version,
        "category": cat.name if cat else cat_code, "kind": kind, "kind_label": KIND_NAMES_ZH.get(kind, kind),
        "source": SOURCE_LABELS.get(source, source),
        "area": " · ".join(n for n in (chain.get(2), chain.get(3)) if n),
        "unit": unit_name or ("待人工派遣" if unit_code is None and state != "merged" else unit_code or ""),
        "severity": SEVERITY_NAMES.get(severity, "") if severity else "",
        "supervised": bool(supervised), "supervision_level": sup_level, "sup_late": sup_late,
        "urge_count": urges, "flags": " ".join(flags),
        "reported_at": _local(reported), "deadline": _local(deadline),
        "sla": sla, "overdue": overdue, "reporters": reporters, "escalations": escalations,
        "description": (description or "")[:80],
        "fresh": fresh,
    }


def _moment(iso, name: str) -> datetime:
    """An ISO time with its offset, within the days any input may name; otherwise a 400 (a page's
    store is the browser's: it may come back changed)."""
    try:
        moment = datetime.fromisoformat(iso) if isinstance(iso, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None or not day_in_range(moment):
        raise ServiceError(400, "bad_input", f"{name} 须为带时区的 ISO 时间")
    return moment


# ---- the detail --------------------------------------------------------------------------------------
def running_clock(case: dict) -> dict:
    """The clock the officer races now: the center's open stage (受理, 核实, 立案, 派遣, 核查, 结案 — each with
    its own limit) or else the unit's handling deadline (counted from 派遣): `{label, deadline, start, stage}`."""
    if case.get("state") not in _DONE:
        for st in case.get("stages") or []:
            if st.get("done_at") is None and not st.get("paused") and st.get("name") != "handle" and st.get("deadline"):
                return {"label": f"{st.get('label') or ''}时限", "deadline": st["deadline"], "start": st.get("started_at"),
                        "stage": True}
    return {"label": "处置时限", "deadline": case.get("deadline"), "start": clock_start_iso(case), "stage": False}


def countdown(cases: CaseService, deadline_iso: str | None, time_unit: str, state: str,
              reported_iso: str | None = None, now: datetime | None = None, overdue: bool | None = None,
              label: str = "处置时限") -> dict:
    out = _countdown(cases, deadline_iso, time_unit, state, reported_iso, now, overdue)
    out["label"] = label
    return out


def _countdown(cases: CaseService, deadline_iso: str | None, time_unit: str, state: str,
               reported_iso: str | None = None, now: datetime | None = None, overdue: bool | None = None) -> dict:
    """The deadline counted on the case's clock (working time, or calendar minutes for emergencies and
    the calendar-clock categories): what is left, or how late it is. state: normal | warning (80 % of the
    time used, counted from `reported_iso`: where the handling clock started, see clock_start_iso) |
    overdue | paused (挂账) | done | none."""
    if not deadline_iso:
        return {"state": "none", "text": "无处置时限", "deadline": ""}
    deadline = _moment(deadline_iso, "deadline")
    shown = deadline.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
    if state in _DONE:
        return {"state": "done", "text": "已办结，不再计时", "deadline": shown}
    if state == "suspended":
        return {"state": "paused", "text": "挂账中，处置计时暂停", "deadline": shown}
    now = now or cases.clock()
    try:
        unit = "minutes" if clock_of(time_unit) == "calendar" else "working_hours"
    except ValueError:
        raise ServiceError(400, "bad_input", f"time_unit 无效：{str(time_unit)[:40]!r}") from None
    cal = cases.calendar
    if overdue is False and now >= deadline:  # not accepted yet: its deadline passes, it is not overdue
        return {"state": "warning", "text": "已过处置时限（尚未立案，不计超期）", "deadline": shown}
    if now >= deadline:
        late = cal.working_time_between(deadline, now, unit)
        return {"state": "overdue", "text": f"已超期 {_amount(late, unit)}", "deadline": shown}
    left = cal.working_time_between(now, deadline, unit)
    sla = "normal"
    if reported_iso:
        sla = cal.sla_state(_moment(reported_iso, "reported_at"), deadline, now, time_unit)[0]
    return {"state": sla, "text": f"剩余 {_amount(left, unit)}", "deadline": shown}


def _amount(value: float, unit: str) -> str:
    if unit == "minutes":
        if value >= 120:
            return f"{value / 60:.1f} 小时"
        return f"{max(0, round(value))} 分钟"
    if value >= 7.5 * 2:
        return f"{value:.1f} {TIME_UNIT_NAMES_ZH['working_hours']}（约 {value / 7.5:.1f} {TIME_UNIT_NAMES_ZH['working_days']}）"
    return f"{value:.1f} {TIME_UNIT_NAMES_ZH['working_hours']}"


def clock_start_iso(case: dict) -> str | None:
    """clock_start of a case object (ISO times in, ISO out)."""
    reported, dispatched, resumed = (case.get(k) for k in ("reported_at", "dispatched_at", "resumed_at"))
    if not reported:
        return None
    start = dispatched or reported
    if resumed and datetime.fromisoformat(resumed) > datetime.fromisoformat(start):
        start = resumed
    return start


# Actions whose note may be given though the rule does not ask for one, and its label.
OPTIONAL_NOTES = {"dispatch": "派遣说明", "add_assist": "协办要求", "report_check": "核实情况", "callback": "回访记录",
                  "supervise": "督办要求"}
FORM_ACTIONS = ("report_check", "callback", "supervise")  # asked for in a form though no note is required


def action_spec(action: str, clock: str = "working", supervision_hours: float | None = None) -> dict:
    """What the console's form asks for `action` (from the lifecycle's rule): `unit` (a unit picker),
    `hours` (required | optional | None) with its label, `note` (required | optional | None) with its label,
    `choices` (the 核实 result or the 回访 satisfaction: [{label, value}]) with its label, and `form`
    (False: the button acts at once). `clock`: the case's (working or calendar)."""
    rule = lifecycle.RULES[action]
    word = "小时" if clock == "calendar" else "工作时"
    hours, hours_label = None, ""
    if rule.needs_hours:
        hours, hours_label = "required", f"延期时长（{word}）"
    elif action == "supervise":
        default = f"，默认 {supervision_hours:g}" if supervision_hours else ""
        hours, hours_label = "optional", f"督办时限（{word}，选填{default}）"
    note, note_label = None, ""
    if rule.needs_note:
        note, note_label = "required", rule.note_label
    elif action in OPTIONAL_NOTES:
        note, note_label = "optional", f"{OPTIONAL_NOTES[action]}（选填）"
    choices, choices_label, choices_name = [], "", None
    if action == "report_check":
        choices = [{"label": v, "value": k} for k, v in lifecycle.CHECK_RESULTS.items()]
        choices_label, choices_name = "核实结果", "result"
    elif action == "callback":
        choices = [{"label": v, "value": k} for k, v in lifecycle.SATISFACTION.items()]
        choices_label, choices_name = "回访结果", "satisfaction"
    unit_label = {"dispatch": "处置单位", "reassign": "改派给", "add_assist": "协办单位"}.get(action, "单位")
    form = bool(rule.takes_unit or hours or rule.needs_note or choices or action in FORM_ACTIONS)
    return {"action": action, "label": rule.label, "form": form, "unit": rule.takes_unit, "unit_label": unit_label,
            "hours": hours, "hours_label": hours_label, "note": note, "note_label": note_label,
            "choices": choices, "choices_label": choices_label, "choices_name": choices_name,
            # kept for the pages and tests that read the rule's own words
            "needs_note": rule.needs_note, "needs_hours": rule.needs_hours, "takes_unit": rule.takes_unit}


def case_detail(cases: CaseService, case_id: int, principal: Principal, now: datetime | None = None) -> dict:
    """Everything the detail panel shows: the case as the API returns it, its category's criteria, the
    countdown, the actions the officer may take (with what each asks for: action_spec), the units each
    unit picker offers (unit_choices), photos."""
    case = cases.get(case_id, principal)
    now = now or cases.clock()
    cat = cases.catalog().get(case["category"]["code"])
    clock = running_clock(case)
    tick = countdown(cases, clock["deadline"], case["time_unit"], case["state"], clock["start"], now,
                     overdue=None if clock["stage"] else case["overdue"], label=clock["label"])
    sup_hours = cases.rules.supervision_deadline_hours.get(case.get("clock") or "working")
    actions = [action_spec(code, case.get("clock") or "working", sup_hours)
               for code in cases.allowed_actions(case_id, principal)]
    return {
        "case": case,
        "category": None if cat is None else {
            "name": cat.name, "major_class": cat.major_class, "kind": KIND_NAMES_ZH.get(cat.kind, cat.kind),
            "filing": cat.filing_criterion, "closing": cat.closing_criterion, "time_limit": cat.time_limit_text,
            "urgency": URGENCY_NAMES_ZH.get(cat.urgency, cat.urgency),
            "stages": [f"{s.name} {s.time_limit} {TIME_UNIT_NAMES_ZH.get(s.time_unit, s.time_unit)}" for s in cat.stages],
        },
        "countdown": tick,
        "clock": clock,
        "actions": actions,
        "level": lifecycle.LEVEL_LABELS.get(case["handling_level"], ""),
        "source": SOURCE_LABELS.get(case["source"], case["source"]),
        "photos": photos(cases, case_id),
    }


def photos(cases: CaseService, case_id: int) -> list[dict]:
    """The case's photos from cases/photos.py, or none while that module does not exist."""
    try:
        from cases.photos import list_photos
    except ImportError:
        return []
    try:
        return list(list_photos(cases.db, case_id))
    except Exception:  # noqa: BLE001 - a photo store problem must not take the case detail down
        import logging

        logging.getLogger("ucc.console").exception("photos of case %s", case_id)
        return []


def unit_choices(cases: CaseService, case: dict, actions) -> dict:
    """For each of `actions` that names a unit (派遣, 改派, 增加协办): `{options, value}` of its picker. The
    units are those serving the case's area (dispatch_units: what the service accepts), nearest first;
    派遣 preselects the routed unit, 改派 leaves out the unit that has the case and those assisting (the
    service refuses them), 协办 the lead and the units already assisting."""
    wanted = [a for a in actions if lifecycle.RULES[a].takes_unit]
    if not wanted:
        return {}
    units = dispatch_units(cases, case)
    lead = (case.get("unit") or {}).get("code")
    assisting = {(a.get("unit") or {}).get("code") for a in case.get("assists") or []}
    out = {}
    for action in wanted:
        if action in ("reassign", "add_assist"):
            out[action] = {"options": [u for u in units if u["value"] != lead and u["value"] not in assisting],
                           "value": None}
        else:
            out[action] = {"options": units, "value": lead}
    return out


def dispatch_units(cases: CaseService, case: dict) -> list[dict]:
    """Units an officer may dispatch the case to: every unit of the areas on its chain (grid → city),
    nearest level first, the routed unit first of all."""
    codes = [a["code"] for a in case["chain"]]
    with cases.db.session() as s:
        rows = s.execute(select(Unit.code, Unit.name, Unit.level).where(Unit.area_code.in_(codes),
                                                                         Unit.active.is_(True))
                         .order_by(Unit.level.desc(), Unit.code)).all()
    current = (case.get("unit") or {}).get("code")
    out = [{"label": f"{name}（{lifecycle.LEVEL_LABELS.get(level, '')}）", "value": code} for code, name, level in rows]
    out.sort(key=lambda o: o["value"] != current)
    return out


def case_areas(cases: CaseService, case: dict) -> list:
    """The AreaRecords of the case's street and grid, for the detail map."""
    out = []
    for a in case["chain"]:
        if a["level"] in (3, 5):
            rec = cases.areas.get(a["code"])
            if rec is not None:
                out.append(rec)
    return out


# ---- choices of the page's controls --------------------------------------------------------------------
def category_options(cases: CaseService) -> list[dict]:
    """The catalog as searchable dropdown options: name, major class, kind and time limit in the label."""
    out = []
    for c in cases.catalog().values():
        out.append({"label": f"{c.name} · {c.major_class} · {KIND_NAMES_ZH.get(c.kind, c.kind)} · {c.time_limit_text}",
                    "value": c.code, "search": f"{c.code} {c.name} {c.major_class}"})
    return out


def area_options(cases: CaseService, principal: Principal) -> list[dict]:
    """The areas a principal may narrow the queue to: its own area and, below it, districts and streets
    (and communities for a street officer)."""
    own = cases.areas.get(principal.area_code) if principal.role != "admin" else None
    records = cases.areas.records(max_level=4)
    if own is None and principal.role == "admin":
        own = next((r for r in records if r.level == 1), None)
    if own is None:
        return []
    deepest = max(3, min(4, own.level + 1))
    out = []
    for r in sorted(records, key=lambda r: r.code):
        if r.level > deepest or (r.level <= own.level and r.code != own.code):
            continue
        if r.code != own.code and own.code not in {a.code for a in cases.areas.chain(r.code)}:
            continue
        indent = "　" * max(0, r.level - own.level)
        out.append({"label": f"{indent}{r.name}（{LEVEL_NAMES_ZH[r.level]}）", "value": r.code,
                    "search": f"{r.name} {r.code}"})
    return out


def state_options() -> list[dict]:
    return [{"label": lifecycle.STATE_LABELS[s], "value": s} for s in lifecycle.STATES]


def kind_options() -> list[dict]:
    return [{"label": KIND_NAMES_ZH[k], "value": k} for k in KINDS]


def source_options() -> list[dict]:
    return [{"label": SOURCE_LABELS[s], "value": s} for s in SOURCES]


# ---- 督办件: what is under supervision, for a leader -----------------------------------------------------------
SUPERVISED_LIMIT = 200


def supervised_cases(cases: CaseService, principal: Principal, now: datetime | None = None,
                     limit: int = SUPERVISED_LIMIT) -> dict:
    """The open cases under 督办 that `principal` may see — for a leader, those supervised at their level or
    below (a district leader: the district's, streets' … 督办, not the city's); for a duty officer or an
    admin, every one in their area (they follow each up) — the supervision deadline that passed first,
    then the nearest: `{items, total, late, level, level_label, scope_label}`. Each item: id, category,
    area, unit, state_label, level (督办 level) and level_label, own (made at the principal's own level),
    deadline, late, by (系统自动 or who), urge_count, overdue (the handling deadline passed)."""
    from data.models import CaseSupervision

    now = now or cases.clock()
    area = cases.areas.get(principal.area_code) if principal.area_code else None
    level = area.level if area is not None and principal.role != "admin" else 1
    where = cases.scope_clauses(principal) + [Case.supervised, Case.state.in_(lifecycle.OPEN_STATES)]
    if principal.role == "leader":
        where.append(func.coalesce(Case.supervision_level, 5) >= level)
        scope_label = f"{lifecycle.LEVEL_LABELS.get(level, '')}及以下督办"
    else:
        scope_label = "辖区内全部督办"
    cols = (Case.id, Case.state, Case.category_code, Case.grid_code, Case.unit_code, Unit.name,
            Case.supervision_level, Case.supervision_deadline, Case.urge_count, Case.deadline_at,
            Case.accepted_at, Case.rejected_at, Case.closed_at)
    late_first = (Case.supervision_deadline.is_(None) | (Case.supervision_deadline >= now))
    with cases.db.session() as s:
        total = s.scalar(select(func.count()).select_from(Case).where(*where)) or 0
        late = s.scalar(select(func.count()).select_from(Case).where(
            *where, Case.supervision_deadline < now)) or 0
        rows = s.execute(select(*cols).outerjoin(Unit, Unit.code == Case.unit_code).where(*where)
                         .order_by(late_first, Case.supervision_deadline.asc().nulls_last(), Case.id).limit(limit)).all()
        ids = [r[0] for r in rows]
        by: dict[int, str] = {}
        if ids:
            for cid, actor, automatic in s.execute(
                    select(CaseSupervision.case_id, CaseSupervision.actor, CaseSupervision.automatic)
                    .where(CaseSupervision.case_id.in_(ids), CaseSupervision.kind == "supervise")
                    .order_by(CaseSupervision.id)):
                by[cid] = "系统自动" if automatic else actor.partition(":")[2] or actor
    items = []
    for (cid, state, cat_code, grid, unit_code, unit_name, sup_level, sup_deadline, urges, deadline, accepted,
         rejected, closed) in rows:
        cat = cases.catalog().get(cat_code)
        chain = {a.level: a.name for a in cases.areas.chain(grid)}
        items.append({
            "id": cid, "state": state, "state_label": lifecycle.STATE_LABELS.get(state, state),
            "category": cat.name if cat else cat_code,
            "area": " · ".join(n for n in (chain.get(2), chain.get(3)) if n),
            "unit": unit_name or unit_code or "—",
            "level": sup_level, "level_label": f"{SHORT_LEVELS.get(sup_level, '')}督办",
            "own": sup_level == level,
            "deadline": _local(sup_deadline), "late": sup_deadline is not None and sup_deadline < now,
            "by": by.get(cid, ""), "urge_count": urges or 0,
            "overdue": is_overdue(state, accepted, rejected, closed, deadline, now),
        })
    return {"items": items, "total": total, "late": late, "level": level,
            "level_label": lifecycle.LEVEL_LABELS.get(level, ""), "scope_label": scope_label}


def head_seq(cases: CaseService) -> int | None:
    """The newest outbox seq: the live stream is followed from here (nothing committed after the page
    was built is missed)."""
    from data.models import CaseEvent

    with cases.db.session() as s:
        return s.scalar(select(func.max(CaseEvent.seq)))


def find_case(cases: CaseService, principal: Principal, text: str) -> int:
    """The case a search box names ("1234" or "#1234"), if the principal may see it; else a ServiceError."""
    raw = (text or "").strip().lstrip("#＃")
    try:
        case_id = int(raw) if raw.isdigit() else None  # full-width digits count; "²" is no number
    except ValueError:
        case_id = None
    if case_id is None:
        raise ServiceError(400, "bad_request", "请输入案件编号（数字）")
    if not is_int64(case_id):
        raise ServiceError(404, "not_found", f"案件 #{raw} 不存在")
    with cases.db.session() as s:
        cases.visible_case(s, case_id, principal)
    return case_id


__all__ = ["QueueFilters", "queue_page", "case_detail", "countdown", "dispatch_units", "case_areas",
           "category_options", "area_options", "state_options", "kind_options", "source_options", "head_seq",
           "find_case", "photos", "SORTS", "action_spec", "running_clock", "unit_choices", "supervised_cases", "clock_start_iso",
           "SHORT_LEVELS"]
