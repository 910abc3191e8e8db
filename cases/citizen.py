"""The citizens' desk (/public, no account): a report through the real intake, a case followed by its number and the
reporter's phone, the reporter's rating after closing, and what of a case a citizen is shown (personal data masked).

The edge (public/) decides who is asking — the human check, the rate limits, which cases this browser has proved
it may follow; this module holds the rules of the desk itself. It acts through one system principal,
:data:`CITIZEN`: the reporter is nobody's account, so nothing borrows an officer's identity, and the case's history
names the act as the citizen's (``public:citizen``).
"""
from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from cases.photos import check_photo, list_photos, save_photo
from cases.public import mask_text
from cases.service import PHONE_RE, CaseService, ServiceError, mask_phone
from data.models import Case
from data.tokens import Principal
from dispatch import lifecycle
from dispatch.limits import bad_character, describe_character, is_int64

# The citizen as the lifecycle sees them: a system principal (scope-free, like the scheduler), whose only act is
# the callback of their own case (the edge has proved the case is theirs).
CITIZEN = Principal(kind="system", ident="public:citizen", role=lifecycle.SYSTEM_ROLE, area_code="")
SOURCE = "citizen"
MAX_DESCRIPTION = 1000
MAX_ADDRESS = 100
MAX_NOTE = 500

# A case's state in plain words for the person who reported it.
PUBLIC_STATES = {
    "reported": "已受理，等待审核立案",
    "verifying": "工作人员正在现场核实",
    "accepted": "已立案，正在安排处置单位",
    "rejected": "不予立案",
    "merged": "已并入同一问题的案件一并处理",
    "dispatched": "已派遣，处置单位正在处理",
    "signed": "处置单位正在处理",
    "returned": "正在重新安排处置单位",
    "rework": "正在返工处理",
    "resolved": "已处置，等待核查",
    "verified": "已核查，即将办结",
    "closed": "已办结",
    "suspended": "暂缓办理",
    "voided": "已撤销",
}
# The steps of a case's history a citizen is shown, in their words; every other act (urges, penalties, assists,
# internal notes) stays inside the center.
PUBLIC_STEPS = {
    "report": "问题已受理",
    "merge": "并入同一问题的案件",
    "verify_request": "安排现场核实",
    "accept": "审核通过，已立案",
    "reject": "不予立案",
    "dispatch": "已派遣处置单位",
    "reassign": "已改派处置单位",
    "sign": "处置单位已接单",
    "resolve": "处置单位已处理",
    "rework": "核查未通过，返工处理",
    "verify": "现场核查通过",
    "close": "已办结",
    "approve_extension": "办理时限已延长",
    "approve_suspension": "暂缓办理",
    "suspend": "暂缓办理",
    "resume": "恢复办理",
    "void": "已撤销",
    "callback": "市民已评价",
    "reopen": "重新办理",
}
# Whose note is the center's reply to the citizen: why it was not filed, how it was closed, why it was voided.
REPLY_ACTIONS = {"reject": "不予立案理由", "close": "办结答复", "void": "撤销说明"}
# The four stages of the progress bar, and the states that have reached each.
PROGRESS = (("受理", ()), ("立案", ("accepted", "dispatched", "signed", "returned", "rework", "resolved", "verified",
                                    "closed", "suspended")),
            ("处置", ("resolved", "verified", "closed")), ("办结", ("closed",)))
SATISFACTION = lifecycle.SATISFACTION


@dataclass(frozen=True)
class Report:
    """What the citizens' form sends: `lon`/`lat` from the map or the phone's position, else `address` in words."""

    category: str
    description: str
    phone: str
    lon: float | None = None
    lat: float | None = None
    address: str = ""
    photo: bytes | None = None
    photo_name: str = ""
    key: str | None = None  # the form's idempotency key: a resent form answers with the case it made


def normalize_phone(phone) -> str:
    """The phone as stored: digits, and the landline's one dash; spaces and other dashes dropped."""
    text = re.sub(r"[\s\u3000()（）]", "", str(phone or ""))
    if re.fullmatch(r"0\d{2,3}-?\d{7,8}", text):
        return text
    return text.replace("-", "")


