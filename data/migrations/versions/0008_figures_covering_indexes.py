"""covering partial indexes of the accepted cases: the assessment figures read indexes only

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00

figures.period.kpi_figures reads, for a period, the cases accepted in it and the cases closed in it, and a
few more (the backlog, the late closures); each of these reads is now one index range that holds every
column the figures need, so the aggregate never touches the table:
- ix_cases_accepted_district (district_code, accepted_at, ...), ix_cases_accepted_category (category_code,
  accepted_at, ...): the accepted cases (立案案件, the predicate ACCEPTED below, figures/definitions.py) by
  accepting time, with extension_count and the other group key. Led by the group key, so that a query
  names the keys (`district_code IN (...)`, read from ix_cases_district_reported) and reads one range per
  key, already grouped: SQLite has no hash aggregation, and sorting a month's 40,000 rows by district cost
  more than reading them. The city's figures take the district ranges; the category's figures of a year
  (half a million rows) its own index.
- ix_cases_closed_district, ix_cases_closed_category: the accepted cases closed, by closing time, with
  deadline_at, rework_count and the handling time. On SQLite the handling time is the index expression
  julianday(closed_at) - julianday(accepted_at), read from the index instead of parsing two timestamps per
  row; on PostgreSQL accepted_at is included (timestamps are binary there).
- ix_cases_open_deadline and ix_cases_late_closed (0007) now hold only accepted cases and carry accepted_at
  and the group keys: the overdue counts and the due cases not closed by the period's end read them alone.
  ix_cases_open_district and ix_cases_open_grid hold only accepted cases too, and the id on PostgreSQL
  (SQLite's rowid is in every index): the overdue cases of a district, their count and the ids of a page
  of them, read from the index alone.
- ix_cases_late_closed and ix_cases_open_deadline carry grid_code and unit_code, ix_cases_closed_district
  too on SQLite;
  ix_cases_state (every case) becomes (state, reported_at, id) and carries district_code, grid_code, kind
  and category_code, which never change after intake: the cockpit of a street reads its district's ranges,
  the backlog and the open states without the table, and groups by lead unit. (id is a key: the queue
  walks (reported_at, id) in order, and the columns after it would break the ties.)
- ix_cases_accepted and ix_cases_closed_at (the plain time ranges: the month rollup's union of ranges,
  today's counts, the cockpit) keep only the cases with a time. Both held a NULL key for every report:
  intake writes two index entries fewer (and a wider ix_cases_state entry). None of the new indexes holds
  a report not accepted yet; a lifecycle step of an accepted case rewrites its entries in the partial
  indexes whose predicate names the state (SQLite) or in every index (PostgreSQL, as for any step).

Written with their literals ('rejected', 'merged'): a planner uses a partial index when the query spells
its predicate, term by term (figures.period.accepted()).
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ACCEPTED = "accepted_at IS NOT NULL AND rejected_at IS NULL AND state NOT IN ('rejected', 'merged')"
CLOSED = "closed_at IS NOT NULL AND " + ACCEPTED
OPEN = "closed_at IS NULL AND " + ACCEPTED
LATE = "closed_at > deadline_at AND " + ACCEPTED
HOURS = "(julianday(closed_at) - julianday(accepted_at))"  # SQLite: the handling time, in days

# name: (key columns, SQLite's further columns, PostgreSQL's included columns, predicate)
INDEXES = {
    'ix_cases_accepted_district': (['district_code', 'accepted_at'], ['extension_count', 'category_code'],
                                   ['extension_count', 'category_code'], ACCEPTED),
    'ix_cases_accepted_category': (['category_code', 'accepted_at'], ['extension_count', 'district_code'],
                                   ['extension_count', 'district_code'], ACCEPTED),
    # grid and unit (the cockpit's street and units) on SQLite only: with them PostgreSQL's planner, which
    # counts the wider index's pages as random reads, took ix_cases_closed_at and the table instead (3x slower)
    'ix_cases_closed_district': (['district_code', 'closed_at'],
                                 ['deadline_at', 'rework_count', 'category_code', 'grid_code', 'unit_code', HOURS],
                                 ['deadline_at', 'accepted_at', 'rework_count', 'category_code'], CLOSED),
    'ix_cases_closed_category': (['category_code', 'closed_at'],
                                 ['deadline_at', 'rework_count', 'district_code', HOURS],
                                 ['deadline_at', 'accepted_at', 'rework_count', 'district_code'], CLOSED),
    'ix_cases_open_deadline': (['closed_at', 'deadline_at'],
                               ['accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code'],
                               ['accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code'], OPEN),
    'ix_cases_open_district': (['district_code', 'closed_at', 'deadline_at'], [], ['id'], OPEN),
    'ix_cases_open_grid': (['grid_code', 'closed_at', 'deadline_at'], [], ['id'], OPEN),
    # rejected_at and state too on SQLite: it covers every column of its queries, so that SQLite's planner
    # (no statistics) prefers it to the plain closed_at range of ix_cases_closed_at, which would read every
    # closure since the period's start from the table
    'ix_cases_late_closed': (['closed_at'], ['deadline_at', 'accepted_at', 'district_code', 'category_code',
                                             'grid_code', 'unit_code', 'rejected_at', 'state'],
                             ['deadline_at', 'accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code'],
                             LATE),
    # the open states, newest first (the console's queue of one state), and where and what each case is:
    # the cockpit's open emergencies and open cases per child area read it alone (kind, district and grid
    # never change after intake, so a wider entry costs intake a few bytes, not a write)
    'ix_cases_state': (['state', 'reported_at', 'id'], ['district_code', 'grid_code', 'kind', 'category_code'],
                       ['district_code', 'grid_code', 'kind', 'category_code'], None),
}


def _create(name: str) -> None:
    keys, more, include, where = INDEXES[name]
    cond = {} if where is None else {'sqlite_where': sa.text(where), 'postgresql_where': sa.text(where)}
    if op.get_bind().dialect.name == 'postgresql':
        op.create_index(name, 'cases', keys, postgresql_include=include, **cond)
    else:
        op.create_index(name, 'cases', keys + [sa.text(c) if c.startswith('(') else c for c in more], **cond)


OPEN_0007 = "closed_at IS NULL AND accepted_at IS NOT NULL"


def upgrade() -> None:
    for name in ('ix_cases_open_deadline', 'ix_cases_open_district', 'ix_cases_open_grid', 'ix_cases_late_closed',
                 'ix_cases_state'):
        op.drop_index(name, table_name='cases')
    op.drop_index('ix_cases_accepted', table_name='cases')
    op.drop_index('ix_cases_closed_at', table_name='cases')
    for name, col in (('ix_cases_accepted', 'accepted_at'), ('ix_cases_closed_at', 'closed_at')):
        op.create_index(name, 'cases', [col], sqlite_where=sa.text(f'{col} IS NOT NULL'),
                        postgresql_where=sa.text(f'{col} IS NOT NULL'))
    for name in INDEXES:
        _create(name)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name='cases')
    op.drop_index('ix_cases_closed_at', table_name='cases')
    op.drop_index('ix_cases_accepted', table_name='cases')
    op.create_index('ix_cases_closed_at', 'cases', ['closed_at'])
    op.create_index('ix_cases_accepted', 'cases', ['accepted_at'])
    op.create_index('ix_cases_state', 'cases', ['state', 'reported_at'])
    op.create_index('ix_cases_late_closed', 'cases', ['closed_at'], sqlite_where=sa.text('closed_at > deadline_at'),
                    postgresql_where=sa.text('closed_at > deadline_at'))
    for name, lead in (('ix_cases_open_deadline', []), ('ix_cases_open_district', ['district_code']),
                       ('ix_cases_open_grid', ['grid_code'])):
        op.create_index(name, 'cases', lead + ['closed_at', 'deadline_at'], sqlite_where=sa.text(OPEN_0007),
                        postgresql_where=sa.text(OPEN_0007))
