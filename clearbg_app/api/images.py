"""Originals and cut-outs, served only to the browser that owns them."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clearbg_app.api.auth import signed_in_user
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import VISITOR_COOKIE, read_cookie
from clearbg_app.services import images
from clearbg_app.services.errors import NotFound
from clearbg_app.services.security import sha256_hex
from clearbg_app.storage import get_blob_store

PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _not_found() -> Response:
    return JSONResponse({"error": "No such image, or it has expired."}, status_code=404, headers=PRIVATE_HEADERS)


def _download_name(image, kind: str) -> str:
    """`photo.jpg`, `photo-no-bg.png`, or `photo-no-bg-preview.png` for a scaled-down preview."""
    stem = PurePath(image.original_filename).stem or "image"
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:80] or "image"
    if kind == "original":
        return f"{safe}{PurePath(image.original_filename).suffix[:6]}"
    scaled = kind == "result" and (image.result_width, image.result_height) != (image.width, image.height)
    return f"{safe}-no-bg-preview.png" if scaled else f"{safe}-no-bg.png"


async def image_blob(request: Request) -> Response:
    """GET /api/images/{image_id}/{kind}: `original`, `result` (preview) or `full`; `?download=1` saves
    instead of shows. Only the browser that uploaded it, or its signed-in uploader, gets it."""
    kind = request.path_params["kind"]
    visitor_token = read_cookie(request.headers.get("cookie"), VISITOR_COOKIE)
    try:
        image_id = uuid.UUID(request.path_params["image_id"])
    except ValueError:
        return _not_found()
    if kind not in ("original", "result", "full"):
        return _not_found()
    try:
        with session_scope() as session:
            signed_in = signed_in_user(request, session)
            image = images.owned_image(
                session,
                image_id=image_id,
                visitor_hash=sha256_hex(visitor_token) if visitor_token else None,
                user_id=signed_in.user.id if signed_in else None,
            )
        key = {"original": image.original_key, "result": image.result_key, "full": image.full_result_key}[kind]
        if key is None:
            return _not_found()
        data = images.read_blob(get_blob_store(), key)
    except NotFound:
        return _not_found()
    media_type = image.original_content_type if kind == "original" else "image/png"
    headers = dict(PRIVATE_HEADERS)
    if request.query_params.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{_download_name(image, kind)}"'
    return Response(data, media_type=media_type, headers=headers)
