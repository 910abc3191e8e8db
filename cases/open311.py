"""Open311 GeoReport v2 (wiki.open311.org/GeoReport_v2): our cases as the spec's services and service requests.

No Flask here: api/open311.py reads the HTTP request and hands this module plain values; this module answers with
the spec's documents (lists of dicts) and renders them as the spec's JSON or XML. Reports go through the one intake
(CaseService.intake, source "open311"); reads show public fields only, every free text through cases.public.
Where each rule comes from: docs/open-interfaces.md, section "Open311 GeoReport v2".
"""
from __future__ import annotations

import json
import math
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Mapping

from sqlalchemy import select

from cases.public import mask_text
from cases.service import CaseService
from data import files
from data.models import Case, CaseHistory
from data.tokens import Principal
from dispatch.access import OPEN311_REPORTERS
from dispatch.city_time import local_iso
from dispatch.errors import ServiceError
from dispatch.lifecycle import OPEN_STATES, TERMINAL_STATES
from dispatch.limits import is_int64
from dispatch.public_services import PublicService, PublicServices

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# The spec's two statuses from our lifecycle's states: a request is open until the case reaches a terminal state
# (rejected, merged, closed, voided). A merged report answers its target's status (see Open311._request).
STATUS_OF_STATE: dict[str, str] = {**{s: "open" for s in OPEN_STATES}, **{s: "closed" for s in TERMINAL_STATES}}

# The actions whose note is the city's reply to the reporter (status_notes): the newest one with a note is shown.
REPLY_ACTIONS = ("reject", "resolve", "close", "void", "reopen")
# GET requests: the spec's default window (the most recent 90 days, and no wider range) and at most this many
# requests in one answer (the spec's Response Volume: "a span of 90 days or first 1000 requests returned, whichever
# is smallest").
WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_IDS = 200  # service_request_id values in one query
# What an Open311 report keeps of the reporter's words besides the description: the address they typed and the URL
# of their photo, in lines after this marker, so the office sees them with the description and reads split them off.
_TRAILER = "\n——Open311——"
_ADDRESS = "地址："
_MEDIA = "图片："
TOKEN_PREFIX = "open311-"  # a report's token is the key its intake was made with (unique: cases.idempotency_key)


