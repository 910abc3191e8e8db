"""The frame every page sits in: header with the product name and the page container."""
import dash
from dash import html


def app_shell():
    return html.Div(className="ucc-shell", children=[
        html.Header(className="ucc-header", children=[
            html.Div("城市运行管理平台", className="ucc-title"),
            html.Div("常州市 · 城市运行管理服务平台", className="ucc-subtitle"),
        ]),
        html.Main(dash.page_container, className="ucc-main"),
    ])
