"""initial: the local registry copy, slots (holds live on them), appointments, the feed, outbox and inbox

The partial unique index uq_appointments_active_slot (one active appointment per slot) is declared for both
SQLite and PostgreSQL.

Revision ID: fea85bf5eb93
Revises: 
Create Date: 2026-11-22 14:33:22.041653
"""
import sqlalchemy as sa
from alembic import op

revision = 'fea85bf5eb93'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('appointments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('booking_reference', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('registered_ods_code', sa.String(length=16), nullable=False),
    sa.Column('nhs_number', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('slot_id', sa.String(length=32), nullable=False),
    sa.Column('slot_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('slot_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('clinician_id', sa.String(length=100), nullable=False),
    sa.Column('slot_type', sa.String(length=50), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.Column('rescheduled_from', sa.String(length=32), nullable=True),
    sa.Column('rescheduled_to', sa.String(length=32), nullable=True),
    sa.Column('booked_by', sa.String(length=200), nullable=False),
    sa.Column('booked_by_role', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    sa.UniqueConstraint('booking_reference', name=op.f('uq_appointments_booking_reference'))
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index('ix_appointments_nhs_number_slot_start', ['nhs_number', 'slot_start'], unique=False)
        batch_op.create_index('ix_appointments_ods_code_slot_start', ['ods_code', 'slot_start'], unique=False)
        batch_op.create_index('ix_appointments_registered_ods_code_slot_start', ['registered_ods_code', 'slot_start'], unique=False)
        batch_op.create_index('uq_appointments_active_slot', ['slot_id'], unique=True, sqlite_where=sa.text("status IN ('booked', 'arrived', 'completed', 'did_not_attend')"), postgresql_where=sa.text("status IN ('booked', 'arrived', 'completed', 'did_not_attend')"))

    op.create_table('clinicians',
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('clinician_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('gender', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('ods_code', 'clinician_id', name=op.f('pk_clinicians'))
    )
    op.create_table('feed_counters',
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('ods_code', name=op.f('pk_feed_counters'))
    )
    op.create_table('feed_entries',
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('appointment_id', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('ods_code', 'seq', name=op.f('pk_feed_entries'))
    )
    op.create_table('practices',
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('pcn', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('ods_code', name=op.f('pk_practices'))
    )
    with op.batch_alter_table('practices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_practices_pcn'), ['pcn'], unique=False)

    op.create_table('registrations',
    sa.Column('nhs_number', sa.String(length=10), nullable=False),
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('nhs_number', 'ods_code', name=op.f('pk_registrations'))
    )
    op.create_table('registry_versions',
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('aggregate', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('ods_code', 'aggregate', name=op.f('pk_registry_versions'))
    )
    op.create_table('slot_types',
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('bookable_by_centre', sa.Boolean(), nullable=False),
    sa.Column('max_days_ahead', sa.Integer(), nullable=False),
    sa.Column('min_notice_minutes', sa.Integer(), nullable=False),
    sa.Column('release_days_before', sa.Integer(), nullable=True),
    sa.Column('release_at_time', sa.Time(), nullable=True),
    sa.Column('shared_with_pcn', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('ods_code', 'code', name=op.f('pk_slot_types'))
    )
    op.create_table('slots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('ods_code', sa.String(length=16), nullable=False),
    sa.Column('session_id', sa.String(length=100), nullable=False),
    sa.Column('clinician_id', sa.String(length=100), nullable=False),
    sa.Column('slot_type', sa.String(length=50), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('hold_id', sa.String(length=32), nullable=True),
    sa.Column('held_by', sa.String(length=200), nullable=True),
    sa.Column('hold_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slots'))
    )
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.create_index('ix_slots_hold_id', ['hold_id'], unique=False)
        batch_op.create_index('ix_slots_ods_code_start_at', ['ods_code', 'start_at'], unique=False)

    op.create_table('inbox',
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_inbox'))
    )
    op.create_table('outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unpublished', ['published_at', 'seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unpublished')

    op.drop_table('outbox')
    op.drop_table('inbox')
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.drop_index('ix_slots_ods_code_start_at')
        batch_op.drop_index('ix_slots_hold_id')

    op.drop_table('slots')
    op.drop_table('slot_types')
    op.drop_table('registry_versions')
    op.drop_table('registrations')
    with op.batch_alter_table('practices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_practices_pcn'))

    op.drop_table('practices')
    op.drop_table('feed_entries')
    op.drop_table('feed_counters')
    op.drop_table('clinicians')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index('uq_appointments_active_slot', sqlite_where=sa.text("status IN ('booked', 'arrived', 'completed', 'did_not_attend')"), postgresql_where=sa.text("status IN ('booked', 'arrived', 'completed', 'did_not_attend')"))
        batch_op.drop_index('ix_appointments_registered_ods_code_slot_start')
        batch_op.drop_index('ix_appointments_ods_code_slot_start')
        batch_op.drop_index('ix_appointments_nhs_number_slot_start')

    op.drop_table('appointments')
