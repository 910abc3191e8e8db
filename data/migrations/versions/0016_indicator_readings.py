"""indicator readings (issue 16 part 6): the city's vital signs as time series, one row per (code, ts)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 16:20:00

The primary key (code, ts) makes a re-sent reading an ON CONFLICT DO NOTHING and is the index of an indicator's
range reads (GET /api/v1/indicators?code=&start=&end=) and of its latest value (the wall, the cockpit).
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('indicator_readings',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('ts', data.models.UTCDateTime(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('received_at', data.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('code', 'ts')
    )


def downgrade() -> None:
    op.drop_table('indicator_readings')
