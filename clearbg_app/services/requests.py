"""Privacy requests by message, for people who cannot use self-service (no account, lost access, a
complaint). A request sent through /contact waits, unconfirmed, for the link mailed to its address (proof
of address); once confirmed it enters the admin queue, due 30 days later, tied to the account with that
address if there is one. Admins move it through its statuses, reply by email, and run the same export
and deletion services as self-service for the matched account. Every step is audited."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_
from sqlmodel import Session, col, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.models import DataExport, PrivacyRequest, PrivacyRequestReply, RequestStatus, User
from clearbg_app.services import accounts, audit, deletion, exports, mail, ratelimit
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.security import InvalidToken, sign, unsign
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobStore

KINDS: dict[str, str] = {
    "access": "A copy of my data (access)",
    "correction": "Correct my data",
    "deletion": "Delete my data",
    "restriction": "Restrict the processing of my data",
    "objection": "Object to the processing of my data",
    "marketing_withdrawal": "Stop product news (withdraw marketing consent)",
    "complaint": "A complaint",
    "other": "Something else",
}
STATUS_LABELS: dict[str, str] = {
    RequestStatus.UNCONFIRMED: "Not confirmed yet",
    RequestStatus.NEW: "New",
    RequestStatus.IN_PROGRESS: "In progress",
    RequestStatus.WAITING: "Waiting on the person",
    RequestStatus.DONE: "Done",
    RequestStatus.REFUSED: "Refused",
}
QUEUE_STATUSES = (RequestStatus.NEW, RequestStatus.IN_PROGRESS, RequestStatus.WAITING, RequestStatus.DONE, RequestStatus.REFUSED)
OPEN_STATUSES = (RequestStatus.NEW, RequestStatus.IN_PROGRESS, RequestStatus.WAITING)
CLOSED_STATUSES = (RequestStatus.DONE, RequestStatus.REFUSED)
DUE_AFTER = timedelta(days=30)
CONFIRM_WITHIN = timedelta(hours=24)  # unconfirmed requests are deleted after this
CONFIRM_PURPOSE = "privacy-request"
MAX_MESSAGE = 5000
MAX_REPLY = 10000
MAX_REFUSAL = 500


class RequestError(ServiceError):
    """The request (or the admin's action on it) cannot be accepted; the message says why."""


def _clean_text(raw: str, *, limit: int, what: str) -> str:
    """Printable text (line breaks and tabs allowed) of 1 to `limit` characters."""
    text = unicodedata.normalize("NFC", (raw or "").replace("\r\n", "\n")).strip()
    if not text:
        raise RequestError(f"Write the {what}.")
    if len(text) > limit:
        raise RequestError(f"The {what} is {len(text)} characters long; keep it under {limit}.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in "\n\t" for ch in text):
        raise RequestError(f"The {what} contains control or invisible characters; remove them.")
    return text


def _limit(*, ip: str | None, email: str) -> None:
    """An hourly budget per network and per address, like sign-ups: one network cannot flood the queue,
    many networks cannot flood one inbox."""
    settings = get_settings()
    refusal = ratelimit.network_and_address_refusal(
        "contact", ip=ip, email=email, per_network=settings.contact_per_network_per_hour,
        per_address=settings.contact_per_address_per_hour,
    )  # fmt: skip
    if refusal:
        raise RequestError(f"Too many requests {refusal}.")


def submit(session: Session, *, kind: str, email: str, message: str, ip: str | None, now: datetime | None = None) -> PrivacyRequest:
    """Accept a request from the contact form and mail the confirmation link to its address."""
    now = now or utcnow()
    if kind not in KINDS:
        raise RequestError("Choose what your request is about.")
    try:
        address = accounts.normalize_email(email)
    except accounts.AccountError as error:
        raise RequestError(str(error)) from None
    text = _clean_text(message, limit=MAX_MESSAGE, what="message")
    _limit(ip=ip, email=address)
    request = PrivacyRequest(kind=kind, email=address, message=text, created_at=now)
    session.add(request)
    session.flush()
    mail.enqueue(session, kind="privacy_request_confirm", to=address, params={"request_id": str(request.id)}, now=now)
    session.commit()
    return request


def _link(path: str, token: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}{path}?token={token}"


@mail.renders("privacy_request_confirm")
def _confirm_mail(session: Session, queued, now: datetime) -> mail.Message | None:
    request = session.get(PrivacyRequest, uuid.UUID(queued.params["request_id"]))
    if request is None or request.status != RequestStatus.UNCONFIRMED:
        return None
    token = sign(CONFIRM_PURPOSE, {"r": str(request.id)}, expires_at=as_utc(request.created_at) + CONFIRM_WITHIN)
    return mail.Message(
        to=request.email,
        subject="Confirm your request to ClearBG",
        body=f"Hello,\n\nsomeone (we hope you) sent ClearBG a request about \"{KINDS[request.kind]}\" from this address. "
        f"To make sure it is yours, confirm it within 24 hours:\n\n{_link('/contact/confirm', token)}\n\n"
        "Only then does it reach us. If you did not send it, ignore this mail: the request is deleted unconfirmed.\n",
    )


def confirm(session: Session, *, token: str, now: datetime | None = None) -> PrivacyRequest:
    """The link from the mail: the request enters the queue, due 30 days from now."""
    now = now or utcnow()
    try:
        payload = unsign(CONFIRM_PURPOSE, token, now=now)
        request = session.get(PrivacyRequest, uuid.UUID(str(payload["r"])))
    except InvalidToken as error:
        raise RequestError(str(error).replace("Ask for a new one.", "Send the form again.")) from None
    except (KeyError, ValueError, TypeError):
        raise RequestError("This link is not valid. Send the form again.") from None
    if request is None:
        raise RequestError("This request no longer exists. Send the form again.")
    if request.status != RequestStatus.UNCONFIRMED:
        return request  # the link clicked twice: already in the queue
    user = session.exec(select(User).where(User.email == request.email)).first()
    request.status, request.confirmed_at, request.due_at = RequestStatus.NEW, now, now + DUE_AFTER
    request.user_id = user.id if user else None
    session.add(request)
    audit.record(session, action="privacy_request.confirmed", actor=None, target_type="privacy_request", target_id=request.id,
                 after={"kind": request.kind, "account_matched": user is not None}, now=now)  # fmt: skip
    mail.enqueue(session, kind="privacy_request_received", to=request.email, params={"request_id": str(request.id)}, now=now)
    session.commit()
    return request


@mail.renders("privacy_request_received")
def _received_mail(session: Session, queued, now: datetime) -> mail.Message | None:
    request = session.get(PrivacyRequest, uuid.UUID(queued.params["request_id"]))
    if request is None or request.due_at is None:
        return None
    return mail.Message(
        to=request.email,
        subject="We received your request",
        body=f"Hello,\n\nthank you: your request about \"{KINDS[request.kind]}\" has reached us (reference "
        f"{str(request.id)[:8]}). We answer by {as_utc(request.due_at):%Y-%m-%d} at the latest, by email to this address.\n",
    )


# The admin queue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    request: PrivacyRequest
    overdue: bool
    account_email: str  # of the matched account, "" when none


def _is_overdue(request: PrivacyRequest, now: datetime) -> bool:
    return request.status in OPEN_STATUSES and request.due_at is not None and as_utc(request.due_at) < now


def queue(session: Session, *, admin: User, status: str = "open", now: datetime | None = None) -> list[QueueRow]:
    """Confirmed requests, soonest due first: the open ones (`status="open"`), one status, or "all"."""
    accounts.require_admin(admin)
    now = now or utcnow()
    query = select(PrivacyRequest, User.email).join(User, col(PrivacyRequest.user_id) == User.id, isouter=True)
    if status == "open":
        query = query.where(col(PrivacyRequest.status).in_(OPEN_STATUSES))
    elif status == "all":
        query = query.where(col(PrivacyRequest.status).in_(QUEUE_STATUSES))
    elif status in QUEUE_STATUSES:
        query = query.where(PrivacyRequest.status == status)
    else:
        raise RequestError("Unknown status filter.")
    rows = session.exec(query.order_by(col(PrivacyRequest.due_at), col(PrivacyRequest.id))).all()
    return [QueueRow(request, _is_overdue(request, now), email or "") for request, email in rows]


def overdue_count(session: Session, *, now: datetime) -> int:
    """Open requests past their due date (the dashboard highlights them)."""
    return session.exec(
        select(func.count()).where(col(PrivacyRequest.status).in_(OPEN_STATUSES), col(PrivacyRequest.due_at) < now)
    ).one()


def get(session: Session, *, admin: User, request_id: uuid.UUID) -> PrivacyRequest:
    accounts.require_admin(admin)
    request = session.get(PrivacyRequest, request_id, populate_existing=True)
    if request is None or request.status == RequestStatus.UNCONFIRMED:
        raise NotFound("There is no such request.")
    return request


def replies(session: Session, *, admin: User, request_id: uuid.UUID) -> list[PrivacyRequestReply]:
    accounts.require_admin(admin)
    return list(session.exec(select(PrivacyRequestReply).where(PrivacyRequestReply.request_id == request_id)
                             .order_by(col(PrivacyRequestReply.at))).all())  # fmt: skip


def set_status(
    session: Session, *, admin: User, request_id: uuid.UUID, status: str, reason: str = "", now: datetime | None = None
) -> PrivacyRequest:
    """Move a request on; refusing needs the reason (sent to the person with the reply)."""
    now = now or utcnow()
    request = get(session, admin=admin, request_id=request_id)
    if status not in QUEUE_STATUSES or status == RequestStatus.NEW:
        raise RequestError("Choose in progress, waiting on the person, done or refused.")
    reason = " ".join((reason or "").split())
    if status == RequestStatus.REFUSED and not reason:
        raise RequestError("Say why the request is refused (the person is told).")
    if len(reason) > MAX_REFUSAL:
        raise RequestError(f"Keep the reason under {MAX_REFUSAL} characters.")
    before = request.status
    request.status = status
    request.refusal_reason = reason if status == RequestStatus.REFUSED else ""
    request.closed_at = now if status in CLOSED_STATUSES else None
    session.add(request)
    audit.record(session, action="privacy_request.status", actor=admin, target_type="privacy_request", target_id=request.id,
                 before={"status": before}, after={"status": status, **({"reason": reason} if reason else {})}, now=now)  # fmt: skip
    session.commit()
    return request


def reply(session: Session, *, admin: User, request_id: uuid.UUID, body: str, now: datetime | None = None) -> PrivacyRequestReply:
    """Email the person from the queue (through the outbox); the reply is kept with the request."""
    now = now or utcnow()
    request = get(session, admin=admin, request_id=request_id)
    text = _clean_text(body, limit=MAX_REPLY, what="reply")
    answer = PrivacyRequestReply(request_id=request.id, at=now, body=text)
    session.add(answer)
    session.flush()
    mail.enqueue(session, kind="privacy_request_reply", to=request.email, params={"reply_id": str(answer.id)}, now=now)
    audit.record(session, action="privacy_request.replied", actor=admin, target_type="privacy_request", target_id=request.id,
                 after={"characters": len(text)}, now=now)  # fmt: skip
    session.commit()
    return answer


@mail.renders("privacy_request_reply")
def _reply_mail(session: Session, queued, now: datetime) -> mail.Message | None:
    answer = session.get(PrivacyRequestReply, uuid.UUID(queued.params["reply_id"]))
    request = session.get(PrivacyRequest, answer.request_id) if answer is not None else None
    if answer is None or request is None:
        return None
    refusal = f"\n\nWe cannot do what you asked: {request.refusal_reason}" if request.status == RequestStatus.REFUSED else ""
    return mail.Message(
        to=request.email,
        subject=f"Your request to ClearBG (reference {str(request.id)[:8]})",
        body=f"Hello,\n\n{answer.body}{refusal}\n",
    )


def _matched_user(session: Session, request: PrivacyRequest) -> User:
    user = session.get(User, request.user_id) if request.user_id else None
    if user is None:
        raise RequestError("No account has this request's address, so there is nothing to export or delete.")
    return user


def run_export(session: Session, *, admin: User, request_id: uuid.UUID, now: datetime | None = None) -> DataExport:
    """Start the self-service export for the matched account (its owner gets the same mail and link)."""
    now = now or utcnow()
    request = get(session, admin=admin, request_id=request_id)
    user = _matched_user(session, request)
    try:
        export = exports.request_export(session, user=user, now=now)
    except exports.ExportError as error:
        raise RequestError(str(error)) from None
    _work_started(session, admin=admin, request=request, work="export", work_id=export.id, now=now)
    return export


def run_deletion(session: Session, *, admin: User, request_id: uuid.UUID, store: BlobStore, now: datetime | None = None):
    """Schedule the self-service deletion for the matched account: the address was proven by the
    confirmation link, which stands in for the password (the grace period and its mail are the same)."""
    now = now or utcnow()
    request = get(session, admin=admin, request_id=request_id)
    user = _matched_user(session, request)
    try:
        scheduled = deletion.request_deletion(session, user=user, store=store, reauthenticated=True, now=now)
    except deletion.DeletionError as error:
        raise RequestError(str(error)) from None
    _work_started(session, admin=admin, request=request, work="deletion", work_id=scheduled.id, now=now)
    return scheduled


def _work_started(session: Session, *, admin: User, request: PrivacyRequest, work: str, work_id: uuid.UUID, now: datetime) -> None:
    """Audit the work (an export or a deletion) started for `request`, which is then in progress; commits."""
    audit.record(session, action=f"privacy_request.{work}_started", actor=admin, target_type="privacy_request",
                 target_id=request.id, after={work: str(work_id)}, now=now)  # fmt: skip
    if request.status == RequestStatus.NEW:
        request.status = RequestStatus.IN_PROGRESS
    session.add(request)
    session.commit()


def purge_old(session: Session, *, clock: Clock = utcnow) -> int:
    """Delete unconfirmed requests after a day and closed ones after the retention period (replies with
    them); returns how many requests went."""
    now = clock()
    kept_until = now - timedelta(days=get_settings().privacy_request_retention_days)
    old = select(PrivacyRequest.id).where(or_(
        (col(PrivacyRequest.status) == RequestStatus.UNCONFIRMED) & (col(PrivacyRequest.created_at) < now - CONFIRM_WITHIN),
        col(PrivacyRequest.status).in_(CLOSED_STATUSES) & (col(PrivacyRequest.closed_at) < kept_until),
    ))  # fmt: skip
    ids = list(session.exec(old).all())
    if ids:
        session.exec(delete(PrivacyRequestReply).where(col(PrivacyRequestReply.request_id).in_(ids)))
        session.exec(delete(PrivacyRequest).where(col(PrivacyRequest.id).in_(ids)))
    session.commit()
    return len(ids)
