"""The monthly assessment report (figures/report.py): the workbook re-read says what figures.service says,
the PDF renders Chinese on A4, and the CLI and the download route refuse bad requests cleanly."""
from __future__ import annotations

import shutil
import subprocess
from datetime import date, timedelta
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from data.tokens import Principal
from figures import report
from figures import service as figures
from tests.test_auth import _login

OFFICER = Principal("user", "officer", "duty_officer", "320400")
# Points in several of Changzhou's districts (the demo city)
POINTS = [(119.975, 31.79), (119.93, 31.78), (119.96, 31.86), (119.95, 31.70), (119.975, 31.792)]
SHEETS = ["概况", "区县排名", "街道排名", "部门评价", "扣分汇总", "扣分明细", "网格员评价", "值班员评价", "得分趋势"]


@pytest.fixture
def out_dir(tmp_path):
    """A directory of its own (tmp_path also holds the app's database)."""
    d = tmp_path / "reports"
    d.mkdir()
    return d


@pytest.fixture
def month_app(demo_app):
    """The demo app with a few cases this month: reported from several districts, some accepted and
    dispatched. Returns (app, month as YYYY-MM)."""
    cases = demo_app.extensions["ucc"].cases
    made = []
    for i, (lon, lat) in enumerate(POINTS):
        c, _ = cases.intake({"category": "020102", "lon": lon, "lat": lat, "description": f"垃圾堆放{i}",
                             "source": "patrol" if i % 2 else "hotline"}, OFFICER)
        made.append(c)
    for c in made[:3]:
        if c["state"] == "reported":
            c = cases.act(c["id"], OFFICER, "accept", c["version"])
        if c["state"] == "accepted":
            cases.act(c["id"], OFFICER, "dispatch", c["version"])
    return demo_app, made[0]["reported_at"][:7]


def _month_days(month: str) -> tuple[date, date]:
    first = date.fromisoformat(month + "-01")
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def _sheet_rows(ws) -> list[dict]:
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def test_the_workbook_holds_the_service_figures(month_app, out_dir):
    app, month = month_app
    cases = app.extensions["ucc"].cases
    data = report.report_data(cases, month)
    path = report.write_report(data, out_dir / "通报.xlsx")
    assert [p.name for p in out_dir.iterdir()] == ["通报.xlsx"]  # no temporary file left

    wb = load_workbook(path)
    assert wb.sheetnames == SHEETS
    assert "考核通报" in wb["概况"]["A1"].value and month[:4] in wb["概况"]["A1"].value
    first, last = _month_days(month)
    for sheet, by, cols in (("区县排名", "district", report.TABLES[0][3]), ("街道排名", "street", report.TABLES[1][3]),
                            ("部门评价", "unit", report.UNIT_COLUMNS)):
        ws = wb[sheet]
        assert [c.value for c in ws[1]] == [c.header for c in cols]
        assert ws.freeze_panes == "A2"
        expected = {i["code"]: i for i in figures.assessment(cases, first, last, by)["items"]}
        rows = _sheet_rows(ws)
        code_header = cols[-1].header
        assert {r[code_header] for r in rows} == set(expected)
        for row in rows:
            want = expected[row[code_header]]
            for c in cols:
                if c.key in want and c.kind in ("int", "rate", "score", "num"):
                    got, exp = row[c.header], want[c.key]
                    assert got == pytest.approx(exp) if exp is not None else got is None, (sheet, c.key)
        # a rate is a number shown as a percentage, not a string
        rate_col = next(j for j, c in enumerate(cols, 1) if c.kind == "rate")
        cell = ws.cell(row=2, column=rate_col)
        assert "%" in cell.number_format

    # the month's ranking with the change of rank is the service's
    ranking = {i["code"]: i for i in figures.monthly_ranking(cases, month, "district")["items"]}
    for row in _sheet_rows(wb["区县排名"]):
        want = ranking[row["区域代码"]]
        assert (row["名次"], row["名次变化"], row["上月名次"]) == (want["rank"], want["rank_change"], want["previous_rank"])

    # the summary sheet's city figures are the city's
    city = figures.assessment(cases, first, last, "city")["items"][0]
    summary = {r[0].value: r[1].value for r in wb["概况"].iter_rows(min_row=8) if r[0].value}
    assert summary["受理数"] == city["received"] and summary["立案数"] == city["accepted"]
    assert city["received"] >= len(POINTS) - 1

    trend = _sheet_rows(wb["得分趋势"])
    assert len(trend) == report.TREND_MONTHS and trend[-1]["月份"] == month


