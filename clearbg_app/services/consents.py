"""Consents as events: each grant or withdrawal is a row, the newest per purpose is the current state,
and `has_consent` is the one check every feature that needs consent makes. A change and what it
changes elsewhere (kept images, recorded analytics) go through `services/privacy_choices.py`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc
from clearbg_app.models import ConsentEvent, User
from clearbg_app.services import policies
from clearbg_app.services.errors import ServiceError

MARKETING_EMAIL = "marketing_email"
PROCESSING_HISTORY = "processing_history"
PRODUCT_ANALYTICS = "product_analytics"


@dataclass(frozen=True)
class Purpose:
    key: str
    title: str
    description: str


PURPOSES: tuple[Purpose, ...] = (
    Purpose(MARKETING_EMAIL, "Product news by email", "Occasional emails about new features. Service emails (sign-in, receipts) are sent either way."),
    Purpose(
        PROCESSING_HISTORY,
        "Processing history",
        "Keep your originals and results for {days} days so you can find and download them again on /history. "
        "Without it they are deleted after {minutes} minutes.",
    ),
    Purpose(PRODUCT_ANALYTICS, "Improve the service", "Record which features you use (never your images, IP or browser) so we can improve ClearBG."),
)
PURPOSE_KEYS = frozenset(purpose.key for purpose in PURPOSES)


class ConsentError(ServiceError):
    """An unknown purpose, or a change that cannot be made."""


def _check_purpose(purpose: str) -> str:
    if purpose not in PURPOSE_KEYS:
        raise ConsentError(f"There is no consent called {purpose[:40]!r}.")
    return purpose


def _latest(session: Session, user_id: uuid.UUID, purpose: str) -> ConsentEvent | None:
    return session.exec(
        select(ConsentEvent)
        .where(ConsentEvent.user_id == user_id, ConsentEvent.purpose == purpose)
        .order_by(col(ConsentEvent.at).desc(), col(ConsentEvent.id))
    ).first()


def has_consent(session: Session, *, user_id: uuid.UUID | None, purpose: str) -> bool:
    """Whether the person's newest event for `purpose` is a grant (no event: no consent)."""
    if user_id is None:
        return False
    latest = _latest(session, user_id, _check_purpose(purpose))
    return latest is not None and latest.granted


def current(session: Session, *, user_id: uuid.UUID) -> dict[str, bool]:
    return {purpose.key: has_consent(session, user_id=user_id, purpose=purpose.key) for purpose in PURPOSES}


def history(session: Session, *, user_id: uuid.UUID) -> list[ConsentEvent]:
    """Every change, newest first."""
    return list(
        session.exec(select(ConsentEvent).where(ConsentEvent.user_id == user_id).order_by(col(ConsentEvent.at).desc())).all()
    )


def record(session: Session, *, user: User, purpose: str, granted: bool, source: str, now: datetime) -> bool:
    """Add the grant or withdrawal to `session` (flushed, not committed) when it changes the state;
    returns whether it did."""
    latest = _latest(session, user.id, _check_purpose(purpose))
    if (latest is not None and latest.granted) == granted:
        return False
    session.add(
        ConsentEvent(
            user_id=user.id,
            purpose=purpose,
            granted=granted,
            at=max(now, as_utc(latest.at) + timedelta(microseconds=1)) if latest else now,  # strictly newest
            policy_version=policies.current_label(session, kind="privacy", now=now),
            source=source[:32],
        )
    )
    session.flush()
    return True
