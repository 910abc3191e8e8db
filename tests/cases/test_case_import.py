"""Historical case import (import-cases) on SQLite and the real PostgreSQL: a good file, a file
with one row per kind of defect, a wrong header, a second import of the same file, offsets."""
from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cases.legacy_import import COLUMNS, OPTIONAL_COLUMNS, CaseImportError, import_cases
from data.models import Case, CaseEvent, CaseHistory
from dispatch.routing import route_case
from tests.factories import small_world

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)  # 2026-12-01 10:00 in Shanghai
GARBAGE = "020102"        # 暴露垃圾: city management, district level
P1 = ("119.905", "31.705")   # district 320402
P2 = ("119.965", "31.765")   # district 320403
GIVEN_UNIT = "U-320403-city_management"


@pytest.fixture
def world(empty_db):
    return small_world(empty_db, NOW)[0]


def row(case_id, *, cat=GARBAGE, point=P1, source="hotline", reported="", accepted="", rejected="",
        dispatched="", unit="", deadline="", resolved="", closed="", rework="0", extension="0"):
    return [case_id, cat, point[0], point[1], source, reported, accepted, rejected, dispatched, unit, deadline,
            resolved, closed, rework, extension]


def write_csv(path: Path, rows, header=COLUMNS, bom=False) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


# Nine legacy cases; the KPIs of November 2026 are worked out by hand below.
GOOD = [
    # L1 closed on time, no unit (routed)
    row("A-001", reported="2026-11-02T09:00:00+08:00", accepted="2026-11-02T09:30:00+08:00",
        dispatched="2026-11-02T10:00:00+08:00", deadline="2026-11-04T18:00:00+08:00",
        resolved="2026-11-03T10:00:00+08:00", closed="2026-11-03T12:00:00+08:00"),
    # L2 closed late, unit given, reworked once, extended once
    row("A-002", point=P2, source="patrol", reported="2026-11-05T09:00:00+08:00",
        accepted="2026-11-05T09:10:00+08:00", dispatched="2026-11-05T09:20:00+08:00", unit=GIVEN_UNIT,
        deadline="2026-11-06T09:00:00+08:00", resolved="2026-11-07T10:00:00+08:00",
        closed="2026-11-07T11:00:00+08:00", rework="1", extension="1"),
    # L3 rejected
    row("A-003", source="citizen", reported="2026-11-10T08:00:00+08:00", rejected="2026-11-10T08:30:00+08:00"),
    # L4 reported only, in Z
    row("A-004", source="iot", reported="2026-11-12T00:00:00Z"),
    # L5 accepted, open, overdue
    row("A-005", reported="2026-11-15T09:00:00+08:00", accepted="2026-11-15T09:05:00+08:00",
        deadline="2026-11-20T17:00:00+08:00"),
    # L6 dispatched, deadline in December (not due), in Z
    row("A-006", point=P2, source="video", reported="2026-11-28T01:00:00Z", accepted="2026-11-28T01:30:00Z",
        dispatched="2026-11-28T02:00:00Z", deadline="2026-12-10T09:00:00Z"),
    # L7 resolved, not closed, deadline passed in November (due, overdue)
    row("A-007", reported="2026-11-18T09:00:00+08:00", accepted="2026-11-18T09:30:00+08:00",
        dispatched="2026-11-18T10:00:00+08:00", deadline="2026-11-25T17:00:00+08:00",
        resolved="2026-11-24T15:00:00+08:00"),
    # L8 closed early in November, deadline in December (due by early closure, on time)
    row("A-008", reported="2026-11-20T09:00:00+08:00", accepted="2026-11-20T09:30:00+08:00",
        dispatched="2026-11-20T10:00:00+08:00", deadline="2026-12-05T17:00:00+08:00",
        resolved="2026-11-21T10:00:00+08:00", closed="2026-11-21T12:00:00+08:00"),
    # L9 reported and due in October, closed late in November
    row("A-009", reported="2026-10-20T09:00:00+08:00", accepted="2026-10-20T10:00:00+08:00",
        dispatched="2026-10-20T11:00:00+08:00", deadline="2026-10-25T17:00:00+08:00",
        resolved="2026-11-02T10:00:00+08:00", closed="2026-11-03T10:00:00+08:00"),
]
EXPECTED_STATES = {"A-001": "closed", "A-002": "closed", "A-003": "rejected", "A-004": "reported",
                   "A-005": "accepted", "A-006": "dispatched", "A-007": "resolved", "A-008": "closed",
                   "A-009": "closed"}


