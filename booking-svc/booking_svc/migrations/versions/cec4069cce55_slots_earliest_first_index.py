"""slots earliest-first index: a search across many practices reads slots in start order until its page is full

Revision ID: cec4069cce55
Revises: fea85bf5eb93
Create Date: 2026-11-22 17:03:10.418968
"""
from alembic import op

revision = 'cec4069cce55'
down_revision = 'fea85bf5eb93'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.create_index('ix_slots_start_at_id', ['start_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('slots', schema=None) as batch_op:
        batch_op.drop_index('ix_slots_start_at_id')
