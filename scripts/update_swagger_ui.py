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

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "assets" / "vendor"
PACKAGE = "swagger-ui-dist"
DEFAULT_SPEC = "5.x"
# file in the package → file in assets/vendor
FILES = {
    "package/swagger-ui-bundle.js": "swagger-ui-bundle.js",
    "package/swagger-ui.css": "swagger-ui.css",
    "package/swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
    "package/LICENSE": "swagger-ui.LICENSE",
    "package/NOTICE": "swagger-ui.NOTICE",
}
BEGIN, END = f"<!-- vendored: {PACKAGE} -->", f"<!-- /vendored: {PACKAGE} -->"


def npm_pack(spec: str, into: Path) -> dict:
    out = subprocess.run(["npm", "pack", f"{PACKAGE}@{spec}", "--json", "--silent"], cwd=into, check=True,
                         capture_output=True, text=True).stdout
    info = json.loads(out)[0]
    return {"version": info["version"], "integrity": info["integrity"], "tarball": into / info["filename"]}


def unpack(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {dest: tar.extractfile(src).read() for src, dest in FILES.items()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def section(version: str, integrity: str, files: dict[str, bytes]) -> str:
    rows = "\n".join(f"| `{name}` | {len(data):,} | `{sha256(data)}` |" for name, data in files.items())
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", nargs="?", default=DEFAULT_SPEC, help=f"npm version or range (default {DEFAULT_SPEC})")
    ap.add_argument("--check", action="store_true",
                    help="compare assets/vendor/ with the package of the vendored version; change nothing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="swagger-ui-") as tmp:
        spec = args.spec
        if args.check:
            spec = vendored_version()
            if spec is None:
                print(f"no {PACKAGE} in assets/vendor/README.md", file=sys.stderr)
                return 1
        pack = npm_pack(spec, Path(tmp))
        files = unpack(pack["tarball"])
    if args.check:
        differ = [name for name, data in files.items()
                  if not (VENDOR / name).exists() or (VENDOR / name).read_bytes() != data]
        if differ:
            print(f"{PACKAGE} {pack['version']}: differs from npm: {', '.join(differ)}", file=sys.stderr)
            return 1
        print(f"{PACKAGE} {pack['version']}: assets/vendor/ matches the npm package")
        return 0
    before = vendored_version()
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (VENDOR / name).write_bytes(data)
    readme = VENDOR / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Vendored browser libraries\n"
    readme.write_text(with_section(text, section(pack["version"], pack["integrity"], files)), encoding="utf-8")
    print(f"{PACKAGE} {before or '(none)'} → {pack['version']} in {VENDOR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
