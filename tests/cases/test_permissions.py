"""Who may do what (issue 6): every role × every action, through the service layer (SQLite and the
real PostgreSQL) and through the HTTP API; reads, intake, phone masking and live rooms per role.

The expected answers come from the small tables below, written from DESIGN.md ("The people who use
it") and CONTRACT.md — never read from dispatch.lifecycle.RULES — so that a wrong rule fails here.
Each cell puts a fresh case in a state from which the action is legal, so only role and scope decide:
allowed → the transition happens (state, version + 1, one history row, one outbox event); refused →
403 with a Chinese message and nothing changed (the case row, its history, its outbox events).
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from cases.service import ServiceError
from data.models import Area, Case, CaseEvent, CaseHistory, Unit
from data.schema import init_db
from data.tokens import Principal
from dispatch.lifecycle import ACTIONS
from tests.conftest import make_database, make_settings
from tests.factories import city_today, small_world

CJK = re.compile(r"[\u4e00-\u9fff]")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
GARBAGE = "020102"  # exposed garbage: routed to the district's city-management bureau (level 2)
PHONE, MASKED = "13812341234", "138****1234"

# ---- the expected answers ---------------------------------------------------------------------------
# What each role may do to a case in its scope (DESIGN.md). The duty officer takes a case through the
# command center's steps (accept/reject, dispatch, verify or send back for rework, close, escalate,
# approve an extension, suspend, supervise); the unit handler signs, gives feedback, returns with a
# reason and asks for an extension; a grid member checks the result on the spot (verify / rework);
# a leader supervises and escalates; a wall display only shows; an admin may stand in for the
# command center and for a unit's sign/feedback, but the unit's own requests (return, extend) are
# the unit's.
_CENTER = {"accept", "reject", "verify_request", "dispatch", "reassign", "refuse_return", "verify", "rework", "close",
           "approve_extension", "deny_extension", "approve_suspension", "deny_suspension", "suspend", "resume",
           "add_assist", "urge", "supervise", "escalate", "void", "callback", "reopen"}
MAY = {
    # the admin stands in for the center, a grid member's check and a unit's sign/feedback — not the unit's
    # own requests (return, extend, request_suspension)
    "admin": _CENTER | {"report_check", "sign", "resolve"},
    "duty_officer": _CENTER,
    "leader": {"escalate", "supervise", "urge"},
    "unit_handler": {"sign", "resolve", "return", "extend", "request_suspension"},
    "grid_member": {"report_check", "verify", "rework"},
    "wall": set(),
}
# The principals of the matrix, relative to the case: (role, which area, which unit).
WHO = {
    "admin": ("admin", "city", None),
    "officer_city": ("duty_officer", "city", None),
    "officer_street": ("duty_officer", "street", None),              # the case's street
    "officer_other_street": ("duty_officer", "other_street", None),  # a street of the same district
    "leader": ("leader", "district", None),                          # the case's district
    "leader_other_district": ("leader", "other_district", None),
    "handler": ("unit_handler", "district", "unit"),                 # the unit the case is routed to
    "handler_other_unit": ("unit_handler", "district", "other_unit"),  # same district, another unit
    "grid": ("grid_member", "grid", None),                           # the case's grid
    "grid_elsewhere": ("grid_member", "other_grid", None),           # the next grid, same community
    "wall": ("wall", "city", None),
}
OUT_OF_AREA = {"officer_other_street", "leader_other_district", "grid_elsewhere"}
OUT_OF_SCOPE = OUT_OF_AREA | {"handler_other_unit"}  # in the area, not of the case's unit
# Who sees the reporter's full number (they call back: DESIGN.md gives the callback to the command
# center); everyone else gets 138****1234.
FULL_PHONE = {"admin", "officer_city", "officer_street", "officer_other_street"}
# Who may report (POST /events) where they stand: everyone but the wall (read-only) and the leader.
MAY_REPORT = {"admin", "duty_officer", "unit_handler", "grid_member"}

# The state each action leaves the case in, and what must be done first to make it legal.
TO = {"accept": "accepted", "reject": "rejected", "dispatch": "dispatched", "sign": "signed",
      "resolve": "resolved", "verify": "verified", "rework": "rework", "return": "returned", "close": "closed",
      "escalate": "dispatched", "extend": "signed", "approve_extension": "signed", "suspend": "suspended",
      "supervise": "accepted", "verify_request": "verifying", "report_check": "reported",
      "reassign": "dispatched", "refuse_return": "dispatched", "deny_extension": "signed",
      "request_suspension": "signed", "approve_suspension": "suspended", "deny_suspension": "signed",
      "resume": "dispatched", "add_assist": "dispatched", "urge": "dispatched", "void": "voided",
      "callback": "closed", "reopen": "dispatched"}
_TO_SIGNED = ("accept", "dispatch", "sign")
_TO_CLOSED = _TO_SIGNED + ("resolve", "verify", "close")
_RETURNED = ("accept", "dispatch", "return")
PREP = {"accept": (), "reject": (), "supervise": ("accept",), "dispatch": ("accept",), "suspend": ("accept",),
        "sign": ("accept", "dispatch"), "return": ("accept", "dispatch"), "escalate": ("accept", "dispatch"),
        "resolve": _TO_SIGNED, "extend": _TO_SIGNED, "approve_extension": _TO_SIGNED + ("extend",),
        "verify": _TO_SIGNED + ("resolve",), "rework": _TO_SIGNED + ("resolve",),
        "close": _TO_SIGNED + ("resolve", "verify"), "verify_request": (), "report_check": ("verify_request",),
        "reassign": _RETURNED, "refuse_return": _RETURNED, "deny_extension": _TO_SIGNED + ("extend",),
        "request_suspension": _TO_SIGNED, "approve_suspension": _TO_SIGNED + ("request_suspension",),
        "deny_suspension": _TO_SIGNED + ("request_suspension",), "resume": ("accept", "dispatch", "suspend"),
        "add_assist": ("accept", "dispatch"), "urge": ("accept", "dispatch"), "void": (),
        "callback": _TO_CLOSED, "reopen": _TO_CLOSED + ("callback",)}
PREP_BY = {"accept": "officer_city", "dispatch": "officer_city", "verify": "officer_city",
           "sign": "handler", "resolve": "handler", "extend": "handler", "return": "handler",
           "request_suspension": "handler", "verify_request": "officer_city", "suspend": "officer_city",
           "close": "officer_city", "callback": "officer_city"}
NOTE = "权限矩阵测试"


def params(action: str) -> dict:
    extra = {"extend": {"hours": 8}, "reassign": {"unit": SMALL.other_unit}, "add_assist": {"unit": SMALL.other_unit},
             "report_check": {"result": "confirmed"}, "callback": {"satisfaction": "unsatisfied"}}
    return {"note": NOTE, **extra.get(action, {})}


def may(who: str, action: str) -> bool:
    return who not in OUT_OF_SCOPE and action in MAY[WHO[who][0]]


def refusal_code(who: str, action: str) -> str:
    # Outside the area the service refuses before anything else; inside it the role is asked next;
    # a handler whose role fits but whose unit does not is told so.
    if who in OUT_OF_AREA:
        return "forbidden"
    if action not in MAY[WHO[who][0]]:
        return "forbidden_role"
    return "not_your_unit"


def effect_holds(action: str, case: dict) -> bool:
    """The field an action that keeps the state must have changed."""
    return {"escalate": lambda: case["handling_level"] == 1 and case["escalation_count"] == 1,
            "supervise": lambda: case["supervised"] is True,
            "extend": lambda: case["extension_pending_hours"] == 8,
            "approve_extension": lambda: case["extension_count"] == 1 and case["extension_pending_hours"] is None,
            "deny_extension": lambda: case["extension_count"] == 0 and case["extension_pending_hours"] is None,
            "request_suspension": lambda: (case["suspension"] or {}).get("state") == "requested",
            "deny_suspension": lambda: case["suspension"] is None,
            "reassign": lambda: case["unit"]["code"] == SMALL.other_unit and case["reassign_count"] == 1,
            "refuse_return": lambda: case["unit"]["code"] == SMALL.unit,
            "report_check": lambda: case["check_result"] == "confirmed",
            "add_assist": lambda: [a["unit"]["code"] for a in case["assists"]] == [SMALL.other_unit],
            "urge": lambda: case["urge_count"] == 1 and case["supervision"][-1]["kind"] == "urge",
            "callback": lambda: case["callback"]["result"] == "unsatisfied",
            "reopen": lambda: case["reopen_count"] == 1 and case["closed_at"] is None,
            "void": lambda: case["voided_at"] is not None,
            "rework": lambda: case["rework_count"] == 1}.get(action, lambda: True)()


CELLS = [pytest.param(who, action, id=f"{who}-{action}") for who in WHO for action in ACTIONS]


def test_the_tables_cover_every_action_and_role():
    assert set(TO) == set(PREP) == set(ACTIONS)
    assert set(MAY) == {role for role, _, _ in WHO.values()}
    allowed = [(w, a) for w in WHO for a in ACTIONS if may(w, a)]
    assert len(CELLS) == 11 * 28 and len(allowed) == 80


@dataclass(frozen=True)
class Place:
    """The areas and units a case's principals are scoped to."""

    city: str
    district: str
    street: str
    grid: str
    unit: str
    other_district: str
    other_street: str
    other_grid: str
    other_unit: str

    def principal(self, who: str) -> Principal:
        role, area, unit = WHO[who]
        return Principal("user", f"user:{who}", role, getattr(self, area), getattr(self, unit) if unit else None)