def test_the_pdf_is_a4_with_chinese_text_and_not_blank(month_app, out_dir):
    from PIL import Image

    app, month = month_app
    data = report.report_data(app.extensions["ucc"].cases, month)
    pdf = report.write_report(data, out_dir / "report.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "考核通报" in text and "常州市" in text and "区域评价" in text and "部门评价" in text
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "595.276 x 841.89" in info  # A4 in points
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(out_dir / "page")], check=True)
    png = next(out_dir.glob("page*.png"))
    gray = Image.open(png).convert("L")
    dark = sum(gray.histogram()[:200])
    assert dark > gray.width * gray.height * 0.01  # text, tables and the chart, not an empty page
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "TrueType" in fonts and " yes " in fonts  # the CJK font is embedded: no network, no viewer's fallback


def test_months_are_checked():
    assert report.parse_month("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert report.parse_month("2024-12") == (date(2024, 12, 1), date(2024, 12, 31))
    for bad in ("2026-13", "2026-00", "2026/11", "26-11", "2026-1", "", "1800-01"):
        with pytest.raises(report.ReportError):
            report.parse_month(bad)


def test_the_command_writes_either_format_and_refuses_bad_requests(month_app, out_dir):
    app, month = month_app
    runner = app.test_cli_runner()
    for name in ("r.xlsx", "r.PDF"):
        ok = runner.invoke(args=["assessment-report", "--month", month, "--out", str(out_dir / name)])
        assert ok.exit_code == 0, ok.output
        assert "已生成" in ok.output and (out_dir / name).stat().st_size > 1000
    assert sorted(p.name for p in out_dir.iterdir()) == ["r.PDF", "r.xlsx"]

    future = date.today().replace(day=1) + timedelta(days=400)
    out = out_dir / "bad"
    out.mkdir()
    a_directory = out_dir / "dir.xlsx"
    a_directory.mkdir()
    for args, says in (
            (["--month", "2026-13", "--out", str(out / "a.xlsx")], "YYYY-MM"),
            (["--month", "2026/11", "--out", str(out / "a.xlsx")], "YYYY-MM"),
            (["--month", f"{future:%Y-%m}", "--out", str(out / "a.pdf")], "尚未开始"),
            (["--month", month, "--out", str(out / "a.csv")], ".xlsx 或 .pdf"),
            (["--month", month, "--out", str(out / "missing" / "a.xlsx")], "不存在"),
            (["--month", month, "--out", str(a_directory)], "目录")):
        bad = runner.invoke(args=["assessment-report", *args])
        assert bad.exit_code != 0, args
        assert says in bad.output, (args, bad.output)
        assert "Traceback" not in bad.output
    assert list(out.iterdir()) == []  # nothing written, not even a temporary file


def test_a_failed_write_leaves_nothing(month_app, out_dir, monkeypatch):
    app, month = month_app
    data = report.report_data(app.extensions["ucc"].cases, month)
    target = out_dir / "r.xlsx"
    target.write_bytes(b"the old report")

    def broken(_data, path):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(report.WRITERS, "xlsx", broken)
    with pytest.raises(OSError):
        report.write_report(data, target)
    assert [p.name for p in out_dir.iterdir()] == ["r.xlsx"] and target.read_bytes() == b"the old report"


def test_the_download_route(month_app, token_for):
    app, month = month_app
    client = app.test_client()
    url = f"/api/v1/assessment/report?month={month}"
    for role in ("admin", "leader", "duty_officer"):
        headers = {"Authorization": f"Bearer {token_for(role)}"}
        resp = client.get(url + "&format=xlsx", headers=headers)
        assert resp.status_code == 200, (role, resp.get_data(as_text=True)[:300])
        assert resp.mimetype == report.MIME["xlsx"] and resp.data[:2] == b"PK"
        disposition = resp.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
        name = unquote(disposition.split("filename*=UTF-8''")[1])
        assert name.endswith("考核通报.xlsx") and "常州市" in name
    pdf = client.get(url + "&format=pdf", headers={"Authorization": f"Bearer {token_for('leader')}"})
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"

    for role, unit in (("grid_member", None), ("unit_handler", "U-320400-city_management"), ("wall", None)):
        resp = client.get(url, headers={"Authorization": f"Bearer {token_for(role, unit=unit)}"})
        assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    admin = {"Authorization": f"Bearer {token_for('admin')}"}
    for query in ("month=2026-13", "month=abc", "", f"month={month}&format=docx", "month=0000-09", "month=9999-12"):
        resp = client.get(f"/api/v1/assessment/report?{query}", headers=admin)
        assert resp.status_code == 400, query
        body = resp.get_json()
        assert body["error"] == "bad_request" and body["message"]
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_cockpit_downloads_with_its_session(month_app):
    app, month = month_app
    client = app.test_client()
    assert _login(client, "leader").status_code == 302
    resp = client.get(f"/api/v1/assessment/report?month={month}&format=pdf")
    assert resp.status_code == 200 and resp.data[:5] == b"%PDF-"
    other = app.test_client()
    assert _login(other, "grid").status_code == 302
    assert other.get(f"/api/v1/assessment/report?month={month}").status_code == 403


def test_the_tools_the_tests_use_are_installed():
    # scripts/ensure_system_deps.sh installs poppler-utils and the TrueType CJK font
    assert shutil.which("pdftoppm") and shutil.which("pdftotext")
    assert report._cjk_font() == report.FONT_NAME


def test_each_post_is_ranked_on_its_own():
    persons = [{"code": "g1", "role": "grid_member", "rank": 1, "score": 95},
               {"code": "d1", "role": "duty_officer", "rank": 2, "score": 90, "rank_change": 5},
               {"code": "g2", "role": "grid_member", "rank": 3, "score": 80},
               {"code": "d2", "role": "duty_officer", "rank": 4, "score": 70},
               {"code": "d3", "role": "duty_officer", "rank": None, "score": None}]
    previous = [{"code": "d2", "role": "duty_officer", "rank": 1}, {"code": "g2", "role": "grid_member", "rank": 2},
                {"code": "d1", "role": "duty_officer", "rank": 3}]
    grid, duty = report._posts(persons, lambda: previous)
    assert [(p["code"], p["rank"], p.get("previous_rank"), p.get("rank_change")) for p in grid] == [
        ("g1", 1, None, None), ("g2", 2, 1, -1)]
    assert [(p["code"], p["rank"], p.get("previous_rank"), p.get("rank_change")) for p in duty] == [
        ("d1", 1, 2, 1), ("d2", 2, 1, -1), ("d3", None, None, None)]
    # ranks already per post are the service's, untouched (and last month is not read)
    apart = [{"code": "g1", "role": "grid_member", "rank": 1, "rank_change": 3},
             {"code": "d1", "role": "duty_officer", "rank": 1, "rank_change": -2}]
    grid, duty = report._posts(apart, lambda: pytest.fail("last month read for nothing"))
    assert (grid[0]["rank_change"], duty[0]["rank_change"]) == (3, -2)


def test_the_levels_read_together_are_the_levels_read_alone(month_app):
    app, month = month_app
    cases = app.extensions["ucc"].cases
    first, last = _month_days(month)
    prev_last = first - timedelta(days=1)
    prev_first = prev_last.replace(day=1)
    levels = ["city", "district", "street"]
    scoped = Principal("user", "street", "duty_officer", "320402")
    for principal in (None, scoped):
        now_ = figures.assessment_levels(cases, first, last, levels, principal=principal)
        before = figures.assessment_levels(cases, prev_first, prev_last, levels, principal=principal)
        for by in levels:
            assert now_[by] == figures.assessment(cases, first, last, by, principal=principal)
            joined = figures.with_previous(now_[by], before[by], month)
            assert joined["items"] == figures.monthly_ranking(cases, month, by, principal=principal)["items"]
    with pytest.raises(figures.FigureError):
        figures.assessment_levels(cases, first, last, ["city", "unit"])


# What each kind of column shows in the workbook (issue 15's report: counts, rates as percentages, scores)
KIND_FORMATS = {"int": "#,##0", "rate": "0.00%", "score": "0.00", "num": "#,##0.00",
                "change": '"↑"0;"↓"0;"—"', "datetime": "yyyy-mm-dd hh:mm"}


def test_the_workbook_keeps_each_columns_format_and_blanks(month_app, out_dir):
    import re
    import zipfile
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    app, month = month_app
    data = report.report_data(app.extensions["ucc"].cases, month)
    # penalty rows whose first row is blank where the others have numbers and times: the writer
    # detects a column's type from its cells, not from its first row
    at = datetime.fromisoformat(month + "-03T01:05:00+00:00")
    penalties = [{"unit_name": "城管局", "case_id": "C0", "points": None, "rule_label": "超期", "reason": None,
                  "at": None, "unit_code": "U0"}]
    penalties += [{"unit_name": "城管局", "case_id": f"C{i}", "points": 0.5 * i + 0.25, "rule_label": "超期",
                   "reason": "超期未结", "at": at + timedelta(hours=7 * i), "unit_code": "U0"} for i in range(1, 5)]
    data["tables"]["penalties"] = penalties
    data["tables"]["penalty_units"] = []
    path = report.write_report(data, out_dir / "r.xlsx")
    wb = load_workbook(path)

    ws = wb["扣分明细"]
    rows = _sheet_rows(ws)
    assert [r["案件编号"] for r in rows] == [p["case_id"] for p in penalties]
    assert rows[0]["扣分"] is None and rows[0]["时间"] is None and rows[0]["说明"] is None
    city = ZoneInfo("Asia/Shanghai")
    for i, p in enumerate(penalties[1:], 3):
        points, when = ws.cell(row=i, column=3), ws.cell(row=i, column=6)
        assert isinstance(points.value, (int, float)) and points.value == pytest.approx(p["points"])
        assert points.number_format == KIND_FORMATS["num"]
        # Excel has no time zones: the city's wall-clock time
        assert when.value == p["at"].astimezone(city).replace(tzinfo=None)
        assert when.number_format == KIND_FORMATS["datetime"]
    assert ws.auto_filter.ref == f"A1:G{len(penalties) + 1}" and ws.freeze_panes == "A2"

    empty = wb["扣分汇总"]  # a table with no rows keeps its header
    assert [c.value for c in empty[1]] == [c.header for c in report.PENALTY_UNIT_COLUMNS]
    assert empty.max_row == 1 and not empty.auto_filter.ref

    for key, sheet, _heading, cols in report.TABLES:
        ws = wb[sheet]
        head = ws.cell(row=1, column=1)
        assert head.font.b and head.font.name == "微软雅黑" and head.font.color.rgb.endswith("FFFFFF")
        assert head.fill.fgColor.rgb.endswith("1F4E79") and head.alignment.wrap_text
        for j, c in enumerate(cols, 1):
            cells = [ws.cell(row=i, column=j) for i in range(2, ws.max_row + 1)]
            for cell in cells:
                if cell.value is None:
                    continue
                if c.kind == "text":
                    assert isinstance(cell.value, str), (sheet, c.header)
                else:
                    assert not isinstance(cell.value, str), (sheet, c.header, cell.value)
                    assert cell.number_format == KIND_FORMATS[c.kind], (sheet, c.header)
                assert cell.font.name == "微软雅黑" and cell.font.sz == 10
    # the change of rank: ↑ moved up, ↓ down, — unchanged, blank when not ranked in one of the months
    changes = {r["区域代码"]: r["名次变化"] for r in _sheet_rows(wb["区县排名"])}
    assert changes == {d["code"]: d.get("rank_change") for d in data["tables"]["districts"]}

    # 概况: each key figure's row in its own kind (a count, a rate, a score)
    ws = wb["概况"]
    assert [c.value for c in ws[7]][:4] == ["指标", "本月", "上月", "变化"]
    for i, fig in enumerate(data["summary"]["figures"], 8):
        label, current, previous, change = (ws.cell(row=i, column=j) for j in range(1, 5))
        assert label.value == fig["label"]
        for cell, value in ((current, fig["current"]), (previous, fig["previous"]), (change, fig["change"])):
            if value is None:
                assert cell.value is None
            else:
                assert cell.value == pytest.approx(value) and cell.number_format == KIND_FORMATS[fig["kind"]]
    assert data["summary"]["text"] == ws["A5"].value and "A5:H5" in {str(r) for r in ws.merged_cells.ranges}

    # every row of every sheet once: a repeated <row> makes Excel offer to repair the file
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/sheet"):
                rows_xml = re.findall(r'<row r="(\d+)"', z.read(name).decode())
                assert len(rows_xml) == len(set(rows_xml)), name
