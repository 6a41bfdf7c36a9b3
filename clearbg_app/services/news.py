"""Product news: an admin writes it in Markdown (raw HTML and links other than http(s)/mailto are refused,
and the rendering escapes whatever is left), previews it, and sends it through the mail outbox to the
accounts that have the product-news consent at the moment each mail goes out. Every mail carries a
one-click unsubscribe (RFC 8058: `List-Unsubscribe` and `List-Unsubscribe-Post`): a signed link that
withdraws the consent without signing in, recorded as a consent event with source "email". The link is
tied to the grant it was sent under, so a replayed link (after the withdrawal, or a later re-grant)
changes nothing."""

from __future__ import annotations

import html
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from markdown_it import MarkdownIt
from sqlmodel import Session, col, select

from clearbg_app.clock import utcnow
from clearbg_app.models import ConsentEvent, OutboxMail, User
from clearbg_app.services import accounts, audit, consents, mail, privacy_choices
from clearbg_app.services.deletion_lock import is_locked
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.security import InvalidToken, sign, unsign
from clearbg_app.settings import get_settings

MAX_SUBJECT = 150
MAX_BODY = 20_000
SAFE_SCHEMES = ("http://", "https://", "mailto:")
UNSUBSCRIBE_PURPOSE = "news-unsubscribe"
UNSUBSCRIBE_VALID = timedelta(days=90)
UNSUBSCRIBE_PATH = "/news/unsubscribe"


class NewsError(ServiceError):
    """The news cannot be sent as written, or an unsubscribe link is not valid; the message says why."""


class _EveryLink(MarkdownIt):
    """A parser that keeps every link, so that `check` judges each one itself."""

    def validateLink(self, url: str) -> bool:  # noqa: N802 - markdown-it's name
        return True


_checker = _EveryLink("commonmark", {"html": True})  # sees raw HTML, to refuse it
_renderer = MarkdownIt("commonmark", {"html": False})  # raw HTML is escaped, unsafe links are not linked


def _walk(tokens):
    for token in tokens:
        yield token
        yield from _walk(token.children or [])


