"""The frame every page sits in: header with the product name, the role's pages, who is signed in."""
import dash
from dash import html
from flask import has_request_context
from flask_wtf.csrf import generate_csrf

from web.principal import current_display_name, current_principal
from dispatch import access
from dispatch.lifecycle import ROLE_LABELS


def _user_bar():
    principal = current_principal()
    if principal is None:
        return html.Div(className="ucc-userbar")
    return html.Div(className="ucc-userbar", children=[
        html.Nav(className="ucc-nav", children=[
            # plain links: each screen is a full page load with only the scripts it uses (layouts/scripts.py)
            html.A(p.label, href=p.path, className="ucc-nav-link") for p in access.pages_of(principal.role)
        ]),
        html.Span(f"{current_display_name()} · {ROLE_LABELS.get(principal.role, principal.role)}",
                  className="ucc-user", id="ucc-user"),
        # a real form POST: /logout is CSRF-protected like every other form
        html.Form(method="POST", action="/logout", className="ucc-logout", children=[
            html.Button("退出", type="submit", className="ucc-logout-button", id="ucc-logout"),
            dash.dcc.Input(type="hidden", name="csrf_token", value=generate_csrf() if has_request_context() else ""),
        ]),
    ])


def app_shell():
    return html.Div(className="ucc-shell", children=[
        html.Header(className="ucc-header", children=[
            html.Div("城市运行管理平台", className="ucc-title"),
            html.Div("常州市 · 城市运行管理服务平台", className="ucc-subtitle"),
            _user_bar(),
        ]),
        html.Main(dash.page_container, className="ucc-main"),
    ])
