"""The API's own description: GET /api/v1/openapi.json (the OpenAPI 3.1 document built from the views' marks, no
token needed) and GET /api/docs, a page that renders it with the vendored Swagger UI (assets/vendor/, no CDN)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, url_for

from api.openapi import build_document

bp = Blueprint("api_docs", __name__)
DOCUMENT_PATH = "/api/v1/openapi.json"

# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io for a badge
PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>城市运行管理平台 · 接口文档</title>
<link rel="stylesheet" href="{css}">
<style>body {{ margin: 0; }} .ucc-api-docs-head {{ font: 600 16px/1.5 sans-serif; padding: 12px 20px;
  background: #0b1f3a; color: #fff; }}</style>
</head>
<body>
<div class="ucc-api-docs-head">城市运行管理平台 · HTTP 接口文档（/api/v1）</div>
<div id="swagger-ui"></div>
<script src="{js}"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{doc}", dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
  persistAuthorization: false, tryItOutEnabled: false}});
</script>
</body>
</html>
"""


@bp.get(DOCUMENT_PATH)
def openapi_document():
    """The document, built once per process (the marks do not change while it runs)."""
    doc = current_app.extensions.get("ucc_openapi")
    if doc is None:
        doc = current_app.extensions["ucc_openapi"] = build_document(current_app)
    resp = jsonify(doc)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/api/docs")
def docs_page():
    asset = current_app.extensions["ucc_dash"].get_asset_url
    body = PAGE.format(css=asset("vendor/swagger-ui.css"), js=asset("vendor/swagger-ui-bundle.js"),
                       doc=url_for("api_docs.openapi_document"))
    return body, 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}