def _cases(service) -> dict[str, Case]:
    with service.db.session() as s:
        return {c.idempotency_key.removeprefix("legacy:"): c for c in s.scalars(select(Case))}


def _counts(service) -> tuple[int, int, int]:
    with service.db.session() as s:
        return (s.scalar(select(func.count()).select_from(Case)),
                s.scalar(select(func.count()).select_from(CaseHistory)),
                s.scalar(select(func.count()).select_from(CaseEvent)))


def test_good_file_imports_every_row(world, tmp_path):
    service = world
    path = write_csv(tmp_path / "legacy.csv", GOOD, bom=True)
    report = import_cases(service, path, progress=False, batch_size=4)   # three batches
    assert (report.rows, report.imported) == (9, 9)
    assert report.by_state == {"closed": 4, "rejected": 1, "reported": 1, "accepted": 1, "dispatched": 1,
                               "resolved": 1}
    assert report.routed == 8 and report.seconds > 0
    cases = _cases(service)
    assert {k: c.state for k, c in cases.items()} == EXPECTED_STATES

    # routed when empty, kept when given
    unit_index, types = service._routing_refs()
    cat = service.catalog()[GARBAGE]
    a1 = cases["A-001"]
    expected = route_case(cat, service.areas.chain(a1.grid_code), unit_index, types)
    assert a1.unit_code == expected.unit_code == "U-320402-city_management"
    assert a1.handling_level == expected.handling_level and "按指挥手册" in a1.route_reason
    assert (a1.grid_code, a1.district_code) == ("320402001001001", "320402")
    a2 = cases["A-002"]
    assert a2.unit_code == GIVEN_UNIT and a2.district_code == "320403" and "沿用原系统" in a2.route_reason
    assert (a2.rework_count, a2.extension_count) == (1, 1)

    # deadlines as given (not recomputed), times stored as the same instants
    sh = timezone(timedelta(hours=8))
    assert a2.deadline_at == datetime(2026, 11, 6, 9, 0, tzinfo=sh)
    assert cases["A-006"].deadline_at == datetime(2026, 12, 10, 9, 0, tzinfo=timezone.utc)
    assert cases["A-004"].reported_at == datetime(2026, 11, 12, 8, 0, tzinfo=sh)
    assert cases["A-003"].deadline_at is None and cases["A-003"].rejected_at is not None
    assert all(c.time_unit == "working_hours" and c.kind == "event" and c.version == 1 for c in cases.values())

    # one history row each, no live events
    with service.db.session() as s:
        hist = s.scalars(select(CaseHistory).order_by(CaseHistory.id)).all()
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == 0
    assert len(hist) == 9 and {h.case_id for h in hist} == {c.id for c in cases.values()}
    h1 = next(h for h in hist if h.case_id == a1.id)
    assert (h1.action, h1.from_state, h1.to_state) == ("import", None, "closed")
    assert h1.note == "历史案件导入（原编号 A-001）"
    shown = service.get(a1.id, None)
    assert shown["history"][0]["action"] == "import" and shown["state"] == "closed"

    # the assessment of November, by hand
    k = service.kpis(date(2026, 11, 1), date(2026, 11, 30))
    assert k["received"] == 8                      # A-009 was reported in October
    assert k["accepted"] == 6                      # 1, 2, 5, 6, 7, 8
    assert k["due"] == 5                           # 1, 2, 5, 7 (deadline in Nov) + 8 (closed early)
    assert k["closed"] == 3                        # 1, 2, 8
    assert k["closed_on_time"] == 2                # 1, 8
    assert k["closure_rate"] == pytest.approx(3 / 5)
    assert k["on_time_rate"] == pytest.approx(2 / 5)
    assert k["rework_rate"] == pytest.approx(1 / 4)   # closed in Nov: 1, 2, 8, 9; reworked: 2
    assert k["extension_rate"] == pytest.approx(1 / 6)
    assert k["overdue_open"] == 2                  # 5, 7
    hours = [26.5, 49 + 50 / 60, 26.5, 14 * 24]    # accepted → closed of 1, 2, 8, 9
    assert k["mean_handling_hours"] == pytest.approx(sum(hours) / 4)
    by_district = {g["key"]: g for g in service.kpis(date(2026, 11, 1), date(2026, 11, 30), by="district")["groups"]}
    assert by_district["320403"]["received"] == 2 and by_district["320402"]["received"] == 6


