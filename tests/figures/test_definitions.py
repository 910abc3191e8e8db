"""Assessment figures (figures.definitions): each KPI on hand-made cases, Shanghai period boundaries,
grouping, and a seeded randomised check against a brute-force reimplementation."""
from __future__ import annotations

import random
from collections import namedtuple
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from figures.definitions import KPI_FIELDS, KpiCase, Kpis, compute_grouped, compute_kpis, period_bounds

SH = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
APR1, APR30 = date(2026, 4, 1), date(2026, 4, 30)
# "now" long after April: April is a finished period
LATER = datetime(2026, 12, 1, tzinfo=UTC)


def sh(*args) -> datetime:
    """A Shanghai wall-clock time, in UTC (as stored)."""
    return datetime(*args, tzinfo=SH).astimezone(UTC)


_ids = iter(range(1, 10**9))


def case(reported=None, accepted=None, deadline=None, closed=None, *, state=None, rejected=None,
         merged=False, rework=0, extension=0, unit="U1", district="320402", category="C1") -> KpiCase:
    """A case; reported defaults to the acceptance time (or 2026-04-02 09:00), state follows the times."""
    if reported is None:
        reported = accepted or sh(2026, 4, 2, 9)
    if state is None:
        state = ("merged" if merged else "rejected" if rejected else "closed" if closed
                 else "dispatched" if accepted else "reported")
    return KpiCase(id=next(_ids), state=state, reported_at=reported, accepted_at=accepted,
                   rejected_at=rejected, closed_at=closed, deadline_at=deadline, rework_count=rework,
                   extension_count=extension, unit_code=unit, district_code=district,
                   category_code=category, merged=merged)


def april(cases, now=LATER) -> Kpis:
    return compute_kpis(cases, APR1, APR30, now=now)


# --- the period ---------------------------------------------------------------------------------

def test_period_bounds_are_shanghai_midnights_in_utc():
    s, e = period_bounds(APR1, APR30)
    # Shanghai is UTC+8 all year: 2026-04-01 00:00 local = 2026-03-31 16:00Z; end inclusive,
    # so the period ends at 2026-05-01 00:00 local = 2026-04-30 16:00Z
    assert s == datetime(2026, 3, 31, 16, tzinfo=UTC)
    assert e == datetime(2026, 4, 30, 16, tzinfo=UTC)
    assert s.tzinfo is UTC and e.tzinfo is UTC
    # a one-day period is that whole local day
    assert period_bounds(APR1, APR1) == (s, s + timedelta(days=1))


def test_period_arguments_are_checked():
    with pytest.raises(ValueError):
        compute_kpis([], APR30, APR1)  # end before start
    with pytest.raises(TypeError):
        compute_kpis([], datetime(2026, 4, 1, tzinfo=UTC), APR30)  # a day, not an instant
    with pytest.raises(ValueError):
        compute_kpis([], APR1, APR30, now=datetime(2026, 4, 10))  # naive now


def test_shanghai_boundaries_decide_the_month():
    cases = [
        case(reported=datetime(2026, 3, 31, 16, 30, tzinfo=UTC)),  # 04-01 00:30 Shanghai: April
        case(reported=datetime(2026, 3, 31, 15, 59, tzinfo=UTC)),  # 03-31 23:59 Shanghai: March
        case(reported=datetime(2026, 3, 31, 16, 0, tzinfo=UTC)),   # 04-01 00:00 exactly: April
        case(reported=datetime(2026, 4, 30, 15, 59, 59, tzinfo=UTC)),  # 04-30 23:59:59: April
        case(reported=datetime(2026, 4, 30, 16, 0, tzinfo=UTC)),   # 05-01 00:00 exactly: May
    ]
    # April (1st..30th, end inclusive): the 1st, 3rd and 4th
    assert april(cases).received == 3
    # March: only the 2nd; May: only the 5th
    assert compute_kpis(cases, date(2026, 3, 1), date(2026, 3, 31), now=LATER).received == 1
    assert compute_kpis(cases, date(2026, 5, 1), date(2026, 5, 31), now=LATER).received == 1


