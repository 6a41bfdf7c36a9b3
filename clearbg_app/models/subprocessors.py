"""The companies that process personal data on the operator's behalf, as listed publicly."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.accounts import timestamp


class Subprocessor(SQLModel, table=True):
    """One subprocessor. `placeholder` marks a seeded row the operator still has to fill in (their own
    hosting or mail provider); `active_until` set means retired."""

    __tablename__ = "subprocessor"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=120)
    purpose: str = Field(sa_column=Column(Text, nullable=False))
    data_categories: str = Field(sa_column=Column(Text, nullable=False))
    location: str = Field(max_length=120)
    transfer_safeguard: str = Field(default="", max_length=200)
    dpa_url: str = Field(default="", max_length=500)
    active_since: date
    active_until: date | None = None
    placeholder: bool = False
    used_for: str = Field(default="", max_length=32)  # "": always in use; else the feature it serves (see services.subprocessors.FEATURES)
    created_at: datetime = timestamp(default_factory=utcnow)
    updated_at: datetime = timestamp(default_factory=utcnow)
