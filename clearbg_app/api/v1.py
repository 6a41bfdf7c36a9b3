"""The public HTTP API, compatible with remove.bg's: `POST /api/v1.0/removebg` and `GET /api/v1.0/account`,
authenticated by `X-Api-Key`, rate limited per key and per IP, errors as `{"errors": [{title, code, detail}]}`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearbg_app.api.body import BodyTooLarge, capped
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import client_ip
from clearbg_app.http.removebg_params import ParameterError, removal_options, shown
from clearbg_app.inference import ImageDecodeError, ImageTooLarge, InferencePool, ServerBusy
from clearbg_app.models.billing import UNITS_PER_CREDIT
from clearbg_app.services import api_keys, credits, errors, removal
from clearbg_app.services.accounts import AccountSuspended
from clearbg_app.services.ratelimit import Decision, RateLimiter, default_limiter
from clearbg_app.services.url_fetch import AddressPolicy, Timeouts, fetch_image, public_only
from clearbg_app.settings import get_settings

SOURCES = ("image_file", "image_file_b64", "image_url")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass
class ApiError(Exception):
    """An answer in remove.bg's error shape; `code` is stable, `detail` is for people."""

    status: int
    code: str
    title: str
    detail: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def response(self, extra_headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"errors": [{"title": self.title, "code": self.code, "detail": self.detail or self.title}]}
        return JSONResponse(body, status_code=self.status, headers={**(extra_headers or {}), **self.headers})


def as_api_error(error: Exception) -> ApiError:
    """The answer for an error raised while serving a request: domain errors by the table in
    `services.errors`; anything else propagates (a bug)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ParameterError):
        return ApiError(400, "invalid_parameter", "Invalid parameter", str(error))
    if isinstance(error, ClientDisconnect):  # nobody reads this answer; the request log keeps its status
        return ApiError(400, "incomplete_request", "Incomplete request", "The connection closed before the whole request arrived.")
    if (found := errors.describe(error)) is None:
        raise error
    return ApiError(found.status, found.code, found.title, found.detail, found.headers)


def body_limit() -> int:
    """An image and a background image, base64-encoded, with room for the other fields."""
    return get_settings().max_upload_bytes * 3 + 64 * 1024


def too_large(limit: int) -> ApiError:
    return ApiError(413, "file_too_large", "File too large", f"The request is over the {limit / 1e6:g} MB limit.")


def json_object(raw: bytes) -> dict:
    """A JSON body that must be an object; `ParameterError` for anything else (bad syntax, nesting
    too deep for the parser, a number with thousands of digits)."""
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ParameterError("The body is not valid JSON (or is nested too deeply).") from None
    if not isinstance(body, dict):
        raise ParameterError("The JSON body must be an object.")
    return body


def json_text(name: str, value) -> str:
    """A JSON parameter as the text a form would carry; objects and lists are refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise ParameterError(f"{shown(name)} must be a string, number or boolean, not a JSON {type(value).__name__}.")
    return str(value)


