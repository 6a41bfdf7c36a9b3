"""Domain errors, and remove.bg's error-code table for them (`describe`): the API answers with it and
a batch item records its failure with it. `str(error)` is a sentence for the person who caused it."""

from __future__ import annotations

from dataclasses import dataclass, field

from clearbg_app.inference.errors import ImageDecodeError, ImageTooLarge, InferenceError
from clearbg_app.inference.pool import ServerBusy
from clearbg_app.storage import StorageUnavailable


class ServiceError(Exception):
    """Base class of errors a user can act on. Those that an API answer or a batch item can carry
    name their HTTP status, remove.bg's error code and a title."""

    status: int | None = None
    code: str = ""
    title: str = ""


class UploadRejected(ServiceError):
    """The upload is not acceptable (too large, not an image, damaged)."""


class NotFound(ServiceError):
    """The thing does not exist, has expired, or is not the caller's."""

    status, code, title = 404, "not_found", "Not found"


@dataclass(frozen=True)
class ErrorCode:
    """An error as remove.bg's API shows it: `{"errors": [{title, code, detail}]}` with a status."""

    status: int
    code: str
    title: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


STORAGE_DOWN = "Image storage is not reachable right now; nothing was charged. Please retry shortly."


def describe(error: Exception) -> ErrorCode | None:
    """The status, code and title of a domain error; None for anything else (a bug, not the caller's)."""
    if isinstance(error, ServiceError) and error.status is not None:
        return ErrorCode(error.status, error.code, error.title, str(error))
    if isinstance(error, ImageTooLarge):
        return ErrorCode(413, "file_too_large", "File too large", str(error))
    if isinstance(error, ImageDecodeError):
        return ErrorCode(400, "invalid_image", "Unreadable image", str(error))
    if isinstance(error, ServerBusy):
        return ErrorCode(503, "server_busy", "Server busy", str(error), {"Retry-After": str(error.retry_after)})
    if isinstance(error, InferenceError):  # an unknown model or mode
        return ErrorCode(400, "invalid_parameter", "Invalid parameter", str(error))
    if isinstance(error, StorageUnavailable):  # nothing was stored or charged: the request can be retried
        return ErrorCode(503, "storage_unavailable", "Storage unavailable", STORAGE_DOWN, {"Retry-After": "5"})
    return None
