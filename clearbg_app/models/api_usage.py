"""One row per call of the public API: who, what size, what it cost, how long, how it ended."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from clearbg_app.models.accounts import timestamp
from clearbg_app.models.billing import units_column


class ApiUsage(SQLModel, table=True):
    """A call of `/api/v1.0/removebg` by a known key, or a batch item, successful or not (errors cost 0)."""

    __tablename__ = "api_usage"
    __table_args__ = (Index("ix_api_usage_user_at", "user_id", "at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    at: datetime = timestamp()
    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE")
    api_key_id: uuid.UUID | None = Field(default=None, foreign_key="api_key.id", ondelete="SET NULL")
    size: str = Field(default="", max_length=16)  # preview, medium, hd, full
    width: int | None = None  # of the result
    height: int | None = None
    credits_units: int = units_column(default=0)
    latency_ms: int
    status: int  # the HTTP status answered
    error_code: str | None = Field(default=None, max_length=40)
    model: str = Field(default="", max_length=64)  # the registry name of the model that served it
    channel: str = Field(default="api", max_length=16)  # "api", or "web_batch" for an item of a batch page's batch
    reference: str | None = Field(default=None, max_length=120)  # the ledger reference it paid for (ids only)