def _cjk(message: str) -> bool:
    return bool(message) and CJK.search(message) is not None


# =====================================================================================================
# the service layer, on SQLite and PostgreSQL
# =====================================================================================================
SMALL = Place(city="320400", district="320402", street="320402001", grid="320402001001001",
              unit="U-320402-city_management", other_district="320403", other_street="320402002",
              other_grid="320402001001002", other_unit="U-320402-water_affairs")
# grid 320402001001001 of tests.factories.rect_city is lon 119.90–119.92, lat 31.70–31.7133: a lattice
# of points ~80 m apart inside it, so that no report is merged into another (dedupe: 50 m, 24 h)
LATTICE = [(round(119.9004 + 0.0008 * i, 4), round(31.7004 + 0.0008 * j, 4)) for j in range(16) for i in range(24)]
OTHER_STREET_POINT, OTHER_DISTRICT_POINT = (119.905, 31.75), (119.95, 31.705)


class World:
    def __init__(self, service, clock):
        self.service, self.clock = service, clock
        self.points = iter(LATTICE)
        self.p = {who: SMALL.principal(who) for who in WHO}

    def report(self, who: str = "officer_city", point=None, phone: str | None = PHONE) -> dict:
        lon, lat = point or next(self.points)
        body = {"category": GARBAGE, "lon": lon, "lat": lat, "description": "路边垃圾", "source": "hotline",
                "reporter_phone": phone}
        case, created = self.service.intake(body, self.p[who])
        assert created and case["merged_into"] is None, case
        return case

    def case_ready_for(self, action: str) -> dict:
        case = self.report()
        assert case["unit"]["code"] == SMALL.unit and case["chain"][0]["code"] == SMALL.grid
        for step in PREP[action]:
            case = self.service.act(case["id"], self.p[PREP_BY[step]], step, case["version"], **params(step))
        return case

    def snapshot(self, case_id: int) -> tuple:
        db = self.service.db
        with db.session() as s:
            row = dict(s.execute(select(Case.__table__).where(Case.__table__.c.id == case_id)).mappings().one())
            history = s.scalar(select(func.count()).select_from(CaseHistory).where(CaseHistory.case_id == case_id))
            events = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id))
        return row, history, events


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    """One small city per database kind for the whole module; every test makes its own cases."""
    db, schema = make_database(request.param, tmp_path_factory.mktemp("perm"))
    init_db(db)
    service, clock = small_world(db, T0)
    yield World(service, clock)
    db.dispose()
    if schema:
        schema.drop()


