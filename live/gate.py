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

Live events also pass a reorder stage before the per-connection rules (`offer`). Each process
emits the events it committed itself, after the commit and off the request, so events reach a
process out of `seq` order now and then: the local emitter and the Redis subscriber are two
threads, and another process may publish its older event after this one emitted a newer one. The
stage passes events on in `seq` order; an event that finds an older number missing waits for it
at most `reorder_seconds` (every process sees every event of the city, whatever its rooms, so a
gap fills within milliseconds unless the number was never committed or its process died), then
goes on. An event older than what already went on passes at once: late, never dropped.

Every send happens under the gate's lock (a send only queues the packet on the connection), so
what one connection receives is exactly the order of the gate's decisions.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

Send = Callable[[str, dict], None]
SendMany = Callable[[list[str], dict], None]  # one live event to several local connections
Participants = Callable[[], list[str]]  # the local connections in the event's rooms, asked when it goes on


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


@dataclass
class Waiting:
    """A live event that arrived ahead of an older sequence number (see `DeliveryGate.offer`)."""
    arrived: float
    payload: dict
    participants: Participants
    send_many: SendMany


class DeliveryGate:
    def __init__(self, grace_seconds: float = 5.0, remember: int = 4096, max_held: int = 20000,
                 reorder_seconds: float = 0.5, max_waiting: int = 10000):
        self.grace_seconds = grace_seconds
        self.remember = remember
        self.max_held = max_held
        self.reorder_seconds = reorder_seconds
        self.max_waiting = max_waiting
        self._lock = threading.RLock()
        self._conns: dict[str, Connection] = {}
        self._next: int | None = None  # the lowest seq not yet gone on (see start_at)
        self._waiting: dict[int, Waiting] = {}
        self.late = 0  # events that came after a newer one had gone on (delivered out of order)

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
    @property
    def started(self) -> bool:
        return self._next is not None

    def start_at(self, seq: int) -> None:
        """Where the sequence starts for this process: the bus passes the outbox head + 1 before
        its first connection. Without it the first event seen sets it (nobody is listening then)."""
        with self._lock:
            if self._next is None:
                self._next = seq

    def offer(self, seq: int, payload: dict, participants: Participants, send_many: SendMany,
              now: float | None = None) -> None:
        """A live event reached this process: send it to its local connections in `seq` order with
        the other live events (see module doc), through `admit`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._waiting:  # also here: a process without connections runs no sweeper
                self.pass_overdue(now)
            if self._next is None:
                self._next = seq
            if seq < self._next:
                self.late += 1
                self._go_on(seq, payload, participants, send_many)
                return
            self._waiting.setdefault(seq, Waiting(now, payload, participants, send_many))
            self._drain()  # goes on at once when it is the next number
            if len(self._waiting) > self.max_waiting:
                self._pass_waiting(max(self._waiting))

    def pass_overdue(self, now: float | None = None) -> int:
        """Let the waiting events go on whose older numbers did not come within `reorder_seconds`
        (called by the live bus's sweeper). Returns how many went on."""
        now = time.monotonic() if now is None else now
        with self._lock:
            overdue = [seq for seq, w in self._waiting.items() if now - w.arrived >= self.reorder_seconds]
            return self._pass_waiting(max(overdue)) if overdue else 0

    def _pass_waiting(self, upto: int) -> int:
        """Give up on the missing numbers up to `upto`: the waiting events up to it go on, in order."""
        n = 0
        for seq in sorted(s for s in self._waiting if s <= upto):
            w = self._waiting.pop(seq)
            self._go_on(seq, w.payload, w.participants, w.send_many)
            n += 1
        self._next = upto + 1
        return n + self._drain()

    def _drain(self) -> int:
        n = 0
        while self._next in self._waiting:
            w = self._waiting.pop(self._next)
            self._go_on(self._next, w.payload, w.participants, w.send_many)
            self._next += 1
            n += 1
        return n

    def _go_on(self, seq: int, payload: dict, participants: Participants, send_many: SendMany) -> None:
        targets = self.admit(seq, payload, participants())
        if targets:
            send_many(targets, payload)

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
