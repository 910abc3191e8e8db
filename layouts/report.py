"""The phone report page (/report, 巡查上报 / 随手拍): photo, position, category, description, and what became of it."""
from __future__ import annotations

import uuid

from dash import dcc, html

from web.principal import current_display_name, current_principal
from cases.photos import MAX_BYTES, MAX_MB
from web.services import services

KIND_LABELS = {"component": "部件", "event": "事件", "grid": "网格事件", "emergency": "应急"}
KIND_ORDER = {"event": 0, "component": 1, "grid": 2, "emergency": 3}
SEVERITY_OPTIONS = [{"label": "Ⅳ级 一般", "value": 4}, {"label": "Ⅲ级 较大", "value": 3},
                    {"label": "Ⅱ级 重大", "value": 2}, {"label": "Ⅰ级 特别重大", "value": 1}]
DROPDOWN_LABELS = {"search": "搜索", "clear_search": "清除", "clear_selection": "清除",
                   "no_options_found": "没有匹配的类别，换个词试试"}


def source_of(role: str) -> str:
    """The intake channel of a report from this page: a grid member's patrol, anyone else's snapshot."""
    return "patrol" if role == "grid_member" else "citizen"


def category_options(catalog: dict) -> list[dict]:
    cats = sorted(catalog.values(), key=lambda c: (KIND_ORDER.get(c.kind, 9), c.code))
    return [{"label": f"{c.name}（{c.major_class}）", "value": c.code,
             "search": f"{c.name} {c.major_class} {KIND_LABELS.get(c.kind, c.kind)} {c.code}"} for c in cats]


def geolocation(again: bool = False):
    """The phone's position, asked for when this component mounts (and again with update_now)."""
    return dcc.Geolocation(id="rp-geo", high_accuracy=True, maximum_age=0, timeout=15000, update_now=again)


def new_key() -> str:
    """The idempotency key of one report: a resubmission after a lost answer returns the same case."""
    return "report-" + uuid.uuid4().hex


def layout(**_query):
    principal = current_principal()
    app = services()
    area = app.areas.get(principal.area_code) if principal else None
    patrol = principal is not None and source_of(principal.role) == "patrol"
    who = current_display_name()
    if area is not None and area.name not in who:
        who = " · ".join(x for x in (who, area.name) if x)
    return html.Div(className="rp-page", children=html.Div(className="rp", children=[
        dcc.Store(id="rp-config", data={"max_bytes": MAX_BYTES}),
        dcc.Store(id="rp-key", data=new_key()),
        html.Div(id="rp-geo-slot"),  # the geolocation component, mounted by 「使用我的位置」
        html.Div(className="rp-head", children=[
            html.H2("巡查上报" if patrol else "事件上报", className="rp-title"),
            html.Div(who, className="rp-who"),
        ]),
        html.Div(className="rp-field", children=[
            html.Label("现场照片", className="rp-label", htmlFor="rp-photo"),
            dcc.Upload(id="rp-photo", className="ucc-photo-upload rp-upload", accept="image/*", max_size=MAX_BYTES,
                       children=html.Div(className="rp-upload-face", children=[
                           html.Span("拍照 / 选择照片", className="rp-upload-main"),
                           html.Small(f"JPEG、PNG、WebP，不超过 {MAX_MB} MB"),
                       ])),
            html.Img(id="rp-photo-preview", className="rp-preview", alt="待上传的现场照片", style={"display": "none"}),
            html.Div(id="rp-photo-msg", className="ucc-photo-msg"),
        ]),
        html.Div(className="rp-field", children=[
            html.Label("位置", className="rp-label", htmlFor="rp-lon"),
            html.Div(className="rp-pos", children=[
                # text with a decimal keyboard: a number field's steppers crowd out the digits on a phone
                dcc.Input(id="rp-lon", type="text", inputMode="decimal", placeholder="经度，如 119.97",
                          debounce=0.6, className="rp-input", autoComplete="off"),
                dcc.Input(id="rp-lat", type="text", inputMode="decimal", placeholder="纬度，如 31.78",
                          debounce=0.6, className="rp-input", autoComplete="off"),
            ]),
            html.Button("使用我的位置", id="rp-locate", className="rp-btn rp-btn--ghost", n_clicks=0, type="button"),
            html.Div(id="rp-place", className="rp-place"),
        ]),
        html.Div(className="rp-field", children=[
            html.Label("问题类别", className="rp-label", htmlFor="rp-category"),
            dcc.Dropdown(id="rp-category", options=category_options(app.cases.catalog()), searchable=True,
                         clearable=True, placeholder="搜索类别，如：垃圾、井盖、占道", labels=DROPDOWN_LABELS,
                         className="rp-select"),
            html.Div(id="rp-severity-wrap", className="rp-severity", style={"display": "none"}, children=[
                html.Label("事件等级（应急事件必填）", className="rp-label rp-label--small", htmlFor="rp-severity"),
                dcc.Dropdown(id="rp-severity", options=SEVERITY_OPTIONS, searchable=False, placeholder="选择等级",
                             className="rp-select"),
            ]),
        ]),
        html.Div(className="rp-field", children=[
            html.Label("问题描述", className="rp-label", htmlFor="rp-desc"),
            dcc.Textarea(id="rp-desc", className="rp-text", maxLength=2000,
                         placeholder="看到了什么问题：具体位置特征、规模、是否影响通行或安全"),
        ]),
        html.Div(id="rp-msg", className="rp-msg", role="alert"),
        html.Button("提交上报", id="rp-submit", className="rp-btn rp-btn--primary", n_clicks=0, type="button"),
        html.Div(id="rp-result", className="rp-result", role="status"),
    ]))


