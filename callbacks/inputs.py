"""What a callback may receive: its inputs read with their expected shape, or a 400 before anything runs.

A page sends what its components hold; a request made by hand may send anything (a string for an
id, a list for a code, a store without its `version`). These readers refuse such input with a
ServiceError 400 (web/errors turns it into the contract's JSON error), so a callback never fails on
it with a 500 and never acts on half of it.
"""
from __future__ import annotations

from dispatch.errors import ServiceError
from dispatch.limits import INT64_MAX, is_int64

MESSAGE = "页面数据无效，请刷新页面后重试"


def refuse(detail: str) -> ServiceError:
    return ServiceError(400, "bad_input", f"{MESSAGE}（{detail}）")


def text(value, name: str) -> str | None:
    """A text value (a code, a typed field) or None."""
    if value is None or isinstance(value, str):
        return value
    raise refuse(f"{name} 须为文本")


def texts(value, name: str) -> list[str]:
    """A multi-select's values: a list of texts (None: none)."""
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise refuse(f"{name} 须为文本列表")


def integer(value, name: str, lo: int = 0, hi: int = INT64_MAX) -> int | None:
    """A whole number in lo..hi, or None. Digits in text count ("12"), as stores keep what links said."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else None
    if text and text.isascii() and text.isdigit() and len(text) <= 19:  # longer cannot be 64-bit (and
        value = int(text)                                              # int() refuses 4,300+ digits)
    if not is_int64(value) or not lo <= value <= hi:
        raise refuse(f"{name} 须为 {lo} 到 {hi} 之间的整数")
    return value


def mapping(value, name: str) -> dict | None:
    """A dict (a store's record, a click's event) or None."""
    if value is None or isinstance(value, dict):
        return value
    raise refuse(f"{name} 须为对象")


def case_ref(value, name: str, need_version: bool = False) -> dict | None:
    """A store naming a case: {"id": N, ("version": V)} with N ≥ 1; None when empty."""
    record = mapping(value, name)
    if not record:
        return None
    case_id = integer(record.get("id"), f"{name}.id", lo=1)
    if case_id is None:
        raise refuse(f"{name} 缺少案件编号 id")
    out = {**record, "id": case_id}
    if need_version:
        version = record.get("version")
        if not is_int64(version):
            raise refuse(f"{name} 缺少整数 version")
    return out


def number(value, name: str) -> float | int | None:
    """A number typed in a field (int or float), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(f"{name} 须为数字")
    return value
