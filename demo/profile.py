"""The demo's volumes and rates as data: ``data/demo_history.json``, read once.

:class:`HistoryProfile` holds the daily volume (the backfill and the live simulator's rate) and the
outcome shares; :class:`LifeRates` is the part the lifecycle decisions need (how often a case is
checked, voided, returned, reassigned, suspended, extended, assisted, supervised, called back, reopened),
shared by the live simulator (:mod:`demo.simulator`, driven by :mod:`demo.runner`) and the backfill
(:mod:`demo.backfill`), so that both make cases at the same rates. The reasoning behind each rate is
in the data file, next to it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Mapping

from dispatch.working_time import WorkCalendar

__all__ = ["PROFILE_PATH", "HistoryProfile", "LifeRates", "load_profile"]

PROFILE_PATH = Path(__file__).resolve().parent.parent / "data" / "demo_history.json"


@dataclass(frozen=True)
class LifeRates:
    """The shares and delays of the simulated people's decisions (``outcomes`` of the data file)."""

    reject: float
    check: float
    check_sources: tuple[str, ...]
    check_unfounded: float
    void: float
    ret: float
    reassign_after_return: float
    reassign_unit_types: tuple[str, ...]
    late: float
    late_by_district: Mapping[str, float]
    stuck: float
    stuck_working_days: tuple[float, float]
    suspension_request: float
    suspension_approved: float
    suspension_days: tuple[float, float, float]
    rework: float
    extend: float
    extension_denied: float
    extension_hours: tuple[float, ...]
    assist: float
    assist_categories: Mapping[str, tuple[str, ...]]
    leader_supervise: float
    callback: float
    callback_sources: tuple[str, ...]
    callback_hours: tuple[float, float, float]
    satisfaction: tuple[tuple[str, float], ...]
    reopen_unsatisfied: float
    scheduler_round_seconds: float

    @classmethod
    def from_outcomes(cls, o: Mapping) -> "LifeRates":
        sat = tuple((k, float(v)) for k, v in o["satisfaction"].items())
        if abs(sum(v for _, v in sat) - 1.0) > 1e-9:
            raise ValueError("outcomes.satisfaction: the shares must add up to 1")
        return cls(
            reject=float(o["reject"]), check=float(o["check"]), check_sources=tuple(o["check_sources"]),
            check_unfounded=float(o["check_unfounded"]), void=float(o["void"]), ret=float(o["return"]),
            reassign_after_return=float(o["reassign_after_return"]),
            reassign_unit_types=tuple(o["reassign_unit_types"]), late=float(o["late"]),
            late_by_district={k: float(v) for k, v in o.get("late_by_district", {}).items()}, stuck=float(o["stuck"]),
            stuck_working_days=tuple(float(x) for x in o["stuck_working_days"]),
            suspension_request=float(o["suspension_request"]), suspension_approved=float(o["suspension_approved"]),
            suspension_days=tuple(float(x) for x in o["suspension_days"]), rework=float(o["rework"]),
            extend=float(o["extend"]), extension_denied=float(o["extension_denied"]),
            extension_hours=tuple(float(h) for h in o["extension_hours"]), assist=float(o["assist"]),
            assist_categories={k: tuple(v) for k, v in o["assist_categories"].items()},
            leader_supervise=float(o["leader_supervise"]), callback=float(o["callback"]),
            callback_sources=tuple(o["callback_sources"]), callback_hours=tuple(float(x) for x in o["callback_hours"]),
            satisfaction=sat, reopen_unsatisfied=float(o["reopen_unsatisfied"]),
            scheduler_round_seconds=float(o["scheduler_round_seconds"]))

    def draw_satisfaction(self, u: float) -> str:
        """The 回访 result for a uniform draw ``u`` in [0, 1)."""
        acc = 0.0
        for answer, share in self.satisfaction:
            acc += share
            if u < acc:
                return answer
        return self.satisfaction[-1][0]


@dataclass(frozen=True)
class HistoryProfile:
    """Volumes and outcome shares of the demo history (the data file, read once)."""

    reports_per_working_day: float
    weekday_factors: tuple[float, ...]
    weekend_factor: float
    holiday_factor: float
    off_day_patrol_kept: float
    outcomes: dict
    targets: dict
    rates: LifeRates

    def day_volume(self, day: date, calendar: WorkCalendar) -> float:
        """Reports expected on the local day ``day`` (before the hourly rhythm)."""
        base = self.reports_per_working_day
        if calendar.is_working_day(day):
            return base * self.weekday_factors[day.weekday()]
        return base * (self.holiday_factor if day in calendar.holidays else self.weekend_factor)

    def live_rate_per_minute(self, at: datetime, calendar: WorkCalendar) -> float:
        """The live simulator's daily-average rate for the day of ``at`` (reports a minute): the same
        volume as the history, so that today compares fairly with the usual day on the wall."""
        return self.day_volume(at.astimezone(calendar.tz).date(), calendar) / 1440.0


_PROFILE: HistoryProfile | None = None


def load_profile(path: str | Path | None = None) -> HistoryProfile:
    """The profile of ``path`` (default: data/demo_history.json, cached)."""
    global _PROFILE
    if path is None and _PROFILE is not None:
        return _PROFILE
    with open(path or PROFILE_PATH, encoding="utf-8") as fh:
        doc = json.load(fh)
    factors = doc["weekday_factors"]["values"]
    if len(factors) != 7:
        raise ValueError("weekday_factors: 7 values (Monday … Sunday) expected")
    outcomes = {k: v for k, v in doc["outcomes"].items() if not k.startswith("_")}
    profile = HistoryProfile(
        reports_per_working_day=float(doc["reports_per_working_day"]), weekday_factors=tuple(factors),
        weekend_factor=float(doc["weekend_factor"]), holiday_factor=float(doc["holiday_factor"]),
        off_day_patrol_kept=float(doc["off_day_patrol_kept"]["value"]), outcomes=outcomes,
        targets={k: tuple(v) for k, v in doc["targets"].items() if not k.startswith("_")},
        rates=LifeRates.from_outcomes(outcomes))
    if path is None:
        _PROFILE = profile
    return profile
