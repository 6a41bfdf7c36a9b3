"""Batch jobs: many images under one set of options, processed in the background, zipped on request."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.billing import units_column


class BatchStatus(StrEnum):
    RUNNING = "running"  # items are queued or processing
    DONE = "done"  # every item finished (done, failed or cancelled)


class ItemStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WebhookStatus(StrEnum):
    NONE = "none"  # no webhook_url
    WAITING = "waiting"  # the batch is still running
    PENDING = "pending"  # due at webhook_next_at
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed


class Batch(SQLModel, table=True):
    """One batch of a user's images; its items and every blob they own expire with it."""

    __tablename__ = "batch"
    __table_args__ = (Index("ix_batch_webhook_due", "webhook_status", "webhook_next_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    api_key_id: uuid.UUID | None = Field(default=None, foreign_key="api_key.id", ondelete="SET NULL")
    channel: str = Field(default="api", max_length=16)  # "api" (sent with a key) or "web" (the batch page)
    status: str = Field(default=BatchStatus.RUNNING, max_length=16)
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # removebg options, as sent
    background_key: str | None = Field(default=None, max_length=128)  # bg_image_file / bg_image_url, fetched once
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_status: str = Field(default=WebhookStatus.NONE, max_length=16)
    webhook_attempts: int = 0
    webhook_next_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    webhook_last_error: str | None = Field(default=None, max_length=500)
    webhook_delivered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class BatchItem(SQLModel, table=True):
    """One image of a batch: where it comes from, how it ended, its result blob and its charge."""

    __tablename__ = "batch_item"
    __table_args__ = (Index("ix_batch_item_status_created", "status", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    batch_id: uuid.UUID = Field(foreign_key="batch.id", index=True, ondelete="CASCADE")
    position: int
    filename: str = Field(max_length=255)  # safe: no path separators
    source_key: str | None = Field(default=None, max_length=128)  # an uploaded file or base64 image
    source_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # fetched when processed
    status: str = Field(default=ItemStatus.QUEUED, max_length=16)
    error_status: int | None = None
    error_code: str | None = Field(default=None, max_length=40)
    error_title: str | None = Field(default=None, max_length=100)
    error_detail: str | None = Field(default=None, max_length=500)
    result_key: str | None = Field(default=None, max_length=128)
    result_width: int | None = None
    result_height: int | None = None
    credits_units: int = units_column(default=0)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))

    def blob_keys(self) -> list[str]:
        return [key for key in (self.source_key, self.result_key) if key]