def test_end_day_is_inclusive():
    c = case(reported=sh(2026, 4, 30, 23, 59))
    # the last local day of the period counts whole...
    assert compute_kpis([c], APR1, APR30, now=LATER).received == 1
    # ...and a period ending the day before does not include it
    assert compute_kpis([c], APR1, date(2026, 4, 29), now=LATER).received == 0
    # a one-day period: start == end is that day
    assert compute_kpis([c], APR30, APR30, now=LATER).received == 1


def test_other_time_zone_moves_the_boundaries():
    c = case(reported=datetime(2026, 3, 31, 16, 30, tzinfo=UTC))
    # in UTC that instant is still March 31
    assert compute_kpis([c], APR1, APR30, tz="UTC", now=LATER).received == 0
    assert compute_kpis([c], APR1, APR30, tz=ZoneInfo("Asia/Shanghai"), now=LATER).received == 1


# --- each figure --------------------------------------------------------------------------------

def test_empty_period_gives_zeros_and_none_rates():
    for cases in ([], [case(reported=sh(2025, 1, 5, 9))]):  # no rows / rows outside the period
        k = april(cases)
        # every count 0; every rate and the mean have a 0 denominator: None, not 0
        assert k == Kpis(received=0, accepted=0, due=0, closed=0, closed_on_time=0,
                         closure_rate=None, on_time_rate=None, rework_rate=None,
                         extension_rate=None, overdue_open=0, mean_handling_hours=None)


def test_to_dict_has_the_contract_fields_in_order():
    d = april([]).to_dict()
    assert tuple(d) == KPI_FIELDS
    assert d["closure_rate"] is None and d["received"] == 0


def test_received_counts_every_report_in_the_period():
    cases = [
        case(reported=sh(2026, 4, 3, 10)),                                   # plain report: yes
        case(reported=sh(2026, 4, 3, 11), rejected=sh(2026, 4, 3, 12)),     # rejected: still a report
        case(reported=sh(2026, 4, 3, 12), merged=True),                      # merged duplicate: a report
        case(reported=sh(2026, 4, 3, 13), accepted=sh(2026, 4, 3, 14)),     # accepted: yes
        case(reported=sh(2026, 3, 30, 9), accepted=sh(2026, 4, 1, 9)),      # reported in March: no
        case(reported=sh(2026, 5, 1, 0, 0)),                                 # May 1st 00:00: no
    ]
    assert april(cases).received == 4


def test_accepted_counts_acceptances_in_the_period():
    cases = [
        case(reported=sh(2026, 3, 31, 22), accepted=sh(2026, 4, 1, 8, 30)),  # reported March, accepted April: yes
        case(accepted=sh(2026, 4, 20, 9)),                                   # yes
        case(reported=sh(2026, 4, 30, 22), accepted=sh(2026, 5, 1, 8, 30)),  # accepted in May: no
        case(accepted=sh(2026, 3, 31, 23, 59)),                              # accepted in March: no
        case(reported=sh(2026, 4, 5, 9)),                                    # never accepted: no
    ]
    k = april(cases)
    assert k.accepted == 2
    # reported (by default at acceptance) 04-20, 04-30 22:00 and 04-05; the other two in March
    assert k.received == 3


def test_instants_on_the_boundaries():
    s, e = period_bounds(APR1, APR30)
    cases = [
        # accepted and closed exactly at 04-01 00:00 local (the first instant of April): April
        case(reported=s - timedelta(hours=1), accepted=s, deadline=s + timedelta(hours=4), closed=s),
        # accepted exactly at 05-01 00:00 local (the first instant of May): not April
        case(reported=e - timedelta(hours=1), accepted=e, deadline=e + timedelta(hours=4)),
        # closed exactly at 05-01 00:00 local, deadline in April: not closed by the end of April
        case(accepted=sh(2026, 4, 29, 9), deadline=sh(2026, 4, 30, 9), closed=e),
    ]
    k = april(cases)
    assert k.received == 2        # the 2nd (23:00 on 04-30) and 3rd; the 1st was reported 03-31 23:00
    assert k.accepted == 2        # the 1st and 3rd
    assert k.due == 2             # the 1st (deadline 04-01 04:00) and the 3rd (deadline 04-30 09:00)
    assert k.closed == 1          # the 1st; the 3rd closed at the end instant, which is May
    assert k.closed_on_time == 1
    assert k.overdue_open == 1    # the 3rd: open at the end of April, deadline before it
    assert k.mean_handling_hours == 0.0  # only the 1st closed in April, accepted and closed at once


