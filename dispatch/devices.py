"""Device types as data: telemetry keys, allowed silence and alarm rules per type, checked and evaluable.

Pure (no files, no database): data/files.py reads data/catalog/device_types.json and hands the parsed
JSON to :func:`device_types_from_data`, which checks every type, key and rule and raises
:class:`DeviceTypesError` listing every problem at once (docs/devices.md). The rules are in the manner
of ThingsBoard's device-profile alarms: a condition is a conjunction of predicates on telemetry keys,
held at one message (simple), without a break for a duration, or in N messages in a row (repeating);
a clear condition must not overlap the condition (and, on a number, leave a band between them:
hysteresis). The alarm engine (a later increment) evaluates them with :meth:`Condition.holds` and the
timing fields; nothing here keeps state.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from dispatch.errors import RulesFileError

__all__ = ["DEVICE_STATUSES", "KINDS", "SEVERITIES", "Condition", "DeviceType", "DeviceTypesError",
           "KeySpec", "Predicate", "Rule", "device_types_from_data"]

DEVICE_STATUSES = ("online", "offline", "alarm", "maintenance")
STATUS_LABELS = {"online": "在线", "offline": "离线", "alarm": "告警", "maintenance": "维护"}
SEVERITIES = ("critical", "major", "minor", "warning")  # most severe first, as ThingsBoard orders them
SEVERITY_LABELS = {"critical": "紧急", "major": "重要", "minor": "次要", "warning": "提示"}
KINDS = ("number", "bool", "string")
CONDITION_TYPES = ("simple", "duration", "repeating")
NUMBER_OPS = (">", ">=", "<", "<=", "==", "!=")
EQUALITY_OPS = ("==", "!=")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# a week: longer silences or durations are typing errors, not a city's setting
MAX_SECONDS = 7 * 24 * 3600
MAX_REPEAT = 1000
# the rule code of the offline alarm every type has (dispatch.alarms): no rule of the file may take it
OFFLINE_RULE = "offline"


class DeviceTypesError(RulesFileError):
    TITLE = "设备类型文件有误"


@dataclass(frozen=True)
class KeySpec:
    """One telemetry key: its unit, kind and the values it can take (outside them: out of range)."""

    key: str
    name: str
    unit: str
    kind: str
    low: float | None = None
    high: float | None = None
    values: tuple[str, ...] | None = None

    def valid(self, value) -> bool:
        """Whether `value` is of this key's kind and within its range (a later reading outside is counted, not stored)."""
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "string":
            return isinstance(value, str) and (self.values is None or value in self.values)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        return self.low <= value <= self.high

    def to_dict(self) -> dict:
        out = {"key": self.key, "name": self.name, "unit": self.unit, "kind": self.kind}
        if self.kind == "number":
            out["range"] = [self.low, self.high]
        if self.values is not None:
            out["values"] = list(self.values)
        return out


_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
_MISSING = object()


def _all_hold(checks: tuple, values: dict) -> bool:
    """Predicate.holds for every (key, op, value, value is a flag) of `checks`, in one loop: the alarm engine asks
    this of every rule at every reading (5 rules a cover), where a call per predicate was a tenth of the ingest."""
    get = values.get
    for key, op, want, flag in checks:
        got = get(key, _MISSING)
        if got is _MISSING or flag is not (type(got) is bool):  # bool has no subclasses: isinstance's answer
            return False
        try:
            if not op(got, want):
                return False
        except TypeError:
            return False
    return True


