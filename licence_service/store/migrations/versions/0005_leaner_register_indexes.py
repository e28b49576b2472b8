"""leaner register indexes for the legacy import (issue 5): drop licence_classes' index on
licence_number (the unique (licence_number, code) index serves those look-ups); index
people.legacy_id_number and the uniqueness of cards.application_id only where they are set

Every index is work for each row the legacy import inserts, millions of them; these three held
nothing a query needs: a redundant prefix of another index, and entries for NULLs that no query
looks up (most people have no CMND on record, no legacy card has an application).

Revision ID: 0005_leaner_register_indexes
Revises: 0003_photos
Create Date: 2026-11-28 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_leaner_register_indexes'
down_revision = '0003_photos'
branch_labels = None
depends_on = None

_LEGACY_ID_SET = sa.text("legacy_id_number IS NOT NULL")
_APPLICATION_SET = sa.text("application_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('licence_classes', schema=None) as batch_op:
        batch_op.drop_index('ix_licence_classes_licence_number')

    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index('ix_people_legacy_id_number')
        batch_op.create_index('ix_people_legacy_id_number', ['legacy_id_number'], unique=False,
                              sqlite_where=_LEGACY_ID_SET, postgresql_where=_LEGACY_ID_SET)

    # A unique constraint cannot become partial in place: on SQLite batch mode copies the table
    # without it, then the partial unique index takes over its name and its guarantee.
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_constraint('uq_cards_application_id', type_='unique')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index('uq_cards_application_id', ['application_id'], unique=True,
                              sqlite_where=_APPLICATION_SET, postgresql_where=_APPLICATION_SET)


def downgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index('uq_cards_application_id')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_cards_application_id', ['application_id'])

    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index('ix_people_legacy_id_number')
        batch_op.create_index('ix_people_legacy_id_number', ['legacy_id_number'], unique=False)

    with op.batch_alter_table('licence_classes', schema=None) as batch_op:
        batch_op.create_index('ix_licence_classes_licence_number', ['licence_number'], unique=False)