async def read_params(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Text parameters and uploaded files, from multipart, urlencoded or JSON bodies."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = body_limit()
    try:
        request = capped(request, limit)
        if content_type in FORM_TYPES:
            form = await request.form(max_files=2, max_fields=40, max_part_size=limit)
            params = {key: value for key, value in form.items() if isinstance(value, str)}
            files = {key: await value.read() for key, value in form.items() if isinstance(value, UploadFile)}
            await form.close()
            return params, files
        if content_type == "application/json":
            body = json_object(await request.body())
            return {key: json_text(key, value) for key, value in body.items() if value is not None}, {}
    except BodyTooLarge:
        raise too_large(limit) from None
    except (HTTPException, MultiPartException) as error:  # a malformed form, or too many files or fields
        raise ParameterError(f"The form could not be read: {getattr(error, 'detail', None) or error}") from None
    raise ParameterError("Send the parameters as multipart/form-data, application/x-www-form-urlencoded or application/json.")


def decode_b64(text: str, name: str) -> bytes:
    """Standard base64, optionally as a data: URL (`data:image/png;base64,...`), whitespace ignored."""
    if text.startswith("data:"):
        _, comma, text = text.partition(",")
        if not comma:
            raise ParameterError(f"{name} is a data: URL without its data (data:image/png;base64,...).")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ParameterError(f"{name} is not valid base64.") from None


def credit_number(units: int) -> float | int:
    value = Decimal(units) / UNITS_PER_CREDIT
    return int(value) if value == value.to_integral_value() else float(value)


class PublicApi:
    """The routes, with the pool, the rate limiter and the URL address policy they use."""

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

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1.0/removebg", self.removebg, methods=["POST"]),
            Route("/api/v1.0/account", self.account, methods=["GET"]),
        ]

    async def _hit(self, scope: str, identity: str, per_minute: int, cost: int = 1) -> Decision:
        """A rate-limit hit off the event loop (Redis is a network call)."""
        return await asyncio.to_thread(self.limiter.hit, scope, identity, per_minute=per_minute, cost=cost)

    async def _hit_ip(self, request: Request, cost: int = 1) -> Decision:
        decision = await self._hit("ip", client_ip(request) or "unknown", get_settings().api_rate_limit_per_ip, cost)
        if not decision.allowed:
            raise ApiError(429, "rate_limit_exceeded", "Rate limit exceeded", "Too many requests from this address.", decision.headers())
        return decision

    async def _authenticate(self, request: Request):
        """The key's owner and key; records them on the request for the request log."""
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

    async def _fetch(self, url: str) -> bytes:
        settings = get_settings()
        timeouts = Timeouts(settings.url_fetch_connect_seconds, settings.url_fetch_read_seconds, settings.url_fetch_total_seconds)
        return await asyncio.to_thread(fetch_image, url, max_bytes=settings.max_upload_bytes, policy=self.url_policy, timeouts=timeouts)

    async def _image(self, params: dict[str, str], files: dict[str, bytes], prefix: str) -> bytes | None:
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
            data = await self._fetch(params[name].strip())
        if not data:
            raise ImageDecodeError(f"The {name} is empty.")
        if len(data) > get_settings().max_upload_bytes:
            raise ImageTooLarge(f"The {name} is over the {get_settings().max_upload_bytes / 1e6:g} MB limit.")
        return data

    async def _refuse_early_if_busy(self, request: Request) -> None:
        """A full pool answers 503 before the upload is parsed, decoded or sized. The body is still read
        (and dropped): answering while the client is sending would reset the connection and lose the answer."""
        try:
            self.pool.check_room()
        except ServerBusy:
            async for _ in request.stream():
                pass
            raise

    async def removebg(self, request: Request) -> Response:
        """POST /api/v1.0/removebg: the cut-out as a file, or as JSON when `Accept: application/json`."""
        started = time.perf_counter()
        rate: dict[str, str] = {}
        user = key = sized = None
        try:
            rate = (await self._hit_ip(request)).headers()
            user, key = await self._authenticate(request)
            await self._refuse_early_if_busy(request)
            params, files = await read_params(request)
            data = await self._image(params, files, "image")
            if data is None:
                raise ApiError(400, "missing_source", "No image given", "Send one of image_file, image_file_b64 or image_url.")
            options = removal_options(params, await self._image(params, files, "bg_image"), models=self.pool.available_models())
            sized = await asyncio.to_thread(self._size, user.id, data, options.size)
            decision = await self._hit("key", str(key.id), get_settings().api_rate_limit_per_key, sized.megapixel_images)
            rate = decision.headers()
            if not decision.allowed:
                raise ApiError(429, "rate_limit_exceeded", "Rate limit exceeded", "This key used its megapixel images for this minute.", rate)
            if sized.megapixel_images > 1:
                await self._hit_ip(request, sized.megapixel_images - 1)
            payer = removal.Payer(user_id=user.id, api_key_id=key.id)
            done = await removal.remove_paid_async(pool=self.pool, payer=payer, data=data, options=options, sized=sized)
        except Exception as raised:  # noqa: BLE001 - domain errors become API errors; others propagate
            error = as_api_error(raised)
            if user is not None:
                await asyncio.to_thread(self._record_failure, user.id, key.id, sized, error, started)
            return error.response(rate)
        return self._result(request, done, rate)

    @staticmethod
    def _size(user_id, data: bytes, size: str) -> removal.Sized:
        with session_scope() as session:
            return removal.size_for(session, user_id=user_id, data=data, size=size)

    @staticmethod
    def _record_failure(user_id, key_id, sized, error: ApiError, started: float) -> None:
        with session_scope() as session:
            removal.record_failure(session, user_id=user_id, api_key_id=key_id, sized=sized, status=error.status, code=error.code, started=started)

    @staticmethod
    def _result(request: Request, done: removal.Removal, rate: dict[str, str]) -> Response:
        left, top, width, height = done.foreground
        headers = {
            **rate,
            "X-Credits-Charged": credits.format_credits(done.units),
            "X-Width": str(done.rendered.size[0]),
            "X-Height": str(done.rendered.size[1]),
            "X-Type": done.subject_type,
            "X-Foreground-Top": str(top),
            "X-Foreground-Left": str(left),
            "X-Foreground-Width": str(width),
            "X-Foreground-Height": str(height),
            "Cache-Control": "no-store",
        }
        if "application/json" in request.headers.get("accept", ""):
            data = {
                "result_b64": base64.b64encode(done.rendered.content).decode(),
                "foreground_top": top,
                "foreground_left": left,
                "foreground_width": width,
                "foreground_height": height,
            }
            return JSONResponse({"data": data}, headers=headers)
        disposition = f'attachment; filename="no-bg.{done.rendered.extension}"'
        return Response(done.rendered.content, media_type=done.rendered.media_type, headers={**headers, "Content-Disposition": disposition})

    async def account(self, request: Request) -> Response:
        """GET /api/v1.0/account: the key owner's credits and free calls, in remove.bg's shape."""
        rate: dict[str, str] = {}
        try:
            rate = (await self._hit_ip(request)).headers()
            user, _ = await self._authenticate(request)
        except ApiError as error:
            return error.response(rate)

        def summary():
            with session_scope() as session:
                return removal.credit_summary(session, user_id=user.id)

        found = await asyncio.to_thread(summary)
        attributes = {
            "credits": {
                "total": credit_number(found.total),
                "subscription": credit_number(found.subscription),
                "payg": credit_number(found.payg),
                "enterprise": 0,
            },
            "api": {"free_calls": found.free_calls, "sizes": "all"},
        }
        return JSONResponse({"data": {"attributes": attributes}}, headers={**rate, "Cache-Control": "no-store"})
