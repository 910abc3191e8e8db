"""Commands of the demo city: seed-demo, simulate."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load the demo city (idempotent)."""
    from data.schema import init_db
    from demo.seed import seed_demo

    init_db(services().db)
    try:
        loaded = seed_demo(services().db, progress=click.echo)
    except ValueError as exc:
        fail(str(exc))
    click.echo("演示城市已加载" if loaded else "演示城市已存在，未做修改")


@click.command("simulate")
@with_appcontext
@click.option("--rate", type=float, default=6.0, show_default=True, help="平均每分钟上报件数（按日节律起伏）")
@click.option("--duration", type=float, default=None, help="运行秒数（默认一直运行，Ctrl-C 结束）")
@click.option("--seed", type=int, default=None, help="随机种子（便于复现）")
@click.option("--backfill", is_flag=True, help="不按真实时间：以模拟时间快速生成截至此刻的 --duration 秒历史")
def simulate_command(rate: float, duration: float | None, seed: int | None, backfill: bool):
    """Feed realistic events through the real intake path."""
    from demo.runner import SimulationRunner

    if rate < 0 or (duration is not None and duration <= 0):
        fail("--rate 不能为负数，--duration 须为正数")
    if backfill and duration is None:
        fail("--backfill 需要 --duration")
    runner = SimulationRunner(services().cases, seed=seed, rate_per_minute=rate)
    if not runner.ready():
        fail("数据库中还没有城市网格或事件目录，请先运行 seed-demo 或 import-grid")
    click.echo(f"模拟上报：平均每分钟 {rate:g} 件（按日节律起伏），"
               + (f"{duration:g} 秒" if duration else "Ctrl-C 结束") + ("（补录历史）" if backfill else ""))
    stats = runner.run(rate, duration, realtime=not backfill, echo=click.echo)
    click.echo("合计：上报 {reports}（合并 {merged}），操作 {actions}，冲突 {conflicts}，拒绝 {refused}，"
               "错误 {errors}，接续 {picked_up}".format(**stats))
