"""Read, validate and write a city's five-level grid hierarchy (GeoJSON or GeoPackage).

File format (one feature per node of the hierarchy, any order):

==============  ========  =================================================================
column          required  meaning
==============  ========  =================================================================
``code``        yes       the area code, digits only (GB/T 2260 style, extended by level):
                          city 6 digits (e.g. 320400), district 6 digits (320402),
                          street/town = district code + 3 digits (320402001),
                          community/village = street code + 3 digits (320402001001),
                          grid = community code + 3 or 4 digits (320402001001001)
``name``        yes       the name shown to operators (not blank)
``level``       yes       1 city, 2 district, 3 street/town, 4 community/village, 5 grid
``parent``      yes       the code of the parent node (one level up); empty or null for the city
``population``  no        resident population, a non-negative integer
``is_demo``     no        true for generated demo data (written by ``write_hierarchy_file``)
geometry        yes       Polygon or MultiPolygon, lon/lat. A file that declares another CRS
                          (e.g. EPSG:3857, EPSG:4490) is reprojected to EPSG:4326.
==============  ========  =================================================================

Column names are matched case-insensitively; other columns are kept in ``AreaRecord.extra``.
A GeoPackage must hold one spatial layer, or the layer is named with ``layer``.

Rules checked by ``validate_hierarchy`` (``Problem.kind``): exactly one city without a parent,
every parent exists and sits one level up, codes extend the parent's code, every non-grid node
has children, geometries are valid, children stay inside their parent, siblings do not overlap
and children cover their parent with no gap (areas above ``tolerance_m2`` square metres).
Every problem is reported, each with the codes to fix; nothing stops at the first one.
"""
from __future__ import annotations

import math
import os
import re
import warnings
from array import array
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry

from geo.model import CITY, COMMUNITY, DISTRICT, GRID, LEVEL_NAMES_ZH, LEVELS, STREET, AreaRecord

# Problem kinds found while reading a file.
READ_ERROR = "read_error"                  # missing / unreadable file
UNSUPPORTED_FORMAT = "unsupported_format"  # extension is not .geojson/.json/.gpkg
EMPTY_FILE = "empty_file"                  # zero bytes or no features
LAYER = "layer"                            # GeoPackage layer missing or ambiguous
MISSING_COLUMN = "missing_column"
EMPTY_GEOMETRY = "empty_geometry"
GEOMETRY_TYPE = "geometry_type"            # not Polygon/MultiPolygon
BAD_LEVEL = "bad_level"
BLANK_NAME = "blank_name"
BAD_POPULATION = "bad_population"
BAD_CRS = "bad_crs"                        # no CRS declared but coordinates are not lon/lat
# Problem kinds found by validation (BAD_CODE also while reading).
INVALID_GEOMETRY = "invalid_geometry"
DUPLICATE_CODE = "duplicate_code"
MISSING_PARENT = "missing_parent"
BAD_PARENT_LEVEL = "bad_parent_level"
ROOT = "root"
BAD_CODE = "bad_code"
NO_CHILDREN = "no_children"
CHILD_OUTSIDE_PARENT = "child_outside_parent"
OVERLAP = "overlap"
GAP = "gap"

KINDS = (
    READ_ERROR, UNSUPPORTED_FORMAT, EMPTY_FILE, LAYER, MISSING_COLUMN, EMPTY_GEOMETRY,
    GEOMETRY_TYPE, BAD_LEVEL, BLANK_NAME, BAD_POPULATION, BAD_CRS,
    INVALID_GEOMETRY, DUPLICATE_CODE, MISSING_PARENT, BAD_PARENT_LEVEL, ROOT, BAD_CODE,
    NO_CHILDREN, CHILD_OUTSIDE_PARENT, OVERLAP, GAP,
)

REQUIRED_COLUMNS = ("code", "name", "level", "parent")
SUFFIX_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}

# Digits a level adds to its parent's code (city and district codes are fixed at 6 digits).
CODE_SUFFIX_DIGITS = {STREET: (3,), COMMUNITY: (3,), GRID: (3, 4)}
# Full code lengths, used when the parent is unusable.
CODE_LENGTHS = {CITY: (6,), DISTRICT: (6,), STREET: (9,), COMMUNITY: (12,), GRID: (15, 16)}

M_PER_DEGREE = 111_320.0
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Problem:
    """One defect of an imported hierarchy; ``message`` is for operators (Chinese)."""

    kind: str
    codes: tuple[str, ...]
    message: str
    area_m2: float | None = None
    point: tuple[float, float] | None = None  # lon, lat of a spot to look at

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


# --------------------------------------------------------------------------- helpers

def _label(level: int | None, code: str) -> str:
    return f"{LEVEL_NAMES_ZH.get(level, '节点')} {code}"


