"""The demo event stream through the real intake path: :class:`SimulationRunner` feeds the
:class:`demo.simulator.Simulator`'s reports into :meth:`CaseService.intake` and carries the
simulated cases through their lifecycle with :meth:`CaseService.act`, as the people would.

* ``flask --app app simulate --rate R --duration S`` runs :meth:`SimulationRunner.run`;
* ``python app.py`` with ``UCC_SIMULATE`` on runs :func:`start_background` (a daemon thread that
  logs and carries on after any failure, so the wall is alive and the app never falls over).

Simulated cases are the ones whose idempotency key starts with ``sim-``: the runner acts only on
those, and on start it picks up the open ones left by an earlier run, and the ones closed lately that
still wait for their 回访 (pending steps are kept in memory only). Humans may act on the same cases:
their moves make the runner's next step stale, the service answers 409 (or 422), and the runner
counts it, reloads the case and plans again.

Every person's step goes through :meth:`CaseService.act` under that person's role: the duty officer
(立案, 核实 requests, 派遣, 改派, 驳回, 作废, answers to requests, 解挂, 结案, 回访, 重办), the unit's
handler (签收, 退回, 延期 and 挂账 requests, 处置反馈) and an assisting unit's own handler (its 签收 and
反馈), the grid member of the place (核实 answers, 核查 of grid events) and a leader (督办). The
scheduler's 催办/督办 are CaseService.remind_due's: a server's scheduler sends them; a command-line
run (:meth:`SimulationRunner.run`) sends them itself, a round a simulated minute.
"""
from __future__ import annotations

import dataclasses
import functools
import heapq
import itertools
import logging
import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select

from cases.service import CaseService, ServiceError
from data.models import Case
from data.models import Unit as UnitRow
from data.tokens import Principal
from dispatch.lifecycle import OPEN_STATES
from demo.simulator import Simulator, Step, pick_unit, reporter
from dispatch.city_time import CITY_TZ

__all__ = ["SIM_KEY_PREFIX", "SimulationRunner", "start_background"]

log = logging.getLogger("ucc.simulator")
SIM_KEY_PREFIX = "sim-"
# At most this much missed time is caught up with reports in one step (a paused process, a
# test's big jump): the stream resumes at its normal rate instead of flooding the intake.
MAX_CATCH_UP = timedelta(hours=1)
SCAN_CHUNK = 200
# an action that fails unexpectedly (not a refusal of the service) is tried this often, then dropped
MAX_TRIES = 3
# on start, the closed simulated cases of this many days back are picked up too (their 回访 and 重办)
CALLBACK_PICKUP = timedelta(days=3)


