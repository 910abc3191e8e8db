"""SQLAlchemy 2 models: areas, categories, units, cases, case history, users, API tokens, sign-in sessions, devices,
telemetry, alarms, indicator readings, emergency responses and resources."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite keeps no offset, PostgreSQL's timestamptz would
    convert to the session zone; one convention for both keeps comparisons honest."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


# BigInteger ids on PostgreSQL, plain INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Small key/value facts about the database (e.g. the hierarchy version locators cache by)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Area(Base):
    """A node of the five-level hierarchy. Geometry is WKB in lon/lat."""

    __tablename__ = "areas"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(SmallInteger, index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)
    geometry: Mapped[bytes] = mapped_column(LargeBinary)
    population: Mapped[int | None] = mapped_column(Integer)
    area_km2: Mapped[float] = mapped_column(Float)
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)


class Category(Base):
    """One minor category of the dispatch manual (指挥手册)."""

    __tablename__ = "categories"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    major_class: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), index=True)  # component, event, grid, emergency
    filing_criterion: Mapped[str] = mapped_column(Text, default="")
    closing_criterion: Mapped[str] = mapped_column(Text, default="")
    unit_type: Mapped[str] = mapped_column(String(50))
    level: Mapped[int] = mapped_column(SmallInteger)
    time_limit: Mapped[float] = mapped_column(Float)
    time_unit: Mapped[str] = mapped_column(String(20))  # working_hours, working_days, minutes
    urgency: Mapped[str] = mapped_column(String(20), default="normal")
    assist_unit_types: Mapped[list] = mapped_column(JSON, default=list)
    stages: Mapped[list] = mapped_column(JSON, default=list)


class Unit(Base):
    """A handling unit: bureau, street office, community committee, grid member, utility."""

    __tablename__ = "units"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    unit_type: Mapped[str] = mapped_column(String(50), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), index=True)
    primary: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# the states in which the unit holds the case and its handling clock runs (dispatch.lifecycle.HANDLING_STATES)
IN_HAND_SQL = "state IN ('dispatched', 'signed')"


class Case(Base):
    """An event reported through any channel, and where it stands in its lifecycle."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    district_code: Mapped[str] = mapped_column(String(20))
    severity: Mapped[int | None] = mapped_column(SmallInteger)
    reporter_phone: Mapped[str | None] = mapped_column(String(30))
    reporter_count: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"))
    assist_units: Mapped[list | None] = mapped_column(JSON)
    handling_level: Mapped[int | None] = mapped_column(SmallInteger)
    route_reason: Mapped[str] = mapped_column(Text, default="")
    report_upward: Mapped[bool] = mapped_column(Boolean, default=False)
    time_unit: Mapped[str] = mapped_column(String(20), default="working_hours")
    extension_pending_hours: Mapped[float | None] = mapped_column(Float)
    # The deadline the scheduler last reminded for at the warning (催办 by default) and at the deadline
    # (督办 by default): one automatic reminder per trigger and deadline (a new deadline — redispatch,
    # extension, resumption — is reminded anew).
    auto_urged_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    auto_supervised_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The instant the handling clock reaches its warning (80 % of the time allowed): when to urge.
    warning_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 挂账: the unit's pending request, the state to go back to and the handling time left (hours on
    # the case's clock: working hours or calendar hours) when the clock was stopped.
    suspension_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state_before_suspension: Mapped[str | None] = mapped_column(String(20))
    suspension_remaining_hours: Mapped[float | None] = mapped_column(Float)
    # 核实: the grid member's answer, "confirmed" (属实) or "unfounded" (不属实)
    check_result: Mapped[str | None] = mapped_column(String(20))
    # 督办: the supervising level (1 city … 5 grid) and the deadline it set
    supervision_level: Mapped[int | None] = mapped_column(SmallInteger)
    supervision_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # counters with the database's default only: the intake's compiled INSERT binds no Python default
    urge_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reassign_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reopen_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    penalty_points: Mapped[float] = mapped_column(Float, server_default=text("0"))
    # 回访: satisfied, basically_satisfied or unsatisfied, with the caller's words
    callback_result: Mapped[str | None] = mapped_column(String(30))
    callback_note: Mapped[str | None] = mapped_column(Text)
    # the hotline's (12345) own ticket number and system, so it can close its loop by that number
    external_ref: Mapped[str | None] = mapped_column(String(64))
    external_system: Mapped[str | None] = mapped_column(String(32))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_count: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # a grid's or a street's cases of a time range (the cockpit's drill below the district)
        Index("ix_cases_grid_reported", "grid_code", "reported_at"),
        Index("ix_cases_district_reported", "district_code", "reported_at"),
        Index("ix_cases_unit_state", "unit_code", "state"),
        Index("ix_cases_reported", "reported_at"),
        Index("ix_cases_deadline", "deadline_at"),
        Index("ix_cases_category_reported", "category_code", "reported_at"),
        # the intake's dedupe: same category within a few metres (a latitude band of ~100 m), whatever
        # the day's volume of the category; lon and reported_at are checked in the index
        Index("ix_cases_dedupe", "category_code", "lat", "lon", "reported_at"),
        # the console's queue filtered by source, or to supervised cases (few: a partial index)
        Index("ix_cases_source_reported", "source", "reported_at"),
        Index("ix_cases_supervised_reported", "reported_at", sqlite_where=text("supervised = 1"),
              postgresql_where=text("supervised")),
        # the hotline reads its ticket by number; it and other systems list what changed since a time
        Index("ix_cases_external_ref", "external_ref", sqlite_where=text("external_ref IS NOT NULL"),
              postgresql_where=text("external_ref IS NOT NULL")),
        Index("ix_cases_updated", "updated_at", "id"),
        # the reminders' scheduler: the cases in the unit's hands past their warning
        Index("ix_cases_warning_in_hand", "warning_at", sqlite_where=text(IN_HAND_SQL),
              postgresql_where=text(IN_HAND_SQL)),
    )