def _fmt_point(pt: tuple[float, float] | None) -> str:
    return "" if pt is None else f"（约在 {pt[0]:.6f}, {pt[1]:.6f}）"


def _areas_m2(geoms) -> np.ndarray:
    """Areas in m² with a local equirectangular scale: plenty for sliver tolerances."""
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        return np.zeros(0)
    area = shapely.area(geoms)
    # Mid-latitude of the bounds: NaN (not an exception, unlike get_y) for empty results.
    bounds = shapely.bounds(geoms)
    lat = (bounds[:, 1] + bounds[:, 3]) / 2
    lat = np.where(np.isnan(lat), 0.0, lat)
    return np.nan_to_num(area) * M_PER_DEGREE**2 * np.cos(np.radians(lat))


def _point_of(geom: BaseGeometry) -> tuple[float, float]:
    p = shapely.point_on_surface(geom)
    return (round(p.x, 6), round(p.y, 6))


def _largest_part(geom: BaseGeometry) -> BaseGeometry:
    parts = shapely.get_parts(geom)
    if len(parts) == 0:
        return geom
    return parts[int(np.argmax(shapely.area(parts)))]


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """A valid, non-empty polygonal version of ``geom`` for the spatial checks, or None."""
    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    if not geom.is_valid:
        # make_valid may yield lines/points next to the polygons: keep only the polygons.
        fixed = shapely.make_valid(geom)
        polys = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
        if not polys:
            return None
        geom = shapely.union_all(polys) if len(polys) > 1 else polys[0]
        if geom.is_empty:
            return None
    return geom


def _is_blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas missing values, without importing pandas
        return True
    return isinstance(value, str) and value.strip() == ""


def _as_code(value) -> str | None:
    """Codes may arrive as text or as numbers (GeoJSON numbers, GPKG integers)."""
    if _is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value).strip()


def _as_level(value) -> int | None:
    if _is_blank(value) or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        n = int(value)
    elif isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            return None
        n = int(value)
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[0-9]+", text):
            return None
        n = int(text)
    return n if n in LEVELS else None


def _as_population(value) -> tuple[int | None, bool]:
    """(population, ok); blank is fine (the column is optional)."""
    if _is_blank(value):
        return None, True
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None, False
    if math.isnan(f) or f < 0 or not f.is_integer():
        return None, False
    return int(f), True


def _as_bool(value) -> bool:
    if _is_blank(value):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "t", "是")
    return bool(value)


def _plain(value):
    """numpy/pandas scalars to plain Python, for AreaRecord.extra."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- reading

# Features of a GeoPackage read at a time: a batch's rows are the only ones held as fields.
_GPKG_BATCH = 2000


class UnreadableFile(Exception):
    """The file as a whole cannot be used (not JSON, not GeoJSON, GDAL failed): one READ_ERROR."""




class _BadCoordinates(ValueError):
    """A "coordinates" value that is not nested arrays of positions of two or more numbers."""


def _read(path, layer=None):
    """Read a file a feature at a time; also return the rows rejected while reading as (code, parent).

    The rejected rows let validation avoid blaming their children and parents a second time. What is
    kept of a feature is its record (fields and a shapely geometry): the parsed JSON or the batch of
    GeoPackage rows is dropped as soon as the feature is checked, so memory follows the geometries
    and the largest feature, not the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    name = str(path)
    if suffix not in SUFFIX_DRIVERS:
        return [], [Problem(UNSUPPORTED_FORMAT, (), f"不支持的文件格式「{path.suffix or '无扩展名'}」：{name}；"
                                                     "请提供 GeoJSON（.geojson/.json）或 GeoPackage（.gpkg）文件")], []
    if not path.exists():
        return [], [Problem(READ_ERROR, (), f"文件不存在：{name}")], []
    if path.is_dir():
        return [], [Problem(READ_ERROR, (), f"路径是目录而不是文件：{name}")], []
    if path.stat().st_size == 0:
        return [], [Problem(EMPTY_FILE, (), f"文件为空（0 字节）：{name}")], []

    rows = _Rows()
    try:
        if suffix == ".gpkg":
            source = _GeoPackage(name, layer)
            if source.problem is not None:
                return [], [source.problem], []
        else:
            source = _GeoJson(name)
        for props, geom, geom_type in source:
            rows.add(props, geom, geom_type)
        source.finish()
    except UnreadableFile as exc:
        return [], [Problem(READ_ERROR, (), f"无法读取文件 {name}：{exc}")], []
    except Exception as exc:  # any GDAL/parse error: the file is not usable geo data
        return [], [Problem(READ_ERROR, (), f"无法读取文件 {name}：{exc}")], []

    if rows.count == 0:
        return [], [Problem(EMPTY_FILE, (), f"文件中没有任何要素：{name}")], []
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        return [], [Problem(MISSING_COLUMN, (), f"缺少必需的列：{'、'.join(missing)}（需要 code、name、level、parent 和几何）：{name}")], []

    records = rows.records
    if source.crs is not None and records:
        try:
            _to_lon_lat(records, source.crs)
        except Exception as exc:
            return [], [Problem(BAD_CRS, (), f"无法将坐标系 {source.crs} 转换为 EPSG:4326：{exc}")], []
    # GeoJSON is lon/lat by definition: numbers far outside lon/lat mean projected coordinates
    # without a declared CRS.
    if records:
        b = shapely.bounds(np.array([r.geometry for r in records], dtype=object))
        bounds = (np.nanmin(b[:, 0]), np.nanmin(b[:, 1]), np.nanmax(b[:, 2]), np.nanmax(b[:, 3]))
        if np.all(np.isfinite(bounds)) and (bounds[0] < -180 or bounds[2] > 180 or bounds[1] < -90 or bounds[3] > 90):
            return [], [Problem(BAD_CRS, (), f"坐标超出经纬度范围（{bounds[0]:.0f}, {bounds[1]:.0f}, {bounds[2]:.0f}, "
                                             f"{bounds[3]:.0f}），文件可能使用了未声明的投影坐标系；"
                                             f"请声明坐标系或转换为 EPSG:4326：{name}")], []
    return records, rows.problems, rows.rejected


