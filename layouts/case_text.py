"""How a case reads on every page (console, unit workspace): its history, its marks (督办, 催办, 挂账…),
its stage clocks, its 催办/督办 records, its 协办 units. Plain data out (texts and a `kind` for the
colour), no components: each page draws them in its own style, and the tests read them directly."""
from __future__ import annotations

from datetime import datetime

from cases.queue import SHORT_LEVELS
from dispatch.center_rules import STAGE_LABELS, STAGES

# audit rows that intake writes (not lifecycle actions): their labels
INTAKE_ACTIONS = {"report": "上报", "merge": "重复合并"}
CHECK_WORDS = {"confirmed": "属实", "unfounded": "不属实"}
# the stages a case may skip: 核实 is asked for only when needed, and 立案 follows it as its own stage
_OPTIONAL_STAGES = ("check", "file")
_ENDED = ("rejected", "merged", "voided")
STAGE_STATES = {"overdue": "超期", "late_done": "超期完成", "warning": "预警", "paused": "暂停",
                "running": "进行中", "done": "按时", "pending": "未开始", "ended": "已终止"}


def history_action(row: dict) -> str:
    """The label of a history row's action (the service's `action_label`, or intake's own). An emergency response's
    information report (action `report` on a case already filed, so with a `from` state) is the service's 报送信息,
    not intake's 上报."""
    if row["action"] == "report" and row.get("from"):
        return row.get("action_label") or row["action"]
    return INTAKE_ACTIONS.get(row["action"], row.get("action_label") or row["action"])


def actor_label(actor: str) -> str:
    """`user:duty` → duty, `token:3` → 接口令牌 3, `system:…` → 系统, `sim:…` → 模拟数据."""
    kind, _, rest = (actor or "").partition(":")
    if kind == "user":
        return rest
    if kind == "sim":
        return "模拟数据"
    if kind == "system":
        return "系统"
    if kind == "token":
        return f"接口令牌 {rest}"
    return actor


def short(iso: str | None) -> str:
    """'11-26 17:30' from the service's ISO time (already in the city's offset); '—' for none."""
    return f"{iso[5:10]} {iso[11:16]}" if iso else "—"


def _passed(iso: str | None, now: datetime) -> bool:
    return bool(iso) and datetime.fromisoformat(iso) < now


def hours_word(case: dict) -> str:
    """工作时 on the working clock, 小时 on the calendar clock (how extensions and 挂账 count)."""
    return "小时" if case.get("clock") == "calendar" else "工作时"