@dataclass(frozen=True)
class Predicate:
    key: str
    op: str
    value: object

    def holds(self, values: dict) -> bool:
        """Whether the reading `values` ({key: value}) satisfies this predicate; a missing key never does."""
        if self.key not in values:
            return False
        got = values[self.key]
        if isinstance(self.value, bool) != isinstance(got, bool):
            return False  # True == 1 in Python; a flag is not a number here
        try:
            return bool(_OPS[self.op](got, self.value))
        except TypeError:  # a string compared with a number: not satisfied, never an error
            return False

    def to_dict(self) -> dict:
        return {"key": self.key, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Condition:
    """All of `predicates` hold: at one message (simple), for `seconds` without a break (duration), or in
    `count` messages in a row (repeating)."""

    type: str
    predicates: tuple[Predicate, ...]
    seconds: int | None = None
    count: int | None = None

    def __post_init__(self):
        # the predicates as plain tuples for _all_hold (not a field: equality and the file's shape are the predicates)
        object.__setattr__(self, "checks", tuple((p.key, _OPS[p.op], p.value, isinstance(p.value, bool))
                                                 for p in self.predicates))

    def holds(self, values: dict) -> bool:
        """Whether one reading satisfies every predicate (the engine adds the duration or the repetition); the
        same as all(p.holds(values) for p in self.predicates)."""
        return _all_hold(self.checks, values)

    def met(self, readings) -> bool:
        """Whether the condition is met at the last of `readings`: (seconds, values) oldest first, each values
        the device's latest value of every key at that time (as the engine keeps them). The reference an
        engine that keeps only a run's start and length is checked against: simple — the last reading holds;
        repeating — the last `count` readings all hold; duration — the last readings hold without a break
        for at least `seconds`, from the first of that run to the last."""
        readings = list(readings)
        if not readings or not self.holds(readings[-1][1]):
            return False
        if self.type == "simple":
            return True
        if self.type == "repeating":
            return len(readings) >= self.count and all(self.holds(v) for _, v in readings[-self.count:])
        start = readings[-1][0]
        for at, values in reversed(readings):
            if not self.holds(values):
                break
            start = at
        return readings[-1][0] - start >= self.seconds

    def to_dict(self) -> dict:
        out = {"type": self.type, "all": [p.to_dict() for p in self.predicates]}
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.count is not None:
            out["count"] = self.count
        return out


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    condition: Condition
    clear: Condition
    dispatch: bool
    category: str | None
    source: str
    # the event level (1 特别重大 … 4 一般) of the case when `category` is an emergency (intake requires one)
    case_severity: int | None = None

    def to_dict(self) -> dict:
        out = {"code": self.code, "name": self.name, "severity": self.severity,
               "condition": self.condition.to_dict(), "clear": self.clear.to_dict(),
               "dispatch": self.dispatch, "category": self.category, "source": self.source}
        if self.case_severity is not None:
            out["case_severity"] = self.case_severity
        return out


@dataclass(frozen=True)
class DeviceType:
    code: str
    name: str
    offline_after_s: int
    unit_types: tuple[str, ...]
    keys: tuple[KeySpec, ...]
    rules: tuple[Rule, ...]
    # the offline alarm (silent beyond offline_after_s): its severity, and the category of a case when the
    # type wants one (None: no case)
    offline_severity: str = "warning"
    offline_category: str | None = None

    def key(self, name: str) -> KeySpec | None:
        return next((k for k in self.keys if k.key == name), None)

    def any_condition_holds(self, values: dict) -> bool:
        """Whether some rule's condition holds at the reading `values` (any(r.condition.holds(values) for r in
        rules)): the alarm engine's quick test of every reading, so without a call per rule."""
        for rule in self.rules:
            if _all_hold(rule.condition.checks, values):
                return True
        return False

    def rule_name(self, code: str) -> str:
        """What people call an alarm of this type's rule `code` (the offline alarm included)."""
        if code == OFFLINE_RULE:
            return "设备离线"
        return next((r.name for r in self.rules if r.code == code), code)

    def to_dict(self) -> dict:
        """The API's item (CONTRACT.md: code, name, keys, rules) and the allowed silence."""
        return {"code": self.code, "name": self.name, "offline_after_s": self.offline_after_s,
                "unit_types": list(self.unit_types), "keys": [k.to_dict() for k in self.keys],
                "rules": [r.to_dict() for r in self.rules],
                "offline_alarm": {"severity": self.offline_severity, "category": self.offline_category}}


# ---- checking -------------------------------------------------------------------------------------
def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value, limit: int = 100) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= limit


