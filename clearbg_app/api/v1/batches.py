"""Batch jobs in the public API: `POST /api/v1.0/batches` (202 and a Location), `GET .../{id}`,
`GET .../{id}/result.zip`, `DELETE .../{id}` (cancel what has not started), and the webhook signing
secret (the web page's own batch downloads are `api/web/batches.py`). Every route calls `clearbg_app.services.batches`."""

from __future__ import annotations

import asyncio
import uuid

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from clearbg_app.api.body import BodyTooLarge, capped
from clearbg_app.api.deps import ApiDeps
from clearbg_app.api.errors import ApiError, as_api_error
from clearbg_app.api.v1.params import FORM_TYPES, body_limit, decode_b64, json_object, json_text
from clearbg_app.db import session_scope
from clearbg_app.http.removebg_params import ParameterError, removal_options
from clearbg_app.services import batch_webhooks, batch_zip, batches
from clearbg_app.services.batches import Source
from clearbg_app.settings import get_settings
from clearbg_app.storage import get_blob_store

BASE = "/api/v1.0/batches"
SOURCE_FIELDS = ("image_file", "image_file_b64", "image_url")


def batch_body_limit() -> int:
    """Every image base64-encoded, plus a background image and the other fields."""
    return get_settings().batch_max_bytes * 4 // 3 + body_limit()


