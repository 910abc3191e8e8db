"""Dash page layouts, one module per page; shared widgets in layouts/widgets.py."""
import dash


def register_pages() -> None:
    from layouts import home

    dash.register_page("home", path="/", title="城市运行管理平台", name="城市总览", layout=home.layout)
