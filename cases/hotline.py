"""The 12345 exchange: the hotline's tickets in (through the one intake), its callbacks (回访) onto the case, and every
change of its tickets pushed to its webhook — queued from the case outbox as rows, sent in order per ticket with
exponential backoff, dead-lettered for the operators after the limit. Rules as data: data/catalog/hotline.json and
hotline_categories.json (dispatch/hotline_rules.py). See docs/open-interfaces.md, "12345 exchange"."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Callable

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from cases.public import mask_name, mask_text
from cases.service import AwareTime, CaseService, FiniteFloat, PhoneNumber, mask_phone
from data import files
from data.db import Database
from data.models import Case, CaseEvent, CaseHistory, HotlineDelivery, HotlinePushState, HotlineTicket
from data.tokens import Principal
from dispatch import lifecycle
from dispatch.access import HOTLINE_OPERATORS, HOTLINE_SYSTEM
from dispatch.city_time import local_iso
from dispatch.errors import ServiceError
from dispatch.hotline_rules import HotlineCategories, HotlineRules, satisfaction_of

log = logging.getLogger("ucc.hotline")

DELIVERY_HEADER = "X-UCC-Delivery"
DELIVERY_STATUSES = ("pending", "delivered", "dead")
# outbox rows younger than this are read again at the next round: a transaction that took its seq earlier may
# commit later (PostgreSQL's sequences are not transactional), as the live bus's catch-up margin allows
OUTBOX_MARGIN = timedelta(seconds=30)
OUTBOX_PAGE = 500
# passes of one sending round (each lets every ticket's next change go): a round ends sooner when nothing was sent
MAX_PASSES = 20
HELD_BEHIND_DEAD = "等待同一工单前一条推送（已失败）"
# what the ticket number may hold: it is a path segment of the callback's URL
TICKET_NO_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z_.:-]{0,63}$"


# ---- what the hotline sends -----------------------------------------------------------------------------------
class TicketIn(BaseModel):
    """A 12345 ticket (派单 to the center): CONTRACT.md's fields. A point (lon, lat) or an address in words."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    ticket_no: str = Field(min_length=1, max_length=64, pattern=TICKET_NO_PATTERN,
                           description="the hotline's ticket number (工单编号): letters, digits, _ . : -")
    caller: str | None = Field(default=None, max_length=50, description="the caller's name (来电人)")
    phone: PhoneNumber = Field(default=None, max_length=20, description="the caller's number (来电号码)")
    content: str = Field(min_length=1, max_length=1800, description="what the caller reported (诉求内容)")
    lon: FiniteFloat | None = None
    lat: FiniteFloat | None = None
    address: str | None = Field(default=None, max_length=200, description="the address in words, when no point")
    category_hint: str | None = Field(default=None, max_length=100,
                                      description="our category code or name, or the hotline's own class name")
    deadline: AwareTime = Field(default=None, description="the hotline's 办结时限 (ISO 8601 with offset)")


