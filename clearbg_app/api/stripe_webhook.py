"""Stripe's signed webhook: each event applied once (the Checkout and Portal routes are `web/billing.py`)."""

from __future__ import annotations

import asyncio
import logging

import stripe
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clearbg_app.api.body import BodyTooLarge, read_body
from clearbg_app.services import billing
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
    outcome = await asyncio.to_thread(billing.apply_event, event)
    log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return JSONResponse({"received": True, "outcome": outcome})


def stripe_routes() -> list[Route]:
    return [Route("/api/stripe/webhook", stripe_webhook, methods=["POST"])]
