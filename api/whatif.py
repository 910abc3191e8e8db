"""The /api/v1 what-if endpoints (CONTRACT.md, Foresight): submit a run of the simulator with a change, poll it."""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from api.v1 import json_body, authenticate, enabled
from web.services import services

bp = Blueprint("api_whatif", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1


def _whatif():
    return enabled(services().whatif, "态势推演服务")


@bp.post("/whatif")
def submit():
    """Body ``{changes: [...], at?}`` (or one change object): 202 ``{id}``; the run goes on in the background."""
    data = json_body()
    changes = data.get("changes") if "kind" not in data else [{k: v for k, v in data.items() if k != "at"}]
    run_id = _whatif().submit(changes, g.principal, at=data.get("at"))
    return jsonify({"id": run_id}), 202


@bp.get("/whatif/<int:run_id>")
def get(run_id: int):
    return jsonify(_whatif().get(run_id, g.principal))
