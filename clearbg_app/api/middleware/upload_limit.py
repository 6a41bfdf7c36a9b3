"""ASGI middleware refusing uploads to Reflex's `/_upload` that exceed the byte limit, before parsing."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from clearbg_app.api.body import BodyTooLarge, capped_receive, check_declared
from clearbg_app.settings import get_settings

MULTIPART_OVERHEAD = 64 * 1024


class UploadSizeLimitMiddleware:
    """413 for a declared Content-Length over the limit; a cut connection for a body that grows past it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/_upload"):
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_upload_bytes + MULTIPART_OVERHEAD
        try:
            check_declared(Headers(scope=scope), limit)
        except BodyTooLarge:
            message = f"The upload is over the {get_settings().max_upload_bytes / 1e6:g} MB limit."
            await PlainTextResponse(message, status_code=413)(scope, receive, send)
            return
        try:
            await self.app(scope, capped_receive(receive, limit), send)
        except BodyTooLarge:
            await PlainTextResponse("The upload is too large.", status_code=413)(scope, receive, send)
