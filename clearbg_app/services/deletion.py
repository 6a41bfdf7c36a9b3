"""Account deletion: a confirmed request locks the account at once (sessions and API keys revoked,
exports cancelled), a grace period lets the person cancel by signing in, then the anonymization job
erases what the personal-data registry lists and keeps the accounting records under a pseudonym.
An active subscription is cancelled at Stripe with the request; while Stripe cannot be reached, the
anonymization job tries again on every run."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.models import AccountDeletion, ApiKey, AuthSession, CreditAccount, OAuthIdentity, OutboxMail, RequestLog, User
from clearbg_app.services import accounts, audit, billing, exports, holds, mail, personal_data
from clearbg_app.services.deletion_lock import CANCEL_PURPOSE, completed_deletion, pending_deletion
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.security import InvalidToken, unsign, verify_password
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobStore

log = logging.getLogger(__name__)

ERASED = "[erased]"
CANCEL_WHILE_WAITING_SECONDS = 5.0  # Stripe's answer to a cancel with the deletion request; the job retries


class DeletionError(ServiceError):
    """The deletion cannot be requested or cancelled; the message says why."""


def request_deletion(
    session: Session,
    *,
    user: User,
    store: BlobStore,
    password: str | None = None,
    reauthenticated: bool = False,
    now: datetime | None = None,
) -> AccountDeletion:
    """Confirmed by the password (or, for an account without one, a fresh sign-in with its provider:
    `reauthenticated`): lock the account now and schedule its anonymization after the grace period."""
    now = now or utcnow()
    if completed_deletion(session, user_id=user.id) is not None:
        raise DeletionError("This account has already been deleted.")
    if pending_deletion(session, user_id=user.id) is not None:
        raise DeletionError("This account is already scheduled for deletion.")
    if not reauthenticated:
        if user.password_hash is None:
            raise DeletionError("Your account has no password: confirm the deletion by signing in with Google again.")
        if not verify_password(user.password_hash, password or ""):
            raise DeletionError("Your password is not correct; nothing was deleted.")
    grace = timedelta(days=get_settings().deletion_grace_days)
    deletion = AccountDeletion(user_id=user.id, requested_at=now, purge_after=now + grace)
    session.add(deletion)
    session.exec(update(ApiKey).where(col(ApiKey.user_id) == user.id, col(ApiKey.revoked_at).is_(None)).values(revoked_at=now))
    audit.record(session, action="account.deletion_requested", actor=user, target_type="account", target_id=user.id, now=now)
    mail.enqueue(session, kind="deletion_scheduled", user_id=user.id, now=now)
    session.commit()
    accounts.revoke_sessions(session, user=user, now=now)
    exports.cancel_all(session, store=store, user_id=user.id)
    end_subscription(session, user_id=user.id, now=now, timeout=CANCEL_WHILE_WAITING_SECONDS)
    return deletion


def end_subscription(session: Session, *, user_id: uuid.UUID, now: datetime, timeout: float | None = None) -> bool:
    """Cancel the account's active subscription at Stripe, so that it is never charged again, with an
    audit record; False (logged, nothing raised) when Stripe could not do it now: the caller's deletion
    stands and the anonymization job tries again. With the request, one short try (`timeout` seconds):
    the person is waiting for the answer."""
    try:
        subscription_id = billing.cancel_subscription(session, user_id=user_id, now=now, timeout=timeout)
    except billing.BillingError as error:  # nothing was written
        log.warning("account %s: subscription not cancelled yet: %s", personal_data.pseudonym(user_id), error)
        return False
    if subscription_id:
        audit.record(session, action="subscription.cancelled", actor=None, target_type="account", now=now,
                     target_id=personal_data.pseudonym(user_id), after={"subscription": subscription_id, "why": "account deletion"})  # fmt: skip
        session.commit()
    return True


def _subscriptions_left(session: Session) -> list[uuid.UUID]:
    """Accounts deleted or being deleted whose subscription is still active (Stripe could not cancel it yet)."""
    query = select(AccountDeletion.user_id).join(CreditAccount, col(CreditAccount.user_id) == col(AccountDeletion.user_id))
    return list(session.exec(query.where(col(AccountDeletion.cancelled_at).is_(None), CreditAccount.subscription_status == "active")).all())


MINOR_SOURCES = ("request", "report")


def delete_minor(
    session: Session, *, admin: User, user_id: uuid.UUID, store: BlobStore, source: str, now: datetime | None = None
) -> AccountDeletion:
    """An admin learnt (from a request or a report) that the account belongs to a minor: lock it at once
    (sessions, API keys and exports end) and anonymize it at the next job run, without the grace period
    and without mailing the account. The audit record names the account only by its pseudonym."""
    accounts.require_admin(admin)
    now = now or utcnow()
    user = session.get(User, user_id)
    if user is None:
        raise DeletionError("That account no longer exists.")
    if source not in MINOR_SOURCES:
        raise DeletionError("Say whether this comes from a request or a report.")
    if completed_deletion(session, user_id=user.id) is not None:
        raise DeletionError("This account has already been deleted.")
    if user.id == admin.id:
        raise DeletionError("You cannot flag your own account.")
    deletion = pending_deletion(session, user_id=user.id)
    if deletion is None:
        deletion = AccountDeletion(user_id=user.id, requested_at=now, purge_after=now)
    deletion.purge_after, deletion.reason = min(as_utc(deletion.purge_after), now), "minor"
    session.add(deletion)
    session.exec(update(ApiKey).where(col(ApiKey.user_id) == user.id, col(ApiKey.revoked_at).is_(None)).values(revoked_at=now))
    session.exec(delete(OutboxMail).where(col(OutboxMail.user_id) == user.id))  # nothing more goes to the account
    audit.record(session, action="account.minor_flagged", actor=admin, target_type="account",
                 target_id=personal_data.pseudonym(user.id), after={"source": source}, now=now)  # fmt: skip
    session.commit()
    accounts.revoke_sessions(session, user=user, now=now)
    exports.cancel_all(session, store=store, user_id=user.id)
    end_subscription(session, user_id=user.id, now=now, timeout=CANCEL_WHILE_WAITING_SECONDS)
    return deletion


@mail.renders("deletion_scheduled")
def _scheduled_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    """Nothing if the deletion was cancelled before this was sent (the cancellation mail follows)."""
    user = mail.recipient(session, queued)
    deletion = pending_deletion(session, user_id=user.id) if user else None
    if user is None or deletion is None:
        return None
    when = f"{as_utc(deletion.purge_after):%Y-%m-%d %H:%M} UTC"
    return mail.Message(
        to=user.email,
        subject="Your ClearBG account will be deleted",
        body=f"Hello {user.display_name},\n\nas you asked, your ClearBG account is locked and will be deleted on "
        f"{when}: your images, API keys and personal details are then erased for good (orders and credit records "
        f"are kept for accounting, without your name or email).\n\nChanged your mind? Sign in before {when} at "
        f"{get_settings().public_url.rstrip('/')}/login and choose to keep your account.\n",
    )


def cancel_deletion(session: Session, *, token: str, now: datetime | None = None) -> User:
    """Cancel a pending deletion with the token a successful sign-in handed out. The account works
    again; its API keys stay revoked (new ones can be created), since their secrets may have leaked
    with whatever prompted the deletion."""
    now = now or utcnow()
    try:
        payload = unsign(CANCEL_PURPOSE, token, now=now)
        deletion = session.get(AccountDeletion, uuid.UUID(payload["d"]))
    except InvalidToken as error:
        raise DeletionError(f"{error} Sign in again to cancel the deletion.") from None
    except (KeyError, ValueError, TypeError):
        raise DeletionError("This link is not valid. Sign in again to cancel the deletion.") from None
    if deletion is None or str(deletion.user_id) != payload.get("u") or deletion.cancelled_at or deletion.completed_at \
            or deletion.reason == "minor":  # a minor's account closed by the operator cannot be restored
        raise DeletionError("There is no pending deletion to cancel for this account.")
    deletion.cancelled_at = now
    session.add(deletion)
    user = session.get_one(User, deletion.user_id)
    audit.record(session, action="account.deletion_cancelled", actor=user, target_type="account", target_id=user.id, now=now)
    mail.enqueue(session, kind="deletion_cancelled", user_id=user.id, now=now)
    session.commit()
    return user


@mail.renders("deletion_cancelled")
def _cancelled_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    user = mail.recipient(session, queued)
    if user is None:
        return None
    return mail.Message(
        to=user.email,
        subject="Your ClearBG account will not be deleted",
        body=f"Hello {user.display_name},\n\nyou cancelled the deletion of your account; it works as before. "
        "Your API keys stay revoked: create new ones on your account page if you need them.\n",
    )


def _scrub(value: Any, needles: list[str]) -> Any:
    """`value` (JSON) with every string that contains one of `needles` replaced by "[erased]"."""
    if isinstance(value, dict):
        return {key: _scrub(item, needles) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, needles) for item in value]
    if isinstance(value, str) and any(needle.lower() in value.lower() for needle in needles):
        return ERASED
    return value


def _personal_values(session: Session, user: User) -> list[str]:
    """The strings that identify the person: email, name, Google addresses, network prefixes."""
    values = {user.email, user.display_name}
    for model in (AuthSession, RequestLog):
        values.update(session.exec(select(model.ip_prefix).where(model.user_id == user.id)).all())
    values.update(session.exec(select(OAuthIdentity.email).where(OAuthIdentity.user_id == user.id)).all())
    return sorted(value for value in values if value and len(value) >= 3)


def anonymize(session: Session, *, store: BlobStore, deletion: AccountDeletion, now: datetime) -> dict[str, int]:
    """Erase the person as the registry says. Blobs go first (deleting one twice is harmless); every row
    change then commits in one transaction with the audit record and `completed_at`, so a run that dies
    half-way changes no row and the next run does it all again."""
    user = session.get_one(User, deletion.user_id)
    entries = sorted(personal_data.entries(), key=lambda entry: entry.model is User)  # the account row last
    addresses = [user.email, *session.exec(select(OAuthIdentity.email).where(OAuthIdentity.user_id == user.id)).all()]
    outbox_files = mail.erase_outbox(addresses=addresses)  # files first, like blobs: erasing one twice is harmless
    blobs = 0
    for entry in entries:
        for row in session.exec(select(entry.model).where(entry.where(user))).all() if entry.blobs else ():
            for column in entry.blobs:
                if key := getattr(row, column):
                    blobs += store.delete(key)
    alias = personal_data.pseudonym(user.id)
    needles = _personal_values(session, user)
    counts = {"rows_deleted": 0, "rows_erased": 0, "blobs_deleted": blobs, "outbox_files_deleted": outbox_files}
    for entry in entries:
        for row in session.exec(select(entry.model).where(entry.where(user))).all():
            if entry.on_erasure == "delete":
                session.delete(row)
                counts["rows_deleted"] += 1
                continue
            if entry.on_erasure == "keep":
                continue
            for column in (*entry.personal, *entry.withheld):
                value = getattr(row, column)
                erased = _scrub(value, needles) if entry.on_erasure == "scrub" else entry.erased_value(column, alias)
                setattr(row, column, erased)
            if entry.on_erasure == "detach":
                setattr(row, entry.owner, None)
            session.add(row)
            counts["rows_erased"] += 1
    deletion.completed_at = now
    session.add(deletion)
    audit.record(session, action="account.anonymized", actor=None, target_type="account", target_id=alias, after=dict(counts), now=now)
    session.commit()
    return counts


def anonymize_due(session: Session, *, store: BlobStore, clock: Clock = utcnow) -> dict[str, int]:
    """Cancel the subscriptions that Stripe could not cancel with the deletion request, then anonymize
    every account whose grace period is over, but those under a legal hold (counted as `accounts_held`:
    they are anonymized by the first run after the hold ends); returns the summed counts."""
    now = clock()
    totals = {"accounts_anonymized": 0, "accounts_held": 0, "rows_deleted": 0, "rows_erased": 0, "blobs_deleted": 0,
              "outbox_files_deleted": 0, "subscriptions_cancelled": 0, "subscriptions_not_yet_cancelled": 0}  # fmt: skip
    for user_id in _subscriptions_left(session):
        totals["subscriptions_cancelled" if end_subscription(session, user_id=user_id, now=now) else "subscriptions_not_yet_cancelled"] += 1
    due = session.exec(
        select(AccountDeletion).where(
            col(AccountDeletion.purge_after) <= now,
            col(AccountDeletion.cancelled_at).is_(None),
            col(AccountDeletion.completed_at).is_(None),
        )
    ).all()
    held = set(session.exec(holds.held_user_ids(session, now=now)).all())
    for deletion in due:
        if deletion.user_id in held:
            totals["accounts_held"] += 1
            continue
        for key, value in anonymize(session, store=store, deletion=deletion, now=now).items():
            totals[key] += value
        totals["accounts_anonymized"] += 1
    return totals
