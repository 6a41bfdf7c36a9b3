"""What the site's form posts and email links share: the same-origin check, reading a small form,
the 303 redirect with a signed flash, the password lane, and the offer to restore an account."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from clearbg_app.api.body import FORM_LIMIT, BodyTooLarge, capped
from clearbg_app.api.middleware.origins import is_site_origin
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import RESTORE_COOKIE, set_link_cookie
from clearbg_app.http.flash import flash
from clearbg_app.services import security
from clearbg_app.services.deletion_lock import CANCEL_MINUTES, DeletionPending

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def redirect(path: str, *, message: str | None = None, kind: str = "error", fields: dict | None = None, **params) -> Response:
    """303 to a page, with an optional signed flash message (and form fields to fill back in)."""
    if message:
        params["m"] = flash(message, kind=kind, fields=fields)
    query = urlencode({key: value for key, value in params.items() if value})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


def same_origin(request: Request) -> bool:
    """Form posts must come from our own pages: scheme, host and port (the SameSite cookie covers the rest)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    return is_site_origin(source, scheme=request.url.scheme, host=request.headers.get("host"))


def form_post(handler: Handler) -> Handler:
    async def checked(request: Request) -> Response:
        if not same_origin(request):
            return PlainTextResponse("This form must be sent from ClearBG's own pages.", status_code=403)
        return await handler(request)

    checked.__name__ = handler.__name__
    return checked


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's text fields: at most `FORM_LIMIT` bytes (413), no files, 20 fields (400)."""
    try:
        form = await capped(request, FORM_LIMIT).form(max_files=0, max_fields=20, max_part_size=FORM_LIMIT)
    except BodyTooLarge:
        raise HTTPException(413, "The form is too large.") from None
    except ClientDisconnect:
        raise HTTPException(400, "The connection closed before the form arrived.") from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _in_session(action: Callable[..., T], /, **kwargs) -> T:
    with session_scope() as session:
        return action(session, **kwargs)


async def with_password(action: Callable[..., T], /, **kwargs) -> T:
    """`action(session, **kwargs)` in its own session, in the password lane: Argon2 off the event loop, a
    few at a time (`PasswordWorkBusy`, a `ServiceError`, when the lane is full)."""
    return await security.password_lane.run(_in_session, action, **kwargs)


def offer_restore(pending: DeletionPending) -> Response:
    """To /restore-account, the token to cancel the deletion in a cookie for /privacy/restore only."""
    response = redirect("/restore-account", kind="info", message=str(pending))
    set_link_cookie(response, RESTORE_COOKIE, pending.token, minutes=CANCEL_MINUTES)
    return response
