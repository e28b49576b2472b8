"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 22:30:04.315541
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('applications',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('portal_dossier_id', sa.String(length=50), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('procedure', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('portal_status', sa.Integer(), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('appointment_date', sa.Date(), nullable=True),
    sa.Column('citizen_id', sa.String(length=12), nullable=False),
    sa.Column('licence_number', sa.String(length=12), nullable=False),
    sa.Column('applicant', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('photo_sha256', sa.String(length=64), nullable=True),
    sa.Column('fee_amount', sa.Integer(), nullable=True),
    sa.Column('fee_currency', sa.String(length=3), nullable=False),
    sa.Column('fee_paid', sa.Boolean(), nullable=False),
    sa.Column('refusal_reasons', sa.JSON(), nullable=False),
    sa.Column('converted', sa.JSON(), nullable=True),
    sa.Column('issued_card_serial', sa.String(length=16), nullable=True),
    sa.Column('issued_permit_number', sa.String(length=16), nullable=True),
    sa.Column('portal_acked_status', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_applications')),
    sa.UniqueConstraint('portal_dossier_id', name=op.f('uq_applications_portal_dossier_id'))
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applications_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_licence_number'), ['licence_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_applications_updated_at'), ['updated_at'], unique=False)

    op.create_table('licence_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('licence_number', sa.String(length=12), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('change', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_licence_history'))
    )
    with op.batch_alter_table('licence_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_history_licence_number'), ['licence_number'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('routing_key', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unsent', ['sent_at', 'id'], unique=False)

    op.create_table('people',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('citizen_id', sa.String(length=12), nullable=True),
    sa.Column('legacy_id_number', sa.String(length=9), nullable=True),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('nationality', sa.String(length=2), nullable=False),
    sa.Column('province_code', sa.String(length=2), nullable=True),
    sa.Column('commune_code', sa.String(length=5), nullable=True),
    sa.Column('residence_detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('citizen_id', name=op.f('uq_people_citizen_id'))
    )
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_people_legacy_id_number'), ['legacy_id_number'], unique=False)

    op.create_table('processed_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('handler', sa.String(length=32), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'handler', name=op.f('pk_processed_events'))
    )
    op.create_table('sandbox_health_certificates',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('citizen_id', sa.String(length=12), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('facility_code', sa.String(length=32), nullable=False),
    sa.Column('fit_for', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_sandbox_health_certificates'))
    )
    with op.batch_alter_table('sandbox_health_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_health_certificates_citizen_id'), ['citizen_id'], unique=False)

    op.create_table('sandbox_population',
    sa.Column('citizen_id', sa.String(length=12), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.PrimaryKeyConstraint('citizen_id', name=op.f('pk_sandbox_population'))
    )
    op.create_table('application_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('portal_status', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_application_history_application_id_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_application_history'))
    )
    with op.batch_alter_table('application_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_history_application_id'), ['application_id'], unique=False)

    op.create_table('licences',
    sa.Column('number', sa.String(length=12), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('issuing_authority', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('points', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_licences_person_id_people')),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_licences'))
    )
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licences_person_id'), ['person_id'], unique=False)

    op.create_table('payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_payments_application_id_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('transaction_id', name=op.f('uq_payments_transaction_id'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_application_id'), ['application_id'], unique=False)

    op.create_table('portal_sync_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('portal_status', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_portal_sync_items_application_id_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_sync_items')),
    sa.UniqueConstraint('application_id', 'seq', name='uq_portal_sync_items_application_seq')
    )
    with op.batch_alter_table('portal_sync_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_sync_items_application_id'), ['application_id'], unique=False)
        batch_op.create_index('ix_portal_sync_items_due', ['state', 'next_attempt_at'], unique=False)

    op.create_table('cards',
    sa.Column('serial', sa.String(length=16), nullable=False),
    sa.Column('licence_number', sa.String(length=12), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=True),
    sa.Column('printed', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['licence_number'], ['licences.number'], name=op.f('fk_cards_licence_number_licences')),
    sa.PrimaryKeyConstraint('serial', name=op.f('pk_cards')),
    sa.UniqueConstraint('application_id', name=op.f('uq_cards_application_id'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_licence_number'), ['licence_number'], unique=False)

    op.create_table('international_permits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('licence_number', sa.String(length=12), nullable=False),
    sa.Column('classes', sa.JSON(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['licence_number'], ['licences.number'], name=op.f('fk_international_permits_licence_number_licences')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_international_permits')),
    sa.UniqueConstraint('application_id', name=op.f('uq_international_permits_application_id'))
    )
    with op.batch_alter_table('international_permits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_international_permits_licence_number'), ['licence_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_international_permits_number'), ['number'], unique=False)

    op.create_table('licence_classes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('licence_number', sa.String(length=12), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('passed_on', sa.Date(), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('restrictions', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['licence_number'], ['licences.number'], name=op.f('fk_licence_classes_licence_number_licences')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_licence_classes')),
    sa.UniqueConstraint('licence_number', 'code', name='uq_licence_classes_licence_code')
    )
    with op.batch_alter_table('licence_classes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_classes_licence_number'), ['licence_number'], unique=False)



def downgrade() -> None:

    with op.batch_alter_table('licence_classes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licence_classes_licence_number'))

    op.drop_table('licence_classes')
    with op.batch_alter_table('international_permits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_international_permits_number'))
        batch_op.drop_index(batch_op.f('ix_international_permits_licence_number'))

    op.drop_table('international_permits')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_licence_number'))

    op.drop_table('cards')
    with op.batch_alter_table('portal_sync_items', schema=None) as batch_op:
        batch_op.drop_index('ix_portal_sync_items_due')
        batch_op.drop_index(batch_op.f('ix_portal_sync_items_application_id'))

    op.drop_table('portal_sync_items')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_application_id'))

    op.drop_table('payments')
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licences_person_id'))

    op.drop_table('licences')
    with op.batch_alter_table('application_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_history_application_id'))

    op.drop_table('application_history')
    op.drop_table('sandbox_population')
    with op.batch_alter_table('sandbox_health_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_health_certificates_citizen_id'))

    op.drop_table('sandbox_health_certificates')
    op.drop_table('processed_events')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_people_legacy_id_number'))

    op.drop_table('people')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unsent')

    op.drop_table('outbox')
    with op.batch_alter_table('licence_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licence_history_licence_number'))

    op.drop_table('licence_history')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applications_updated_at'))
        batch_op.drop_index(batch_op.f('ix_applications_status'))
        batch_op.drop_index(batch_op.f('ix_applications_licence_number'))
        batch_op.drop_index(batch_op.f('ix_applications_citizen_id'))

    op.drop_table('applications')
