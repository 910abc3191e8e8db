"""The assessment (督办考核) of areas, units and posts for any period, in SQL: CONTRACT.md's section Assessment.

docs/assessment.md writes down how the contract is read where it is silent; the scores, grades and ranks
follow the city's data file (dispatch.assessment_rules). Every function takes an open Session and the
period's UTC bounds [S, E) (figures.definitions.period_bounds) and returns plain dicts, one per item.
The exclusions (作废 only in `voided`, 挂账 at E neither due nor overdue) are figures.period's.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import DateTime, String, and_, bindparam, case, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from data.models import ApiToken, Case, CaseHistory, CasePenalty, Unit, User
from dispatch.assessment_rules import AssessmentRules
from dispatch.center_rules import CenterRules
from dispatch.working_time import WorkCalendar, extension_unit
from figures import period
from figures.period import accepted, counts_at_end, unindexed

UTC = timezone.utc
AREA_LEVELS = {"city": 1, "district": 2, "street": 3, "community": 4, "grid": 5}
BY = (*AREA_LEVELS, "unit", "person")
POST_ROLES = ("grid_member", "duty_officer")

# The KPI fields of an area, as figures.period's raw slots hold them
_SLOTS = {"received": period.RECEIVED, "accepted": period.ACCEPTED, "extended": period.EXTENDED,
          "due": period.DUE, "closed": period.CLOSED, "closed_on_time": period.ON_TIME,
          "closed_in": period.CLOSED_IN, "reworked": period.REWORKED, "voided": period.VOIDED,
          "hours": period.HOURS, "overdue_open": period.OVERDUE, "suspended": period.SUSPENDED}


def _rate(num, den) -> float | None:
    return num / den if den else None


def _score(rules: AssessmentRules, kind: str, item: dict, scored: bool) -> None:
    """The item's score (null when there is nothing to score) and grade."""
    item["score"] = round(rules.scoring[kind].score(item), 6) if scored else None
    item["grade"] = rules.grade(item["score"])


# ---- areas (区域评价) ------------------------------------------------------------------------------
def grid_figures(s: Session, S: datetime, E: datetime, now: datetime) -> dict[str, dict]:
    """{grid: counts} of every grid with a case counting in some figure: the KPI sums (figures.period's
    shares, grouped by grid), overdue_open, suspended, patrol_accepted and the penalty points of P."""
    c, shares = period.period_shares(s, S, E, False, key=Case.grid_code)
    raw: dict[str, list] = {}
    for row in s.execute(select(c.k, *(func.sum(v) for v in shares)).group_by(c.k)):
        raw[row[0]] = [v or 0 for v in row[1:]] + [0, 0]
    for k, n in period.overdue_open_counts(s, S, E, now, Case.grid_code):
        raw.setdefault(k, [0] * (period.SUMS + 2))[period.OVERDUE] += n
    for k, n in period.suspended_counts(s, E, Case.grid_code):
        raw.setdefault(k, [0] * (period.SUMS + 2))[period.SUSPENDED] += n
    out = {g: {name: v[slot] for name, slot in _SLOTS.items()} for g, v in raw.items()}
    for g, f in accepted_by_grid(s, S, E).items():
        out.setdefault(g, _empty())["patrol_accepted"] = f["patrol_accepted"]
    for g, pts in s.execute(select(Case.grid_code, func.sum(CasePenalty.points)).join(
            Case, Case.id == CasePenalty.case_id).where(CasePenalty.at >= S, CasePenalty.at < E)
            .group_by(Case.grid_code)):
        out.setdefault(g, _empty())["penalty_points"] = float(pts or 0)
    return out


def accepted_by_grid(s: Session, S: datetime, E: datetime) -> dict[str, dict]:
    """{grid: {accepted, patrol_accepted}}: the accepted cases of P (not voided by E) and those of them found
    by the grid members' patrol (监督举报), through ix_cases_accepted."""
    patrol = func.count().filter(unindexed(Case.source) == "patrol")
    grid = unindexed(Case.grid_code)
    return {g: {"accepted": n, "patrol_accepted": p} for g, n, p in s.execute(select(grid, func.count(), patrol).where(
        Case.accepted_at >= S, Case.accepted_at < E, accepted(),
        or_(Case.voided_at.is_(None), Case.voided_at >= E)).group_by(grid))}


