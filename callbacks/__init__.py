"""Thin Dash callbacks: read inputs, call a service, shape the outputs. Imported by app.build_dash.

Also the registry of which page each callback belongs to: every module here holds one page's
callbacks (PAGE_OF_MODULE), and each callback registered while its module is imported is that
page's (PAGE_OF_OUTPUT, keyed by Dash's output id, which every callback request names). The guard
(callbacks/guard.py) lets a session call a callback only when its role may open the page, so a
module missing from the table has no callbacks at all rather than unguarded ones.
"""
from __future__ import annotations

import importlib

from dash import _callback as _dash_callbacks

import layouts

# The page (a path of dispatch/access.PAGES) whose callbacks each module holds.
PAGE_OF_MODULE = {
    "maps": "/",
    "wall": "/wall",
    "cockpit": "/cockpit",
    "cockpit_foresight": "/cockpit",
    "console": "/console",
    "unit": "/unit",
    "report": "/report",
    "devices": "/devices",
    "emergency": "/emergency",
}

# The page layouts first: callbacks the shared widgets register (layouts/live_status.py) belong to
# every page, and must not be taken for the first page module that happens to import them.
for _name in layouts.PAGE_MODULES.values():
    importlib.import_module(f"layouts.{_name}")
SHARED_OUTPUTS: frozenset[str] = frozenset(_dash_callbacks.GLOBAL_CALLBACK_MAP)

PAGE_OF_OUTPUT: dict[str, str] = {}
for _name, _page in PAGE_OF_MODULE.items():
    _before = set(_dash_callbacks.GLOBAL_CALLBACK_MAP)
    importlib.import_module(f"callbacks.{_name}")
    for _key in set(_dash_callbacks.GLOBAL_CALLBACK_MAP) - _before:
        PAGE_OF_OUTPUT[_key] = _page

# Dash hands its global callbacks to the first app that serves a request and forgets them; every
# app built in this process (tests build many) gets its own copy from here instead (attach).
_CALLBACK_MAP = dict(_dash_callbacks.GLOBAL_CALLBACK_MAP)
_CALLBACK_LIST = list(_dash_callbacks.GLOBAL_CALLBACK_LIST)
_INLINE_SCRIPTS = list(_dash_callbacks.GLOBAL_INLINE_SCRIPTS)
_dash_callbacks.GLOBAL_CALLBACK_MAP.clear()
_dash_callbacks.GLOBAL_CALLBACK_LIST.clear()
_dash_callbacks.GLOBAL_INLINE_SCRIPTS.clear()


def attach(app) -> None:
    """Give a Dash app every callback of this package and of the shared widgets."""
    app.callback_map.update(_CALLBACK_MAP)
    app._callback_list.extend(dict(c) for c in _CALLBACK_LIST)
    app._inline_scripts.extend(_INLINE_SCRIPTS)


# Dash's own page router (use_pages): it renders each page's layout through layouts.guarded, which
# applies the page table itself; any role may call it.
DASH_ROUTER_PREFIX = "_pages_"


def page_of(output: str) -> str | None:
    """The page a callback (by its output id) belongs to; None when it is not a page's."""
    return PAGE_OF_OUTPUT.get(output)


def shared_on_purpose(output: str) -> bool:
    """Callbacks any signed-in role may call: the shared widgets' and Dash's page router."""
    return output in SHARED_OUTPUTS or output.lstrip(".").startswith(DASH_ROUTER_PREFIX)
