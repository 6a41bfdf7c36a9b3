"""coarse user agents in request logs and sessions; privacy policy 1.1

Data only: request logs keep the browser's family and major version ("Chrome 156"), signed-in
browsers that and the operating system ("Chrome 156 on Linux"), never the full User-Agent; the rows
written before this migration are cut down the same way. The privacy policy gets version 1.1 (not a
material change: it says what is kept more precisely), published as of this release's date, as 0009
dates version 1.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-01 12:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from clearbg_app.services.security import coarse_user_agent

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RELEASED = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = Path(__file__).resolve().parents[2] / "docs" / "privacy-policy-1.1.md"
SUMMARY = ("Says exactly what is kept of your browser (its name and main version), what an open page holds "
           "and for how long, and that erased data is overwritten. No new processing.")  # fmt: skip


def _coarsen(table: str, *, with_system: bool) -> None:
    rows = sa.table(table, sa.column("user_agent", sa.String()))
    connection = op.get_bind()
    for (full,) in connection.execute(sa.select(rows.c.user_agent).distinct()).all():
        coarse = coarse_user_agent(full, with_system=with_system)
        if full != coarse:
            connection.execute(rows.update().where(rows.c.user_agent == full).values(user_agent=coarse))


def _publish_policy() -> None:
    versions = sa.table(
        "policy_version", sa.column("id", sa.Uuid()), sa.column("kind", sa.String()), sa.column("label", sa.String()),
        sa.column("effective_at", sa.DateTime(timezone=True)), sa.column("status", sa.String()), sa.column("body", sa.Text()),
        sa.column("summary", sa.String()), sa.column("material", sa.Boolean()), sa.column("revision", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("published_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    taken = set(op.get_bind().execute(sa.select(versions.c.label).where(versions.c.kind == "privacy")).scalars())
    label = next(f"1.{minor}" for minor in range(1, 1000) if f"1.{minor}" not in taken)
    op.bulk_insert(versions, [{
        "id": uuid.uuid4(), "kind": "privacy", "label": label, "effective_at": RELEASED, "status": "published",
        "body": POLICY.read_text(encoding="utf-8"), "summary": SUMMARY, "material": False, "revision": 1,
        "created_at": RELEASED, "updated_at": RELEASED, "published_at": RELEASED,
    }])  # fmt: skip


def upgrade() -> None:
    _coarsen("request_log", with_system=False)
    _coarsen("auth_session", with_system=True)
    _publish_policy()


def downgrade() -> None:
    """The full user agents are gone for good; only the policy version is withdrawn."""
    versions = sa.table("policy_version", sa.column("kind", sa.String()), sa.column("summary", sa.String()))
    op.execute(versions.delete().where(versions.c.kind == "privacy", versions.c.summary == SUMMARY))
