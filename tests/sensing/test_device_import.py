"""import-devices on SQLite and the real PostgreSQL: good CSV and GeoJSON files, every kind of bad row reported
before anything is written, a re-import that updates, the command's output, memory on a big file."""
from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from data import files
from data.area_directory import AreaDirectory
from data.models import Device
from sensing.importer import COLUMNS, DeviceImportError, import_devices
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
P1 = (119.905, 31.705)   # district 320402 of rect_city
P2 = (119.965, 31.765)   # district 320403
WATER = "U-320402-water_affairs"
GAS = "U-320400-gas"


@pytest.fixture(scope="module")
def types():
    return files.device_types()


@pytest.fixture
def world(empty_db):
    small_world(empty_db, NOW)
    return empty_db, AreaDirectory(empty_db)


@pytest.fixture
def sqlite_world(tmp_path):
    """For checks that end before the database is touched (the file's own defects): SQLite only."""
    from data.db import Database
    from data.schema import init_db

    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    init_db(db)
    small_world(db, NOW)
    yield db, AreaDirectory(db)
    db.dispose()


def write_csv(path: Path, rows, header=COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_geojson(path: Path, rows) -> Path:
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                 "properties": {"device_id": i, "type": t, "name": n, "unit_code": u}} for i, t, n, lon, lat, u in rows]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8")
    return path


GOOD = [
    ("JG-0001", "manhole_cover", "一号井盖", *P1, WATER),
    ("RQ-0001", "gas_detector", "燃气监测一号", *P2, GAS),
    ("JS-0001", "water_gauge", "下穿通道积水", *P2, "U-320403-water_affairs"),
]


def devices(db) -> dict[str, Device]:
    with db.session() as s:
        return {d.id: d for d in s.scalars(select(Device))}


def test_a_good_csv_is_imported_and_located(world, types, tmp_path):
    db, areas = world
    report = import_devices(db, areas, types, write_csv(tmp_path / "d.csv", GOOD))
    assert (report.rows, report.inserted, report.updated) == (3, 3, 0)
    assert report.by_type == {"manhole_cover": 1, "gas_detector": 1, "water_gauge": 1}
    got = devices(db)
    cover = got["JG-0001"]
    assert cover.grid_code == areas.locator().locate(*P1)[0].code and cover.district_code == "320402"
    assert got["RQ-0001"].district_code == "320403" and got["RQ-0001"].unit_code == GAS
    assert cover.status == "offline" and cover.last_seen is None and cover.last_values is None  # nothing heard yet
    assert "新增 3" in report.summary() and "更新已有设备 0" in report.summary()


def test_a_geojson_file_is_imported(world, types, tmp_path):
    db, areas = world
    report = import_devices(db, areas, types, write_geojson(tmp_path / "d.geojson", GOOD))
    assert report.inserted == 3
    assert devices(db)["JS-0001"].lon == P2[0]


def test_reimport_updates_and_keeps_the_devices_history(world, types, tmp_path):
    db, areas = world
    import_devices(db, areas, types, write_csv(tmp_path / "a.csv", GOOD))
    with db.session() as s:
        d = s.get(Device, "JG-0001")
        d.status, d.last_values, d.last_seen = "online", {"tilt_deg": 1.0}, NOW
    moved = [("JG-0001", "manhole_cover", "一号井盖（迁移）", *P2, "U-320403-water_affairs"),
             ("JG-0002", "manhole_cover", "二号井盖", *P1, WATER)]
    report = import_devices(db, areas, types, write_csv(tmp_path / "b.csv", moved))
    assert (report.inserted, report.updated) == (1, 1)
    assert "更新已有设备 1" in report.summary()
    d = devices(db)["JG-0001"]
    assert (d.name, d.district_code, d.unit_code) == ("一号井盖（迁移）", "320403", "U-320403-water_affairs")
    assert (d.status, d.last_values, d.last_seen) == ("online", {"tilt_deg": 1.0}, NOW)


BAD = [
    ("JG-0001", "manhole_cover", "好的一行", *P1, WATER),                      # line 2: good
    ("JG-0002", "toaster", "未知类型", *P1, WATER),                            # 3
    ("JG-0003", "manhole_cover", "未知单位", *P1, "U-nowhere"),                # 4
    ("JG-0004", "manhole_cover", "城外", 120.5, 31.7, WATER),                 # 5
    ("JG-0001", "manhole_cover", "重复编号", *P1, WATER),                      # 6
    ("JG-0005", "manhole_cover", "坏经度", "east", 31.7, WATER),              # 7
    ("JG-0006", "manhole_cover", "坏纬度", 119.9, "nan", WATER),              # 8
    ("JG 0007/x", "manhole_cover", "坏编号", *P1, WATER),                      # 9
    ("JG-0008", "manhole_cover", "", *P1, WATER),                              # 10
    ("JG-0009", "manhole_cover", "超范围", 200, 31.7, WATER),                 # 11
]


