"""job runs name the instance that ran them

With several instances (web processes, workers) scheduling the same jobs, the PostgreSQL advisory
lock elects one runner per period; `job_run.instance` records which (CLEARBG_INSTANCE_NAME, or the
host name and process id), shown on /admin.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_run") as table:
        table.add_column(sa.Column("instance", sa.String(length=100), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("job_run") as table:
        table.drop_column("instance")
