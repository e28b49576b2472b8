"""delivery guarantees: scheduled retries, dead letters, sweeper re-drives

Revision ID: 0003_delivery_guarantees
Revises: 0002_portal_sync_lease
Create Date: 2026-11-27 22:50:33
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_delivery_guarantees'
down_revision = '0002_portal_sync_lease'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=True),
    sa.Column('event_id', sa.String(length=36), nullable=True),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters'))
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_application_id'), ['application_id'], unique=False)

    op.create_table('scheduled_retries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=True),
    sa.Column('event_id', sa.String(length=36), nullable=True),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_retries'))
    )
    with op.batch_alter_table('scheduled_retries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduled_retries_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scheduled_retries_due_at'), ['due_at'], unique=False)

    op.create_table('stuck_redrives',
    sa.Column('application_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('routing_key', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('redrives', sa.Integer(), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_stuck_redrives_application_id_applications')),
    sa.PrimaryKeyConstraint('application_id', name=op.f('pk_stuck_redrives'))
    )


def downgrade() -> None:
    op.drop_table('stuck_redrives')
    with op.batch_alter_table('scheduled_retries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduled_retries_due_at'))
        batch_op.drop_index(batch_op.f('ix_scheduled_retries_application_id'))

    op.drop_table('scheduled_retries')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_application_id'))

    op.drop_table('dead_letters')
