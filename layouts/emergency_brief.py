"""A shared widget: the active emergency responses in one line each (level, event, plan, the owed report counting down,
the units that have not acknowledged), linking to /emergency — the warning the console and the cockpit show."""
from __future__ import annotations

from datetime import datetime

from dash import html

from web.services import services


def _minutes(iso: str, now: datetime) -> float:
    return (datetime.fromisoformat(iso) - now).total_seconds() / 60


def _span(minutes: float) -> str:
    m = int(abs(minutes))
    return f"{m // 60}小时{m % 60:02d}分" if m >= 60 else f"{m}分钟"


def report_text(owed: dict | None, now: datetime) -> tuple[str, bool]:
    """What the owed information report says now, and whether it is late."""
    if owed is None:
        return "无待报信息", False
    left = _minutes(owed["due_at"], now)
    if left < 0:
        return f"{owed['kind_label']}已超时{_span(left)}", True
    return f"{owed['kind_label']}剩余{_span(left)}", False


def items(active: list[dict], now: datetime, prefix: str) -> list:
    """One row per active response, late ones marked (`prefix`: the page's class prefix)."""
    rows = []
    for a in active:
        text, late = report_text(a["next_report"], now)
        waiting = a["unacknowledged"]
        rows.append(html.A(href=f"/emergency?case={a['case_id']}", className=f"{prefix}-emg-item"
                           + (" is-late" if late or a["overdue_tasks"] else ""), children=[
            html.Span(a["level_label"], className=f"{prefix}-emg-level lv-{a['level']}"),
            html.Span(f"#{a['case_id']} {a['category']}", className=f"{prefix}-emg-what"),
            html.Span(a["response_name"] or "", className=f"{prefix}-emg-resp"),
            html.Span(text, className=f"{prefix}-emg-report" + (" is-late" if late else "")),
            html.Span(f"{len(waiting)} 个单位未签收" if waiting else "各单位均已签收",
                      className=f"{prefix}-emg-ack" + (" is-late" if a["overdue_tasks"] else "")),
        ]))
    return rows


def panel(principal, prefix: str) -> tuple[bool, list]:
    """(hidden, children) of a page's emergency line for `principal`: hidden when no response is active."""
    app = services()
    active = app.responses.active(principal) if app.responses is not None else []
    if not active:
        return True, []
    return False, [html.Span("应急响应", className=f"{prefix}-emg-title"), *items(active, app.cases.clock(), prefix)]
