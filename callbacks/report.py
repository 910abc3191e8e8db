"""Report page callbacks: position (typed or the phone's), category, and the submit: photo check → intake → photo."""
from __future__ import annotations

import math

from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, no_update
from dash.exceptions import PreventUpdate

from callbacks import inputs
from web.principal import current_principal
from cases.service import ServiceError
from cases.photos import check_photo, decode_data_url, save_photo
from geo.locator import OutsideCity
from layouts import report as view
from web.services import services

GEO_ERRORS = {1: "未获得定位权限：请在浏览器设置中允许定位，或手动填写经纬度",
              2: "暂时无法获取位置（信号弱？），请稍后重试或手动填写经纬度",
              3: "定位超时，请重试或手动填写经纬度"}


def _services():
    return services()


def _number(value) -> float | None:
    """A typed coordinate as a number (full-width digits and a comma for the point allowed), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().translate(str.maketrans("０１２３４５６７８９．，－", "0123456789..-"))
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _place(lon, lat) -> tuple[str, str]:
    """Where a point is, in words (grid → district), or why it is not usable."""
    lon, lat = _number(lon), _number(lat)
    if lon is None or lat is None:
        return "经纬度须为数字，如 经度 119.97、纬度 31.78", "rp-place rp-place--bad"
    locator = _services().areas.locator()
    if locator is None:
        return "尚未导入城市网格", "rp-place rp-place--bad"
    try:
        chain = locator.locate(lon, lat)
    except (OutsideCity, ValueError):  # ValueError: past ±180/±90, which the locator refuses
        return "该位置不在本市范围内，请核对经纬度", "rp-place rp-place--bad"
    return "位置：" + view.place_text(chain), "rp-place rp-place--ok"


@callback(
    Output("rp-geo-slot", "children"),
    Output("rp-place", "children", allow_duplicate=True),
    Output("rp-place", "className", allow_duplicate=True),
    Input("rp-locate", "n_clicks"),
    prevent_initial_call=True,
)
def locate_me(clicks):
    # The geolocation component asks the phone as soon as it is mounted: it is mounted on the first
    # click (no permission prompt when the page opens) and asked again (update_now) on later ones.
    clicks = inputs.integer(clicks, "n_clicks")
    if not clicks:
        raise PreventUpdate
    return view.geolocation(again=clicks > 1), "正在定位…", "rp-place"


@callback(
    Output("rp-lon", "value"),
    Output("rp-lat", "value"),
    Output("rp-place", "children", allow_duplicate=True),
    Output("rp-place", "className", allow_duplicate=True),
    Input("rp-geo", "position"),
    Input("rp-geo", "position_error"),
    prevent_initial_call=True,
)
def got_position(position, error):
    position, error = inputs.mapping(position, "position"), inputs.mapping(error, "position_error")
    if "rp-geo.position_error" in ctx.triggered_prop_ids and error:
        code = error.get("code")
        message = GEO_ERRORS.get(code if isinstance(code, int) else None, "无法获取位置，请手动填写经纬度")
        return no_update, no_update, message, "rp-place rp-place--bad"
    if not position or position.get("lon") is None or position.get("lat") is None:
        raise PreventUpdate
    lon = round(inputs.number(position["lon"], "position.lon"), 6)
    lat = round(inputs.number(position["lat"], "position.lat"), 6)
    # The place line is written here too: the phone may give the point already in the fields (no change,
    # so show_place would not run and 「正在定位…」 would stay).
    return (str(lon), str(lat)) + _place(lon, lat)


@callback(
    Output("rp-place", "children"),
    Output("rp-place", "className"),
    Input("rp-lon", "value"),
    Input("rp-lat", "value"),
    prevent_initial_call=True,
)
def show_place(lon, lat):
    if lon in (None, "") or lat in (None, ""):
        return "", "rp-place"
    return _place(lon, lat)


@callback(
    Output("rp-severity-wrap", "style"),
    Input("rp-category", "value"),
)
def severity_for_emergencies(code):
    code = inputs.text(code, "类别")
    category = _services().cases.catalog().get(code) if code else None
    return {} if category is not None and category.is_emergency else {"display": "none"}


def _missing(category, lon, lat, description) -> list[str]:
    """What the form itself lacks (the service checks the rest: catalog, city, scope, severity)."""
    problems = []
    if not category:
        problems.append("请选择问题类别")
    if lon in (None, "") or lat in (None, ""):
        problems.append("请填写位置（经纬度），或点击「使用我的位置」")
    elif _number(lon) is None or _number(lat) is None:
        problems.append("经纬度须为数字，如 经度 119.97、纬度 31.78")
    if not (description or "").strip():
        problems.append("请填写问题描述")
    return problems


@callback(
    Output("rp-msg", "children"),
    Output("rp-msg", "className"),
    Output("rp-result", "children"),
    Output("rp-key", "data"),
    Output("rp-photo", "contents"),
    Output("rp-photo", "filename"),
    Output("rp-desc", "value"),
    Output("rp-category", "value"),
    Output("rp-severity", "value"),
    Input("rp-submit", "n_clicks"),
    State("rp-category", "value"),
    State("rp-severity", "value"),
    State("rp-lon", "value"),
    State("rp-lat", "value"),
    State("rp-desc", "value"),
    State("rp-photo", "contents"),
    State("rp-photo", "filename"),
    State("rp-key", "data"),
    prevent_initial_call=True,
)
def submit(clicks, category, severity, lon, lat, description, photo, photo_name, key):
    principal = current_principal()
    if not clicks or principal is None:
        raise PreventUpdate
    category, description, key = inputs.text(category, "类别"), inputs.text(description, "问题描述"), inputs.text(key, "key")
    photo, photo_name = inputs.text(photo, "照片"), inputs.text(photo_name, "照片文件名")
    keep = (no_update,) * 6

    def refused(message: str):
        return (message, "rp-msg rp-msg--bad", no_update) + keep

    problems = _missing(category, lon, lat, description)
    if problems:
        return refused("；".join(problems))
    data = None
    if photo:
        try:  # before intake: a bad photo must not leave a case behind
            data = decode_data_url(photo)
            check_photo(data, photo_name or "")
        except ServiceError as exc:
            return refused(exc.message)
    services = _services()
    payload = {"category": category, "lon": _number(lon), "lat": _number(lat), "description": description.strip(),
               "source": view.source_of(principal.role), "idempotency_key": key}
    if severity is not None:
        payload["severity"] = severity
    try:
        case, _created = services.cases.intake(payload, principal, actor=principal.ident)
    except ServiceError as exc:
        return refused(exc.message)
    photo_note = None
    if data is not None:
        try:
            save_photo(services.cases, case["id"], data, photo_name or "", "report", principal.ident, principal)
            photo_note = "现场照片已上传"
        except ServiceError as exc:
            # The case stands; the same key resubmits to this case, so a retry adds the photo.
            card = view.result_card(case, None, None, f"照片未能保存：{exc.message}。可再次点击提交补传照片")
            return ("案件已受理，但照片未能保存", "rp-msg rp-msg--bad", card) + keep
    target = None
    if case.get("merged_into"):
        try:
            target = services.cases.get(case["merged_into"], principal)
        except ServiceError:
            target = None  # the earlier report lies outside this person's area: say only its number
    cat = services.cases.catalog().get(case["category"]["code"])
    card = view.result_card(case, cat.time_limit_text if cat else None, target, photo_note)
    return ("", "rp-msg", card, view.new_key(), None, None, "", None, None)


# The chosen photo: previewed and checked in the browser (assets/unit.js), no upload until submit.
clientside_callback(
    ClientsideFunction(namespace="ucc_photo", function_name="report"),
    Output("rp-photo-preview", "src"), Output("rp-photo-preview", "style"),
    Output("rp-photo-msg", "children"), Output("rp-photo-msg", "className"),
    Input("rp-photo", "contents"), State("rp-photo", "filename"), State("rp-config", "data"),
)

# A refusal is about the form as it was: it goes as soon as the form changes.
clientside_callback(
    "function () { return ''; }",
    Output("rp-msg", "children", allow_duplicate=True),
    Input("rp-category", "value"), Input("rp-desc", "value"), Input("rp-lon", "value"), Input("rp-lat", "value"),
    Input("rp-photo", "contents"),
    prevent_initial_call=True,
)
