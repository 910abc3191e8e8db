"""import-resources on SQLite and the real PostgreSQL: a CSV with its stock file and a GeoJSON file with inline stock
load and locate every resource; every bad row of both files is reported (file, line, field, Chinese message) and
nothing is written; a re-import updates by id and keeps status and occupancy; the command's output."""
from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from data.area_directory import AreaDirectory
from data.models import Resource, ResourceStock
from emergency.importer import COLUMNS, STOCK_COLUMNS, ResourceImportError, import_resources
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
P1 = (119.905, 31.705)  # district 320402 of rect_city
P2 = (119.965, 31.765)  # district 320403
GOOD = [
    ("XF-01", "team", "天宁消防救援站", *P1, "U-320402-fire_rescue", "消防", "30"),
    ("RQ-01", "team", "燃气抢修一队", *P2, "U-320400-gas", "燃气抢修", "12"),
    ("CK-01", "warehouse", "市级应急物资仓库", *P2, "U-320400-emergency_management", "", ""),
    ("PS-01", "equipment", "大功率排水车", *P1, "U-320402-water_affairs", "排水", ""),
    ("BN-01", "shelter", "实验小学避难场所", *P1, "U-320402-civil_affairs", "", "800"),
]
STOCK = [("CK-01", "沙袋", "5000", "袋"), ("CK-01", "救生衣", "300", "件"), ("CK-01", "抽水泵", "12", "台")]


def write_csv(path: Path, rows, header=COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def world(empty_db):
    small_world(empty_db, NOW)
    return empty_db, AreaDirectory(empty_db)


def resources(db) -> dict[str, Resource]:
    with db.session() as s:
        return {r.id: r for r in s.scalars(select(Resource))}


def stock(db) -> dict[tuple[str, str], float]:
    with db.session() as s:
        return {(r.resource_id, r.item): r.quantity for r in s.scalars(select(ResourceStock))}


def test_a_csv_and_its_stock(world, tmp_path):
    db, areas = world
    report = import_resources(db, areas, write_csv(tmp_path / "r.csv", GOOD),
                              write_csv(tmp_path / "s.csv", STOCK, STOCK_COLUMNS))
    assert (report.rows, report.inserted, report.updated, report.stock_rows) == (5, 5, 0, 3)
    assert "已导入 5 项应急资源：新增 5" in report.summary()
    got = resources(db)
    assert got["XF-01"].district_code == "320402" and got["RQ-01"].district_code == "320403"
    assert got["XF-01"].grid_code.startswith("320402") and got["XF-01"].status == "available"
    assert got["BN-01"].capacity == 800 and got["XF-01"].capacity == 30 and got["CK-01"].capacity is None
    assert got["PS-01"].specialty == "排水" and got["CK-01"].specialty is None
    assert stock(db) == {("CK-01", "沙袋"): 5000, ("CK-01", "救生衣"): 300, ("CK-01", "抽水泵"): 12}
    # again, changed: updated by id, status and occupancy kept, one item's quantity set
    with db.session() as s:
        s.get(Resource, "BN-01").occupancy = 120
        s.get(Resource, "XF-01").status = "deployed"
    moved = [("XF-01", "team", "天宁消防救援站（新址）", *P2, "U-320402-fire_rescue", "消防", "32")]
    again = import_resources(db, areas, write_csv(tmp_path / "r2.csv", moved),
                             write_csv(tmp_path / "s2.csv", [("CK-01", "沙袋", "4000", "袋")], STOCK_COLUMNS))
    assert (again.inserted, again.updated) == (0, 1)
    got = resources(db)
    assert got["XF-01"].name == "天宁消防救援站（新址）" and got["XF-01"].district_code == "320403"
    assert got["XF-01"].status == "deployed" and got["BN-01"].occupancy == 120
    assert stock(db)[("CK-01", "沙袋")] == 4000 and stock(db)[("CK-01", "救生衣")] == 300


def test_geojson_with_inline_stock(world, tmp_path):
    db, areas = world
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                 "properties": {"resource_id": i, "type": t, "name": n, "unit_code": u, "specialty": sp or None,
                                "capacity": int(c) if c else None,
                                **({"stock": [{"item": "帐篷", "quantity": 200, "unit": "顶"}]} if t == "warehouse" else {})}}
                for i, t, n, lon, lat, u, sp, c in GOOD]
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8")
    report = import_resources(db, areas, path)
    assert report.rows == 5 and report.by_type == {"team": 2, "warehouse": 1, "equipment": 1, "shelter": 1}
    assert stock(db) == {("CK-01", "帐篷"): 200}


