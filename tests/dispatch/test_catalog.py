"""The dispatch manual (data/catalog/categories.csv), the unit types and the demo units."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from shapely.geometry import box

from data import files
from data.files import CATEGORIES_PATH, UNIT_PATTERNS_PATH, UNIT_TYPES_PATH
from dispatch.catalog import KINDS, CatalogError, Category, categories_by_kind, load_catalog, load_unit_types
from dispatch.units import UnitRecord, demo_units, find_unit, index_units, load_unit_patterns, node_form
from geo.model import AreaRecord, by_code, chain_of

ROOT = Path(__file__).resolve().parents[2]

REQUIRED_UNIT_TYPES = {
    # city bureaus the plan names, with their district counterparts
    "city_management": (1, 2), "emergency_management": (1, 2), "public_security": (1, 2),
    "traffic_police": (1, 2), "fire_rescue": (1, 2), "ecology_environment": (1, 2),
    "water_affairs": (1, 2), "transport": (1, 2), "housing_construction": (1, 2),
    "market_supervision": (1, 2), "political_legal": (1, 2), "natural_resources": (1, 2),
    "health": (1, 2), "big_data": (1,),
    # grassroots
    "street_office": (3,), "community_committee": (4,), "grid_member": (5,),
    # utilities
    "power": (1,), "water_supply": (1,), "gas": (1,), "telecom": (1,),
}


@pytest.fixture(scope="module")
def unit_types():
    return load_unit_types(UNIT_TYPES_PATH)


@pytest.fixture(scope="module")
def catalog(unit_types):
    return load_catalog(CATEGORIES_PATH, unit_types)


@pytest.fixture(scope="module")
def patterns():
    return load_unit_patterns(UNIT_PATTERNS_PATH)


# ----------------------------------------------------------------------------------------
# the shipped catalog

def test_shipped_catalog_loads_with_enough_categories(catalog):
    assert len(catalog) >= 60
    assert all(isinstance(c, Category) for c in catalog.values())
    assert list(catalog) == [c.code for c in catalog.values()]
    by_kind = categories_by_kind(catalog)
    assert set(by_kind) == set(KINDS)
    for kind, rows in by_kind.items():
        assert len(rows) >= 8, f"{kind}: only {len(rows)} categories"
        assert len({c.major_class for c in rows}) >= 3, f"{kind}: too few major classes"


def test_codes_follow_the_kind_major_minor_scheme(catalog):
    prefix = {"component": "01", "event": "02", "grid": "03", "emergency": "04"}
    majors: dict[str, str] = {}
    for c in catalog.values():
        assert len(c.code) == 6 and c.code.isdigit()
        assert c.code.startswith(prefix[c.kind])
        assert majors.setdefault(c.major_code, c.major_class) == c.major_class
    assert len({c.name for c in catalog.values()}) == len(catalog)


def test_time_units_match_the_kind_and_the_clock(catalog):
    for c in catalog.values():
        assert c.time_limit > 0
        if c.kind == "emergency":
            assert (c.time_unit, c.clock) == ("minutes", "calendar"), c
        elif c.clock == "calendar":
            assert c.time_unit in ("hours", "days"), c
        else:
            assert c.time_unit in ("working_hours", "working_days"), c
        assert c.urgency in ("normal", "urgent", "critical")
        assert c.filing_criterion and c.closing_criterion


def test_unit_types_referenced_exist_at_the_handling_level(catalog, unit_types):
    for c in catalog.values():
        assert c.unit_type in unit_types, c
        assert c.level in unit_types[c.unit_type].levels, c
        for a in c.assist_unit_types:
            assert a in unit_types, (c.code, a)


def test_emergencies_have_a_district_lead_and_assisting_units(catalog):
    emergencies = categories_by_kind(catalog)["emergency"]
    names = {c.name for c in emergencies}
    assert {"火灾", "城市内涝", "燃气泄漏", "危险化学品泄漏", "道路交通事故"} <= names
    assert any("塌陷" in n for n in names)
    for c in emergencies:
        assert c.level == 2, c
        assert c.assist_unit_types, c
        assert c.unit_type not in c.assist_unit_types


def test_published_time_limits(catalog):
    by_name = {c.name: c for c in catalog.values()}
    assert (by_name["暴露垃圾"].time_limit, by_name["暴露垃圾"].time_unit) == (4, "working_hours")
    assert (by_name["道路不洁"].time_limit, by_name["道路不洁"].time_unit) == (2, "working_hours")
    well = by_name["井盖缺失"]
    assert (well.time_limit, well.time_unit, well.urgency, well.clock) == (2, "hours", "urgent", "calendar")
    assert well.time_limit_text == "2 小时"
    assert (by_name["路灯不亮"].time_limit, by_name["路灯不亮"].time_unit) == (1, "working_days")
    build = by_name["违法搭建"]
    assert [(s.name, s.time_limit, s.time_unit) for s in build.stages] == [
        ("停工", 4, "working_hours"), ("处罚", 7, "working_days"), ("拆除", 20, "working_days")]
    assert (build.time_limit, build.time_unit) == (4, "working_hours")
    for name in ("占道经营", "非法小广告", "渣土撒漏", "路面积水", "道路塌陷"):
        assert by_name[name].kind == "event", name
    for name in ("邻里纠纷", "消防通道堵塞", "群租房", "信访苗头"):
        assert by_name[name].kind == "grid", name
        assert by_name[name].level >= 4, name  # 小事不出网格: grid or community first
    assert by_name["火灾"].unit_type == "fire_rescue"


def test_grid_events_are_mostly_handled_at_grid_or_community(catalog):
    grid = categories_by_kind(catalog)["grid"]
    low = [c for c in grid if c.level >= 4]
    assert len(low) >= len(grid) * 0.6
    assert any(c.level == 5 for c in grid) and any(c.level == 4 for c in grid)


def test_shipped_unit_types(unit_types):
    for code, levels in REQUIRED_UNIT_TYPES.items():
        assert code in unit_types, code
        assert unit_types[code].levels == levels, code
    assert unit_types["power"].sector == "utility"
    assert unit_types["grid_member"].name == "网格员"


def test_urgent_and_critical_categories_and_emergencies_run_on_the_calendar_clock(catalog):
    # the rule written in docs/dispatch.md ("Clocks"): the data file follows it row by row
    for c in catalog.values():
        expected = "calendar" if c.kind == "emergency" or c.urgency in ("urgent", "critical") else "working"
        assert c.clock == expected, c
    by_name = {c.name: c for c in catalog.values()}
    for name in ("井盖缺失", "燃气井盖破损", "供水管道渗漏", "路面积水", "道路塌陷", "行道树倒伏", "火灾"):
        assert by_name[name].clock == "calendar", name
    for name in ("暴露垃圾", "道路不洁", "路灯不亮", "违法搭建", "邻里纠纷"):
        assert by_name[name].clock == "working", name
    # a later stage keeps its own clock: the cordon is calendar time, the repair office time
    collapse = by_name["道路塌陷"]
    assert [(s.name, s.time_limit, s.time_unit) for s in collapse.stages] == [
        ("围护", 2, "hours"), ("修复", 3, "working_days")]


# ----------------------------------------------------------------------------------------
# broken catalogs are refused with line numbers

HEADER = ("code,name,major_class,kind,filing_criterion,closing_criterion,unit_type,level,"
          "time_limit,time_unit,clock,urgency,assist_unit_types,stages")
GOOD = [
    "020101,暴露垃圾,市容环境,event,成堆垃圾,清除干净,city_management,2,4,working_hours,working,normal,,",
    "030101,邻里纠纷,矛盾纠纷,grid,邻里矛盾,调解化解,grid_member,5,2,working_days,working,normal,,",
    "040101,火灾,事故灾难,emergency,发生火灾,明火扑灭,fire_rescue,2,120,minutes,calendar,critical,public_security;power,",
]


def _write(tmp_path, lines, name="categories.csv", header=HEADER):
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _refused(path, unit_types=None, loader=None) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        if loader is None:
            load_catalog(path, unit_types=unit_types)
        else:
            loader(path)
    return info.value


def test_a_small_good_catalog_loads(tmp_path, unit_types):
    cats = load_catalog(_write(tmp_path, GOOD), unit_types=unit_types)
    assert list(cats) == ["020101", "030101", "040101"]
    assert cats["040101"].assist_unit_types == ("public_security", "power")
    assert cats["020101"].time_limit == 4 and isinstance(cats["020101"].time_limit, int)


@pytest.mark.parametrize("bad_line, words", [
    ("020102,道路不洁,市容环境,incident,脏,扫,city_management,2,2,working_hours,working,normal,,", ["incident", "种类"]),
    ("020102,道路不洁,市容环境,event,脏,扫,street_sweeper,2,2,working_hours,working,normal,,", ["street_sweeper", "单位类型"]),
    ("020101,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_hours,working,normal,,", ["020101", "重复", "第2行"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,-2,working_hours,working,normal,,", ["正数"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,0,working_hours,working,normal,,", ["正数"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,两,working_hours,working,normal,,", ["不是数字"]),
    ("040102,燃气泄漏,事故灾难,emergency,泄漏,止漏,housing_construction,2,2,working_hours,working,critical,gas,", ["应急事件", "minutes"]),
    ("040102,燃气泄漏,事故灾难,emergency,泄漏,止漏,housing_construction,2,120,minutes,calendar,critical,,", ["协办"]),
    ("040102,燃气泄漏,事故灾难,emergency,泄漏,止漏,housing_construction,2,120,minutes,calendar,critical,gas;plumber,", ["plumber"]),
    ("040102,燃气泄漏,事故灾难,emergency,泄漏,止漏,housing_construction,3,120,minutes,calendar,critical,gas,", ["第 3 级"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,120,minutes,calendar,normal,,", ["工作时间"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,6,2,working_hours,working,normal,,", ["层级"]),
    ("020102,道路不洁,市容环境,event,脏,扫,grid_member,2,2,working_hours,working,normal,,", ["不设在第 2 级"]),
    ("020102,道路不洁,市容环境,event,,扫,city_management,2,2,working_hours,working,normal,,", ["立案标准"]),
    ("020102,道路不洁,市容环境,event,脏,,city_management,2,2,working_hours,working,normal,,", ["结案标准"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_weeks,working,normal,,", ["working_weeks"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_hours,working,asap,,", ["asap"]),
    # the clock: a known value, the clock of the unit, calendar for every emergency
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,2,hours,wall,urgent,,", ["wall", "计时方式", "calendar"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,2,hours,,urgent,,", ["计时方式", "working"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_hours,calendar,urgent,,",
     ["calendar", "自然时间", "working_hours", "hours"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,1,days,working,normal,,", ["working", "days"]),
    ("040102,燃气泄漏,事故灾难,emergency,泄漏,止漏,housing_construction,2,120,minutes,working,critical,gas,",
     ["应急事件", "calendar"]),
    ("030102,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_hours,working,normal,,", ["应以 02 开头"]),
    ("02010,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_hours,working,normal,,", ["6 位数字"]),
    ("020102,暴露垃圾,市容环境,event,脏,扫,city_management,2,2,working_hours,working,normal,,", ["名称", "重复"]),
    ("020102,道路不洁,街面秩序,event,脏,扫,city_management,2,2,working_hours,working,normal,,", ["大类 0201"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_hours,working,normal,,停工:3:working_hours",
     ["第一阶段"]),
    ("020102,道路不洁,市容环境,event,脏,扫,city_management,2,2,working_hours,working,normal,,停工-2", ["格式错误"]),
])
def test_bad_rows_are_refused_with_their_line_number(tmp_path, unit_types, bad_line, words):
    path = _write(tmp_path, [GOOD[0], bad_line, *GOOD[1:]])
    err = _refused(path, unit_types)
    assert [line for line, _ in err.errors] and {line for line, _ in err.errors} == {3}, err.errors
    text = str(err)
    assert "第3行" in text
    for w in words:
        assert w in text, (w, text)


def test_every_bad_row_is_listed_at_once(tmp_path, unit_types):
    lines = [
        GOOD[0],
        "020102,道路不洁,市容环境,incident,脏,扫,city_management,2,2,working_hours,working,normal,,",  # line 3
        GOOD[1],
        "030102,家庭纠纷,矛盾纠纷,grid,吵架,调解,nobody,5,-1,working_days,working,normal,,",  # line 5: 2 errors
        GOOD[2],
        "040101,城市内涝,自然灾害,emergency,积水,排除,water_affairs,2,240,working_hours,working,critical,,",  # line 7
    ]
    err = _refused(_write(tmp_path, lines), unit_types)
    assert sorted({line for line, _ in err.errors}) == [3, 5, 7]
    assert len([1 for line, _ in err.errors if line == 5]) == 2
    # line 7: duplicate code of line 6, wrong time unit, no assisting units, wrong major class
    msgs7 = " ".join(m for line, m in err.errors if line == 7)
    assert "重复" in msgs7 and "minutes" in msgs7 and "协办" in msgs7


def test_multiline_quoted_fields_keep_line_numbers(tmp_path, unit_types):
    lines = [
        '020101,暴露垃圾,市容环境,event,"成堆垃圾\n（两行的立案标准）",清除干净,city_management,2,4,working_hours,working,normal,,',
        "020102,道路不洁,市容环境,event,脏,扫,city_management,2,-2,working_hours,working,normal,,",
    ]
    err = _refused(_write(tmp_path, lines), unit_types)
    assert [line for line, _ in err.errors] == [4]


def test_missing_column_is_refused_on_the_header_line(tmp_path, unit_types):
    header = HEADER.replace("time_unit,", "")
    rows = [",".join(p for i, p in enumerate(r.split(",")) if i != 9) for r in GOOD]
    err = _refused(_write(tmp_path, rows, header=header), unit_types)
    assert err.errors == [(1, "表头缺少列：time_unit")]
    assert "第1行" in str(err)


def test_a_catalog_without_the_clock_column_is_refused(tmp_path, unit_types):
    # an older file (every category silently on office hours) must be brought up to date, not guessed
    header = HEADER.replace("time_unit,clock,", "time_unit,")
    rows = [",".join(p for i, p in enumerate(r.split(",")) if i != 10) for r in GOOD]
    err = _refused(_write(tmp_path, rows, header=header), unit_types)
    assert err.errors == [(1, "表头缺少列：clock")]


def test_optional_columns_may_be_left_out_but_emergencies_then_fail(tmp_path, unit_types):
    header = HEADER.replace(",assist_unit_types,stages", "")
    rows = [",".join(r.split(",")[:12]) for r in GOOD]
    err = _refused(_write(tmp_path, rows, header=header), unit_types)
    assert [line for line, _ in err.errors] == [4]
    cats = load_catalog(_write(tmp_path, rows[:2], header=header), unit_types=unit_types)
    assert cats["030101"].assist_unit_types == () and cats["030101"].stages == ()


def test_bom_and_blank_lines_are_accepted(tmp_path, unit_types):
    path = tmp_path / "bom.csv"
    path.write_text("\ufeff" + HEADER + "\n" + GOOD[0] + "\n\n" + GOOD[1] + "\n", encoding="utf-8")
    assert list(load_catalog(path, unit_types=unit_types)) == ["020101", "030101"]


def test_empty_or_missing_files_are_refused(tmp_path, unit_types):
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert "表头" in str(_refused(empty, unit_types))
    only_header = _write(tmp_path, [])
    assert "没有任何类别" in str(_refused(only_header, unit_types))
    assert "不存在" in str(_refused(tmp_path / "nope.csv", unit_types))
    latin = tmp_path / "gbk.csv"
    latin.write_bytes((HEADER + "\n" + GOOD[0] + "\n").encode("gbk"))
    assert "UTF-8" in str(_refused(latin, unit_types))


def test_bad_unit_types_are_refused_with_line_numbers(tmp_path):
    header = "code,name,levels,sector,description"
    lines = [
        "city_management,城市管理局,1;2,government,",
        "city_management,城管局,2,government,",  # 3: duplicate
        "grid_member,网格员,6,grassroots,",  # 4: bad level
        "Power,供电公司,1,utility,",  # 5: bad code
        "gas,燃气公司,1,monopoly,",  # 6: bad sector
        "water,,,utility,",  # 7: no name, no levels
    ]
    err = _refused(_write(tmp_path, lines, "unit_types.csv", header), loader=load_unit_types)
    assert sorted({line for line, _ in err.errors}) == [3, 4, 5, 6, 7]
    text = str(err)
    assert "重复" in text and "monopoly" in text and "层级" in text
    good = _write(tmp_path, lines[:1], "ok.csv", header)
    assert load_unit_types(good)["city_management"].levels == (1, 2)
    missing = _write(tmp_path, ["x,叉,1"], "missing.csv", "code,name,levels")
    assert "sector" in str(_refused(missing, loader=load_unit_types))


def test_catalog_against_custom_unit_types(tmp_path):
    header = "code,name,levels,sector,description"
    types = load_unit_types(_write(tmp_path, ["city_management,城管局,2,government,"], "t.csv", header))
    err = _refused(_write(tmp_path, GOOD), types)
    assert {line for line, _ in err.errors} == {3, 4}  # grid_member, fire_rescue, public_security unknown


# ----------------------------------------------------------------------------------------
# units over a small synthetic hierarchy

def small_city() -> list[AreaRecord]:
    g = box(0, 0, 1, 1)
    recs = [AreaRecord("320400", "常州市", 1, None, g),
            AreaRecord("320402", "天宁区", 2, "320400", g),
            AreaRecord("320481", "溧阳市", 2, "320400", g),
            AreaRecord("320491", "常州经开区", 2, "320400", g)]
    streets = [("320402001", "红梅街道", "320402", {"kind": "街道"}),
               ("320402002", "郑陆镇", "320402", {}),
               ("320481001", "溧城街道", "320481", {}),
               ("320481002", "社渚乡", "320481", {}),
               ("320491001", "横山桥镇", "320491", {"kind": "镇"})]
    for code, name, parent, extra in streets:
        recs.append(AreaRecord(code, name, 3, parent, g, extra=extra))
        for j, (cname, extra_c) in enumerate([(name[:2] + "社区", {"kind": "社区"}), (name[:2] + "村", {})], 1):
            ccode = f"{code}{j:03d}"
            recs.append(AreaRecord(ccode, cname, 4, code, g, extra=extra_c))
            for k in range(1, 4):
                recs.append(AreaRecord(f"{ccode}{k:03d}", f"{cname}第{k}网格", 5, ccode, g))
    return recs


def test_demo_units_over_a_small_hierarchy(unit_types, patterns):
    recs = small_city()
    units = demo_units(recs, unit_types, patterns)
    assert all(isinstance(u, UnitRecord) for u in units)
    codes = [u.code for u in units]
    assert len(codes) == len(set(codes))
    by_code_ = {u.code: u for u in units}
    levels = {r.code: r.level for r in recs}
    for u in units:
        assert u.level == levels[u.area_code]
        assert u.level in unit_types[u.unit_type].levels
        assert u.name

    count = Counter(u.unit_type for u in units)
    assert count["grid_member"] == 30 and count["community_committee"] == 10 and count["street_office"] == 5
    district_types = [t for t in unit_types.values() if 2 in t.levels]
    for t in district_types:
        assert count[t.code] == 1 + 3, t.code  # the city bureau and three district counterparts
    assert count["telecom"] == 3 and count["power"] == 1

    assert by_code_["U-320400-city_management"].name == "常州市城市管理局"
    assert by_code_["U-320402-city_management"].name == "天宁区城市管理局"
    assert by_code_["U-320481-city_management"].name == "溧阳市城市管理局"
    assert by_code_["U-320491-city_management"].name == "常州经开区城市管理局"
    assert by_code_["U-320402-public_security"].name == "常州市公安局天宁分局"
    assert by_code_["U-320481-public_security"].name == "溧阳市公安局"
    assert by_code_["U-320402-fire_rescue"].name == "天宁区消防救援大队"
    assert by_code_["U-320402001-street_office"].name == "红梅街道办事处"
    assert by_code_["U-320402002-street_office"].name == "郑陆镇人民政府"
    assert by_code_["U-320481002-street_office"].name == "社渚乡人民政府"
    assert by_code_["U-320491001-street_office"].name == "横山桥镇人民政府"
    assert by_code_["U-320402001001-community_committee"].name == "红梅社区居委会"
    assert by_code_["U-320402001002-community_committee"].name == "红梅村村委会"
    assert by_code_["U-320402001001002-grid_member"].name == "红梅社区第2网格网格员"
    assert by_code_["U-320400-power"].name == "国网常州供电公司"
    telecom = [u for u in units if u.unit_type == "telecom"]
    assert sum(u.primary for u in telecom) == 1
    assert index_units(units)[("320400", "telecom")][0].primary


def test_demo_units_are_deterministic(unit_types, patterns):
    recs = small_city()
    assert demo_units(recs, unit_types, patterns) == demo_units(small_city(), unit_types, patterns)
    # record order within a level decides output order; the set of units never depends on it
    assert set(demo_units(list(reversed(recs)), unit_types, patterns)) == set(demo_units(recs, unit_types, patterns))


def test_data_files_read_the_shipped_catalog_and_patterns(unit_types, catalog, patterns):
    assert files.unit_types() == unit_types and files.catalog() == catalog and files.unit_patterns() == patterns


def test_node_forms():
    assert node_form(2, "溧阳市") == "county" and node_form(2, "天宁区") == "district"
    assert node_form(2, "常州经开区") == "district"
    assert node_form(3, "郑陆镇") == "town" and node_form(3, "红梅街道") == "street"
    assert node_form(3, "某地", {"kind": "镇"}) == "town"
    assert node_form(4, "某村") == "village" and node_form(4, "某村", {"kind": "社区"}) == "community"
    assert node_form(5, "第1网格") == "grid"


def test_routing_finds_a_unit_for_every_category_in_every_grid_of_the_small_city(catalog, unit_types,
                                                                                 patterns):
    recs = small_city()
    _assert_routable(recs, demo_units(recs, unit_types, patterns), catalog, unit_types)


def test_find_unit_walks_up_when_the_level_has_no_unit(unit_types, patterns):
    recs = small_city()
    units = [u for u in demo_units(recs, unit_types, patterns)
             if not (u.unit_type == "city_management" and u.area_code == "320481")]
    index = index_units(units)
    chain = chain_of("320481001001001", by_code(recs))
    assert find_unit(index, chain, "city_management", 2).code == "U-320400-city_management"
    assert find_unit(index, chain, "street_office", 3).code == "U-320481001-street_office"
    # chains given as API dicts, in any order
    dicts = [{"code": r.code, "level": r.level} for r in reversed(chain)]
    assert find_unit(index, dicts, "grid_member", 5).code == "U-320481001001001-grid_member"
    assert find_unit(index, dicts, "grid_member", 4) is None  # never below the handling level


def test_bad_unit_patterns_are_refused(unit_types, patterns):
    def refused(mutate):
        p = json.loads(json.dumps(patterns))
        mutate(p)
        with pytest.raises(CatalogError) as info:
            demo_units(small_city(), unit_types, p)
        return str(info.value)

    assert "{borough}" in refused(lambda p: p["patterns"]["district"].update(city_management="{borough}城管局"))
    assert "plumber" in refused(lambda p: p["patterns"]["district"].update(plumber="{district}水管工"))
    assert "不设在第 3 级" in refused(lambda p: p["patterns"]["street"].update(grid_member="{street}网格员"))
    assert "hamlet" in refused(lambda p: p["patterns"]["community"]["community_committee"].update(hamlet="x"))
    assert "key" in refused(lambda p: p["utilities"].append({"unit_type": "power", "name": "另一家供电公司"}))
    assert "市级" in refused(lambda p: p["city_units"].append({"unit_type": "grid_member", "name": "市网格员"}))


def test_missing_patterns_fall_back_to_the_type_name(unit_types):
    units = demo_units(small_city(), unit_types, {"city_units": [], "utilities": [], "patterns": {}})
    by_code_ = {u.code: u for u in units}
    assert by_code_["U-320400-city_management"].name == "常州市城市管理局"
    assert by_code_["U-320402-city_management"].name == "天宁区城市管理局"
    assert by_code_["U-320402001001001-grid_member"].name.endswith("网格员")


def test_unit_patterns_file_is_json_with_the_city_level_bodies(patterns):
    names = {e["name"] for e in patterns["city_units"] + patterns["utilities"]}
    assert {"常州市城市管理局", "常州市应急管理局", "国网常州供电公司", "常州通用自来水有限公司",
            "常州港华燃气有限公司"} <= names
    assert UNIT_PATTERNS_PATH.exists() and CATEGORIES_PATH.exists() and UNIT_TYPES_PATH.exists()


# ----------------------------------------------------------------------------------------
# the demo city

@pytest.fixture(scope="module")
def demo_city(request):
    pytest.importorskip("demo.city")
    return request.getfixturevalue("demo_records")


def test_demo_city_units(demo_city, unit_types, patterns):
    t0 = time.perf_counter()
    units = demo_units(demo_city, unit_types, patterns)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"demo_units took {elapsed:.2f} s"

    levels = Counter(r.level for r in demo_city)
    assert levels == {1: 1, 2: 7, 3: 62, 4: 1030, 5: 5891}
    count = Counter(u.unit_type for u in units)
    assert count["grid_member"] == 5891
    assert count["street_office"] == 62
    assert count["community_committee"] == 1030
    assert len({u.code for u in units}) == len(units)

    per_area = Counter((u.area_code, u.unit_type) for u in units)
    for r in demo_city:
        if r.level == 5:
            assert per_area[(r.code, "grid_member")] == 1
        elif r.level == 4:
            assert per_area[(r.code, "community_committee")] == 1
        elif r.level == 3:
            assert per_area[(r.code, "street_office")] == 1
        elif r.level == 2:
            for t in unit_types.values():
                if 2 in t.levels:
                    assert per_area[(r.code, t.code)] == 1, (r.name, t.code)
        else:
            for t in unit_types.values():
                if 1 in t.levels:
                    assert per_area[(r.code, t.code)] >= 1, t.code

    names = {u.name for u in units}
    assert {"常州市城市管理局", "溧阳市城市管理局", "天宁区城市管理局", "武进区应急管理局",
            "常州经开区城市管理局", "国网常州供电公司"} <= names
    streets = [u for u in units if u.unit_type == "street_office"]
    assert any(u.name.endswith("街道办事处") for u in streets)
    assert any(u.name.endswith("镇人民政府") for u in streets)
    committees = [u for u in units if u.unit_type == "community_committee"]
    assert any(u.name.endswith("社区居委会") for u in committees)
    assert any(u.name.endswith("村村委会") for u in committees)
    assert all(len(u.code) <= 40 for u in units)  # data.models.Unit.code is String(40)


def test_demo_city_every_grid_can_route_every_category(demo_city, catalog, unit_types, patterns):
    _assert_routable(demo_city, demo_units(demo_city, unit_types, patterns), catalog, unit_types)


def _assert_routable(records, units, catalog, unit_types):
    """Every category's unit type has a unit at its handling level for every grid (and the
    assisting types of emergencies have one at or above their deepest level)."""
    index = index_units(units)
    recs = by_code(records)
    needs = {(c.unit_type, c.level) for c in catalog.values()}
    assists = {(a, max(unit_types[a].levels)) for c in catalog.values() for a in c.assist_unit_types}
    grids = [r for r in records if r.level == 5]
    assert grids
    for g in grids:
        chain = chain_of(g.code, recs)
        assert [n.level for n in chain] == [5, 4, 3, 2, 1]
        for unit_type, level in needs:
            unit = find_unit(index, chain, unit_type, level)
            assert unit is not None, (g.code, unit_type, level)
            assert unit.level == level, (g.code, unit_type, level, unit)
        for unit_type, level in assists:
            assert find_unit(index, chain, unit_type, level) is not None, (g.code, unit_type)


# ----------------------------------------------------------------------------------------
# pure Python

def test_dispatch_catalog_and_units_import_no_web_or_database_framework():
    code = ("import sys, dispatch.catalog, dispatch.units; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('flask', 'dash', 'socketio', 'flask_socketio', 'sqlalchemy', 'engineio')]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ----------------------------------------------------------------------------------------
# the catalog against GB/T 30428.2 (docs/dispatch.md, "Catalog against GB/T 30428.2")

# the standard's major classes (大类), as the tables found number and name them
STANDARD_COMPONENT_CLASSES = {"01": "公用设施", "02": "道路交通", "03": "市容环境", "04": "园林绿化",
                              "05": "房屋土地", "06": "其他设施"}
STANDARD_EVENT_CLASSES = {"01": "市容环境", "02": "宣传广告", "03": "施工管理", "04": "突发事件", "05": "街面秩序"}


def test_components_and_events_sit_in_the_standards_major_classes(catalog):
    for c in catalog.values():
        if c.kind not in ("component", "event"):
            assert c.standard_code == "", c
            continue
        classes = STANDARD_COMPONENT_CLASSES if c.kind == "component" else STANDARD_EVENT_CLASSES
        mm, nn = c.code[2:4], int(c.code[4:])
        if mm in classes:
            assert c.major_class == classes[mm], c
        else:  # a local extension class, numbered from 21 as the tables found do
            assert int(mm) >= 21 and c.standard_code == "", c
            continue
        if nn < 51:  # the standard's own minor category: the code says which
            assert c.standard_code == c.code[2:], c
        elif c.standard_code:  # a local refinement of a standard minor category of the same class
            assert c.standard_code[:2] == mm and c.standard_code != c.code[2:], c


def test_the_standards_classes_are_all_there(catalog):
    by_major = Counter(c.major_code for c in catalog.values())
    for mm in STANDARD_COMPONENT_CLASSES:
        assert by_major["01" + mm] >= 1, mm
    for mm in STANDARD_EVENT_CLASSES:
        assert by_major["02" + mm] >= 1, mm
    other = [c for c in catalog.values() if c.major_code == "0106"]
    assert len([c for c in other if c.standard_code]) >= 3  # 其他设施 with real minor categories
    by_name = {c.name: c for c in catalog.values()}
    # the corrections the review asked for: 04 突发事件, 05 街面秩序, 景观灯 a public utility, …
    assert by_name["路面积水"].code == "020406" and by_name["占道经营"].major_class == "街面秩序"
    assert by_name["路灯不亮"].code == "010118" and by_name["景观灯损坏"].code == "010120"
    assert by_name["违法搭建"].code == "020101" and by_name["暴露垃圾"].code == "020102"
    assert by_name["供水管道渗漏"].kind == "event" and by_name["工地围挡破损"].major_class == "其他设施"


@pytest.mark.parametrize("standard, words", [
    ("0102", ["0102", "大类 01", "大类 02"]),   # the code 020102 sits in event class 01, not 02
    ("12a4", ["4 位数字"]),
])
def test_a_standard_code_outside_the_rows_class_is_refused(tmp_path, unit_types, standard, words):
    header = HEADER + ",standard_code"
    lines = [GOOD[0] + ",0102", "020202,违规户外广告,宣传广告,event,未经审批,拆除,city_management,2,5,working_days,"
             f"working,normal,,,{standard}"]
    err = _refused(_write(tmp_path, lines, header=header), unit_types)
    assert {line for line, _ in err.errors} == {3}
    for w in words:
        assert w in str(err), (w, str(err))


def test_a_grid_event_has_no_standard_code(tmp_path, unit_types):
    header = HEADER + ",standard_code"
    err = _refused(_write(tmp_path, [GOOD[1] + ",0301"], header=header), unit_types)
    assert "部件和事件" in str(err)


# ----------------------------------------------------------------------------------------
# code changes

def test_shipped_code_changes_load_and_lead_to_current_codes(catalog):
    changes = files.code_changes(catalog)
    assert len(changes) >= 70
    moves = {(ch.old_code, ch.old_name): ch.new_code for ch in changes}
    assert moves[("020101", "暴露垃圾")] == "020102" and moves[("020301", "违法搭建")] == "020101"
    assert moves[("020501", "路面积水")] == "020406" and moves[("020401", "占道经营")] == "020551"
    assert moves[("010111", "供水管道渗漏")] == "020402"
    for ch in changes:
        assert catalog[ch.new_code], ch
        assert ch.reason, ch
    # one owner per old code at a time: a code is never renamed to two places from the same name
    assert len(moves) == len(changes)


def test_bad_code_changes_are_all_listed(tmp_path, catalog):
    from dispatch.catalog import load_code_changes

    path = _write(tmp_path, [
        "020101,暴露垃圾,020102,ok",
        "020101,违法搭建,020199,仍是现行类别、新编码不存在",  # line 3: two problems
        "02010,X,020102,编码无效",                          # line 4
        "020101,暴露垃圾,020103,重复",                       # line 5
        "020999,旧类别,020999,相同",                        # line 6: not in the catalog
        "020998,,020102,没有旧名称",                         # line 7
    ], "code_changes.csv", "old_code,old_name,new_code,reason")
    err = _refused(path, loader=lambda p: load_code_changes(p, catalog))
    assert sorted({line for line, _ in err.errors}) == [3, 4, 5, 6, 7]
    text = str(err)
    assert "仍是现行类别" in text and "020199" in text and "重复" in text and "旧名称" in text


# ----------------------------------------------------------------------------------------
# routing exceptions by area

def test_shipped_routing_exceptions_send_the_street_lights_of_three_districts_to_the_city(catalog, unit_types,
                                                                                          demo_city):
    rules = files.routing_exceptions(catalog, unit_types, area_codes=[r.code for r in demo_city])
    lights = {(e.category, e.area_code) for e in rules if e.unit_type == "street_lighting"}
    for district in ("320402", "320404", "320411"):  # 天宁, 钟楼, 新北
        for code in ("010118", "010152", "010120"):  # 路灯不亮, 路灯杆体破损, 景观灯损坏
            assert (code, district) in lights
    assert unit_types["street_lighting"].levels == (1,)
    assert all(e.reason for e in rules)


def test_bad_routing_exceptions_are_all_listed(tmp_path, catalog, unit_types):
    from dispatch.catalog import load_routing_exceptions

    path = _write(tmp_path, [
        "010118,320402,street_lighting,1,天宁区路灯由市城市照明管理处管养",
        "019999,320402,street_lighting,1,未知类别",         # 3
        "010118,329999,street_lighting,1,未知区域",         # 4
        "010118,320404,lamp_office,1,未知单位类型",          # 5
        "010118,320411,street_lighting,2,不设在区级",        # 6
        "040101,320402,fire_rescue,1,应急事件",             # 7
        "010118,320402,city_management,1,重复",             # 8
        "0101,320412,city_management,2,",                  # 9: no reason
    ], "routing_exceptions.csv", "category,area_code,unit_type,level,reason")
    err = _refused(path, loader=lambda p: load_routing_exceptions(p, catalog, unit_types,
                                                                  ["320400", "320402", "320404", "320411", "320412"]))
    assert sorted({line for line, _ in err.errors}) == [3, 4, 5, 6, 7, 8, 9]
    text = str(err)
    for w in ("019999", "329999", "lamp_office", "不设在第 2 级", "应急事件", "重复", "原因"):
        assert w in text, w
    # without the hierarchy the areas are not checked (the database has them, not the file)
    assert len(load_routing_exceptions(_write(tmp_path, ["010118,329999,street_lighting,1,某区"], "ok.csv",
                                                      "category,area_code,unit_type,level,reason"),
                                       catalog, unit_types)) == 1
