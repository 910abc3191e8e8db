"""The plans file as data (dispatch/emergency_plans.py): the shipped file reads, a broken one names every defect,
a level carries the lower levels' actions, and the report clock's rules."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dispatch.emergency_plans import PlanFileError, ReportDeadlines, may_command, next_report, plans_from_data

FILE = json.loads((Path(__file__).resolve().parents[2] / "data/catalog/emergency_plans.json").read_text("utf-8"))
T0 = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)
D = ReportDeadlines(30, 2, 24)


def test_the_shipped_plans_read_and_each_level_carries_the_lower_levels_actions():
    plans = plans_from_data(FILE)
    gas = plans.get("gas_leak")
    assert gas.level(3).checklist[:4] == gas.level(4).checklist
    assert len(gas.level(1).checklist) == len(set(gas.level(1).checklist)) > len(gas.level(2).checklist)
    assert plans.for_category("040102") is gas and plans.for_category("040106").general


def test_a_broken_file_names_every_defect_at_once():
    raw = copy.deepcopy(FILE)
    gas = next(p for p in raw["plans"] if p["code"] == "gas_leak")
    gas["lead_unit_type"] = "nobody"
    gas["criteria"].pop("1")
    gas["checklist"]["4"] = []
    fire = next(p for p in raw["plans"] if p["code"] == "fire")
    fire["categories"] = ["040101", "040102"]  # 燃气泄漏 is the gas plan's
    raw["levels"]["3"]["commanding_level"] = 3
    with pytest.raises(PlanFileError) as info:
        plans_from_data(raw, unit_type_codes={"housing_construction", "gas", "fire_rescue", "public_security",
                                              "emergency_management", "water_affairs", "city_management",
                                              "traffic_police", "power", "water_supply", "ecology_environment",
                                              "emergency_medical", "health", "transport"})
    text = "\n".join(info.value.problems)
    for needle in ("nobody", "缺少等级 1", "第 4 级的 checklist", "040102", "commanding_level"):
        assert needle in text, needle


def test_who_commands():
    assert may_command("duty_officer", 2, 2) and may_command("leader", 1, 2) and may_command("admin", 1, 1)
    assert not may_command("duty_officer", 3, 2) and not may_command("duty_officer", 2, 1)
    assert not may_command("unit_handler", 1, 2) and not may_command("duty_officer", None, 2)


def test_the_report_clock():
    owed = next_report(D, T0, [], None, False, T0 + timedelta(minutes=29))
    assert (owed.kind, owed.due_at, owed.overdue) == ("first", T0 + timedelta(minutes=30), False)
    assert next_report(D, T0, [], None, False, T0 + timedelta(minutes=31)).overdue
    filed = [("first", T0 + timedelta(minutes=20))]
    owed = next_report(D, T0, filed, None, False, T0 + timedelta(hours=1))
    assert (owed.kind, owed.due_at) == ("update", T0 + timedelta(minutes=140))
    done = T0 + timedelta(hours=5)
    owed = next_report(D, T0, filed + [("update", T0 + timedelta(hours=2))], done, False, done)
    assert (owed.kind, owed.due_at) == ("final", done + timedelta(hours=24))
    assert next_report(D, T0, filed + [("final", done)], done, False, done) is None
    assert next_report(D, T0, filed, None, True, done) is None
