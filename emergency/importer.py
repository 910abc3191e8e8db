"""Emergency resources from files (the `import-resources` command of CONTRACT.md): every row of both files checked
before anything is written.

The resources: a CSV with the header ``resource_id,type,name,lon,lat,unit_code,specialty,capacity`` (UTF-8,
optional BOM, any column order; specialty and capacity may be empty) or a GeoJSON FeatureCollection of Point
features with those properties (the point gives lon and lat). A warehouse's stock: a second CSV, ``--stock FILE``,
with the header ``resource_id,item,quantity,unit`` — one row per warehouse and item; or, in GeoJSON, a
``stock`` property on the warehouse's feature: ``[{"item", "quantity", "unit"}]``. Two files rather than stock rows
mixed into the resources' CSV: each file keeps one header, and a city's warehouse ledger is its own table.

Checks: the id (letters, digits and ``. _ : -``, at most 64: it is a path segment of the API) and no id twice; the
type (team, warehouse, equipment, shelter); a name; lon and lat in range and inside the city's grids (each resource
is located to its grid and district); the responsible unit among the units; a specialty of at most 40 characters;
the capacity a whole number ≥ 0 (a team's headcount, a shelter's places: required and > 0 for a shelter); each
stock row of a warehouse of the file or of the database, an item named once per warehouse, a quantity ≥ 0 and a
unit. With any problem the whole import is refused with :class:`ResourceImportError`, every problem listed (file,
line or feature, field, Chinese message), and nothing is written. Otherwise one transaction upserts by id: new
resources are inserted available, known ones get the file's fields (their status and occupancy stay), and each
stock row sets that item's quantity. Resource files are small (a city has thousands of resources, not millions):
each is read once, into memory.
"""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from data.area_directory import AreaDirectory
from data.db import Database
from data.models import Unit
from data.resources import types_of, write_resources, write_stock
from dispatch.limits import bad_character
from emergency.resources import TYPES
from geo.import_rows import NOT_A_FEATURE, NOT_A_POINT, FileProblem, csv_rows, point_features, row_word

__all__ = ["COLUMNS", "STOCK_COLUMNS", "ResourceImportError", "ResourceImportReport", "import_resources"]

COLUMNS = ("resource_id", "type", "name", "lon", "lat", "unit_code", "specialty", "capacity")
REQUIRED = ("resource_id", "type", "name", "lon", "lat", "unit_code")
STOCK_COLUMNS = ("resource_id", "item", "quantity", "unit")
LABELS = {"resource_id": "资源编号", "type": "资源类型", "name": "名称", "lon": "经度", "lat": "纬度",
          "unit_code": "责任单位", "specialty": "专业", "capacity": "容量", "geometry": "位置", "item": "物资",
          "quantity": "数量", "unit": "计量单位", "stock": "库存"}
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_NAME, MAX_SPECIALTY, MAX_ITEM, MAX_UNIT = 200, 40, 100, 20
MAX_CAPACITY = 2**31 - 1
MAX_QUANTITY = 1e12
MESSAGE_LIMIT = 200


class ResourceImportError(ValueError):
    """The import was refused; nothing was written. ``problems``: [(file, row, field, message)] in file order
    (row 0: the whole file)."""

    def __init__(self, problems: list[tuple[str, int, str, str]]):
        self.problems = problems
        lines = [f"发现 {len(problems):,} 处问题，未导入任何应急资源"]
        for path, row, fld, msg in problems[:MESSAGE_LIMIT]:
            word = "个要素" if Path(path).suffix.lower() in (".geojson", ".json") else "行"
            where = f"{Path(path).name} 第 {row} {word}" if row else Path(path).name
            label = "" if fld == "file" else f" {fld}（{LABELS.get(fld, fld)}）"
            lines.append(f"  {where}{label}：{msg}")
        if len(problems) > MESSAGE_LIMIT:
            lines.append(f"  …… 另有 {len(problems) - MESSAGE_LIMIT:,} 处问题未列出")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ResourceImportReport:
    rows: int
    inserted: int
    updated: int
    stock_rows: int
    by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        types = "，".join(f"{TYPES.get(k, k)} {v:,}" for k, v in sorted(self.by_type.items()))
        return (f"已导入 {self.rows:,} 项应急资源：新增 {self.inserted:,}，更新 {self.updated:,}（{types}）；"
                f"库存 {self.stock_rows:,} 条，用时 {self.seconds:.1f} 秒")


