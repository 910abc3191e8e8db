"""An independent pandas oracle of the assessment (docs/assessment.md), written from the definitions only."""
from __future__ import annotations

# Straightforward rather than fast: every table is read whole into pandas, every figure is a boolean
# column over the cases (or a loop over the history rows), spelt as docs/assessment.md and the contract
# word it. Nothing here reads figures/ (but the reference of the KPI fields' names): the point is to
# compute the same numbers another way.
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select

from data import files
from data.models import ApiToken, Area, Case, CaseHistory, CasePenalty, Unit, User, UTCDateTime
from dispatch.working_time import extension_unit

UTC = timezone.utc
CITY_TZ = ZoneInfo("Asia/Shanghai")
LEVELS = {"city": 1, "district": 2, "street": 3, "community": 4, "grid": 5}
BY = (*LEVELS, "unit", "person")
KPI_FIELDS = ("received", "accepted", "due", "closed", "closed_on_time", "closure_rate", "on_time_rate",
              "rework_rate", "extension_rate", "overdue_open", "mean_handling_hours")
# the contract's defaults (CONTRACT.md "Assessment (wave 2)", docs/assessment.md)
AREA_WEIGHTS = {"patrol_share": 10, "accepted_score": 20, "closure_rate": 30, "on_time_rate": 40}
ACCEPTED_BANDS = ((3, Fraction("0.90")), (5, Fraction("0.75")), (7, Fraction("0.60")),
                  (9, Fraction("0.40")))   # (below, score); 0 → 1.00; else 0
GRADES = ((90, "A"), (75, "B"), (60, "C"), (40, "D"))
ASSESSED_ROLES = ("grid_member", "duty_officer")


# ---------------------------------------------------------------------------------------- tables
@dataclass
class Tables:
    cases: pd.DataFrame
    history: pd.DataFrame
    penalties: pd.DataFrame
    areas: pd.DataFrame
    units: pd.DataFrame
    users: pd.DataFrame
    tokens: pd.DataFrame


def _frame(conn, model) -> pd.DataFrame:
    table = model.__table__
    rows = [dict(r) for r in conn.execute(select(table)).mappings()]
    df = pd.DataFrame(rows, columns=[c.name for c in table.columns])
    for c in table.columns:
        if isinstance(c.type, UTCDateTime):
            df[c.name] = pd.to_datetime(df[c.name], utc=True)
    return df


def load(db) -> Tables:
    """Every table the assessment reads, whole (``db``: the app's Database or an SQLAlchemy engine)."""
    engine = getattr(db, "engine", db)
    with engine.connect() as conn:
        return Tables(cases=_frame(conn, Case), history=_frame(conn, CaseHistory),
                      penalties=_frame(conn, CasePenalty), areas=_frame(conn, Area), units=_frame(conn, Unit),
                      users=_frame(conn, User), tokens=_frame(conn, ApiToken))


