"""The outermost ASGI layers around everything the app serves (Reflex's pages, its event socket and
upload endpoint, our routes): security headers on every response, and CORS for the public API.

Pages get a Content-Security-Policy that the Reflex frontend works under: scripts only from the
site and the inline scripts of the built pages (by hash), no framing, no plugins. Every other
response with another type gets `default-src 'none'`. The public API (`/api/v1.0/*`, key-authenticated, no cookies)
answers any origin without credentials, as remove.bg does; cookie-authenticated routes are left to
Reflex's CORS middleware, which rxconfig.py limits to the site's own origins."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

from reflex.config import get_config
from reflex.utils.prerequisites import get_web_dir
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearbg_app.settings import canonical_origin, get_settings

PUBLIC_API_PREFIXES = ("/api/v1.0/", "/api/openapi.json")
PUBLIC_API_EXPOSED = (
    "X-Credits-Charged, X-Width, X-Height, X-Type, X-Foreground-Top, X-Foreground-Left, X-Foreground-Width, "
    "X-Foreground-Height, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Location"
)
NOT_A_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def _static_dir() -> Path:
    return get_web_dir() / "build" / "client" / get_config().frontend_path.strip("/")


@functools.cache
def inline_script_hashes(static_dir: Path) -> tuple[str, ...]:
    """`'sha256-...'` of every inline script in the built pages (React Router's hydration data, the
    colour-mode and scroll-restoration snippets). The build is fixed while the server runs."""
    hashes = {
        hashlib.sha256(match.group(1)).digest()
        for page in sorted(static_dir.rglob("*.html"))
        for match in INLINE_SCRIPT.finditer(page.read_bytes())
    }
    return tuple(sorted(f"'sha256-{base64.b64encode(digest).decode()}'" for digest in hashes))


def _with_websocket(origin: str | None) -> list[str]:
    if origin is None:
        return []
    return [origin, origin.replace("http", "ws", 1)]


def page_policy() -> str:
    """The Content-Security-Policy of pages. Forms may also post to Google's and Stripe's sign-in and
    checkout pages, which the sign-in and purchase routes redirect to."""
    settings = get_settings()
    providers = [canonical_origin(url) for url in (settings.google_discovery_url, settings.stripe_api_base) if url]
    connect = ["'self'", *_with_websocket(canonical_origin(get_config().api_url or ""))]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *inline_script_hashes(_static_dir())],
        "style-src": ["'self'", "'unsafe-inline'"],  # Emotion and Radix set styles at run time
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": list(dict.fromkeys(connect)),
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'", "https:", *dict.fromkeys(origin for origin in providers if origin)],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def _is_public_api(scope: Scope) -> bool:
    return scope["path"].startswith(PUBLIC_API_PREFIXES)


class SecurityHeaders:
    """Framing, sniffing, referrer, resource and transport policies on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, self._with_headers(scope, send) if scope["type"] == "http" else send)

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        production = get_settings().is_production

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # A 304 has no type, and the browser keeps its headers for the cached page it revalidated.
                page = headers.get("content-type", "text/html").startswith("text/html")
                headers["Content-Security-Policy"] = page_policy() if page else NOT_A_PAGE_POLICY
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not _is_public_api(scope):
                    headers["Cross-Origin-Resource-Policy"] = "same-origin"
                if page:
                    headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if production:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        return send_with_headers


class PublicApiCors:
    """`Access-Control-Allow-Origin: *` and never credentials on the public API; its preflights are
    answered here. Everything else passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_public_api(scope):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in Headers(scope=scope):
            preflight = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, POST, DELETE",
                "Access-Control-Allow-Headers": "X-Api-Key, Content-Type, Accept",
                "Access-Control-Max-Age": "600",
            }
            await Response(status_code=204, headers=preflight)(scope, receive, send)
            return

        async def send_for_any_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name in [key for key in headers if key.startswith("access-control-")]:
                    del headers[name]
                headers["Access-Control-Allow-Origin"] = "*"
                headers["Access-Control-Expose-Headers"] = PUBLIC_API_EXPOSED
            await send(message)

        await self.app(scope, receive, send_for_any_origin)
