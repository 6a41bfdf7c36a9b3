"""Who is on the other end of the websocket, resolved from the HttpOnly cookies once per event."""

from __future__ import annotations

import reflex as rx

from clearbg_app.api.auth import safe_next
from clearbg_app.api.cookies import SESSION_COOKIE, VISITOR_COOKIE, read_cookie
from clearbg_app.api.flash import read_flash
from clearbg_app.db import session_scope
from clearbg_app.models import User
from clearbg_app.services import accounts
from clearbg_app.services.security import sha256_hex


class SessionState(rx.State):
    """The signed-in user's public fields for the header, and the page's flash message."""

    signed_in: bool = False
    display_name: str = ""
    email: str = ""
    is_admin: bool = False
    email_verified: bool = False
    flash_message: str = ""
    flash_kind: str = ""
    form_email: str = ""
    form_display_name: str = ""

    def _visitor_hash(self) -> str | None:
        """The hash of the browser's visitor cookie, or None when cookies are off."""
        token = read_cookie(self.router.headers.cookie, VISITOR_COOKIE)
        return sha256_hex(token) if token else None

    def _current_user(self) -> User | None:
        """The live session's user, looked up on the server for every event that needs it."""
        token = read_cookie(self.router.headers.cookie, SESSION_COOKIE)
        with session_scope() as session:
            signed_in = accounts.resolve_session(session, token=token)
        return signed_in.user if signed_in else None

    def _current_session(self) -> accounts.SignedIn | None:
        with session_scope() as session:
            return accounts.resolve_session(session, token=read_cookie(self.router.headers.cookie, SESSION_COOKIE))

    def _publish(self, user: User | None) -> None:
        self.signed_in = user is not None
        self.display_name = user.display_name if user else ""
        self.email = user.email if user else ""
        self.is_admin = bool(user and user.is_admin)
        self.email_verified = bool(user and user.is_verified)

    @rx.event
    def load_session(self) -> None:
        """on_load of every page: who is signed in, and the flash message the last redirect carried."""
        self._publish(self._current_user())
        flash = read_flash(dict(self.router.url.query_parameters))
        self.flash_message, self.flash_kind = flash.get("msg", ""), flash.get("kind", "")
        fields = flash.get("fields", {})
        self.form_email = str(fields.get("email", ""))[:254]
        self.form_display_name = str(fields.get("display_name", ""))[:80]

    @rx.var
    def login_next(self) -> str:
        """Where the login form returns to (only local paths)."""
        return safe_next(self.router.url.query_parameters.get("next"), "/account")

    @rx.var
    def reset_token(self) -> str:
        """The token of a password-reset link, passed on by the reset form."""
        return self.router.url.query_parameters.get("token", "")[:512]