def test_rejected_and_merged_are_received_not_accepted():
    cases = [
        case(reported=sh(2026, 4, 3, 9), rejected=sh(2026, 4, 3, 10)),
        case(reported=sh(2026, 4, 3, 9), merged=True),
        # inconsistent rows carrying an acceptance anyway: still not accepted cases, so they are
        # in no figure but `received` (not accepted, not due, not closed, not overdue)
        case(reported=sh(2026, 4, 3, 9), accepted=sh(2026, 4, 3, 9, 5), deadline=sh(2026, 4, 4, 9),
             closed=sh(2026, 4, 3, 12), merged=True),
        case(reported=sh(2026, 4, 3, 9), accepted=sh(2026, 4, 3, 9, 5), deadline=sh(2026, 4, 4, 9),
             state="rejected"),
        case(reported=sh(2026, 4, 3, 9), accepted=sh(2026, 4, 3, 9, 5), deadline=sh(2026, 4, 4, 9),
             rejected=sh(2026, 4, 3, 9, 6), state="dispatched"),
    ]
    k = april(cases)
    assert k.received == 5
    assert (k.accepted, k.due, k.closed, k.closed_on_time, k.overdue_open) == (0, 0, 0, 0, 0)
    assert k.extension_rate is None and k.rework_rate is None and k.mean_handling_hours is None


def test_due_closed_and_on_time_basic():
    cases = [
        # deadline in April, closed before it: due, closed, on time
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 2, 13), closed=sh(2026, 4, 2, 12)),
        # deadline in April, closed exactly at the deadline: "at or before" -> on time
        case(accepted=sh(2026, 4, 6, 9), deadline=sh(2026, 4, 6, 13), closed=sh(2026, 4, 6, 13)),
        # deadline in March (accepted and closed in March): not due in April
        case(accepted=sh(2026, 3, 2, 9), deadline=sh(2026, 3, 2, 13), closed=sh(2026, 3, 2, 12)),
        # deadline exactly at 05-01 00:00 local = the next period's first instant, still open: not due
        case(accepted=sh(2026, 4, 29, 9), deadline=sh(2026, 5, 1, 0, 0)),
        # deadline in May, still open: not due in April
        case(accepted=sh(2026, 4, 29, 9), deadline=sh(2026, 5, 6, 9)),
        # accepted without a deadline (no time limit): never due
        case(accepted=sh(2026, 4, 10, 9), closed=sh(2026, 4, 10, 10)),
    ]
    k = april(cases)
    assert k.due == 2
    assert k.closed == 2
    assert k.closed_on_time == 2
    assert k.closure_rate == 1.0 and k.on_time_rate == 1.0


def test_due_in_period_but_closed_late():
    # deadline 04-10 17:30, closed 04-12 10:00 (inside April, after the deadline)
    c = case(accepted=sh(2026, 4, 8, 9), deadline=sh(2026, 4, 10, 17, 30), closed=sh(2026, 4, 12, 10))
    ok = case(accepted=sh(2026, 4, 8, 9), deadline=sh(2026, 4, 10, 17, 30), closed=sh(2026, 4, 9, 10))
    k = april([c, ok])
    assert k.due == 2             # both deadlines fall in April
    assert k.closed == 2          # both closed by the end of April
    assert k.closed_on_time == 1  # only `ok`; `c` closed after its deadline
    assert k.closure_rate == 1.0
    assert k.on_time_rate == 0.5
    assert k.overdue_open == 0    # `c` is closed by the end of April: not open


