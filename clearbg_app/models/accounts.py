"""Accounts: users, their sign-in identities, browser sessions, API keys, login throttling."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow


def timestamp(**kwargs):
    """A timezone-aware timestamp column."""
    return Field(sa_type=DateTime(timezone=True), **kwargs)


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(SQLModel, table=True):
    """A person with an account. `email` is stored normalised (lower-case domain and local part)."""

    __tablename__ = "user_account"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=80)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(default=Role.USER, max_length=16)
    email_verified_at: datetime | None = timestamp(default=None)
    adult_confirmed_at: datetime = timestamp()
    accepted_policy_version: str = Field(max_length=32)
    accepted_terms_version: str = Field(max_length=32)
    policy_accepted_at: datetime = timestamp()
    created_at: datetime = timestamp(default_factory=utcnow)
    locked_until: datetime | None = timestamp(default=None)
    suspended_at: datetime | None = timestamp(default=None)  # set by an admin: no sign-in, sessions or API keys

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None


class OAuthIdentity(SQLModel, table=True):
    """A third-party identity (Google's `sub`) linked to a user."""

    __tablename__ = "oauth_identity"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    provider: str = Field(max_length=32)
    subject: str = Field(max_length=255)
    email: str = Field(max_length=254)
    created_at: datetime = timestamp(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored here."""

    __tablename__ = "auth_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    created_at: datetime = timestamp(default_factory=utcnow)
    last_seen_at: datetime = timestamp(default_factory=utcnow)
    expires_at: datetime = timestamp()
    revoked_at: datetime | None = timestamp(default=None)
    user_agent: str = Field(default="", max_length=255)
    ip_prefix: str = Field(default="", max_length=64)


class ApiKey(SQLModel, table=True):
    """A key for the HTTP API. Only the SHA-256 of the secret is stored; `prefix` identifies it to people."""

    __tablename__ = "api_key"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    label: str = Field(max_length=80)
    prefix: str = Field(max_length=24)
    secret_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = timestamp(default_factory=utcnow)
    last_used_at: datetime | None = timestamp(default=None)
    revoked_at: datetime | None = timestamp(default=None)


class LoginThrottle(SQLModel, table=True):
    """Failed sign-ins per account or per network (`key` is a hash), for backoff and lockout."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    window_started_at: datetime = timestamp(default_factory=utcnow)
    locked_until: datetime | None = timestamp(default=None)
