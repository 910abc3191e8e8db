"""Historical cases from a legacy system (the `import-cases` command of CONTRACT.md).

:func:`import_cases` reads a CSV with the columns of :data:`COLUMNS` and any of the optional
:data:`OPTIONAL_COLUMNS` (UTF-8, optional BOM, header row; times ISO 8601 *with* an offset, empty =
never happened; a file without the optional columns imports as before), checks every row first and
refuses the whole file with :class:`CaseImportError` — every defect with its line number, in Chinese
— if any row is bad. Otherwise it writes every case in one transaction, in batches of a Core
``INSERT`` executemany (no ORM objects), each followed by one ``INSERT … SELECT`` that makes the
batch's history rows in the database; a crash leaves nothing half-imported.

Memory does not grow with the file: it is read twice, a row at a time. The first pass checks every
row, in batches (located together, looked up in the database together), keeping only a 64-bit hash
and the line of each legacy id for the duplicates (16 bytes a row) and the first
:data:`PROBLEM_LIMIT` problems (all are counted). The second pass reads the rows again, checks them
again and writes them batch by batch inside the one transaction; a file changed in between (a row
that no longer passes, another row count, another size or modification time) rolls everything
back.

How a legacy row becomes a case
-------------------------------
* the point is located in bulk (``Locator.locate_many``); grid and district come from its chain;
* ``deadline_at`` is taken as given (authoritative, never recomputed; empty = no deadline);
* an empty ``unit_code`` is routed with :func:`dispatch.routing.route_case` at the category's
  level (the reason is recorded in ``route_reason``); a given one is kept (it must exist);
* the state follows from the latest step: voided_at → voided (作废); suspended_at without a later
  resumed_at → suspended (挂账, approved), from the state its other times give (signed, dispatched or
  accepted: ``state_before_suspension``) and with the handling time its deadline had left then
  (``suspension_remaining_hours``, so that 解挂 in the platform moves the deadline as for any case);
  else closed_at → closed, verified_at → verified, resolved_at → resolved, signed_at → signed,
  dispatched_at → dispatched, rejected_at → rejected, accepted_at → accepted, else reported;
* the times must follow the lifecycle's order (CONTRACT.md): every time at or after the report; signed
  ≥ dispatched, resolved ≥ signed, verified ≥ resolved, closed ≥ verified, resumed ≥ suspended ≥
  accepted; a signed_at needs a dispatched_at, a verified_at a resolved_at, a resumed_at a suspended_at;
  nothing happens after 作废 or during a 挂账 that was not lifted; 作废 excludes 结案 and 不予立案;
* ``external_ref`` (the hotline's ticket number, at most 64 characters) is stored as it is;
* the legacy id is kept, without a schema change, in the unique ``idempotency_key`` column as
  ``legacy:<case_id>`` — so importing the same file again is refused row by row as duplicates;
* one ``case_history`` row per case (action ``import``), no ``case_events`` rows: history is
  not live news;
* ``rework_count`` / ``extension_count`` as given; ``time_unit`` and ``kind`` from the category.
"""
from __future__ import annotations

from array import array
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
from dispatch.limits import EARLIEST_DAY, LATEST_DAY, bad_character, day_in_range
from dispatch.routing import LEVEL_NAMES, route_case
from dispatch.working_time import extension_unit
from geo.import_rows import FileProblem, csv_rows

__all__ = ["ALL_COLUMNS", "COLUMNS", "LEGACY_PREFIX", "OPTIONAL_COLUMNS", "CaseImportError", "ImportReport",
           "import_cases", "legacy_key"]

UTC = timezone.utc
COLUMNS = ("case_id", "category_code", "lon", "lat", "source", "reported_at", "accepted_at", "rejected_at",
           "dispatched_at", "unit_code", "deadline_at", "resolved_at", "closed_at", "rework_count",
           "extension_count")
