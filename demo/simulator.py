"""The demo event stream: realistic intake payloads and the decisions of simulated actors.

Pure Python (standard library, Shapely for the grid polygons, :mod:`dispatch.catalog`,
:mod:`dispatch.working_time` and the rates of :mod:`demo.profile`); nothing here touches a database,
Flask or Dash. The runner that
feeds these through the real case service is :mod:`demo.runner`.

What it produces
----------------
* :func:`rhythm` — the daily rhythm as a rate multiplier (mean 1 over a day): most reports
  8:00–11:00 and 14:00–18:00 Shanghai time, few at night.
* :meth:`Simulator.arrivals` — report times of a non-homogeneous Poisson process of
  ``rate_per_minute × rhythm``.
* :meth:`Simulator.report` — one intake payload (the fields of ``POST /api/v1/events``):
  a category from a realistic mix (mostly city-management events and components, some grid
  events, rare emergencies of severity mostly IV, some III, very rarely II); a position drawn by
  population (a grid chosen with weight = its population, then a uniform point inside the grid
  polygon, triangulated once per grid); a source by category (hotline, patrol, citizen, iot for
  manholes, street lights and other sensed components, video for street order); a Chinese
  description from templates; a reporter phone for hotline and citizen reports; about 3 % of the
  reports repeat a recent one a few metres away (the service's dedupe merges them).
* :meth:`Simulator.next_steps` — what simulated people do next with a case (a case object as the
  service returns it, with ``history``) and when: :class:`Step` rows, earliest first. Every step of
  the lifecycle (dispatch/lifecycle.py) a person takes shows up, at the rates of
  data/demo_history.json (:class:`demo.profile.LifeRates`): 核实 by the grid member, 作废, 退回 then
  改派 or 驳回, 挂账 requests and 解挂, 延期 approved or denied, 协办 with the assisting unit's own sign
  and report, a leader's 督办, 回访 and 重办. The scheduler's automatic 催办/督办 are not people's:
  CaseService.remind_due sends them.

Determinism: one seed gives the same reports for the same calls. The plan for a case depends only
on the seed, the case id and the case's history (not on the order of calls), so a restarted
runner plans the same steps for the same cases.
"""
from __future__ import annotations

import bisect
import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from typing import Callable, Collection, Iterable, Mapping, Sequence

from demo.profile import LifeRates, load_profile
from dispatch.catalog import Category
from dispatch.working_time import WorkCalendar
from dispatch.city_time import CITY_TZ

__all__ = [
    "DUPLICATE_RATE",
    "KIND_SHARES",
    "SEVERITY_SHARES",
    "Simulator",
    "Step",
    "rhythm",
]

UTC = timezone.utc

# ----------------------------------------------------------------------------------------
# the daily rhythm

# Relative report volume per local hour (Asia/Shanghai), 0:00 … 23:00; normalised below to mean 1.
_HOURLY = (0.16, 0.10, 0.08, 0.07, 0.08, 0.15, 0.35, 0.80,
           1.75, 2.15, 2.20, 1.80, 1.00, 1.05, 1.75, 2.00,
           2.05, 2.00, 1.55, 0.90, 0.70, 0.55, 0.38, 0.24)
_MEAN = sum(_HOURLY) / 24.0
HOURLY_PROFILE = tuple(h / _MEAN for h in _HOURLY)
RHYTHM_MAX = max(HOURLY_PROFILE)


def rhythm(at: datetime) -> float:
    """The rate multiplier at the aware instant ``at``: the hourly profile read at the local
    (Shanghai) time, interpolated linearly between the middles of the hours. Its mean over a day
    is 1, so ``rate × rhythm`` keeps ``rate`` as the daily average."""
    if at.tzinfo is None:
        raise ValueError("rhythm() needs an aware datetime")
    local = at.astimezone(CITY_TZ)
    h = local.hour + local.minute / 60 + local.second / 3600 - 0.5
    i = math.floor(h)
    frac = h - i
    a, b = HOURLY_PROFILE[i % 24], HOURLY_PROFILE[(i + 1) % 24]
    return a + (b - a) * frac


# ----------------------------------------------------------------------------------------
# the mix

KIND_SHARES = {"event": 0.50, "component": 0.28, "grid": 0.20, "emergency": 0.02}
# emergencies: severity IV (一般) mostly, some III (较大), very rarely II (重大), never I here
SEVERITY_SHARES = {4: 0.82, 3: 0.16, 2: 0.02}
DUPLICATE_RATE = 0.03
# a duplicate repeats one of the reports of the last three hours (well inside the service's window)
DUPLICATE_WINDOW = timedelta(hours=3)

# Relative frequency of a minor category within its kind, by name (default 1). Names, not codes,
# so that another city's catalog with the usual names gets the same flavour.
_CATEGORY_WEIGHT = {
    # events
    "暴露垃圾": 9, "占道经营": 7, "机动车乱停放": 7, "非法小广告": 6, "道路不洁": 5, "垃圾满溢": 5,
    "乱堆物堆料": 5, "店外经营": 5, "共享单车乱停放": 4, "非机动车乱停放": 4, "无照经营游商": 3,
    "社会生活噪声扰民": 3, "违法搭建": 2, "渣土撒漏": 2, "工地扬尘": 2, "施工占道": 1.5,
    "餐饮油烟扰民": 1.5, "积存垃圾渣土": 2, "露天烧烤": 1.5, "沿街晾挂": 2, "违规悬挂横幅": 1.5,
    "路面积水": 1.2, "违规散发传单": 0.8, "黑车揽客": 0.6, "价格违法": 0.4, "违法排污": 0.5,
    "露天焚烧秸秆": 0.4, "动物尸体": 0.6, "道路积雪结冰": 0.3,
    "专项整治": 0,  # a campaign is tasked from a warning (foresight/warnings.py), never reported
    # components
    "路灯不亮": 7, "人行道破损": 4, "雨水箅子破损": 3, "污水井盖破损": 3, "车行道破损": 3,
    "果壳箱破损": 3, "道路护栏损坏": 2, "绿地设施损坏": 2, "架空线缆杂乱": 2, "井盖缺失": 1.5,
    "交通标志牌损坏": 1.5, "行道树缺株枯死": 1.5, "公共厕所设施损坏": 1.5, "交通信号灯故障": 1,
    "危险房屋": 0.3, "废弃构筑物": 0.4, "地面沉降裂缝": 0.4, "燃气调压设施损坏": 0.3,
    # 其他设施 (GB/T 30428.2 class 06): building sites often, water-side facilities now and then
    "工地围挡破损": 1.5, "水域护栏损坏": 0.8, "水域附属设施损坏": 0.6, "防汛墙破损": 0.2,
    "重大危险源设施损坏": 0.15,
    # grid events
    "楼道堆物": 5, "电动自行车违规充电": 4, "邻里纠纷": 4, "消防通道堵塞": 3, "物业纠纷": 3,
    "小区公共设施报修": 3, "不文明养犬": 2, "出租房屋未登记": 2, "实有人口信息变更": 2,
    "群租房": 1.5, "困难群众求助": 1.5, "毁绿种菜": 1.5, "信访苗头": 0.4, "群体性事件苗头": 0.15,
    "治安隐患线索": 0.6, "土地宅基地纠纷": 0.5,
    # emergencies
    "道路交通事故": 6, "电梯困人": 4, "火灾": 3, "燃气泄漏": 1.5, "大风树木倒伏": 1.2,
    "供水管网爆管": 1, "城市内涝": 0.8, "高空坠物险情": 1, "人员落水": 0.6, "危险化学品泄漏": 0.2,
    "建筑物坍塌": 0.15, "群体性食物中毒": 0.2, "山体滑坡": 0.1, "暴雪冰冻": 0.2,
    "有限空间中毒窒息": 0.2, "大面积停电": 0.2, "突发水污染": 0.2, "群体性事件": 0.15,
    "道路大面积塌陷": 0.2,
}

