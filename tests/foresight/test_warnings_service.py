"""The warning service (foresight/warnings.py) on SQLite and PostgreSQL: stored once however often and however many
processes run it, told to the responsible duty officers, scoped like cases, acknowledged, dismissed, and turned into
a 专项整治 case through the real intake."""
from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import func, select

from data import files
from data.models import Case, CaseHistory, EarlyWarning, Unit, WarningCase
from data.tokens import Principal
from dispatch.errors import ServiceError
from foresight.warnings import WarningService, detector
from tests.foresight.warnings_world import BY_CODE, GRIDS, T0, background, build, neighbours, plant, street_of

RULES = files.warning_rules()
DETECTORS = [detector("foresight.hotspots"), detector("foresight.recurrent")]
SPOT_GRID = GRIDS[100]  # another street than the hotspot's
HOT_GRID = GRIDS[45]


def _who(role="duty_officer", area="320400", ident="token:9"):
    return Principal(kind="token", ident=ident, role=role, area_code=area)


ADMIN = _who("admin", ident="token:1")


@pytest.fixture
def world(empty_db):
    cases, clock = build(empty_db)
    rng = random.Random(4)
    background(empty_db, rng)
    for g in [HOT_GRID.code] + neighbours(HOT_GRID.code)[:3]:
        plant(empty_db, g, 12, rng)
    c = SPOT_GRID.geometry.centroid
    plant(empty_db, SPOT_GRID.code, 6, rng, category="020505", point=(c.x, c.y))
    return empty_db, cases


def _service(world, **kw):
    db, cases = world
    return WarningService(db, cases, DETECTORS, RULES, **kw)


def _count(db, model):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_run_stores_each_finding_once_with_its_cases(world):
    db, _ = world
    service = _service(world)
    heard = []
    service.listeners.append(heard.extend)
    stored = service.run(T0)
    kinds = sorted(w["kind"] for w in stored)
    assert kinds == ["hotspot", "hotspot", "recurrent"]  # the 7- and 30-day hotspot, the spot
    spot = next(w for w in stored if w["kind"] == "recurrent")
    assert spot["category"] == "020505" and spot["observed"] == 6 and len(spot["cases"]) == 6
    assert spot["area"] == SPOT_GRID.code and spot["status"] == "open"
    links = _count(db, WarningCase)
    assert links == sum(len(w["cases"]) for w in stored)
    # the same hour again, and the next hour of the same day: nothing new
    assert service.run(T0) == [] and service.run(T0.replace(hour=3)) == []
    assert _count(db, EarlyWarning) == 3 and _count(db, WarningCase) == links
    # told once, to the responsible level and above: a spot to its street's officers, a hotspot to its district's
    assert sorted(h["id"] for h in heard) == sorted(w["id"] for w in stored)
    street = street_of(SPOT_GRID.code)
    assert next(h for h in heard if h["kind"] == "recurrent")["rooms"] == \
        [f"area:{street}", f"area:{BY_CODE[street].parent}", "area:320400"]
    hot = next(h for h in heard if h["kind"] == "hotspot")
    assert hot["rooms"] == [f"area:{hot['area'][:6]}", "area:320400"] and hot["responsible_level"] == "区级"


def test_two_processes_at_once_store_each_warning_once(world):
    db, cases = world
    services = [_service(world), _service(world)]
    out, errors = [], []
    start = threading.Barrier(2)

    def go(svc):
        try:
            start.wait()
            out.append(svc.run(T0))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(svc,)) for svc in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(len(o) for o in out) == 3 == _count(db, EarlyWarning)
    with db.session() as s:
        keys = s.scalars(select(EarlyWarning.dedupe_key)).all()
    assert len(set(keys)) == 3


def _spot_warning(service):
    service.run(T0)
    return next(w for w in service.list(ADMIN)["items"] if w["kind"] == "recurrent")


def _street_unit(db, street):
    with db.session() as s:
        return s.scalars(select(Unit).where(Unit.area_code == street, Unit.unit_type == "street_office")).first()


def test_a_warning_becomes_a_campaign_case_led_by_the_chosen_unit(world):
    db, cases = world
    service = _service(world)
    w = _spot_warning(service)
    street = street_of(SPOT_GRID.code)
    officer = _who(area=street)
    # the street's city-management bureau is not the category's own unit type (the street office): the choice wins
    with db.session() as s:
        chosen = s.scalars(select(Unit).where(Unit.area_code == "320400", Unit.unit_type == "city_management")
                           ).first()
        chosen_code, chosen_name = chosen.code, chosen.name
    done = service.to_campaign(w["id"], officer, chosen_code, "两周内集中整治")
    case, warning = done["case"], done["warning"]
    assert warning["status"] == "tasked" and warning["case_id"] == case["id"] and warning["updated_by"] == officer.ident
    with db.session() as s:
        row = s.get(Case, case["id"])
        assert row.category_code == RULES.campaign_category and row.unit_code == chosen_code
        assert row.grid_code == SPOT_GRID.code and row.state == "reported"
        history = [h.action for h in s.scalars(select(CaseHistory).where(CaseHistory.case_id == row.id)
                                               .order_by(CaseHistory.id))]
        linked = set(s.scalars(select(WarningCase.case_id).where(WarningCase.warning_id == w["id"])))
    assert history == ["report", "campaign_assign"]
    for cid in w["cases"]:
        assert f"#{cid}" in row.description
    assert chosen_name in row.description and "两周内集中整治" in row.description
    assert linked == set(w["cases"])  # the warned cases stay linked; the campaign case is the warning's case_id
    # once tasked, never again
    with pytest.raises(ServiceError) as err:
        service.to_campaign(w["id"], officer, chosen_code)
    assert err.value.status == 409 and "已转专项整治" in err.value.message