def _empty() -> dict:
    return {name: 0 for name in _SLOTS}


def area_items(grids: dict[str, dict], areas: list, level: int, days: int, rules: AssessmentRules) -> list[dict]:
    """The items of every area of `level` (areas: the hierarchy's records), each the sum of its grids'
    counts, with the rates, 立案数分值, score, grade and rank."""
    owner = grid_owners(areas, level)
    grid_count = Counter(owner.values())
    sums: dict[str, dict] = {a.code: {**_empty(), "patrol_accepted": 0, "penalty_points": 0.0}
                             for a in areas if a.level == level}
    for g, f in grids.items():
        target = sums.get(owner.get(g, ""))
        if target is not None:
            for k, v in f.items():
                target[k] = target.get(k, 0) + v
    items = []
    for a in sorted((a for a in areas if a.level == level), key=lambda a: a.code):
        f = sums[a.code]
        item = {"code": a.code, "name": a.name, "level": a.level, "parent": a.parent, "grids": grid_count.get(a.code, 0),
                "received": f["received"], "accepted": f["accepted"], "due": f["due"], "closed": f["closed"],
                "closed_on_time": f["closed_on_time"], "closure_rate": _rate(f["closed"], f["due"]),
                "on_time_rate": _rate(f["closed_on_time"], f["due"]),
                "rework_rate": _rate(f["reworked"], f["closed_in"]),
                "extension_rate": _rate(f["extended"], f["accepted"]), "overdue_open": f["overdue_open"],
                "mean_handling_hours": float(f["hours"]) / f["closed_in"] if f["closed_in"] else None,
                "voided": f["voided"], "suspended": f["suspended"], "patrol_accepted": f["patrol_accepted"],
                "penalty_points": round(float(f["penalty_points"]), 6)}
        items.append(score_area(item, days, rules))
    rules.rank(items, "area")
    return items


def score_area(item: dict, days: int, rules: AssessmentRules) -> dict:
    """An area's score, defined once (area_items, the wall's district ranking): from its `grids`, `accepted`,
    `patrol_accepted`, `due`, `closure_rate` and `on_time_rate` over a period of `days`, sets patrol_share,
    accepted_per_grid, accepted_score, score (null with no accepted and no due case) and grade. Returns item."""
    n_grids = item["grids"]
    item["patrol_share"] = _rate(item["patrol_accepted"], item["accepted"])
    item["accepted_per_grid"] = per_grid = item["accepted"] / n_grids * 30 / days if n_grids else None
    item["accepted_score"] = rules.accepted_score(per_grid)
    _score(rules, "area", item, scored=bool(item["accepted"] or item["due"]))
    return item


def grid_owners(areas: list, level: int) -> dict[str, str]:
    """{grid: its area of `level`} (areas: the hierarchy's records); Counter(values) counts an area's grids."""
    by_code = {a.code: a for a in areas}
    owner: dict[str, str] = {}
    for a in areas:
        if a.level != 5:
            continue
        up = a
        while up is not None and up.level > level:
            up = by_code.get(up.parent) if up.parent else None
        if up is not None and up.level == level:
            owner[a.code] = up.code
    return owner