def device_types_from_data(data, category_codes=None, unit_type_codes=None,
                           emergency_codes=None) -> dict[str, DeviceType]:
    """The device types of the parsed file, by code, in file order. `category_codes` (the catalog's) and
    `unit_type_codes`, when given, are what a rule's category and a type's unit types must name;
    `emergency_codes`, when given, the categories whose case needs an event level (a rule dispatching into
    one names its `case_severity`, 1–4; another rule may not). Raises DeviceTypesError with every problem."""
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("types"), list) or not data["types"]:
        raise DeviceTypesError(["文件须为 JSON 对象，含非空数组 types"])
    out: dict[str, DeviceType] = {}
    rule_codes: set[str] = set()
    for i, raw in enumerate(data["types"], start=1):
        where = f"第 {i} 个类型"
        if not isinstance(raw, dict):
            problems.append(f"{where}：须为对象")
            continue
        code = raw.get("code")
        if not (isinstance(code, str) and _CODE.match(code)):
            problems.append(f"{where}：code 须为小写字母开头的字母、数字、下划线（至多 40 个字符），收到 {code!r}")
            code = f"#{i}"
        elif code in out:
            problems.append(f"{where}：类型编码 {code} 重复")
        where = f"类型 {code}"
        name = raw.get("name")
        if not _text(name):
            problems.append(f"{where}：name（中文名称）须为非空文本")
        silence = raw.get("offline_after_s")
        if not (isinstance(silence, int) and not isinstance(silence, bool) and 0 < silence <= MAX_SECONDS):
            problems.append(f"{where}：offline_after_s（离线判定的静默秒数）须为 1–{MAX_SECONDS} 的整数，收到 {silence!r}")
        unit_types = raw.get("unit_types", [])
        if not (isinstance(unit_types, list) and all(isinstance(u, str) for u in unit_types)):
            problems.append(f"{where}：unit_types 须为单位类型编码的数组")
            unit_types = []
        elif unit_type_codes is not None:
            for u in unit_types:
                if u not in unit_type_codes:
                    problems.append(f"{where}：未知的单位类型 {u}（unit_types.csv 中没有）")
        keys = _keys(raw.get("keys"), where, problems)
        rules = []
        raw_rules = raw.get("rules", [])
        if not isinstance(raw_rules, list):
            problems.append(f"{where}：rules 须为数组")
            raw_rules = []
        for j, r in enumerate(raw_rules, start=1):
            rule = _rule(r, f"{where} 第 {j} 条规则", {k.key: k for k in keys}, category_codes, problems,
                         emergency_codes)
            if rule is None:
                continue
            if rule.code == OFFLINE_RULE:
                problems.append(f"{where}：规则编码 {OFFLINE_RULE} 保留给离线告警")
            if rule.code in rule_codes:
                problems.append(f"{where}：规则编码 {rule.code} 重复（规则编码全局唯一，告警按设备和规则归并）")
            rule_codes.add(rule.code)
            rules.append(rule)
        offline_severity, offline_category = _offline_alarm(raw.get("offline_alarm"), where, category_codes,
                                                            problems, emergency_codes)
        if isinstance(code, str) and not code.startswith("#"):
            out[code] = DeviceType(code=code, name=name if isinstance(name, str) else "",
                                   offline_after_s=silence if isinstance(silence, int) else 0,
                                   unit_types=tuple(unit_types), keys=tuple(keys), rules=tuple(rules),
                                   offline_severity=offline_severity, offline_category=offline_category)
    if problems:
        raise DeviceTypesError(problems)
    return out


def _offline_alarm(raw, where: str, category_codes, problems: list[str],
                   emergency_codes=None) -> tuple[str, str | None]:
    """The type's optional `offline_alarm` {severity, category}: warning and no case when absent."""
    if raw is None:
        return "warning", None
    if not isinstance(raw, dict):
        problems.append(f"{where}：offline_alarm 须为对象（severity、category）")
        return "warning", None
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        problems.append(f"{where}：离线告警的 severity 须为 {'、'.join(SEVERITIES)} 之一，收到 {severity!r}")
    category = raw.get("category")
    if category is not None and (not isinstance(category, str)
                                 or (category_codes is not None and category not in category_codes)):
        problems.append(f"{where}：离线告警的事件类别 {category!r} 不在事件目录（categories.csv）中")
    elif category is not None and emergency_codes is not None and category in emergency_codes:
        # a silent device is a blind spot, not an emergency of a known level
        problems.append(f"{where}：离线告警不能按应急事件类别 {category} 立案")
    return severity, category


