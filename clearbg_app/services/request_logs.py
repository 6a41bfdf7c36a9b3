"""Technical request logs, kept to secure the service: no query strings, no secrets, truncated IPs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from clearbg_app.clock import Clock, utcnow
from clearbg_app.models import AuthSession, RequestLog
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


def truncate_ips(session: Session, *, clock: Clock = utcnow) -> int:
    """Remove the (already /24 or /48) IP prefix from request logs older than `request_log_ip_days`,
    and from signed-in browser records that ended that long ago; returns how many rows changed."""
    cutoff: datetime = clock() - timedelta(days=get_settings().request_log_ip_days)
    logs = session.exec(
        update(RequestLog).where(col(RequestLog.at) < cutoff, col(RequestLog.ip_prefix) != "").values(ip_prefix="")
    )
    ended = or_(col(AuthSession.expires_at) < cutoff, col(AuthSession.revoked_at) < cutoff)
    sessions = session.exec(update(AuthSession).where(ended, col(AuthSession.ip_prefix) != "").values(ip_prefix=""))
    session.commit()
    return (logs.rowcount or 0) + (sessions.rowcount or 0)


def session_owners(session: Session, *, token_hashes: set[str]) -> dict[str, uuid.UUID]:
    """The user behind each session-token hash that names a session (requests logged by cookie)."""
    if not token_hashes:
        return {}
    rows = session.exec(select(AuthSession.token_hash, AuthSession.user_id).where(col(AuthSession.token_hash).in_(token_hashes))).all()
    return dict(rows)
