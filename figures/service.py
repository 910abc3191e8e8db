"""The one place the wall, cockpit, console, API and CLI read figures from (docs/figures.md lists them)."""
from __future__ import annotations

# Every figure is computed in the database (figures/period.py, figures/rollup.py, figures/cockpit.py)
# exactly as figures/definitions.py writes it down; this module adds the scope of who asks and the
# shape the edges answer with. `cases` is the app's CaseService (db, area directory, catalog, clock):
# its scope rule is the read rule of the whole product, so the figures of a principal are over the
# cases that principal may see.
from datetime import date, datetime

from sqlalchemy import String, cast, or_

from data.models import Case
from data.tokens import Principal
from dispatch.errors import ServiceError
from dispatch.limits import EARLIEST_DAY, LATEST_DAY, day_in_range  # the days any input may name
from figures import cockpit, period, rollup, wall
from figures.definitions import GROUP_BY, period_bounds
from figures.period import is_overdue, overdue_now

__all__ = ["FigureError", "kpis", "overdue_now", "is_overdue", "scope_filters", "wall_snapshot",
           "cockpit_snapshot", "cockpit_navigation", "month_figures"]

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
    if not isinstance(start, date) or not isinstance(end, date):
        raise FigureError("开始和结束日期须为 YYYY-MM-DD")
    if end < start:
        raise FigureError("结束日期早于开始日期")
    if not (day_in_range(start) and day_in_range(end)):
        # past these the UTC bounds overflow datetime (a 500); no city has cases there
        raise FigureError(f"日期须在 {EARLIEST_DAY} 到 {LATEST_DAY} 之间")
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
