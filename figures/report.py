"""The monthly assessment report (月度考核通报) as cities publish it: its data, the Excel workbook and the A4 PDF.

`report_data` gathers what the report shows from the service-level figures (figures.service:
`assessment`, `monthly_ranking`, `penalty_cases`), so the report says exactly what the API, the
cockpit and the wall say; `write_xlsx` and `write_pdf` only lay it out. `write_report` writes either
to a temporary file next to the target and renames it, so a failure never leaves half a file.

Why these libraries:
- Excel: rustpy-xlsxwriter (a binding of rust_xlsxwriter, the Rust port of XlsxWriter by its author).
  It only writes (the report never reads a workbook) and takes the sheets as records in one call,
  with number formats (rates as percentages), frozen header rows, filters, column widths and merged
  cells above a header. XlsxWriter, pure Python, spent ~22 s on the 1 M-case month's 1.38 M cells
  (its XML serialisation, ~12 µs a cell), most of the 30 s budget; this writes that workbook in ~3 s. What
  it cannot do: a format per cell (a column has one, a row may have another), so on 概况 a key
  figure's 变化 takes its row's format (a rate's change in 0.00%, not +0.00%); a blank cell is
  left unwritten (no font of its own; the column's format applies when one is typed in). The
  tests re-read the workbook with openpyxl (requirements-dev.txt).
- PDF: ReportLab with a TrueType CJK font (WenQuanYi Micro Hei, Debian's fonts-wqy-microhei,
  installed by scripts/ensure_system_deps.sh). WeasyPrint would use the Noto CJK fonts already on
  the machine through fontconfig, but it is not on the package mirror and would bring pango,
  cairo-free layout, tinycss2, cssselect2, pydyf, fonttools and more for what is a handful of tables;
  ReportLab is one pure-Python wheel (plus Pillow and charset-normalizer, both already pinned), lays
  out tables that split across pages with repeated headers, and draws the charts itself
  (reportlab.graphics), so no matplotlib. ReportLab cannot embed CFF-outline fonts such as Noto
  CJK's OTF/TTC, hence the TrueType WenQuanYi; `UCC_REPORT_FONT` (a .ttf/.ttc path, optionally
  `path#index`) names another TrueType CJK font. Everything is local: no font, image or style is
  fetched over the network.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from dispatch.errors import ServiceError
from dispatch.lifecycle import ACTION_LABELS
from dispatch.limits import EARLIEST_DAY, LATEST_DAY, day_in_range

__all__ = ["FORMATS", "parse_month", "report_data", "write_xlsx", "write_pdf", "write_report", "render",
           "report_filename", "ReportError"]

CITY_TZ = ZoneInfo("Asia/Shanghai")
FORMATS = ("xlsx", "pdf")
TREND_MONTHS = 12
# The PDF shows a long ranking's head and tail (the workbook always has every row): a city of
# 5,891 grids would otherwise print some 150 pages of grid members. Districts, streets and units
# are printed whole up to PDF_FULL_ROWS rows (Changzhou: 7, 62, ~100), posts up to PDF_FULL_POSTS.
PDF_FULL_ROWS = 150
PDF_FULL_POSTS = 60
PDF_HEAD_ROWS, PDF_TAIL_ROWS = 30, 20
PDF_PENALTY_ROWS = 80
# Threads reading the report's figures side by side (UCC_REPORT_WORKERS; 1: one after the other)
REPORT_WORKERS = int(os.environ.get("UCC_REPORT_WORKERS") or 3)
PENALTY_ROWS = 200_000  # penalty rows read for one month's workbook (a city's month has some thousands)
GRADE_ORDER = "ABCDE"


class ReportError(ServiceError):
    """A report that cannot be made as asked (bad month, format or font): a 400 with a Chinese message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(status, "bad_request", message)


# ---- the month ---------------------------------------------------------------------------------------
def parse_month(text: str) -> tuple[date, date]:
    """(first day, last day) of a `YYYY-MM` month, or ReportError with a Chinese message."""
    from figures.service import FigureError, month_bounds

    try:
        return month_bounds(text)
    except FigureError as e:
        raise ReportError(e.message) from None


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _prev_month(d: date) -> date:
    return date(d.year - (d.month == 1), (d.month - 2) % 12 + 1, 1)


def _month_label(d: date) -> str:
    return f"{d.year}年{d.month}月"


# ---- the tables: one spec for the workbook and the PDF ------------------------------------------------
@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "int"  # text, int, rate, score, num, change, datetime
    pdf: bool = False  # shown in the PDF (the workbook shows every column)
    width: float = 1.0  # relative width in the PDF


def _area_columns(parent: bool) -> list[Column]:
    cols = [Column("rank", "名次", "int", True, 0.8), Column("rank_change", "名次变化", "change", True, 0.9),
            Column("name", "区域", "text", True, 2.2)]
    if parent:
        cols.append(Column("parent_name", "所属区", "text", True, 1.6))
    cols += [Column("score", "综合指标值", "score", True, 1.1), Column("grade", "等级", "text", True, 0.6),
             Column("previous_score", "上月得分", "score", False), Column("previous_rank", "上月名次", "int"),
             Column("received", "受理数", "int", False), Column("accepted", "立案数", "int", True),
             Column("due", "应结案数", "int", False), Column("closed", "结案数", "int", False),
             Column("closed_on_time", "按期结案数", "int", False),
             Column("closure_rate", "结案率", "rate", True), Column("on_time_rate", "按期结案率", "rate", True, 1.1),
             Column("patrol_accepted", "监督员上报立案数", "int"), Column("patrol_share", "监督举报率", "rate", True, 1.1),
             Column("grids", "网格数", "int"), Column("accepted_per_grid", "网格月均立案数", "num"),
             Column("accepted_score", "立案数分值", "num"),
             Column("rework_rate", "返工率", "rate"), Column("extension_rate", "延期率", "rate"),
             Column("overdue_open", "超期未结", "int", True), Column("suspended", "挂账数", "int"),
             Column("voided", "作废数", "int"), Column("mean_handling_hours", "平均处置时长（小时）", "num"),
             Column("penalty_points", "扣分", "num", True, 0.8), Column("code", "区域代码", "text")]
    return cols


UNIT_COLUMNS = [
    Column("rank", "名次", "int", True, 0.8), Column("rank_change", "名次变化", "change", True, 0.9),
    Column("name", "单位", "text", True, 3.2), Column("score", "综合指标值", "score", True, 1.1),
    Column("grade", "等级", "text", True, 0.6), Column("previous_score", "上月得分", "score"),
    Column("previous_rank", "上月名次", "int"), Column("dispatched", "派遣数", "int"),
    Column("due_handling", "应处置数", "int", True), Column("handled", "处置数", "int", True),
    Column("handled_on_time", "按时处置数", "int"), Column("reworked", "返工数", "int"),
    Column("extended", "延期数", "int"), Column("returned", "退回数", "int"), Column("suspended", "挂账数", "int"),
    Column("handling_rate", "处置率", "rate", True), Column("on_time_handling_rate", "按时处置率", "rate", True, 1.1),
    Column("rework_rate", "返工率", "rate", True), Column("extension_rate", "延期率", "rate"),
    Column("penalty_points", "扣分", "num", True, 0.8), Column("area_name", "所属区域", "text"),
    Column("code", "单位代码", "text")]

