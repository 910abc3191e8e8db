"""Commands on the device registry: import-devices."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("import-devices")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def import_devices_command(path: Path):
    """Load devices from CSV (device_id,type,name,lon,lat,unit_code) or GeoJSON points (all or nothing)."""
    from data.schema import init_db
    from sensing.importer import DeviceImportError, import_devices

    svc = services()
    init_db(svc.db)
    try:
        report = import_devices(svc.db, svc.areas, svc.devices.types(), path)
    except DeviceImportError as exc:
        fail(str(exc))
    click.echo(report.summary())
