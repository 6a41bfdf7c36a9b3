"""Stripe routes: the signed webhook, and the form posts that open Checkout or the Customer Portal."""

from __future__ import annotations

import asyncio
import logging
import uuid

import stripe
from sqlalchemy.exc import IntegrityError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from clearbg_app.api.auth import form_post, read_form, redirect, signed_in_user
from clearbg_app.api.body import BodyTooLarge, read_body
from clearbg_app.db import session_scope
from clearbg_app.models import StripeEvent
from clearbg_app.services import billing
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings

log = logging.getLogger(__name__)
MAX_EVENT_BYTES = 512 * 1024


def _signed(payload: bytes, signature: str | None) -> bool:
    """Whether Stripe's signature over the raw body checks out with our secret."""
    secret = get_settings().stripe_webhook_secret.get_secret_value()
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature or "", secret, stripe.Webhook.DEFAULT_TOLERANCE)
    except (UnicodeDecodeError, stripe.SignatureVerificationError):
        return False
    return True


def _apply(event: dict) -> str:
    """Handle the event in its own transaction; a concurrent delivery of the same id is a duplicate."""
    try:
        with session_scope() as session:
            return billing.handle_event(session, event=event)
    except IntegrityError:
        with session_scope() as session:
            if session.get(StripeEvent, event["id"]) is not None:
                return "duplicate"
        raise


async def stripe_webhook(request: Request) -> Response:
    """The body is read up to `MAX_EVENT_BYTES` (413 past it), its signature checked (400), then the
    event's shape (400 for a signed event ClearBG cannot read); only then is it applied."""
    if not get_settings().stripe_enabled:
        return PlainTextResponse("Stripe is not configured on this server.", status_code=503)
    try:
        payload = await read_body(request, MAX_EVENT_BYTES)
    except BodyTooLarge:
        return PlainTextResponse("Event too large.", status_code=413)
    except ClientDisconnect:
        return PlainTextResponse("Incomplete request.", status_code=400)
    if not _signed(payload, request.headers.get("stripe-signature")):
        log.warning("stripe webhook refused: missing or invalid signature")
        return PlainTextResponse("Invalid signature.", status_code=400)
    try:
        event = billing.parse_event(payload)
    except billing.MalformedEvent as malformed:
        log.warning("stripe webhook refused: a signed but malformed event: %s", malformed)
        return PlainTextResponse(f"Malformed event: {malformed}", status_code=400)
    outcome = await asyncio.to_thread(_apply, event)
    log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return JSONResponse({"received": True, "outcome": outcome})


def _user_or_login(session, request: Request, next_path: str):
    signed_in = signed_in_user(request, session)
    return (signed_in.user, None) if signed_in else (None, redirect("/login", next=next_path))


@form_post
async def checkout(request: Request) -> Response:
    form = await read_form(request)
    try:
        with session_scope() as session:
            user, login = _user_or_login(session, request, "/pricing")
            if login:
                return login
            _, url = await asyncio.to_thread(billing.start_checkout, session, user=user, plan_code=form.get("plan", ""))
    except ServiceError as error:
        return redirect("/pricing", message=str(error))
    return RedirectResponse(url, status_code=303)


async def _to_stripe(request: Request, find_url) -> Response:
    """Send the signed-in user to a Stripe page (`find_url(session, user)`), or back to /credits saying why not."""
    try:
        with session_scope() as session:
            user, login = _user_or_login(session, request, "/credits")
            if login:
                return login
            url = await asyncio.to_thread(find_url, session, user)
    except (ServiceError, stripe.StripeError) as error:
        message = str(error) if isinstance(error, ServiceError) else "The payment service could not be reached."
        return redirect("/credits", message=message)
    return RedirectResponse(url, status_code=303)


@form_post
async def portal(request: Request) -> Response:
    return await _to_stripe(request, lambda session, user: billing.portal_url(session, user=user))


async def receipt(request: Request) -> Response:
    try:
        order_id = uuid.UUID(request.path_params["order_id"])
    except ValueError:
        return PlainTextResponse("No such order.", status_code=404)
    return await _to_stripe(request, lambda session, user: billing.receipt_url(session, user_id=user.id, order_id=order_id))


def stripe_routes() -> list[Route]:
    return [
        Route("/api/stripe/webhook", stripe_webhook, methods=["POST"]),
        Route("/billing/checkout", checkout, methods=["POST"]),
        Route("/billing/portal", portal, methods=["POST"]),
        Route("/billing/receipt/{order_id}", receipt, methods=["GET"]),
    ]