# ---- units (部门评价) ------------------------------------------------------------------------------
def unit_items(s: Session, S: datetime, E: datetime, rules: AssessmentRules) -> list[dict]:
    """Every unit with a figure or a point in P, or ever dispatched a case (active units), scored."""
    d, y = Case.deadline_at, Case.resolved_at
    flag = lambda cond: case((cond, 1), else_=0)  # noqa: E731
    in_p = lambda col: and_(col >= S, col < E)  # noqa: E731
    # each case's facts once (the deadline's and the resolution's ranges), then summed per unit
    rows = select(Case.unit_code.label("k"), flag(in_p(d)).label("din"), flag(y < S).label("ybs"),
                  flag(in_p(y)).label("yin"), flag(y < d).label("yld"), flag(y < E).label("yle"),
                  flag(y <= d).label("yod"), flag(Case.rework_count > 0).label("rw"),
                  flag(Case.extension_count > 0).label("ext")).where(
        or_(in_p(d), in_p(y)), accepted(), counts_at_end(E), unindexed(Case.unit_code).is_not(None)).offset(0).subquery()
    r = rows.c
    early = r.din * (1 - r.ybs)
    due = early + r.yin * r.yld - early * r.yin * r.yld
    figures: dict[str, dict] = defaultdict(lambda: dict.fromkeys(
        ("dispatched", "due_handling", "handled", "handled_on_time", "reworked", "extended", "returned",
         "suspended"), 0) | {"penalty_points": 0.0})
    for k, n_due, n_handled, n_on_time, n_rework, n_ext in s.execute(select(
            r.k, func.sum(due), func.sum(due * r.yle), func.sum(due * r.yle * r.yod), func.sum(due * r.yle * r.rw),
            func.sum(due * r.ext)).group_by(r.k)):
        f = figures[k]
        f.update(due_handling=int(n_due or 0), handled=int(n_handled or 0), handled_on_time=int(n_on_time or 0),
                 reworked=int(n_rework or 0), extended=int(n_ext or 0))
    for k, n in s.execute(select(unindexed(Case.unit_code), func.count()).where(
            Case.dispatched_at >= S, Case.dispatched_at < E, unindexed(Case.unit_code).is_not(None),
            or_(Case.voided_at.is_(None), Case.voided_at >= E)).group_by(unindexed(Case.unit_code))):
        figures[k]["dispatched"] = n
    for k, n in period.suspended_counts(s, E, Case.unit_code):  # (two ranges: a unit can come twice)
        if k is not None:
            figures[k]["suspended"] += n
    for k, pts in s.execute(select(CasePenalty.unit_code, func.sum(CasePenalty.points)).where(
            CasePenalty.at >= S, CasePenalty.at < E).group_by(CasePenalty.unit_code)):
        figures[k]["penalty_points"] = round(float(pts or 0), 6)
    people = _people(s)
    for actor, n in s.execute(select(CaseHistory.actor, func.count()).where(
            CaseHistory.action == "return", CaseHistory.at >= S, CaseHistory.at < E).group_by(CaseHistory.actor)):
        unit = (people.get(actor) or _sim_person(actor, {}) or {}).get("unit")
        if unit:
            figures[unit]["returned"] += n
    ever = period.key_values(s, Case.unit_code)  # a loose scan of ix_cases_unit_state
    units = {u.code: u for u in s.scalars(select(Unit))}
    codes = {k for k in figures if k in units} | {k for k in ever if k in units and units[k].active}
    items = []
    for code in sorted(codes):
        f = figures[code]
        u = units[code]
        item = {"code": code, "name": u.name, "area": u.area_code, **f,
                "handling_rate": _rate(f["handled"], f["due_handling"]),
                "on_time_handling_rate": _rate(f["handled_on_time"], f["due_handling"]),
                "rework_rate": _rate(f["reworked"], f["handled"]),
                "extension_rate": _rate(f["extended"], f["due_handling"])}
        _score(rules, "unit", item, scored=f["due_handling"] > 0)
        items.append(item)
    rules.rank(items, "unit")
    return items


# ---- posts (岗位评价) ------------------------------------------------------------------------------
def _people(s: Session) -> dict[str, dict]:
    """{history actor: {role, name, area, unit}} of the people who sign in (users), the API's tokens and
    the demo's simulated people (sim:grid:<grid>, sim:duty_officer, sim:unit:<unit>)."""
    out = {f"user:{u.username}": {"role": u.role, "name": u.display_name, "area": u.area_code, "unit": u.unit_code,
                                  "active": u.active}
           for u in s.scalars(select(User))}
    for t in s.scalars(select(ApiToken)):
        out[f"token:{t.id}"] = {"role": t.role, "name": t.label or f"令牌 {t.id}", "area": t.area_code,
                                "unit": t.unit_code, "active": t.revoked_at is None}
    return out


