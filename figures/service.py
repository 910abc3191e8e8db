"""The one place the wall, cockpit, console, API and CLI read figures from (docs/figures.md lists them)."""
from __future__ import annotations

# Every figure is computed in the database (figures/period.py, figures/rollup.py, figures/cockpit.py)
# exactly as figures/definitions.py writes it down; this module adds the scope of who asks and the
# shape the edges answer with. `cases` is the app's CaseService (db, area directory, catalog, clock):
# its scope rule is the read rule of the whole product, so the figures of a principal are over the
# cases that principal may see.
import re
from datetime import date, datetime, timedelta

from sqlalchemy import String, cast, or_

from data.models import Case
from data.tokens import Principal
from dispatch.errors import ServiceError
from dispatch.limits import EARLIEST_DAY, LATEST_DAY, day_in_range  # the days any input may name
from figures import cockpit, period, rollup, wall
from figures.definitions import GROUP_BY, period_bounds
from figures.period import is_overdue, overdue_now

__all__ = ["FigureError", "kpis", "overdue_now", "is_overdue", "scope_filters", "wall_snapshot",
           "cockpit_snapshot", "cockpit_navigation", "month_figures", "assessment", "monthly_ranking",
           "penalty_cases", "month_bounds", "assessment_levels", "with_previous"]

# The pages' reads, under the names the edges use (figures computed where the data is).
wall_snapshot = wall.snapshot
cockpit_snapshot = cockpit.cached_snapshot
cockpit_navigation = cockpit.cached_navigation
month_figures = rollup.month_figures


class FigureError(ServiceError):
    """Bad parameters of a figure request: a 400 with this Chinese message; nothing was read."""

    def __init__(self, message: str):
        super().__init__(400, "bad_request", message)


def scope_filters(cases, principal: Principal | None) -> list:
    """What `principal` may see (CaseService.can_see: the area, and a handler's unit) as filters that
    no index serves: a figure's rows come from its time ranges, then these are checked on them."""
    if principal is None or principal.role == "admin":
        return []
    out = []
    area = cases.areas.get(principal.area_code)
    if area is None:
        raise FigureError(f"区域 {principal.area_code} 不存在")
    clause = cockpit.area_clause(area, indexed=False)
    if clause is not None:
        out.append(clause)
    if principal.role == "unit_handler":
        unit = principal.unit_code or ""
        out.append(or_(period.unindexed(Case.unit_code) == unit,
                       cast(Case.assist_units, String).contains(f'"{unit}"', autoescape=True)))
    return out


def kpis(cases, start: date, end: date, by: str | None = None, principal: Principal | None = None,
         now: datetime | None = None) -> dict:
    """The `kpi` command's and GET /kpis's figures: the period's KPIs (end inclusive, Asia/Shanghai
    days), in total and, with `by` (district, unit, category), per group (those with a case counting in
    some figure; the group None last: cases not routed to a unit), each group with its name."""
    _period_days(start, end)
    if by not in (None, *GROUP_BY):
        raise FigureError("by 须为 district、unit 或 category")
    where = scope_filters(cases, principal)
    S, E = period_bounds(start, end)
    now = now or cases.clock()
    with cases.db.session() as s:
        figures = period.kpi_figures(s, S, E, now, by, where, codes=_own_district(cases, principal, by))
    out = {"start": start.isoformat(), "end": end.isoformat(), **figures["total"].to_dict()}
    if by:
        out["by"] = by
        out["groups"] = [{"key": k, "name": _group_name(cases, by, k), **v.to_dict()}
                         for k, v in figures["groups"].items()]
    return out


def _own_district(cases, principal: Principal | None, by: str | None) -> list[str] | None:
    """The one district whose ranges of the district-led indexes hold a principal's cases, when its area
    lies in one (a case's district_code is its grid's district, as every writer sets it); else None."""
    if principal is None or principal.role == "admin" or by == "category":
        return None
    chain = cases.areas.chain(principal.area_code)
    return [a.code for a in chain if a.level == 2] or None