def test_every_kind_of_bad_row_is_reported_and_nothing_written(world, tmp_path):
    service = world
    import_cases(service, write_csv(tmp_path / "first.csv", [GOOD[0]]), progress=False)
    before = _counts(service)
    ok = dict(reported="2026-11-02T09:00:00+08:00", accepted="2026-11-02T09:30:00+08:00")
    rows = [
        row("B-001", **ok),                                                  # line 2: good
        row("B-002", cat="999999", **ok),                                    # 3 unknown category
        row("B-003", point=("120.500", "31.705"), **ok),                     # 4 outside the city
        row("B-004", source="fax", **ok),                                    # 5 unknown source
        row("B-005", reported="2026-13-02T09:00:00+08:00"),                  # 6 unparsable time
        row("B-006", reported="2026-11-02T09:00:00"),                        # 7 time without offset
        row("B-007", rework="1.5", **ok),                                    # 8 non-integer count
        row("B-008", extension="-1", **ok),                                  # 9 negative count
        row("B-001", **ok),                                                  # 10 duplicate in the file
        row("A-001", **ok),                                                  # 11 already imported
        row("B-011", unit="U-999999-nobody", **ok),                          # 12 unknown unit
        row("B-012", reported="2026-11-02T09:00:00+08:00", accepted="2026-11-02T09:30:00+08:00",
            closed="2026-11-01T09:00:00+08:00"),                             # 13 closed before reported
        row("B-013", reported="2026-11-02T09:00:00+08:00", accepted="2026-11-02T09:30:00+08:00",
            rejected="2026-11-02T09:40:00+08:00"),                           # 14 accepted and rejected
        row("B-014", reported="2026-11-02T09:00:00+08:00",
            closed="2026-11-03T09:00:00+08:00"),                             # 15 closed, never accepted
        row("B-015", point=("abc", "31.7"), **ok),                          # 16 non-numeric longitude
        row("B-016", reported="2027-06-01T09:00:00+08:00"),                  # 17 in the future
        row("B-017", reported="0001-01-01T00:00:00+08:00"),                  # 18 before 1900 (overflowed)
        row("B-018", rework="9" * 25, **ok),                                 # 19 too large for the column
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(CaseImportError) as exc:
        import_cases(service, path, progress=False)
    problems = exc.value.problems
    by_line: dict[int, str] = {}
    for line, msg in problems:
        by_line[line] = by_line.get(line, "") + msg
    expect = {3: "未知的事件类别", 4: "不在本市范围内", 5: "未知的来源渠道", 6: "无法解析", 7: "缺少时区偏移",
              8: "非负整数", 9: "不能为负数", 10: "在文件中重复（与第 2 行相同）", 11: "已导入过（重复导入）",
              12: "未知的处置单位", 13: "早于上报时间", 14: "同时存在", 15: "没有立案时间", 16: "须为数字",
              17: "晚于当前时间", 18: "须在 1900–2999 年之间", 19: "过大"}
    assert set(by_line) == set(expect), problems
    for line, words in expect.items():
        assert words in by_line[line], (line, by_line[line])
    assert problems == sorted(problems, key=lambda p: p[0])
    assert "未导入任何案件" in str(exc.value) and "第 3 行" in str(exc.value)
    assert _counts(service) == before


@pytest.mark.parametrize("header", [
    [c for c in COLUMNS if c != "unit_code"] + ["unit"],        # renamed column
    list(COLUMNS[:-1]),                                         # missing column
])
def test_wrong_header_is_refused(world, tmp_path, header):
    path = write_csv(tmp_path / "h.csv", [r[:len(header)] for r in GOOD], header=header)
    with pytest.raises(CaseImportError) as exc:
        import_cases(world, path, progress=False)
    assert len(exc.value.problems) == 1
    line, msg = exc.value.problems[0]
    assert line == 1 and "缺少列" in msg and ("unit_code" in msg or "extension_count" in msg)
    if "unit" in header:
        assert "多余的列 unit" in msg
    assert _counts(world) == (0, 0, 0)


def test_columns_in_another_order_are_fine(world, tmp_path):
    order = list(reversed(COLUMNS))
    rows = [list(reversed(r)) for r in GOOD[:3]]
    report = import_cases(world, write_csv(tmp_path / "r.csv", rows, header=order), progress=False)
    assert report.imported == 3 and _cases(world)["A-002"].unit_code == GIVEN_UNIT


def test_second_import_of_the_same_file_is_refused_and_changes_nothing(world, tmp_path):
    path = write_csv(tmp_path / "legacy.csv", GOOD)
    assert import_cases(world, path, progress=False).imported == 9
    before = _counts(world)
    with pytest.raises(CaseImportError) as exc:
        import_cases(world, path, progress=False)
    assert [line for line, _ in exc.value.problems] == list(range(2, 11))
    assert all("重复导入" in msg for _, msg in exc.value.problems)
    assert _counts(world) == before == (9, 9, 0)


def test_offsets_plus_eight_and_z_are_the_same_instant(world, tmp_path):
    rows = [row("Z-1", reported="2026-11-02T09:00:00+08:00", accepted="2026-11-02T09:30:00+08:00",
                deadline="2026-11-03T17:00:00+08:00"),
            row("Z-2", reported="2026-11-02T01:00:00Z", accepted="2026-11-02T01:30:00+00:00",
                deadline="2026-11-03T09:00:00Z"),
            row("Z-3", reported="2026-11-02T10:00:00+09:00", accepted="2026-11-02T09:30:00.000+08:00",
                deadline="20261103T090000Z")]
    import_cases(world, write_csv(tmp_path / "z.csv", rows), progress=False)
    cases = _cases(world)
    for field in ("reported_at", "accepted_at", "deadline_at"):
        assert len({getattr(cases[k], field) for k in ("Z-1", "Z-2", "Z-3")}) == 1, field


def legacy_file(path: Path, n: int, seed: int = 7) -> Path:
    """n plausible legacy cases spread over the rect city and November 2026."""
    rnd = random.Random(seed)
    sh = timezone(timedelta(hours=8))
    units = ["", "", "", GIVEN_UNIT, "U-320402-city_management"]
    t0 = datetime(2026, 11, 1, tzinfo=sh)
    rows = []
    for i in range(n):
        rep = t0 + timedelta(minutes=rnd.randrange(0, 27 * 24 * 60))
        lon, lat = 119.9005 + rnd.random() * 0.079, 31.7005 + rnd.random() * 0.079
        stage = rnd.random()
        t = dict(reported=rep.isoformat())
        if stage < 0.05:
            t["rejected"] = (rep + timedelta(minutes=20)).isoformat()
        elif stage > 0.1:
            acc = rep + timedelta(minutes=15)
            t.update(accepted=acc.isoformat(), deadline=(acc + timedelta(days=2)).isoformat())
            if stage > 0.2:
                t["dispatched"] = (acc + timedelta(minutes=10)).isoformat()
                t["unit"] = rnd.choice(units)
            if stage > 0.3:
                t["resolved"] = (acc + timedelta(hours=rnd.randrange(2, 60))).isoformat()
            if stage > 0.4:
                t["closed"] = (acc + timedelta(hours=61)).isoformat()
        rows.append(row(f"L{i:07d}", point=(f"{lon:.6f}", f"{lat:.6f}"), source=rnd.choice(("hotline", "patrol")),
                        rework=str(int(rnd.random() < 0.02)), extension=str(int(rnd.random() < 0.03)), **t))
    return write_csv(path, rows)


def test_a_larger_file_in_many_batches_with_a_progress_bar(world, tmp_path):
    path = legacy_file(tmp_path / "big.csv", 3000)
    report = import_cases(world, path, progress=True, batch_size=700)
    assert (report.rows, report.imported) == (3000, 3000) and sum(report.by_state.values()) == 3000
    assert _counts(world) == (3000, 3000, 0)
    k = world.kpis(date(2026, 11, 1), date(2026, 11, 30))
    assert k["received"] == 3000


def test_a_crash_in_the_middle_leaves_nothing(world, tmp_path, monkeypatch):
    import cases.legacy_import as mod

    path = write_csv(tmp_path / "legacy.csv", GOOD)
    real, calls = mod._state_of, []

    def crash_on_the_seventh_row(times):
        calls.append(1)
        if len(calls) == 7:
            raise RuntimeError("power cut")
        return real(times)

    monkeypatch.setattr(mod, "_state_of", crash_on_the_seventh_row)
    with pytest.raises(RuntimeError, match="power cut"):
        import_cases(world, path, progress=False, batch_size=2)   # three batches were already written
    assert _counts(world) == (0, 0, 0)
    monkeypatch.setattr(mod, "_state_of", real)
    assert import_cases(world, path, progress=False).imported == 9


def test_a_conflict_found_only_while_writing_rolls_everything_back(world, tmp_path, monkeypatch):
    """Another import committing the same cases between our check and our write."""
    import cases.legacy_import as mod

    first = write_csv(tmp_path / "first.csv", GOOD[5:6])
    import_cases(world, first, progress=False)
    monkeypatch.setattr(mod, "_existing_keys", lambda service, keys: set())
    with pytest.raises(CaseImportError) as exc:
        import_cases(world, write_csv(tmp_path / "all.csv", GOOD), progress=False, batch_size=2)
    assert "已全部回滚" in str(exc.value)
    assert _counts(world) == (1, 1, 0)


def test_malformed_csv_and_encoding(world, tmp_path):
    bad_quote = tmp_path / "q.csv"
    bad_quote.write_text(",".join(COLUMNS) + '\n"A-1,020102\n', encoding="utf-8")
    with pytest.raises(CaseImportError, match="CSV 格式错误"):
        import_cases(world, bad_quote, progress=False)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((",".join(COLUMNS) + "\n" + ",".join(row("甲-1")) + "\n").encode("gbk"))
    with pytest.raises(CaseImportError, match="UTF-8"):
        import_cases(world, gbk, progress=False)
    short = write_csv(tmp_path / "short.csv", [GOOD[0][:5]])
    with pytest.raises(CaseImportError) as exc:
        import_cases(world, short, progress=False)
    assert exc.value.problems == [(2, "字段数为 5，表头为 15 列")]
    assert _counts(world) == (0, 0, 0)


def _twenty(bad_at: int | None = None) -> list[list[str]]:
    """Twenty good rows (lines 2–21); ``bad_at``: the data row (1-based) given an unknown category."""
    ok = dict(reported="2026-11-02T09:00:00+08:00", accepted="2026-11-02T09:30:00+08:00")
    return [row(f"T-{i:03d}", cat="999999" if i == bad_at else GARBAGE, **ok) for i in range(1, 21)]


def test_a_bad_row_in_the_last_batch_writes_nothing(world, tmp_path):
    """Batches of 7 over 20 rows: two whole batches come before the bad row 19 (line 20)."""
    rows = _twenty(bad_at=19)
    rows[3] = row("T-004", source="fax", reported="2026-11-02T09:00:00+08:00")      # and one in the first batch
    with pytest.raises(CaseImportError) as exc:
        import_cases(world, write_csv(tmp_path / "t.csv", rows), progress=False, batch_size=7)
    assert [line for line, _ in exc.value.problems] == [5, 20]
    assert "未知的事件类别编码“999999”" in exc.value.problems[1][1]
    assert _counts(world) == (0, 0, 0)
    report = import_cases(world, write_csv(tmp_path / "good.csv", _twenty()), progress=False, batch_size=7)
    assert report.imported == 20 and _counts(world) == (20, 20, 0)


def test_a_crash_while_writing_the_third_batch_leaves_nothing(world, tmp_path, monkeypatch):
    import cases.legacy_import as mod

    real, calls = mod._state_of, []

    def crash_at_row_19(times):
        calls.append(1)
        if len(calls) == 19:
            raise RuntimeError("disk full")
        return real(times)

    monkeypatch.setattr(mod, "_state_of", crash_at_row_19)
    with pytest.raises(RuntimeError, match="disk full"):
        import_cases(world, write_csv(tmp_path / "t.csv", _twenty()), progress=False, batch_size=7)
    assert len(calls) == 19 and _counts(world) == (0, 0, 0)   # 14 rows had been written, then rolled back


@pytest.mark.parametrize("change", ["bad_row", "extra_row"])
def test_a_file_changed_between_check_and_write_writes_nothing(world, tmp_path, monkeypatch, change):
    import cases.legacy_import as mod

    path = write_csv(tmp_path / "t.csv", _twenty())
    real_scan = mod._scan

    def scan_then_edit(*args, **kwargs):
        scan = real_scan(*args, **kwargs)
        rows = _twenty(bad_at=19) if change == "bad_row" else _twenty() + [row("T-021", reported="2026-11-02T09:00:00+08:00")]
        write_csv(path, rows)
        return scan

    monkeypatch.setattr(mod, "_scan", scan_then_edit)
    with pytest.raises(CaseImportError, match="文件在校验之后被修改"):
        import_cases(world, path, progress=False, batch_size=7)
    assert _counts(world) == (0, 0, 0)


def test_a_file_of_many_bad_rows_counts_them_all_and_keeps_the_first(world, tmp_path, monkeypatch):
    import cases.legacy_import as mod

    monkeypatch.setattr(mod, "PROBLEM_LIMIT", 5)
    rows = [row(f"X-{i}", source="fax", reported="2026-11-02T09:00:00+08:00") for i in range(300)]
    rows.append(row("X-0", reported="2026-11-02T09:00:00+08:00"))       # a repeat, found after the stream
    with pytest.raises(CaseImportError) as exc:
        import_cases(world, write_csv(tmp_path / "bad.csv", rows), progress=False, batch_size=7)
    err = exc.value
    assert err.total == 301 and [line for line, _ in err.problems] == [2, 3, 4, 5, 6]
    assert "发现 301 处问题（涉及 301 行）" in str(err) and "另有 101 处问题未列出" in str(err)
    assert _counts(world) == (0, 0, 0)


# ---- the optional columns (CONTRACT.md, wave 2): signed_at, verified_at, voided_at, suspended_at, resumed_at,
# external_ref — read when present, validated like the others, stored; a file without them imports as before

WIDE = COLUMNS + OPTIONAL_COLUMNS
IN_HAND = dict(reported="2026-11-16T09:00:00+08:00", accepted="2026-11-16T09:10:00+08:00",
               dispatched="2026-11-16T09:20:00+08:00", deadline="2026-11-20T17:00:00+08:00")


def wide(case_id, *, signed="", verified="", voided="", suspended="", resumed="", ref="", **kw):
    return row(case_id, **kw) + [signed, verified, voided, suspended, resumed, ref]


WIDE_GOOD = [
    # W-1 the whole life, with the hotline's ticket
    wide("W-1", **IN_HAND, signed="2026-11-16T10:00:00+08:00", resolved="2026-11-17T10:00:00+08:00",
         verified="2026-11-17T11:00:00+08:00", closed="2026-11-17T12:00:00+08:00", ref="12345-20261116-0001"),
    # W-2 signed, in the unit's hands
    wide("W-2", **IN_HAND, signed="2026-11-16T10:00:00+08:00"),
    # W-3 checked (核查通过), not closed yet
    wide("W-3", **IN_HAND, signed="2026-11-16T10:00:00+08:00", resolved="2026-11-17T10:00:00+08:00",
         verified="2026-11-17T11:00:00+08:00"),
    # W-4 voided (作废) after dispatch
    wide("W-4", **IN_HAND, voided="2026-11-16T15:00:00+08:00"),
    # W-5 voided before it was filed
    wide("W-5", reported="2026-11-16T09:00:00+08:00", voided="2026-11-16T09:30:00+08:00"),
    # W-6 on 挂账 since the 18th, signed before: back to signed on 解挂, with the handling time it had left
    wide("W-6", **IN_HAND, signed="2026-11-16T10:00:00+08:00", suspended="2026-11-18T10:00:00+08:00"),
    # W-7 suspended, resumed, then resolved: the 挂账 is over
    wide("W-7", **IN_HAND, signed="2026-11-16T10:00:00+08:00", suspended="2026-11-17T10:00:00+08:00",
         resumed="2026-11-20T10:00:00+08:00", resolved="2026-11-21T10:00:00+08:00"),
    # W-8 suspended before dispatch (the center found no unit): back to accepted
    wide("W-8", reported="2026-11-16T09:00:00+08:00", accepted="2026-11-16T09:10:00+08:00",
         deadline="2026-11-20T17:00:00+08:00", suspended="2026-11-16T11:00:00+08:00"),
    # W-9 a ticket number only
    wide("W-9", reported="2026-11-16T09:00:00+08:00", source="hotline", ref="12345-20261116-0009"),
]


def test_a_file_with_the_optional_columns_stores_them(world, tmp_path):
    service = world
    report = import_cases(service, write_csv(tmp_path / "wide.csv", WIDE_GOOD, header=WIDE), progress=False)
    assert report.imported == 9
    cases = _cases(service)
    assert {k: c.state for k, c in cases.items()} == {
        "W-1": "closed", "W-2": "signed", "W-3": "verified", "W-4": "voided", "W-5": "voided",
        "W-6": "suspended", "W-7": "resolved", "W-8": "suspended", "W-9": "reported"}
    assert report.by_state == {"closed": 1, "signed": 1, "verified": 1, "voided": 2, "suspended": 2, "resolved": 1,
                               "reported": 1}
    sh = timezone(timedelta(hours=8))
    w1 = cases["W-1"]
    assert (w1.signed_at, w1.verified_at) == (datetime(2026, 11, 16, 10, tzinfo=sh), datetime(2026, 11, 17, 11, tzinfo=sh))
    assert w1.external_ref == "12345-20261116-0001" and cases["W-2"].external_ref is None
    assert cases["W-4"].voided_at == datetime(2026, 11, 16, 15, tzinfo=sh) and cases["W-4"].dispatched_at is not None
    # 挂账: where it goes back to and the time it had left on its (authoritative) deadline
    w6, w8 = cases["W-6"], cases["W-8"]
    assert (w6.state_before_suspension, w8.state_before_suspension) == ("signed", "accepted")
    cal = service.calendar
    assert w6.suspension_remaining_hours == pytest.approx(
        cal.working_time_between(w6.suspended_at, w6.deadline_at, "working_hours"))
    assert w6.suspension_remaining_hours == pytest.approx(6 + 7.5 + 7)    # Wed 18th 10:00 → Fri 20th 17:00
    assert (cases["W-7"].suspended_at, cases["W-7"].resumed_at) != (None, None)
    assert cases["W-7"].state_before_suspension is None
    assert all(c.deadline_at == datetime(2026, 11, 20, 17, tzinfo=sh) for k, c in cases.items() if k in ("W-6", "W-7"))
    # read back as every case is: the stamps, the suspension, the ticket; and the hotline finds its ticket
    from data.tokens import Principal

    admin = Principal("user", "admin", "admin", "320400")
    shown = service.get(w6.id, admin)
    assert shown["suspension"]["state"] == "suspended" and shown["suspension"]["from_state"] == "signed"
    assert shown["signed_at"] and shown["stages"]
    assert service.get(cases["W-4"].id, admin)["voided_at"]
    found = service.by_external_ref(admin, "12345-20261116-0009")["items"]
    assert [c["id"] for c in found] == [cases["W-9"].id]
    # 解挂 in the platform gives the case back its time left (deadline moves), as for any suspended case
    service.clock = lambda: datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)      # Wed 25th 09:00 in Shanghai
    resumed = service.act(w6.id, admin, "resume", w6.version)
    assert resumed["state"] == "signed"
    assert datetime.fromisoformat(resumed["deadline"]) == cal.working_deadline(
        datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc), w6.suspension_remaining_hours, "working_hours")


