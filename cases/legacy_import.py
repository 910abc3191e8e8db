"""Historical cases from a legacy system (the `import-cases` command of CONTRACT.md).

:func:`import_cases` reads a CSV with the columns of :data:`COLUMNS` (UTF-8, optional BOM, header
row; times ISO 8601 *with* an offset, empty = never happened), checks every row first and refuses
the whole file with :class:`CaseImportError` — every defect with its line number, in Chinese —
if any row is bad. Otherwise it writes every case in one transaction, in batches of a Core
``INSERT`` executemany (no ORM objects), each followed by one ``INSERT … SELECT`` that makes the
batch's history rows in the database; a crash leaves nothing half-imported.

How a legacy row becomes a case
-------------------------------
* the point is located in bulk (``Locator.locate_many``); grid and district come from its chain;
* ``deadline_at`` is taken as given (authoritative, never recomputed; empty = no deadline);
* an empty ``unit_code`` is routed with :func:`dispatch.routing.route_case` at the category's
  level (the reason is recorded in ``route_reason``); a given one is kept (it must exist);
* the state follows from the latest time: closed_at → closed, resolved_at → resolved,
  dispatched_at → dispatched, rejected_at → rejected, accepted_at → accepted, else reported;
* the legacy id is kept, without a schema change, in the unique ``idempotency_key`` column as
  ``legacy:<case_id>`` — so importing the same file again is refused row by row as duplicates;
* one ``case_history`` row per case (action ``import``), no ``case_events`` rows: history is
  not live news;
* ``rework_count`` / ``extension_count`` as given; ``time_unit`` and ``kind`` from the category.
"""
from __future__ import annotations

import csv
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import DateTime, String, bindparam, func, insert, literal, null, select
from sqlalchemy.exc import IntegrityError

from cases.service import SOURCES, CaseService
from data.models import Case, CaseHistory, UTCDateTime
from data.models import Unit as UnitRow
from dispatch.lifecycle import STATE_LABELS
from dispatch.routing import LEVEL_NAMES, route_case

__all__ = ["COLUMNS", "LEGACY_PREFIX", "CaseImportError", "ImportReport", "import_cases", "legacy_key"]

UTC = timezone.utc
COLUMNS = ("case_id", "category_code", "lon", "lat", "source", "reported_at", "accepted_at", "rejected_at",
           "dispatched_at", "unit_code", "deadline_at", "resolved_at", "closed_at", "rework_count",
           "extension_count")
TIME_COLUMNS = ("reported_at", "accepted_at", "rejected_at", "dispatched_at", "deadline_at", "resolved_at",
                "closed_at")
LABELS = {"case_id": "原编号", "category_code": "事件类别", "lon": "经度", "lat": "纬度", "source": "来源渠道",
          "reported_at": "上报时间", "accepted_at": "立案时间", "rejected_at": "不予立案时间",
          "dispatched_at": "派遣时间", "unit_code": "处置单位", "deadline_at": "处置时限",
          "resolved_at": "处置完成时间", "closed_at": "结案时间", "rework_count": "返工次数",
          "extension_count": "延期次数"}
LEGACY_PREFIX = "legacy:"
MAX_CASE_ID = 100 - len(LEGACY_PREFIX)   # idempotency_key is String(100)
IMPORT_ACTOR = "system:import"
# A historical time may not lie in the future (beyond a little clock skew).
FUTURE_SLACK = timedelta(minutes=5)
# How many problems the exception's message lists (all of them are in .problems).
MESSAGE_LIMIT = 200
_IN_CHUNK = 500   # keys per IN (…) when looking for already imported cases
_ID_CHUNK = 5000  # keys per IN (…) when reading back the ids of a written batch

_COL = {name: i for i, name in enumerate(COLUMNS)}
_LEGACY_TIMES = ("reported_at", "accepted_at", "rejected_at", "dispatched_at", "resolved_at", "closed_at",
                 "deadline_at")
_CASE_TIMES = _LEGACY_TIMES + ("updated_at",)


def legacy_key(case_id: str) -> str:
    """The idempotency key under which a legacy case is stored."""
    return LEGACY_PREFIX + case_id


def _label(col: str) -> str:
    return f"{col}（{LABELS[col]}）"


