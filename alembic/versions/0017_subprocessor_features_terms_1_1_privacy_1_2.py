"""subprocessors say which feature they serve; terms of service 1.1; privacy policy 1.2

`subprocessor.used_for` ties an entry to the feature that needs it, so /subprocessors marks it in use
only when that feature is configured: the seeded Google entry to Google sign-in, Stripe to payments,
the email delivery provider to sending mail over SMTP. The terms get version 1.1 (credits, the monthly
allowance, expiry, refunds, subscriptions, the API's limits, the operator), published as of this
release's date, as 0012 does for the privacy policy; its figures are filled in from the settings.
The privacy policy gets version 1.2: requests by message (the contact form), legal holds ("where the
law requires retention"), minors' accounts, one-click unsubscribe, the operator's identity. Neither is
marked material: they describe what the software does (the operator decides whether to announce them).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 13:20:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RELEASED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # after 0012 published 1.1 (the same day, at midnight)
DOCS = Path(__file__).resolve().parents[2] / "docs"
TERMS_SUMMARY = ("Says what credits are, the free monthly allowance, when bought credits expire, refunds, subscriptions and "
                 "how to cancel them, the API's rate limits, and who runs the service. No new obligations.")  # fmt: skip
POLICY_SUMMARY = ("Adds requests by message through the contact form, legal holds where the law requires data to be kept, "
                  "what happens to a minor's account, the one-click unsubscribe, and who runs the service.")  # fmt: skip
DOCUMENTS = (("terms", "terms-1.1.md", TERMS_SUMMARY), ("privacy", "privacy-policy-1.2.md", POLICY_SUMMARY))
SEEDED = {"Google": "google_sign_in", "Stripe": "payments", "Email delivery provider (to be named by the operator)": "smtp_mail"}


def upgrade() -> None:
    with op.batch_alter_table("subprocessor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("used_for", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default=""))
    rows = sa.table("subprocessor", sa.column("name", sa.String()), sa.column("used_for", sa.String()))
    for name, feature in SEEDED.items():
        op.execute(rows.update().where(rows.c.name == name).values(used_for=feature))
    versions = sa.table(
        "policy_version", sa.column("id", sa.Uuid()), sa.column("kind", sa.String()), sa.column("label", sa.String()),
        sa.column("effective_at", sa.DateTime(timezone=True)), sa.column("status", sa.String()), sa.column("body", sa.Text()),
        sa.column("summary", sa.String()), sa.column("material", sa.Boolean()), sa.column("revision", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("published_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    for kind, document, summary in DOCUMENTS:
        taken = set(op.get_bind().execute(sa.select(versions.c.label).where(versions.c.kind == kind)).scalars())
        label = next(f"1.{minor}" for minor in range(1, 1000) if f"1.{minor}" not in taken)
        op.bulk_insert(versions, [{
            "id": uuid.uuid4(), "kind": kind, "label": label, "effective_at": RELEASED, "status": "published",
            "body": (DOCS / document).read_text(encoding="utf-8"), "summary": summary, "material": False, "revision": 1,
            "created_at": RELEASED, "updated_at": RELEASED, "published_at": RELEASED,
        }])  # fmt: skip


def downgrade() -> None:
    versions = sa.table("policy_version", sa.column("kind", sa.String()), sa.column("summary", sa.String()))
    for kind, _, summary in DOCUMENTS:
        op.execute(versions.delete().where(versions.c.kind == kind, versions.c.summary == summary))
    with op.batch_alter_table("subprocessor", schema=None) as batch_op:
        batch_op.drop_column("used_for")
