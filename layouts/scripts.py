"""Which of Dash's script bundles a page loads: each screen is its own full page load (the menu uses
plain links), so a page can leave out the bundles only other pages use. The wall must draw within
2 s on the hall's PCs; parsing the grid library it never shows costs it ~60 ms, the polyfills for
old browsers ~70 ms (the platform supports current Chromium, Edge and Firefox only)."""
from __future__ import annotations

import re

# script (a fragment of its URL) → the only pages that load it
PAGE_ONLY = {"/dash_ag_grid/": ("/console",)}
NEVER = ("/polyfill@",)

_TAG = re.compile(r'<script[^>]*src="([^"]+)"[^>]*></script>\s*')


def scripts_for(path: str, scripts: str) -> str:
    """The index's <script> tags for the page at `path`, without the bundles it does not use."""
    path = path.rstrip("/") or "/"

    def keep(m: re.Match) -> str:
        src = m.group(1)
        if any(n in src for n in NEVER):
            return ""
        for fragment, pages in PAGE_ONLY.items():
            if fragment in src and path not in pages:
                return ""
        return m.group(0)

    return _TAG.sub(keep, scripts)
