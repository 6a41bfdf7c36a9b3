"""Who is on the other end of the websocket, resolved from the HttpOnly cookie."""

from __future__ import annotations

import reflex as rx

from clearbg_app.api.cookies import VISITOR_COOKIE, read_cookie
from clearbg_app.services.security import sha256_hex


class SessionState(rx.State):
    """Base for feature states that need the visitor's identity."""

    def _visitor_hash(self) -> str | None:
        """The hash of the browser's visitor cookie, or None when cookies are off."""
        token = read_cookie(self.router.headers.cookie, VISITOR_COOKIE)
        return sha256_hex(token) if token else None