def test_due_in_period_closed_after_the_period():
    # deadline 04-20, closed 05-03: due in April, not closed by the end of April, overdue open at the end
    c = case(accepted=sh(2026, 4, 15, 9), deadline=sh(2026, 4, 20, 9), closed=sh(2026, 5, 3, 9))
    k = april([c])
    assert (k.due, k.closed, k.closed_on_time, k.overdue_open) == (1, 0, 0, 1)
    assert k.closure_rate == 0.0 and k.on_time_rate == 0.0
    # closed in May, deadline in April, closed late: not due in May (deadline not in May, not early)
    m = compute_kpis([c], date(2026, 5, 1), date(2026, 5, 31), now=LATER)
    assert (m.due, m.closed, m.overdue_open) == (0, 0, 0)
    # but it is a closure of May for the rework rate and the handling time
    assert m.rework_rate == 0.0 and m.mean_handling_hours == pytest.approx(18 * 24)


def test_early_closure_before_a_deadline_in_the_next_period_is_due():
    # accepted 04-28, deadline 05-06 (next period), closed 04-29: an early closure in April
    c = case(accepted=sh(2026, 4, 28, 9), deadline=sh(2026, 5, 6, 9), closed=sh(2026, 4, 29, 9))
    k = april([c])
    assert (k.due, k.closed, k.closed_on_time) == (1, 1, 1)
    # the same case still open in April would not be due in April (its deadline is in May)
    open_ = case(accepted=sh(2026, 4, 28, 9), deadline=sh(2026, 5, 6, 9))
    assert april([open_]).due == 0
    # closed early but in May: not an April closure, deadline not in April -> not due in April
    may_close = case(accepted=sh(2026, 4, 28, 9), deadline=sh(2026, 5, 6, 9), closed=sh(2026, 5, 2, 9))
    assert april([may_close]).due == 0


def test_early_closure_is_due_once_not_again_in_the_period_of_its_deadline():
    # Closed 04-29 before its 05-06 deadline: due (early) in April; May must not count it again,
    # or monthly "due" figures would add up to more than the year's.
    c = case(accepted=sh(2026, 4, 28, 9), deadline=sh(2026, 5, 6, 9), closed=sh(2026, 4, 29, 9))
    assert april([c]).due == 1
    m = compute_kpis([c], date(2026, 5, 1), date(2026, 5, 31), now=LATER)
    assert (m.due, m.closed, m.closed_on_time) == (0, 0, 0)
    # but a May closure it is not: rework and handling time count closures in the period
    assert m.rework_rate is None and m.mean_handling_hours is None


def test_early_closure_with_deadline_in_period_counts_once():
    # closed in April before a deadline also in April: both clauses hold, counted once
    c = case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 3, 9))
    assert april([c]).due == 1


def test_deadline_in_period_still_open():
    c = case(accepted=sh(2026, 4, 14, 9), deadline=sh(2026, 4, 16, 17, 30))
    k = april([c])
    assert k.due == 1           # deadline in April
    assert k.closed == 0        # not closed
    assert k.overdue_open == 1  # deadline before the end of April, still open at the end
    assert k.closure_rate == 0.0


def test_extension_moves_the_deadline():
    # original deadline 04-10 17:30; closed 04-12 10:00
    late = case(accepted=sh(2026, 4, 8, 9), deadline=sh(2026, 4, 10, 17, 30), closed=sh(2026, 4, 12, 10))
    # the same case with an approved extension to 04-14 17:30 (deadline_at is as extended)
    extended = case(accepted=sh(2026, 4, 8, 9), deadline=sh(2026, 4, 14, 17, 30),
                    closed=sh(2026, 4, 12, 10), extension=1)
    assert april([late]).closed_on_time == 0     # closed after the original deadline
    k = april([extended])
    assert (k.due, k.closed, k.closed_on_time) == (1, 1, 1)  # on time against the extended one
    assert k.extension_rate == 1.0


