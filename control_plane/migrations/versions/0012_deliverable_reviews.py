"""deliverable reviews (approve / reject / edit through the API; rejected signals are blocked)

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-03 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import control_plane.models

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deliverable_reviews',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('deliverable_id', sa.String(length=36), nullable=False),
    sa.Column('version_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('chars_before', sa.Integer(), nullable=True),
    sa.Column('chars_after', sa.Integer(), nullable=True),
    sa.Column('signal_type', sa.String(length=40), nullable=True),
    sa.Column('signal_ref', sa.String(length=300), nullable=True),
    sa.Column('blocked_until', control_plane.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', control_plane.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deliverable_id'], ['deliverables.id'],
                            name=op.f('fk_deliverable_reviews_deliverable_id_deliverables'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_deliverable_reviews_user_id_users'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['deliverable_versions.id'],
                            name=op.f('fk_deliverable_reviews_version_id_deliverable_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliverable_reviews'))
    )
    with op.batch_alter_table('deliverable_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_deliverable_reviews_signal', ['user_id', 'signal_type', 'signal_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliverable_reviews_deliverable_id'), ['deliverable_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliverable_reviews_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliverable_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliverable_reviews_version_id'))
        batch_op.drop_index(batch_op.f('ix_deliverable_reviews_deliverable_id'))
        batch_op.drop_index('ix_deliverable_reviews_signal')
    op.drop_table('deliverable_reviews')
