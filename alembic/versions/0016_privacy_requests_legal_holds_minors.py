"""privacy requests by message and their replies, legal holds, why an account is deleted (minors)

Existing deletions were all asked for by their account holders: their `reason` is "request".

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0016'
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('legal_hold',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_legal_hold_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_hold'))
    )
    with op.batch_alter_table('legal_hold', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_hold_user_id'), ['user_id'], unique=False)

    op.create_table('privacy_request',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refusal_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_privacy_request_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_request'))
    )
    with op.batch_alter_table('privacy_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_request_email'), ['email'], unique=False)
        batch_op.create_index('ix_privacy_request_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_request_user_id'), ['user_id'], unique=False)

    op.create_table('privacy_request_reply',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['privacy_request.id'], name=op.f('fk_privacy_request_reply_request_id_privacy_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_request_reply'))
    )
    with op.batch_alter_table('privacy_request_reply', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_request_reply_request_id'), ['request_id'], unique=False)

    with op.batch_alter_table('account_deletion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='request'))



def downgrade() -> None:
    with op.batch_alter_table('account_deletion', schema=None) as batch_op:
        batch_op.drop_column('reason')

    with op.batch_alter_table('privacy_request_reply', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_request_reply_request_id'))

    op.drop_table('privacy_request_reply')
    with op.batch_alter_table('privacy_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_request_user_id'))
        batch_op.drop_index('ix_privacy_request_status_due')
        batch_op.drop_index(batch_op.f('ix_privacy_request_email'))

    op.drop_table('privacy_request')
    with op.batch_alter_table('legal_hold', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_hold_user_id'))

    op.drop_table('legal_hold')
