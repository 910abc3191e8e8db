"""The seam between /api/v1's views and their OpenAPI description: each view names the pydantic models it reads
its query and body through, and the answers it gives; the same models validate the request and describe it.

`build_document(app)` walks the app's url_map for /api/v1 rules and their views' `view.openapi` marks and answers
the OpenAPI 3.1 document served at /api/v1/openapi.json (api/docs.py). docs/open-interfaces.md, "OpenAPI".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, TypeVar

from annotated_types import Ge, Gt, Le, Lt
from flask import request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from cases.service import validation_message
from dispatch.errors import ServiceError
from dispatch.limits import INT64_MAX

M = TypeVar("M", bound=BaseModel)
API_PREFIX = "/api/v1"
OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    summary: str
    query: type[BaseModel] | None = None  # the query string's model (GET filters)
    body: type[BaseModel] | None = None  # the JSON body's model
    # status → the answer's model (None: no body, e.g. 204); the error answers are added by the builder
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str = ""
    auth: bool = True  # Bearer token required (every /api/v1 view but the document itself)
    # the success answers' media types when they are not JSON (a download: described as binary)
    media: tuple[str, ...] = (JSON,)


def operation(summary: str, *, query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              responses: dict[int, type[BaseModel] | None] | None = None, tags: tuple[str, ...] = (),
              description: str = "", auth: bool = True, media: tuple[str, ...] = (JSON,)) -> Callable:
    """Mark a view with what it reads and answers (the OpenAPI document is built from these marks)."""
    op = Operation(summary, query, body, dict(responses or {}), tuple(tags), description, auth, tuple(media))

    def mark(view: Callable) -> Callable:
        view.openapi = op  # type: ignore[attr-defined]
        return view

    return mark


def _checked(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, details = validation_message(exc)
        raise ServiceError(400, "bad_request", message, details)


def query_of(model: type[M]) -> M:
    """The request's query string read through `model` (a repeated key arrives as a list), or a 400 naming each
    wrong parameter (`参数 page 应为整数，收到 'x'`)."""
    args = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists()}
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            fields.setdefault(name, _query_words(model, name, err))
        raise ServiceError(400, "bad_request", "；".join(fields.values()), {"fields": fields})


def body_of(model: type[M]) -> M:
    """The request's JSON object read through `model`, or a 400."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError(400, "bad_request", "请求体须为 JSON 对象（Content-Type: application/json）")
    return _checked(model, data)


def body_object() -> dict:
    """The request's JSON object, unread: for a view whose service reads the body through its own model or rules
    (the operation's `body` model describes it), so the service's checks and their order stay the only ones."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError(400, "bad_request", "请求体须为 JSON 对象（Content-Type: application/json）")
    return data


def _bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    lo = hi = None
    info = model.model_fields.get(name)
    for meta in (info.metadata if info else ()):
        if isinstance(meta, (Ge, Gt)):
            lo = meta.ge if isinstance(meta, Ge) else meta.gt
        elif isinstance(meta, (Le, Lt)):
            hi = meta.le if isinstance(meta, Le) else meta.lt
    return lo, hi


def _query_words(model: type[BaseModel], name: str, err: dict) -> str:
    """One query parameter's refusal, in the words the API has always used for its parameters."""
    kind, raw = err["type"], err.get("input")
    shown = repr(raw[:60]) if isinstance(raw, str) else repr(raw)
    info = model.model_fields.get(name)
    if kind == "missing":
        hint = "（YYYY-MM-DD）" if info is not None and info.annotation is date else ""
        return f"缺少参数 {name}{hint}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"参数 {name} 应为整数，收到 {shown}"
    if kind in ("float_parsing", "float_type"):
        return f"参数 {name} 应为数字，收到 {shown}"
    if kind == "finite_number":
        return f"参数 {name} 应为有限数字"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        lo, hi = _bounds(model, name)
        if lo is not None and hi is not None:
            return f"参数 {name} 应在 {lo} 到 {hi} 之间，收到 {raw}"
        return f"参数 {name} 应{'不小于 ' + str(lo) if lo is not None else '不大于 ' + str(hi)}，收到 {raw}"
    if kind == "timezone_aware":
        return f"参数 {name} 须带时区偏移（如 2026-12-07T09:30:00+08:00）"
    if kind.startswith("date_") and not kind.startswith("datetime"):
        return f"参数 {name} 应为 YYYY-MM-DD，收到 {shown}"
    if kind.startswith(("datetime", "timezone")):
        return f"参数 {name} 应为带时区的 ISO 8601 时间，收到 {shown}"
    if kind in ("bool_parsing", "bool_type"):
        return f"参数 {name} 应为 true 或 false"
    if kind in ("literal_error", "enum"):
        expected = re.sub(r"'([^']*)'", r"\1", str(err.get("ctx", {}).get("expected", ""))).replace(" or ", ", ")
        return f"参数 {name} 应为 {'、'.join(x.strip() for x in expected.split(','))} 之一，收到 {shown}"
    if kind == "string_too_long":
        return f"参数 {name} 过长（最多 {err.get('ctx', {}).get('max_length')} 字符）"
    if kind == "string_pattern_mismatch":
        return f"参数 {name} 格式不正确，收到 {shown}"
    if kind == "value_error":
        return str(err.get("msg", "")).removeprefix("Value error, ")
    return f"参数 {name}：{err.get('msg', '')}"


