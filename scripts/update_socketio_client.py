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

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "assets" / "vendor"
PACKAGE = "socket.io-client"
DEFAULT_SPEC = "4.8.x"
OTHER_SECTIONS = "<!-- vendored: "  # where another package's section of assets/vendor/README.md begins
# file in the package → file in assets/vendor
FILES = {
    "package/dist/socket.io.min.js": "socket.io.min.js",
    "package/dist/socket.io.min.js.map": "socket.io.min.js.map",
    "package/LICENSE": "socket.io-client.LICENSE",
}


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


def readme(version: str, integrity: str, files: dict[str, bytes]) -> str:
    rows = "\n".join(f"| `{name}` | {len(data):,} | `{sha256(data)}` |" for name, data in files.items())
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", nargs="?", default=DEFAULT_SPEC, help=f"npm version or range (default {DEFAULT_SPEC})")
    ap.add_argument("--check", action="store_true",
                    help="compare assets/vendor/ with the package of the vendored version; change nothing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="socketio-client-") as tmp:
        spec = args.spec
        if args.check:
            spec = vendored_version()
            if spec is None:
                print("no vendored bundle in assets/vendor/", file=sys.stderr)
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
    readme_path = VENDOR / "README.md"
    old = readme_path.read_text(encoding="utf-8") if readme_path.exists() else ""
    # the other vendored packages' sections (scripts/update_swagger_ui.py) are theirs: kept as they are
    others = old[old.index(OTHER_SECTIONS):] if OTHER_SECTIONS in old else ""
    readme_path.write_text(readme(pack["version"], pack["integrity"], files) + ("\n" + others if others else ""),
                           encoding="utf-8")
    print(f"{PACKAGE} {before or '(none)'} → {pack['version']} in {VENDOR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
