"""The plan's key indicators (规划主要指标): definitions from data/indicators/, current values, progress, updates."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.files import PLAN_INDICATORS_PATH
from data.models import Indicator, IndicatorValue, utcnow
from dispatch.city_time import city_today, local_iso
from dispatch.errors import ServiceError
from dispatch.limits import EARLIEST_DAY


# The cockpit's thematic panels; every indicator belongs to one of them.
THEME_LABELS = {
    "city": "城市管理",
    "emergency": "应急管理",
    "environment": "生态环境",
    "traffic": "交通出行",
    "public": "公共服务",
    "economy": "产业经济",
}
STATUS_LABELS = {"met_2025": "已达2025目标", "met_2023": "已达2023目标", "behind": "未达2023目标",
                 "no_value": "暂无数据"}
SOURCES = ("seed", "file", "api")
WRITER_ROLES = ("admin", "leader")
DEFINITION_COLUMNS = ("code", "theme", "domain", "name", "unit", "direction", "decimals", "baseline_2020",
                      "target_2023", "target_2025", "responsible_unit", "demo_value", "demo_as_of")


def today_shanghai() -> date:
    return city_today()


# ---- progress (pure) ---------------------------------------------------------------------------
def meets(value: float, target: float, direction: str) -> bool:
    return value >= target if direction == "up" else value <= target


def progress(value: float | None, target: float, baseline: float | None, direction: str) -> float | None:
    """Share of the way from the baseline to the target (0–1, clamped); without a usable baseline,
    value/target (higher is better) or target/value (lower is better)."""
    if value is None:
        return None
    if meets(value, target, direction):
        return 1.0
    if baseline is not None and baseline != target and not meets(baseline, target, direction):
        p = (value - baseline) / (target - baseline)
    elif direction == "up":
        p = value / target if target else 1.0
    else:
        p = target / value if value > 0 else 1.0
    return max(0.0, min(1.0, p))


def status_of(value: float | None, target_2023: float, target_2025: float, direction: str) -> str:
    if value is None:
        return "no_value"
    if meets(value, target_2025, direction):
        return "met_2025"
    if meets(value, target_2023, direction):
        return "met_2023"
    return "behind"


def format_value(value: float | None, decimals: int) -> str:
    if value is None:
        return "—"
    return f"{value:,.{max(0, decimals)}f}"


def indicator_dict(row: Indicator) -> dict:
    """The API's indicator object: definition, current value, progress toward 2025, status."""
    status = status_of(row.value, row.target_2023, row.target_2025, row.direction)
    p = progress(row.value, row.target_2025, row.baseline, row.direction)
    return {
        "code": row.code, "theme": row.theme, "theme_label": THEME_LABELS.get(row.theme, row.theme),
        "domain": row.domain, "name": row.name, "unit": row.unit, "direction": row.direction,
        "decimals": row.decimals, "baseline_2020": row.baseline,
        "target_2023": row.target_2023, "target_2025": row.target_2025,
        "responsible_unit": row.responsible_unit,
        "value": row.value, "as_of": row.as_of.isoformat() if row.as_of else None, "is_demo": row.is_demo,
        "progress": None if p is None else round(p, 4), "status": status, "status_label": STATUS_LABELS[status],
        "updated_at": local_iso(row.updated_at),
        "updated_by": row.updated_by,
    }


# ---- definitions file --------------------------------------------------------------------------
def _number(raw: str, what: str, where: str, required: bool = True) -> float | None:
    raw = (raw or "").strip()
    if raw == "":
        if required:
            raise ValueError(f"{where}：{what}不能为空")
        return None
    try:
        v = float(raw)
    except ValueError:
        raise ValueError(f"{where}：{what}须为数字，收到 {raw!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}：{what}须为有限数字")
    return v


