"""the accepted cases closed, by grid and closing time: a street's closings since a day, without its district's

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 12:00:00

The cockpit of a street (figures.cockpit.area_rows) reads the street's accepted cases closed since the period's
start. No index held (grid, closed_at): SQLite scanned the district's closings since then in
ix_cases_closed_district (~9,000 entries at 1 M cases for ~670 of the street's), PostgreSQL ANDed the same range
with the street's whole (grid, reported_at) range (~17,000) for the 26 rows it kept. ix_cases_closed_grid
(grid_code, closed_at) is one range per grid of the street, the size of its answer.

Partial, with the predicate of ix_cases_closed_district (accepted and closed, spelt with its literals as
figures.period.accepted() spells it): a new report is not in it, so intake writes nothing to it; a case enters it
when it is closed (the close rewrites its entries anyway) and leaves it only if reopened.
On PostgreSQL it includes reported_at and id: the street's statement takes from it only the closings reported
before the period (those reported in it come with the period's reports), and PostgreSQL checks a non-key column
from the index only in an index-only scan, so the ids are read index-only and then the ~26 rows by id (with the
table's rows, ~670 heap reads to keep 26). On SQLite the statement reads ids only, and the rowid is in every index.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ACCEPTED = "accepted_at IS NOT NULL AND rejected_at IS NULL AND state NOT IN ('rejected', 'merged')"
CLOSED = "closed_at IS NOT NULL AND " + ACCEPTED


def upgrade() -> None:
    where = {'sqlite_where': sa.text(CLOSED), 'postgresql_where': sa.text(CLOSED)}
    if op.get_bind().dialect.name == 'postgresql':
        op.create_index('ix_cases_closed_grid', 'cases', ['grid_code', 'closed_at'],
                        postgresql_include=['reported_at', 'id'], **where)
    else:
        op.create_index('ix_cases_closed_grid', 'cases', ['grid_code', 'closed_at'], **where)


def downgrade() -> None:
    op.drop_index('ix_cases_closed_grid', table_name='cases')