async def read_batch(request: Request) -> tuple[dict[str, str], dict[str, bytes], list[Source]]:
    """Options, other files (bg_image_file) and the images: repeated `image_file`, `image_file_b64`
    and `image_url` form fields, or JSON lists `image_urls` and `images_b64` (strings, or objects
    with `filename` and `data`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = batch_body_limit()
    most = get_settings().batch_max_items * 2 + 2  # room to count the items and answer too_many_items
    try:
        request = capped(request, limit)
        if content_type in FORM_TYPES:
            form = await request.form(max_files=most, max_fields=most + 40, max_part_size=limit)
            params: dict[str, str] = {}
            files: dict[str, bytes] = {}
            sources: list[Source] = []
            for name, value in form.multi_items():
                if name == "image_file" and isinstance(value, UploadFile):
                    sources.append(Source(value.filename or "", data=await value.read()))
                elif name == "image_file":
                    raise ParameterError(f"image_file #{len(sources) + 1} must be a file upload (with a filename).")
                elif name == "image_url" and isinstance(value, str):
                    sources.append(Source("", url=value.strip()))
                elif name == "image_file_b64" and isinstance(value, str):
                    sources.append(Source("", data=decode_b64(value, f"image_file_b64 #{len(sources) + 1}")))
                elif isinstance(value, UploadFile):
                    files[name] = await value.read()
                else:
                    params.setdefault(name, value)
            await form.close()
            return params, files, sources
        if content_type == "application/json":
            return _json_batch(json_object(await request.body()))
    except BodyTooLarge:
        raise ApiError(413, "file_too_large", "Batch too large", f"The request is over the {limit / 1e6:g} MB limit.") from None
    except (HTTPException, MultiPartException) as error:
        raise ParameterError(f"The form could not be read: {getattr(error, 'detail', None) or error}") from None
    raise ParameterError("Send the batch as multipart/form-data, application/x-www-form-urlencoded or application/json.")


def _json_batch(body: dict) -> tuple[dict[str, str], dict[str, bytes], list[Source]]:
    urls, encoded = body.pop("image_urls", None) or [], body.pop("images_b64", None) or []
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise ParameterError("image_urls must be a list of URLs.")
    if not isinstance(encoded, list):
        raise ParameterError("images_b64 must be a list of base64 strings or {filename, data} objects.")
    sources = []
    for n, entry in enumerate(encoded, start=1):
        filename, data = (entry.get("filename"), entry.get("data")) if isinstance(entry, dict) else ("", entry)
        if not isinstance(data, str) or not isinstance(filename or "", str):
            raise ParameterError(f"images_b64[{n}] must be a base64 string or a {{filename, data}} object.")
        sources.append(Source(filename or "", data=decode_b64(data, f"images_b64[{n}]")))
    sources += [Source("", url=url.strip()) for url in urls]
    if given := [name for name in SOURCE_FIELDS if name in body]:
        raise ParameterError(f"In JSON batches send images as image_urls or images_b64, not {', '.join(given)}.")
    return {key: json_text(key, value) for key, value in body.items() if value is not None}, {}, sources


def zip_response(user_id: uuid.UUID, batch_id: str, headers: dict[str, str] | None = None) -> Response:
    """result.zip of the user's batch, streamed; 404 for anyone else's, 409 before anything is done."""
    with session_scope() as session:
        batch = batches.owned_batch(session, batch_id=batch_id, user_id=user_id)
        chunks = batch_zip.zip_stream(session, store=get_blob_store(), batch=batch)
    if chunks is None:
        raise ApiError(409, "batch_not_ready", "Nothing finished yet", "No image of this batch is done yet; try again shortly.", {"Retry-After": "5"})
    disposition = f'attachment; filename="clearbg-batch-{batch.id.hex[:8]}.zip"'
    return StreamingResponse(chunks, media_type="application/zip", headers={**(headers or {}), "Content-Disposition": disposition, "Cache-Control": "no-store"})


class BatchApi:
    """The batch routes, sharing the removal route's key check, rate limiter and URL policy (`deps`)."""

    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps

    def routes(self) -> list[Route]:
        return [
            Route(BASE, self.create, methods=["POST"]),
            Route(BASE + "/{batch_id}", self.show, methods=["GET"]),
            Route(BASE + "/{batch_id}", self.cancel, methods=["DELETE"]),
            Route(BASE + "/{batch_id}/result.zip", self.result_zip, methods=["GET"]),
            Route("/api/v1.0/webhook_secret", self.webhook_secret, methods=["GET"]),
        ]

    async def _user(self, request: Request) -> tuple:
        rate = (await self.deps.hit_ip(request)).headers()
        user, key = await self.deps.authenticate(request)
        return user, key, rate

    async def create(self, request: Request) -> Response:
        """202 with the new batch and its Location; nothing is stored when anything is refused."""
        rate: dict[str, str] = {}
        try:
            user, key, rate = await self._user(request)
            params, files, sources = await read_batch(request)
            options = removal_options(params, await self.deps.image(params, files, "bg_image"), models=self.deps.pool.available_models())
            decision = await self.deps.hit("key", str(key.id), get_settings().api_rate_limit_per_key, max(1, len(sources)))
            rate = decision.headers()
            if not decision.allowed:
                raise ApiError(429, "rate_limit_exceeded", "Rate limit exceeded", "This key used its images for this minute.", rate)

            def create() -> dict:
                with session_scope() as session:
                    batch = batches.create_batch(
                        session, store=get_blob_store(), user_id=user.id, api_key_id=key.id, sources=sources,
                        options=options, webhook_url=params.get("webhook_url") or None, url_policy=self.deps.url_policy,
                    )  # fmt: skip
                    return batches.summary(session, batch=batch)

            view = await asyncio.to_thread(create)
        except Exception as raised:  # noqa: BLE001 - domain errors become API errors; others propagate
            return as_api_error(raised).response(rate)
        return JSONResponse({"data": view}, status_code=202, headers={**rate, "Location": f"{BASE}/{view['id']}", "Cache-Control": "no-store"})

    async def _owned(self, request: Request, act) -> Response:
        rate: dict[str, str] = {}
        try:
            user, _, rate = await self._user(request)
            return await asyncio.to_thread(act, user.id, request.path_params["batch_id"], rate)
        except Exception as raised:  # noqa: BLE001
            return as_api_error(raised).response(rate)

    async def show(self, request: Request) -> Response:
        """Per-item status, errors in remove.bg's shape, credits charged."""

        def show(user_id, batch_id, rate) -> Response:
            with session_scope() as session:
                batch = batches.owned_batch(session, batch_id=batch_id, user_id=user_id)
                return JSONResponse({"data": batches.summary(session, batch=batch)}, headers={**rate, "Cache-Control": "no-store"})

        return await self._owned(request, show)

    async def cancel(self, request: Request) -> Response:
        """Cancel the items not started yet; items being processed finish (and are charged)."""

        def cancel(user_id, batch_id, rate) -> Response:
            with session_scope() as session:
                batch = batches.owned_batch(session, batch_id=batch_id, user_id=user_id)
                batches.cancel(session, batch=batch)
                session.refresh(batch)
                return JSONResponse({"data": batches.summary(session, batch=batch)}, headers={**rate, "Cache-Control": "no-store"})

        return await self._owned(request, cancel)

    async def result_zip(self, request: Request) -> Response:
        return await self._owned(request, lambda user_id, batch_id, rate: zip_response(user_id, batch_id, rate))

    async def webhook_secret(self, request: Request) -> Response:
        """The account's webhook signing secret (also on the account page)."""
        rate: dict[str, str] = {}
        try:
            user, _, rate = await self._user(request)
        except ApiError as error:
            return error.response(rate)
        secret = await asyncio.to_thread(batch_webhooks.webhook_secret, user.id)
        return JSONResponse({"data": {"signing_secret": secret, "header": batch_webhooks.SIGNATURE_HEADER}}, headers={**rate, "Cache-Control": "no-store"})
