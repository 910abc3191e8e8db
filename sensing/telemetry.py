"""Telemetry in: parse the contract's payloads, check them against the device types, store batches, count what is refused.

No web and no MQTT here: the MQTT edge (sensing_mqtt/) and the HTTP API hand messages to
:meth:`TelemetryIngest.ingest` and acknowledge or answer from its outcomes. A batch is one transaction:
read the batch's devices, insert the readings (each (device, ts) once: ON CONFLICT DO NOTHING), update the
devices' last_seen, last_values and status, commit. Only then is the ``on_stored`` hook called, once for the
batch (the alarm engine's entry, docs/devices.md), and only then may the caller acknowledge.

Payloads (CONTRACT.md, Sensing): ``{"ts": MILLISECONDS, "values": {KEY: VALUE}}``, a list of such, or a
flat ``{KEY: VALUE}`` read at its arrival. What cannot be stored is counted by reason (``malformed``,
``unknown_device``, ``unknown_key``, ``out_of_range``) and logged once per device and reason, so that a
flooding device costs one log line, not one per message.
"""
from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, NamedTuple, Sequence

import orjson

from data.db import Database
from data.models import utcnow
from data.telemetry import BatchWriter, roll_up_chunk, us_of
from dispatch.devices import DeviceType, KeySpec
from dispatch.errors import ServiceError
from dispatch.limits import EARLIEST_DAY, LATEST_DAY, day_in_range

log = logging.getLogger("ucc.telemetry")

DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")  # as import-devices accepts (sensing/importer.py)
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_READINGS = 1000  # readings in one message (a list payload)
MAX_VALUES = 100  # keys in one reading
FUTURE_SLACK = timedelta(minutes=10)  # a device clock this far ahead of arrival is wrong, not early
LOG_ONCE_CAP = 10_000  # (reason, device) pairs remembered for log-once; beyond it: one line, then silence
# Readings of a device: (ts, values) in time order, as stored.
Reading = tuple[datetime, dict]
# (device id, type code, its readings stored) of every device of a batch that had readings stored
OnStored = Callable[[list[tuple[str, str, list[Reading]]]], None]
REASONS = ("malformed", "unknown_device", "unknown_key", "out_of_range")
REASON_LABELS = {"malformed": "报文格式错误", "unknown_device": "未登记的设备", "unknown_key": "设备类型没有该键",
                 "out_of_range": "值类型不符或超出有效范围"}


class Malformed(ValueError):
    """A payload that is not one of the contract's shapes; the message is Chinese and says what is wrong."""


class Message(NamedTuple):
    """One message as it arrived: the device it names, its raw payload (bytes, str, or parsed JSON) and when (aware).
    A named tuple: the MQTT consumer makes one a message on paho's network thread, a third of a frozen dataclass's
    cost there."""

    device_id: str
    payload: object
    arrival: datetime


@dataclass(slots=True)
class Outcome:
    """What became of one message: readings stored and duplicated, and what was refused (reason, key, message)."""

    device_id: str
    readings: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: list[dict] = field(default_factory=list)
    error: str | None = None  # the message as a whole was refused: malformed or unknown_device

    def to_dict(self) -> dict:
        return {"device": self.device_id, "readings": self.readings, "stored": self.stored,
                "duplicates": self.duplicates, "refused": self.refused}


