"""The public list of subprocessors: added, edited and retired by admins (every change audited)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, or_, select

from clearbg_app.clock import utcnow
from clearbg_app.models import Subprocessor, User
from clearbg_app.services import audit
from clearbg_app.services.accounts import require_admin
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.policies import changed_fields
from clearbg_app.settings import Settings, get_settings

# What an entry's `used_for` may name: the feature it serves, and whether that feature is on with the
# configuration in force. An entry with no feature ("") is always in use.
FEATURES: dict[str, tuple[str, Callable[[Settings], bool]]] = {
    "google_sign_in": ("Google sign-in", lambda settings: settings.google_enabled),
    "payments": ("payments", lambda settings: settings.stripe_enabled),
    "smtp_mail": ("sending email through a mail server", lambda settings: bool(settings.smtp_host)),
}


def in_use(row: Subprocessor, settings: Settings | None = None) -> bool:
    """Whether this site uses the entry now: always, or while the feature it serves is configured."""
    feature = FEATURES.get(row.used_for)
    return feature is None or feature[1](settings or get_settings())


def use_note(row: Subprocessor, settings: Settings | None = None) -> str:
    """What /subprocessors says about it: "in use", or why not."""
    if row.used_for not in FEATURES:
        return "in use"
    label, enabled = FEATURES[row.used_for]
    return "in use" if enabled(settings or get_settings()) else f"not in use: {label} is off on this site"


class SubprocessorError(ServiceError):
    """A subprocessor entry that cannot be saved as it is."""


@dataclass(frozen=True)
class SubprocessorFields:
    """What an admin edits. `dpa_url` may be empty; when given it must be an http(s) address."""

    name: str
    purpose: str
    data_categories: str
    location: str
    transfer_safeguard: str = ""
    dpa_url: str = ""
    active_since: date | None = None
    used_for: str | None = None  # a FEATURES key, "" for always; None keeps the entry's own on edit

    def cleaned(self) -> SubprocessorFields:
        values: dict[str, Any] = {key: " ".join(str(value).split()) if isinstance(value, str) else value for key, value in asdict(self).items()}
        for key, label, limit in (("name", "a name", 120), ("purpose", "the purpose", 2000),
                                  ("data_categories", "the categories of data", 2000), ("location", "the location", 120)):  # fmt: skip
            if not values[key]:
                raise SubprocessorError(f"Give {label}.")
            if len(values[key]) > limit:
                raise SubprocessorError(f"Keep {label} under {limit} characters.")
        if len(values["transfer_safeguard"]) > 200:
            raise SubprocessorError("Keep the transfer safeguard under 200 characters.")
        if values["used_for"] not in (None, "", *FEATURES):
            raise SubprocessorError("Choose the feature this subprocessor serves, or none.")
        url = values["dpa_url"]
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 500:
                raise SubprocessorError("The DPA link must be an http:// or https:// address (or empty).")
        return SubprocessorFields(**values)


def _values(row: Subprocessor) -> dict:
    return {
        "name": row.name, "purpose": row.purpose, "data_categories": row.data_categories, "location": row.location,
        "transfer_safeguard": row.transfer_safeguard, "dpa_url": row.dpa_url,
        "active_since": row.active_since.isoformat(), "active_until": row.active_until.isoformat() if row.active_until else None,
        "placeholder": row.placeholder, "used_for": row.used_for,
    }  # fmt: skip


def active(session: Session, *, today: date) -> list[Subprocessor]:
    """In service on `today`: started, and not retired (or retired later)."""
    query = select(Subprocessor).where(
        col(Subprocessor.active_since) <= today,
        or_(col(Subprocessor.active_until).is_(None), col(Subprocessor.active_until) > today),
    )
    return list(session.exec(query.order_by(col(Subprocessor.name))).all())


def retired(session: Session, *, today: date) -> list[Subprocessor]:
    """No longer in service, most recently retired first (the public page lists them as changes)."""
    query = select(Subprocessor).where(col(Subprocessor.active_until).is_not(None), col(Subprocessor.active_until) <= today)
    return list(session.exec(query.order_by(col(Subprocessor.active_until).desc())).all())


def all_entries(session: Session) -> list[Subprocessor]:
    return list(session.exec(select(Subprocessor).order_by(col(Subprocessor.active_until).is_not(None), col(Subprocessor.name))).all())


def last_change(session: Session) -> datetime | None:
    """When the list last changed."""
    return session.exec(select(Subprocessor.updated_at).order_by(col(Subprocessor.updated_at).desc())).first()


def _get(session: Session, entry_id: uuid.UUID) -> Subprocessor:
    row = session.get(Subprocessor, entry_id)
    if row is None:
        raise NotFound("That subprocessor no longer exists.")
    return row


def add(session: Session, *, admin: User, fields: SubprocessorFields, now: datetime | None = None) -> Subprocessor:
    require_admin(admin)
    now = now or utcnow()
    fields = fields.cleaned()
    row = Subprocessor(**{**asdict(fields), "active_since": fields.active_since or now.date(), "used_for": fields.used_for or ""},
                       created_at=now, updated_at=now)  # fmt: skip
    session.add(row)
    session.flush()
    audit.record(session, action="subprocessor.added", actor=admin, target_type="subprocessor", target_id=row.id,
                 after=_values(row), now=now)  # fmt: skip
    session.commit()
    return row


def edit(session: Session, *, admin: User, entry_id: uuid.UUID, fields: SubprocessorFields, now: datetime | None = None) -> Subprocessor:
    """Change an entry; saving it also confirms a placeholder as filled in."""
    require_admin(admin)
    now = now or utcnow()
    fields = fields.cleaned()
    row = _get(session, entry_id)
    before = _values(row)
    for key, value in asdict(fields).items():
        if value is not None:
            setattr(row, key, value)
    row.placeholder = False
    changed_before, changed_after = changed_fields(before, _values(row))
    if not changed_after:
        return row
    row.updated_at = now
    session.add(row)
    audit.record(session, action="subprocessor.edited", actor=admin, target_type="subprocessor", target_id=row.id,
                 before=changed_before, after=changed_after, now=now)  # fmt: skip
    session.commit()
    return row


def retire(session: Session, *, admin: User, entry_id: uuid.UUID, until: date | None = None, now: datetime | None = None) -> Subprocessor:
    """Stop using a subprocessor from `until` (today by default); the public page lists the change."""
    require_admin(admin)
    now = now or utcnow()
    row = _get(session, entry_id)
    if row.active_until is not None:
        raise SubprocessorError(f"{row.name} is already retired.")
    until = until or now.date()
    if until < row.active_since:
        raise SubprocessorError("A subprocessor cannot be retired before it started.")
    row.active_until, row.updated_at = until, now
    session.add(row)
    audit.record(session, action="subprocessor.retired", actor=admin, target_type="subprocessor", target_id=row.id,
                 before={"active_until": None}, after={"active_until": until.isoformat()}, now=now)  # fmt: skip
    session.commit()
    return row
