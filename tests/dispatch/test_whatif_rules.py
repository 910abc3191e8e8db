"""The what-if rules file (data/catalog/whatif.json through dispatch/whatif_rules.py): the shipped file loads, a bad
one has every defect listed at once, and a leader's changes are checked against its bounds and the city's codes."""
from __future__ import annotations

import copy
import json

import pytest

from data import files
from dispatch.whatif_rules import WhatIfRules, WhatIfRulesError, check_changes

SHIPPED = json.loads(files.WHATIF_RULES_PATH.read_text(encoding="utf-8"))
CITY = dict(units=["U-1", "U-2"], categories={"010101": "component", "020102": "event"}, areas=["320402", "320403"])


def test_the_shipped_file_loads():
    rules = files.whatif_rules()
    assert rules.horizon_days == SHIPPED["horizon_days"]
    assert rules.unit_factor.hi == SHIPPED["changes"]["unit_capacity"]["factor"]["max"]


def test_every_defect_is_listed_at_once():
    doc = copy.deepcopy(SHIPPED)
    doc["horizon_days"] = 0
    doc["replications"] = 2.5
    doc["changes"]["unit_capacity"]["factor"] = {"min": 3, "max": 1}
    del doc["changes"]["extra_reports"]
    with pytest.raises(WhatIfRulesError) as err:
        WhatIfRules.from_data(doc)
    text = "\n".join(err.value.problems)
    for words in ("horizon_days", "replications 应为整数", "min 不能大于 max", "缺少 extra_reports"):
        assert words in text, text


def test_changes_are_normalised():
    rules = files.whatif_rules()
    ok, problems = check_changes([{"kind": "category_volume", "category": "event", "factor": 2},
                                  {"kind": "extra_reports", "area": "320403", "count": 200}], rules, **CITY)
    assert problems == []
    assert ok[0]["categories"] == ["020102"] and ok[1]["source"] is None and ok[1]["count"] == 200


def test_bad_changes_are_all_named():
    rules = files.whatif_rules()
    ok, problems = check_changes([{"kind": "unit_capacity", "unit": "U-9", "factor": 0.5},
                                  {"kind": "unit_capacity", "unit": "U-1", "factor": True},
                                  {"kind": "category_volume", "category": ["020102", "x"], "factor": 2},
                                  {"kind": "extra_reports", "area": "320403", "count": 0, "weather": "rain"}],
                                 rules, **CITY)
    assert ok == []
    assert len(problems) == 5, problems
    assert "未知部门 'U-9'" in problems[0] and "factor" in problems[1] and "未知类别 'x'" in problems[2]
    assert any("weather" in p for p in problems) and any("count" in p for p in problems)
    assert check_changes("rain", rules, **CITY)[1] and check_changes([{}] * 11, rules, **CITY)[1]
