"""Device types as data (data/catalog/device_types.json, dispatch/devices.py): the shipped file, its defaults,
and every kind of defect the checker reports."""
from __future__ import annotations

import copy
import json

import pytest

from data import files
from dispatch.devices import DeviceTypesError, Predicate, device_types_from_data

TYPES = ("manhole_cover", "water_gauge", "gas_detector", "street_light", "bridge_sensor", "video_ai")


@pytest.fixture(scope="module")
def shipped():
    return files.device_types()


@pytest.fixture(scope="module")
def raw():
    return json.loads(files.DEVICE_TYPES_PATH.read_text(encoding="utf-8"))


def rule(types, code):
    return next(r for t in types.values() for r in t.rules if r.code == code)


def test_the_shipped_types_have_their_keys(shipped):
    assert tuple(shipped) == TYPES
    keys = {code: [k.key for k in t.keys] for code, t in shipped.items()}
    assert keys == {
        "manhole_cover": ["tilt_deg", "displacement_mm", "water_level_cm", "battery_pct"],
        "water_gauge": ["water_level_cm", "battery_pct"],
        "gas_detector": ["gas_lel_pct", "battery_pct"],
        "street_light": ["lamp_on", "current_a", "fault"],
        "bridge_sensor": ["strain_ue", "displacement_mm", "tilt_deg"],
        "video_ai": ["event", "confidence"],
    }
    assert [t.name for t in shipped.values()] == ["智慧井盖", "积水监测", "燃气监测", "路灯", "桥梁结构", "视频 AI"]
    assert all(t.offline_after_s > 0 and t.rules for t in shipped.values())
    cover = shipped["manhole_cover"]
    assert cover.key("tilt_deg").unit == "°" and cover.key("battery_pct").high == 100
    assert shipped["street_light"].key("lamp_on").kind == "bool"
    assert shipped["video_ai"].key("event").kind == "string"


def test_the_issues_defaults(shipped):
    tilt = rule(shipped, "cover_tilt")
    assert (tilt.severity, tilt.condition.type, tilt.condition.seconds) == ("critical", "duration", 2)
    assert tilt.condition.predicates == (Predicate("tilt_deg", ">", 15),)
    assert rule(shipped, "water_ponding").condition.predicates == (Predicate("water_level_cm", ">", 10),)
    l1, l2 = rule(shipped, "gas_level1"), rule(shipped, "gas_level2")
    assert (l1.severity, l1.condition.predicates) == ("major", (Predicate("gas_lel_pct", ">=", 20),))
    assert (l2.severity, l2.condition.predicates) == ("critical", (Predicate("gas_lel_pct", ">=", 50),))
    for code in ("cover_battery_low", "gauge_battery_low", "gas_battery_low"):
        assert rule(shipped, code).condition.predicates == (Predicate("battery_pct", "<", 20),)
        assert rule(shipped, code).dispatch is False


def test_dispatching_rules_name_fitting_catalog_categories(shipped):
    catalog = files.catalog()
    names = {r.code: catalog[r.category].name for t in shipped.values() for r in t.rules if r.dispatch}
    assert names["cover_tilt"] == "井盖缺失"
    assert names["cover_overflow"] == "窨井冒溢"
    assert names["water_ponding"] == "路面积水" and names["water_flooding"] == "城市内涝"
    assert names["gas_level1"] == "燃气井盖破损" and names["gas_level2"] == "燃气泄漏"
    assert catalog["040102"].kind == "emergency" and catalog["040201"].kind == "emergency"  # level 2 opens an emergency
    assert names["light_fault"] == names["light_out"] == "路灯不亮"
    assert all(r.source for t in shipped.values() for r in t.rules)  # every default says where it comes from