# components a sensor watches (smart manhole covers, lamp controllers, hydrant pressure, …)
_IOT_WORDS = ("井盖", "箅子", "路灯", "景观灯", "消火栓", "管道", "燃气", "电力", "信号灯")
# events the video AI recognises
_VIDEO_CLASSES = ("街面秩序",)
_VIDEO_WORDS = ("乱停放", "占道", "暴露垃圾", "垃圾满溢", "渣土车", "焚烧", "沿街晾挂")
_EMERGENCY_IOT_WORDS = ("燃气", "内涝", "爆管", "停电", "水污染")


def _source_weights(cat: Category) -> dict[str, float]:
    name = cat.name
    if cat.kind == "component":
        if any(w in name for w in _IOT_WORDS):
            return {"iot": 0.40, "patrol": 0.35, "hotline": 0.13, "citizen": 0.12}
        return {"patrol": 0.55, "hotline": 0.20, "citizen": 0.25}
    if cat.kind == "event":
        if cat.major_class in _VIDEO_CLASSES or any(w in name for w in _VIDEO_WORDS):
            return {"video": 0.35, "patrol": 0.35, "hotline": 0.15, "citizen": 0.15}
        return {"patrol": 0.45, "hotline": 0.30, "citizen": 0.25}
    if cat.kind == "grid":
        return {"patrol": 0.62, "hotline": 0.28, "citizen": 0.10}
    if any(w in name for w in _EMERGENCY_IOT_WORDS):
        return {"hotline": 0.55, "iot": 0.20, "video": 0.10, "patrol": 0.15}
    return {"hotline": 0.65, "video": 0.15, "patrol": 0.20}


# ----------------------------------------------------------------------------------------
# words

_PHONE_PREFIXES = ("139", "138", "137", "136", "135", "150", "151", "152", "157", "158", "159",
                   "182", "187", "188", "130", "131", "132", "155", "156", "185", "186", "133",
                   "153", "177", "180", "181", "189", "199", "198")

_SPOTS = ("小区南门口", "小区北门外", "菜市场门口", "公交站台旁", "十字路口东北角", "沿街商铺前",
          "学校门口", "幼儿园附近", "河边步道", "停车场入口", "{n}号楼下", "{n}幢楼道内", "广场西侧",
          "地铁站出口", "农贸市场东侧", "社区服务中心旁", "超市门前", "桥下", "公园入口",
          "老新村内", "小区{n}号门岗旁", "医院门诊楼对面", "加油站附近", "工地围挡外")