class CaseAssist(Base):
    """协办: a unit assisting the lead unit, with its own sign (签收) and feedback (反馈)."""

    __tablename__ = "case_assists"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ux_case_assists_case_unit", "case_id", "unit_code", unique=True),)


class CaseSupervision(Base):
    """One 催办 (urge) or 督办 (supervise) of a case: who, at which level, about which deadline."""

    __tablename__ = "case_supervision"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))   # urge | supervise
    unit_code: Mapped[str | None] = mapped_column(String(40))
    level: Mapped[int | None] = mapped_column(SmallInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # 督办's own deadline
    for_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the handling deadline it was about
    actor: Mapped[str] = mapped_column(String(100))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    rule: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")


class CasePenalty(Base):
    """扣分: points a unit loses on a case (urged, supervised, reopened), by the city's rules."""

    __tablename__ = "case_penalties"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_code: Mapped[str] = mapped_column(String(40), index=True)
    points: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CaseEvent(Base):
    """The domain-event outbox: written in the same transaction as the change. Its seq increases
    across the whole system and is what live clients resync from."""

    __tablename__ = "case_events"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    type: Mapped[str] = mapped_column(String(20))  # created | updated
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    grid_code: Mapped[str] = mapped_column(String(20))
    unit_code: Mapped[str | None] = mapped_column(String(40))


class CaseHistory(Base):
    """Append-only audit trail: one row per transition, written in the transition's transaction."""

    __tablename__ = "case_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict | None] = mapped_column(JSON)

    # the posts' figures (岗位评价): a period's acts of some kinds, with who did them (0012); a case's rows (its
    # page, its history) and, read from the index alone, its latest act of some kind before a time (0017)
    __table_args__ = (Index("ix_case_history_action_at", "action", "at", "actor", "case_id", "from_state"),
                      Index("ix_case_history_case_action_at", "case_id", "action", "at"))


class User(Base):
    """A person who signs in; role and area scope what they may see and do."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for the API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# ---- plan indicators (cockpit) ---------------------------------------------------------------
from datetime import date  # noqa: E402  (kept with the models that use it)

from sqlalchemy import Date  # noqa: E402


class Indicator(Base):
    """A key indicator of the plan (规划主要指标): 2023 and 2025 targets, the current value."""

    __tablename__ = "indicators"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    theme: Mapped[str] = mapped_column(String(20), index=True)  # the cockpit panel it belongs to
    domain: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(20), default="")
    direction: Mapped[str] = mapped_column(String(4), default="up")  # up: higher is better; down: lower
    decimals: Mapped[int] = mapped_column(SmallInteger, default=1)
    baseline: Mapped[float | None] = mapped_column(Float)  # the 2020 value the plan starts from
    target_2023: Mapped[float] = mapped_column(Float)
    target_2025: Mapped[float] = mapped_column(Float)
    responsible_unit: Mapped[str] = mapped_column(String(100))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[float | None] = mapped_column(Float)
    as_of: Mapped[date | None] = mapped_column(Date)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(100))


class IndicatorValue(Base):
    """Every value reported for an indicator, append-only; the current one has the newest as_of."""

    __tablename__ = "indicator_values"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    indicator_code: Mapped[str] = mapped_column(ForeignKey("indicators.code"))
    value: Mapped[float] = mapped_column(Float)
    as_of: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(10))  # seed, file, api
    actor: Mapped[str] = mapped_column(String(100), default="")
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_indicator_values_code_as_of", "indicator_code", "as_of"),)


# Plain time ranges of accepting and closing (the month rollup's union of ranges, today's counts, the
# cockpit's closed per day): only the cases with that time, so a new report writes no entry (0008).
Index("ix_cases_accepted", Case.accepted_at, sqlite_where=text("accepted_at IS NOT NULL"),
      postgresql_where=text("accepted_at IS NOT NULL"))
Index("ix_cases_closed_at", Case.closed_at, sqlite_where=text("closed_at IS NOT NULL"),
      postgresql_where=text("closed_at IS NOT NULL"))

# Covering partial indexes (migrations 0007, 0008), each holding one kind of case with what the figures
# read of it, so that a figure reads one range of one index and never the table (figures.period):
# - the accepted cases (立案案件, figures/definitions.py, spelt with its literals as figures.period.accepted()
#   spells it: a planner matches a partial index's predicate term by term) by accepting and by closing
#   time, led by a group key (kpi_figures reads one range per district or category);
# - the backlog, accepted and not closed (what can be overdue, figures.period.overdue_now), by deadline in
#   the city, a district or a grid; closed_at (NULL in all of them) is a key column so that "closed_at IS
#   NULL AND deadline_at < now" is an equality and a range, which SQLite's planner (no statistics) prefers
#   to the plain range of ix_cases_deadline; the id on PostgreSQL, for the ids of a page of a district's
#   overdue cases (cases.service.list; SQLite's rowid is in every index);
# - the cases closed after their deadline (overdue_open of a past period, due cases closed after it).
# None holds a report not accepted yet: intake pays nothing for them. SQLite has no INCLUDE: the columns
# follow the keys, and the handling time is an index expression (parsing two timestamps per row cost more
# than the rest of the row); PostgreSQL includes accepted_at instead.
ACCEPTED = "accepted_at IS NOT NULL AND rejected_at IS NULL AND state NOT IN ('rejected', 'merged')"
_HOURS = text("(julianday(closed_at) - julianday(accepted_at))")


def _covering(name: str, keys: list, more: list, include: list, where: str | None) -> None:
    cols = [getattr(Case, k) for k in keys]
    cond = {} if where is None else {"sqlite_where": text(where), "postgresql_where": text(where)}
    Index(name, *cols, *[c if not isinstance(c, str) else getattr(Case, c) for c in more],
          **cond).ddl_if(dialect="sqlite")
    Index(name, *cols, postgresql_include=include, **cond).ddl_if(dialect="postgresql")


_covering("ix_cases_accepted_district", ["district_code", "accepted_at"], ["extension_count", "category_code"],
          ["extension_count", "category_code"], ACCEPTED)
_covering("ix_cases_accepted_category", ["category_code", "accepted_at"], ["extension_count", "district_code"],
          ["extension_count", "district_code"], ACCEPTED)
# (grid and unit on SQLite only: PostgreSQL's planner, counting the wider index's pages as random reads,
# took the plain closed_at range and the table instead)
_covering("ix_cases_closed_district", ["district_code", "closed_at"],
          ["deadline_at", "rework_count", "category_code", "grid_code", "unit_code", _HOURS],
          ["deadline_at", "accepted_at", "rework_count", "category_code"], "closed_at IS NOT NULL AND " + ACCEPTED)
_covering("ix_cases_closed_category", ["category_code", "closed_at"],
          ["deadline_at", "rework_count", "district_code", _HOURS],
          ["deadline_at", "accepted_at", "rework_count", "district_code"], "closed_at IS NOT NULL AND " + ACCEPTED)
# by grid (0010): a street's closings since the period's start, one range per grid, not its district's
# (figures.cockpit.area_rows); the reporting time and the id on PostgreSQL, for its ids read index-only
_covering("ix_cases_closed_grid", ["grid_code", "closed_at"], [], ["reported_at", "id"],
          "closed_at IS NOT NULL AND " + ACCEPTED)
# (voided_at, suspended_at, resumed_at since 0012: a case voided or on 挂账 is neither due nor overdue,
# figures.period.counts_at_end, checked in the index)
_SET_ASIDE = ["voided_at", "suspended_at", "resumed_at"]
_covering("ix_cases_open_deadline", ["closed_at", "deadline_at"],
          ["accepted_at", "district_code", "category_code", "grid_code", "unit_code", "state", *_SET_ASIDE],
          ["accepted_at", "district_code", "category_code", "grid_code", "unit_code", "state", *_SET_ASIDE],
          "closed_at IS NULL AND " + ACCEPTED)
_covering("ix_cases_open_district", ["district_code", "closed_at", "deadline_at"], [], ["id"],
          "closed_at IS NULL AND " + ACCEPTED)
_covering("ix_cases_open_grid", ["grid_code", "closed_at", "deadline_at"], [], ["id"], "closed_at IS NULL AND " + ACCEPTED)
# (rejected_at and state too on SQLite: covering every column its queries name, it wins over the plain
# closed_at range of ix_cases_closed_at in SQLite's planner, which has no statistics)
_covering("ix_cases_late_closed", ["closed_at"],
          ["deadline_at", "accepted_at", "district_code", "category_code", "grid_code", "unit_code", "rejected_at", "state",
           *_SET_ASIDE],
          ["deadline_at", "accepted_at", "district_code", "category_code", "grid_code", "unit_code", *_SET_ASIDE],
          "closed_at > deadline_at AND " + ACCEPTED)
# The cases set aside by the assessment (0012): voided (作废, counted only in `voided`) by voiding time, and
# those ever suspended (挂账) by suspension time, with what the figures read of them; few of either
_WHERE = ["district_code", "category_code", "grid_code", "unit_code"]
_covering("ix_cases_voided", ["voided_at"],
          ["reported_at", "accepted_at", "rejected_at", "state", "extension_count", "source", *_WHERE],
          ["reported_at", "accepted_at", "rejected_at", "state", "extension_count", "source", *_WHERE],
          "voided_at IS NOT NULL")
# the cases on hold now (the last suspension not lifted) and those lifted, by the suspension's end: the
# cases on 挂账 at the end of a period (figures.period.on_hold_arms)
_HELD = "suspended_at IS NOT NULL AND (resumed_at IS NULL OR resumed_at < suspended_at)"
_covering("ix_cases_held", ["suspended_at"], ["resumed_at", "voided_at", "accepted_at", "rejected_at", "state", *_WHERE],
          ["resumed_at", "voided_at", "accepted_at", "rejected_at", "state", *_WHERE], _HELD)
_covering("ix_cases_resumed", ["resumed_at"], ["suspended_at", "voided_at", "accepted_at", "rejected_at", "state", *_WHERE],
          ["suspended_at", "voided_at", "accepted_at", "rejected_at", "state", *_WHERE], "resumed_at >= suspended_at")
# The units' figures (部门评价, figures/assessment.py): the cases resolved and dispatched in a period
Index("ix_cases_resolved", Case.resolved_at, sqlite_where=text("resolved_at IS NOT NULL"),
      postgresql_where=text("resolved_at IS NOT NULL"))
Index("ix_cases_dispatched", Case.dispatched_at, sqlite_where=text("dispatched_at IS NOT NULL"),
      postgresql_where=text("dispatched_at IS NOT NULL"))
# (state, reported_at, id): the console's queue of one state, newest first, walks it in order (the name
# stays: one state is still its leading column); with where and what each case is, for the cockpit's open cases
# per area and theme (none of them changes after intake: intake pays a few bytes, no write)
_covering("ix_cases_state", ["state", "reported_at", "id"], ["district_code", "grid_code", "kind", "category_code"],
          ["district_code", "grid_code", "kind", "category_code"], None)


# ---- case photos (report and feedback evidence) -----------------------------------------------
from sqlalchemy import UniqueConstraint  # noqa: E402  (kept with the model that uses it)


class CasePhoto(Base):
    """A photo attached to a case: the file lives under the photo root, named by its SHA-256
    (cases/photos.py); this row says which case, what for, who, when. One row per case, kind and
    content, so an upload retried after a lost answer does not add a second one."""

    __tablename__ = "case_photos"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # report | feedback
    sha256: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(120))  # relative to the photo root
    filename: Mapped[str] = mapped_column(String(200), default="")  # as the uploader named it
    actor: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("case_id", "kind", "sha256", name="uq_case_photos_case_kind_sha"),)


# ---- sign-in sessions (auth/) -----------------------------------------------------------------
class LoginSession(Base):
    """One sign-in of a person (/login) or a wall display (/wall?token=): the browser's cookie holds
    only a random id, stored here as its SHA-256. A request is signed in while its row is not ended,
    not past expires_at, and seen within idle_seconds (data/login_sessions.py)."""

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # absolute, whatever the use
    idle_seconds: Mapped[int] = mapped_column(Integer)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # logout, password_reset, user_disabled, token_revoked, expired, idle
    end_reason: Mapped[str | None] = mapped_column(String(20))


# ---- the sensing fleet (issue 16) -----------------------------------------------------------------
class Device(Base):
    """A registered device (智慧井盖, 积水监测, …): where it is (located to its grid as a case is), who answers
    for it, how it stands and what it said last. Its type is a code of data/catalog/device_types.json."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the device's own id, as it reports
    type: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    district_code: Mapped[str] = mapped_column(String(20))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    status: Mapped[str] = mapped_column(String(20))  # online | offline | alarm | maintenance
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_values: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))  # nothing heard yet: SQL NULL
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # the fleet filtered by type and status (the /devices page, the wall's layer), within a district,
        # and an area below the district as a range of grid codes (data/devices.py)
        Index("ix_devices_type_status", "type", "status"),
        Index("ix_devices_status", "status"),
        Index("ix_devices_district_type", "district_code", "type"),
        Index("ix_devices_grid", "grid_code"),
        # a unit's own devices (a unit handler reads only those)
        Index("ix_devices_unit", "unit_code"),
    )


