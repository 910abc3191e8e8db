"""foresight (issue 18): early warnings with their evidence cases, and what-if runs

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 23:10:00
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('warnings',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('area_code', sa.String(length=20), nullable=False),
    sa.Column('district_code', sa.String(length=20), nullable=True),
    sa.Column('category_code', sa.String(length=20), nullable=True),
    sa.Column('window_start', data.models.UTCDateTime(), nullable=False),
    sa.Column('window_end', data.models.UTCDateTime(), nullable=False),
    sa.Column('observed', sa.Integer(), nullable=False),
    sa.Column('expected', sa.Float(), nullable=True),
    sa.Column('upper', sa.Float(), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('evidence', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('status', sa.String(length=16), server_default=sa.text("'open'"), nullable=False),
    sa.Column('raised_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.Column('case_id', BIG_ID, nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    with op.batch_alter_table('warnings', schema=None) as batch_op:
        batch_op.create_index('ix_warnings_status', ['status', 'kind', 'raised_at'], unique=False)
        batch_op.create_index('ix_warnings_district', ['district_code', 'raised_at'], unique=False)
    op.create_table('warning_cases',
    sa.Column('warning_id', BIG_ID, nullable=False),
    sa.Column('case_id', BIG_ID, nullable=False),
    sa.ForeignKeyConstraint(['warning_id'], ['warnings.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('warning_id', 'case_id')
    )
    op.create_table('whatif_runs',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('change', sa.JSON(), nullable=False),
    sa.Column('as_of', data.models.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('result', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('finished_at', data.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('whatif_runs')
    op.drop_table('warning_cases')
    with op.batch_alter_table('warnings', schema=None) as batch_op:
        batch_op.drop_index('ix_warnings_district')
        batch_op.drop_index('ix_warnings_status')
    op.drop_table('warnings')