def _group_name(cases, by: str, key: str | None) -> str | None:
    if key is None:
        return None
    if by == "district":
        a = cases.areas.get(key)
        return a.name if a else key
    if by == "unit":
        return cases.unit_name(key)
    c = cases.catalog().get(key)
    return c.name if c else key


# ---- the assessment (督办考核): CONTRACT.md section Assessment, docs/assessment.md ----------------------
ASSESSMENT_ROLES = ("admin", "leader", "duty_officer", "unit_handler")


def _period_days(start: date, end: date) -> None:
    if not isinstance(start, date) or not isinstance(end, date):
        raise FigureError("开始和结束日期须为 YYYY-MM-DD")
    if end < start:
        raise FigureError("结束日期早于开始日期")
    if not (day_in_range(start) and day_in_range(end)):
        # past these the UTC bounds overflow datetime (a 500); no city has cases there
        raise FigureError(f"日期须在 {EARLIEST_DAY} 到 {LATEST_DAY} 之间")


def _within(cases, code: str | None, principal: Principal | None) -> bool:
    """An item of area `code` is the principal's to see: in its area (admin: everything)."""
    if principal is None or principal.role == "admin":
        return True
    if code is None:
        return False
    return any(a.code == principal.area_code for a in cases.areas.chain(code))


def assessment(cases, start: date, end: date, by: str, principal: Principal | None = None,
               now: datetime | None = None) -> dict:
    """The items of `by` (city, district, street, community, grid, unit, person) for the days start..end
    (inclusive, Asia/Shanghai), scored, graded and ranked city-wide; the principal sees the items of its
    area (a unit handler: its unit's, by unit only)."""
    from data import files
    from figures import assessment as am

    _period_days(start, end)
    if by not in am.BY:
        raise FigureError("by 须为 " + "、".join(am.BY) + " 之一")
    if principal is not None and principal.role not in ASSESSMENT_ROLES:
        raise ServiceError(403, "forbidden", "无权查看考核")
    if principal is not None and principal.role == "unit_handler" and by != "unit":
        raise ServiceError(403, "forbidden", "处置单位只能查看本单位的部门评价")
    if by in am.AREA_LEVELS:
        return assessment_levels(cases, start, end, [by], principal, now)[by]
    rules = files.assessment_rules()
    S, E = period_bounds(start, end)
    now = now or cases.clock()
    areas = cases.areas.records()
    with cases.db.session() as s:
        if by == "unit":
            items = am.unit_items(s, S, E, rules)
            if principal is not None and principal.role == "unit_handler":
                items = [i for i in items if i["code"] == principal.unit_code]
            else:
                items = [i for i in items if _within(cases, i["area"], principal)]
        else:
            items = am.person_items(s, S, E, am.accepted_by_grid(s, S, E), areas, rules, cases.rules,
                                    cases.calendar)
            items = [i for i in items if _within(cases, i["area"], principal)]
    return {"period": {"start": start.isoformat(), "end": end.isoformat()}, "by": by, "items": items}


_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def month_bounds(month: str) -> tuple[date, date]:
    """The first and last day of 'YYYY-MM', or a FigureError saying what was wrong (the API, the cockpit
    and the monthly report read a month through this one place)."""
    m = _MONTH_RE.match(month.strip()) if isinstance(month, str) else None
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise FigureError(f"月份格式应为 YYYY-MM（如 2026-11），收到 {month!r}")
    year, month_no = int(m.group(1)), int(m.group(2))
    # the range first: year 0 is no date at all, and December 9999 has no next month to end it (schemathesis)
    if not EARLIEST_DAY.year <= year <= LATEST_DAY.year:
        raise FigureError(f"月份须在 {EARLIEST_DAY:%Y-%m} 到 {LATEST_DAY:%Y-%m} 之间")
    first = date(year, month_no, 1)
    last = date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)
    if not (day_in_range(first) and day_in_range(last)):
        raise FigureError(f"月份须在 {EARLIEST_DAY:%Y-%m} 到 {LATEST_DAY:%Y-%m} 之间")
    return first, last


