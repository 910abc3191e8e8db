"""Dash page layouts, one module per page; shared widgets in their own modules (live_status.py)."""
import functools

import dash
from dash import html

from auth import current_principal
from dispatch import access


def guarded(path: str, layout):
    """The layout, or a refusal when the signed-in role may not open the page. The Flask guard checks
    the first load; this checks Dash's in-page navigation, which fetches layouts through a callback."""

    @functools.wraps(layout)
    def render(**query):
        principal = current_principal()
        if principal is None:
            return html.Div("登录已失效，请重新登录", className="ucc-forbidden")
        if not access.can_open(principal.role, path):
            return html.Div(f"当前角色无权打开「{access.page_for(path).label}」", className="ucc-forbidden")
        return layout(**query)

    return render


def register_pages() -> None:
    from layouts import cockpit, home, wall

    dash.register_page("home", path="/", title="城市运行管理平台", name="城市总览",
                       layout=guarded("/", home.layout))
    dash.register_page("cockpit", path="/cockpit", title="领导驾驶舱 · 城市运行管理平台", name="领导驾驶舱",
                       layout=guarded("/cockpit", cockpit.layout))
    dash.register_page("wall", path="/wall", title="城市运行态势大屏 · 城市运行管理平台", name="大屏",
                       layout=guarded("/wall", wall.layout))
    from layouts import console

    dash.register_page("console", path="/console", title="指挥调度台 · 城市运行管理平台", name="指挥调度台",
                       layout=guarded("/console", console.layout))
    from layouts import report, unit

    dash.register_page("unit", path="/unit", title="处置工作台 · 城市运行管理平台", name="处置工作台",
                       layout=guarded("/unit", unit.layout))
    dash.register_page("report", path="/report", title="上报 · 城市运行管理平台", name="上报",
                       layout=guarded("/report", report.layout))