def check_subject(subject: str) -> str:
    if any(ch in (subject or "") for ch in "\r\n"):
        raise NewsError("The subject must be one line.")
    text = " ".join((subject or "").split())
    if not text:
        raise NewsError("Write a subject.")
    if len(text) > MAX_SUBJECT:
        raise NewsError(f"Keep the subject under {MAX_SUBJECT} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise NewsError("The subject contains control or invisible characters; remove them.")
    return text


def check_body(body: str) -> str:
    """The Markdown if it is safe to send: no raw HTML, links only to http(s) and mailto, no images."""
    text = (body or "").replace("\r\n", "\n").strip()
    if not text:
        raise NewsError("Write the news.")
    if len(text) > MAX_BODY:
        raise NewsError(f"The news is {len(text)} characters long; keep it under {MAX_BODY}.")
    if any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\n\t" for ch in text):
        raise NewsError("The news contains control or invisible characters; remove them.")
    for token in _walk(_checker.parse(text)):
        if token.type in ("html_block", "html_inline"):
            raise NewsError(f"Raw HTML is not allowed in news ({token.content.strip()[:40]!r}); write Markdown instead.")
        if token.type == "image":
            raise NewsError("Images are not allowed in news (they would track who opens it); link to a page instead.")
        if token.type == "link_open":
            href = str(token.attrGet("href") or "")
            if not href.strip().lower().startswith(SAFE_SCHEMES):
                raise NewsError(f"Links must start with https://, http:// or mailto:, not {href[:40]!r}.")
    return text


def render(body: str) -> str:
    """Safe HTML of checked Markdown (escaping anything raw, for defence in depth)."""
    return _renderer.render(check_body(body))


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    recipients: int


def _recipients(session: Session) -> list[User]:
    """Confirmed, active accounts with the product-news consent now."""
    users = session.exec(select(User).where(col(User.email_verified_at).is_not(None), col(User.suspended_at).is_(None))).all()
    return [user for user in users if _wants_news(session, user.id)]


def _wants_news(session: Session, user_id: uuid.UUID) -> bool:
    return consents.has_consent(session, user_id=user_id, purpose=consents.MARKETING_EMAIL) and not is_locked(session, user_id=user_id)


def preview(session: Session, *, admin: User, subject: str, body: str) -> Preview:
    accounts.require_admin(admin)
    return Preview(check_subject(subject), render(body), len(_recipients(session)))


def send(session: Session, *, admin: User, subject: str, body: str, now: datetime | None = None) -> int:
    """Queue the news for every account that consents now (each is checked again when its mail goes
    out); returns how many were queued."""
    accounts.require_admin(admin)
    now = now or utcnow()
    subject, body = check_subject(subject), check_body(body)
    recipients = _recipients(session)
    for user in recipients:
        mail.enqueue(session, kind="product_news", user_id=user.id, params={"subject": subject, "body": body}, now=now)
    audit.record(session, action="news.sent", actor=admin, target_type="news", target_id="",
                 after={"subject": subject, "recipients": len(recipients)}, now=now)  # fmt: skip
    session.commit()
    return len(recipients)


def _latest(session: Session, user_id: uuid.UUID) -> ConsentEvent | None:
    return session.exec(
        select(ConsentEvent)
        .where(ConsentEvent.user_id == user_id, ConsentEvent.purpose == consents.MARKETING_EMAIL)
        .order_by(col(ConsentEvent.at).desc(), col(ConsentEvent.id))
    ).first()


def unsubscribe_link(user_id: uuid.UUID, grant: ConsentEvent, *, now: datetime) -> str:
    token = sign(UNSUBSCRIBE_PURPOSE, {"u": str(user_id), "c": str(grant.id)}, expires_at=now + UNSUBSCRIBE_VALID)
    return f"{get_settings().public_url.rstrip('/')}{UNSUBSCRIBE_PATH}?token={token}"


@mail.renders("product_news")
def _news_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    """Nothing for someone who withdrew the consent (or whose account is locked) since it was queued."""
    user = mail.recipient(session, queued)
    if user is None or not _wants_news(session, user.id):
        return None
    grant = _latest(session, user.id)
    if grant is None:
        return None
    link = unsubscribe_link(user.id, grant, now=now)
    center = get_settings().public_url.rstrip("/") + "/privacy-center"
    body = queued.params["body"]
    return mail.Message(
        to=user.email,
        subject=queued.params["subject"],
        body=f"Hello {user.display_name},\n\n{body}\n\nYou get this because you asked for product news. "
        f"Stop it with one click: {link}\n(or in your privacy center: {center})\n",
        html=f"<p>Hello {html.escape(user.display_name)},</p>\n{render(body)}\n<p>You get this because you asked for "
        f'product news. <a href="{html.escape(link)}">Stop it with one click</a>.</p>',
        headers=(("List-Unsubscribe", f"<{link}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
    )


def unsubscribe(session: Session, *, token: str, now: datetime | None = None) -> User:
    """Withdraw the product-news consent from the mail's link, without signing in (source "email")."""
    now = now or utcnow()
    try:
        payload = unsign(UNSUBSCRIBE_PURPOSE, token, now=now)
        user = session.get(User, uuid.UUID(str(payload["u"])))
        grant_id = uuid.UUID(str(payload["c"]))
    except InvalidToken as error:
        raise NewsError(str(error).replace("Ask for a new one.", "Manage product news in your privacy center.")) from None
    except (KeyError, ValueError, TypeError):
        raise NewsError("This link is not valid. Manage product news in your privacy center.") from None
    latest = _latest(session, user.id) if user is not None else None
    if user is None or latest is None:
        raise NewsError("This link is not valid. Manage product news in your privacy center.")
    if latest.id != grant_id:
        if not latest.granted:
            raise NewsError("This link was already used: you no longer get product news.")
        raise NewsError("This link is out of date (you changed your choice since); manage product news in your privacy center.")
    privacy_choices.set_consent(session, user=user, purpose=consents.MARKETING_EMAIL, granted=False, source="email", now=now)
    return user
