"""A gas leak walked from the 12345 intake to the end of its response in real browsers, by the people who do it:
the city duty officer takes the call on /console (燃气泄漏, 等级 IV) and 立案s it, activates the plan on /emergency,
the two units tasked — the district's housing bureau (lead) and the gas company (assisting) — acknowledge on /unit,
the officer ticks the checklist, files the first report and sends the nearest team, the lead unit signs and reports the handling done, the
officer files the final report and ends the response. At the end the API tells the whole story."""
from __future__ import annotations

import json
import shutil
import urllib.request

import pytest

from tests.browser.conftest import PageWatch, choose_option, sign_in
from tests.serving import AppProcess

pytestmark = pytest.mark.browser

LON, LAT = 119.975, 31.79                # central 天宁区
LEAD = "U-320402-housing_construction"  # 天宁区住房和城乡建设局: the gas plan's lead at a level IV
GAS = "U-320400-gas"                    # 常州港华燃气有限公司: assisting
PASSWORD = "walk-the-leak-2026"


@pytest.fixture(scope="module")
def walk_app(demo_sqlite_url, tmp_path_factory):
    """The demo city with two unit handlers for the tasked units and an admin token to read the result."""
    from data.db import Database
    from data.tokens import create_token
    from data.users import create_user

    d = tmp_path_factory.mktemp("walk")
    path = d / "walk.db"
    shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), path)
    db = Database(f"sqlite:///{path}")
    with db.session() as s:
        create_user(s, "lead_handler", PASSWORD, "unit_handler", "320402", LEAD, "住建局 李工")
        create_user(s, "gas_handler", PASSWORD, "unit_handler", "320400", GAS, "燃气公司 王工")
        token = create_token(s, "admin", label="walk test")
    db.dispose()
    app = AppProcess(f"sqlite:///{path}", d / "app.log").wait_ready()
    app.token = token
    yield app
    app.stop()