@pytest.mark.parametrize("who,action", CELLS)
def test_service_matrix(world, who, action):
    service = world.service
    case = world.case_ready_for(action)
    before_row, before_history, before_events = world.snapshot(case["id"])
    principal = world.p[who]
    if may(who, action):
        out = service.act(case["id"], principal, action, case["version"], **params(action))
        assert out["state"] == TO[action] and out["version"] == case["version"] + 1
        assert effect_holds(action, out), out
        row, history, events = world.snapshot(case["id"])
        assert (history, events) == (before_history + 1, before_events + 1)
        assert out["history"][-1]["action"] == action and out["history"][-1]["actor"] == principal.ident
    else:
        with pytest.raises(ServiceError) as exc:
            service.act(case["id"], principal, action, case["version"], **params(action))
        assert exc.value.status == 403, (exc.value.code, exc.value.message)
        assert exc.value.code == refusal_code(who, action), (exc.value.code, exc.value.message)
        assert _cjk(exc.value.message)
        assert world.snapshot(case["id"]) == (before_row, before_history, before_events)


def test_who_may_not_act_is_told_so_before_a_stale_version_or_a_bad_unit(world):
    """A role that may never do the action, or a principal of another area, gets 403 whatever the
    version: a wall on an old version is not shown a conflict (nor the case in it)."""
    case = world.case_ready_for("sign")
    snap = world.snapshot(case["id"])
    for who, action, extra in [("wall", "accept", {}), ("leader", "dispatch", {"unit": "U-nowhere"}),
                               ("grid", "close", {}), ("officer_other_street", "suspend", {"note": NOTE}),
                               ("handler_other_unit", "suspend", {"note": NOTE})]:
        with pytest.raises(ServiceError) as exc:
            world.service.act(case["id"], world.p[who], action, case["version"] - 1, **extra)
        assert exc.value.status == 403 and "case" not in exc.value.details, (who, exc.value.code)
    # A handler whose role fits but whose unit does not (the case may just have been taken from it):
    # on an old version a conflict, without the case or its state; on the current one, 403.
    with pytest.raises(ServiceError) as exc:
        world.service.act(case["id"], world.p["handler_other_unit"], "sign", case["version"] - 1)
    assert exc.value.status == 409 and exc.value.details == {} and "已派遣" not in exc.value.message
    assert world.snapshot(case["id"]) == snap


