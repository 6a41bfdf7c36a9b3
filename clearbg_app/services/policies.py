"""The privacy policy and the terms as versioned documents: drafts edited under a revision check,
publishing that freezes a version, the version in effect, notices of material changes (a banner
until acknowledged, and one service email per account), and safe Markdown rendering.

Effective dates: a version never takes effect retroactively. A draft may carry any date (or none);
publishing moves a date that is already past to the moment of publishing.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from functools import cache
from typing import Any

from markdown_it import MarkdownIt
from sqlalchemy import delete, exists, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.models import AccountDeletion, OutboxMail, PolicyAcknowledgement, PolicyNoticeEmail, PolicyStatus, PolicyVersion, User
from clearbg_app.models.policies import POLICY_KINDS
from clearbg_app.services import audit, mail
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.settings import get_settings

TITLES = {"privacy": "Privacy policy", "terms": "Terms of service"}
PATHS = {"privacy": "/privacy", "terms": "/terms"}
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
MAX_BODY = 200_000
MAX_SUMMARY = 500
STALE_MESSAGE = (
    "Someone else changed this draft since you opened it. Your changes were not saved: reload the draft, "
    "then make them again."
)


class PolicyError(ServiceError):
    """A policy draft that cannot be saved or published as asked."""


class StaleDraft(PolicyError):
    """The draft was saved by someone else after this editor loaded it."""

    def __init__(self) -> None:
        super().__init__(STALE_MESSAGE)


# Reading ---------------------------------------------------------------------------------------------


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise PermissionError("Admins only.")


def _check_kind(kind: str) -> str:
    if kind not in POLICY_KINDS:
        raise NotFound(f"There is no document called {kind!r}.")
    return kind


def _published(kind: str):
    return select(PolicyVersion).where(PolicyVersion.kind == kind, PolicyVersion.status == PolicyStatus.PUBLISHED)


def current_version(session: Session, *, kind: str, now: datetime) -> PolicyVersion | None:
    """The published `kind` version in effect at `now`."""
    query = _published(_check_kind(kind)).where(col(PolicyVersion.effective_at) <= now)
    return session.exec(
        query.order_by(col(PolicyVersion.effective_at).desc(), col(PolicyVersion.published_at).desc())
    ).first()


def current_label(session: Session, *, kind: str, now: datetime) -> str:
    """The label of the `kind` ("privacy" or "terms") version in effect at `now`."""
    version = current_version(session, kind=kind, now=now)
    if version is None:
        raise LookupError(f"No {kind} version is in effect; run the migrations.")
    return version.label


def published_versions(session: Session, *, kind: str) -> list[PolicyVersion]:
    """Every published version, newest effective date first (upcoming ones included)."""
    return list(session.exec(_published(_check_kind(kind)).order_by(col(PolicyVersion.effective_at).desc())).all())


def published_version(session: Session, *, kind: str, label: str) -> PolicyVersion:
    """One published version by its label (drafts are not public)."""
    version = session.exec(_published(_check_kind(kind)).where(PolicyVersion.label == label)).first()
    if version is None:
        raise NotFound(f"There is no published {TITLES[kind].lower()} version {label[:32]!r}.")
    return version


def all_versions(session: Session, *, kind: str) -> list[PolicyVersion]:
    """Drafts and published versions, for the admin page: drafts first, then newest first."""
    rows = session.exec(select(PolicyVersion).where(PolicyVersion.kind == _check_kind(kind))).all()
    return sorted(rows, key=lambda v: (v.is_published, -as_utc(v.effective_at).timestamp()))


def get_version(session: Session, *, version_id: uuid.UUID) -> PolicyVersion:
    version = session.get(PolicyVersion, version_id, populate_existing=True)
    if version is None:
        raise NotFound("That version no longer exists.")
    return version


# Editing (admins only) ---------------------------------------------------------------------------------


def _clean(
    session: Session, *, kind: str, label: str, body: str, summary: str, exclude: uuid.UUID | None = None
) -> tuple[str, str, str]:
    label, summary = (label or "").strip(), " ".join((summary or "").split())
    if not LABEL.fullmatch(label):
        raise PolicyError("Give the version a label of 1 to 32 letters, digits, dots, dashes or underscores, like 2 or 2027-01.")
    if not (body or "").strip():
        raise PolicyError("The document is empty: write its text before saving.")
    if len(body) > MAX_BODY:
        raise PolicyError(f"The document is longer than {MAX_BODY:,} characters.")
    if len(summary) > MAX_SUMMARY:
        raise PolicyError(f"Keep the summary of changes under {MAX_SUMMARY} characters.")
    taken = session.exec(
        select(PolicyVersion.id).where(PolicyVersion.kind == kind, PolicyVersion.label == label, PolicyVersion.id != exclude)
    ).first()
    if taken is not None:
        raise PolicyError(f"There is already a {TITLES[kind].lower()} version labelled {label}.")
    return label, body, summary


def _body_fingerprint(body: str) -> str:
    """What the audit log keeps of a body: its size and a hash, not the text."""
    return f"{len(body)} characters, sha256 {hashlib.sha256(body.encode()).hexdigest()[:12]}"


def _audit_values(*, label: str, summary: str, effective_at: datetime, material: bool, body: str) -> dict:
    return {
        "label": label,
        "summary": summary,
        "effective_at": as_utc(effective_at).isoformat(),
        "material": material,
        "body": _body_fingerprint(body),
    }


def _version_values(version: PolicyVersion) -> dict:
    return _audit_values(label=version.label, summary=version.summary, effective_at=version.effective_at,
                         material=version.material, body=version.body)  # fmt: skip


def changed_fields(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the fields whose values differ, before and after (for the audit log)."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def _commit(session: Session, kind: str, label: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise PolicyError(f"There is already a {TITLES[kind].lower()} version labelled {label}.") from None


def create_draft(
    session: Session, *, admin: User, kind: str, label: str, body: str, summary: str = "",
    effective_at: datetime | None = None, material: bool = False, now: datetime | None = None,
) -> PolicyVersion:  # fmt: skip
    """A new draft. Without an effective date it takes effect when published."""
    _require_admin(admin)
    now = now or utcnow()
    _check_kind(kind)
    label, body, summary = _clean(session, kind=kind, label=label, body=body, summary=summary)
    version = PolicyVersion(
        kind=kind, label=label, body=body, summary=summary, material=material, status=PolicyStatus.DRAFT,
        effective_at=effective_at or now, revision=1, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(version)
    session.flush()
    audit.record(session, action="policy.draft_created", actor=admin, target_type="policy_version", target_id=version.id,
                 after={"kind": kind, **_version_values(version)}, now=now)  # fmt: skip
    _commit(session, kind, label)
    return version


def _draft_for_change(session: Session, admin: User, version_id: uuid.UUID, revision: int) -> PolicyVersion:
    _require_admin(admin)
    version = get_version(session, version_id=version_id)
    if version.is_published:
        raise PolicyError(f"Version {version.label} is published, and published versions cannot change. Create a new draft.")
    if version.revision != revision:
        raise StaleDraft()
    return version


def _guarded_update(session: Session, version: PolicyVersion, revision: int, **values) -> None:
    """Write `values` only if nobody saved or published the draft since `revision` was read."""
    result = session.exec(
        update(PolicyVersion)
        .where(
            col(PolicyVersion.id) == version.id,
            col(PolicyVersion.revision) == revision,
            col(PolicyVersion.status) == PolicyStatus.DRAFT,
        )
        .values(revision=revision + 1, **values)
    )
    if result.rowcount != 1:
        session.rollback()
        raise StaleDraft()


def update_draft(
    session: Session, *, admin: User, version_id: uuid.UUID, revision: int, label: str, body: str, summary: str,
    effective_at: datetime | None, material: bool, now: datetime | None = None,
) -> PolicyVersion:  # fmt: skip
    """Save an edited draft. `revision` is the one the editor loaded: if the draft has been saved
    since, nothing is written and `StaleDraft` says so (the last write never silently wins)."""
    now = now or utcnow()
    version = _draft_for_change(session, admin, version_id, revision)
    label, body, summary = _clean(session, kind=version.kind, label=label, body=body, summary=summary, exclude=version.id)
    values: dict[str, Any] = {"label": label, "body": body, "summary": summary, "material": material, "effective_at": effective_at or now}
    changed_before, changed_after = changed_fields(_version_values(version), _audit_values(**values))
    _guarded_update(session, version, revision, updated_at=now, **values)
    audit.record(session, action="policy.draft_edited", actor=admin, target_type="policy_version", target_id=version.id,
                 before=changed_before, after=changed_after, now=now)  # fmt: skip
    _commit(session, version.kind, label)
    return get_version(session, version_id=version.id)


def publish(session: Session, *, admin: User, version_id: uuid.UUID, revision: int, now: datetime | None = None) -> PolicyVersion:
    """Freeze a draft as a published version. A past effective date becomes `now`."""
    now = now or utcnow()
    version = _draft_for_change(session, admin, version_id, revision)
    if not version.body.strip():
        raise PolicyError("The document is empty: write its text before publishing.")
    effective_at = max(as_utc(version.effective_at), now)
    _guarded_update(session, version, revision, status=PolicyStatus.PUBLISHED, effective_at=effective_at,
                    published_at=now, updated_at=now)  # fmt: skip
    audit.record(session, action="policy.published", actor=admin, target_type="policy_version", target_id=version.id,
                 before={"status": PolicyStatus.DRAFT},
                 after={"status": PolicyStatus.PUBLISHED, "kind": version.kind, "label": version.label,
                        "effective_at": effective_at.isoformat(), "material": version.material}, now=now)  # fmt: skip
    session.commit()
    return get_version(session, version_id=version.id)


def discard_draft(session: Session, *, admin: User, version_id: uuid.UUID, revision: int, now: datetime | None = None) -> None:
    """Delete a draft (published versions stay forever)."""
    now = now or utcnow()
    version = _draft_for_change(session, admin, version_id, revision)
    before = {"kind": version.kind, **_version_values(version)}
    result = session.exec(
        delete(PolicyVersion)
        .where(
            col(PolicyVersion.id) == version.id,
            col(PolicyVersion.revision) == revision,
            col(PolicyVersion.status) == PolicyStatus.DRAFT,
        )
        .execution_options(synchronize_session=False)  # the version is expunged below, as with a plain DELETE
    )
    if result.rowcount != 1:
        session.rollback()
        raise StaleDraft()
    session.expunge(version)
    audit.record(session, action="policy.draft_discarded", actor=admin, target_type="policy_version",
                 target_id=version_id, before=before, now=now)  # fmt: skip
    session.commit()


def next_label(session: Session, *, kind: str) -> str:
    """A suggestion for a new version's label: one more than the highest whole-number label."""
    labels = session.exec(select(PolicyVersion.label).where(PolicyVersion.kind == _check_kind(kind))).all()
    return str(max((int(label) for label in labels if label.isdigit()), default=0) + 1)


