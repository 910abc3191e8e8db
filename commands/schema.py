"""Commands on the database itself: init-db."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from web.services import services


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or migrate the schema of DATABASE_URL (idempotent)."""
    from data.schema import init_db

    rev = init_db(services().db)
    click.echo(f"数据库结构已是最新版本 ({rev})")