class CaseImportError(ValueError):
    """The file was refused; nothing was written. ``problems``: [(line, message)], sorted by line;
    line 1 is the header, 0 the whole file."""

    def __init__(self, problems: Sequence[tuple[int, str]], path: str | None = None):
        self.problems = sorted(problems, key=lambda p: p[0])
        self.path = path
        bad_lines = len({line for line, _ in self.problems if line > 0})
        head = f"{path}：" if path else ""
        head += f"发现 {len(self.problems)} 处问题"
        if bad_lines:
            head += f"（涉及 {bad_lines} 行）"
        head += "，未导入任何案件"
        lines = [head]
        for line, msg in self.problems[:MESSAGE_LIMIT]:
            lines.append(f"  第 {line} 行：{msg}" if line else f"  {msg}")
        if len(self.problems) > MESSAGE_LIMIT:
            lines.append(f"  …… 另有 {len(self.problems) - MESSAGE_LIMIT} 处问题未列出")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ImportReport:
    """What was imported: ``rows`` data rows read, ``imported`` cases written, ``by_state``
    {state: count}, ``seconds`` wall time (reading, checking and writing), ``routed`` cases whose
    unit was chosen by the routing rules (empty ``unit_code``)."""

    rows: int
    imported: int
    by_state: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    routed: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.imported / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        states = "，".join(f"{STATE_LABELS.get(k, k)} {v:,}" for k, v in sorted(self.by_state.items(),
                                                                              key=lambda kv: -kv[1]))
        return (f"已导入 {self.imported:,} 件历史案件（{states}；其中 {self.routed:,} 件按指挥手册自动确定处置单位），"
                f"用时 {self.seconds:.1f} 秒，{self.rows_per_second:,.0f} 行/秒")


# ---------------------------------------------------------------------------------------------
# reading

def _read(path) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
    """[(line number, fields)] of the data rows, or problems with the file or its header."""
    p = Path(path)
    reader = None
    try:
        with p.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                return [], [(0, "文件为空（缺少表头行）")]
            names = [h.strip() for h in header]
            missing = [c for c in COLUMNS if c not in names]
            extra = [h for h in names if h not in COLUMNS]
            dups = sorted({h for h in names if names.count(h) > 1})
            if missing or extra or dups:
                parts = []
                if missing:
                    parts.append("缺少列 " + "、".join(missing))
                if extra:
                    parts.append("多余的列 " + "、".join(h or "（空列名）" for h in extra))
                if dups:
                    parts.append("重复的列 " + "、".join(dups))
                return [], [(1, "表头不符：" + "；".join(parts) + "。须恰好为：" + ",".join(COLUMNS))]
            order = [names.index(c) for c in COLUMNS]
            identity = order == list(range(len(COLUMNS)))
            rows: list[tuple[int, list[str]]] = []
            problems: list[tuple[int, str]] = []
            width = len(COLUMNS)
            last = reader.line_num
            for fields in reader:
                line = last + 1              # first physical line of this record
                last = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue                 # blank line
                if len(fields) != width:
                    problems.append((line, f"字段数为 {len(fields)}，表头为 {width} 列"))
                    continue
                rows.append((line, fields if identity else [fields[i] for i in order]))
            return rows, problems
    except FileNotFoundError:
        return [], [(0, f"文件不存在：{p}")]
    except IsADirectoryError:
        return [], [(0, f"不是文件：{p}")]
    except UnicodeDecodeError as exc:
        return [], [(0, f"文件不是 UTF-8 编码（第 {exc.start} 字节附近无法解码）")]
    except csv.Error as exc:
        return [], [(reader.line_num if reader is not None else 0, f"CSV 格式错误：{exc}")]


# ---------------------------------------------------------------------------------------------
# checking

def _time(text: str, col: str, out: list[str]) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        out.append(f"{_label(col)}无法解析：“{text}”（须为 ISO 8601 时间，带时区偏移，如 2026-03-01T09:30:00+08:00）")
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        out.append(f"{_label(col)}缺少时区偏移：“{text}”（如 2026-03-01T09:30:00+08:00 或 …Z）")
        return None
    return dt.astimezone(UTC)


def _count(text: str, col: str, out: list[str]) -> int:
    if not text:
        return 0
    try:
        n = int(text)
    except ValueError:
        out.append(f"{_label(col)}须为非负整数，不能是“{text}”")
        return 0
    if n < 0:
        out.append(f"{_label(col)}不能为负数：{n}")
        return 0
    return n


