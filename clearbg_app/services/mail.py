"""Service email: SMTP when configured, otherwise `.eml` files in the data dir's outbox."""

from __future__ import annotations

import logging
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

from clearbg_app.clock import utcnow
from clearbg_app.settings import get_settings

log = logging.getLogger(__name__)


def send_mail(*, to: str, subject: str, body: str) -> None:
    """Send a plain-text email. Log lines name the subject only: bodies carry one-time links."""
    settings = get_settings()
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="clearbg")
    message.set_content(body)
    if settings.smtp_host:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as smtp:
            if settings.smtp_starttls and smtp.has_extn("starttls"):
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
        log.info("mail sent: %s", subject)
        return
    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    path = settings.outbox_dir / f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"  # sorts by time
    path.write_bytes(bytes(message))
    log.info("mail written to %s (no SMTP configured): %s", path, subject)


def erase_outbox(*, addresses: list[str]) -> int:
    """Delete the outbox files of mail to, or mentioning, any of `addresses` (account deletion)."""
    needles = [address.lower().encode() for address in addresses if address]
    erased = 0
    for path in sorted(get_settings().outbox_dir.glob("*.eml")) if needles else ():
        if any(needle in path.read_bytes().lower() for needle in needles):
            path.unlink(missing_ok=True)
            erased += 1
    return erased