def test_a_handler_whose_case_was_escalated_away_gets_a_conflict_then_no_access(world):
    case = world.case_ready_for("escalate")
    handler = world.p["handler"]
    escalated = world.service.act(case["id"], world.p["leader"], "escalate", case["version"], note="区级处置不了")
    assert escalated["unit"]["code"] != SMALL.unit
    with pytest.raises(ServiceError) as exc:
        world.service.act(case["id"], handler, "sign", case["version"])
    assert exc.value.status == 409 and "case" not in exc.value.details
    with pytest.raises(ServiceError) as exc:
        world.service.act(case["id"], handler, "sign", escalated["version"])
    assert exc.value.status == 403 and exc.value.code == "not_your_unit" and _cjk(exc.value.message)
    with pytest.raises(ServiceError) as exc:
        world.service.get(case["id"], handler)
    assert exc.value.status == 403


def test_dispatch_to_a_unit_outside_the_case_area_is_refused(world):
    """Its handlers could neither see nor sign the case; the live room of that unit would get it."""
    case = world.case_ready_for("dispatch")
    snap = world.snapshot(case["id"])
    with pytest.raises(ServiceError) as exc:
        world.service.act(case["id"], world.p["officer_city"], "dispatch", case["version"],
                          unit="U-320403-city_management")
    assert exc.value.status == 422 and exc.value.code == "unit_out_of_area" and _cjk(exc.value.message)
    assert world.snapshot(case["id"]) == snap
    out = world.service.act(case["id"], world.p["officer_city"], "dispatch", case["version"],
                            unit="U-320400-city_management")  # a city bureau serves every district
    assert out["unit"]["code"] == "U-320400-city_management"