def test_campaign_refusals_change_nothing(world):
    db, _ = world
    service = _service(world)
    w = _spot_warning(service)
    officer = _who(area=street_of(SPOT_GRID.code))
    other_district = next(r.code for r in BY_CODE.values() if r.level == 2 and r.code != SPOT_GRID.code[:6])
    far_unit = _street_unit(db, next(r.code for r in BY_CODE.values() if r.level == 3 and r.parent == other_district))
    cases_before = _count(db, Case)
    for args, status, words in [((w["id"], officer, "NO-SUCH-UNIT"), 422, "不存在"),
                                ((w["id"], officer, far_unit.code), 422, "不负责"),
                                ((w["id"], officer, ""), 400, "牵头单位"),
                                ((999999, officer, far_unit.code), 404, "不存在"),
                                ((w["id"], _who("leader", street_of(SPOT_GRID.code)), far_unit.code), 403, "值班员"),
                                ((w["id"], _who(area=f"{other_district}001"), far_unit.code), 403, "辖区")]:
        with pytest.raises(ServiceError) as err:
            service.to_campaign(*args)
        assert err.value.status == status and words in err.value.message, err.value.message
    assert _count(db, Case) == cases_before
    assert service.get(w["id"], ADMIN)["status"] == "open"


def test_acknowledge_and_dismiss_move_the_status_once(world):
    service = _service(world)
    w = _spot_warning(service)
    officer = _who(area=street_of(SPOT_GRID.code), ident="token:5")
    with pytest.raises(ServiceError) as err:
        service.dismiss(w["id"], officer, "  ")
    assert err.value.status == 400 and "排除原因" in err.value.message
    acked = service.acknowledge(w["id"], officer)
    assert acked["status"] == "acknowledged" and acked["updated_by"] == "token:5"
    with pytest.raises(ServiceError) as err:
        service.acknowledge(w["id"], officer)
    assert err.value.status == 409 and "已确认" in err.value.message
    gone = service.dismiss(w["id"], officer, "施工围挡临时占道，已协调")
    assert gone["status"] == "dismissed" and gone["evidence"]["dismissal"]["reason"] == "施工围挡临时占道，已协调"
    assert service.list(ADMIN, status="dismissed")["total"] == 1
    assert service.list(ADMIN, status="open", kind="recurrent")["total"] == 0


def test_each_officer_sees_the_warnings_of_their_area(world):
    service = _service(world)
    service.run(T0)
    spot_street = street_of(SPOT_GRID.code)
    other_street = next(r.code for r in BY_CODE.values() if r.level == 3 and r.code != spot_street
                        and r.code != street_of(HOT_GRID.code))
    assert service.list(_who())["total"] == 3  # the city's
    mine = service.list(_who(area=spot_street))["items"]
    assert [w["kind"] for w in mine] == ["recurrent"]
    assert service.list(_who(area=other_street))["items"] == []
    hot = next(w for w in service.list(ADMIN)["items"] if w["kind"] == "hotspot")
    assert {w["id"] for w in service.list(_who(area=hot["district"]))["items"]} >= {hot["id"]}
    with pytest.raises(ServiceError) as err:
        service.get(mine[0]["id"], _who(area=other_street))
    assert err.value.status == 403 and "辖区" in err.value.message
    with pytest.raises(ServiceError) as err:
        service.list(_who("unit_handler", spot_street))
    assert err.value.status == 403
    with pytest.raises(ServiceError) as err:
        service.list(ADMIN, kind="flood")
    assert err.value.status == 400 and "未知的预警类型" in err.value.message


def test_a_lasting_hotspot_is_one_warning_until_it_is_dismissed(world):
    from datetime import timedelta

    service = _service(world)
    first = [w for w in service.run(T0) if w["kind"] == "hotspot"]
    assert len(first) == 2
    # the next day the windows moved (new dedupe keys), the place did not: no new warning while the first is open
    assert [w for w in service.run(T0 + timedelta(days=1)) if w["kind"] == "hotspot"] == []
    week = next(w for w in first if w["window_start"].startswith("2026-11-16"))
    service.dismiss(week["id"], ADMIN, "已知的集市")
    again = [w for w in service.run(T0 + timedelta(days=1)) if w["kind"] == "hotspot"]
    assert len(again) == 1 and again[0]["area"] == week["area"] and again[0]["window_end"].startswith("2026-11-24")


def test_two_warnings_of_one_place_task_one_campaign(world):
    db, _ = world
    service = _service(world)
    hot = [w for w in service.run(T0) if w["kind"] == "hotspot"]
    assert len(hot) == 2 and hot[0]["area"] == hot[1]["area"]
    unit = _street_unit(db, street_of(hot[0]["area"]))
    first = service.to_campaign(hot[0]["id"], ADMIN, unit.code)
    second = service.to_campaign(hot[1]["id"], ADMIN, unit.code)
    assert first["case"]["id"] == second["warning"]["case_id"] == second["case"]["id"]
    assert second["warning"]["status"] == "tasked" and second["case"]["unit"]["code"] == unit.code
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Case).where(Case.category_code == RULES.campaign_category,
                                                                     Case.merged_into_id.is_(None))) == 1


def test_the_scheduler_runs_the_warnings_at_start(world):
    import time as _time

    from scheduler import start_warnings

    db, cases = world
    service = _service(world)
    service.clock = lambda: T0  # the hourly job runs "now": the world's now
    stop = threading.Event()
    thread = start_warnings(service, interval_seconds=3600, stop=stop)
    deadline = _time.monotonic() + 60
    while _count(db, EarlyWarning) < 3 and _time.monotonic() < deadline:
        _time.sleep(0.1)
    stop.set()
    thread.join(5)
    assert _count(db, EarlyWarning) == 3 and not thread.is_alive()
