"""the assessment (督办考核): the cases it sets aside and the acts it scores, read from indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:00:00

Issue 15. A voided case (作废) counts only in `voided`, and a case on 挂账 at the end of a period is neither due
nor overdue (CONTRACT.md, Assessment; figures.period.counts_at_end):
- ix_cases_open_deadline and ix_cases_late_closed (the backlog, the late closures) carry voided_at, suspended_at
  and resumed_at, so that the due and overdue counts check them in the index;
- ix_cases_voided (voided_at): the cases voided in a period; ix_cases_held (suspended_at: the cases whose last
  suspension is not lifted) and ix_cases_resumed (resumed_at: the lifted ones): the cases on 挂账 at a period's
  end (figures.period.on_hold_arms); with the columns the figures read of them (few cases each; partial);
- ix_cases_resolved, ix_cases_dispatched: the units' figures (部门评价) of a period, on the unit's own acts;
- ix_case_history_action_at (action, at, actor, case_id, from_state): the posts' figures (岗位评价), a period's acts of a
  few kinds and who did them.
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

ACCEPTED = "accepted_at IS NOT NULL AND rejected_at IS NULL AND state NOT IN ('rejected', 'merged')"
OPEN = "closed_at IS NULL AND " + ACCEPTED
LATE = "closed_at > deadline_at AND " + ACCEPTED
SET_ASIDE = ['voided_at', 'suspended_at', 'resumed_at']
HELD = "suspended_at IS NOT NULL AND (resumed_at IS NULL OR resumed_at < suspended_at)"
WHERE = ['district_code', 'category_code', 'grid_code', 'unit_code']
# name: (key columns, SQLite's further columns, PostgreSQL's included columns, predicate)
INDEXES = {
    'ix_cases_open_deadline': (['closed_at', 'deadline_at'],
                               ['accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code', 'state',
                                *SET_ASIDE],
                               ['accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code', 'state',
                                *SET_ASIDE],
                               OPEN),
    'ix_cases_late_closed': (['closed_at'], ['deadline_at', 'accepted_at', 'district_code', 'category_code',
                                             'grid_code', 'unit_code', 'rejected_at', 'state', *SET_ASIDE],
                             ['deadline_at', 'accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code',
                              *SET_ASIDE], LATE),
    'ix_cases_voided': (['voided_at'],
                        ['reported_at', 'accepted_at', 'rejected_at', 'state', 'extension_count', 'source', *WHERE],
                        ['reported_at', 'accepted_at', 'rejected_at', 'state', 'extension_count', 'source', *WHERE],
                        'voided_at IS NOT NULL'),
    # the cases on hold now (the last suspension not lifted), and those lifted, by the suspension's end
    'ix_cases_held': (['suspended_at'], ['resumed_at', 'voided_at', 'accepted_at', 'rejected_at', 'state', *WHERE],
                      ['resumed_at', 'voided_at', 'accepted_at', 'rejected_at', 'state', *WHERE], HELD),
    'ix_cases_resumed': (['resumed_at'], ['suspended_at', 'voided_at', 'accepted_at', 'rejected_at', 'state', *WHERE],
                         ['suspended_at', 'voided_at', 'accepted_at', 'rejected_at', 'state', *WHERE],
                         'resumed_at >= suspended_at'),
}
# 0008's columns of the two rebuilt indexes, for the downgrade
BEFORE = {
    'ix_cases_open_deadline': (['closed_at', 'deadline_at'],
                               ['accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code'],
                               ['accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code'], OPEN),
    'ix_cases_late_closed': (['closed_at'], ['deadline_at', 'accepted_at', 'district_code', 'category_code',
                                             'grid_code', 'unit_code', 'rejected_at', 'state'],
                             ['deadline_at', 'accepted_at', 'district_code', 'category_code', 'grid_code', 'unit_code'],
                             LATE),
}


def _create(name: str, spec: tuple) -> None:
    keys, more, include, where = spec
    cond = {'sqlite_where': sa.text(where), 'postgresql_where': sa.text(where)}
    if op.get_bind().dialect.name == 'postgresql':
        op.create_index(name, 'cases', keys, postgresql_include=include, **cond)
    else:
        op.create_index(name, 'cases', keys + more, **cond)


def upgrade() -> None:
    for name in BEFORE:
        op.drop_index(name, table_name='cases')
    for name, spec in INDEXES.items():
        _create(name, spec)
    for name, col in (('ix_cases_resolved', 'resolved_at'), ('ix_cases_dispatched', 'dispatched_at')):
        op.create_index(name, 'cases', [col], sqlite_where=sa.text(f'{col} IS NOT NULL'),
                        postgresql_where=sa.text(f'{col} IS NOT NULL'))
    op.create_index('ix_case_history_action_at', 'case_history', ['action', 'at', 'actor', 'case_id', 'from_state'])


def downgrade() -> None:
    op.drop_index('ix_case_history_action_at', table_name='case_history')
    for name in ('ix_cases_dispatched', 'ix_cases_resolved', *INDEXES):
        op.drop_index(name, table_name='cases')
    for name, spec in BEFORE.items():
        _create(name, spec)
