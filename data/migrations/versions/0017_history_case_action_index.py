"""a case's history rows by act and time (ix_case_history_case_action_at), in place of ix_case_history_case_id

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 20:10:00

Issue 15: the posts' figure (岗位评价) times a second round's act from the case's latest earlier act of some kind
(a 派遣 after a 退回 or 重办, a 核查 after a second 处置) and asks whether a 派遣 was followed by a 改派: about
150,000 reads of one case's rows in a month of 1 M cases. Through ix_case_history_case_id each read fetched the
case's ~10 rows from the table (0.1 ms, random pages); (case_id, action, at) answers it from the index alone
(0.03 ms). The new index leads with case_id, so it serves every read the old one served (a case's page, its
history, the foreign key) and replaces it: one index a history row, as before.
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_case_history_case_action_at', 'case_history', ['case_id', 'action', 'at'])
    op.drop_index('ix_case_history_case_id', table_name='case_history')


def downgrade() -> None:
    op.create_index('ix_case_history_case_id', 'case_history', ['case_id'])
    op.drop_index('ix_case_history_case_action_at', table_name='case_history')
