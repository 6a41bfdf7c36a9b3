"""The account page: profile, sessions, API keys. Every event re-checks the session on the server.
A new key's secret never enters the state: the create event's reply writes it straight into the
page's read-only field (`rx.set_value`), once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import reflex as rx

from clearbg_app.db import session_scope
from clearbg_app.services import accounts, api_keys, batch_webhooks, credits, removal
from clearbg_app.services.errors import ServiceError
from clearbg_app.state.base import SessionState
from clearbg_app.state.display import when


@dataclass(frozen=True)
class SessionRow:
    """A signed-in browser of the account (coarse device and network only)."""

    id: str
    device: str
    network: str
    created: str
    last_seen: str
    current: str


@dataclass(frozen=True)
class KeyRow:
    """An API key as the account page lists it: its label and prefix, never the secret."""

    id: str
    label: str
    prefix: str
    created: str
    last_used: str


@dataclass(frozen=True)
class UsageRow:
    """One API call or batch item of the account."""

    at: str
    key: str
    size: str
    model: str
    credits: str
    latency: str
    status: str


NEW_KEY_FIELD = "new-key-secret"
WEBHOOK_SECRET_FIELD = "webhook-secret"
KEY_LABEL_FIELD = "key-label"


class AccountState(SessionState):
    email: str = ""
    display_name: str = ""
    sessions: list[SessionRow] = []
    keys: list[KeyRow] = []
    usage: list[UsageRow] = []
    key_shown: bool = False
    notice: str = ""
    notice_kind: str = ""
    notice_form: str = ""  # the section whose form the notice answers: "profile", "keys" or "sessions"

    def _say(self, message: str, kind: str = "error", *, form: str) -> None:
        """A message shown beside the form (`form`) that it answers."""
        self.notice, self.notice_kind, self.notice_form = message, kind, form

    @rx.event
    def show_webhook_secret(self):
        """The key that signs this account's batch webhooks (API batches with a webhook_url), written into
        the page's field by the reply, never kept in the state."""
        user = self._current_user()
        if user is None:
            return rx.redirect("/login?next=/account")
        return rx.set_value(WEBHOOK_SECRET_FIELD, batch_webhooks.webhook_secret(user.id))

    def _show_profile(self, user) -> None:
        self.email, self.display_name = user.email, user.display_name
        self._publish(user)

    def _refresh(self, signed_in: accounts.SignedIn) -> None:
        with session_scope() as session:
            self.sessions = [
                SessionRow(
                    id=str(item.id),
                    device=item.user_agent or "Unknown browser",  # stored coarse: "Firefox 128 on Windows"
                    network=item.ip_prefix or "unknown",
                    created=when(item.created_at, "never"),
                    last_seen=when(item.last_seen_at, "never"),
                    current="yes" if item.id == signed_in.auth_session.id else "",
                )
                for item in accounts.active_sessions(session, user=signed_in.user)
            ]
            self.keys = [
                KeyRow(
                    id=str(key.id),
                    label=key.label,
                    prefix=key.prefix + "…",
                    created=when(key.created_at, "never"),
                    last_used=when(key.last_used_at, "never"),
                )
                for key in api_keys.list_keys(session, user=signed_in.user)
            ]
            self.usage = [
                UsageRow(
                    at=when(row.at, "never"),
                    key=source,
                    size=f"{row.size} {row.width}x{row.height}" if row.width else (row.size or "-"),
                    model=row.model or "-",
                    credits=credits.format_credits(row.credits_units),
                    latency=f"{row.latency_ms} ms",
                    status=str(row.status) if row.status == 200 else f"{row.status} {row.error_code or ''}".strip(),
                )
                for row, source in removal.recent_usage(session, user_id=signed_in.user.id)
            ]
        self._show_profile(signed_in.user)

    @rx.event
    def load(self):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/account")
        self.key_shown, self.notice = False, ""
        self._refresh(signed_in)

    @rx.event
    def save_display_name(self, form: dict):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/account")
        try:
            with session_scope() as session:
                user = session.merge(signed_in.user)
                accounts.update_display_name(session, user=user, display_name=str(form.get("display_name", "")))
                self._show_profile(user)
        except ServiceError as error:
            self._say(str(error), form="profile")  # what was typed stays in the field
            return
        self._say("Your display name is saved.", "info", form="profile")

    @rx.event
    def create_key(self, form: dict):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/account")
        try:
            with session_scope() as session:
                _, secret = api_keys.create_key(session, user=signed_in.user, label=str(form.get("label", "")))
        except ServiceError as error:
            self._say(str(error), form="keys")  # the label typed stays in the field
            return
        self.key_shown = True
        self._say("Copy your new key now: it is shown only this once.", "info", form="keys")
        self._refresh(signed_in)
        return [rx.set_value(NEW_KEY_FIELD, secret), rx.set_value(KEY_LABEL_FIELD, "")]

    @rx.event
    def dismiss_secret(self):
        self.key_shown = False
        return rx.set_value(NEW_KEY_FIELD, "")

    @rx.event
    def revoke_key(self, key_id: str):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/account")
        try:
            with session_scope() as session:
                api_keys.revoke_key(session, user=signed_in.user, key_id=uuid.UUID(key_id))
        except (ServiceError, ValueError):
            self._say("That key was already revoked.", form="keys")
        else:
            self._say("The key is revoked; requests with it are refused from now on.", "info", form="keys")
        self._refresh(signed_in)

    @rx.event
    def revoke_session(self, session_id: str):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/account")
        try:
            target = uuid.UUID(session_id)
        except ValueError:
            return
        with session_scope() as session:
            accounts.revoke_sessions(session, user=signed_in.user, session_id=target)
        if target == signed_in.auth_session.id:
            return rx.redirect("/login", is_external=True)
        self._say("That browser is signed out.", "info", form="sessions")
        self._refresh(signed_in)

    @rx.event
    def revoke_other_sessions(self):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/account")
        with session_scope() as session:
            count = accounts.revoke_sessions(session, user=signed_in.user, keep_id=signed_in.auth_session.id)
        self._say(f"Signed out {count} other browser{'s' if count != 1 else ''}.", "info", form="sessions")
        self._refresh(signed_in)