class CallbackIn(BaseModel):
    """The hotline's 回访 result of a ticket: satisfied | basically_satisfied | unsatisfied (or 满意/基本满意/不满意)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    satisfaction: str = Field(min_length=1, max_length=20,
                              description="satisfied | basically_satisfied | unsatisfied, or 满意 | 基本满意 | 不满意")
    note: str = Field(default="", max_length=2000, description="what the caller said (回访说明)")

    @field_validator("satisfaction")
    @classmethod
    def _known(cls, v: str) -> str:
        code = satisfaction_of(v)
        if code is None:
            raise ValueError("须为 satisfied、basically_satisfied、unsatisfied（或 满意、基本满意、不满意）之一")
        return code


def _fingerprint(ticket: TicketIn) -> str:
    """What identifies a ticket's content: a replay with the same is answered with its case, another is refused."""
    doc = ticket.model_dump(mode="json")
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class HotlineService:
    """Tickets, callbacks and the push. `webhook`: UCC_HOTLINE_WEBHOOK (None: nothing is queued or pushed; the
    hotline pulls with GET /api/v1/events?updated_since=). `post(url, body, headers, timeout)` → HTTP status sends
    a push (default: requests); `clock` the service's time."""

    def __init__(self, db: Database, cases: CaseService, webhook: str | None = None, rules: HotlineRules | None = None,
                 clock: Callable[[], datetime] | None = None, post: Callable[..., int] | None = None):
        self.db, self.cases, self.webhook = db, cases, webhook
        self.rules = rules or files.hotline_rules()
        self.clock = clock or cases.clock
        self.post = post or _post
        self._categories: tuple[object, HotlineCategories] | None = None
        # who holds the push's lease: this process (and this service, should two share a process)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:80]
        self._round_lock = threading.Lock()

    # ---- tickets in ---------------------------------------------------------------------------------------------
    def categories(self) -> HotlineCategories:
        catalog = self.cases.catalog()
        if self._categories is None or self._categories[0] is not catalog:  # the catalog in force, after a reload
            self._categories = (catalog, files.hotline_categories(catalog))
        return self._categories[1]

    def receive(self, ticket: TicketIn, principal: Principal) -> tuple[dict, bool]:
        """A ticket → its case through CaseService.intake (source hotline, external_system 12345, external_ref the
        number, the caller's number as the reporter's). Returns (the answer, created). The same ticket again →
        its first case (created False); the same number with other content → 409, nothing written."""
        if (ticket.lon is None) != (ticket.lat is None):
            raise ServiceError(400, "bad_request", "经纬度 lon、lat 须同时提供",
                               {"fields": {"lon" if ticket.lon is None else "lat": "经纬度须成对提供"}})
        if ticket.lon is None and not ticket.address:
            raise ServiceError(400, "bad_request", "须提供经纬度 lon/lat 或地址 address",
                               {"fields": {"address": "无经纬度时必填"}})
        fingerprint = _fingerprint(ticket)
        known = self._ticket(ticket.ticket_no)
        if known is not None:
            return self._replayed(known, fingerprint, principal), False
        match = self.categories().match(ticket.category_hint, ticket.content)
        if match is None:
            what = (f"诉求分类「{ticket.category_hint}」不是类别编码或名称，也不在 12345 分类对照表中"
                    if ticket.category_hint else "未提供诉求分类 category_hint，诉求内容中也没有可识别的类别")
            raise ServiceError(422, "unknown_category", f"无法确定事件类别：{what}（请提供类别编码，见 GET /api/v1/categories）",
                               {"fields": {"category_hint": what}})
        category = match.category
        if category.is_emergency:
            raise ServiceError(422, "emergency_category",
                               f"「{category.name}」是应急事件，须经应急渠道（110/119/120 或值班员）报告，不经 12345 工单")
        located_by = "point"
        lon, lat = ticket.lon, ticket.lat
        if lon is None:
            place = self.cases.areas.place_of_address(ticket.address or "")
            if place is None:
                raise ServiceError(422, "unknown_address", f"地址「{ticket.address}」未能定位到本市任何区域，请提供经纬度 lon/lat",
                                   {"fields": {"address": "未能定位"}})
            lon, lat, located_by = place.lon, place.lat, "address"
        description = ticket.content + (f"\n地址：{ticket.address}" if ticket.address else "")
        payload = {"category": category.code, "lon": lon, "lat": lat, "description": description,
                   "source": "hotline", "reporter_phone": ticket.phone,
                   "idempotency_key": f"{HOTLINE_SYSTEM}:{ticket.ticket_no}",
                   "external_ref": ticket.ticket_no, "external_system": HOTLINE_SYSTEM}
        case, _created = self.cases.intake(payload, principal, actor=principal.ident)
        row = HotlineTicket(ticket_no=ticket.ticket_no, case_id=case["id"], caller=ticket.caller or None,
                            phone=ticket.phone, deadline_at=ticket.deadline, category_hint=ticket.category_hint,
                            fingerprint=fingerprint, received_at=self.clock())
        try:
            with self.db.session() as s:
                s.add(row)
        except IntegrityError:  # a concurrent post of the same number won: answer as a replay of it
            return self._replayed(self._ticket(ticket.ticket_no), fingerprint, principal), False
        return self._answer(self._ticket(ticket.ticket_no), case, principal, match.how, located_by), True

    def _replayed(self, known: HotlineTicket, fingerprint: str, principal: Principal) -> dict:
        if known.fingerprint != fingerprint:
            raise ServiceError(409, "ticket_conflict",
                               f"工单 {known.ticket_no} 已受理为案件 #{known.case_id}，本次内容与首次不同，未重复受理"
                               "（同一工单号只受理一次；补充内容请以新工单号派单）", {"case_id": known.case_id})
        return self._answer(known, self.cases.get(known.case_id, principal), principal)

    def _ticket(self, ticket_no: str) -> HotlineTicket | None:
        with self.db.session() as s:
            row = s.get(HotlineTicket, ticket_no)
            if row is not None:
                s.expunge(row)
            return row

    def _answer(self, t: HotlineTicket, case: dict, principal: Principal, matched_by: str | None = None,
                located_by: str | None = None) -> dict:
        """The ticket as the API answers it: the caller masked but for the operators (HOTLINE_OPERATORS)."""
        plain = principal.role in HOTLINE_OPERATORS
        out = {"ticket_no": t.ticket_no, "case_id": t.case_id,
               "caller": (t.caller if plain else mask_name(t.caller)) or None,
               "phone": t.phone if plain else mask_phone(t.phone),
               "deadline": local_iso(t.deadline_at), "category_hint": t.category_hint,
               "received_at": local_iso(t.received_at), "case": case}
        if matched_by is not None:
            out.update(matched_by=matched_by, located_by=located_by)
        return out

    def ticket(self, ticket_no: str, principal: Principal) -> dict:
        """GET a ticket by its number: 404 when unknown; the case as `principal` may see it."""
        t = self._known(ticket_no)
        return self._answer(t, self.cases.get(t.case_id, principal), principal)

    def _known(self, ticket_no: str) -> HotlineTicket:
        t = self._ticket(ticket_no) if isinstance(ticket_no, str) and len(ticket_no) <= 64 else None
        if t is None:
            raise ServiceError(404, "not_found", f"工单 {ticket_no} 不存在（未经 POST /api/v1/hotline/tickets 派单）")
        return t

    # ---- the callback (回访) --------------------------------------------------------------------------------------
    def callback(self, ticket_no: str, answer: CallbackIn, principal: Principal) -> dict:
        """The hotline's 回访 result onto the ticket's case (the lifecycle's `callback`: only once the case is
        closed, once per closing). 不满意 with the rules' `unsatisfied: reopen` also reopens (重办) the case to its
        unit with a new deadline. The same callback again is answered as it was (nothing written twice)."""
        t = self._known(ticket_no)
        case = self.cases.get(t.case_id, principal)
        if case["state"] == "merged":
            raise ServiceError(409, "merged", f"工单 {ticket_no} 已并入案件 #{case['merged_into']} 办理，由该案件回访")
        done = case.get("callback")
        # called back since the latest closing (a reopen clears closed_at): this round's callback was made
        if done is not None and (case["closed_at"] is None or done["at"] >= case["closed_at"]):
            if (done["result"], done["note"]) == (answer.satisfaction, answer.note):
                reopened = case["state"] != "closed"
                if not reopened and self._reopens(answer):  # the first call stopped between the two acts
                    case, reopened = self._reopen(t.case_id, case["version"], answer, principal), True
                return {"ticket_no": ticket_no, "case": case, "reopened": reopened, "replayed": True}
            raise ServiceError(409, "already_called_back",
                               f"工单 {ticket_no} 本次办结后已回访（{done['result_label']}），不能再次回访")
        if case["state"] != "closed":
            raise ServiceError(409, "not_closed",
                               f"工单 {ticket_no} 对应的案件 #{t.case_id} 尚未办结（当前「{case['state_label']}」），"
                               "办结后才能回访")
        case = self.cases.act(t.case_id, principal, "callback", case["version"], note=answer.note,
                              satisfaction=answer.satisfaction)
        reopened = self._reopens(answer)
        if reopened:
            case = self._reopen(t.case_id, case["version"], answer, principal)
        return {"ticket_no": ticket_no, "case": case, "reopened": reopened, "replayed": False}

    def _reopens(self, answer: CallbackIn) -> bool:
        return answer.satisfaction == "unsatisfied" and self.rules.unsatisfied == "reopen"

    def _reopen(self, case_id: int, version: int, answer: CallbackIn, principal: Principal) -> dict:
        note = f"12345 回访不满意：{answer.note or '来电人未说明原因'}"
        return self.cases.act(case_id, principal, "reopen", version, note=note)

    # ---- the push: the outbox → deliveries → the webhook -----------------------------------------------------
    def run_round(self) -> int:
        """One round of the push worker (scheduler.py): with the lease, queue what the outbox brought and send what
        is due. Returns how many deliveries were delivered. Nothing when no webhook is set."""
        if not self.webhook:
            return 0
        with self._round_lock:
            if not self._take_lease():
                return 0
            self.feed()
            return self.send_due()

    def _take_lease(self) -> bool:
        """The push's lease for this process (a guarded UPDATE on the state row): only its holder feeds and sends,
        so two processes never send the same delivery at once; it lapses lease_seconds after the holder stops."""
        now = self.clock()
        until = now + timedelta(seconds=self.rules.push.lease_seconds)
        with self.db.session() as s:
            if s.get(HotlinePushState, 1) is None:
                try:
                    with s.begin_nested():
                        s.add(HotlinePushState(id=1, last_seq=0))
                except IntegrityError:
                    pass
            done = s.execute(update(HotlinePushState).where(
                HotlinePushState.id == 1,
                or_(HotlinePushState.lease_owner.is_(None), HotlinePushState.lease_until < now,
                    HotlinePushState.lease_owner == self.worker_id))
                .values(lease_owner=self.worker_id, lease_until=until))
            return done.rowcount == 1

    def release_lease(self) -> None:
        with self.db.session() as s:
            s.execute(update(HotlinePushState).where(HotlinePushState.id == 1,
                                                     HotlinePushState.lease_owner == self.worker_id)
                      .values(lease_owner=None, lease_until=None))

    def feed(self) -> int:
        """Queue every pushed step of the 12345 tickets whose cases the outbox names since the last round (and of
        the cases they were merged into); returns how many deliveries were queued. Safe to repeat: a ticket
        remembers the last history row it queued, and (ticket, history row) is unique."""
        now = self.clock()
        merged = aliased(Case)
        with self.db.session() as s:
            last = s.scalar(select(HotlinePushState.last_seq).where(HotlinePushState.id == 1)) or 0
            followed = or_(CaseEvent.case_id.in_(select(HotlineTicket.case_id)),
                           CaseEvent.case_id.in_(select(merged.merged_into_id)
                                                 .join(HotlineTicket, HotlineTicket.case_id == merged.id)
                                                 .where(merged.merged_into_id.is_not(None))))
            events = s.execute(select(CaseEvent.seq, CaseEvent.case_id).where(CaseEvent.seq > last, followed)
                               .order_by(CaseEvent.seq).limit(OUTBOX_PAGE)).all()
            # (from the cursor on: a range of the primary key, not a scan of the whole outbox every round)
            horizon = s.scalar(select(func.max(CaseEvent.seq)).where(CaseEvent.seq > last,
                                                                     CaseEvent.at <= now - OUTBOX_MARGIN)) or 0
        queued = 0
        for ticket_no in self._tickets_of({case_id for _seq, case_id in events}):
            queued += self._queue_ticket(ticket_no, now)
        # the cursor moves past what is old enough that no earlier seq can still commit; a full page stops at it
        cursor = min(horizon, events[-1][0]) if len(events) == OUTBOX_PAGE else horizon
        if cursor > last:
            with self.db.session() as s:
                s.execute(update(HotlinePushState).where(HotlinePushState.id == 1, HotlinePushState.last_seq < cursor)
                          .values(last_seq=cursor))
        return queued

    def _tickets_of(self, case_ids: set[int]) -> list[str]:
        """The tickets whose story these cases tell: their own case, or the case theirs was merged into."""
        if not case_ids:
            return []
        with self.db.session() as s:
            return list(s.scalars(select(HotlineTicket.ticket_no).join(Case, Case.id == HotlineTicket.case_id)
                                  .where(or_(Case.id.in_(case_ids), Case.merged_into_id.in_(case_ids)))
                                  .order_by(HotlineTicket.received_at, HotlineTicket.ticket_no)))

    def _queue_ticket(self, ticket_no: str, now: datetime) -> int:
        """The ticket's steps not queued yet, in order: its own case's, then (merged at intake into an open case)
        that case's from the merge on. History ids are the one order of both (one sequence)."""
        queued = 0
        with self.db.session() as s:
            t = s.get(HotlineTicket, ticket_no)
            own = s.get(Case, t.case_id)
            told = CaseHistory.case_id == own.id
            if own.merged_into_id is not None:
                first = s.scalar(select(func.min(CaseHistory.id)).where(CaseHistory.case_id == own.id)) or 0
                told = or_(told, and_(CaseHistory.case_id == own.merged_into_id, CaseHistory.id > first))
            rows = s.scalars(select(CaseHistory).where(told, CaseHistory.id > t.queued_history_id)
                             .order_by(CaseHistory.id)).all()
            if not rows:
                return 0
            cases = {own.id: own}
            for h in rows:
                if not self.rules.pushes(h.action, h.from_state, h.to_state):
                    continue
                case = cases.get(h.case_id) or cases.setdefault(h.case_id, s.get(Case, h.case_id))
                s.add(HotlineDelivery(ticket_no=t.ticket_no, case_id=h.case_id, history_id=h.id,
                                      payload=self._payload(t, case, h), status="pending", attempts=0,
                                      created_at=now, next_attempt_at=now, since_at=now))
                queued += 1
            done = s.execute(update(HotlineTicket).where(HotlineTicket.ticket_no == t.ticket_no,
                                                         HotlineTicket.queued_history_id == t.queued_history_id)
                             .values(queued_history_id=rows[-1].id))
            if done.rowcount != 1:  # queued meanwhile by another worker: its rows stand, ours go
                s.rollback()
                return 0
        return queued

    def _payload(self, t: HotlineTicket, case: Case, h: CaseHistory) -> dict:
        """One change as the hotline's webhook receives it (docs/open-interfaces.md: the push's payload)."""
        details = h.details or {}
        return {
            "ticket_no": t.ticket_no, "external_system": HOTLINE_SYSTEM, "case_id": case.id,
            "action": h.action, "action_label": _step_label(h.action), "at": local_iso(h.at),
            "from_state": h.from_state, "state": h.to_state,
            "state_label": lifecycle.STATE_LABELS.get(h.to_state, h.to_state),
            "status_word": self.rules.status_word(h.to_state),
            # the reply as the hotline shows it to the caller: the act's note, personal data masked
            "reply": mask_text(h.note or ""),
            "satisfaction": details.get("satisfaction") if h.action == "callback" else None,
            "unit": self.cases.unit_ref(case.unit_code), "deadline": local_iso(case.deadline_at),
            "merged_into": case.merged_into_id if h.to_state == "merged" else None,  # followed from then on
        }

    def send_due(self) -> int:
        """Send the deliveries that are due, oldest first, each ticket's in order: one waits while an earlier one
        of its ticket is not delivered. 2xx → delivered; otherwise tried again after the schedule's delay, and dead
        past max_attempts or max_age_hours (with the later ones of its ticket: they must not overtake it)."""
        delivered = 0
        for _pass in range(MAX_PASSES):  # a delivered change lets the next of its ticket go in the next pass
            sent, stop = self._send_pass()
            delivered += sent
            if stop or not sent:
                break
        return delivered

    def _send_pass(self) -> tuple[int, bool]:
        """One pass over what is due and not held behind an earlier change: (delivered, lease lost)."""
        now = self.clock()
        earlier = aliased(HotlineDelivery)
        blocked = exists().where(earlier.ticket_no == HotlineDelivery.ticket_no, earlier.id < HotlineDelivery.id,
                                 earlier.status != "delivered")
        behind_dead = exists().where(earlier.ticket_no == HotlineDelivery.ticket_no, earlier.id < HotlineDelivery.id,
                                     earlier.status == "dead")
        with self.db.session() as s:
            # a change queued after an earlier one of its ticket died waits with it on the list (it must not overtake)
            s.execute(update(HotlineDelivery).where(HotlineDelivery.status == "pending", behind_dead)
                      .values(status="dead", last_error=HELD_BEHIND_DEAD))
        with self.db.session() as s:
            due = s.execute(select(HotlineDelivery.id, HotlineDelivery.ticket_no, HotlineDelivery.payload,
                                   HotlineDelivery.attempts, HotlineDelivery.since_at)
                            .where(HotlineDelivery.status == "pending", HotlineDelivery.next_attempt_at <= now, ~blocked)
                            .order_by(HotlineDelivery.id).limit(self.rules.push.batch)).all()
        delivered = 0
        for delivery_id, ticket_no, payload, attempts, since in due:
            if not self._take_lease():  # taken over (this process stalled past the lease): the holder sends
                return delivered, True
            status, error = self._send(delivery_id, payload)
            now = self.clock()
            with self.db.session() as s:
                if status is not None and 200 <= status < 300:
                    s.execute(update(HotlineDelivery).where(HotlineDelivery.id == delivery_id).values(
                        status="delivered", attempts=attempts + 1, last_attempt_at=now, delivered_at=now,
                        last_status=status, last_error=None))
                    delivered += 1
                    continue
                failures = attempts + 1
                push = self.rules.push
                give_up = failures >= push.max_attempts or now - since >= timedelta(hours=push.max_age_hours)
                values = dict(attempts=failures, last_attempt_at=now, last_status=status, last_error=error[:300])
                if give_up:
                    s.execute(update(HotlineDelivery).where(HotlineDelivery.id == delivery_id)
                              .values(status="dead", **values))
                    s.execute(update(HotlineDelivery).where(HotlineDelivery.ticket_no == ticket_no,
                                                            HotlineDelivery.id > delivery_id,
                                                            HotlineDelivery.status == "pending")
                              .values(status="dead", last_error=HELD_BEHIND_DEAD))
                    log.warning("12345 推送 #%s（工单 %s）%d 次未成功，转入失败列表：%s", delivery_id, ticket_no,
                                failures, error)
                else:
                    s.execute(update(HotlineDelivery).where(HotlineDelivery.id == delivery_id).values(
                        next_attempt_at=now + timedelta(seconds=push.delay_after(failures)), **values))
        return delivered, False

    def _send(self, delivery_id: int, payload: dict) -> tuple[int | None, str]:
        body = json.dumps({"delivery_id": delivery_id, **payload}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: str(delivery_id),
                   "User-Agent": "ucc-hotline-push/1"}
        try:
            status = self.post(self.webhook, body, headers, self.rules.push.timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the receiver is a failed attempt
            return None, f"{type(exc).__name__}: {exc}"
        return status, "" if 200 <= status < 300 else f"HTTP {status}"

    # ---- the operators' list ----------------------------------------------------------------------------------
    def deliveries(self, principal: Principal, status: str = "dead", limit: int = 100,
                   after: int | None = None) -> dict:
        """The deliveries of one status, newest first: `{items, next}` (`next`: give it back as `after`)."""
        self._operator(principal)
        if status not in DELIVERY_STATUSES:
            raise ServiceError(400, "bad_request", f"status 须为 {'、'.join(DELIVERY_STATUSES)} 之一")
        with self.db.session() as s:
            q = select(HotlineDelivery).where(HotlineDelivery.status == status)
            if after is not None:
                q = q.where(HotlineDelivery.id < after)
            rows = s.scalars(q.order_by(HotlineDelivery.id.desc()).limit(limit + 1)).all()
            items = [_delivery_dict(d) for d in rows[:limit]]
            total = s.scalar(select(func.count()).select_from(HotlineDelivery).where(HotlineDelivery.status == status))
        return {"items": items, "total": total, "next": items[-1]["id"] if len(rows) > limit else None}

    def retry(self, delivery_id: int, principal: Principal) -> dict:
        """A dead delivery queued again now (with the later dead ones of its ticket, in order), its attempts and
        age counted afresh. 404 unknown, 409 when it is not dead."""
        self._operator(principal)
        now = self.clock()
        with self.db.session() as s:
            d = s.get(HotlineDelivery, delivery_id)
            if d is None:
                raise ServiceError(404, "not_found", f"推送 #{delivery_id} 不存在")
            if d.status != "dead":
                raise ServiceError(409, "not_dead", f"推送 #{delivery_id} 当前为「{_STATUS_LABELS[d.status]}」，"
                                                    "只有推送失败的可以重新推送")
            s.execute(update(HotlineDelivery).where(HotlineDelivery.ticket_no == d.ticket_no,
                                                    HotlineDelivery.id >= delivery_id,
                                                    HotlineDelivery.status == "dead")
                      .values(status="pending", attempts=0, next_attempt_at=now, since_at=now,
                              last_error=f"{principal.ident} 重新推送"))
            s.flush()
            s.refresh(d)
            return _delivery_dict(d)

    def dead_summary(self, principal: Principal, limit: int = 5) -> dict | None:
        """The console's card: how many pushes failed and the newest few; None for those who may not work them."""
        if principal.role not in HOTLINE_OPERATORS:
            return None
        listing = self.deliveries(principal, "dead", limit)
        return {"count": listing["total"], "items": listing["items"]}

    @staticmethod
    def _operator(principal: Principal) -> None:
        if principal.role not in HOTLINE_OPERATORS:
            raise ServiceError(403, "forbidden", "只有管理员和值班员可以查看和重新推送 12345 推送记录")


_STATUS_LABELS = {"pending": "待推送", "delivered": "已送达", "dead": "推送失败"}


def _step_label(action: str) -> str:
    return lifecycle.ACTION_LABELS.get(action) or {"report": "受理", "merge": "并案"}.get(action, action)


def _delivery_dict(d: HotlineDelivery) -> dict:
    p = d.payload or {}
    return {"id": d.id, "ticket_no": d.ticket_no, "case_id": d.case_id, "status": d.status,
            "status_label": _STATUS_LABELS.get(d.status, d.status), "attempts": d.attempts,
            "action": p.get("action"), "action_label": p.get("action_label"), "state": p.get("state"),
            "created_at": local_iso(d.created_at), "next_attempt_at": local_iso(d.next_attempt_at),
            "last_attempt_at": local_iso(d.last_attempt_at), "delivered_at": local_iso(d.delivered_at),
            "last_status": d.last_status, "last_error": d.last_error, "payload": p}


def _post(url: str, body: bytes, headers: dict, timeout: float) -> int:
    """POST `body` to the webhook; its HTTP status (raises on no answer). Redirects are not followed: a receiver
    that moved must be configured anew."""
    resp = requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    resp.close()
    return resp.status_code