def test_conditions_evaluate_readings(shipped):
    tilt = rule(shipped, "cover_tilt")
    assert tilt.condition.holds({"tilt_deg": 20.5}) and not tilt.condition.holds({"tilt_deg": 15})
    assert not tilt.condition.holds({"battery_pct": 50})  # a missing key never satisfies
    assert tilt.clear.holds({"tilt_deg": 3}) and not tilt.clear.holds({"tilt_deg": 10})
    out = rule(shipped, "light_out")
    assert out.condition.holds({"lamp_on": True, "current_a": 0.0})
    assert not out.condition.holds({"lamp_on": 1, "current_a": 0.0})  # 1 is not a flag
    assert not out.condition.holds({"lamp_on": True, "current_a": "0"})  # a string is not a number, and no error
    vendor = rule(shipped, "ai_street_vendor")
    assert vendor.condition.holds({"event": "street_vendor", "confidence": 0.9})
    assert not vendor.condition.holds({"event": "garbage", "confidence": 0.9})
    cover = shipped["manhole_cover"]
    assert cover.key("tilt_deg").valid(45) and not cover.key("tilt_deg").valid(91)
    assert not cover.key("tilt_deg").valid(True) and not cover.key("tilt_deg").valid(float("nan"))
    assert shipped["video_ai"].key("event").valid("smoke") and not shipped["video_ai"].key("event").valid("ufo")


def test_the_api_shape(shipped):
    item = shipped["gas_detector"].to_dict()
    assert set(item) >= {"code", "name", "keys", "rules", "offline_after_s"}
    assert item["keys"][0] == {"key": "gas_lel_pct", "name": "可燃气体浓度", "unit": "%LEL", "kind": "number",
                               "range": [0.0, 100.0]}
    r = item["rules"][0]
    assert r["condition"] == {"type": "repeating", "all": [{"key": "gas_lel_pct", "op": ">=", "value": 20}], "count": 2}
    assert (r["dispatch"], r["category"], r["severity"]) == (True, "010111", "major")
    json.dumps(item)  # plain JSON


def _problems(data, **kw) -> list[str]:
    with pytest.raises(DeviceTypesError) as err:
        device_types_from_data(data, **kw)
    return err.value.problems


def test_every_defect_is_reported_at_once(raw):
    data = copy.deepcopy(raw)
    cover = data["types"][0]
    tilt = cover["rules"][0]
    tilt["severity"] = "fatal"                                     # unknown severity
    tilt["clear"]["all"][0]["value"] = 15                          # clear meets the condition: no hysteresis
    cover["rules"][1]["condition"]["all"][0]["key"] = "speed"      # not a key of the type
    cover["rules"][2]["condition"]["count"] = 1                    # repeating needs at least two
    cover["rules"][3]["category"] = "999999"                       # not in the catalog
    cover["rules"][4]["condition"]["all"][0]["value"] = 120        # beyond the key's range
    data["types"][1]["code"] = "manhole_cover"                     # duplicate type code
    data["types"][2]["offline_after_s"] = 0
    data["types"][3]["rules"][0]["condition"]["all"][0]["op"] = ">"  # a flag compared by size
    data["types"][5]["keys"][0]["values"] = []
    problems = _problems(data, category_codes=set(files.catalog()), unit_type_codes=set(files.unit_types()))
    text = "\n".join(problems)
    for needle in ("severity 须为", "解除条件与触发条件重叠", "遥测键 'speed' 不是本类型的键", "count（2–1000",
                   "事件类别 999999 不在事件目录", "阈值 120 超出该键的有效范围", "类型编码 manhole_cover 重复",
                   "offline_after_s", "只能用 == 或 !=", "values 须为非空文本数组"):
        assert needle in text, needle
    assert len(problems) >= 10