BAD = [
    ("XF-01", "team", "消防站", *P1, "U-320402-fire_rescue", "消防", "30"),          # line 2: good
    ("XF-01", "team", "消防站二", *P1, "U-320402-fire_rescue", "消防", "30"),        # 3: id twice
    ("bad id", "tank", "", "abc", "31.7", "U-nope", "", "-3"),                      # 4: id, type, name, lon, unit, capacity
    ("BN-02", "shelter", "某公园", *P1, "U-320402-civil_affairs", "", ""),           # 5: a shelter without places
    ("FAR-1", "team", "远方", 121.5, 31.2, "U-320402-fire_rescue", "", "2.5"),      # 6: outside the city, capacity
]
BAD_STOCK = [("CK-09", "沙袋", "10", "袋"),        # 2: no such resource
             ("XF-01", "沙袋", "10", "袋"),        # 3: not a warehouse
             ("CK-01", "沙袋", "-5", ""),          # 4: quantity, unit
             ("CK-01", "救生衣", "x", "件"),        # 5: quantity
             ("CK-01", "救生衣", "3", "件")]        # 6: the item twice


def test_every_bad_row_of_both_files_is_reported_and_nothing_written(world, tmp_path):
    db, areas = world
    rows = BAD + [("CK-01", "warehouse", "仓库", *P2, "U-320400-emergency_management", "", "")]
    with pytest.raises(ResourceImportError) as err:
        import_resources(db, areas, write_csv(tmp_path / "r.csv", rows),
                         write_csv(tmp_path / "s.csv", BAD_STOCK, STOCK_COLUMNS))
    got = {(Path(f).name, n, fld) for f, n, fld, _ in err.value.problems}
    assert got == {("r.csv", 3, "resource_id"), ("r.csv", 4, "resource_id"), ("r.csv", 4, "type"),
                   ("r.csv", 4, "name"), ("r.csv", 4, "lon"), ("r.csv", 4, "unit_code"), ("r.csv", 4, "capacity"),
                   ("r.csv", 5, "capacity"), ("r.csv", 6, "lon"), ("r.csv", 6, "capacity"),
                   ("s.csv", 2, "resource_id"), ("s.csv", 3, "resource_id"), ("s.csv", 4, "quantity"),
                   ("s.csv", 4, "unit"), ("s.csv", 5, "quantity"), ("s.csv", 6, "item")}
    text = str(err.value)
    assert "发现 16 处问题，未导入任何应急资源" in text
    assert "r.csv 第 3 行 resource_id（资源编号）：资源编号 XF-01 与第 2 行重复" in text
    assert "r.csv 第 4 行 type（资源类型）：未知的资源类型“tank”" in text
    assert "r.csv 第 5 行 capacity（容量）：避难场所须填写容量" in text
    assert "r.csv 第 6 行 lon（经度）：坐标(121.5, 31.2)不在本市网格范围内" in text
    assert "s.csv 第 3 行 resource_id（资源编号）：资源 XF-01 是救援队伍，只有仓库（warehouse）有库存" in text
    assert "s.csv 第 6 行 item（物资）：仓库 CK-01 的物资“救生衣”与第 5 行重复" in text
    assert resources(db) == {} and stock(db) == {}


