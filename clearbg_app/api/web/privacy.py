"""The privacy center's HTTP routes: the export download (session cookie and ownership checked), the
deletion request (it signs the browser out), and cancelling a pending deletion after signing in."""

from __future__ import annotations

import uuid

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearbg_app.api.deps import signed_in_user
from clearbg_app.api.web.forms import form_post, read_form, redirect, with_password
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import (
    RESTORE_COOKIE,
    clear_link_cookie,
    clear_session_cookie,
    client_ip,
    link_token,
    session_token,
    set_session_cookie,
)
from clearbg_app.models import AccountDeletion
from clearbg_app.services import accounts, deletion, exports
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.storage import StorageUnavailable, get_blob_store

PRIVACY_CENTER = "/privacy-center"
PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


async def export_download(request: Request) -> Response:
    """GET /api/privacy/exports/{export_id}: the signed-in owner's ZIP while its link is valid; 404 otherwise."""
    try:
        export_id = uuid.UUID(request.path_params["export_id"])
        with session_scope() as session:
            signed_in = signed_in_user(request, session)
            if signed_in is None:
                raise NotFound("Sign in to download your export.")
            export, data = exports.download(session, store=get_blob_store(), user_id=signed_in.user.id, export_id=export_id)
    except (ValueError, NotFound) as error:
        message = str(error) if isinstance(error, NotFound) else "No such export."
        return JSONResponse({"error": message}, status_code=404, headers=PRIVATE_HEADERS)
    except StorageUnavailable:
        message = "Storage is not reachable right now; please retry shortly."
        return JSONResponse({"error": message}, status_code=503, headers={**PRIVATE_HEADERS, "Retry-After": "5"})
    headers = {**PRIVATE_HEADERS, "Content-Disposition": f'attachment; filename="clearbg-export-{export.ready_at:%Y%m%d}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)


@form_post
async def delete_account(request: Request) -> Response:
    """POST /privacy/delete with the password: lock the account now, sign this browser out."""
    form = await read_form(request)
    if form.get("confirm") != "on":
        return redirect(PRIVACY_CENTER, message="Tick the box to confirm that you want your account deleted.", fields={"form": "delete"})
    try:
        scheduled = await with_password(_request_deletion, token=session_token(request), password=form.get("password", ""))
    except ServiceError as error:
        return redirect(PRIVACY_CENTER, message=str(error), fields={"form": "delete"})
    if scheduled is None:
        return redirect("/login", next=PRIVACY_CENTER)
    return deletion_scheduled(scheduled)


def _request_deletion(session: Session, *, token: str | None, password: str) -> AccountDeletion | None:
    """The signed-in user's deletion request, confirmed by the password; None when signed out."""
    signed_in = accounts.resolve_session(session, token=token)
    if signed_in is None:
        return None
    return deletion.request_deletion(session, user=signed_in.user, store=get_blob_store(), password=password)


def deletion_scheduled(scheduled: AccountDeletion) -> Response:
    """To the login page, signed out, with the date the account will be deleted."""
    response = redirect(
        "/login",
        kind="info",
        message=f"Your account is locked and will be deleted on {scheduled.purge_after:%Y-%m-%d} (UTC). "
        "We emailed you a confirmation. To keep it, sign in before then.",
    )
    clear_session_cookie(response)
    return response


@form_post
async def restore_account(request: Request) -> Response:
    """POST /privacy/restore with the token a sign-in handed out (in its cookie): cancel the deletion and sign in."""
    try:
        with session_scope() as session:
            user = deletion.cancel_deletion(session, token=link_token(request, RESTORE_COOKIE))
            token = accounts.start_session(session, user=user, user_agent=request.headers.get("user-agent"), ip=client_ip(request))
    except ServiceError as error:
        return redirect("/login", message=str(error))
    response = redirect(
        PRIVACY_CENTER,
        kind="info",
        message="Your account will not be deleted. Your API keys stay revoked; create new ones on your account page.",
    )
    set_session_cookie(response, token)
    clear_link_cookie(response, RESTORE_COOKIE)
    return response


def privacy_routes() -> list[Route]:
    return [
        Route("/api/privacy/exports/{export_id}", export_download, methods=["GET"]),
        Route("/privacy/delete", delete_account, methods=["POST"]),
        Route("/privacy/restore", restore_account, methods=["POST"]),
    ]