def _to_lon_lat(records: list[AreaRecord], crs) -> None:
    """Reproject the records' geometries (in place) from ``crs`` to lon/lat, unless they already are."""
    from pyproj import CRS, Transformer

    source = CRS.from_user_input(crs)
    if source.to_epsg() == 4326 or source.equals(CRS.from_user_input("OGC:CRS84"), ignore_axis_order=True):
        return
    transform = Transformer.from_crs(source, 4326, always_xy=True).transform

    def lon_lat(xy):
        x, y = transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    for r in records:
        r.geometry = shapely.transform(r.geometry, lon_lat)


class _Rows:
    """The per-feature checks: each feature becomes a record or a rejection, and its problems."""

    def __init__(self):
        self.records: list[AreaRecord] = []
        self.problems: list[Problem] = []
        self.rejected: list[tuple[str, str | None]] = []
        self.columns: set[str] = set()   # every property name seen, lower case
        self.count = 0

    def add(self, props: dict, geom: BaseGeometry | None, geom_type: str | None) -> None:
        self.count += 1
        rowno = self.count
        fields = {}
        for key, value in props.items():
            low = str(key).strip().lower()
            self.columns.add(low)
            fields.setdefault(low, (key, value))
        get = lambda col: fields.get(col, (None, None))[1]  # noqa: E731
        problems = self.problems
        code = _as_code(get("code"))
        parent = _as_code(get("parent"))
        where = f"第 {rowno} 个要素" + (f"（编码 {code}）" if code else "")
        codes = (code,) if code else ()
        keep = True

        if code is None:
            problems.append(Problem(BAD_CODE, (), f"第 {rowno} 个要素缺少编码 code"))
            keep = False
        elif not _DIGITS.fullmatch(code):
            problems.append(Problem(BAD_CODE, codes, f"{where}的编码「{code}」不是纯数字"))

        raw_level = get("level")
        level = _as_level(raw_level)
        if level is None:
            problems.append(Problem(BAD_LEVEL, codes, f"{where}的层级「{raw_level}」无效，应为 1（市）到 5（网格）的整数"))
            keep = False

        raw_name = get("name")
        name_text = "" if _is_blank(raw_name) else str(raw_name).strip()
        if not name_text:
            problems.append(Problem(BLANK_NAME, codes, f"{where}的名称 name 为空"))

        if geom_type == "?":
            problems.append(Problem(INVALID_GEOMETRY, codes, f"{where}的几何对象无法读取（应为带 type 和 coordinates 的 GeoJSON 几何，坐标为经纬度数对的嵌套数组）"))
            keep = False
        elif geom_type is not None and geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(Problem(GEOMETRY_TYPE, codes, f"{where}的几何类型为 {geom_type}，应为 Polygon 或 MultiPolygon"))
            keep = False
        elif geom is None or geom.is_empty:
            problems.append(Problem(EMPTY_GEOMETRY, codes, f"{where}没有几何图形（空或缺失）"))
            keep = False
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(Problem(GEOMETRY_TYPE, codes, f"{where}的几何类型为 {geom.geom_type}，应为 Polygon 或 MultiPolygon"))
            keep = False
        elif shapely.has_z(geom):
            geom = shapely.force_2d(geom)

        population = None
        raw_pop = get("population")
        population, ok = _as_population(raw_pop)
        if not ok:
            problems.append(Problem(BAD_POPULATION, codes, f"{where}的人口数「{raw_pop}」无效，应为非负整数"))

        if not keep:
            if code is not None:
                self.rejected.append((code, parent))
            return
        extra = {}
        for low, (key, value) in fields.items():
            if low not in (*REQUIRED_COLUMNS, "population", "is_demo") and not _is_blank(value):
                extra[str(key)] = _plain(value)
        self.records.append(AreaRecord(
            code=code, name=name_text, level=level, parent=parent, geometry=geom,
            population=population, is_demo=_as_bool(get("is_demo")), extra=extra,
        ))


