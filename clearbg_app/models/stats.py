"""Daily counters for the admin dashboard. Images and results are deleted an hour after processing,
so "images processed today" is counted when each one finishes, not from the rows that remain."""

from __future__ import annotations

from datetime import date

from sqlalchemy import event, inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.models.api_usage import ApiUsage
from clearbg_app.models.images import ImageStatus, ProcessedImage

IMAGES_WEB = "images_web"
IMAGES_API = "images_api"


class DailyCount(SQLModel, table=True):
    """How many times `name` happened on `day` (UTC)."""

    __tablename__ = "daily_count"

    day: date = Field(primary_key=True)
    name: str = Field(primary_key=True, max_length=32)
    count: int = 0


def increment(connection, *, name: str, day: date, by: int = 1) -> None:
    """Add `by` to the day's counter in the caller's transaction (an upsert on both databases)."""
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(DailyCount).values(day=day, name=name, count=by)
    connection.execute(
        statement.on_conflict_do_update(index_elements=["day", "name"], set_={"count": col(DailyCount.count) + by})
    )


@event.listens_for(ProcessedImage, "after_update")
def _image_done(_mapper, connection, target: ProcessedImage) -> None:
    history = inspect(target).attrs.status.history
    if target.status == ImageStatus.DONE and history.has_changes():
        increment(connection, name=IMAGES_WEB, day=as_utc(target.processed_at or utcnow()).date())


@event.listens_for(ProcessedImage, "after_insert")
def _image_inserted_done(_mapper, connection, target: ProcessedImage) -> None:
    if target.status == ImageStatus.DONE:
        increment(connection, name=IMAGES_WEB, day=as_utc(target.processed_at or utcnow()).date())


@event.listens_for(ApiUsage, "after_insert")
def _api_image(_mapper, connection, target: ApiUsage) -> None:
    if target.status == 200:
        increment(connection, name=IMAGES_API, day=as_utc(target.at).date())