def load_definitions(path: Path = PLAN_INDICATORS_PATH) -> list[dict]:
    """The plan table as rows ready for :class:`Indicator` (plus demo_value / demo_as_of);
    raises ValueError naming the line for anything malformed."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in DEFINITION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name} 缺少列：{', '.join(missing)}")
        rows, seen = [], set()
        for n, r in enumerate(reader, start=2):
            where = f"{path.name} 第 {n} 行"
            code = (r["code"] or "").strip()
            if not code or code in seen:
                raise ValueError(f"{where}：指标编码为空或重复（{code!r}）")
            seen.add(code)
            if r["theme"] not in THEME_LABELS:
                raise ValueError(f"{where}：主题须为 {', '.join(THEME_LABELS)} 之一")
            if r["direction"] not in ("up", "down"):
                raise ValueError(f"{where}：direction 须为 up 或 down")
            demo_as_of = (r["demo_as_of"] or "").strip()
            rows.append({
                "code": code, "theme": r["theme"], "domain": r["domain"].strip(), "name": r["name"].strip(),
                "unit": (r["unit"] or "").strip(), "direction": r["direction"],
                "decimals": int(_number(r["decimals"], "小数位", where)),
                "baseline": _number(r["baseline_2020"], "2020 基期值", where, required=False),
                "target_2023": _number(r["target_2023"], "2023 目标", where),
                "target_2025": _number(r["target_2025"], "2025 目标", where),
                "responsible_unit": r["responsible_unit"].strip(), "sort_order": n,
                "demo_value": _number(r["demo_value"], "演示值", where, required=False),
                "demo_as_of": date.fromisoformat(demo_as_of) if demo_as_of else None,
            })
    return rows


def seed_indicators(session: Session, path: Path = PLAN_INDICATORS_PATH) -> int:
    """Insert the plan's indicators that are not in the database yet, with their demo values
    (marked is_demo); existing rows and their values are left alone. Returns rows inserted."""
    have = set(session.scalars(select(Indicator.code)))
    n = 0
    for d in load_definitions(path):
        if d["code"] in have:
            continue
        value, as_of = d.pop("demo_value"), d.pop("demo_as_of")
        session.add(Indicator(**d, value=value, as_of=as_of, is_demo=True,
                              updated_at=utcnow() if value is not None else None,
                              updated_by="演示数据" if value is not None else None))
        if value is not None and as_of is not None:
            session.flush()
            session.add(IndicatorValue(indicator_code=d["code"], value=value, as_of=as_of, source="seed",
                                       actor="演示数据", is_demo=True))
        n += 1
    session.flush()
    return n


# ---- reads -------------------------------------------------------------------------------------
def list_indicators(session: Session, theme: str | None = None) -> list[dict]:
    if theme is not None and theme not in THEME_LABELS:
        raise ServiceError(400, "bad_request", f"theme 须为 {', '.join(THEME_LABELS)} 之一")
    q = select(Indicator).order_by(Indicator.sort_order, Indicator.code)
    if theme is not None:
        q = q.where(Indicator.theme == theme)
    return [indicator_dict(r) for r in session.scalars(q)]


def get_indicator(session: Session, code: str) -> dict:
    row = session.get(Indicator, code)
    if row is None:
        raise ServiceError(404, "not_found", f"指标 {code} 不存在")
    return indicator_dict(row)


def history(session: Session, code: str, limit: int = 50) -> list[dict]:
    rows = session.scalars(select(IndicatorValue).where(IndicatorValue.indicator_code == code)
                           .order_by(IndicatorValue.as_of.desc(), IndicatorValue.id.desc()).limit(limit))
    return [{"value": r.value, "as_of": r.as_of.isoformat(), "source": r.source, "actor": r.actor,
             "is_demo": r.is_demo} for r in rows]


# ---- updates -----------------------------------------------------------------------------------
def parse_value(raw, unit: str = "") -> float:
    """A reported value: a finite, non-negative number (0–100 for percentages)."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        raise ServiceError(400, "invalid", "value（指标值）必填")
    if isinstance(raw, bool):
        raise ServiceError(400, "invalid", "value（指标值）须为数字")
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            raise ServiceError(400, "invalid", f"value（指标值）须为数字，收到 {raw!r}") from None
    if not isinstance(raw, (int, float)):
        raise ServiceError(400, "invalid", "value（指标值）须为数字")
    value = float(raw)
    if not math.isfinite(value):
        raise ServiceError(400, "invalid", "value（指标值）须为有限数字")
    if value < 0:
        raise ServiceError(400, "invalid", "value（指标值）不能为负数")
    if unit == "%" and value > 100:
        raise ServiceError(400, "invalid", f"百分比指标的值须在 0–100 之间，收到 {value:g}")
    return value


