"""Daily counters for the admin dashboard, counted where the work finishes: images and results are
deleted an hour after processing, so "images processed today" cannot be read from the rows left."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from clearbg_app.clock import as_utc
from clearbg_app.models import DailyCount


def count(session: Session, *, name: str, at: datetime, by: int = 1) -> None:
    """Add `by` to the counter `name` of `at`'s day, in the caller's transaction (an upsert on both databases)."""
    connection = session.connection()
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(DailyCount).values(day=as_utc(at).date(), name=name, count=by)
    connection.execute(statement.on_conflict_do_update(index_elements=["day", "name"], set_={"count": col(DailyCount.count) + by}))
