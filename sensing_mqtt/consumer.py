"""The MQTT telemetry consumer: subscribes to ucc/devices/+/telemetry and ucc/indicators (QoS 1), stores in batches, acknowledges after commit.

Delivery: the client connects with MQTT 5, a fixed client id, clean_start False and a session expiry, so the
broker keeps the subscription and every unacknowledged message while the server is away (restart, deploy)
and resends them when it is back. Messages are acknowledged by hand (paho's ``manual_ack``): on_message only
appends to a buffer; a writer thread hands the buffer to :class:`sensing.telemetry.TelemetryIngest` as one
batch (one transaction) and sends the PUBACKs only after the commit. What was acknowledged is therefore
stored; what was not is resent by the broker and, being the same (device, ts), stored once.

The buffer is bounded here (``max_buffered``, two batches by default): when it is full, on_message waits for the
writer, which holds paho's network thread, so the client reads nothing more from its socket and TCP pushes back on
the broker, which keeps the messages (they are not acknowledged, so QoS 1 loses none). The CONNECT's
``receive_maximum`` asks the broker for the same, but Mosquitto sends a queued backlog past it (90,000 buffered
in the benchmark before this bound). A writer stalled longer than the keepalive lets the broker drop the
connection: the reconnect resends what was not acknowledged.

On PostgreSQL the alarm engine (the ingest's on_stored hook) runs on a thread of its own, one batch after the other
in the order they were stored, at most two batches behind (then the writer waits), while the writer stores the
next batch, so the engine's Python work overlaps the writer's waits on the server (on SQLite, where a batch is
all Python under the GIL, the extra thread only cost switches, 10-30 % in the benchmark, so it runs inline):
each batch is acknowledged after its commit, as before, and the engine's work was never covered by the
acknowledgement (a crash between the commit and the hook loses the hook's work either way: the broker's
resend is a duplicate, not stored again, so not seen again).

Indicator readings (``ucc/indicators``, the payload of POST /api/v1/indicators) ride the same buffer: a batch's
telemetry goes to the telemetry ingest and its indicator messages to :class:`sensing.indicators.IndicatorIngest`
(each one transaction), and the batch is acknowledged once both committed. A malformed indicator message is
counted and logged by that ingest, and acknowledged (resending it would not mend it).

A message received on an earlier connection is never acknowledged on a later one (its packet id may name
another message there): the broker resends it after the reconnect and the duplicate is skipped.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sensing.indicators import IndicatorIngest
from sensing.telemetry import Message, TelemetryIngest

log = logging.getLogger("ucc.mqtt")

TELEMETRY_TOPIC = "ucc/devices/+/telemetry"
INDICATORS_TOPIC = "ucc/indicators"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TelemetryConsumer:
    """Start with :meth:`start`, stop with :meth:`stop` (flushes what it holds, then disconnects)."""

    def __init__(self, ingest: TelemetryIngest, url: str, client_id: str = "ucc-telemetry",
                 topic: str = TELEMETRY_TOPIC, batch_size: int = 1000, max_delay: float = 0.05,
                 receive_maximum: int = 2000, session_expiry: int = 7 * 24 * 3600, keepalive: int = 30,
                 retry_delay: float = 1.0, indicators: IndicatorIngest | None = None,
                 indicators_topic: str = INDICATORS_TOPIC, max_buffered: int | None = None,
                 hook_thread: bool | None = None):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.ingest = ingest
        self.client_id, self.topic = client_id, topic
        self.indicators, self.indicators_topic = indicators, indicators_topic
        self.batch_size, self.max_delay, self.retry_delay = batch_size, max_delay, retry_delay
        self.max_buffered = max(max_buffered or 2 * batch_size, batch_size)
        self.receive_maximum, self.session_expiry, self.keepalive = receive_maximum, session_expiry, keepalive
        self._cond = threading.Condition()
        self._buffer: list[tuple[int, int, int, Message]] = []  # (connection generation, mid, qos, message)
        self._generation = 0
        self._stopping = False
        self._writer: threading.Thread | None = None
        self._hooks: queue.Queue = queue.Queue(maxsize=2)  # the alarm engine's calls, in batch order
        self._hook_thread: threading.Thread | None = None
        # None: a thread for the alarm engine when the database is a server (see the module's docstring)
        self.hook_thread = hook_thread if hook_thread is not None else ingest.db.engine.dialect.name != "sqlite"
        self.connected = False
        self.counts = {"connects": 0, "disconnects": 0, "acked": 0, "not_acked_stale": 0, "write_failures": 0,
                       "waits_full": 0}
        self._failing = False
        self.client = self._make_client()

    # ---- the client ----------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
                             manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    def _on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT 连接被拒绝：%s", reason_code)
            return
        with self._cond:
            self._generation += 1
        self.connected = True
        self.counts["connects"] += 1
        # the session keeps the subscription; subscribing again is harmless and covers an expired session
        topics = [(self.topic, 1)] + ([(self.indicators_topic, 1)] if self.indicators is not None else [])
        client.subscribe(topics)
        log.info("MQTT 已连接 %s:%s（client_id=%s，会话%s），订阅 %s", self.host, self.port, self.client_id,
                 "保留" if flags.session_present else "新建", "、".join(t for t, _q in topics))

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected = False
        self.counts["disconnects"] += 1
        if not self._stopping:
            log.warning("MQTT 连接断开（%s），自动重连", reason_code)

    def _on_message(self, _client, _userdata, msg) -> None:
        # the network thread: as little as possible here (the topic's device level, the arrival time); paho decodes
        # the topic at each reading of msg.topic, so once
        topic = msg.topic
        if topic == self.indicators_topic:
            item = (self._generation, msg.mid, msg.qos, (msg.payload, _utcnow()))  # an indicator message
        else:
            parts = topic.split("/")
            device_id = parts[2] if len(parts) == 4 else topic
            item = (self._generation, msg.mid, msg.qos, Message(device_id, msg.payload, _utcnow()))
        with self._cond:
            if len(self._buffer) >= self.max_buffered and not self._stopping:
                self.counts["waits_full"] += 1
                while len(self._buffer) >= self.max_buffered and not self._stopping:
                    self._cond.wait()  # the writer takes a batch and wakes us: the socket is not read meanwhile
            self._buffer.append(item)
            if len(self._buffer) >= self.batch_size:
                self._cond.notify_all()

    # ---- the writer ----------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            with self._cond:
                if not self._stopping and len(self._buffer) < self.batch_size:
                    self._cond.wait(self.max_delay)
                batch = self._buffer[:self.batch_size]
                del self._buffer[:len(batch)]
                stopping = self._stopping
                if batch:
                    self._cond.notify_all()  # room in the buffer: a waiting on_message goes on
            if batch:
                self._write(batch)
            elif stopping:
                return

    def _write(self, batch: list) -> None:
        """Store the batch (telemetry, then indicator readings), retrying while the database fails (nothing is
        acknowledged meanwhile), then ack it."""
        telemetry = [item[3] for item in batch if isinstance(item[3], Message)]
        indicators = [item[3] for item in batch if not isinstance(item[3], Message)]
        hooks: list = []
        defer = hooks.append if self._hook_thread is not None else None
        if telemetry and not self._store(lambda: self.ingest.ingest(telemetry, defer=defer)):
            return
        if indicators and self.indicators is not None and not self._store(
                lambda: self.indicators.ingest(indicators, origin="mqtt")):
            return
        if self._hook_thread is not None:
            # the engine runs on its thread while this one stores the next batch; the batch is acknowledged only
            # after the engine has run on it, so a crash in between leaves it with the broker, to be redelivered
            # (stored once; the engine takes readings it has not taken, docs/devices.md) rather than lost to the rules
            def engine_then_ack(hooks=hooks, batch=batch):
                for hook in hooks:
                    hook()
                self._ack(batch)
            self._hooks.put(engine_then_ack)
            return
        self._ack(batch)

    def _ack(self, batch: list) -> None:
        generation = self._generation
        for gen, mid, qos, _m in batch:
            if qos == 0:
                continue
            if gen != generation:
                self.counts["not_acked_stale"] += 1  # received on an earlier connection: resent by the broker
                continue
            self.client.ack(mid, qos)
            self.counts["acked"] += 1

    def _store(self, write) -> bool:
        """Run `write` until it succeeds (True), or the consumer stops while the database fails (False: nothing of
        the batch is acknowledged; the broker resends it to the next consumer of this session)."""
        while True:
            try:
                write()
                break
            except Exception:  # noqa: BLE001 - the consumer never dies; the broker keeps what is not acked
                self.counts["write_failures"] += 1
                if not self._failing:
                    log.exception("批量写入失败，%0.1f 秒后重试（期间不确认，消息留在代理）", self.retry_delay)
                    self._failing = True
                if self._stopping:
                    return False
                time.sleep(self.retry_delay)
        if self._failing:
            log.info("写入已恢复")
            self._failing = False
        return True

    def _hook_loop(self) -> None:
        while True:
            call = self._hooks.get()
            try:
                if call is None:
                    return
                call()  # TelemetryIngest._hook: logs its own failures
            finally:
                self._hooks.task_done()

    def hooks_done(self) -> bool:
        """Whether the alarm engine has run on every batch stored so far."""
        return self._hooks.unfinished_tasks == 0

    # ---- life ----------------------------------------------------------------------------------------
    def start(self) -> "TelemetryConsumer":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        props.ReceiveMaximum = self.receive_maximum
        self._writer = threading.Thread(target=self._write_loop, name="ucc-mqtt-writer", daemon=True)
        self._writer.start()
        if self.hook_thread:
            self._hook_thread = threading.Thread(target=self._hook_loop, name="ucc-mqtt-alarms", daemon=True)
            self._hook_thread.start()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive, clean_start=False, properties=props)
        self.client.loop_start()  # the network thread; it reconnects by itself (reconnect_delay_set)
        self.ingest.consumer_state = self.state
        return self

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.connected

    def stop(self, timeout: float = 10.0) -> None:
        """Write and acknowledge what is buffered, then disconnect (the session stays with the broker)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join(timeout)
        if self._hook_thread is not None:
            self._hooks.put(None)  # after the last batch's hook
            self._hook_thread.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        if self.ingest.consumer_state == self.state:
            self.ingest.consumer_state = None

    def state(self) -> dict:
        with self._cond:
            buffered = len(self._buffer)
        return {"broker": f"{self.host}:{self.port}", "client_id": self.client_id, "connected": self.connected,
                "buffered": buffered, **self.counts}


def start_consumer(ingest: TelemetryIngest, url: str, client_id: str | None = None,
                   lock_dir: str | None = None, indicators: IndicatorIngest | None = None) -> TelemetryConsumer | None:
    """The server's consumer, in one process per machine: the first process to take the lock file runs it
    (gunicorn's workers would otherwise share one client id and take the session from each other); the others
    return None. Its client id is fixed (UCC_MQTT_CLIENT_ID, default ucc-telemetry), so a restart resumes its
    session and receives what the broker kept."""
    if lock_dir is not None:
        import fcntl

        os.makedirs(lock_dir, exist_ok=True)
        fd = os.open(os.path.join(lock_dir, "mqtt-consumer.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            log.info("MQTT 遥测接入已由本机另一进程运行")
            return None
        # the descriptor stays open (and locked) for the life of the process
    return TelemetryConsumer(ingest, url, client_id=client_id or "ucc-telemetry", indicators=indicators).start()
