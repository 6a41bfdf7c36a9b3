"""Legal holds: an admin keeps an account's data from the image purge and the anonymization job while
the law requires it (a court order, an investigation). The jobs skip held accounts and count them in
their run records; lifting the hold (or its end date passing) lets them proceed. The person is not told."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.models import LegalHold, User
from clearbg_app.services import accounts, audit
from clearbg_app.services.deletion_lock import completed_deletion
from clearbg_app.services.errors import NotFound, ServiceError

MAX_REASON = 300


class HoldError(ServiceError):
    """The hold cannot be placed or lifted as asked."""


def in_force(now: datetime):
    """The SQL condition of holds that hold at `now`."""
    return col(LegalHold.lifted_at).is_(None) & (col(LegalHold.until) > now)


def held_user_ids(session: Session, *, now: datetime):
    """A subquery of the accounts under a hold at `now` (for the jobs' WHERE clauses)."""
    return select(LegalHold.user_id).where(in_force(now))


def active_hold(session: Session, *, user_id: uuid.UUID, now: datetime | None = None) -> LegalHold | None:
    return session.exec(select(LegalHold).where(LegalHold.user_id == user_id, in_force(now or utcnow()))).first()


def place_hold(
    session: Session, *, admin: User, user_id: uuid.UUID, reason: str, until: datetime | None, now: datetime | None = None
) -> LegalHold:
    """Hold the account's data until `until` (aware UTC, in the future), with the legal reason."""
    accounts.require_admin(admin)
    now = now or utcnow()
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("That account no longer exists.")
    if completed_deletion(session, user_id=user.id) is not None:
        raise HoldError("This account has already been anonymized: nothing personal is left to hold.")
    reason = " ".join((reason or "").split())
    if not reason or len(reason) > MAX_REASON:
        raise HoldError(f"Give the legal reason for the hold (at most {MAX_REASON} characters).")
    if until is None or as_utc(until) <= now:
        raise HoldError("Give the date the hold ends; it must be in the future.")
    if active_hold(session, user_id=user.id, now=now) is not None:
        raise HoldError("This account is already under a legal hold; lift it first to change it.")
    hold = LegalHold(user_id=user.id, reason=reason, placed_at=now, until=as_utc(until))
    session.add(hold)
    audit.record(session, action="legal_hold.placed", actor=admin, target_type="user", target_id=user.id,
                 after={"reason": reason, "until": f"{as_utc(until):%Y-%m-%d %H:%M} UTC"}, now=now)  # fmt: skip
    session.commit()
    return hold


def lift_hold(session: Session, *, admin: User, user_id: uuid.UUID, now: datetime | None = None) -> LegalHold:
    accounts.require_admin(admin)
    now = now or utcnow()
    hold = active_hold(session, user_id=user_id, now=now)
    if hold is None:
        raise HoldError("This account is not under a legal hold.")
    hold.lifted_at = now
    session.add(hold)
    audit.record(session, action="legal_hold.lifted", actor=admin, target_type="user", target_id=user_id,
                 before={"held": True}, after={"held": False}, now=now)  # fmt: skip
    session.commit()
    return hold
