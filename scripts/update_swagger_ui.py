"""Vendors Swagger UI (swagger-ui-dist's bundle and stylesheet) from npm, for the API's docs page (/api/docs).

    python scripts/update_swagger_ui.py            # the newest 5.x
    python scripts/update_swagger_ui.py 5.36.0     # an exact version (or any npm range)
    python scripts/update_swagger_ui.py --check    # do assets/vendor/ match the package they name?

As scripts/update_socketio_client.py: `npm pack` fetches the tarball (npm checks it against the integrity the
registry publishes); the bundle, the stylesheet, the package's LICENSE and NOTICE and the bundle's third-party
licences are copied unchanged into assets/vendor/ (flat: that folder is left out of Dash's automatic loading), and
this package's section of assets/vendor/README.md records the version, the tarball's integrity and each file's
SHA-256. api/docs.py serves the page that loads them; nothing comes from a CDN. After an update: run
tests/test_openapi.py and tests/browser/test_api_docs.py, and read the release notes for changed options.
"""
from __future__ import annotations

import re
import sys

from npm_vendor import VENDOR, Vendored, file_rows, main

PACKAGE = "swagger-ui-dist"
# file in the package → file in assets/vendor
FILES = {
    "package/swagger-ui-bundle.js": "swagger-ui-bundle.js",
    "package/swagger-ui.css": "swagger-ui.css",
    "package/swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
    "package/LICENSE": "swagger-ui.LICENSE",
    "package/NOTICE": "swagger-ui.NOTICE",
}
BEGIN, END = f"<!-- vendored: {PACKAGE} -->", f"<!-- /vendored: {PACKAGE} -->"


def section(version: str, integrity: str, files: dict[str, bytes]) -> str:
    rows = file_rows(files)
    return f"""{BEGIN}
## Swagger UI

Written by `scripts/update_swagger_ui.py`; do not edit by hand.

`{PACKAGE}` {version} from npm (tarball integrity `{integrity}`), files copied unchanged:

| file | bytes | SHA-256 |
|---|---|---|
{rows}

Loaded only by the API's docs page (`/api/docs`, api/docs.py), which renders `/api/v1/openapi.json`.
{END}
"""


def with_section(readme: str, block: str) -> str:
    """The README with this package's section replaced (or added at the end)."""
    if BEGIN in readme and END in readme:
        return re.sub(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", lambda _m: block, readme, flags=re.S)
    return readme.rstrip("\n") + "\n\n" + block


def vendored_version() -> str | None:
    """The version this package's README section names."""
    path = VENDOR / "README.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    m = re.search(rf"`{re.escape(PACKAGE)}` (\S+) from npm", text)
    return m.group(1) if m else None


def write_readme(version: str, integrity: str, files: dict[str, bytes]) -> None:
    path = VENDOR / "README.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Vendored browser libraries\n"
    path.write_text(with_section(text, section(version, integrity, files)), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(Vendored(PACKAGE, "5.x", FILES, vendored_version, write_readme), __doc__.splitlines()[0]))
