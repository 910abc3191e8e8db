"""The demo fleet's telemetry: what each demo device would send, round by round, with the faults a real fleet shows.

Pure (no database, no broker): `DeviceFeed.round(now)` answers the readings due at `now` as
(device id, type, payload) with the contract's payload `{"ts": ms, "values": {...}}`; the caller hands
them to the telemetry ingest (in-process in the embedded default: FeedRunner below) or publishes them over
MQTT (the device simulator, sensing_mqtt/simulator.py: `flask simulate-devices`). `DeviceFeed.flood(now, n)`
answers the next n readings of the fleet in turn, whatever their periods (the simulator's load mode), from
the same values and faults; `DeviceFeed.force` starts a named fault (or a silence) on a device now. Each device reports at its type's period (data/demo_device_feed.json), well inside its
allowed silence; a fault (a cover lifted at night, a gauge in a storm, a gas reading, a lamp fault, a
camera's event) starts at the rates of that file, and while it lasts, and for a few rounds after it ends,
the device reports every round, so the rules' durations and repeat counts and their clear conditions
are met by the readings themselves, as they would be by a real device in alarm. A silence stops a
device's reports for a while (the offline round then notices it). Deterministic for a seed.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from dispatch.city_time import CITY_TZ

RECOVERY_ROUNDS = 4  # rounds of normal readings at the round's pace after a fault: the clear conditions hold


@dataclass
class Fault:
    type: str
    code: str
    name: str
    per_device_day: float
    minutes: tuple[float, float]
    values: dict
    night_only: bool = False


@dataclass(slots=True)
class _Device:
    """One device's state in the feed: kept small (slots, the type's one string, only the battery of its values,
    no dict until a fault), ~250 bytes a device: a feed over 100,000 devices held 527 bytes a device with each
    device's last values and an empty fault dict (bench/bench_devices_memory.py)."""
    id: str
    type: str
    battery: float | None  # the only value a reading carries over (normal_values: a battery drains over months)
    next_at: datetime
    fault: Fault | None = None
    fault_values: dict | None = None
    until: datetime | None = None
    recovery: int = 0
    silent_until: datetime | None = None
    last_ms: int = 0  # the last reading's ts: a device never sends two readings at one millisecond


def _night(now: datetime) -> bool:
    return not 6 <= now.astimezone(CITY_TZ).hour < 18


def normal_values(type_code: str, rng: np.random.Generator, night: bool, keep: dict | None = None) -> dict:
    """Readings of a healthy device of the type (no rule of device_types.json holds on them); a battery
    keeps its level from `keep` (it drains over months, not between two readings)."""
    r = rng.random
    keep = keep or {}

    def battery(low: float) -> float:
        b = keep.get("battery_pct")
        return b if isinstance(b, (int, float)) and 20 <= b <= 100 else round(low + r() * (100 - low))

    if type_code == "manhole_cover":
        return {"tilt_deg": round(r() * 2, 1), "displacement_mm": round(r() * 5, 1),
                "water_level_cm": round(-250 + r() * 170), "battery_pct": battery(35)}
    if type_code == "water_gauge":
        return {"water_level_cm": 0 if r() < 0.9 else round(r() * 3, 1), "battery_pct": battery(40)}
    if type_code == "gas_detector":
        return {"gas_lel_pct": round(r() * 3, 1), "battery_pct": battery(40)}
    if type_code == "street_light":
        return {"lamp_on": night, "current_a": round(0.6 + r() * 0.5, 2) if night else 0.0, "fault": False}
    if type_code == "bridge_sensor":
        return {"strain_ue": round(-120 + r() * 270), "displacement_mm": round(-5 + r() * 10, 1),
                "tilt_deg": round(-0.1 + r() * 0.2, 3)}
    if type_code == "video_ai":
        return {"event": "none", "confidence": round(0.9 + r() * 0.09, 2)}
    return {}


