"""slots open partial indexes: searches and day counts read only slots that are not booked

Revision ID: d41a7c2e9b10
Revises: cec4069cce55
Create Date: 2026-12-06 04:50:00.000000
"""
import sqlalchemy as sa
from alembic import op

from services.migrations import build_index_concurrently

revision = 'd41a7c2e9b10'
down_revision = 'cec4069cce55'
branch_labels = None
depends_on = None

OPEN = "status IN ('free', 'held')"
INDEXES = [('ix_slots_open_ods_code_start_at', ['ods_code', 'start_at']),
           ('ix_slots_open_start_at', ['start_at'])]


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # CONCURRENTLY: bookings go on while a large slots table is indexed (it cannot run in a transaction).
        with op.get_context().autocommit_block():
            for name, columns in INDEXES:
                build_index_concurrently(name, 'slots', columns, where=OPEN)
            op.drop_index('ix_slots_start_at_id', table_name='slots', postgresql_concurrently=True, if_exists=True)
        return
    with op.batch_alter_table('slots', schema=None) as batch_op:
        for name, columns in INDEXES:
            batch_op.create_index(name, columns, unique=False, sqlite_where=sa.text(OPEN))
        batch_op.drop_index('ix_slots_start_at_id')


def downgrade() -> None:
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.create_index('ix_slots_start_at_id', ['start_at', 'id'], unique=False)
        for name, _columns in INDEXES:
            batch_op.drop_index(name)
