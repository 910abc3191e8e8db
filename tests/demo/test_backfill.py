"""The demo history backfill on SQLite and the real PostgreSQL: its cases pass the same invariants as
cases made through CaseService.intake and act (and the live simulator carries them on), its months
show the figures the data file aims at, it is idempotent and fills only what is missing, its
working-time arithmetic is the calendar's, and the command and the first start use it."""
from __future__ import annotations

import json
import random
import re
import sqlite3
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from cases.service import CLOSED_FOR_DEDUPE, haversine_m
from data.models import Case, CaseAssist, CaseEvent, CaseHistory, CasePenalty, CaseSupervision, Meta
from demo.backfill import (HISTORY_KEY_PREFIX, MARKER_KEY, OfficeTime, backfill, first_run_history,
                           load_profile, missing_intervals)
from demo.runner import SIM_KEY_PREFIX, SimulationRunner
from dispatch import lifecycle
from data.files import calendar as default_calendar
from figures.period import period_figures
from tests.demo.replay import check_replay
from tests.factories import small_world

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
T = datetime(2026, 11, 25, 3, 20, tzinfo=UTC)  # Wednesday 11:20 in Shanghai
VOLUME = 0.05  # of the profile's daily volume: ~140 reports a working day in the small test city


@pytest.fixture
def world(empty_db):
    return small_world(empty_db, T)


def _everything(service):
    """Every case with its rows: (cases, history, events, extras) with extras[id] = (assists, supervision,
    penalties), each list in id order."""
    with service.db.session() as s:
        cases = {c.id: c for c in s.scalars(select(Case))}
        history, events = defaultdict(list), defaultdict(list)
        extras = defaultdict(lambda: ([], [], []))
        for h in s.scalars(select(CaseHistory).order_by(CaseHistory.id)):
            history[h.case_id].append(h)
        for e in s.scalars(select(CaseEvent).order_by(CaseEvent.seq)):
            events[e.case_id].append(e)
        for k, model in enumerate((CaseAssist, CaseSupervision, CasePenalty)):
            for row in s.scalars(select(model).order_by(model.id)):
                extras[row.case_id][k].append(row)
        s.expunge_all()
    return cases, history, events, extras


def check_case(case, history, events, cases, service, extras=((), (), ())) -> None:
    """What must hold of any case the platform wrote, live or backfilled (asserts): its rows are the
    ones CaseService.act writes for the acts its history records (tests/demo/replay.py), and the rest
    of the bookkeeping (outbox, merges, stamps in order)."""
    where = f"case #{case.id} ({case.idempotency_key})"
    assert history and events, where
    assert len(events) == len(history) == case.version, where          # one audit row and one outbox row per change
    assert [e.seq for e in events] == sorted({e.seq for e in events}), where
    assert [e.at for e in events] == [h.at for h in history], where    # the outbox row of each transition
    assert events[0].type == "created" and all(e.type == "updated" for e in events[1:]), where
    assert all(e.grid_code == case.grid_code for e in events), where
    assert all(h.actor for h in history), where
    assert history[0].at == case.reported_at and history[-1].at == case.updated_at, where
    if case.state == "merged":
        assert len(history) == 1 and history[0].action == "merge" and history[0].from_state is None, where
        target = cases[case.merged_into_id]
        assert target.category_code == case.category_code, where
        assert haversine_m(case.lon, case.lat, target.lon, target.lat) <= 50, where
        assert timedelta(0) <= case.reported_at - target.reported_at <= timedelta(hours=24), where
        assert case.unit_code is None and case.deadline_at is None and f"#{target.id}" in history[0].note, where
        assert events[0].unit_code is None, where
        assert (case.urge_count, case.reassign_count, case.reopen_count, case.penalty_points) == (0, 0, 0, 0), where
        return
    for prev, row in zip(history, history[1:]):
        assert row.from_state == prev.to_state, (where, prev.action, row.action)
        assert prev.at <= row.at, where
        if row.action == "merge":
            assert row.to_state == row.from_state and "合并重复上报" in row.note, where
            dup = cases[int(re.search(r"#(\d+)", row.note).group(1))]
            assert dup.merged_into_id == case.id and dup.reported_at == row.at, where
    chain = tuple(a["code"] for a in service._chain(case.grid_code))
    replay = check_replay(case, history, events, *extras, catalog=service.catalog(), calendar=service.calendar,
                          rules=service.rules, city=chain[-1], chain=chain)
    assert history[-1].to_state == case.state, where
    assert replay.col["reporter_count"] == case.reporter_count, where
    # stamps in order within the current round of handling (a restart clears what comes after 派遣)
    chains = [(case.reported_at, case.accepted_at, case.dispatched_at, case.signed_at, case.resolved_at,
               case.verified_at, case.closed_at), (case.check_requested_at, case.checked_at)]
    for stamps in chains:
        stamps = [t for t in stamps if t is not None]
        assert stamps == sorted(stamps), where
    if case.state in ("dispatched", "signed", "resolved", "verified", "closed", "returned", "rework"):
        assert case.accepted_at is not None and case.dispatched_at is not None, where
        assert case.warning_at is not None and case.dispatched_at <= case.warning_at <= case.deadline_at, where
    if case.state in ("resolved", "verified", "closed"):
        assert case.resolved_at is not None, where
    if case.state == "rejected":
        assert case.rejected_at is not None and case.accepted_at is None, where
    # the scheduler's reminders: sent in a round after their trigger, while the unit held the case
    for row in history:
        if row.actor == "system:scheduler":
            assert row.action in ("urge", "supervise") and row.from_state in lifecycle.HANDLING_STATES, where