class DeviceFeed:
    """The demo fleet's readings, round by round (see the module's docstring)."""

    def __init__(self, devices, settings: dict, now: datetime, seed: int = 20261207):
        """`devices`: (id, type code, last_seen or None, last values or None) of the devices that report
        (not those in maintenance); `settings`: data/demo_device_feed.json."""
        self.rng = np.random.default_rng(seed)
        self.round_s = float(settings["round_seconds"])
        self.every = {k: float(v) for k, v in settings["report_every_s"].items() if not k.startswith("_")}
        self.faults: dict[str, list[Fault]] = {}
        for f in settings["faults"]:
            fault = Fault(f["type"], f.get("code") or f["name"], f["name"], float(f["per_device_day"]),
                          tuple(f["minutes"]), f["values"], bool(f.get("night_only")))
            self.faults.setdefault(fault.type, []).append(fault)
        silence = settings.get("silence") or {}
        self.silence_rate = float(silence.get("per_device_day", 0))
        self.silence_minutes = tuple(silence.get("minutes", (60, 60)))
        self.devices: list[_Device] = []
        self._cursor = 0  # flood's next device
        for device_id, type_code, last_seen, values in devices:
            if type_code not in self.every:
                continue
            period = self.every[type_code]
            # the first report within one period of now; at the first round when it would otherwise fall more
            # than a period after the last one (a server that was down: the fleet is back before the offline
            # round, a minute after the start, would find it silent)
            phase = self.rng.random() * period
            if last_seen is not None and (now - last_seen).total_seconds() + phase > period:
                phase = 0.0
            battery = (values or {}).get("battery_pct")
            self.devices.append(_Device(device_id, sys.intern(type_code),
                                        battery if isinstance(battery, (int, float)) else None,
                                        now + timedelta(seconds=phase)))

    def _chance(self, per_day: float) -> bool:
        """Whether an event of `per_day` a device happens within one round."""
        return per_day > 0 and self.rng.random() < -math.expm1(-per_day * self.round_s / 86400.0)

    def _draw(self, spec) -> object:
        if isinstance(spec, list) and len(spec) == 2 and all(isinstance(x, (int, float)) for x in spec):
            value = spec[0] + self.rng.random() * (spec[1] - spec[0])
            return round(value, 2) if isinstance(spec[0], float) or isinstance(spec[1], float) else round(value)
        return spec

    def _begin(self, d: _Device, fault: Fault, now: datetime, minutes: float | None = None) -> None:
        lo, hi = fault.minutes
        d.fault = fault
        d.fault_values = {k: self._draw(v) for k, v in fault.values.items()}
        d.until = now + timedelta(minutes=minutes if minutes is not None else lo + self.rng.random() * (hi - lo))
        d.silent_until, d.recovery = None, 0

    def _start_fault(self, d: _Device, now: datetime, night: bool) -> None:
        for fault in self.faults.get(d.type, ()):
            if fault.night_only and not night:
                continue
            if self._chance(fault.per_device_day):
                self._begin(d, fault, now)
                return

    def fault_codes(self) -> dict[str, str]:
        """Each fault's code → the device type it happens to (`silence` happens to every type)."""
        return {f.code: f.type for faults in self.faults.values() for f in faults}

    def force(self, device_id: str, code: str, now: datetime, minutes: float | None = None) -> str:
        """Start the fault `code` of data/demo_device_feed.json (or `silence`) on the device now, whatever its
        rate, its night_only and the hour, for `minutes` (default: drawn from the fault's range); the device's id."""
        d = next((x for x in self.devices if x.id == device_id), None)
        if d is None:
            raise KeyError(f"device {device_id} is not in the feed")
        if code == "silence":
            lo, hi = self.silence_minutes
            d.fault, d.fault_values, d.until, d.recovery = None, None, None, 0
            d.silent_until = now + timedelta(minutes=minutes if minutes is not None
                                             else lo + self.rng.random() * (hi - lo))
            return d.id
        fault = next((f for f in self.faults.get(d.type, ()) if f.code == code), None)
        if fault is None:
            raise KeyError(f"no fault {code} for a {d.type}")
        self._begin(d, fault, now, minutes)
        return d.id

    def _advance(self, d: _Device, now: datetime, night: bool) -> bool:
        """A device's silences and faults begun and ended at `now`; whether it may report (it is not silent)."""
        if d.silent_until is not None:
            if now < d.silent_until:
                return False
            d.silent_until, d.next_at = None, now
        if d.fault is None and d.recovery == 0:
            if self._chance(self.silence_rate):
                lo, hi = self.silence_minutes
                d.silent_until = now + timedelta(minutes=lo + self.rng.random() * (hi - lo))
                return False
            self._start_fault(d, now, night)
        if d.fault is not None and now >= d.until:
            d.fault, d.fault_values, d.until, d.recovery = None, None, None, RECOVERY_ROUNDS
        return True

    def _reading(self, d: _Device, now: datetime, night: bool, ts: int) -> tuple[str, str, dict]:
        values = normal_values(d.type, self.rng, night, None if d.battery is None else {"battery_pct": d.battery})
        if d.fault_values:
            values.update(d.fault_values)
        d.battery = values.get("battery_pct")
        if d.recovery > 0 and d.fault is None:
            d.recovery -= 1
        d.next_at = now + timedelta(seconds=self.every[d.type] * (0.9 + 0.2 * self.rng.random()))
        d.last_ms = ts = max(ts, d.last_ms + 1)
        return d.id, d.type, {"ts": ts, "values": values}

    def round(self, now: datetime) -> list[tuple[str, str, dict]]:
        """The readings due at `now`: (device id, type code, {"ts": ms, "values": {...}})."""
        night = _night(now)
        ts = int(now.timestamp() * 1000)
        out = []
        for d in self.devices:
            if not self._advance(d, now, night):
                continue
            busy = d.fault is not None or d.recovery > 0
            if not busy and now < d.next_at:
                continue
            out.append(self._reading(d, now, night, ts))
        return out

    def flood(self, now: datetime, n: int) -> list[tuple[str, str, dict]]:
        """The next `n` readings of the fleet taken in turn, each device as soon as its turn comes (the load
        mode: its periods ignored, its values and faults as in :meth:`round`, a fault's chance per turn);
        fewer when every device is silent."""
        night = _night(now)
        ts = int(now.timestamp() * 1000)
        out: list[tuple[str, str, dict]] = []
        idle = 0  # devices in a row that were silent: a whole silent fleet ends the call
        while len(out) < n and self.devices and idle < len(self.devices):
            d = self.devices[self._cursor]
            self._cursor = (self._cursor + 1) % len(self.devices)
            if not self._advance(d, now, night):
                idle += 1
                continue
            idle = 0
            out.append(self._reading(d, now, night, ts))
        return out


class FeedRunner:
    """Drives the demo feed through the real telemetry ingest (sensing.telemetry), a round a call: the embedded
    default's demo devices report in-process, with no broker (scheduler.start_device_feed calls it)."""

    def __init__(self, db, ingest, clock, settings: dict | None = None, seed: int = 20261207):
        from data import files
        from data.devices import reporting_fleet

        with db.session() as s:
            fleet = reporting_fleet(s)
        self.ingest, self.clock = ingest, clock
        self.settings = settings or files.demo_device_feed()
        self.feed = DeviceFeed(fleet, self.settings, clock(), seed)

    def step(self, now: datetime | None = None) -> int:
        """One round: the readings due now, handed to the ingest as messages arrived now; how many."""
        from sensing.telemetry import Message

        now = now or self.clock()
        readings = self.feed.round(now)
        if readings:
            self.ingest.ingest([Message(device_id, payload, now) for device_id, _type, payload in readings])
        return len(readings)
