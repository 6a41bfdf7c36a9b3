"""The registry of personal data: every table and blob kind that holds it, what it is, how long it is
kept and what anonymization does to it. Export, deletion and retention all read this list, and a test
fails when a column that looks personal is in no entry, so none of them can forget a field.

One entry per table. `owner` is the column that ties a row to a person; `personal` the columns that
are personal data themselves; `withheld` credentials that are erased but never exported; `blobs` the
columns holding blob-store keys. `on_erasure` says what the anonymization job does to the rows:
"delete" them (blobs first), "detach" (keep the row, erase `personal` and clear `owner`), or
"pseudonymize" (keep the row for accounting, tied to the pseudonymized account, `personal` replaced),
"scrub" (keep the row, replace the person's email, name and IP wherever they occur in `personal`), or
"keep" (nothing personal is left in it once the other entries are erased).

Outside the database: `STORES` lists the other places where the app or Reflex keeps per-person data
(the page state of open browser tabs, the development mail outbox), and `STATE_VARS` which vars of
the Reflex states (`state/`) hold personal data. A test fails when a state var that looks personal is
in neither `STATE_VARS` nor its list of vars known to hold nothing personal, and when one looks secret.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, inspect as sa_inspect, or_
from sqlmodel import SQLModel, col, select

from clearbg_app.models import (
    AccountDeletion,
    AnalyticsEvent,
    ApiKey,
    ApiUsage,
    AuditEvent,
    AuthSession,
    Batch,
    BatchItem,
    ConsentEvent,
    CreditAccount,
    CreditLot,
    DataExport,
    LedgerEntry,
    LegalHold,
    LoginThrottle,
    OAuthIdentity,
    Order,
    OutboxMail,
    PolicyAcknowledgement,
    PolicyNoticeEmail,
    PrivacyRequest,
    PrivacyRequestReply,
    ProcessedImage,
    RequestLog,
    User,
)
from clearbg_app.services.security import sha256_hex
from clearbg_app.settings import Settings, get_settings
from clearbg_app.wording import plural

Erasure = Literal["delete", "detach", "pseudonymize", "scrub", "keep"]


def pseudonym(user_id: uuid.UUID) -> str:
    """An irreversible stand-in for a person: HMAC-SHA256 of the user id under the server's secret."""
    digest = hmac.new(get_settings().signing_key(), f"pseudonym:{user_id}".encode(), hashlib.sha256).hexdigest()
    return "deleted-" + digest[:24]


@dataclass(frozen=True)
class Entry:
    model: type[SQLModel]
    category: str
    retention: Callable[[Settings], str]
    on_erasure: Erasure
    owner: str = "user_id"
    # The rows about a person; by default those whose `owner` is their id.
    selects: Callable[[User], Any] | None = None
    personal: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    blobs: tuple[str, ...] = ()
    # What "detach"/"pseudonymize" writes into `personal` (and `withheld`): a value, or f(pseudonym).
    erased: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return self.mapped_table.name

    @property
    def exported_columns(self) -> list[str]:
        """Every column of the table but the withheld credentials: the export shows the whole row."""
        return [column.name for column in self.mapped_table.columns if column.name not in self.withheld]

    @property
    def mapped_table(self) -> Table:
        table = sa_inspect(self.model).local_table
        assert isinstance(table, Table)  # every registered model is a table=True SQLModel
        return table

    def where(self, user: User) -> Any:
        """The SQL condition picking this person's rows."""
        if self.selects is not None:
            return self.selects(user)
        return getattr(self.model, self.owner) == user.id

    def erased_value(self, column: str, alias: str) -> Any:
        value = self.erased.get(column, "")
        return value(alias) if callable(value) else value


def _fixed(text: str) -> Callable[[Settings], str]:
    return lambda settings: text


