"""API errors in remove.bg's shape (`{"errors": [{title, code, detail}]}`), from domain errors by the
table in `services.errors`."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from clearbg_app.http.removebg_params import ParameterError
from clearbg_app.services import errors


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


def too_large(limit: int) -> ApiError:
    return ApiError(413, "file_too_large", "File too large", f"The request is over the {limit / 1e6:g} MB limit.")
