"""Routing: each kind of category, fallback up the levels, the manual queue, emergencies by severity."""
from __future__ import annotations

import pytest

from data import files
from dispatch.routing import route_case
from dispatch.units import UnitRecord, index_units
from geo.model import AreaRecord

CHAIN = [AreaRecord("320402001001001", "红梅社区第1网格", 5, "320402001001", None),
         AreaRecord("320402001001", "红梅社区", 4, "320402001", None),
         AreaRecord("320402001", "红梅街道", 3, "320402", None),
         AreaRecord("320402", "天宁区", 2, "320400", None),
         AreaRecord("320400", "常州市", 1, None, None)]


@pytest.fixture(scope="module")
def catalog():
    return files.catalog()


@pytest.fixture(scope="module")
def types():
    return files.unit_types()


def _units(*specs):
    return index_units(UnitRecord(f"U-{area}-{t}", name, t, level, area) for area, t, level, name in specs)


FULL = _units(
    ("320400", "city_management", 1, "常州市城市管理局"), ("320402", "city_management", 2, "天宁区城市管理局"),
    ("320402001", "street_office", 3, "红梅街道办事处"), ("320402001001", "community_committee", 4, "红梅社区居委会"),
    ("320402001001001", "grid_member", 5, "红梅社区第1网格网格员"),
    ("320400", "fire_rescue", 1, "常州市消防救援支队"), ("320402", "fire_rescue", 2, "天宁区消防救援大队"),
    ("320400", "emergency_management", 1, "常州市应急管理局"), ("320402", "emergency_management", 2, "天宁区应急管理局"),
    ("320400", "public_security", 1, "常州市公安局"), ("320402", "public_security", 2, "常州市公安局天宁分局"),
    ("320400", "emergency_medical", 1, "常州市急救中心"), ("320400", "water_supply", 1, "常州通用自来水有限公司"),
)


def _first(catalog, kind, **where):
    for c in catalog.values():
        if c.kind == kind and all(getattr(c, k) == v for k, v in where.items()):
            return c
    pytest.skip(f"no {kind} category with {where}")


def test_event_goes_to_the_district_bureau_with_a_readable_reason(catalog, types):
    cat = _first(catalog, "event", unit_type="city_management", level=2)
    d = route_case(cat, CHAIN, FULL, types)
    assert d.unit_code == "U-320402-city_management" and d.handling_level == 2 and not d.manual
    assert cat.name in d.reason and "天宁区城市管理局" in d.reason and "天宁区红梅街道" in d.reason


def test_street_order_event_goes_to_the_street_office(catalog, types):
    cat = _first(catalog, "event", unit_type="street_office")
    d = route_case(cat, CHAIN, FULL, types)
    assert d.unit_code == "U-320402001-street_office" and d.handling_level == 3


def test_grid_event_stays_in_the_grid_or_community(catalog, types):
    cat = _first(catalog, "grid", level=5)
    d = route_case(cat, CHAIN, FULL, types)
    assert d.unit_code.startswith("U-320402001001") and d.handling_level in (4, 5)


def test_utility_component_goes_to_the_city_utility(catalog, types):
    cat = _first(catalog, "component", unit_type="water_supply")
    d = route_case(cat, CHAIN, FULL, types)
    assert d.unit_code == "U-320400-water_supply" and d.handling_level == 1


def test_missing_level_falls_back_up_and_says_so(catalog, types):
    cat = _first(catalog, "event", unit_type="city_management", level=2)
    only_city = _units(("320400", "city_management", 1, "常州市城市管理局"))
    d = route_case(cat, CHAIN, only_city, types)
    assert d.unit_code == "U-320400-city_management" and d.handling_level == 1
    assert "上溯至市级" in d.reason


def test_no_unit_at_all_goes_to_the_manual_queue(catalog, types):
    cat = _first(catalog, "event", unit_type="city_management", level=2)
    d = route_case(cat, CHAIN, _units(), types)
    assert d.manual and d.unit_code is None and "人工派遣" in d.reason


@pytest.mark.parametrize("severity,level,upward", [(4, 2, False), (3, 1, False), (2, 1, True), (1, 1, True)])
def test_emergency_severity_sets_the_starting_level(catalog, types, severity, level, upward):
    cat = _first(catalog, "emergency", unit_type="fire_rescue")
    d = route_case(cat, CHAIN, FULL, types, severity=severity)
    assert d.handling_level == level and d.report_upward is upward
    assert d.unit_code == ("U-320402-fire_rescue" if level == 2 else "U-320400-fire_rescue")
    assert d.assist_unit_codes, "an emergency has assisting units"
    assert d.unit_code not in d.assist_unit_codes
    assert "协同单位" in d.reason