def _sim_person(actor: str, areas_by_code: dict) -> dict | None:
    if actor.startswith("sim:grid:"):
        grid = actor.removeprefix("sim:grid:")
        a = areas_by_code.get(grid)
        return {"role": "grid_member", "name": f"{a.name if a else grid}网格员（模拟）", "area": grid, "unit": None,
                "active": False}
    if actor == "sim:duty_officer":
        return {"role": "duty_officer", "name": "值班员（模拟）", "area": None, "unit": None, "active": False}
    if actor.startswith("sim:unit:"):
        return {"role": "unit_handler", "name": actor, "area": None, "unit": actor.removeprefix("sim:unit:"),
                "active": False}
    return None


# the acts the posts are scored on (docs/assessment.md)
_REPORTS = ("report", "merge")
_INTAKE = ("accept", "reject", "verify_request")
_DISPATCH = ("dispatch", "reassign")
_REVIEW = ("verify", "rework")
_POST_ACTS = (*_REPORTS, *_INTAKE, "report_check", *_DISPATCH, *_REVIEW)


def _hours(dialect: str, later, earlier):
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 24.0
    return func.date_part("epoch", later - earlier) / 3600.0


def _post_statement(dialect: str, limits: dict, S_, E_):
    """The posts' acts of P (ix_case_history_action_at) counted per actor, act, stage and outcome. Each act that
    ends a center stage is timed from the stage's start: a stamp of the case when it is the act's own (the case
    keeps the last of each), else the case's latest earlier history row of the starting acts (rare: a second
    round). An act within its limit in calendar hours is on time (working time never runs faster); the others
    come back one by one, with start, time and clock, for the working calendar."""
    h, c = CaseHistory, Case
    act, at = h.action, h.at

    # A correlated read of the case's own rows goes through ix_case_history_case_action_at (migration 0017: from
    # the index alone, no row fetched): action and time spelt unindexed, else SQLite takes the (action, at)
    # index and reads every such act before this one (1 M × 1 M)
    def latest(*actions):  # the latest earlier row of these acts
        h2 = CaseHistory.__table__.alias("h2")
        return select(func.max(h2.c.at)).where(h2.c.case_id == h.case_id, unindexed(h2.c.action).in_(actions),
                                               unindexed(h2.c.at) <= at).scalar_subquery()

    filed_after_check = and_(c.checked_at.is_not(None), c.checked_at <= at)
    stage = case((act == "report_check", "check"), (act.in_(_REVIEW), "review"),
                 (and_(act.in_(("accept", "reject")), filed_after_check), "file"),
                 (act.in_(_INTAKE), "accept"),
                 (or_(act == "dispatch", h.from_state == "returned"), "dispatch"), else_=None)
    start = case(
        (act == "report_check", case((c.check_requested_at <= at, c.check_requested_at), else_=latest("verify_request"))),
        (act.in_(_REVIEW), case((c.resolved_at <= at, c.resolved_at), else_=latest("resolve"))),
        (and_(act.in_(("accept", "reject")), filed_after_check), c.checked_at),
        (act.in_(_INTAKE), c.reported_at),
        (act == "reassign", case((c.returned_at <= at, c.returned_at), else_=latest("return"))),
        (act == "dispatch", case(
            (or_(c.rework_count > 0, c.returned_at > at), latest("accept", "return", "rework")),
            (and_(c.returned_at.is_not(None), c.returned_at >= c.accepted_at), c.returned_at),
            else_=c.accepted_at)),
        else_=None)
    valid = and_(c.accepted_at.is_not(None), c.accepted_at < E_, c.rejected_at.is_(None),
                 c.state.not_in(period.NOT_ACCEPTED), or_(c.voided_at.is_(None), c.voided_at >= E_))
    voided = and_(c.voided_at.is_not(None), c.voided_at < E_)
    h3 = CaseHistory.__table__.alias("h3")
    later_reassign = case((c.reassign_count == 0, 0), else_=select(func.count()).where(
        h3.c.case_id == h.case_id, unindexed(h3.c.action) == "reassign", unindexed(h3.c.at) > at,
        unindexed(h3.c.at) < E_).scalar_subquery())
    outcome = case((act.in_(_REPORTS), case((valid, 1), else_=0)), (act == "accept", case((voided, 1), else_=0)),
                   (act.in_(_DISPATCH), case((later_reassign > 0, 1), else_=0)), else_=0)
    acts = select(h.actor.label("actor"), act.label("act"), h.from_state.label("from_state"), stage.label("stage"),
                  outcome.label("outcome"), start.label("start"), at.label("at"),
                  c.time_unit.label("time_unit")).join(c, c.id == h.case_id).where(
        act.in_(_POST_ACTS), at >= S_, at < E_).offset(0).subquery()  # each act's facts once
    a = acts.c
    limit = case(*((a.stage == literal(name), literal(hours)) for name, hours in limits.items()), else_=None)
    quick = case((_hours(dialect, a.at, a.start) <= limit, 1), else_=0)
    rows = select(a.actor, a.act, a.from_state, a.stage, a.outcome, quick.label("quick"), a.start, a.at,
                  a.time_unit).offset(0).subquery()
    r = rows.c
    # The slow acts' (start, at, clock) come back as arrays of their group, not as groups of their own: a GROUP
    # BY on them sorted every act of the month (4 M at 1 M cases) where a hash of a few thousand groups does
    slow = and_(r.stage.is_not(None), r.quick == 0)
    if dialect == "postgresql":
        # plain arrays (the driver's values, read by _as_time): the column type's processor ran per element
        keep = [func.array_agg(col, type_=ARRAY(type_)).filter(slow)
                for col, type_ in ((r.start, DateTime()), (r.at, DateTime()), (r.time_unit, String()))]
    else:
        keep = [func.json_group_array(col).filter(slow) for col in (r.start, r.at, r.time_unit)]
    return select(r.actor, r.act, r.from_state, r.stage, r.outcome, r.quick, *keep, func.count()).group_by(
        r.actor, r.act, r.from_state, r.stage, r.outcome, r.quick)