# Notices of material changes -----------------------------------------------------------------------------


def _material_in_effect(now: datetime):
    return select(PolicyVersion).where(
        PolicyVersion.status == PolicyStatus.PUBLISHED,
        col(PolicyVersion.material).is_(True),
        col(PolicyVersion.effective_at) <= now,
    )


def pending_notices(session: Session, *, user: User, now: datetime | None = None) -> list[PolicyVersion]:
    """Material versions in effect that took effect after the user signed up and that the user has
    not acknowledged: the banner shows these."""
    now = now or utcnow()
    acknowledged = exists().where(
        col(PolicyAcknowledgement.user_id) == user.id, col(PolicyAcknowledgement.version_id) == PolicyVersion.id
    )
    query = _material_in_effect(now).where(col(PolicyVersion.effective_at) > user.created_at, ~acknowledged)
    return list(session.exec(query.order_by(col(PolicyVersion.effective_at))).all())


def acknowledge(session: Session, *, user: User, version_id: uuid.UUID, now: datetime | None = None) -> None:
    """Record that the user has seen the notice of `version_id` (a second time changes nothing)."""
    now = now or utcnow()
    version = session.get(PolicyVersion, version_id)
    if version is None or not version.is_published:
        raise NotFound("That policy version does not exist.")
    done = session.exec(
        select(PolicyAcknowledgement).where(
            PolicyAcknowledgement.user_id == user.id, PolicyAcknowledgement.version_id == version_id
        )
    ).first()
    if done is None:
        session.add(PolicyAcknowledgement(user_id=user.id, version_id=version_id, acknowledged_at=now))
        try:
            session.commit()
        except IntegrityError:  # the same user acknowledged in another tab at the same moment
            session.rollback()