_TEXTS: dict[str, tuple[str, ...]] = {
    "暴露垃圾": ("有生活垃圾散落在路边无人清理，散发异味", "堆放垃圾袋约{n}袋，影响市容", "绿化带内有暴露垃圾"),
    "积存垃圾渣土": ("空地上积存建筑垃圾和渣土，约{n}立方米", "长期堆积装修垃圾未清运"),
    "道路不洁": ("路面有大量泥浆和杂物，行人反映脏乱", "人行道上油污明显，未清扫"),
    "垃圾满溢": ("垃圾桶已满溢，垃圾散落一地", "{n}个垃圾桶满溢未及时清运"),
    "乱堆物堆料": ("有人在人行道上堆放建材杂物", "沿街堆放废旧家具和纸板，占用通道"),
    "焚烧垃圾树叶": ("有人焚烧垃圾树叶，烟雾较大", "空地上焚烧杂物，气味刺鼻"),
    "水域不洁": ("河面漂浮垃圾和水草较多", "河道内有白色垃圾漂浮"),
    "绿地脏乱": ("绿地内烟头纸屑较多，无人清扫", "绿化带内堆有杂物"),
    "公厕保洁不到位": ("公厕地面湿滑、异味严重", "公共厕所纸篓满溢，保洁不到位"),
    "动物尸体": ("路边有动物尸体，影响卫生", "路中间有一只死猫"),
    "垃圾分类投放不规范": ("分类垃圾桶混投严重", "垃圾投放点周边乱扔垃圾"),
    "沿街晾挂": ("沿街店铺在行道树上晾晒衣物", "临街阳台外晾挂被褥影响市容"),
    "非法小广告": ("墙面和电线杆上张贴大量小广告", "有人在楼道内喷涂办证小广告", "配电箱上贴满疏通下水道广告"),
    "违规户外广告": ("新装一块未经审批的户外广告牌", "楼顶广告牌无审批手续"),
    "占道广告牌": ("店家把广告牌摆在人行道上", "{n}块落地广告牌占用盲道"),
    "违规悬挂横幅": ("路口私自悬挂商业横幅", "行道树之间拉挂促销横幅"),
    "违规散发传单": ("有人在路口向行人散发传单", "车辆挡风玻璃被插满小卡片"),
    "违法搭建": ("楼顶正在搭建彩钢板房", "一楼住户在院内违法搭建房屋，正在施工", "沿街商户私自搭建雨棚"),
    "渣土撒漏": ("渣土车经过后路面撒漏大量泥土", "路面有渣土撒漏约{n}米"),
    "渣土车未密闭": ("渣土车未盖篷布行驶", "渣土车未密闭运输，沿途掉落"),
    "施工占道": ("施工围挡占用了整条人行道", "施工材料堆放在机动车道上"),
    "工地扬尘": ("工地未覆盖裸土，扬尘严重", "工地出入口车辆未冲洗，尘土飞扬"),
    "夜间施工噪声": ("夜间十点后仍在施工，噪声扰民", "工地夜间打桩，居民无法休息"),
    "占道经营": ("有流动摊贩占用人行道经营水果", "早点摊占道经营，影响通行", "{n}个摊位占道卖菜"),
    "无照经营游商": ("三轮车游商沿街叫卖", "有无照游商在路口摆摊"),
    "店外经营": ("饭店在店门外摆放桌椅经营", "商户把货物摆到店外人行道上"),
    "露天烧烤": ("夜宵摊露天烧烤，油烟很大", "店外设烤炉露天烧烤"),
    "机动车乱停放": ("机动车停放在人行道上，行人无法通过", "{n}辆汽车违停在消防通道入口", "车辆长期占用盲道停放"),
    "非机动车乱停放": ("电动车乱停放堵塞人行道", "非机动车停放杂乱，占用盲道"),
    "共享单车乱停放": ("共享单车大量堆积，占用人行道", "共享单车倒伏一片，影响通行"),
    "黑车揽客": ("车站出口有黑车拉客", "有私家车长期在路口揽客"),
    "社会生活噪声扰民": ("广场舞音响声音过大，扰民", "商铺门口大音量播放促销广告"),
    "餐饮油烟扰民": ("饭店油烟直排，楼上住户反映强烈", "餐饮店未装油烟净化设施"),
    "路面积水": ("降雨后路面积水约{n}厘米，行人车辆通行困难", "下穿通道积水"),
    "道路塌陷": ("路面出现塌陷坑，约{n}平方米", "人行道局部塌陷"),
    "窨井冒溢": ("窨井冒溢，污水漫到路面", "雨水井向外冒水"),
    "路面障碍物": ("路中间有掉落的货物，影响行车", "路面有大块石头"),
    "井盖缺失": ("人行道上井盖缺失，存在安全隐患", "机动车道井盖缺失，已有车辆险些掉入"),
    "上水井盖破损": ("供水井盖破损，踩上去晃动", "阀门井盖松动发响"),
    "污水井盖破损": ("污水井盖破裂", "污水井盖凹陷，高差明显"),
    "雨水箅子破损": ("雨水箅子断裂，容易卡住车轮", "雨水箅子缺失一块"),
    "燃气井盖破损": ("燃气井盖破损", "燃气阀门井盖移位"),
    "路灯不亮": ("一排路灯晚上不亮，路段漆黑", "{n}盏路灯不亮", "路灯时亮时灭"),
    "路灯杆体破损": ("路灯杆被车撞歪，有倒伏危险", "路灯杆检修门缺失，电线外露"),
    "消火栓损坏": ("消火栓被撞倒漏水", "消火栓出水口盖缺失"),
    "供水管道渗漏": ("路面有清水持续冒出，疑似供水管道渗漏", "人行道砖缝渗水"),
    "人行道破损": ("人行道地砖松动破损，老人容易绊倒", "人行道塌陷破损约{n}平方米"),
    "车行道破损": ("机动车道出现坑槽", "路面开裂破损，车辆颠簸"),
    "交通信号灯故障": ("路口信号灯不亮，交通混乱", "信号灯一直黄闪"),
    "交通标志牌损坏": ("交通标志牌被撞弯", "标志牌倾斜，遮挡视线"),
    "道路护栏损坏": ("中央隔离护栏被撞倒{n}节", "人行道护栏断裂"),
    "果壳箱破损": ("果壳箱被撞坏", "果壳箱盖子缺失"),
    "公共厕所设施损坏": ("公厕水龙头损坏一直漏水", "公厕门锁坏了"),
    "绿地设施损坏": ("绿地内座椅损坏", "公园健身器材损坏"),
    "行道树倒伏": ("大风后行道树倒伏，压住人行道", "行道树倾斜，随时可能倒下"),
    "行道树缺株枯死": ("行道树枯死{n}棵", "树穴缺株"),
    "架空线缆杂乱": ("架空线缆垂落到人头高度", "线缆杂乱缠绕在树上"),
    "工地围挡破损": ("工地围挡被风刮倒{n}米", "工地围挡缺失一段，裸土外露"),
    "水域护栏损坏": ("河边护栏断了一段，小孩容易掉下去", "湖边护栏倾倒{n}米"),
    "水域附属设施损坏": ("河道亲水平台台阶破损", "河岸护坡石块松动塌落"),
    "防汛墙破损": ("沿河防汛墙出现裂缝，有渗水", "防汛墙闸口挡板缺失"),
    "重大危险源设施损坏": ("加油站围墙倒塌一段，警示牌缺失", "危化品仓库外警示标志损坏"),
    "楼道堆物": ("楼道内堆放杂物，堵塞通道", "{n}楼楼道堆满纸箱"),
    "电动自行车违规充电": ("居民从楼上拉电线给电动车充电", "电动车停在楼道内充电"),
    "消防通道堵塞": ("消防通道被车辆和杂物堵塞", "小区消防通道被锁"),
    "邻里纠纷": ("两户邻居因漏水问题发生争执", "邻居因噪音问题多次争吵"),
    "家庭纠纷": ("家庭成员因赡养问题发生纠纷", "夫妻吵架，邻居报告"),
    "物业纠纷": ("业主与物业因停车费发生纠纷", "物业未及时维修，业主不满"),
    "劳资纠纷": ("{n}名工人反映被拖欠工资", "店铺员工反映工资未发"),
    "群租房": ("一套房屋住了{n}人以上，疑似群租", "房屋被隔成多个小间出租"),
    "出租房屋未登记": ("新出租房屋未登记", "出租房屋承租人信息未报备"),
    "不文明养犬": ("有人遛狗不牵绳", "小区内犬只粪便未清理"),
    "小区公共设施报修": ("小区单元门禁损坏", "小区路灯损坏"),
    "毁绿种菜": ("居民在公共绿地种菜", "绿化带被开垦种菜"),
    "道路交通事故": ("两车追尾，有人员受伤", "电动车与汽车相撞，一人倒地", "多车碰撞，道路拥堵"),
    "电梯困人": ("电梯故障困人，{n}人被困", "电梯停在两层之间，有人被困"),
    "火灾": ("居民楼起火冒烟", "沿街商铺着火，浓烟较大", "车辆自燃"),
    "燃气泄漏": ("闻到明显燃气味，疑似泄漏", "施工挖断燃气管道"),
    "大风树木倒伏": ("大树倒伏压住车辆", "大风刮倒树木阻断道路"),
    "供水管网爆管": ("供水主管爆裂，路面大量冒水", "爆管导致周边小区停水"),
    "城市内涝": ("道路积水没过膝盖，车辆熄火", "地下车库进水"),
    "高空坠物险情": ("外墙瓷砖松动有坠落危险", "高层阳台花盆随时可能坠落"),
    "人员落水": ("有人落水，群众正在施救", "河边有小孩落水"),
}

_GENERIC = {
    "component": ("发现{name}，请相关单位尽快处理", "{name}，已影响正常使用"),
    "event": ("发现{name}问题，请尽快处理", "群众反映{name}，影响周边环境"),
    "grid": ("网格员巡查发现{name}，需协调处理", "居民反映{name}"),
    "emergency": ("发生{name}，请立即处置", "现场报告{name}，请求支援"),
}

REJECT_REASONS = ("经核实不属于城市管理受理范围，已告知来电人", "现场核查未发现所述问题",
                  "信息不全无法定位，已回访上报人未果", "属于小区物业管理区域内部事务，已转物业处理",
                  "与已办结案件为同一问题，不予重复立案")
RETURN_REASONS = ("经现场核实不属于本单位职责，请重新派遣", "地址有误，不在本单位辖区范围",
                  "涉及多个部门职责，需指挥中心协调", "权属不清，需先明确产权单位")
