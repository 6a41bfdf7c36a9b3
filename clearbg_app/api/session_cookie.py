"""The sign-in cookie: HttpOnly, SameSite=Lax, Secure outside development; an opaque session token."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from starlette.requests import Request
from starlette.responses import Response

from clearbg_app.settings import get_settings

SESSION_COOKIE = "clearbg_session"


def session_token_from_cookie_header(header: str | None) -> str | None:
    """The session token in a `Cookie:` header (pages, events and downloads all send it)."""
    if not header:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(SESSION_COOKIE)
    return morsel.value if morsel and 20 <= len(morsel.value) <= 128 else None


def session_token(request: Request) -> str | None:
    return session_token_from_cookie_header(request.headers.get("cookie"))


def set_session_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_days * 24 * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.is_production,
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def client_ip(request: Request) -> str | None:
    """The peer address (a reverse proxy in front must be trusted through uvicorn/granian's own settings)."""
    return request.client.host if request.client else None