# optional (CONTRACT.md, wave 2): a file may carry any of them, in any place; absent = empty
OPTIONAL_COLUMNS = ("signed_at", "verified_at", "voided_at", "suspended_at", "resumed_at", "external_ref")
ALL_COLUMNS = COLUMNS + OPTIONAL_COLUMNS
TIME_COLUMNS = ("reported_at", "accepted_at", "rejected_at", "dispatched_at", "deadline_at", "resolved_at",
                "closed_at", "signed_at", "verified_at", "voided_at", "suspended_at", "resumed_at")
LABELS = {"case_id": "原编号", "category_code": "事件类别", "lon": "经度", "lat": "纬度", "source": "来源渠道",
          "reported_at": "上报时间", "accepted_at": "立案时间", "rejected_at": "不予立案时间",
          "dispatched_at": "派遣时间", "unit_code": "处置单位", "deadline_at": "处置时限",
          "resolved_at": "处置完成时间", "closed_at": "结案时间", "rework_count": "返工次数",
          "extension_count": "延期次数", "signed_at": "签收时间", "verified_at": "核查通过时间",
          "voided_at": "作废时间", "suspended_at": "挂账时间", "resumed_at": "解挂时间",
          "external_ref": "外部工单号"}
MAX_EXTERNAL_REF = 64   # cases.external_ref is String(64)
LEGACY_PREFIX = "legacy:"
MAX_CASE_ID = 100 - len(LEGACY_PREFIX)   # idempotency_key is String(100)
IMPORT_ACTOR = "system:import"
# A historical time may not lie in the future (beyond a little clock skew).
FUTURE_SLACK = timedelta(minutes=5)
# How many problems the exception's message lists (all of them are in .problems).
MESSAGE_LIMIT = 200
# How many problems are kept for .problems (the smallest line numbers; every one is counted).
PROBLEM_LIMIT = 10_000
# SQLite page cache (KiB) of the writing connection: the indexes of a large table stay in memory
# while it grows. The largest part of the write pass's memory: 64 MB made the 100,000-row import
# ~25 % faster but its peak ~50 MB higher, over the 200 MB the import is held to (bench/bench_imports.py).
MAX_COUNT = 2**31 - 1  # rework_count, extension_count
WRITE_CACHE_KIB = 16 * 1024
# Rows checked, located and written together: each batch is held twice (rows, then INSERT
# parameters); 2,000 peaks ~13 MB below 5,000 at the same speed.
BATCH_SIZE = 2000
_IN_CHUNK = 500   # keys per IN (…) when looking for already imported cases
_ID_CHUNK = 5000  # keys per IN (…) when reading back the ids of a written batch

_COL = {name: i for i, name in enumerate(ALL_COLUMNS)}
_LEGACY_TIMES = ("reported_at", "accepted_at", "rejected_at", "dispatched_at", "resolved_at", "closed_at",
                 "deadline_at", "signed_at", "verified_at", "voided_at", "suspended_at", "resumed_at")
# the reminders' marks: a legacy deadline already passed was dealt with by the old system (no 催办 and
# 督办 with penalty points for the whole imported backlog at the scheduler's first round)
_REMINDER_MARKS = ("auto_urged_deadline", "auto_supervised_deadline")
_CASE_TIMES = _LEGACY_TIMES + ("updated_at",) + _REMINDER_MARKS


def legacy_key(case_id: str) -> str:
    """The idempotency key under which a legacy case is stored."""
    return LEGACY_PREFIX + case_id


def _label(col: str) -> str:
    return f"{col}（{LABELS[col]}）"


