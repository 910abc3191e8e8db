"""The unit handler's workspace (/unit): the unit's task list with working-time countdowns, and one case to act on."""
from __future__ import annotations

from datetime import datetime, timezone

from dash import dcc, html
from flask import current_app

from web.principal import current_display_name, current_principal
from cases.photos import MAX_BYTES, MAX_MB
from dispatch.lifecycle import LEVEL_LABELS
from layouts import case_text
from dispatch.limits import is_int64
from dispatch.working_time import clock_of
from dispatch.city_time import local_iso
from data import files
from layouts.case_text import actor_label, history_action

# The list's filters: which states each shows (the unit's own cases; the service scopes them).
FILTERS = {
    "todo": ("待办", "dispatched,signed"),
    "done": ("已反馈", "resolved,verified,closed"),
    "all": ("全部", "dispatched,signed,resolved,verified,closed,returned,rework,suspended,voided"),
}
KIND_LABELS = {"component": "部件", "event": "事件", "grid": "网格事件", "emergency": "应急"}
SEVERITY_LABELS = {1: "Ⅰ级 特别重大", 2: "Ⅱ级 重大", 3: "Ⅲ级 较大", 4: "Ⅳ级 一般"}
SOURCE_LABELS = {"hotline": "12345热线", "patrol": "网格巡查", "citizen": "市民随手拍", "iot": "物联感知",
                 "video": "视频智能识别", "api": "系统接口", "open311": "Open311"}
SLA_LABELS = {"normal": "正常", "warning": "预警", "overdue": "超期", "paused": "暂停", "done": "已反馈"}
PHOTO_ACCEPT = "image/jpeg,image/png,image/webp"
# history rows the lifecycle has no action label for (intake writes them)


def layout(case=None, **_query):
    principal = current_principal()
    live = current_app.extensions.get("ucc_live")
    try:
        selected = int(case) if case else None
    except ValueError:
        selected = None
    if selected is not None and not (is_int64(selected) and selected > 0):
        selected = None  # ?case= past any id: show the list, not a case that cannot exist
    config = {"unit": principal.unit_code if principal else None, "since": live.head() if live is not None else None,
              "live": live is not None, "max_bytes": MAX_BYTES}
    return html.Div(className="un", children=[
        dcc.Store(id="un-config", data=config),
        dcc.Store(id="un-selected", data=selected),
        dcc.Store(id="un-case"),              # {id, version} of the case on screen: actions send its version
        dcc.Store(id="un-refresh", data=0),   # bumped after an action: list and case are read again
        dcc.Store(id="un-live"),              # set by assets/unit.js when the live stream brings news
        dcc.Store(id="un-started"),
        dcc.Interval(id="un-tick", interval=30_000),  # the countdowns move on
        html.Div(className="un-bar", children=[
            html.Div(className="un-heading", children=[
                html.H2("处置工作台", className="un-title"),
                html.Span(current_display_name(), className="un-who"),
            ]),
            html.Div(id="un-counts", className="un-counts"),
            html.Div(id="un-conn", className="un-conn", children="实时推送：正在连接…"),
        ]),
        html.Details(id="un-assess", className="un-assess", children=[
            html.Summary(id="un-assess-summary", className="un-assess-summary", children="本月考核：加载中…"),
            html.Div(id="un-assess-body", className="un-assess-body"),
        ]),
        html.Section(id="un-emg", className="un-emg", hidden=True, children=[  # 应急联动任务 (callbacks/unit.py)
            html.H3("应急联动任务", className="un-emg-title"),
            html.Div(id="un-emg-list", className="un-emg-list"),
            html.Div(id="un-emg-msg", className="un-msg", role="alert"),
        ]),
        html.Div(id="un-toast", className="un-toast", role="status"),
        html.Div(className="un-body", children=[
            html.Section(className="un-tasks", children=[
                dcc.RadioItems(id="un-filter", value="todo", className="un-filter", inputClassName="un-filter-input",
                               labelClassName="un-filter-label",
                               options=[{"label": label, "value": key} for key, (label, _s) in FILTERS.items()]),
                html.Div(id="un-list", className="un-list"),
            ]),
            html.Section(className="un-detail", children=[
                html.Div(id="un-case-view", className="un-case-view",
                         children=html.Div("从左侧任务列表选择一个案件", className="un-placeholder")),
                action_panel(),
            ]),
        ]),
    ])