# ---- the document ------------------------------------------------------------------------------
ERROR_DESCRIPTIONS = {400: "请求有误（参数或请求体不合规）", 401: "缺少令牌或令牌无效", 403: "无权执行",
                      404: "不存在", 409: "冲突（版本过期、已处理或余量不足）", 413: "请求体过大",
                      422: "业务规则不允许", 429: "请求过于频繁"}
_BODY_METHODS = ("post", "put", "patch", "delete")
_ARG = re.compile(r"<(?:(?P<conv>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")


def _path_and_params(rule) -> tuple[str, list[dict]]:
    params = []

    def one(m: re.Match) -> str:
        conv, name = m.group("conv") or "default", m.group("name")
        # an id's example is the first one (schemathesis's explicit phase then reads a real object)
        schema = ({"type": "integer", "minimum": 0, "maximum": INT64_MAX, "examples": [1]} if conv == "int"
                  else {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^/\s]+$"})
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _ARG.sub(one, rule.rule), params


def _plain(schema: dict) -> dict:
    """A query parameter's schema without the `null` branch and default of an optional field (a query string has
    no null: the parameter is simply left out)."""
    schema = dict(schema)
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            schema = {**branches[0], **rest}
    if schema.get("default", 0) is None:
        del schema["default"]
    schema.pop("title", None)
    return schema


def _query_params(model: type[BaseModel], defs: dict) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="validation")
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _plain(prop)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("description"):
            param["description"] = prop.pop("description")
        out.append(param)
    return out


def build_document(app, title: str = "城市运行管理平台 API", version: str = "1") -> dict:
    """The OpenAPI 3.1 document of every marked /api/v1 view of `app`."""
    from api.schemas import ErrorBody

    marked = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX + "/"):
            continue
        view = app.view_functions.get(rule.endpoint)
        op = getattr(view, "openapi", None)
        if op is None:
            continue
        marked.append((rule, op))
    # every model the marks name, once: requests validated, answers serialized
    wanted: list[tuple[type[BaseModel], str]] = [(ErrorBody, "serialization")]
    for _rule, op in marked:
        if op.body is not None:
            wanted.append((op.body, "validation"))
        wanted += [(m, "serialization") for m in op.responses.values() if m is not None]
    wanted = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(wanted, ref_template=REF_TEMPLATE)
    schemas: dict = dict(top.get("$defs", {}))
    error_ref = refs[(ErrorBody, "serialization")]
    paths: dict[str, dict] = {}
    for rule, op in sorted(marked, key=lambda ro: ro[0].rule):
        path, path_params = _path_and_params(rule)
        for method in sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}):
            item: dict[str, Any] = {"operationId": f"{rule.endpoint.replace('.', '_')}_{method}",
                                    "summary": op.summary, "tags": list(op.tags)}
            if op.description:
                item["description"] = op.description
            params = path_params + (_query_params(op.query, schemas) if op.query is not None else [])
            if params:
                item["parameters"] = params
            if op.body is not None:
                item["requestBody"] = {"required": True, "content": {
                    JSON: {"schema": refs[(op.body, "validation")]}}}
            responses: dict[str, Any] = {}
            for status, model in sorted(op.responses.items()):
                answer: dict[str, Any] = {"description": "成功" if status < 300 else ERROR_DESCRIPTIONS.get(status, "")}
                if model is not None:
                    answer["content"] = {JSON: {"schema": refs[(model, "serialization")]}}
                elif op.media != (JSON,):
                    answer["content"] = {m: {"schema": {"type": "string", "contentMediaType": m}} for m in op.media}
                responses[str(status)] = answer
            errors = [400, 404, 422, 429] + ([401, 403] if op.auth else [])
            if method in _BODY_METHODS:
                errors += [409, 413]
            for status in sorted(set(errors) - set(op.responses)):
                responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status],
                                          "content": {JSON: {"schema": error_ref}}}
            item["responses"] = responses
            item["security"] = [{"bearer": []}] if op.auth else []
            paths.setdefault(path, {})[method] = item
    # the sections in the order the blueprints were registered (cases and areas first), not the paths' order
    tags = list(dict.fromkeys(t for _rule, op in marked for t in op.tags))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version,
                 "description": "城市运行管理平台的 HTTP JSON 接口（/api/v1）。除本文档外，每个接口都须带 "
                                "Authorization: Bearer TOKEN 请求头；令牌由 `flask --app app create-token --role 角色` 生成。"},
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "API 令牌（create-token 生成）"}}},
        "security": [{"bearer": []}],
    }