class Alarm(Base):
    """An alarm of a device and rule (docs/devices.md, Alarms): active → acknowledged → cleared. At most one open
    (not cleared) per device and rule (ux_alarms_open, a partial unique index); a rule that fires again updates
    it. `first_values` are the values at the raise, `values` the latest; `case_id` the case it opened or joined."""

    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    rule_code: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))  # critical | major | minor | warning
    status: Mapped[str] = mapped_column(String(20))  # active | acknowledged | cleared
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(100))  # "auto" (the clear condition) or a person
    first_values: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    values: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))

    __table_args__ = (
        # the engine's guard: one open alarm per device and rule, on both databases
        Index("ux_alarms_open", "device_id", "rule_code", unique=True,
              sqlite_where=text("status != 'cleared'"), postgresql_where=text("status != 'cleared'")),
        # a device's alarms (the device's page, the status after a clear), the list by status
        Index("ix_alarms_device", "device_id", "rule_code", "id"),
        Index("ix_alarms_status", "status", "id"),
        # the alarms of a case (a dispatching rule that fires again joins its open case)
        Index("ix_alarms_case", "case_id"),
    )


class AlarmHistory(Base):
    """Append-only: one row per step of an alarm (raise, update, acknowledge, clear, case), in the step's
    transaction, as case_history is for cases."""

    __tablename__ = "alarm_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    values: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))


