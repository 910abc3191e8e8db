"""Commands of the demo city: seed-demo, simulate, backfill (demo history)."""
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


@click.command("backfill")
@with_appcontext
@click.option("--days", "days_text", default="90", show_default=True, help="补录截至此刻的天数（1–3660）")
@click.option("--seed", "seed_text", default=None, help="随机种子（默认固定，同一天每次生成相同的案件）")
@click.option("--no-progress", is_flag=True, help="不显示进度条")
def backfill_command(days_text: str, seed_text: str | None, no_progress: bool):
    """Demo history: N days of realistic cases ending now (idempotent, with a progress bar)."""
    from data.schema import init_db
    from demo.backfill import DEFAULT_SEED, backfill

    days_text = days_text.strip()
    if not (days_text.isascii() and days_text.isdigit()) or not 1 <= int(days_text) <= 3660:
        fail(f"--days 须为 1–3660 之间的整数天数，收到 {days_text!r}（未做任何修改）")
    seed = DEFAULT_SEED
    if seed_text is not None:
        try:
            seed = int(seed_text)
        except ValueError:
            fail(f"--seed 须为整数，收到 {seed_text!r}（未做任何修改）")
    init_db(services().db)
    try:
        report = backfill(services().cases, int(days_text), seed=seed, progress=not no_progress,
                          echo=None if not no_progress else click.echo)
    except ValueError as exc:
        fail(str(exc))
    click.echo(report.summary())