class _GeoPackage:
    """The features of one GeoPackage layer, read in batches of _GPKG_BATCH rows (GDAL, no pandas)."""

    def __init__(self, name: str, layer):
        import pyogrio

        self.name, self.layer, self.problem, self.crs = name, layer, None, None
        try:
            layers = pyogrio.list_layers(name)
        except Exception as exc:
            raise UnreadableFile(exc) from exc
        spatial = [str(n) for n, gtype in layers if gtype is not None]
        if layer is None:
            if len(spatial) != 1:
                listing = "、".join(spatial) if spatial else "无"
                self.problem = Problem(LAYER, (), f"GeoPackage 应只含一个空间图层，实际为 {len(spatial)} 个"
                                                  f"（{listing}）；请指定要导入的图层：{name}")
                return
            self.layer = spatial[0]
        elif str(layer) not in [str(n) for n, _ in layers]:
            self.problem = Problem(LAYER, (), f"GeoPackage 中没有图层「{layer}」：{name}")

    def __iter__(self):
        from pyogrio.raw import read

        skip = 0
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                meta, _, wkb, fields = read(self.name, layer=self.layer, skip_features=skip, max_features=_GPKG_BATCH)
            if skip == 0:
                self.crs = meta.get("crs")
                if not meta.get("geometry_type") and wkb is None:
                    raise UnreadableFile("图层没有几何列")
            if wkb is None or len(wkb) == 0:
                return
            geoms = shapely.from_wkb(wkb)
            names = list(meta["fields"])
            columns = [c.tolist() for c in fields]
            for i, geom in enumerate(geoms):
                yield {n: columns[k][i] for k, n in enumerate(names)}, geom, None
            skip += len(wkb)
            if len(wkb) < _GPKG_BATCH:
                return

    def finish(self) -> None:
        pass


class _GeoJson:
    """The features of a GeoJSON FeatureCollection, parsed one at a time from the byte stream (ijson).

    A feature's properties become a dict; its coordinates go straight into arrays of lon/lat pairs,
    one ring at a time, never into lists of Python floats: a 40 MB polygon costs its shapely geometry
    (16 bytes a vertex) and one ring's array, not the ~150 bytes a vertex of parsed JSON.
    """

    def __init__(self, name: str):
        self.name = name
        self.crs = None
        self._type = None
        self._features = False

    def __iter__(self):
        import ijson

        with open(self.name, "rb") as fh:
            if fh.read(3) != b"\xef\xbb\xbf":  # a UTF-8 byte order mark is allowed, and skipped
                fh.seek(0)
            # basic_parse: ijson's prefixes grow with the square of the nesting, on a whole buffer at
            # once (a 200 KB file of brackets took 10 GB); the top level is walked here by hand
            events = json_events(ijson.basic_parse(fh, use_float=True))
            try:
                first = next(events, None)
                if first is None or first[1] != "start_map":
                    if first is not None:
                        json_value(events, first[1], first[2])
                    return
                for _, event, key in events:
                    if event == "end_map":
                        break
                    _, event, value = next(events)
                    if key == "type" and event == "string":
                        self._type = value
                    elif key == "crs" and event == "start_map":
                        self.crs = _crs_name(json_value(events, event, value))
                    elif key == "features" and event == "start_array":
                        self._features = True
                        for _, event, value in events:
                            if event == "end_array":
                                break
                            if event == "start_map":
                                yield self._feature(events)
                            else:
                                json_value(events, event, value)
                                yield {}, None, "?"
                    else:
                        json_value(events, event, value)
                for _ in events:  # anything after the root object is an error of the file's
                    pass
            except ijson.JSONError as exc:
                raise UnreadableFile(f"不是有效的 JSON（{exc}）") from exc
            except UnicodeDecodeError as exc:
                raise UnreadableFile(f"不是 UTF-8 编码的文本（{exc}）") from exc

    def finish(self) -> None:
        if not self._features or self._type != "FeatureCollection":
            raise UnreadableFile("不是 GeoJSON FeatureCollection（需要 \"type\": \"FeatureCollection\" 和 features 数组）")

    def _feature(self, events):
        """(properties, geometry or None, GeoJSON type when not built) of the feature whose start_map was just read."""
        props, geom, geom_type = {}, None, None
        for _, event, key in events:
            if event == "end_map":
                return props, geom, geom_type
            # event is map_key: the value follows
            _, event, value = next(events)
            if key == "properties":
                got = json_value(events, event, value)
                props = got if isinstance(got, dict) else {}
            elif key == "geometry":
                geom, geom_type = _geometry(events, event, value)
            else:
                json_value(events, event, value)
        raise UnreadableFile("文件在要素中间结束")


