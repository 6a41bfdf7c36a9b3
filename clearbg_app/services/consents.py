"""Consents as events: each grant or withdrawal is a row, the newest per purpose is the current state,
and `has_consent` is the one check every feature that needs consent makes. Also the two features
that only run with consent: first-party product analytics and product-news mail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.models import AnalyticsEvent, ConsentEvent, OutboxMail, User
from clearbg_app.services import mail, policies
from clearbg_app.services.deletion_lock import pending_deletion
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings

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
ANALYTICS_EVENTS = frozenset({"image_processed", "full_resolution", "checkout_started", "export_requested"})


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


def set_consent(
    session: Session, *, user: User, purpose: str, granted: bool, source: str, now: datetime | None = None
) -> bool:
    """Grant or withdraw; records an event only when the state changes. Returns whether it changed.
    Withdrawing the history consent shortens the kept images to the default retention from now;
    withdrawing analytics deletes the analytics events recorded so far."""
    from clearbg_app.services import images  # images reads consents for its retention

    now = now or utcnow()
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
    if purpose == PROCESSING_HISTORY:
        images.apply_retention(session, user_id=user.id, now=now)
    if purpose == PRODUCT_ANALYTICS and not granted:
        session.exec(delete(AnalyticsEvent).where(col(AnalyticsEvent.user_id) == user.id))
    session.commit()
    return True


def record_event(session: Session, *, user_id: uuid.UUID | None, name: str, now: datetime | None = None) -> bool:
    """Add a product-analytics event to `session` if the person has consented; returns whether it did."""
    if name not in ANALYTICS_EVENTS:
        raise ValueError(f"unknown analytics event {name!r}")
    if not has_consent(session, user_id=user_id, purpose=PRODUCT_ANALYTICS):
        return False
    session.add(AnalyticsEvent(user_id=user_id, name=name, at=now or utcnow()))
    return True


def _wants_news(session: Session, user_id: uuid.UUID) -> bool:
    return has_consent(session, user_id=user_id, purpose=MARKETING_EMAIL) and pending_deletion(session, user_id=user_id) is None


def send_product_news(session: Session, *, subject: str, body: str) -> int:
    """Email product news to every confirmed account that consented to it (and is not being deleted),
    each with the way to stop it; returns how many were queued."""
    queued = 0
    for user in session.exec(select(User).where(col(User.email_verified_at).is_not(None))).all():
        if _wants_news(session, user.id):
            mail.enqueue(session, kind="product_news", user_id=user.id, params={"subject": subject, "body": body.strip()})
            queued += 1
    session.commit()
    return queued


@mail.renders("product_news")
def _news_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    """Nothing for someone who withdrew the consent (or asked for deletion) since it was queued."""
    user = mail.recipient(session, queued)
    if user is None or not _wants_news(session, user.id):
        return None
    center = get_settings().public_url.rstrip("/") + "/privacy-center"
    return mail.Message(
        to=user.email,
        subject=queued.params["subject"],
        body=f"Hello {user.display_name},\n\n{queued.params['body']}\n\n"
        f"You get this because you asked for product news. Stop it with one click at {center}\n",
    )
