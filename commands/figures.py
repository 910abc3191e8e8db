"""Commands on figures: kpi (the assessment figures of a period), assessment-report (the monthly report), indicators and import-indicators (plan indicators)."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services

# The columns of the printed table, in the contract's order, with the names cities publish them under.
KPI_LABELS = [("received", "受理数"), ("accepted", "立案数"), ("due", "应结案数"), ("closed", "结案数"),
              ("closed_on_time", "按期结案数"), ("closure_rate", "结案率"), ("on_time_rate", "按期结案率"),
              ("rework_rate", "返工率"), ("extension_rate", "延期率"), ("overdue_open", "超期未结"),
              ("mean_handling_hours", "平均处置时长(小时)"), ("voided", "作废数"), ("suspended", "挂账数")]


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


@click.command("kpi")
@with_appcontext
@click.option("--start", "start", required=True, help="开始日期 YYYY-MM-DD")
@click.option("--end", "end", required=True, help="结束日期 YYYY-MM-DD（含）")
@click.option("--by", type=click.Choice(["district", "unit", "category"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="输出 JSON")
def kpi_command(start: str, end: str, by: str | None, as_json: bool):
    """Assessment figures for the period (end inclusive)."""
    import json
    from datetime import date

    from dispatch.errors import ServiceError
    from figures.service import kpis

    try:
        d0, d1 = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        fail("日期格式应为 YYYY-MM-DD")
    try:
        figures = kpis(services().cases, d0, d1, by)
    except ServiceError as exc:
        fail(exc.message)
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    _print_kpis(figures)


@click.command("import-indicators")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--actor", default="文件导入", show_default=True, help="记录在历史中的更新人")
def import_indicators_command(path: Path, actor: str):
    """Update indicator values from a CSV (code,value,as_of) or JSON file; all or nothing."""
    from figures.plan_indicators import import_values

    try:
        with services().db.session() as s:
            report = import_values(s, path, actor)  # writes nothing when any row is refused
    except ValueError as exc:
        fail(str(exc))
    if report.problems:
        click.echo(f"发现 {len(report.problems)} 个问题，未写入任何数据：", err=True)
        for p in report.problems:
            click.echo(f"  - {p}", err=True)
        fail("")
    click.echo(f"已导入 {report.rows} 条指标值，其中 {report.applied} 条成为当前值"
               + ("" if report.applied == report.rows else "（其余早于已有的统计截止日期，只记入历史）"))


@click.command("indicators")
@with_appcontext
@click.option("--json", "as_json", is_flag=True, help="输出 JSON")
def indicators_command(as_json: bool):
    """Print the plan's key indicators with their current values and progress."""
    import json

    from figures.plan_indicators import format_value, list_indicators

    with services().db.session() as s:
        items = list_indicators(s)
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    if not items:
        click.echo("尚无指标：请先运行 seed-demo（或在 seed 中调用 seed_indicators）")
        return
    for it in items:
        p = "—" if it["progress"] is None else f"{it['progress'] * 100:.0f}%"
        demo = "（演示）" if it["is_demo"] else ""
        click.echo(f"{it['code']:<7} {it['theme_label']:<5} {it['name']}：{format_value(it['value'], it['decimals'])}"
                   f"{it['unit']}{demo}  截至 {it['as_of'] or '—'}  2023 目标 {it['target_2023']:g}  "
                   f"2025 目标 {it['target_2025']:g}  进度 {p}  {it['status_label']}")


@click.command("assessment-report")
@with_appcontext
@click.option("--month", required=True, help="考核月份 YYYY-MM")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="输出文件：.xlsx 或 .pdf")
def assessment_report_command(month: str, out: Path):
    """The month's assessment report (月度考核通报) as an Excel workbook or an A4 PDF."""
    import os
    import time

    from dispatch.errors import ServiceError
    from figures.report import format_of, parse_month, report_data, write_report

    # Everything that can be refused is refused before the figures are read: nothing is written then.
    try:
        parse_month(month)
        format_of(out)
    except ServiceError as exc:
        fail(exc.message)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        fail(f"{out} 是一个目录，请给出文件名")
    if not parent.is_dir():
        fail(f"无法写入 {out}：目录 {parent} 不存在")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        fail(f"无法写入 {out}：没有写入权限")
    started = time.perf_counter()
    try:
        data = report_data(services().cases, month)
        write_report(data, out)
    except ServiceError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"无法写入 {out}：{exc.strerror or exc}")
    click.echo(f"已生成 {data['title']}：{out}（{out.stat().st_size / 1024:,.0f} KB，"
               f"用时 {time.perf_counter() - started:.1f} 秒）")
