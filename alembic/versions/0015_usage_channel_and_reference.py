"""where a usage row and a batch come from: the API or the web app

`batch.channel` says whether a batch was sent with an API key or from the batch page;
`api_usage.channel` and `api_usage.reference` (the ledger reference paid for, ids only) let
"API usage" and the credit history label a web batch item "Web batch: horse.jpg" instead of
"deleted key". Rows written before this migration are API calls.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="api"))
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="api"))
        batch_op.add_column(sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
    # Batches without a key were sent from the batch page (or their key is deleted: those cannot be told apart).
    op.execute("UPDATE batch SET channel = 'web' WHERE api_key_id IS NULL")
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.alter_column("channel", server_default=None)
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.alter_column("channel", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.drop_column("reference")
        batch_op.drop_column("channel")
    with op.batch_alter_table("batch", schema=None) as batch_op:
        batch_op.drop_column("channel")
