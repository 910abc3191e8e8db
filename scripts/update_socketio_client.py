"""Vendors the official Socket.IO browser client (socket.io-client's dist/socket.io.min.js) from npm.

    python scripts/update_socketio_client.py            # the newest 4.8.x
    python scripts/update_socketio_client.py 4.8.4      # an exact version (or any npm range)
    python scripts/update_socketio_client.py --check    # do assets/vendor/ match the package they name?

`npm pack` fetches the package tarball (npm checks it against the integrity the registry publishes);
the bundle, its source map and the package's LICENSE are copied unchanged into assets/vendor/, and
assets/vendor/README.md records the version, the tarball's integrity and each file's SHA-256. The
pages load the bundle from there (app.py, layouts/scripts.py), never from a CDN. After an update:
run tests/live and tests/browser, and read the client's changelog for changed defaults.
"""
from __future__ import annotations

import sys

from npm_vendor import VENDOR, Vendored, file_rows, main

PACKAGE = "socket.io-client"
OTHER_SECTIONS = "<!-- vendored: "  # where another package's section of assets/vendor/README.md begins
# file in the package → file in assets/vendor
FILES = {
    "package/dist/socket.io.min.js": "socket.io.min.js",
    "package/dist/socket.io.min.js.map": "socket.io.min.js.map",
    "package/LICENSE": "socket.io-client.LICENSE",
}


def readme(version: str, integrity: str, files: dict[str, bytes]) -> str:
    rows = file_rows(files)
    return f"""# Vendored browser libraries

Written by `scripts/update_socketio_client.py`; do not edit by hand.

`{PACKAGE}` {version} from npm (tarball integrity `{integrity}`), files copied unchanged:

| file | bytes | SHA-256 |
|---|---|---|
{rows}

This folder is left out of Dash's automatic asset loading (`assets_path_ignore` in app.py): the
bundle is loaded explicitly, before `assets/live_client.js`, on the pages that use live updates
(layouts/scripts.py). See docs/live.md.
"""


def vendored_version() -> str | None:
    """The version in the vendored bundle's license header (`Socket.IO vX.Y.Z`)."""
    path = VENDOR / "socket.io.min.js"
    if not path.exists():
        return None
    head = path.read_bytes()[:200].decode("utf-8", "replace")
    marker = "Socket.IO v"
    i = head.find(marker)
    return head[i + len(marker):].split()[0] if i >= 0 else None


def write_readme(version: str, integrity: str, files: dict[str, bytes]) -> None:
    path = VENDOR / "README.md"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    # the other vendored packages' sections (scripts/update_swagger_ui.py) are theirs: kept as they are
    others = old[old.index(OTHER_SECTIONS):] if OTHER_SECTIONS in old else ""
    path.write_text(readme(version, integrity, files) + ("\n" + others if others else ""), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(Vendored(PACKAGE, "4.8.x", FILES, vendored_version, write_readme), __doc__.splitlines()[0]))