def monthly_ranking(cases, month: str, by: str, principal: Principal | None = None,
                    now: datetime | None = None) -> dict:
    """The month's assessment with each item's previous month: previous_score, previous_rank and
    rank_change (previous rank − rank: positive moved up; null when unranked in either month)."""
    first, last = month_bounds(month)
    prev_last = first - timedelta(days=1)
    answer = with_previous(assessment(cases, first, last, by, principal, now),
                           assessment(cases, prev_last.replace(day=1), prev_last, by, principal, now), month)
    del answer["previous"]  # the API answers the month's items; the report reads the two months itself
    return answer


def penalty_cases(cases, start: date, end: date, unit: str | None = None, area: str | None = None,
                  principal: Principal | None = None, limit: int = 1000) -> list[dict]:
    """The penalty points (扣分) of the period, each with its case: of a unit, or of an area's cases."""
    from figures import assessment as am

    _period_days(start, end)
    grids = None
    if area is not None:
        a = cases.areas.get(area)
        if a is None:
            raise FigureError(f"区域 {area} 不存在")
        by_code = {r.code: r for r in cases.areas.records()}
        children: dict = {}
        for r in by_code.values():
            children.setdefault(r.parent, []).append(r.code)
        grids = am.grids_under(area, by_code, children)
    if principal is not None and principal.role == "unit_handler":
        unit = principal.unit_code
    S, E = period_bounds(start, end)
    with cases.db.session() as s:
        rows = am.penalty_cases(s, S, E, unit, grids, limit)
    return [r for r in rows if _within(cases, r["grid_code"], principal)]


def assessment_levels(cases, start: date, end: date, levels: list[str], principal: Principal | None = None,
                      now: datetime | None = None) -> dict[str, dict]:
    """assessment() of several area levels (city, district, street, community, grid) of one period at
    once, {by: answer}: the grid figures are read once for all of them (the monthly report asks for the
    city, its districts and its streets of two months, and the trend's city and districts of ten more).
    with_previous() makes two months of it monthly_ranking()'s answer."""
    from data import files
    from figures import assessment as am

    _period_days(start, end)
    if not levels or any(by not in am.AREA_LEVELS for by in levels):
        raise FigureError("levels 须为 " + "、".join(am.AREA_LEVELS) + " 中的一个或多个")
    if principal is not None and principal.role not in ASSESSMENT_ROLES:
        raise ServiceError(403, "forbidden", "无权查看考核")
    if principal is not None and principal.role == "unit_handler":
        raise ServiceError(403, "forbidden", "处置单位只能查看本单位的部门评价")
    rules = files.assessment_rules()
    S, E = period_bounds(start, end)
    now = now or cases.clock()
    areas = cases.areas.records()
    with cases.db.session() as s:
        grids = am.grid_figures(s, S, E, now)
    period_ = {"start": start.isoformat(), "end": end.isoformat()}
    out = {}
    for by in levels:
        items = am.area_items(grids, areas, am.AREA_LEVELS[by], (end - start).days + 1, rules)
        out[by] = {"period": period_, "by": by, "items": [i for i in items if _within(cases, i["code"], principal)]}
    return out


def with_previous(answer: dict, previous: dict, month: str) -> dict:
    """`answer` (an assessment() of a month) as monthly_ranking() answers it, given `previous`, the
    assessment() of the month before: each item's previous_score, previous_rank and rank_change, and
    `previous` itself (for callers that read the two months side by side, as the monthly report does)."""
    before = {i["code"]: i for i in previous["items"]}
    for item in answer["items"]:
        p = before.get(item["code"], {})
        item["previous_score"], item["previous_rank"] = p.get("score"), p.get("rank")
        item["rank_change"] = (p["rank"] - item["rank"]
                               if p.get("rank") is not None and item["rank"] is not None else None)
    answer["month"] = month
    answer["previous"] = previous
    return answer