def test_escalation_reroutes_one_level_up(catalog, types):
    cat = _first(catalog, "event", unit_type="city_management", level=2)
    d = route_case(cat, CHAIN, FULL, types, level=1)
    assert d.unit_code == "U-320400-city_management" and d.handling_level == 1


# ----------------------------------------------------------------------------------------
# routing exceptions by area (data/catalog/routing_exceptions.csv)

from dispatch.catalog import RouteException  # noqa: E402

WUJIN = [AreaRecord("320412001001001", "湖塘社区第1网格", 5, "320412001001", None),
         AreaRecord("320412001001", "湖塘社区", 4, "320412001", None),
         AreaRecord("320412001", "湖塘镇", 3, "320412", None),
         AreaRecord("320412", "武进区", 2, "320400", None),
         AreaRecord("320400", "常州市", 1, None, None)]
LIGHTS = _units(("320400", "street_lighting", 1, "常州市城市照明管理处"),
                ("320400", "city_management", 1, "常州市城市管理局"),
                ("320402", "city_management", 2, "天宁区城市管理局"),
                ("320412", "city_management", 2, "武进区城市管理局"),
                ("320402001", "street_office", 3, "红梅街道办事处"))


@pytest.fixture(scope="module")
def exceptions(catalog, types):
    return files.routing_exceptions(catalog, types)


def test_tianning_street_lights_go_to_the_city_lighting_office_and_say_why(catalog, types, exceptions):
    lamp = catalog["010118"]  # 路灯不亮
    d = route_case(lamp, CHAIN, LIGHTS, types, exceptions=exceptions)
    assert d.unit_code == "U-320400-street_lighting" and d.handling_level == 1 and not d.manual
    assert "天宁区路灯由市城市照明管理处管养" in d.reason and "常州市城市照明管理处" in d.reason
    assert "区域例外" in d.reason and "天宁区红梅街道" in d.reason
    # without the rules the manual's district bureau keeps it
    assert route_case(lamp, CHAIN, LIGHTS, types).unit_code == "U-320402-city_management"


def test_wujin_street_lights_stay_with_the_district(catalog, types, exceptions):
    for code in ("010118", "010152", "010120"):
        d = route_case(catalog[code], WUJIN, LIGHTS, types, exceptions=exceptions)
        assert d.unit_code == "U-320412-city_management", code
        assert "区域例外" not in d.reason


def test_other_categories_ignore_the_street_light_rules(catalog, types, exceptions):
    garbage = catalog["020102"]  # 暴露垃圾
    d = route_case(garbage, CHAIN, LIGHTS, types, exceptions=exceptions)
    assert d.unit_code == "U-320402-city_management" and "区域例外" not in d.reason


def test_the_most_specific_exception_wins(catalog, types):
    lamp = catalog["010118"]
    rules = [RouteException("0101", "320400", "city_management", 1, "全市公用设施由市局管"),
             RouteException("010118", "320402", "street_lighting", 1, "天宁区路灯由市照明处管"),
             RouteException("010118", "320402001", "street_office", 3, "红梅街道路灯由街道自管")]
    d = route_case(lamp, CHAIN, LIGHTS, types, exceptions=rules)
    assert d.unit_code == "U-320402001-street_office" and "红梅街道路灯由街道自管" in d.reason
    d = route_case(lamp, CHAIN, LIGHTS, types, exceptions=rules[:2])
    assert d.unit_code == "U-320400-street_lighting"
    d = route_case(lamp, WUJIN, LIGHTS, types, exceptions=rules)  # only the major class rule reaches 武进
    assert d.unit_code == "U-320400-city_management" and "全市公用设施由市局管" in d.reason


def test_an_exception_without_its_unit_falls_back_to_the_manual_and_says_so(catalog, types, exceptions):
    no_office = _units(("320402", "city_management", 2, "天宁区城市管理局"))
    d = route_case(catalog["010118"], CHAIN, no_office, types, exceptions=exceptions)
    assert d.unit_code == "U-320402-city_management"
    assert "未设城市照明管理处" in d.reason and "按指挥手册" in d.reason


def test_escalation_past_the_exceptions_unit_type_returns_to_the_manual(catalog, types):
    rule = [RouteException("010118", "320402", "street_office", 3, "天宁区路灯由街道管养")]
    d = route_case(catalog["010118"], CHAIN, FULL, types, exceptions=rule, level=2)
    # the street office exists only at level 3: one level up there is none, so the manual's rule
    assert d.unit_code == "U-320402-city_management" and d.handling_level == 2


def test_emergencies_have_no_area_exceptions(catalog, types):
    fire = _first(catalog, "emergency", unit_type="fire_rescue")
    rule = [RouteException(fire.code, "320402", "city_management", 2, "不应生效")]
    d = route_case(fire, CHAIN, FULL, types, severity=4, exceptions=rule)
    assert d.unit_code == "U-320402-fire_rescue" and "不应生效" not in d.reason
