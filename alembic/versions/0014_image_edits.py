"""image edits: the editor's brush strokes and background photo, the model's results kept

The strokes are kept as data beside the model's own cut-outs (`result_key`, `full_result_key` stay
untouched), so "Reset edits" is clearing them and every preview or download applies them afresh.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_image", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edit_strokes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("background_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processed_image", schema=None) as batch_op:
        batch_op.drop_column("background_key")
        batch_op.drop_column("edit_strokes")
