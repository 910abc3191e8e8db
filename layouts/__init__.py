"""Dash page layouts, one module per page; shared widgets in their own modules (live_status.py)."""
import functools

import dash
from dash import html

from web.principal import current_principal
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


APP_TITLE = "城市运行管理平台"
# The module of each page of dispatch/access.PAGES (which has its path and menu label), and the
# browser tab's name where it differs from the menu's.
PAGE_MODULES = {"/": "home", "/cockpit": "cockpit", "/wall": "wall", "/console": "console", "/unit": "unit",
                "/report": "report", "/devices": "devices",
                "/emergency": "emergency"}
TAB_NAMES = {"/wall": "城市运行态势大屏"}


def register_pages() -> None:
    import importlib

    for page in access.PAGES:
        name = PAGE_MODULES[page.path]
        module = importlib.import_module(f"layouts.{name}")
        title = APP_TITLE if page.path == "/" else f"{TAB_NAMES.get(page.path, page.label)} · {APP_TITLE}"
        dash.register_page(name, path=page.path, title=title, name=page.label,
                           layout=guarded(page.path, module.layout))
