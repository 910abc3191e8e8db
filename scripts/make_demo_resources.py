"""Builds data/demo_resources.geojson, the demo city's emergency resources, from the demo city and its units.

Run by hand when the plan in demo/resources.py changes (python scripts/make_demo_resources.py); the seed only reads
the file, through the real importer. Deterministic: the same seed, data files and library versions give the same
file (tests/demo/test_demo_resources.py checks the file in the repo is what this makes).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run by hand (python scripts/...): make the repo's packages importable

from data import files  # noqa: E402
from demo.city import generate_demo_city  # noqa: E402
from demo.resources import resource_features, write_feature_collection  # noqa: E402
from dispatch.units import demo_units  # noqa: E402


def main() -> None:
    records = generate_demo_city()
    units = {u.code for u in demo_units(records, files.unit_types(), files.unit_patterns())}
    features = resource_features(records, units)
    write_feature_collection(features, files.DEMO_RESOURCES_PATH)
    kinds: dict[str, int] = {}
    for f in features:
        kinds[f["properties"]["type"]] = kinds.get(f["properties"]["type"], 0) + 1
    print(f"{files.DEMO_RESOURCES_PATH.relative_to(REPO)}: {len(features)} resources {kinds}")


if __name__ == "__main__":
    main()