def _post_rows(s: Session, statement) -> list:
    """The posts' grouped acts. PostgreSQL's planner takes the groups for hundreds of thousands (each actor ×
    act × stage × outcome) where there are tens of thousands, and sorts the month's 4 M acts on disk to group
    them; told not to sort for this one read, it hashes them (1 M cases: 27 s -> 17 s on this machine).
    work_mem is the cap of that hash, not what it takes: the planner reckons each group's three arrays at 8 kB
    each, so under 64 MB it let ~5,000 groups stay in memory and wrote the month's 50,000 to disk in 129
    batches (250 MB), and its join's 1 M cases in two; under 1 GB neither spills and the read takes ~150 MB
    (1 M cases: 48-52 s -> 40-41 s on a machine loaded 8-10 deep)."""
    if s.get_bind().dialect.name != "postgresql":
        return s.execute(statement).all()
    s.execute(text("SET LOCAL enable_sort = off"))
    s.execute(text("SET LOCAL work_mem = '1GB'"))
    rows = s.execute(statement).all()
    s.execute(text("RESET enable_sort"))  # (on an error the transaction rolls back, and SET LOCAL with it)
    s.execute(text("RESET work_mem"))
    return rows


def _on_time(rows, limits: dict, calendar: WorkCalendar) -> list[int]:
    """How many of each group's acts ended their stage within its limit: all of a quick group (within it in
    calendar hours) or of a stage with no limit; of a slow group, each act checked on the working calendar
    from its own start, all of the month's slow acts of one stage and clock in one batch (ends_within_us)."""
    out = [0] * len(rows)
    batches: dict[tuple, tuple[list, list, list]] = defaultdict(lambda: ([], [], []))
    for k, (_actor, _act, _from, stage, _outcome, quick, starts, ats, units, n) in enumerate(rows):
        if quick or stage not in limits:
            out[k] = n
            continue
        if isinstance(starts, str):  # SQLite's JSON arrays
            starts, ats, units = json.loads(starts), json.loads(ats), json.loads(units)
        for start, at, unit in zip(starts or (), ats or (), units or ()):
            if start is not None and at is not None:
                group = batches[(stage, extension_unit(unit))]
                group[0].append(start)
                group[1].append(at)
                group[2].append(k)
    for (stage, unit), (starts, ats, owners) in batches.items():
        for k, ok in zip(owners, calendar.ends_within_us(_epoch_us(starts), _epoch_us(ats), limits[stage], unit)):
            out[k] += ok
    return out


