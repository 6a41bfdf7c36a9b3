"""What the API's routes share: the pool, key authentication, rate-limit hits, the image sources of a
request (upload, base64 or URL, through the SSRF-safe fetcher) and the cookie user of the site's routes."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from clearbg_app.api.errors import ApiError
from clearbg_app.api.v1.params import decode_b64
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import client_ip, session_token
from clearbg_app.inference import ImageDecodeError, ImageTooLarge, InferencePool, ServerBusy
from clearbg_app.models import ApiKey, User
from clearbg_app.services import accounts, api_keys, removal
from clearbg_app.services.accounts import AccountSuspended
from clearbg_app.services.ratelimit import Decision, RateLimiter, default_limiter
from clearbg_app.services.url_fetch import AddressPolicy, Timeouts, fetch_image, public_only
from clearbg_app.settings import get_settings


def signed_in_user(request: Request, session) -> accounts.SignedIn | None:
    """The site's user behind the request's session cookie, if any (and not suspended or deleted)."""
    return accounts.resolve_session(session, token=session_token(request))


class ApiDeps:
    """The pool, the rate limiter and the URL address policy the API's routes use (tests pass their own)."""

    def __init__(
        self, *, pool: InferencePool | None = None, limiter: RateLimiter | None = None, url_policy: AddressPolicy = public_only
    ) -> None:
        self._pool, self._limiter, self.url_policy = pool, limiter, url_policy

    @property
    def pool(self) -> InferencePool:
        return self._pool or removal.default_pool()

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter or default_limiter()

    async def hit(self, scope: str, identity: str, per_minute: int, cost: int = 1) -> Decision:
        """A rate-limit hit off the event loop (Redis is a network call)."""
        return await asyncio.to_thread(self.limiter.hit, scope, identity, per_minute=per_minute, cost=cost)

    async def hit_ip(self, request: Request, cost: int = 1) -> Decision:
        """The caller's address's hit; 429 when its minute is used up."""
        decision = await self.hit("ip", client_ip(request) or "unknown", get_settings().api_rate_limit_per_ip, cost)
        if not decision.allowed:
            raise ApiError(429, "rate_limit_exceeded", "Rate limit exceeded", "Too many requests from this address.", decision.headers())
        return decision

    async def authenticate(self, request: Request) -> tuple[User, ApiKey]:
        """The key's owner and key (403 without a live key); records them on the request for the request log."""

        def lookup():
            with session_scope() as session:
                return api_keys.authenticate_key(session, secret=request.headers.get("x-api-key"))

        try:
            found = await asyncio.to_thread(lookup)
        except AccountSuspended as suspended:
            raise ApiError(403, "account_suspended", "Account suspended", str(suspended)) from None
        if found is None:
            missing = not request.headers.get("x-api-key")
            raise ApiError(403, "auth_failed", "Missing API key" if missing else "Invalid API key",
                           "Send a live key in the X-Api-Key header; create one on your account page.")  # fmt: skip
        user, key = found
        state = request.scope.setdefault("state", {})
        state["clearbg_user_id"], state["clearbg_api_key_id"] = user.id, key.id
        return user, key

    async def fetch(self, url: str) -> bytes:
        settings = get_settings()
        timeouts = Timeouts(settings.url_fetch_connect_seconds, settings.url_fetch_read_seconds, settings.url_fetch_total_seconds)
        return await asyncio.to_thread(fetch_image, url, max_bytes=settings.max_upload_bytes, policy=self.url_policy, timeouts=timeouts)

    async def image(self, params: dict[str, str], files: dict[str, bytes], prefix: str) -> bytes | None:
        """The image sent as `{prefix}_file`, `{prefix}_file_b64` or `{prefix}_url` (at most one)."""
        given = [name for name in (f"{prefix}_file", f"{prefix}_file_b64", f"{prefix}_url") if name in files or params.get(name)]
        if len(given) > 1:
            raise ApiError(400, "multiple_sources", "Multiple image sources", f"Send only one of {', '.join(given)}.")
        if not given:
            return None
        name = given[0]
        if name in files:
            data = files[name]
        elif name.endswith("_b64"):
            data = decode_b64(params[name], name)
        else:
            data = await self.fetch(params[name].strip())
        if not data:
            raise ImageDecodeError(f"The {name} is empty.")
        if len(data) > get_settings().max_upload_bytes:
            raise ImageTooLarge(f"The {name} is over the {get_settings().max_upload_bytes / 1e6:g} MB limit.")
        return data

    async def refuse_early_if_busy(self, request: Request) -> None:
        """A full pool answers 503 before the upload is parsed, decoded or sized. The body is still read
        (and dropped): answering while the client is sending would reset the connection and lose the answer."""
        try:
            self.pool.check_room()
        except ServerBusy:
            async for _ in request.stream():
                pass
            raise
