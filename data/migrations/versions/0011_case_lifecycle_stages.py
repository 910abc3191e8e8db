"""the case's life as a 数字城管 center runs it: stage stamps, 核实, 挂账, 协办, 催办/督办, 扣分, 回访, 12345 ticket

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:00:00

Issue 14. New stamps on cases (signed, verified, voided, returned, suspended, resumed, check requested and
done, callback), the suspension request and the time left when the clock stopped, the supervision level and
deadline, counters (urges, reassignments, reopenings, penalty points), the callback's result, and the hotline's
ticket (external_ref, external_system). The scheduler no longer escalates on its own (escalation is a person's
act with a reason): auto_escalated_deadline gives way to auto_urged_deadline and auto_supervised_deadline.
Three tables: case_assists (协办 units with their own sign and feedback), case_supervision (催办/督办 rows),
case_penalties (扣分). No existing row changes meaning: the new columns are empty or 0 on old cases.
"""
from alembic import op
import sqlalchemy as sa

import data.models


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
STAMPS = ('signed_at', 'verified_at', 'voided_at', 'returned_at', 'suspended_at', 'resumed_at',
          'check_requested_at', 'checked_at', 'callback_at', 'warning_at', 'suspension_requested_at',
          'supervision_deadline', 'auto_urged_deadline', 'auto_supervised_deadline')
COUNTERS = ('urge_count', 'reassign_count', 'reopen_count')
IN_HAND = "state IN ('dispatched', 'signed')"
HAS_REF = "external_ref IS NOT NULL"


def upgrade() -> None:
    # Plain ALTER TABLE, not a batch: a batch rebuilds the table on SQLite and would lose the expression
    # indexes it cannot reflect (ix_cases_closed_category, ix_cases_closed_district). SQLite ≥ 3.35 drops a
    # column in place.
    for name in STAMPS:
        op.add_column('cases', sa.Column(name, data.models.UTCDateTime(), nullable=True))
    for name in COUNTERS:
        op.add_column('cases', sa.Column(name, sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('cases', sa.Column('penalty_points', sa.Float(), server_default=sa.text('0'), nullable=False))
    op.add_column('cases', sa.Column('state_before_suspension', sa.String(length=20), nullable=True))
    op.add_column('cases', sa.Column('suspension_remaining_hours', sa.Float(), nullable=True))
    op.add_column('cases', sa.Column('check_result', sa.String(length=20), nullable=True))
    op.add_column('cases', sa.Column('supervision_level', sa.SmallInteger(), nullable=True))
    op.add_column('cases', sa.Column('callback_result', sa.String(length=30), nullable=True))
    op.add_column('cases', sa.Column('callback_note', sa.Text(), nullable=True))
    op.add_column('cases', sa.Column('external_ref', sa.String(length=64), nullable=True))
    op.add_column('cases', sa.Column('external_system', sa.String(length=32), nullable=True))
    op.drop_column('cases', 'auto_escalated_deadline')
    # The cases in a unit's hands were reminded by the old scheduler (it escalated them) for their current
    # deadline: no retroactive 督办 and penalty for the whole backlog at the first round after the upgrade
    # (a new deadline — redispatch, extension, resumption — is reminded as usual).
    op.execute("UPDATE cases SET auto_urged_deadline = deadline_at, auto_supervised_deadline = deadline_at "
               f"WHERE deadline_at IS NOT NULL AND {IN_HAND}")
    op.create_index('ix_cases_external_ref', 'cases', ['external_ref'],
                    sqlite_where=sa.text(HAS_REF), postgresql_where=sa.text(HAS_REF))
    op.create_index('ix_cases_updated', 'cases', ['updated_at', 'id'])
    op.create_index('ix_cases_warning_in_hand', 'cases', ['warning_at'],
                    sqlite_where=sa.text(IN_HAND), postgresql_where=sa.text(IN_HAND))

    op.create_table('case_assists',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('case_id', BigId, nullable=False),
    sa.Column('unit_code', sa.String(length=40), nullable=False),
    sa.Column('added_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('signed_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('reported_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('report_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['units.code'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_case_assists_case_id', 'case_assists', ['case_id'])
    op.create_index('ux_case_assists_case_unit', 'case_assists', ['case_id', 'unit_code'], unique=True)

    op.create_table('case_supervision',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('case_id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('unit_code', sa.String(length=40), nullable=True),
    sa.Column('level', sa.SmallInteger(), nullable=True),
    sa.Column('at', data.models.UTCDateTime(), nullable=False),
    sa.Column('deadline_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('for_deadline', data.models.UTCDateTime(), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_case_supervision_case_id', 'case_supervision', ['case_id'])

    op.create_table('case_penalties',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('case_id', BigId, nullable=False),
    sa.Column('unit_code', sa.String(length=40), nullable=False),
    sa.Column('points', sa.Float(), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', data.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_case_penalties_case_id', 'case_penalties', ['case_id'])
    op.create_index('ix_case_penalties_unit_code', 'case_penalties', ['unit_code'])
    op.create_index('ix_case_penalties_at', 'case_penalties', ['at'])


def downgrade() -> None:
    op.drop_table('case_penalties')
    op.drop_table('case_supervision')
    op.drop_table('case_assists')
    op.drop_index('ix_cases_warning_in_hand', table_name='cases')
    op.drop_index('ix_cases_updated', table_name='cases')
    op.drop_index('ix_cases_external_ref', table_name='cases')
    op.add_column('cases', sa.Column('auto_escalated_deadline', data.models.UTCDateTime(), nullable=True))
    # the old scheduler must not escalate again what it (or the reminders) already dealt with
    op.execute("UPDATE cases SET auto_escalated_deadline = deadline_at WHERE deadline_at IS NOT NULL")
    for name in ('external_system', 'external_ref', 'callback_note', 'callback_result', 'supervision_level',
                 'check_result', 'suspension_remaining_hours', 'state_before_suspension', 'penalty_points',
                 *COUNTERS, *STAMPS):
        op.drop_column('cases', name)