GRID_MEMBER_COLUMNS = [
    Column("rank", "名次", "int", True, 0.8), Column("rank_change", "名次变化", "change", True, 0.9),
    Column("name", "姓名", "text", True, 2.8), Column("area_name", "所属区域", "text", True, 2.0),
    Column("score", "得分", "score", True), Column("grade", "等级", "text", True, 0.6),
    Column("previous_score", "上月得分", "score"), Column("previous_rank", "上月名次", "int"),
    Column("reports", "上报数", "int", True), Column("valid_reports", "有效上报数", "int"),
    Column("valid_rate", "有效上报率", "rate", True, 1.1), Column("missed_rate", "漏报率", "rate", True),
    Column("site_checks", "核实数", "int"), Column("reviews", "核查数", "int"),
    Column("on_time_site_check_rate", "按时核实率", "rate"), Column("on_time_review_rate", "按时核查率", "rate"),
    Column("on_time_check_rate", "按时核实核查率", "rate", True, 1.3), Column("code", "人员标识", "text")]

DUTY_OFFICER_COLUMNS = [
    Column("rank", "名次", "int", True, 0.8), Column("rank_change", "名次变化", "change", True, 0.9),
    Column("name", "姓名", "text", True, 1.6), Column("area_name", "所属区域", "text", True, 1.8),
    Column("score", "得分", "score", True), Column("grade", "等级", "text", True, 0.6),
    Column("previous_score", "上月得分", "score"), Column("previous_rank", "上月名次", "int"),
    Column("intake_acts", "受理数", "int"), Column("accepted", "立案数", "int", True),
    Column("dispatched", "派遣数", "int", True),
    Column("on_time_accept_rate", "按时受理率", "rate", True, 1.1),
    Column("on_time_dispatch_rate", "按时派遣率", "rate", True, 1.1),
    Column("accurate_accept_rate", "准确立案率", "rate", True, 1.1),
    Column("accurate_dispatch_rate", "准确派遣率", "rate", True, 1.1), Column("code", "人员标识", "text")]

PENALTY_UNIT_COLUMNS = [
    Column("rank", "序号", "int", True, 0.5), Column("name", "单位", "text", True, 2.6),
    Column("points", "扣分合计", "num", True, 0.8), Column("cases", "涉及案件数", "int", True, 0.8),
    Column("rules", "扣分事由", "text", True, 3.0), Column("case_ids", "案件编号（部分）", "text", True, 2.8),
    Column("code", "单位代码", "text")]

PENALTY_CASE_COLUMNS = [
    Column("unit_name", "单位", "text", True, 2.6), Column("case_id", "案件编号", "text", True, 1.1),
    Column("points", "扣分", "num", True, 0.6), Column("rule_label", "扣分事由", "text", True, 0.8),
    Column("reason", "说明", "text", True, 3.0), Column("at", "时间", "datetime", True, 1.5),
    Column("unit_code", "单位代码", "text")]

# (key in data["tables"], sheet name, heading, columns)
TABLES = [
    ("districts", "区县排名", "区域评价：区县", _area_columns(parent=False)),
    ("streets", "街道排名", "区域评价：街道（镇）", _area_columns(parent=True)),
    ("units", "部门评价", "部门评价：处置单位", UNIT_COLUMNS),
    ("penalty_units", "扣分汇总", "部门扣分汇总", PENALTY_UNIT_COLUMNS),
    ("penalties", "扣分明细", "扣分案件明细", PENALTY_CASE_COLUMNS),
    ("grid_members", "网格员评价", "岗位评价：网格员", GRID_MEMBER_COLUMNS),
    ("duty_officers", "值班员评价", "岗位评价：值班员", DUTY_OFFICER_COLUMNS),
]

# The city's key figures on the summary sheet and the PDF's first page: (key, label, kind)
KEY_FIGURES = [("received", "受理数", "int"), ("accepted", "立案数", "int"), ("due", "应结案数", "int"),
               ("closed", "结案数", "int"), ("closed_on_time", "按期结案数", "int"),
               ("closure_rate", "结案率", "rate"), ("on_time_rate", "按期结案率", "rate"),
               ("patrol_share", "监督举报率", "rate"), ("rework_rate", "返工率", "rate"),
               ("overdue_open", "超期未结", "int"), ("penalty_points", "扣分", "num"),
               ("score", "综合指标值", "score")]


