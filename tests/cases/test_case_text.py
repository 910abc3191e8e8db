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


# ---- marks, stage clocks, 督办 / 协办 / 挂账 as every page reads them -------------------------------------------
from datetime import datetime, timezone  # noqa: E402

from layouts import case_text  # noqa: E402

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)   # 10:00 in the city


def _case(**kw):
    base = {"state": "dispatched", "clock": "working", "supervised": False, "overdue": False, "urge_count": 0,
            "supervision": [], "assists": [], "penalties": [], "penalty_points": 0, "suspension": None,
            "callback": None, "extension_pending_hours": None, "stages": []}
    base.update(kw)
    return base


def test_marks_put_a_passed_supervision_first_and_in_red():
    case = _case(supervised=True, supervision_level=1, supervision_deadline="2026-11-24T09:00:00+08:00",
                 overdue=True, urge_count=2, penalty_points=2.5, extension_pending_hours=4.0,
                 supervision=[{"kind": "supervise", "automatic": True, "actor": "system:scheduler"}])
    marks = case_text.marks(case, NOW)
    assert [m["kind"] for m in marks] == ["sup-late", "late", "urge", "pending", "bad"]
    assert marks[0]["text"] == "市级督办 · 时限 11-24 09:00 · 已逾期" and "系统自动" in marks[0]["title"]
    assert marks[2]["text"] == "催办 ×2" and marks[3]["text"] == "延期待审批 4 工作时" and marks[4]["text"] == "扣 2.5 分"
    on_time = case_text.marks(_case(supervised=True, supervision_level=3,
                                    supervision_deadline="2026-11-24T11:00:00+08:00"), NOW)
    assert on_time == [{"text": "街道级督办 · 时限 11-24 11:00", "kind": "sup", "title": "街道级督办（人工），督办时限 11-24 11:00"}]
    assert case_text.marks(_case(), NOW) == []
    paused = case_text.marks(_case(state="suspended", suspension={"state": "suspended", "since": "2026-11-24T09:00:00+08:00"}), NOW)
    assert paused[0]["kind"] == "paused"
    unhappy = case_text.marks(_case(state="closed", callback={"result": "unsatisfied", "result_label": "不满意",
                                                              "at": "2026-11-24T09:30:00+08:00", "note": ""}), NOW)
    assert unhappy == [{"text": "回访不满意", "kind": "bad", "title": "回访于 11-24 09:30"}]


def test_stage_rows_show_each_clock_and_what_is_ahead():
    stages = [
        {"name": "accept", "label": "受理", "started_at": "2026-11-24T08:00:00+08:00",
         "deadline": "2026-11-24T08:30:00+08:00", "done_at": "2026-11-24T08:10:00+08:00", "overdue": False,
         "warning": False, "paused": False},
        {"name": "dispatch", "label": "派遣", "started_at": "2026-11-24T08:10:00+08:00",
         "deadline": "2026-11-24T08:40:00+08:00", "done_at": "2026-11-24T09:00:00+08:00", "overdue": True,
         "warning": False, "paused": False},
        {"name": "handle", "label": "处置", "started_at": "2026-11-24T09:00:00+08:00",
         "deadline": "2026-11-24T13:00:00+08:00", "done_at": None, "overdue": False, "warning": True,
         "paused": False},
    ]
    rows = case_text.stage_rows(_case(stages=stages))
    assert [(r["label"], r["state_text"]) for r in rows] == [
        ("受理", "按时"), ("派遣", "超期完成"), ("处置", "预警"), ("核查", "未开始"), ("结案", "未开始")]
    assert rows[0]["start"] == "11-24 08:00" and rows[0]["deadline"] == "11-24 08:30" and rows[0]["done"] == "11-24 08:10"
    assert case_text.handling_stage(_case(stages=stages))["state"] == "warning"
    paused = [dict(stages[2], paused=True, warning=False)]
    assert case_text.stage_rows(_case(state="suspended", stages=paused))[0]["state_text"] == "暂停"
    voided = [dict(stages[0], done_at="2026-11-24T08:20:00+08:00")]
    rows = case_text.stage_rows(_case(state="voided", stages=voided))
    assert [r["state_text"] for r in rows] == ["已终止"]          # nothing ahead of a voided case
    assert case_text.handling_stage(_case(state="reported", stages=stages[:1])) is None


def test_supervision_assists_suspension_and_callback_read_as_words():
    case = _case(supervision=[
        {"kind": "urge", "level": None, "at": "2026-11-24T08:00:00+08:00", "deadline": None, "automatic": True,
         "actor": "system:scheduler", "note": "处置时限已过 80%"},
        {"kind": "supervise", "level": 2, "at": "2026-11-24T08:30:00+08:00", "deadline": "2026-11-24T09:30:00+08:00",
         "automatic": False, "actor": "user:leader", "note": "区领导督办"}],
        assists=[{"unit": {"name": "环卫处"}, "signed_at": None, "reported_at": None, "note": ""},
                 {"unit": {"name": "供电公司"}, "signed_at": "2026-11-24T08:40:00+08:00", "reported_at": None, "note": ""},
                 {"unit": {"name": "燃气公司"}, "signed_at": "2026-11-24T08:40:00+08:00",
                  "reported_at": "2026-11-24T09:10:00+08:00", "note": "已关阀"}])
    sup = case_text.supervision_rows(case, NOW)
    assert [(r["what"], r["by"], r["late"]) for r in sup] == [("区级督办", "leader", True), ("催办", "系统自动", False)]
    assert sup[0]["deadline"] == "11-24 09:30" and sup[1]["deadline"] == ""
    assert [(a["unit"], a["state"]) for a in case_text.assist_rows(case)] == [
        ("环卫处", "waiting"), ("供电公司", "signed"), ("燃气公司", "reported")]
    assert case_text.assist_rows(case)[2]["note"] == "已关阀"
    held = _case(state="suspended", suspension={"state": "suspended", "since": "2026-11-24T09:00:00+08:00",
                                                "remaining_hours": 2.25})
    assert case_text.suspension_text(held) == "自 11-24 09:00 挂账，处置计时暂停，剩余处置时间 2.2 工作时"
    late = _case(state="suspended", clock="calendar",
                 suspension={"state": "suspended", "since": "2026-11-24T09:00:00+08:00", "remaining_hours": -3})
    assert case_text.suspension_text(late).endswith("挂账时已超期 3 小时")
    asked = _case(suspension={"state": "requested", "since": "2026-11-24T09:00:00+08:00"})
    assert case_text.suspension_text(asked) == "单位于 11-24 09:00 申请挂账，待审批"
    assert case_text.callback_text(_case(callback={"result": "satisfied", "result_label": "满意",
                                                   "at": "2026-11-24T09:30:00+08:00", "note": "很及时"})) == "满意（11-24 09:30）：很及时"
    assert case_text.check_text(_case(check_result="unfounded", checked_at="2026-11-24T09:30:00+08:00")) == "不属实（11-24 09:30）"
