"""What every vendoring script shares: fetch an npm package with `npm pack`, copy some of its files unchanged into
assets/vendor/, record them (version, tarball integrity, each file's SHA-256), or check the copies against npm.

Used by scripts/update_socketio_client.py and scripts/update_swagger_ui.py; each names its package, its files and
how assets/vendor/README.md records it."""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "assets" / "vendor"


def npm_pack(package: str, spec: str, into: Path) -> dict:
    out = subprocess.run(["npm", "pack", f"{package}@{spec}", "--json", "--silent"], cwd=into, check=True,
                         capture_output=True, text=True).stdout
    info = json.loads(out)[0]
    return {"version": info["version"], "integrity": info["integrity"], "tarball": into / info["filename"]}


def unpack(tarball: Path, files: dict[str, str]) -> dict[str, bytes]:
    """`files`: the file in the package → its name in assets/vendor."""
    with tarfile.open(tarball) as tar:
        return {dest: tar.extractfile(src).read() for src, dest in files.items()}


def file_rows(files: dict[str, bytes]) -> str:
    """The README's table rows: each file, its size and SHA-256."""
    return "\n".join(f"| `{name}` | {len(data):,} | `{hashlib.sha256(data).hexdigest()}` |"
                     for name, data in files.items())


@dataclass(frozen=True)
class Vendored:
    package: str
    default_spec: str
    files: dict[str, str]  # the file in the package → its name in assets/vendor
    vendored_version: Callable[[], str | None]  # the version assets/vendor holds now, or None
    write_readme: Callable[[str, str, dict[str, bytes]], None]  # (version, integrity, files) → README updated


def main(vendored: Vendored, description: str) -> int:
    """The command line of a vendoring script: vendor a version (or range), or `--check` the copies."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("spec", nargs="?", default=vendored.default_spec,
                    help=f"npm version or range (default {vendored.default_spec})")
    ap.add_argument("--check", action="store_true",
                    help="compare assets/vendor/ with the package of the vendored version; change nothing")
    args = ap.parse_args()
    package = vendored.package
    with tempfile.TemporaryDirectory(prefix="npm-vendor-") as tmp:
        spec = args.spec
        if args.check:
            spec = vendored.vendored_version()
            if spec is None:
                print(f"no {package} in assets/vendor/", file=sys.stderr)
                return 1
        pack = npm_pack(package, spec, Path(tmp))
        files = unpack(pack["tarball"], vendored.files)
    if args.check:
        differ = [name for name, data in files.items()
                  if not (VENDOR / name).exists() or (VENDOR / name).read_bytes() != data]
        if differ:
            print(f"{package} {pack['version']}: differs from npm: {', '.join(differ)}", file=sys.stderr)
            return 1
        print(f"{package} {pack['version']}: assets/vendor/ matches the npm package")
        return 0
    before = vendored.vendored_version()
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (VENDOR / name).write_bytes(data)
    vendored.write_readme(pack["version"], pack["integrity"], files)
    print(f"{package} {before or '(none)'} → {pack['version']} in {VENDOR.relative_to(ROOT)}/")
    return 0
