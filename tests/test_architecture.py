"""The room rules of docs/architecture.md hold: import-linter's contracts (.importlinter) are kept."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_are_kept():
    bin_dir = Path(sys.executable).parent
    run = subprocess.run([str(bin_dir / "lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout and "Contracts: 0 kept" not in run.stdout


def test_every_room_is_named_in_the_contracts():
    """A new top-level package must be placed in the layers on purpose, not left outside the rules."""
    config = (REPO / ".importlinter").read_text(encoding="utf-8")
    roots = config.split("root_packages =", 1)[1].split("include_external_packages", 1)[0].split()
    packages = sorted(p.name for p in REPO.iterdir() if (p / "__init__.py").is_file() and p.name not in ("tests", "bench"))
    assert sorted(roots) == packages
