"""GET /wall/base.json: the wall map's static half (boundaries, grid shapes) for a signed-in screen.

The page guard (auth._guard) lets only signed-in people and wall tokens through (401 JSON
otherwise). The body is made once per hierarchy version (layouts/wall.py map_base); its ETag is
that version, so a wall that reloads revalidates and gets 304 instead of ~300 KB.
"""
from __future__ import annotations

from flask import Blueprint, Response, request
from web.services import services

bp = Blueprint("wall_base", __name__)


@bp.get("/wall/base.json")
def wall_base():
    from layouts.wall import map_base

    version, _base, body = map_base(services())
    etag = f'"{version}"'
    if etag in request.headers.get("If-None-Match", ""):
        resp = Response(status=304)
    else:
        resp = Response(body, mimetype="application/json")
    resp.headers["ETag"] = etag
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp
