"""A case's rounds as a 数字城管 center runs them, in real browsers (issue 14): the duty officer sends it to
核实 and the grid member (through the API: the grid member has no page for it) finds it 属实; the officer
files it (立案) and dispatches it; the handler returns it (退回); the officer 改派s it to the street office and
adds the handler's unit as 协办, which signs and reports its part on /unit with only those two buttons; a
leader 督办s it from the console and finds it in their 督办件 list, and the handler sees the 督办 on the case;
the street office finishes; the officer checks, closes, calls back (回访: 不满意) and reopens it (重办). Each
form asks for what the service needs, and each page offers only what the service allows."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from tests.browser.conftest import PageWatch, choose_option, save_screenshot, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser

UNIT = "U-320402-city_management"        # the demo handler's unit: 天宁区城市管理局
UNIT_NAME = "天宁区城市管理局"
OFFICE = "U-320402001-street_office"     # where the case is 改派ed to
OFFICE_NAME = "白庄街道办事处"
STREET = "320402001"                     # 白庄街道
CATEGORY, CATEGORY_NAME = "020102", "暴露垃圾"
MARK = "() => { window.__rounds = 'same document'; }"
MARKED = "() => window.__rounds === 'same document'"


@pytest.fixture(scope="module")
def rounds_app(demo_sqlite_url, tmp_path_factory):
    """`python app.py` over a copy of the demo city with some recent cases; tokens for the API's side of the
    story (an admin's to read, the grid member's of the case's grid, a handler's of the street office); and
    the hotline case to work on, reported in a grid of 白庄街道 and routed to the handler's unit."""
    from bench.bench_wall import fill_cases
    from cases.service import CaseService
    from data.area_directory import AreaDirectory
    from data.db import Database
    from data.tokens import Principal, create_token

    d = tmp_path_factory.mktemp("rounds")
    path = d / "rounds.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    fill_cases(path, 600, now=datetime.now(timezone.utc) - timedelta(minutes=10), days=10, seed=5)
    db = Database(f"sqlite:///{path}")
    areas = AreaDirectory(db)
    service = CaseService(db, areas)
    duty = Principal("user", "user:duty", "duty_officer", "320400")
    case = None
    for grid in [r for r in areas.records() if r.level == 5 and r.code.startswith(STREET)][:40]:
        p = grid.geometry.representative_point()
        body = {"category": CATEGORY, "lon": round(p.x, 6), "lat": round(p.y, 6), "source": "hotline",
                "description": "市民来电：小区门口垃圾堆积三天无人清运", "reporter_phone": "13912345678",
                "external_ref": "12345-20261207-0042"}
        preview = service.preview(body, duty)
        if (preview["unit"] or {}).get("code") == UNIT and preview["merge_into"] is None:
            case, _ = service.intake(body, duty, actor="user:duty")
            break
    assert case is not None, f"no grid of {STREET} routes a {CATEGORY_NAME} report to {UNIT} without merging"
    grid = next(a["code"] for a in case["chain"] if a["level"] == 5)
    with db.session() as s:
        tokens = {"admin": create_token(s, "admin", label="rounds test"),
                  "grid": create_token(s, "grid_member", grid, label="网格员（测试）"),
                  "office": create_token(s, "unit_handler", STREET, OFFICE, label="街道办（测试）")}
    db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log").wait_ready()
    app.tokens, app.case_id = tokens, case["id"]
    yield app
    app.stop()


