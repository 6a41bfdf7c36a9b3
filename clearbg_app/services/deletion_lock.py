"""Whether an account is locked by a pending deletion request: the one check sign-in, sessions and API
keys make (kept apart from the deletion service, which itself uses the accounts service)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc
from clearbg_app.models import AccountDeletion
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.security import sign


class DeletionPending(ServiceError):
    """The right password for an account that is scheduled for deletion; `token` lets the person
    cancel the deletion for a few minutes."""

    def __init__(self, message: str, *, token: str) -> None:
        super().__init__(message)
        self.token = token


class AccountClosed(ServiceError):
    """The account was closed by the operator (a minor's): it cannot be used or restored."""


def pending_deletion(session: Session, *, user_id: uuid.UUID) -> AccountDeletion | None:
    """The open (neither cancelled nor completed) deletion request of the account, if any."""
    return session.exec(
        select(AccountDeletion).where(
            AccountDeletion.user_id == user_id,
            col(AccountDeletion.cancelled_at).is_(None),
            col(AccountDeletion.completed_at).is_(None),
        )
    ).first()


def completed_deletion(session: Session, *, user_id: uuid.UUID) -> AccountDeletion | None:
    return session.exec(
        select(AccountDeletion).where(AccountDeletion.user_id == user_id, col(AccountDeletion.completed_at).is_not(None))
    ).first()


def is_locked(session: Session, *, user_id: uuid.UUID) -> bool:
    """Locked while a deletion is pending, and for good once it is done."""
    return (
        session.exec(
            select(AccountDeletion.id).where(AccountDeletion.user_id == user_id, col(AccountDeletion.cancelled_at).is_(None))
        ).first()
        is not None
    )


def cancel_token_message(purge_after: datetime) -> str:
    return (
        f"Your account is scheduled for deletion on {purge_after:%Y-%m-%d %H:%M} UTC. "
        "You can still cancel the deletion and keep your account."
    )


CANCEL_PURPOSE = "cancel-deletion"
CANCEL_MINUTES = 15


def refuse_if_pending(session: Session, *, user_id: uuid.UUID, now: datetime) -> None:
    """After a successful sign-in: raise `DeletionPending` (with a short-lived token to cancel the
    deletion) instead of letting the person into an account that is being deleted."""
    deletion = pending_deletion(session, user_id=user_id)
    if deletion is not None and deletion.reason == "minor":  # closed by the operator: nothing to cancel
        raise AccountClosed("This account has been closed and is being deleted.")
    if deletion is not None:
        token = sign(CANCEL_PURPOSE, {"u": str(user_id), "d": str(deletion.id)}, expires_at=now + timedelta(minutes=CANCEL_MINUTES))
        raise DeletionPending(cancel_token_message(as_utc(deletion.purge_after)), token=token)
