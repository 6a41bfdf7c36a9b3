"""`POST /api/v1.0/removebg`, compatible with remove.bg's: the image, its options and the key checked,
rate limited per key and per address, then the one paid removal (`removal.remove_paid_async`)."""

from __future__ import annotations

import asyncio
import base64
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearbg_app.api.deps import ApiDeps
from clearbg_app.api.errors import ApiError, as_api_error
from clearbg_app.api.v1.params import read_params
from clearbg_app.db import session_scope
from clearbg_app.http.removebg_params import removal_options
from clearbg_app.services import credits, removal
from clearbg_app.settings import get_settings


class RemoveBg:
    """The removal route, with the pool, the rate limiter and the URL policy of `deps`."""

    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps

    def routes(self) -> list[Route]:
        return [Route("/api/v1.0/removebg", self.removebg, methods=["POST"])]

    async def removebg(self, request: Request) -> Response:
        """POST /api/v1.0/removebg: the cut-out as a file, or as JSON when `Accept: application/json`."""
        started = time.perf_counter()
        rate: dict[str, str] = {}
        user = key = sized = None
        try:
            rate = (await self.deps.hit_ip(request)).headers()
            user, key = await self.deps.authenticate(request)
            await self.deps.refuse_early_if_busy(request)
            params, files = await read_params(request)
            data = await self.deps.image(params, files, "image")
            if data is None:
                raise ApiError(400, "missing_source", "No image given", "Send one of image_file, image_file_b64 or image_url.")
            options = removal_options(params, await self.deps.image(params, files, "bg_image"), models=self.deps.pool.available_models())
            sized = await asyncio.to_thread(self._size, user.id, data, options.size)
            decision = await self.deps.hit("key", str(key.id), get_settings().api_rate_limit_per_key, sized.megapixel_images)
            rate = decision.headers()
            if not decision.allowed:
                raise ApiError(429, "rate_limit_exceeded", "Rate limit exceeded", "This key used its megapixel images for this minute.", rate)
            if sized.megapixel_images > 1:
                await self.deps.hit_ip(request, sized.megapixel_images - 1)
            payer = removal.Payer(user_id=user.id, api_key_id=key.id)
            done = await removal.remove_paid_async(pool=self.deps.pool, payer=payer, data=data, options=options, sized=sized)
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