class SimulationRunner:
    """Feeds simulated reports and lifecycle steps through ``service``.

    ``seed``: the simulator's seed (random when None). ``clock``: what "now" is when
    :meth:`step` is called without a time (default: the service's clock; the service stamps
    every row with its own clock, so tests move one clock shared by both).
    ``rate_per_minute``: the daily average of new reports a minute (× the daily rhythm).
    ``reminders``: also send the scheduler's reminders (CaseService.remind_due) at each round of
    ``reminder_seconds``, at their own instants (a command-line run; a server's scheduler does it
    otherwise).

    ``stats`` counts: ``reports`` (intakes), ``merged`` (of which merged as duplicates),
    ``actions`` (lifecycle actions done), ``conflicts`` (409: someone else moved the case
    first), ``refused`` (422: the step no longer fits the case), ``errors`` (anything else,
    logged), ``picked_up`` (open simulated cases found in the database at start)."""

    def __init__(self, service: CaseService, seed: int | None = None, clock: Callable[[], datetime] | None = None,
                 rate_per_minute: float = 6.0, reminders: bool = False, reminder_seconds: float = 60.0):
        self.service = service
        self.seed = seed if seed is not None else secrets.randbits(32)
        self.clock = clock or service.clock
        self.rate_per_minute = rate_per_minute
        self.run_id = secrets.token_hex(4)
        self.sim: Simulator | None = None
        self.stats = {"reports": 0, "merged": 0, "actions": 0, "conflicts": 0, "refused": 0, "errors": 0,
                      "picked_up": 0, "reminders": 0}
        self.reminders = reminders
        self.reminder_every = timedelta(seconds=reminder_seconds)
        self._next_round: datetime | None = None
        self.last_error: str | None = None
        self._heap: list[tuple[datetime, int, int]] = []
        self._plans: dict[int, tuple[int, Step, int, dict]] = {}  # case id -> (seq, step, version, case)
        self._seq = itertools.count()
        self._last: datetime | None = None
        self._city: str | None = None
        self._scanned = False
        self._fallback_units: dict[str, str | None] = {}
        self._failures: dict[int, int] = {}
        # Set during a simulated-time run (run(realtime=False)): the clock the service stamps rows
        # with, moved to each report's and each step's own instant (see _move_to).
        self._virtual: _VirtualClock | None = None

    # ---- principals -------------------------------------------------------------------------
    def _officer(self) -> Principal:
        return Principal("simulator", "sim:duty_officer", "duty_officer", self._city)

    def _principal(self, step: Step, case: dict) -> Principal:
        if step.role == "unit_handler":
            unit = step.by_unit or (case.get("unit") or {}).get("code")
            return Principal("simulator", f"sim:unit:{unit}", "unit_handler", self._city, unit)
        if step.role == "grid_member":
            grid = case["chain"][0]["code"]
            return Principal("simulator", f"sim:grid:{grid}", "grid_member", grid)
        if step.role == "leader":
            return Principal("simulator", "sim:leader", "leader", self._city)
        return self._officer()

    # ---- set-up -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Simulated cases with a planned next step."""
        return len(self._plans)

    def ready(self) -> bool:
        """True once the city and the catalog are in the database (builds the simulator then);
        until then :meth:`step` does nothing."""
        if self.sim is not None:
            return True
        records = self.service.areas.records()
        catalog = self.service.catalog()
        if not catalog:
            self.service.reload_reference()  # the catalog may have been seeded since
            catalog = self.service.catalog()
            if not catalog:
                return False
        if not records:
            return False
        self._city = min(records, key=lambda r: (r.level, r.code)).code  # the root: the city
        unit_index, _types = self.service._routing_refs()
        self.sim = Simulator(catalog, records, seed=self.seed, key_prefix=f"{SIM_KEY_PREFIX}{self.run_id}",
                             calendar=self.service.calendar, units=functools.partial(pick_unit, unit_index))
        return True

    def resume(self, now: datetime | None = None) -> int:
        """Plan the next step of every open simulated case in the database (after a restart), and of
        those closed in the last CALLBACK_PICKUP that may still wait for their 回访 or 重办. Returns how
        many were picked up."""
        now = now or self.clock()
        callback = self.sim.rates.callback_sources
        with self.service.db.session() as s:
            ids = list(s.scalars(select(Case.id).where(Case.idempotency_key.like(SIM_KEY_PREFIX + "%"),
                                                       Case.state.in_(OPEN_STATES)).order_by(Case.id)))
            ids += list(s.scalars(select(Case.id).where(
                Case.idempotency_key.like(SIM_KEY_PREFIX + "%"), Case.state == "closed", Case.source.in_(callback),
                Case.closed_at >= now - CALLBACK_PICKUP).order_by(Case.id)))
        n = 0
        for i in range(0, len(ids), SCAN_CHUNK):
            chunk = ids[i:i + SCAN_CHUNK]
            with self.service.db.session() as s:
                cases = s.scalars(select(Case).where(Case.id.in_(chunk))).all()
                dicts = self.service.case_dicts(s, list(cases), None, now)
            for d in dicts:
                if d["id"] not in self._plans and self.sim.next_steps(d, now):
                    self._plan(d, now)
                    n += 1
        self.stats["picked_up"] += n
        return n

    # ---- planning ---------------------------------------------------------------------------
    def _plan(self, case: dict, now: datetime, not_before: datetime | None = None) -> None:
        self._plans.pop(case["id"], None)
        steps = self.sim.next_steps(case, now)
        if not steps:
            return
        step = steps[0]
        if not_before is not None and step.at < not_before:
            step = dataclasses.replace(step, at=not_before)
        self._schedule(case["id"], step, case["version"], case)

    def _schedule(self, case_id: int, step: Step, version: int, case: dict) -> None:
        seq = next(self._seq)
        # keep only what acting needs (who, where, which category), not the whole case object
        slim = {"unit": case.get("unit"), "chain": case.get("chain"), "category": case.get("category")}
        self._plans[case_id] = (seq, step, version, slim)
        heapq.heappush(self._heap, (step.at, seq, case_id))
        if len(self._heap) > 4 * len(self._plans) + 1000:  # drop superseded entries
            self._heap = [(p[1].at, p[0], cid) for cid, p in self._plans.items()]
            heapq.heapify(self._heap)

    def _replan(self, case_id: int, now: datetime, not_before: datetime | None = None) -> None:
        try:
            case = self.service.get(case_id, None)
        except ServiceError:
            self._plans.pop(case_id, None)
            return
        self._plan(case, now, not_before)

    # ---- one step ---------------------------------------------------------------------------
    def step(self, now: datetime | None = None, rate_per_minute: float | None = None) -> int:
        """Do everything due at ``now``: the new reports since the last step (rate × rhythm) and
        the due lifecycle steps of the simulated cases, in time order. Returns how many things
        were done.

        In real time every one of them happens at ``now`` (the service stamps rows with the real
        clock; a tick is a second or two). In a simulated-time run each happens at its own
        instant: the virtual clock is moved there first, so the size of the tick changes nothing
        (with an hour's tick, acting at the tick's end made every case wait up to an hour per
        step and most short deadlines were missed)."""
        now = now or self.clock()
        if not self.ready():
            return 0
        if not self._scanned:
            self._scanned = True
            try:
                n = self.resume(now)
                if n:
                    log.info("模拟器接续 %d 件未结案的模拟案件", n)
            except Exception as exc:  # noqa: BLE001 - the stream must go on without them
                self._error("resume", exc)
        done = 0
        rate = self.rate_per_minute if rate_per_minute is None else rate_per_minute
        start = self._last if self._last is not None else now
        if self._virtual is None:  # a paused real-time process resumes at its normal rate
            start = max(start, now - MAX_CATCH_UP)
        if now > start:
            events = [(at, False) for at in self.sim.arrivals(start, now, rate)]
            if self.reminders:
                events = sorted(events + [(at, True) for at in self._rounds(start, now)])
            for at, remind in events:
                done += self._due(at, now)  # what falls before this report (or round) happens first
                if remind:
                    self._move_to(at, now)
                    done += self._remind()
                else:
                    done += self._report(at, self._move_to(at, now))
        self._last = max(now, self._last or now)
        done += self._due(now, now)
        self._move_to(now, now)
        return done

    def _rounds(self, start: datetime, end: datetime) -> list[datetime]:
        """The scheduler's rounds in (start, end]: every reminder_every, the first one reminder_every
        after the first call."""
        if self._next_round is None:
            self._next_round = start + self.reminder_every
        out = []
        while self._next_round <= end:
            out.append(self._next_round)
            self._next_round += self.reminder_every
        return out

    def _remind(self) -> int:
        """One round of the scheduler's reminders (催办 at 80 %, 督办 at the deadline)."""
        try:
            n = self.service.remind_due()
        except Exception as exc:  # noqa: BLE001
            self._error("remind_due", exc)
            return 0
        self.stats["reminders"] += n
        return n

    def _move_to(self, at: datetime, now: datetime) -> datetime:
        """The instant something due at ``at`` happens: ``at`` itself in a simulated-time run
        (the virtual clock moves there, never backwards: a step that was pushed back behind
        another one happens right after it), ``now`` in real time."""
        if self._virtual is None:
            return now
        self._virtual.now = max(self._virtual.now, at)
        return self._virtual.now

    def _due(self, until: datetime, now: datetime) -> int:
        """The planned steps due by ``until``, earliest first; steps planned while doing them
        (the case's next move) join the queue and are done too when they fall by ``until``."""
        done = 0
        while self._heap and self._heap[0][0] <= until:
            at, seq, case_id = heapq.heappop(self._heap)
            plan = self._plans.get(case_id)
            if plan is None or plan[0] != seq:
                continue  # superseded by a later plan
            done += self._act(case_id, plan, self._move_to(at, now))
        return done

    def _report(self, at: datetime, now: datetime) -> int:
        payload = self.sim.report(at)
        try:
            case, created = self.service.intake(payload, self._officer(), actor=self._reporter(payload))
        except ServiceError as exc:
            self._count(exc, "intake")
            return 0
        except Exception as exc:  # noqa: BLE001
            self._error("intake", exc)
            return 0
        self.stats["reports"] += 1
        if case.get("merged_into"):
            self.stats["merged"] += 1
            if case["merged_into"] in self._plans:  # its version moved on: plan with the new one
                self._replan(case["merged_into"], now)
        elif created:
            self._plan(case, now)
        return 1

    def _reporter(self, payload: dict) -> str:
        grid = None
        if payload["source"] == "patrol":
            locator = self.service.areas.locator()
            chain = locator.locate(payload["lon"], payload["lat"]) if locator else ()
            grid = chain[0].code if chain else None
        return reporter(payload["source"], grid)

    def _act(self, case_id: int, plan, now: datetime) -> int:
        _, step, version, case = plan
        unit = step.unit
        if step.action == "dispatch" and unit is None and not case.get("unit"):
            unit = self._fallback_unit(case)
            if unit is None:  # nobody to send it to: park it for the command center
                step = Step("suspend", step.at, "duty_officer", note="无对应处置单位，挂账待协调")
        try:
            result = self.service.act(case_id, self._principal(step, case), step.action, version,
                                      note=step.note, hours=step.hours, unit=unit, result=step.result,
                                      satisfaction=step.satisfaction)
        except ServiceError as exc:
            self._count(exc, step.action)
            # someone else moved the case (or the step no longer fits): plan from what it is now,
            # not before the next minute, so a step the service keeps refusing cannot spin
            self._replan(case_id, now, not_before=now + timedelta(minutes=1))
            return 0
        except Exception as exc:  # noqa: BLE001
            self._error(step.action, exc)
            # try the same step again a minute later, a few times, then leave the case alone
            tries = self._failures[case_id] = self._failures.get(case_id, 0) + 1
            if tries >= MAX_TRIES:
                self._plans.pop(case_id, None)
                self._failures.pop(case_id, None)
            else:
                later = dataclasses.replace(step, at=now + timedelta(minutes=tries))
                self._schedule(case_id, later, version, case)
            return 0
        self._failures.pop(case_id, None)
        self.stats["actions"] += 1
        self._plan(result, now)
        return 1

    def _fallback_unit(self, case: dict) -> str | None:
        """A unit for a case the router left to the command center: the closest unit on the
        case's chain, preferring the category's unit type, then city management."""
        grid = case["chain"][0]["code"]
        key = f"{grid}|{case['category']['code']}"
        if key in self._fallback_units:
            return self._fallback_units[key]
        chain = [a["code"] for a in case["chain"]]
        cat = self.service.catalog().get(case["category"]["code"])
        with self.service.db.session() as s:
            rows = s.execute(select(UnitRow.code, UnitRow.unit_type, UnitRow.level).where(
                UnitRow.area_code.in_(chain), UnitRow.active.is_(True))).all()
        best = None
        for code, unit_type, level in rows:
            rank = (unit_type == (cat.unit_type if cat else None), unit_type == "city_management", level)
            if best is None or rank > best[0]:
                best = (rank, code)
        unit = best[1] if best else None
        self._fallback_units[key] = unit
        return unit

    def _count(self, exc: ServiceError, what: str) -> None:
        if exc.status == 409:
            self.stats["conflicts"] += 1
        elif exc.status == 422:
            self.stats["refused"] += 1
        else:
            self.stats["errors"] += 1
            self.last_error = f"{what}: {exc.status} {exc.code} {exc.message}"
            log.warning("模拟器操作被拒绝（%s）：%s %s %s", what, exc.status, exc.code, exc.message)

    def _error(self, what: str, exc: Exception) -> None:
        self.stats["errors"] += 1
        self.last_error = f"{what}: {type(exc).__name__}: {exc}"
        log.exception("模拟器出错（%s）", what)

    # ---- running ----------------------------------------------------------------------------
    def run(self, rate_per_minute: float, duration_seconds: float | None, realtime: bool = True,
            stop_event: threading.Event | None = None, tick_seconds: float | None = None,
            echo: Callable[[str], None] = print, start: datetime | None = None, reminders: bool = True) -> dict:
        """Run for ``duration_seconds`` (None: until ``stop_event`` is set), printing one line per
        (simulated) minute: reports, merged, actions, conflicts/refusals, errors, open cases.
        ``reminders``: send the scheduler's reminders meanwhile (a command-line run has no scheduler).

        ``realtime=True``: steps every ``tick_seconds`` (default 1 s) of wall time.
        ``realtime=False``: simulated time as fast as the database allows, from ``start``
        (default: now − duration, so that the history ends at the present) in ticks of
        ``tick_seconds`` (default 60 s; every report and step still happens at its own simulated
        instant, so a longer tick only means fewer progress checks); the service's clock is
        replaced for the run and put back afterwards — for a process of its own (the CLI), not a
        serving app.
        Returns the stats."""
        self.rate_per_minute = rate_per_minute
        self.reminders = reminders
        stop_event = stop_event or threading.Event()
        lines = _PerMinute(self, echo)
        if realtime:
            tick = tick_seconds or 1.0
            t_end = None if duration_seconds is None else time.monotonic() + duration_seconds
            try:
                while not stop_event.is_set():
                    now, before = self.clock(), dict(self.stats)
                    self.step(now)
                    lines.stepped(now.astimezone(CITY_TZ).strftime("%H:%M"), before)
                    if t_end is not None and time.monotonic() >= t_end:
                        break
                    stop_event.wait(tick)
            except KeyboardInterrupt:  # Ctrl-C ends a command-line run: report and return
                pass
            lines.close()
            return dict(self.stats)

        if duration_seconds is None:
            raise ValueError("a simulated-time run needs a duration")
        tick = timedelta(seconds=tick_seconds or 60.0)
        t = start or (self.clock() - timedelta(seconds=duration_seconds))
        end = t + timedelta(seconds=duration_seconds)
        virtual = _VirtualClock(t)
        saved_service, saved_own = self.service.clock, self.clock
        self.service.clock = self.clock = self._virtual = virtual
        try:
            self._last = t
            try:
                while virtual.now < end and not stop_event.is_set():
                    since, before = virtual.now, dict(self.stats)
                    # step() moves the clock through (since, since + tick] itself, report by
                    # report and step by step; counted in since's minute
                    self.step(min(since + tick, end))
                    lines.stepped(since.astimezone(CITY_TZ).strftime("%m-%d %H:%M"), before)
            except KeyboardInterrupt:
                pass
            lines.close()
        finally:
            self.service.clock, self.clock = saved_service, saved_own
            self._virtual = None
        return dict(self.stats)

    def _line(self, label: str, start: dict, end: dict) -> str:
        d = {k: end.get(k, 0) - start.get(k, 0) for k in self.stats}
        return (f"{label}  上报 {d['reports']}（合并 {d['merged']}）  操作 {d['actions']}  "
                f"催办/督办 {d['reminders']}  冲突 {d['conflicts']}  拒绝 {d['refused']}  错误 {d['errors']}  "
                f"在办 {self.pending}")