def _keys(raw, where: str, problems: list[str]) -> list[KeySpec]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}：keys（遥测键）须为非空数组")
        return []
    out: list[KeySpec] = []
    for k in raw:
        if not isinstance(k, dict):
            problems.append(f"{where}：遥测键须为对象")
            continue
        key = k.get("key")
        if not (isinstance(key, str) and _CODE.match(key)):
            problems.append(f"{where}：遥测键名 {key!r} 须为小写字母开头的字母、数字、下划线")
            continue
        kw = f"{where} 遥测键 {key}"
        if any(o.key == key for o in out):
            problems.append(f"{kw}：重复")
            continue
        kind = k.get("kind")
        if kind not in KINDS:
            problems.append(f"{kw}：kind 须为 {'、'.join(KINDS)} 之一，收到 {kind!r}")
            continue
        unit = k.get("unit", "")
        if not isinstance(unit, str):
            problems.append(f"{kw}：unit 须为文本")
            unit = ""
        name = k.get("name", key)
        if not _text(name):
            problems.append(f"{kw}：name 须为非空文本")
        low = high = None
        values = None
        if kind == "number":
            rng = k.get("range")
            if not (isinstance(rng, list) and len(rng) == 2 and all(_number(x) for x in rng) and rng[0] < rng[1]):
                problems.append(f"{kw}：数值键须有有效范围 range [下限, 上限]（下限小于上限），收到 {rng!r}")
                continue
            low, high = float(rng[0]), float(rng[1])
        elif "range" in k:
            problems.append(f"{kw}：只有数值键（number）有 range")
        if kind == "string" and "values" in k:
            vals = k["values"]
            if not (isinstance(vals, list) and vals and all(_text(v) for v in vals)):
                problems.append(f"{kw}：values 须为非空文本数组")
            else:
                values = tuple(vals)
        elif "values" in k:
            problems.append(f"{kw}：只有文本键（string）有 values")
        out.append(KeySpec(key=key, name=name if isinstance(name, str) else key, unit=unit, kind=kind,
                           low=low, high=high, values=values))
    return out


def _rule(raw, where: str, keys: dict[str, KeySpec], category_codes, problems: list[str],
          emergency_codes=None) -> Rule | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}：须为对象")
        return None
    code = raw.get("code")
    if not (isinstance(code, str) and _CODE.match(code)):
        problems.append(f"{where}：code 须为小写字母开头的字母、数字、下划线，收到 {code!r}")
        return None
    where = f"{where}（{code}）"
    before = len(problems)
    name = raw.get("name")
    if not _text(name):
        problems.append(f"{where}：name（中文名称）须为非空文本")
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        problems.append(f"{where}：severity 须为 {'、'.join(SEVERITIES)} 之一，收到 {severity!r}")
    condition = _condition(raw.get("condition"), f"{where} 触发条件", keys, problems)
    clear = _condition(raw.get("clear"), f"{where} 解除条件", keys, problems)
    dispatch = raw.get("dispatch")
    category = raw.get("category")
    if not isinstance(dispatch, bool):
        problems.append(f"{where}：dispatch 须为 true 或 false")
    elif dispatch:
        if not isinstance(category, str) or not category:
            problems.append(f"{where}：dispatch 为 true 时须给出 category（立案的事件类别编码）")
        elif category_codes is not None and category not in category_codes:
            problems.append(f"{where}：事件类别 {category} 不在事件目录（categories.csv）中")
    elif category is not None and not isinstance(category, str):
        problems.append(f"{where}：category 须为事件类别编码文本")
    case_severity = raw.get("case_severity")
    if case_severity is not None and not (isinstance(case_severity, int) and not isinstance(case_severity, bool)
                                          and 1 <= case_severity <= 4):
        problems.append(f"{where}：case_severity（应急事件等级）须为 1–4 的整数，收到 {case_severity!r}")
    elif emergency_codes is not None and dispatch is True and isinstance(category, str):
        if category in emergency_codes and case_severity is None:
            problems.append(f"{where}：事件类别 {category} 是应急事件，须给出 case_severity（事件等级 1–4）")
        elif category not in emergency_codes and case_severity is not None:
            problems.append(f"{where}：只有应急事件类别才有 case_severity")
    source = raw.get("source")
    if not _text(source, 1000):
        problems.append(f"{where}：source（默认阈值的出处）须为非空文本")
    if condition is not None and clear is not None and not _apart(condition, clear, keys):
        problems.append(f"{where}：解除条件与触发条件重叠或紧贴（须在某个遥测键上互斥，数值键之间留有回差）")
    if len(problems) > before or condition is None or clear is None:
        return None
    return Rule(code=code, name=name, severity=severity, condition=condition, clear=clear, dispatch=dispatch,
                category=category if dispatch or isinstance(category, str) else None, source=source,
                case_severity=case_severity)


