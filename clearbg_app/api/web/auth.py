"""Form posts and email links that sign in, sign out and change credentials. They set or clear the
HttpOnly session cookie, then redirect (303) to a page; messages travel as signed, expiring flashes.
Whatever hashes or checks a password runs in the password lane, off the event loop."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearbg_app.api.deps import signed_in_user
from clearbg_app.api.web.forms import form_post, offer_restore, read_form, redirect, with_password
from clearbg_app.db import session_scope
from clearbg_app.http.cookies import (
    RESET_COOKIE,
    clear_link_cookie,
    clear_session_cookie,
    client_ip,
    link_token,
    session_token,
    set_link_cookie,
    set_session_cookie,
)
from clearbg_app.http.redirects import safe_next
from clearbg_app.services import accounts, credits
from clearbg_app.services.deletion_lock import DeletionPending
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings

UNLOCKED_BY_CONFIRMING = (
    "Confirm your address from the email we just sent to get your free monthly credits, buy credits and create API keys."
)


def _sign_up(session: Session, *, user_agent: str | None, **fields) -> str | None:
    """The new account's session token, or None for an address that already has an account (its
    owner is emailed; the password typed here signs nobody in)."""
    user = accounts.sign_up(session, **fields)
    if user is None:
        return None
    return accounts.start_session(session, user=user, user_agent=user_agent, ip=fields["ip"])


@form_post
async def sign_up(request: Request) -> Response:
    """Create the account and sign it in at once: an unconfirmed account can already remove
    backgrounds, and the page says what confirming unlocks."""
    form = await read_form(request)
    fields = {"email": form.get("email", "")[:254], "display_name": form.get("display_name", "")[:80]}
    try:
        token = await with_password(
            _sign_up,
            email=form.get("email", ""),
            display_name=form.get("display_name", ""),
            password=form.get("password", ""),
            adult_confirmed=form.get("adult") == "on",
            policy_accepted=form.get("accept") == "on",
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except ServiceError as error:
        return redirect("/signup", message=str(error), fields=fields)
    if token is None:
        return redirect(
            "/login",
            kind="info",
            message="Almost done: we sent you an email. Confirm your address from it, then sign in here.",
            fields={"email": fields["email"]},
        )
    response = redirect("/account", kind="info", message=f"Welcome to ClearBG, you are signed in. {UNLOCKED_BY_CONFIRMING}")
    set_session_cookie(response, token)
    return response


def _sign_in(session: Session, *, email: str, password: str, ip: str | None, user_agent: str | None) -> str:
    """The new session's cookie token."""
    user = accounts.authenticate(session, email=email, password=password, ip=ip)
    return accounts.start_session(session, user=user, user_agent=user_agent, ip=ip)


