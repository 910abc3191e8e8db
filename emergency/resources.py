"""Emergency resources (issue 17 part 4, docs/emergency.md): the nearest to a place through a spatial index, and
their allocation to emergency cases — teams and equipment whole, shelter places and warehouse stock by quantity,
never below zero or above capacity, each allocation and release on the case's timeline."""
from __future__ import annotations

import math
import threading
from datetime import datetime

from sqlalchemy.orm import Session

from cases.service import NOT_OPEN, CaseService
from data import resources as repo
from data.area_directory import AreaDirectory
from data.db import Database
from data.models import Case, Resource
from data.tokens import Principal
from dispatch.errors import ServiceError
from dispatch.limits import bad_character, is_int64
from geo.nearest import NearestIndex

# the kinds of resource (CONTRACT.md) and their names on screen
TYPES = {"team": "救援队伍", "warehouse": "应急物资仓库", "equipment": "装备车辆", "shelter": "避难场所"}
STATUSES = {"available": "可调用", "deployed": "已出动", "maintenance": "维护中"}
# allocated whole (a team with its people and kit, a vehicle); a shelter by places, a warehouse by an item's quantity
WHOLE = ("team", "equipment")
# Who reads resources: the command hall's people and the wall (the map's layer) read every resource of the city —
# the nearest team may be across a district line — and a unit handler reads their own unit's only. Who allocates:
# the people who command a case (its area must be theirs: CaseService.can_see).
READERS = ("admin", "duty_officer", "leader", "wall", "unit_handler")
ALLOCATORS = ("admin", "duty_officer", "leader")
MAX_LIMIT = 500
MAX_PER_PAGE = 500
MAX_RADIUS_M = 1_000_000.0
MAX_QUANTITY = 1e9
EMERGENCY_KIND = "emergency"


def _fmt(q: float | None) -> str:
    if q is None:
        return ""
    return str(int(q)) if float(q).is_integer() else f"{q:g}"


