"""A person's consent choices and what each changes: withdrawing the processing history shortens the
kept images to the default retention, withdrawing analytics deletes what was recorded."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from clearbg_app.clock import utcnow
from clearbg_app.models import User
from clearbg_app.services import analytics, consents, images


def set_consent(session: Session, *, user: User, purpose: str, granted: bool, source: str, now: datetime | None = None) -> bool:
    """Grant or withdraw, with its consequences, in one transaction; records an event only when the
    state changes. Returns whether it changed."""
    now = now or utcnow()
    if not consents.record(session, user=user, purpose=purpose, granted=granted, source=source, now=now):
        return False
    if purpose == consents.PROCESSING_HISTORY:
        images.apply_retention(session, user_id=user.id, now=now)
    if purpose == consents.PRODUCT_ANALYTICS and not granted:
        analytics.forget(session, user_id=user.id)
    session.commit()
    return True
