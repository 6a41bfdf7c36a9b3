"""processed images

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 14:34:07.743273
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('processed_image',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('visitor_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('original_filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('original_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('original_content_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('original_bytes', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('result_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('result_width', sa.Integer(), nullable=True),
    sa.Column('result_height', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('processing_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('processed_image', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processed_image_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_processed_image_visitor_hash'), ['visitor_hash'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('processed_image', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processed_image_visitor_hash'))
        batch_op.drop_index(batch_op.f('ix_processed_image_expires_at'))

    op.drop_table('processed_image')
