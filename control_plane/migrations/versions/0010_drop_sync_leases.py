"""drop the sync lease columns (Dagster's run queue keeps syncs of one connection apart)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import control_plane.models

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('platform_connections', schema=None) as batch_op:
        batch_op.drop_column('sync_lease_expires_at')
        batch_op.drop_column('sync_lease_owner')


def downgrade() -> None:
    with op.batch_alter_table('platform_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sync_lease_owner', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sync_lease_expires_at', control_plane.models.UTCDateTime(timezone=True),
                                      nullable=True))
