"""Which origins count as the site itself: CLEARBG_PUBLIC_URL's, those in CLEARBG_CORS_ORIGINS, and
the address the request was sent to (scheme, host and port all compared). Form posts and the
websocket handshake are accepted only from these; cookie-authenticated routes share their responses
only with them (Reflex's CORS middleware gets the same list in rxconfig.py)."""

from __future__ import annotations

from collections.abc import Mapping

from clearbg_app.settings import canonical_origin, get_settings


def own_origin(scheme: str, host: str | None) -> str | None:
    """The origin a request was addressed to: its scheme and its Host header."""
    return canonical_origin(f"{scheme}://{host}") if host else None


def is_site_origin(origin: str | None, *, scheme: str, host: str | None) -> bool:
    """Whether `origin` (an `Origin` header, or a `Referer` URL) is one of the site's own."""
    claimed = canonical_origin(origin or "")
    if claimed is None:
        return False
    return claimed in get_settings().site_origins or claimed == own_origin(scheme, host)


def websocket_origin_allowed(origin: str | None, environ: Mapping[str, str]) -> bool:
    """engine.io's `cors_allowed_origins` check for the Reflex event socket: only the site's origins."""
    scheme = {"wss": "https", "ws": "http"}.get(environ.get("wsgi.url_scheme", ""), environ.get("wsgi.url_scheme", "http"))
    return is_site_origin(origin, scheme=scheme, host=environ.get("HTTP_HOST"))