def action_panel() -> html.Div:
    """Every control the workspace may offer; callbacks/unit.py shows only those the service allows now
    (签收, 处置反馈, 退回, 申请延期, 申请挂账 for the lead unit; 签收 and 反馈 of its part for a 协办 unit)."""
    return html.Div(id="un-actions", className="un-actions", style={"display": "none"}, children=[
        html.Div(id="un-msg", className="un-msg", role="alert"),
        html.Div(id="un-none", className="un-hint un-none", hidden=True),
        html.Div(id="un-sign-row", className="un-act-row", children=[
            html.Button("签收", id="un-sign", className="un-btn un-btn--primary", n_clicks=0),
            html.Span(id="un-sign-hint", className="un-hint"),
        ]),
        html.Fieldset(id="un-resolve-box", className="un-box", children=[
            html.Legend("处置反馈", id="un-resolve-legend"),
            dcc.Textarea(id="un-resolve-note", className="un-text", maxLength=2000,
                         placeholder="处置情况说明（必填），如：已补装井盖，现场恢复通行"),
            html.Div(id="un-upload-row", className="un-upload-row", children=[
                dcc.Upload(id="un-photo", className="ucc-photo-upload un-upload", accept=PHOTO_ACCEPT,
                           max_size=MAX_BYTES, children=html.Div(
                               ["＋ 添加处置照片", html.Small(f"JPEG、PNG、WebP，不超过 {MAX_MB} MB")],
                               className="un-upload-face")),
                html.Img(id="un-photo-preview", className="un-photo-preview", alt="待上传的处置照片",
                         style={"display": "none"}),
            ]),
            html.Div(id="un-photo-msg", className="ucc-photo-msg"),
            html.Button("提交处置反馈", id="un-resolve", className="un-btn un-btn--primary", n_clicks=0),
        ]),
        html.Fieldset(id="un-ask-box", className="un-box", children=[
            html.Legend("退回 / 申请延期 / 申请挂账"),
            dcc.Textarea(id="un-reason", className="un-text", maxLength=2000,
                         placeholder="理由（必填）：退回写明不属本单位职责的依据；延期、挂账写明原因"),
            html.Div(className="un-act-row", children=[
                dcc.Input(id="un-hours", type="number", min=0.5, max=750, step=0.5, className="un-hours",
                          placeholder="延期工作时"),
                html.Button("申请延期", id="un-extend", className="un-btn", n_clicks=0),
            ]),
            html.Div(className="un-act-row", children=[
                html.Button("申请挂账", id="un-suspend", className="un-btn", n_clicks=0,
                            title="需等待外部条件（如施工季节、产权确认）时申请挂账：批准后处置计时暂停"),
                html.Button("退回", id="un-return", className="un-btn un-btn--warn", n_clicks=0),
            ]),
            html.Div(id="un-extend-hint", className="un-hint"),
        ]),
    ])


# ---- shaping (used by callbacks/unit.py) -------------------------------------------------------------
def _parse(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def _hm(hours: float) -> str:
    minutes = int(round(abs(hours) * 60))
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h} 小时 {m} 分"
    return f"{h} 小时" if h else f"{m} 分钟"


def remaining_text(case: dict, now: datetime) -> str:
    """'剩余 3 小时 20 分（工作时间）' or '超期 …', counted as the case's deadline is: working time
    on the calendar for working-clock categories, calendar time for emergencies and the
    calendar-clock categories."""
    deadline = _parse(case.get("deadline"))
    if deadline is None:
        return "无处置时限"
    unit = case.get("time_unit") or "working_hours"
    cal = files.calendar()
    if clock_of(unit) == "calendar":
        left = (deadline - now).total_seconds() / 3600
        # an urgent category's hours run through nights and holidays: say so (emergencies need no hint)
        suffix = "" if unit == "minutes" else "（自然时间）"
    elif unit == "working_days":
        days = cal.working_time_between(now, deadline, "working_days")
        if abs(days) >= 1:
            return f"剩余 {days:.1f} 工作日" if now < deadline else f"超期 {-days:.1f} 工作日"
        left = cal.working_time_between(now, deadline, "working_hours")
        suffix = "（工作时间）"
    else:
        left = cal.working_time_between(now, deadline, "working_hours")
        suffix = "（工作时间）"
    if now < deadline:
        return f"剩余 {_hm(max(left, 0.0))}{suffix}"
    # past the deadline outside office hours no working time has run yet: overdue all the same
    return f"超期 {_hm(left)}{suffix}" if abs(left) * 60 >= 1 else "已超期"


