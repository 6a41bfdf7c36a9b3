"""Technical request logs, kept to secure the service: no query strings, no secrets, truncated IPs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from clearbg_app.clock import Clock, utcnow
from clearbg_app.models import RequestLog
from clearbg_app.settings import get_settings


def record(session: Session, entries: list[RequestLog]) -> None:
    session.add_all(entries)
    session.commit()


def purge_old(session: Session, *, clock: Clock = utcnow) -> int:
    """Delete request logs older than the retention period; returns how many."""
    cutoff: datetime = clock() - timedelta(days=get_settings().request_log_days)
    result = session.exec(delete(RequestLog).where(col(RequestLog.at) < cutoff))
    session.commit()
    return result.rowcount or 0