MAX_JSON_DEPTH = 64  # a MultiPolygon's positions sit at depth 8


def json_events(events, limit: int = MAX_JSON_DEPTH):
    """ijson's basic events as (None, event, value), refused past `limit` levels of nesting (sensing.importer reads
    its GeoJSON with these too)."""
    depth = 0
    for event, value in events:
        if event in ("start_map", "start_array"):
            depth += 1
            if depth > limit:
                raise UnreadableFile(f"JSON 嵌套过深（超过 {limit} 层）")
        elif event in ("end_map", "end_array"):
            depth -= 1
        yield None, event, value  # the (prefix, event, value) shape the readers below take apart


def json_value(events, event, value):
    """The JSON value that starts with (event, value), read to its end."""
    if event not in ("start_map", "start_array"):
        return value
    import ijson

    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for _, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return builder.value
    raise UnreadableFile("文件意外结束")


def _crs_name(crs) -> str | None:
    """The CRS of a GeoJSON "crs" member (2008 draft: {"type": "name", "properties": {"name": …}})."""
    if isinstance(crs, dict) and isinstance(crs.get("properties"), dict):
        name = crs["properties"].get("name")
        return str(name) if name else None
    return None


def _geometry(events, event, value):
    """(shapely geometry or None, GeoJSON type or None) of a geometry object; only polygons are built.

    The type is returned (and no geometry built) for other types, "?" for coordinates that cannot be read.
    """
    if event != "start_map":
        json_value(events, event, value)
        return None, None
    gtype, coords, bad = None, None, False
    for _, event, key in events:
        if event == "end_map":
            break
        _, event, value = next(events)
        if key == "type":  # a type that is no string is read to its end (the keys after it stay in step)
            gtype = value if isinstance(value, str) else str(json_value(events, event, value))
        elif key == "coordinates":
            try:
                coords = _coordinates(events, event)
            except _BadCoordinates:
                bad = True
        else:
            json_value(events, event, value)
    if gtype not in ("Polygon", "MultiPolygon"):
        return None, gtype or "?"
    if bad or coords is None:
        return None, "?"
    try:
        if gtype == "Polygon":
            return _polygon(coords), None
        if not coords:
            return shapely.MultiPolygon(), None
        return shapely.multipolygons([_polygon(p) for p in coords]), None
    except (ValueError, TypeError, GEOSException):
        return None, "?"


def _polygon(rings):
    if not isinstance(rings, list) or any(not isinstance(r, np.ndarray) for r in rings):
        raise ValueError("a polygon is a list of rings")
    if not rings:
        return shapely.Polygon()
    return shapely.polygons(shapely.linearrings(rings[0]), [shapely.linearrings(r) for r in rings[1:]] or None)


def _coordinates(events, event):
    """A GeoJSON "coordinates" value as nested lists whose leaves are (n, 2) lon/lat arrays.

    Read event by event: the numbers of the open array of positions (a ring) go into one flat
    buffer, which becomes an array when the ring closes; only the first two numbers of a position
    are kept. Whether an array holds positions is known only at its first number, so an array's
    frame is opened lazily (``pending``). Raises _BadCoordinates after reading the value to its end.
    """
    if event != "start_array":
        json_value(events, event, None)
        raise _BadCoordinates
    buf = array("d")
    frames: list[list] = []   # the open arrays of arrays: their children so far
    pending = True            # an array has opened and has no frame yet
    k = -1                    # numbers read in the open position, -1 when none is open
    ring_start = -1           # where the open array of positions starts in buf, -1 when none
    depth = 1
    for _, event, value in events:
        if event == "number":
            if pending:
                pending = False
                if ring_start < 0:    # the array that holds this position is a ring
                    if not frames or frames[-1]:
                        return _drain(events, depth)   # a bare position, or positions next to arrays
                    frames.pop()
                    ring_start = len(buf)
                k = 0
            elif k < 0:
                return _drain(events, depth)
            if k < 2:
                buf.append(value)
            k += 1
        elif event == "start_array":
            depth += 1
            if k >= 0 or (pending and ring_start >= 0):
                return _drain(events, depth)   # an array inside a position
            if pending:
                frames.append([])
            pending = True
        elif event == "end_array":
            depth -= 1
            if pending:               # []
                pending = False
                if ring_start >= 0:
                    return _drain(events, depth)
                if not frames:
                    return []
                frames[-1].append([])
            elif k >= 0:              # a position closes
                if k < 2:
                    return _drain(events, depth)
                k = -1
            elif ring_start >= 0:     # a ring closes
                ring = np.frombuffer(buf[ring_start:], dtype=np.float64).reshape(-1, 2)
                del buf[ring_start:]
                ring_start = -1
                if not frames:
                    return ring
                frames[-1].append(ring)
            else:                     # an array of arrays closes
                done = frames.pop()
                if not frames:
                    return done
                frames[-1].append(done)
        else:                         # strings, null, booleans, objects
            if event in ("start_map",):
                depth += 1
            return _drain(events, depth)
    raise UnreadableFile("文件意外结束")


