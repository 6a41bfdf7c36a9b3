"""Processed images: one row per upload, with the blobs it owns and when they expire."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Text
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow


class ImageStatus(StrEnum):
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class ProcessedImage(SQLModel, table=True):
    """An uploaded original and its cut-out. Blob keys point into the blob store."""

    __tablename__ = "processed_image"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    visitor_hash: str | None = Field(default=None, max_length=64, index=True)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", index=True, ondelete="CASCADE")
    status: str = Field(default=ImageStatus.PROCESSING, max_length=16)
    original_filename: str = Field(default="", max_length=255)
    original_key: str = Field(max_length=128)
    original_content_type: str = Field(max_length=64)
    original_bytes: int
    width: int
    height: int
    result_key: str | None = Field(default=None, max_length=128)
    result_width: int | None = None
    result_height: int | None = None
    full_result_key: str | None = Field(default=None, max_length=128)
    charged_units: int = 0
    edit_strokes: str | None = Field(default=None, sa_type=Text)  # the editor's brush strokes (JSON); the results stay the model's
    background_key: str | None = Field(default=None, max_length=128)  # the editor's uploaded background photo
    error: str | None = Field(default=None, max_length=500)
    processing_ms: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    processed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)

    def blob_keys(self) -> list[str]:
        """Every blob this row owns."""
        return [key for key in (self.original_key, self.result_key, self.full_result_key, self.background_key) if key]
