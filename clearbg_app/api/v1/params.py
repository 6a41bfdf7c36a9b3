"""Reading a public API request: its parameters and files from multipart, urlencoded or JSON bodies,
within the body limit, and base64 images."""

from __future__ import annotations

import base64
import binascii
import json

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from clearbg_app.api.body import BodyTooLarge, capped
from clearbg_app.api.errors import too_large
from clearbg_app.http.removebg_params import ParameterError, shown
from clearbg_app.settings import get_settings

SOURCES = ("image_file", "image_file_b64", "image_url")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def body_limit() -> int:
    """An image and a background image, base64-encoded, with room for the other fields."""
    return get_settings().max_upload_bytes * 3 + 64 * 1024


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