REWORK_REASONS = ("现场核查仍有残留，未达到结案标准", "处置照片与现场不符，请重新处置",
                  "问题反复出现，需彻底整改", "仅做临时处理，未按结案标准完成")
EXTENSION_REASONS = ("需协调产权单位，申请延期", "需采购材料配件，申请延期", "受天气影响无法施工，申请延期",
                     "涉及多个部门，协调需要时间，申请延期")
SUPERVISE_NOTES = ("群众反映强烈，请责任单位限期办结", "媒体关注，请主要负责人亲自过问，尽快办结",
                   "反复投诉问题，请加快处置并及时反馈")
# 驳回退回: the center sends a returned case back to the same unit
REDISPATCH_NOTES = ("经核实，仍由该单位处置", "已与责任单位沟通，属本单位职责，请继续处置")
REASSIGN_NOTES = ("经核实属属地管理，改派属地单位处置", "职责不符，改派相关责任单位处置", "按权属改派产权单位处置")
VOID_REASONS = ("经核查与已立案案件重复，予以作废", "案件类别选择错误，作废后按正确类别重新立案",
                "上报信息有误，经核实予以作废")
CHECK_NOTES = {"confirmed": "现场核实，情况属实", "unfounded": "现场核实，未发现所反映问题"}
CHECK_REQUEST_NOTE = "请网格员到现场核实"
UNFOUNDED_REJECT = "经网格员现场核实，反映问题不属实，不予立案"
SUSPENSION_REASONS = ("涉及权属争议，需多部门协调，申请挂账", "需纳入年度改造计划统一实施，申请挂账",
                      "当事人失联，待进一步核实，申请挂账")
RESUME_NOTE = "挂账原因已消除，恢复办理"
DENY_SUSPENSION_NOTES = ("不符合挂账条件，请按时限办结", "可先行采取临时措施，不予挂账")
DENY_EXTENSION_NOTES = ("延期理由不充分，请按原时限办结", "可增派人员，不予延期")
ASSIST_SIGN_NOTE = "已签收协办任务"
ASSIST_REPORT_NOTES = ("协办部分已处置完毕，已反馈主办单位", "已配合主办单位完成联合执法", "协办事项已落实，现场照片已上传")
CALLBACK_NOTES = {"satisfied": "回访市民，对处置结果满意", "basically_satisfied": "回访市民，基本满意",
                  "unsatisfied": "回访市民，对处置结果不满意"}
REOPEN_NOTES = ("回访不满意，问题仍未解决，重新办理", "市民反映问题反复出现，重办")


# ----------------------------------------------------------------------------------------
# lifecycle steps

@dataclass(frozen=True)
class Step:
    """One thing a simulated person does: ``action`` (an action of :mod:`dispatch.lifecycle`) at
    ``at`` (aware UTC; may lie before "now" — then it is due), by a person of ``role``
    (duty_officer, unit_handler, leader or grid_member), with ``note``/``hours``/``unit``/``result``/
    ``satisfaction`` as the service's ``act`` takes them. ``by_unit``: the unit of the acting handler
    when it is not the case's lead (an assisting unit, 协办)."""

    action: str
    at: datetime
    role: str
    note: str = ""
    hours: float | None = None
    unit: str | None = None
    result: str | None = None
    satisfaction: str | None = None
    by_unit: str | None = None


OFFICE_ROLE, UNIT_ROLE, LEADER_ROLE, GRID_ROLE = "duty_officer", "unit_handler", "leader", "grid_member"

_IN_HAND = ("accepted", "dispatched", "signed", "returned", "rework")
_HANDLING = ("dispatched", "signed")
# the states a case may be planned from (the others have nothing left to do, or wait for nobody here)
_PLANNED = ("reported", "verifying", "accepted", "dispatched", "signed", "resolved", "verified", "rework",
            "returned", "suspended", "closed")

# A unit to send a case to or to add as assisting, for the chain of a case: (chain, unit types in
# order of preference, unit codes not to take) -> a unit code or None. See pick_unit.
UnitFinder = Callable[[Sequence, Sequence[str], Collection[str]], "str | None"]


def reporter(source: str, grid: str | None) -> str:
    """Who reports, as the history names the demo's people: a patrol report is its grid's member's (岗位评价
    counts their reports), the other channels are the channel."""
    return f"sim:grid:{grid}" if source == "patrol" and grid else f"sim:{source}"


def pick_unit(unit_index: Mapping, chain: Sequence, unit_types: Sequence[str],
              exclude: Collection[str] = ()) -> str | None:
    """The first unit of ``unit_types`` (in order) serving the place of ``chain`` (its areas, as
    AreaRecords or mappings with ``code`` and ``level``), the nearest first (grid → city), that is not
    in ``exclude``. ``unit_index``: dispatch.units.index_units (or anything with the same shape:
    (area code, unit type) → units with a ``code``, primary first)."""
    nodes = sorted(((n["code"], int(n["level"])) if isinstance(n, Mapping) else (n.code, int(n.level))
                    for n in chain), key=lambda cl: -cl[1])
    for unit_type in unit_types:
        for code, _level in nodes:
            for u in unit_index.get((code, unit_type), ()):
                if u.code not in exclude:
                    return u.code
    return None


def _parse(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _tri(rng: random.Random, lo: float, hi: float, mode: float) -> float:
    return rng.triangular(lo, hi, mode)


# ----------------------------------------------------------------------------------------
# positions

def _triangles(geometries: list):
    """Every polygon cut into triangles at once (constrained Delaunay, holes respected):
    (grid index per triangle, corner coordinates (n, 3, 2), triangle areas in degrees²), or None
    when this Shapely/GEOS cannot triangulate (then :func:`_reject_point` samples)."""
    try:
        import numpy as np
        import shapely

        tri = shapely.constrained_delaunay_triangles(np.array(geometries, dtype=object))
        parts, owner = shapely.get_parts(tri, return_index=True)
        corners = shapely.get_coordinates(parts).reshape(len(parts), 4, 2)[:, :3, :]
    except Exception:  # noqa: BLE001 - old GEOS, or a geometry it refuses
        return None
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area = np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])) / 2
    keep = area > 0
    if not keep.any() or set(owner[keep].tolist()) != set(range(len(geometries))):
        return None
    return owner[keep], corners[keep], area[keep]


def _reject_point(geometry, rng: random.Random) -> tuple[float, float]:
    """A uniform point in ``geometry`` by rejection in its bounding box (the slow fallback)."""
    from shapely.geometry import Point

    minx, miny, maxx, maxy = geometry.bounds
    for _ in range(1000):
        x, y = minx + rng.random() * (maxx - minx), miny + rng.random() * (maxy - miny)
        if geometry.contains(Point(x, y)):
            return x, y
    p = geometry.representative_point()
    return p.x, p.y