REGISTRY: tuple[Entry, ...] = (
    Entry(
        User,
        "Account and contact details",
        _fixed("while the account exists; anonymized after deletion"),
        "pseudonymize",
        owner="id",
        personal=("email", "display_name"),
        withheld=("password_hash",),
        erased={
            "email": lambda alias: f"{alias}@deleted.invalid",
            "display_name": "Deleted account",
            "password_hash": None,
        },
    ),
    Entry(
        OAuthIdentity,
        "Sign-in identities (Google)",
        _fixed("while linked to the account; erased on deletion"),
        "delete",
        personal=("subject", "email"),
    ),
    Entry(
        AuthSession,
        "Signed-in browsers (browser, network)",
        lambda s: f"{plural(s.session_days, 'day')} without activity, then {plural(s.request_log_ip_days, 'more day', 'more days')}; erased on deletion",
        "delete",
        personal=("user_agent", "ip_prefix"),
        withheld=("token_hash",),
    ),
    Entry(
        ApiKey,
        "API keys (label and prefix; the secret is never stored)",
        _fixed("until revoked; erased on deletion"),
        "delete",
        personal=("label",),
        withheld=("secret_hash",),
    ),
    Entry(
        ConsentEvent,
        "Consents and their history",
        _fixed("while the account exists; unlinked from the person on deletion"),
        "detach",
    ),
    Entry(
        AnalyticsEvent,
        "Product analytics (only with consent)",
        _fixed("until consent is withdrawn; unlinked on deletion"),
        "detach",
    ),
    Entry(
        ProcessedImage,
        "Uploaded images and results",
        lambda s: f"{plural(s.retention_minutes, 'minute')}, or {plural(s.history_retention_days, 'day')} with the processing-history consent",
        "delete",
        personal=("original_filename", "visitor_hash"),
        blobs=("original_key", "result_key", "full_result_key", "background_key"),
    ),
    Entry(
        BatchItem,
        "Batch images (file names, source URLs, results)",
        lambda s: f"{plural(s.batch_retention_hours, 'hour')} after the batch finishes",
        "delete",
        owner="batch_id",
        selects=lambda user: col(BatchItem.batch_id).in_(select(Batch.id).where(Batch.user_id == user.id)),
        personal=("filename", "source_url"),
        blobs=("source_key", "result_key"),
    ),
    Entry(
        Batch,
        "Batch jobs (options, webhook address)",
        lambda s: f"{plural(s.batch_retention_hours, 'hour')} after the batch finishes",
        "delete",
        personal=("webhook_url",),
        blobs=("background_key",),
    ),
    Entry(
        DataExport,
        "Data exports",
        lambda s: f"{plural(s.export_link_days, 'day')} after they are ready",
        "delete",
        blobs=("blob_key",),
    ),
    Entry(
        AccountDeletion,
        "Deletion requests",
        _fixed("kept without personal data as the record that the deletion was done"),
        "keep",
    ),
    Entry(
        RequestLog,
        "Request logs (security)",
        lambda s: f"IP prefix removed after {plural(s.request_log_ip_days, 'day')}, logs deleted after {plural(s.request_log_days, 'day')}",
        "detach",
        personal=("user_agent", "ip_prefix"),
    ),
    Entry(
        ApiUsage,
        "API usage",
        _fixed("kept for accounting of the credits spent, pseudonymized on deletion"),
        "pseudonymize",
    ),
    Entry(
        CreditAccount,
        "Credit balance and subscription",
        _fixed("kept for accounting, pseudonymized on deletion"),
        "pseudonymize",
    ),
    Entry(
        LedgerEntry,
        "Credit ledger",
        _fixed("kept for accounting (legal obligation), pseudonymized on deletion"),
        "pseudonymize",
    ),
    Entry(
        CreditLot,
        "Credit lots",
        _fixed("kept for accounting, pseudonymized on deletion"),
        "pseudonymize",
    ),
    Entry(
        Order,
        "Orders and payments",
        _fixed("kept for accounting (legal obligation), pseudonymized on deletion"),
        "pseudonymize",
        personal=("receipt_url",),
        erased={"receipt_url": None},
    ),
    Entry(
        LoginThrottle,
        "Failed sign-in counters (hashed email or network)",
        lambda s: f"{plural(s.login_lockout_minutes, 'minute')} after the last failure",
        "delete",
        selects=lambda user: LoginThrottle.key == "email:" + sha256_hex(user.email),
        personal=("key",),
    ),
    Entry(
        PolicyAcknowledgement,
        "Acknowledgements of policy changes",
        _fixed("while the account exists; erased on deletion"),
        "delete",
    ),
    Entry(
        OutboxMail,
        "Emails waiting to be sent (kind, address, what the text needs; never a link)",
        _fixed("until sent, usually seconds; mail that cannot be delivered is dropped after a day"),
        "delete",
        selects=lambda user: or_(col(OutboxMail.user_id) == user.id, col(OutboxMail.to_address) == user.email),
        personal=("to_address", "params"),
    ),
    Entry(
        PolicyNoticeEmail,
        "Policy-change emails sent",
        _fixed("while the account exists; erased on deletion"),
        "delete",
    ),
    Entry(
        PrivacyRequestReply,
        "Replies to your privacy requests",
        lambda s: f"{s.privacy_request_retention_days} days after the request is closed; erased on deletion",
        "delete",
        owner="request_id",
        selects=lambda user: col(PrivacyRequestReply.request_id).in_(
            select(PrivacyRequest.id).where(or_(col(PrivacyRequest.user_id) == user.id, col(PrivacyRequest.email) == user.email))
        ),
        personal=("body",),
    ),
    Entry(
        PrivacyRequest,
        "Privacy requests and messages sent through the contact form",
        lambda s: f"unconfirmed ones 1 day, the others {s.privacy_request_retention_days} days after they are closed "
        "(the record that we answered); on deletion the address and message are erased",
        "detach",
        selects=lambda user: or_(col(PrivacyRequest.user_id) == user.id, col(PrivacyRequest.email) == user.email),
        personal=("email", "message", "refusal_reason"),
        erased={"email": "", "message": "[erased]", "refusal_reason": ""},
    ),
    Entry(
        LegalHold,
        "Legal holds (data kept while the law requires it)",
        _fixed("while the hold is in force; the reason is erased when the account is anonymized after it"),
        "pseudonymize",
        personal=("reason",),
        erased={"reason": "[erased]"},
    ),
    Entry(
        AuditEvent,
        "Audit trail of privileged actions",
        _fixed("kept; the person's details in it are erased on deletion"),
        "scrub",
        owner="actor_id",
        selects=lambda user: or_(col(AuditEvent.actor_id) == user.id, col(AuditEvent.target_id) == str(user.id)),
        personal=("before", "after"),
    ),
)