@form_post
async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    try:
        token = await with_password(
            _sign_in,
            email=form.get("email", ""),
            password=form.get("password", ""),
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except DeletionPending as pending:
        return offer_restore(pending)
    except ServiceError as error:
        return redirect("/login", message=str(error), fields={"email": form.get("email", "")[:254]}, next=next_path)
    response = redirect(next_path)
    set_session_cookie(response, token)
    return response


@form_post
async def sign_out(request: Request) -> Response:
    with session_scope() as session:
        accounts.end_session(session, token=session_token(request))
    response = redirect("/")
    clear_session_cookie(response)
    return response


async def verify_email(request: Request) -> Response:
    try:
        with session_scope() as session:
            accounts.verify_email(session, token=request.query_params.get("token", ""))
            signed_in = signed_in_user(request, session) is not None
    except ServiceError as error:
        return redirect("/login", message=str(error))
    message = "Your email address is confirmed."
    if credits.to_units(get_settings().free_monthly_credits) > 0:
        message += " This month's free credits are on your account."
    return redirect("/account" if signed_in else "/login", kind="info", message=message)


@form_post
async def resend_verification(request: Request) -> Response:
    with session_scope() as session:
        signed_in = signed_in_user(request, session)
        if signed_in is not None and not signed_in.user.is_verified:
            accounts.send_verification(session, user=signed_in.user)
    if signed_in is None:
        return redirect("/login", next="/account")
    return redirect("/account", kind="info", message="We sent a new confirmation link to your email address.")


@form_post
async def forgot_password(request: Request) -> Response:
    form = await read_form(request)
    try:
        with session_scope() as session:
            accounts.request_password_reset(session, email=form.get("email", ""), ip=client_ip(request))
    except ServiceError as error:
        return redirect("/forgot-password", message=str(error), fields={"email": form.get("email", "")[:254]})
    return redirect(
        "/forgot-password",
        kind="info",
        message="If an account uses that address, we sent it a link to set a new password. It works once, for one hour.",
    )


async def open_reset_link(request: Request) -> Response:
    """GET /auth/reset-password?token=: the email's link. The token moves into a cookie for the form
    post only, so the reset page's URL (which Reflex keeps in the tab's state) never holds it."""
    token = request.query_params.get("token", "")
    if not token:
        return redirect("/forgot-password", message="This link is not valid. Ask for a new one.")
    response = redirect("/reset-password")
    set_link_cookie(response, RESET_COOKIE, token[:2048], minutes=accounts.RESET_MINUTES)
    return response


@form_post
async def reset_password(request: Request) -> Response:
    form = await read_form(request)
    try:
        await with_password(accounts.reset_password, token=link_token(request, RESET_COOKIE), new_password=form.get("password", ""))
    except ServiceError as error:
        return redirect("/reset-password", message=str(error))
    response = redirect("/login", kind="info", message="Your password is changed and every browser signed out. Sign in again.")
    clear_session_cookie(response)
    clear_link_cookie(response, RESET_COOKIE)
    return response


AccountAction = Callable[[Session, accounts.SignedIn, dict[str, str]], str]


ACCOUNT_FORM_PAGES = ("/account", "/privacy-center")  # the pages that show the email and password forms


async def _account_action(request: Request, action: AccountAction, form_name: str, *, keep: tuple[str, ...] = ()) -> Response:
    """Run `action` (it checks the password) for the signed-in user with the posted form, then back to
    the page the form is on, its message beside the form and the `keep` fields still typed in;
    signed out, to the login page."""
    form = await read_form(request)
    back = form.get("back") if form.get("back") in ACCOUNT_FORM_PAGES else "/account"
    fields = {"form": form_name} | {name: form.get(name, "")[:254] for name in keep}
    try:
        message = await with_password(_as_signed_in, token=session_token(request), action=action, form=form)
    except ServiceError as error:
        return redirect(back, message=str(error), fields=fields)
    if message is None:
        return redirect("/login", next=back)
    return redirect(back, kind="info", message=message, fields={"form": form_name})


def _as_signed_in(session: Session, *, token: str | None, action: AccountAction, form: dict[str, str]) -> str | None:
    signed_in = accounts.resolve_session(session, token=token)
    return None if signed_in is None else action(session, signed_in, form)


def _change_password(session: Session, signed_in: accounts.SignedIn, form: dict[str, str]) -> str:
    accounts.change_password(
        session,
        user=signed_in.user,
        current_password=form.get("current_password", ""),
        new_password=form.get("new_password", ""),
        keep_session_id=signed_in.auth_session.id,
    )
    return "Your password is changed; your other browsers are signed out."


def _change_email(session: Session, signed_in: accounts.SignedIn, form: dict[str, str]) -> str:
    new_email = accounts.normalize_email(form.get("new_email", ""))
    accounts.request_email_change(session, user=signed_in.user, new_email=new_email, password=form.get("password", ""))
    return "We sent a link to the new address; your address changes when you open it."


@form_post
async def change_password(request: Request) -> Response:
    return await _account_action(request, _change_password, "password")


@form_post
async def change_email(request: Request) -> Response:
    return await _account_action(request, _change_email, "email", keep=("new_email",))


async def confirm_email_change(request: Request) -> Response:
    try:
        with session_scope() as session:
            accounts.confirm_email_change(session, token=request.query_params.get("token", ""))
    except ServiceError as error:
        return redirect("/account", message=str(error))
    return redirect("/account", kind="info", message="Your email address is changed.")


def auth_routes() -> list[Route]:
    return [
        Route("/auth/signup", sign_up, methods=["POST"]),
        Route("/auth/login", sign_in, methods=["POST"]),
        Route("/auth/logout", sign_out, methods=["POST"]),
        Route("/auth/verify", verify_email, methods=["GET"]),
        Route("/auth/verify/resend", resend_verification, methods=["POST"]),
        Route("/auth/forgot-password", forgot_password, methods=["POST"]),
        Route("/auth/reset-password", open_reset_link, methods=["GET"]),
        Route("/auth/reset-password", reset_password, methods=["POST"]),
        Route("/auth/password", change_password, methods=["POST"]),
        Route("/auth/email", change_email, methods=["POST"]),
        Route("/auth/email/confirm", confirm_email_change, methods=["GET"]),
    ]