class AlarmState(Base):
    """The alarm engine's running state per device and rule (dispatch.alarms.RuleState), so that a duration or a
    repetition under way survives a restart: the run in which the condition holds and the run in which the clear
    condition holds (first reading's time, length), and the last reading taken (a retry is skipped). Whether an
    alarm is open is read from `alarms`. A row is written only when the state changes."""

    __tablename__ = "alarm_states"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    rule_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    raise_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    raise_count: Mapped[int] = mapped_column(Integer, default=0)
    clear_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clear_count: Mapped[int] = mapped_column(Integer, default=0)
    last_ts: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Telemetry(Base):
    """One reading of a device: its time (the device's, or the arrival's for a flat payload) and the values
    that passed the device type's keys. Stored once per (device, ts): a redelivered or re-sent message is a
    duplicate, not a second reading. Raw rows older than UCC_TELEMETRY_RETENTION_DAYS are rolled into
    telemetry_hourly and deleted (sensing/telemetry.py)."""

    __tablename__ = "telemetry"
    # no foreign key to devices: the hottest insert of the platform checks devices itself (one read per batch)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    values: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # the primary key (device_id, ts) is the range index of a device's series; this one serves retention
        Index("ix_telemetry_ts", "ts"),
    )


class TelemetryHourly(Base):
    """A device's key over one hour (UTC), once its raw readings are past retention: min, max, mean, count
    (numbers; a flag as 0/1, so its mean is the share of the hour's readings that were true)."""

    __tablename__ = "telemetry_hourly"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    avg: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)


