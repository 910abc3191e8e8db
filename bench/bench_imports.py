"""Peak memory of `flask import-cases` and `flask import-grid`, each run as a child process.

Cases: the demo city seeded once, legacy CSVs of --rows rows (default 1,000,000) and a tenth of
that, generated here with points inside the city; each import runs in a fresh child on a copy of
the seeded database and its peak RSS is the child's ru_maxrss (os.wait4, in a small launcher: see
_LAUNCHER). The same-run baseline is
a one-row file (what the process costs before the file counts). `--old DIR` also runs the same
files through another checkout of the code (e.g. `git archive <commit> | tar -x -C DIR`): before and
after in the same run.

Grid: the demo hierarchy exported to GeoJSON (many features), and a file with one city polygon of
about --polygon-mb MB (a circle of many vertices), each imported into an empty database.

    .venv/bin/python bench/bench_imports.py [--rows 1000000] [--old /tmp/ucc-old] [--keep]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import Workdir  # noqa: E402

HEADER = ("case_id,category_code,lon,lat,source,reported_at,accepted_at,rejected_at,dispatched_at,unit_code,"
          "deadline_at,resolved_at,closed_at,rework_count,extension_count")


def seed(db_path: Path) -> None:
    from data.db import Database
    from data.schema import init_db
    from demo.seed import seed_demo

    db = Database(f"sqlite:///{db_path}")
    init_db(db)
    seed_demo(db, progress=lambda _m: None)
    db.dispose()


def city_points(db_path: Path, n: int, rnd: random.Random):
    """n points inside the demo city's grids (drawn in its bounds, kept when located)."""
    import numpy as np

    from data.area_directory import AreaDirectory
    from data.db import Database

    db = Database(f"sqlite:///{db_path}")
    loc = AreaDirectory(db).locator()
    import shapely

    x0, y0, x1, y1 = shapely.total_bounds([g.geometry for g in loc.grids])
    out_x, out_y = [], []
    rng = np.random.default_rng(rnd.randrange(2**32))
    while sum(len(a) for a in out_x) < n:
        x = np.round(rng.uniform(x0, x1, 200_000), 6)   # as written to the CSV: located as imported
        y = np.round(rng.uniform(y0, y1, 200_000), 6)
        ok = loc.locate_many(x, y) >= 0
        out_x.append(x[ok])
        out_y.append(y[ok])
    db.dispose()
    return np.concatenate(out_x)[:n], np.concatenate(out_y)[:n]


def legacy_csv(path: Path, n: int, xs, ys, rnd: random.Random) -> Path:
    sh = timezone(timedelta(hours=8))
    t0 = datetime(2026, 1, 1, tzinfo=sh)
    cats = ("020102", "020103", "010151", "030101")
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        fh.write(HEADER + "\n")
        for i in range(n):
            rep = t0 + timedelta(minutes=rnd.randrange(0, 300 * 24 * 60))
            t = ["", "", "", "", "", "", ""]   # accepted, rejected, dispatched, unit, deadline, resolved, closed
            stage = rnd.random()
            if stage < 0.05:
                t[1] = (rep + timedelta(minutes=20)).isoformat()
            elif stage > 0.1:
                acc = rep + timedelta(minutes=15)
                t[0], t[4] = acc.isoformat(), (acc + timedelta(days=2)).isoformat()
                if stage > 0.2:
                    t[2] = (acc + timedelta(minutes=10)).isoformat()
                if stage > 0.3:
                    t[5] = (acc + timedelta(hours=rnd.randrange(2, 60))).isoformat()
                if stage > 0.4:
                    t[6] = (acc + timedelta(hours=61)).isoformat()
            w.writerow([f"L{i:08d}", rnd.choice(cats), f"{xs[i]:.6f}", f"{ys[i]:.6f}",
                        rnd.choice(("hotline", "patrol")), rep.isoformat(), *t, "0", "0"])
    return path


