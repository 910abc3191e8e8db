"""the 12345 exchange (issue 19): tickets as they came in, the push's deliveries and its worker's state

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 02:30:00
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('hotline_tickets',
    sa.Column('ticket_no', sa.String(length=64), nullable=False),
    sa.Column('case_id', BIG_ID, nullable=False),
    sa.Column('caller', sa.String(length=50), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('deadline_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('category_hint', sa.String(length=100), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('received_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('queued_history_id', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('ticket_no')
    )
    with op.batch_alter_table('hotline_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hotline_tickets_case_id'), ['case_id'], unique=False)
    op.create_table('hotline_deliveries',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('ticket_no', sa.String(length=64), nullable=False),
    sa.Column('case_id', BIG_ID, nullable=False),
    sa.Column('history_id', sa.BigInteger(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('next_attempt_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('since_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('last_attempt_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('delivered_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['ticket_no'], ['hotline_tickets.ticket_no'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_no', 'history_id', name='uq_hotline_deliveries_step')
    )
    with op.batch_alter_table('hotline_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_hotline_deliveries_status', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_hotline_deliveries_ticket', ['ticket_no', 'id'], unique=False)
    op.create_table('hotline_push_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_until', data.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('hotline_push_state')
    with op.batch_alter_table('hotline_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_hotline_deliveries_ticket')
        batch_op.drop_index('ix_hotline_deliveries_status')
    op.drop_table('hotline_deliveries')
    with op.batch_alter_table('hotline_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hotline_tickets_case_id'))
    op.drop_table('hotline_tickets')
