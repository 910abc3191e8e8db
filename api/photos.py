"""GET /photos/<id>: a case photo's bytes, for a signed-in person or a bearer token that may see the case.

The page guard (auth._guard) lets /photos/ through: a photo fetched by an API client carries a
bearer token, not a session, and an image request should get a plain 401, not a redirect to
/login. The route authenticates both ways itself and asks the case service who may see the case.
"""
from __future__ import annotations

from flask import Blueprint, current_app, send_file

from web.errors import error_response
from api.v1 import bearer_principal, bearer_token
from dispatch.access import CASE_BLIND_ROLES
from web.principal import current_principal
from cases.service import ServiceError
from cases.photos import photo_file
from web.services import services

bp = Blueprint("photos", __name__)


def _principal():
    """The signed-in person, else the bearer token's principal, else None."""
    principal = current_principal()
    if principal is not None:
        return principal
    token = bearer_token()
    principal = bearer_principal(token) if token else None
    # a device token only posts telemetry, an Open311 key reads public fields only (dispatch/access.py): no photo
    return None if principal is not None and principal.role in CASE_BLIND_ROLES else principal


@bp.get("/photos/<int:photo_id>")
def serve_photo(photo_id: int):
    principal = _principal()
    if principal is None:
        return error_response(401, "unauthorized", "请先登录，或提供 Authorization: Bearer TOKEN")
    app = services()
    info = photo_file(app.db, photo_id)
    if info is None:
        return error_response(404, "not_found", f"照片 {photo_id} 不存在")
    try:
        app.cases.get(info["case_id"], principal)  # the case service decides who may see the case
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message)
    path = info["path"]
    if not path.is_file():
        current_app.logger.error("photo %s: file %s missing", photo_id, path)
        return error_response(404, "not_found", f"照片 {photo_id} 的文件缺失")
    # Content-addressed: the bytes behind an id never change, so the browser may keep them (privately).
    resp = send_file(path, mimetype=info["mime"], etag=info["sha256"], conditional=True, max_age=86400)
    resp.headers["Cache-Control"] = "private, max-age=86400"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Disposition"] = "inline"
    return resp

