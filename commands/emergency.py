"""Commands on the emergency room: import-resources (teams, warehouses and their stock, equipment, shelters)."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("import-resources")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stock", "stock", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="warehouses' stock, CSV: resource_id,item,quantity,unit")
def import_resources_command(path: Path, stock: Path | None):
    """Load emergency resources from CSV (resource_id,type,name,lon,lat,unit_code,specialty,capacity) or GeoJSON
    points, and warehouses' stock (--stock FILE.csv, or a `stock` property in GeoJSON); all or nothing."""
    from data.schema import init_db
    from emergency.importer import ResourceImportError, import_resources

    svc = services()
    init_db(svc.db)
    try:
        report = import_resources(svc.db, svc.areas, path, stock)
    except ResourceImportError as exc:
        fail(str(exc))
    click.echo(report.summary())
