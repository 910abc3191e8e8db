"""The live bus: the case-event outbox turned into Socket.IO messages on namespace /live.

Data flow: a case change commits its outbox row (data.models.CaseEvent) in the same transaction →
CaseService calls `LiveBus.committed(seqs)` after the commit → the seqs go on a bounded queue (the
request never waits for delivery, Redis or not) → one emitter thread per process reads the events
back from the database, shapes each case as GET /events/ID does (phone masked: rooms mix roles) and
emits `case_event` to the case's audience rooms in one call (python-socketio sends a client in
several of those rooms one copy) → with REDIS_URL, the manager publishes it to the other processes
(exactly once across processes: only the committing process emits) → every process's manager hands
its local participants to the delivery gate (live/gate.py), which sends each sequence number at
most once per connection and holds live events back while a connection is being replayed to.

`resync {"since": N}` replays, from the outbox table, every event after N the client may see, in
order, then releases what arrived live meanwhile. See docs/live.md.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from flask import Flask, request
from flask_socketio import ConnectionRefusedError, SocketIO, join_room
from sqlalchemy import func, select
from werkzeug.serving import WSGIRequestHandler

from cases.service import mask_phone
from data.models import Case, CaseEvent
from data.tokens import Principal, resolve_token, revoked_among
from dispatch.access import CASE_BLIND_ROLES
from live.gate import DeliveryGate
from live.managers import EVENT, LiveManager, LiveRedisManager
from live.rooms import NoLiveAccess, alarm_rooms, case_rooms, principal_rooms

log = logging.getLogger("ucc.live")

NAMESPACE = "/live"
ALARM_EVENT = "alarm_event"
WARNING_EVENT = "warning_event"
DEFAULT_CHANNEL = "ucc-live"
# how often open connections' sign-in sessions are checked (one read for all of them): a logout or a
# revoked token closes its live connections within this, in every process
SESSION_CHECK_SECONDS = 5.0

PrincipalResolver = Callable[[dict | None], Principal | None]


def detect_async_mode() -> str:
    """gevent or eventlet when the process was monkey-patched for them (gunicorn's gevent/eventlet
    workers), else threading (the embedded default: Werkzeug + simple-websocket)."""
    try:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            return "gevent"
    except ImportError:
        pass
    try:
        import eventlet.patcher

        if eventlet.patcher.is_monkey_patched("socket"):
            return "eventlet"
    except ImportError:
        pass
    return "threading"


class LiveBus:
    REPLAY_PAGE = 500
    MAX_REPLAY = 5000  # events sent by one resync; beyond it the ack says complete=false
    QUEUE_SIZE = 100_000
    CATCH_UP_MARGIN = timedelta(seconds=30)

    def __init__(self, server: Flask, services, redis_url: str | None = None, channel: str | None = None,
                 async_mode: str | None = None, grace_seconds: float = 5.0):
        self.services = services
        self.db = services.db
        self.cases = services.cases
        self.areas = services.areas
        self.gate = DeliveryGate(grace_seconds=grace_seconds)
        self.channel = channel or os.environ.get("UCC_LIVE_CHANNEL") or DEFAULT_CHANNEL
        if redis_url:
            manager = LiveRedisManager(redis_url, channel=self.channel)
            manager.on_recovered = self._on_queue_recovered
        else:
            manager = LiveManager()
        manager.live_gate = self.gate
        manager.live_namespace = NAMESPACE
        self.manager = manager
        self.redis_url = redis_url
        self.socketio = SocketIO(server, async_mode=async_mode or detect_async_mode(), client_manager=manager,
                                 logger=False, engineio_logger=False)
        self.principal_resolvers: list[PrincipalResolver] = [self._token_principal]
        self._connect_auth: dict[str, dict | None] = {}  # sid → its connect auth, to check again at resync
        # sid → the sign-in session it connected with; every SESSION_CHECK_SECONDS the ended ones are
        # asked for in one read and their sockets closed, so that logout, a password reset or a revoked
        # token ends an open live connection too, in every process (not only at its next resync)
        self._session_of: dict[str, str] = {}
        self._token_of: dict[str, int] = {}  # sid → the API token it connected with (auth={"token": T})
        self._session_key: Callable[[], str | None] | None = None
        self._sessions_ended: Callable[[list[str]], set[str]] | None = None
        self._queue: queue.Queue[int] = queue.Queue(maxsize=self.QUEUE_SIZE)
        self._started: set[str] = set()
        self._start_lock = threading.Lock()
        self.dropped = 0
        self.socketio.on_event("connect", self._on_connect, namespace=NAMESPACE)
        self.socketio.on_event("disconnect", self._on_disconnect, namespace=NAMESPACE)
        self.socketio.on_event("resync", self._on_resync, namespace=NAMESPACE)
        self.cases.listeners.append(self.committed)
        # alarms (issue 16) have no outbox: each change goes out once as `alarm_event`, and a page that was away
        # reads the open alarms again with its next snapshot (see docs/live.md, Alarms)
        self._alarm_queue: queue.Queue[dict] = queue.Queue(maxsize=self.QUEUE_SIZE)
        alarms = getattr(services, "alarms", None)
        if alarms is not None:
            alarms.listeners.append(self.alarms_changed)
        # early warnings (issue 18): as alarms, no outbox; the warnings table is what a page reads again
        warnings = getattr(services, "warnings", None)
        if warnings is not None:
            warnings.listeners.append(self.warnings_stored)
        server.extensions["ucc_live"] = self

    # ---- background tasks --------------------------------------------------------------------
    def _start_once(self, name: str, target) -> None:
        if name in self._started:
            return
        with self._start_lock:
            if name not in self._started:
                self._started.add(name)
                self.socketio.start_background_task(target)

    # ---- the outbox → rooms --------------------------------------------------------------------
    def committed(self, seqs: list[int]) -> None:
        """CaseService listener, called after the commit: never raises, never waits."""
        try:
            self._start_once("emitter", self._emitter)
            for seq in seqs:
                try:
                    self._queue.put_nowait(seq)
                except queue.Full:
                    self.dropped += 1
                    if self.dropped == 1 or self.dropped % 1000 == 0:
                        log.error("实时推送队列已满，已丢弃 %d 条（客户端重连后按序号补齐）", self.dropped)
        except Exception:  # noqa: BLE001 - live delivery must never undo or delay an accepted change
            log.exception("live listener failed")

    def _emitter(self) -> None:
        while True:
            seqs = [self._queue.get()]
            while len(seqs) < 200:
                try:
                    seqs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.emit_seqs(sorted(set(seqs)))
            except Exception:  # noqa: BLE001 - one bad batch must not stop the emitter
                log.exception("live emit failed for seqs %s", seqs[:10])

    def emit_seqs(self, seqs: list[int]) -> int:
        """Emit the given outbox events to their audience rooms (this process's committed events)."""
        if not seqs:
            return 0
        # Intake leaves the new case, shaped, in CaseService.recent_cases for us to take: no read back.
        recent = getattr(self.cases, "recent_cases", None)
        ready: dict[int, tuple[dict, str | None]] = {}
        if recent is not None:
            for seq in seqs:
                case = recent.pop(seq, None)
                if case is not None:
                    case = {**case, "reporter_phone": mask_phone(case.get("reporter_phone"))}
                    ready[seq] = ({"seq": seq, "type": "created", "case": case}, (case.get("unit") or {}).get("code"))
        rest = [seq for seq in seqs if seq not in ready]
        if rest:
            with self.db.session() as s:
                rows = s.scalars(select(CaseEvent).where(CaseEvent.seq.in_(rest))).all()
                payloads = self._payloads(s, rows)
            for row in rows:
                if row.seq in payloads:
                    ready[row.seq] = (payloads[row.seq], row.unit_code)
        n = 0
        for seq in sorted(ready):
            payload, unit = ready[seq]
            self.socketio.emit(EVENT, payload, namespace=NAMESPACE, to=case_rooms(payload["case"], unit))
            n += 1
        return n

    def _payloads(self, s, rows) -> dict[int, dict]:
        """The case_event payloads of outbox rows: each case read once, shaped as GET /events/ID
        for no particular principal, the reporter's phone masked (rooms mix roles)."""
        ids = sorted({r.case_id for r in rows})
        if not ids:
            return {}
        cases = list(s.scalars(select(Case).where(Case.id.in_(ids))))
        shaped = {}
        for d in self.cases.case_dicts(s, cases, None):
            d["reporter_phone"] = mask_phone(d.get("reporter_phone"))
            shaped[d["id"]] = d
        return {r.seq: {"seq": r.seq, "type": r.type, "case": shaped[r.case_id]} for r in rows if r.case_id in shaped}

    # ---- alarms → rooms --------------------------------------------------------------------------
    def alarms_changed(self, items: list[dict]) -> None:
        """AlarmService listener, called after the commit: never raises, never waits."""
        try:
            self._start_once("alarm_emitter", self._alarm_emitter)
            for item in items:
                self._alarm_queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
        except Exception:  # noqa: BLE001 - live delivery must never undo or delay an alarm
            log.exception("live alarm listener failed")

    def _alarm_emitter(self) -> None:
        while True:
            item = self._alarm_queue.get()
            try:
                self.emit_alarm(item)
            except Exception:  # noqa: BLE001 - one bad alarm must not stop the emitter
                log.exception("live emit failed for alarm %s", item.get("id"))

    def emit_alarm(self, item: dict) -> None:
        """`alarm_event {"alarm": …}` to the rooms of its device's areas (grid → city) and unit."""
        self.socketio.emit(ALARM_EVENT, {"alarm": item}, namespace=NAMESPACE, to=alarm_rooms(item))

    def warnings_stored(self, items: list[dict]) -> None:
        """WarningService listener, after the commit: `warning_event {"warning": …}` to the responsible area's room
        and those above it (item["rooms"]); never raises (the hourly run emits a handful, so no queue)."""
        for item in items:
            if not item.get("rooms"):
                continue  # an emit without rooms would go to everyone
            try:
                payload = {k: v for k, v in item.items() if k != "rooms"}
                self.socketio.emit(WARNING_EVENT, {"warning": payload}, namespace=NAMESPACE, to=item["rooms"])
            except Exception:  # noqa: BLE001 - live delivery must never undo a warning
                log.exception("live emit failed for warning %s", item.get("id"))

    def head(self) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.max(CaseEvent.seq))) or 0

    # ---- connections -----------------------------------------------------------------------------
    def add_principal_resolver(self, resolver: PrincipalResolver) -> None:
        """Hook for the signed-in pages: `resolver(auth)` runs inside the connect request (flask.session
        and flask_login.current_user are available) and returns the Principal or None."""
        self.principal_resolvers.append(resolver)

    def _token_principal(self, auth: dict | None) -> Principal | None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            header = request.headers.get("Authorization", "")
            scheme, _, rest = header.partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else None
        if not isinstance(token, str) or not token.strip():
            return None
        with self.db.session() as s:
            principal = resolve_token(s, token.strip())
        # a device token only posts telemetry, an Open311 key only public requests: no live stream (dispatch/access.py)
        return None if principal is not None and principal.role in CASE_BLIND_ROLES else principal

    def add_session_check(self, key_of: Callable[[], str | None],
                          ended: Callable[[list[str]], set[str]]) -> None:
        """Sign-in registers how to name a connection's session (`key_of`, in the connect's request
        context; None for a bearer token) and how to tell which of many have ended (one read)."""
        self._session_key, self._sessions_ended = key_of, ended

    def end_ended_sessions(self) -> int:
        """Close every connection whose sign-in session has ended or whose API token was revoked (one read
        each for all connections); returns how many were closed."""
        of, tokens = dict(self._session_of), dict(self._token_of)
        ended = self._sessions_ended(sorted(set(of.values()))) if of and self._sessions_ended else set()
        if tokens:
            with self.db.session() as s:
                revoked = revoked_among(s, sorted(set(tokens.values())))
            of.update((sid, ("token", t)) for sid, t in tokens.items())
            ended |= {("token", t) for t in revoked}
        closed = 0
        for sid, key in of.items():
            if key in ended:
                self._session_of.pop(sid, None)
                self._token_of.pop(sid, None)
                self.gate.hold(sid)  # nothing more reaches it before the disconnect
                self.socketio.server.disconnect(sid, namespace=NAMESPACE)
                closed += 1
        return closed

    def _session_watch(self) -> None:
        while True:
            time.sleep(SESSION_CHECK_SECONDS)
            try:
                self.end_ended_sessions()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop the watch
                log.warning("实时连接的登录状态检查失败：%s", exc)

    def resolve_principal(self, auth: dict | None) -> Principal | None:
        for resolver in self.principal_resolvers:
            principal = resolver(auth)
            if principal is not None:
                return principal
        return None

    def _root_of(self, area_code: str) -> str | None:
        chain = self.areas.chain(area_code)
        return chain[-1].code if chain else None

    def _on_connect(self, auth=None):
        principal = self.resolve_principal(auth)
        if principal is None:
            raise ConnectionRefusedError("需要有效令牌：auth={\"token\": TOKEN}", {"error": "unauthorized"})
        try:
            rooms = principal_rooms(principal, self._root_of)
        except NoLiveAccess as exc:
            raise ConnectionRefusedError(str(exc), {"error": "forbidden"})
        sid = request.sid
        if not self.gate.started:  # live events are ordered from here on (live/gate.py)
            self.gate.start_at(self.head() + 1)
        self.gate.open(sid, principal, rooms)  # held until its resync (or the grace period)
        self._connect_auth[sid] = auth if isinstance(auth, dict) else None
        key = self._session_key() if self._session_key is not None else None
        if key:
            self._session_of[sid] = key
        elif principal.kind == "token" and principal.ident.startswith("token:"):
            self._token_of[sid] = int(principal.ident.split(":", 1)[1])
        if key or sid in self._token_of:
            self._start_once("session_watch", self._session_watch)
        for room in rooms:
            join_room(room)
        self._start_once("sweeper", self._sweeper)
        since = auth.get("since") if isinstance(auth, dict) else None
        if isinstance(since, int) and not isinstance(since, bool) and since >= 0:
            # A client that cannot emit (a Dash page's component) asks for its replay when connecting.
            self.socketio.start_background_task(self._replay_after_connect, sid, since)
        return True

    def _replay_after_connect(self, sid: str, since: int) -> None:
        # Events sent before the CONNECT packet would be dropped by the client: wait for it.
        deadline = time.monotonic() + 10
        while not self.manager.is_connected(sid, NAMESPACE):
            if time.monotonic() > deadline or self.gate.get(sid) is None:
                return
            time.sleep(0.01)
        try:
            self.replay(sid, since)
        except Exception:  # noqa: BLE001
            log.exception("replay at connect failed")
            self.gate.release(sid, self._send)

    def _on_disconnect(self, *_args):
        self._connect_auth.pop(request.sid, None)
        self._session_of.pop(request.sid, None)
        self._token_of.pop(request.sid, None)
        self.gate.close(request.sid)

    def _send(self, sid: str, payload: dict) -> None:
        self.manager.send_direct(sid, EVENT, payload, NAMESPACE)

    def _sweeper(self) -> None:
        while True:
            time.sleep(0.05)  # a tick well inside the gate's reorder wait (0.5 s)
            try:
                self.gate.pass_overdue()
                self.gate.release_expired(self._send)
            except Exception:  # noqa: BLE001
                log.exception("live sweeper failed")

    # ---- resync ----------------------------------------------------------------------------------
    def _on_resync(self, data=None):
        sid = request.sid
        # Who connected is asked again (one read): a session ended (logout, password reset, revoked
        # token) since the connect gets no replay, and the connection is closed.
        if self.resolve_principal(self._connect_auth.get(sid)) is None:
            self.gate.hold(sid)  # nothing more reaches it before the disconnect
            self.socketio.start_background_task(self.socketio.server.disconnect, sid, namespace=NAMESPACE)
            return {"ok": False, "error": "unauthorized", "message": "登录已失效，请重新登录"}
        since = data.get("since") if isinstance(data, dict) else None
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            self.gate.release(sid, self._send)
            return {"ok": False, "error": "bad_request", "message": "since 须为非负整数（上次收到的序号）或 null"}
        try:
            return self.replay(sid, since)
        except Exception:  # noqa: BLE001 - answer the client; never leave it held
            log.exception("resync failed")
            self.gate.release(sid, self._send)
            return {"ok": False, "error": "unavailable", "message": "补发失败，请稍后重试"}

    def replay(self, sid: str, since: int | None) -> dict:
        """Send the connection every event after `since` it may see, in order, then release what came
        live meanwhile. `since=None`: nothing to replay, just go live (the ack tells the head)."""
        conn = self.gate.get(sid)
        if conn is None:
            return {"ok": False, "error": "not_connected", "message": "连接已断开"}
        with conn.replay_lock:
            self.gate.hold(sid)
            try:
                head = self.head()
                sent, cursor, complete = 0, since, True
                if since is not None:
                    room_set = set(conn.rooms)
                    while True:
                        rows, items = self._page_after(cursor, conn.rooms)
                        if not rows:
                            break
                        mine = [(seq, p) for seq, p, unit in items if room_set.intersection(case_rooms(p["case"], unit))]
                        sent += self.gate.deliver(sid, mine, self._send)
                        cursor = rows[-1].seq
                        if sent >= self.MAX_REPLAY:
                            complete = cursor >= self.head()
                            break
            finally:
                self.gate.release(sid, self._send)
        return {"ok": True, "since": since, "replayed": sent, "last_seq": cursor if cursor is not None else head,
                "head": max(head, cursor or 0), "complete": complete}

    def _page_after(self, cursor: int, rooms: list[str]) -> tuple[list, list[tuple[int, dict, str | None]]]:
        """One page of outbox rows after `cursor`, and (seq, payload, row unit) of those that may
        concern the rooms (the caller applies the exact audience rule, live/rooms.py)."""
        area_codes = {r[5:] for r in rooms if r.startswith("area:")}
        unit_codes = {r[5:] for r in rooms if r.startswith("unit:")}
        chains: dict[str, set[str]] = {}
        with self.db.session() as s:
            rows = s.scalars(select(CaseEvent).where(CaseEvent.seq > cursor).order_by(CaseEvent.seq)
                             .limit(self.REPLAY_PAGE)).all()
            candidates = []
            for row in rows:
                if row.grid_code not in chains:
                    chains[row.grid_code] = {a.code for a in self.areas.chain(row.grid_code)}
                # Units can be on the case (assisting units) rather than on the row: check those below.
                if chains[row.grid_code] & area_codes or unit_codes:
                    candidates.append(row)
            payloads = self._payloads(s, candidates)
        items = [(row.seq, payloads[row.seq], row.unit_code) for row in candidates if row.seq in payloads]
        return rows, items

    # ---- Redis outage ----------------------------------------------------------------------------
    def _on_queue_recovered(self, last_good: float | None) -> None:
        """Redis is back after an outage: events other processes emitted meanwhile never reached this
        process's clients. Replay the window from the outbox to every local connection (the gate
        drops what each already had). Runs off the subscriber thread."""
        self.socketio.start_background_task(self.catch_up_all, last_good)

    def catch_up_all(self, last_good: float | None) -> int:
        conns = self.gate.connections()
        if not conns:
            return 0
        for conn in conns:
            self.gate.hold(conn.sid)
        try:
            since = self._seq_before(last_good)
            pages = []
            cursor = since
            all_rooms = sorted({r for c in conns for r in c.rooms})
            total = 0
            while total < self.MAX_REPLAY:
                rows, items = self._page_after(cursor, all_rooms)
                if not rows:
                    break
                pages.extend(items)
                cursor = rows[-1].seq
                total += len(items)
            sent = 0
            for conn in conns:
                rooms = set(conn.rooms)
                mine = [(seq, payload) for seq, payload, unit in pages
                        if rooms.intersection(case_rooms(payload["case"], unit))]
                sent += self.gate.deliver(conn.sid, mine, self._send)
            if sent:
                log.info("Redis 恢复：向 %d 个连接补发 %d 条事件（自序号 %s 起）", len(conns), sent, since)
            return sent
        finally:
            for conn in conns:
                self.gate.release(conn.sid, self._send)

    def _seq_before(self, last_good: float | None) -> int:
        """The last outbox seq surely delivered before the outage: the newest event older than the
        last moment Redis was heard from, less a margin for events still in an emitter's queue."""
        if last_good is None:
            return self.head()
        cutoff = datetime.fromtimestamp(last_good, timezone.utc) - self.CATCH_UP_MARGIN
        with self.db.session() as s:
            seq = s.scalar(select(CaseEvent.seq).where(CaseEvent.at < cutoff).order_by(CaseEvent.seq.desc()).limit(1))
        return seq or 0

    # ---- serving ---------------------------------------------------------------------------------
    def run(self, server: Flask, host: str, port: int) -> None:
        """The embedded default: Werkzeug's threaded server with simple-websocket (see docs/live.md for
        the production mode)."""
        self.socketio.run(server, host=host, port=port, debug=False, use_reloader=False, log_output=False,
                          allow_unsafe_werkzeug=True, request_handler=_ClosingRequestHandler)


class _ClosingRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler, but a connection the application dropped is closed, not read again.

    simple-websocket ends a WebSocket by raising ConnectionError out of the WSGI application, which
    Werkzeug reports to `connection_dropped` and then, the upgrade request having been HTTP/1.1 keep-alive,
    reads the socket for a next request — racing the WebSocket's own reader thread for the client's close
    frame. When Werkzeug won, it parsed the frame's bytes as a request line and logged "Bad HTTP/0.9
    request" (or "Bad request syntax") each time a screen left. After a WebSocket the socket is no longer
    HTTP: end the connection there."""

    def connection_dropped(self, error, environ=None) -> None:
        self.close_connection = True
