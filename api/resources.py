"""The /api/v1 emergency resource endpoints (CONTRACT.md, Emergency): the resources nearest to a point or a page of
them, one resource, and a case's allocations — allocate, release, list."""
from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, g, jsonify
from pydantic import ConfigDict, Field, field_validator

from api.openapi import body_of, operation, query_of
from api.schemas import Answer, Body, Page, PerPage, Query, Text
from api.v1 import authenticate, enabled
from dispatch.errors import ServiceError
from emergency.resources import MAX_LIMIT
from web.services import services

bp = Blueprint("api_resources", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1
TAG = "应急资源"


class ResourcesQuery(Query):
    near: str | None = Field(None, max_length=60, pattern=r"^\s*-?[0-9.eE+-]+\s*,\s*-?[0-9.eE+-]+\s*$",
                             description="经度,纬度（如 119.97,31.78）：按距离由近到远")
    type: Text | None = Field(None, description="team、warehouse、equipment 或 shelter")
    specialty: Text | None = None
    status: Text | None = None
    radius_m: float | None = Field(None, description="搜索半径（米，须与 near 同用）")
    limit: int | None = Field(None, ge=1, le=MAX_LIMIT, description="最多条数（须与 near 同用，默认 20）")
    page: Page = 1
    per_page: PerPage = 50

    @field_validator("near", mode="before")
    @classmethod
    def _point(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip():
            parts = v.split(",")
            try:
                if len(parts) != 2:
                    raise ValueError
                lon, lat = float(parts[0]), float(parts[1])
            except ValueError:
                raise ValueError(f"参数 near 须为 经度,纬度（如 119.97,31.78），收到 {v[:60]!r}")
            if not (math.isfinite(lon) and math.isfinite(lat)):
                raise ValueError("参数 near 须为有限数字")
        return v

    def point(self) -> tuple[float, float] | None:
        if self.near is None:
            return None
        lon, lat = self.near.split(",")
        return float(lon), float(lat)


class Resource(Answer):
    id: str
    type: str
    name: str
    lon: float
    lat: float
    unit: str | None
    status: str
    capacity: float | None
    stock: list[dict[str, Any]]
    distance_m: float | None = None


class Resources(Answer):
    """A page by id (`page`, `per_page`), or the nearest to `near` (each with its `distance_m`)."""

    items: list[Resource]
    total: int


class AllocationBody(Body):
    model_config = ConfigDict(extra="forbid")

    resource: Any = Field(description="资源编号")
    item: Any = Field(None, description="仓库的物资名（调拨仓库时）")
    quantity: Any = Field(None, description="数量（仓库物资、安置点床位）")


class Allocation(Answer):
    id: int


class Allocations(Answer):
    items: list[dict[str, Any]]


def _resources():
    return enabled(services().resources, "应急资源服务")


@bp.get("/resources")
@operation("应急资源：按距离最近，或分页列出", query=ResourcesQuery, responses={200: Resources}, tags=(TAG,))
def resources():
    """With `near=LON,LAT`: the nearest first (`type`, `specialty`, `status`, `radius_m`, `limit`); without: a page by id
    (`type`, `specialty`, `status`, `page`, `per_page`)."""
    q = query_of(ResourcesQuery)
    near = q.point()
    if near is not None:
        return jsonify(_resources().nearest(near[0], near[1], type=q.type, specialty=q.specialty, radius_m=q.radius_m,
                                            limit=q.limit or 20, principal=g.principal, status=q.status))
    if q.radius_m is not None or q.limit is not None:
        raise ServiceError(400, "bad_request", "radius_m 和 limit 须与 near=经度,纬度 一起使用")
    return jsonify(_resources().list(g.principal, type_=q.type, specialty=q.specialty, status=q.status,
                                     page=q.page, per_page=q.per_page))


@bp.get("/resources/<resource_id>")
@operation("一项应急资源", responses={200: Resource}, tags=(TAG,))
def resource(resource_id: str):
    return jsonify(_resources().get(g.principal, resource_id))


@bp.get("/events/<int:case_id>/resources")
@operation("案件的资源调配（含已归还）", responses={200: Allocations}, tags=(TAG,))
def case_allocations(case_id: int):
    return jsonify(_resources().allocations(case_id, g.principal))


@bp.post("/events/<int:case_id>/resources")
@operation("为应急案件调配资源", body=AllocationBody, responses={201: Allocation}, tags=(TAG,),
           description="409：余量不足或资源已在用。")
def allocate(case_id: int):
    """`{"resource", "item"?, "quantity"?}` → 201 with the allocation; 409 when not enough is left."""
    data = body_of(AllocationBody)
    out = _resources().allocate(case_id, g.principal, data.resource, item=data.item, quantity=data.quantity)
    return jsonify(out), 201


@bp.delete("/events/<int:case_id>/resources/<int:allocation_id>")
@operation("归还一次调配", responses={200: Allocation}, tags=(TAG,))
def release(case_id: int, allocation_id: int):
    return jsonify(_resources().release(case_id, allocation_id, g.principal))