def short_time(iso: str | None) -> str:
    """'11-26 17:30' in the city's time (the service gives ISO 8601 with +08:00)."""
    return f"{iso[5:10]} {iso[11:16]}" if iso else "—"


def sla_state(case: dict) -> str:
    """normal | warning | overdue on the handling clock; paused (挂账); done (fed back, or ended)."""
    if case["state"] in ("resolved", "verified", "closed", "voided"):
        return "done"
    if case["state"] == "suspended":
        return "paused"
    return (case.get("sla") or {}).get("state") or "normal"


def _done_text(case: dict) -> str:
    if case["state"] == "voided":
        return "已作废 " + short_time(case.get("voided_at"))
    return "已反馈 " + short_time(case.get("resolved_at"))


def _place(case: dict) -> str:
    names = {a["level"]: a["name"] for a in case.get("chain") or []}
    return " · ".join(names[lvl] for lvl in (3, 4, 5) if lvl in names)


def sort_tasks(items: list[dict]) -> list[dict]:
    """Most urgent first (overdue, then warning or emergency), the newest dispatch first within each;
    what the unit has finished goes last."""
    def key(c):
        state = sla_state(c)
        rank = {"overdue": 0, "warning": 1, "normal": 2, "paused": 2, "done": 3}[state]
        if rank == 2 and c.get("kind") == "emergency":
            rank = 1
        stamp = _parse(c.get("dispatched_at") or c.get("reported_at"))
        return rank, -(stamp.timestamp() if stamp else 0), -c["id"]

    return sorted(items, key=key)


def assisting(case: dict, my_unit: str | None) -> bool:
    """True when `my_unit` helps on the case (协办) rather than leading it."""
    return bool(my_unit) and (case.get("unit") or {}).get("code") != my_unit


def _badges(case: dict, now: datetime, my_unit: str | None) -> list:
    """督办 (its level; red once its own deadline passed), 催办 ×N, 协办, 挂账 on a list item or the case head."""
    out = []
    sup = case_text.supervision_mark(case, now)
    if sup is not None:
        title = f"{sup['text']}，督办时限 {sup['deadline']}" if sup["deadline"] else sup["text"]
        out.append(html.Span(sup["text"] + ("逾期" if sup["late"] else ""), title=title,
                             className="un-badge un-badge--sup" + (" un-badge--late" if sup["late"] else "")))
    if case.get("urge_count"):
        out.append(html.Span(f"催办×{case['urge_count']}", className="un-badge un-badge--urge"))
    if assisting(case, my_unit):
        out.append(html.Span("协办", className="un-badge un-badge--assist"))
    suspension = (case.get("suspension") or {}).get("state")
    if suspension == "requested":
        out.append(html.Span("挂账待批", className="un-badge un-badge--pending"))
    return out


def task_item(case: dict, now: datetime, selected: bool, new: bool, my_unit: str | None = None) -> html.Button:
    state = sla_state(case)
    frac = min(1.0, max(0.0, (case.get("sla") or {}).get("elapsed_fraction") or 0.0))
    sla_line = (_done_text(case) if state == "done" else "挂账中，计时暂停" if state == "paused"
                else remaining_text(case, now))
    classes = ["un-item", f"un-item--{state}"]
    if selected:
        classes.append("un-item--on")
    return html.Button(id={"type": "un-item", "case": case["id"]}, className=" ".join(classes), n_clicks=0,
                       children=[
        html.Div(className="un-item-top", children=[
            html.Span(f"#{case['id']}", className="un-item-id"),
            html.Span(case["category"]["name"], className="un-item-cat"),
            html.Span("新", className="un-badge un-badge--new") if new else None,
            *_badges(case, now, my_unit),
            html.Span(case["state_label"], className=f"un-chip un-chip--{case['state']}"),
        ]),
        html.Div(_place(case), className="un-item-place"),
        html.Div(className="un-item-sla", children=[
            html.Span(sla_line, className=f"un-sla-text un-sla--{state}"),
            html.Span(f"截止 {short_time(case.get('deadline'))}", className="un-item-deadline"),
        ]),
        html.Div(className="un-meter", children=html.Div(className=f"un-meter-fill un-sla-bg--{state}",
                                                         style={"width": f"{frac * 100:.0f}%"})),
    ])