def _notice_body(user: User, version: PolicyVersion) -> str:
    base = get_settings().public_url.rstrip("/")
    title = TITLES[version.kind].lower()
    summary = f"\nWhat changed: {version.summary}\n" if version.summary else ""
    return (
        f"Hello {user.display_name},\n\n"
        f"we have made an important change to ClearBG's {title}. Version {version.label} is in effect since "
        f"{as_utc(version.effective_at):%d %B %Y}.\n{summary}\n"
        f"Read it: {base}{PATHS[version.kind]}\nEarlier versions: {base}{PATHS[version.kind]}/versions\n\n"
        "You receive this service message because you have a ClearBG account; it is sent whatever your "
        "email preferences are.\n"
    )


def notice_recipients(session: Session, *, version_id: uuid.UUID) -> int:
    """How many account holders a material version's email would go to if it took effect now (what the
    admin confirms before publishing)."""
    leaving = exists().where(col(AccountDeletion.user_id) == col(User.id), col(AccountDeletion.cancelled_at).is_(None))
    notified = exists().where(col(PolicyNoticeEmail.user_id) == col(User.id), col(PolicyNoticeEmail.version_id) == version_id)
    return session.exec(select(func.count()).select_from(User).where(~leaving, ~notified)).one()


def send_material_notices(session: Session, *, now: datetime | None = None, batch: int = 200) -> int:
    """Email every account that existed when a material version took effect (except those being
    deleted or anonymized), once per user and version: the notice row commits with the queued mail, so
    a rerun never queues twice (the outbox retries a failed send). Returns how many were queued."""
    now = now or utcnow()
    sent = 0
    for version in session.exec(_material_in_effect(now)).all():
        notified = exists().where(col(PolicyNoticeEmail.user_id) == User.id, col(PolicyNoticeEmail.version_id) == version.id)
        leaving = exists().where(col(AccountDeletion.user_id) == User.id, col(AccountDeletion.cancelled_at).is_(None))
        while True:
            users = session.exec(
                select(User).where(col(User.created_at) < version.effective_at, ~notified, ~leaving).order_by(col(User.created_at)).limit(batch)
            ).all()
            if not users:
                break
            for user in users:
                session.add(PolicyNoticeEmail(user_id=user.id, version_id=version.id, sent_at=now))
                mail.enqueue(session, kind="policy_notice", user_id=user.id, params={"version_id": str(version.id)}, now=now)
            session.commit()
            sent += len(users)
    return sent


