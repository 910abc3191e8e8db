"""Flask CLI commands of CONTRACT.md: init-db, seed-demo, import-grid, export-grid, create-token."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app


def _services():
    return current_app.extensions["ucc"]


def _fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


def register(server: Flask) -> None:
    @server.cli.command("init-db")
    def init_db_command():
        """Create or migrate the schema of DATABASE_URL (idempotent)."""
        from data.schema import init_db

        rev = init_db(_services().db)
        click.echo(f"数据库结构已是最新版本 ({rev})")

    @server.cli.command("seed-demo")
    def seed_demo_command():
        """Load the demo city (idempotent)."""
        from data.schema import init_db
        from data.seed import seed_demo

        init_db(_services().db)
        try:
            loaded = seed_demo(_services().db, progress=click.echo)
        except ValueError as exc:
            _fail(str(exc))
        click.echo("演示城市已加载" if loaded else "演示城市已存在，未做修改")

    @server.cli.command("import-grid")
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

        db = _services().db
        init_db(db)
        with db.session() as s:
            if area_count(s) and not replace:
                _fail("数据库中已有城市网格；如需替换请加 --replace（未做任何修改）")
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
            _fail(str(exc))
        _services().areas.invalidate()
        counts = {}
        for r in records:
            counts[r.level] = counts.get(r.level, 0) + 1
        click.echo(f"已导入 {n} 个区域：" + "，".join(f"第{k}级 {v}" for k, v in sorted(counts.items())))

    @server.cli.command("export-grid")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    def export_grid_command(path: Path):
        """Write the hierarchy in the database to GeoJSON or GeoPackage (the import format)."""
        from data.areas import load_records
        from geo.importer import write_hierarchy_file

        with _services().db.session() as s:
            records = load_records(s)
        if not records:
            _fail("数据库中没有城市网格")
        try:
            write_hierarchy_file(records, str(path))
        except ValueError as exc:
            _fail(str(exc))
        click.echo(f"已导出 {len(records)} 个区域到 {path}")

    @server.cli.command("create-token")
    @click.option("--role", required=True, help="admin, duty_officer, leader, unit_handler, grid_member, wall")
    @click.option("--area", "area_code", default=None, help="区域编码（默认整个城市）")
    @click.option("--unit", "unit_code", default=None, help="单位编码（处置单位角色必填）")
    @click.option("--label", default="", help="备注")
    def create_token_command(role: str, area_code: str | None, unit_code: str | None, label: str):
        """Print a bearer token for the API."""
        from data.tokens import create_token

        try:
            with _services().db.session() as s:
                token = create_token(s, role, area_code, unit_code, label)
        except ValueError as exc:
            _fail(str(exc))
        click.echo(token)
