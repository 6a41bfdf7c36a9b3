"""Operations records: the audit trail of privileged actions, and the runs of scheduled jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.accounts import timestamp


class AuditEvent(SQLModel, table=True):
    """Who did what to which record, with the values before and after. No personal data in
    `action`/`target_*`; `before`/`after` hold only the fields that changed."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_at", "at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    at: datetime = timestamp(default_factory=utcnow)
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")
    actor_kind: str = Field(default="admin", max_length=16)  # "admin", "user" or "system"
    action: str = Field(max_length=64)
    target_type: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRun(SQLModel, table=True):
    """One run of a scheduled job. A RUNNING row that never finished is a run that was killed."""

    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_started", "job", "started_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    job: str = Field(max_length=64)
    started_at: datetime = timestamp(default_factory=utcnow)
    finished_at: datetime | None = timestamp(default=None)
    status: str = Field(default=JobStatus.RUNNING, max_length=16)
    counts: dict[str, int] | None = Field(default=None, sa_column=Column(JSON))
    error: str | None = Field(default=None, sa_column=Column(Text))
    instance: str = Field(default="", max_length=100)  # which process ran it (several instances share the schedule)
