"""The demo city's emergency resources: fire and rescue stations, drainage, gas, power and medical teams, warehouses
with their stock, vehicles and equipment, shelters — a few hundred, made once by scripts/make_demo_resources.py into
data/demo_resources.geojson (the import format of `import-resources`) and loaded on the first run through the real
importer (:func:`seed_resources`).

Deterministic (one seed): per district, the counts below (more in the populous ones), each placed inside a grid of
the district drawn with the grids' population as weight (as demo.devices places the sensors), named after its street
or district, and owned by the unit of its kind in the district (or the city's, for city-wide bodies: the gas
company, the power company, the emergency medical centre). Stock amounts are of the order that municipal flood and
relief depots publish (tens of thousands of sandbags at the city's depot, hundreds of tents, pumps by the dozen).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geo.model import GRID, AreaRecord

DEFAULT_SEED = 20261217
# a district's share of the teams and shelters: its population (2022, docs DESIGN) relative to the city's mean
# (经开区 carved from 武进: a middling share)
WEIGHT = {"320402": 1.0, "320404": 1.0, "320411": 1.3, "320412": 1.8, "320413": 0.9, "320481": 1.1, "320491": 0.8}
DISTRICT_SHORT = {"320402": "天宁", "320404": "钟楼", "320411": "新北", "320412": "武进", "320413": "金坛",
                  "320481": "溧阳", "320491": "经开"}

# (prefix, type, specialty, owner unit type, city-wide owner?, per district at weight 1, capacity range, name)
# name placeholders: {street} the street's name without 街道/镇, {district} the district's name, {short} its short
# name, {n} a serial (一, 二, …)
PLAN = (
    ("XF", "team", "消防救援", "fire_rescue", False, 3, (25, 45), "{street}消防救援站"),
    ("SY", "team", "水域救援", "fire_rescue", False, 1, (12, 20), "{short}消防水域救援队"),
    ("PS", "team", "排水抢险", "water_affairs", False, 3, (15, 30), "{short}排水抢险{n}队"),
    ("RQ", "team", "燃气抢修", "gas", True, 2, (8, 15), "港华燃气{short}抢修站"),
    ("DL", "team", "电力抢修", "power", True, 2, (10, 20), "供电公司{short}抢修{n}班"),
    ("JJ", "team", "医疗救护", "emergency_medical", True, 2, (6, 12), "120急救{street}分站"),
    ("YL", "team", "医疗救护", "health", False, 1, (15, 30), "{short}医疗应急救援队"),
    ("QX", "team", "道路抢险", "housing_construction", False, 1, (15, 25), "{short}市政道路抢险队"),
    ("QXC", "equipment", "抢险车", "city_management", False, 3, None, "{short}城管抢险车{n}号"),
    ("PSC", "equipment", "大功率排水车", "water_affairs", False, 2, None, "{short}大功率排水车{n}号"),
    ("LXS", "equipment", "龙吸水排涝车", "water_affairs", False, 1, None, "{short}龙吸水排涝车"),
    ("FDC", "equipment", "发电车", "power", True, 1, None, "应急发电车（{short}）"),
    ("ZMC", "equipment", "应急照明车", "emergency_management", False, 1, None, "{short}应急照明车"),
    ("CFZ", "equipment", "冲锋舟", "fire_rescue", False, 1, None, "{short}冲锋舟{n}号"),
    ("XX", "shelter", "学校", "civil_affairs", False, 10, (400, 2000), "{street}{school}（应急避难场所）"),
    ("GY", "shelter", "公园", "civil_affairs", False, 5, (2000, 12000), "{street}{park}（应急避难场所）"),
    ("TY", "shelter", "体育场馆", "civil_affairs", False, 1, (3000, 15000), "{district}{stadium}（应急避难场所）"),
)
SCHOOLS = ("实验小学", "中心小学", "初级中学", "高级中学", "第一小学", "第二小学", "外国语学校", "实验中学")
PARKS = ("公园", "体育公园", "湿地公园", "文化广场", "市民广场")
STADIUMS = ("体育中心", "全民健身中心")
# a warehouse's stock: (item, unit, base quantity); the city's depots hold `CITY_DEPOT` times a district's
STOCK = (
    ("沙袋", "袋", 8000), ("防汛编织袋", "条", 15000), ("抽水泵", "台", 20), ("救生衣", "件", 600), ("救生圈", "个", 200),
    ("帐篷", "顶", 150), ("棉被", "床", 1200), ("折叠床", "张", 500), ("饮用水", "箱", 2000), ("方便食品", "箱", 1500),
    ("应急灯", "盏", 300), ("发电机", "台", 10), ("雨衣", "件", 800), ("铁锹", "把", 600), ("警戒带", "卷", 400),
)
CITY_DEPOT = 4
CITY_WAREHOUSES = (("CK-320400-001", "常州市应急物资储备库", "emergency_management"),
                   ("CK-320400-002", "常州市防汛抗旱物资仓库", "water_affairs"))
SERIALS = "一二三四五六七八九十"


def _points_in(grids: list[AreaRecord], which: np.ndarray, rng: np.random.Generator):
    from demo.devices import _points_in as points_in  # the sensors' placement: a point inside each chosen grid

    return points_in(grids, which, rng)


def resource_features(records: list[AreaRecord], units: set[str], seed: int = DEFAULT_SEED) -> list[dict]:
    """The demo resources as GeoJSON Point features with the import's properties (resource_id, type, name,
    unit_code, specialty, capacity; a warehouse's `stock`), over the hierarchy `records` and the unit codes
    `units`. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    index = {r.code: r for r in records}
    city = next(r for r in records if r.parent is None)
    districts = sorted((r for r in records if r.level == 2), key=lambda r: r.code)
    grids_of: dict[str, list[AreaRecord]] = {}
    for g in sorted((r for r in records if r.level == GRID), key=lambda r: r.code):
        node = g
        while node.level > 2:
            node = index[node.parent]
        grids_of.setdefault(node.code, []).append(g)

    def street_of(grid: AreaRecord) -> AreaRecord:
        node = grid
        while node.level > 3:
            node = index[node.parent]
        return node

    def owner(unit_type: str, district: str, city_wide: bool) -> str | None:
        for code in ([] if city_wide else [f"U-{district}-{unit_type}"]) + [f"U-{city.code}-{unit_type}"]:
            if code in units:
                return code
        return None

    def place(district: str, n: int):
        grids = grids_of.get(district) or []
        if not grids or n <= 0:
            return []
        weight = np.array([max(g.population or 0, 1) for g in grids], dtype=float)
        which = rng.choice(len(grids), size=n, p=weight / weight.sum())
        lon, lat = _points_in(grids, which, rng)
        return [(grids[w], round(float(x), 6), round(float(y), 6)) for w, x, y in zip(which, lon, lat)]

    features: list[dict] = []

    def add(rid, type_, name, unit, specialty, capacity, lon, lat, stock=None):
        props = {"resource_id": rid, "type": type_, "name": name, "unit_code": unit, "specialty": specialty,
                 "capacity": capacity}
        if stock is not None:
            props["stock"] = stock
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": props})

    for d in districts:
        short = DISTRICT_SHORT.get(d.code, d.name)
        w = WEIGHT.get(d.code, 1.0)
        for prefix, type_, specialty, unit_type, city_wide, per, caps, pattern in PLAN:
            unit = owner(unit_type, d.code, city_wide)
            if unit is None:
                continue  # a city without that kind of body: left out, never given a wrong owner
            count = max(1, int(round(per * w)))
            used: set[str] = set()
            for k, (grid, lon, lat) in enumerate(place(d.code, count), start=1):
                street = street_of(grid).name
                stem = street.removesuffix("街道").removesuffix("镇").removesuffix("乡")
                # a school or park of a street not named yet (two of one kind in one street get other names)
                for school, park in zip(rng.permutation(SCHOOLS), rng.permutation(PARKS * 2)):
                    name = pattern.format(street=stem, district=d.name, short=short, n=SERIALS[(k - 1) % 10],
                                          school=school, park=park, stadium=STADIUMS[k % 2])
                    if name not in used:
                        break
                else:
                    name = f"{name}（{k}）"
                used.add(name)
                capacity = int(rng.integers(caps[0], caps[1] + 1)) if caps else None
                if type_ == "shelter":
                    capacity = int(round(capacity, -2))
                add(f"{prefix}-{d.code}-{k:03d}", type_, name, unit, specialty, capacity, lon, lat)
        # the district's own depot
        unit = owner("emergency_management", d.code, False)
        if unit is not None:
            for grid, lon, lat in place(d.code, 1):
                add(f"CK-{d.code}-001", "warehouse", f"{d.name}应急物资仓库", unit, None, None, lon, lat,
                    _stock(rng, 1))
    # the city's depots, in the most populous district's grids
    busiest = max(districts, key=lambda d: sum(g.population or 0 for g in grids_of.get(d.code, [])))
    for rid, name, unit_type in CITY_WAREHOUSES:
        unit = owner(unit_type, city.code, True)
        if unit is None:
            continue
        for grid, lon, lat in place(busiest.code, 1):
            add(rid, "warehouse", name, unit, None, None, lon, lat, _stock(rng, CITY_DEPOT))
    return features


def _stock(rng: np.random.Generator, scale: int) -> list[dict]:
    out = []
    for item, unit, base in STOCK:
        q = base * scale * (0.6 + 0.8 * float(rng.random()))
        q = int(round(q, -2)) if q >= 1000 else int(round(q, -1)) if q >= 100 else max(int(round(q)), 1)
        out.append({"item": item, "quantity": q, "unit": unit})
    return out


def write_feature_collection(features: list[dict], path: Path) -> None:
    """One feature a line: the file diffs well when the plan changes."""
    lines = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features)
    path.write_text('{"type":"FeatureCollection","features":[\n' + lines + "\n]}\n", encoding="utf-8")


def seed_resources(db, areas, path: Path | None = None) -> tuple[int, float]:
    """The demo resources of data/demo_resources.geojson through the real importer (checked, located, one
    transaction); returns (resources, seconds). Idempotent by id."""
    from data import files
    from emergency.importer import import_resources

    report = import_resources(db, areas, path or files.DEMO_RESOURCES_PATH)
    return report.rows, report.seconds