@pytest.mark.parametrize("change, needle", [
    (lambda d: d["types"][0]["rules"][0].update(dispatch=True, category=None), "dispatch 为 true 时须给出 category"),
    (lambda d: d["types"][0]["rules"][0].pop("source"), "source（默认阈值的出处）"),
    (lambda d: d["types"][0]["rules"][0]["condition"].update(type="duration", seconds=-1), "seconds"),
    (lambda d: d["types"][0]["keys"][0].update(range=[10, 5]), "有效范围"),
    (lambda d: d["types"][0].update(unit_types=["nobody"]), "未知的单位类型 nobody"),
    (lambda d: d["types"][0]["rules"][1].update(code="cover_tilt"), "规则编码 cover_tilt 重复"),
    (lambda d: d["types"][4]["rules"][0]["clear"]["all"][0].update(op="<", value=400), "回差"),
    (lambda d: d["types"][5]["rules"][0]["clear"]["all"][0].update(op="!=", value="garbage"), "重叠"),
    (lambda d: d.update(types=[]), "非空数组 types"),
    # the alarms' fields (docs/devices.md, Alarms)
    (lambda d: d["types"][2]["rules"][1].pop("case_severity"), "是应急事件，须给出 case_severity"),
    (lambda d: d["types"][2]["rules"][0].update(case_severity=4), "只有应急事件类别才有 case_severity"),
    (lambda d: d["types"][2]["rules"][1].update(case_severity=5), "case_severity（应急事件等级）须为 1–4"),
    (lambda d: d["types"][0]["rules"][4].update(code="offline"), "保留给离线告警"),
    (lambda d: d["types"][0].update(offline_alarm={"severity": "fatal"}), "离线告警的 severity"),
    (lambda d: d["types"][0].update(offline_alarm={"category": "999999"}), "离线告警的事件类别"),
    (lambda d: d["types"][0].update(offline_alarm={"category": "040102"}), "离线告警不能按应急事件类别"),
])
def test_each_defect(raw, change, needle):
    data = copy.deepcopy(raw)
    change(data)
    catalog = files.catalog()
    assert needle in "\n".join(_problems(data, category_codes=set(catalog), unit_type_codes=set(files.unit_types()),
                                         emergency_codes={c for c, cat in catalog.items() if cat.is_emergency}))


def test_the_alarm_fields_of_the_shipped_file(shipped):
    assert {r.code: r.case_severity for t in shipped.values() for r in t.rules if r.case_severity} == {
        "water_flooding": 4, "gas_level2": 4, "ai_smoke": 4}
    assert shipped["gas_detector"].offline_severity == "major"
    assert (shipped["manhole_cover"].offline_severity, shipped["manhole_cover"].offline_category) == ("warning", None)


def test_the_reference_timing_of_the_three_kinds(shipped):
    tilt = rule(shipped, "cover_tilt").condition            # > 15° for 2 s
    assert not tilt.met([(0, {"tilt_deg": 20}), (1.5, {"tilt_deg": 30})])
    assert tilt.met([(0, {"tilt_deg": 20}), (1.5, {"tilt_deg": 30}), (2, {"tilt_deg": 25})])
    assert not tilt.met([(0, {"tilt_deg": 20}), (1, {"tilt_deg": 3}), (2.5, {"tilt_deg": 25})])  # a break restarts it
    assert not tilt.met([(0, {"tilt_deg": 20}), (5, {"tilt_deg": 2})])
    level1 = rule(shipped, "gas_level1").condition          # ≥ 20 %LEL twice in a row
    assert not level1.met([(0, {"gas_lel_pct": 25})])
    assert level1.met([(0, {"gas_lel_pct": 21}), (60, {"gas_lel_pct": 25})])
    assert not level1.met([(0, {"gas_lel_pct": 25}), (60, {"gas_lel_pct": 5}), (120, {"gas_lel_pct": 25})])
    level2 = rule(shipped, "gas_level2").condition          # ≥ 50 %LEL at once
    assert level2.met([(0, {"gas_lel_pct": 55})]) and not level2.met([]) and not level2.met([(0, {})])
    clear = rule(shipped, "gas_level2").clear               # < 20 three times: the band 20–50 neither raises nor clears
    assert not clear.met([(0, {"gas_lel_pct": 30})] * 5)
    assert clear.met([(0, {"gas_lel_pct": 10}), (1, {"gas_lel_pct": 12}), (2, {"gas_lel_pct": 8})])
