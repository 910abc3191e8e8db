"""The MQTT device simulator: the registered fleet's telemetry (demo.device_feed's values and faults) published to a broker.

Each reading goes to ``ucc/devices/<id>/telemetry`` at QoS 1 with the contract's payload ``{"ts": ms, "values":
{...}}``, as a real device sends it, so the server takes it through its MQTT consumer (sensing_mqtt.consumer)
like any other. Two modes over one generator (:class:`demo.device_feed.DeviceFeed`, the in-process demo
feed's own):

- realistic (no rate): a round every ``round_seconds`` of data/demo_device_feed.json, each device at its
  type's period, faults at that file's rates (a cover lifted at night, a gauge rising in a storm, a gas
  reading, a low battery, a device gone silent);
- load (``rate``): ``rate`` messages a second, the fleet taken in turn whatever its periods
  (:meth:`DeviceFeed.flood`), the same values and faults.

Faults can be forced at the start (:meth:`DeviceFeed.force`). The publisher keeps at most ``window`` messages
unacknowledged (paho scans its whole outgoing queue on each PUBACK, so an unbounded queue publishes
quadratically slowly); a broker slower than the rate therefore slows the simulator, and the report says so.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from demo.device_feed import DeviceFeed

log = logging.getLogger("ucc.mqtt.simulator")

TOPIC = "ucc/devices/{}/telemetry"
TICK_S = 0.05  # the load mode's pace: what is due is published every tick


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Report:
    published: int = 0
    acked: int = 0
    seconds: float = 0.0
    rounds: int = 0

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (f"已发布 {self.published} 条遥测（QoS 1，代理确认 {self.acked} 条），用时 {self.seconds:.1f} 秒，"
                f"{self.rate:,.0f} 条/秒")


class DeviceSimulator:
    """Publishes a DeviceFeed's readings to the broker at `url` (mqtt://host:port). Use :meth:`run`, or
    :meth:`start` / :meth:`stop` to run it in a thread."""

    def __init__(self, feed: DeviceFeed, url: str, client_id: str | None = None, window: int = 1000,
                 clock: Callable[[], datetime] = _utcnow):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.feed, self.clock = feed, clock
        self.report = Report()
        self._window = threading.BoundedSemaphore(window)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or "ucc-sim-" + uuid.uuid4().hex[:8], protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(window)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_publish = self._on_publish

    def _on_publish(self, *_args) -> None:
        self.report.acked += 1
        self._window.release()

    def connect(self, timeout: float = 10.0) -> "DeviceSimulator":
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                raise ConnectionError(f"MQTT 代理 {self.host}:{self.port} 无应答")
            time.sleep(0.01)
        return self

    def publish(self, readings) -> int:
        """Each (device id, type, payload) to its topic at QoS 1; waits while `window` are unacknowledged."""
        for device_id, _type, payload in readings:
            while not self._window.acquire(timeout=0.5):
                if self._stop.is_set():
                    return 0
            self.client.publish(TOPIC.format(device_id), orjson.dumps(payload), qos=1)
            self.report.published += 1
        return len(readings)

    def run(self, duration: float | None = None, rate: float | None = None) -> Report:
        """Publish until `duration` seconds have passed (None: until :meth:`stop`), realistic or at `rate`
        messages a second; then wait (up to 10 s) for the broker's last acknowledgements."""
        t0 = time.monotonic()
        end = None if duration is None else t0 + duration
        try:
            if rate:
                self._flood(t0, end, rate)
            else:
                self._rounds(end)
        finally:
            self.report.seconds = time.monotonic() - t0
            self.flush()
        return self.report

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the broker has acknowledged every message published (before :meth:`close`); whether it has."""
        deadline = time.monotonic() + timeout
        while self.report.acked < self.report.published and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.report.acked >= self.report.published

    def _rounds(self, end: float | None) -> None:
        step = self.feed.round_s
        next_round = time.monotonic()
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            self.publish(self.feed.round(self.clock()))
            self.report.rounds += 1
            next_round += step
            wait = next_round - time.monotonic()
            if end is not None:
                wait = min(wait, end - time.monotonic())
            if wait > 0:
                self._stop.wait(wait)

    def _flood(self, t0: float, end: float | None, rate: float) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                return
            due = int((now - t0) * rate) - self.report.published
            if due > 0:
                if not self.publish(self.feed.flood(self.clock(), due)):
                    self._stop.wait(TICK_S)  # the whole fleet silent
                self.report.rounds += 1
            else:
                self._stop.wait(TICK_S)

    def start(self, duration: float | None = None, rate: float | None = None) -> "DeviceSimulator":
        self._thread = threading.Thread(target=self.run, args=(duration, rate), name="ucc-device-simulator",
                                        daemon=True)
        self._thread.start()
        return self

    def running(self) -> bool:
        """Whether the thread of :meth:`start` is still publishing."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> Report:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.report

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