# ---- the data -------------------------------------------------------------------------------------------
def report_data(cases, month: str, now: datetime | None = None, principal=None) -> dict:
    """Everything the month's report shows, JSON-shaped: title, summary, ranking tables (with the change
    of rank from the previous month), penalty points with their cases, the district scores and a
    12-month score trend of the city and its districts. `cases` is the app's CaseService; `principal`
    (optional) limits every figure to what they may see, as the API does."""
    from figures import service

    first, last = parse_month(month)
    now = now or cases.clock()
    today = now.astimezone(CITY_TZ).date()
    if first > today:
        raise ReportError(f"{_month_label(first)}尚未开始，无法生成考核通报")
    month = f"{first:%Y-%m}"
    prev_first = _prev_month(first)
    prev_last = first - timedelta(days=1)

    def assess(start: date, end: date, by: str) -> list[dict]:
        return service.assessment(cases, start, end, by, principal=principal, now=now)["items"]

    def full(start: date, end: date, by: str) -> dict:
        return service.assessment(cases, start, end, by, principal=principal, now=now)

    # The report's reads are independent of each other: they run side by side on a few threads (each
    # with its own connection; the database works while Python waits), the slowest first; each month of
    # a ranking is a read of its own, joined by service.with_previous as monthly_ranking joins them. The
    # area levels of a month share one read of the grid figures (service.assessment_levels).
    trend_months = _trend_months(first)
    levels = ["city", "district", "street"]
    jobs: dict[Any, Callable[[], Any]] = {
        "person": lambda: full(first, last, "person"),
        "person_prev": lambda: full(prev_first, prev_last, "person"),
        "unit": lambda: full(first, last, "unit"),
        "unit_prev": lambda: full(prev_first, prev_last, "unit"),
        "areas": lambda: service.assessment_levels(cases, first, last, levels, principal=principal, now=now),
        "areas_prev": lambda: service.assessment_levels(cases, prev_first, prev_last, levels, principal=principal,
                                                        now=now),
        # every penalty row of the month (the service pages at 1,000 by default, for screens)
        "penalties": lambda: service.penalty_cases(cases, first, last, principal=principal, limit=PENALTY_ROWS),
    }
    for m in trend_months[:-2]:  # the last two months' scores come with the ranking
        m_last = _next_month(m) - timedelta(days=1)
        jobs[m] = lambda m=m, m_last=m_last: service.assessment_levels(cases, m, m_last, ["city", "district"],
                                                                       principal=principal, now=now)
    got = _run_all(jobs)

    def ranking(now_: dict, prev_: dict) -> list[dict]:
        return _ranked(service.with_previous(now_, prev_, month)["items"])

    city_now, districts, streets = (ranking(got["areas"][by], got["areas_prev"][by]) for by in levels)
    prev_city = got["areas_prev"]["city"]["items"]
    units, persons = ranking(got["unit"], got["unit_prev"]), ranking(got["person"], got["person_prev"])
    grid_members, duty_officers = _posts(persons, lambda: assess(prev_first, prev_last, "person")
                                         if day_in_range(prev_first) else [])
    penalties = got["penalties"]

    names = _Names(cases)
    for row in streets:
        row["parent_name"] = names.area(row.get("parent"))
    for row in units + persons:
        row["area_name"] = names.area(row.get("area"))
    penalty_rows, penalty_units = _penalties(penalties, units, names)

    scope = _scope(cases, principal, city_now)
    cur = city_now[0] if city_now else {}
    prev = prev_city[0] if prev_city else None
    finished = _next_month(first) <= today
    trend = _trend(trend_months, got, city_now, prev_city, districts, scope)
    data = {
        "month": month,
        "month_label": _month_label(first),
        "period": {"start": first.isoformat(), "end": last.isoformat()},
        "scope": scope,
        "title": f"{scope['name']}城市运行管理 {_month_label(first)} 考核通报",
        "issuer": f"{scope['name']}城市运行管理中心",
        "generated_at": now.astimezone(CITY_TZ).isoformat(timespec="minutes"),
        "complete": finished,
        "as_of": None if finished else now.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M"),
        "city": {"current": cur, "previous": prev},
        "tables": {
            "districts": districts,
            "streets": streets,
            "units": units,
            "penalty_units": penalty_units,
            "penalties": penalty_rows,
            "grid_members": grid_members,
            "duty_officers": duty_officers,
        },
        "trend": trend,
    }
    data["summary"] = _summary(data)
    return data


def _ranked(items: list[dict]) -> list[dict]:
    """The items in rank order, unranked (null score) last by code; copies, so the report may add fields."""
    return sorted((dict(i) for i in items),
                  key=lambda i: (i.get("rank") is None, i.get("rank") or 0, str(i.get("code"))))


def _posts(persons: list[dict], previous: Callable[[], list[dict]]) -> tuple[list[dict], list[dict]]:
    """Grid members and duty officers as two rankings. Their scores weigh different things, so a city
    ranks each post on its own: when the service's ranks run across both posts, each table is ranked
    again in the service's order (1, 2, 3, …) and last month's rank and the change are taken the same
    way from last month's items."""
    tables = []
    prev_items: list[dict] | None = None
    for role in ("grid_member", "duty_officer"):
        rows = [p for p in persons if p.get("role") == role]
        ranks = [p["rank"] for p in rows if p.get("rank") is not None]
        if ranks != list(range(1, len(ranks) + 1)):
            if prev_items is None:
                prev_items = _ranked(previous())
            prev_rank = {p["code"]: i for i, p in enumerate(
                (p for p in prev_items if p.get("role") == role and p.get("rank") is not None), 1)}
            n = 0
            for p in rows:
                p["previous_rank"] = prev_rank.get(p["code"])
                if p.get("rank") is None:
                    p["rank_change"] = None
                    continue
                n += 1
                p["rank"] = n
                p["rank_change"] = None if p["previous_rank"] is None else p["previous_rank"] - n
        tables.append(rows)
    return tables[0], tables[1]


class _Names:
    """Area names by code, read once (the hierarchy is cached by the area directory)."""

    def __init__(self, cases):
        self.cases = cases

    def area(self, code: str | None) -> str:
        if not code:
            return ""
        rec = self.cases.areas.get(code)
        return rec.name if rec else str(code)

    def unit(self, code: str) -> str:
        try:
            return self.cases.unit_name(code)
        except Exception:  # noqa: BLE001 - a unit deleted since: its code is still a fair label
            return code


def _scope(cases, principal, city_items: list[dict]) -> dict:
    """The area the report is about: the principal's (when scoped), else the city."""
    if principal is not None and getattr(principal, "role", None) != "admin" and principal.area_code:
        rec = cases.areas.get(principal.area_code)
        if rec is not None and rec.level > 1:
            chain = cases.areas.chain(rec.code)
            city = next((a for a in chain if a.level == 1), None)
            # a district's report reads 常州市天宁区…, a street's 天宁区白庄街道…
            upper = next((a for a in chain if a.level == rec.level - 1), None)
            prefix = (city.name if rec.level == 2 and city else upper.name if upper else "")
            return {"code": rec.code, "name": prefix + rec.name, "level": rec.level}
    if city_items:
        return {"code": city_items[0].get("code"), "name": city_items[0].get("name") or "", "level": 1}
    city = next((a for a in cases.areas.records(max_level=1) if a.level == 1), None)
    return {"code": city.code if city else None, "name": city.name if city else "", "level": 1}


def _penalties(rows: list[dict], units: list[dict], names: _Names) -> tuple[list[dict], list[dict]]:
    """The penalty rows and the units that lost points, most first (the rows in the units' order, then by
    time). A unit's points
    are the unit ranking's `penalty_points` (the figure the score and the API use); the rows add the
    cases and the rules behind them."""
    unit_names = {u["code"]: u.get("name") or u["code"] for u in units}
    never = datetime.min.replace(tzinfo=timezone.utc)
    detail = []
    for p in sorted(rows, key=lambda p: (str(p.get("unit_code")), _as_datetime(p.get("at")) or never)):
        code = p.get("unit_code")
        at = _as_datetime(p.get("at"))
        detail.append({**p, "unit_name": unit_names.get(code) or names.unit(code),
                       "rule_label": ACTION_LABELS.get(p.get("rule"), p.get("rule") or ""),
                       "at": at.astimezone(CITY_TZ).isoformat(timespec="minutes") if at else None})
    by_unit: dict[str, dict] = {}
    for u in units:
        if u.get("penalty_points"):
            by_unit[u["code"]] = {"code": u["code"], "name": unit_names[u["code"]], "points": float(u["penalty_points"]),
                                  "case_set": {}, "rule_points": {}, "from_rows": False}
    for p in detail:
        u = by_unit.setdefault(p["unit_code"], {"code": p["unit_code"], "name": p["unit_name"], "points": 0.0,
                                                "case_set": {}, "rule_points": {}, "from_rows": True})
        pts = float(p.get("points") or 0)
        if u["from_rows"]:
            u["points"] += pts
        u["case_set"][p["case_id"]] = None  # a dict keeps the order of first appearance
        u["rule_points"][p["rule_label"]] = u["rule_points"].get(p["rule_label"], 0.0) + pts
    out = []
    for i, u in enumerate(sorted(by_unit.values(), key=lambda u: (-u["points"], str(u["code"]))), 1):
        ids, rules = list(u["case_set"]), u["rule_points"]
        out.append({"rank": i, "code": u["code"], "name": u["name"], "points": round(u["points"], 2),
                    "cases": len(ids),
                    "rules": "，".join(f"{k} {_num(v)} 分" for k, v in sorted(rules.items(), key=lambda kv: -kv[1])),
                    "case_ids": "、".join(str(c) for c in ids[:5]) + ("等" if len(ids) > 5 else "")})
    # the rows of the unit that lost most first (the PDF prints the first rows only), each unit's by time
    order = {u["code"]: u["rank"] for u in out}
    detail.sort(key=lambda p: order.get(p["unit_code"], len(order) + 1))
    return detail, out