@pytest.mark.parametrize("content, suffix, needle", [
    ("resource_id,type,name\nA,team,x\n", ".csv", "缺少列 lon、lat、unit_code"),
    ("", ".csv", "文件为空"),
    ("resource_id,type,name,lon,lat,unit_code\nA,team,x,1\n", ".csv", "字段数为 4"),
    ('{"type": "FeatureCollection"', ".geojson", "不是有效的 JSON"),
    ('{"type": "Feature"}', ".geojson", "不是 GeoJSON FeatureCollection"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": null, "properties": {}}]}',
     ".geojson", "须为点（Point）要素"),
    ("x", ".xlsx", "须为 .csv 或 .geojson"),
    ("resource_id,type,name,lon,lat,unit_code\n", ".csv", "文件中没有应急资源"),
])
def test_unreadable_files_are_refused(world, tmp_path, content, suffix, needle):
    db, areas = world
    path = tmp_path / f"f{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ResourceImportError) as err:
        import_resources(db, areas, path)
    assert needle in str(err.value)
    assert resources(db) == {}


def test_a_stock_row_for_a_registered_warehouse(world, tmp_path):
    db, areas = world
    import_resources(db, areas, write_csv(tmp_path / "r.csv", GOOD))
    report = import_resources(db, areas, write_csv(tmp_path / "r2.csv", GOOD[:1]),
                              write_csv(tmp_path / "s.csv", STOCK[:1], STOCK_COLUMNS))
    assert report.stock_rows == 1 and stock(db) == {("CK-01", "沙袋"): 5000}


def test_the_command(tmp_path):
    """flask import-resources: the summary on success, every problem and exit 1 otherwise."""
    from app import create_app
    from data.schema import init_db
    from tests.conftest import make_settings

    app = create_app(make_settings(f"sqlite:///{tmp_path / 'cli.db'}"), serve=False)
    db = app.extensions["ucc"].db
    init_db(db)
    small_world(db, NOW)
    runner = app.test_cli_runner()
    good = runner.invoke(args=["import-resources", str(write_csv(tmp_path / "g.csv", GOOD)),
                               "--stock", str(write_csv(tmp_path / "s.csv", STOCK, STOCK_COLUMNS))])
    assert good.exit_code == 0, good.output
    assert "已导入 5 项应急资源：新增 5，更新 0" in good.output and "库存 3 条" in good.output
    bad = runner.invoke(args=["import-resources", str(write_csv(tmp_path / "b.csv", BAD))])
    assert bad.exit_code == 1
    assert "未导入任何应急资源" in bad.output and "b.csv 第 4 行 type（资源类型）：未知的资源类型“tank”" in bad.output
    assert len(resources(db)) == 5
    db.dispose()


def test_geojson_stock_problems(world, tmp_path):
    db, areas = world

    def feature(rid, type_, stock):
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(P1)},
                "properties": {"resource_id": rid, "type": type_, "name": rid, "unit_code": "U-320402-emergency_management",
                               "stock": stock}}

    path = tmp_path / "r.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        feature("CK-A", "warehouse", [{"item": "沙袋", "quantity": 1, "unit": "袋"},
                                      {"item": "沙袋", "quantity": 2, "unit": "袋"}]),
        feature("CK-B", "warehouse", "沙袋"),
        feature("T-1", "team", [{"item": "沙袋", "quantity": 1, "unit": "袋"}]),
        feature("CK-C", "warehouse", [{"item": "帐篷", "quantity": -1}]),
    ]}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ResourceImportError) as err:
        import_resources(db, areas, path)
    text = str(err.value)
    assert "r.geojson 第 1 个要素 stock（库存）：物资“沙袋”重复" in text
    assert "第 2 个要素 stock（库存）：须为数组" in text and "第 3 个要素 stock（库存）：只有仓库（warehouse）有库存" in text
    assert "第 4 个要素 stock（库存）：数量超出范围" in text and "第 4 个要素 stock（库存）：计量单位为空" in text
    assert resources(db) == {}
