"""The delivery gate: per connection, what has been delivered and what is held back.

Every `case_event` that reaches a connection of this process passes here, whether it comes live
(the local fan-out of a room emit, from this process or through Redis) or from a replay. The gate

- delivers each sequence number at most once per connection (it remembers the last few thousand
  it delivered), so a replay and the live stream never duplicate each other;
- holds live events back while the connection is being replayed to, and releases them after the
  replay in sequence order, so a client sees the replay in order and then the live stream, with
  nothing lost in between (the connection is in its rooms before the replay reads the outbox);
- holds from the moment of connection until the client's first `resync` (or a short grace period
  for clients that never send one), so events committed between connect and resync are not
  delivered ahead of the older ones the replay brings.

All sends for one connection happen under the gate's lock when they come from a replay or a
release; a live send is decided under the lock and happens just after it, which is after any
release that came before the decision.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

Send = Callable[[str, dict], None]


@dataclass
class Connection:
    sid: str
    principal: object
    rooms: list[str]
    held: list[tuple[int, dict]] | None = field(default_factory=list)  # None: live
    hold_until: float | None = None  # grace deadline of the hold set at connect
    delivered: set[int] = field(default_factory=set)
    order: deque = field(default_factory=deque)
    replay_lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, seq: int, limit: int) -> None:
        self.delivered.add(seq)
        self.order.append(seq)
        while len(self.order) > limit:
            self.delivered.discard(self.order.popleft())


class DeliveryGate:
    def __init__(self, grace_seconds: float = 5.0, remember: int = 4096, max_held: int = 20000):
        self.grace_seconds = grace_seconds
        self.remember = remember
        self.max_held = max_held
        self._lock = threading.RLock()
        self._conns: dict[str, Connection] = {}

    # ---- connections -----------------------------------------------------------------------
    def open(self, sid: str, principal, rooms: list[str]) -> Connection:
        """Register a connection before it joins its rooms; it starts held (see module doc)."""
        conn = Connection(sid=sid, principal=principal, rooms=list(rooms),
                          hold_until=time.monotonic() + self.grace_seconds)
        with self._lock:
            self._conns[sid] = conn
        return conn

    def close(self, sid: str) -> None:
        with self._lock:
            self._conns.pop(sid, None)

    def get(self, sid: str) -> Connection | None:
        return self._conns.get(sid)

    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._conns.values())

    def __len__(self) -> int:
        return len(self._conns)

    # ---- live ------------------------------------------------------------------------------
    def admit(self, seq: int, payload: dict, sids: Iterable[str]) -> list[str]:
        """For a live event addressed to `sids` (the local participants of its rooms): the sids to
        send it to now. Held connections keep it for later; those that had it already skip it."""
        if not self._conns:
            return list(sids)
        targets = []
        with self._lock:
            for sid in sids:
                conn = self._conns.get(sid)
                if conn is None:
                    targets.append(sid)  # not ours (should not happen): deliver as the manager would
                elif seq in conn.delivered:
                    continue
                elif conn.held is not None:
                    if len(conn.held) < self.max_held:
                        conn.held.append((seq, payload))
                    # beyond max_held the client is far behind: its resync brings the rest
                else:
                    conn.remember(seq, self.remember)
                    targets.append(sid)
        return targets

    # ---- replay ----------------------------------------------------------------------------
    def hold(self, sid: str) -> bool:
        """Start holding live events for a connection (a replay is about to begin)."""
        with self._lock:
            conn = self._conns.get(sid)
            if conn is None:
                return False
            if conn.held is None:
                conn.held = []
            conn.hold_until = None  # a replay's hold ends with the replay, not with a timer
            return True

    def deliver(self, sid: str, items: Iterable[tuple[int, dict]], send: Send) -> int:
        """Send replayed events (in the order given) that the connection has not had yet."""
        with self._lock:
            conn = self._conns.get(sid)
            if conn is None:
                return 0
            return self._send_new(sid, conn, items, send)

    def release(self, sid: str, send: Send) -> int:
        """End the hold: send what was held, in sequence order, skipping what was delivered."""
        with self._lock:
            conn = self._conns.get(sid)
            if conn is None or conn.held is None:
                return 0
            held, conn.held, conn.hold_until = conn.held, None, None
            return self._send_new(sid, conn, sorted(held, key=lambda item: item[0]), send)

    def _send_new(self, sid: str, conn, items, send: Send) -> int:
        """Send the items the connection has not had yet, in the order given (caller holds the lock)."""
        n = 0
        for seq, payload in items:
            if seq in conn.delivered:
                continue
            conn.remember(seq, self.remember)
            send(sid, payload)
            n += 1
        return n

    def release_expired(self, send: Send, now: float | None = None) -> list[str]:
        """Release the connections whose connect-time hold ran out without a resync (a replay's
        hold has no deadline and is never released here)."""
        now = time.monotonic() if now is None else now
        released = []
        with self._lock:
            for conn in list(self._conns.values()):
                if conn.held is not None and conn.hold_until is not None and conn.hold_until <= now:
                    self.release(conn.sid, send)
                    released.append(conn.sid)
        return released
