"""The warn command: the early warnings computed now (or as of a past time) and stored (docs/foresight.md)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("warn")
@with_appcontext
@click.option("--at", "at", default=None, help="按某一时刻计算（ISO 8601，带时区偏移），默认当前时间")
def warn_command(at: str | None):
    """Compute the early warnings (surges, hotspots, recurring spots) and store the new ones."""
    from dispatch.errors import ServiceError, RulesFileError
    from foresight.warnings import parse_at

    app = services()
    if app.warnings is None:
        fail("预警服务未启用")
    try:
        when = parse_at(at) if at is not None else None
        stored = app.warnings.run(when)
    except ServiceError as exc:
        fail(exc.message)
    except RulesFileError as exc:
        fail(str(exc))
    if not stored:
        click.echo("没有新的预警（未发现新情况，或发现的均已存储）")
        return
    click.echo(f"新存储预警 {len(stored)} 条：")
    for w in stored:
        where = w["area_name"] or w["area"]
        what = f"「{w['category_name']}」" if w.get("category_name") else ""
        expected = f"，预期 {w['expected']:g}" if w.get("expected") is not None else ""
        click.echo(f"  #{w['id']} {w['kind_label']} {where}{what}：{w['window_start']} 至 {w['window_end']} "
                   f"共 {w['observed']} 件{expected}；通知 {w['responsible_name'] or w['responsible_area']}"
                   f"{w['responsible_level'] or ''}值班员")