class CaseImportError(ValueError):
    """The file was refused; nothing was written. ``problems``: [(line, message)], sorted by line;
    line 1 is the header, 0 the whole file. ``total``: how many problems there are (``problems``
    holds the first PROBLEM_LIMIT of them), ``bad_lines``: how many rows have one."""

    def __init__(self, problems: Sequence[tuple[int, str]], path: str | None = None, *,
                 total: int | None = None, bad_lines: int | None = None):
        self.problems = sorted(problems, key=lambda p: p[0])
        self.path = path
        self.total = len(self.problems) if total is None else total
        if bad_lines is None:
            bad_lines = len({line for line, _ in self.problems if line > 0})
        head = f"{path}：" if path else ""
        head += f"发现 {self.total:,} 处问题"
        if bad_lines:
            head += f"（涉及 {bad_lines:,} 行）"
        head += "，未导入任何案件"
        lines = [head]
        for line, msg in self.problems[:MESSAGE_LIMIT]:
            lines.append(f"  第 {line} 行：{msg}" if line else f"  {msg}")
        if self.total > MESSAGE_LIMIT:
            lines.append(f"  …… 另有 {self.total - MESSAGE_LIMIT:,} 处问题未列出")
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
# reading: a stream of rows, never the whole file

class _FileProblem(Exception):
    """The file cannot be read on (missing, not UTF-8, broken CSV, wrong header): its one problem."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def _file_stamp(path) -> tuple[int, int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _data_rows(path):
    """Yields (line, fields in ALL_COLUMNS order, "" for an optional column the file has not) per data
    row, or (line, None, message) for a row of the wrong width; raises _FileProblem for a file that
    cannot be read on (geo/import_rows.py reads it; a column this file does not know is refused).
    Holds one row at a time."""
    try:
        yield from csv_rows(path, COLUMNS, OPTIONAL_COLUMNS, extra=False)
    except FileProblem as exc:
        raise _FileProblem(exc.line, exc.message)


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
    if not day_in_range(dt):  # past these the shift to UTC overflows, and no city has cases there
        out.append(f"{_label(col)}须在 {EARLIEST_DAY.year}–{LATEST_DAY.year} 年之间：“{text}”")
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
    if n > MAX_COUNT:  # the column is a 32-bit INTEGER on PostgreSQL
        out.append(f"{_label(col)}过大：{n}（最多 {MAX_COUNT}）")
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
    if t["voided_at"]:
        return "voided"
    if t["suspended_at"] and not t["resumed_at"]:
        return "suspended"
    if t["closed_at"]:
        return "closed"
    if t["verified_at"]:
        return "verified"
    if t["resolved_at"]:
        return "resolved"
    if t["signed_at"]:
        return "signed"
    if t["dispatched_at"]:
        return "dispatched"
    if t["rejected_at"]:
        return "rejected"
    if t["accepted_at"]:
        return "accepted"
    return "reported"


def _state_before_suspension(t: dict) -> str:
    """The state a case left for 挂账, from its other times (all at or before the suspension: checked)."""
    if t["resolved_at"]:
        return "rework"        # resolved, then sent back: only a reworked case is in hand again
    if t["signed_at"]:
        return "signed"
    if t["dispatched_at"]:
        return "dispatched"
    return "accepted"


# the lifecycle's steps in their order (each at or after the one before, when both happened)
_ORDER = ("accepted_at", "dispatched_at", "signed_at", "resolved_at", "verified_at", "closed_at")
# steps that need acceptance first (立案): everything the unit and the check do, and 挂账
_AFTER_ACCEPT = ("dispatched_at", "signed_at", "resolved_at", "verified_at", "closed_at", "suspended_at",
                 "resumed_at")
# what must have happened before a step can (a 签收 needs a 派遣, …)
_NEEDS = (("signed_at", "dispatched_at"), ("verified_at", "resolved_at"), ("resumed_at", "suspended_at"))
_STEPS = ("accepted_at", "rejected_at", "dispatched_at", "signed_at", "resolved_at", "verified_at", "closed_at",
          "suspended_at", "resumed_at")


def _time_rules(t: dict, now: datetime, out: list[str]) -> None:
    """Inconsistent times: order, exclusive outcomes, steps without acceptance, the future."""
    rep = t["reported_at"]
    for col in TIME_COLUMNS:
        v = t[col]
        if col != "deadline_at" and v is not None and v > now + FUTURE_SLACK:   # a deadline may lie ahead
            out.append(f"{_label(col)}晚于当前时间（历史案件的时间不能在将来）")
    if rep is not None:
        for col in ("accepted_at", "rejected_at", "dispatched_at", "resolved_at", "closed_at", "deadline_at",
                    "signed_at", "verified_at", "voided_at", "suspended_at", "resumed_at"):
            v = t[col]
            if v is not None and v < rep:
                out.append(f"{_label(col)}早于上报时间（{_label('reported_at')}）")
    acc, rej = t["accepted_at"], t["rejected_at"]
    if acc is not None and rej is not None:
        out.append("立案时间与不予立案时间同时存在：一件案件只能立案或不予立案")
    later = [c for c in _AFTER_ACCEPT if t[c] is not None]
    if later and rej is not None:
        out.append("不予立案的案件不能有" + "、".join(LABELS[c] for c in later))
    elif later and acc is None:
        out.append("有" + "、".join(LABELS[c] for c in later) + "却没有立案时间（accepted_at）")
    for step, before in _NEEDS:
        if t[step] is not None and t[before] is None:
            out.append(f"有{LABELS[step]}却没有{_label(before)}")
    seq = [c for c in _ORDER if t[c] is not None]
    for a, b in zip(seq, seq[1:]):
        if t[b] < t[a]:
            out.append(f"{_label(b)}早于{_label(a)}")
    sus, res, void = t["suspended_at"], t["resumed_at"], t["voided_at"]
    if sus is not None and acc is not None and sus < acc:
        out.append(f"{_label('suspended_at')}早于{_label('accepted_at')}")
    if sus is not None and res is not None and res < sus:
        out.append(f"{_label('resumed_at')}早于{_label('suspended_at')}（再次挂账的案件只填最近一次挂账时间，解挂时间留空）")
    elif sus is not None and res is None:    # on 挂账 since then: nothing else happened after it
        done = [c for c in ("verified_at", "closed_at") if t[c] is not None]
        if done:
            out.append("挂账未解挂的案件不能有" + "、".join(_label(c) for c in done))
        for col in ("accepted_at", "dispatched_at", "signed_at", "resolved_at"):
            if t[col] is not None and t[col] > sus:
                out.append(f"{_label(col)}晚于{_label('suspended_at')}（挂账未解挂，案件不再办理）")
    if void is not None:
        for col, what in (("closed_at", "结案"), ("rejected_at", "不予立案")):
            if t[col] is not None:
                out.append(f"作废时间与{LABELS[col]}同时存在：作废的案件不能再{what}")
        for col in _STEPS:
            if t[col] is not None and t[col] > void:
                out.append(f"{_label(col)}晚于{_label('voided_at')}（作废后案件不再办理）")


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
    external_ref: str | None = None


def _existing_keys(service: CaseService, keys: list[str]) -> set[str]:
    found: set[str] = set()
    with service.db.engine.connect() as conn:
        for i in range(0, len(keys), _IN_CHUNK):
            chunk = keys[i:i + _IN_CHUNK]
            found.update(conn.scalars(select(Case.idempotency_key).where(Case.idempotency_key.in_(chunk))))
    return found




class _Problems:
    """Every problem counted; the first PROBLEM_LIMIT (by line) kept, so a file of a million bad rows
    does not hold a million messages. Lines with a problem are kept as a bitmap (a bit per line)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.items: list[tuple[int, str]] = []
        self.total = 0
        self._bad = bytearray()

    def add(self, line: int, message: str) -> None:
        self.total += 1
        if line > 0:
            byte = line >> 3
            if byte >= len(self._bad):
                self._bad.extend(bytes(max(byte + 1 - len(self._bad), len(self._bad))))
            self._bad[byte] |= 1 << (line & 7)
        self.items.append((line, message))
        if len(self.items) > 2 * self.limit:
            self._trim()

    def _trim(self) -> None:
        self.items.sort(key=lambda p: p[0])
        del self.items[self.limit:]

    def bad_lines(self) -> int:
        return sum(bin(b).count("1") for b in self._bad)

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self, path) -> "CaseImportError":
        self._trim()
        return CaseImportError(self.items, str(path), total=self.total, bad_lines=self.bad_lines())


