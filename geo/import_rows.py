"""The records of an import file, streamed one at a time: a CSV's rows by column name, a GeoJSON
FeatureCollection's point features. Shared by every importer that takes a table of points (`import-devices`,
`import-resources`) or a table (`import-cases`): one reader of headers, encodings, broken quoting and nested JSON,
each problem told in Chinese with its line."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

from geo.importer import UnreadableFile, json_events, json_value

__all__ = ["FileProblem", "MAX_JSON_DEPTH", "NOT_A_FEATURE", "NOT_A_POINT", "csv_rows", "point_features", "row_word"]

MAX_JSON_DEPTH = 16  # a Point feature's coordinates sit at depth 4
# what point_features's problems ("feature", "geometry") say
NOT_A_FEATURE = "不是 GeoJSON 要素（Feature）"
NOT_A_POINT = "须为点（Point）要素，coordinates 为 [经度, 纬度]"


class FileProblem(UnreadableFile):
    """The file cannot be read on: its one problem, at `line` (0: the whole file; 1: a CSV's header)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.message, self.line = message, line


def row_word(path: Path) -> str:
    """What a file's rows are called in its problems (a CSV's lines, a GeoJSON file's features); FileProblem for
    another kind of file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "行"
    if suffix in (".geojson", ".json"):
        return "个要素"
    raise FileProblem(f"不支持的文件类型 {suffix or '（无扩展名）'}：须为 .csv 或 .geojson")


def csv_rows(path, columns: Sequence[str], optional: Sequence[str] = (), *,
             extra: bool = True) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(line, fields, None) per data row, the fields in the order of `columns` + `optional` ("" for an optional
    column the file has not; not stripped); (line, None, message) for a row of the wrong width; blank lines
    skipped. The header (UTF-8, optional BOM; any order) must name every column of `columns`, once; with
    `extra=False` it may name no other. Raises FileProblem for a file that cannot be read on. Holds one row at a
    time."""
    p = Path(path)
    wanted = tuple(columns) + tuple(optional)
    reader = None
    try:
        with p.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                raise FileProblem("文件为空（缺少表头行）")
            names = [h.strip() for h in header]
            missing = [c for c in columns if c not in names]
            others = [] if extra else [h for h in names if h not in wanted]
            dups = sorted({h for h in names if names.count(h) > 1})
            if missing or others or dups:
                parts = (["缺少列 " + "、".join(missing)] if missing else []) \
                    + (["多余的列 " + "、".join(h or "（空列名）" for h in others)] if others else []) \
                    + (["重复的列 " + "、".join(dups)] if dups else [])
                raise FileProblem("表头不符：" + "；".join(parts) + "。须包含：" + ",".join(columns)
                                  + ("；可选：" + ",".join(optional) if optional else ""), 1)
            width = len(names)
            # the fast paths: the file's columns in our order (with or without the optional ones)
            present = [c for c in wanted if c in names]
            order = [names.index(c) for c in present]
            identity = order == list(range(width))
            if identity and len(present) == len(wanted):
                pick = None
            elif identity and present == list(columns):
                pad = [""] * len(optional)
                pick = lambda fields: fields + pad  # noqa: E731
            else:
                index = [names.index(c) if c in names else None for c in wanted]
                pick = lambda fields: [fields[i] if i is not None else "" for i in index]  # noqa: E731
            last = reader.line_num
            for fields in reader:
                line = last + 1  # the first physical line of this record
                last = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # a blank line
                if len(fields) != width:
                    yield line, None, f"字段数为 {len(fields)}，表头为 {width} 列"
                    continue
                yield line, (fields if pick is None else pick(fields)), None
    except FileNotFoundError:
        raise FileProblem(f"文件不存在：{p}")
    except IsADirectoryError:
        raise FileProblem(f"不是文件：{p}")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"文件不是 UTF-8 编码（第 {exc.start} 字节附近无法解码）")
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        raise FileProblem(f"CSV 格式错误：{exc}", line)


def point_features(path, max_depth: int = MAX_JSON_DEPTH) -> Iterator[tuple[int, dict, tuple | None, str | None]]:
    """(n, properties, (lon, lat) or None, problem or None) per feature of a FeatureCollection, n from 1, one at a
    time (ijson's events: never the whole file parsed). `problem`: "file" trouble (not a Feature) or the
    geometry's (not a Point); the coordinates are as the file has them (the caller checks they are numbers).
    Raises FileProblem for a file that is not a FeatureCollection or not JSON."""
    import ijson

    p = Path(path)
    try:
        fh = p.open("rb")
    except FileNotFoundError:
        raise FileProblem(f"文件不存在：{p}")
    except IsADirectoryError:
        raise FileProblem(f"不是文件：{p}")
    with fh:
        if fh.read(3) != b"\xef\xbb\xbf":
            fh.seek(0)
        events = json_events(ijson.basic_parse(fh, use_float=True), max_depth)
        kind, seen_features, n = None, False, 0
        try:
            first = next(events, None)
            if first is None or first[1] != "start_map":
                raise FileProblem("不是 GeoJSON FeatureCollection（需要 JSON 对象）")
            for _, event, key in events:
                if event == "end_map":
                    break
                _, event, value = next(events)
                if key == "type":
                    kind = value
                elif key == "features" and event == "start_array":
                    seen_features = True
                    for _, event, value in events:
                        if event == "end_array":
                            break
                        n += 1
                        yield (n, *_point(json_value(events, event, value)))
                else:
                    json_value(events, event, value)
            for _ in events:
                pass
        except ijson.JSONError as exc:
            raise FileProblem(f"不是有效的 JSON（{exc}）")
        except UnicodeDecodeError:
            raise FileProblem("文件不是 UTF-8 编码")
        except UnreadableFile as exc:
            if isinstance(exc, FileProblem):
                raise
            raise FileProblem(str(exc))  # json_events: nested too deep
    if kind != "FeatureCollection" or not seen_features:
        raise FileProblem("不是 GeoJSON FeatureCollection（需要 \"type\": \"FeatureCollection\" 和 features 数组）")


def _point(feature) -> tuple[dict, tuple | None, str | None]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return {}, None, "feature"
    props = feature.get("properties")
    props = props if isinstance(props, dict) else {}
    geom = feature.get("geometry")
    coords = geom.get("coordinates") if isinstance(geom, dict) else None
    if not (isinstance(geom, dict) and geom.get("type") == "Point" and isinstance(coords, list) and len(coords) >= 2):
        return props, None, "geometry"
    return props, (coords[0], coords[1]), None

