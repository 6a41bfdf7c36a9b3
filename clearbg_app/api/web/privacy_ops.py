"""Routes that the privacy operations' emails link to: the confirmation of a contact request (proof of
address), and product news' one-click unsubscribe (RFC 8058: the mail client POSTs
`List-Unsubscribe=One-Click` to the link; a person opening it gets a page with one button, so that link
scanners which only GET change nothing)."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from clearbg_app.api.web.forms import read_form, redirect
from clearbg_app.db import session_scope
from clearbg_app.services import news, requests
from clearbg_app.services.errors import ServiceError

PRIVATE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


async def confirm_request(request: Request) -> Response:
    """GET /contact/confirm?token=...: the request enters the queue; back to /contact with the outcome."""
    try:
        with session_scope() as session:
            confirmed = requests.confirm(session, token=request.query_params.get("token", ""))
            due = f"{confirmed.due_at:%Y-%m-%d}"
    except ServiceError as error:
        return redirect("/contact", message=str(error))
    return redirect("/contact", kind="info", message=f"Thank you: your request is confirmed and has reached us. We answer by {due} at the latest.")


def _page(title: str, text: str, *, form: str = "", status: int = 200) -> HTMLResponse:
    body = (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>{html.escape(title)} - ClearBG</title></head><body style='font-family:system-ui,sans-serif;max-width:36em;"
            f"margin:3em auto;padding:0 1em;line-height:1.5'><h1>{html.escape(title)}</h1><p id=message>{html.escape(text)}</p>"
            f"{form}<p><a href='/'>ClearBG</a> &middot; <a href='/privacy-center'>Privacy center</a></p></body></html>")  # fmt: skip
    return HTMLResponse(body, status_code=status, headers=PRIVATE)


async def unsubscribe_page(request: Request) -> Response:
    """GET: one button that posts the same link (nothing changes on a GET)."""
    token = request.query_params.get("token", "")
    form = (f"<form method=post action='{news.UNSUBSCRIBE_PATH}?token={html.escape(token, quote=True)}'>"
            "<button type=submit id=unsubscribe>Stop product news</button></form>")  # fmt: skip
    return _page("Stop product news", "One click and ClearBG sends you no more product news. Service emails (sign-in, "
                 "receipts) are not affected.", form=form)  # fmt: skip


async def unsubscribe(request: Request) -> Response:
    """POST: withdraw the consent. A mail client's one-click POST gets plain text, a person a page."""
    form = await read_form(request)
    one_click = form.get("List-Unsubscribe") == "One-Click"
    try:
        with session_scope() as session:
            news.unsubscribe(session, token=request.query_params.get("token", ""))
    except ServiceError as error:
        if one_click:
            return PlainTextResponse(str(error), status_code=400, headers=PRIVATE)
        return _page("Product news", str(error), status=400)
    done = "You will get no more product news from ClearBG. You can turn it on again in your privacy center."
    return PlainTextResponse(done, headers=PRIVATE) if one_click else _page("Unsubscribed", done)


def privacy_ops_routes() -> list[Route]:
    return [
        Route("/contact/confirm", confirm_request, methods=["GET"]),
        Route(news.UNSUBSCRIBE_PATH, unsubscribe_page, methods=["GET"]),
        Route(news.UNSUBSCRIBE_PATH, unsubscribe, methods=["POST"]),
    ]
