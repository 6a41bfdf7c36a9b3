"""api usage records the model that served each call

Rows written before this migration do not know their model: they get "" (shown as "-").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("api_usage", schema=None) as batch_op:
        batch_op.drop_column("model")