@pytest.mark.parametrize("who", list(WHO))
def test_service_intake_per_role(world, who):
    service, principal = world.service, world.p[who]
    point = next(world.points)
    in_area = who not in OUT_OF_AREA
    with service.db.session() as s:
        before = s.scalar(select(func.count()).select_from(Case))
    body = {"category": GARBAGE, "lon": point[0], "lat": point[1], "source": "patrol", "reporter_phone": PHONE}
    if WHO[who][0] in MAY_REPORT and in_area:
        case, created = service.intake(body, principal)
        assert created and case["state"] == "reported"
        assert case["reporter_phone"] == (PHONE if who in FULL_PHONE else MASKED)
    else:
        with pytest.raises(ServiceError) as exc:
            service.intake(body, principal)
        assert exc.value.status == 403 and _cjk(exc.value.message)
        with pytest.raises(ServiceError) as exc:  # the role is refused before the body is looked at
            service.intake({"category": None}, principal)
        assert exc.value.status == (403 if WHO[who][0] not in MAY_REPORT else 400)
        with service.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Case)) == before


# ---- reads ------------------------------------------------------------------------------------------
# Three cases: A in the grid of SMALL, B in another street of the district, C in another district.
SEES = {
    "admin": "ABC", "officer_city": "ABC", "officer_street": "A", "officer_other_street": "B",
    "leader": "AB", "leader_other_district": "C", "handler": "AB", "handler_other_unit": "",
    "grid": "A", "grid_elsewhere": "", "wall": "ABC",
}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def read_world(request, tmp_path_factory):
    db, schema = make_database(request.param, tmp_path_factory.mktemp("perm_read"))
    init_db(db)
    w = World(*small_world(db, T0))
    cases = {"A": w.report(), "B": w.report(point=OTHER_STREET_POINT), "C": w.report(point=OTHER_DISTRICT_POINT)}
    assert cases["B"]["unit"]["code"] == SMALL.unit and cases["C"]["unit"]["code"] != SMALL.unit
    yield w, {k: c["id"] for k, c in cases.items()}
    db.dispose()
    if schema:
        schema.drop()


@pytest.mark.parametrize("who", list(WHO))
def test_service_reads_are_scoped(read_world, who):
    w, ids = read_world
    service, principal = w.service, w.p[who]
    for name, case_id in ids.items():
        if name in SEES[who]:
            case = service.get(case_id, principal)
            assert case["reporter_phone"] == (PHONE if who in FULL_PHONE else MASKED)
        else:
            with pytest.raises(ServiceError) as exc:
                service.get(case_id, principal)
            assert exc.value.status == 403 and _cjk(exc.value.message)
    listed = service.list(principal, count=True)
    assert {i["id"] for i in listed["items"]} == {ids[n] for n in SEES[who]} and listed["total"] == len(SEES[who])
    assert {i["reporter_phone"] for i in listed["items"]} <= {PHONE if who in FULL_PHONE else MASKED}
    day = date(2026, 11, 23)
    assert service.kpis(day, day, principal=principal)["received"] == len(SEES[who])


def test_a_handler_sees_the_cases_it_assists_in_too(read_world):
    """Joint dispatch: an assisting unit's handler reads the case (the live rooms send it there)."""
    w, _ = read_world
    fire = w.service.intake({"category": "040101", "lon": 119.9105, "lat": 31.7105, "source": "hotline",
                             "severity": 4}, w.p["officer_city"])[0]
    assist = fire["units"][1]["code"]
    assert assist != fire["unit"]["code"]
    handler = Principal("user", "user:assist", "unit_handler", "320400", assist)
    assert w.service.get(fire["id"], handler)["id"] == fire["id"]
    assert fire["id"] in {i["id"] for i in w.service.list(handler)["items"]}
    w.service.act(fire["id"], w.p["officer_city"], "reject", fire["version"], note="测试后清理")


