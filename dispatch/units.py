"""Handling units (处置单位): one per unit type and hierarchy node, named from the demo unit patterns.

Pure Python (standard library only; the hierarchy records come from geo.model but only their
``code``, ``name``, ``level``, ``parent`` and ``extra`` are read).

Which units exist is decided by the unit types (unit_types.csv, column ``levels``):
a unit type at level L gets one unit at every node of level L — the city bureaus at the city,
their counterparts in every district, one office per street/town, one committee per
community/village, one grid member per grid, the utilities at the city. Only the *names* come from
the patterns file (demo_units.json, read by data/files.py): explicit names for the city-level
bodies (``city_units``, ``utilities``) and patterns for the rest (see the file's ``_comment``).
Several units of one type may serve one area (the three telecom carriers at the city): they carry
a ``key`` and exactly one is ``primary`` (the default for routing).

Unit codes are deterministic: ``U-<area code>-<unit type code>`` or, for keyed units,
``U-<area code>-<unit type code>-<key>`` (e.g. ``U-320402-city_management``,
``U-320402001003-community_committee``, ``U-320400-telecom-ct``).
"""
from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from dispatch.catalog import LEVELS, CatalogError, UnitType

# patterns sections by level, and the forms a node of that level can take
SECTION_LEVEL = {"district": 2, "street": 3, "community": 4, "grid": 5}
FORMS = {2: ("district", "county"), 3: ("street", "town"), 4: ("community", "village"), 5: ("grid",)}
PLACEHOLDERS = ("city", "city_stem", "district", "district_short", "district_stem",
                "street", "town", "community", "village", "grid", "name")
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,7}$")


@dataclass(frozen=True)
class UnitRecord:
    """One handling unit. ``level`` is the level of its area (1 city … 5 grid)."""

    code: str
    name: str
    unit_type: str
    level: int
    area_code: str
    primary: bool = True  # False for the non-default units of a type in one area (telecom cm/cu)


def unit_code(area_code: str, unit_type: str, key: str | None = None) -> str:
    return f"U-{area_code}-{unit_type}" + (f"-{key}" if key else "")