def test_backfilled_and_live_cases_pass_the_same_invariants_and_the_simulator_carries_them_on(world):
    service, clock = world
    report = backfill(service, 4, now=T, volume=VOLUME)
    assert report.cases > 300 and report.rows > 5 * report.cases
    # the scheduler's reminders were replayed up to now: a first round finds only what fell due in the
    # last round (a 催办 at 80 % of the time, a 督办 at the deadline, of the cases in the unit's hands)
    round_s = load_profile().rates.scheduler_round_seconds
    with service.db.session() as s:
        in_hand = s.execute(select(Case.warning_at, Case.deadline_at, Case.auto_urged_deadline,
                                   Case.auto_supervised_deadline).where(Case.state.in_(lifecycle.HANDLING_STATES))).all()
    assert len(in_hand) > 20
    triggers = [w for w, d, urged, _ in in_hand if w <= T and urged != d]
    triggers += [d for _, d, _, supervised in in_hand if d < T and supervised != d]
    assert all(t > T - timedelta(seconds=round_s) for t in triggers), triggers
    assert service.remind_due() <= len(triggers)
    # then the live platform from T on: the simulator (which picks up the open backfilled cases and the
    # closed ones awaiting their 回访), a human officer and the scheduler's reminders, through
    # CaseService.intake and act
    runner = SimulationRunner(service, seed=7, clock=clock, rate_per_minute=0.2)
    for i in range(1, 24 * 12 + 1):
        clock.now = T + i * timedelta(minutes=5)
        runner.step(clock.now)
        service.remind_due()
    assert runner.stats["errors"] == 0, runner.last_error
    assert runner.stats["picked_up"] > 20  # the backfilled open cases, carried on like the runner's own

    cases, history, events, extras = _everything(service)
    made = [c for c in cases.values() if c.idempotency_key.startswith(HISTORY_KEY_PREFIX)]
    live = [c for c in cases.values() if not c.idempotency_key.startswith(HISTORY_KEY_PREFIX)]
    assert len(made) == report.cases and len(live) > 150
    for c in cases.values():
        check_case(c, history[c.id], events[c.id], cases, service, extras[c.id])
    # no merge missed: a fresh backfilled report had no open case of its category within 50 m and 24 h
    def state_at(c, t):
        return [h.to_state for h in history[c.id] if h.at <= t][-1]

    fresh = defaultdict(list)
    for c in sorted(made, key=lambda c: c.reported_at):
        if c.state == "merged":
            continue
        for o in fresh[c.category_code]:
            near = haversine_m(c.lon, c.lat, o.lon, o.lat) <= 50 and c.reported_at - o.reported_at <= timedelta(hours=24)
            assert not (near and state_at(o, c.reported_at) not in CLOSED_FOR_DEDUPE), (c.id, o.id)
        fresh[c.category_code].append(c)
    # backfilled and live histories speak the same language: actors, actions, transitions
    def vocabulary(group):
        out = set()
        for c in group:
            for h in history[c.id]:
                who = h.actor.split(":")[1] if h.actor.startswith("sim:") else h.actor
                out.add((h.action, h.from_state, h.to_state, who))
        return out

    backfilled, lived = vocabulary(made), vocabulary(live)
    for step in (("accept", "reported", "accepted", "duty_officer"), ("sign", "dispatched", "signed", "unit"),
                 ("resolve", "signed", "resolved", "unit"), ("close", "verified", "closed", "duty_officer"),
                 ("verify_request", "reported", "verifying", "duty_officer"),
                 ("report_check", "verifying", "reported", "grid"), ("callback", "closed", "closed", "duty_officer"),
                 ("urge", "signed", "signed", "system:scheduler")):
        assert step in backfilled and step in lived, step
    assert {a for a, *_ in backfilled} >= {"report", "merge", "accept", "reject", "verify_request", "report_check",
                                          "dispatch", "sign", "resolve", "verify", "close", "return", "reassign",
                                          "urge", "supervise", "extend", "callback"}
    assert "escalate" not in {a for a, *_ in backfilled | lived}  # a person's act now; the scheduler reminds
    # the outbox grows with time within a write, and every backfilled case reads back through the service
    seqs = sorted((e.seq, e.at) for c in made for e in events[c.id])
    assert [at for _, at in seqs] == sorted(at for _, at in seqs)
    sample = service.get(made[len(made) // 2].id, None)
    assert sample["history"] and sample["chain"][0]["code"] == made[len(made) // 2].grid_code
    assert sample["stages"] and sample["stages"][0]["name"] == "accept"
    with_rows = next(c for c in made if extras[c.id][1])
    shown = service.get(with_rows.id, None)
    assert shown["supervision"] and shown["penalties"] and shown["penalty_points"] > 0


def test_the_backfilled_months_show_the_figures_the_profile_aims_at(world):
    service, _ = world
    report = backfill(service, 40, now=T, volume=VOLUME)
    targets = load_profile().targets
    end = T.astimezone(SH).date() - timedelta(days=3)  # cases due in the last days are still under way
    with service.db.session() as s:
        month = period_figures(s, end - timedelta(days=29), end, T)["total"]
        states = Counter(r for (r,) in s.execute(select(Case.state)))
        acted = dict(s.execute(select(CaseHistory.action, func.count(func.distinct(CaseHistory.case_id)))
                               .group_by(CaseHistory.action)).all())
        by_source = Counter(r for (r,) in s.execute(select(Case.source).where(Case.state != "merged")))
        results = Counter((d if isinstance(d, dict) else json.loads(d))["satisfaction"]
                          for (d,) in s.execute(select(CaseHistory.details).where(CaseHistory.action == "callback")))
        reminders = Counter(s.execute(select(CaseSupervision.kind, CaseSupervision.automatic)).all())
        assists = s.scalar(select(func.count()).select_from(CaseAssist).where(CaseAssist.reported_at.is_not(None)))
        penalties = s.scalar(select(func.count()).select_from(CasePenalty))
        checks = Counter(r for (r,) in s.execute(select(Case.check_result)))
    assert month.due > 2500
    lo, hi = targets["closure_rate"]
    assert lo - 0.005 <= month.closure_rate <= hi + 0.005, month
    lo, hi = targets["on_time_rate"]
    assert lo <= month.on_time_rate <= hi, month
    lo, hi = targets["rework_rate"]
    assert lo - 0.005 <= month.rework_rate <= hi + 0.005, month
    assert 0.01 < month.extension_rate < 0.08, month
    # every step of the lifecycle at the profile's rates (data/demo_history.json, outcomes)
    rates = load_profile().rates
    n = report.cases - report.merged
    people = sum(by_source[x] for x in rates.check_sources)

    def near(count, expected, slack=0.35):
        assert abs(count - expected) <= slack * expected + 5, (count, expected)

    near(acted["verify_request"], rates.check * people)                       # 核实: ~30 % of people's reports
    assert acted["report_check"] >= 0.95 * acted["verify_request"]
    near(checks["unfounded"], rates.check_unfounded * acted["report_check"])  # a fifth unfounded, not filed
    near(acted["void"], rates.void * acted["accept"])                          # 作废 ~1.5 %
    near(acted["return"], rates.ret * acted["dispatch"])                       # 退回 ~4 % ...
    near(acted["reassign"], rates.reassign_after_return * acted["return"])    # ... 改派 ~3 %
    near(acted["refuse_return"], (1 - rates.reassign_after_return) * acted["return"], 0.5)  # 驳回 ~1 %
    near(acted["request_suspension"], rates.suspension_request * acted["sign"], 0.5)  # 挂账 ~1 %
    assert acted["approve_suspension"] > acted["deny_suspension"] > 0 and acted["resume"] > 0.5 * acted["approve_suspension"]
    assert states["suspended"] > 0
    near(acted["deny_extension"], rates.extension_denied * acted["extend"], 0.5)  # a fifth of 延期 denied
    assert acted["add_assist"] > 20 and assists > 0.8 * acted["add_assist"]   # 协办, reported by the assisting unit
    closed_people = acted["close"] * people / n
    near(acted["callback"], rates.callback * closed_people, 0.2)               # 回访 of ~all people's cases
    total = sum(results.values())
    assert 0.8 < results["satisfied"] / total < 0.9 and 0.02 < results["unsatisfied"] / total < 0.08, results
    near(acted["reopen"], rates.reopen_unsatisfied * results["unsatisfied"], 0.5)  # half of them reopened
    # the scheduler's reminders, replayed: 催办 at 80 %, 督办 at the deadline; a leader's 督办 now and then
    assert reminders[("urge", True)] > 100 and reminders[("supervise", True)] > 100, reminders
    assert 0 < reminders[("supervise", False)] < 0.03 * n and penalties > reminders[("urge", True)]
    assert "escalate" not in acted
    # the rest of what a real month has: rejections, duplicates, and cases still open and overdue now
    assert states["rejected"] > 50 and states["merged"] > 20 and states["closed"] > 0.85 * report.cases
    assert states["voided"] > 20
    with service.db.session() as s:
        now_figures = period_figures(s, end - timedelta(days=29), T.astimezone(SH).date(), T)["total"]
    assert now_figures.overdue_open > 10
    # weekends and holidays are quieter than working days
    per_day = Counter()
    with service.db.session() as s:
        for (at,) in s.execute(select(Case.reported_at)):
            per_day[at.astimezone(SH).date()] += 1
    calendar = service.calendar
    full = [d for d in per_day if T.astimezone(SH).date() - timedelta(days=38) < d < T.astimezone(SH).date()]
    work = [per_day[d] for d in full if calendar.is_working_day(d)]
    off = [per_day[d] for d in full if not calendar.is_working_day(d)]
    assert sum(off) / len(off) < 0.85 * sum(work) / len(work)


def test_a_second_run_adds_nothing_and_a_later_run_fills_only_the_missing_time(world):
    service, clock = world
    first = backfill(service, 3, now=T, volume=VOLUME)
    assert first.cases > 100
    with service.db.session() as s:
        before = (s.scalar(select(func.count()).select_from(Case)), s.scalar(select(func.count()).select_from(CaseHistory)),
                  s.scalar(select(func.max(CaseEvent.seq))))
    again = backfill(service, 3, now=T, volume=VOLUME)
    assert again.cases == 0 and again.intervals == []
    with service.db.session() as s:
        assert (s.scalar(select(func.count()).select_from(Case)), s.scalar(select(func.count()).select_from(CaseHistory)),
                s.scalar(select(func.max(CaseEvent.seq)))) == before
    # a live simulator runs for three hours after T; the next day's run fills only the time after it
    runner = SimulationRunner(service, seed=3, clock=clock, rate_per_minute=0.3)
    runner.run(0.3, 3 * 3600, realtime=False, start=T, echo=lambda _line: None)
    with service.db.session() as s:
        last_live = s.scalar(select(func.max(Case.reported_at)).where(~Case.idempotency_key.like(HISTORY_KEY_PREFIX + "%")))
    assert last_live > T + timedelta(hours=2)
    later = backfill(service, 3, now=T + timedelta(days=1), volume=VOLUME)
    assert later.cases > 10
    assert [later.intervals[0][0], later.intervals[-1][1]] == [last_live + timedelta(microseconds=1), T + timedelta(days=1)]
    with service.db.session() as s:
        new = list(s.scalars(select(Case.reported_at).where(Case.idempotency_key.like(HISTORY_KEY_PREFIX + "%"),
                                                             Case.reported_at >= T)))
        assert new and min(new) >= last_live and max(new) < T + timedelta(days=1)
        assert s.scalar(select(func.count()).where(Case.idempotency_key.like(HISTORY_KEY_PREFIX + "%"))) == \
            first.cases + later.cases
        marker = json.loads(s.get(Meta, MARKER_KEY).value)["intervals"]
    assert len(marker) == 2  # [T − 3 days, T) and [end of the live run, T + 1 day)
    assert missing_intervals(service, 3, T + timedelta(days=1)) == []


def test_ids_taken_meanwhile_by_intake_are_left_to_it_and_the_made_cases_renumbered(world, monkeypatch):
    """The rows are made with the ids the database was expected to give next; when intake took them
    meanwhile, the write gives the made cases the next free ones, merge notes included."""
    import demo.backfill as bf
    from data.tokens import Principal

    service, clock = world
    officer = Principal("user", "officer", "duty_officer", "320400")
    clock.now = T - timedelta(days=5)
    live = [service.intake({"category": "020102", "lon": 119.905 + i * 0.01, "lat": 31.705, "description": "人工上报",
                            "source": "hotline"}, officer)[0]["id"] for i in range(3)]
    monkeypatch.setattr(bf, "_next_id", lambda _service: 1)  # as if read before the three intakes
    report = backfill(service, 3, now=T, volume=VOLUME)
    assert report.merged > 0
    cases, history, events, extras = _everything(service)
    assert len(cases) == report.cases + 3 and all(cases[i].idempotency_key is None for i in live)
    for c in cases.values():
        check_case(c, history[c.id], events[c.id], cases, service, extras[c.id])
    # the 协办, 催办/督办 and 扣分 rows went with their cases' new ids
    assert sum(len(x[1]) for x in extras.values()) > 10
    owners = {k for k, rows in extras.items() if any(rows)}
    assert owners <= set(cases) and not owners & set(live)


def test_the_same_seed_makes_the_same_cases_whenever_a_day_is_made(world, tmp_path):
    """A day's reports do not depend on the window they were made in (keys, times, places)."""
    from data.db import Database
    from data.schema import init_db

    service, _ = world
    backfill(service, 2, now=T, volume=VOLUME)
    other_db = Database(f"sqlite:///{tmp_path / 'other.db'}")
    init_db(other_db)
    other, _ = small_world(other_db, T)
    backfill(other, 1.5, now=T - timedelta(hours=7), volume=VOLUME)

    def made(svc, lo, hi):
        with svc.db.session() as s:
            return list(s.execute(select(Case.idempotency_key, Case.reported_at, Case.category_code, Case.lon, Case.lat)
                                  .where(Case.reported_at >= lo, Case.reported_at < hi).order_by(Case.reported_at)))

    def lives(svc, lo, hi):  # cases done before the earlier run's now: their whole lives
        with svc.db.session() as s:
            return {key: (state, closed) for key, state, closed in s.execute(
                select(Case.idempotency_key, Case.state, Case.closed_at).where(
                    Case.reported_at >= lo, Case.reported_at < hi, Case.closed_at < T - timedelta(hours=7)))}

    lo, hi = T - timedelta(days=1), T - timedelta(hours=7)
    assert made(service, lo, hi) == made(other, lo, hi) != []
    mine, theirs = lives(service, lo, hi), lives(other, lo, hi)
    same = set(mine) & set(theirs)  # (a merge may differ: the windows hold different earlier cases)
    assert len(same) >= 0.9 * len(mine) and len(same) > 10 and all(mine[k] == theirs[k] for k in same)
    other_db.dispose()


def test_made_in_a_forked_process_or_in_this_one_the_rows_are_the_same(tmp_path):
    from data.db import Database
    from data.schema import init_db

    tables = []
    for parallel in (False, True):
        db = Database(f"sqlite:///{tmp_path / f'p{parallel}.db'}")
        init_db(db)
        service, _ = small_world(db, T)
        backfill(service, 6, now=T, volume=VOLUME * 4, parallel=parallel)  # more than one write
        db.dispose()
        con = sqlite3.connect(tmp_path / f"p{parallel}.db")
        tables.append([con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                       for t in ("cases", "case_history", "case_events")])
        con.close()
    assert tables[0] == tables[1] and len(tables[0][0]) > 2000


def test_office_time_is_the_calendars_working_time_to_the_microsecond():
    calendar = default_calendar()
    ot = OfficeTime(calendar, date(2025, 12, 20), date(2026, 3, 31))  # New Year, Spring Festival and its make-up days
    rng = random.Random(5)
    lo = datetime(2025, 12, 28, tzinfo=UTC)
    instants = [lo + timedelta(seconds=rng.uniform(0, 70 * 86400)) for _ in range(3000)]
    instants += [p for d in range(60) for span in calendar.working_periods(date(2026, 1, 1) + timedelta(days=d))
                 for p in span]  # period starts and ends exactly
    us = lambda dt: (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)  # noqa: E731
    for t in instants:
        amount = rng.choice((0, 0.5, 1, 2, 4, 7.5, 13.25))
        for unit in ("working_hours", "working_days", "minutes", "hours", "days"):
            assert ot.deadline(us(t), amount, unit) == us(calendar.working_deadline(t, amount, unit)), (t, amount, unit)
        other = t + timedelta(hours=rng.uniform(-50, 50))
        assert ot.between(us(t), us(other)) == round(calendar.working_time_between(t, other, "working_hours") * 3600e6)
        assert ot.is_working(us(t)) == calendar.is_working_time(t), t


def test_first_run_fills_the_demo_city_only(world, monkeypatch):
    service, _ = world
    assert first_run_history(service, 0) is None
    assert first_run_history(service, 2) is None  # an imported city (no demo marker): no made-up history
    with service.db.session() as s:
        s.add(Meta(key="demo_seeded", value="changzhou"))
    service.clock = lambda: T
    import demo.backfill as bf

    monkeypatch.setattr(bf, "backfill", lambda svc, days, echo=None: ("filled", days))
    assert first_run_history(service, 2) == ("filled", 2)


def test_seed_history_setting_is_checked(monkeypatch):
    from config import Settings

    monkeypatch.setenv("UCC_SEED_HISTORY", "30")
    assert Settings.from_env().seed_history_days == 30
    monkeypatch.delenv("UCC_SEED_HISTORY")
    assert Settings.from_env().seed_history_days == 90
    for bad in ("-1", "abc", "9999", "1.5"):
        monkeypatch.setenv("UCC_SEED_HISTORY", bad)
        with pytest.raises(SystemExit, match="UCC_SEED_HISTORY"):
            Settings.from_env()


def test_backfill_command_refuses_bad_input_and_fills_the_demo_city(demo_app):
    runner = demo_app.test_cli_runner()
    services = demo_app.extensions["ucc"]
    for args in (["--days", "abc"], ["--days", "0"], ["--days", "99999"], ["--days", "2", "--seed", "x"]):
        result = runner.invoke(args=["backfill", *args, "--no-progress"])
        assert result.exit_code == 1 and "未做任何修改" in result.output, result.output
    with services.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0
    # The window ends at the service's clock: held still, so that the second run sees the same "now"
    # (a real second run minutes later fills those minutes, as the last step shows).
    now = services.cases.clock()
    services.cases.clock = lambda: now
    result = runner.invoke(args=["backfill", "--days", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "已补录" in result.output and "件案件" in result.output
    with services.db.session() as s:
        n = s.scalar(select(func.count()).select_from(Case))
        assert n > 800  # a day of Changzhou: some 1,500–3,000 reports
        assert s.scalar(select(func.count()).where(~Case.idempotency_key.like(HISTORY_KEY_PREFIX + "%"))) == 0
    again = runner.invoke(args=["backfill", "--days", "1", "--no-progress"])
    assert again.exit_code == 0 and "未新增案件" in again.output
    # an hour later only that hour is missing: a few dozen reports, not another day
    services.cases.clock = lambda: now + timedelta(hours=1)
    later = runner.invoke(args=["backfill", "--days", "1", "--no-progress"])
    assert later.exit_code == 0, later.output
    with services.db.session() as s:
        added = s.scalar(select(func.count()).select_from(Case)) - n
    assert 0 < added < n / 4, (added, n)
    # the wall's figures are there
    from figures.wall import snapshot

    snap = snapshot(services, services.cases.clock())
    assert snap["month"]["received"] > 800 and snap["trend"]["today_so_far"] >= 0
    assert snap["newest"] and snap["ranking"][0]["name"]