def test_extension_can_move_the_deadline_out_of_the_period():
    # deadline extended from 04-29 to 05-08, still open at the end of April: not due in April,
    # not overdue in April; due in May
    c = case(accepted=sh(2026, 4, 27, 9), deadline=sh(2026, 5, 8, 9), extension=1)
    k = april([c])
    assert (k.due, k.overdue_open) == (0, 0)
    assert compute_kpis([c], date(2026, 5, 1), date(2026, 5, 31), now=LATER).due == 1


def test_rework_rate():
    cases = [
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 5, 9), rework=1),
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 5, 9), rework=2),
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 5, 9)),
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 6, 9)),
        # reworked but closed in March / still open: not closures of April
        case(accepted=sh(2026, 3, 2, 9), deadline=sh(2026, 3, 9, 9), closed=sh(2026, 3, 5, 9), rework=1),
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 5, 9, 9), rework=3),
    ]
    # 2 of the 4 April closures were reworked
    assert april(cases).rework_rate == 0.5


def test_extension_rate():
    cases = [
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 20, 9), extension=1),
        case(accepted=sh(2026, 4, 3, 9), deadline=sh(2026, 4, 20, 9), extension=2),
        case(accepted=sh(2026, 4, 4, 9), deadline=sh(2026, 4, 20, 9)),
        case(accepted=sh(2026, 4, 5, 9), deadline=sh(2026, 4, 20, 9)),
        case(accepted=sh(2026, 4, 6, 9), deadline=sh(2026, 4, 20, 9)),
        # extended, but accepted in March: not in April's denominator nor numerator
        case(accepted=sh(2026, 3, 30, 9), deadline=sh(2026, 4, 20, 9), extension=1),
    ]
    k = april(cases)
    assert k.accepted == 5
    assert k.extension_rate == pytest.approx(2 / 5)


def test_overdue_open_at_the_end_of_a_finished_period():
    cases = [
        # accepted in March, deadline in March, still open at the end of April: overdue (carried over)
        case(accepted=sh(2026, 3, 10, 9), deadline=sh(2026, 3, 12, 9)),
        # deadline in April, closed in May: open at the end of April -> overdue
        case(accepted=sh(2026, 4, 10, 9), deadline=sh(2026, 4, 12, 9), closed=sh(2026, 5, 2, 9)),
        # deadline in April, closed late but in April: not open
        case(accepted=sh(2026, 4, 10, 9), deadline=sh(2026, 4, 12, 9), closed=sh(2026, 4, 14, 9)),
        # deadline exactly at the end (05-01 00:00 local): not before the end -> not overdue
        case(accepted=sh(2026, 4, 28, 9), deadline=sh(2026, 5, 1, 0, 0)),
        # deadline in May: not overdue at the end of April
        case(accepted=sh(2026, 4, 28, 9), deadline=sh(2026, 5, 3, 9)),
        # accepted after the period (deadline data in April is nonsense, but not accepted by the end)
        case(accepted=sh(2026, 5, 1, 9), deadline=sh(2026, 4, 30, 9)),
        # rejected / merged: never overdue
        case(reported=sh(2026, 4, 2, 9), rejected=sh(2026, 4, 2, 10)),
        case(reported=sh(2026, 4, 2, 9), merged=True),
    ]
    assert april(cases).overdue_open == 2


def test_overdue_open_of_an_unfinished_period_counts_as_of_now():
    now = sh(2026, 4, 15, 12)
    cases = [
        case(accepted=sh(2026, 4, 10, 9), deadline=sh(2026, 4, 14, 9)),  # deadline passed by now: overdue
        case(accepted=sh(2026, 4, 10, 9), deadline=sh(2026, 4, 15, 12)),  # deadline == now: not before now
        case(accepted=sh(2026, 4, 10, 9), deadline=sh(2026, 4, 20, 9)),  # later in April: not yet overdue
    ]
    assert april(cases, now=now).overdue_open == 1
    # the same rows once April is over: all three deadlines are before the end of April
    assert april(cases, now=LATER).overdue_open == 3
    # now given in another zone is the same instant
    assert april(cases, now=now.astimezone(SH)).overdue_open == 1
    # due does not depend on now (deadline in the period)
    assert april(cases, now=now).due == 3