class _Checker:
    """The checks of one row, with what they need from the database read once (catalog, units)."""

    def __init__(self, service: CaseService, now: datetime):
        self.now = now
        self.catalog = service.catalog()
        with service.db.engine.connect() as conn:
            self.units = {code: level for code, level in conn.execute(select(UnitRow.code, UnitRow.level))}
        self.sources = set(SOURCES)
        self.i = {c: _COL[c] for c in ALL_COLUMNS}
        self.i_times = [(c, _COL[c]) for c in TIME_COLUMNS]

    def row(self, line: int, f: list[str], out: list[str]) -> _Row:
        """The row's own defects go to ``out`` (duplicates, the city's extent and the database are
        checked by the caller, over many rows at once)."""
        i = self.i
        f = [x.strip() for x in f]
        case_id = f[i["case_id"]]
        if not case_id:
            out.append(f"{_label('case_id')}为空")
        elif len(case_id) > MAX_CASE_ID:
            out.append(f"{_label('case_id')}过长（最多 {MAX_CASE_ID} 个字符）")
        code = f[i["category_code"]]
        category = self.catalog.get(code)
        if category is None:
            out.append(f"未知的事件类别编码“{code}”" if code else f"{_label('category_code')}为空")
        lon = _coord(f[i["lon"]], "lon", -180.0, 180.0, out)
        lat = _coord(f[i["lat"]], "lat", -90.0, 90.0, out)
        source = f[i["source"]]
        if source not in self.sources:
            out.append(f"未知的来源渠道“{source}”（须为 {'、'.join(SOURCES)} 之一）" if source
                       else f"{_label('source')}为空（须为 {'、'.join(SOURCES)} 之一）")
        unit_code = f[i["unit_code"]] or None
        if unit_code is not None and unit_code not in self.units:
            out.append(f"未知的处置单位编码“{unit_code}”")
        times = {col: _time(f[k], col, out) for col, k in self.i_times}
        if not f[i["reported_at"]]:
            out.append(f"{_label('reported_at')}为空（上报时间必填）")
        _time_rules(times, self.now, out)
        rework = _count(f[i["rework_count"]], "rework_count", out)
        extension = _count(f[i["extension_count"]], "extension_count", out)
        ref = f[i["external_ref"]] or None
        if ref is not None and len(ref) > MAX_EXTERNAL_REF:
            out.append(f"{_label('external_ref')}过长（最多 {MAX_EXTERNAL_REF} 个字符）")
        elif ref is not None and bad_character(ref) is not None:  # PostgreSQL refuses a NUL in text
            out.append(f"{_label('external_ref')}含控制字符 {bad_character(ref)!r}")
        return _Row(line, case_id, category, lon, lat, source, unit_code, times, rework, extension, ref)


