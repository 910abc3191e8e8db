"""Devices from a file (the `import-devices` command of CONTRACT.md): every row checked before anything is written.

A CSV with the header ``device_id,type,name,lon,lat,unit_code`` (UTF-8, optional BOM; any column order) or a
GeoJSON FeatureCollection of Point features whose properties are ``device_id,type,name,unit_code`` (the point
gives lon and lat). The file is streamed twice, a batch of rows at a time: the first pass checks every row
(its fields, the type against data/catalog/device_types.json, the unit against the units table, the point
against the city's grids, the id against the rows before it) and keeps only the problems and one entry per
id; with any problem the file is refused with :class:`DeviceImportError`, every problem listed with its row
number, field and a Chinese message, and nothing is written. Otherwise the second pass writes every batch in
one transaction: new ids are inserted (status offline: nothing heard from them yet), known ids get the
file's type, name, position and unit (their status, last values and history stay).
"""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from sqlalchemy import select

from data.area_directory import AreaDirectory
from data.db import Database
from data.devices import write_devices
from data.models import Unit
from dispatch.devices import DeviceType
from dispatch.limits import bad_character
from geo.import_rows import NOT_A_FEATURE, NOT_A_POINT, csv_rows, point_features, row_word
from geo.importer import UnreadableFile

__all__ = ["COLUMNS", "DeviceImportError", "DeviceImportReport", "import_devices"]

COLUMNS = ("device_id", "type", "name", "lon", "lat", "unit_code")
LABELS = {"device_id": "设备编号", "type": "设备类型", "name": "设备名称", "lon": "经度", "lat": "纬度",
          "unit_code": "责任单位", "geometry": "位置", "file": "文件"}
# A device id is one level of an MQTT topic (ucc/devices/ID/telemetry) and a path segment of the API: no
# '/', '+', '#' or spaces.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_NAME = 100
BATCH_SIZE = 2000
# How many problems are kept (all are counted), and how many the message lists.
PROBLEM_LIMIT = 1000
MESSAGE_LIMIT = 200
MAX_JSON_DEPTH = 16  # a Point feature's coordinates sit at depth 4


class DeviceImportError(ValueError):
    """The file was refused; nothing was written. ``problems``: [(row, field, message)] in file order (row 0:
    the whole file); ``total``: how many there are (``problems`` keeps the first PROBLEM_LIMIT)."""

    def __init__(self, problems: list[tuple[int, str, str]], path: str, total: int | None = None, unit: str = "行"):
        self.problems = problems
        self.total = len(problems) if total is None else total
        lines = [f"{path}：发现 {self.total:,} 处问题，未导入任何设备"]
        for row, fld, msg in problems[:MESSAGE_LIMIT]:
            where = f"第 {row} {unit}" if row else "文件"
            lines.append(f"  {where}{'' if fld == 'file' else ' ' + fld + '（' + LABELS.get(fld, fld) + '）'}：{msg}")
        if self.total > min(len(problems), MESSAGE_LIMIT):
            lines.append(f"  …… 另有 {self.total - min(len(problems), MESSAGE_LIMIT):,} 处问题未列出")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class DeviceImportReport:
    rows: int
    inserted: int
    updated: int
    by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        types = "，".join(f"{k} {v:,}" for k, v in sorted(self.by_type.items()))
        return (f"已导入 {self.rows:,} 台设备：新增 {self.inserted:,}，更新已有设备 {self.updated:,}"
                f"（按类型：{types}），用时 {self.seconds:.1f} 秒")




@dataclass
class _Raw:
    row: int
    device_id: object
    type: object
    name: object
    lon: object
    lat: object
    unit_code: object
    problem: tuple[str, str] | None = None  # (field, message) of a row that could not be taken apart


# ---- reading: a stream of rows (geo/import_rows.py reads the file) -------------------------------
def _csv_rows(path: Path) -> Iterator[_Raw]:
    for line, fields, wrong_width in csv_rows(path, COLUMNS):
        if fields is None:
            yield _Raw(line, None, None, None, None, None, None, ("file", wrong_width))
        else:
            yield _Raw(line, *(f.strip() for f in fields))


