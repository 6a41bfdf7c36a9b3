"""Who is on the other end of the websocket, resolved from the HttpOnly cookie."""

from __future__ import annotations

import reflex as rx

from clearbg_app.services.visitors import visitor_hash, visitor_token_from_cookie_header


class SessionState(rx.State):
    """Base for feature states that need the visitor's identity."""

    def _visitor_hash(self) -> str | None:
        """The hash of the browser's visitor cookie, or None when cookies are off."""
        token = visitor_token_from_cookie_header(self.router.headers.cookie)
        return visitor_hash(token) if token else None
