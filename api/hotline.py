"""The 12345 exchange's edge (CONTRACT.md, Open interfaces): the hotline posts its tickets and callbacks; the operators
read the push's deliveries and send a failed one again. Reads and rules: cases/hotline.py."""
from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, g, jsonify
from pydantic import BaseModel, ConfigDict, Field

from api.openapi import body_of, operation, query_of
from api.v1 import authenticate, enabled
from cases.hotline import CallbackIn, TicketIn
from dispatch.access import HOTLINE_OPERATORS, HOTLINE_ROLE
from dispatch.errors import ServiceError
from web.services import services

bp = Blueprint("api_hotline", __name__, url_prefix="/api/v1/hotline")
bp.before_request(authenticate)  # the same bearer-token check as the rest of /api/v1

TAGS = ("12345",)
# who may post tickets and callbacks: the hotline's token, and the operators (a ticket typed in by hand)
TICKET_SENDERS = (HOTLINE_ROLE, *HOTLINE_OPERATORS)


class TicketAnswer(BaseModel):
    ticket_no: str
    case_id: int
    caller: str | None = Field(description="masked (张**) but for admin and duty_officer")
    phone: str | None = Field(description="masked (138****5678) but for admin and duty_officer")
    deadline: str | None = Field(description="the hotline's 办结时限, as it sent it")
    category_hint: str | None
    received_at: str
    matched_by: str | None = Field(default=None, description="code | name | class | keyword | content (new tickets)")
    located_by: str | None = Field(default=None, description="point | address (new tickets)")
    case: dict[str, Any] = Field(description="the case object, as GET /api/v1/events/ID answers it")


class CallbackAnswer(BaseModel):
    ticket_no: str
    reopened: bool = Field(description="an unsatisfied callback reopened (重办) the case")
    replayed: bool = Field(description="the same callback was recorded before: nothing written again")
    case: dict[str, Any]


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["pending", "delivered", "dead"] = "dead"
    limit: int = Field(default=100, ge=1, le=500)
    after: int | None = Field(default=None, ge=1, le=2**62, description="the `next` of the previous page")


class Delivery(BaseModel):
    id: int
    ticket_no: str
    case_id: int
    status: str
    status_label: str
    attempts: int
    action: str | None
    action_label: str | None
    state: str | None
    created_at: str | None
    next_attempt_at: str | None
    last_attempt_at: str | None
    delivered_at: str | None
    last_status: int | None
    last_error: str | None
    payload: dict[str, Any] = Field(description="what is POSTed (with delivery_id), docs/open-interfaces.md")


class DeliveryList(BaseModel):
    items: list[Delivery]
    total: int
    next: int | None


def _hotline():
    return enabled(services().hotline, "12345 对接")


def _sender() -> None:
    if g.principal.role not in TICKET_SENDERS:
        raise ServiceError(403, "forbidden", "只有 12345 热线令牌（及管理员、值班员）可以派单和回访")


@bp.post("/tickets")
@operation("12345 派单：一张工单受理为案件（按工单号幂等）", body=TicketIn,
           responses={201: TicketAnswer, 200: TicketAnswer}, tags=TAGS,
           description="The same ticket_no with the same content answers its first case (200); with other content 409.")
def post_ticket():
    _sender()
    ticket = body_of(TicketIn)
    answer, created = _hotline().receive(ticket, g.principal)
    return jsonify(answer), 201 if created else 200


@bp.get("/tickets/<ticket_no>")
@operation("一张 12345 工单及其案件", responses={200: TicketAnswer}, tags=TAGS)
def get_ticket(ticket_no: str):
    _sender()
    return jsonify(_hotline().ticket(ticket_no, g.principal))


@bp.post("/tickets/<ticket_no>/callback")
@operation("12345 回访结果：满意、基本满意或不满意（不满意时重办）", body=CallbackIn, responses={200: CallbackAnswer},
           tags=TAGS, description="409 not_closed while the case is not closed; 409 already_called_back for another "
                                  "answer after this closing.")
def post_callback(ticket_no: str):
    _sender()
    answer = body_of(CallbackIn)
    return jsonify(_hotline().callback(ticket_no, answer, g.principal))


@bp.get("/deliveries")
@operation("12345 推送记录：待推送、已送达或推送失败（失败列表）", query=DeliveryQuery, responses={200: DeliveryList},
           tags=TAGS)
def list_deliveries():
    q = query_of(DeliveryQuery)
    return jsonify(_hotline().deliveries(g.principal, q.status, q.limit, q.after))


@bp.post("/deliveries/<int:delivery_id>/retry")
@operation("重新推送一条失败的 12345 推送（及同一工单其后失败的各条）", responses={200: Delivery}, tags=TAGS)
def retry_delivery(delivery_id: int):
    return jsonify(_hotline().retry(delivery_id, g.principal))
