"""The seam between /api/v1's views and their OpenAPI description: each view names the pydantic models it reads
its query and body through, and the answers it gives; the same models validate the request and describe it.

(First cut: the decorator and the readers. The document builder, served at /api/v1/openapi.json, walks the
app's url_map for views carrying `view.openapi`.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from cases.service import validation_message
from dispatch.errors import ServiceError

M = TypeVar("M", bound=BaseModel)


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


def operation(summary: str, *, query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              responses: dict[int, type[BaseModel] | None] | None = None, tags: tuple[str, ...] = (),
              description: str = "", auth: bool = True) -> Callable:
    """Mark a view with what it reads and answers (the OpenAPI document is built from these marks)."""
    op = Operation(summary, query, body, dict(responses or {}), tuple(tags), description, auth)

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
    wrong field."""
    args = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists()}
    return _checked(model, args)


def body_of(model: type[M]) -> M:
    """The request's JSON object read through `model`, or a 400."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError(400, "bad_request", "请求体须为 JSON 对象（Content-Type: application/json）")
    return _checked(model, data)