def test_every_bad_row_is_reported_and_nothing_written(world, types, tmp_path):
    db, areas = world
    with pytest.raises(DeviceImportError) as err:
        import_devices(db, areas, types, write_csv(tmp_path / "bad.csv", BAD))
    by_line = {}
    for line, fld, msg in err.value.problems:
        by_line.setdefault(line, []).append((fld, msg))
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert by_line[3][0][0] == "type" and "未知的设备类型“toaster”" in by_line[3][0][1]
    assert by_line[4] == [("unit_code", "未知的处置单位编码“U-nowhere”")]
    assert by_line[5][0][0] == "lon" and "不在本市网格范围内" in by_line[5][0][1]
    assert by_line[6] == [("device_id", "设备编号 JG-0001 与第 2 行重复")]
    assert by_line[7] == [("lon", "须为数字，不能是“east”")]
    assert by_line[8][0][0] == "lat" and "超出范围" in by_line[8][0][1]
    assert by_line[9][0][0] == "device_id" and "不合规" in by_line[9][0][1]
    assert by_line[10] == [("name", "为空")]
    assert by_line[11][0][0] == "lon" and "超出范围" in by_line[11][0][1]
    message = str(err.value)
    assert "发现 9 处问题，未导入任何设备" in message
    assert "第 5 行 lon（经度）：坐标(120.5, 31.7)不在本市网格范围内" in message
    assert devices(db) == {}


def test_bad_features_of_a_geojson_file(world, types, tmp_path):
    db, areas = world
    path = write_geojson(tmp_path / "bad.geojson", GOOD[:1] + [("X-1", "manhole_cover", "线", *P1, WATER)])
    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"][1]["geometry"] = {"type": "LineString", "coordinates": [list(P1), list(P2)]}
    data["features"].append({"type": "Feature", "geometry": {"type": "Point", "coordinates": list(P1)},
                             "properties": {"device_id": "X-2", "type": "gas_detector", "name": "无单位"}})
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DeviceImportError) as err:
        import_devices(db, areas, types, path)
    assert [(n, f) for n, f, _ in err.value.problems] == [(2, "geometry"), (3, "unit_code")]
    assert "第 2 个要素 geometry（位置）：须为点（Point）要素" in str(err.value)
    assert devices(db) == {}


@pytest.mark.parametrize("content, suffix, needle", [
    ("device_id,type,name\nA,manhole_cover,x\n", ".csv", "缺少列 lon、lat、unit_code"),
    ("", ".csv", "文件为空"),
    ("device_id,type,name,lon,lat,unit_code\nA,manhole_cover,x,1\n", ".csv", "字段数为 4"),
    ('{"type": "FeatureCollection"', ".geojson", "不是有效的 JSON"),
    ('{"type": "Feature"}', ".geojson", "不是 GeoJSON FeatureCollection"),
    ("[" * 100 + "]" * 100, ".geojson", "不是 GeoJSON FeatureCollection"),
    ('{"type": "FeatureCollection", "features": [' + "[" * 100 + "]" * 100 + "]}", ".geojson", "嵌套过深"),
    ("x", ".xlsx", "须为 .csv 或 .geojson"),
    ("device_id,type,name,lon,lat,unit_code\n", ".csv", "文件中没有设备"),
])
def test_unreadable_files_are_refused(sqlite_world, types, tmp_path, content, suffix, needle):
    db, areas = sqlite_world
    path = tmp_path / f"f{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DeviceImportError) as err:
        import_devices(db, areas, types, path)
    assert needle in str(err.value)
    assert devices(db) == {}


def test_a_missing_file(sqlite_world, types, tmp_path):
    db, areas = sqlite_world
    with pytest.raises(DeviceImportError, match="文件不存在"):
        import_devices(db, areas, types, tmp_path / "nope.csv")