def _geojson_rows(path: Path) -> Iterator[_Raw]:
    for n, props, point, problem in point_features(path, MAX_JSON_DEPTH):
        if problem == "feature":
            yield _Raw(n, None, None, None, None, None, None, ("file", NOT_A_FEATURE))
            continue
        lon, lat = point if point is not None else (None, None)
        yield _Raw(n, props.get("device_id"), props.get("type"), props.get("name"), lon, lat, props.get("unit_code"),
                   ("geometry", NOT_A_POINT) if problem == "geometry" else None)


def _rows(path: Path) -> tuple[Iterator[_Raw], str]:
    word = row_word(path)
    return (_csv_rows(path) if word == "行" else _geojson_rows(path)), word


# ---- checking -----------------------------------------------------------------------------------
def _text(value) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a GeoJSON id or unit code written as a number
    return None


def _number(value, fld: str, lo: float, hi: float, out: list) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        out.append((fld, "为空" if value in (None, "") else f"须为数字，不能是 {value!r}"))
        return None
    if isinstance(value, (int, float)):
        v = float(value)
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            out.append((fld, f"须为数字，不能是“{value}”"))
            return None
    if not math.isfinite(v) or not lo <= v <= hi:
        out.append((fld, f"超出范围：{value}（须在 {lo:g} 到 {hi:g} 之间）"))
        return None
    return v


class _Checker:
    def __init__(self, types: dict[str, DeviceType], units: set[str], areas: AreaDirectory):
        self.types = types
        self.units = units
        self.locator = areas.locator()
        if self.locator is None:
            raise UnreadableFile("数据库中还没有城市网格，请先运行 seed-demo 或 import-grid")
        self._district: dict[int, str] = {}

    def row(self, raw: _Raw) -> tuple[dict | None, list[tuple[str, str]]]:
        out: list[tuple[str, str]] = []
        if raw.problem is not None:
            out.append(raw.problem)
        device_id = _text(raw.device_id)
        if not device_id:
            out.append(("device_id", "为空"))
        elif not ID_PATTERN.match(device_id):
            out.append(("device_id", f"“{device_id[:80]}”不合规：须以字母或数字开头，只含字母、数字和 . _ : -，至多 64 个字符"
                                     "（设备编号用作 MQTT 主题的一级和接口路径）"))
        type_ = _text(raw.type)
        if not type_:
            out.append(("type", "为空"))
        elif type_ not in self.types:
            out.append(("type", f"未知的设备类型“{type_[:40]}”（可用：{'、'.join(self.types)}）"))
        name = _text(raw.name)
        if not name:
            out.append(("name", "为空"))
        elif len(name) > MAX_NAME:
            out.append(("name", f"过长（至多 {MAX_NAME} 个字符）"))
        elif bad_character(name) is not None:
            out.append(("name", f"含控制字符 U+{ord(bad_character(name)):04X}"))
        if raw.problem is None or raw.problem[0] != "geometry":
            lon = _number(raw.lon, "lon", -180.0, 180.0, out)
            lat = _number(raw.lat, "lat", -90.0, 90.0, out)
        else:
            lon = lat = None
        unit = _text(raw.unit_code)
        if not unit:
            out.append(("unit_code", "为空"))
        elif unit not in self.units:
            out.append(("unit_code", f"未知的处置单位编码“{unit[:60]}”"))
        if raw.problem is not None and raw.problem[0] == "file":
            return None, out
        return {"id": device_id, "type": type_, "name": name, "lon": lon, "lat": lat, "unit_code": unit}, out

    def locate(self, rows: list[dict]) -> list[bool]:
        """Sets grid_code and district_code of each row whose point is in a grid; False where it is outside."""
        idx = self.locator.locate_many(np.array([r["lon"] for r in rows]), np.array([r["lat"] for r in rows]))
        inside = []
        for r, i in zip(rows, idx.tolist()):
            if i < 0:
                inside.append(False)
                continue
            r["grid_code"] = str(self.locator.grid_codes[i])
            district = self._district.get(i)
            if district is None:
                district = self._district[i] = next(a.code for a in self.locator.chains[i] if a.level == 2)
            r["district_code"] = district
            inside.append(True)
        return inside