# =====================================================================================================
# the HTTP API (the demo city, SQLite)
# =====================================================================================================
class Api:
    """A module-wide app over a copy of the demo database, tokens per (role, area, unit), places."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()
        self.db = app.extensions["ucc"].db
        self._tokens: dict = {}
        self._places: dict = {}
        with self.db.session() as s:
            grids = s.execute(select(Area.code, Area.geometry).where(
                Area.level == 5, Area.code.like("320402%") | Area.code.like("320404%")).order_by(Area.code)).all()
        from shapely import wkb

        # representative points of every 3rd grid of 天宁区 and 钟楼区 (a report merged into an earlier
        # one is skipped by report())
        self.points = iter([(p.x, p.y) for p in (wkb.loads(g).representative_point() for _, g in grids[::3])])

    def headers(self, role: str, area: str, unit: str | None = None) -> dict:
        key = (role, area, unit)
        if key not in self._tokens:
            from data.tokens import create_token

            with self.db.session() as s:
                self._tokens[key] = create_token(s, role, area, unit)
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    def as_(self, place: Place, who: str) -> dict:
        p = place.principal(who)
        return self.headers(p.role, p.area_code, p.unit_code)

    def place(self, chain: list[dict], unit: str) -> Place:
        codes = {a["level"]: a["code"] for a in chain}
        key = (codes[5], unit)
        if key not in self._places:
            with self.db.session() as s:
                other_street = s.scalar(select(Area.code).where(Area.level == 3, Area.parent_code == codes[2],
                                                                Area.code != codes[3]).order_by(Area.code))
                other_grid = s.scalar(select(Area.code).where(Area.level == 5, Area.parent_code == codes[4],
                                                              Area.code != codes[5]).order_by(Area.code))
                other_unit = s.scalar(select(Unit.code).where(Unit.area_code == codes[2], Unit.code != unit)
                                      .order_by(Unit.code))
            self._places[key] = Place(city=codes[1], district=codes[2], street=codes[3], grid=codes[5], unit=unit,
                                      other_district="320481" if codes[2] != "320481" else "320402",
                                      other_street=other_street, other_grid=other_grid,
                                      other_unit=other_unit)
        return self._places[key]

    def report(self, headers: dict | None = None, point=None) -> dict:
        while True:
            lon, lat = point or next(self.points)
            resp = self.client.post("/api/v1/events", headers=headers or self.headers("duty_officer", "320400"),
                                    json={"category": GARBAGE, "lon": lon, "lat": lat, "description": "路边垃圾",
                                          "source": "hotline", "reporter_phone": PHONE})
            assert resp.status_code == 201, resp.get_data(as_text=True)
            case = resp.get_json()
            if case["merged_into"] is None or point is not None:
                return case

    def act(self, headers: dict, case: dict, action: str, **extra):
        return self.client.post(f"/api/v1/events/{case['id']}/actions", headers=headers,
                                json={"action": action, "version": case["version"], **extra})

    def seen_by_admin(self, case_id: int) -> tuple:
        resp = self.client.get(f"/api/v1/events/{case_id}", headers=self.headers("admin", "320400"))
        case = {k: v for k, v in resp.get_json().items() if k not in ("sla", "overdue")}  # the clock moves
        with self.db.session() as s:
            events = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id))
        return case, events


@pytest.fixture(scope="module")
def api(demo_sqlite_url, tmp_path_factory):
    from app import create_app

    dst = tmp_path_factory.mktemp("perm_api") / "app.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), dst)
    app = create_app(make_settings(f"sqlite:///{dst}"))
    app.config["TESTING"] = True
    yield Api(app)
    app.extensions["ucc"].db.dispose()


def _error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert _cjk(body["message"]) and "Traceback" not in resp.get_data(as_text=True)
    if code:
        assert body["error"] == code, body
    return body


@pytest.mark.parametrize("who,action", CELLS)
def test_api_matrix(api, who, action):
    case = api.report()
    place = api.place(case["chain"], case["unit"]["code"])
    for step in PREP[action]:
        resp = api.act(api.as_(place, PREP_BY[step]), case, step, **params(step))
        assert resp.status_code == 200, (step, resp.get_data(as_text=True))
        case = resp.get_json()
    before, before_events = api.seen_by_admin(case["id"])
    resp = api.act(api.as_(place, who), case, action, **params(action))
    if may(who, action):
        assert resp.status_code == 200, resp.get_data(as_text=True)
        out = resp.get_json()
        assert out["state"] == TO[action] and out["version"] == case["version"] + 1 and effect_holds(action, out)
        assert len(out["history"]) == len(before["history"]) + 1 and out["history"][-1]["action"] == action
        assert api.seen_by_admin(case["id"])[1] == before_events + 1
    else:
        _error(resp, 403, refusal_code(who, action))
        assert api.seen_by_admin(case["id"]) == (before, before_events)


@pytest.mark.parametrize("who", list(WHO))
def test_api_intake_per_role(api, who):
    lon, lat = next(api.points)
    chain = api.client.get(f"/api/v1/areas/locate?lon={lon}&lat={lat}",
                           headers=api.headers("admin", "320400")).get_json()["chain"]
    route = api.report(point=(lon, lat))  # learn the unit there (then this point is taken: use the next)
    place = api.place(chain, route["unit"]["code"])
    in_area = who not in OUT_OF_AREA
    headers = api.as_(place, who)
    body = {"category": GARBAGE, "lon": lon, "lat": lat, "source": "patrol", "reporter_phone": PHONE,
            "idempotency_key": f"perm-intake-{who}"}
    if WHO[who][0] in MAY_REPORT and in_area:
        resp = api.client.post("/api/v1/events", headers=headers, json=body)
        assert resp.status_code == 201, resp.get_data(as_text=True)
        case = resp.get_json()
        assert case["merged_into"] == route["id"]  # the same point again: merged, and said so
        assert case["reporter_phone"] == (PHONE if who in FULL_PHONE else MASKED)
    else:
        with api.db.session() as s:
            before = s.scalar(select(func.count()).select_from(Case))
        _error(api.client.post("/api/v1/events", headers=headers, json=body), 403, "forbidden")
        with api.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Case)) == before


# ---- API reads: a fresh demo app per role, three cases -----------------------------------------------
@pytest.fixture
def read_api(demo_app):
    a = Api(demo_app)
    case_a = a.report(point=(119.975, 31.79))                  # 天宁区
    place = a.place(case_a["chain"], case_a["unit"]["code"])
    with a.db.session() as s:
        from shapely import wkb

        geom = s.scalar(select(Area.geometry).where(Area.level == 5, Area.code.like(place.other_street + "%"))
                        .order_by(Area.code))
    b = wkb.loads(geom).representative_point()
    case_b = a.report(point=(b.x, b.y))                         # another street of 天宁区
    case_c = a.report(point=(119.48, 31.42))                    # 溧阳市
    assert case_b["chain"][2]["code"] == place.other_street and case_b["unit"]["code"] == place.unit
    assert case_c["chain"][3]["code"] == place.other_district
    return a, place, {"A": case_a["id"], "B": case_b["id"], "C": case_c["id"]}


@pytest.mark.parametrize("who", list(WHO))
def test_api_reads_are_scoped(read_api, who):
    a, place, ids = read_api
    headers = a.as_(place, who)
    for name, case_id in ids.items():
        resp = a.client.get(f"/api/v1/events/{case_id}", headers=headers)
        if name in SEES[who]:
            assert resp.status_code == 200
            assert resp.get_json()["reporter_phone"] == (PHONE if who in FULL_PHONE else MASKED)
        else:
            _error(resp, 403, "forbidden")
    listed = a.client.get("/api/v1/events?per_page=100&count=true", headers=headers).get_json()
    assert {i["id"] for i in listed["items"]} == {ids[n] for n in SEES[who]} and listed["total"] == len(SEES[who])
    today = city_today().isoformat()
    kpis = a.client.get(f"/api/v1/kpis?start={today}&end={today}", headers=headers)
    assert kpis.status_code == 200 and kpis.get_json()["received"] == len(SEES[who])


def test_api_list_cannot_be_widened_with_the_area_filter(read_api):
    a, place, ids = read_api
    street = a.as_(place, "officer_street")
    _error(a.client.get(f"/api/v1/events?area={place.district}", headers=street), 403, "forbidden")
    _error(a.client.get(f"/api/v1/events?area={place.other_street}", headers=street), 403, "forbidden")
    narrowed = a.client.get(f"/api/v1/events?area={place.grid}", headers=street).get_json()
    assert [i["id"] for i in narrowed["items"]] == [ids["A"]]
    handler = a.as_(place, "handler_other_unit")
    assert a.client.get(f"/api/v1/events?area={place.district}&count=true", headers=handler).get_json()["total"] == 0


def test_api_wall_reads_everything_and_writes_nothing(read_api):
    a, place, ids = read_api
    wall = a.as_(place, "wall")
    assert a.client.get("/api/v1/events?count=true", headers=wall).get_json()["total"] == 3
    _error(a.client.post("/api/v1/events", headers=wall, json={}), 403, "forbidden")
    case = a.client.get(f"/api/v1/events/{ids['A']}", headers=wall).get_json()
    for action in ACTIONS:
        _error(a.act(wall, case, action, note=NOTE, hours=8), 403, "forbidden_role")
    _error(a.act(wall, {**case, "version": 99}, "accept"), 403, "forbidden_role")  # not a 409 with the case
    assert a.seen_by_admin(ids["A"])[0]["version"] == 1


# =====================================================================================================
# live rooms: a principal of another area (or unit) does not receive the case, live or on resync
# =====================================================================================================
def test_live_rooms_follow_the_read_scope(demo_app):
    import time

    a = Api(demo_app)
    live = demo_app.extensions["ucc_live"]
    point = (119.975, 31.79)
    first = a.report(point=point)  # to learn the place; rejected, so the watched case is not merged into it
    place = a.place(first["chain"], first["unit"]["code"])
    assert a.act(a.as_(place, "officer_city"), first, "reject", note="测试").status_code == 200
    watchers = ["officer_street", "officer_other_street", "leader", "leader_other_district", "handler",
                "handler_other_unit", "grid", "grid_elsewhere", "wall"]

    def connect(who):
        token = a.as_(place, who)["Authorization"].split()[1]
        client = live.socketio.test_client(demo_app, namespace="/live", auth={"token": token})
        assert client.is_connected("/live")
        return client

    def case_ids(client):
        return [p["args"][0]["case"]["id"] for p in client.get_received("/live") if p["name"] == "case_event"]

    clients = {who: connect(who) for who in watchers}
    for c in clients.values():
        assert c.emit("resync", {"since": None}, namespace="/live", callback=True)["ok"]
    with a.db.session() as s:
        since = s.scalar(select(func.max(CaseEvent.seq)))
    case = a.report(point=point)
    assert case["merged_into"] is None and case["chain"][0]["code"] == place.grid
    expected = {w for w in watchers if "A" in SEES[w]}
    got: dict[str, list] = {w: [] for w in watchers}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(case["id"] in got[w] for w in expected):
        for w, c in clients.items():
            got[w] += case_ids(c)
        time.sleep(0.05)
    time.sleep(0.3)
    for w, c in clients.items():
        got[w] += case_ids(c)
    assert {w for w in watchers if case["id"] in got[w]} == expected
    # The replay after a reconnect follows the same rule.
    for w in watchers:
        clients[w].disconnect(namespace="/live")
        again = connect(w)
        ack = again.emit("resync", {"since": since}, namespace="/live", callback=True)
        assert ack["ok"] and (case["id"] in case_ids(again)) == (w in expected), w
        again.disconnect(namespace="/live")
