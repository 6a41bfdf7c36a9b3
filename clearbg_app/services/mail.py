"""Service email through an outbox. Requests and jobs only `enqueue` a row in their own transaction, so
no request waits for SMTP and a mail goes out exactly when the action it reports commits. A commit that
queued mail announces it to the task queue, whose `deliver_mail` task sends what is due with
`deliver_due` and looks again when a retry is due (SMTP failing); without SMTP configured, mail is written as `.eml` files to the data dir's outbox folder.

A row holds no link and no token: each kind's text is written at send time by the function its service
registers with `@renders(kind)`, which signs the links then, and may find there is nothing to send (a
reset asked for an address without an account). `deliver` is the one function that does the work."""

from __future__ import annotations

import html
import logging
import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import event, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, func, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.db import session_scope
from clearbg_app.models import OutboxMail, User
from clearbg_app.services.background import announce
from clearbg_app.settings import get_settings

log = logging.getLogger(__name__)

RETRY_AFTER = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6))
GIVE_UP_AFTER = timedelta(hours=24)  # then the mail is dropped (and logged): the outbox keeps nobody's data longer
SENDING_LEASE = timedelta(minutes=10)  # a mail whose sender died while sending is tried again after this
BATCH = 100
_QUEUED = "clearbg_mail_queued"


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str
    html: str | None = None  # an HTML alternative of `body` (product news), already made safe
    headers: tuple[tuple[str, str], ...] = ()  # e.g. List-Unsubscribe


SIGNATURE_SEPARATOR = "\n-- \n"


Renderer = Callable[[Session, OutboxMail, datetime], Message | None]
_renderers: dict[str, Renderer] = {}


def renders(kind: str) -> Callable[[Renderer], Renderer]:
    """Register the function that writes the mail of `kind` at send time (None: nothing to send)."""

    def register(renderer: Renderer) -> Renderer:
        _renderers[kind] = renderer
        return renderer

    return register


def recipient(session: Session, queued: OutboxMail) -> User | None:
    """The account a queued mail is about; None when it names none (a renderer then has nothing to send)."""
    return session.get(User, queued.user_id) if queued.user_id else None


def enqueue(
    session: Session,
    *,
    kind: str,
    user_id: uuid.UUID | None = None,
    to: str | None = None,
    params: dict | None = None,
    now: datetime | None = None,
) -> None:
    """Queue a mail about account `user_id` (or to the address `to`) in `session`'s transaction; the
    worker sends it once the caller commits. `params` hold what the text needs, never a secret."""
    if kind not in _renderers:
        raise ValueError(f"no renderer for mail kind {kind!r}")
    now = now or utcnow()
    session.add(OutboxMail(kind=kind, user_id=user_id, to_address=to, params=params or {}, created_at=now, next_attempt_at=now))
    session.info[_QUEUED] = True


@event.listens_for(OrmSession, "after_commit")
def _wake_worker(session: OrmSession) -> None:
    if session.info.pop(_QUEUED, False):
        announce("mail")


@event.listens_for(OrmSession, "after_rollback")
def _nothing_queued(session: OrmSession) -> None:
    session.info.pop(_QUEUED, None)


def deliver(session: Session, mail: OutboxMail, *, now: datetime) -> bool:
    """Write the mail of one outbox row and send it; False when there is nothing to send any more."""
    renderer = _renderers.get(mail.kind)
    if renderer is None:
        raise LookupError(f"no renderer for mail kind {mail.kind!r}")
    message = renderer(session, mail, now)
    if message is None:
        return False
    _send(message)
    return True


def deliver_due(*, clock: Clock = utcnow) -> tuple[int, int]:
    """Send every mail that is due, oldest first; returns (sent, failed). A mail that fails is tried
    again after 1 min, 5 min, 30 min, 2 h, then every 6 h, and dropped a day after it was queued."""
    sent = failed = 0
    while True:
        now = clock()
        with session_scope() as session:
            due = session.exec(
                select(OutboxMail.id).where(col(OutboxMail.next_attempt_at) <= now).order_by(col(OutboxMail.created_at)).limit(BATCH)
            ).all()
        if not due:
            return sent, failed
        for mail_id in due:
            with session_scope() as session:
                mail = _claim(session, mail_id, now)
                if mail is None:  # another worker has it
                    continue
                try:
                    sent += deliver(session, mail, now=now)
                except Exception as error:  # noqa: BLE001 - SMTP down, or anything else: try again later
                    session.rollback()
                    _retry_later(session, mail, error, now)
                    failed += 1
                    continue
                session.delete(mail)


def next_attempt_at() -> datetime | None:
    """When the earliest mail still in the outbox is due (None: it is empty)."""
    with session_scope() as session:
        return session.exec(select(func.min(OutboxMail.next_attempt_at))).one()


def _claim(session: Session, mail_id: uuid.UUID, now: datetime) -> OutboxMail | None:
    """Take a due mail for sending (its next attempt moves past the lease); None when another worker has."""
    claimed = session.exec(
        update(OutboxMail)
        .where(col(OutboxMail.id) == mail_id, col(OutboxMail.next_attempt_at) <= now)
        .values(next_attempt_at=now + SENDING_LEASE, attempts=col(OutboxMail.attempts) + 1)
    )
    session.commit()
    return session.get(OutboxMail, mail_id) if claimed.rowcount == 1 else None


def _retry_later(session: Session, mail: OutboxMail, error: Exception, now: datetime) -> None:
    reason = type(error).__name__
    transport = isinstance(error, OSError)  # smtplib's errors included; others are bugs: log their traceback
    if now - as_utc(mail.created_at) >= GIVE_UP_AFTER:
        log.error("mail %s (%s) dropped after %d attempts: %s", mail.id, mail.kind, mail.attempts, reason, exc_info=not transport)
        session.delete(mail)
        return
    mail.last_error = reason[:64]
    mail.next_attempt_at = now + RETRY_AFTER[min(mail.attempts, len(RETRY_AFTER)) - 1]
    session.add(mail)
    log.warning("mail %s (%s) not sent (attempt %d: %s); next try at %s", mail.id, mail.kind, mail.attempts, reason,
                f"{mail.next_attempt_at:%H:%M:%S}", exc_info=not transport)  # fmt: skip


def _send(message: Message) -> None:
    """SMTP when configured, otherwise an `.eml` file. Every mail ends with the operator's identity.
    Log lines name the subject only: bodies carry links."""
    settings = get_settings()
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Message-ID"] = make_msgid(domain="clearbg")
    for name, value in message.headers:
        email[name] = value
    signature = settings.operator_signature()
    email.set_content(message.body.rstrip("\n") + SIGNATURE_SEPARATOR + signature + "\n")
    if message.html is not None:
        email.add_alternative(f"{message.html}\n<hr>\n<p>{html.escape(signature)}</p>\n", subtype="html")
    if settings.smtp_host:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as smtp:
            if settings.smtp_starttls and smtp.has_extn("starttls"):
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(email)
        log.info("mail sent: %s", message.subject)
        return
    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    path = settings.outbox_dir / f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"  # sorts by time
    path.write_bytes(bytes(email))
    log.info("mail written to %s (no SMTP configured): %s", path, message.subject)


def erase_outbox(*, addresses: list[str]) -> int:
    """Delete the outbox files of mail to, or mentioning, any of `addresses` (account deletion)."""
    needles = [address.lower().encode() for address in addresses if address]
    erased = 0
    for path in sorted(get_settings().outbox_dir.glob("*.eml")) if needles else ():
        if any(needle in path.read_bytes().lower() for needle in needles):
            path.unlink(missing_ok=True)
            erased += 1
    return erased