def _batches(path: Path, checker: _Checker, seen: dict[str, int] | None, problems: list, counter: list[int],
             batch_size: int) -> Iterator[list[dict]]:
    """The file's checked rows, a batch at a time; every problem goes to `problems` as (row, field, message)
    (only the first PROBLEM_LIMIT kept, all counted in counter[0]). `seen`: id → first row, for duplicates."""

    def problem(row: int, fld: str, msg: str) -> None:
        counter[0] += 1
        if len(problems) < PROBLEM_LIMIT:
            problems.append((row, fld, msg))

    rows, _unit = _rows(path)
    batch: list[tuple[int, dict]] = []

    def flush() -> list[dict]:
        located = [(n, r) for n, r in batch if r["lon"] is not None and r["lat"] is not None]
        if located:
            for (n, r), inside in zip(located, checker.locate([r for _, r in located])):
                if not inside:
                    problem(n, "lon", f"坐标({r['lon']}, {r['lat']})不在本市网格范围内")
        good = [r for n, r in batch if "grid_code" in r]
        batch.clear()
        return good

    for raw in rows:
        rec, found = checker.row(raw)
        for fld, msg in found:
            problem(raw.row, fld, msg)
        if rec is not None and seen is not None and rec["id"]:
            first = seen.setdefault(rec["id"], raw.row)
            if first != raw.row:
                problem(raw.row, "device_id", f"设备编号 {rec['id']} 与第 {first} {_unit}重复")
                found = found or [("device_id", "")]
        if rec is not None and not found:
            batch.append((raw.row, rec))
        elif rec is not None and rec["lon"] is not None and rec["lat"] is not None:
            batch.append((raw.row, {**rec, "_bad": True}))  # still located: its point may be a problem too
        if len(batch) >= batch_size:
            yield [r for r in flush() if not r.get("_bad")]
    if batch:
        yield [r for r in flush() if not r.get("_bad")]


def import_devices(db: Database, areas: AreaDirectory, types: dict[str, DeviceType], path, *,
                   batch_size: int = BATCH_SIZE) -> DeviceImportReport:
    """Check the whole file, then write it in one transaction; DeviceImportError (nothing written) when any row
    is bad or the file cannot be read."""
    started = time.perf_counter()
    path = Path(path)
    try:
        unit_word = row_word(path)
    except UnreadableFile as exc:
        raise DeviceImportError([(0, "file", str(exc))], str(path))
    with db.engine.connect() as conn:
        units = set(conn.scalars(select(Unit.code)))
    problems: list = []
    counter = [0]
    rows = 0
    by_type: Counter = Counter()
    try:
        checker = _Checker(types, units, areas)
        seen: dict[str, int] = {}
        for good in _batches(path, checker, seen, problems, counter, batch_size):
            rows += len(good)
            by_type.update(r["type"] for r in good)
    except UnreadableFile as exc:
        raise DeviceImportError(problems[:PROBLEM_LIMIT - 1] + [(getattr(exc, "line", 0), "file", str(exc))], str(path),
                                total=counter[0] + 1, unit=unit_word)
    if counter[0]:
        raise DeviceImportError(sorted(problems, key=lambda p: p[0]), str(path), total=counter[0], unit=unit_word)
    if rows == 0:
        raise DeviceImportError([(0, "file", "文件中没有设备")], str(path))
    del seen  # the duplicates were ruled out: the write pass needs no memory of ids
    inserted = updated = written = 0
    try:
        with db.session() as s:
            for good in _batches(path, checker, None, problems, counter, batch_size):
                if counter[0]:
                    break
                i, u = write_devices(s, good)
                inserted, updated, written = inserted + i, updated + u, written + len(good)
            if counter[0] or written != rows:  # the file changed between the passes
                raise _Changed()
    except _Changed:
        raise DeviceImportError(sorted(problems, key=lambda p: p[0])
                                + [(0, "file", "文件在校验后被修改，已全部回滚，请重新导入")], str(path),
                                total=counter[0] + 1, unit=unit_word)
    except UnreadableFile as exc:
        raise DeviceImportError([(0, "file", f"{exc}（文件在校验后被修改，已全部回滚）")], str(path))
    return DeviceImportReport(rows=rows, inserted=inserted, updated=updated, by_type=dict(by_type),
                              seconds=time.perf_counter() - started)


class _Changed(Exception):
    pass
