"""Versioned legal documents (privacy policy, terms), who acknowledged a material change, and who was
emailed about it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Text, UniqueConstraint, event, inspect
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.accounts import timestamp

POLICY_KINDS = ("privacy", "terms")


class PolicyStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class PolicyVersion(SQLModel, table=True):
    """One version of the privacy policy or the terms. Drafts are edited (each save bumps `revision`,
    so a stale editor is refused); publishing freezes the row for good."""

    __tablename__ = "policy_version"
    __table_args__ = (UniqueConstraint("kind", "label"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=16)  # "privacy" or "terms"
    label: str = Field(max_length=32)
    effective_at: datetime = timestamp()
    status: str = Field(default=PolicyStatus.DRAFT, max_length=16)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    summary: str = Field(default="", max_length=500)
    material: bool = Field(default=False)
    revision: int = Field(default=1)
    created_at: datetime = timestamp(default_factory=utcnow)
    updated_at: datetime = timestamp(default_factory=utcnow)
    published_at: datetime | None = timestamp(default=None)

    @property
    def is_published(self) -> bool:
        return self.status == PolicyStatus.PUBLISHED


@event.listens_for(PolicyVersion, "before_update")
def _published_rows_are_frozen(_mapper, _connection, target: PolicyVersion) -> None:
    """A last guard under the service: no ORM flush may change a version that was already published."""
    history = inspect(target).attrs.status.history
    was = history.deleted[0] if history.deleted else target.status
    if was == PolicyStatus.PUBLISHED:
        raise PermissionError(f"{target.kind} version {target.label} is published and cannot change")


class PolicyAcknowledgement(SQLModel, table=True):
    """A signed-in user dismissed the notice of a material change (the banner)."""

    __tablename__ = "policy_acknowledgement"
    __table_args__ = (UniqueConstraint("user_id", "version_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    version_id: uuid.UUID = Field(foreign_key="policy_version.id", ondelete="CASCADE")
    acknowledged_at: datetime = timestamp(default_factory=utcnow)


class PolicyNoticeEmail(SQLModel, table=True):
    """The service email about a material change went to this user (once per user and version)."""

    __tablename__ = "policy_notice_email"
    __table_args__ = (UniqueConstraint("user_id", "version_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    version_id: uuid.UUID = Field(foreign_key="policy_version.id", ondelete="CASCADE")
    sent_at: datetime = timestamp(default_factory=utcnow)