def _offset_metres(lon: float, lat: float, metres: float, bearing: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / 111_320.0
    dlon = metres * math.sin(bearing) / (111_320.0 * max(math.cos(math.radians(lat)), 1e-6))
    return lon + dlon, lat + dlat


# ----------------------------------------------------------------------------------------
# the simulator


def _office_hours(cat, emergency: bool) -> bool:
    """Whether units and on-site checkers handle a case of ``cat`` in office hours only: on the
    working clock they do; on the calendar clock (emergencies, urgent and safety categories: a missing
    manhole cover over a holiday) an on-call crew works round the clock, as the deadline runs."""
    return cat.clock == "working" if cat is not None else not emergency

class Simulator:
    """Seeded source of intake payloads and lifecycle decisions for one city.

    ``catalog``: the categories by code (``data.files.catalog()`` or the service's
    ``catalog()``). ``areas``: the hierarchy's :class:`geo.model.AreaRecord` rows (all levels;
    the grids — the lowest level present — are where reports happen, weighted by population, or
    by area when no grid has a population). ``key_prefix``: the idempotency keys of the reports
    are ``{key_prefix}-{n}``; ``None`` leaves them out. ``calendar``: the working-time calendar
    the decisions are timed on (the service's ``calendar``, or ``data.files.calendar()``).
    ``rates``: the shares of the decisions (default: data/demo_history.json's, demo.profile).
    ``units``: how to find a unit for 改派 and 协办 (a :data:`UnitFinder`, e.g. :func:`pick_unit`
    over the city's units); without it cases are refused back (驳回) rather than reassigned, and
    get no assisting unit."""

    def __init__(self, catalog: Mapping[str, Category], areas: Iterable, seed: int | None = 0, *,
                 duplicate_rate: float = DUPLICATE_RATE, key_prefix: str | None = "sim",
                 calendar: WorkCalendar, rates: LifeRates | None = None, units: UnitFinder | None = None):
        self.seed = seed
        self.rng = random.Random(seed)
        self.duplicate_rate = duplicate_rate
        self.key_prefix = key_prefix
        self.calendar = calendar
        self.rates = rates or load_profile().rates
        self.units = units
        self.catalog = dict(catalog)
        self._n = 0
        self._recent: deque = deque(maxlen=300)  # (at, payload) of recent first reports
        self._build_mix()
        self._build_places(list(areas))

    def reseed(self, seed) -> None:
        """Start the report stream over from ``seed`` (no recent reports to repeat): the history
        backfill draws each day from its own seed, so a day comes out the same whenever it is made."""
        self.rng = random.Random(seed)
        self._recent.clear()
        self._n = 0

    def source_share(self, source: str) -> float:
        """The expected share of fresh reports that come through ``source`` (kind shares × category
        weights × the category's source weights)."""
        share = 0.0
        for kind, kshare in self.kind_shares.items():
            cum = self._cat_cum[kind]
            prev = 0.0
            for cat, c in zip(self._cats[kind], cum):
                w = self._sources[cat.code]
                share += kshare * (c - prev) / cum[-1] * w.get(source, 0.0) / sum(w.values())
                prev = c
        return share

    # -- set-up ------------------------------------------------------------------------------
    def _build_mix(self) -> None:
        by_kind: dict[str, list[Category]] = {}
        for c in self.catalog.values():
            by_kind.setdefault(c.kind, []).append(c)
        kinds = [k for k in KIND_SHARES if by_kind.get(k)]
        if not kinds:
            raise ValueError("the catalog has no categories to simulate")
        total = sum(KIND_SHARES[k] for k in kinds)
        self.kind_shares = {k: KIND_SHARES[k] / total for k in kinds}
        self._kinds = kinds
        self._kind_cum = list(accumulate(self.kind_shares[k] for k in kinds))
        self._cats = {k: by_kind[k] for k in kinds}
        self._cat_cum = {k: list(accumulate(_CATEGORY_WEIGHT.get(c.name, 1.0) for c in by_kind[k])) for k in kinds}
        self._sources = {c.code: _source_weights(c) for c in self.catalog.values()}

    def _build_places(self, records: list) -> None:
        if not records:
            raise ValueError("no areas to simulate in")
        leaf = max(r.level for r in records)
        grids = sorted((r for r in records if r.level == leaf), key=lambda r: r.code)
        index = {r.code: r for r in records}
        if any((g.population or 0) > 0 for g in grids):
            weights = [max(g.population or 0, 0) for g in grids]
        else:
            weights = [g.geometry.area for g in grids]
        keep = [(g, w) for g, w in zip(grids, weights) if w > 0 and not g.geometry.is_empty]
        if not keep:
            raise ValueError("no grid with a population or an area to simulate in")
        self.grids = [g for g, _ in keep]
        self._grid_cum = list(accumulate(w for _, w in keep))
        self._place_names: dict[int, str] = {}
        self._index = index
        # One table of triangles for the whole city: a triangle's weight is its grid's weight
        # times the share of the grid's area it covers, so one draw picks grid and triangle.
        tris = _triangles([g.geometry for g in self.grids])
        if tris is None:
            self._tri_cum = None
            return
        owner, corners, area = tris
        grid_area = [0.0] * len(self.grids)
        for o, a in zip(owner.tolist(), area.tolist()):
            grid_area[o] += a
        w = [wt for _, wt in keep]
        self._tri_owner = owner.tolist()
        self._tri_corners = [tuple(x) for x in corners.reshape(len(corners), 6).tolist()]
        self._tri_cum = list(accumulate(w[o] * a / grid_area[o] for o, a in zip(self._tri_owner, area.tolist())))

    def _place_name(self, i: int) -> str:
        name = self._place_names.get(i)
        if name is None:
            grid = self.grids[i]
            community = self._index.get(grid.parent) if grid.parent else None
            street = self._index.get(community.parent) if community is not None and community.parent else None
            name = "".join(a.name for a in (street, community) if a is not None) or grid.name
            self._place_names[i] = name
        return name

    # -- rhythm and arrivals -----------------------------------------------------------------
    @staticmethod
    def rhythm(at: datetime) -> float:
        return rhythm(at)

    def arrivals(self, start: datetime, end: datetime, rate_per_minute: float) -> list[datetime]:
        """Report times in ``(start, end]`` of a Poisson process of ``rate_per_minute ×
        rhythm(t)`` reports a minute (thinning), in order."""
        if rate_per_minute <= 0 or end <= start:
            return []
        top = rate_per_minute * RHYTHM_MAX  # per minute
        out = []
        t = start
        while True:
            t = t + timedelta(minutes=self.rng.expovariate(top))
            if t > end:
                return out
            if self.rng.random() * RHYTHM_MAX <= rhythm(t):
                out.append(t)

    # -- draws -------------------------------------------------------------------------------
    def draw_category(self) -> Category:
        kind = self._kinds[bisect.bisect_left(self._kind_cum, self.rng.random() * self._kind_cum[-1])]
        cum = self._cat_cum[kind]
        i = bisect.bisect_left(cum, self.rng.random() * cum[-1])
        return self._cats[kind][min(i, len(cum) - 1)]

    def draw_severity(self) -> int:
        r = self.rng.random()
        acc = 0.0
        for sev, share in SEVERITY_SHARES.items():
            acc += share
            if r < acc:
                return sev
        return 4

    def draw_position(self) -> tuple[int, float, float]:
        """(grid index, lon, lat): a grid by population, then a uniform point inside it."""
        if self._tri_cum is not None:
            t = bisect.bisect_left(self._tri_cum, self.rng.random() * self._tri_cum[-1])
            t = min(t, len(self._tri_cum) - 1)
            ax, ay, bx, by, cx, cy = self._tri_corners[t]
            r1, r2 = self.rng.random(), self.rng.random()
            if r1 + r2 > 1:
                r1, r2 = 1 - r1, 1 - r2
            return self._tri_owner[t], ax + r1 * (bx - ax) + r2 * (cx - ax), ay + r1 * (by - ay) + r2 * (cy - ay)
        i = bisect.bisect_left(self._grid_cum, self.rng.random() * self._grid_cum[-1])
        i = min(i, len(self.grids) - 1)
        lon, lat = _reject_point(self.grids[i].geometry, self.rng)
        return i, lon, lat

    def draw_source(self, category: Category) -> str:
        weights = self._sources.get(category.code) or _source_weights(category)
        r = self.rng.random() * sum(weights.values())
        for source, w in weights.items():
            r -= w
            if r < 0:
                return source
        return next(iter(weights))

    def draw_phone(self) -> str:
        return self.rng.choice(_PHONE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"

    def describe(self, category: Category, place: str) -> str:
        texts = _TEXTS.get(category.name) or _GENERIC.get(category.kind, _GENERIC["event"])
        text = self.rng.choice(texts).format(n=self.rng.randint(2, 9), name=category.name)
        spot = self.rng.choice(_SPOTS).format(n=self.rng.randint(1, 30))
        return f"{place}{spot}{text}。"

    # -- reports -----------------------------------------------------------------------------
    def report(self, at: datetime) -> dict:
        """One intake payload reported at ``at`` (aware): a fresh report, or (about
        ``duplicate_rate`` of the time) a repeat of a recent one a few metres away."""
        if at.tzinfo is None:
            raise ValueError("report() needs an aware datetime")
        self._n += 1
        while self._recent and at - self._recent[0][0] > DUPLICATE_WINDOW:
            self._recent.popleft()
        if self._recent and self.rng.random() < self.duplicate_rate:
            payload = self._duplicate(self.rng.choice(self._recent)[1], at)
        else:
            payload = self._fresh(at)
            self._recent.append((at, payload))
        if self.key_prefix:
            payload["idempotency_key"] = f"{self.key_prefix}-{self._n}"
        return payload

    def _occurred(self, at: datetime, source: str, kind: str) -> str:
        if source in ("iot", "video"):
            lag = self.rng.uniform(0, 2)
        elif kind == "emergency":
            lag = self.rng.uniform(0, 8)
        else:
            lag = self.rng.triangular(0, 180, 15)
        return (at - timedelta(minutes=lag)).astimezone(CITY_TZ).isoformat(timespec="seconds")

    def _fresh(self, at: datetime) -> dict:
        cat = self.draw_category()
        i, lon, lat = self.draw_position()
        source = self.draw_source(cat)
        payload = {"category": cat.code, "lon": round(lon, 7), "lat": round(lat, 7),
                   "description": self.describe(cat, self._place_name(i)), "source": source,
                   "occurred_at": self._occurred(at, source, cat.kind)}
        if cat.is_emergency:
            payload["severity"] = self.draw_severity()
        if source in ("hotline", "citizen") or (source == "patrol" and self.rng.random() < 0.3):
            payload["reporter_phone"] = self.draw_phone()
        return payload

    def _duplicate(self, original: dict, at: datetime) -> dict:
        cat = self.catalog[original["category"]]
        lon, lat = _offset_metres(original["lon"], original["lat"], self.rng.uniform(3, 30),
                                  self.rng.uniform(0, 2 * math.pi))
        source = self.draw_source(cat)
        payload = {"category": cat.code, "lon": round(lon, 7), "lat": round(lat, 7),
                   "description": "又有群众反映：" + original["description"], "source": source,
                   "occurred_at": self._occurred(at, source, cat.kind)}
        if "severity" in original:
            payload["severity"] = original["severity"]
        if source in ("hotline", "citizen", "patrol"):
            payload["reporter_phone"] = self.draw_phone()
        return payload

    # -- lifecycle ---------------------------------------------------------------------------
    def _case_rng(self, case_id, *parts) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, case_id) + parts)))

    def _in_office(self, at: datetime, emergency: bool) -> datetime:
        """Units and on-site checkers work in office hours (emergencies at any hour): the first
        working instant at or after ``at``."""
        if emergency or self.calendar.is_working_time(at):
            return at
        return self.calendar.working_deadline(at, 1 / 3600, "working_hours")

    def _after(self, start: datetime, minutes: float, office_hours: bool) -> datetime:
        """``minutes`` after ``start``: working minutes for office-hours people, else calendar."""
        if not office_hours:
            return start + timedelta(minutes=minutes)
        return self.calendar.working_deadline(start, max(minutes, 1 / 60) / 60, "working_hours")

    def _left(self, start: datetime, deadline: datetime | None, office_hours: bool) -> float | None:
        """Minutes from ``start`` to the deadline (working minutes for office-hours people)."""
        if deadline is None:
            return None
        if not office_hours:
            return (deadline - start) / timedelta(minutes=1)
        return self.calendar.working_time_between(start, deadline, "working_hours") * 60

    def _delay(self, rng: random.Random, lo: float, hi: float, mode: float, left: float | None,
               share: float) -> float:
        """A triangular delay in minutes, shortened to ``share`` of the time left before the
        deadline when that is tighter: people hurry when the deadline is near."""
        minutes = _tri(rng, lo, hi, mode)
        if left is not None and left > 0:
            minutes = min(minutes, left * share)
        return max(minutes, 0.1)

    def next_steps(self, case: Mapping, now: datetime) -> list[Step]:
        """What the simulated people do next with ``case`` (the service's case object, with its
        ``history``) and when, earliest first; empty when nobody here has anything to do (rejected,
        merged, voided, a closed case called back, a case suspended for want of a unit). The main
        step is timed from when the case entered its state, so planning again gives the same answer;
        requests and their answers (延期, 挂账), 协办 and a leader's 督办 come as extra steps.
        ``now`` stands in for a missing history.

        The command center (accept, 核实 requests, reject, dispatch, 改派, 驳回, void, close, the
        answers to requests, 解挂, 回访, 重办) works round the clock; units, grid members and on-site
        checkers (sign, return, resolve, extend, 挂账 requests, 核实, verify, rework) work office
        hours, except for emergencies and the categories on the calendar clock. The rates are
        :class:`demo.profile.LifeRates` (data/demo_history.json, with their reasons)."""
        state = case.get("state")
        if state not in _PLANNED:
            return []
        r = self.rates
        history = case.get("history") or []
        moves = [h for h in history if h.get("from") != h.get("to")]
        entered = _parse(moves[-1]["at"]) if moves and moves[-1].get("to") == state else None
        entered = entered or _parse(case.get("updated_at")) or _parse(case.get("reported_at")) or now
        cid = case.get("id")
        rng = self._case_rng(cid, state, len(moves))
        cat = self.catalog.get((case.get("category") or {}).get("code"))
        kind = case.get("kind") or (cat.kind if cat else "event")
        emergency = kind == "emergency"
        office = _office_hours(cat, emergency)  # do units and checkers keep office hours for this case?
        deadline = _parse(case.get("deadline"))
        actions_done = [h.get("action") for h in history]
        last = moves[-1].get("action") if moves else None
        pending_extension = case.get("extension_pending_hours") is not None
        pending_suspension = (case.get("suspension") or {}).get("state") == "requested"
        lead = (case.get("unit") or {}).get("code")
        chain = case.get("chain") or []
        center_left = self._left(entered, deadline, False)
        steps: list[Step] = []

        def center(action: str, lo: float, hi: float, mode: float, share: float, note: str = "",
                   slow: float = 1.0, **kw) -> Step:
            minutes = self._delay(rng, lo * slow, hi * slow, mode * slow, center_left, share)
            return Step(action, entered + timedelta(minutes=minutes), OFFICE_ROLE, note=note, **kw)

        if state == "reported":
            night = entered.astimezone(CITY_TZ).hour in (22, 23, 0, 1, 2, 3, 4, 5, 6)
            slow = 2.0 if night and not emergency else 1.0
            if last == "report_check":  # back from 核实: file it, or not when it was unfounded
                if case.get("check_result") == "unfounded":
                    steps.append(center("reject", 1, 20, 5, 0.1, UNFOUNDED_REJECT, slow))
                else:
                    steps.append(center("accept", 1, 20, 5, 0.08, slow=slow))
            elif emergency:
                steps.append(center("accept", 0.3, 3, 1, 0.05))
            elif case.get("source") in r.check_sources and rng.random() < r.check:
                steps.append(center("verify_request", 1, 30, 5, 0.08, CHECK_REQUEST_NOTE, slow))
            elif rng.random() < r.reject:
                steps.append(center("reject", 2, 30, 8, 0.1, rng.choice(REJECT_REASONS), slow))
            else:
                steps.append(center("accept", 1, 30, 5, 0.08, slow=slow))
        elif state == "verifying":
            # the grid member of the place goes and looks, within the hour of 核实 as a rule
            start = self._in_office(entered, not office)
            minutes = self._delay(rng, 10, 75, 30, None, 1.0)
            crng = self._case_rng(cid, "check")
            answer = "unfounded" if crng.random() < r.check_unfounded else "confirmed"
            steps.append(Step("report_check", self._after(start, minutes, office), GRID_ROLE,
                              note=CHECK_NOTES[answer], result=answer))
        elif state == "accepted":
            if emergency:
                steps.append(center("dispatch", 0.2, 2, 0.5, 0.05, "按应急预案派遣，联动协同单位"))
            elif self._case_rng(cid, "void").random() < r.void:
                steps.append(center("void", 5, 120, 20, 0.3, rng.choice(VOID_REASONS)))
            else:
                steps.append(center("dispatch", 1, 15, 3, 0.08, "按指挥手册派遣"))
        elif state == "rework":
            steps.append(center("dispatch", 2, 20, 5, 0.1, "返工重新派遣"))
        elif state == "returned":
            rrng = self._case_rng(cid, "reassign", case.get("reassign_count") or 0)
            other = None
            if rrng.random() < r.reassign_after_return and self.units is not None:
                types = [cat.unit_type if t == "category" and cat is not None else t for t in r.reassign_unit_types]
                taken = {(a.get("unit") or {}).get("code") for a in case.get("assists") or []} | {lead}
                other = self.units(chain, types, taken - {None})
            if other is not None:
                steps.append(center("reassign", 5, 40, 15, 0.1, rng.choice(REASSIGN_NOTES), unit=other))
            else:
                steps.append(center("refuse_return", 5, 40, 15, 0.1, rng.choice(REDISPATCH_NOTES)))
        elif state == "verified":
            steps.append(center("close", 1, 30, 5, 0.5, "核查通过，予以结案"))
        elif state == "dispatched":
            start = self._in_office(entered, not office)
            left = self._left(start, deadline, office)
            if not emergency and "return" not in actions_done and rng.random() < r.ret:
                minutes = self._delay(rng, 10, 90, 30, left, 0.2)
                steps.append(Step("return", self._after(start, minutes, office), UNIT_ROLE,
                                  note=rng.choice(RETURN_REASONS)))
            elif not pending_extension and not pending_suspension:
                if emergency:
                    minutes = self._delay(rng, 0.5, 5, 1.5, left, 0.1)
                else:
                    minutes = self._delay(rng, 3, 60, 15, left, 0.15)
                steps.append(Step("sign", self._after(start, minutes, office), UNIT_ROLE, note="已签收"))
        elif state == "signed":
            steps.extend(self._signed_steps(case, rng, entered, deadline, emergency, office, cat, actions_done,
                                            pending_extension, pending_suspension, lead, chain))
        elif state == "resolved":
            start = self._in_office(entered, not office)
            left = self._left(start, deadline, office)
            checker = GRID_ROLE if kind == "grid" else OFFICE_ROLE
            minutes = self._delay(rng, 5, 60, 20, left, 0.5) if emergency else self._delay(rng, 10, 240, 45, left, 0.5)
            at = self._after(start, minutes, office)
            if not emergency and not case.get("rework_count") and rng.random() < r.rework:
                steps.append(Step("rework", at, checker, note=rng.choice(REWORK_REASONS)))
            else:
                steps.append(Step("verify", at, checker, note="现场核查，符合结案标准"))
        elif state == "suspended":
            if last == "approve_suspension":  # 解挂 some days later (a case parked for want of a unit stays)
                drng = self._case_rng(cid, "resume")
                days = _tri(drng, *r.suspension_days)
                steps.append(Step("resume", entered + timedelta(days=days), OFFICE_ROLE, note=RESUME_NOTE))
        elif state == "closed":
            steps.extend(self._callback_steps(case, entered))

        # requests waiting for the command center's answer
        if state in _HANDLING and pending_extension:
            asked = next((_parse(h["at"]) for h in reversed(history) if h.get("action") == "extend"), None)
            arng = self._case_rng(cid, "approve", case.get("extension_count") or 0)
            at = (asked or now) + timedelta(minutes=_tri(arng, 10, 90, 25))
            if arng.random() < r.extension_denied:
                steps.append(Step("deny_extension", at, OFFICE_ROLE, note=arng.choice(DENY_EXTENSION_NOTES)))
            else:
                steps.append(Step("approve_extension", at, OFFICE_ROLE, note="情况属实，同意延期"))
        if state in _HANDLING and pending_suspension:
            asked = _parse((case.get("suspension") or {}).get("since")) or now
            srng = self._case_rng(cid, "suspension answer")
            at = asked + timedelta(minutes=_tri(srng, 30, 480, 90))
            if srng.random() < r.suspension_approved:
                steps.append(Step("approve_suspension", at, OFFICE_ROLE, note="情况属实，同意挂账"))
            else:
                steps.append(Step("deny_suspension", at, OFFICE_ROLE, note=srng.choice(DENY_SUSPENSION_NOTES)))

        # a leader supervises a few cases in the unit's hands before their deadline
        if state in _HANDLING and deadline is not None and not case.get("supervised") \
                and "supervise" not in actions_done:
            lrng = self._case_rng(cid, "supervise")
            if lrng.random() < r.leader_supervise:
                since = _parse(case.get("dispatched_at")) or entered
                at = since + (deadline - since) * lrng.uniform(0.2, 0.7)
                steps.append(Step("supervise", max(at, entered), LEADER_ROLE, note=lrng.choice(SUPERVISE_NOTES)))

        steps.sort(key=lambda s: s.at)
        return steps

    def _signed_steps(self, case, rng, entered, deadline, emergency, office, cat, actions_done,
                      pending_extension, pending_suspension, lead, chain) -> list[Step]:
        """The unit holds a signed case: its requests (延期, 挂账), the assisting units' parts (协办) and
        its own resolution, which waits for the answers and for every assisting unit's report."""
        r = self.rates
        cid = case.get("id")
        steps: list[Step] = []
        start = self._in_office(entered, not office)
        assists = case.get("assists") or []
        # 协办: the center adds an assisting unit soon after the lead signs, for a few of the cases
        # that usually need a second department
        wants_assist = False
        types = r.assist_categories.get(cat.name) if cat is not None and not emergency else None
        if types and not assists and "add_assist" not in actions_done and self.units is not None:
            arng = self._case_rng(cid, "assist")
            if arng.random() < r.assist:
                other = self.units(chain, types, {lead} if lead else set())
                if other is not None:
                    wants_assist = True
                    minutes = _tri(arng, 10, 120, 30)
                    steps.append(Step("add_assist", entered + timedelta(minutes=minutes), OFFICE_ROLE,
                                      note="需多部门联合处置，增加协办单位", unit=other))
        last_report = None
        for a in assists:
            code = (a.get("unit") or {}).get("code")
            arng = self._case_rng(cid, "assist", code)
            added, signed, reported = _parse(a.get("added_at")), _parse(a.get("signed_at")), _parse(a.get("reported_at"))
            if signed is None:
                begin = self._in_office(added or entered, not office)
                steps.append(Step("sign", self._after(begin, _tri(arng, 3, 60, 15), office), UNIT_ROLE,
                                  note=ASSIST_SIGN_NOTE, by_unit=code))
                wants_assist = True
            elif reported is None:
                begin = self._in_office(signed, not office)
                left = self._left(begin, deadline, office)
                minutes = left * arng.uniform(0.1, 0.5) if left and left > 30 else _tri(arng, 30, 240, 60)
                steps.append(Step("resolve", self._after(begin, minutes, office), UNIT_ROLE,
                                  note=arng.choice(ASSIST_REPORT_NOTES), by_unit=code))
                wants_assist = True
            elif last_report is None or reported > last_report:
                last_report = reported
        if not pending_extension and not pending_suspension and not wants_assist:
            resolve = self._resolve_step(case, rng, entered, deadline, emergency, cat)
            if last_report is not None and resolve.at < last_report:  # waited for the assisting units
                resolve = Step(resolve.action, last_report, resolve.role, resolve.note)
            steps.append(resolve)
        if emergency or deadline is None or pending_extension or pending_suspension:
            return steps
        # 挂账: a few units ask to suspend the case, early in its handling
        if "request_suspension" not in actions_done:
            srng = self._case_rng(cid, "suspend")
            if srng.random() < r.suspension_request:
                left = max(self._left(start, deadline, office), 30.0)
                at = self._after(start, left * srng.uniform(0.05, 0.3), office)
                steps.append(Step("request_suspension", at, UNIT_ROLE, note=srng.choice(SUSPENSION_REASONS)))
                return steps
        if "extend" not in actions_done:
            xrng = self._case_rng(cid, "extend")
            if xrng.random() < r.extend:
                left = max(self._left(start, deadline, office), 30.0)
                at = self._after(start, left * xrng.uniform(0.1, 0.4), office)
                hours = float(xrng.choice(r.extension_hours))
                steps.append(Step("extend", at, UNIT_ROLE, note=xrng.choice(EXTENSION_REASONS), hours=hours))
        return steps

    def _callback_steps(self, case, closed_at) -> list[Step]:
        """回访 some hours after closing, for the reports of people; an unsatisfied one may be reopened
        (重办) once."""
        r = self.rates
        cid = case.get("id")
        if case.get("source") not in r.callback_sources:
            return []
        callback = case.get("callback")
        closed = _parse(case.get("closed_at")) or closed_at
        done = callback is not None and (_parse(callback.get("at")) or closed) >= closed
        reopens = case.get("reopen_count") or 0
        if not done:
            crng = self._case_rng(cid, "callback", reopens)
            if crng.random() >= r.callback:
                return []
            at = closed + timedelta(hours=_tri(crng, *r.callback_hours))
            answer = r.draw_satisfaction(crng.random())
            return [Step("callback", at, OFFICE_ROLE, note=CALLBACK_NOTES[answer], satisfaction=answer)]
        if callback.get("result") == "unsatisfied" and not reopens:
            rrng = self._case_rng(cid, "reopen")
            if rrng.random() < r.reopen_unsatisfied:
                at = _parse(callback.get("at")) + timedelta(minutes=_tri(rrng, 10, 120, 30))
                return [Step("reopen", at, OFFICE_ROLE, note=rrng.choice(REOPEN_NOTES))]
        return []

    def _resolve_step(self, case, rng, signed_at, deadline, emergency, cat) -> Step:
        """Most units resolve with time to spare for verification and closing; a few (rates.late) are late."""
        late = rng.random() < self.rates.late
        frac = rng.uniform(0.2, 0.75)
        if cat is not None and cat.closing_criterion:
            note = "已按结案标准处置完毕：" + cat.closing_criterion
        else:
            note = "已安排人员到场处置完毕，现场照片已上传"
        office = _office_hours(cat, emergency)
        start = self._in_office(signed_at, not office)
        if deadline is None:
            return Step("resolve", self._after(start, rng.uniform(60, 600), office), UNIT_ROLE, note=note)
        left = self._left(start, deadline, office)
        if late or left <= 3:
            # late: some way past the deadline, in proportion to the time that was allowed (the
            # handling clock runs from 派遣)
            since = _parse(case.get("dispatched_at")) or _parse(case.get("reported_at")) or signed_at
            allowed = max(self._left(since, deadline, office), 30.0)
            base = max(deadline, start)
            return Step("resolve", self._after(base, allowed * rng.uniform(0.05, 0.5), office), UNIT_ROLE, note=note)
        return Step("resolve", self._after(start, left * frac, office), UNIT_ROLE, note=note)