# ---- the values of one cell -------------------------------------------------------------------------
def _text(value) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a code written as a number in GeoJSON
    return None


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value, lo: float, hi: float) -> tuple[float | None, str | None]:
    if _blank(value):
        return None, "为空"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, f"须为数字，不能是 {str(value)[:40]!r}"
    try:
        v = float(value)
    except ValueError:
        return None, f"须为数字，不能是“{str(value)[:40]}”"
    if not math.isfinite(v) or not lo <= v <= hi:
        return None, f"超出范围：{str(value)[:40]}（须在 {lo:g} 到 {hi:g} 之间）"
    return v, None


def _name_problem(value: str | None, most: int) -> str | None:
    if not value:
        return "为空"
    if len(value) > most:
        return f"过长（至多 {most} 个字符）"
    ch = bad_character(value)
    return f"含控制字符 U+{ord(ch):04X}" if ch is not None else None


class _Checker:
    def __init__(self, units: set[str], areas: AreaDirectory):
        self.units = units
        self.locator = areas.locator()
        if self.locator is None:
            raise FileProblem("数据库中还没有城市网格，请先运行 seed-demo 或 import-grid")

    def resource(self, props: dict, lon, lat) -> tuple[dict, list[tuple[str, str]]]:
        out: list[tuple[str, str]] = []
        rid = _text(props.get("resource_id"))
        if not rid:
            out.append(("resource_id", "为空"))
        elif not ID_PATTERN.match(rid):
            out.append(("resource_id", f"“{rid[:80]}”不合规：须以字母或数字开头，只含字母、数字和 . _ : -，至多 64 个字符"))
        type_ = _text(props.get("type"))
        if not type_:
            out.append(("type", "为空"))
        elif type_ not in TYPES:
            out.append(("type", f"未知的资源类型“{type_[:40]}”（可用：{'、'.join(f'{k}（{v}）' for k, v in TYPES.items())}）"))
        name = _text(props.get("name"))
        if (msg := _name_problem(name, MAX_NAME)) is not None:
            out.append(("name", msg))
        x, msg = _number(lon, -180.0, 180.0)
        if msg:
            out.append(("lon", msg))
        y, msg = _number(lat, -90.0, 90.0)
        if msg:
            out.append(("lat", msg))
        unit = _text(props.get("unit_code"))
        if not unit:
            out.append(("unit_code", "为空"))
        elif unit not in self.units:
            out.append(("unit_code", f"未知的处置单位编码“{unit[:60]}”"))
        specialty = None if _blank(props.get("specialty")) else _text(props.get("specialty"))
        if specialty is None and not _blank(props.get("specialty")):
            out.append(("specialty", "须为文字"))
        elif specialty is not None and (msg := _name_problem(specialty, MAX_SPECIALTY)) is not None:
            out.append(("specialty", msg))
        capacity = None
        raw = props.get("capacity")
        if not _blank(raw):
            v, msg = _number(raw, 0, MAX_CAPACITY)
            if msg:
                out.append(("capacity", msg))
            elif not float(v).is_integer():
                out.append(("capacity", f"须为整数（人数或位数），不能是 {raw}"))
            else:
                capacity = int(v)
        if type_ == "shelter" and not capacity and not any(f == "capacity" for f, _ in out):
            out.append(("capacity", "避难场所须填写容量（可安置人数），且大于 0"))
        return {"id": rid, "type": type_, "name": name, "lon": x, "lat": y, "unit_code": unit,
                "specialty": specialty, "capacity": capacity}, out

    @staticmethod
    def stock(props: dict) -> tuple[dict, list[tuple[str, str]]]:
        out: list[tuple[str, str]] = []
        rid = _text(props.get("resource_id"))
        if not rid:
            out.append(("resource_id", "为空"))
        item = _text(props.get("item"))
        if (msg := _name_problem(item, MAX_ITEM)) is not None:
            out.append(("item", msg))
        q, msg = _number(props.get("quantity"), 0, MAX_QUANTITY)
        if msg:
            out.append(("quantity", msg))
        unit = _text(props.get("unit"))
        if (msg := _name_problem(unit, MAX_UNIT)) is not None:
            out.append(("unit", msg))
        return {"resource_id": rid, "item": item, "quantity": q, "unit": unit}, out

    def locate(self, rows: list[dict]) -> list[bool]:
        """Sets grid_code and district_code of each row whose point is in a grid; False where it is outside."""
        if not rows:
            return []
        idx = self.locator.locate_many(np.array([r["lon"] for r in rows]), np.array([r["lat"] for r in rows]))
        inside = []
        for r, i in zip(rows, idx.tolist()):
            if i < 0:
                inside.append(False)
                continue
            r["grid_code"] = str(self.locator.grid_codes[i])
            r["district_code"] = next(a.code for a in self.locator.chains[i] if a.level == 2)
            inside.append(True)
        return inside