class IndicatorReading(Base):
    """One reading of a city vital-sign indicator (data/catalog/city_indicators.json: traffic congestion, AQI, water
    pressure, …): its time, value, unit and source. Stored once per (code, ts): a re-sent reading is a duplicate.
    The primary key (code, ts) is the index of an indicator's range reads and of its latest value."""

    __tablename__ = "indicator_readings"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EmergencyResponse(Base):
    """An emergency case's response (issue 17, docs/emergency.md): the plan activated, the confirmed event level
    (1 特别重大 … 4 一般), the commanding level (an area level: 1 city, 2 district) and whether it is still
    active. One per case; every change goes through the case's version (the case's history is its timeline)."""

    __tablename__ = "emergency_responses"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    plan_code: Mapped[str] = mapped_column(String(40))
    level: Mapped[int] = mapped_column(SmallInteger)
    commanding_level: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(20))  # active | ended
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_by: Mapped[str] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ix_emergency_responses_status", "status", "level"),)


class EmergencyTask(Base):
    """A unit's task in a response (牵头 lead or 联动 assist): it must acknowledge by `deadline_at`."""

    __tablename__ = "emergency_tasks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    role: Mapped[str] = mapped_column(String(10))  # lead | assist
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index("ux_emergency_tasks_unit", "case_id", "unit_code", unique=True),
        # a unit's open tasks (the unit workspace)
        Index("ix_emergency_tasks_unit", "unit_code", "acknowledged_at"),
    )