def _big_file(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for k in range(n):
            w.writerow([f"JG-{k:06d}", "manhole_cover", f"井盖{k:06d}号（一个长一点的名称，让文件更大一些）",
                        119.9 + 0.08 * ((k * 37) % 1000) / 1000, 31.7 + 0.08 * ((k * 91) % 997) / 997, WATER])
    return path


def _peak(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_big_file_is_streamed(tmp_path, types):
    """Four times the rows, batches of 2,000: the peak grows by the ids' entries (the duplicate check), not by
    the rows. (The same Python on both databases: checked on SQLite.)"""
    from data.db import Database
    from data.schema import init_db

    peaks = {}
    for n in (2_000, 8_000):
        db = Database(f"sqlite:///{tmp_path / f'{n}.db'}")
        init_db(db)
        small_world(db, NOW)
        areas = AreaDirectory(db)
        areas.locator()  # the hierarchy's cache is not the import's
        path = _big_file(tmp_path / f"{n}.csv", n)
        report = None

        def run():
            nonlocal report
            report = import_devices(db, areas, types, path)

        peaks[n] = _peak(run)
        assert report.inserted == n
        db.dispose()
    grown = peaks[8_000] - peaks[2_000]   # (measured: none; a file held whole would add ~6,000 rows × ~1 KB)
    assert grown < 6_000 * 200, f"peak {peaks[2_000] / 2**20:.1f} MB → {peaks[8_000] / 2**20:.1f} MB"


def test_the_command(tmp_path):
    """flask import-devices: the summary on success (and says what it updated), every problem and exit 1 otherwise."""
    from app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(f"sqlite:///{tmp_path / 'cli.db'}"), serve=False)
    db = app.extensions["ucc"].db
    from data.schema import init_db

    init_db(db)
    small_world(db, NOW)
    runner = app.test_cli_runner()
    good = runner.invoke(args=["import-devices", str(write_csv(tmp_path / "g.csv", GOOD))])
    assert good.exit_code == 0, good.output
    assert "已导入 3 台设备：新增 3，更新已有设备 0" in good.output
    again = runner.invoke(args=["import-devices", str(write_csv(tmp_path / "g2.csv", GOOD[:1]))])
    assert "新增 0，更新已有设备 1" in again.output
    bad = runner.invoke(args=["import-devices", str(write_csv(tmp_path / "b.csv", BAD))])
    assert bad.exit_code == 1
    assert "发现 9 处问题，未导入任何设备" in bad.output and "第 3 行 type（设备类型）：未知的设备类型“toaster”" in bad.output
    assert len(devices(db)) == 3
    app.extensions["ucc"].db.dispose()


def test_the_migration_builds_the_models_indexes(empty_db):
    """The devices table of migration 0013 has the model's indexes (by name) on both databases."""
    expected = {ix.name for ix in Device.__table__.indexes}
    with empty_db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'devices'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'devices' AND schemaname = current_schema()"
        built = {name for (name,) in conn.exec_driver_sql(sql) if name.startswith("ix_")}
    assert built == expected == {"ix_devices_type_status", "ix_devices_status", "ix_devices_district_type",
                                 "ix_devices_grid", "ix_devices_unit"}


def test_the_migration_goes_down_and_up(empty_db):
    from alembic import command
    from sqlalchemy import inspect

    from data.schema import alembic_config, init_db

    cfg = alembic_config(empty_db.url)
    with empty_db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    with empty_db.engine.connect() as conn:
        assert not inspect(conn).has_table("devices")
    init_db(empty_db)  # up to the head again, whatever later revisions add
    with empty_db.engine.connect() as conn:
        assert inspect(conn).has_table("devices")


def test_a_new_grid_that_drops_a_devices_grid_is_refused(world, types, tmp_path):
    from data.areas import replace_hierarchy
    from tests.factories import rect_city

    db, areas = world
    import_devices(db, areas, types, write_csv(tmp_path / "d.csv", GOOD[:1]))
    grid = devices(db)["JG-0001"].grid_code
    without = [r for r in rect_city() if r.code != grid]   # (replace_hierarchy checks references, not tiling)
    with pytest.raises(ValueError, match=f"devices: {grid}"):
        with db.session() as s:
            replace_hierarchy(s, without)
    assert devices(db)["JG-0001"].grid_code == grid


def test_a_file_changed_between_the_passes_is_rolled_back(sqlite_world, types, tmp_path, monkeypatch):
    import sensing.importer as importer

    db, areas = sqlite_world
    path = write_csv(tmp_path / "d.csv", GOOD)
    later = write_csv(tmp_path / "later.csv", GOOD + [("JG-0009", "manhole_cover", "后加的", *P1, WATER)])
    reads = []
    original = importer._csv_rows

    def rows(p):
        reads.append(p)
        return original(p if len(reads) == 1 else later)   # the write pass sees the changed file

    monkeypatch.setattr(importer, "_csv_rows", rows)
    with pytest.raises(DeviceImportError, match="文件在校验后被修改，已全部回滚"):
        import_devices(db, areas, types, path)
    assert devices(db) == {}


def test_many_bad_rows_are_all_counted(sqlite_world, types, tmp_path):
    db, areas = sqlite_world
    rows = [(f"X-{n}", "toaster", "坏", *P1, WATER) for n in range(1500)]
    with pytest.raises(DeviceImportError) as err:
        import_devices(db, areas, types, write_csv(tmp_path / "many.csv", rows))
    assert err.value.total == 1500 and len(err.value.problems) == 1000
    text = str(err.value)
    assert "发现 1,500 处问题" in text and "另有 1,300 处问题未列出" in text and text.count("\n") == 201
