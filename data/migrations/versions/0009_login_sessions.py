"""server-side sign-in sessions: a row per sign-in, so that logout, a password reset, disabling a user
or revoking a wall token ends it at once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00

The cookie holds a random session id; the row holds its SHA-256, who signed in (a user or a wall's
token), the absolute expiry, the idle limit and when and why it ended (data/login_sessions.py).
ix_login_sessions_user_id / _token_id: ending every session of a user or token; _expires_at: pruning.
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('created_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('expires_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('idle_seconds', sa.Integer(), nullable=False),
    sa.Column('ended_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('id_hash')
    )
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_sessions_token_id'), ['token_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_sessions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_login_sessions_token_id'))
        batch_op.drop_index(batch_op.f('ix_login_sessions_expires_at'))

    op.drop_table('login_sessions')