class EmergencyChecklistItem(Base):
    """One response action of the plan's checklist, ticked with who and when."""

    __tablename__ = "emergency_checklist"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    position: Mapped[int] = mapped_column(Integer)
    item: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(SmallInteger)  # the response level whose list brought it
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (Index("ux_emergency_checklist_item", "case_id", "item", unique=True),)


class EmergencyReport(Base):
    """An information report filed (首报 first, 续报 update, 终报 final; 上报 upward for a level II/I event),
    with the deadline it answered (`due_at`; None for an upward report) and the fields it was drafted from."""

    __tablename__ = "emergency_reports"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # first | update | final | upward
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    filed_by: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))


class Resource(Base):
    """An emergency resource on the map (issue 17): a team (specialty, headcount in `capacity`), a warehouse (its
    stock in resource_stock), a piece of equipment or a vehicle, a shelter (`capacity` places, `occupancy`
    taken). `status`: available | deployed | maintenance. A team, equipment or vehicle is allocated whole."""

    __tablename__ = "resources"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(20))  # team | warehouse | equipment | shelter
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(String(20))
    district_code: Mapped[str | None] = mapped_column(String(20))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"))
    specialty: Mapped[str | None] = mapped_column(String(40))
    capacity: Mapped[int | None] = mapped_column(Integer)
    occupancy: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'available'"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # last imported or edited

    __table_args__ = (Index("ix_resources_type", "type", "specialty"),)


class ResourceStock(Base):
    """A warehouse's stock of one item; the quantity never goes below zero (allocation is a guarded UPDATE)."""

    __tablename__ = "resource_stock"
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), primary_key=True)
    item: Mapped[str] = mapped_column(String(100), primary_key=True)
    quantity: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))


