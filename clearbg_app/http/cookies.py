"""The two HttpOnly cookies: `clearbg_visitor` (every browser) and `clearbg_session` (signed in).
Both hold opaque random tokens; the database only ever sees their SHA-256. And the short-lived
link-token cookies, scoped to the one route that uses them, which carry a password-reset or
deletion-cancel token from the redirect to the form post, so it never sits in a page's URL."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from starlette.requests import Request
from starlette.responses import Response

from clearbg_app.settings import get_settings

VISITOR_COOKIE = "clearbg_visitor"
VISITOR_COOKIE_MAX_AGE = 30 * 24 * 3600
SESSION_COOKIE = "clearbg_session"
# What the event socket leaves of those two cookies in Reflex's copy of the handshake: their SHA-256.
SESSION_REF = "clearbg_session_ref"
VISITOR_REF = "clearbg_visitor_ref"
RESET_COOKIE = ("clearbg_reset", "/auth/reset-password")
RESTORE_COOKIE = ("clearbg_restore", "/privacy/restore")


def _cookie_value(header: str | None, name: str) -> str:
    cookies = SimpleCookie()
    try:
        cookies.load(header or "")
    except CookieError:
        return ""
    morsel = cookies.get(name)
    return morsel.value if morsel else ""


def read_cookie(header: str | None, name: str) -> str | None:
    """A token-shaped cookie value from a `Cookie:` header (pages, events and downloads all send it)."""
    value = _cookie_value(header, name)
    return value if 20 <= len(value) <= 128 and value.replace("-", "").replace("_", "").isalnum() else None


def session_token(request: Request) -> str | None:
    return read_cookie(request.headers.get("cookie"), SESSION_COOKIE)


def cookie_attributes() -> dict:
    return {"path": "/", "httponly": True, "samesite": "lax", "secure": get_settings().is_production}


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=get_settings().session_days * 24 * 3600, **cookie_attributes())


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, **cookie_attributes())


def set_link_cookie(response: Response, cookie: tuple[str, str], token: str, *, minutes: int) -> None:
    name, path = cookie
    response.set_cookie(name, token, max_age=minutes * 60, **{**cookie_attributes(), "path": path})


def link_token(request: Request, cookie: tuple[str, str]) -> str:
    """The signed token a link cookie carries ("" if none)."""
    return _cookie_value(request.headers.get("cookie"), cookie[0])[:2048]


def clear_link_cookie(response: Response, cookie: tuple[str, str]) -> None:
    name, path = cookie
    response.delete_cookie(name, **{**cookie_attributes(), "path": path})


def client_ip(request: Request) -> str | None:
    """The peer address (a reverse proxy in front must be trusted through the server's own settings)."""
    return request.client.host if request.client else None