def api(app, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(app.url + "/api/v1" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def act_api(app, token: str, action: str, **extra) -> dict:
    status, case = api(app, "GET", f"/events/{app.case_id}", app.tokens["admin"])
    status, case = api(app, "POST", f"/events/{app.case_id}/actions", app.tokens[token],
                       {"action": action, "version": case["version"], **extra})
    assert status == 200, (action, case)
    return case


@pytest.fixture
def pages(browser):
    opened = []

    def _new(width=1920, height=1080):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        opened.append(ctx)
        return ctx.new_page()

    yield _new
    for ctx in opened:
        ctx.close()


def open_console(new_page, app, user: str):
    page = new_page()
    watch = PageWatch(page, app.url)
    sign_in(page, app.url, user, then="/console")
    if "/console" not in page.url:
        page.goto(app.url + "/console")
    page.wait_for_function("() => (document.getElementById('cs-count') || {}).textContent?.startsWith('共 ')",
                           timeout=30_000)
    page.evaluate(MARK)
    return page, watch


def open_case(page, case_id: int) -> None:
    page.fill("#cs-search", str(case_id))
    page.press("#cs-search", "Enter")
    page.wait_for_function(f"() => (document.getElementById('cs-detail-root') || {{}}).dataset?.case === '{case_id}'",
                           timeout=15_000)


def state_is(page, label: str) -> None:
    page.wait_for_function("label => document.getElementById('cs-d-state')?.textContent === label",
                           arg=label, timeout=15_000)


def actions(page) -> list[str]:
    return page.eval_on_selector_all(".cs-act", "els => els.map(e => e.getAttribute('data-action'))")


def press(page, action: str, label: str) -> None:
    """An action that asks for nothing: one click, the new state."""
    page.click(f'[data-action="{action}"]')
    state_is(page, label)


def stage_marks(page) -> dict:
    return dict(page.eval_on_selector_all(
        "#cs-stages .cs-stage", "els => els.map(e => [e.dataset.stage, e.querySelector('.cs-stage-tag').textContent])"))


def test_verify_dispatch_return_reassign_assist_supervise_callback_reopen(pages, rounds_app):
    app, case_id = rounds_app, rounds_app.case_id
    duty, duty_watch = open_console(pages, app, "duty")
    open_case(duty, case_id)
    state_is(duty, "已上报")
    assert actions(duty) == ["accept", "reject", "verify_request", "void"]
    assert "受理时限" in duty.inner_text("#cs-countdown")     # the center's own clock runs first
    assert "12345-20261207-0042" in duty.inner_text("#cs-detail-root")

    # ---- 核实: sent to the grid's member, who finds it 属实 (the API: no page of theirs does 核实) ----------
    press(duty, "verify_request", "核实中")
    assert actions(duty) == ["void"]                            # the center waits for the answer
    assert stage_marks(duty)["check"] == "进行中"
    act_api(app, "grid", "report_check", result="confirmed", note="现场确认，约 2 立方米生活垃圾")
    duty.wait_for_selector("#cs-stale:not([hidden])", timeout=15_000)   # the stream says so at once
    duty.click("#cs-stale-reload")
    state_is(duty, "已上报")
    assert "属实" in duty.inner_text("#cs-detail-root")

    # ---- 立案, 派遣 to the routed unit -----------------------------------------------------------------------
    press(duty, "accept", "已立案")
    assert "派遣时限" in duty.inner_text("#cs-countdown")
    duty.click('[data-action="dispatch"]')
    duty.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    assert UNIT_NAME in duty.inner_text("#cs-act-unit-row")
    duty.click("#cs-act-go")
    state_is(duty, "已派遣")
    marks = stage_marks(duty)
    assert [marks[k] for k in ("accept", "check", "file", "dispatch")] == ["按时"] * 4, marks
    assert marks["handle"] == "进行中" and marks["review"] == marks["close"] == "未开始", marks

    # ---- the handler returns it: a reason is required ---------------------------------------------------
    unit = pages()
    unit_watch = PageWatch(unit, app.url)
    sign_in(unit, app.url, "handler", then=f"/unit?case={case_id}")
    if "/unit" not in unit.url:
        unit.goto(f"{app.url}/unit?case={case_id}")
    unit.wait_for_selector(f".un-case[data-case='{case_id}']", timeout=30_000)
    unit.wait_for_selector(".un-conn--ok", timeout=15_000)
    unit.evaluate(MARK)
    for shown in ("#un-sign", "#un-return", "#un-extend", "#un-suspend"):
        assert unit.is_visible(shown), shown
    assert not unit.is_visible("#un-resolve")                  # not before signing
    assert "处置环节" in unit.inner_text("#un-handling") and "自派遣" in unit.inner_text("#un-handling")
    unit.fill("#un-reason", "该小区垃圾清运由街道环卫所负责，不属本局职责")
    unit.click("#un-return")
    unit.wait_for_selector("#un-case-state:has-text('已退回')", timeout=15_000)
    assert unit.is_visible("#un-none") and "等待改派" in unit.inner_text("#un-none")

    # ---- 改派 to the street office (a reason, another unit), and the handler's unit as 协办 -------------------
    duty.wait_for_selector("#cs-stale:not([hidden])", timeout=15_000)
    duty.click("#cs-stale-reload")
    state_is(duty, "已退回")
    offered = actions(duty)
    assert {"reassign", "refuse_return", "add_assist"} <= set(offered) and "dispatch" not in offered, offered
    duty.click('[data-action="reassign"]')
    duty.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    assert "改派给" in duty.inner_text("#cs-act-form") and "改派理由" in duty.inner_text("#cs-act-form")
    duty.click("#cs-act-go")                                     # no unit, no reason: the service says why
    duty.wait_for_function("() => document.getElementById('cs-act-msg').textContent.length > 0", timeout=10_000)
    assert "改派" in duty.inner_text("#cs-act-msg")
    state_is(duty, "已退回")
    choose_option(duty, "#cs-act-unit", "白庄街道", OFFICE_NAME)
    duty.fill("#cs-act-note", "街道环卫所负责该小区清运，改派街道办")
    duty.click("#cs-act-go")
    state_is(duty, "已派遣")
    assert OFFICE_NAME in duty.inner_text("#cs-detail-root")
    assert "改派 ×1" in duty.inner_text("#cs-marks")
    duty.click('[data-action="add_assist"]')
    duty.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    choose_option(duty, "#cs-act-unit", "城市管理局", UNIT_NAME)
    duty.click("#cs-act-go")
    duty.wait_for_function("() => document.getElementById('cs-d-msg').textContent.includes('「增加协办单位」完成')",
                           timeout=15_000)
    assert "待签收" in duty.inner_text("#cs-oversight") and UNIT_NAME in duty.inner_text("#cs-oversight")

    # ---- the 协办 unit: the case, its sign and its feedback, nothing else -------------------------------------
    unit.wait_for_selector(f".un-case[data-version='{act_api_version(app)}']", timeout=15_000)
    unit.wait_for_selector("#un-sign:has-text('签收协办任务')", timeout=15_000)
    for hidden in ("#un-return", "#un-extend", "#un-suspend", "#un-resolve"):
        assert not unit.is_visible(hidden), hidden
    assert "本单位为协办单位" in unit.inner_text("#un-assists") and OFFICE_NAME in unit.inner_text("#un-assists")
    unit.click("#un-sign")
    unit.wait_for_function("() => document.getElementById('un-msg').textContent.includes('协办任务')", timeout=15_000)
    unit.wait_for_selector("#un-resolve:has-text('提交协办反馈')", timeout=15_000)
    assert not unit.is_visible("#un-sign") and not unit.is_visible("#un-photo")
    unit.fill("#un-resolve-note", "已派清运车配合街道清理")
    unit.click("#un-resolve")
    unit.wait_for_function("() => document.getElementById('un-msg').textContent.includes('协办情况')", timeout=15_000)
    unit.wait_for_selector("#un-none:not([hidden])", timeout=15_000)
    unit.wait_for_selector("#un-case-state:has-text('已派遣')")   # the lead still holds the case

    # ---- a leader 督办s it and finds it in their 督办件 list; the handler sees the 督办 -----------------------------
    leader, leader_watch = open_console(pages, app, "leader")
    leader.wait_for_selector("#cs-side.is-sup #cs-sup-list", timeout=15_000)   # where a leader lands
    assert not leader.locator(f"#cs-sup-list [data-case='{case_id}']").count()
    open_case(leader, case_id)
    assert actions(leader) == ["urge", "supervise", "escalate"]
    leader.click('[data-action="supervise"]')
    leader.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    leader.fill("#cs-act-hours", "4")
    leader.fill("#cs-act-note", "群众反映强烈，今日内清理到位")
    leader.click("#cs-act-go")
    leader.wait_for_function("() => document.getElementById('cs-d-msg').textContent.includes('「督办」完成')",
                             timeout=15_000)
    marks = leader.inner_text("#cs-marks")
    assert "市级督办" in marks and "时限" in marks, marks
    assert "群众反映强烈" in leader.inner_text("#cs-oversight")
    leader.click("#cs-sup-btn")
    row = leader.locator(f"#cs-sup-list [data-case='{case_id}']")
    row.wait_for(timeout=15_000)
    text = row.inner_text()
    assert "市级督办" in text and "督办时限" in text and "已逾期" not in text and OFFICE_NAME in text, text
    leader.mouse.move(5, 5)
    save_screenshot(leader, "rounds-leader-supervised-1920x1080.png")
    row.click()                                                  # the list opens the case
    leader.wait_for_selector(f"#cs-detail-root[data-case='{case_id}']", timeout=15_000)
    unit.wait_for_selector("#un-sup-line", timeout=15_000)
    assert "市级督办" in unit.inner_text("#un-sup-line") and "督办时限" in unit.inner_text("#un-sup-line")

    # ---- the street office finishes (API), the officer checks, closes, calls back: 不满意 → 重办 -----------------
    act_api(app, "office", "sign")
    act_api(app, "office", "resolve", note="已组织环卫所清运并冲洗地面")
    duty.wait_for_selector("#cs-stale:not([hidden])", timeout=15_000)
    duty.click("#cs-stale-reload")
    state_is(duty, "已处置")
    press(duty, "verify", "核查通过")
    press(duty, "close", "已结案")
    assert actions(duty) == ["callback"]
    duty.click('[data-action="callback"]')
    duty.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    assert [t.strip() for t in duty.locator("#cs-act-choice label").all_inner_texts()] == ["满意", "基本满意", "不满意"]
    duty.click("#cs-act-go")                                     # no result chosen: told, nothing written
    duty.wait_for_function("() => document.getElementById('cs-act-msg').textContent.includes('回访结果')",
                           timeout=10_000)
    duty.locator("#cs-act-choice label", has_text="不满意").click()
    duty.fill("#cs-act-note", "市民反映楼道口仍有垃圾")
    duty.click("#cs-act-go")
    duty.wait_for_function("() => document.getElementById('cs-d-msg').textContent.includes('「回访」完成')",
                           timeout=15_000)
    assert "回访不满意" in duty.inner_text("#cs-marks")
    assert actions(duty) == ["reopen"]
    duty.click('[data-action="reopen"]')
    duty.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
    assert "重办原因" in duty.inner_text("#cs-act-form")
    duty.fill("#cs-act-note", "回访不满意：楼道口仍有垃圾")
    duty.click("#cs-act-go")
    state_is(duty, "已派遣")
    assert "重办 ×1" in duty.inner_text("#cs-marks")
    duty.mouse.move(5, 5)
    save_screenshot(duty, "rounds-console-reopened-1920x1080.png")

    # ---- the record -------------------------------------------------------------------------------------------
    status, case = api(app, "GET", f"/events/{case_id}", app.tokens["admin"])
    assert status == 200 and case["state"] == "dispatched" and case["unit"]["code"] == OFFICE
    steps = [(h["action"], h["actor"]) for h in case["history"]]
    assert steps[1:] == [
        ("verify_request", "user:duty"), ("report_check", steps[2][1]), ("accept", "user:duty"),
        ("dispatch", "user:duty"), ("return", "user:handler"), ("reassign", "user:duty"),
        ("add_assist", "user:duty"), ("sign", "user:handler"), ("resolve", "user:handler"),
        ("supervise", "user:leader"), ("sign", steps[11][1]), ("resolve", steps[12][1]), ("verify", "user:duty"),
        ("close", "user:duty"), ("callback", "user:duty"), ("reopen", "user:duty")], steps
    assert case["check_result"] == "confirmed" and case["callback"]["result"] == "unsatisfied"
    assert case["reassign_count"] == 1 and case["reopen_count"] == 1
    # 重办 starts a new round: the 督办 of the last one ends (its record stays on the case)
    assert case["supervision_level"] is None and not case["supervised"]
    assert [(r["kind"], r["level"]) for r in case["supervision"] if not r["automatic"]] == [("supervise", 1)]
    assert case["assists"][0]["unit"]["code"] == UNIT and case["assists"][0]["note"] == "已派清运车配合街道清理"
    for name, page, watch in (("duty", duty, duty_watch), ("unit", unit, unit_watch), ("leader", leader, leader_watch)):
        assert page.evaluate(MARKED), f"the {name} page reloaded"
        assert watch.errors == [], f"{name}: console errors {watch.errors[:5]}"
        assert watch.foreign == [], f"{name}: requests to other hosts {watch.foreign[:5]}"


def act_api_version(app) -> int:
    """The case's version now (the page must show at least this one)."""
    return api(app, "GET", f"/events/{app.case_id}", app.tokens["admin"])[1]["version"]
