"""telemetry (issue 16, second increment): raw readings per device and time, and their hourly roll-up

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 13:00:00

The primary key (device_id, ts) makes a duplicate (same device and timestamp) an ON CONFLICT DO NOTHING and is
the index of a device's range reads; ix_telemetry_ts serves the retention job (rows older than N days).
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('telemetry',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('ts', data.models.UTCDateTime(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('received_at', data.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'ts')
    )
    op.create_index('ix_telemetry_ts', 'telemetry', ['ts'])
    op.create_table('telemetry_hourly',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('hour', data.models.UTCDateTime(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('min', sa.Float(), nullable=False),
    sa.Column('max', sa.Float(), nullable=False),
    sa.Column('avg', sa.Float(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'hour', 'key')
    )


def downgrade() -> None:
    op.drop_table('telemetry_hourly')
    op.drop_index('ix_telemetry_ts', table_name='telemetry')
    op.drop_table('telemetry')
