"""indexes for the console's case queue

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:00:00

The duty officer's queue (data/console_view.py) pages through the cases newest first under any one
filter; each filter gets an index that leads with it and continues with reported_at, so that a page
is an index walk that stops at the page instead of a scan and sort:
- ix_cases_state becomes (state, reported_at) (a closed-state page sorted 96,000 rows of 100,000);
- (source, reported_at) is new (a kind filter counts through ix_cases_category_reported instead: a
  kind index would draw SQLite's planner away from ix_cases_state for the cockpit's open cases);
- supervised cases are few: a partial index on reported_at of those alone.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_state')
        batch_op.create_index('ix_cases_state', ['state', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_source_reported', ['source', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_supervised_reported', ['reported_at'], unique=False,
                              sqlite_where=sa.text('supervised = 1'), postgresql_where=sa.text('supervised'))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_supervised_reported')
        batch_op.drop_index('ix_cases_source_reported')
        batch_op.drop_index('ix_cases_state')
        batch_op.create_index('ix_cases_state', ['state'], unique=False)