def test_now_defaults_to_the_current_time():
    # a period long past: the cut-off is its end whatever today is
    c = case(accepted=sh(2020, 4, 10, 9), deadline=sh(2020, 4, 12, 9))
    assert compute_kpis([c], date(2020, 4, 1), date(2020, 4, 30)).overdue_open == 1
    # a period far in the future: its end is after now, so a deadline after now is not overdue yet
    f = case(accepted=sh(2099, 4, 10, 9), deadline=sh(2099, 4, 12, 9))
    assert compute_kpis([f], date(2099, 4, 1), date(2099, 4, 30)).overdue_open == 0


def test_mean_handling_hours():
    cases = [
        case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 2, 11)),  # 2 h
        # 2 days + 3 h = 51 calendar hours (over a night: calendar, not working, hours)
        case(accepted=sh(2026, 4, 3, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 5, 12)),
        # accepted in March, closed in April: 04-01 09:00 - 03-31 21:00 = 12 h, counts (closed in April)
        case(accepted=sh(2026, 3, 31, 21), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 1, 9)),
        # closed in May: not in April's mean
        case(accepted=sh(2026, 4, 29, 9), deadline=sh(2026, 5, 9, 9), closed=sh(2026, 5, 2, 9)),
        # open: not in the mean
        case(accepted=sh(2026, 4, 29, 9), deadline=sh(2026, 5, 9, 9)),
    ]
    assert april(cases).mean_handling_hours == pytest.approx((2 + 51 + 12) / 3)


def test_rows_may_be_any_object_with_the_attributes():
    Row = namedtuple("Row", "id state reported_at accepted_at rejected_at closed_at deadline_at "
                            "rework_count extension_count unit_code district_code category_code merged")
    r = Row(1, "closed", sh(2026, 4, 2, 9), sh(2026, 4, 2, 9), None, sh(2026, 4, 2, 10),
            sh(2026, 4, 2, 13), 0, 0, "U1", "320402", "C1", False)
    k = april([r])
    assert (k.received, k.accepted, k.due, k.closed, k.closed_on_time) == (1, 1, 1, 1, 1)
    assert k.mean_handling_hours == pytest.approx(1.0)


def test_a_generator_is_consumed_once():
    cases = [case(accepted=sh(2026, 4, 2, 9), deadline=sh(2026, 4, 3, 9), closed=sh(2026, 4, 2, 10))] * 3
    k = april(c for c in cases)
    assert (k.received, k.accepted, k.due) == (3, 3, 3)


# --- grouping -----------------------------------------------------------------------------------

COUNTS = ("received", "accepted", "due", "closed", "closed_on_time", "overdue_open")


def _mixed_cases():
    out = []
    for i, (district, unit, cat) in enumerate([("320402", "U1", "C1"), ("320402", "U2", "C2"),
                                               ("320404", "U1", "C2"), ("320411", None, "C3")]):
        out += [
            case(accepted=sh(2026, 4, 2 + i, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 5, 9),
                 district=district, unit=unit, category=cat, rework=i % 2),
            case(accepted=sh(2026, 4, 2 + i, 9), deadline=sh(2026, 4, 9, 9), closed=sh(2026, 4, 12, 9),
                 district=district, unit=unit, category=cat, extension=1),
            case(accepted=sh(2026, 4, 2 + i, 9), deadline=sh(2026, 4, 9, 9),
                 district=district, unit=unit, category=cat),
            case(reported=sh(2026, 4, 2, 9), rejected=sh(2026, 4, 2, 10),
                 district=district, unit=None, category=cat),
        ]
    return out


@pytest.mark.parametrize("by,attr", [("district", "district_code"), ("unit", "unit_code"),
                                     ("category", "category_code")])
