"""The routes of /public: read the form, ask the limits and the human check, call the desk, render a template."""
from __future__ import annotations

import uuid
from datetime import datetime

from flask import (Blueprint, abort, current_app, jsonify, redirect, render_template, request, send_file, session,
                   url_for)
from flask_wtf.csrf import CSRFError

from cases.citizen import SATISFACTION, Report, check_phone, normalize_phone
from cases.photos import photo_file
from dispatch.errors import ServiceError
from figures.public import public_month
from figures.wall import per_hierarchy_version
from geo.svg_map import city_svg_map
from public.check import CheckFailed
from public.throttle import wait_text
from web.services import services

bp = Blueprint("public", __name__, url_prefix="/public", template_folder="templates",
               static_folder="static", static_url_path="/static")

FOLLOWED = "public_cases"  # the session key: the case numbers this browser has proved it may follow
MAX_FOLLOWED = 10
NOT_FOUND = "受理编号或手机号码不正确，请核对后重试"  # the one answer for a wrong number and a wrong phone


def _public():
    from public import EXTENSION

    return current_app.extensions[EXTENSION]


def _address() -> str:
    return request.remote_addr or "?"


def _followed() -> list[int]:
    value = session.get(FOLLOWED)
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []


def _remember(case_id: int) -> None:
    session[FOLLOWED] = ([case_id] + [c for c in _followed() if c != case_id])[:MAX_FOLLOWED]


def _map():
    """The city's districts and streets as SVG, made once per hierarchy version."""
    return per_hierarchy_version(services(), "public_svg_map",
                                 lambda _v: city_svg_map(services().areas.records(max_level=3)))[1]


def _figures():
    try:
        return public_month(services().cases)
    except ServiceError:
        return None


def _groups():
    """The public categories grouped by their major class, for the form's select."""
    catalog = _public().desk._public_services()
    groups: dict[str, list] = {}
    for s in catalog.services:
        groups.setdefault(s.group, []).append(s)
    return groups, catalog.emergency_notice


def _report_page(status: int = 200, error: str | None = None, form: dict | None = None):
    if error and request.method == "POST" and getattr(request.files.get("photo"), "filename", ""):
        error += "（照片需重新选择）"  # a browser never refills a file field
    groups, notice = _groups()
    check = _public().check
    token = check.new()
    return render_template("public/index.html", groups=groups, notice=notice, error=error, form=form or {},
                           key=(form or {}).get("key") or uuid.uuid4().hex, check_token=token,
                           check_image=check.data_url(token), svg=_map(), figures=_figures(),
                           tab="report"), status


@bp.errorhandler(CSRFError)
def _csrf_failed(_err):
    return _message(400, "页面已过期", "页面已过期或来源不明，请返回重新填写。", url_for("public.index"))


def _message(status: int, title: str, text: str, back: str | None = None):
    return render_template("public/message.html", title=title, text=text, back=back or url_for("public.index"),
                           tab=None), status


@bp.get("")
def index():
    return _report_page()


@bp.get("/")
def index_slash():
    return redirect(url_for("public.index"), 308)


@bp.get("/check")
def new_check():
    """A fresh human check for the form's 换一张 (JSON: token and image)."""
    check = _public().check
    token = check.new()
    resp = jsonify(token=token, image=check.data_url(token))
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and abs(number) <= 180 else None