def _get(app, path: str) -> dict:
    req = urllib.request.Request(app.url + path, headers={"Authorization": f"Bearer {app.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _page(browser, app, user: str, then: str, password: str | None = None):
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = ctx.new_page()
    watch = PageWatch(page, app.url)
    sign_in(page, app.url, user, then=then, password=password)
    if then not in page.url:
        page.goto(app.url + then)
    return ctx, page, watch


def _acknowledge_on_unit(page, case_id: int) -> None:
    """A handler's 签收 of the unit's task from the 应急联动任务 card of /unit."""
    button = page.locator(f"#un-emg-list button[id*='\"case\":{case_id}']")
    button.wait_for(timeout=30_000)
    assert "签收" in button.inner_text() and "剩余" in button.inner_text()
    button.click()
    page.wait_for_function("() => document.getElementById('un-emg-msg').textContent.includes('应急联动任务')",
                           timeout=30_000)
    page.wait_for_selector("#un-emg-list .un-emg-done", timeout=30_000)


def test_a_gas_leak_from_the_call_to_the_final_report_with_two_units(browser, walk_app):
    opened = []
    try:
        ctx, duty, duty_watch = _page(browser, walk_app, "duty", "/console")
        opened.append(ctx)
        # ---- 1. the call: 12345 intake on the console, an emergency needs its level ----------------------------------
        duty.wait_for_selector("#cs-new", timeout=30_000)
        duty.click("#cs-new")
        duty.wait_for_selector("#cs-in-category", timeout=10_000)
        choose_option(duty, "#cs-in-category", "燃气泄漏")
        duty.wait_for_selector("#cs-in-severity-row:not([hidden])", timeout=10_000)
        duty.click("#cs-in-severity")  # not searchable: open it and pick the level
        duty.locator(".dash-dropdown-content [role=option], .dash-dropdown-content .dash-dropdown-option",
                     has_text="Ⅳ级 一般").first.click()
        duty.wait_for_selector("#cs-in-severity:has-text('Ⅳ级 一般')", timeout=10_000)
        duty.fill("#cs-in-lon", str(LON))
        duty.fill("#cs-in-lat", str(LAT))
        duty.fill("#cs-in-phone", "13912345678")
        duty.fill("#cs-in-description", "市民来电：小区门口燃气管道泄漏，气味浓烈")
        duty.click("#cs-in-submit")
        duty.wait_for_function("() => (document.getElementById('cs-d-msg') || {}).textContent?.includes('已受理')",
                               timeout=30_000)
        case_id = int(duty.get_attribute("#cs-detail-root", "data-case"))
        duty.click('[data-action="accept"]')
        duty.wait_for_function("() => document.getElementById('cs-d-state')?.textContent === '已立案'", timeout=30_000)
        # the console now names the emergency waiting for its plan? it is listed on /emergency
        # ---- 2. the plan activated at level IV on /emergency ------------------------------------------------------------
        duty.goto(walk_app.url + f"/emergency?case={case_id}")
        duty.wait_for_selector("#em-activate-box:not([hidden])", timeout=30_000)
        duty.click("#em-activate-level label:has-text('Ⅳ级')")
        duty.click("#em-activate")
        duty.wait_for_selector("#em-tasks .em-task", timeout=30_000)
        tasks = duty.inner_text("#em-tasks")
        assert "天宁区住房和城乡建设局" in tasks and "常州港华燃气有限公司" in tasks and "待签收" in tasks
        # ---- 3. both units acknowledge on /unit; the officer's page follows live --------------------------------------
        for user, unit in (("lead_handler", LEAD), ("gas_handler", GAS)):
            uctx, unit_page, unit_watch = _page(browser, walk_app, user, "/unit", PASSWORD)
            opened.append(uctx)
            _acknowledge_on_unit(unit_page, case_id)
            duty.wait_for_function(f"document.querySelector(\"#em-tasks .em-task[data-unit='{unit}']\")"
                                   ".textContent.includes('已签收')", timeout=30_000)
            assert unit_watch.errors == [] and unit_watch.foreign == []
            if user == "lead_handler":
                lead_page = unit_page
        assert "任务单位（已签收 2/5）" in duty.inner_text("#em-tasks")
        # ---- 4. the first actions ticked and the first report filed from its draft ----------------------------------
        for pos in (1, 2):
            duty.click(f".em-check[data-pos='{pos}'] .em-tick")
            duty.wait_for_selector(f".em-check.is-done[data-pos='{pos}']", timeout=30_000)
        duty.wait_for_function("document.querySelector('#em-report-text').value.startsWith('【首报】燃气泄漏')",
                               timeout=30_000)
        duty.fill("#em-f-evacuated", "60")
        duty.click("#em-report-btn")
        duty.wait_for_selector("#em-reports .em-report[data-kind='first']:not(.is-owed)", timeout=30_000)
        # ---- 4b. the nearest available team sent from the resources panel ------------------------------------------
        duty.wait_for_selector("#em-resources tr:has(.em-rtype.is-team) button:has-text('调配')", timeout=30_000)
        team_row = duty.locator("#em-resources tr:has(.em-rtype.is-team):has(button:has-text('调配'))").first
        team = team_row.get_attribute("data-res")
        team_row.locator("button:has-text('调配')").click()
        duty.wait_for_function("document.querySelector('#em-msg').textContent.includes('已调配')", timeout=30_000)
        duty.wait_for_selector("#em-alloc", timeout=30_000)
        assert "已调配 1 项" in duty.inner_text("#em-alloc")
        # ---- 5. the lead unit handles it: dispatched by the officer, signed and reported done on /unit -------------------
        case = _get(walk_app, f"/api/v1/events/{case_id}")
        assert case["unit"]["code"] == LEAD
        duty.goto(walk_app.url + f"/console?case={case_id}")
        duty.wait_for_selector('[data-action="dispatch"]', timeout=30_000)
        duty.click('[data-action="dispatch"]')
        duty.wait_for_selector("#cs-act-form.is-open", timeout=10_000)
        duty.click("#cs-act-go")
        duty.wait_for_function("() => document.getElementById('cs-d-state')?.textContent === '已派遣'", timeout=30_000)
        lead_page.goto(walk_app.url + f"/unit?case={case_id}")
        lead_page.wait_for_selector("#un-sign:not([disabled])", timeout=30_000)
        lead_page.click("#un-sign")
        lead_page.wait_for_selector("#un-case-state:has-text('已签收')", timeout=30_000)
        lead_page.fill("#un-resolve-note", "泄漏点已切断并修复，浓度检测正常，警戒解除")
        lead_page.click("#un-resolve")
        lead_page.wait_for_selector("#un-case-state:has-text('已处置')", timeout=30_000)
        # ---- 6. the final report now owed; filed; the response ended --------------------------------------------------
        duty.goto(walk_app.url + f"/emergency?case={case_id}")
        duty.wait_for_function("document.querySelector('#em-report-text') && "
                               "document.querySelector('#em-report-text').value.startsWith('【终报】')", timeout=30_000)
        assert "疏散转移60人" in duty.input_value("#em-report-text")
        duty.click("#em-report-btn")
        duty.wait_for_selector("#em-reports .em-report[data-kind='final']:not(.is-owed)", timeout=30_000)
        duty.click("#em-end")
        duty.wait_for_function("document.querySelector('#em-msg').textContent.includes('结束')", timeout=30_000)
        assert duty_watch.errors == [] and duty_watch.foreign == []
    finally:
        for ctx in opened:
            ctx.close()
    # ---- the story, as the API tells it --------------------------------------------------------------------------------
    case = _get(walk_app, f"/api/v1/events/{case_id}")
    r = case["response"]
    assert r["status"] == "ended" and r["level"] == 4 and r["plan"]["code"] == "gas_leak"
    acked = {t["unit"]["code"]: t["acknowledged_by"] for t in r["tasks"] if t["acknowledged_at"]}
    assert acked == {LEAD: "user:lead_handler", GAS: "user:gas_handler"}
    assert [x["kind"] for x in r["reports"]] == ["first", "final"]
    assert [i["position"] for i in r["checklist"] if i["done_at"]] == [1, 2]
    assert [(a["resource"], a["released_at"]) for a in r["resources"]] == [(team, None)]
    assert _get(walk_app, f"/api/v1/resources/{team}")["status"] == "deployed"
    actions = [h["action"] for h in case["history"]]
    for step in ("report", "accept", "activate_plan", "acknowledge", "check_item", "dispatch", "sign", "resolve",
                 "end_response"):
        assert step in actions, (step, actions)
    assert actions.index("activate_plan") < actions.index("acknowledge") < actions.index("end_response")
