"""emergency plans as an administrator edits them (issue 17): a plan's body replacing the file's plan of its code

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 20:05:00
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('emergency_plans',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('updated_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )


def downgrade() -> None:
    op.drop_table('emergency_plans')
