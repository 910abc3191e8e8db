"""Commands on the city's hierarchy: import-grid, export-grid."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("import-grid")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layer", default=None, help="GeoPackage 图层名（文件含多个图层时）")
@click.option("--tolerance-m2", default=10.0, show_default=True, type=float,
              help="缝隙/重叠容差（平方米）")
@click.option("--replace", is_flag=True, help="替换库中已有的城市网格")
def import_grid_command(path: Path, layer: str | None, tolerance_m2: float, replace: bool):
    """Load a city's hierarchy from GeoJSON or GeoPackage; validates everything first."""
    from data.areas import area_count, replace_hierarchy
    from data.schema import init_db
    from geo.importer import load_and_validate

    db = services().db
    init_db(db)
    with db.session() as s:
        if area_count(s) and not replace:
            fail("数据库中已有城市网格；如需替换请加 --replace（未做任何修改）")
    click.echo(f"读取并校验 {path} …")
    records, problems = load_and_validate(str(path), layer=layer, tolerance_m2=tolerance_m2)
    if problems:
        click.echo(f"发现 {len(problems)} 个问题，未写入任何数据：", err=True)
        for p in problems:
            click.echo(f"  - {p}", err=True)
        sys.exit(1)
    try:
        with db.session() as s:
            n = replace_hierarchy(s, records)
    except ValueError as exc:
        fail(str(exc))
    services().areas.invalidate()
    counts = {}
    for r in records:
        counts[r.level] = counts.get(r.level, 0) + 1
    click.echo(f"已导入 {n} 个区域：" + "，".join(f"第{k}级 {v}" for k, v in sorted(counts.items())))


@click.command("export-grid")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def export_grid_command(path: Path):
    """Write the hierarchy in the database to GeoJSON or GeoPackage (the import format)."""
    from data.areas import load_records
    from geo.importer import write_hierarchy_file

    with services().db.session() as s:
        records = load_records(s)
    if not records:
        fail("数据库中没有城市网格")
    try:
        write_hierarchy_file(records, str(path))
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"已导出 {len(records)} 个区域到 {path}")