def _epoch_us(values: list):
    """Stored UTC times (naive datetimes from PostgreSQL, ISO text from SQLite, or aware) as microseconds since
    1970, converted by numpy in one go."""
    if values and isinstance(values[0], datetime) and values[0].tzinfo is not None:
        values = [v.astimezone(UTC).replace(tzinfo=None) for v in values]
    elif values and isinstance(values[0], str) and values[0][-6] in "+-":
        values = [_as_time(v).astimezone(UTC).replace(tzinfo=None) for v in values]
    return np.array(values, dtype="datetime64[us]").astype(np.int64)


def person_items(s: Session, S: datetime, E: datetime, grids: dict[str, dict], areas: list, rules: AssessmentRules,
                 center: CenterRules, calendar: WorkCalendar) -> list[dict]:
    """The grid members and duty officers: every person with an act in P or an active user of those roles."""
    limits = {name: center.stage(name).limit_hours for name in ("accept", "check", "file", "dispatch", "review")}
    limits = {k: v for k, v in limits.items() if v is not None}
    statement = _post_statement(s.get_bind().dialect.name, limits, bindparam("S", S), bindparam("E", E))
    tally: dict[str, dict] = defaultdict(lambda: defaultdict(int))

    rows = _post_rows(s, statement)
    on_time = _on_time(rows, limits, calendar)
    for k, (actor, act, from_state, stage, outcome, quick, _starts, _ats, _units, n) in enumerate(rows):
        t = tally[actor]
        if act in _REPORTS:
            if from_state is not None:
                continue  # a merge row on the surviving case, not a report
            t["reports"] += n
            t["valid_reports"] += n * outcome
            continue
        ok = on_time[k]
        if act == "report_check":
            t["site_checks"] += n
            t["site_checks_on_time"] += ok
        elif act in _REVIEW:
            t["reviews"] += n
            t["reviews_on_time"] += ok
        elif act in _INTAKE:
            t["intake_acts"] += n
            t["intake_on_time"] += ok
            if act == "accept":
                t["accepted"] += n
                t["accepted_voided"] += n * outcome
        else:  # dispatch, reassign
            t["dispatched"] += n
            t["dispatch_reassigned"] += n * outcome
            if stage is not None:  # a 派遣 that ends the stage (a reassign after a return too)
                t["dispatch_timed"] += n
                t["dispatch_on_time"] += ok
    people = _people(s)
    by_code = {x.code: x for x in areas}
    children: dict[str, list] = defaultdict(list)
    for x in areas:
        children[x.parent].append(x.code)
    items = []
    # (the people who sign in are items with no act too; a token or the demo's people only when they acted)
    candidates = set(tally) | {k for k, p in people.items()
                               if k.startswith("user:") and p["active"] and p["role"] in POST_ROLES}
    for actor in sorted(candidates):
        p = people.get(actor) or _sim_person(actor, by_code)
        if p is None or p["role"] not in POST_ROLES:
            continue
        t = tally.get(actor, {})
        item = {"code": actor, "name": p["name"], "role": p["role"], "area": p["area"]}
        if p["role"] == "grid_member":
            own = grids_under(p["area"], by_code, children)
            acc = sum(grids.get(g, {}).get("accepted", 0) for g in own)
            patrol = sum(grids.get(g, {}).get("patrol_accepted", 0) for g in own)
            checks, reviews = t.get("site_checks", 0), t.get("reviews", 0)
            item.update(grids=len(own), reports=t.get("reports", 0), valid_reports=t.get("valid_reports", 0),
                        valid_rate=_rate(t.get("valid_reports", 0), t.get("reports", 0)),
                        missed_rate=_rate(acc - patrol, acc), site_checks=checks, reviews=reviews,
                        on_time_site_check_rate=_rate(t.get("site_checks_on_time", 0), checks),
                        on_time_review_rate=_rate(t.get("reviews_on_time", 0), reviews),
                        on_time_check_rate=_rate(t.get("site_checks_on_time", 0) + t.get("reviews_on_time", 0),
                                                 checks + reviews))
            _score(rules, "grid_member", item, scored=bool(t.get("reports") or checks or reviews))
        else:
            n_acc, n_disp = t.get("accepted", 0), t.get("dispatched", 0)
            item.update(intake_acts=t.get("intake_acts", 0), accepted=n_acc, dispatched=n_disp,
                        on_time_accept_rate=_rate(t.get("intake_on_time", 0), t.get("intake_acts", 0)),
                        on_time_dispatch_rate=_rate(t.get("dispatch_on_time", 0), t.get("dispatch_timed", 0)),
                        accurate_accept_rate=_rate(n_acc - t.get("accepted_voided", 0), n_acc),
                        accurate_dispatch_rate=_rate(n_disp - t.get("dispatch_reassigned", 0), n_disp))
            _score(rules, "duty_officer", item, scored=bool(t.get("intake_acts") or n_disp))
        items.append(item)
    ranked = []
    for kind in POST_ROLES:  # each post ranked among its own
        group = [i for i in items if i["role"] == kind]
        rules.rank(group, kind)
        ranked += group
    return ranked


