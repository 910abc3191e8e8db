"""How a case's history reads on every page: who did it and what, in words an officer reads."""
from __future__ import annotations

# audit rows that intake writes (not lifecycle actions): their labels
INTAKE_ACTIONS = {"report": "上报", "merge": "重复合并"}


def history_action(row: dict) -> str:
    """The label of a history row's action (the service's `action_label`, or intake's own)."""
    return INTAKE_ACTIONS.get(row["action"], row.get("action_label") or row["action"])


def actor_label(actor: str) -> str:
    """`user:duty` → duty, `token:3` → 接口令牌 3, `system:…` → 系统, `sim:…` → 模拟数据."""
    kind, _, rest = (actor or "").partition(":")
    if kind == "user":
        return rest
    if kind == "sim":
        return "模拟数据"
    if kind == "system":
        return "系统"
    if kind == "token":
        return f"接口令牌 {rest}"
    return actor
