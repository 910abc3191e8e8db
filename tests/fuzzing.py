"""Helpers for the validation and fuzz tests: signed-in clients, Dash callback requests, hostile values, row counts."""
from __future__ import annotations

import re

from dash._utils import split_callback_id
from sqlalchemy import func, select

from data.files import demo_users
from data.models import Case, CaseEvent, CaseHistory, CasePhoto, EmergencyChecklistItem, EmergencyPlanEdit, EmergencyReport, EmergencyResponse, EmergencyTask
from data.models import ResourceAllocation

PASSWORDS = {u["username"]: u["password"] for u in demo_users()}
DASH_CALLBACK = "/_dash-update-component"
# demo user per role (data/catalog/demo_users.json)
USER_OF_ROLE = {"admin": "admin", "duty_officer": "duty", "leader": "leader", "unit_handler": "handler",
                "grid_member": "grid", "wall": "wall"}

BIG = 2**63
HOSTILE = [
    BIG, 2**64, 10**30, -(2**63) - 1, -1, 0, 1.5, -0.0, 1e308, True, None,
    "", "abc", "NaN", "Infinity", "-1", "1e999", "9" * 40, "\x00", "a\x00b", "\x1b[31m", "\x7f", "\u202e",
    "x" * 5000, "长" * 3000, "０１２３", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "'; DROP TABLE cases; --", "<script>alert(1)</script>",
    "../../config.py", "0001-01-01", "9999-12-31", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "2026-13-45", "1899-12-31", "3000-01-01", [], {}, [1, 2], {"id": "abc"}, {"id": BIG}, [None], {"a": {"b": [1]}},
]
# strings only (query strings and paths carry text)
HOSTILE_TEXT = [v for v in HOSTILE if isinstance(v, str)] + [str(BIG), str(-BIG - 1), "1.5", "%00", "\ud800"]


def sign_in(client, username: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"username": username, "password": PASSWORDS[username], "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]


def csrf_header(client) -> dict:
    cookie = client.get_cookie("_csrf_token")
    return {"X-CSRFToken": cookie.value} if cookie is not None else {}


def server_callbacks(dash_app) -> dict:
    """output key → callback map entry, for the callbacks the server runs."""
    return {k: v for k, v in dash_app.callback_map.items() if "callback" in v}


def dash_app_of(flask_app):
    return flask_app.extensions["ucc_dash"]


def _dep_id(raw):
    """A dependency's id as the page sends it: a pattern id's wildcard becomes a concrete value."""
    if isinstance(raw, str) and raw.startswith("{"):
        import json

        parsed = json.loads(raw)
        return {k: ("x" if isinstance(v, list) else v) for k, v in parsed.items()}
    return raw


def callback_body(key: str, entry: dict, values: list, changed: int = 0) -> dict:
    """A Dash callback request for `entry` with `values` for its inputs then states (in order)."""
    deps = list(entry["inputs"]) + list(entry["state"])
    items = []
    for dep, value in zip(deps, values):
        dep_id = _dep_id(dep["id"])
        if isinstance(dep_id, dict):  # ALL: the page sends a list of matching components
            items.append([{"id": dep_id, "property": dep["property"], "value": value}])
        else:
            items.append({"id": dep_id, "property": dep["property"], "value": value})
    n_inputs = len(entry["inputs"])
    first = items[changed % max(n_inputs, 1)] if n_inputs else None
    if isinstance(first, list):
        first = first[0] if first else None
    changed_ids = []
    if first is not None:
        fid = first["id"]
        if isinstance(fid, dict):
            import json

            fid = json.dumps(fid, sort_keys=True, separators=(",", ":"))
        changed_ids = [f"{fid}.{first['property']}"]
    outputs = split_callback_id(key)
    return {"output": key, "outputs": outputs, "inputs": items[:n_inputs], "state": items[n_inputs:],
            "changedPropIds": changed_ids}


def counts(db) -> tuple:
    """Rows a refused request must not change."""
    with db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Case, CaseHistory, CaseEvent, CasePhoto, EmergencyResponse, EmergencyTask,
                                                                       EmergencyChecklistItem, EmergencyReport, EmergencyPlanEdit,
                                                                        ResourceAllocation))


def files_under(root) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def send_json(client, method: str, path: str, body, headers: dict | None = None):
    """A JSON request encoded by the standard library: integers past 64 bits and lone surrogates go out
    as a hostile client would send them (the app's own encoder refuses them)."""
    import json

    return client.open(path, method=method, data=json.dumps(body), content_type="application/json",
                       headers=headers or {})
