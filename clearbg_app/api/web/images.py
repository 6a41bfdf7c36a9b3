"""Originals and cut-outs, served only to the browser that owns them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import PurePath

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clearbg_app.api.deps import signed_in_user
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import VISITOR_COOKIE, read_cookie
from clearbg_app.http.removebg_params import ParameterError, colour, shadow, strength
from clearbg_app.inference import RenderOptions
from clearbg_app.services import image_edits, images
from clearbg_app.services.errors import NotFound
from clearbg_app.services.image_edits import EditedRender, EditRejected, FullResolutionMissing
from clearbg_app.services.security import sha256_hex
from clearbg_app.storage import StorageUnavailable, get_blob_store

PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _not_found() -> Response:
    return JSONResponse({"error": "No such image, or it has expired."}, status_code=404, headers=PRIVATE_HEADERS)


def _download_name(image, kind: str) -> str:
    """`photo.jpg`, `photo-no-bg.png`, or `photo-no-bg-preview.png` for a scaled-down preview."""
    safe = image_edits.download_stem(image)
    if kind == "original":
        return f"{safe}{PurePath(image.original_filename).suffix[:6]}"
    scaled = kind == "result" and (image.result_width, image.result_height) != (image.width, image.height)
    return f"{safe}-no-bg-preview.png" if scaled else f"{safe}-no-bg.png"


def _owned(request: Request, session, image_id: uuid.UUID):
    """The image if the requesting browser or signed-in person owns it (`NotFound` otherwise)."""
    visitor_token = read_cookie(request.headers.get("cookie"), VISITOR_COOKIE)
    signed_in = signed_in_user(request, session)
    return images.owned_image(
        session,
        image_id=image_id,
        visitor_hash=sha256_hex(visitor_token) if visitor_token else None,
        user_id=signed_in.user.id if signed_in else None,
    )


EDIT_FORMATS = {"png": "png", "webp": "webp", "jpg": "jpeg", "jpeg": "jpeg"}
MAX_CROP_MARGIN = 50  # percent of the subject's larger side
DEFAULT_BLUR = "40"


def edited_request(params) -> tuple[EditedRender, str]:
    """The editor's query (size, format, bg, blur, photo_fit, shadow and shadow_*, crop, margin) as a render
    request and the background's name for the file name; `ParameterError` names a bad value."""
    size = params.get("size", "preview")
    if size not in ("preview", "full"):
        raise ParameterError("size must be preview or full.")
    image_format = EDIT_FORMATS.get(params.get("format", "png").lower())
    if image_format is None:
        raise ParameterError("format must be png, webp or jpg.")
    background = params.get("bg", "transparent").strip().lower() or "transparent"
    fill, opacity, blur, named = None, 255, 0.0, background
    if background == "blur":
        blur = strength(params.get("blur") or DEFAULT_BLUR, "blur")
    elif background not in ("transparent", "photo"):
        fill, opacity = colour(background)
        named = {(255, 255, 255): "white", (0, 0, 0): "black"}.get(fill, "colour")
    photo_fit = params.get("photo_fit", "fill")
    if photo_fit not in ("fill", "fit"):
        raise ParameterError("photo_fit must be fill or fit.")
    margin_text = params.get("margin", "0")
    if not (margin_text.isascii() and margin_text.isdigit() and int(margin_text) <= MAX_CROP_MARGIN):
        raise ParameterError(f"margin must be a whole percentage from 0 to {MAX_CROP_MARGIN}.")
    crop = params.get("crop", "0") in ("1", "true")
    options = RenderOptions(
        format=image_format,
        background=fill,
        background_opacity=opacity,
        background_blur=blur,
        background_fit=photo_fit,
        shadow=shadow(params),
        crop=crop,
        margin=int(margin_text) / 100 if crop else 0.0,
    )
    return EditedRender(options, photo=background == "photo", full=size == "full"), named


def _refused(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=PRIVATE_HEADERS)


async def edited_image(request: Request) -> Response:
    """GET /api/images/{image_id}/edited: the cut-out with the editor's strokes, on the chosen
    background, through `render()`. Full size only once it was made (and charged); `?download=1`
    saves it under a name that says what it is."""
    try:
        image_id = uuid.UUID(request.path_params["image_id"])
    except ValueError:
        return _not_found()
    try:
        edit, background = edited_request(request.query_params)
    except ParameterError as error:
        return _refused(str(error))
    try:
        with session_scope() as session:
            image = _owned(request, session, image_id)
        rendered = await asyncio.to_thread(image_edits.render_edited, get_blob_store(), image, edit)
    except NotFound:
        return _not_found()
    except FullResolutionMissing as error:
        return _refused(str(error), 409)
    except EditRejected as error:
        return _refused(str(error))
    headers = dict(PRIVATE_HEADERS)
    if request.query_params.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{image_edits.download_name(image, edit, background)}"'
    return Response(rendered.content, media_type=rendered.media_type, headers=headers)


async def image_strokes(request: Request) -> Response:
    """GET /api/images/{image_id}/edits: the kept strokes, for the editor after a reload."""
    try:
        image_id = uuid.UUID(request.path_params["image_id"])
        with session_scope() as session:
            image = _owned(request, session, image_id)
        strokes = image_edits.strokes_json(image)
    except (ValueError, NotFound):
        return _not_found()
    return JSONResponse({"strokes": strokes}, headers=PRIVATE_HEADERS)


async def image_blob(request: Request) -> Response:
    """GET /api/images/{image_id}/{kind}: `original`, `result` (preview) or `full`; `?download=1` saves
    instead of shows. Only the browser that uploaded it, or its signed-in uploader, gets it."""
    kind = request.path_params["kind"]
    try:
        image_id = uuid.UUID(request.path_params["image_id"])
    except ValueError:
        return _not_found()
    if kind not in ("original", "result", "full"):
        return _not_found()
    try:
        with session_scope() as session:
            image = _owned(request, session, image_id)
        key = {"original": image.original_key, "result": image.result_key, "full": image.full_result_key}[kind]
        if key is None:
            return _not_found()
        data = images.read_blob(get_blob_store(), key)
    except NotFound:
        return _not_found()
    except StorageUnavailable:
        body = {"error": "Image storage is not reachable right now; please retry shortly."}
        return JSONResponse(body, status_code=503, headers={**PRIVATE_HEADERS, "Retry-After": "5"})
    media_type = image.original_content_type if kind == "original" else "image/png"
    headers = dict(PRIVATE_HEADERS)
    if request.query_params.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{_download_name(image, kind)}"'
    return Response(data, media_type=media_type, headers=headers)
