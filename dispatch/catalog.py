"""The dispatch manual (指挥手册) and the unit types, parsed and validated from the files given.

Pure Python (standard library only). Which files are shipped, and where, is data/files.py's business.

Files
-----
``data/catalog/categories.csv`` — one row per minor category (小类), UTF-8 (a BOM is accepted),
header row, columns:

=====================  ==================================================================
code                   6 digits ``KKMMNN``: kind ``KK``, major class ``MM`` within the kind,
                       minor category ``NN`` within the major class (see below)
name                   minor category name (小类名称), unique in the catalog
major_class            major class name (大类名称); one name per ``KKMM``
kind                   ``component`` (部件) | ``event`` (事件) | ``grid`` (网格事件) |
                       ``emergency`` (应急事件)
standard_code          optional column: the GB/T 30428.2 code (大类 + 小类, 4 digits) of the
                       standard's minor category this row is, or refines; empty for a local
                       extension. Components and events only, and its 大类 must be the row's
                       ``MM`` (so a row cannot sit in another major class than the standard's)
filing_criterion       立案标准 (non-empty)
closing_criterion      结案标准 (non-empty)
unit_type              code of the responsible unit type (unit_types.csv); for emergencies
                       the lead unit type (牵头单位)
level                  handling level: 1 city, 2 district, 3 street/town, 4 community/village,
                       5 grid — the level of the hierarchy node whose unit of ``unit_type``
                       handles the case; it must be one of the levels the unit type exists at.
                       Emergencies: the lead unit's level at severity IV (一般), i.e. 2;
                       severity III–I move the lead one level up to the city (DESIGN.md)
time_limit             positive number (处置时限)
time_unit              on the working clock ``working_hours`` | ``working_days`` (office time on
                       working days: dispatch/working_time.py); on the calendar clock ``hours`` |
                       ``days`` (24 h) for components, events and grid events, ``minutes``
                       (calendar minutes) for emergencies
clock                  ``working`` | ``calendar``: the clock the case deadline runs on. It must be
                       the clock of ``time_unit`` (said twice on purpose: a row that moves a
                       category to the calendar clock and forgets its unit is refused, not
                       silently counted in office hours); every emergency is ``calendar``. The
                       shipped file puts every ``urgent`` and ``critical`` category on the
                       calendar clock (docs/dispatch.md, "Clocks", for the rule and sources)
urgency                ``normal`` | ``urgent`` | ``critical``
assist_unit_types      optional column; ``;``-separated unit types assisting the lead (联动);
                       required (non-empty) for every emergency
stages                 optional column; ``name:limit:unit;…`` for categories handled in stages
                       (违法搭建: 停工 4 working hours, 处罚 7 working days, 拆除 20 working days).
                       The first stage must equal ``time_limit``/``time_unit``: the case deadline
                       is the first stage, the later stages are follow-up limits, each on the
                       clock of its own unit (道路塌陷: 围护 2 calendar hours, 修复 3 working days)
=====================  ==================================================================

Code scheme (``KKMMNN``; docs/dispatch.md, "Catalog against GB/T 30428.2", has the sources):

* ``01MMNN`` city-management components (部件): ``MMNN`` is the GB/T 30428.2 大类 and 小类 code
  where the row is that minor category — 0101 公用设施, 0102 道路交通, 0103 市容环境,
  0104 园林绿化, 0105 房屋土地, 0106 其他设施 (010118 路灯不亮 is the standard's 0118 路灯)
* ``02MMNN`` city-management events (事件), likewise: 0201 市容环境, 0202 宣传广告,
  0203 施工管理, 0204 突发事件, 0205 街面秩序; local extension classes from 21: 0221 市场监管,
  0222 生态环境
* in both, ``NN`` 51–98 is a local minor category: a refinement of a standard one (its
  ``standard_code`` says which) or one the standard does not have (``standard_code`` empty)
* ``03MMNN`` grid events (网格事件, social governance, 小事不出网格; not in GB/T 30428.2):
  0301 矛盾纠纷, 0302 安全隐患, 0303 人口房屋, 0304 社会稳定, 0305 民生服务
* ``04MMNN`` emergencies (应急事件, severity I–IV; not in GB/T 30428.2): 0401 事故灾难,
  0402 自然灾害, 0403 公共卫生与环境, 0404 社会安全

``data/catalog/code_changes.csv`` — how codes moved between catalog versions, so that a database
loaded with an older catalog is brought forward (data/reference.py, ``sync_catalog``): columns
``old_code``, ``old_name`` (the category's name under the old code: a rename applies only to a
database whose ``old_code`` still carries ``old_name``, so it applies once even where a code is
reused, 020101 暴露垃圾 → 020102 while 020101 becomes 违法搭建), ``new_code`` (in the catalog),
``reason``. See :func:`load_code_changes`.

``data/catalog/routing_exceptions.csv`` — where a category is handled by another unit type than
the manual says, by area (天宁区's street lights are kept by the city's street-lighting office):
``category`` (a code, or a 4-digit major class ``KKMM``), ``area_code`` (a node of the hierarchy,
usually a district: the rule applies to cases located in it), ``unit_type``, ``level`` (the
handling level; one the unit type exists at), ``reason`` (Chinese, shown to duty officers in the
route reason). See :func:`load_routing_exceptions`; dispatch/routing.py applies them.

``data/catalog/unit_types.csv`` — one row per unit type: ``code`` (lower-case ASCII,
``[a-z][a-z0-9_]*``, at most 20 characters: it is part of unit codes), ``name`` (generic Chinese
name), ``levels`` (``;``-separated levels 1..5 at which units of this type exist: one unit per
hierarchy node of that level), ``sector`` (see ``SECTORS``), ``description``.

Every bad row is reported at once: :class:`CatalogError` carries ``errors`` — a list of
``(line number, message)`` — and its text lists them all, in Chinese.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from dispatch.working_time import CLOCKS, UNIT_CLOCK, UNITS

KINDS = ("component", "event", "grid", "emergency")
KIND_PREFIX = {"component": "01", "event": "02", "grid": "03", "emergency": "04"}
KIND_NAMES_ZH = {"component": "部件", "event": "事件", "grid": "网格事件", "emergency": "应急事件"}
TIME_UNITS = UNITS
WORKING_TIME_UNITS = ("working_hours", "working_days")
CALENDAR_TIME_UNITS = ("hours", "days")  # the calendar clock's units for non-emergencies
TIME_UNIT_NAMES_ZH = {"working_hours": "工作时", "working_days": "工作日", "minutes": "分钟",
                      "hours": "小时", "days": "自然日"}
CLOCK_NAMES_ZH = {"working": "工作时间", "calendar": "自然时间"}
URGENCIES = ("normal", "urgent", "critical")
URGENCY_NAMES_ZH = {"normal": "一般", "urgent": "紧急", "critical": "特急"}
LEVELS = (1, 2, 3, 4, 5)
EMERGENCY_LEAD_LEVEL = 2  # severity IV (一般) starts at district level
SECTORS = ("party", "government", "police", "fire", "public_institution", "grassroots", "utility")

CATEGORY_COLUMNS = ("code", "name", "major_class", "kind", "filing_criterion", "closing_criterion",
                    "unit_type", "level", "time_limit", "time_unit", "clock", "urgency")
CATEGORY_OPTIONAL_COLUMNS = ("assist_unit_types", "stages", "standard_code")
CODE_CHANGE_COLUMNS = ("old_code", "old_name", "new_code", "reason")
ROUTING_EXCEPTION_COLUMNS = ("category", "area_code", "unit_type", "level", "reason")
STANDARD_KINDS = ("component", "event")  # the kinds GB/T 30428.2 classifies
UNIT_TYPE_COLUMNS = ("code", "name", "levels", "sector", "description")

_CODE_RE = re.compile(r"^\d{6}$")
_STANDARD_CODE_RE = re.compile(r"^\d{4}$")
_MAJOR_RE = re.compile(r"^\d{4}$")
_AREA_CODE_RE = re.compile(r"^\d{6,20}$")
_UNIT_TYPE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


class CatalogError(ValueError):
    """A catalog file was refused. ``errors``: [(line number, message)], line 0 = the whole file."""

    def __init__(self, path, errors: list[tuple[int, str]]):
        self.path = str(path)
        self.errors = list(errors)
        lines = [f"{self.path}：{len(self.errors)} 处错误"]
        for line, msg in self.errors:
            lines.append(f"  第{line}行：{msg}" if line else f"  {msg}")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Stage:
    """One stage of a category handled in stages (违法搭建: 停工 → 处罚 → 拆除)."""

    name: str
    time_limit: int | float
    time_unit: str


@dataclass(frozen=True)
class Category:
    """One minor category of the dispatch manual."""

    code: str
    name: str
    major_class: str
    kind: str
    filing_criterion: str
    closing_criterion: str
    unit_type: str
    level: int
    time_limit: int | float
    time_unit: str
    urgency: str = "normal"
    assist_unit_types: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()
    # The GB/T 30428.2 大类+小类 code this row is or refines ("" for a local extension). File
    # metadata only: the database does not keep it, so it takes no part in comparing categories.
    standard_code: str = field(default="", compare=False)

    @property
    def major_code(self) -> str:
        """``KKMM``: kind and major class."""
        return self.code[:4]

    @property
    def is_emergency(self) -> bool:
        return self.kind == "emergency"

    @property
    def clock(self) -> str:
        """``working`` | ``calendar``: the clock of the case deadline (the file's ``clock`` column,
        checked at load to be the clock of ``time_unit``, so it is derived here and read back from
        the database without a column of its own)."""
        return UNIT_CLOCK[self.time_unit]

    @property
    def time_limit_text(self) -> str:
        """E.g. "4 工作时", "20 工作日", "120 分钟"."""
        return f"{self.time_limit} {TIME_UNIT_NAMES_ZH[self.time_unit]}"


@dataclass(frozen=True)
class UnitType:
    """A kind of handling unit and the hierarchy levels at which one exists per node."""

    code: str
    name: str
    levels: tuple[int, ...]
    sector: str
    description: str = ""

    def exists_at(self, level: int) -> bool:
        return level in self.levels


# ----------------------------------------------------------------------------------------
# reading

def _read_rows(path: Path, required: tuple[str, ...], errors: list) -> list[tuple[int, dict]] | None:
    """(line number of the record's first line, row) for every non-blank record, or None when
    the header is unusable (errors then says why)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        errors.append((0, f"文件不存在：{path}"))
        return None
    except UnicodeDecodeError as exc:
        errors.append((0, f"文件不是 UTF-8 编码（第 {exc.start} 字节起）"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        errors.append((1, "文件为空，缺少表头行"))
        return None
    except csv.Error as exc:
        errors.append((1, f"表头行无法解析：{exc}"))
        return None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        errors.append((1, "表头缺少列：" + "、".join(missing)))
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        errors.append((1, "表头列名重复：" + "、".join(dupes)))
    if missing or dupes:
        return None
    rows = []
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append((start, f"无法解析：{exc}"))
            break
        line, start = start, reader.line_num + 1
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) > len(header):
            extra = [v for v in values[len(header):] if v.strip()]
            if extra:
                errors.append((line, f"字段数 {len(values)} 多于表头的 {len(header)} 列（逗号未加引号？）"))
                continue
        values = values + [""] * (len(header) - len(values))
        rows.append((line, {h: v.strip() for h, v in zip(header, values)}))
    return rows


def _number(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------
# unit types

def load_unit_types(path: str | Path) -> dict[str, UnitType]:
    """All unit types of the CSV file ``path`` (the shipped one: data.files.unit_types()), by code,
    in file order. Raises :class:`CatalogError` listing every bad row."""
    path = Path(path)
    errors: list[tuple[int, str]] = []
    rows = _read_rows(path, UNIT_TYPE_COLUMNS, errors)
    out: dict[str, UnitType] = {}
    first_line: dict[str, int] = {}
    for line, row in rows or ():
        code = row["code"]
        bad = []
        if not code:
            bad.append("单位类型编码为空")
        elif not _UNIT_TYPE_CODE_RE.match(code):
            bad.append(f"单位类型编码“{code}”无效：须为小写字母开头的小写字母、数字、下划线，最长 20 个字符")
        elif code in first_line:
            bad.append(f"单位类型编码“{code}”重复（第{first_line[code]}行已定义）")
        if not row["name"]:
            bad.append("单位类型名称为空")
        levels: list[int] = []
        parts = [p.strip() for p in row["levels"].split(";") if p.strip()]
        if not parts:
            bad.append("层级 levels 为空，应为 1–5 中的一个或多个，用分号分隔")
        for p in parts:
            lv = _int(p)
            if lv not in LEVELS:
                bad.append(f"层级“{p}”无效，应为 1（市）到 5（网格）之间的整数")
            elif lv in levels:
                bad.append(f"层级 {lv} 重复")
            else:
                levels.append(lv)
        if row["sector"] not in SECTORS:
            bad.append(f"未知的单位类别“{row['sector']}”，应为 " + "、".join(SECTORS) + " 之一")
        if bad:
            errors.extend((line, f"（{code or '无编码'}）{m}") for m in bad)
            if code and code not in first_line:
                first_line[code] = line
            continue
        first_line[code] = line
        out[code] = UnitType(code=code, name=row["name"], levels=tuple(sorted(levels)),
                             sector=row["sector"], description=row["description"])
    if rows is not None and not rows and not errors:
        errors.append((0, "没有任何单位类型"))
    if errors:
        raise CatalogError(path, errors)
    return out


# ----------------------------------------------------------------------------------------
# categories

def _parse_stages(text: str, kind: str, bad: list[str]) -> tuple[Stage, ...]:
    stages = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        bits = [b.strip() for b in part.split(":")]
        if len(bits) != 3 or not bits[0]:
            bad.append(f"阶段“{part}”格式错误，应为 名称:时限:单位（如 停工:4:working_hours）")
            continue
        name, limit_text, unit = bits
        limit = _number(limit_text)
        if limit is None or limit <= 0:
            bad.append(f"阶段“{name}”的时限“{limit_text}”无效，应为正数")
            continue
        if not _time_unit_ok(kind, unit, bad, f"阶段“{name}”"):
            continue
        stages.append(Stage(name, limit, unit))
    return tuple(stages)


def _time_unit_ok(kind: str, unit: str, bad: list[str], what: str = "") -> bool:
    if unit not in TIME_UNITS:
        bad.append(f"{what}时限单位“{unit}”未知，应为 " + "、".join(TIME_UNITS) + " 之一")
        return False
    if kind == "emergency" and unit != "minutes":
        bad.append(f"{what}应急事件的时限须按日历分钟计（minutes），不能用“{unit}”")
        return False
    if kind in KINDS and kind != "emergency" and unit not in WORKING_TIME_UNITS + CALENDAR_TIME_UNITS:
        bad.append(f"{what}{KIND_NAMES_ZH[kind]}的时限须为 working_hours、working_days（工作时间）"
                   f"或 hours、days（自然时间），不能用“{unit}”")
        return False
    return True


def _clock_ok(kind: str, clock: str, unit: str | None, bad: list[str]) -> None:
    if clock not in CLOCKS:
        bad.append(f"计时方式 clock“{clock}”未知，应为 working（工作时间）或 calendar（自然时间）")
        return
    if kind == "emergency" and clock != "calendar":
        bad.append("应急事件须按自然时间计时（clock 应为 calendar）")
        return
    if unit is not None and UNIT_CLOCK[unit] != clock:
        units = WORKING_TIME_UNITS if clock == "working" else CALENDAR_TIME_UNITS + ("minutes",)
        bad.append(f"计时方式为 {clock}（{CLOCK_NAMES_ZH[clock]}）时，时限单位应为 " + "、".join(units)
                   + f" 之一，不能用“{unit}”")


def load_catalog(path: str | Path, unit_types: dict[str, UnitType]) -> dict[str, Category]:
    """All categories of the CSV file ``path`` (the shipped one: data.files.catalog()), by code,
    in file order, checked against ``unit_types`` (:func:`load_unit_types`).
    Raises :class:`CatalogError` listing every bad row with its line number."""
    path = Path(path)
    errors: list[tuple[int, str]] = []
    rows = _read_rows(path, CATEGORY_COLUMNS, errors)
    out: dict[str, Category] = {}
    code_line: dict[str, int] = {}
    name_line: dict[str, int] = {}
    major_names: dict[str, tuple[str, int]] = {}
    for line, row in rows or ():
        bad: list[str] = []
        code, name, kind = row["code"], row["name"], row["kind"]
        if not _CODE_RE.match(code):
            bad.append(f"编码“{code}”无效，应为 6 位数字（种类 2 位 + 大类 2 位 + 小类 2 位）")
        elif code in code_line:
            bad.append(f"编码 {code} 重复（第{code_line[code]}行已使用）")
        if not name:
            bad.append("小类名称为空")
        elif name in name_line:
            bad.append(f"小类名称“{name}”重复（第{name_line[name]}行已使用）")
        if not row["major_class"]:
            bad.append("大类名称为空")
        if kind not in KINDS:
            bad.append(f"未知的种类“{kind}”，应为 component（部件）、event（事件）、grid（网格事件）"
                       f"或 emergency（应急事件）")
        elif _CODE_RE.match(code) and not code.startswith(KIND_PREFIX[kind]):
            bad.append(f"编码 {code} 与种类不符：{KIND_NAMES_ZH[kind]}的编码应以 {KIND_PREFIX[kind]} 开头")
        if _CODE_RE.match(code) and row["major_class"]:
            seen = major_names.get(code[:4])
            if seen is not None and seen[0] != row["major_class"]:
                bad.append(f"大类 {code[:4]} 的名称“{row['major_class']}”与第{seen[1]}行的“{seen[0]}”不一致")
        if not row["filing_criterion"]:
            bad.append("立案标准（filing_criterion）为空")
        if not row["closing_criterion"]:
            bad.append("结案标准（closing_criterion）为空")

        level = _int(row["level"])
        if level not in LEVELS:
            bad.append(f"处置层级“{row['level']}”无效，应为 1（市）到 5（网格）之间的整数")
            level = None
        unit_type = unit_types.get(row["unit_type"])
        if unit_type is None:
            bad.append(f"未知的责任单位类型“{row['unit_type']}”（unit_types.csv 中没有）")
        elif level is not None and not unit_type.exists_at(level):
            bad.append(f"单位类型“{unit_type.code}”（{unit_type.name}）不设在第 {level} 级，"
                       f"只设在第 " + "、".join(map(str, unit_type.levels)) + " 级")
        if kind == "emergency" and level is not None and level != EMERGENCY_LEAD_LEVEL:
            bad.append(f"应急事件的处置层级应为 {EMERGENCY_LEAD_LEVEL}（IV 级由区县级牵头），不是 {level}")

        limit = _number(row["time_limit"])
        if limit is None:
            bad.append(f"处置时限“{row['time_limit']}”不是数字")
        elif limit <= 0:
            bad.append(f"处置时限须为正数，不能是 {row['time_limit']}")
        unit = row["time_unit"]
        unit_ok = _time_unit_ok(kind, unit, bad)
        _clock_ok(kind, row["clock"], unit if unit_ok else None, bad)
        if row["urgency"] not in URGENCIES:
            bad.append(f"紧急程度“{row['urgency']}”未知，应为 normal、urgent 或 critical")

        assist = tuple(a.strip() for a in row.get("assist_unit_types", "").split(";") if a.strip())
        for a in assist:
            if a not in unit_types:
                bad.append(f"未知的协办单位类型“{a}”（unit_types.csv 中没有）")
        if len(set(assist)) != len(assist):
            bad.append("协办单位类型重复")
        if row["unit_type"] in assist:
            bad.append("牵头单位类型不能同时是协办单位类型")
        if kind == "emergency" and not assist:
            bad.append("应急事件须列出协办单位类型（assist_unit_types，分号分隔）")

        standard = row.get("standard_code", "")
        if standard:
            if kind not in STANDARD_KINDS:
                bad.append(f"国标代码 standard_code 只用于部件和事件，{KIND_NAMES_ZH.get(kind, kind)}应留空")
            elif not _STANDARD_CODE_RE.match(standard):
                bad.append(f"国标代码“{standard}”无效，应为 4 位数字（大类 2 位 + 小类 2 位），本地扩展留空")
            elif _CODE_RE.match(code) and standard[:2] != code[2:4]:
                bad.append(f"国标代码 {standard} 属国标大类 {standard[:2]}，而编码 {code} 在大类 {code[2:4]}："
                           f"应归入国标的大类")

        stages = _parse_stages(row.get("stages", ""), kind, bad)
        if stages and limit is not None and (stages[0].time_limit, stages[0].time_unit) != (limit, unit):
            bad.append(f"第一阶段“{stages[0].name}”的时限 {stages[0].time_limit} {stages[0].time_unit} "
                       f"与处置时限 {row['time_limit']} {unit} 不一致")

        if _CODE_RE.match(code) and code not in code_line:
            code_line[code] = line
        if name and name not in name_line:
            name_line[name] = line
        if bad:
            errors.extend((line, f"（{code or '无编码'} {name}）{m}") for m in bad)
            continue
        major_names.setdefault(code[:4], (row["major_class"], line))  # named by its first good row
        out[code] = Category(
            code=code, name=name, major_class=row["major_class"], kind=kind,
            filing_criterion=row["filing_criterion"], closing_criterion=row["closing_criterion"],
            unit_type=unit_type.code, level=level, time_limit=limit, time_unit=unit,
            urgency=row["urgency"], assist_unit_types=assist, stages=stages, standard_code=standard,
        )
    if rows is not None and not rows and not errors:
        errors.append((0, "没有任何类别"))
    if errors:
        raise CatalogError(path, errors)
    return out


def categories_by_kind(catalog: dict[str, Category]) -> dict[str, list[Category]]:
    """The catalog grouped by kind, every kind present (possibly empty), file order kept."""
    out: dict[str, list[Category]] = {k: [] for k in KINDS}
    for c in catalog.values():
        out[c.kind].append(c)
    return out


# ----------------------------------------------------------------------------------------
# code changes between catalog versions

@dataclass(frozen=True)
class CodeChange:
    """A category that moved: cases filed under ``old_code`` while it meant ``old_name`` belong to
    ``new_code`` now."""

    old_code: str
    old_name: str
    new_code: str
    reason: str = ""


def load_code_changes(path: str | Path, catalog: dict[str, Category]) -> list[CodeChange]:
    """The code changes of the CSV file ``path`` (the shipped one: data.files.code_changes()), in
    file order, checked against ``catalog`` (the current one). Raises :class:`CatalogError`
    listing every bad row."""
    path = Path(path)
    errors: list[tuple[int, str]] = []
    rows = _read_rows(path, CODE_CHANGE_COLUMNS, errors)
    out: list[CodeChange] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in rows or ():
        old, old_name, new = row["old_code"], row["old_name"], row["new_code"]
        bad: list[str] = []
        if not _CODE_RE.match(old):
            bad.append(f"旧编码“{old}”无效，应为 6 位数字")
        if not old_name:
            bad.append("旧名称 old_name 为空（只有旧编码仍是这个名称的数据库才改码）")
        if new not in catalog:
            bad.append(f"新编码“{new}”不在类别目录中")
        elif old == new:
            bad.append("新旧编码相同")
        current = catalog.get(old)
        if current is not None and current.name == old_name:
            bad.append(f"{old} {old_name} 仍是现行类别，不能再改码（否则每次同步都会把它的案件移走）")
        if (old, old_name) in seen:
            bad.append(f"{old} {old_name} 重复（第{seen[(old, old_name)]}行已列出）")
        else:
            seen[(old, old_name)] = line
        if bad:
            errors.extend((line, f"（{old or '无编码'} {old_name}）{m}") for m in bad)
            continue
        out.append(CodeChange(old, old_name, new, row["reason"]))
    if errors:
        raise CatalogError(path, errors)
    return out


# ----------------------------------------------------------------------------------------
# routing exceptions by area

@dataclass(frozen=True)
class RouteException:
    """Cases of ``category`` (a code, or a major class ``KKMM``) located in ``area_code`` go to
    ``unit_type`` at ``level``, because ``reason``."""

    category: str
    area_code: str
    unit_type: str
    level: int
    reason: str

    def covers(self, code: str) -> bool:
        return code == self.category or (len(self.category) == 4 and code.startswith(self.category))


def load_routing_exceptions(path: str | Path, catalog: dict[str, Category], unit_types: dict[str, UnitType],
                            area_codes: Iterable[str] | None = None) -> list[RouteException]:
    """The routing exceptions of the CSV file ``path`` (the shipped one:
    data.files.routing_exceptions()), checked against ``catalog`` and ``unit_types``, and against
    the hierarchy's ``area_codes`` when given (the city's areas live in the database: the caller
    that has them checks them). Raises :class:`CatalogError` listing every bad row."""
    path = Path(path)
    areas = set(area_codes) if area_codes is not None else None
    majors = {c.major_code for c in catalog.values()}
    errors: list[tuple[int, str]] = []
    rows = _read_rows(path, ROUTING_EXCEPTION_COLUMNS, errors)
    out: list[RouteException] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in rows or ():
        cat, area, type_code, reason = row["category"], row["area_code"], row["unit_type"], row["reason"]
        bad: list[str] = []
        if _CODE_RE.match(cat):
            if cat not in catalog:
                bad.append(f"类别“{cat}”不在类别目录中")
            elif catalog[cat].is_emergency:
                bad.append(f"{cat} 是应急事件：按预案和事件等级派遣，不设区域例外")
        elif _MAJOR_RE.match(cat):
            if cat not in majors:
                bad.append(f"大类“{cat}”不在类别目录中")
            elif cat.startswith(KIND_PREFIX["emergency"]):
                bad.append(f"{cat} 是应急事件大类：按预案和事件等级派遣，不设区域例外")
        else:
            bad.append(f"类别“{cat}”无效，应为 6 位类别编码或 4 位大类编码")
        if not _AREA_CODE_RE.match(area):
            bad.append(f"区域编码“{area}”无效，应为数字编码（如区县 320402）")
        elif areas is not None and area not in areas:
            bad.append(f"区域“{area}”不在城市网格中")
        level = _int(row["level"])
        unit_type = unit_types.get(type_code)
        if unit_type is None:
            bad.append(f"未知的单位类型“{type_code}”（unit_types.csv 中没有）")
        elif level not in LEVELS:
            bad.append(f"处置层级“{row['level']}”无效，应为 1（市）到 5（网格）之间的整数")
        elif not unit_type.exists_at(level):
            bad.append(f"单位类型“{type_code}”（{unit_type.name}）不设在第 {level} 级，只设在第 "
                       + "、".join(map(str, unit_type.levels)) + " 级")
        if not reason:
            bad.append("原因 reason 为空（派遣理由要向值班员说明为何例外）")
        if (cat, area) in seen:
            bad.append(f"类别 {cat} 在区域 {area} 的例外重复（第{seen[(cat, area)]}行已列出）")
        else:
            seen[(cat, area)] = line
        if bad:
            errors.extend((line, f"（{cat or '无类别'} {area}）{m}") for m in bad)
            continue
        out.append(RouteException(cat, area, type_code, level, reason))
    if errors:
        raise CatalogError(path, errors)
    return out
