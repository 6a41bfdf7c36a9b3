"""The audit trail: one row per privileged or irreversible action, without personal data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from clearbg_app.clock import utcnow
from clearbg_app.models import AccountDeletion, AuditEvent, User


def record(
    session: Session,
    *,
    action: str,
    actor: User | None,
    target_type: str = "",
    target_id: uuid.UUID | str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Add an audit event to `session` (committed with the action it describes). `actor=None` is the system."""
    event = AuditEvent(
        at=now or utcnow(),
        actor_id=actor.id if actor else None,
        actor_kind=("admin" if actor.is_admin else "user") if actor else "system",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
    )
    session.add(event)
    return event


def events_page(session: Session, *, page: int, per_page: int = 50, action: str | None = None) -> tuple[list[AuditEvent], int]:
    """Newest first, and the total count, optionally for one `action`."""
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action == action)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(AuditEvent.at).desc()).offset(max(page - 1, 0) * per_page).limit(per_page)).all()
    return list(rows), total


def live_emails(session: Session, *, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The email of each account in `user_ids` that still exists and is not erased (anonymized)."""
    if not user_ids:
        return {}
    erased = set(session.exec(select(AccountDeletion.user_id).where(col(AccountDeletion.user_id).in_(user_ids),
                                                                   col(AccountDeletion.completed_at).is_not(None))).all())  # fmt: skip
    rows = session.exec(select(User.id, User.email).where(col(User.id).in_(user_ids))).all()
    return {user_id: email for user_id, email in rows if user_id not in erased}
