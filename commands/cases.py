"""Commands on cases: import-cases (a legacy system's log)."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from cases.legacy_import import BATCH_SIZE
from commands.common import fail
from web.services import services


@click.command("import-cases")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(min=1))
@click.option("--no-progress", is_flag=True, help="不显示进度条")
def import_cases_command(path: Path, batch_size: int, no_progress: bool):
    """Load historical cases from a legacy system's CSV (all or nothing)."""
    from cases.legacy_import import CaseImportError, import_cases

    try:
        report = import_cases(services().cases, path, progress=not no_progress, batch_size=batch_size)
    except CaseImportError as exc:
        fail(str(exc))
    click.echo(report.summary())