def _coord(text: str, col: str, lo: float, hi: float, out: list[str]) -> float | None:
    if not text:
        out.append(f"{_label(col)}为空")
        return None
    try:
        v = float(text)
    except ValueError:
        out.append(f"{_label(col)}须为数字，不能是“{text}”")
        return None
    if not math.isfinite(v) or not lo <= v <= hi:
        out.append(f"{_label(col)}超出范围：{text}（须在 {lo:g} 到 {hi:g} 之间）")
        return None
    return v


def _state_of(t: dict) -> str:
    if t["closed_at"]:
        return "closed"
    if t["resolved_at"]:
        return "resolved"
    if t["dispatched_at"]:
        return "dispatched"
    if t["rejected_at"]:
        return "rejected"
    if t["accepted_at"]:
        return "accepted"
    return "reported"


def _time_rules(t: dict, now: datetime, out: list[str]) -> None:
    """Inconsistent times: order, exclusive outcomes, steps without acceptance, the future."""
    rep = t["reported_at"]
    for col in TIME_COLUMNS:
        v = t[col]
        if col != "deadline_at" and v is not None and v > now + FUTURE_SLACK:   # a deadline may lie ahead
            out.append(f"{_label(col)}晚于当前时间（历史案件的时间不能在将来）")
    if rep is not None:
        for col in ("accepted_at", "rejected_at", "dispatched_at", "resolved_at", "closed_at", "deadline_at"):
            v = t[col]
            if v is not None and v < rep:
                out.append(f"{_label(col)}早于上报时间（{_label('reported_at')}）")
    acc, rej = t["accepted_at"], t["rejected_at"]
    if acc is not None and rej is not None:
        out.append("立案时间与不予立案时间同时存在：一件案件只能立案或不予立案")
    later = [c for c in ("dispatched_at", "resolved_at", "closed_at") if t[c] is not None]
    if later and rej is not None:
        out.append("不予立案的案件不能有" + "、".join(LABELS[c] for c in later))
    elif later and acc is None:
        out.append("有" + "、".join(LABELS[c] for c in later) + "却没有立案时间（accepted_at）")
    seq = [c for c in ("accepted_at", "dispatched_at", "resolved_at", "closed_at") if t[c] is not None]
    for a, b in zip(seq, seq[1:]):
        if t[b] < t[a]:
            out.append(f"{_label(b)}早于{_label(a)}")


@dataclass
class _Row:
    line: int
    case_id: str
    category: object
    lon: float | None
    lat: float | None
    source: str
    unit_code: str | None
    times: dict
    rework: int
    extension: int


def _existing_keys(service: CaseService, keys: list[str]) -> set[str]:
    found: set[str] = set()
    with service.db.engine.connect() as conn:
        for i in range(0, len(keys), _IN_CHUNK):
            chunk = keys[i:i + _IN_CHUNK]
            found.update(conn.scalars(select(Case.idempotency_key).where(Case.idempotency_key.in_(chunk))))
    return found