def load_unit_patterns(path: str | Path) -> dict:
    """The parsed patterns file ``path`` (the shipped one: data.files.unit_patterns()); checked by
    :func:`demo_units`."""
    path = Path(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise CatalogError(path, [(0, f"文件不存在：{path}")]) from None
    except json.JSONDecodeError as exc:
        raise CatalogError(path, [(exc.lineno, f"JSON 格式错误：{exc.msg}")]) from None
    if not isinstance(data, dict):
        raise CatalogError(path, [(0, "顶层应为 JSON 对象")])
    data.setdefault("_path", str(path))
    return data


# ----------------------------------------------------------------------------------------
# node forms and naming

def node_form(level: int, name: str, extra: Mapping | None = None) -> str:
    """Which naming form a node takes: district|county, street|town, community|village, grid."""
    kind = (extra or {}).get("kind")
    if level == 2:
        return "county" if name.endswith(("市", "县")) else "district"
    if level == 3:
        if kind in ("镇", "乡"):
            return "town"
        if kind == "街道":
            return "street"
        return "town" if name.endswith(("镇", "乡")) else "street"
    if level == 4:
        if kind == "村":
            return "village"
        if kind == "社区":
            return "community"
        return "village" if name.endswith("村") else "community"
    return "grid"


def _strip_suffix(name: str, suffixes: Iterable[str]) -> str:
    for s in suffixes:
        if name.endswith(s) and len(name) > len(s):
            return name[: -len(s)]
    return name


class _Names(dict):
    def __missing__(self, key):  # only reached for placeholders checked beforehand
        return ""


def _check_pattern(pattern: Any, where: str, level: int, errors: list) -> None:
    """Pattern: a string or {form: string} with the forms of its level."""
    if isinstance(pattern, str):
        texts = [(where, pattern)]
    elif isinstance(pattern, dict) and pattern:
        texts = []
        for form, text in pattern.items():
            if form not in FORMS[level]:
                errors.append((0, f"{where}：未知的形式“{form}”，第 {level} 级只有 " + "、".join(FORMS[level])))
            elif not isinstance(text, str):
                errors.append((0, f"{where}.{form}：名称模式应为字符串"))
            else:
                texts.append((f"{where}.{form}", text))
    else:
        errors.append((0, f"{where}：名称模式应为字符串，或按形式（{'、'.join(FORMS[level])}）给出的对象"))
        return
    for w, text in texts:
        if not text.strip():
            errors.append((0, f"{w}：名称模式为空"))
            continue
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            errors.append((0, f"{w}：名称模式“{text}”格式错误（{exc}）"))
            continue
        for f in fields:
            if f not in PLACEHOLDERS:
                errors.append((0, f"{w}：未知的占位符 {{{f}}}，可用：" + "、".join("{" + p + "}" for p in PLACEHOLDERS)))


def _pick(pattern: Any, form: str) -> str:
    if isinstance(pattern, str):
        return pattern
    if form in pattern:
        return pattern[form]
    return next(iter(pattern.values()))  # no pattern for this form: the first one given


# ----------------------------------------------------------------------------------------
# generation

def _validate(unit_types: dict[str, UnitType], patterns: dict) -> tuple[dict, dict]:
    """(explicit level-1 entries by type, {level: {type: pattern}}) or CatalogError."""
    errors: list[tuple[int, str]] = []
    explicit: dict[str, list[dict]] = {}
    for section in ("city_units", "utilities"):
        entries = patterns.get(section, [])
        if not isinstance(entries, list):
            errors.append((0, f"{section} 应为列表"))
            continue
        for i, e in enumerate(entries):
            where = f"{section}[{i}]"
            if not isinstance(e, dict):
                errors.append((0, f"{where}：应为对象"))
                continue
            t, name = e.get("unit_type"), e.get("name")
            if t not in unit_types:
                errors.append((0, f"{where}：未知的单位类型“{t}”"))
                continue
            if not unit_types[t].exists_at(1):
                errors.append((0, f"{where}：单位类型“{t}”不设在市级（第 1 级）"))
                continue
            if not isinstance(name, str) or not name.strip():
                errors.append((0, f"{where}：单位名称为空"))
                continue
            key = e.get("key")
            if key is not None and (not isinstance(key, str) or not _KEY_RE.match(key)):
                errors.append((0, f"{where}：key“{key}”无效，应为 1–8 个小写字母、数字或下划线"))
                continue
            explicit.setdefault(t, []).append(dict(e, _where=where))
    for t, entries in explicit.items():
        if len(entries) > 1:
            keys = [e.get("key") for e in entries]
            if any(k is None for k in keys):
                errors.append((0, f"单位类型“{t}”在市级有 {len(entries)} 个单位，每个都须有 key"))
            elif len(set(keys)) != len(keys):
                errors.append((0, f"单位类型“{t}”的 key 重复：" + "、".join(keys)))
            primaries = [e for e in entries if e.get("primary")]
            if len(primaries) > 1:
                errors.append((0, f"单位类型“{t}”有 {len(primaries)} 个 primary 单位，只能有一个"))

    by_level: dict[int, dict[str, Any]] = {lv: {} for lv in LEVELS}
    sections = patterns.get("patterns", {})
    if not isinstance(sections, dict):
        errors.append((0, "patterns 应为对象"))
        sections = {}
    for section, mapping in sections.items():
        level = SECTION_LEVEL.get(section)
        if level is None:
            errors.append((0, f"patterns.{section}：未知的层级，应为 " + "、".join(SECTION_LEVEL)))
            continue
        if not isinstance(mapping, dict):
            errors.append((0, f"patterns.{section} 应为对象"))
            continue
        for t, pattern in mapping.items():
            where = f"patterns.{section}.{t}"
            if t not in unit_types:
                errors.append((0, f"{where}：未知的单位类型“{t}”"))
                continue
            if not unit_types[t].exists_at(level):
                errors.append((0, f"{where}：单位类型“{t}”不设在第 {level} 级"))
                continue
            before = len(errors)
            _check_pattern(pattern, where, level, errors)
            if len(errors) == before:
                by_level[level][t] = pattern
    if errors:
        raise CatalogError(patterns.get("_path", "demo_units.json"), errors)
    return explicit, by_level


def demo_units(records: Sequence, unit_types: dict[str, UnitType], patterns: dict) -> list[UnitRecord]:
    """Every handling unit of a hierarchy (AreaRecord-like: ``code``, ``name``, ``level``,
    ``parent``, optional ``extra``), city first, then level by level in record order.

    ``unit_types``: :func:`dispatch.catalog.load_unit_types`; ``patterns``:
    :func:`load_unit_patterns`. Raises :class:`CatalogError` for bad patterns and ``ValueError``
    for a record whose parent is missing or two units with one code.
    """
    explicit, by_level = _validate(unit_types, patterns)
    types_at = {lv: [t for t in unit_types.values() if t.exists_at(lv)] for lv in LEVELS}

    index = {r.code: r for r in records}
    # names of the city and district above every node, filled level by level
    city_of: dict[str, str] = {}
    district_of: dict[str, str] = {}
    ordered = sorted(records, key=lambda r: r.level)  # stable: record order within a level
    out: list[UnitRecord] = []
    for r in ordered:
        level = r.level
        if level not in LEVELS:
            raise ValueError(f"{r.code} {r.name}: level {level} is not 1..5")
        if level == 1:
            city_of[r.code] = r.name
        else:
            parent = index.get(r.parent) if r.parent else None
            if parent is None or parent.level != level - 1:
                raise ValueError(f"{r.code} {r.name}: parent {r.parent!r} missing or not at level {level - 1}")
            city_of[r.code] = city_of[parent.code]
            district_of[r.code] = r.name if level == 2 else district_of[parent.code]
        if not types_at[level]:
            continue
        extra = getattr(r, "extra", None) or {}
        form = node_form(level, r.name, extra)
        city = city_of[r.code]
        city_stem = _strip_suffix(city, ("市", "地区", "盟", "州"))
        names = _Names(city=city, city_stem=city_stem, name=r.name)
        names[form] = r.name
        if level >= 2:
            d = district_of[r.code]
            d_short = d[len(city_stem):] if d.startswith(city_stem) and len(d) > len(city_stem) + 1 else d
            if d_short.startswith("市"):
                d_short = d_short[1:] or d
            names.update(district=d, district_short=d_short,
                         district_stem=_strip_suffix(d_short, ("区", "市", "县")))
        for t in types_at[level]:
            if level == 1 and t.code in explicit:
                entries = explicit[t.code]
                has_primary = any(e.get("primary") for e in entries)
                for i, e in enumerate(entries):
                    primary = bool(e.get("primary")) if has_primary else i == 0
                    out.append(UnitRecord(unit_code(r.code, t.code, e.get("key")), e["name"].format_map(names),
                                          t.code, 1, r.code, primary))
                continue
            pattern = by_level[level].get(t.code)
            if pattern is None:
                default = {1: "{city}", 2: "{district}"}.get(level, "{name}")
                text = default + t.name
            else:
                text = _pick(pattern, form)
            out.append(UnitRecord(unit_code(r.code, t.code), text.format_map(names), t.code, level, r.code))
    seen: set[str] = set()
    for u in out:
        if u.code in seen:
            raise ValueError(f"duplicate unit code {u.code}")
        seen.add(u.code)
    return out


# ----------------------------------------------------------------------------------------
# lookup (for routing)

def index_units(units: Iterable[UnitRecord]) -> dict[tuple[str, str], list[UnitRecord]]:
    """(area code, unit type) → the units of that type in that area, primary first."""
    out: dict[tuple[str, str], list[UnitRecord]] = {}
    for u in units:
        out.setdefault((u.area_code, u.unit_type), []).append(u)
    for lst in out.values():
        if len(lst) > 1:
            lst.sort(key=lambda u: (not u.primary, u.code))
    return out


def _code_level(node) -> tuple[str, int]:
    if isinstance(node, Mapping):
        return node["code"], int(node["level"])
    return node.code, int(node.level)


def find_unit(index: Mapping[tuple[str, str], list[UnitRecord]], chain: Iterable, unit_type: str,
              level: int) -> UnitRecord | None:
    """The unit of ``unit_type`` that handles a case located at ``chain`` (its areas, any order,
    e.g. grid → city; AreaRecords or mappings with ``code`` and ``level``) at handling level
    ``level``: the unit at the chain's node of that level, else the nearest one above it
    (district → city). None when the chain has no such unit at or above ``level``.

    For an emergency's assisting unit types pass the deepest level the type exists at
    (``max(unit_types[t].levels)``): the nearest unit of that type (street office of the case's
    street, district bureau, city utility). Severity III–I: pass level 1 for the lead.
    """
    nodes = sorted((_code_level(n) for n in chain), key=lambda cl: -cl[1])
    for code, lv in nodes:
        if lv > level:
            continue
        found = index.get((code, unit_type))
        if found:
            return found[0]
    return None
