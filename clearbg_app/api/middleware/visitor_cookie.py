"""ASGI middleware giving every browser an HttpOnly visitor cookie on its first HTTP response."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearbg_app.http.cookies import VISITOR_COOKIE, VISITOR_COOKIE_MAX_AGE, read_cookie
from clearbg_app.services.security import new_token
from clearbg_app.settings import get_settings


def request_cookie_header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return value.decode("latin-1")
    return None


class VisitorCookieMiddleware:
    """Sets `clearbg_visitor` (HttpOnly, SameSite=Lax, Secure in production) when the request lacks it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or read_cookie(request_cookie_header(scope), VISITOR_COOKIE):
            await self.app(scope, receive, send)
            return
        cookie = (
            f"{VISITOR_COOKIE}={new_token()}; Path=/; Max-Age={VISITOR_COOKIE_MAX_AGE}; "
            "HttpOnly; SameSite=Lax" + ("; Secure" if get_settings().is_production else "")
        )

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
