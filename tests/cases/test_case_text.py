"""A case's history reads the same on the console and in the unit workspace."""
from layouts.case_text import actor_label, history_action


def test_actors_and_actions_read_as_words():
    assert actor_label("user:handler") == "handler"
    assert actor_label("token:12") == "接口令牌 12"
    assert actor_label("system:scheduler") == "系统"
    assert actor_label("sim:unit") == "模拟数据"
    assert history_action({"action": "report", "action_label": "report"}) == "上报"
    assert history_action({"action": "merge"}) == "重复合并"
    assert history_action({"action": "sign", "action_label": "签收"}) == "签收"
