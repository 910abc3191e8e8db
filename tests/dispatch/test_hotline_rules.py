"""The 12345 exchange's rules as data (dispatch/hotline_rules.py): the shipped files, the retry schedule, which steps
are pushed, the class names → our categories, and a bad file refused with every problem named."""
from __future__ import annotations

import json

import pytest

from data import files
from dispatch.hotline_rules import HotlineRulesError, hotline_categories_from_data, hotline_rules_from_data, satisfaction_of

CATALOG = files.catalog()


def test_the_shipped_rules_and_their_schedule():
    rules = files.hotline_rules()
    push = rules.push
    assert [push.delay_after(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert push.delay_after(20) == push.max_delay_seconds == 3600  # capped
    assert push.max_attempts == 12 and push.max_age_hours == 48
    assert rules.pushes("close", "verified", "closed") and rules.pushes("callback", "closed", "closed")
    assert not rules.pushes("urge", "dispatched", "dispatched")  # a 催办 is the center's business
    assert rules.status_word("closed") == "已办结" and rules.unsatisfied == "reopen"
    assert set(json.loads(files.HOTLINE_RULES_PATH.read_text(encoding="utf-8"))["status_words"]) == \
        set(__import__("dispatch.lifecycle").lifecycle.STATES)


def test_a_bad_rules_file_names_every_problem():
    with pytest.raises(HotlineRulesError) as err:
        hotline_rules_from_data({"push": {"first_delay_seconds": 0, "factor": 0.5, "max_attempts": 2.5},
                                 "pushed_actions": ["teleport"], "status_words": {"lost": "丢失"},
                                 "unsatisfied": "ignore"})
    text = str(err.value)
    for piece in ("first_delay_seconds", "factor", "max_attempts", "teleport", "lost", "unsatisfied"):
        assert piece in text, piece


@pytest.mark.parametrize("hint, content, code, how", [
    ("020508", "", "020508", "code"),
    ("路灯不亮", "", "010118", "name"),
    ("噪声扰民", "", "020508", "class"),
    ("城乡建设/市容环境/油烟扰民", "", "020116", "class"),
    ("城乡建设>街面秩序>占道经营", "", "020551", "class"),
    ("小区门口人行道破损严重", "", "010252", "keyword"),  # the longer name wins over 道路破损's stem
    (None, "楼下餐饮油烟扰民三个月了", "020116", "content"),
    ("", "工地夜间施工噪音", "020301", "content"),
])
def test_a_hint_names_our_category(hint, content, code, how):
    match = files.hotline_categories(CATALOG).match(hint, content)
    assert (match.category.code, match.how) == (code, how)


def test_nothing_matched_and_a_bad_class_map():
    classes = files.hotline_categories(CATALOG)
    assert classes.match("外星人入侵", "不知所云") is None and classes.match(None, "") is None
    with pytest.raises(HotlineRulesError) as err:
        hotline_categories_from_data({"classes": {"噪音": "999999"}}, CATALOG)
    assert "999999" in str(err.value)
    assert {satisfaction_of(w) for w in ("满意", "satisfied")} == {"satisfied"}
    assert satisfaction_of("基本满意") == "basically_satisfied" and satisfaction_of("还行") is None