class Open311Error(Exception):
    """A refusal in the spec's error format: HTTP status = the error's code, a description clients may show."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status, self.description = status, description


@dataclass(frozen=True)
class Report:
    """A POSTed service request, as the form said it (every value a string or None)."""

    service_code: str | None
    lat: str | None = None
    long: str | None = None
    address_string: str | None = None
    address_id: str | None = None
    description: str | None = None
    media_url: str | None = None
    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    device_id: str | None = None
    account_id: str | None = None


class Open311:
    """The GeoReport v2 resources of one city (jurisdiction)."""

    def __init__(self, cases: CaseService, areas, jurisdiction: str,
                 public: Callable[[Mapping], PublicServices] = files.public_services,
                 discovery_words: Callable[[], dict] = files.open311_discovery):
        self.cases, self.areas, self.jurisdiction = cases, areas, jurisdiction
        self._public, self._words = public, discovery_words
        self._public_of: tuple[object, PublicServices] | None = None

    # ---- jurisdiction, services -------------------------------------------------------------------
    def check_jurisdiction(self, jurisdiction_id: str | None) -> None:
        """The spec makes jurisdiction_id optional for a server of one jurisdiction; given, it must be ours (404: not
        found, as the spec's errors say)."""
        if jurisdiction_id not in (None, "") and jurisdiction_id != self.jurisdiction:
            raise Open311Error(404, f"jurisdiction_id 不正确：本服务的 jurisdiction_id 为 {self.jurisdiction}，"
                                    f"收到 {jurisdiction_id}")

    def public_services(self) -> PublicServices:
        """The public categories of the catalog in force, read once per catalog (a reference reload brings a new one)."""
        catalog = self.cases.catalog()
        cached = self._public_of
        if cached is None or cached[0] is not catalog:
            cached = self._public_of = (catalog, self._public(catalog))
        return cached[1]

    def discovery(self, endpoint_url: str) -> dict:
        words = self._words()
        return {"changeset": words["changeset"], "contact": words["contact"], "key_service": words["key_service"],
                "endpoints": [{"specification": SPECIFICATION, "url": endpoint_url, "changeset": words["changeset"],
                               "type": "production", "formats": ["text/xml", "application/json"]}]}

    def services(self) -> list[dict]:
        return [self._service(s) for s in self.public_services().services]

    @staticmethod
    def _service(s: PublicService) -> dict:
        # metadata false: no attributes beyond the standard fields (docs/open-interfaces.md says why); type realtime:
        # the intake answers with the request's id at once
        return {"service_code": s.code, "service_name": s.name, "description": s.description, "metadata": False,
                "type": "realtime", "keywords": ",".join(s.keywords), "group": s.group}

    def service_definition(self, code: str) -> dict:
        self._known_service(code)
        return {"service_code": code, "attributes": []}

    def _known_service(self, code: str | None) -> PublicService:
        if not code:
            raise Open311Error(400, "缺少 service_code（诉求类别编码，见 services）")
        service = self.public_services().get(code)
        if service is None:
            raise Open311Error(404, f"service_code {code[:40]} 不存在或不受理公众上报（见 services）")
        return service

    # ---- POST requests -----------------------------------------------------------------------------
    def report(self, report: Report, principal: Principal | None) -> list[dict]:
        """Create a service request through the intake; the spec's answer (one element). Our services are realtime:
        the answer carries the service_request_id and so no token (the spec: never both). The report's token (its
        intake key) still resolves through tokens/{token}."""
        if principal is None:
            raise Open311Error(403, "api_key 无效或已吊销：提交诉求需要城市运行管理中心签发的 api_key")
        if principal.role not in OPEN311_REPORTERS:
            raise Open311Error(403, "此 api_key 不是 Open311 密钥（需要 open311 角色的令牌）")
        service = self._known_service(report.service_code)
        lon, lat, located_by = self._point(report)
        token = TOKEN_PREFIX + secrets.token_hex(16)
        payload = {"category": service.code, "lon": lon, "lat": lat, "source": "open311",
                   "description": compose_description(report.description, located_by, report.media_url),
                   "reporter_phone": (report.phone or "").strip() or None, "idempotency_key": token}
        try:
            case, _created = self.cases.intake(payload, principal, actor=principal.ident)
        except ServiceError as err:
            raise _refusal(err)
        notice = self._notice(service, received=True)
        if case.get("merged_into"):
            notice = f"与受理编号 {case['merged_into']} 为同一问题，已合并处理。{notice}"
        return [{"service_request_id": case["id"], "service_notice": notice, "account_id": None}]

    def _point(self, report: Report) -> tuple[float, float, str | None]:
        """(lon, lat, the address typed) of a report: lat/long when given, else the address in words."""
        lat, lon = (report.lat or "").strip(), (report.long or "").strip()
        address = (report.address_string or "").strip() or None
        if lat or lon:
            if not (lat and lon):
                raise Open311Error(400, "lat 和 long 须同时提供")
            try:
                lat_v, lon_v = float(lat), float(lon)
            except ValueError:
                raise Open311Error(400, f"lat/long 须为数字（WGS84 度），收到 lat={lat[:40]!r}, long={lon[:40]!r}")
            if not (math.isfinite(lat_v) and math.isfinite(lon_v) and -90 <= lat_v <= 90 and -180 <= lon_v <= 180):
                raise Open311Error(400, f"lat/long 超出范围：lat={lat_v}, long={lon_v}")
            return lon_v, lat_v, address
        if address is None:
            if (report.address_id or "").strip():
                raise Open311Error(400, "本服务不支持 address_id，请提供 lat/long 或 address_string")
            raise Open311Error(400, "缺少位置：须提供 lat 和 long，或 address_string")
        place = self.areas.place_of_address(address)
        if place is None:
            raise Open311Error(400, f"无法定位地址“{address[:60]}”：请写明所在区、镇/街道或社区，或提供 lat/long")
        return place.lon, place.lat, address

    def _notice(self, service: PublicService, received: bool = False) -> str:
        """The spec's service_notice: what the city will do — the category's time limit; on a POST's answer, also
        that the request was received and how to follow it."""
        category = self.cases.catalog().get(service.code)
        limit = f"按规定时限（{category.time_limit_text}）处置。" if category is not None else ""
        return f"已受理，{limit}可凭受理编号查询进度。" if received else limit

    # ---- GET requests, requests/{id}, tokens/{token} ----------------------------------------------------
    def requests(self, *, service_request_id: str | None = None, service_code: str | None = None,
                 start_date: str | None = None, end_date: str | None = None, status: str | None = None,
                 now: datetime | None = None) -> list[dict]:
        """The spec's GET requests: service_request_id (comma list) overrides every other filter; otherwise the
        requests of the date range (default and widest: 90 days), newest reported first, at most MAX_REQUESTS."""
        public = self.public_services()
        codes = [s.code for s in public.services]
        if service_request_id not in (None, ""):
            ids = _ids(service_request_id)
            return self._answer(select(Case).where(Case.id.in_(ids), Case.category_code.in_(codes))
                                .order_by(Case.id.desc()))
        if service_code not in (None, ""):
            wanted = [c for c in service_code.split(",") if c]
            unknown = [c for c in wanted if public.get(c) is None]
            if unknown:
                raise Open311Error(400, f"service_code {','.join(unknown)[:80]} 不存在（见 services）")
            codes = wanted
        statuses = [s for s in (status or "").split(",") if s]
        bad = [s for s in statuses if s not in ("open", "closed")]
        if bad:
            raise Open311Error(400, f"status 只能是 open 或 closed（可用逗号分隔），收到 {','.join(bad)[:40]}")
        start, end = _window(start_date, end_date, now or self.cases.clock())
        q = select(Case).where(Case.category_code.in_(codes), Case.reported_at >= start, Case.reported_at <= end)
        one_status = len(set(statuses)) == 1
        if one_status:
            # a merged report answers its target's status: merged rows are read and kept by that (so an answer may
            # hold fewer than MAX_REQUESTS when merged reports of the other status fill the first ones read)
            states = {s for s, v in STATUS_OF_STATE.items() if v in statuses} | {"merged"}
            q = q.where(Case.state.in_(sorted(states)))
        rows = self._answer(q.order_by(Case.reported_at.desc(), Case.id.desc()))
        return [r for r in rows if r["status"] in statuses] if one_status else rows

    def request(self, service_request_id: str) -> list[dict]:
        ids = _ids(service_request_id)
        codes = [s.code for s in self.public_services().services]
        found = self._answer(select(Case).where(Case.id.in_(ids), Case.category_code.in_(codes)))
        if not found:
            raise Open311Error(404, f"没有受理编号为 {service_request_id[:40]} 的公开诉求")
        return found

    def token(self, token: str) -> list[dict]:
        case_id = None
        if token.startswith(TOKEN_PREFIX) and len(token) <= 100:
            with self.cases.db.session() as s:
                case_id = s.scalar(select(Case.id).where(Case.idempotency_key == token, Case.source == "open311"))
        if case_id is None:
            raise Open311Error(404, f"token {token[:60]} 不存在")
        return [{"service_request_id": case_id, "token": token}]

    def _answer(self, query, limit: int = MAX_REQUESTS) -> list[dict]:
        with self.cases.db.session() as s:
            cases = list(s.scalars(query.limit(limit)))
            targets = {c.merged_into_id for c in cases if c.state == "merged" and c.merged_into_id}
            by_id = {c.id: c for c in cases}
            missing = targets - set(by_id)
            if missing:
                by_id.update({c.id: c for c in s.scalars(select(Case).where(Case.id.in_(missing)))})
            replies = self._replies(s, {c.id for c in cases} | targets)
            return [self._request(c, by_id.get(c.merged_into_id) if c.state == "merged" else None, replies)
                    for c in cases]

    @staticmethod
    def _replies(s, ids: set[int]) -> dict[int, str]:
        """The newest reply note (REPLY_ACTIONS) of each case."""
        out: dict[int, str] = {}
        if not ids:
            return out
        q = (select(CaseHistory.case_id, CaseHistory.note).where(CaseHistory.case_id.in_(ids),
                                                                  CaseHistory.action.in_(REPLY_ACTIONS))
             .order_by(CaseHistory.id))
        for case_id, note in s.execute(q):
            if note:
                out[case_id] = note
        return out

    def _request(self, case: Case, target: Case | None, replies: Mapping[int, str]) -> dict:
        """One service request: public fields only, free text masked, no reporter's data."""
        service = self.public_services().get(case.category_code)
        text, address, media = split_description(case.description)
        holder = target or case  # a merged report follows the case it was merged into
        notes = mask_text(replies.get(holder.id, ""))
        if target is not None:
            notes = f"与受理编号 {target.id} 为同一问题，已合并处理。" + notes
        lead = self.cases.unit_ref(holder.unit_code)
        chain = self.cases.chain(case.grid_code) if case.grid_code else []  # grid → city: most specific first
        return {
            "service_request_id": case.id,
            "status": STATUS_OF_STATE.get(holder.state, "open"),
            "status_notes": notes or None,
            "service_name": service.name if service else case.category_code,
            "service_code": case.category_code,
            "description": mask_text(text),
            "agency_responsible": lead["name"] if lead else None,
            "service_notice": (self._notice(service) if service else "") or None,
            "requested_datetime": local_iso(case.reported_at),
            "updated_datetime": local_iso(holder.updated_at or holder.reported_at),
            "expected_datetime": local_iso(holder.deadline_at),
            "address": mask_text(address) if address else "，".join(a["name"] for a in chain),
            "address_id": None,
            "zipcode": None,
            "lat": case.lat,
            "long": case.lon,
            "media_url": media,
        }


# ---- the reporter's words kept with the description ------------------------------------------------
def compose_description(text: str | None, address: str | None, media_url: str | None) -> str:
    """The stored description of an Open311 report: the text, then the address and photo URL the client sent."""
    text = (text or "").strip()
    media_url = (media_url or "").strip() or None
    if media_url is not None and not media_url.lower().startswith(("http://", "https://")):
        raise Open311Error(400, "media_url 须为 http:// 或 https:// 开头的图片地址")
    extra = ([_ADDRESS + " ".join(address.split())] if address else []) + ([_MEDIA + media_url] if media_url else [])
    return text + (_TRAILER + "\n" + "\n".join(extra) if extra else "")


def split_description(stored: str | None) -> tuple[str, str | None, str | None]:
    """(text, address, media_url) of a stored description (what compose_description wrote; others: no extras)."""
    text, marker, rest = (stored or "").partition(_TRAILER)
    address = media = None
    if marker:
        for line in rest.splitlines():
            if line.startswith(_ADDRESS):
                address = line.removeprefix(_ADDRESS)
            elif line.startswith(_MEDIA):
                media = line.removeprefix(_MEDIA)
    return text, address, media


# ---- arguments ------------------------------------------------------------------------------------
def _ids(raw: str) -> list[int]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts or len(parts) > MAX_IDS:
        raise Open311Error(400, f"service_request_id 须为 1–{MAX_IDS} 个受理编号（逗号分隔）")
    bad = [p for p in parts if not (p.isascii() and p.isdigit() and is_int64(int(p)))]
    if bad:
        raise Open311Error(400, f"service_request_id 须为数字受理编号，收到 {bad[0][:40]}")
    return [int(p) for p in parts]


def w3c_datetime(name: str, raw: str) -> datetime:
    """A W3C (ISO 8601) date-time with its zone, as the spec requires (2010-01-01T00:00:00Z)."""
    try:
        value = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} 须为带时区的 W3C 时间（如 2026-12-01T00:00:00+08:00），收到 {raw[:40]!r}")
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} 须带时区（Z 或 +08:00），收到 {raw[:40]!r}")
    if not 1900 <= value.year <= 2999:
        raise Open311Error(400, f"{name} 须在 1900–2999 年之间")
    return value