# ---- parsing and checking (pure) --------------------------------------------------------------------
def _timestamp(raw, arrival: datetime) -> datetime:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise Malformed("ts 应为毫秒时间戳（整数）")
    try:
        ts = datetime.fromtimestamp(raw / 1000.0, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise Malformed(f"ts {raw} 不是有效的毫秒时间戳")
    if not day_in_range(ts):
        raise Malformed(f"ts {raw} 不在 1900–2999 年之间（应为毫秒时间戳）")
    if ts > arrival + FUTURE_SLACK:
        raise Malformed(f"ts {raw} 晚于到达时间 10 分钟以上（设备时钟有误？）")
    # microseconds kept as the device sent them; a duplicate is the same device at the same millisecond
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


def _values(raw) -> dict:
    if not isinstance(raw, dict) or not raw:
        raise Malformed("values 应为非空的 JSON 对象 {键: 值}")
    if len(raw) > MAX_VALUES:
        raise Malformed(f"一条读数至多 {MAX_VALUES} 个键")
    return raw


def parse_payload(payload, arrival: datetime) -> list[Reading]:
    """The readings of a payload (bytes or str of JSON, or already parsed), in the order given; raises Malformed."""
    arrival_us = us_of(arrival)
    return [(arrival if us == arrival_us else _datetime(us), values) for us, values in _parse(payload, arrival, arrival_us)]


# Inside a batch a reading's time is an integer, microseconds since the epoch (UTC): compared, sorted, keyed and
# written without a datetime (docs/devices.md, the benchmark); the alarm engine's readings become datetimes again.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_ONE_MS = timedelta(milliseconds=1)
# the millisecond timestamps whose UTC day lies in EARLIEST_DAY..LATEST_DAY (dispatch.limits.day_in_range)
_MIN_MS = (datetime.combine(EARLIEST_DAY, datetime.min.time(), timezone.utc) - _EPOCH) // _ONE_MS
_MAX_MS = (datetime.combine(LATEST_DAY + timedelta(days=1), datetime.min.time(), timezone.utc) - _EPOCH) // _ONE_MS - 1
_SLACK_US = FUTURE_SLACK // _ONE_US


_NUMBERS = (int, float)  # a JSON number's types (type(), not isinstance: a flag is not a number)


_SECONDS: dict[int, datetime] = {}  # a second's datetime, kept (bounded): a batch's readings share a few
_MS_STEPS = tuple(timedelta(milliseconds=i) for i in range(1000))


def _datetime(us: int) -> datetime:
    """The aware UTC datetime of a time in microseconds (the alarm engine's readings: one per reading of a batch, so
    a kept second plus a kept millisecond step rather than a timedelta made and added from the epoch)."""
    sec, frac = divmod(us, 1_000_000)
    base = _SECONDS.get(sec)
    if base is None:
        if len(_SECONDS) >= 100_000:
            _SECONDS.clear()
        base = _SECONDS[sec] = _EPOCH + timedelta(seconds=sec)
    if frac % 1000:
        return base + timedelta(microseconds=frac)
    return base + _MS_STEPS[frac // 1000]


def _first(reading):
    return reading[0]


def _ts_us(raw, arrival: datetime, arrival_us: int) -> int:
    """_timestamp's answer in microseconds; an integer in range (every device's) without making a datetime, anything
    else (a float, out of range: its message) through _timestamp itself."""
    if type(raw) is int and _MIN_MS <= raw <= _MAX_MS:
        us = raw * 1000
        if us > arrival_us + _SLACK_US:
            raise Malformed(f"ts {raw} 晚于到达时间 10 分钟以上（设备时钟有误？）")
        return us
    return us_of(_timestamp(raw, arrival))


def _parse(payload, arrival: datetime, arrival_us: int) -> list[tuple[int, dict]]:
    """parse_payload with each time in microseconds."""
    if isinstance(payload, (bytes, bytearray, memoryview, str)):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise Malformed(f"报文超过 {MAX_PAYLOAD_BYTES // 1024} KB")
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise Malformed("报文不是合法的 JSON（UTF-8）")
    if type(payload) is dict and len(payload) == 2 and "ts" in payload:  # the common shape: one reading
        values = payload.get("values")
        if type(values) is dict and 0 < len(values) <= MAX_VALUES:
            return [(_ts_us(payload["ts"], arrival, arrival_us), values)]
    if isinstance(payload, list):
        if not payload:
            raise Malformed("读数列表为空")
        if len(payload) > MAX_READINGS:
            raise Malformed(f"一条报文至多 {MAX_READINGS} 条读数")
        out = []
        for i, item in enumerate(payload, start=1):
            if not isinstance(item, dict) or "values" not in item:
                raise Malformed(f"第 {i} 条读数应为 {{\"ts\": 毫秒, \"values\": {{…}}}}")
            out.append(_reading(item, arrival, arrival_us))
        return out
    if not isinstance(payload, dict) or not payload:
        raise Malformed("报文应为 {\"ts\": 毫秒, \"values\": {…}}、这样的列表，或 {键: 值}")
    if "values" in payload:
        return [_reading(payload, arrival, arrival_us)]
    return [(arrival_us, _values(payload))]  # flat: the values as of arrival


def _reading(item: dict, arrival: datetime, arrival_us: int) -> tuple[int, dict]:
    extra = set(item) - {"ts", "values"}
    if extra:
        raise Malformed(f"读数中有多余字段：{'、'.join(sorted(str(k)[:40] for k in extra)[:5])}")
    ts = _ts_us(item["ts"], arrival, arrival_us) if "ts" in item else arrival_us
    return ts, _values(item["values"])


def check_values(specs: dict[str, KeySpec], values: dict) -> tuple[dict, list[dict]]:
    """The values a device type accepts, and the refused ones (key, reason, Chinese message): a key the type does
    not have is ``unknown_key``; a value of the wrong kind or outside its range ``out_of_range``."""
    kept, refused = {}, []
    for key, value in values.items():
        spec = specs.get(key)
        if spec is None:
            refused.append({"key": str(key)[:40], "reason": "unknown_key", "message": f"设备类型没有键 {str(key)[:40]}"})
        elif not spec.valid(value):
            if spec.kind == "number":
                want = f"{spec.low}–{spec.high} 之间的数值"
            elif spec.kind == "bool":
                want = "true 或 false"
            else:
                want = "字符串" + (f"（{'、'.join(spec.values)}）" if spec.values else "")
            refused.append({"key": key, "reason": "out_of_range", "message": f"{key} 应为 {want}，收到 {str(value)[:40]}"})
        else:
            kept[key] = value
    return kept, refused


# ---- the service -----------------------------------------------------------------------------------
class TelemetryIngest:
    """Stores telemetry batches and keeps the operations counters; safe to call from several threads.

    `types()` gives the device types in force (the registry's). `on_stored(items)` — items being (device id,
    type code, the (ts, values) actually stored for it, in time order) of each device of the batch with readings
    stored — is called once after the batch commits (one call, so the alarm engine reads what it needs of the
    whole batch at once); its failures are logged, never raised (the readings are stored and acknowledged
    either way)."""

    def __init__(self, db: Database, types: Callable[[], dict[str, DeviceType]],
                 on_stored: OnStored | None = None, clock: Callable[[], datetime] = utcnow):
        self.db = db
        self._types = types
        self.on_stored = on_stored
        self.clock = clock
        self._lock = threading.Lock()
        self._specs: dict[str, dict[str, KeySpec]] | None = None
        self._number_ranges: dict[str, dict[str, tuple[float, float]]] | None = None
        self._batch_writer: BatchWriter | None = None
        self._logged: set[tuple[str, str]] = set()
        self._log_cap_said = False
        self.counts = dict.fromkeys(("messages", "readings", "stored", "duplicates", *REASONS, "batches"), 0)
        self.since = clock()
        # set by an MQTT consumer while it runs: its connection and queue (shown by the stats)
        self.consumer_state: Callable[[], dict] | None = None

    def _writer(self) -> BatchWriter:
        if self._batch_writer is None:
            self._batch_writer = BatchWriter(self.db.engine.dialect.name)
        return self._batch_writer

    def specs(self) -> dict[str, dict[str, KeySpec]]:
        if self._specs is None:
            self._specs = {code: {k.key: k for k in t.keys} for code, t in self._types().items()}
        return self._specs

    # ---- counting and logging once ---------------------------------------------------------------
    def _note(self, reason: str, device_id: str, detail: str) -> None:
        """Count one refusal; log it the first time this device has this problem."""
        with self._lock:
            self.counts[reason] += 1
            key = (reason, device_id)
            if key in self._logged:
                return
            if len(self._logged) >= LOG_ONCE_CAP:
                first_over = not self._log_cap_said
                self._log_cap_said = True
            else:
                self._logged.add(key)
                first_over = None
        if first_over is None:
            log.warning("遥测%s：设备 %s：%s（该设备此类问题此后只计数，不再记日志）", REASON_LABELS[reason],
                        device_id[:64], detail[:200])
        elif first_over:
            log.warning("遥测问题涉及的设备已超过 %d 个：此后的问题只计数，不再记日志", LOG_ONCE_CAP)

    def stats(self) -> dict:
        with self._lock:
            out = {"since": self.since, **self.counts}
        if self.consumer_state is not None:
            out["mqtt"] = self.consumer_state()
        return out

    # ---- the batch -------------------------------------------------------------------------------
    def ingest(self, messages: Sequence[Message],
               defer: Callable[[Callable[[], None]], None] | None = None) -> list[Outcome]:
        """Store a batch in one transaction; one Outcome per message, in order. Bad messages and values are
        counted and refused, never raised; a database failure raises (nothing of the batch is stored then, and
        the caller must not acknowledge it). `defer`: the on_stored call, as a function of no arguments, is
        handed to it instead of being made here (the MQTT consumer runs the hook on a thread of its own, in
        batch order, while it stores the next batch).

        Written for the MQTT consumer's pace (docs/devices.md, the benchmark): a step a message as few as it can,
        times as integers (microseconds) until the engine's readings are made."""
        specs, ranges = self.specs(), self._ranges()
        outcomes = [Outcome(m.device_id) for m in messages]
        parsed: list[tuple[int, int, list[tuple[int, dict]]]] = []  # (message, arrival, readings)
        match = DEVICE_ID.match
        for i, m in enumerate(messages):
            if not isinstance(m.device_id, str) or not match(m.device_id):
                outcomes[i].error = "unknown_device"
                self._note("unknown_device", str(m.device_id)[:64], "设备编号不合规")
                continue
            try:
                arrival_us = (m.arrival - _EPOCH) // _ONE_US
                parsed.append((i, arrival_us, _parse(m.payload, m.arrival, arrival_us)))
            except Malformed as exc:
                outcomes[i].error = "malformed"
                outcomes[i].refused.append({"reason": "malformed", "message": str(exc)})
                self._note("malformed", m.device_id, str(exc))
        # by device: the readings the alarm engine is given — those stored and the duplicates of readings stored
        # before this batch (a redelivery after a crash between the commit and the engine's run: the engine skips
        # what it has taken already, and takes what it had not)
        for_engine: dict[str, list[tuple[int, dict]]] = {}
        stored_by_device = for_engine
        writer = self._writer()
        with self.db.write_transaction() as cur:
            devices = writer.device_states(cur, sorted({messages[i].device_id for i, _, _ in parsed})) if parsed else {}
            rows, owners, keys = [], [], set()
            for i, arrival_us, readings in parsed:
                m, out = messages[i], outcomes[i]
                device_id = m.device_id
                state = devices.get(device_id)
                if state is None or state[0] not in specs:
                    out.error = "unknown_device"
                    out.refused.append({"reason": "unknown_device", "message": f"设备 {device_id} 未登记"})
                    self._note("unknown_device", device_id, "设备未登记")
                    continue
                type_ranges = ranges[state[0]]
                for ts, values in readings:
                    out.readings += 1
                    for key, value in values.items():  # the common case: every value a number in its range
                        bounds = type_ranges.get(key)
                        if bounds is None or type(value) not in _NUMBERS or not bounds[0] <= value <= bounds[1]:
                            kept, refused = check_values(specs[state[0]], values)
                            for r in refused:
                                r["ts"] = _datetime(ts)
                                out.refused.append(r)
                                self._note(r["reason"], device_id, r["message"])
                            break
                    else:
                        kept = values
                    if not kept:
                        continue
                    key = (device_id, ts)
                    if key in keys:  # the same device and time twice in this batch: the first is the one
                        out.duplicates += 1
                        continue
                    keys.add(key)
                    rows.append((device_id, ts, kept, arrival_us))
                    owners.append(out)
            before = writer.insert(cur, rows) if rows else set()  # the keys stored before this batch
            for (device_id, ts, kept, _received), out in zip(rows, owners):
                if before and (device_id, ts) in before:
                    out.duplicates += 1
                else:
                    out.stored += 1
                readings = for_engine.get(device_id)
                if readings is None:
                    for_engine[device_id] = [(ts, kept)]
                else:
                    readings.append((ts, kept))
            for readings in for_engine.values():
                if len(readings) > 1:
                    readings.sort(key=_first)
            if before:
                stored_by_device = {}
                for device_id, readings in for_engine.items():
                    kept_ = [r for r in readings if (device_id, r[0]) not in before]
                    if kept_:
                        stored_by_device[device_id] = kept_
            writer.update_devices(cur, self._device_updates(devices, stored_by_device))
        with self._lock:
            self.counts["batches"] += 1
            self.counts["messages"] += len(messages)
            self.counts["readings"] += sum(o.readings for o in outcomes)
            self.counts["stored"] += sum(o.stored for o in outcomes)
            self.counts["duplicates"] += sum(o.duplicates for o in outcomes)
        if self.on_stored is not None and for_engine:
            items = [(device_id, devices[device_id][0], [(_datetime(ts), values) for ts, values in readings])
                     for device_id, readings in for_engine.items()]
            if defer is not None:
                defer(lambda: self._hook(items))
            else:
                self._hook(items)
        return outcomes

    def _ranges(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Per type, the number keys' ranges: the quick acceptance of a value (check_values decides the rest)."""
        if self._number_ranges is None:
            self._number_ranges = {code: {k.key: (k.low, k.high) for k in t.values() if k.kind == "number"}
                                   for code, t in self.specs().items()}
        return self._number_ranges

    def _hook(self, items) -> None:
        try:
            self.on_stored(items)
        except Exception:  # noqa: BLE001 - the readings are stored; a failing hook must not lose the batch
            log.exception("遥测回调 on_stored 失败（%d 台设备）", len(items))

    @staticmethod
    def _device_updates(devices: dict[str, tuple], stored: dict[str, list[tuple[int, dict]]]) -> list[tuple]:
        """(id, last_seen, last_values, status) per device: last_seen the newest stored reading's time; last_values
        merged from the stored readings (time order) not older than the previous last_seen (history sent late does
        not overwrite newer values); status online, unless the device is in alarm or maintenance (the alarm engine
        and the operators own those). Times in microseconds; `stored` in time order."""
        updates = []
        for device_id, readings in stored.items():
            _type, status, last_seen, last_values = devices[device_id]
            merged = dict(last_values or {})
            newest = last_seen
            for ts, values in readings:
                if last_seen is None or ts >= last_seen:
                    merged.update(values)
                if newest is None or ts > newest:
                    newest = ts
            updates.append((device_id, newest, merged, status if status in ("alarm", "maintenance") else "online"))
        return updates

    def ingest_one(self, device_id: str, payload, arrival: datetime | None = None) -> Outcome:
        """One message (the HTTP path): a malformed payload is a 400, an unknown device a 404, with the reason in
        Chinese; otherwise what was stored and what was refused."""
        out = self.ingest([Message(device_id, payload, arrival or self.clock())])[0]
        if out.error == "malformed":
            raise ServiceError(400, "bad_request", f"遥测报文有误：{out.refused[0]['message']}")
        if out.error == "unknown_device":
            raise ServiceError(404, "not_found", f"设备 {device_id[:64]} 不存在")
        return out

    # ---- retention ---------------------------------------------------------------------------------
    def roll_up(self, retention_days: int, now: datetime | None = None, chunk: int = 20_000) -> int:
        """Roll raw readings older than `retention_days` into telemetry_hourly and delete them, a chunk per
        transaction (a long backlog does not hold one huge transaction); returns how many raw rows went."""
        cutoff = (now or self.clock()) - timedelta(days=retention_days)
        total = 0
        while True:
            with self.db.session() as s:
                n = roll_up_chunk(s, cutoff, chunk)
            total += n
            if n < chunk:
                return total