class _PerMinute:
    """One printed line per minute: what the steps of that minute did."""

    def __init__(self, runner: SimulationRunner, echo: Callable[[str], None]):
        self.runner, self.echo = runner, echo
        self.minute: str | None = None
        self.start: dict = dict(runner.stats)

    def stepped(self, key: str, before_step: dict) -> None:
        if self.minute is None:
            self.minute, self.start = key, before_step
        elif key != self.minute:
            self.echo(self.runner._line(self.minute, self.start, before_step))
            self.minute, self.start = key, before_step

    def close(self) -> None:
        self.echo(self.runner._line(self.minute or "--:--", self.start, dict(self.runner.stats)))


class _VirtualClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def start_background(service: CaseService, rate_per_minute: float = 6.0,
                     stop_event: threading.Event | None = None, seed: int | None = None,
                     tick_seconds: float = 2.0, report_every: timedelta = timedelta(minutes=10),
                     rate_for: Callable[[datetime], float] | None = None) -> threading.Thread:
    """Run the simulator in a daemon thread until ``stop_event`` is set (``python app.py`` with
    UCC_SIMULATE on). Never raises into the app: every failure is logged and the next tick
    tries again (backing off to a minute while failures repeat). ``rate_for(now)``, when given,
    sets the rate of each tick (the day's volume of data/demo_history.json, as the backfilled
    history has it). The thread carries ``runner`` and ``stop_event`` attributes."""
    stop_event = stop_event or threading.Event()
    runner = SimulationRunner(service, seed=seed, rate_per_minute=rate_per_minute)

    def loop():
        failures = 0
        last_report = time.monotonic()
        log.info("演示模拟器已启动：平均每分钟 %.1f 件", rate_for(runner.clock()) if rate_for else rate_per_minute)
        while not stop_event.is_set():
            try:
                now = runner.clock()
                runner.step(now, rate_for(now) if rate_for is not None else None)
                failures = 0
            except Exception:  # noqa: BLE001 - the app must never fall over because of the demo
                failures += 1
                log.exception("模拟器本轮失败（连续第 %d 次）", failures)
            if time.monotonic() - last_report >= report_every.total_seconds():
                last_report = time.monotonic()
                log.info("模拟器累计：%s，在办 %d", runner.stats, runner.pending)
            stop_event.wait(min(tick_seconds * (2 ** min(failures, 5)), 60.0) if failures else tick_seconds)

    thread = threading.Thread(target=loop, name="ucc-simulator", daemon=True)
    thread.runner = runner
    thread.stop_event = stop_event
    thread.start()
    return thread
