"""Who is on the other end of the websocket, resolved once per event from the hashes of the HttpOnly
cookies that the handshake carried (`api/event_socket.py`: the state never holds a cookie itself)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.db import session_scope
from clearbg_app.http.cookies import SESSION_REF, VISITOR_REF, read_cookie
from clearbg_app.http.flash import read_flash
from clearbg_app.http.redirects import safe_next
from clearbg_app.models import User
from clearbg_app.services import accounts, personal_data


def _state_classes(root: type[rx.State]) -> list[type[rx.State]]:
    return [root, *(cls for sub in root.__subclasses__() for cls in _state_classes(sub))]


class SessionState(rx.State):
    """What the header needs to know of the signed-in user (flags, never their details), and the
    page's flash message. `_holder` is the account whose data this tab's states hold."""

    signed_in: bool = False
    is_admin: bool = False
    email_verified: bool = False
    flash_message: str = ""
    flash_kind: str = ""
    form_email: str = ""
    form_display_name: str = ""
    form_new_email: str = ""
    flash_form: str = ""  # the form the flash message answers ("" for the page): shown beside it
    session_ended: bool = False  # this tab was signed in and its session no longer is: the page signs out
    _holder: str = ""

    def _cookie_ref(self, name: str) -> str | None:
        return read_cookie(self.router.headers.cookie, name)

    def _visitor_hash(self) -> str | None:
        """The hash of the browser's visitor cookie, or None when cookies are off."""
        return self._cookie_ref(VISITOR_REF)

    def _current_session(self) -> accounts.SignedIn | None:
        """The live session, looked up on the server for every event that needs it. When this tab was
        signed in and still sends the cookie but the session is gone (the account was suspended or
        deleted, the session revoked or expired), the tab is signed out at once: the flags drop now
        and the page goes to the sign-in page (`session_ended`), which forgets the account's data."""
        token_hash = self._cookie_ref(SESSION_REF)
        with session_scope() as session:
            signed_in = accounts.resolve_session(session, token_hash=token_hash)
        if signed_in is None and self._holder and token_hash:
            self._publish(None)
            self.session_ended = True
        return signed_in

    def _current_user(self) -> User | None:
        signed_in = self._current_session()
        return signed_in.user if signed_in else None

    def _publish(self, user: User | None) -> None:
        self.signed_in = user is not None
        self.is_admin = bool(user and user.is_admin)
        self.email_verified = bool(user and user.is_verified)

    async def _forget_unless_held_by(self, user: User | None) -> None:
        """After a sign-out, or when another account signs in on this tab, reset every state that holds
        personal data (the registry's STATE_VARS), so the tab keeps nothing of the previous account."""
        holder = str(user.id) if user else ""
        if holder == self._holder:
            return
        for cls in _state_classes(SessionState):
            if cls is not SessionState and personal_data.state_vars(cls.__name__):
                (await self.get_state(cls)).reset()
        self._holder = holder

    @rx.event
    async def load_session(self) -> None:
        """on_load of every page: who is signed in, and the flash message the last redirect carried."""
        self.session_ended = False
        user = self._current_user()
        await self._forget_unless_held_by(user)
        if self.router.url.path.rstrip("/") == "/login":
            self.session_ended = False  # already where an ended session is sent
        self._publish(user)
        flash = read_flash(dict(self.router.url.query_parameters))
        self.flash_message, self.flash_kind = flash.get("msg", ""), flash.get("kind", "")
        fields = flash.get("fields", {})
        self.form_email = str(fields.get("email", ""))[:254]
        self.form_display_name = str(fields.get("display_name", ""))[:80]
        self.form_new_email = str(fields.get("new_email", ""))[:254]
        self.flash_form = str(fields.get("form", ""))[:40]

    @rx.var
    def signed_out_notice(self) -> str:
        """On the sign-in page after `session_ended`."""
        if self.router.url.query_parameters.get("ended") != "1":
            return ""
        return "You were signed out: your session ended, or the account was suspended or deleted."

    @rx.var
    def login_next(self) -> str:
        """Where the login form returns to (only local paths)."""
        return safe_next(self.router.url.query_parameters.get("next"), "/account")
