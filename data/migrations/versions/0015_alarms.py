"""alarms (issue 16): the alarms of devices and rules, their history, and the alarm engine's running state

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 13:10:00

Built beside '0014' (the telemetry table) and chained after it at the merge; nothing here depends on it.
ux_alarms_open is a partial unique index (SQLite and PostgreSQL both have them): at most one open alarm per
device and rule, whatever processes raise at once.
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_OPEN = "status != 'cleared'"


def upgrade() -> None:
    op.create_table('alarms',
    sa.Column('id', _BIG_ID, autoincrement=True, nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('rule_code', sa.String(length=40), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('started_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('acknowledged_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.Column('cleared_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('cleared_by', sa.String(length=100), nullable=True),
    sa.Column('first_values', sa.JSON(), nullable=True),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.Column('case_id', _BIG_ID, nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ux_alarms_open', 'alarms', ['device_id', 'rule_code'], unique=True,
                    sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN))
    op.create_index('ix_alarms_device', 'alarms', ['device_id', 'rule_code', 'id'])
    op.create_index('ix_alarms_status', 'alarms', ['status', 'id'])
    op.create_index('ix_alarms_case', 'alarms', ['case_id'])
    op.create_table('alarm_history',
    sa.Column('id', _BIG_ID, autoincrement=True, nullable=False),
    sa.Column('alarm_id', _BIG_ID, nullable=False),
    sa.Column('at', data.models.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alarm_history_alarm_id', 'alarm_history', ['alarm_id'])
    op.create_table('alarm_states',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('rule_code', sa.String(length=40), nullable=False),
    sa.Column('raise_since', data.models.UTCDateTime(), nullable=True),
    sa.Column('raise_count', sa.Integer(), nullable=False),
    sa.Column('clear_since', data.models.UTCDateTime(), nullable=True),
    sa.Column('clear_count', sa.Integer(), nullable=False),
    sa.Column('last_ts', data.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ),
    sa.PrimaryKeyConstraint('device_id', 'rule_code')
    )


def downgrade() -> None:
    op.drop_table('alarm_states')
    op.drop_index('ix_alarm_history_alarm_id', table_name='alarm_history')
    op.drop_table('alarm_history')
    for name in ('ix_alarms_case', 'ix_alarms_status', 'ix_alarms_device', 'ux_alarms_open'):
        op.drop_index(name, table_name='alarms')
    op.drop_table('alarms')