def check_phone(phone) -> str:
    """The normalized phone, or a 400 saying what a phone looks like."""
    text = normalize_phone(phone)
    if not text:
        raise ServiceError(400, "phone_required", "请填写手机号码，用于查询办理进度")
    if len(text) > 20 or not PHONE_RE.match(text):
        raise ServiceError(400, "bad_phone", "手机号码格式不正确（11 位手机号，或区号-座机号）")
    return text


def _digits(phone: str | None) -> str:
    return re.sub(r"\D", "", phone or "")


def clean_text(value, what: str, most: int, required: bool = False) -> str:
    """Free text from a form: stripped, bounded, no control characters (the request screen leaves forms to us)."""
    text = str(value or "").strip()
    if required and not text:
        raise ServiceError(400, "required", f"请填写{what}")
    if len(text) > most:
        raise ServiceError(400, "too_long", f"{what}过长（{len(text)} 字，最多 {most} 字）")
    ch = bad_character(text, free_text=True)
    if ch is not None:
        raise ServiceError(400, "bad_text", f"{what}含有不允许的控制字符（{describe_character(ch)}）")
    return text


def ticket_number(value) -> int | None:
    """A 受理编号 as typed (digits, spaces allowed) → the case id, or None when it cannot be one."""
    text = re.sub(r"\s", "", str(value or ""))
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    return number if number > 0 and is_int64(number) else None


