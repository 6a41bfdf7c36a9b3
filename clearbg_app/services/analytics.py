"""First-party product analytics: which features a person uses (never images, addresses or browsers),
recorded only with their consent and deleted when they withdraw it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from clearbg_app.clock import utcnow
from clearbg_app.models import AnalyticsEvent
from clearbg_app.services.consents import PRODUCT_ANALYTICS, has_consent

EVENTS = frozenset({"image_processed", "full_resolution", "checkout_started", "export_requested"})


def record_event(session: Session, *, user_id: uuid.UUID | None, name: str, now: datetime | None = None) -> bool:
    """Add a product-analytics event to `session` if the person has consented; returns whether it did."""
    if name not in EVENTS:
        raise ValueError(f"unknown analytics event {name!r}")
    if not has_consent(session, user_id=user_id, purpose=PRODUCT_ANALYTICS):
        return False
    session.add(AnalyticsEvent(user_id=user_id, name=name, at=now or utcnow()))
    return True


def forget(session: Session, *, user_id: uuid.UUID) -> None:
    """Delete the person's recorded events (they withdrew the consent), in the caller's transaction."""
    session.exec(delete(AnalyticsEvent).where(col(AnalyticsEvent.user_id) == user_id))