def _as_time(value) -> datetime:
    """A time read through a CASE (no column type): an aware datetime, from SQLite's text or a naive UTC value."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def grids_under(code: str | None, by_code: dict, children: dict) -> list[str]:
    """The grids of an area (the area itself when it is a grid)."""
    if code is None or code not in by_code:
        return []
    out, todo = [], [code]
    while todo:
        c = todo.pop()
        if by_code[c].level == 5:
            out.append(c)
        todo += children.get(c, [])
    return sorted(out)


# ---- penalties (扣分), each point traceable to its case -----------------------------------------------
def penalty_cases(s: Session, S: datetime, E: datetime, unit: str | None = None, grids: list[str] | None = None,
                  limit: int = 1000) -> list[dict]:
    """The penalty rows of P (newest first), of a unit or of the cases in some grids: case, unit, points,
    rule, reason, time."""
    q = select(CasePenalty.case_id, CasePenalty.unit_code, CasePenalty.points, CasePenalty.rule, CasePenalty.reason,
               CasePenalty.at, Case.grid_code).join(Case, Case.id == CasePenalty.case_id).where(
        CasePenalty.at >= S, CasePenalty.at < E)
    if unit is not None:
        q = q.where(CasePenalty.unit_code == unit)
    if grids is not None:
        q = q.where(Case.grid_code.in_(grids or ["-"]))
    rows = s.execute(q.order_by(CasePenalty.at.desc(), CasePenalty.id.desc()).limit(limit))
    return [{"case_id": r.case_id, "unit_code": r.unit_code, "points": r.points, "rule": r.rule, "reason": r.reason,
             "at": r.at.isoformat(), "grid_code": r.grid_code} for r in rows]


__all__ = ["AREA_LEVELS", "BY", "grid_figures", "accepted_by_grid", "area_items", "unit_items", "person_items",
           "penalty_cases", "grids_under", "score_area", "grid_owners"]