def _window(start_raw: str | None, end_raw: str | None, now: datetime) -> tuple[datetime, datetime]:
    start = w3c_datetime("start_date", start_raw) if start_raw else None
    end = w3c_datetime("end_date", end_raw) if end_raw else None
    if start is None and end is None:
        end = now
    if start is None:
        start = end - WINDOW
    if end is None:
        end = start + WINDOW
    if end < start:
        raise Open311Error(400, "end_date 不能早于 start_date")
    if end - start > WINDOW:
        raise Open311Error(400, "start_date 到 end_date 不能超过 90 天")
    return start, end


def _refusal(err: ServiceError) -> Open311Error:
    """An intake refusal in the spec's terms: 403 stays (the key may not report here), 5xx stays (we failed), any
    other 4xx is the spec's 400 (the request's arguments), with the intake's own Chinese message."""
    status = err.status if err.status == 403 or err.status >= 500 else 400
    return Open311Error(status, err.message)


# ---- the spec's documents as JSON or XML -----------------------------------------------------------
# The element names of each document: root, and the element of each list item (wiki.open311.org/GeoReport_v2).
DOCUMENTS = {"services": ("services", "service"), "requests": ("service_requests", "request"),
             "errors": ("errors", "error")}
_ITEM_OF = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}


def render(document: str, body, fmt: str) -> bytes:
    """`body` (a list for services/requests/errors, a dict for discovery and service_definition) as the spec's
    JSON or XML (UTF-8, with the XML declaration)."""
    if fmt == "json":
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    if document in DOCUMENTS:
        root_name, item = DOCUMENTS[document]
        root = ET.Element(root_name)
        for entry in body:
            _fill(ET.SubElement(root, item), entry)
    else:
        root = ET.Element(document)
        _fill(root, body)
    # the declaration as the spec's examples write it (ElementTree's own uses single quotes)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8")


def _fill(element: ET.Element, value) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list):
        for child in value:
            _fill(ET.SubElement(element, _ITEM_OF.get(element.tag, "item")), child)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def error_document(status: int, description: str, fmt: str) -> tuple[bytes, str]:
    """(body, content type) of the spec's error answer: [{code, description}] / <errors><error>…"""
    fmt = fmt if fmt in FORMATS else "json"
    return render("errors", [{"code": status, "description": description}], fmt), FORMATS[fmt]


def format_of_path(path: str) -> str:
    """The format a path asks for (the spec: .xml or .json after the resource); JSON when it names neither."""
    return "xml" if path.lower().endswith(".xml") else "json"