def _as_datetime(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        v = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return v if v.tzinfo else v.replace(tzinfo=timezone.utc)


def _trend_months(first: date) -> list[date]:
    """The 12 months ending with `first`'s (those within the days any input may name)."""
    months = [first]
    while len(months) < TREND_MONTHS:
        months.insert(0, _prev_month(months[0]))
    return [m for m in months if day_in_range(m)]


def _trend(months: list[date], got: dict, city_now: list[dict], prev_city: list[dict], districts: list[dict],
           scope: dict) -> dict:
    """The city's and each district's score over the 12 months ending with this one (null: no score).
    This month's scores and last month's are the ranking's (score, previous_score) and prev_city."""
    series: dict[str, dict] = {"__city__": {"code": scope.get("code"), "name": scope.get("name") or "全市",
                                            "scores": []}}
    for d in districts:
        series[d["code"]] = {"code": d["code"], "name": d.get("name") or d["code"], "scores": []}
    for i, m in enumerate(months):
        if i == len(months) - 1:
            city, dist = city_now, {d["code"]: d.get("score") for d in districts}
        elif i == len(months) - 2:
            city, dist = prev_city, {d["code"]: d.get("previous_score") for d in districts}
        else:
            city = got[m]["city"]["items"]
            dist = {d["code"]: d.get("score") for d in got[m]["district"]["items"]}
        series["__city__"]["scores"].append(city[0].get("score") if city else None)
        for code, s in series.items():
            if code != "__city__":
                s["scores"].append(dist.get(code))
    return {"months": [f"{m:%Y-%m}" for m in months], "series": list(series.values())}


def _run_all(jobs: dict[Any, Callable[[], Any]]) -> dict:
    """{key: fn()} with the calls spread over REPORT_WORKERS threads; the first failure is raised."""
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(REPORT_WORKERS, len(jobs)))
    if workers == 1:
        return {k: fn() for k, fn in jobs.items()}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report") as pool:
        futures = {k: pool.submit(fn) for k, fn in jobs.items()}
        return {k: f.result() for k, f in futures.items()}


# ---- words --------------------------------------------------------------------------------------------
def _pct(v) -> str:
    return "—" if v is None else f"{v * 100:.2f}%"


def _num(v, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.{digits}f}".rstrip("0").rstrip(".")