def task_list(items: list[dict], now: datetime, selected: int | None, new_ids: set[int],
              my_unit: str | None = None) -> list:
    if not items:
        return [html.Div("暂无任务", className="un-placeholder")]
    return [task_item(c, now, c["id"] == selected, c["id"] in new_ids, my_unit) for c in sort_tasks(items)]


def counts(todo: list[dict], my_unit: str | None = None) -> list:
    """The unit's figures: its own tasks to sign and in hand, those in their last fifth and late, and those
    under 督办 (the 协办 tasks count apart: the lead's clock is not theirs to keep)."""
    lead = [c for c in todo if not assisting(c, my_unit)]
    figures = [
        ("待签收", sum(c["state"] == "dispatched" for c in lead), "un-count--new"),
        ("处置中", sum(c["state"] == "signed" for c in lead), ""),
        ("预警", sum(sla_state(c) == "warning" for c in lead), "un-count--warning"),
        ("超期", sum(sla_state(c) == "overdue" for c in lead), "un-count--overdue"),
        ("督办", sum(bool(c.get("supervised")) for c in lead), "un-count--sup"),
    ]
    helping = len(todo) - len(lead)
    if helping:
        figures.append(("协办", helping, ""))
    return [html.Div(className=f"un-count {cls}", children=[html.Span(str(n), className="un-count-n"),
                                                              html.Span(label, className="un-count-label")])
            for label, n, cls in figures]


def _fact(label: str, value) -> list:
    return [html.Dt(label), html.Dd(value if value not in (None, "") else "—")]


def handling_view(case: dict, now: datetime):
    """The unit's stage clock (处置, counted from 派遣): start, limit, done and its mark; 挂账 and the
    督办's own deadline when there are any."""
    row = case_text.handling_stage(case)
    lines = []
    if row is not None:
        lines.append(html.Div(className=f"un-stage un-stage--{row['state']}", children=[
            html.Span("处置环节", className="un-stage-name"),
            html.Span(row["state_text"], className="un-stage-tag"),
            html.Span(f"自派遣 {row['start']} 起", className="un-stage-part"),
            html.Span(f"时限 {row['deadline']}", className="un-stage-part"),
            html.Span(f"反馈 {row['done']}" if row["done"] else "", className="un-stage-part"),
        ]))
    sup = case_text.supervision_mark(case, now)
    if sup is not None:
        who = f"（{sup['by']}）" if sup["by"] else ""
        text = f"{sup['text']}{who}" + (f"：督办时限 {sup['deadline']}" if sup["deadline"] else "")
        lines.append(html.Div(text + ("，已逾期" if sup["late"] else ""), id="un-sup-line",
                              className="un-alert un-alert--sup" + (" un-alert--late" if sup["late"] else "")))
    urges = [r for r in case_text.supervision_rows(case, now) if r["kind"] == "urge"]
    if urges:
        last = urges[0]
        lines.append(html.Div(f"已催办 {len(urges)} 次，最近 {last['at']}（{last['by']}）" +
                              (f"：{last['note']}" if last["note"] else ""), className="un-alert un-alert--urge"))
    suspension = case_text.suspension_text(case)
    if suspension:
        lines.append(html.Div(suspension, className="un-alert un-alert--paused"))
    return html.Div(lines, id="un-handling", className="un-handling") if lines else None


def assist_view(case: dict, my_unit: str | None):
    """协办: the units helping on the case with their state; for a 协办 unit, whom it helps."""
    rows = case_text.assist_rows(case)
    helping = assisting(case, my_unit)
    if not rows and not helping:
        return None
    head = "协办单位" if not helping else f"本单位为协办单位 · 主办：{(case.get('unit') or {}).get('name') or '—'}"
    return html.Div(id="un-assists", className="un-assists", children=[
        html.H4(head),
        html.Ul([html.Li(className=f"un-assist un-assist--{r['state']}", children=[
            html.Span(r["unit"], className="un-assist-unit"), html.Span(r["text"], className="un-assist-state"),
            html.Div(r["note"], className="un-assist-note") if r["note"] else None]) for r in rows]),
    ])


def _case_left(case: dict, state: str, now: datetime) -> str:
    if state == "paused":
        return "挂账中，处置计时暂停"
    if state != "done":
        return remaining_text(case, now)
    return {"voided": "已作废", "closed": "已结案", "verified": "核查通过，等待结案"}.get(case["state"], "已反馈，等待核查")


