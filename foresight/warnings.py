"""Early warnings: the detectors' findings stored once each, told to the responsible duty officers, read, acknowledged,
dismissed, or turned into a 专项整治 case through the real intake (docs/foresight.md, Warnings)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Iterable

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from cases.service import CaseService
from data.db import Database
from data.models import Case, Category, EarlyWarning, Unit, WarningCase
from data.tokens import Principal
from dispatch.city_time import local_iso
from dispatch.errors import ServiceError
from dispatch.limits import bad_character, is_int64
from dispatch.routing import LEVEL_NAMES
from dispatch.warning_rules import WarningRules
from foresight.findings import KINDS, Finding

log = logging.getLogger("ucc.warnings")

STATUSES = ("open", "acknowledged", "tasked", "dismissed")
STATUS_LABELS = {"open": "待处理", "acknowledged": "已确认", "tasked": "已转专项整治", "dismissed": "已排除"}
KIND_LABELS = {"surge": "案件突增", "hotspot": "热点区域", "recurrent": "高发问题点位"}
READERS = ("admin", "duty_officer", "leader", "wall")
ACTORS = ("admin", "duty_officer")
MAX_LIMIT = 500
MAX_TEXT = 500

Detector = Callable[[Database, datetime, WarningRules], list[Finding]]


def detector(module: str) -> Detector:
    """`module`.detect, imported at its first call (the detectors pull in numpy, scipy and PySAL)."""
    import importlib

    def detect(db: Database, at: datetime, rules: WarningRules) -> list[Finding]:
        return importlib.import_module(module).detect(db, at, rules)

    detect.__module__ = module
    return detect


class WarningService:
    """The warnings over the database. `detectors`: each `detect(db, at, rules) -> list[Finding]`."""

    def __init__(self, db: Database, cases: CaseService, detectors: Iterable[Detector],
                 rules: WarningRules | None = None, clock=None):
        self.db, self.cases, self.areas = db, cases, cases.areas
        self.detectors = list(detectors)
        self._rules = rules
        self.clock = clock or cases.clock
        # called after each commit that stored warnings, with the warnings as the API shows them (each with its
        # `rooms`): the live bus's warning_event. A listener never raises.
        self.listeners: list[Callable[[list[dict]], None]] = []

    def rules(self) -> WarningRules:
        if self._rules is None:
            from data import files

            self._rules = files.warning_rules(self.cases.catalog())
        return self._rules

    # ---- the hourly run --------------------------------------------------------------------------
    def run(self, at: datetime | None = None) -> list[dict]:
        """Every detector's findings as of `at` (default now), the new ones stored (a finding whose dedupe key is
        stored already is skipped: the next run of the same hour, another process at the same time), with their
        evidence cases; then told to the listeners. Returns the warnings stored by this run. One detector's
        failure is logged and the others go on."""
        at = at or self.clock()
        rules = self.rules()
        findings: list[Finding] = []
        for detect in self.detectors:
            try:
                findings += detect(self.db, at, rules)
            except Exception:  # noqa: BLE001 - a broken detector must not silence the others
                log.exception("预警检测 %s 失败", getattr(detect, "__module__", detect))
        stored = self._store(findings, at)
        items = self._items(stored) if stored else []
        self.announce([{**item, "rooms": self.rooms(item["kind"], item["area"])} for item in items])
        return items

    def _store(self, findings: list[Finding], at: datetime) -> list[int]:
        by_key: dict[str, Finding] = {}
        for f in findings:
            by_key.setdefault(f.dedupe_key, f)
        if not by_key:
            return []
        with self.db.session() as s:
            have = set(s.scalars(select(EarlyWarning.dedupe_key).where(EarlyWarning.dedupe_key.in_(list(by_key)))))
            have |= self._still_warned(s, by_key)
        now = self.clock()
        ids = []
        for key, f in by_key.items():
            if key in have:
                continue
            try:
                with self.db.session() as s:
                    w = EarlyWarning(dedupe_key=key, kind=f.kind, area_code=f.area_code, district_code=f.district_code,
                                     category_code=f.category_code, window_start=f.window_start,
                                     window_end=f.window_end, observed=int(f.observed), expected=f.expected,
                                     upper=f.upper, score=f.score, evidence=f.evidence or None, status="open",
                                     raised_at=now, updated_at=now, updated_by="system:warnings")
                    s.add(w)
                    s.flush()  # the unique dedupe_key refuses a twin another process stored a moment ago
                    s.add_all(WarningCase(warning_id=w.id, case_id=int(c)) for c in dict.fromkeys(f.case_ids))
                    s.flush()
                    ids.append(w.id)
            except IntegrityError:
                continue
        return ids

    @staticmethod
    def _still_warned(s, by_key: dict[str, Finding]) -> set[str]:
        """The keys of hotspot findings a duty officer has already: an open or acknowledged hotspot warning of the
        same window length whose grids hold the new cluster's hottest grid. A hotspot's window moves each day; the
        place it warns of is the same warning until it is dismissed or tasked."""
        hot = {k: f for k, f in by_key.items() if f.kind == "hotspot"}
        if not hot:
            return set()
        held: dict[float, set[str]] = {}
        for start, end, area, ev in s.execute(select(EarlyWarning.window_start, EarlyWarning.window_end,
                                                     EarlyWarning.area_code, EarlyWarning.evidence)
                                              .where(EarlyWarning.kind == "hotspot",
                                                     EarlyWarning.status.in_(("open", "acknowledged")))):
            grids = {g.get("code") for g in (ev or {}).get("grids", []) if isinstance(g, dict)} | {area}
            held.setdefault((end - start).total_seconds(), set()).update(grids)
        return {k for k, f in hot.items()
                if f.area_code in held.get((f.window_end - f.window_start).total_seconds(), ())}

    # ---- live ------------------------------------------------------------------------------------
    def announce(self, items: list[dict]) -> None:
        """The stored warnings (each with the `rooms` it goes to) to the listeners (the live bus); never raises: the
        warning is in the table, and a page that missed its event reads it with the next list."""
        if not items or not self.listeners:
            return
        for listener in list(self.listeners):
            try:
                listener(items)
            except Exception:  # noqa: BLE001 - live news must never undo a warning
                log.exception("announcing warnings failed")

    def responsible_area(self, kind: str, area_code: str) -> str:
        """The area whose duty officers answer for a warning: the warned area's ancestor at the rules' level for the
        kind (a hotspot's district, a spot's street), or the area itself when it lies above that level."""
        level = self.rules().notify.get(kind, 3)
        chain = self.areas.chain(area_code)
        for a in chain:
            if a.level == level:
                return a.code
        return area_code

    def rooms(self, kind: str, area_code: str) -> list[str]:
        """The live rooms told of a warning: the responsible area's and those above it (up to the city, where the
        wall and the cockpit listen); not the grids' below it."""
        responsible = self.responsible_area(kind, area_code)
        return [f"area:{a.code}" for a in self.areas.chain(responsible)]

    # ---- reads -----------------------------------------------------------------------------------
    def _check_reader(self, principal: Principal) -> None:
        if principal.role not in READERS:
            raise ServiceError(403, "forbidden", "您的角色无权查看预警")

    def _scope(self, principal: Principal):
        """A clause selecting the warnings of the principal's area (None: all), as cases are scoped."""
        if principal.role == "admin":
            return None
        area = self.areas.get(principal.area_code)
        if area is None:
            raise ServiceError(403, "forbidden", "您的账号没有有效的辖区")
        if area.level == 1:
            return None
        if area.level == 2:
            return or_(EarlyWarning.district_code == area.code, EarlyWarning.area_code == area.code)
        codes, frontier = {area.code}, [area.code]
        while frontier:
            kids = [c.code for code in frontier for c in self.areas.children(code)]
            codes.update(kids)
            frontier = kids
        return EarlyWarning.area_code.in_(sorted(codes))

    def _visible(self, principal: Principal, w: EarlyWarning) -> bool:
        if principal.role == "admin":
            return True
        return principal.area_code in {a.code for a in self.areas.chain(w.area_code)} or (
            w.district_code is not None and principal.area_code == w.district_code)

    def list(self, principal: Principal, status: str | None = None, kind: str | None = None,
             limit: int = 100) -> dict:
        """`{items, total}`: the warnings of the principal's area, newest first (`limit` of them)."""
        self._check_reader(principal)
        if status is not None and status not in STATUSES:
            raise ServiceError(400, "bad_request",
                               f"未知的预警状态 {str(status)[:40]}（可用：{'、'.join(STATUSES)}）")
        if kind is not None and kind not in KINDS:
            raise ServiceError(400, "bad_request", f"未知的预警类型 {str(kind)[:40]}（可用：{'、'.join(KINDS)}）")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ServiceError(400, "bad_request", f"limit 须为 1 到 {MAX_LIMIT} 之间的整数")
        where = [c for c in (self._scope(principal),
                             EarlyWarning.status == status if status else None,
                             EarlyWarning.kind == kind if kind else None) if c is not None]
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(EarlyWarning).where(*where))
            ids = list(s.scalars(select(EarlyWarning.id).where(*where)
                                 .order_by(EarlyWarning.raised_at.desc(), EarlyWarning.id.desc()).limit(limit)))
        return {"items": self._items(ids), "total": total}

    def get(self, warning_id, principal: Principal) -> dict:
        self._check_reader(principal)
        with self.db.session() as s:
            self._visible_warning(s, warning_id, principal)
        return self._items([warning_id], with_evidence=True)[0]

    def _visible_warning(self, s, warning_id, principal: Principal) -> EarlyWarning:
        w = s.get(EarlyWarning, warning_id) if is_int64(warning_id) and not isinstance(warning_id, bool) else None
        if w is None:
            raise ServiceError(404, "not_found", f"预警 #{str(warning_id)[:20]} 不存在")
        if not self._visible(principal, w):
            raise ServiceError(403, "forbidden", "该预警不在您的辖区内")
        return w

    def _items(self, ids: list[int], with_evidence: bool = False) -> list[dict]:
        if not ids:
            return []
        with self.db.session() as s:
            rows = {w.id: w for w in s.scalars(select(EarlyWarning).where(EarlyWarning.id.in_(ids)))}
            links: dict[int, list[int]] = {}
            for wid, cid in s.execute(select(WarningCase.warning_id, WarningCase.case_id)
                                      .where(WarningCase.warning_id.in_(ids)).order_by(WarningCase.case_id.desc())):
                links.setdefault(wid, []).append(cid)
            cats = {w.category_code for w in rows.values() if w.category_code}
            names = dict(s.execute(select(Category.code, Category.name).where(Category.code.in_(cats))).all()) \
                if cats else {}
        out = []
        for i in ids:
            w = rows.get(i)
            if w is None:
                continue
            area = self.areas.get(w.area_code)
            responsible = self.responsible_area(w.kind, w.area_code)
            resp_area = self.areas.get(responsible)
            item = {"id": w.id, "kind": w.kind, "kind_label": KIND_LABELS.get(w.kind, w.kind), "area": w.area_code,
                    "area_name": area.name if area else None, "district": w.district_code,
                    "category": w.category_code, "category_name": names.get(w.category_code),
                    "window_start": local_iso(w.window_start), "window_end": local_iso(w.window_end),
                    "observed": w.observed, "expected": w.expected, "upper": w.upper, "score": w.score,
                    "cases": [c for c in links.get(w.id, []) if c != w.case_id], "status": w.status,
                    "status_label": STATUS_LABELS.get(w.status, w.status), "raised_at": local_iso(w.raised_at),
                    "updated_at": local_iso(w.updated_at), "updated_by": w.updated_by, "case_id": w.case_id,
                    "responsible_area": responsible, "responsible_name": resp_area.name if resp_area else None,
                    "responsible_level": LEVEL_NAMES.get(resp_area.level) if resp_area else None}
            if with_evidence:
                item["evidence"] = w.evidence or {}
            out.append(item)
        return out

    # ---- the duty officer's actions ------------------------------------------------------------------
    def _check_actor(self, principal: Principal) -> None:
        if principal.role not in ACTORS:
            raise ServiceError(403, "forbidden", "只有值班员和管理员可以处理预警")

    def _move(self, warning_id, principal: Principal, to: str, allowed: tuple[str, ...], verb: str,
              extra: Callable[[EarlyWarning], dict] | None = None) -> dict:
        self._check_actor(principal)
        now = self.clock()
        with self.db.session() as s:
            w = self._visible_warning(s, warning_id, principal)
            if w.status not in allowed:
                raise ServiceError(409, "conflict", f"预警 #{w.id} 当前状态为「{STATUS_LABELS.get(w.status, w.status)}」，"
                                                    f"不能{verb}")
            values = {"status": to, "updated_at": now, "updated_by": principal.ident}
            if extra is not None:
                values.update(extra(w))
            done = s.execute(update(EarlyWarning).where(EarlyWarning.id == w.id, EarlyWarning.status == w.status)
                             .values(**values))
            if done.rowcount != 1:
                raise ServiceError(409, "conflict", f"预警 #{w.id} 已被他人处理，请刷新后重试")
        return self._items([w.id], with_evidence=True)[0]

    def acknowledge(self, warning_id, principal: Principal) -> dict:
        """open → acknowledged: a duty officer has seen it and looks into it."""
        return self._move(warning_id, principal, "acknowledged", ("open",), "确认")

    def dismiss(self, warning_id, principal: Principal, reason) -> dict:
        """open | acknowledged → dismissed, with the reason (kept in the evidence, with who and when)."""
        text = _clean_text(reason, "排除原因", required=True)

        def extra(w: EarlyWarning) -> dict:
            return {"evidence": {**(w.evidence or {}),
                                 "dismissal": {"reason": text, "by": principal.ident, "at": local_iso(self.clock())}}}

        return self._move(warning_id, principal, "dismissed", ("open", "acknowledged"), "排除", extra)

    def to_campaign(self, warning_id, principal: Principal, unit_code, note="") -> dict:
        """open | acknowledged → tasked: a 专项整治 case opened through the real intake at the warned place (the
        category of the rules' campaign), led by `unit_code` (an existing unit serving the warned area), the warned
        cases named in its description (they stay linked to the warning in warning_cases; the warning's case_id is
        the campaign case). Idempotent: a retry answers with the case the first one made.
        Returns `{"warning": …, "case": …}`."""
        self._check_actor(principal)
        note = _clean_text(note, "备注", required=False)
        if not isinstance(unit_code, str) or not unit_code.strip() or len(unit_code) > 40 \
                or bad_character(unit_code) is not None:
            raise ServiceError(400, "bad_request", "须指定牵头单位编码 unit_code")
        unit_code = unit_code.strip()
        rules = self.rules()
        with self.db.session() as s:
            w = self._visible_warning(s, warning_id, principal)
            if w.status not in ("open", "acknowledged"):
                raise ServiceError(409, "conflict", f"预警 #{w.id} 当前状态为「{STATUS_LABELS.get(w.status, w.status)}」，"
                                                    "不能转为专项整治")
            unit = s.get(Unit, unit_code)
            if unit is None:
                raise ServiceError(422, "unknown_unit", f"单位 {unit_code} 不存在")
            chain = [a.code for a in self.areas.chain(w.area_code)]
            if unit.area_code not in chain:
                raise ServiceError(422, "unit_out_of_area", f"单位「{unit.name}」不负责预警所在区域，不能牵头整治")
            warned = list(s.scalars(select(WarningCase.case_id).where(WarningCase.warning_id == w.id)
                                    .order_by(WarningCase.case_id.desc())))
            category_name = s.scalar(select(Category.name).where(Category.code == w.category_code)) \
                if w.category_code else None
            snapshot = (w.id, w.kind, w.area_code, w.observed, w.expected, w.window_start, w.window_end,
                        dict(w.evidence or {}), unit.name)
        wid, kind, area_code, observed, expected, start, end, evidence, unit_name = snapshot
        lon, lat = self._place(kind, area_code, evidence)
        area = self.areas.get(area_code)
        named = warned[:rules.campaign_max_cases_named]
        cases_text = "、".join(f"#{c}" for c in named) + (f" 等共 {len(warned)} 件" if len(warned) > len(named)
                                                          else f"（共 {len(warned)} 件）")
        what = f"{KIND_LABELS.get(kind, kind)}：{area.name if area else area_code}"
        if category_name:
            what += f"「{category_name}」"
        description = (f"专项整治（预警 #{wid}，{what}；{local_iso(start)} 至 {local_iso(end)} 共 {observed} 件"
                       + (f"，预期 {expected:g} 件" if expected is not None else "")
                       + f"）；牵头单位：{unit_name}；关联案件：{cases_text or '无'}"
                       + (f"；备注：{note}" if note else ""))
        payload = {"category": rules.campaign_category, "lon": lon, "lat": lat, "description": description[:2000],
                   "source": "api", "idempotency_key": f"warning-{wid}"}
        case, _created = self.cases.intake(payload, None, actor=principal.ident)
        case_id = case.get("merged_into") or case["id"]
        if case.get("merged_into"):
            # the intake's dedupe joined an open 专项整治 case at the same place (another warning of it, tasked
            # within the day): that campaign keeps its lead; this warning points at it
            case = self.cases.get(case_id, None)
        elif (case.get("unit") or {}).get("code") != unit_code:
            case = self._lead(case_id, principal, unit_code, unit_name, wid)
        now = self.clock()
        with self.db.session() as s:
            done = s.execute(update(EarlyWarning).where(EarlyWarning.id == wid,
                                                        EarlyWarning.status.in_(("open", "acknowledged")))
                             .values(status="tasked", case_id=case_id, updated_at=now, updated_by=principal.ident))
            if done.rowcount != 1:
                current = s.scalar(select(EarlyWarning.case_id).where(EarlyWarning.id == wid))
                if current != case_id:  # dismissed meanwhile; the case stays (it is a real case now)
                    raise ServiceError(409, "conflict", f"预警 #{wid} 已被他人处理，请刷新后重试")
        return {"warning": self._items([wid], with_evidence=True)[0], "case": case}

    def _lead(self, case_id: int, principal: Principal, unit_code: str, unit_name: str, wid: int) -> dict:
        """The campaign case led by the chosen unit (routing chose the category's own): written as an action on the
        case, with its history row and live event."""
        with self.db.session() as s:
            version = s.scalar(select(Case.version).where(Case.id == case_id))

        def authorize(s, case, actor) -> None:
            return None  # checked by to_campaign: the role, the warning's area, the unit

        def decide(s, case, actor, now):
            note = f"预警 #{wid} 转专项整治，指定「{unit_name}」牵头"
            return note, {"warning_id": wid, "unit_code": unit_code}, {
                "unit_code": unit_code, "route_reason": f"专项整治：指定{unit_name}牵头"}

        return self.cases.act_outside(case_id, principal, "campaign_assign", version, authorize, decide)

    def _place(self, kind: str, area_code: str, evidence: dict) -> tuple[float, float]:
        """Where the campaign case is reported: a spot's centre, else a point inside the warned area."""
        if kind == "recurrent" and isinstance(evidence.get("lon"), (int, float)) and \
                isinstance(evidence.get("lat"), (int, float)):
            locator = self.areas.locator()
            try:
                if locator is not None:
                    locator.locate(evidence["lon"], evidence["lat"])
                    return float(evidence["lon"]), float(evidence["lat"])
            except Exception:  # noqa: BLE001 - outside the current hierarchy: the area's point instead
                pass
        area = self.areas.get(area_code)
        if area is None:
            raise ServiceError(422, "no_area", f"预警所在区域 {area_code} 已不在当前网格体系中")
        point = area.geometry.representative_point()
        return round(point.x, 7), round(point.y, 7)


def _clean_text(value, label: str, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ServiceError(400, "bad_request", f"{label}须为文本")
    value = value.strip()
    if required and not value:
        raise ServiceError(400, "bad_request", f"须填写{label}")
    if len(value) > MAX_TEXT or bad_character(value, free_text=True) is not None:
        raise ServiceError(400, "bad_request", f"{label}须为至多 {MAX_TEXT} 个字符的普通文本")
    return value


def parse_at(raw: str) -> datetime:
    """An ISO 8601 time with its offset, between 1900 and 2999 (the `--at` of `flask warn`), or a 400 saying why."""
    from dispatch.limits import EARLIEST_DAY, LATEST_DAY

    try:
        at = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(400, "bad_request", f"时间格式有误：{str(raw)[:40]}（应为 ISO 8601，带时区偏移，如 "
                                               "2026-11-25T09:00:00+08:00）")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ServiceError(400, "bad_request", "时间须带时区偏移（如 2026-11-25T09:00:00+08:00）")
    if not EARLIEST_DAY <= at.date() <= LATEST_DAY:
        raise ServiceError(400, "bad_request", f"时间须在 {EARLIEST_DAY.year}–{LATEST_DAY.year} 年之间")
    return at
