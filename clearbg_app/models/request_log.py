"""One row per HTTP request, for security and abuse prevention; IPs are truncated before storage."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from clearbg_app.models.accounts import timestamp


class RequestLog(SQLModel, table=True):
    __tablename__ = "request_log"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    at: datetime = timestamp(index=True)
    method: str = Field(max_length=8)
    path: str = Field(max_length=255)  # never the query string: it can carry tokens
    status: int
    latency_ms: int
    user_id: uuid.UUID | None = Field(default=None, index=True)
    api_key_id: uuid.UUID | None = Field(default=None)
    user_agent: str = Field(default="", max_length=255)
    ip_prefix: str = Field(default="", max_length=64)
