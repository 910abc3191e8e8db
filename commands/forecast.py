"""Commands on foresight: forecast (expected case counts per day with intervals, backtested against the
seasonal-naive baseline; docs/foresight.md)."""
from __future__ import annotations

import json
from datetime import datetime

import click
from flask.cli import with_appcontext

from commands.common import fail
from dispatch.errors import ServiceError
from web.services import services

METHOD_LABELS = {"negative_binomial": "负二项模型", "poisson": "泊松模型", "seasonal_naive": "上周同日"}


def parse_at(raw: str | None) -> datetime | None:
    """An ISO 8601 time with its offset, or a ServiceError in Chinese."""
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(400, "bad_request", f"--at 应为带时区的 ISO 8601 时间，收到 {raw[:40]!r}")
    if value.tzinfo is None:
        raise ServiceError(400, "bad_request", "--at 须带时区偏移（如 2026-12-07T09:30:00+08:00）")
    return value


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    by_label = {"district": "区", "kind": "类型", "category": "类别"}[result["by"]]
    labels = result["labels"]
    level = round(result["interval_level"] * 100)
    table = Table(title=f"案件量预测（{result['at']} 起 {result['days']} 天，{level}% 预测区间）")
    for col, justify in ((by_label, "left"), ("日期", "left"), ("预计", "right"), ("下限", "right"),
                         ("上限", "right"), ("方法", "left")):
        table.add_column(col, justify=justify)
    for it in result["items"]:
        table.add_row(labels.get(it["key"], it["key"]), it["date"], f"{it['expected']:.1f}", str(it["lower"]),
                      str(it["upper"]), METHOD_LABELS.get(it["method"], it["method"]))
    bt = result["backtest"]
    check = Table(title=f"回测：最近 {bt['weeks']} 周滚动预测 7 天的平均绝对误差（MAE，件/天）")
    for col in (by_label, "模型误差", "基线误差（上周同日）", "采用"):
        check.add_column(col)
    for k in bt["keys"]:
        fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
        check.add_row(labels.get(k["key"], k["key"]), fmt(k["model_error"]), fmt(k["baseline_error"]),
                      "模型" if k["used"] == "model" else "基线")
    console = Console(width=160)
    console.print(table)
    console.print(check)


@click.command("forecast")
@with_appcontext
@click.option("--days", "days", type=int, required=True, help="forecast horizon in days (1 … max_days of forecast.json)")
@click.option("--by", "by", default="district", show_default=True, help="district | kind | category")
@click.option("--at", "at", default=None, help="forecast as of this past time (ISO 8601 with offset)")
@click.option("--area", "area", default=None, help="only the cases of this area (a district or any area below)")
@click.option("--json", "as_json", is_flag=True, help="print JSON (the API's answer) instead of tables")
def forecast_command(days: int, by: str, at: str | None, area: str | None, as_json: bool):
    """Expected case counts per day with prediction intervals, and the backtest against the seasonal-naive
    baseline (same weekday last week)."""
    svc = services().forecast
    if svc is None:
        fail("预测服务未启用")
    try:
        result = svc.forecast(by, days, parse_at(at), area)
    except ServiceError as exc:
        fail(exc.message)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        _print(result)
