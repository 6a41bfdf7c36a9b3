"""ASGI middleware refusing uploads to Reflex's `/_upload` that exceed the byte limit, before parsing."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearbg_app.settings import get_settings

MULTIPART_OVERHEAD = 64 * 1024


class UploadTooLarge(Exception):
    pass


class UploadSizeLimitMiddleware:
    """413 for a declared Content-Length over the limit; a cut connection for a body that grows past it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/_upload"):
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_upload_bytes + MULTIPART_OVERHEAD
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            message = f"The upload is over the {get_settings().max_upload_bytes / 1e6:g} MB limit."
            await PlainTextResponse(message, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise UploadTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except UploadTooLarge:
            await PlainTextResponse("The upload is too large.", status_code=413)(scope, receive, send)