def case_view(case: dict, photos: list[dict], now: datetime, my_unit: str | None = None, iot=None) -> html.Div:
    """One case: header, countdown, what the unit does now, facts, the device and its chart when an alarm
    opened it (`iot`: layouts.device_chart.case_devices_view), photos, history."""
    state = sla_state(case)
    frac = min(1.0, max(0.0, (case.get("sla") or {}).get("elapsed_fraction") or 0.0))
    chain = " · ".join(a["name"] for a in reversed(case.get("chain") or []) if a["level"] >= 2)
    unit = case.get("unit") or {}
    pending = case.get("extension_pending_hours")
    facts = (
        _fact("位置", chain)
        + _fact("坐标", f"{case['lon']:.6f}, {case['lat']:.6f}")
        + _fact("类别", f"{KIND_LABELS.get(case['kind'], case['kind'])} · {case['category'].get('major_class') or ''}")
        + _fact("来源", SOURCE_LABELS.get(case["source"], case["source"]))
        + _fact("处置单位", unit.get("name"))
        + _fact("处置层级", LEVEL_LABELS.get(case.get("handling_level")))
        + _fact("上报时间", short_time(case.get("reported_at")))
        + _fact("派遣时间", short_time(case.get("dispatched_at")))
        + _fact("处置时限", short_time(case.get("deadline")))
        + _fact("上报人数", case.get("reporter_count"))
    )
    if pending:
        facts += _fact("延期申请", f"{pending:g} {case_text.hours_word(case)}，待审批")
    if case.get("external_ref"):
        facts += _fact("热线工单号", case["external_ref"])
    if case.get("callback"):
        facts += _fact("回访结果", case_text.callback_text(case))
    if case.get("penalty_points"):
        facts += _fact("扣分", f"{case_text.num(case['penalty_points'])} 分")
    if case.get("severity"):
        facts += _fact("事件等级", SEVERITY_LABELS.get(case["severity"]))
    history = list(reversed(case.get("history") or []))
    return html.Div(className="un-case", **{"data-case": str(case["id"]), "data-version": str(case["version"])},
                    children=[
        html.Div(className="un-case-head", children=[
            html.Span(f"#{case['id']}", className="un-case-id"),
            html.H3(case["category"]["name"], className="un-case-title"),
            html.Span(case["state_label"], id="un-case-state", className=f"un-chip un-chip--{case['state']}"),
            *_badges(case, now, my_unit),
            html.Span(f"版本 {case['version']}", className="un-case-version"),
        ]),
        html.Div(className=f"un-case-sla un-sla--{state}", children=[
            html.Span(SLA_LABELS.get(state, "已反馈"), className=f"un-sla-tag un-sla-bg--{state}"),
            html.Span(_case_left(case, state, now), className="un-case-left"),
            html.Div(className="un-meter", children=html.Div(className=f"un-meter-fill un-sla-bg--{state}",
                                                             style={"width": f"{frac * 100:.0f}%"})),
        ]),
        handling_view(case, now),
        html.P(case.get("description") or "（无描述）", className="un-desc"),
        html.Dl(facts, className="un-facts"),
        assist_view(case, my_unit),
        iot,
        html.Div(className="un-photos", children=[
            html.H4(f"照片（{len(photos)}）"),
            html.Div(className="un-photo-strip", children=[
                html.A(href=p["url"], target="_blank", className=f"un-thumb un-thumb--{p['kind']}", children=[
                    html.Img(src=p["url"], alt=p["kind_label"]),
                    html.Span(f"{p['kind_label']} · {short_time(p['uploaded_at'])}"),
                ]) for p in photos
            ] or [html.Span("暂无照片", className="un-hint")]),
        ]),
        html.Div(className="un-history", children=[
            html.H4("处理记录"),
            html.Ol([html.Li(className="un-hist", children=[
                html.Span(short_time(h["at"]), className="un-hist-at"),
                html.Span(history_action(h), className="un-hist-action"),
                html.Span(h.get("note") or "", className="un-hist-note"),
                html.Span(actor_label(h["actor"]), className="un-hist-actor"),
            ]) for h in history]),
        ]),
    ])


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---- the unit's own assessment (部门评价) this month: figures.service.unit_assessment ------------------------
def _pct(v) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _day(iso: str) -> str:
    return f"{int(iso[5:7])}月{int(iso[8:10])}日"


