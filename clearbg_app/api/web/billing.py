"""The form posts and links that send a signed-in user to Stripe: Checkout, the Customer Portal, a receipt."""

from __future__ import annotations

import asyncio
import uuid

import stripe
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from clearbg_app.api.deps import signed_in_user
from clearbg_app.api.web.forms import form_post, read_form, redirect
from clearbg_app.db import session_scope
from clearbg_app.services import billing
from clearbg_app.services.errors import ServiceError


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


def billing_routes() -> list[Route]:
    return [
        Route("/billing/checkout", checkout, methods=["POST"]),
        Route("/billing/portal", portal, methods=["POST"]),
        Route("/billing/receipt/{order_id}", receipt, methods=["GET"]),
    ]
