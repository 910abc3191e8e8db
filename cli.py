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


KPI_LABELS = [("received", "受理数"), ("accepted", "立案数"), ("due", "应结案数"), ("closed", "结案数"),
              ("closed_on_time", "按期结案数"), ("closure_rate", "结案率"), ("on_time_rate", "按期结案率"),
              ("rework_rate", "返工率"), ("extension_rate", "延期率"), ("overdue_open", "超期未结"),
              ("mean_handling_hours", "平均处置时长(小时)")]


def _fmt(key: str, value) -> str:
    if value is None:
        return "—"
    if key.endswith("_rate"):
        return f"{value * 100:.2f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return f"{value:,}"


def _print_kpis(figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"考核指标 {figures['start']} — {figures['end']}")
    rows = [("全市", figures)] + [(g["name"] or "（未派遣）", g) for g in figures.get("groups", [])]
    table.add_column("范围")
    for _key, label in KPI_LABELS:
        table.add_column(label, justify="right")
    for name, f in rows:
        table.add_row(name, *(_fmt(k, f[k]) for k, _ in KPI_LABELS))
    Console(width=240).print(table)


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
        from demo.seed import seed_demo

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

    @server.cli.command("kpi")
    @click.option("--start", "start", required=True, help="开始日期 YYYY-MM-DD")
    @click.option("--end", "end", required=True, help="结束日期 YYYY-MM-DD（含）")
    @click.option("--by", type=click.Choice(["district", "unit", "category"]), default=None)
    @click.option("--json", "as_json", is_flag=True, help="输出 JSON")
    def kpi_command(start: str, end: str, by: str | None, as_json: bool):
        """Assessment figures for the period (end inclusive)."""
        import json
        from datetime import date

        from cases.service import ServiceError

        try:
            d0, d1 = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            _fail("日期格式应为 YYYY-MM-DD")
        try:
            figures = _services().cases.kpis(d0, d1, by)
        except ServiceError as exc:
            _fail(exc.message)
        if as_json:
            click.echo(json.dumps(figures, ensure_ascii=False, indent=2))
            return
        _print_kpis(figures)

    @server.cli.command("import-cases")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--batch-size", default=5000, show_default=True, type=int)
    @click.option("--no-progress", is_flag=True, help="不显示进度条")
    def import_cases_command(path: Path, batch_size: int, no_progress: bool):
        """Load historical cases from a legacy system's CSV (all or nothing)."""
        from cases.legacy_import import CaseImportError, import_cases

        try:
            report = import_cases(_services().cases, path, progress=not no_progress, batch_size=batch_size)
        except CaseImportError as exc:
            _fail(str(exc))
        click.echo(report.summary())

    @server.cli.command("simulate")
    @click.option("--rate", type=float, default=6.0, show_default=True, help="平均每分钟上报件数（按日节律起伏）")
    @click.option("--duration", type=float, default=None, help="运行秒数（默认一直运行，Ctrl-C 结束）")
    @click.option("--seed", type=int, default=None, help="随机种子（便于复现）")
    @click.option("--backfill", is_flag=True, help="不按真实时间：以模拟时间快速生成截至此刻的 --duration 秒历史")
    def simulate_command(rate: float, duration: float | None, seed: int | None, backfill: bool):
        """Feed realistic events through the real intake path."""
        from demo.runner import SimulationRunner

        if rate < 0 or (duration is not None and duration <= 0):
            _fail("--rate 不能为负数，--duration 须为正数")
        if backfill and duration is None:
            _fail("--backfill 需要 --duration")
        runner = SimulationRunner(_services().cases, seed=seed, rate_per_minute=rate)
        if not runner.ready():
            _fail("数据库中还没有城市网格或事件目录，请先运行 seed-demo 或 import-grid")
        click.echo(f"模拟上报：平均每分钟 {rate:g} 件（按日节律起伏），"
                   + (f"{duration:g} 秒" if duration else "Ctrl-C 结束") + ("（补录历史）" if backfill else ""))
        stats = runner.run(rate, duration, realtime=not backfill, echo=click.echo)
        click.echo("合计：上报 {reports}（合并 {merged}），操作 {actions}，冲突 {conflicts}，拒绝 {refused}，"
                   "错误 {errors}，接续 {picked_up}".format(**stats))

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

    @server.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", required=True, help="admin, duty_officer, leader, unit_handler, grid_member, wall")
    @click.option("--area", "area_code", default=None, help="区域编码（默认整个城市）")
    @click.option("--unit", "unit_code", default=None, help="单位编码（处置单位角色必填）")
    @click.option("--name", "display_name", default="", help="显示名称")
    @click.option("--reset", is_flag=True, help="只重设已有用户的密码")
    @click.password_option("--password", help="密码（至少 8 位；不给则提示输入）")
    def create_user_command(username: str, role: str, area_code: str | None, unit_code: str | None,
                            display_name: str, reset: bool, password: str):
        """Add a person who signs in at /login (or, with --reset, set their password)."""
        from sqlalchemy import select

        from data.models import Area
        from data.users import create_user, set_password

        try:
            with _services().db.session() as s:
                if reset:
                    set_password(s, username, password)
                else:
                    if area_code is None:
                        area_code = s.scalar(select(Area.code).where(Area.level == 1).order_by(Area.code)) or ""
                    create_user(s, username, password, role, area_code, unit_code, display_name)
        except ValueError as exc:
            _fail(str(exc))
        click.echo(f"已{'重设密码' if reset else '创建用户'}：{username}")

    from figures.plan_indicators import register_indicator_cli

    register_indicator_cli(server)

    # ---- backfill (demo/; issue 12 point 5) --------------------------------------------------------
    @server.cli.command("backfill")
    @click.option("--days", "days_text", default="90", show_default=True, help="补录截至此刻的天数（1–3660）")
    @click.option("--seed", "seed_text", default=None, help="随机种子（默认固定，同一天每次生成相同的案件）")
    @click.option("--no-progress", is_flag=True, help="不显示进度条")
    def backfill_command(days_text: str, seed_text: str | None, no_progress: bool):
        """Demo history: N days of realistic cases ending now (idempotent, with a progress bar)."""
        from demo.backfill import DEFAULT_SEED, backfill

        days_text = days_text.strip()
        if not (days_text.isascii() and days_text.isdigit()) or not 1 <= int(days_text) <= 3660:
            _fail(f"--days 须为 1–3660 之间的整数天数，收到 {days_text!r}（未做任何修改）")
        seed = DEFAULT_SEED
        if seed_text is not None:
            try:
                seed = int(seed_text)
            except ValueError:
                _fail(f"--seed 须为整数，收到 {seed_text!r}（未做任何修改）")
        from data.schema import init_db

        init_db(_services().db)
        try:
            report = backfill(_services().cases, int(days_text), seed=seed, progress=not no_progress,
                              echo=None if not no_progress else click.echo)
        except ValueError as exc:
            _fail(str(exc))
        click.echo(report.summary())
