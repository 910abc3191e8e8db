"""indexes for figures computed where the data is

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:00:00

Each figure's query reads an index range whose size follows its answer, not the history:
- ix_cases_open_deadline, ix_cases_open_district, ix_cases_open_grid: the accepted cases not closed
  yet, by deadline (in the city, a district, a grid). "Overdue in a district" read the district's whole
  history through ix_cases_district_reported; now it reads its overdue cases. Partial
  (closed_at IS NULL AND accepted_at IS NOT NULL): a new report is in none of them, so intake pays
  nothing, and a closed case leaves them. closed_at (NULL in each) leads the deadline so that
  "closed_at IS NULL AND deadline_at < now" is an equality and a range, which SQLite's planner takes
  over the plain range of ix_cases_deadline without statistics.
- ix_cases_late_closed: the cases closed after their deadline (closed_at > deadline_at), for
  overdue_open of a past period (not closed by its end, deadline before it), which otherwise read
  every case closed since the period.
- ix_cases_grid (grid_code) becomes ix_cases_grid_reported (grid_code, reported_at): a street's or a
  grid's cases of a time range, so a drill below the district costs what the area holds.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OPEN = "closed_at IS NULL AND accepted_at IS NOT NULL"
LATE = "closed_at > deadline_at"


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_grid')
        batch_op.create_index('ix_cases_grid_reported', ['grid_code', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_open_deadline', ['closed_at', 'deadline_at'], unique=False,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('ix_cases_open_district', ['district_code', 'closed_at', 'deadline_at'], unique=False,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('ix_cases_open_grid', ['grid_code', 'closed_at', 'deadline_at'], unique=False,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('ix_cases_late_closed', ['closed_at'], unique=False,
                              sqlite_where=sa.text(LATE), postgresql_where=sa.text(LATE))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_late_closed')
        batch_op.drop_index('ix_cases_open_grid')
        batch_op.drop_index('ix_cases_open_district')
        batch_op.drop_index('ix_cases_open_deadline')
        batch_op.drop_index('ix_cases_grid_reported')
        batch_op.create_index('ix_cases_grid', ['grid_code'], unique=False)
