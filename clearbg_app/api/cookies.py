"""The two HttpOnly cookies: `clearbg_visitor` (every browser) and `clearbg_session` (signed in).
Both hold opaque random tokens; the database only ever sees their SHA-256."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from starlette.requests import Request
from starlette.responses import Response

from clearbg_app.settings import get_settings

VISITOR_COOKIE = "clearbg_visitor"
VISITOR_COOKIE_MAX_AGE = 30 * 24 * 3600
SESSION_COOKIE = "clearbg_session"


def read_cookie(header: str | None, name: str) -> str | None:
    """A token-shaped cookie value from a `Cookie:` header (pages, events and downloads all send it)."""
    if not header:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(name)
    value = morsel.value if morsel else ""
    return value if 20 <= len(value) <= 128 and value.replace("-", "").replace("_", "").isalnum() else None


def session_token(request: Request) -> str | None:
    return read_cookie(request.headers.get("cookie"), SESSION_COOKIE)


def cookie_attributes() -> dict:
    return {"path": "/", "httponly": True, "samesite": "lax", "secure": get_settings().is_production}


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=get_settings().session_days * 24 * 3600, **cookie_attributes())


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, **cookie_attributes())


def client_ip(request: Request) -> str | None:
    """The peer address (a reverse proxy in front must be trusted through the server's own settings)."""
    return request.client.host if request.client else None
