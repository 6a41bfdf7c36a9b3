"""The web page's batch downloads, by session cookie: the ZIP of a batch through `/api/batches/{id}/result.zip`,
and each finished image through `/api/batches/{id}/items/{item}/result`, the signed-in user's own only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearbg_app.api.deps import signed_in_user
from clearbg_app.api.errors import ApiError, as_api_error
from clearbg_app.api.v1.batches import zip_response
from clearbg_app.db import session_scope
from clearbg_app.services import batches
from clearbg_app.storage import get_blob_store


def _owner_or_404(request: Request, session, what: str):
    signed_in = signed_in_user(request, session)
    if signed_in is None:
        raise ApiError(404, "not_found", "Not found", f"No such {what}, or it has expired.")
    return signed_in.user.id


async def _answer(respond: Callable[[], Response]) -> Response:
    """`respond()` off the event loop; domain errors in remove.bg's shape."""
    try:
        return await asyncio.to_thread(respond)
    except Exception as raised:  # noqa: BLE001 - domain errors become API errors; others propagate
        return as_api_error(raised).response()


async def page_result_zip(request: Request) -> Response:
    """The web page's download: the signed-in user's own batch, by session cookie."""

    def respond() -> Response:
        with session_scope() as session:
            user_id = _owner_or_404(request, session, "batch")
        return zip_response(user_id, request.path_params["batch_id"])

    return await _answer(respond)


MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".zip": "application/zip"}


async def page_item_result(request: Request) -> Response:
    """One finished image of the signed-in user's own batch: a thumbnail, or a download with ?download=1."""

    def respond() -> Response:
        with session_scope() as session:
            data, name = batches.item_result(
                session, store=get_blob_store(), batch_id=request.path_params["batch_id"],
                item_id=request.path_params["item_id"], user_id=_owner_or_404(request, session, "image"),
            )  # fmt: skip
        media_type = MEDIA_TYPES.get(name[name.rfind("."):].lower(), "application/octet-stream")
        headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
        if request.query_params.get("download"):
            ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)[-120:]
            headers["Content-Disposition"] = f'attachment; filename="{ascii_name or "image"}"'
        return Response(data, media_type=media_type, headers=headers)

    return await _answer(respond)


def page_batch_routes() -> list[Route]:
    return [
        Route("/api/batches/{batch_id}/result.zip", page_result_zip, methods=["GET"]),
        Route("/api/batches/{batch_id}/items/{item_id}/result", page_item_result, methods=["GET"]),
    ]