# Starts the command and prints its exit code and ru_maxrss. Why a launcher: Linux counts in a
# child's ru_maxrss the RSS of the process it was spawned from (the parent's memory it shares until
# exec), and this bench's own process holds the seeded city and the points (~150 MB); a fresh
# interpreter as the parent holds ~10 MB, below any command's figure.
_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, file=sys.stderr)
"""


def run(code: Path, args: list[str], db_path: Path, log: Path) -> tuple[int, float, int]:
    """(exit code, seconds, peak RSS in MB) of `flask --app app ARGS` in `code`."""
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_path}", UCC_SIMULATE="0", UCC_SECRET_KEY="bench",
               PYTHONPATH=str(code))
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "flask", "--app", "app",
                               *args], cwd=code, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    *lines, last = proc.stderr.splitlines() or [""]
    with log.open("a") as out:
        out.write("\n".join(lines))
    try:
        rc, maxrss = map(int, last.split())
    except ValueError:   # the launcher itself failed
        return proc.returncode or 1, seconds, -1
    return rc, seconds, maxrss // 1024


def circle_geojson(path: Path, mb: float) -> Path:
    """One city feature whose polygon is a circle of as many vertices as make ~mb MB of GeoJSON."""
    n = int(mb * 1024 * 1024 / 40)   # ~40 bytes per "[lon, lat]" pair
    cx, cy, r = 119.95, 31.75, 0.3
    with path.open("w") as fh:
        fh.write('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
                 '{"code": "320400", "name": "测试市", "level": 1, "parent": null}, '
                 '"geometry": {"type": "Polygon", "coordinates": [[')
        for i in range(n):
            a = 2 * math.pi * i / n
            fh.write(f"[{cx + r * math.cos(a):.10f}, {cy + r * math.sin(a):.10f}], ")
        fh.write(f"[{cx + r:.10f}, {cy:.10f}]]]}}}}]}}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--polygon-mb", type=float, default=43.0)
    ap.add_argument("--old", type=Path, default=None, help="another checkout of the code, run on the same files")
    ap.add_argument("--only", choices=("cases", "grid"), default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    wd = Workdir(args.keep, prefix="bench_imports_")
    codes = [("this", ROOT)] + ([("old", args.old)] if args.old else [])
    rnd = random.Random(13)
    try:
        seeded = wd.path / "seeded.db"
        t = time.perf_counter()
        seed(seeded)
        print(f"demo city seeded in {time.perf_counter() - t:.0f} s ({wd.path})")
        if args.only in (None, "cases"):
            sizes = sorted({1, max(1, args.rows // 10), args.rows})
            xs, ys = city_points(seeded, args.rows, rnd)
            files = {}
            for n in sizes:
                t = time.perf_counter()
                files[n] = legacy_csv(wd.path / f"cases_{n}.csv", n, xs, ys, rnd)
                print(f"{n:>9,} rows: {files[n].stat().st_size / 1e6:,.0f} MB CSV, made in {time.perf_counter() - t:.0f} s")
            print(f"\nimport-cases (peak RSS of the child)")
            for n in sizes:
                for label, code in codes:
                    db = wd.copy(seeded, f"cases_{label}_{n}.db")
                    rc, secs, mb = run(code, ["import-cases", str(files[n]), "--no-progress"], db,
                                       wd.path / f"cases_{label}_{n}.log")
                    print(f"  {label:>5} {n:>9,} rows: peak {mb:>6,} MB, {secs:6.1f} s, exit {rc}")
                    db.unlink()
        if args.only in (None, "grid"):
            export = wd.path / "demo_city.geojson"
            rc, _, _ = run(ROOT, ["export-grid", str(export)], seeded, wd.path / "export.log")
            circle = circle_geojson(wd.path / "circle.geojson", args.polygon_mb)
            print(f"\nimport-grid (peak RSS of the child; into an empty database)")
            for name, path in (("demo city", export), ("one polygon", circle)):
                for label, code in codes:
                    db = wd.path / f"grid_{label}.db"
                    db.unlink(missing_ok=True)
                    rc, secs, mb = run(code, ["import-grid", str(path)], db, wd.path / f"grid_{label}.log")
                    print(f"  {label:>5} {name} ({path.stat().st_size / 1e6:,.0f} MB): peak {mb:>6,} MB, "
                          f"{secs:6.1f} s, exit {rc}")
            base = wd.path / "base.db"
            rc, secs, mb = run(ROOT, ["init-db"], base, wd.path / "init.log")
            print(f"  baseline: init-db on an empty database: peak {mb} MB")
    finally:
        wd.cleanup()


if __name__ == "__main__":
    main()