def test_grouped_counts_sum_to_the_total(by, attr):
    cases = _mixed_cases()
    total = april(cases)
    groups = compute_grouped(cases, APR1, APR30, by, now=LATER)
    for name in COUNTS:
        assert sum(getattr(k, name) for k in groups.values()) == getattr(total, name), name
    # each group is exactly compute_kpis over its own rows
    for key, k in groups.items():
        assert k == april([c for c in cases if getattr(c, attr) == key])
    assert set(groups) == {getattr(c, attr) for c in cases}


def test_grouped_keys_sorted_none_last_and_by_checked():
    groups = compute_grouped(_mixed_cases(), APR1, APR30, "unit", now=LATER)
    # the rejected (unrouted) cases and the unrouted district's cases form the group None
    assert list(groups) == ["U1", "U2", None]
    assert groups[None].received == 7 and groups[None].accepted == 3
    with pytest.raises(ValueError):
        compute_grouped([], APR1, APR30, "grid")
    assert compute_grouped([], APR1, APR30, "district") == {}


# --- randomised check against a brute-force reimplementation ------------------------------------

def _brute(cases, start: date, end: date, now: datetime) -> dict:
    """The definitions again, written independently: "in the period" is "its Shanghai calendar
    day is between start and end", sets instead of counters, Python floats for the mean."""
    def day(t):
        return t.astimezone(SH).date()

    def inside(t):
        return t is not None and start <= day(t) <= end

    def by_end(t):
        return t is not None and day(t) <= end

    period_end = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=SH)
    cutoff = min(period_end, now)
    voided = {c.id for c in cases if inside(c.voided_at)}
    cases = [c for c in cases if not by_end(c.voided_at)]  # voided by the end: counted only in `voided`
    acc = [c for c in cases if c.accepted_at is not None and not c.merged and c.rejected_at is None
           and c.state not in ("rejected", "merged")]
    on_hold = {c.id for c in acc if by_end(c.accepted_at) and by_end(c.suspended_at)
               and not (by_end(c.resumed_at) and c.resumed_at >= c.suspended_at)}
    received = {c.id for c in cases if inside(c.reported_at)}
    accepted = {c.id for c in acc if inside(c.accepted_at)}
    by_deadline = {c.id for c in acc if inside(c.deadline_at)
                   and not (c.closed_at is not None and day(c.closed_at) < start)}
    early = {c.id for c in acc if c.deadline_at is not None and inside(c.closed_at) and c.closed_at < c.deadline_at}
    due_ids = (by_deadline | early) - on_hold
    due = [c for c in acc if c.id in due_ids]
    closed = [c for c in due if by_end(c.closed_at)]
    on_time = [c for c in closed if c.closed_at <= c.deadline_at]
    closed_in = [c for c in acc if inside(c.closed_at)]
    reworked = [c for c in closed_in if c.rework_count > 0]
    extended = [c for c in acc if c.id in accepted and c.extension_count > 0]
    overdue = [c for c in acc if by_end(c.accepted_at) and not by_end(c.closed_at) and c.id not in on_hold
               and c.deadline_at is not None and c.deadline_at < cutoff]
    hours = [(c.closed_at - c.accepted_at).total_seconds() / 3600 for c in closed_in]

    def rate(a, b):
        return len(a) / len(b) if b else None

    return dict(received=len(received), accepted=len(accepted), due=len(due), closed=len(closed),
                closed_on_time=len(on_time), closure_rate=rate(closed, due), on_time_rate=rate(on_time, due),
                rework_rate=rate(reworked, closed_in), extension_rate=rate(extended, accepted),
                overdue_open=len(overdue), mean_handling_hours=sum(hours) / len(hours) if hours else None,
                voided=len(voided), suspended=len(on_hold))


BOUNDARIES = [sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 4, 15), sh(2026, 4, 16), sh(2026, 3, 20)]