class CitizenDesk:
    """The desk over the app's case service; `public_services()` gives the categories the public may report."""

    def __init__(self, cases: CaseService, public_services):
        self.cases = cases
        self._public_services = public_services

    # ---- report ------------------------------------------------------------------------------
    def report(self, form: Report) -> dict:
        """Intake with source `citizen` (CaseService.intake: validate, locate, route, dedupe, outbox), then the
        photo. Every check that can fail runs before the intake, so a refused form leaves nothing behind.
        Returns {id, merged_into, photo_saved}."""
        services = self._public_services()
        category = services.get(str(form.category or "").strip())
        if category is None:
            raise ServiceError(400, "category_required", "请选择问题类别")
        description = clean_text(form.description, "问题描述", MAX_DESCRIPTION, required=True)
        address = clean_text(form.address, "地点说明", MAX_ADDRESS)
        phone = check_phone(form.phone)
        lon, lat = form.lon, form.lat
        if lon is None or lat is None:
            place = self.cases.areas.place_of_address(address) if address else None
            if place is None:
                raise ServiceError(400, "point_required",
                                   "请在地图上点选问题位置，或点击「使用我的位置」，或在地点说明中写明所在街道、社区"
                                   if not address else f"未能从「{address}」找到位置：请写明所在街道或社区，或在地图上点选")
            lon, lat = place.lon, place.lat
        if form.photo:
            check_photo(form.photo, form.photo_name)
        text = description + (f"\n地点：{address}" if address else "")
        payload = {"category": category.code, "lon": lon, "lat": lat, "description": text, "source": SOURCE,
                   "reporter_phone": phone}
        if form.key and re.fullmatch(r"[0-9A-Za-z_-]{8,64}", str(form.key)):  # the form's own; anything else is ignored
            payload["idempotency_key"] = "public:" + str(form.key)
        case, _created = self.cases.intake(payload, None, actor=CITIZEN.ident)
        saved = False
        if form.photo:
            try:
                save_photo(self.cases, case["id"], form.photo, form.photo_name, "report", CITIZEN.ident, None)
                saved = True
            except ServiceError:
                saved = False  # the case stands (it was acknowledged); the page says the photo did not arrive
        return {"id": case["id"], "merged_into": case.get("merged_into"), "photo_saved": saved}

    # ---- follow ------------------------------------------------------------------------------
    def follow(self, number, phone) -> int | None:
        """The case id when `number` is a case reported with `phone`; None otherwise — the same None whether the
        number or the phone is wrong, so an answer tells nothing about cases that are not the asker's."""
        case_id = ticket_number(number)
        given = _digits(normalize_phone(phone))
        if case_id is None or len(given) < 7:
            return None
        with self.cases.db.session() as s:
            stored = s.get(Case, case_id)
            stored_phone = _digits(stored.reporter_phone) if stored is not None else ""
        # compared in constant time, and compared even when there is no case, so timing says nothing either
        matches = hmac.compare_digest(stored_phone.encode() or b"-", given.encode())
        return case_id if stored is not None and matches else None

    def view(self, case_id: int) -> dict:
        """What the reporter is shown of their case (the edge has proved it is theirs): the state in plain words, the
        progress, the public steps, the reply, the deadline, the fix photos, and whether it may be rated now.
        Personal data in the texts is masked (cases/public.py): a case may hold others' words."""
        case = self.cases.get(case_id, None)
        history = case.get("history", [])
        steps = [{"at": h["at"], "label": PUBLIC_STEPS[h["action"]],
                  "note": mask_text(h["note"]) if h["action"] in REPLY_ACTIONS else ""}
                 for h in history if h["action"] in PUBLIC_STEPS]
        reply = next(({"label": REPLY_ACTIONS[h["action"]], "text": mask_text(h["note"]), "at": h["at"]}
                      for h in reversed(history) if h["action"] in REPLY_ACTIONS and h.get("note")), None)
        state = case["state"]
        reached = [name for name, states in PROGRESS if not states or state in states]
        photos = [p for p in list_photos(self.cases.db, case_id) if p["case_id"] == case_id]
        merged_into = case.get("merged_into")
        return {
            "id": case["id"], "state": state, "state_text": PUBLIC_STATES.get(state, case["state_label"]),
            "progress": [{"name": name, "done": name in reached} for name, _ in PROGRESS],
            "category": case["category"]["name"], "description": mask_text(case["description"]),
            "place": " · ".join(a["name"] for a in reversed(case["chain"]) if a["level"] in (2, 3, 4)),
            "unit": (case.get("unit") or {}).get("name"), "reported_at": case["reported_at"],
            "deadline": case["deadline"] if state not in ("closed", "rejected", "voided", "merged") else None,
            "overdue": bool(case.get("overdue")), "closed_at": case.get("closed_at"),
            "phone": mask_phone(case.get("reporter_phone")),
            "steps": steps, "reply": reply, "merged_into": merged_into,
            "fix_photos": [{"id": p["id"], "at": p["uploaded_at"]} for p in photos if p["kind"] == "feedback"],
            "report_photos": [{"id": p["id"], "at": p["uploaded_at"]} for p in photos if p["kind"] == "report"],
            "callback": case.get("callback"),
            "may_rate": self._may_rate(case),
        }

    @staticmethod
    def _may_rate(case: dict) -> bool:
        """Closed, reported here, and not yet rated since it was closed (the lifecycle's own rule for a callback)."""
        callback = case.get("callback")
        rated = callback is not None and (case.get("closed_at") is None or callback["at"] >= case["closed_at"])
        return case["state"] == "closed" and case["source"] == SOURCE and not rated

    def photo(self, case_id: int, photo_id: int) -> dict | None:
        """A photo of the case (its report's or its fix's) for its reporter, or None."""
        return next((p for p in list_photos(self.cases.db, case_id) if p["id"] == photo_id and p["case_id"] == case_id),
                    None)

    # ---- rate --------------------------------------------------------------------------------
    def rate(self, case_id: int, satisfaction, note="") -> dict:
        """The reporter's rating (满意 / 基本满意 / 不满意) through the case's callback (回访) action, once per
        closing: refused (422) before closing, after a rating, and for a case that came in another way (the
        hotline's callers are called back by the hotline)."""
        if satisfaction not in SATISFACTION:
            raise ServiceError(400, "satisfaction_required", "请选择：满意、基本满意或不满意")
        note = clean_text(note, "评价说明", MAX_NOTE)
        case = self.cases.get(case_id, None)
        if case["source"] != SOURCE:
            raise ServiceError(422, "not_citizen_case", "该案件不是通过本页面反映的，将由受理渠道回访")
        if case["state"] != "closed":
            raise ServiceError(422, "not_closed", "案件办结后才能评价")
        if not self._may_rate(case):
            raise ServiceError(422, "already_rated", "您已评价过本次办理结果，感谢您的反馈")
        return self.cases.act(case_id, CITIZEN, "callback", case["version"], note=note, satisfaction=satisfaction)
