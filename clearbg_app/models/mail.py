"""The outbox of service email: one row per mail waiting for the mail worker."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.accounts import timestamp


class OutboxMail(SQLModel, table=True):
    """A service email to send: its kind, the account it is about and the few values its text needs,
    never a link or a token (the worker signs those when it writes the message). Deleted once sent,
    dropped after a day of failed attempts."""

    __tablename__ = "mail_outbox"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=32)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", index=True, ondelete="CASCADE")
    to_address: str | None = Field(default=None, max_length=254)  # when it is not the account's own address
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = timestamp(default_factory=utcnow)
    next_attempt_at: datetime = timestamp(default_factory=utcnow, index=True)
    attempts: int = 0
    last_error: str = Field(default="", max_length=64)  # the exception's class only: SMTP replies may quote addresses
