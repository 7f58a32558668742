"""slots hold id partial index: only slots with a hold are in it

Revision ID: e7c3f1a2b845
Revises: d41a7c2e9b10
Create Date: 2026-12-06 05:35:00.000000
"""
import sqlalchemy as sa
from alembic import op

from services.migrations import build_index_concurrently

revision = 'e7c3f1a2b845'
down_revision = 'd41a7c2e9b10'
branch_labels = None
depends_on = None

SET = "hold_id IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # CONCURRENTLY, and the new index before the old one goes: holds are found by id throughout.
        with op.get_context().autocommit_block():
            build_index_concurrently('ix_slots_hold_id_set', 'slots', ['hold_id'], where=SET)
            op.drop_index('ix_slots_hold_id', table_name='slots', postgresql_concurrently=True, if_exists=True)
        return
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.create_index('ix_slots_hold_id_set', ['hold_id'], unique=False, sqlite_where=sa.text(SET))
        batch_op.drop_index('ix_slots_hold_id')


def downgrade() -> None:
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.create_index('ix_slots_hold_id', ['hold_id'], unique=False)
        batch_op.drop_index('ix_slots_hold_id_set')