# ---- shaping (used by callbacks/report.py) -------------------------------------------------------------
def place_text(chain) -> str:
    """'天宁区 · 白庄街道 · 文苑社区 · 第1网格' from a locator chain (grid → city)."""
    return " · ".join(a.name for a in reversed(chain) if a.level >= 2)


def _row(label: str, value, value_id: str | None = None) -> html.Div:
    strong = html.Strong(value, id=value_id) if value_id else html.Strong(value)
    return html.Div(className="rp-row", children=[html.Span(label), strong])


def _when(iso: str | None) -> str:
    return f"{iso[5:7]}月{iso[8:10]}日 {iso[11:16]}" if iso else "—"


def result_card(case: dict, time_limit_text: str | None, target: dict | None, photo_note: str | None) -> html.Div:
    chain = " · ".join(a["name"] for a in reversed(case.get("chain") or []) if a["level"] >= 3)
    if case.get("merged_into"):
        rows = [
            html.Div("已有人上报同一问题，已合并", className="rp-card-title"),
            _row("合并到案件", f"#{case['merged_into']}", "rp-case-id"),
            _row("本次上报记录", f"#{case['id']}"),
        ]
        if target is not None:
            rows += [_row("处置单位", (target.get("unit") or {}).get("name") or "待确定"),
                     _row("处置时限", _when(target.get("deadline"))),
                     _row("当前状态", target.get("state_label"))]
        cls = "rp-card rp-card--merged"
    else:
        deadline = _when(case.get("deadline"))
        if time_limit_text and case.get("deadline"):
            deadline += f"（{time_limit_text}）"
        rows = [
            html.Div("上报成功", className="rp-card-title"),
            _row("案件编号", f"#{case['id']}", "rp-case-id"),
            _row("问题类别", case["category"]["name"]),
            _row("处置单位", (case.get("unit") or {}).get("name") or "由指挥中心指定"),
            _row("处置时限", deadline),
            _row("位置", chain),
        ]
        cls = "rp-card rp-card--ok"
    if photo_note:
        rows.append(html.Div(photo_note, className="rp-card-note"))
    return html.Div(className=cls, children=rows)