def _condition(raw, where: str, keys: dict[str, KeySpec], problems: list[str]) -> Condition | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}：须为对象（type、all）")
        return None
    kind = raw.get("type")
    before = len(problems)
    if kind not in CONDITION_TYPES:
        problems.append(f"{where}：type 须为 {'、'.join(CONDITION_TYPES)} 之一，收到 {kind!r}")
    seconds, count = raw.get("seconds"), raw.get("count")
    if kind == "duration":
        if not (isinstance(seconds, int) and not isinstance(seconds, bool) and 0 < seconds <= MAX_SECONDS):
            problems.append(f"{where}：持续条件须有 seconds（1–{MAX_SECONDS} 的整数），收到 {seconds!r}")
    elif seconds is not None:
        problems.append(f"{where}：只有持续条件（duration）有 seconds")
    if kind == "repeating":
        if not (isinstance(count, int) and not isinstance(count, bool) and 2 <= count <= MAX_REPEAT):
            problems.append(f"{where}：重复条件须有 count（2–{MAX_REPEAT} 的整数），收到 {count!r}")
    elif count is not None:
        problems.append(f"{where}：只有重复条件（repeating）有 count")
    preds = raw.get("all")
    if not isinstance(preds, list) or not preds:
        problems.append(f"{where}：all（须同时满足的判断）须为非空数组")
        preds = []
    out = []
    for p in preds:
        pred = _predicate(p, where, keys, problems)
        if pred is not None:
            out.append(pred)
    if len(problems) > before:
        return None
    return Condition(type=kind, predicates=tuple(out), seconds=seconds, count=count)


def _predicate(raw, where: str, keys: dict[str, KeySpec], problems: list[str]) -> Predicate | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}：判断须为对象（key、op、value）")
        return None
    key, op, value = raw.get("key"), raw.get("op"), raw.get("value")
    spec = keys.get(key) if isinstance(key, str) else None
    if spec is None:
        problems.append(f"{where}：遥测键 {key!r} 不是本类型的键（{'、'.join(keys) or '无'}）")
        return None
    if spec.kind == "number":
        if op not in NUMBER_OPS:
            problems.append(f"{where}：数值键 {key} 的比较须为 {' '.join(NUMBER_OPS)} 之一，收到 {op!r}")
            return None
        if not _number(value):
            problems.append(f"{where}：{key} 的阈值须为数字，收到 {value!r}")
            return None
        if not spec.low <= value <= spec.high:
            problems.append(f"{where}：{key} 的阈值 {value} 超出该键的有效范围 [{spec.low:g}, {spec.high:g}]")
            return None
    else:
        if op not in EQUALITY_OPS:
            problems.append(f"{where}：{'布尔' if spec.kind == 'bool' else '文本'}键 {key} 只能用 == 或 !=，收到 {op!r}")
            return None
        if spec.kind == "bool" and not isinstance(value, bool):
            problems.append(f"{where}：{key} 须与 true 或 false 比较，收到 {value!r}")
            return None
        if spec.kind == "string" and (not isinstance(value, str)
                                      or (spec.values is not None and value not in spec.values)):
            problems.append(f"{where}：{key} 的取值 {value!r} 不在该键的取值（{'、'.join(spec.values or ())}）中")
            return None
    return Predicate(key=key, op=op, value=value)


# ---- hysteresis ----------------------------------------------------------------------------------
def _interval(p: Predicate) -> tuple[float, bool, float, bool] | None:
    """The region of a numeric predicate as (low, low closed, high, high closed); None for != (two pieces)."""
    v = float(p.value)
    return {">": (v, False, math.inf, False), ">=": (v, True, math.inf, False),
            "<": (-math.inf, False, v, False), "<=": (-math.inf, False, v, True),
            "==": (v, True, v, True)}.get(p.op)


def _gap(a, b) -> bool:
    """Two intervals leave a band of values between them that lies in neither (hysteresis)."""
    return a[2] < b[0] or b[2] < a[0]


def _apart(condition: Condition, clear: Condition, keys: dict[str, KeySpec]) -> bool:
    """Whether no reading can satisfy both: some key the two conditions test has disjoint regions (a
    number's with a band between them, so that a value hovering at the threshold neither raises nor clears
    the alarm on each reading)."""
    for c in condition.predicates:
        for d in clear.predicates:
            if c.key != d.key:
                continue
            if keys[c.key].kind == "number":
                a, b = _interval(c), _interval(d)
                if a is not None and b is not None and _gap(a, b):
                    return True
            elif (c.op != d.op and c.value == d.value) or (c.op == d.op == "==" and c.value != d.value):
                return True  # == x against != x, or == x against == y
    return False