def _drain(events, depth: int):
    """Read the rest of a value whose ``depth`` arrays or objects are open, then raise _BadCoordinates."""
    while depth > 0:
        _, event, _ = next(events)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
    raise _BadCoordinates


def read_hierarchy_file(path, layer: str | None = None) -> tuple[list[AreaRecord], list[Problem]]:
    """Read a GeoJSON or GeoPackage hierarchy file into records (lon/lat) and read problems.

    Never raises for bad input: a missing or unreadable file gives one Problem and no records;
    rows that cannot form a record (no polygon, bad level, no code) are reported and left out.
    """
    records, problems, _ = _read(path, layer)
    return records, problems


# --------------------------------------------------------------------------- validation

def validate_hierarchy(records: list[AreaRecord], tolerance_m2: float = 10.0) -> list[Problem]:
    """Every problem of the hierarchy (structure, codes, geometry, tiling), each with its codes."""
    return _validate(records, tolerance_m2, rejected=())


def _validate(records, tolerance_m2, rejected) -> list[Problem]:
    problems: list[Problem] = []
    tol = float(tolerance_m2)
    rejected_codes = {c for c, _ in rejected}
    parents_of_rejected = {p for _, p in rejected if p}

    # ---- per record: fields and geometry
    index: dict[str, AreaRecord] = {}
    counts: dict[str, int] = defaultdict(int)
    spatial: list[BaseGeometry | None] = []
    geoms = [r.geometry for r in records]
    valid_flags = [False] * len(records)
    for i, r in enumerate(records):
        counts[r.code] += 1
        index.setdefault(r.code, r)
        g = geoms[i]
        label = _label(r.level, r.code)
        if not (isinstance(r.code, str) and _DIGITS.fullmatch(r.code)):
            problems.append(Problem(BAD_CODE, (r.code,), f"{label} 的编码「{r.code}」不是纯数字"))
        if r.level not in LEVELS:
            problems.append(Problem(BAD_LEVEL, (r.code,), f"节点 {r.code} 的层级「{r.level}」无效，应为 1（市）到 5（网格）的整数"))
        if not (r.name or "").strip():
            problems.append(Problem(BLANK_NAME, (r.code,), f"{label} 的名称为空"))
        if g is None or g.is_empty:
            problems.append(Problem(EMPTY_GEOMETRY, (r.code,), f"{label} 没有几何图形（空或缺失）"))
        elif g.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(Problem(GEOMETRY_TYPE, (r.code,), f"{label} 的几何类型为 {g.geom_type}，应为 Polygon 或 MultiPolygon"))
        else:
            valid_flags[i] = True
    polygonal = np.array(valid_flags, dtype=bool)
    if len(records):
        arr = np.array(geoms, dtype=object)
        is_valid = np.zeros(len(records), dtype=bool)
        if polygonal.any():
            is_valid[polygonal] = shapely.is_valid(arr[polygonal])
        for i in np.flatnonzero(polygonal & ~is_valid):
            r = records[i]
            reason = shapely.is_valid_reason(geoms[i])
            problems.append(Problem(INVALID_GEOMETRY, (r.code,), f"{_label(r.level, r.code)} 的几何图形无效：{reason}",
                                    point=_point_from_reason(reason)))
        for i in range(len(records)):
            if not polygonal[i]:
                spatial.append(None)
            elif is_valid[i]:
                spatial.append(geoms[i])
            else:
                spatial.append(_polygonal(geoms[i]))

    for code, n in counts.items():
        if n > 1:
            problems.append(Problem(DUPLICATE_CODE, (code,), f"编码 {code} 重复出现 {n} 次"))

    # ---- structure: root, parents, levels
    roots = []
    for r in records:
        label = _label(r.level, r.code)
        if r.level == CITY:
            if r.parent:
                problems.append(Problem(ROOT, (r.code,), f"{label} 是市级节点，不应有上级（填写了 {r.parent}）"))
            else:
                roots.append(r.code)
            continue
        if not r.parent:
            problems.append(Problem(ROOT, (r.code,), f"{label} 没有上级编码；只有市级节点（层级 1）可以没有上级"))
            continue
        parent = index.get(r.parent)
        if parent is None:
            if r.parent not in rejected_codes:  # already reported while reading
                problems.append(Problem(MISSING_PARENT, (r.code,), f"{label} 的上级 {r.parent} 在文件中不存在"))
            continue
        if r.level in LEVELS and parent.level != r.level - 1:
            want = LEVEL_NAMES_ZH.get(r.level - 1, "?")
            problems.append(Problem(BAD_PARENT_LEVEL, (r.code, parent.code),
                                    f"{label} 的上级 {parent.code} 层级为 {parent.level}（{LEVEL_NAMES_ZH.get(parent.level, '?')}），"
                                    f"应为 {r.level - 1}（{want}）"))
    if not roots:
        problems.append(Problem(ROOT, (), "没有市级根节点：需要恰好一个层级为 1 且没有上级的节点"))
    elif len(roots) > 1:
        problems.append(Problem(ROOT, tuple(roots), f"有 {len(roots)} 个市级根节点（{'、'.join(roots)}），只能有一个"))

    # ---- codes extend the parent's code
    for r in records:
        if r.level not in LEVELS or not (isinstance(r.code, str) and _DIGITS.fullmatch(r.code)):
            continue
        label = _label(r.level, r.code)
        parent = index.get(r.parent) if r.parent else None
        usable = (parent is not None and parent.level == r.level - 1
                  and isinstance(parent.code, str) and _DIGITS.fullmatch(parent.code) is not None)
        if r.level in CODE_SUFFIX_DIGITS and usable:
            added = len(r.code) - len(parent.code)
            allowed = CODE_SUFFIX_DIGITS[r.level]
            if not r.code.startswith(parent.code) or added not in allowed:
                digits = "或".join(str(d) for d in allowed)
                problems.append(Problem(BAD_CODE, (r.code,),
                                        f"{label} 的编码应以上级编码 {parent.code} 开头并增加 {digits} 位数字"))
        elif len(r.code) not in CODE_LENGTHS[r.level]:
            lengths = "或".join(str(d) for d in CODE_LENGTHS[r.level])
            problems.append(Problem(BAD_CODE, (r.code,), f"{label} 的编码应为 {lengths} 位数字，实际 {len(r.code)} 位"))

    # ---- children
    # Only children one level down count: mixing levels would blur the tiling checks.
    children: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        parent = index.get(r.parent) if r.parent else None
        if parent is not None and r.level != CITY and parent.level == r.level - 1:
            children[r.parent].append(i)
    seen = set()
    for r in records:
        if r.level in LEVELS and r.level < GRID and r.code not in seen:
            seen.add(r.code)
            if not children.get(r.code) and r.code not in parents_of_rejected:
                below = LEVEL_NAMES_ZH[r.level + 1]
                problems.append(Problem(NO_CHILDREN, (r.code,), f"{_label(r.level, r.code)} 没有任何下级{below}"))

    if records:
        problems.extend(_spatial_checks(records, spatial, index, children, tol, parents_of_rejected))
    return problems