class ResourceAllocation(Base):
    """A resource (or a quantity of a warehouse's item, or places in a shelter) allocated to an emergency case,
    until it is released (`released_at`): the stock or status goes back."""

    __tablename__ = "resource_allocations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"))
    item: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[float | None] = mapped_column(Float)
    allocated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    allocated_by: Mapped[str] = mapped_column(String(100))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index("ix_resource_allocations_case", "case_id", "released_at"),
        Index("ix_resource_allocations_resource", "resource_id", "released_at"),
    )


class EmergencyPlanEdit(Base):
    """An administrator's version of a plan (the file data/catalog/emergency_plans.json is what a new database starts
    from): the plan as written, checked before it is kept; it replaces the file's plan of the same code."""

    __tablename__ = "emergency_plans"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


class EarlyWarning(Base):
    """An early warning (issue 18, docs/foresight.md): an unusual rise of cases in an area (`surge`), a spatial
    hotspot of the grid cells (`hotspot`, Getis-Ord Gi*), or a place where one category comes back again and again
    (`recurrent`), with its evidence. `dedupe_key` (kind, area, category, window) makes a warning run idempotent:
    running `warn` twice for the same hour stores each warning once. status: open | acknowledged | tasked (turned
    into a 专项整治 case, `case_id`) | dismissed."""

    __tablename__ = "warnings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # surge | hotspot | recurrent
    area_code: Mapped[str] = mapped_column(String(20))
    district_code: Mapped[str | None] = mapped_column(String(20))
    category_code: Mapped[str | None] = mapped_column(String(20))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    observed: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)  # a hotspot's Gi* z, a surge's ratio observed / expected
    evidence: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))  # method, interval level, p, q, …
    status: Mapped[str] = mapped_column(String(16), server_default=text("'open'"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(100))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))  # the 专项整治 case it became

    __table_args__ = (
        Index("ix_warnings_status", "status", "kind", "raised_at"),
        Index("ix_warnings_district", "district_code", "raised_at"),
    )


class WarningCase(Base):
    """A case that is part of a warning's evidence (the cases of the rise, of the hotspot, of the spot)."""

    __tablename__ = "warning_cases"
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)


class WhatIfRun(Base):
    """A what-if run of the simulator (issue 18): the change asked, its progress while it runs in the background,
    and its result (per unit, the unchanged and the changed run). In the database so that any server process
    answers GET /whatif/ID. status: queued | running | done | failed."""

    __tablename__ = "whatif_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    change: Mapped[dict] = mapped_column(JSON)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, server_default=text("0"))
    result: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HotlineTicket(Base):
    """A 12345 ticket as it came in (the exchange, docs/open-interfaces.md): its number, the case it became, the
    caller's name and number, the hotline's 办结时限, the fingerprint of what was sent (a replay with other content
    is refused), and how far its changes have been queued for the push (the last history row queued)."""

    __tablename__ = "hotline_tickets"
    ticket_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    caller: Mapped[str | None] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    category_hint: Mapped[str | None] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_history_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class HotlineDelivery(Base):
    """One change of a 12345 case to be pushed to the hotline's webhook: a row from the moment it is queued, so
    nothing is lost across a restart. status: pending → delivered (a 2xx) or dead (past the retry limit; the
    operators' dead-letter list, retried by hand). One row per (ticket, history row)."""

    __tablename__ = "hotline_deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_no: Mapped[str] = mapped_column(ForeignKey("hotline_tickets.ticket_no"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    history_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # when the current run of attempts began (queued, or retried by hand): the age limit counts from it
    since_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status, None: no answer
    last_error: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        UniqueConstraint("ticket_no", "history_id", name="uq_hotline_deliveries_step"),
        Index("ix_hotline_deliveries_status", "status", "next_attempt_at"),
        Index("ix_hotline_deliveries_ticket", "ticket_no", "id"),
    )


class HotlinePushState(Base):
    """The push worker's one row: how far the outbox has been read (case_events.seq), and the lease that lets one
    process at a time feed and send (a process takes it with a guarded UPDATE; it lapses if the holder dies)."""

    __tablename__ = "hotline_push_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
