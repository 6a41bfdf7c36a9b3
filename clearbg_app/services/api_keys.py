"""API keys: shown once at creation, stored as SHA-256, revocable at once."""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.models import ApiKey, User
from clearbg_app.services.accounts import AccountError, refuse_suspended
from clearbg_app.services.deletion_lock import is_locked
from clearbg_app.services.errors import NotFound
from clearbg_app.services.security import sha256_hex

KEY_PREFIX = "cbg_live_"
MAX_LABEL = 80
MAX_ACTIVE_KEYS = 20
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_key(session: Session, *, user: User, label: str, now: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key for a verified account; returns the row and the secret, which is never shown again."""
    if not user.is_verified:
        raise AccountError("Confirm your email address before creating API keys.")
    label = " ".join((label or "").split())
    if not label or len(label) > MAX_LABEL:
        raise AccountError(f"Give the key a label of 1 to {MAX_LABEL} characters, e.g. 'Shop importer'.")
    if len(list_keys(session, user=user)) >= MAX_ACTIVE_KEYS:
        raise AccountError(f"You have {MAX_ACTIVE_KEYS} active keys; revoke one before creating another.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=user.id,
        label=label,
        prefix=secret[: len(KEY_PREFIX) + 6],
        secret_hash=sha256_hex(secret),
        created_at=now or utcnow(),
    )
    session.add(key)
    session.commit()
    return key, secret


def list_keys(session: Session, *, user: User) -> list[ApiKey]:
    """The user's active keys, newest first."""
    return list(
        session.exec(
            select(ApiKey)
            .where(ApiKey.user_id == user.id, col(ApiKey.revoked_at).is_(None))
            .order_by(col(ApiKey.created_at).desc())
        ).all()
    )


def revoke_key(session: Session, *, user: User, key_id: uuid.UUID, now: datetime | None = None) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != user.id or key.revoked_at is not None:
        raise NotFound("No such API key.")
    key.revoked_at = now or utcnow()
    session.add(key)
    session.commit()


def authenticate_key(session: Session, *, secret: str | None, now: datetime | None = None) -> tuple[User, ApiKey] | None:
    """The owner of a live key. The lookup is by SHA-256, so its timing says nothing about the secret.
    A suspended owner's key raises `AccountSuspended` (the API answers with that, not "invalid key")."""
    if not secret or not secret.startswith(KEY_PREFIX) or len(secret) > 128:
        return None
    digest = sha256_hex(secret)
    key = session.exec(select(ApiKey).where(ApiKey.secret_hash == digest)).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, digest):
        return None
    user = session.get(User, key.user_id)
    if user is None or is_locked(session, user_id=user.id):
        return None
    refuse_suspended(user)
    now = now or utcnow()
    if key.last_used_at is None or now - as_utc(key.last_used_at) >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.add(key)
        session.commit()
    return user, key