class ResourceService:
    """Reads of the resources (nearest first, a page, one, counts) and their allocation to emergency cases."""

    def __init__(self, db: Database, areas: AreaDirectory, cases: CaseService | None = None):
        self.db = db
        self.areas = areas
        self.cases = cases if cases is not None else CaseService(db, areas)
        self._index: NearestIndex | None = None
        self._lock = threading.Lock()

    # ---- the index --------------------------------------------------------------------------------
    def index(self) -> NearestIndex:
        """The nearest-resource index, rebuilt when the resources changed (data.resources.index_version moved: an
        import, the seed; an allocation does not move it)."""
        with self.db.session() as s:
            version = repo.index_version(s)
        current = self._index
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._index
            if current is not None and current.version == version:
                return current
            with self.db.session() as s:
                version = repo.index_version(s)  # read with the rows: the version the index really holds
                rows = repo.index_rows(s)
            self._index = NearestIndex.build(rows, version=version)
            return self._index

    # ---- checks -------------------------------------------------------------------------------------
    @staticmethod
    def _check_reader(principal: Principal | None) -> None:
        if principal is not None and principal.role not in READERS:
            raise ServiceError(403, "forbidden", "当前角色无权查看应急资源")

    @staticmethod
    def _owner(principal: Principal | None) -> str | None:
        """A unit handler reads only their unit's resources."""
        if principal is not None and principal.role == "unit_handler":
            return principal.unit_code or ""
        return None

    @staticmethod
    def _check_filters(type_: str | None, specialty: str | None) -> None:
        if type_ is not None and type_ not in TYPES:
            raise ServiceError(400, "bad_request",
                               f"未知的资源类型 {str(type_)[:40]}（可用：{'、'.join(f'{k}（{v}）' for k, v in TYPES.items())}）")
        if specialty is not None and (not isinstance(specialty, str) or len(specialty) > 40
                                      or bad_character(specialty) is not None):
            raise ServiceError(400, "bad_request", "参数 specialty 须为至多 40 个字符的专业名称")

    # ---- reads --------------------------------------------------------------------------------------
    def nearest(self, lon: float, lat: float, type: str | None = None, specialty: str | None = None,  # noqa: A002
                radius_m: float | None = None, limit: int = 20, principal: Principal | None = None,
                status: str | None = None) -> dict:
        """`{items, total}`: the resources nearest to (lon, lat), nearest first, each with its `distance_m`
        (metres on the WGS 84 ellipsoid); filtered by type and specialty, within radius_m when given, and by
        `status` (e.g. only those available now) when given."""
        self._check_reader(principal)
        for name, v in (("lon", lon), ("lat", lat)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ServiceError(400, "bad_request", f"参数 near 的{'经度' if name == 'lon' else '纬度'}须为数字")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ServiceError(400, "bad_request", f"参数 near 超出范围：{lon},{lat}（经度 −180～180，纬度 −90～90）")
        self._check_filters(type, specialty)
        if status is not None and status not in STATUSES:
            raise ServiceError(400, "bad_request", f"未知的资源状态 {str(status)[:40]}（可用：{'、'.join(STATUSES)}）")
        if radius_m is not None and (isinstance(radius_m, bool) or not isinstance(radius_m, (int, float))
                                     or not math.isfinite(radius_m) or not 0 < radius_m <= MAX_RADIUS_M):
            raise ServiceError(400, "bad_request", f"参数 radius_m 须为大于 0、不超过 {MAX_RADIUS_M:,.0f} 的米数")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ServiceError(400, "bad_request", f"参数 limit 须为 1 到 {MAX_LIMIT} 之间的整数")
        index = self.index()
        # a status changes with every allocation, so the index does not hold it: ask the index for more until
        # `limit` of the answer's rows have it, or the index has no more to give
        want = limit
        while True:
            hits = index.nearest(lon, lat, limit=want, kind=type, specialty=specialty, owner=self._owner(principal),
                                 radius_m=radius_m)
            items = self._items([h.id for h in hits])
            out = []
            for h in hits:
                item = items.get(h.id)
                if item is not None and (status is None or item["status"] == status):  # None: removed since built
                    item["distance_m"] = round(h.distance_m, 1)
                    out.append(item)
            if len(out) >= limit or len(hits) < want or want >= len(index):
                break
            want = min(want * 4, len(index))
        out = out[:limit]
        return {"items": out, "total": len(out), "near": {"lon": lon, "lat": lat}, "radius_m": radius_m,
                "distance": "WGS 84 ellipsoid (pyproj.Geod), metres"}

    def list(self, principal: Principal | None, type_: str | None = None, specialty: str | None = None,
             status: str | None = None, page: int = 1, per_page: int = 50) -> dict:
        """`{items, total, page, per_page}`: a page of resources by id."""
        self._check_reader(principal)
        self._check_filters(type_, specialty)
        if status is not None and status not in STATUSES:
            raise ServiceError(400, "bad_request", f"未知的资源状态 {str(status)[:40]}（可用：{'、'.join(STATUSES)}）")
        if not (isinstance(page, int) and page >= 1 and isinstance(per_page, int) and 1 <= per_page <= MAX_PER_PAGE):
            raise ServiceError(400, "bad_request", f"page 须为正整数，per_page 须在 1 到 {MAX_PER_PAGE} 之间")
        with self.db.session() as s:
            rows, total = repo.list_resources(s, type_=type_, specialty=specialty, status=status,
                                              unit=self._owner(principal), page=page, per_page=per_page)
            items = self._shape(s, rows)
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    def get(self, principal: Principal | None, resource_id: str) -> dict:
        """One resource with its stock and the cases it is allocated to now (404 when unknown or not the
        reader's to see)."""
        self._check_reader(principal)
        if not isinstance(resource_id, str) or len(resource_id) > 64:
            raise ServiceError(404, "not_found", f"资源 {str(resource_id)[:64]} 不存在")
        with self.db.session() as s:
            row = repo.resource_rows(s, [resource_id]).get(resource_id)
            owner = self._owner(principal)
            if row is None or (owner is not None and row.unit_code != owner):
                raise ServiceError(404, "not_found", f"资源 {resource_id} 不存在")
            item = self._shape(s, [row])[0]
        item["chain"] = [{"code": a.code, "name": a.name, "level": a.level}
                         for a in (self.areas.chain(row.grid_code) if row.grid_code else ())]
        return item

    def summary(self) -> dict:
        """Counts for the map's legend: per type, how many resources in each status (and a shelter's places,
        capacity and taken), and the stock of every warehouse item summed."""
        types: dict[str, dict] = {t: {"type": t, "name": n, "total": 0, "by_status": {st: 0 for st in STATUSES},
                                      "capacity": 0, "occupancy": 0} for t, n in TYPES.items()}
        with self.db.session() as s:
            for type_, status, n, capacity, occupancy in repo.counts_by_type_status(s):
                t = types.setdefault(type_, {"type": type_, "name": type_, "total": 0, "by_status": {},
                                             "capacity": 0, "occupancy": 0})
                t["total"] += n
                t["by_status"][status] = t["by_status"].get(status, 0) + n
                t["capacity"] += int(capacity or 0)
                t["occupancy"] += int(occupancy or 0)
            stock = [{"item": item, "unit": unit, "quantity": float(q or 0)} for item, unit, q in repo.stock_totals(s)]
        return {"types": list(types.values()), "total": sum(t["total"] for t in types.values()), "stock": stock}

    def _items(self, ids: list[str]) -> dict[str, dict]:
        with self.db.session() as s:
            rows = repo.resource_rows(s, ids)
            return {d["id"]: d for d in self._shape(s, [rows[i] for i in ids if i in rows])}

    @staticmethod
    def _shape(s: Session, rows: list[Resource]) -> list[dict]:
        """The API's resource (CONTRACT.md): id, type, name, lon, lat, unit, status, capacity, stock, and more."""
        names = repo.unit_names(s, (r.unit_code for r in rows))
        stock = repo.stock_of(s, [r.id for r in rows if r.type == "warehouse"])
        return [{"id": r.id, "type": r.type, "type_name": TYPES.get(r.type, r.type), "name": r.name,
                 "lon": r.lon, "lat": r.lat, "unit": r.unit_code, "unit_name": names.get(r.unit_code, r.unit_code),
                 "status": r.status, "status_label": STATUSES.get(r.status, r.status), "capacity": r.capacity,
                 "occupancy": r.occupancy, "specialty": r.specialty, "grid": r.grid_code, "district": r.district_code,
                 "stock": [{"item": x.item, "quantity": x.quantity, "unit": x.unit} for x in stock.get(r.id, [])]}
                for r in rows]

    # ---- allocation ---------------------------------------------------------------------------------
    def _check_allocator(self, principal: Principal) -> None:
        if principal is None or principal.role not in ALLOCATORS:
            raise ServiceError(403, "forbidden", "只有值班员、领导和管理员可以调配应急资源")

    @staticmethod
    def _case_id(case_id) -> int:
        if isinstance(case_id, bool) or not isinstance(case_id, int) or not is_int64(case_id):
            raise ServiceError(404, "not_found", f"案件 #{case_id} 不存在")
        return case_id

    @staticmethod
    def _quantity(quantity, *, integer: bool) -> float | int:
        if quantity is None:
            raise ServiceError(400, "bad_request", "缺少 quantity（数量）")
        if isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or not math.isfinite(quantity):
            raise ServiceError(400, "bad_request", f"quantity 须为数字，不能是 {str(quantity)[:40]!r}")
        if quantity <= 0 or quantity > MAX_QUANTITY:
            raise ServiceError(400, "bad_request", f"quantity 须大于 0 且不超过 {MAX_QUANTITY:,.0f}")
        if integer:
            if float(quantity) != int(quantity):
                raise ServiceError(400, "bad_request", "避难场所按人数安置，quantity 须为整数")
            return int(quantity)
        return float(quantity)

    def allocate(self, case_id: int, principal: Principal, resource_id: str, item: str | None = None,
                 quantity: float | None = None) -> dict:
        """Allocate a resource to an open emergency case the principal commands: a team or equipment whole
        (available → deployed), `quantity` places of a shelter, `quantity` of a warehouse's `item`. 409 when it is
        not available or not enough is left (two officers after the last units: one gets them, the other this).
        Writes the allocation and the case's history row (allocate_resource) in one transaction; returns the
        allocation."""
        self._check_allocator(principal)
        case_id = self._case_id(case_id)
        if not isinstance(resource_id, str) or not resource_id.strip() or len(resource_id) > 64:
            raise ServiceError(400, "bad_request", "resource 须为资源编号")
        if item is not None and (not isinstance(item, str) or not item.strip() or len(item) > 100
                                 or bad_character(item) is not None):
            raise ServiceError(400, "bad_request", "item 须为至多 100 个字符的物资名称")

        def work(s: Session, case: Case):
            if case.kind != EMERGENCY_KIND:
                raise ServiceError(422, "not_emergency", f"案件 #{case.id} 不是应急事件，不能调配应急资源")
            if case.state in NOT_OPEN:
                raise ServiceError(409, "case_closed", f"案件 #{case.id} 已办结（{case.state}），不能再调配资源")
            res = repo.get_resources(s, [resource_id]).get(resource_id)
            if res is None:
                raise ServiceError(404, "not_found", f"资源 {resource_id} 不存在")
            values = {"case_id": case.id, "resource_id": res.id, "allocated_at": self.cases.clock(),
                      "allocated_by": principal.ident, "item": None, "quantity": None}
            if res.type in WHOLE:
                if item is not None or quantity is not None:
                    raise ServiceError(400, "bad_request", f"{TYPES[res.type]}整建制调配，无需 item 和 quantity")
                if not repo.take_whole(s, res.id):
                    status = STATUSES.get(res.status, res.status)
                    raise ServiceError(409, "not_available", f"{res.name} 当前{status}，不能调配")
                note = f"调配{TYPES[res.type]} {res.name}（整建制）"
            elif res.type == "shelter":
                if item is not None:
                    raise ServiceError(400, "bad_request", "避难场所按人数安置，无需 item")
                places = self._quantity(quantity, integer=True)
                if not repo.take_places(s, res.id, places):
                    fresh = repo.get_resources(s, [res.id])[res.id]
                    s.refresh(fresh)
                    if fresh.status == "maintenance":
                        raise ServiceError(409, "not_available", f"{res.name} 当前维护中，不能安置")
                    left = max((fresh.capacity or 0) - (fresh.occupancy or 0), 0)
                    raise ServiceError(409, "insufficient", f"{res.name} 余位不足，剩余 {left} 人")
                values["quantity"] = places
                note = f"安置 {places} 人至避难场所 {res.name}"
            elif res.type == "warehouse":
                if item is None:
                    raise ServiceError(400, "bad_request", f"从仓库调配须指明物资 item（如 沙袋）")
                amount = self._quantity(quantity, integer=False)
                item_ = item.strip()
                row = repo.stock_left(s, res.id, item_)
                if row is None:
                    raise ServiceError(404, "not_found", f"{res.name} 没有物资“{item_}”")
                if res.status == "maintenance":
                    raise ServiceError(409, "not_available", f"{res.name} 当前维护中，不能调配")
                if not repo.take_stock(s, res.id, item_, amount):
                    left = repo.stock_left(s, res.id, item_)
                    raise ServiceError(409, "insufficient",
                                       f"库存不足，剩余 {_fmt(left.quantity if left else 0)}{row.unit}（{res.name} {item_}）")
                values.update(item=item_, quantity=amount)
                note = f"调配物资 {res.name}：{item_} {_fmt(amount)}{row.unit}"
            else:
                raise ServiceError(422, "unprocessable", f"资源 {res.id} 的类型 {res.type} 不能调配")
            row = repo.add_allocation(s, **values)
            return note, self._allocation_dict(row, res, self._stock_unit(s, res.id, values["item"]))

        return self.cases.record_act(case_id, principal, "allocate_resource", work)

    def release(self, case_id: int, allocation_id: int, principal: Principal) -> dict:
        """Give an allocation back: the team or equipment available again, the places or the stock returned.
        409 when it was released already; 404 when the case has no such allocation."""
        self._check_allocator(principal)
        case_id = self._case_id(case_id)
        if isinstance(allocation_id, bool) or not isinstance(allocation_id, int) or not is_int64(allocation_id):
            raise ServiceError(404, "not_found", f"调配记录 {allocation_id} 不存在")

        def work(s: Session, case: Case):
            from data.models import ResourceAllocation

            alloc = s.get(ResourceAllocation, allocation_id)
            if alloc is None or alloc.case_id != case.id:
                raise ServiceError(404, "not_found", f"案件 #{case.id} 没有调配记录 {allocation_id}")
            res = repo.get_resources(s, [alloc.resource_id])[alloc.resource_id]
            now = self.cases.clock()
            if not repo.close_allocation(s, alloc.id, case.id, now, principal.ident):
                s.refresh(alloc)
                raise ServiceError(409, "already_released",
                                   f"调配记录 {allocation_id}（{res.name}）已于 {_when(alloc.released_at)} 归还")
            if res.type in WHOLE:
                repo.give_back_whole(s, res.id)
                note = f"归还{TYPES.get(res.type, res.type)} {res.name}"
            elif res.type == "shelter":
                repo.give_back_places(s, res.id, int(alloc.quantity or 0))
                note = f"避难场所 {res.name} 撤离 {_fmt(alloc.quantity)} 人"
            else:
                repo.give_back_stock(s, res.id, alloc.item, float(alloc.quantity or 0))
                unit = self._stock_unit(s, res.id, alloc.item)
                note = f"归还物资 {res.name}：{alloc.item} {_fmt(alloc.quantity)}{unit or ''}"
            s.refresh(alloc)
            return note, self._allocation_dict(alloc, res, self._stock_unit(s, res.id, alloc.item))

        return self.cases.record_act(case_id, principal, "release_resource", work)

    def allocations(self, case_id: int, principal: Principal | None = None) -> dict:
        """`{items}`: the case's allocations, open and released, oldest first, with their resources' names (the
        case as `principal` may see it; None: the system)."""
        case_id = self._case_id(case_id)
        with self.db.session() as s:
            self.cases.visible_case(s, case_id, principal)
            rows = repo.allocations_of(s, case_id)
            units = {}
            for a, r in rows:
                if a.item is not None and (r.id, a.item) not in units:
                    units[(r.id, a.item)] = self._stock_unit(s, r.id, a.item)
            items = [self._allocation_dict(a, r, units.get((r.id, a.item))) for a, r in rows]
        return {"items": items, "total": len(items), "open": sum(1 for i in items if i["released_at"] is None)}

    @staticmethod
    def _stock_unit(s: Session, resource_id: str, item: str | None) -> str | None:
        if item is None:
            return None
        row = repo.stock_left(s, resource_id, item)
        return row.unit if row is not None else None

    @staticmethod
    def _allocation_dict(a, r: Resource, unit: str | None) -> dict:
        return {"id": a.id, "case_id": a.case_id, "resource": {"id": r.id, "type": r.type, "name": r.name,
                                                                "lon": r.lon, "lat": r.lat},
                "item": a.item, "quantity": a.quantity,
                "unit": unit if r.type == "warehouse" else ("人" if r.type == "shelter" else None),
                "allocated_at": a.allocated_at, "allocated_by": a.allocated_by,
                "released_at": a.released_at, "released_by": a.released_by}


def _when(at: datetime | None) -> str:
    from dispatch.city_time import local_iso

    return local_iso(at) if at is not None else "此前"