def bounds(start: date, end: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """P = [S, E): start 00:00 and end + 1 day 00:00 in Asia/Shanghai, in UTC."""
    s = datetime.combine(start, time(0), tzinfo=CITY_TZ).astimezone(UTC)
    e = datetime.combine(end + timedelta(days=1), time(0), tzinfo=CITY_TZ).astimezone(UTC)
    return pd.Timestamp(s), pd.Timestamp(e)


def _ratio(num, den):
    return None if den == 0 else num / den


def _or0(x):
    return 0 if x is None else x


def _exact(num, den) -> Fraction | None:
    """A rate as an exact fraction (the scores, grades and ties are decided exactly: 60 × 6/7 + 30 +
    10 × 6/7 is 90, an A, where floats make it 89.99999999999999)."""
    return None if den == 0 else Fraction(int(num), int(den))


def _float(x):
    return None if x is None else float(x)


# ---------------------------------------------------------------------------------------- case flags
def case_flags(cases: pd.DataFrame, S, E, now) -> pd.DataFrame:
    """One boolean column per figure a case may count in (the area and unit figures), over every case."""
    c = cases
    cut = min(E, pd.Timestamp(now))
    f = pd.DataFrame(index=c.index)
    f["grid_code"] = c.grid_code
    f["unit_code"] = c.unit_code
    f["district_code"] = c.district_code
    f["category_code"] = c.category_code
    inP = lambda col: (c[col] >= S) & (c[col] < E)  # noqa: E731
    accepted_case = c.accepted_at.notna() & c.rejected_at.isna() & ~c.state.isin(["rejected", "merged"])
    voided_before_e = c.voided_at < E
    counted = ~voided_before_e
    # 挂账 at the end of P: suspended before E and not lifted before E (the row keeps the last suspension
    # and the last resumption: a resumption before the last suspension lifted an earlier one)
    suspended_at_e = (c.suspended_at < E) & (c.resumed_at.isna() | (c.resumed_at >= E)
                                             | (c.resumed_at < c.suspended_at))
    acc = accepted_case & counted
    d, x, r = c.deadline_at, c.closed_at, c.resolved_at
    f["voided"] = inP("voided_at")
    f["received"] = counted & inP("reported_at")
    f["accepted"] = acc & inP("accepted_at")
    f["patrol_accepted"] = f.accepted & (c.source == "patrol")
    f["extended_acc"] = f.accepted & (c.extension_count > 0)
    f["suspended"] = acc & suspended_at_e & (c.accepted_at < E)
    in_due = acc & ~suspended_at_e & d.notna()
    f["due"] = in_due & ((inP("deadline_at") & ~(x < S)) | (inP("closed_at") & (x < d)))
    f["closed"] = f.due & (x < E)
    f["closed_on_time"] = f.closed & (x <= d)
    f["closed_in"] = acc & inP("closed_at")
    f["reworked_closed"] = f.closed_in & (c.rework_count > 0)
    f["hours"] = ((x - c.accepted_at).dt.total_seconds() / 3600.0).where(f.closed_in, 0.0)
    f["overdue_open"] = in_due & (c.accepted_at < E) & ~(x < E) & (d < cut)
    # the unit's handling (处置): the same shape as due, on resolved_at
    f["dispatched"] = counted & inP("dispatched_at")
    f["due_handling"] = in_due & ((inP("deadline_at") & ~(r < S)) | (inP("resolved_at") & (r < d)))
    f["handled"] = f.due_handling & (r < E)
    f["handled_on_time"] = f.handled & (r <= d)
    f["reworked"] = f.handled & (c.rework_count > 0)
    f["extended"] = f.due_handling & (c.extension_count > 0)
    return f


def _kpis(sums: dict) -> dict:
    """The KPI fields from summed counts."""
    n = sums
    return {"received": int(n["received"]), "accepted": int(n["accepted"]), "due": int(n["due"]),
            "closed": int(n["closed"]), "closed_on_time": int(n["closed_on_time"]),
            "closure_rate": _ratio(n["closed"], n["due"]), "on_time_rate": _ratio(n["closed_on_time"], n["due"]),
            "rework_rate": _ratio(n["reworked_closed"], n["closed_in"]),
            "extension_rate": _ratio(n["extended_acc"], n["accepted"]),
            "overdue_open": int(n["overdue_open"]),
            "mean_handling_hours": _ratio(n["hours"], n["closed_in"])}


_AREA_COUNTS = ("received", "accepted", "due", "closed", "closed_on_time", "closed_in", "reworked_closed",
                "extended_acc", "overdue_open", "hours", "voided", "suspended", "patrol_accepted")


def kpis(t: Tables, start: date, end: date, now, key: str | None = None) -> dict:
    """The KPI fields with the two exclusions, in total (key None) or per ``key`` column of the cases
    (district_code, unit_code, category_code): {"total": {...}, "groups": {key: {...}}}."""
    S, E = bounds(start, end)
    f = case_flags(t.cases, S, E, now)
    total = _kpis(f[list(_AREA_COUNTS)].sum().to_dict())
    out = {"total": total, "groups": {}}
    if key:
        for k, g in f.groupby(f[key].fillna("\0")):
            out["groups"][None if k == "\0" else k] = _kpis(g[list(_AREA_COUNTS)].sum().to_dict())
    return out


# ---------------------------------------------------------------------------------------- scoring
def grade(score):
    if score is None:
        return None
    for limit, g in GRADES:
        if score >= limit:
            return g
    return "E"


def rank(items: list[dict]) -> None:
    """rank: score descending, then the on-time rate descending, then code; null scores unranked
    (rank None) and last. Sorts ``items`` in place in that order. Decided on the exact values
    (``_score``, ``_tie``), which the items keep under those private keys."""
    def key(it):
        s, o = it["_score"], it["_tie"]
        return (s is None, -(s or 0), o is None, -(o or 0), it["code"])
    items.sort(key=key)
    n = 0
    for it in items:
        it["score"] = _float(it["_score"])
        it["grade"] = grade(it["_score"])
        if it["_score"] is None:
            it["rank"] = None
        else:
            n += 1
            it["rank"] = n


def accepted_score(per_grid: Fraction) -> Fraction:
    if per_grid == 0:
        return Fraction(1)
    for below, score in ACCEPTED_BANDS:
        if per_grid < below:
            return score
    return Fraction(0)


# ---------------------------------------------------------------------------------------- areas
def _ancestor(parents: dict, levels: dict, code: str, level: int) -> str | None:
    while code is not None and levels[code] > level:
        code = parents[code]
    return code if code is not None and levels[code] == level else None


def area_items(t: Tables, start: date, end: date, level: int, now) -> list[dict]:
    S, E = bounds(start, end)
    days = (end - start).days + 1
    parents = dict(zip(t.areas.code, t.areas.parent_code.where(t.areas.parent_code.notna(), None)))
    levels = dict(zip(t.areas.code, t.areas.level.astype(int)))
    grids = sorted(c for c, lv in levels.items() if lv == 5)
    f = case_flags(t.cases, S, E, now)
    assert set(f.grid_code) <= set(grids), "a case outside the grids"
    per_grid = f.groupby("grid_code")[list(_AREA_COUNTS)].sum().reindex(grids, fill_value=0)
    pen = t.penalties[(t.penalties["at"] >= S) & (t.penalties["at"] < E)].merge(
        t.cases[["id", "grid_code"]], left_on="case_id", right_on="id")
    per_grid["penalty_points"] = pen.groupby("grid_code").points.sum().reindex(grids, fill_value=0.0).astype(float)
    per_grid["grids"] = 1
    per_grid["area"] = [_ancestor(parents, levels, g, level) for g in per_grid.index]
    summed = per_grid.groupby("area").sum(numeric_only=True)
    items = []
    for a in t.areas[t.areas.level == level].sort_values("code").itertuples():
        n = summed.loc[a.code].to_dict() if a.code in summed.index else \
            {k: 0 for k in (*_AREA_COUNTS, "penalty_points", "grids")}
        it = {"code": a.code, "name": a.name, "level": int(a.level),
              "parent": a.parent_code if isinstance(a.parent_code, str) else None}
        it.update(_kpis(n))
        it["voided"] = int(n["voided"])
        it["suspended"] = int(n["suspended"])
        it["patrol_accepted"] = int(n["patrol_accepted"])
        it["patrol_share"] = _ratio(it["patrol_accepted"], it["accepted"])
        it["grids"] = int(n["grids"])
        per_grid = Fraction(it["accepted"] * 30, it["grids"] * days)
        it["accepted_per_grid"] = float(per_grid)
        band = accepted_score(per_grid)
        it["accepted_score"] = float(band)
        it["penalty_points"] = float(n["penalty_points"])
        if it["accepted"] == 0 and it["due"] == 0:
            it["_score"] = None
        else:
            it["_score"] = (AREA_WEIGHTS["patrol_share"] * _or0(_exact(it["patrol_accepted"], it["accepted"]))
                            + AREA_WEIGHTS["accepted_score"] * band
                            + AREA_WEIGHTS["closure_rate"] * _or0(_exact(it["closed"], it["due"]))
                            + AREA_WEIGHTS["on_time_rate"] * _or0(_exact(it["closed_on_time"], it["due"])))
        it["_tie"] = _exact(it["closed_on_time"], it["due"])
        items.append(it)
    rank(items)
    return items


# ---------------------------------------------------------------------------------------- units
def _actor_unit(t: Tables, actor: str) -> str | None:
    """The unit an actor acts for: sim:unit:<code>, a user's or a token's unit_code."""
    if actor.startswith("sim:unit:"):
        return actor.removeprefix("sim:unit:")
    if actor.startswith("user:"):
        row = t.users[t.users.username == actor.removeprefix("user:")]
    elif actor.startswith("token:"):
        try:
            row = t.tokens[t.tokens.id == int(actor.removeprefix("token:"))]
        except ValueError:
            return None
    else:
        return None
    if row.empty or not isinstance(row.iloc[0].unit_code, str):
        return None
    return row.iloc[0].unit_code


_UNIT_COUNTS = ("dispatched", "due_handling", "handled", "handled_on_time", "reworked", "extended", "suspended")


def unit_items(t: Tables, start: date, end: date, now) -> list[dict]:
    S, E = bounds(start, end)
    f = case_flags(t.cases, S, E, now)
    per_unit = f[f.unit_code.notna()].groupby("unit_code")[list(_UNIT_COUNTS)].sum()
    h = t.history
    returns = h[(h.action == "return") & (h["at"] >= S) & (h["at"] < E)]
    returned = defaultdict(int)
    for actor in returns.actor:
        u = _actor_unit(t, actor)
        if u is not None:
            returned[u] += 1
    pen = t.penalties[(t.penalties["at"] >= S) & (t.penalties["at"] < E)]
    points = pen.groupby("unit_code").points.sum().to_dict()
    # the lead unit of some case, now (routed or dispatched): listed when active, even with nothing in P
    ever = set(t.cases.unit_code[t.cases.unit_code.notna()])
    items = []
    for u in t.units.sort_values("code").itertuples():
        n = per_unit.loc[u.code].to_dict() if u.code in per_unit.index else {k: 0 for k in _UNIT_COUNTS}
        it = {"code": u.code, "name": u.name, "area": u.area_code}
        it.update({k: int(n[k]) for k in _UNIT_COUNTS})
        it["returned"] = returned.get(u.code, 0)
        it["penalty_points"] = float(points.get(u.code, 0.0))
        anything = any(it[k] for k in (*_UNIT_COUNTS, "returned")) or it["penalty_points"] != 0
        if not anything and not (u.code in ever and bool(u.active)):
            continue
        dh = it["due_handling"]
        it["handling_rate"] = _ratio(it["handled"], dh)
        it["on_time_handling_rate"] = _ratio(it["handled_on_time"], dh)
        it["rework_rate"] = _ratio(it["reworked"], it["handled"])
        it["extension_rate"] = _ratio(it["extended"], dh)
        it["_score"] = None if dh == 0 else (60 * _exact(it["handled_on_time"], dh) + 30 * _exact(it["handled"], dh)
                                             + 10 * (1 - _or0(_exact(it["reworked"], it["handled"]))))
        it["_tie"] = _exact(it["handled_on_time"], dh)
        items.append(it)
    rank(items)
    return items


# ---------------------------------------------------------------------------------------- persons
class _Stages:
    """Stage deadlines: the center's limit on the case's clock (working or calendar hours)."""

    def __init__(self):
        self.rules = files.center_rules()
        self.calendar = files.calendar()

    def on_time(self, start, at, stage: str, time_unit: str) -> bool:
        if start is None:
            return False    # no start found: late under any limit
        limit = self.rules.stage(stage).limit_hours
        due = self.calendar.working_deadline(start.to_pydatetime(), limit, extension_unit(time_unit))
        return at.to_pydatetime() <= due


def _role_of(t: Tables, actor: str) -> tuple[str | None, str | None, str | None]:
    """(role, name, area) of a history actor; role None for anyone else."""
    if actor.startswith("sim:grid:"):
        return "grid_member", None, actor.removeprefix("sim:grid:")
    if actor == "sim:duty_officer":
        return "duty_officer", None, None
    if actor.startswith("user:"):
        row = t.users[t.users.username == actor.removeprefix("user:")]
        if not row.empty:
            r = row.iloc[0]
            return r.role, r.display_name, r.area_code
    if actor.startswith("token:"):
        try:
            row = t.tokens[t.tokens.id == int(actor.removeprefix("token:"))]
        except ValueError:
            row = t.tokens.iloc[0:0]
        if not row.empty:
            r = row.iloc[0]
            return r.role, None, r.area_code
    return None, None, None


def _grids_under(t: Tables, code: str | None) -> set[str]:
    if code is None:
        return set()
    children = defaultdict(list)
    for c, p in zip(t.areas.code, t.areas.parent_code):
        if isinstance(p, str):
            children[p].append(c)
    levels = dict(zip(t.areas.code, t.areas.level.astype(int)))
    out, todo = set(), [code]
    while todo:
        c = todo.pop()
        if levels.get(c) == 5:
            out.add(c)
        todo.extend(children.get(c, ()))
    return out


def person_items(t: Tables, start: date, end: date, now) -> list[dict]:
    S, E = bounds(start, end)
    stages = _Stages()
    cases = t.cases.set_index("id")
    h = t.history.sort_values(["case_id", "at", "id"])
    # each case's rows as plain (at, id, action) tuples, in history order
    rows_of = defaultdict(list)
    for cid, at, rid, action in zip(h.case_id, h["at"], h.id, h.action):
        rows_of[cid].append((at, rid, action))
    inP = (h["at"] >= S) & (h["at"] < E)
    scored = ["report", "merge", "accept", "reject", "verify_request", "report_check", "dispatch", "reassign",
              "verify", "rework"]
    actors = set(h.actor[inP & h.action.isin(scored)])  # the people who did an act the posts are scored on
    people = {}
    for a in actors:
        role, name, area = _role_of(t, a)
        if role in ASSESSED_ROLES:
            people[a] = (role, name, area)
    for u in t.users[t.users.active.astype(bool) & t.users.role.isin(ASSESSED_ROLES)].itertuples():
        people.setdefault(f"user:{u.username}", (u.role, u.display_name, u.area_code))

    accepted_case = cases.accepted_at.notna() & cases.rejected_at.isna() & ~cases.state.isin(["rejected", "merged"])
    voided_before_e = cases.voided_at < E
    valid = accepted_case & (cases.accepted_at < E) & ~voided_before_e
    accepted_in_p = accepted_case & ~voided_before_e & (cases.accepted_at >= S) & (cases.accepted_at < E)

    def earlier(cid, row, actions):
        """The instant of the case's latest row before ``row`` (in (at, id) order) whose action is one
        of ``actions``; None when there is none."""
        found = None
        for at, rid, action in rows_of[cid]:
            if (at, rid) < (row.at, row.id) and action in actions:
                found = at
        return found

    first_rows = h.groupby("case_id").head(1)
    reports_by = defaultdict(list)
    for r in first_rows.itertuples():
        if r.action in ("report", "merge") and pd.isna(r.from_state) and S <= r.at < E:
            reports_by[r.actor].append(r.case_id)

    items = []
    for code, (role, name, area) in sorted(people.items()):
        mine = h[inP & (h.actor == code)]
        it = {"code": code, "name": name, "role": role}
        if role == "grid_member":
            grids = _grids_under(t, area)
            reports = reports_by.get(code, [])
            it["reports"] = len(reports)
            it["valid_reports"] = int(sum(bool(valid.get(cid, False)) for cid in reports))
            it["valid_rate"] = _ratio(it["valid_reports"], it["reports"])
            in_grids = accepted_in_p & cases.grid_code.isin(grids)
            missed, in_grid = int((in_grids & (cases.source != "patrol")).sum()), int(in_grids.sum())
            it["missed_rate"] = _ratio(missed, in_grid)
            checks = mine[mine.action == "report_check"]
            reviews = mine[mine.action.isin(["verify", "rework"])]
            ok_checks = 0
            for r in checks.itertuples():
                st = earlier(r.case_id, r, ["verify_request"])
                ok_checks += stages.on_time(st, r.at, "check",
                                            cases.at[r.case_id, "time_unit"])
            ok_reviews = 0
            for r in reviews.itertuples():
                st = earlier(r.case_id, r, ["resolve"])
                ok_reviews += stages.on_time(st, r.at, "review",
                                             cases.at[r.case_id, "time_unit"])
            it["site_checks"] = len(checks)
            it["reviews"] = len(reviews)
            it["on_time_site_checks"] = ok_checks
            it["on_time_reviews"] = ok_reviews
            it["on_time_site_check_rate"] = _ratio(ok_checks, len(checks))
            it["on_time_review_rate"] = _ratio(ok_reviews, len(reviews))
            it["on_time_check_rate"] = _ratio(ok_checks + ok_reviews, len(checks) + len(reviews))
            if it["reports"] == 0 and len(checks) == 0 and len(reviews) == 0:
                it["_score"] = None
            else:
                it["_score"] = (40 * _or0(_exact(it["valid_reports"], it["reports"]))
                                + 20 * (1 - _or0(_exact(missed, in_grid)))
                                + 20 * _or0(_exact(ok_checks, len(checks)))
                                + 20 * _or0(_exact(ok_reviews, len(reviews))))
            it["_tie"] = _exact(ok_checks + ok_reviews, len(checks) + len(reviews))
        else:
            intake = ok_intake = 0
            accepted = accurate_accepted = 0
            dispatched = ok_dispatched = accurate_dispatched = timed = 0
            for r in mine.itertuples():
                unit = cases.at[r.case_id, "time_unit"]
                if r.action in ("accept", "reject", "verify_request"):
                    intake += 1
                    check = earlier(r.case_id, r, ["report_check"]) if r.action != "verify_request" else None
                    if check is not None:   # 立案 after 核实: from the 核实 answer
                        ok_intake += stages.on_time(check, r.at, "file", unit)
                    else:                   # 受理: from the report
                        ok_intake += stages.on_time(cases.at[r.case_id, "reported_at"], r.at, "accept", unit)
                if r.action == "accept":
                    accepted += 1
                    accurate_accepted += not bool(voided_before_e.get(r.case_id, False))
                if r.action in ("dispatch", "reassign"):
                    dispatched += 1
                    # timed: a dispatch (from the case's coming back to the center: accept, return, rework),
                    # a reassign of a returned case (from the return); a reassign of the center's own accord
                    # ends no stage
                    if r.action == "dispatch":
                        timed += 1
                        st = earlier(r.case_id, r, ["accept", "return", "rework"])
                        ok_dispatched += stages.on_time(st, r.at, "dispatch", unit)
                    elif r.from_state == "returned":
                        timed += 1
                        st = earlier(r.case_id, r, ["return"])
                        ok_dispatched += stages.on_time(st, r.at, "dispatch", unit)
                    accurate_dispatched += not any((at, rid) > (r.at, r.id) and at < E and action == "reassign"
                                                   for at, rid, action in rows_of[r.case_id])
            it["intake_acts"] = intake
            it["on_time_intake_acts"] = ok_intake
            it["on_time_accept_rate"] = _ratio(ok_intake, intake)
            it["accepted"] = accepted
            it["accurate_accept_rate"] = _ratio(accurate_accepted, accepted)
            it["dispatched"] = dispatched
            it["on_time_dispatched"] = ok_dispatched
            it["on_time_dispatch_rate"] = _ratio(ok_dispatched, timed)
            it["accurate_dispatch_rate"] = _ratio(accurate_dispatched, dispatched)
            it["acts"] = len(mine)
            # null when none of their acts is one the four rates count
            it["_score"] = None if not (intake or dispatched) else 25 * (
                _or0(_exact(ok_intake, intake)) + _or0(_exact(ok_dispatched, timed))
                + _or0(_exact(accurate_accepted, accepted)) + _or0(_exact(accurate_dispatched, dispatched)))
            it["_tie"] = _exact(ok_intake, intake)
        items.append(it)
    out = []
    for role in ASSESSED_ROLES:
        group = [it for it in items if it["role"] == role]
        rank(group)
        out += group
    return out


# ---------------------------------------------------------------------------------------- entry points
def assessment(t: Tables, start: date, end: date, by: str, now) -> dict:
    """The answer of ``figures.service.assessment`` as docs/assessment.md defines it."""
    if by in LEVELS:
        items = area_items(t, start, end, LEVELS[by], now)
    elif by == "unit":
        items = unit_items(t, start, end, now)
    elif by == "person":
        items = person_items(t, start, end, now)
    else:
        raise ValueError(by)
    return {"period": {"start": start.isoformat(), "end": end.isoformat()}, "by": by, "items": items}


def penalty_cases(t: Tables, start: date, end: date, unit: str | None = None, area: str | None = None) -> list[dict]:
    """The case_penalties rows with S <= at < E (of a unit, of the cases of an area), as (case_id,
    unit_code, points, rule, reason, at) dicts."""
    S, E = bounds(start, end)
    p = t.penalties[(t.penalties["at"] >= S) & (t.penalties["at"] < E)]
    if unit is not None:
        p = p[p.unit_code == unit]
    if area is not None:
        grids = _grids_under(t, area)
        case_ids = set(t.cases.id[t.cases.grid_code.isin(grids)])
        p = p[p.case_id.isin(case_ids)]
    return [{"case_id": int(r.case_id), "unit_code": r.unit_code, "points": float(r.points), "rule": r.rule,
             "reason": r.reason, "at": r.at.to_pydatetime()} for r in p.sort_values(["at", "id"]).itertuples()]


def is_null(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