def _random_cases(rng: random.Random, n: int) -> list[KpiCase]:
    t0 = sh(2026, 2, 15)
    span = int((sh(2026, 6, 15) - t0).total_seconds() // 60)

    def t(base=None, max_minutes=None):
        if rng.random() < 0.06:
            return rng.choice(BOUNDARIES)  # exactly on a period boundary
        if base is None:
            return t0 + timedelta(minutes=rng.randrange(span))
        return base + timedelta(minutes=rng.randrange(max_minutes))

    out = []
    for i in range(n):
        reported = t()
        kind = rng.random()
        accepted = rejected = closed = deadline = voided = suspended = resumed = None
        merged = False
        if kind < 0.08:
            state, rejected = "rejected", t(reported, 600)
        elif kind < 0.13:
            state, merged = "merged", True
            if rng.random() < 0.3:  # an inconsistent merged row with an acceptance
                accepted, deadline = t(reported, 600), t(reported, 20_000)
        else:
            accepted = t(reported, 3000)
            deadline = None if rng.random() < 0.04 else t(accepted, 30_000)
            r = rng.random()
            if r < 0.65:
                closed = t(accepted, 45_000)
            elif r < 0.72 and deadline is not None:
                closed = deadline  # closed exactly at the deadline
            state = "closed" if closed else rng.choice(["accepted", "dispatched", "signed", "resolved", "suspended"])
            if not closed and rng.random() < 0.15:  # 作废 (never of a closed case)
                state, voided = "voided", t(accepted, 30_000)
            if rng.random() < 0.15:  # 挂账: still on, lifted, or lifted and put on again
                suspended = t(accepted, 20_000)
                r = rng.random()
                if r < 0.4 and closed is None:
                    state = "suspended" if voided is None else state
                elif r < 0.8 or closed is not None:  # a closed case was resumed before its closing
                    resumed = t(suspended, 20_000)
                else:
                    resumed, suspended = suspended, t(suspended, 20_000)
                if closed is not None and resumed is not None:
                    closed = max(closed, resumed)
        out.append(KpiCase(
            id=i, state=state, reported_at=reported, accepted_at=accepted, rejected_at=rejected,
            closed_at=closed, deadline_at=deadline, rework_count=rng.choice([0, 0, 0, 1, 2]),
            extension_count=rng.choice([0, 0, 0, 0, 1]), unit_code=rng.choice(["U1", "U2", "U3", None]),
            district_code=rng.choice(["320402", "320404", "320411"]), category_code=rng.choice(["C1", "C2"]),
            merged=merged, voided_at=voided, suspended_at=suspended, resumed_at=resumed))
    return out


def _assert_same(k: Kpis, expected: dict):
    got = k.to_dict()
    for name in KPI_FIELDS:
        if isinstance(expected[name], float):
            assert got[name] == pytest.approx(expected[name], rel=1e-12), name
        else:
            assert got[name] == expected[name], name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_cases_match_the_brute_force(seed):
    rng = random.Random(seed)
    cases = _random_cases(rng, 3000)
    periods = [(APR1, APR30), (date(2026, 4, 15), date(2026, 4, 15)), (date(2026, 3, 20), date(2026, 4, 10)),
               (date(2026, 3, 1), date(2026, 5, 31))]
    nows = [LATER, sh(2026, 4, 15, 10, 30), sh(2026, 4, 16), sh(2026, 3, 1)]
    for start, end in periods:
        for now in nows:
            expected = _brute(cases, start, end, now)
            _assert_same(compute_kpis(cases, start, end, now=now), expected)
            # non-trivial data: every figure is exercised
            if (start, end, now) == (APR1, APR30, LATER):
                assert min(expected[n] for n in COUNTS) > 0
    for by, attr in (("district", "district_code"), ("unit", "unit_code"), ("category", "category_code")):
        groups = compute_grouped(cases, APR1, APR30, by, now=sh(2026, 4, 20))
        for key, k in groups.items():
            _assert_same(k, _brute([c for c in cases if getattr(c, attr) == key], APR1, APR30, sh(2026, 4, 20)))
