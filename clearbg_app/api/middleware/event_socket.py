"""What Reflex gets to keep of its event socket's handshake. Reflex copies the handshake's headers and
the client's address into every tab's state (in memory, or pickled into Redis with several workers).
So before the handshake reaches it, the `Cookie` header is replaced by the SHA-256 of our two cookies
(what the database holds too; a hash cannot be replayed as a cookie), the User-Agent by its browser
family and major version, the client address by 0.0.0.0, and every other header is dropped: no tab's
state ever holds a session token, a full user agent or an IP address."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from clearbg_app.http.cookies import SESSION_COOKIE, SESSION_REF, VISITOR_COOKIE, VISITOR_REF, read_cookie
from clearbg_app.services.security import coarse_user_agent, sha256_hex

HANDSHAKE_HEADERS = {b"host", b"origin", b"upgrade", b"connection", b"sec-websocket-key", b"sec-websocket-version",
                     b"sec-websocket-extensions", b"sec-websocket-protocol"}  # fmt: skip


def scrubbed_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The handshake's headers as Reflex may keep them."""
    raw = {name: value.decode("latin-1") for name, value in headers}
    refs = [
        f"{ref}={sha256_hex(token)}"
        for ref, cookie in ((SESSION_REF, SESSION_COOKIE), (VISITOR_REF, VISITOR_COOKIE))
        if (token := read_cookie(raw.get(b"cookie"), cookie))
    ]
    kept = [(name, value) for name, value in headers if name in HANDSHAKE_HEADERS]
    kept.append((b"user-agent", coarse_user_agent(raw.get(b"user-agent")).encode()))
    if refs:
        kept.append((b"cookie", "; ".join(refs).encode()))
    return kept


class EventSocketScrub:
    """Rewrites every websocket handshake (the only websocket is Reflex's event socket)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "headers": scrubbed_headers(scope.get("headers") or []), "client": ("0.0.0.0", 0)}
        await self.app(scope, receive, send)