@bp.post("/report")
def report():
    form = {k: request.form.get(k, "") for k in ("category", "description", "phone", "lon", "lat", "address", "key")}
    public = _public()
    address = _address()
    phone = normalize_phone(form["phone"])
    wait = public.throttle.report_wait(address, phone or None)
    if wait:
        return _report_page(429, f"提交过于频繁，请 {wait_text(wait)}后再试。紧急情况请拨打 12345。", form)
    public.throttle.report_tried(address)
    try:
        public.check.verify(request.form.get("check_token", ""), request.form.get("check_answer", ""))
    except CheckFailed as exc:
        return _report_page(400, str(exc), form)
    upload = request.files.get("photo")
    photo = upload.read() if upload is not None and upload.filename else None
    lon, lat = _number(form["lon"]), _number(form["lat"])
    try:
        done = public.desk.report(Report(
            category=form["category"], description=form["description"], phone=form["phone"],
            lon=lon if lat is not None else None, lat=lat if lon is not None else None, address=form["address"],
            photo=photo, photo_name=upload.filename if upload is not None else "", key=form["key"] or None))
    except ServiceError as exc:
        return _report_page(exc.status if exc.status < 500 else 503, exc.message, form)
    public.throttle.report_accepted(check_phone(form["phone"]))
    _remember(done["id"])
    return redirect(url_for("public.case", case_id=done["id"], new=1, photo=0 if photo and not done["photo_saved"]
                            else None), 303)


@bp.route("/follow", methods=["GET", "POST"])
def follow():
    if request.method == "GET":
        return render_template("public/follow.html", error=None, number=request.args.get("number", "")[:24],
                               followed=_followed(), tab="follow")
    number = (request.form.get("number") or "").strip()[:24]
    public = _public()
    wait = public.throttle.follow_wait(_address(), number)
    if wait:
        return render_template("public/follow.html", error=f"查询次数过多，请 {wait_text(wait)}后再试",
                               number=number, followed=_followed(), tab="follow"), 429
    case_id = public.desk.follow(number, request.form.get("phone", ""))
    if case_id is None:
        public.throttle.follow_failed(_address(), number)
        return render_template("public/follow.html", error=NOT_FOUND, number=number, followed=_followed(),
                               tab="follow"), 404
    _remember(case_id)
    return redirect(url_for("public.case", case_id=case_id), 303)


def _own(case_id: int) -> bool:
    return case_id in _followed()


@bp.get("/case/<int:case_id>")
def case(case_id: int):
    if not _own(case_id):
        return redirect(url_for("public.follow", number=case_id), 303)
    view = _public().desk.view(case_id)
    return render_template("public/case.html", case=view, new=request.args.get("new") == "1",
                           photo_lost=request.args.get("photo") == "0", rated=request.args.get("rated") == "1",
                           error=None, satisfaction=SATISFACTION, tab="follow")


@bp.post("/case/<int:case_id>/rate")
def rate(case_id: int):
    if not _own(case_id):
        return redirect(url_for("public.follow"), 303)
    desk = _public().desk
    try:
        desk.rate(case_id, request.form.get("satisfaction"), request.form.get("note", ""))
    except ServiceError as exc:
        return render_template("public/case.html", case=desk.view(case_id), new=False, photo_lost=False,
                               rated=False, error=exc.message, satisfaction=SATISFACTION, tab="follow"), \
            exc.status if exc.status < 500 else 503
    return redirect(url_for("public.case", case_id=case_id, rated=1), 303)


@bp.get("/case/<int:case_id>/photo/<int:photo_id>")
def photo(case_id: int, photo_id: int):
    if not _own(case_id) or _public().desk.photo(case_id, photo_id) is None:
        abort(404)
    info = photo_file(services().db, photo_id)
    if info is None or not info["path"].is_file():
        abort(404)
    resp = send_file(info["path"], mimetype=info["mime"], etag=info["sha256"], conditional=True, max_age=86400)
    resp.headers["Cache-Control"] = "private, max-age=86400"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/figures")
def figures():
    return render_template("public/figures.html", figures=_figures(), tab="figures")


@bp.route("/<path:_rest>", methods=["GET", "POST"])
def not_found(_rest: str):
    """Anything else under /public is ours to answer (Dash's page catch-all must not)."""
    return _message(404, "页面不存在", "您访问的页面不存在。")


@bp.app_template_filter("public_time")
def local_time(value: str | None) -> str:
    """An ISO time (the city's offset) as a person reads it: 12月8日 17:30."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    return f"{at.month}月{at.day}日 {at:%H:%M}"


@bp.app_template_filter("public_percent")
def percent(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
