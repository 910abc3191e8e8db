"""Shared bits of the benchmark scripts: a scratch folder holding SQLite copies (with WAL files)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


class Workdir:
    def __init__(self, keep: bool, prefix: str = "bench_"):
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.keep = keep

    def copy(self, src: Path, name: str) -> Path:
        """Copy a SQLite database with its -wal/-shm files, so a live WAL copy is consistent."""
        dst = self.path / name
        for suffix in ("", "-wal", "-shm"):
            if Path(str(src) + suffix).exists():
                shutil.copy(str(src) + suffix, str(dst) + suffix)
        return dst

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def demo_db(path: Path) -> Path:
    """A seeded demo database (demo city, catalog, units), migrated to the newest schema."""
    from data.db import Database
    from data.schema import init_db
    from demo.seed import seed_demo

    db = Database(f"sqlite:///{path}")
    init_db(db)
    seed_demo(db, progress=lambda _m: None)
    db.dispose()
    return path
