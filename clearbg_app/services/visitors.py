"""Browser identity: an opaque HttpOnly cookie; only its hash is ever stored."""

from __future__ import annotations

import hashlib
import secrets
from http.cookies import CookieError, SimpleCookie

VISITOR_COOKIE = "clearbg_visitor"
VISITOR_COOKIE_MAX_AGE = 30 * 24 * 3600


def new_visitor_token() -> str:
    """A fresh, unguessable cookie value."""
    return secrets.token_urlsafe(32)


def visitor_hash(token: str) -> str:
    """What the database stores for a visitor token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_token_from_cookie_header(header: str | None) -> str | None:
    """The visitor token in a `Cookie:` header, if present and well-formed."""
    if not header:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(VISITOR_COOKIE)
    token = morsel.value if morsel else ""
    return token if 20 <= len(token) <= 128 and token.replace("-", "").replace("_", "").isalnum() else None
