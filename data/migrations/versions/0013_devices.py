"""the device registry (issue 16): one row per device, located to its grid, with its unit, status and last values

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:00:00

The fleet is read by type and status, by district (ix_devices_district_type), by an area below the district as a
range of grid codes (ix_devices_grid), and by a unit handler's unit (ix_devices_unit).
"""
from alembic import op
import sqlalchemy as sa
import data.models


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('devices',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('grid_code', sa.String(length=20), nullable=False),
    sa.Column('district_code', sa.String(length=20), nullable=False),
    sa.Column('unit_code', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('last_seen', data.models.UTCDateTime(), nullable=True),
    sa.Column('last_values', sa.JSON(), nullable=True),
    sa.Column('created_at', data.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['grid_code'], ['areas.code'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['units.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_devices_type_status', 'devices', ['type', 'status'])
    op.create_index('ix_devices_status', 'devices', ['status'])
    op.create_index('ix_devices_district_type', 'devices', ['district_code', 'type'])
    op.create_index('ix_devices_grid', 'devices', ['grid_code'])
    op.create_index('ix_devices_unit', 'devices', ['unit_code'])


def downgrade() -> None:
    for name in ('ix_devices_unit', 'ix_devices_grid', 'ix_devices_district_type', 'ix_devices_status',
                 'ix_devices_type_status'):
        op.drop_index(name, table_name='devices')
    op.drop_table('devices')
