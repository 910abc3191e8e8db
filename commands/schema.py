"""Commands on the database itself and its reference data: init-db, sync-catalog."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or migrate the schema of DATABASE_URL (idempotent)."""
    from data.schema import init_db

    rev = init_db(services().db)
    click.echo(f"数据库结构已是最新版本 ({rev})")


@click.command("sync-catalog")
@with_appcontext
def sync_catalog_command():
    """Bring the catalog and the units to the data files (data/catalog/), renaming old codes with
    their cases, in one transaction (idempotent)."""
    from data.reference import check_routing_exceptions, ensure_units, sync_catalog
    from data.schema import init_db
    from dispatch.catalog import CatalogError

    db = services().db
    init_db(db)
    try:
        with db.session() as s:
            report = sync_catalog(s)
            units = ensure_units(s)
            check_routing_exceptions(s)
    except CatalogError as exc:  # bad data: the transaction rolled back, nothing changed
        fail(f"未做任何修改：\n{exc}")
    lines = report.lines() + ([f"新增处置单位 {units} 个"] if units else [])
    click.echo("\n".join(lines) if lines else "类别目录与处置单位已是最新")
