"""drop portal_sync_items' index on application_id: the unique (application_id, seq) index leads
with the same column and serves every look-up by application (heads, an application's items in
order, the earlier-pending test), so the second index was only one more B-tree written for every
DongBoHoSoMC call owed, six or so per application (issue 8)

Revision ID: 0006_portal_sync_one_index
Revises: 0005_leaner_register_indexes
Create Date: 2026-12-04 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0006_portal_sync_one_index'
down_revision = '0005_leaner_register_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('portal_sync_items', schema=None) as batch_op:
        batch_op.drop_index('ix_portal_sync_items_application_id')


def downgrade() -> None:
    with op.batch_alter_table('portal_sync_items', schema=None) as batch_op:
        batch_op.create_index('ix_portal_sync_items_application_id', ['application_id'], unique=False)
