"""Seed the demo city (Changzhou): hierarchy, catalog, units, indicators, one user per role, the device fleet, the
emergency resources (demo/resources.py) and the last 7 days of the city's vital signs (demo/indicator_feed.py)."""
from __future__ import annotations

import logging

from data import files
from data.areas import area_count, load_records, replace_hierarchy
from data.db import Database
from data.devices import device_count
from data.models import Meta, utcnow
from demo.devices import seed_fleet
from figures.plan_indicators import seed_indicators
from data.reference import check_routing_exceptions, ensure_units, sync_catalog
from data.users import seed_demo_users

DEMO_SEEDED_KEY = "demo_seeded"


def seed_demo(db: Database, progress=print, records=None) -> bool:
    """Loads the demo city once; returns False when it was there already (idempotent).
    `records` lets a caller that generated the city already (tests) skip the generation.
    Either way the catalog and the units are brought to the shipped data files (data.reference:
    new and changed categories, code renames with their cases, units of new unit types), in one
    transaction, and what changed is reported through `progress`."""
    with db.session() as s:
        seeded = s.get(Meta, DEMO_SEEDED_KEY) is not None
        if seeded:
            sync = sync_catalog(s)  # demo databases seeded with an older catalog are brought forward
            units = ensure_units(s)  # ... and get the units of unit types added since
            check_routing_exceptions(s)
            seed_indicators(s)  # demo databases seeded before the indicators existed get them too
            seed_demo_users(s)  # ... and before sign-in existed, the demo users
            fleet = _fleet_line(*seed_fleet(s, load_records(s), files.device_types(), utcnow())) \
                if device_count(s) == 0 else None  # ... and before the device registry, the fleet
            for line in sync.lines() + ([f"新增处置单位 {units} 个"] if units else []) + ([fleet] if fleet else []):
                progress(line)
        elif area_count(s) > 0:
            raise ValueError("数据库中已有导入的城市网格，未加载演示城市（演示数据只装入空库）")
    if seeded:
        _resources(db, progress)  # demo databases seeded before the emergency resources existed get them
        # what is missing of the last 7 days (a server that was down): logged, not said (seeding again says nothing
        # when nothing else changed)
        _vital_signs(db, logging.getLogger("ucc.demo").info)
        return False
    if records is None:
        from demo.city import generate_demo_city  # generation takes seconds: only when needed

        progress("生成演示城市网格（常州）…")
        records = generate_demo_city()
    with db.session() as s:
        n = replace_hierarchy(s, records)
        c = sync_catalog(s).written
        u = ensure_units(s)
        check_routing_exceptions(s)
        seed_indicators(s)
        users = seed_demo_users(s)
        devices, seconds = seed_fleet(s, records, files.device_types(), utcnow())
        s.add(Meta(key=DEMO_SEEDED_KEY, value="changzhou"))
    progress(f"已写入 {n} 个区域、{c} 个事件类别、{u} 个处置单位、{users} 个演示用户")
    progress(_fleet_line(devices, seconds))
    _resources(db, progress)
    _vital_signs(db, progress)
    return True


def _vital_signs(db: Database, progress) -> None:
    """The demo feeder's last 7 days of the city's vital signs, through the real ingest (only what is missing)."""
    from demo.indicator_feed import IndicatorFeeder
    from sensing.indicators import IndicatorIngest

    n = IndicatorFeeder(IndicatorIngest(db, files.city_indicators), utcnow).catch_up()
    if n:
        progress(f"已补录城市体征指标读数 {n:,} 条（近 7 日，演示数据）")


def _resources(db: Database, progress) -> None:
    """The demo city's emergency resources (data/demo_resources.geojson) through the real importer, once."""
    from data.area_directory import AreaDirectory
    from data.resources import resource_count
    from demo.resources import seed_resources

    with db.session() as s:
        if resource_count(s) > 0:
            return
    n, seconds = seed_resources(db, AreaDirectory(db))
    progress(f"已写入 {n:,} 项演示应急资源（队伍、仓库与库存、装备、避难场所；用时 {seconds:.2f} 秒）")


def _fleet_line(devices: int, seconds: float) -> str:
    return f"已写入 {devices:,} 台演示物联设备（用时 {seconds:.2f} 秒）"
