"""A planted surge on one street on one day of a generated history (weekly pattern, 国庆 and its make-up days),
on SQLite and PostgreSQL: warned about on that day and street with its evidence and cases, and no warning on the
quiet days of the same run (the false-alarm rate counted and held low)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from data import files
from data.models import Case
from dispatch.city_time import CITY_TZ
from foresight import surge
from tests.foresight.forecast_world import GRIDS, STREET_OF, STREETS, build_history

SURGE_STREET, SURGE_DAY, EXTRA = STREETS[1], date(2026, 10, 14), 30
CHECK_HOURS = (10, 14, 18, 23)


@pytest.fixture
def planted(empty_db):
    build_history(empty_db, date(2026, 8, 1), date(2026, 10, 22), surge=(SURGE_STREET, SURGE_DAY, EXTRA))
    return empty_db


def test_the_surge_is_warned_on_its_day_and_street_and_quiet_days_stay_quiet(planted):
    rules = files.forecast_rules()
    found, checks, false_alarms = {}, 0, []
    tested_per_check = None
    day = date(2026, 10, 6)  # the last days of 国庆, the make-up Saturday 10 October, ordinary weeks
    while day <= date(2026, 10, 21):
        for hour in CHECK_HOURS:
            at = datetime.combine(day, datetime.min.time(), CITY_TZ) + timedelta(hours=hour)
            result = surge.check(planted, at, rules)
            tested_per_check = sum(result.tested.values())
            checks += 1
            for f in result.findings:
                assert f.kind == "surge" and f.window_start <= at < f.window_end
                if day == SURGE_DAY:
                    found.setdefault(hour, []).append(f)
                else:
                    false_alarms.append((at, f.area_code, f.category_code, f.observed, f.upper))
        day += timedelta(days=1)
    quiet_checks = (checks - len(CHECK_HOURS)) * tested_per_check
    rate = len(false_alarms) / quiet_checks
    print(f"\n{checks} checks x {tested_per_check} areas; false alarms on quiet days: {len(false_alarms)} "
          f"of {quiet_checks} area-checks ({rate:.2%}); surge day: "
          + ", ".join(f"{h}:00 → {[(f.area_code, f.category_code, f.observed, f.upper) for f in fs]}"
                      for h, fs in sorted(found.items())))
    assert rate <= 0.002 and len(false_alarms) <= 1, false_alarms
    # by the afternoon the planted rise (09:00–15:00) is warned of, on its street, each evening check too
    for hour in (18, 23):
        streets = [f for f in found.get(hour, []) if f.evidence["level"] == "street"]
        assert [f.area_code for f in streets] == [SURGE_STREET]
    for fs in found.values():
        assert {f.area_code if f.evidence["level"] != "grid" else STREET_OF[f.area_code] for f in fs} == {SURGE_STREET}


def test_a_finding_carries_its_evidence_and_cases(planted):
    at = datetime.combine(SURGE_DAY, datetime.min.time(), CITY_TZ) + timedelta(hours=18)
    findings = surge.detect(planted, at, files.forecast_rules())
    street = next(f for f in findings if f.evidence["level"] == "street")
    assert street.district_code == SURGE_STREET[:6] and street.category_code is None
    assert street.observed > street.upper >= street.expected > 0
    assert street.window_start == datetime.combine(SURGE_DAY, datetime.min.time(), CITY_TZ)
    assert street.window_end - street.window_start == timedelta(days=1)
    ev = street.evidence
    assert {"method", "level", "window", "expected", "lower", "upper", "share", "interval_level"} <= set(ev)
    assert ev["lower"] <= ev["expected"] <= ev["upper"] and 0 < ev["share"] < 1
    assert len(street.case_ids) == street.observed
    street_grids = [g for g in GRIDS if STREET_OF[g] == SURGE_STREET]
    with planted.session() as s:
        rows = s.execute(select(Case.grid_code, Case.reported_at).where(Case.id.in_(street.case_ids))).all()
    assert all(g in street_grids and r < at for g, r in rows)
    # the next hour's check finds the same rise in the same day's window: the same warning, not a new one
    assert street.dedupe_key in {f.dedupe_key for f in surge.detect(planted, at + timedelta(hours=1))}


def test_a_check_as_of_a_past_time_does_not_see_the_rise_yet(planted):
    before = datetime.combine(SURGE_DAY, datetime.min.time(), CITY_TZ) + timedelta(hours=8, minutes=59)
    assert surge.detect(planted, before, files.forecast_rules()) == []
