"""emergency responses and resources (issue 17): a case's response, its units' tasks, checklist and reports;
resources (teams, warehouses and their stock, equipment, shelters) and their allocations to cases

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 19:20:56.026008
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('resources',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('grid_code', sa.String(length=20), nullable=True),
    sa.Column('district_code', sa.String(length=20), nullable=True),
    sa.Column('unit_code', sa.String(length=40), nullable=True),
    sa.Column('specialty', sa.String(length=40), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('occupancy', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('status', sa.String(length=20), server_default=sa.text("'available'"), nullable=False),
    sa.Column('updated_at', data.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['unit_code'], ['units.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.create_index('ix_resources_type', ['type', 'specialty'], unique=False)

    op.create_table('emergency_checklist',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('item', sa.String(length=200), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('done_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('done_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('emergency_checklist', schema=None) as batch_op:
        batch_op.create_index('ux_emergency_checklist_item', ['case_id', 'item'], unique=True)

    op.create_table('emergency_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('due_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('filed_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('filed_by', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('fields', sa.JSON(none_as_null=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('emergency_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emergency_reports_case_id'), ['case_id'], unique=False)

    op.create_table('emergency_responses',
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_code', sa.String(length=40), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('commanding_level', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('activated_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('activated_by', sa.String(length=100), nullable=False),
    sa.Column('ended_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('ended_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('case_id')
    )
    with op.batch_alter_table('emergency_responses', schema=None) as batch_op:
        batch_op.create_index('ix_emergency_responses_status', ['status', 'level'], unique=False)

    op.create_table('emergency_tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unit_code', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('assigned_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('deadline_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('acknowledged_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['units.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('emergency_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_emergency_tasks_unit', ['unit_code', 'acknowledged_at'], unique=False)
        batch_op.create_index('ux_emergency_tasks_unit', ['case_id', 'unit_code'], unique=True)

    op.create_table('resource_allocations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('item', sa.String(length=100), nullable=True),
    sa.Column('quantity', sa.Float(), nullable=True),
    sa.Column('allocated_at', data.models.UTCDateTime(), nullable=False),
    sa.Column('allocated_by', sa.String(length=100), nullable=False),
    sa.Column('released_at', data.models.UTCDateTime(), nullable=True),
    sa.Column('released_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('resource_allocations', schema=None) as batch_op:
        batch_op.create_index('ix_resource_allocations_case', ['case_id', 'released_at'], unique=False)
        batch_op.create_index('ix_resource_allocations_resource', ['resource_id', 'released_at'], unique=False)

    op.create_table('resource_stock',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('item', sa.String(length=100), nullable=False),
    sa.Column('quantity', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['resources.id'], ),
    sa.PrimaryKeyConstraint('resource_id', 'item')
    )


def downgrade() -> None:
    op.drop_table('resource_stock')
    with op.batch_alter_table('resource_allocations', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_allocations_resource')
        batch_op.drop_index('ix_resource_allocations_case')

    op.drop_table('resource_allocations')
    with op.batch_alter_table('emergency_tasks', schema=None) as batch_op:
        batch_op.drop_index('ux_emergency_tasks_unit')
        batch_op.drop_index('ix_emergency_tasks_unit')

    op.drop_table('emergency_tasks')
    with op.batch_alter_table('emergency_responses', schema=None) as batch_op:
        batch_op.drop_index('ix_emergency_responses_status')

    op.drop_table('emergency_responses')
    with op.batch_alter_table('emergency_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emergency_reports_case_id'))

    op.drop_table('emergency_reports')
    with op.batch_alter_table('emergency_checklist', schema=None) as batch_op:
        batch_op.drop_index('ux_emergency_checklist_item')

    op.drop_table('emergency_checklist')
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_index('ix_resources_type')

    op.drop_table('resources')
