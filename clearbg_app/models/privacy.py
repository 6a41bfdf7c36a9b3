"""Privacy records: consent events, first-party analytics events, data exports, account deletions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.accounts import timestamp


class ConsentEvent(SQLModel, table=True):
    """One grant or withdrawal of a consent; the newest event per (user, purpose) is the current state.
    Anonymization keeps the event (the record that consent was asked properly) but drops `user_id`."""

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_user_purpose_at", "user_id", "purpose", "at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", ondelete="CASCADE")
    purpose: str = Field(max_length=32)
    granted: bool
    at: datetime = timestamp(default_factory=utcnow)
    policy_version: str = Field(max_length=32)
    source: str = Field(max_length=32)  # where the person clicked: "privacy_center", "history", ...


class AnalyticsEvent(SQLModel, table=True):
    """A first-party product-analytics event, recorded only with the "product analytics" consent.
    No IP, no user agent, no content: which feature was used, by whom, when."""

    __tablename__ = "analytics_event"
    __table_args__ = (Index("ix_analytics_event_name_at", "name", "at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=40)
    at: datetime = timestamp(default_factory=utcnow)


class ExportStatus(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class DataExport(SQLModel, table=True):
    """A person's request for a copy of their data: built in the background into a private ZIP blob,
    downloadable by its owner until `expires_at`, then purged (blob first, then this row)."""

    __tablename__ = "data_export"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    status: str = Field(default=ExportStatus.PENDING, max_length=16)
    requested_at: datetime = timestamp(default_factory=utcnow)
    claimed_at: datetime | None = timestamp(default=None)
    ready_at: datetime | None = timestamp(default=None)
    expires_at: datetime | None = timestamp(default=None, index=True)
    blob_key: str | None = Field(default=None, max_length=128)
    size_bytes: int | None = None
    error: str | None = Field(default=None, max_length=200)


class AccountDeletion(SQLModel, table=True):
    """A deletion request: the account is locked at once and anonymized after `purge_after` unless
    the person cancels first. Rows stay (without personal data) as the record that it was done."""

    __tablename__ = "account_deletion"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    requested_at: datetime = timestamp(default_factory=utcnow)
    purge_after: datetime = timestamp(index=True)
    reason: str = Field(default="request", max_length=16)  # "request" (the person or a confirmed message), "minor"
    cancelled_at: datetime | None = timestamp(default=None)
    completed_at: datetime | None = timestamp(default=None)