def test_optional_columns_in_any_order_and_any_subset(world, tmp_path):
    header = ["external_ref", *reversed(COLUMNS), "voided_at"]
    rows = [["T-1", *reversed(row("O-1", reported="2026-11-16T09:00:00+08:00")), ""],
            ["", *reversed(row("O-2", reported="2026-11-16T09:00:00+08:00")), "2026-11-16T10:00:00+08:00"]]
    report = import_cases(world, write_csv(tmp_path / "o.csv", rows, header=header), progress=False)
    assert report.imported == 2
    cases = _cases(world)
    assert (cases["O-1"].state, cases["O-1"].external_ref) == ("reported", "T-1")
    assert (cases["O-2"].state, cases["O-2"].external_ref) == ("voided", None)
    assert cases["O-1"].signed_at is None and cases["O-2"].suspended_at is None


def test_bad_optional_times_are_all_reported_and_nothing_written(world, tmp_path):
    service = world
    before = _counts(service)
    rows = [
        wide("V-01", **IN_HAND, signed="2026-11-16T10:00:00+08:00"),                          # 2 good
        wide("V-02", **IN_HAND, signed="2026-11-16T09:15:00+08:00"),                          # 3 signed < dispatched
        wide("V-03", reported="2026-11-16T09:00:00+08:00", accepted="2026-11-16T09:10:00+08:00",
             signed="2026-11-16T10:00:00+08:00"),                                              # 4 signed, no dispatch
        wide("V-04", **IN_HAND, resolved="2026-11-17T10:00:00+08:00",
             verified="2026-11-17T09:00:00+08:00"),                                            # 5 verified < resolved
        wide("V-05", **IN_HAND, verified="2026-11-17T09:00:00+08:00"),                        # 6 verified, no resolution
        wide("V-06", **IN_HAND, suspended="2026-11-17T10:00:00+08:00",
             resumed="2026-11-17T09:00:00+08:00"),                                             # 7 resumed < suspended
        wide("V-07", **IN_HAND, resumed="2026-11-17T09:00:00+08:00"),                         # 8 resumed, never suspended
        wide("V-08", **IN_HAND, resolved="2026-11-17T10:00:00+08:00", closed="2026-11-17T12:00:00+08:00",
             voided="2026-11-18T09:00:00+08:00"),                                              # 9 voided and closed
        wide("V-09", **IN_HAND, voided="2026-11-16T10:00:00+08:00",
             resolved="2026-11-17T10:00:00+08:00"),                                            # 10 resolved after 作废
        wide("V-10", **IN_HAND, resolved="2026-11-17T10:00:00+08:00", closed="2026-11-17T12:00:00+08:00",
             suspended="2026-11-16T12:00:00+08:00"),                                           # 11 closed while on 挂账
        wide("V-11", reported="2026-11-16T09:00:00+08:00", accepted="2026-11-16T09:10:00+08:00",
             suspended="2026-11-16T09:05:00+08:00"),                                           # 12 suspended < accepted
        wide("V-12", **IN_HAND, signed="2026-11-16T10:00:00"),                                # 13 no offset
        wide("V-13", reported="2026-11-16T09:00:00+08:00", ref="x" * 65),                     # 14 ticket too long
        wide("V-14", reported="2026-11-16T09:00:00+08:00", suspended="2026-11-16T10:00:00+08:00"),  # 15 never filed
        wide("V-15", reported="2026-11-16T09:00:00+08:00", voided="2026-11-16T08:00:00+08:00"),     # 16 before report
        wide("V-16", **IN_HAND, signed="2027-06-01T09:00:00+08:00"),                          # 17 in the future
        wide("V-17", reported="2026-11-16T09:00:00+08:00", rejected="2026-11-16T09:30:00+08:00",
             voided="2026-11-16T10:00:00+08:00"),                                              # 18 rejected and voided
    ]
    with pytest.raises(CaseImportError) as exc:
        import_cases(service, write_csv(tmp_path / "bad.csv", rows, header=WIDE), progress=False, batch_size=5)
    by_line: dict[int, str] = {}
    for line, msg in exc.value.problems:
        by_line[line] = by_line.get(line, "") + msg
    expect = {3: "signed_at（签收时间）早于dispatched_at（派遣时间）", 4: "有签收时间却没有dispatched_at",
              5: "verified_at（核查通过时间）早于resolved_at", 6: "有核查通过时间却没有resolved_at",
              7: "resumed_at（解挂时间）早于suspended_at", 8: "有解挂时间却没有suspended_at",
              9: "作废时间与结案时间同时存在", 10: "resolved_at（处置完成时间）晚于voided_at（作废时间）",
              11: "挂账未解挂的案件不能有closed_at", 12: "suspended_at（挂账时间）早于accepted_at",
              13: "signed_at（签收时间）缺少时区偏移", 14: "external_ref（外部工单号）过长",
              15: "却没有立案时间", 16: "voided_at（作废时间）早于上报时间", 17: "signed_at（签收时间）晚于当前时间",
              18: "作废时间与不予立案时间同时存在"}
    assert set(by_line) == set(expect), exc.value.problems
    for line, words in expect.items():
        assert words in by_line[line], (line, by_line[line])
    assert _counts(service) == before