def entries() -> tuple[Entry, ...]:
    return REGISTRY


@dataclass(frozen=True)
class Kept:
    """A category of personal data and how long it is kept, as the privacy center lists it."""

    category: str
    retention: str


def categories(settings: Settings | None = None) -> list[Kept]:
    """What the privacy center lists: each category (tables, then the other stores) and its retention
    rule as configured now."""
    settings = settings or get_settings()
    listed: tuple[Entry | Store, ...] = (*REGISTRY, *STORES)
    return [Kept(entry.category, entry.retention(settings)) for entry in listed]


@dataclass(frozen=True)
class Store:
    """A place outside the database where per-person data is kept, and how it is erased."""

    name: str
    category: str
    retention: Callable[[Settings], str]
    erasure: str


STORES: tuple[Store, ...] = (
    Store(
        "Reflex state",
        "Open pages (what a browser tab shows you, e.g. your email on the account page)",
        lambda s: f"in the server's memory (or Redis, with REFLEX_REDIS_URL), never on disk; dropped {s.state_expiry_minutes} "
        "minutes after the tab's last use, emptied when the tab signs out",
        "a tab's personal vars (STATE_VARS) are reset when it signs out or another account signs in; the rest expires "
        "long before the deletion grace period ends",
    ),
    Store(
        "Development outbox",
        "Service emails written to files (only where no mail server is configured)",
        _fixed("until the operator deletes them; erased with the account"),
        "files addressed to or mentioning the person's email addresses are deleted by the anonymization job",
    ),
)


@dataclass(frozen=True)
class StateVars:
    """The vars of one Reflex state class that hold personal data (its `personal` ones)."""

    state: str
    personal: tuple[str, ...]
    holds: str


STATE_VARS: tuple[StateVars, ...] = (
    StateVars("SessionState", ("form_email", "form_display_name", "form_new_email"),
              "a form's email and name, sent back after an error"),
    StateVars("AccountState", ("email", "display_name", "sessions", "keys", "usage"),
              "the account's email, name, signed-in browsers, API key labels and API calls"),
    StateVars("PrivacyState", ("consents", "consent_history", "deletion_losses"), "the person's consents and their history, their balance"),
    StateVars("HistoryState", ("items",), "file names of the kept images"),
    StateVars("BatchState", ("items", "recent"), "file names of the batch, the recent batches"),
    StateVars("CreditsState", ("entries", "orders"), "the credit ledger and orders"),
    StateVars("AdminState", ("users", "account", "ledger", "query", "dead_items"), "accounts an admin looked up, dead-lettered batch items (their file names)"),
    StateVars("AuditLogState", ("events",), "who did what, for admins"),
    StateVars("AdminRequestsState", ("rows", "current", "replies"), "privacy requests (address, message, replies), for admins"),
)  # fmt: skip


def state_vars(state: str) -> tuple[str, ...]:
    """The personal vars of the state class named `state` (none when it has no entry)."""
    return next((entry.personal for entry in STATE_VARS if entry.state == state), ())
