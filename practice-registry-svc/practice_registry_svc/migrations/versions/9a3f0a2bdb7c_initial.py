"""initial: practices, PCNs, clinicians, slot types, registered patients, API keys; the kernel's outbox and inbox

Revision ID: 9a3f0a2bdb7c
Revises:
Create Date: 2026-11-22 14:31:40
"""
from alembic import op
import sqlalchemy as sa


revision = '9a3f0a2bdb7c'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pcns',
        sa.Column('code', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_pcns')),
    )
    op.create_table(
        'practices',
        sa.Column('ods_code', sa.String(length=6), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('pcn_code', sa.String(length=20), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('phone', sa.String(length=40), nullable=True),
        sa.Column('address', sa.Text(), nullable=True),
        sa.Column('opening_hours', sa.JSON(), nullable=True),
        sa.Column('notes_for_agents', sa.Text(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('patients_synced_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f('ck_practices_status')),
        sa.ForeignKeyConstraint(['pcn_code'], ['pcns.code'], name=op.f('fk_practices_pcn_code_pcns')),
        sa.PrimaryKeyConstraint('ods_code', name=op.f('pk_practices')),
    )
    op.create_index(op.f('ix_practices_pcn_code'), 'practices', ['pcn_code'], unique=False)

    op.create_table(
        'api_keys',
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('ods_code', sa.String(length=6), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['ods_code'], ['practices.ods_code'], name=op.f('fk_api_keys_ods_code_practices')),
        sa.PrimaryKeyConstraint('key_id', name=op.f('pk_api_keys')),
    )
    op.create_index(op.f('ix_api_keys_ods_code'), 'api_keys', ['ods_code'], unique=False)

    op.create_table(
        'clinicians',
        sa.Column('ods_code', sa.String(length=6), nullable=False),
        sa.Column('clinician_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('gender', sa.String(length=10), nullable=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['ods_code'], ['practices.ods_code'], name=op.f('fk_clinicians_ods_code_practices')),
        sa.PrimaryKeyConstraint('ods_code', 'clinician_id', name=op.f('pk_clinicians')),
    )
    op.create_table(
        'slot_types',
        sa.Column('ods_code', sa.String(length=6), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('bookable_by_centre', sa.Boolean(), nullable=False),
        sa.Column('max_days_ahead', sa.Integer(), nullable=False),
        sa.Column('min_notice_minutes', sa.Integer(), nullable=False),
        sa.Column('release_days_before', sa.Integer(), nullable=True),
        sa.Column('release_at_time', sa.String(length=5), nullable=True),
        sa.Column('shared_with_pcn', sa.Boolean(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['ods_code'], ['practices.ods_code'], name=op.f('fk_slot_types_ods_code_practices')),
        sa.PrimaryKeyConstraint('ods_code', 'code', name=op.f('pk_slot_types')),
    )
    op.create_table(
        'patients',
        sa.Column('nhs_number', sa.String(length=10), nullable=False),
        sa.Column('ods_code', sa.String(length=6), nullable=False),
        sa.Column('family', sa.String(length=100), nullable=False),
        sa.Column('given', sa.String(length=100), nullable=False),
        sa.Column('birth_date', sa.Date(), nullable=False),
        sa.Column('gender', sa.String(length=10), nullable=True),
        sa.Column('postcode', sa.String(length=10), nullable=True),
        sa.Column('phone', sa.String(length=30), nullable=True),
        sa.Column('family_key', sa.String(length=100), nullable=False),
        sa.Column('given_key', sa.String(length=100), nullable=False),
        sa.Column('postcode_key', sa.String(length=10), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ods_code'], ['practices.ods_code'], name=op.f('fk_patients_ods_code_practices')),
        sa.PrimaryKeyConstraint('nhs_number', name=op.f('pk_patients')),
    )
    op.create_index('ix_patients_family_key_birth_date', 'patients', ['family_key', 'birth_date'], unique=False)
    op.create_index(op.f('ix_patients_ods_code'), 'patients', ['ods_code'], unique=False)

    # The kernel's tables: the transactional outbox (and the inbox, unused while the registry consumes nothing).
    op.create_table(
        'inbox',
        sa.Column('consumer', sa.String(length=100), nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_inbox')),
    )
    op.create_table(
        'outbox',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('payload', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_outbox')),
        sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id')),
    )
    op.create_index('ix_outbox_unpublished', 'outbox', ['published_at', 'seq'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_unpublished', table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('inbox')
    op.drop_index(op.f('ix_patients_ods_code'), table_name='patients')
    op.drop_index('ix_patients_family_key_birth_date', table_name='patients')
    op.drop_table('patients')
    op.drop_table('slot_types')
    op.drop_table('clinicians')
    op.drop_index(op.f('ix_api_keys_ods_code'), table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_index(op.f('ix_practices_pcn_code'), table_name='practices')
    op.drop_table('practices')
    op.drop_table('pcns')