@mail.renders("policy_notice")
def _notice_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    user, version = mail.recipient(session, queued), session.get(PolicyVersion, uuid.UUID(queued.params["version_id"]))
    if user is None or version is None:
        return None
    subject = f"An important change to ClearBG's {TITLES[version.kind].lower()}"
    return mail.Message(to=user.email, subject=subject, body=_notice_body(user, version))


# Safe Markdown ---------------------------------------------------------------------------------------------

SAFE_SCHEMES = ("http", "https", "mailto")


def safe_link(url: str) -> bool:
    """Relative links and http(s)/mailto only: `javascript:`, `data:`, `vbscript:` and the rest never
    become an href (browsers ignore whitespace and control characters inside a scheme, so do we)."""
    squeezed = "".join(ch for ch in url if ord(ch) > 0x20 and ord(ch) != 0x7F).lower()
    head, colon, _ = squeezed.partition(":")
    if not colon or any(ch in head for ch in "/?#"):
        return True  # a relative link: no scheme at all
    return head in SAFE_SCHEMES


class _SafeLinksMarkdown(MarkdownIt):
    """markdown-it whose link check is `safe_link`."""

    def validateLink(self, url: str) -> bool:
        return safe_link(url)


@cache
def _markdown() -> MarkdownIt:
    parser = _SafeLinksMarkdown("js-default", {"html": False, "linkify": False, "typographer": False})
    parser.disable("image")  # no remote images: they would report readers' visits elsewhere
    return parser


def placeholders() -> dict[str, str]:
    """What `{{name}}` in a policy body stands for: the operator and the limits as configured now, so the
    published text always matches this site (the terms' credits, allowance, expiry and rate limits)."""
    settings = get_settings()
    who = settings.operator()
    return {
        "operator_name": who["name"], "operator_address": who["address"], "operator_email": who["email"],
        "privacy_contact": who["privacy_contact"], "retention_minutes": str(settings.retention_minutes),
        "free_monthly_credits": f"{settings.free_monthly_credits.normalize():f}", "credit_expiry_days": str(settings.credit_expiry_days),
        "api_rate_limit_per_key": str(settings.api_rate_limit_per_key), "api_rate_limit_per_ip": str(settings.api_rate_limit_per_ip),
        "deletion_grace_days": str(settings.deletion_grace_days),
    }  # fmt: skip


def render_markdown(text: str) -> str:
    """HTML for a policy body, its `{{placeholders}}` filled in. Raw HTML in the Markdown is shown as
    text, never interpreted, and unsafe links stay plain text; the output is safe to insert into a page."""
    filled = re.sub(r"\{\{(\w+)\}\}", lambda match: placeholders().get(match.group(1), match.group(0)), text or "")
    return _markdown().render(filled)
