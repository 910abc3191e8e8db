"""Socket.IO client managers that route the local fan-out of `case_event` through the delivery gate.

`LiveManager` serves one process alone. `LiveRedisManager` shares events between processes through
Redis pub/sub (python-socketio's RedisManager) and adds what an operations centre needs when Redis
goes away:

- publishing never blocks for long: short socket timeouts, no client-side retries, and after a
  failure publishes are not even tried until the outage's next retry time (web/outage.py);
- the local fan-out happens before the publish (as in python-socketio), so clients of the
  committing process are served while Redis is down;
- messages that could not be published are kept (bounded) and published again when Redis is back,
  so clients of other processes get them late rather than never;
- the subscriber pings Redis every few seconds, reconnects quickly (0.5 s doubling to 5 s), and
  when it comes back after an outage tells the live bus, which replays the outage window from the
  outbox to every connection of this process (the gate drops what a connection already had);
- an outage is logged once per process, with its retry delay, and its end once: the publisher, the
  subscriber and the other users of the same Redis share one `web.outage.Outage`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

import socketio

from live.gate import DeliveryGate
from web.outage import redis_outage

log = logging.getLogger("ucc.live")

EVENT = "case_event"


class _GatedFanout:
    """Mixin for a socketio Manager: the local fan-out of live case events goes through the gate.
    A live emit addresses a *list* of rooms; a replay addresses one sid and never comes here."""

    live_gate: DeliveryGate | None = None
    live_namespace: str = "/live"

    def _gated_fanout(self, event, data, namespace, room, skip_sid) -> bool:
        gate = self.live_gate
        if (gate is None or event != EVENT or namespace != self.live_namespace or not isinstance(room, list)
                or not room or not isinstance(data, dict) or not isinstance(data.get("seq"), int)):
            return False
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}

        def participants() -> list[str]:
            if namespace not in self.rooms:
                return []
            return [sid for sid, _eio in self.get_participants(namespace, room) if sid not in skip]

        def send_many(targets: list[str], payload: dict) -> None:
            socketio.Manager.emit(self, event, payload, namespace, room=targets)

        gate.offer(data["seq"], data, participants, send_many)
        return True

    def send_direct(self, sid: str, event: str, data: dict, namespace: str) -> None:
        """Send to one local connection, bypassing the gate and the message queue (replays)."""
        socketio.Manager.emit(self, event, data, namespace, room=sid)


class LiveManager(_GatedFanout, socketio.Manager):
    """One process alone (no REDIS_URL)."""

    def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        room = to or room
        if callback is None and self._gated_fanout(event, data, namespace, room, skip_sid):
            return None
        return super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)


class LiveRedisManager(_GatedFanout, socketio.RedisManager):
    """Several processes sharing events through Redis pub/sub."""

    name = "ucc-redis"
    PING_EVERY = 3.0
    PONG_TIMEOUT = 6.0

    def __init__(self, url: str, channel: str, keep_unpublished: int = 10000):
        super().__init__(url, channel=channel, write_only=False)
        self._pub = None
        self._pub_lock = threading.Lock()
        self.outage = redis_outage(url)  # shared with the rate limits: one warning per outage
        self._unpublished: deque = deque(maxlen=keep_unpublished)
        self._link_up = False
        self._failed = False  # the subscriber has failed at least once (an outage to catch up after)
        # Wall-clock time the subscriber last heard from Redis (process start until it first does).
        self.last_good: float | None = time.time()
        self.on_recovered: Callable[[float | None], None] | None = None  # told last_good before the outage
        self.publish_failures = 0

    # ---- redis clients -----------------------------------------------------------------------
    def _client(self, read_timeout: float):
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        module = self._get_redis_module()
        return module.Redis.from_url(self.redis_url, socket_connect_timeout=1.0, socket_timeout=read_timeout,
                                     retry=Retry(NoBackoff(), 0), health_check_interval=0)

    # ---- publishing ----------------------------------------------------------------------------
    def _publish(self, data):
        if not self.outage.may_try():
            self._keep(data)
            return None
        try:
            with self._pub_lock:
                if self._pub is None:
                    self._pub = self._client(read_timeout=1.0)
                pub = self._pub
            result = pub.publish(self.channel, self.json.dumps(data))
        except Exception as exc:  # noqa: BLE001 - Redis away: keep serving this process's clients
            self.publish_failures += 1
            self.outage.failed(exc)  # logs the outage once; messages wait in _unpublished meanwhile
            self._keep(data)
            return None
        self.outage.recovered()
        if self._unpublished:
            self._republish()
        return result

    def _keep(self, data) -> None:
        if data.get("method") == "emit":
            self._unpublished.append(data)

    def _republish(self) -> None:
        """Publish what could not be published during an outage, oldest first."""
        n = 0
        while self._unpublished and self.outage.may_try():
            try:
                data = self._unpublished.popleft()
            except IndexError:
                break
            try:
                self._pub.publish(self.channel, self.json.dumps(data))
                n += 1
            except Exception as exc:  # noqa: BLE001
                self._unpublished.appendleft(data)
                self.outage.failed(exc)
                break
        if n:
            log.info("Redis 恢复：补发 %d 条实时消息", n)

    # ---- subscribing ---------------------------------------------------------------------------
    def _redis_listen_with_retries(self):  # pragma: no cover - exercised by the live tests
        while True:
            pubsub = None
            try:
                client = self._client(read_timeout=self.PONG_TIMEOUT)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self._mark_up()
                last_ping, waiting_since = time.monotonic(), None
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    now = time.monotonic()
                    if message is not None:
                        self.last_good = time.time()
                        if message.get("type") == "pong":
                            waiting_since = None
                        else:
                            yield message
                    if waiting_since is not None and now - waiting_since > self.PONG_TIMEOUT:
                        raise ConnectionError("Redis 未回应 PING")
                    if now - last_ping >= self.PING_EVERY:
                        pubsub.ping()
                        last_ping = now
                        waiting_since = waiting_since or now
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect
                # One warning per outage (web/outage.py); this process's clients still get its own events.
                retry = self.outage.failed(exc)
                self._link_up = False
                self._failed = True
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001
                        pass
                time.sleep(retry)

    def _mark_up(self) -> None:
        recovering = self._failed and not self._link_up
        last_good = self.last_good
        self._link_up = True
        self.last_good = time.time()
        self.outage.recovered()  # "Redis 已恢复", once, whoever noticed first
        if not recovering:
            return
        if self._unpublished:
            try:
                with self._pub_lock:
                    if self._pub is None:
                        self._pub = self._client(read_timeout=1.0)
                self._republish()
            except Exception as exc:  # noqa: BLE001
                self.outage.failed(exc)
        if self.on_recovered is not None:
            try:
                self.on_recovered(last_good)
            except Exception:  # noqa: BLE001
                log.exception("catch-up after Redis outage failed")

    def _handle_emit(self, message):
        data = message.get("data")
        if (not message.get("binary") and message.get("callback") is None and isinstance(data, list)
                and len(data) == 1 and self._gated_fanout(message.get("event"), data[0], message.get("namespace"),
                                                          message.get("room"), message.get("skip_sid"))):
            return None
        return super()._handle_emit(message)