def _point_from_reason(reason: str) -> tuple[float, float] | None:
    m = re.search(r"\[\s*([-0-9.eE+]+)\s+([-0-9.eE+]+)", reason or "")
    if not m:
        return None
    try:
        return (round(float(m.group(1)), 6), round(float(m.group(2)), 6))
    except ValueError:
        return None


def _spatial_checks(records, spatial, index, children, tol, parents_of_rejected) -> list[Problem]:
    problems: list[Problem] = []
    first_pos = {}
    for i, r in enumerate(records):
        first_pos.setdefault(r.code, i)

    # ---- children outside their parent: vectorised, the difference only where not covered
    pairs_child, pairs_parent = [], []
    for pcode, kids in children.items():
        pi = first_pos[pcode]
        if spatial[pi] is None:
            continue
        for ci in kids:
            if spatial[ci] is not None:
                pairs_child.append(ci)
                pairs_parent.append(pi)
    if pairs_child:
        cg = np.array([spatial[i] for i in pairs_child], dtype=object)
        pg = np.array([spatial[i] for i in pairs_parent], dtype=object)
        shapely.prepare(pg)
        covered = shapely.covers(pg, cg)
        todo = np.flatnonzero(~covered)
        if len(todo):
            outside = shapely.difference(cg[todo], pg[todo])
            areas = _areas_m2(outside)
            for k, idx in enumerate(todo):
                if areas[k] > tol:
                    c, p = records[pairs_child[idx]], records[pairs_parent[idx]]
                    pt = _point_of(_largest_part(outside[k]))
                    problems.append(Problem(
                        CHILD_OUTSIDE_PARENT, (c.code, p.code),
                        f"{_label(c.level, c.code)} 超出其上级{LEVEL_NAMES_ZH.get(p.level, '')} {p.code} 范围 "
                        f"{areas[k]:.1f} 平方米{_fmt_point(pt)}",
                        area_m2=float(areas[k]), point=pt))

    # ---- sibling overlaps: one STRtree per level, pairs filtered to the same parent
    by_level: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if spatial[i] is not None and r.parent:
            by_level[r.level].append(i)
    for level in sorted(by_level):
        idxs = np.array(by_level[level])
        geoms = np.array([spatial[i] for i in idxs], dtype=object)
        tree = shapely.STRtree(geoms)
        a, b = tree.query(geoms, predicate="intersects")
        keep = a < b
        a, b = a[keep], b[keep]
        same = np.array([records[idxs[x]].parent == records[idxs[y]].parent
                         and records[idxs[x]].code != records[idxs[y]].code for x, y in zip(a, b)], dtype=bool)
        a, b = a[same], b[same]
        if len(a) == 0:
            continue
        inter = shapely.intersection(geoms[a], geoms[b])
        areas = _areas_m2(inter)
        for k in np.flatnonzero(areas > tol):
            r1, r2 = records[idxs[a[k]]], records[idxs[b[k]]]
            pt = _point_of(_largest_part(inter[k]))
            problems.append(Problem(
                OVERLAP, (r1.code, r2.code),
                f"{_label(r1.level, r1.code)} 与{LEVEL_NAMES_ZH.get(r2.level, '')} {r2.code} 重叠 {areas[k]:.1f} 平方米"
                f"{_fmt_point(pt)}", area_m2=float(areas[k]), point=pt))

    # ---- gaps: the parent minus the union of its children, one problem per gap piece
    for pcode, kids in children.items():
        pi = first_pos[pcode]
        parent_geom = spatial[pi]
        if parent_geom is None or pcode in parents_of_rejected:
            continue
        kid_geoms = [spatial[ci] for ci in kids if spatial[ci] is not None]
        if not kid_geoms:
            continue
        cover = shapely.union_all(kid_geoms)
        if cover.covers(parent_geom):
            continue
        rest = parent_geom.difference(cover)
        parts = np.array([g for g in shapely.get_parts(rest) if g.geom_type == "Polygon"], dtype=object)
        if len(parts) == 0:
            continue
        areas = _areas_m2(parts)
        p = records[pi]
        below = LEVEL_NAMES_ZH.get(p.level + 1, "下级")
        for k in np.flatnonzero(areas > tol):
            pt = _point_of(parts[k])
            problems.append(Problem(
                GAP, (p.code,),
                f"{_label(p.level, p.code)} 有 {areas[k]:.1f} 平方米未被其下级{below}覆盖{_fmt_point(pt)}",
                area_m2=float(areas[k]), point=pt))
    return problems