def parse_as_of(raw, today: date | None = None) -> date:
    """The date the value holds for: YYYY-MM-DD, not after today (Asia/Shanghai)."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        raise ServiceError(400, "invalid", "as_of（统计截止日期）必填，格式 YYYY-MM-DD")
    if not isinstance(raw, str):
        raise ServiceError(400, "invalid", "as_of（统计截止日期）须为 YYYY-MM-DD 格式的字符串")
    text = raw.strip()
    try:
        if len(text) != 10:
            raise ValueError
        d = date.fromisoformat(text)
    except ValueError:
        raise ServiceError(400, "invalid", f"as_of（统计截止日期）须为 YYYY-MM-DD 格式的日期，收到 {raw!r}") from None
    if d > (today or today_shanghai()):
        raise ServiceError(400, "invalid", f"as_of（统计截止日期）{text} 晚于今天")
    if d < EARLIEST_DAY:
        raise ServiceError(400, "invalid", f"as_of（统计截止日期）须不早于 {EARLIEST_DAY.isoformat()}")
    return d


def set_value(session: Session, code: str, value, as_of, source: str, actor: str,
              today: date | None = None) -> dict:
    """Record a value (validated) in the history; it becomes the current value unless a newer
    as_of is already current. Returns the indicator object plus "applied" (became current)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    row = session.get(Indicator, code)
    if row is None:
        raise ServiceError(404, "not_found", f"指标 {code} 不存在")
    v = parse_value(value, row.unit)
    d = parse_as_of(as_of, today)
    now = utcnow()
    session.add(IndicatorValue(indicator_code=code, value=v, as_of=d, source=source, actor=actor, is_demo=False,
                               recorded_at=now))
    applied = row.as_of is None or row.is_demo or d >= row.as_of
    if applied:
        row.value, row.as_of, row.is_demo, row.updated_at, row.updated_by = v, d, False, now, actor
    session.flush()
    return {**indicator_dict(row), "applied": applied}


def update_from_request(session: Session, code: str, payload, role: str, actor: str,
                        today: date | None = None) -> dict:
    """The PUT /api/v1/indicators/<code> rule: admin or leader, body {"value": …, "as_of": "YYYY-MM-DD"}."""
    if role not in WRITER_ROLES:
        raise ServiceError(403, "forbidden", "只有管理员或领导令牌可以更新指标")
    if not isinstance(payload, dict):
        raise ServiceError(400, "bad_request", "请求体须为 JSON 对象（Content-Type: application/json），"
                                                 '如 {"value": 96.5, "as_of": "2026-10-31"}')
    if session.get(Indicator, code) is None:
        raise ServiceError(404, "not_found", f"指标 {code} 不存在")
    return set_value(session, code, payload.get("value"), payload.get("as_of"), "api", actor, today)


# ---- value files -------------------------------------------------------------------------------
def read_value_file(path: Path) -> list[dict]:
    """Rows {code, value, as_of, line} from a CSV (header code,value,as_of) or a JSON list of
    objects with those keys. Format problems raise ValueError naming the file."""
    text = Path(path).read_text(encoding="utf-8-sig")
    if Path(path).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{Path(path).name} 不是有效的 JSON：{exc}") from None
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise ValueError(f"{Path(path).name}：JSON 须为对象数组，如 [{{\"code\": …, \"value\": …, \"as_of\": …}}]")
        return [{"code": str(x.get("code", "")).strip(), "value": x.get("value"), "as_of": x.get("as_of"),
                 "line": f"第 {i} 项"} for i, x in enumerate(data, start=1)]
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in ("code", "value", "as_of") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{Path(path).name} 缺少列：{', '.join(missing)}（需要 code,value,as_of）")
    return [{"code": (r["code"] or "").strip(), "value": r["value"], "as_of": r["as_of"], "line": f"第 {n} 行"}
            for n, r in enumerate(reader, start=2)]


@dataclass
class ImportReport:
    rows: int
    applied: int
    problems: list[str]


def import_values(session: Session, path: Path, actor: str, today: date | None = None) -> ImportReport:
    """Validate every row first; write all of them or none. Problems are listed per line."""
    rows = read_value_file(path)
    units = dict(session.execute(select(Indicator.code, Indicator.unit)).all())
    problems = []
    for r in rows:
        if r["code"] not in units:
            problems.append(f"{r['line']}：指标 {r['code'] or '（空）'} 不存在")
            continue
        try:
            parse_value(r["value"], units[r["code"]])
            parse_as_of(r["as_of"], today)
        except ServiceError as exc:
            problems.append(f"{r['line']}（{r['code']}）：{exc.message}")
    if problems or not rows:
        return ImportReport(len(rows), 0, problems or ["文件中没有数据行"])
    applied = sum(set_value(session, r["code"], r["value"], r["as_of"], "file", actor, today)["applied"]
                  for r in rows)
    return ImportReport(len(rows), applied, [])
