"""Which of Dash's script bundles a page loads: each screen is its own full page load (the menu uses
plain links), so a page can leave out the bundles only other pages use. The wall must draw within
2 s on the hall's PCs; parsing the grid library it never shows costs it ~60 ms, the polyfills for
old browsers ~70 ms (the platform supports current Chromium, Edge and Firefox only).

The official Socket.IO client (assets/vendor/, docs/live.md) is not one of Dash's automatic assets:
Dash loads assets/ alphabetically, the files of a folder after those of its parent, so
assets/vendor/socket.io.min.js would come after assets/live_client.js. app.py leaves assets/vendor
out of that walk (`assets_path_ignore`) and lists the bundle as an external script, which Dash puts
before every asset; both are then kept only on the pages that use live updates."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

VENDOR_DIR = "vendor"  # under assets/, left out of Dash's automatic loading
SOCKET_IO = "vendor/socket.io.min.js"  # the official browser client (window.io), under assets/
LIVE_CLIENT = "/assets/live_client.js"
LIVE_PAGES = ("/", "/wall", "/cockpit", "/console", "/unit", "/emergency")  # not /report, /devices

# script (a fragment of its URL) → the only pages that load it
PAGE_ONLY = {"/dash_ag_grid/": ("/console",), f"/assets/{SOCKET_IO}": LIVE_PAGES, LIVE_CLIENT: LIVE_PAGES}
NEVER = ("/polyfill@",)

_TAG = re.compile(r'<script[^>]*src="([^"]+)"[^>]*></script>\s*')


@lru_cache(maxsize=1)
def socket_io_version(assets: str) -> str:
    """The vendored client's version, from its license header (`Socket.IO v4.8.4`)."""
    head = (Path(assets) / SOCKET_IO).read_bytes()[:200].decode("utf-8", "replace")
    m = re.search(r"Socket\.IO v(\S+)", head)
    if m is None:
        raise RuntimeError(f"assets/{SOCKET_IO}: no 'Socket.IO vX.Y.Z' header (scripts/update_socketio_client.py)")
    return m.group(1)


def socket_io_script(asset_url: str, assets: str) -> dict:
    """The external-script entry of the vendored client: its local URL (from Dash's get_asset_url), the
    version as the cache key, as Dash's `?m=` does for its own assets."""
    return {"src": f"{asset_url}?v={socket_io_version(assets)}"}


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