def _score(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def _change(v) -> str:
    if v is None:
        return "—"
    return f"↑{v}" if v > 0 else f"↓{-v}" if v < 0 else "持平"


def _cell_text(value, kind: str) -> str:
    if value is None or value == "":
        return "—" if kind != "text" else ""
    if kind == "rate":
        return _pct(value)
    if kind == "score":
        return _score(value)
    if kind == "change":
        return _change(value)
    if kind == "num":
        return _num(value)
    if kind == "int":
        return f"{int(value):,}"
    if kind == "datetime":
        return str(value)[:16].replace("T", " ")
    return str(value)


def _delta(cur, prev, kind: str) -> str | None:
    """'增加 12 件（+3.4%）', '上升 1.20 个百分点', … or None when either side is missing."""
    if cur is None or prev is None:
        return None
    d = cur - prev
    if kind == "rate":
        pts = d * 100
        return "持平" if abs(pts) < 0.005 else f"{'上升' if pts > 0 else '下降'} {abs(pts):.2f} 个百分点"
    if kind == "score":
        return "持平" if abs(d) < 0.005 else f"{'上升' if d > 0 else '下降'} {abs(d):.2f} 分"
    if d == 0:
        return "持平"
    rel = f"（{d / prev * 100:+.1f}%）" if prev else ""
    return f"{'增加' if d > 0 else '减少'} {abs(d):,} 件{rel}"


def _summary(data: dict) -> dict:
    """The summary paragraph and the key-figure rows (this month, last month, change)."""
    cur, prev = data["city"]["current"], data["city"]["previous"]
    t = data["tables"]
    who = "全市" if data["scope"].get("level", 1) == 1 else data["scope"]["name"]
    as_of = f"（截至 {data['as_of']}）" if data.get("as_of") else ""
    parts = []
    if cur:
        parts.append(
            f"{data['month_label']}{as_of}，{who}共受理案件 {cur.get('received') or 0:,} 件，立案 {cur.get('accepted') or 0:,} 件，"
            f"应结案 {cur.get('due') or 0:,} 件，结案 {cur.get('closed') or 0:,} 件（其中按期结案 {cur.get('closed_on_time') or 0:,} 件），"
            f"结案率 {_pct(cur.get('closure_rate'))}，按期结案率 {_pct(cur.get('on_time_rate'))}，"
            f"监督举报率 {_pct(cur.get('patrol_share'))}，超期未结 {cur.get('overdue_open') or 0:,} 件，"
            f"综合指标值 {_score(cur.get('score'))}" + (f"（{cur['grade']} 级）" if cur.get("grade") else "") + "。")
    if cur and prev:
        changes = [(k, lbl, _delta(cur.get(k), prev.get(k), kind)) for k, lbl, kind in
                   (("accepted", "立案数", "int"), ("closure_rate", "结案率", "rate"),
                    ("on_time_rate", "按期结案率", "rate"), ("score", "综合指标值", "score"))]
        said = [f"{lbl}{d}" for _k, lbl, d in changes if d]
        if said:
            parts.append("与上月相比，" + "，".join(said) + "。")
    ranked = [d for d in t["districts"] if d.get("rank") is not None]
    if len(ranked) >= 2:
        top, bottom = ranked[0], ranked[-1]
        s = f"各区中，{top['name']}综合指标值最高（{_score(top.get('score'))}），{bottom['name']}最低（{_score(bottom.get('score'))}）"
        up = max((d for d in ranked if (d.get("rank_change") or 0) > 0), key=lambda d: d["rank_change"], default=None)
        if up:
            s += f"；名次上升最多的是{up['name']}（上升 {up['rank_change']} 位）"
        parts.append(s + "。")
    units = [u for u in t["units"] if u.get("rank") is not None]
    if units:
        grades = {g: sum(1 for u in units if u.get("grade") == g) for g in GRADE_ORDER}
        s = (f"参评处置单位 {len(units):,} 个，其中 A 级 {grades['A']:,} 个、B 级 {grades['B']:,} 个，"
             f"C 级及以下 {grades['C'] + grades['D'] + grades['E']:,} 个")
        s += f"；{units[0]['name']}排名第一（{_score(units[0].get('score'))}）"
        if len(units) > 1:
            s += f"，{units[-1]['name']}排名末位（{_score(units[-1].get('score'))}）"
        parts.append(s + "。")
    pu = t["penalty_units"]
    if pu:
        total = sum(u["points"] for u in pu)
        parts.append(f"本月共扣分 {_num(total)} 分，涉及案件 {len({p['case_id'] for p in t['penalties']}):,} 件、"
                     f"单位 {len(pu):,} 个，扣分最多的是{pu[0]['name']}（{_num(pu[0]['points'])} 分）。")
    else:
        parts.append("本月无扣分。")
    rows = []
    for key, label, kind in KEY_FIGURES:
        c = cur.get(key) if cur else None
        p = prev.get(key) if prev else None
        d = None if c is None or p is None else c - p
        rows.append({"key": key, "label": label, "kind": kind, "current": c, "previous": p, "change": d})
    return {"text": "".join(parts), "figures": rows}


# ---- the workbook ---------------------------------------------------------------------------------------
# Number formats by column kind (text: none); a missing value (None, "") is a blank cell in every kind
XL_NUM_FORMATS = {
    "int": "#,##0", "rate": "0.00%", "score": "0.00", "num": "#,##0.00",
    # ↑2 moved up two places, ↓1 down one, — unchanged (an empty cell: not ranked in one of the months)
    "change": '"↑"0;"↓"0;"—"',
    "datetime": "yyyy-mm-dd hh:mm",
}
XL_FONT, XL_FONT_SIZE = "微软雅黑", 10
SUMMARY_HEADER_ROW = 6  # 概况: title, period, issuer, (blank), summary paragraph, (blank), then the key figures
# rustpy_xlsxwriter 0.8.0 streams a sheet row by row and then writes the last row's height or format a
# second time, as an empty duplicate <row> (Excel offers to repair such a file); a sheet it buffers
# (dedupe_strings: shared strings) has no such row. Sheets up to this many rows are buffered; a larger
# one streams, and its only row with a height is its header, never its last row.
XL_BUFFERED_ROWS = 50_000


def _xl_format(kind: str = "text"):
    """A fresh cell format in the report's font (rustpy Formats are mutable: one per use)."""
    from rustpy_xlsxwriter import Format

    f = Format().set_font_name(XL_FONT).set_font_size(XL_FONT_SIZE).set_align("vcenter")
    if kind in XL_NUM_FORMATS:
        f.set_num_format(XL_NUM_FORMATS[kind])
    if kind == "change":
        f.set_align("center")
    return f


def _xl_header_format():
    return (_xl_format().set_bold().set_font_color("#FFFFFF").set_background_color("#1F4E79").set_text_wrap()
            .set_align("center").set_border("thin").set_border_color("#BFBFBF"))


def _xl_value(value, kind: str):
    """A cell's value as the writer takes it: None for a blank, the city's wall-clock time for a datetime."""
    if value is None or value == "":
        return None
    if kind == "text":
        return str(value)
    if kind == "datetime":
        at = _as_datetime(value)
        # Excel has no time zones: the city's wall-clock time
        return str(value) if at is None else at.astimezone(CITY_TZ).replace(tzinfo=None)
    return value


def write_xlsx(data: dict, path) -> None:
    """The report as a workbook: 概况 (title, summary, key figures), one sheet per ranking table (header
    row frozen, filters, widths), 得分趋势. `path` is a file name or a binary file object.

    rustpy_xlsxwriter writes a whole workbook in one call from records (one dict per row, keyed by
    header): a column takes one format, a row may take another (for cells the column leaves
    unformatted), merged ranges sit above a sheet's header row."""
    import rustpy_xlsxwriter as xl

    sheets: list[tuple[str, list[dict]]] = []
    opts: dict[str, dict] = {k: {} for k in ("column_formats", "column_widths", "header_format", "header_row",
                                             "merge_ranges", "row_heights", "row_formats", "autofilter",
                                             "freeze_panes", "dedupe_strings")}

    # 概况: the title lines and the summary paragraph are merged ranges above the key figures' header.
    # A key figure's row has its own kind (a count, a rate, a score): the value columns carry no
    # column format, so each row's format applies to its 本月, 上月 and 变化 alike.
    name = "概况"
    period = f"统计周期：{data['period']['start']} 至 {data['period']['end']}" + (
        f"（截至 {data['as_of']}）" if data.get("as_of") else "")
    issued = f"发布：{data['issuer']}　生成时间：{data['generated_at'][:16].replace('T', ' ')}"
    text = data["summary"]["text"]
    figures_rows = data["summary"]["figures"]
    sheets.append((name, [{"指标": r["label"], "本月": r["current"], "上月": r["previous"], "变化": r["change"]}
                          for r in figures_rows]))
    opts["header_row"][name] = SUMMARY_HEADER_ROW
    opts["merge_ranges"][name] = [
        (0, 0, 0, 7, data["title"], _xl_format().set_bold().set_font_size(16)),
        (1, 0, 1, 7, period, _xl_format().set_font_color("#555555")),
        (2, 0, 2, 7, issued, _xl_format().set_font_color("#555555")),
        (4, 0, 4, 7, text, _xl_format().set_text_wrap().set_align("top")),
    ]
    opts["row_heights"][name] = {4: 15 * max(3, len(text) // 60 + 2)}
    opts["header_format"][name] = _xl_header_format()
    opts["column_formats"][name] = {"指标": _xl_format()}
    opts["row_formats"][name] = {i: _xl_format(r["kind"]) for i, r in enumerate(figures_rows, SUMMARY_HEADER_ROW + 1)}
    opts["column_widths"][name] = [18.0, 16.0, 16.0, 16.0]
    opts["freeze_panes"][name] = {"row": SUMMARY_HEADER_ROW + 1, "col": 0}

    for key, name, _heading, cols in TABLES:
        rows = data["tables"][key]
        records = [{c.header: _xl_value(row.get(c.key), c.kind) for c in cols} for row in rows]
        # an empty table keeps its header: one all-blank row writes no cell
        sheets.append((name, records or [{c.header: None for c in cols}]))
        opts["header_format"][name] = _xl_header_format()
        opts["column_formats"][name] = [_xl_format(c.kind) for c in cols]
        opts["column_widths"][name] = [_xl_width(c, rows) for c in cols]
        opts["row_heights"][name] = {0: 30}
        opts["freeze_panes"][name] = {"row": 1, "col": 0}
        if rows:
            opts["autofilter"][name] = True

    tr = data["trend"]
    name = "得分趋势"
    heads = ["月份"] + [s["name"] for s in tr["series"]]
    sheets.append((name, [dict(zip(heads, [m] + [s["scores"][i] for s in tr["series"]]))
                          for i, m in enumerate(tr["months"])]))
    opts["header_format"][name] = _xl_header_format()
    opts["column_formats"][name] = [_xl_format()] + [_xl_format("score") for _ in tr["series"]]
    opts["column_widths"][name] = [10.0] + [11.0] * len(tr["series"])
    opts["row_heights"][name] = {0: 30}
    opts["freeze_panes"][name] = {"row": 1, "col": 1}

    for name, records in sheets:
        if len(records) <= XL_BUFFERED_ROWS:
            opts["dedupe_strings"][name] = True
    xl.write_worksheets(sheets, path, **{k: v for k, v in opts.items() if v})


def _xl_width(c: Column, rows: list[dict]) -> float:
    """Width in characters: the header's or the longest text (sampled), CJK characters counting double."""
    def w(s: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)

    head = w(c.header) + 2
    if c.kind == "text":
        longest = max((w(str(r.get(c.key) or "")) for r in rows[:2000]), default=0)
        return float(min(60, max(head, longest + 2, 8)))
    if c.kind == "datetime":
        return 17.0
    return float(max(head if head <= 14 else 12, 9))


# ---- the PDF --------------------------------------------------------------------------------------------
FONT_NAME = "UccCJK"
_font_lock = threading.Lock()
_FONT_CANDIDATES = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                    "/usr/share/fonts/truetype/arphic/uming.ttc", "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")


def _cjk_font() -> str:
    """Registers a TrueType CJK font with ReportLab once and returns its name (ReportError when none)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont, TTFError

    with _font_lock:
        if FONT_NAME in pdfmetrics.getRegisteredFontNames():
            return FONT_NAME
        tried = []
        env = os.environ.get("UCC_REPORT_FONT")
        candidates = ([env] if env else []) + list(_FONT_CANDIDATES) + _fontconfig_truetype()
        for spec in candidates:
            path, _, index = spec.partition("#")
            if not os.path.isfile(path):
                continue
            try:
                font = TTFont(FONT_NAME, path, subfontIndex=int(index or 0))
            except (TTFError, ValueError, OSError) as exc:  # e.g. a CFF-outline OTF/TTC (Noto CJK)
                tried.append(f"{path}: {exc}")
                continue
            if ord("考") not in font.face.charToGlyph:
                continue
            pdfmetrics.registerFont(font)
            return FONT_NAME
    raise ReportError("未找到可用于 PDF 的 TrueType 中文字体：请安装 fonts-wqy-microhei"
                      "（scripts/ensure_system_deps.sh），或用 UCC_REPORT_FONT 指定 .ttf/.ttc 字体文件", status=500)


def _fontconfig_truetype() -> list[str]:
    """TrueType-outline CJK fonts fontconfig knows of (a machine with another font than WenQuanYi)."""
    try:
        out = subprocess.run(["fc-list", ":lang=zh:fontformat=TrueType", "file"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = {line.split(":")[0].strip() for line in out.splitlines()}
    return sorted(f for f in files if f.lower().endswith((".ttf", ".ttc")))


def write_pdf(data: dict, path) -> None:
    """The report as an A4 PDF: title, summary and key figures, the district scores as bars, the 12-month
    score trend, then the ranking tables (long ones as head and tail) and the penalty points.
    `path` is a file name or a binary file object."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (CondPageBreak, LongTable, Paragraph,
                                    SimpleDocTemplate, Spacer, TableStyle)

    font = _cjk_font()
    page_w, page_h = A4
    margin = 15 * mm
    width = page_w - 2 * margin
    st = {
        "title": ParagraphStyle("t", fontName=font, fontSize=20, leading=28, alignment=TA_CENTER,
                                textColor=colors.HexColor("#A50000"), spaceAfter=4),
        "sub": ParagraphStyle("s", fontName=font, fontSize=9.5, leading=14, alignment=TA_CENTER,
                              textColor=colors.HexColor("#444444")),
        "h1": ParagraphStyle("h1", fontName=font, fontSize=14, leading=20, spaceBefore=8, spaceAfter=4,
                             textColor=colors.HexColor("#1F4E79")),
        "h2": ParagraphStyle("h2", fontName=font, fontSize=11.5, leading=16, spaceBefore=6, spaceAfter=3),
        "body": ParagraphStyle("b", fontName=font, fontSize=10.5, leading=18, firstLineIndent=21,
                               wordWrap="CJK"),
        "note": ParagraphStyle("n", fontName=font, fontSize=8, leading=11, textColor=colors.HexColor("#666666"),
                               wordWrap="CJK"),
        "cell": ParagraphStyle("c", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK"),
        "head": ParagraphStyle("hd", fontName=font, fontSize=7.5, leading=9.5, alignment=TA_CENTER,
                               textColor=colors.white, wordWrap="CJK"),
    }

    def esc(s: str) -> str:
        return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def table(rows: list[list], col_w: list[float], aligns: list[str], header_rows: int = 1, zebra=True,
              highlight: list[int] = ()):
        t = LongTable(rows, colWidths=col_w, repeatRows=header_rows)
        style = [("FONT", (0, 0), (-1, -1), font, 7.5), ("LEADING", (0, 0), (-1, -1), 9.5),
                 ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#1F4E79")),
                 ("TEXTCOLOR", (0, 0), (-1, header_rows - 1), colors.white),
                 ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                 ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#B0B7C3")),
                 ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                 ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
        for j, align in enumerate(aligns):
            style.append(("ALIGN", (j, header_rows), (j, -1), align))
        style.append(("ALIGN", (0, 0), (-1, header_rows - 1), "CENTER"))
        if zebra:
            for i in range(header_rows, len(rows)):
                if (i - header_rows) % 2 == 1:
                    style.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#F2F5F9")))
        for i in highlight:
            style.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#E4E9F0")))
        t.setStyle(TableStyle(style))
        return t

    def ranking_table(key: str, cols: list[Column], full_rows: int):
        shown = [c for c in cols if c.pdf]
        rows = data["tables"][key]
        total = sum(c.width for c in shown)
        col_w = [width * c.width / total for c in shown]
        head = [Paragraph(esc(c.header), st["head"]) for c in shown]
        body, gap_at = [], []
        # ranked rows only (every penalty_units row has a rank); the unranked are counted in a note
        ranked = [r for r in rows if r.get("rank") is not None]
        picked: list[dict | None] = list(ranked)
        if len(ranked) > full_rows:
            picked = ranked[:PDF_HEAD_ROWS] + [None] + ranked[-PDF_TAIL_ROWS:]
        for r in picked:
            if r is None:
                gap_at.append(len(body) + 1)
                body.append([Paragraph(esc(f"…… 中间 {len(ranked) - PDF_HEAD_ROWS - PDF_TAIL_ROWS:,} 项从略，完整名单见 Excel 附表"),
                                       st["cell"])] + [""] * (len(shown) - 1))
                continue
            line = []
            for c in shown:
                text = _cell_text(r.get(c.key), c.kind)
                line.append(Paragraph(esc(text), st["cell"]) if c.kind == "text" else text)
            body.append(line)
        t = table([head] + body, col_w, [_align(c.kind) for c in shown], highlight=gap_at)
        if gap_at:
            t.setStyle(TableStyle([("SPAN", (0, gap_at[0]), (-1, gap_at[0]))]))
        notes = []
        if len(ranked) > full_rows:
            notes.append(f"参与排名 {len(ranked):,} 项，表中列出前 {PDF_HEAD_ROWS} 名和后 {PDF_TAIL_ROWS} 名")
        if len(rows) > len(ranked):
            notes.append(f"另有 {len(rows) - len(ranked):,} 项本月无考核数据、不参与排名")
        return (t if ranked else None), notes

    story: list = []
    story.append(Spacer(1, 6 * mm))
    story.append(Paragraph(esc(data["title"]), st["title"]))
    period = f"统计周期：{data['period']['start']} 至 {data['period']['end']}" + (
        f"（截至 {data['as_of']}）" if data.get("as_of") else "")
    story.append(Paragraph(esc(f"{data['issuer']}　　{period}"), st["sub"]))
    story.append(Spacer(1, 2 * mm))
    story.append(_rule(width, colors.HexColor("#A50000")))
    story.append(Spacer(1, 3 * mm))
    story.append(Paragraph("一、总体情况", st["h1"]))
    story.append(Paragraph(esc(data["summary"]["text"]), st["body"]))
    story.append(Spacer(1, 3 * mm))
    figs = data["summary"]["figures"]
    # the key figures as two bands of six columns: label / this month / last month / change
    for band in (figs[:6], figs[6:]):
        rows = [[""] + [r["label"] for r in band],
                ["本月"] + [_cell_text(r["current"], r["kind"]) for r in band],
                ["上月"] + [_cell_text(r["previous"], r["kind"]) for r in band],
                ["变化"] + [_fig_change(r) for r in band]]
        w0 = width * 0.1
        story.append(table(rows, [w0] + [(width - w0) / len(band)] * len(band),
                           ["CENTER"] + ["RIGHT"] * len(band), zebra=False))
        story.append(Spacer(1, 2 * mm))

    districts = [d for d in data["tables"]["districts"]]
    if districts:
        story.append(CondPageBreak(85 * mm))
        story.append(Paragraph("各区综合指标值", st["h2"]))
        story.append(_bar_chart(districts, width, 70 * mm, font))
    if data["trend"]["months"]:
        story.append(CondPageBreak(95 * mm))
        story.append(Paragraph(f"综合指标值 {len(data['trend']['months'])} 个月走势", st["h2"]))
        story.append(_trend_chart(data["trend"], width, 80 * mm, font))

    sections = [("二、区域评价", [("districts", "（一）区县排名", TABLES[0][3]), ("streets", "（二）街道（镇）排名", TABLES[1][3])]),
                ("三、部门评价", [("units", "（一）处置单位排名", UNIT_COLUMNS),
                             ("penalty_units", "（二）扣分情况", PENALTY_UNIT_COLUMNS)]),
                ("四、岗位评价", [("grid_members", "（一）网格员", GRID_MEMBER_COLUMNS),
                             ("duty_officers", "（二）值班员", DUTY_OFFICER_COLUMNS)])]
    for heading, parts in sections:
        story.append(CondPageBreak(60 * mm))
        story.append(Paragraph(heading, st["h1"]))
        for key, sub, cols in parts:
            full_rows = PDF_FULL_POSTS if key in ("grid_members", "duty_officers") else PDF_FULL_ROWS
            t, notes = ranking_table(key, cols, full_rows)
            story.append(CondPageBreak(40 * mm))
            story.append(Paragraph(esc(sub), st["h2"]))
            if t is None and not notes:
                story.append(Paragraph("本月无数据。", st["note"]))
                continue
            if t is not None:
                story.append(t)
            if notes:
                story.append(Paragraph(esc("；".join(notes) + "，完整名单见 Excel 附表。"), st["note"]))
            story.append(Spacer(1, 3 * mm))
        if heading.startswith("三"):
            pen = data["tables"]["penalties"]
            if pen:
                story.append(CondPageBreak(40 * mm))
                story.append(Paragraph("（三）扣分案件明细", st["h2"]))
                shown = [c for c in PENALTY_CASE_COLUMNS if c.pdf]
                total = sum(c.width for c in shown)
                rows = [[Paragraph(esc(c.header), st["head"]) for c in shown]]
                for p in pen[:PDF_PENALTY_ROWS]:
                    rows.append([Paragraph(esc(_cell_text(p.get(c.key), c.kind)), st["cell"]) if c.kind == "text"
                                 else _cell_text(p.get(c.key), c.kind) for c in shown])
                story.append(table(rows, [width * c.width / total for c in shown], [_align(c.kind) for c in shown]))
                if len(pen) > PDF_PENALTY_ROWS:
                    story.append(Paragraph(esc(f"共 {len(pen):,} 条扣分记录，表中列出前 {PDF_PENALTY_ROWS} 条，完整明细见 Excel 附表。"),
                                           st["note"]))
    story.append(Spacer(1, 6 * mm))
    story.append(Paragraph(esc("说明：综合指标值、等级与名次按《数字化城市管理信息系统 绩效评价》（GB/T 30428.4、CJ/T 292）"
                               "及本市考核办法计算；名次变化与上月比较，↑ 为上升、↓ 为下降。"), st["note"]))

    title = data["title"]

    def on_page(canvas, doc):
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(margin, 9 * mm, title)
        canvas.drawRightString(page_w - margin, 9 * mm, f"第 {doc.page} 页")
        canvas.setStrokeColor(colors.HexColor("#CCCCCC"))
        canvas.setLineWidth(0.4)
        canvas.line(margin, 12 * mm, page_w - margin, 12 * mm)
        canvas.restoreState()

    doc = SimpleDocTemplate(path, pagesize=A4, leftMargin=margin, rightMargin=margin, topMargin=14 * mm,
                            bottomMargin=16 * mm, title=title, author=data["issuer"], subject="月度考核通报",
                            creator="城市运行管理平台", lang="zh-CN")
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)


def _align(kind: str) -> str:
    return "LEFT" if kind in ("text", "datetime") else "CENTER" if kind == "change" else "RIGHT"


def _fig_change(r: dict) -> str:
    d = r["change"]
    if d is None:
        return "—"
    if r["kind"] == "rate":
        return f"{d * 100:+.2f} 个百分点"
    if r["kind"] in ("score", "num"):
        return f"{d:+,.2f}"
    return f"{d:+,}"


def _rule(width: float, color):
    from reportlab.graphics.shapes import Drawing, Line

    d = Drawing(width, 3)
    d.add(Line(0, 1.5, width, 1.5, strokeColor=color, strokeWidth=1.5))
    return d


SERIES_COLORS = ["#A50000", "#1F77B4", "#FF7F0E", "#2CA02C", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F",
                 "#BCBD22", "#17BECF", "#393B79", "#637939", "#8C6D31", "#843C39"]
GRADE_COLORS = {"A": "#2E7D32", "B": "#1F77B4", "C": "#F9A825", "D": "#EF6C00", "E": "#C62828"}


def _bar_chart(districts: list[dict], width: float, height: float, font: str):
    """The districts' scores as vertical bars (in rank order), coloured by grade, with their values."""
    from reportlab.graphics.shapes import Drawing, Line, Rect, String
    from reportlab.lib import colors

    d = Drawing(width, height)
    left, bottom, top = 28, 30, 12
    plot_w, plot_h = width - left - 6, height - bottom - top
    for v in range(0, 101, 20):
        y = bottom + plot_h * v / 100
        d.add(Line(left, y, left + plot_w, y, strokeColor=colors.HexColor("#DDDDDD"), strokeWidth=0.4))
        d.add(String(left - 4, y - 3, str(v), fontName=font, fontSize=7, textAnchor="end"))
    n = len(districts)
    slot = plot_w / max(n, 1)
    bar = min(36, slot * 0.6)
    label_size = 7.5 if slot > 40 else 6
    for i, row in enumerate(districts):
        x = left + slot * i + (slot - bar) / 2
        score = row.get("score")
        if score is not None:
            h = plot_h * max(0.0, min(100.0, score)) / 100
            d.add(Rect(x, bottom, bar, h, fillColor=colors.HexColor(GRADE_COLORS.get(row.get("grade"), "#1F4E79")),
                       strokeColor=None))
            d.add(String(x + bar / 2, bottom + h + 2, f"{score:.1f}", fontName=font, fontSize=7, textAnchor="middle"))
        else:
            d.add(String(x + bar / 2, bottom + 2, "—", fontName=font, fontSize=7, textAnchor="middle"))
        name = str(row.get("name") or row.get("code"))
        d.add(String(x + bar / 2, bottom - 10, name[:8], fontName=font, fontSize=label_size, textAnchor="middle"))
    d.add(Line(left, bottom, left + plot_w, bottom, strokeColor=colors.HexColor("#555555"), strokeWidth=0.6))
    # a legend of the grade colours, right-aligned at the bottom
    x = left + plot_w
    for g in reversed(GRADE_ORDER):
        d.add(String(x, 4, f"{g} 级", fontName=font, fontSize=7, textAnchor="end"))
        d.add(Rect(x - 26, 4, 7, 7, fillColor=colors.HexColor(GRADE_COLORS[g]), strokeColor=None))
        x -= 40
    return d


def _trend_chart(trend: dict, width: float, height: float, font: str):
    """The city's score (thick) and each district's over the months; a month without a score is a gap."""
    from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, String
    from reportlab.lib import colors

    months, series = trend["months"], trend["series"]
    legend_rows = (len(series) + 4) // 5
    d = Drawing(width, height + legend_rows * 11)
    left, bottom, top = 28, 18 + legend_rows * 11, 8
    plot_w, plot_h = width - left - 10, height - 18 - top
    values = [v for s in series for v in s["scores"] if v is not None]
    lo = 0.0 if not values else max(0.0, (min(values) // 10) * 10 - 10)
    hi = 100.0
    for v in range(int(lo), 101, 10):
        y = bottom + plot_h * (v - lo) / (hi - lo)
        d.add(Line(left, y, left + plot_w, y, strokeColor=colors.HexColor("#E2E2E2"), strokeWidth=0.4))
        d.add(String(left - 4, y - 3, str(v), fontName=font, fontSize=7, textAnchor="end"))
    step = plot_w / max(len(months) - 1, 1)
    for i, m in enumerate(months):
        d.add(String(left + step * i, bottom - 11, m.replace("-", "."), fontName=font, fontSize=7,
                     textAnchor="middle"))
    for k, s in enumerate(series):
        color = colors.HexColor(SERIES_COLORS[k % len(SERIES_COLORS)])
        thick = 2.0 if k == 0 else 0.9
        run: list[float] = []
        for i, v in enumerate(s["scores"] + [None]):
            if v is not None:
                x, y = left + step * i, bottom + plot_h * (max(lo, min(hi, v)) - lo) / (hi - lo)
                run += [x, y]
                if k == 0:
                    d.add(Circle(x, y, 1.8, fillColor=color, strokeColor=None))
                continue
            if len(run) >= 4:
                d.add(PolyLine(run, strokeColor=color, strokeWidth=thick))
            elif len(run) == 2:
                d.add(Circle(run[0], run[1], 1.5, fillColor=color, strokeColor=None))
            run = []
        # legend: five to a row under the plot
        lx = left + (k % 5) * (plot_w / 5)
        ly = 4 + (legend_rows - 1 - k // 5) * 11
        d.add(Line(lx, ly + 3, lx + 14, ly + 3, strokeColor=color, strokeWidth=thick + 0.5))
        d.add(String(lx + 18, ly, str(s["name"])[:10], fontName=font, fontSize=7))
    return d


# ---- files ---------------------------------------------------------------------------------------------
WRITERS: dict[str, Callable[[dict, Any], None]] = {"xlsx": write_xlsx, "pdf": write_pdf}
MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


def format_of(path) -> str:
    """'xlsx' or 'pdf' from a file name, or ReportError."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ReportError(f"输出文件须以 .xlsx 或 .pdf 结尾，收到 {Path(path).name!r}")
    return fmt


def write_report(data: dict, path) -> Path:
    """Writes the report to `path` (its format from the extension) through a temporary file in the same
    directory, renamed over the target only when complete: a failure leaves nothing behind."""
    path = Path(path)
    writer = WRITERS[format_of(path)]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        writer(data, tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 is for the half-written file, not the report
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def render(data: dict, fmt: str) -> bytes:
    """The report as bytes (the download route)."""
    if fmt not in FORMATS:
        raise ReportError("format 须为 xlsx 或 pdf")
    buf = io.BytesIO()
    WRITERS[fmt](data, buf)
    return buf.getvalue()


def report_filename(data: dict, fmt: str) -> str:
    """The file name cities give it: 常州市2026年11月城市运行管理考核通报.pdf."""
    return f"{data['scope']['name']}{data['month_label']}城市运行管理考核通报.{fmt}"
