"""The /api/v1 what-if endpoints (CONTRACT.md, Foresight): submit a run of the simulator with a change, poll it."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from pydantic import ConfigDict, Field

from api.openapi import body_of, operation
from api.schemas import Answer, Body
from api.v1 import authenticate, enabled
from web.services import services

bp = Blueprint("api_whatif", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1
TAG = "态势预见"


class WhatIfBody(Body):
    """`{changes: [...], at?}`, or one change object (its `kind` and fields) with `at?`; the simulator's rules check
    each change (docs/foresight.md, What-if)."""

    model_config = ConfigDict(extra="allow")

    changes: list[dict[str, Any]] | None = Field(None, description="变更列表，每项含 kind 及其参数")
    kind: str | None = Field(None, description="单个变更的 kind（不用 changes 时）")
    at: Any = Field(None, description="推演的起点时刻（ISO 8601，默认现在）")


class Submitted(Answer):
    id: int


class WhatIfRun(Answer):
    id: int
    status: str


@bp.post("/whatif")
@operation("提交一次态势推演", body=WhatIfBody, responses={202: Submitted}, tags=(TAG,))
def submit():
    """Body ``{changes: [...], at?}`` (or one change object): 202 ``{id}``; the run goes on in the background."""
    data = body_of(WhatIfBody).model_dump(exclude_unset=True)
    changes = data.get("changes") if "kind" not in data else [{k: v for k, v in data.items() if k != "at"}]
    run_id = _whatif().submit(changes, g.principal, at=data.get("at"))
    return jsonify({"id": run_id}), 202


def _whatif():
    return enabled(services().whatif, "态势推演服务")


@bp.get("/whatif/<int:run_id>")
@operation("一次推演的进度与结果", responses={200: WhatIfRun}, tags=(TAG,))
def get(run_id: int):
    return jsonify(_whatif().get(run_id, g.principal))