def _id_ok(case_id: str) -> bool:
    return bool(case_id) and len(case_id) <= MAX_CASE_ID


@dataclass
class _Scan:
    rows: int
    stamp: tuple[int, int] | None


def _scan(service: CaseService, path, now: datetime, batch_size: int, tick) -> _Scan:
    """The first pass: every row checked, nothing written; raises CaseImportError with every problem.

    Kept while streaming: a 64-bit hash and the line of each legacy id (16 bytes a row, for the
    duplicates), the current batch of rows (located and looked up in the database together), and at
    most PROBLEM_LIMIT messages."""
    stamp = _file_stamp(path)
    problems = _Problems(PROBLEM_LIMIT)
    checker = _Checker(service, now)
    locator = service.areas.locator()
    if locator is None:
        problems.add(0, "尚未导入城市网格，无法定位案件（请先执行 import-grid 或 seed-demo）")
    hashes, hash_lines = array("q"), array("q")
    already: list[tuple[int, str]] = []   # (line, id) already in the database; settled after duplicates
    batch: list[_Row] = []
    rows = 0

    def settle(batch: list[_Row]) -> None:
        keys = [legacy_key(r.case_id) for r in batch if _id_ok(r.case_id)]
        done = _existing_keys(service, keys) if keys else set()
        if done:
            already.extend((r.line, r.case_id) for r in batch if _id_ok(r.case_id) and legacy_key(r.case_id) in done)
        if locator is not None:
            placed = [r for r in batch if r.lon is not None and r.lat is not None]
            if placed:
                idx = locator.locate_many(np.array([r.lon for r in placed], dtype=np.float64),
                                          np.array([r.lat for r in placed], dtype=np.float64))
                for k in np.flatnonzero(idx < 0).tolist():
                    r = placed[k]
                    problems.add(r.line, f"坐标（{r.lon}, {r.lat}）不在本市范围内")
        if tick is not None:
            tick(len(batch))

    try:
        for line, fields, width_problem in _data_rows(path):
            if width_problem is not None:
                problems.add(line, width_problem)
                continue
            rows += 1
            out: list[str] = []
            r = checker.row(line, fields, out)
            for m in out:
                problems.add(line, m)
            if _id_ok(r.case_id):
                hashes.append(hash(r.case_id))
                hash_lines.append(line)
            batch.append(r)
            if len(batch) >= batch_size:
                settle(batch)
                batch = []
        if batch:
            settle(batch)
    except _FileProblem as exc:
        raise CaseImportError([(exc.line, exc.message)], str(path)) from None

    repeats = _repeated_ids(path, hashes, hash_lines)
    del hashes, hash_lines
    for line, (case_id, first) in sorted(repeats.items()):
        problems.add(line, f"原编号 {case_id} 在文件中重复（与第 {first} 行相同）")
    for line, case_id in already:
        if line not in repeats:   # a repeat is reported as a repeat, once
            problems.add(line, f"原编号 {case_id} 已导入过（重复导入），不能再次导入")
    if problems:
        raise problems.error(path)
    return _Scan(rows, stamp)