def assessment_summary(card: dict | None) -> list | str:
    """The one line the workspace shows of its unit's month: score, grade, rank of the ranked units, points."""
    if card is None:
        return "本账号未绑定处置单位，没有部门评价"
    p = card["period"]
    when = f"本月考核（{_day(p['start'])}—{_day(p['end'])}）"
    item = card["item"]
    if item is None or item["score"] is None:
        return [html.Span(when, className="un-as-when"), html.Span(f"{card['name']}：本月尚无应处置案件，暂不评分",
                                                                   className="un-as-none")]
    points = item["penalty_points"]
    return [html.Span(when, className="un-as-when"),
            html.Span(["综合指标值 ", html.B(f"{item['score']:.1f}", id="un-as-score", className="un-as-score")]),
            html.Span(f"{item['grade']}级", className=f"un-as-grade un-as-grade-{item['grade']}"),
            html.Span(f"第 {item['rank']} / {card['of']} 名", id="un-as-rank", className="un-as-rank"),
            html.Span(f"扣分 {points:g}", className="un-as-pen" + (" is-bad" if points else ""))]


ASSESS_FIGURES = (("due_handling", "应处置"), ("handled", "已处置"), ("handled_on_time", "按时处置"), ("reworked", "返工"),
                  ("extended", "延期"), ("returned", "退回"))


def assessment_body(card: dict | None) -> list | str:
    """The unit's figures and rates, then each penalty point with its case (opened here, in the workspace)."""
    if card is None:
        return ""
    item = card["item"] or {}
    figures = [html.Div(className="un-as-fig", children=[html.Span(f"{item.get(k) or 0:,}", className="un-as-fig-n",
                                                                   id=f"un-as-{k}"),
                                                         html.Span(label, className="un-as-fig-label")])
               for k, label in ASSESS_FIGURES]
    figures += [html.Div(className="un-as-fig", children=[html.Span(_pct(item.get(k)), className="un-as-fig-n"),
                                                          html.Span(label, className="un-as-fig-label")])
                for k, label in (("handling_rate", "处置率"), ("on_time_handling_rate", "按时处置率"))]
    rows = card["penalties"]
    if rows:
        table = html.Table(className="un-as-pen-table", id="un-as-pen-table", children=[
            html.Thead(html.Tr([html.Th("时间"), html.Th("案件"), html.Th("扣分"), html.Th("原因")])),
            html.Tbody([html.Tr([
                html.Td(short_time(local_iso(datetime.fromisoformat(r["at"]))), className="un-as-when"),
                html.Td(html.A(f"#{r['case_id']}", href=f"/unit?case={r['case_id']}", className="un-as-case")),
                html.Td(f"−{r['points']:g}", className="un-as-minus"),
                html.Td(r["reason"] or r["rule"], className="un-as-reason")]) for r in rows]),
        ])
    else:
        table = html.Div("本月没有扣分", className="un-hint")
    return [html.Div(figures, className="un-as-figs"),
            html.H4(f"扣分明细（最近 {len(rows)} 条，本月共扣 {item.get('penalty_points') or 0:g} 分）", className="un-as-h"),
            table]


def emergency_tasks(items: list[dict]) -> list:
    """The unit's tasks in active emergency responses: each with its event, level, plan, role and the time left to
    acknowledge (red when past), and a 签收 button while it is not acknowledged."""
    rows = []
    for t in items:
        if t["acknowledged_at"]:
            state = html.Span(f"已签收 {short_time(t['acknowledged_at'])}", className="un-emg-done")
        else:
            left = t["minutes_left"]
            when = f"已超时 {_hm(-left / 60)}" if left < 0 else f"剩余 {_hm(left / 60)}"
            state = html.Button(f"签收（{when}）", id={"type": "un-ack", "case": t["case_id"]}, n_clicks=0,
                                className="un-btn un-btn--primary" + (" is-late" if left < 0 else ""))
        rows.append(html.Div(className="un-emg-item" + (" is-late" if t["overdue"] else ""), children=[
            html.Span(t["level_label"], className=f"un-emg-level lv-{t['level']}"),
            html.Span(f"#{t['case_id']} {t['category']}", className="un-emg-what"),
            html.Span(f"《{t['plan']}》{'牵头' if t['role'] == 'lead' else '联动'}", className="un-emg-plan"),
            html.A("查看", href=f"/unit?case={t['case_id']}", className="un-emg-link"),
            state,
        ]))
    return rows
