"""Small hand-made hierarchies for tests: a rectangular city split evenly at every level."""
from __future__ import annotations

from shapely.geometry import box

from geo.model import AreaRecord


def rect_city(origin=(119.9, 31.7), size=0.08, splits=(2, 2, 2, 3)) -> list[AreaRecord]:
    """City 320400 → districts → streets → communities → grids, each level cut into vertical
    strips of its parent, with codes of the GB/T 2260 style."""
    x0, y0 = origin
    city = AreaRecord("320400", "测试市", 1, None, box(x0, y0, x0 + size, y0 + size), population=1000)
    out = [city]
    parents = [city]
    for depth, n in enumerate(splits, start=2):
        children = []
        for parent in parents:
            minx, miny, maxx, maxy = parent.geometry.bounds
            vertical = depth % 2 == 0  # alternate the cut direction so cells stay compact
            for i in range(n):
                if vertical:
                    w = (maxx - minx) / n
                    geom = box(minx + i * w, miny, minx + (i + 1) * w, maxy)
                else:
                    h = (maxy - miny) / n
                    geom = box(minx, miny + i * h, maxx, miny + (i + 1) * h)
                if depth == 2:
                    code = f"3204{i + 2:02d}"
                else:
                    code = f"{parent.code}{i + 1:03d}"
                name = f"{parent.name}-{i + 1}"
                children.append(AreaRecord(code, name, depth, parent.code, geom,
                                           population=(parent.population or 0) // n))
        out += children
        parents = children
    return out


class Clock:
    """A clock tests move by hand: `clock.now += timedelta(...)`."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def small_world(db, now):
    """rect_city with the shipped catalog and its default units in `db`, and a CaseService on a
    hand-moved clock starting at `now`. Returns (service, clock)."""
    from data.area_directory import AreaDirectory
    from data.areas import replace_hierarchy
    from cases.service import CaseService
    from data.reference import ensure_catalog, ensure_units

    with db.session() as s:
        replace_hierarchy(s, rect_city())
        ensure_catalog(s)
        ensure_units(s)
    clock = Clock(now)
    return CaseService(db, AreaDirectory(db), clock=clock), clock


def city_today():
    """Today in the city (Asia/Shanghai): KPI periods are the city's days, not the test machine's
    (between 16:00 and 24:00 UTC the two differ)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def add_case_row(db, at, **kw) -> int:
    """One case row written directly, without the lifecycle or an outbox row (as a bulk load or a hand
    edit would): for timestamps the lifecycle would take days to reach. Defaults: a closed 020102
    case in rect_city's first grid, reported and updated `at`."""
    from data.models import Case

    grid = kw.pop("grid", [r.code for r in rect_city() if r.level == 5][0])
    values = dict(state="closed", category_code="020102", kind="event", source="patrol", lon=119.91, lat=31.71,
                  grid_code=grid, district_code=grid[:6], reported_at=at, updated_at=at)
    values.update(kw)
    with db.session() as s:
        case = Case(**values)
        s.add(case)
        s.flush()
        return case.id


def set_aside_stamps(rng, accepted, closed, now, state: str) -> dict:
    """作废 and 挂账 for a random accepted case, as the lifecycle leaves them: a voided case is never closed
    (perhaps voided while on hold); a case on hold now is in state suspended (perhaps lifted once and put on
    again: resumed_at before suspended_at); a lifted one was resumed before its closing. Else {}."""
    end = closed or now
    if end <= accepted:
        return {}
    within = lambda a, b: a + (b - a) * rng.random()  # noqa: E731
    r = rng.random()
    if closed is None and r < 0.08:
        voided = within(accepted, now)
        out = {"state": "voided", "voided_at": voided}
        if rng.random() < 0.3:
            out["suspended_at"] = within(accepted, voided)
        return out
    if r < 0.2:
        held = within(accepted, end)
        if closed is None and rng.random() < 0.5:
            out = {"state": "suspended", "suspended_at": held}
            if rng.random() < 0.4:
                out["resumed_at"] = within(accepted, held)
            return out
        return {"state": state, "suspended_at": held, "resumed_at": within(held, end)}
    return {}


def kpi_case(c):
    """figures.definitions.KpiCase of a case row (the facts the KPI figures read)."""
    from figures.definitions import KpiCase

    return KpiCase(id=c.id, state=c.state, reported_at=c.reported_at, accepted_at=c.accepted_at,
                   rejected_at=c.rejected_at, closed_at=c.closed_at, deadline_at=c.deadline_at,
                   rework_count=c.rework_count, extension_count=c.extension_count, unit_code=c.unit_code,
                   district_code=c.district_code, category_code=c.category_code, merged=c.state == "merged",
                   voided_at=c.voided_at, suspended_at=c.suspended_at, resumed_at=c.resumed_at)


def api_error(resp, status: int) -> str:
    """The message of an API error answer, after checking its status and the contract's error shape."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert {"error", "message"} <= set(body)
    return body["message"]
