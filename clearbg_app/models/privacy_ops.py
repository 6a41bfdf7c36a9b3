"""Privacy operations: requests people send through /contact (and the replies to them), and legal holds
that keep an account's data from the purge and anonymization jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.accounts import timestamp


class RequestStatus(StrEnum):
    UNCONFIRMED = "unconfirmed"  # waiting for the link sent to the address: not in the queue yet
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # on the person
    DONE = "done"
    REFUSED = "refused"


class PrivacyRequest(SQLModel, table=True):
    """A request sent through /contact. It reaches the admin queue once confirmed from the link mailed to
    `email` (proof of address); `due_at` is 30 days after that; `user_id` is the account with that address."""

    __tablename__ = "privacy_request"
    __table_args__ = (Index("ix_privacy_request_status_due", "status", "due_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=32)
    email: str = Field(max_length=254, index=True)
    message: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=RequestStatus.UNCONFIRMED, max_length=16)
    created_at: datetime = timestamp(default_factory=utcnow)
    confirmed_at: datetime | None = timestamp(default=None)
    due_at: datetime | None = timestamp(default=None)
    closed_at: datetime | None = timestamp(default=None)
    refusal_reason: str = Field(default="", max_length=500)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", index=True, ondelete="SET NULL")


class PrivacyRequestReply(SQLModel, table=True):
    """A reply an admin sent from the queue (by email, through the outbox)."""

    __tablename__ = "privacy_request_reply"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="privacy_request.id", index=True, ondelete="CASCADE")
    at: datetime = timestamp(default_factory=utcnow)
    body: str = Field(sa_column=Column(Text, nullable=False))


class LegalHold(SQLModel, table=True):
    """While a hold is in force (placed, not lifted, `until` not passed), the image purge and the
    anonymization jobs leave the account's data alone. The person is not told."""

    __tablename__ = "legal_hold"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    reason: str = Field(max_length=300)
    placed_at: datetime = timestamp(default_factory=utcnow)
    until: datetime = timestamp()
    lifted_at: datetime | None = timestamp(default=None)
