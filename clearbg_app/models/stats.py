"""Daily counters for the admin dashboard (`services.stats` counts them where the work finishes)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Field, SQLModel

IMAGES_WEB = "images_web"
IMAGES_API = "images_api"


class DailyCount(SQLModel, table=True):
    """How many times `name` happened on `day` (UTC)."""

    __tablename__ = "daily_count"

    day: date = Field(primary_key=True)
    name: str = Field(primary_key=True, max_length=32)
    count: int = 0