def _repeated_ids(path, hashes: array, hash_lines: array) -> dict[int, tuple[str, int]]:
    """{line: (id, first line with that id)} for every later row that repeats a legacy id. Equal
    hashes only name candidates: their ids are read again from the file and compared for real."""
    if len(hashes) < 2:
        return {}
    h = np.frombuffer(hashes, dtype=np.int64)
    lines = np.frombuffer(hash_lines, dtype=np.int64)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same = hs[1:] == hs[:-1]
    if not same.any():
        return {}
    mark = np.zeros(len(hs), dtype=bool)
    mark[1:] |= same
    mark[:-1] |= same
    candidates = set(lines[order[mark]].tolist())
    first: dict[str, int] = {}
    repeats: dict[int, tuple[str, int]] = {}
    i_id = _COL["case_id"]
    for line, fields, width_problem in _data_rows(path):
        if width_problem is None and line in candidates:
            case_id = fields[i_id].strip()
            if case_id in first:
                repeats[line] = (case_id, first[case_id])
            else:
                first[case_id] = line
    return repeats


# ---------------------------------------------------------------------------------------------
# writing

def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TimeElapsedColumn(), TextColumn("剩余"), TimeRemainingColumn())


def import_cases(service: CaseService, path, progress: bool = True, batch_size: int = BATCH_SIZE) -> ImportReport:
    """Import the legacy cases of the CSV at ``path`` through ``service`` (its database, hierarchy,
    catalog and units). All or nothing: raises :class:`CaseImportError` listing every problem
    (nothing written) or writes every row in one transaction and returns an :class:`ImportReport`.
    ``progress`` shows a rich progress bar; ``batch_size`` rows are checked, located and written
    together (one INSERT executemany each). The file is read twice, a row at a time: memory does not
    grow with the file (bench/bench_imports.py)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    started = time.perf_counter()
    now = service.clock()
    service.reload_reference()       # the catalog and units as they are in the database now
    bar = _progress(progress)
    if bar is not None:
        bar.start()
    try:
        check_task = bar.add_task("校验", total=None) if bar else None
        scan = _scan(service, path, now, batch_size, (lambda k: bar.advance(check_task, k)) if bar else None)
        if bar is not None:
            bar.update(check_task, total=scan.rows, completed=scan.rows)
        write_task = bar.add_task("写入", total=scan.rows) if bar else None
        imported, by_state, routed = _write(service, path, scan, now, batch_size,
                                            (lambda k: bar.advance(write_task, k)) if bar else None)
    finally:
        if bar is not None:
            bar.stop()
    return ImportReport(rows=scan.rows, imported=imported, by_state=dict(by_state),
                        seconds=time.perf_counter() - started, routed=routed)


def _changed(path) -> CaseImportError:
    return CaseImportError([(0, "文件在校验之后被修改，已全部回滚，未导入任何案件；请在文件不再变化时重新导入")], str(path))


def _checked_batches(service: CaseService, path, now: datetime, batch_size: int):
    """The second pass: the rows again, checked again (a file changed since the first pass must not
    slip through), in batches of (rows, grid index per row)."""
    checker = _Checker(service, now)
    locator = service.areas.locator()
    batch: list[_Row] = []

    def located(batch):
        idx = locator.locate_many(np.array([r.lon for r in batch], dtype=np.float64),
                                  np.array([r.lat for r in batch], dtype=np.float64))
        if (idx < 0).any():
            raise _changed(path)
        return batch, idx

    try:
        for line, fields, width_problem in _data_rows(path):
            out: list[str] = []
            if width_problem is not None:
                raise _changed(path)
            r = checker.row(line, fields, out)
            if out or r.lon is None or r.lat is None:
                raise _changed(path)
            batch.append(r)
            if len(batch) >= batch_size:
                yield located(batch)
                batch = []
        if batch:
            yield located(batch)
    except _FileProblem:
        raise _changed(path) from None


def _write(service: CaseService, path, scan: _Scan, now: datetime, batch_size: int, tick):
    locator = service.areas.locator()
    unit_index, types = service._routing_refs()
    unit_names = dict(service._unit_names)
    calendar = service.calendar
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
                conn.exec_driver_sql(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
            for chunk, grid_idx in _checked_batches(service, path, now, batch_size):
                params = []
                states = []
                for k, r in enumerate(chunk):
                    gi = int(grid_idx[k])
                    cat = r.category
                    t = r.times
                    state = _state_of(t)
                    states.append(state)
                    if r.unit_code is None:
                        key = (cat.code, gi)
                        decision = routes.get(key)
                        if decision is None:
                            decision = route_case(cat, chains[gi], unit_index, types, level=cat.level,
                                                  exceptions=service._route_exceptions)
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
                        "v_updated_at": now_naive, "external_ref": r.external_ref,
                        "state_before_suspension": None, "suspension_remaining_hours": None,
                    }
                    if state == "suspended":   # 挂账: where it goes back to, and the handling time it had left
                        p["state_before_suspension"] = _state_before_suspension(t)
                        if t["deadline_at"] is not None:
                            p["suspension_remaining_hours"] = calendar.working_time_between(
                                t["suspended_at"], t["deadline_at"], extension_unit(cat.time_unit))
                    for c in _LEGACY_TIMES:
                        v = t[c]
                        p["v_" + c] = None if v is None else v.replace(tzinfo=None)   # already UTC
                    passed = t["deadline_at"] is not None and t["deadline_at"] <= now
                    for c in _REMINDER_MARKS:
                        p["v_" + c] = p["v_deadline_at"] if passed else None
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
            if imported != scan.rows or _file_stamp(path) != scan.stamp:
                raise _changed(path)      # rows added, removed or rewritten since the check: roll back
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA cache_size={int(old_cache)}")
    except IntegrityError as exc:
        # Another import of the same cases committed between our check and our write.
        raise CaseImportError([(0, "写入时与库中已有案件冲突（可能有另一导入同时进行），已全部回滚，未导入任何案件："
                                   f"{str(exc.orig).splitlines()[0] if exc.orig else exc}")]) from exc
    return imported, by_state, routed
