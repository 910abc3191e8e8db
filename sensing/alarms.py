"""Alarms: the engine (dispatch.alarms) run over a device's readings, the alarm lifecycle in the database, alarms → cases, offline.

The telemetry ingest calls :meth:`AlarmService.on_stored` after it has stored a batch (each device's readings
as :meth:`AlarmService.on_readings` takes them: time order, validated). One transaction per device applies the
engine's events — raise, update, clear — to the `alarms` table with a history row each, keeps the engine's running state (`alarm_states`) and the device's status (alarm
while any alarm is open, online once all are cleared). After that commit, each raise of a dispatching rule opens
its case through the real intake (``CaseService.intake``, source iot, an idempotency key per alarm), or joins the
case of the device and rule that is still open; a clear adds a note to the case and leaves it open (the unit
still reports, the center verifies). The offline round (:meth:`AlarmService.offline_round`, scheduler.py) marks
devices silent beyond their type's allowed silence offline with an offline alarm, cleared by their next message.
Live: an alarm's case reaches the live rooms through the case outbox (its intake, its notes); an alarm without a
case has no live event yet (the outbox is per case: see docs/devices.md, Alarms).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from cases.service import CaseService, haversine_m
from data import alarms as repo
from data.area_directory import AreaDirectory
from data.db import Database
from data.models import Alarm, Device, utcnow
from data.tokens import Principal
from dispatch.access import ALARM_ACTORS, DEVICE_READERS
from dispatch.alarms import (EMPTY_RUN, OFFLINE_RULE, AlarmEvent, RuleState, Run, may_act,
                             reset_after_manual_clear, silent_for_too_long, step_rules)
from dispatch.city_time import local_iso
from dispatch.devices import SEVERITIES, SEVERITY_LABELS, DeviceType
from dispatch.errors import ServiceError
from dispatch.limits import bad_character, is_int64
from figures.devices_map import alarm_item
from sensing.registry import MAX_PER_PAGE, DeviceRegistry, box_around, chart_keys, check_near, thresholds

log = logging.getLogger("ucc.alarms")

ALARM_STATUSES = ("active", "acknowledged", "cleared")
STATUS_LABELS = {"active": "未确认", "acknowledged": "已确认", "cleared": "已解除"}
ACTIONS = {"acknowledge": "确认", "clear": "解除"}
AUTO = "auto"  # cleared_by of an alarm its clear condition cleared
# the span a case page draws around its alarm
CASE_BEFORE = timedelta(hours=6)
CASE_AFTER = timedelta(hours=6)


class AlarmService:
    """The alarm lifecycle over the database; the engine's rules are the device types' (the registry's)."""

    def __init__(self, db: Database, areas: AreaDirectory, cases: CaseService, registry: DeviceRegistry,
                 clock=utcnow):
        self.db, self.areas, self.cases, self.registry, self.clock = db, areas, cases, registry, clock
        # called after each commit that changed alarms, with the alarms as the maps show them
        # (figures.devices_map.alarm_item): the live bus's alarm_event. A listener never raises.
        self.listeners: list[Callable[[list[dict]], None]] = []

    def types(self) -> dict[str, DeviceType]:
        return self.registry.types()

    # ---- the engine over readings (the telemetry hook) ------------------------------------------
    def on_readings(self, device_id: str, device_type: str, readings, before: dict | None = None) -> list[AlarmEvent]:
        """Apply the rules of `device_type` to the device's new `readings` ([(ts aware UTC, values)], time order,
        stored already). `before`: the device's values before these readings, when the caller knows them (a
        reading that carries only some keys is taken with the others' latest values). Returns the events applied.
        Idempotent: readings at or before the last one taken are skipped (a retry raises nothing twice)."""
        dtype = self.types().get(device_type)
        readings = list(readings)
        if dtype is None or not readings:
            return []
        if not self._may_act(dtype, readings, before) and self._quiet_among([device_id]):
            # the common case (normal values on a device with nothing under way): nothing can change, so one light
            # read instead of the locked transaction
            return []
        return self._apply_readings(device_id, dtype, readings, before)

    def on_stored(self, items) -> None:
        """The telemetry ingest's hook (TelemetryIngest.on_stored): a batch's (device id, type code, readings
        stored), each device as :meth:`on_readings` takes it, with the devices that can change nothing (no
        condition holds, nothing under way) found in one read for the whole batch instead of one per device.
        One device's failure is logged and the others go on."""
        types = self.types()
        work, maybe_idle = [], []
        for device_id, code, readings in items:  # a device of the batch each: one loop, no call it can spare
            dtype = types.get(code)
            if dtype is None or not readings:
                continue
            readings = readings if isinstance(readings, list) else list(readings)
            work.append((device_id, dtype, readings))
            if not may_act(dtype, readings):
                maybe_idle.append(device_id)
        idle = self._quiet_among(maybe_idle)
        for device_id, dtype, readings in work:
            if device_id in idle:
                continue
            try:
                self._apply_readings(device_id, dtype, readings, None)
            except Exception:  # noqa: BLE001 - the readings are stored; the next ones, or the round, retry
                log.exception("告警引擎处理设备 %s 的读数失败", device_id)

    @staticmethod
    def _may_act(dtype: DeviceType, readings, before) -> bool:
        """Whether some rule's condition holds at some reading (else the readings can only break runs)."""
        return may_act(dtype, readings, before)

    def _apply_readings(self, device_id: str, dtype: DeviceType, readings, before) -> list[AlarmEvent]:
        try:
            return self._on_readings(device_id, dtype, readings, before)
        except IntegrityError:
            # another process raised the same alarm between our read and our write (SQLite reads before it
            # takes the write lock; ux_alarms_open refused ours): read its state and apply the readings again
            return self._on_readings(device_id, dtype, readings, before)

    def _on_readings(self, device_id: str, dtype: DeviceType, readings, before) -> list[AlarmEvent]:
        with self.db.session() as s:
            device = self._lock_device(s, device_id)
            if device is None or device.status == "maintenance":
                return []  # a device under maintenance sends test values: they raise nothing
            rows = repo.states(s, device_id)
            opened = repo.open_alarms(s, device_id)
            before_states = {code: self._state(rows.get(code), code in opened)
                             for code in {r.code for r in dtype.rules}}
            new_states, events = step_rules(dtype, before_states, readings, before)
            applied = []  # (event, the alarm it acted on): a rule may raise, clear and raise again in one batch
            for ev in events:
                alarm = self._apply(s, device, ev, opened)
                if alarm is not None:
                    applied.append((ev, alarm))
            fired = {ev.rule for ev in events}
            for code, st in new_states.items():
                old = before_states[code]
                # written when a run moved or the rule fired (then with the last reading taken, so that a retry
                # of these readings is skipped); readings that change nothing write nothing
                if code in fired or (st.raise_run, st.clear_run) != (old.raise_run, old.clear_run):
                    self._save(s, rows, device_id, code, st)
            offline = opened.get(OFFLINE_RULE)
            if offline is not None:  # the device spoke again
                at = readings[-1][0]
                self._clear(s, offline, at, AUTO, "设备恢复通信", readings[-1][1])
                ev = AlarmEvent("clear", OFFLINE_RULE, offline.severity, at, dict(readings[-1][1]))
                events.append(ev)
                applied.append((ev, offline))
            self._settle_status(s, device, opened)
            s.flush()
            work = [(ev, a.id, a.case_id) for ev, a in applied]
        self.announce([alarm_id for _, alarm_id, _ in work])  # before the cases: the wall first
        self._after_commit(device_id, dtype, work)
        return events

    def _quiet_among(self, device_ids: list[str]) -> set[str]:
        """Those of the devices online with no run under way and no open alarm (readings that meet no condition
        change nothing of theirs: no run to break, no alarm to clear, no status to settle)."""
        if not device_ids:
            return set()
        with self.db.engine.connect() as conn:
            return repo.quiet_devices(conn, device_ids)

    def _lock_device(self, s, device_id: str) -> Device | None:
        """The device row, locked on PostgreSQL until the commit (one device's readings are applied one batch at
        a time across processes); SQLite's single writer serializes the same."""
        q = select(Device).where(Device.id == device_id)
        if self.db.engine.dialect.name == "postgresql":
            q = q.with_for_update()
        return s.scalars(q).first()

    @staticmethod
    def _state(row, is_open: bool) -> RuleState:
        if row is None:
            return RuleState(open=is_open)
        return RuleState(raise_run=Run(row.raise_since, row.raise_count) if row.raise_count else EMPTY_RUN,
                         clear_run=Run(row.clear_since, row.clear_count) if row.clear_count else EMPTY_RUN,
                         open=is_open, last_ts=row.last_ts)

    @staticmethod
    def _save(s, rows, device_id: str, code: str, st: RuleState) -> None:
        repo.save_state(s, rows, device_id, code, raise_since=st.raise_run.since, raise_count=st.raise_run.count,
                        clear_since=st.clear_run.since, clear_count=st.clear_run.count, last_ts=st.last_ts)

    def _apply(self, s, device: Device, ev: AlarmEvent, opened: dict[str, Alarm]) -> Alarm | None:
        """The event written to its alarm (a raise makes one); the alarm, or None when there was none to act on."""
        alarm = opened.get(ev.rule)
        if alarm is not None and alarm.status == "cleared":
            alarm = None  # cleared earlier in this batch: a raise now is a new alarm
        if ev.kind == "raise" and alarm is None:
            alarm = Alarm(device_id=device.id, rule_code=ev.rule, severity=ev.severity, status="active",
                          started_at=ev.at, updated_at=ev.at, first_values=ev.values, values=ev.values)
            s.add(alarm)
            s.flush()  # its id for the history row; ux_alarms_open refuses a second open one here
            repo.add_history(s, alarm, ev.at, AUTO, "raise", None, "active", "触发条件满足", ev.values)
            opened[ev.rule] = alarm
        elif ev.kind in ("raise", "update") and alarm is not None:
            alarm.values, alarm.severity, alarm.updated_at = ev.values, ev.severity, ev.at
            repo.add_history(s, alarm, ev.at, AUTO, "update", alarm.status, alarm.status, "再次触发", ev.values)
        elif ev.kind == "clear" and alarm is not None:
            self._clear(s, alarm, ev.at, AUTO, "解除条件满足", ev.values)
        return alarm

    @staticmethod
    def _clear(s, alarm: Alarm, at: datetime, by: str, note: str, values: dict | None) -> None:
        before = alarm.status
        alarm.status, alarm.cleared_at, alarm.cleared_by, alarm.updated_at = "cleared", at, by, at
        if values is not None:
            alarm.values = values
        repo.add_history(s, alarm, at, by, "clear", before, "cleared", note, values)

    @staticmethod
    def _settle_status(s, device: Device, opened: dict[str, Alarm]) -> None:
        """The device's status from its open alarms: offline while its offline alarm is open, alarm while any
        other is, online once none is (a device in maintenance keeps its status)."""
        if device.status == "maintenance":
            return
        still = {code for code, a in opened.items() if a.status != "cleared"}
        if OFFLINE_RULE in still:
            device.status = "offline"
        elif still:
            device.status = "alarm"
        elif device.status in ("alarm", "offline"):
            device.status = "online"

    # ---- alarms → cases (after the alarm's own commit) -----------------------------------------
    def _rule(self, dtype: DeviceType, code: str):
        """(category, case_severity) of a dispatching rule (the offline alarm's from the type), or None."""
        if code == OFFLINE_RULE:
            return (dtype.offline_category, None) if dtype.offline_category else None
        rule = next((r for r in dtype.rules if r.code == code), None)
        return (rule.category, rule.case_severity) if rule is not None and rule.dispatch else None

    def _after_commit(self, device_id: str, dtype: DeviceType, work) -> None:
        cases: dict[int, int | None] = {}
        for ev, alarm_id, case_id in work:
            case_id = cases.get(alarm_id, case_id)
            try:
                if ev.kind in ("raise", "update") and case_id is None and alarm_id not in cases \
                        and self._rule(dtype, ev.rule):
                    # raised and cleared within one batch still opens its case: the cover was lifted
                    cases[alarm_id] = self.open_case(alarm_id, even_cleared=ev.kind == "raise")
                elif ev.kind == "clear" and case_id is not None:
                    self.cases.add_note(case_id, f"iot:{device_id}",
                                        f"物联告警 #{alarm_id} 已解除（{local_iso(ev.at)}，取值 {_values_text(ev.values)}）；"
                                        "案件不随告警关闭，请处置单位反馈、中心核查")
            except Exception:  # noqa: BLE001 - the alarm is committed; the offline round opens a missing case again
                log.exception("alarm #%s of %s: case step failed", alarm_id, device_id)

    def open_case(self, alarm_id: int, even_cleared: bool = False) -> int | None:
        """Open (or join) the case of an open alarm of a dispatching rule; returns the case id. Idempotent: an
        alarm with its case keeps it; the intake's idempotency key (one per alarm) answers a retry with the
        case it made. One open case per device and rule: while the case of the rule's previous alarm is open,
        the alarm joins it (with a note) instead of opening another."""
        with self.db.session() as s:
            alarm = s.get(Alarm, alarm_id)
            if alarm is None or alarm.case_id is not None or (alarm.status == "cleared" and not even_cleared):
                return None if alarm is None else alarm.case_id
            device = s.get(Device, alarm.device_id)
            dtype = self.types().get(device.type)
            found = self._rule(dtype, alarm.rule_code) if dtype is not None else None
            if found is None:
                return None
            previous = repo.last_case_of(s, device.id, alarm.rule_code)
            snapshot = (alarm.rule_code, alarm.started_at, alarm.first_values or {}, alarm.severity)
            point = (device.lon, device.lat, device.id, device.name, device.unit_code)
        category, level = found
        rule_code, started_at, values, severity = snapshot
        lon, lat, dev_id, dev_name, unit = point
        rule_name = dtype.rule_name(rule_code)
        if previous is not None and self.cases.is_open(previous):
            case_id, joined = previous, True
            self.cases.add_note(case_id, f"iot:{dev_id}", f"物联告警 #{alarm_id}（{rule_name}）再次触发，并入本案；"
                                                          f"取值 {_values_text(values)}")
        else:
            description = (f"物联感知告警：{dtype.name}「{dev_name}」（{dev_id}）{rule_name}，"
                           f"级别 {SEVERITY_LABELS.get(severity, severity)}；开始于 {local_iso(started_at)}；"
                           f"取值 {_values_text(values)}；设备责任单位 {self.cases.unit_name(unit)}")
            payload = {"category": category, "lon": lon, "lat": lat, "description": description[:2000],
                       "source": "iot", "occurred_at": min(started_at, self.cases.clock()).isoformat(),
                       "idempotency_key": f"alarm-{alarm_id}"}
            if level is not None:
                payload["severity"] = level
            # intake takes no routing hint: routing decides the unit from the category and the point, as for
            # any report (the device's unit is named in the description)
            case, _created = self.cases.intake(payload, None, actor=f"iot:{dev_id}")
            case_id, joined = case.get("merged_into") or case["id"], False
        with self.db.session() as s:
            done = s.execute(update(Alarm).where(Alarm.id == alarm_id, Alarm.case_id.is_(None))
                             .values(case_id=case_id))
            if done.rowcount == 1:
                alarm = s.get(Alarm, alarm_id)
                note = f"并入未办结案件 #{case_id}" if joined else f"立案 #{case_id}"
                repo.add_history(s, alarm, self.clock(), AUTO, "case", alarm.status, alarm.status, note)
            else:
                case_id = s.scalar(select(Alarm.case_id).where(Alarm.id == alarm_id))
        if done.rowcount == 1:
            self.announce([alarm_id])
        return case_id

    # ---- offline (the scheduler's round) ------------------------------------------------------------
    def offline_round(self, now: datetime | None = None, limit: int = 1000) -> int:
        """Mark the devices silent beyond their type's allowed silence offline, each with an offline alarm (its
        severity and case from the type); then open the cases alarms are still missing. Returns how many
        devices went offline."""
        now = now or self.clock()
        n = 0
        for dtype in self.types().values():
            with self.db.session() as s:
                ids = [d.id for d in repo.silent_devices(s, dtype.code, now - timedelta(seconds=dtype.offline_after_s),
                                                        limit)]
            for device_id in ids:
                if self._mark_offline(device_id, dtype, now):
                    n += 1
        self.open_missing_cases()  # the offline alarms of types that want a case get theirs here too
        return n

    def _mark_offline(self, device_id: str, dtype: DeviceType, now: datetime) -> bool:
        try:
            with self.db.session() as s:
                device = self._lock_device(s, device_id)
                if device is None or device.status not in ("online", "alarm") or not silent_for_too_long(
                        device.last_seen or device.created_at, now, dtype.offline_after_s):
                    return False  # heard meanwhile, or marked by another process
                opened = repo.open_alarms(s, device_id)
                if OFFLINE_RULE not in opened:
                    heard = device.last_seen or device.created_at
                    values = {"last_seen": local_iso(heard), "silent_s": int((now - heard).total_seconds())}
                    alarm = Alarm(device_id=device_id, rule_code=OFFLINE_RULE, severity=dtype.offline_severity,
                                  status="active", started_at=now, updated_at=now, first_values=values, values=values)
                    s.add(alarm)
                    s.flush()
                    repo.add_history(s, alarm, now, AUTO, "raise", None, "active",
                                     f"超过 {dtype.offline_after_s} 秒未收到消息", values)
                    opened[OFFLINE_RULE] = alarm
                self._settle_status(s, device, opened)
                changed = opened[OFFLINE_RULE].id
        except IntegrityError:  # another process raised it a moment before: ux_alarms_open
            return False
        self.announce([changed])
        return True

    def open_missing_cases(self, limit: int = 100) -> int:
        """Open the case of every open alarm of a dispatching rule still without one (its intake after the
        alarm's commit did not finish); the intake's idempotency key makes a second try harmless."""
        codes = [r.code for t in self.types().values() for r in t.rules if r.dispatch]
        offline_types = [t.code for t in self.types().values() if t.offline_category]
        with self.db.session() as s:
            ids = [a.id for a in repo.without_case(s, codes, OFFLINE_RULE, offline_types, limit)]
        n = 0
        for alarm_id in ids:
            try:
                if self.open_case(alarm_id) is not None:
                    n += 1
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("alarm #%s: opening its case failed", alarm_id)
        return n

    # ---- live ---------------------------------------------------------------------------------------
    def announce(self, alarm_ids) -> None:
        """The alarms `alarm_ids` (just committed) to the listeners, in one read; nothing when nobody listens.
        Never raises: the alarm is committed whatever becomes of its announcement (a page that missed one reads
        the open alarms again with its next snapshot)."""
        ids = sorted({i for i in alarm_ids if i is not None})
        if not self.listeners or not ids:
            return
        try:
            types = self.types()
            with self.db.session() as s:
                items = [alarm_item(a, d, types.get(d.type), self.areas) for a, d in repo.with_devices(s, ids)]
            for listener in list(self.listeners):
                listener(items)
        except Exception:  # noqa: BLE001 - live news must never undo or delay an alarm
            log.exception("announcing alarms %s failed", ids[:10])

    # ---- reads and the people's actions --------------------------------------------------------------
    def list(self, principal: Principal, status: str | None = None, severity: str | None = None,
             device: str | None = None, page: int = 1, per_page: int = 50, by_severity: bool = False,
             open_only: bool = False) -> dict:
        """`{items, total, page, per_page}`: the alarms of the devices `principal` may see, newest first (with
        `by_severity`: gravest first, then newest); `open_only`: active or acknowledged (the /devices page's list;
        not the API's, whose statuses are the contract's three)."""
        self.registry._check_reader(principal)
        if status is not None and status not in ALARM_STATUSES:
            raise ServiceError(400, "bad_request", f"未知的告警状态 {status[:40]}（可用：{'、'.join(ALARM_STATUSES)}）")
        if severity is not None and severity not in SEVERITIES:
            raise ServiceError(400, "bad_request", f"未知的告警级别 {severity[:40]}（可用：{'、'.join(SEVERITIES)}）")
        if device is not None and (len(device) > 64 or bad_character(device) is not None):
            raise ServiceError(400, "bad_request", "参数 device 应为设备编号（至多 64 个字符）")
        if not (isinstance(page, int) and page >= 1 and isinstance(per_page, int) and 1 <= per_page <= MAX_PER_PAGE):
            raise ServiceError(400, "bad_request", f"page 须为正整数，per_page 须在 1 到 {MAX_PER_PAGE} 之间")
        where = self.registry._area_filter(principal.area_code) if principal.role != "admin" else {}
        if principal.role == "unit_handler":
            where["unit"] = principal.unit_code or ""
        with self.db.session() as s:
            rows, total = repo.list_alarms(s, status=repo.OPEN if open_only else status, severity=severity, device=device, page=page,
                                           per_page=per_page, by_severity=by_severity, **where)
            items = [self.alarm_dict(a, d) for a, d in rows]
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    def near(self, principal: Principal, lon: float, lat: float, radius_m: float = 3000, limit: int = 200) -> dict:
        """`{items, total}`: the open alarms (active or acknowledged) of the devices `principal` may see within
        `radius_m` metres of (lon, lat), gravest then newest first, each with its device's lon, lat and
        `distance_m`; `total` counts them all, `items` holds the first `limit`."""
        self.registry._check_reader(principal)
        check_near(lon, lat, radius_m, limit)
        where = self.registry._scope_where(principal, None)
        with self.db.session() as s:
            rows = repo.open_alarms_in_box(s, box_around(lon, lat, radius_m), limit=20_000, **where)
            found = [(a, d, haversine_m(lon, lat, d.lon, d.lat)) for a, d in rows]
            found = [(a, d, m) for a, d, m in found if m <= radius_m]
            items = [{**self.alarm_dict(a, d), "lon": d.lon, "lat": d.lat, "distance_m": round(m, 1)}
                     for a, d, m in found[:limit]]
        return {"items": items, "total": len(found), "radius_m": radius_m}

    def alarm_dict(self, a: Alarm, d: Device, history=None) -> dict:
        """The API's alarm (CONTRACT.md, Sensing): id, device, rule, severity, status, started_at, cleared_at,
        values, case_id; and names, the values at the raise, who acknowledged and cleared."""
        dtype = self.types().get(d.type)
        out = {"id": a.id, "device": d.id, "device_name": d.name, "device_type": d.type,
               "rule": a.rule_code, "rule_name": dtype.rule_name(a.rule_code) if dtype else a.rule_code,
               "severity": a.severity, "severity_label": SEVERITY_LABELS.get(a.severity, a.severity),
               "status": a.status, "status_label": STATUS_LABELS.get(a.status, a.status),
               "started_at": local_iso(a.started_at), "updated_at": local_iso(a.updated_at),
               "acknowledged_at": local_iso(a.acknowledged_at), "acknowledged_by": a.acknowledged_by,
               "cleared_at": local_iso(a.cleared_at), "cleared_by": a.cleared_by,
               "values": a.values or {}, "first_values": a.first_values or {}, "case_id": a.case_id}
        if history is not None:
            out["history"] = [{"at": local_iso(h.at), "actor": h.actor, "action": h.action, "from": h.from_status,
                               "to": h.to_status, "note": h.note, "values": h.values} for h in history]
        return out

    def of_case(self, principal: Principal, case_id: int, now: datetime | None = None, before: timedelta = CASE_BEFORE,
                after: timedelta = CASE_AFTER, limit: int = 3) -> list[dict]:
        """The alarms behind a case (source iot: the alarms whose `case_id` it is; none for any other case), the
        latest `limit`, each `{alarm, device, charts}`: the device as the registry shapes it and, for each key
        of the alarm's rule (the offline alarm: the type's first chartable key), the key's series from `before`
        the alarm's start to `after` its clearing (or now), with the rule's thresholds on the key and the
        alarm's `started_at` / `cleared_at`. Whoever may see the case sees its devices (a case routed to a unit
        other than the device's owner still shows the device); 404/403 as the case itself."""
        now = now or self.clock()
        with self.db.session() as s:
            self.cases.visible_case(s, case_id, principal)
            rows = repo.alarms_of_case(s, case_id)[-limit:]
            names = self.registry._unit_names(s, {d.unit_code for _, d in rows})
            found = [(self.alarm_dict(a, d), self.registry.device_dict(d, names), a.rule_code, a.started_at,
                      a.cleared_at) for a, d in rows]
        out = []
        for alarm, device, rule_code, started, cleared in found:
            dtype = self.types().get(device["type"])
            rule = next((r for r in dtype.rules if r.code == rule_code), None) if dtype is not None else None
            chartable = {k.key for k in chart_keys(dtype)}
            keys = list(dict.fromkeys(p.key for p in rule.condition.predicates if p.key in chartable)) if rule else []
            if not keys and chartable:
                keys = [chart_keys(dtype)[0].key]
            start = started - before
            end = max(min(now, (cleared or now) + after), started + timedelta(minutes=1))
            charts = []
            for key in keys:
                series = self.registry.series_of(device, key, start, end)
                series["thresholds"] = thresholds(dtype, key, rule_code)
                series["marks"] = {"started_at": started, "cleared_at": cleared}
                charts.append(series)
            out.append({"alarm": alarm, "device": device, "charts": charts})
        return out

    def act(self, principal: Principal, alarm_id, action) -> dict:
        """acknowledge (active → acknowledged) or clear (open → cleared) by a person, recorded; the alarm answered
        with its history. 400 a bad action, 403 a role that may not, 404 unknown or outside the actor's scope,
        409 a step the alarm's status does not allow."""
        if not isinstance(action, str) or action not in ACTIONS:
            raise ServiceError(400, "bad_request", "action 须为 acknowledge（确认）或 clear（解除）")
        if principal.role not in DEVICE_READERS:
            raise ServiceError(403, "forbidden", "当前角色无权查看或处理物联告警")
        now = self.clock()
        with self.db.session() as s:
            alarm = s.get(Alarm, alarm_id) if is_int64(alarm_id) else None
            device = s.get(Device, alarm.device_id) if alarm is not None else None
            if alarm is None or not self.registry._in_scope(principal, device):
                raise ServiceError(404, "not_found", f"告警 #{alarm_id} 不存在")
            if principal.role not in ALARM_ACTORS:
                raise ServiceError(403, "forbidden", "只有管理员、值班员和设备责任单位的处置人员可以确认或解除告警")
            if alarm.status == "cleared":
                raise ServiceError(409, "conflict", f"告警 #{alarm_id} 已解除，不能再{ACTIONS[action]}")
            if action == "acknowledge":
                if alarm.status != "active":
                    raise ServiceError(409, "conflict", f"告警 #{alarm_id} 已确认")
                done = s.execute(update(Alarm).where(Alarm.id == alarm.id, Alarm.status == "active")
                                 .values(status="acknowledged", acknowledged_at=now, acknowledged_by=principal.ident,
                                         updated_at=now))
                if done.rowcount != 1:
                    raise ServiceError(409, "conflict", f"告警 #{alarm_id} 刚被他人处理，请刷新")
                s.refresh(alarm)
                repo.add_history(s, alarm, now, principal.ident, "acknowledge", "active", "acknowledged", "人工确认")
            else:
                before = alarm.status
                done = s.execute(update(Alarm).where(Alarm.id == alarm.id, Alarm.status == before)
                                 .values(status="cleared", cleared_at=now, cleared_by=principal.ident, updated_at=now))
                if done.rowcount != 1:
                    raise ServiceError(409, "conflict", f"告警 #{alarm_id} 刚被他人处理，请刷新")
                s.refresh(alarm)
                repo.add_history(s, alarm, now, principal.ident, "clear", before, "cleared", "人工解除")
                rows = repo.states(s, device.id)
                if alarm.rule_code in rows:
                    self._save(s, rows, device.id, alarm.rule_code,
                               reset_after_manual_clear(self._state(rows[alarm.rule_code], False)))
                self._settle_status(s, device, repo.open_alarms(s, device.id))
            out = self.alarm_dict(alarm, device, repo.history(s, alarm.id))
            case_id = alarm.case_id
        self.announce([alarm.id])
        if action == "clear" and case_id is not None:
            try:
                self.cases.add_note(case_id, principal.ident, f"物联告警 #{alarm_id} 已由 {principal.ident} 人工解除；"
                                                              "案件不随告警关闭")
            except ServiceError:
                log.warning("alarm #%s cleared; its note on case #%s was not written", alarm_id, case_id)
        return out


def _values_text(values: dict) -> str:
    return "，".join(f"{k}={v}" for k, v in sorted((values or {}).items())) or "无"
