"""The city's vital signs in: parse and check indicator readings against the catalog, store them, read series back.

No web and no MQTT here: the HTTP API (api/indicators.py) and the MQTT edge (sensing_mqtt/, topic
``ucc/indicators``) hand payloads to :class:`IndicatorIngest`, as does the demo feeder (demo/indicator_feed.py).
A payload (CONTRACT.md, Sensing) is one reading ``{"code", "ts", "value", "unit", "source"}`` or a list of them;
ts is ISO-8601 with a zone or epoch milliseconds. A payload is all-or-nothing: one bad reading refuses it whole,
with every bad reading named (``第 N 条：…``). A reading already stored (same code and ts) is a duplicate and
stored once. The catalog (data/catalog/city_indicators.json) says which codes exist, their unit and valid range.
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

import orjson

from data.db import Database
from data.indicator_readings import insert_readings, latest_before, read_series
from data.models import utcnow
from dispatch.errors import ServiceError
from dispatch.indicators import IndicatorCatalog
from dispatch.limits import day_in_range
from figures.vital_signs import forget as forget_screens

log = logging.getLogger("ucc.indicators")

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_READINGS = 2000  # readings in one payload (a list)
MAX_SOURCE = 64
FUTURE_SLACK = timedelta(minutes=10)  # a clock this far ahead of arrival is wrong, not early
MAX_SERIES_DAYS = 93  # one range read: a quarter at most
FIELDS = ("code", "ts", "value", "unit", "source")
REASONS = ("malformed", "unknown_code", "out_of_range")
LOG_ONCE_CAP = 1000


class Refused(ValueError):
    """A payload that cannot be stored: ``problems`` are Chinese, one per bad reading (``第 N 条：…``)."""

    def __init__(self, problems: list[str], reason: str = "malformed"):
        self.problems = problems
        self.reason = reason
        super().__init__("；".join(problems[:5]) + (f"（另有 {len(problems) - 5} 处）" if len(problems) > 5 else ""))


@dataclass(frozen=True)
class Reading:
    code: str
    ts: datetime
    value: float
    unit: str
    source: str


@dataclass
class Outcome:
    readings: int = 0
    stored: int = 0
    duplicates: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"readings": self.readings, "stored": self.stored, "duplicates": self.duplicates}


# ---- parsing and checking (pure) --------------------------------------------------------------------
def parse_ts(raw, arrival: datetime) -> datetime:
    """ISO-8601 with a zone (…Z or …+08:00) or epoch milliseconds → aware UTC, whole milliseconds; ValueError (Chinese)."""
    if isinstance(raw, str):
        text = raw.strip()
        try:
            ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"ts {text[:40]!r} 不是 ISO 8601 时间（如 2026-12-07T09:30:00+08:00）或毫秒时间戳")
        if ts.tzinfo is None:
            raise ValueError(f"ts {text[:40]!r} 须带时区（如 +08:00 或 Z）")
        try:
            ts = ts.astimezone(timezone.utc)
        except OverflowError:  # 0001-01-01T00:00+14:00 lies before year 1 in UTC (the fuzz run found it)
            raise ValueError(f"ts {text[:40]!r} 超出可表示的时间范围")
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            raise ValueError("ts 应为有限的毫秒时间戳")
        try:
            ts = datetime.fromtimestamp(raw / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"ts {raw} 不是有效的毫秒时间戳")
    else:
        raise ValueError("ts 应为 ISO 8601 时间字符串或毫秒时间戳（整数）")
    if not day_in_range(ts):
        raise ValueError(f"ts {str(raw)[:40]} 不在 1900–2999 年之间（毫秒时间戳？）")
    if ts > arrival + FUTURE_SLACK:
        raise ValueError(f"ts {str(raw)[:40]} 晚于接收时间 10 分钟以上（时钟有误？）")
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


def check_reading(item, catalog: IndicatorCatalog, arrival: datetime) -> tuple[Reading | None, list[tuple[str, str]]]:
    """One reading checked: (the reading, []) or (None, [(reason, Chinese message), …]) naming every problem."""
    if not isinstance(item, dict):
        return None, [("malformed", "应为 JSON 对象 {\"code\", \"ts\", \"value\", \"unit\", \"source\"}")]
    problems: list[tuple[str, str]] = []
    extra = set(item) - set(FIELDS)
    if extra:
        problems.append(("malformed", f"多余字段 {'、'.join(sorted(str(k)[:30] for k in extra)[:5])}"))
    code = item.get("code")
    spec = catalog.get(code) if isinstance(code, str) else None
    if code is None:
        problems.append(("malformed", "缺少 code（指标代码）"))
    elif spec is None:
        known = "、".join(catalog.indicators)
        problems.append(("unknown_code", f"未知指标代码 {str(code)[:40]!r}（可用：{known}）"))
    ts = None
    if "ts" not in item:
        problems.append(("malformed", "缺少 ts（ISO 8601 时间或毫秒时间戳）"))
    else:
        try:
            ts = parse_ts(item["ts"], arrival)
        except ValueError as exc:
            problems.append(("malformed", str(exc)))
    value = item.get("value")
    if "value" not in item:
        problems.append(("malformed", "缺少 value（数值）"))
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.append(("malformed", f"value 应为数值，收到 {str(value)[:40]!r}"))
    elif spec is not None and not spec.valid(value):
        problems.append(("out_of_range", f"{spec.name} 的值应在 {spec.low:g}–{spec.high:g} 之间，收到 {value:g}"))
    unit = item.get("unit")
    if unit is not None and not isinstance(unit, str):
        problems.append(("malformed", "unit 应为字符串"))
    elif spec is not None and unit is not None and unit.strip() != spec.unit:
        problems.append(("malformed", f"{spec.name} 的单位应为 {spec.unit or '空字符串（无量纲）'}，收到 {unit[:20]!r}"))
    source = item.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(("malformed", "缺少 source（数据来源，如 交通运行监测平台）"))
    elif len(source.strip()) > MAX_SOURCE:
        problems.append(("malformed", f"source 至多 {MAX_SOURCE} 个字符"))
    if problems:
        return None, problems
    return Reading(code, ts, float(value), spec.unit, source.strip()), []


def parse_payload(payload, catalog: IndicatorCatalog, arrival: datetime) -> list[Reading]:
    """The readings of a payload (bytes/str of JSON or parsed), all checked; raises Refused naming every bad one."""
    if isinstance(payload, (bytes, bytearray, memoryview, str)):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise Refused([f"报文超过 {MAX_PAYLOAD_BYTES // 1024} KB"])
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise Refused(["报文不是合法的 JSON（UTF-8）"])
    single = isinstance(payload, dict)
    items = [payload] if single else payload
    if not isinstance(items, list):
        raise Refused(["报文应为一条读数 {\"code\", \"ts\", \"value\", \"unit\", \"source\"} 或这样的列表"])
    if not items:
        raise Refused(["读数列表为空"])
    if len(items) > MAX_READINGS:
        raise Refused([f"一次至多 {MAX_READINGS} 条读数"])
    out, problems, reasons = [], [], []
    for i, item in enumerate(items, start=1):
        reading, bad = check_reading(item, catalog, arrival)
        if bad:
            problems.append(("" if single else f"第 {i} 条：") + "；".join(m for _r, m in bad))
            reasons += [r for r, _m in bad]
        else:
            out.append(reading)
    if problems:
        reason = next((r for r in ("unknown_code", "out_of_range") if r in reasons and "malformed" not in reasons),
                      "malformed")
        raise Refused(problems, reason)
    return out


# ---- the service -----------------------------------------------------------------------------------
class IndicatorIngest:
    """Stores indicator readings and reads them back; counts what it refused. Safe to call from several threads."""

    def __init__(self, db: Database, catalog: Callable[[], IndicatorCatalog], clock: Callable[[], datetime] = utcnow):
        self.db = db
        self._catalog = catalog
        self.clock = clock
        self._lock = threading.Lock()
        self._logged: set[tuple[str, str]] = set()
        self.counts = dict.fromkeys(("messages", "readings", "stored", "duplicates", *REASONS, "batches"), 0)

    @property
    def catalog(self) -> IndicatorCatalog:
        return self._catalog()

    def _note(self, reason: str, detail: str, origin: str) -> None:
        with self._lock:
            self.counts[reason] += 1
            key = (reason, origin)
            if key in self._logged or len(self._logged) >= LOG_ONCE_CAP:
                return
            self._logged.add(key)
        log.warning("体征指标报文被拒（%s，来自 %s）：%s（此后同类问题只计数）", reason, origin[:64], detail[:300])

    def _store(self, readings: list[Reading], arrival: datetime) -> tuple[int, int]:
        """Stores checked readings in one transaction; (stored, duplicates). A database failure raises."""
        if not readings:
            return 0, 0
        rows = [{"code": r.code, "ts": r.ts, "value": r.value, "unit": r.unit, "source": r.source,
                 "received_at": arrival} for r in readings]
        with self.db.session() as s:
            inserted = insert_readings(s, rows)
        if inserted:
            forget_screens(self.db.url)
        stored = 0
        for r in readings:
            if (r.code, r.ts) in inserted:
                inserted.discard((r.code, r.ts))  # the same key twice in one payload: the second is a duplicate
                stored += 1
        return stored, len(readings) - stored

    def post(self, payload, arrival: datetime | None = None) -> dict:
        """The HTTP path: the whole payload stored (what was new, what was a duplicate) or a 400 naming every bad
        reading, with nothing stored."""
        arrival = arrival or self.clock()
        try:
            readings = parse_payload(payload, self.catalog, arrival)
        except Refused as exc:
            with self._lock:
                self.counts[exc.reason] += 1
            raise ServiceError(400, "bad_request", f"指标读数有误，未保存：{exc}", {"problems": exc.problems})
        stored, duplicates = self._store(readings, arrival)
        self._count(1, len(readings), stored, duplicates)
        return {"readings": len(readings), "stored": stored, "duplicates": duplicates}

    def ingest(self, messages: Sequence[tuple[object, datetime]], origin: str = "mqtt") -> list[Outcome]:
        """The MQTT path: (payload, arrival) messages, the good ones stored in one transaction; a bad message is
        counted and logged (once per reason), never raised. A database failure raises (nothing stored: the caller
        must not acknowledge)."""
        outcomes, good = [], []
        for payload, arrival in messages:
            out = Outcome()
            try:
                readings = parse_payload(payload, self.catalog, arrival)
            except Refused as exc:
                out.error, out.problems = exc.reason, exc.problems
                self._note(exc.reason, str(exc), origin)
            else:
                out.readings = len(readings)
                good.append((out, readings, arrival))
            outcomes.append(out)
        if good:
            rows = [{"code": r.code, "ts": r.ts, "value": r.value, "unit": r.unit, "source": r.source,
                     "received_at": arrival} for out, readings, arrival in good for r in readings]
            with self.db.session() as s:
                inserted = insert_readings(s, rows)
            if inserted:
                forget_screens(self.db.url)
            for out, readings, _arrival in good:
                for r in readings:
                    if (r.code, r.ts) in inserted:
                        inserted.discard((r.code, r.ts))  # the same key twice in a batch: the second is a duplicate
                        out.stored += 1
                    else:
                        out.duplicates += 1
        self._count(len(messages), sum(o.readings for o in outcomes), sum(o.stored for o in outcomes),
                    sum(o.duplicates for o in outcomes))
        return outcomes

    def store_readings(self, readings: list[Reading], arrival: datetime | None = None) -> tuple[int, int]:
        """Readings already checked (the demo feeder's own, made from the catalog): stored in one transaction."""
        stored, duplicates = self._store(readings, arrival or self.clock())
        self._count(0, len(readings), stored, duplicates)
        return stored, duplicates

    def _count(self, messages: int, readings: int, stored: int, duplicates: int) -> None:
        with self._lock:
            self.counts["batches"] += 1
            self.counts["messages"] += messages
            self.counts["readings"] += readings
            self.counts["stored"] += stored
            self.counts["duplicates"] += duplicates

    def stats(self) -> dict:
        with self._lock:
            return dict(self.counts)

    # ---- reading back ------------------------------------------------------------------------------
    def series(self, code: str | None, start: datetime | None = None, end: datetime | None = None,
               now: datetime | None = None) -> dict:
        """`{code, name, unit, items: [{ts, value, unit, source}]}` with start <= ts < end, oldest first; default:
        the 24 hours before now. A range longer than MAX_SERIES_DAYS, reversed or an unknown code is a 400."""
        spec = self.catalog.get(code) if code else None
        if spec is None:
            known = "、".join(self.catalog.indicators)
            raise ServiceError(400, "bad_request", f"未知指标代码 {str(code or '')[:40]!r}（可用：{known}）"
                               if code else f"缺少参数 code（可用：{known}）")
        end = end or now or self.clock()
        start = start or end - timedelta(days=1)
        if start >= end:
            raise ServiceError(400, "bad_request", "参数 start 须早于 end")
        if end - start > timedelta(days=MAX_SERIES_DAYS):
            raise ServiceError(400, "bad_request", f"一次至多查询 {MAX_SERIES_DAYS} 天")
        with self.db.session() as s:
            rows = read_series(s, code, start, end)
        return {"code": code, "name": spec.name, "unit": spec.unit,
                "items": [{"ts": ts.isoformat().replace("+00:00", "Z"), "value": value, "unit": unit,
                           "source": source} for ts, value, unit, source in rows]}

    def latest(self, code: str) -> tuple | None:
        with self.db.session() as s:
            return latest_before(s, code)