# --------------------------------------------------------------------------- writing

def write_hierarchy_file(records: list[AreaRecord], path) -> None:
    """Write records (lon/lat) to GeoJSON or GeoPackage, chosen by the suffix; replaces the file."""
    import geopandas as gpd
    import pandas as pd

    path = Path(path)
    driver = SUFFIX_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise ValueError(f"不支持的文件格式「{path.suffix}」：请使用 .geojson、.json 或 .gpkg")
    gdf = gpd.GeoDataFrame(
        {
            "code": pd.array([r.code for r in records], dtype="string"),
            "name": pd.array([r.name for r in records], dtype="string"),
            "level": pd.array([r.level for r in records], dtype="Int64"),
            "parent": pd.array([r.parent or None for r in records], dtype="string"),
            "population": pd.array([r.population for r in records], dtype="Int64"),
            "is_demo": [bool(r.is_demo) for r in records],
        },
        geometry=[r.geometry for r in records],
        crs="EPSG:4326",
    )
    if path.exists():
        os.remove(path)  # a GPKG would otherwise keep its other layers
    kwargs = {}
    if driver == "GPKG":
        # Keep Polygon and MultiPolygon as they are; GDAL would promote all to multi.
        kwargs = {"layer": "areas", "promote_to_multi": False, "geometry_type": "Unknown"}
    gdf.to_file(path, driver=driver, engine="pyogrio", **kwargs)


# --------------------------------------------------------------------------- both

def load_and_validate(path, tolerance_m2: float = 10.0, layer: str | None = None
                      ) -> tuple[list[AreaRecord], list[Problem]]:
    """Read then validate; any Problem means: write nothing."""
    records, problems, rejected = _read(path, layer)
    if records:
        # Field defects found while reading come back from validation: report them once.
        # (Only against the read problems: one parent may well have several gaps.)
        seen = {(p.kind, p.codes) for p in problems}
        problems.extend(p for p in _validate(records, tolerance_m2, rejected) if (p.kind, p.codes) not in seen)
    return records, problems