def _check(service: CaseService, raw: list[tuple[int, list[str]]], now: datetime, tick=None):
    """Every row checked; returns (good rows, grid index per row, problems)."""
    catalog = service.catalog()
    with service.db.engine.connect() as conn:
        units = {code: level for code, level in conn.execute(select(UnitRow.code, UnitRow.level))}
    problems: list[tuple[int, str]] = []
    rows: list[_Row] = []
    first_line: dict[str, int] = {}
    i_id, i_cat, i_lon, i_lat, i_src, i_unit = (_COL[c] for c in ("case_id", "category_code", "lon", "lat",
                                                                   "source", "unit_code"))
    i_rw, i_ext = _COL["rework_count"], _COL["extension_count"]
    i_times = [(c, _COL[c]) for c in TIME_COLUMNS]
    sources = set(SOURCES)
    for n, (line, f) in enumerate(raw):
        if tick is not None and n % 5000 == 0 and n:
            tick(5000)
        out: list[str] = []
        f = [x.strip() for x in f]
        case_id = f[i_id]
        if not case_id:
            out.append(f"{_label('case_id')}为空")
        elif len(case_id) > MAX_CASE_ID:
            out.append(f"{_label('case_id')}过长（最多 {MAX_CASE_ID} 个字符）")
        elif case_id in first_line:
            out.append(f"原编号 {case_id} 在文件中重复（与第 {first_line[case_id]} 行相同）")
        else:
            first_line[case_id] = line
        code = f[i_cat]
        category = catalog.get(code)
        if category is None:
            out.append(f"未知的事件类别编码“{code}”" if code else f"{_label('category_code')}为空")
        lon = _coord(f[i_lon], "lon", -180.0, 180.0, out)
        lat = _coord(f[i_lat], "lat", -90.0, 90.0, out)
        source = f[i_src]
        if source not in sources:
            out.append(f"未知的来源渠道“{source}”（须为 {'、'.join(SOURCES)} 之一）" if source
                       else f"{_label('source')}为空（须为 {'、'.join(SOURCES)} 之一）")
        unit_code = f[i_unit] or None
        if unit_code is not None and unit_code not in units:
            out.append(f"未知的处置单位编码“{unit_code}”")
        times = {col: _time(f[i], col, out) for col, i in i_times}
        if not f[_COL["reported_at"]]:
            out.append(f"{_label('reported_at')}为空（上报时间必填）")
        _time_rules(times, now, out)
        rework = _count(f[i_rw], "rework_count", out)
        extension = _count(f[i_ext], "extension_count", out)
        if out:
            problems.extend((line, m) for m in out)
        rows.append(_Row(line, case_id, category, lon, lat, source, unit_code, times, rework, extension))
    if tick is not None and raw:
        tick(len(raw) % 5000 or 5000)

    # Already imported (same legacy id stored earlier)?
    keys = [legacy_key(r.case_id) for r in rows if r.case_id and first_line.get(r.case_id) == r.line]
    done = _existing_keys(service, keys)
    if done:
        for r in rows:
            if legacy_key(r.case_id) in done and first_line.get(r.case_id) == r.line:
                problems.append((r.line, f"原编号 {r.case_id} 已导入过（重复导入），不能再次导入"))

    # Points outside the city, in bulk.
    locator = service.areas.locator()
    grid_idx = np.full(len(rows), -1, dtype=np.int64)
    if locator is None:
        problems.append((0, "尚未导入城市网格，无法定位案件（请先执行 import-grid 或 seed-demo）"))
    else:
        ok = np.array([r.lon is not None and r.lat is not None for r in rows], dtype=bool)
        if ok.any():
            lons = np.array([r.lon for r in rows if r.lon is not None and r.lat is not None], dtype=np.float64)
            lats = np.array([r.lat for r in rows if r.lon is not None and r.lat is not None], dtype=np.float64)
            grid_idx[ok] = locator.locate_many(lons, lats)
        for k in np.flatnonzero(ok & (grid_idx < 0)).tolist():
            r = rows[k]
            problems.append((r.line, f"坐标（{r.lon}, {r.lat}）不在本市范围内"))
    return rows, grid_idx, problems


# ---------------------------------------------------------------------------------------------
# writing

def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TimeElapsedColumn(), TextColumn("剩余"), TimeRemainingColumn())