# ---- reading ------------------------------------------------------------------------------------
def _resource_records(path: Path) -> list[tuple[int, dict, object, object, str | None, list | None]]:
    """(row, properties, lon, lat, the row's own problem as "field|message" or None, inline stock or None)."""
    out = []
    if row_word(path) == "行":
        for line, fields, wrong in csv_rows(path, REQUIRED, ("specialty", "capacity")):
            if fields is None:
                out.append((line, {}, None, None, f"file|{wrong}", None))
            else:
                props = dict(zip(COLUMNS, (f.strip() for f in fields)))
                out.append((line, props, props["lon"], props["lat"], None, None))
        return out
    for n, props, point, problem in point_features(path):
        if problem == "feature":
            out.append((n, {}, None, None, f"file|{NOT_A_FEATURE}", None))
            continue
        lon, lat = point if point is not None else (None, None)
        out.append((n, props, lon, lat, f"geometry|{NOT_A_POINT}" if problem == "geometry" else None,
                    props.get("stock")))
    return out


def import_resources(db: Database, areas: AreaDirectory, path, stock_path=None) -> ResourceImportReport:
    """Check the resources file (and the stock file), then write both in one transaction; ResourceImportError
    (nothing written) when any row is bad or a file cannot be read."""
    started = time.perf_counter()
    path = Path(path)
    problems: list[tuple[str, int, str, str]] = []
    with db.engine.connect() as conn:
        units = set(conn.scalars(select(Unit.code)))
    try:
        checker = _Checker(units, areas)
        records = _resource_records(path)
    except FileProblem as exc:
        raise ResourceImportError([(str(path), exc.line, "file", exc.message)])
    rows: list[dict] = []
    row_of: dict[str, int] = {}
    stock: list[tuple[str, int, dict]] = []  # (file, row, stock row)
    located: list[tuple[int, dict]] = []
    file_types: dict[str, str | None] = {}  # id → type of every row of the file (the stock rows' warehouses)
    for n, props, lon, lat, own, inline in records:
        found: list[tuple[str, str]] = []
        if own is not None:
            fld, _, msg = own.partition("|")
            found.append((fld, msg))
            if fld == "file":
                problems += [(str(path), n, f, m) for f, m in found]
                continue
        rec, more = checker.resource(props, lon, lat)
        if rec["id"]:
            file_types.setdefault(rec["id"], rec["type"])
        found += [(f, m) for f, m in more if not (own and own.startswith("geometry|") and f in ("lon", "lat"))]
        if rec["id"]:
            first = row_of.setdefault(rec["id"], n)
            if first != n:
                found.append(("resource_id", f"资源编号 {rec['id']} 与第 {first} {'行' if row_word(path) == '行' else '个要素'}重复"))
        if inline is not None:
            if not isinstance(inline, list):
                found.append(("stock", "须为数组：[{\"item\", \"quantity\", \"unit\"}]"))
            elif rec["type"] != "warehouse":
                found.append(("stock", "只有仓库（warehouse）有库存"))
            else:
                items: set[str] = set()
                for entry in inline:
                    srec, sfound = checker.stock({**(entry if isinstance(entry, dict) else {}),
                                                  "resource_id": rec["id"]})
                    found += [("stock", f"{LABELS.get(f, f)}{m}") for f, m in sfound]
                    if srec["item"] in items:
                        found.append(("stock", f"物资“{srec['item']}”重复"))
                    items.add(srec["item"])
                    stock.append((str(path), n, srec))
        problems += [(str(path), n, f, m) for f, m in found]
        if rec["lon"] is not None and rec["lat"] is not None:
            located.append((n, rec))
        if not found:
            rows.append(rec)
    for (n, rec), inside in zip(located, checker.locate([r for _, r in located])):
        if not inside:
            problems.append((str(path), n, "lon", f"坐标({rec['lon']}, {rec['lat']})不在本市网格范围内"))
    if stock_path is not None:
        stock_path = Path(stock_path)
        try:
            if row_word(stock_path) != "行":
                raise FileProblem("库存文件须为 CSV（resource_id,item,quantity,unit）")
            for line, fields, wrong in csv_rows(stock_path, STOCK_COLUMNS):
                if fields is None:
                    problems.append((str(stock_path), line, "file", wrong))
                    continue
                srec, sfound = checker.stock(dict(zip(STOCK_COLUMNS, (f.strip() for f in fields))))
                problems += [(str(stock_path), line, f, m) for f, m in sfound]
                stock.append((str(stock_path), line, srec))
        except FileProblem as exc:
            problems.append((str(stock_path), exc.line, "file", exc.message))
    # each stock row: a warehouse of this file or of the database, an item once per warehouse
    with db.session() as s:
        db_types = types_of(s, {r["resource_id"] for _, _, r in stock if r["resource_id"]} - set(file_types))
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for where, n, r in stock:
        rid = r["resource_id"]
        if not rid:
            continue
        kind = file_types[rid] if rid in file_types else db_types.get(rid)
        if rid in file_types and kind not in TYPES:
            pass  # the resource's own row says what is wrong with its type
        elif kind is None:
            problems.append((where, n, "resource_id", f"资源 {rid[:64]} 不在本文件中，也未登记"))
        elif kind != "warehouse":
            problems.append((where, n, "resource_id", f"资源 {rid[:64]} 是{TYPES.get(kind, kind)}，只有仓库（warehouse）有库存"))
        if r["item"]:
            first = seen.setdefault((rid, r["item"]), (where, n))
            if first != (where, n) and where == first[0] and where == str(stock_path):
                problems.append((where, n, "item", f"仓库 {rid[:64]} 的物资“{r['item']}”与第 {first[1]} 行重复"))
    if not problems and not rows:
        problems.append((str(path), 0, "file", "文件中没有应急资源"))
    if problems:
        raise ResourceImportError(sorted(problems, key=lambda p: (p[0] != str(path), p[1])))
    with db.session() as s:
        inserted, updated = write_resources(s, rows)
        # the file's rows are written in file order: a warehouse's item in both the GeoJSON and --stock takes the
        # latter's quantity
        written = write_stock(s, list({(r["resource_id"], r["item"]): r for _, _, r in stock}.values()))
    return ResourceImportReport(rows=len(rows), inserted=inserted, updated=updated, stock_rows=written,
                                by_type=dict(Counter(r["type"] for r in rows)), seconds=time.perf_counter() - started)