def num(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


# ---- marks ---------------------------------------------------------------------------------------------
def supervision_mark(case: dict, now: datetime) -> dict | None:
    """The 督办 on the case: its level, its own deadline and whether that passed; None when not supervised."""
    if not case.get("supervised"):
        return None
    level = case.get("supervision_level")
    deadline = case.get("supervision_deadline")
    late = _passed(deadline, now) and case.get("state") not in ("closed",) + _ENDED
    name = f"{SHORT_LEVELS.get(level, '')}督办"
    latest = next((s for s in reversed(case.get("supervision") or []) if s.get("kind") == "supervise"), None)
    by = None
    if latest is not None:
        by = "系统自动" if latest.get("automatic") else actor_label(latest.get("actor") or "")
    return {"text": name, "level": level, "deadline": short(deadline) if deadline else None, "late": late,
            "by": by, "kind": "sup-late" if late else "sup"}


def marks(case: dict, now: datetime) -> list[dict]:
    """What a duty officer must see at a glance, most pressing first: `{text, kind, title}` with kind one
    of sup-late, sup, late, urge, pending, paused, bad, info."""
    out: list[dict] = []
    sup = supervision_mark(case, now)
    if sup is not None:
        text = sup["text"] + (f" · 时限 {sup['deadline']}" if sup["deadline"] else "") + (" · 已逾期" if sup["late"] else "")
        out.append({"text": text, "kind": sup["kind"],
                    "title": f"{sup['text']}（{sup['by'] or '人工'}）" + (f"，督办时限 {sup['deadline']}" if sup["deadline"] else "")})
    if case.get("overdue"):
        out.append({"text": "处置超期", "kind": "late", "title": "已超过处置时限"})
    urges = case.get("urge_count") or 0
    if urges:
        out.append({"text": f"催办 ×{urges}", "kind": "urge", "title": f"已催办 {urges} 次"})
    suspension = case.get("suspension") or {}
    if suspension.get("state") == "suspended":
        out.append({"text": "挂账中 · 计时暂停", "kind": "paused", "title": f"挂账自 {short(suspension.get('since'))}"})
    elif suspension.get("state") == "requested":
        out.append({"text": "挂账待审批", "kind": "pending", "title": f"单位于 {short(suspension.get('since'))} 申请挂账"})
    pending = case.get("extension_pending_hours")
    if pending:
        out.append({"text": f"延期待审批 {num(pending)} {hours_word(case)}", "kind": "pending",
                    "title": "单位申请延期，等待指挥中心审批"})
    callback = case.get("callback") or {}
    if callback:
        bad = callback.get("result") == "unsatisfied"
        out.append({"text": f"回访{callback.get('result_label') or ''}", "kind": "bad" if bad else "info",
                    "title": f"回访于 {short(callback.get('at'))}" + (f"：{callback['note']}" if callback.get("note") else "")})
    for key, word in (("rework_count", "返工"), ("reassign_count", "改派"), ("reopen_count", "重办"),
                      ("escalation_count", "升级")):
        n = case.get(key) or 0
        if n:
            out.append({"text": f"{word} ×{n}", "kind": "info", "title": f"已{word} {n} 次"})
    points = case.get("penalty_points") or 0
    if points:
        out.append({"text": f"扣 {num(points)} 分", "kind": "bad", "title": "责任单位因本案被扣的分数"})
    return out


# ---- stage clocks ----------------------------------------------------------------------------------------
def stage_rows(case: dict) -> list[dict]:
    """The stage clocks (受理 核实 立案 派遣 处置 核查 结案) as rows: the stages the case went through, as the
    service counted them, then the ones still ahead (`pending`); each with `label`, `start`, `deadline`,
    `done` (short times) and `state` (overdue, late_done, warning, paused, running, done, pending, ended)
    and its word `state_text`."""
    rows = []
    state = case.get("state")
    ended = state in _ENDED
    stages = case.get("stages") or []
    for i, st in enumerate(stages):
        done = st.get("done_at")
        if st.get("paused"):
            mark = "paused"
        elif ended and done and i == len(stages) - 1:
            mark = "ended"          # the stage the case ended in (作废, 不予立案)
        elif st.get("overdue"):
            mark = "late_done" if done else "overdue"
        elif done:
            mark = "done"
        elif st.get("warning"):
            mark = "warning"
        else:
            mark = "running"
        rows.append({"name": st["name"], "label": st.get("label") or STAGE_LABELS.get(st["name"], st["name"]),
                     "start": short(st.get("started_at")), "deadline": short(st.get("deadline")) if st.get("deadline") else "—",
                     "done": short(done) if done else "", "state": mark, "state_text": STAGE_STATES[mark]})
    if not ended and state != "closed":
        seen = [r["name"] for r in rows]
        last = max((STAGES.index(n) for n in seen), default=-1)
        for name in STAGES[last + 1:]:
            if name in _OPTIONAL_STAGES:
                continue
            rows.append({"name": name, "label": STAGE_LABELS[name], "start": "", "deadline": "", "done": "",
                         "state": "pending", "state_text": STAGE_STATES["pending"]})
    return rows


def handling_stage(case: dict) -> dict | None:
    """The unit's stage (处置, counted from 派遣) as stage_rows shapes it, or None before any dispatch."""
    return next((r for r in stage_rows(case) if r["name"] == "handle" and r["state"] != "pending"), None)


# ---- 催办 / 督办, 扣分, 协办, 挂账, 回访 -----------------------------------------------------------------------
def supervision_rows(case: dict, now: datetime) -> list[dict]:
    """Each 催办 and 督办, newest first: `at`, `what` (催办 / 市级督办), `by` (系统自动 or the person),
    `deadline` (a 督办's own), `late`, `note`."""
    out = []
    for s in reversed(case.get("supervision") or []):
        sup = s.get("kind") == "supervise"
        deadline = s.get("deadline")
        out.append({"at": short(s.get("at")),
                    "what": f"{SHORT_LEVELS.get(s.get('level'), '')}督办" if sup else "催办",
                    "kind": "sup" if sup else "urge",
                    "by": "系统自动" if s.get("automatic") else actor_label(s.get("actor") or ""),
                    "deadline": short(deadline) if sup and deadline else "",
                    "late": sup and _passed(deadline, now) and case.get("state") not in ("closed",) + _ENDED,
                    "note": s.get("note") or ""})
    return out


def penalty_rows(case: dict) -> list[dict]:
    return [{"at": short(p.get("at")), "unit": (p.get("unit") or {}).get("name") or "",
             "points": num(p.get("points") or 0), "why": p.get("reason") or p.get("rule_label") or ""}
            for p in case.get("penalties") or []]


def assist_rows(case: dict) -> list[dict]:
    """协办 units and how far each got: `unit`, `state` (waiting | signed | reported), `text`, `note`."""
    out = []
    for a in case.get("assists") or []:
        if a.get("reported_at"):
            state, text = "reported", f"已反馈 {short(a['reported_at'])}"
        elif a.get("signed_at"):
            state, text = "signed", f"已签收 {short(a['signed_at'])}，待反馈"
        else:
            state, text = "waiting", "待签收"
        out.append({"unit": (a.get("unit") or {}).get("name") or "", "state": state, "text": text,
                    "note": a.get("note") or ""})
    return out


def suspension_text(case: dict) -> str | None:
    """挂账: the unit's pending request, or the stopped clock with the handling time it had left."""
    s = case.get("suspension") or {}
    if s.get("state") == "requested":
        return f"单位于 {short(s.get('since'))} 申请挂账，待审批"
    if s.get("state") == "suspended":
        left = s.get("remaining_hours")
        rest = ""
        if left is not None:
            word = hours_word(case)
            rest = f"，剩余处置时间 {num(round(left, 1))} {word}" if left > 0 else f"，挂账时已超期 {num(round(-left, 1))} {word}"
        return f"自 {short(s.get('since'))} 挂账，处置计时暂停{rest}"
    return None


def callback_text(case: dict) -> str | None:
    c = case.get("callback")
    if not c:
        return None
    return f"{c.get('result_label') or c.get('result')}（{short(c.get('at'))}）" + (f"：{c['note']}" if c.get("note") else "")


def check_text(case: dict) -> str | None:
    """The 核实 answer of the grid member, once given."""
    result = case.get("check_result")
    if not result:
        return None
    return f"{CHECK_WORDS.get(result, result)}（{short(case.get('checked_at'))}）"