def import_cases(service: CaseService, path, progress: bool = True, batch_size: int = 5000) -> ImportReport:
    """Import the legacy cases of the CSV at ``path`` through ``service`` (its database, hierarchy,
    catalog and units). All or nothing: raises :class:`CaseImportError` listing every problem
    (nothing written) or writes every row in one transaction and returns an :class:`ImportReport`.
    ``progress`` shows a rich progress bar; ``batch_size`` rows go in each INSERT executemany."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    started = time.perf_counter()
    now = service.clock()
    service.reload_reference()       # the catalog and units as they are in the database now
    raw, problems = _read(path)
    if problems:
        raise CaseImportError(problems, str(path))
    bar = _progress(progress)
    if bar is not None:
        bar.start()
    try:
        check_task = bar.add_task("校验", total=len(raw)) if bar else None
        tick = (lambda k: bar.advance(check_task, k)) if bar else None
        rows, grid_idx, problems = _check(service, raw, now, tick)
        if problems:
            raise CaseImportError(problems, str(path))
        write_task = bar.add_task("写入", total=len(rows)) if bar else None
        imported, by_state, routed = _write(service, rows, grid_idx, now, batch_size,
                                            (lambda k: bar.advance(write_task, k)) if bar else None)
    finally:
        if bar is not None:
            bar.stop()
    return ImportReport(rows=len(raw), imported=imported, by_state=dict(by_state),
                        seconds=time.perf_counter() - started, routed=routed)


def _write(service: CaseService, rows: list[_Row], grid_idx: np.ndarray, now: datetime, batch_size: int, tick):
    locator = service.areas.locator()
    unit_index, types = service._routing_refs()
    unit_names = dict(service._unit_names)
    with service.db.engine.connect() as conn:
        unit_levels = {code: (level, name) for code, level, name in
                       conn.execute(select(UnitRow.code, UnitRow.level, UnitRow.name))}
    chains = locator.chains
    grid_codes = [g.code for g in locator.grids]
    districts = [next((a.code for a in ch if a.level == 2), ch[-1].code) for ch in chains]
    routes: dict[tuple[str, int], object] = {}
    by_state: Counter = Counter()
    routed = 0
    # The times are bound as naive UTC through the dialect's plain DateTime: exactly what
    # UTCDateTime stores, minus a Python call per value (about a fifth of the write time).
    case_insert = insert(Case).values({c: bindparam(f"v_{c}", type_=DateTime()) for c in _CASE_TIMES})
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    # One history row per case, made by the database from the rows just written (no id round trip).
    history_cols = ["case_id", "at", "actor", "action", "from_state", "to_state", "note"]
    note = (literal("历史案件导入（原编号 ", String) + func.substr(Case.idempotency_key, len(LEGACY_PREFIX) + 1,
                                                           type_=String) + literal("）", String))
    history_select = select(Case.id, literal(now, UTCDateTime()), literal(IMPORT_ACTOR, String),
                            literal("import", String), null(), Case.state, note)
    imported = 0
    try:
        with service.db.engine.begin() as conn:          # one transaction for the whole file
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:   # indexes of a large table stay in memory while we write (this connection only)
                old_cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
                conn.exec_driver_sql("PRAGMA cache_size=-262144")
            for b in range(0, len(rows), batch_size):
                chunk = rows[b:b + batch_size]
                params = []
                states = []
                for k, r in enumerate(chunk, start=b):
                    gi = int(grid_idx[k])
                    cat = r.category
                    t = r.times
                    state = _state_of(t)
                    states.append(state)
                    if r.unit_code is None:
                        key = (cat.code, gi)
                        decision = routes.get(key)
                        if decision is None:
                            decision = route_case(cat, chains[gi], unit_index, types, level=cat.level)
                            routes[key] = (decision, list(decision.assist_unit_codes),
                                           f"历史案件导入，原系统未记录处置单位，按指挥手册确定：{decision.reason}")
                        decision, assist, reason = routes[key]
                        unit_code, level, upward = decision.unit_code, decision.handling_level, decision.report_upward
                        routed += 1
                    else:
                        unit_code, assist, upward = r.unit_code, [], False
                        level, name = unit_levels[unit_code]
                        reason = (f"历史案件导入，沿用原系统的处置单位：{unit_names.get(unit_code, name)}"
                                  f"（{LEVEL_NAMES.get(level, level)}）")
                    p = {
                        "state": state, "version": 1, "category_code": cat.code, "kind": cat.kind,
                        "source": r.source, "description": "", "lon": r.lon, "lat": r.lat,
                        "grid_code": grid_codes[gi], "district_code": districts[gi], "reporter_count": 1,
                        "idempotency_key": LEGACY_PREFIX + r.case_id, "unit_code": unit_code,
                        "assist_units": assist, "handling_level": level, "route_reason": reason,
                        "report_upward": upward, "time_unit": cat.time_unit, "supervised": False,
                        "escalation_count": 0, "rework_count": r.rework, "extension_count": r.extension,
                        "v_updated_at": now_naive,
                    }
                    for c in _LEGACY_TIMES:
                        v = t[c]
                        p["v_" + c] = None if v is None else v.replace(tzinfo=None)   # already UTC
                    params.append(p)
                # executemany: the driver's fast path (cursor.executemany on SQLite, multi-row VALUES
                # on PostgreSQL).
                conn.execute(case_insert, params)
                keys = [p["idempotency_key"] for p in params]
                for i in range(0, len(keys), _ID_CHUNK):
                    conn.execute(insert(CaseHistory).from_select(
                        history_cols, history_select.where(Case.idempotency_key.in_(keys[i:i + _ID_CHUNK]))))
                by_state.update(states)
                imported += len(chunk)
                if tick is not None:
                    tick(len(chunk))
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA cache_size={int(old_cache)}")
    except IntegrityError as exc:
        # Another import of the same cases committed between our check and our write.
        raise CaseImportError([(0, "写入时与库中已有案件冲突（可能有另一导入同时进行），已全部回滚，未导入任何案件："
                                   f"{str(exc.orig).splitlines()[0] if exc.orig else exc}")]) from exc
    return imported, by_state, routed
