"""Dash page layouts, one module per page; shared widgets in their own modules (live_status.py)."""
import dash


def register_pages() -> None:
    from layouts import cockpit, home, wall

    dash.register_page("home", path="/", title="城市运行管理平台", name="城市总览", layout=home.layout)
    dash.register_page("cockpit", path="/cockpit", title="领导驾驶舱 · 城市运行管理平台", name="领导驾驶舱",
                       layout=cockpit.layout)
    dash.register_page("wall", path="/wall", title="城市运行态势大屏 · 城市运行管理平台", name="大屏",
                       layout=wall.layout)
