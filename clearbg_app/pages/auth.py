"""Sign-up, sign-in and password reset pages. Their forms post to `/auth/*`."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import checkbox, field, flash_callout, native_form, post_form, submit
from clearbg_app.components.layout import narrow_page
from clearbg_app.pages.route import route
from clearbg_app.services.accounts import MIN_PASSWORD
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState

CONSENTS = (
    ("adult", ("I am 18 or older. ClearBG is for adults only.",)),
    (
        "accept",
        (
            "I accept the ",
            rx.link("privacy policy", href="/privacy", is_external=True),
            " and the ",
            rx.link("terms of service", href="/terms", is_external=True),
            ".",
        ),
    ),
)


def google_enabled() -> bool:
    return get_settings().google_enabled


@route("/signup", "Sign up · ClearBG")
def signup() -> rx.Component:
    google = native_form(
        rx.vstack(
            rx.text("Or sign up with Google:", size="2", weight="medium"),
            *[checkbox(name, *text, id=f"google_{name}", value="1") for name, text in CONSENTS],
            rx.button("Sign up with Google", type="submit", variant="outline", size="3", width="100%"),
            spacing="3",
            width="100%",
        ),
        action="/auth/google/login",
        method="post",
        id="google-signup",
    )
    return narrow_page(
        "Create your account",
        flash_callout(),
        post_form(
            "/auth/signup",
            field("Email", "email", type="email", required=True, max_length=254, default_value=SessionState.form_email),
            field(
                "Display name",
                "display_name",
                required=True,
                max_length=80,
                default_value=SessionState.form_display_name,
            ),
            field(
                f"Password (at least {MIN_PASSWORD} characters)",
                "password",
                type="password",
                required=True,
                min_length=MIN_PASSWORD,
                max_length=256,
            ),
            *[checkbox(name, *text) for name, text in CONSENTS],
            submit("Create account", width="100%"),
            id="signup-form",
        ),
        *([rx.separator(), google] if google_enabled() else []),
        rx.text("Already have an account? ", rx.link("Sign in", href="/login"), size="2"),
    )


@route("/login", "Sign in · ClearBG")
def login() -> rx.Component:
    return narrow_page(
        "Sign in",
        flash_callout(),
        rx.cond(SessionState.signed_out_notice != "", rx.callout(SessionState.signed_out_notice, icon="log-out", color_scheme="amber", id="signed-out-notice", width="100%")),
        post_form(
            "/auth/login",
            field("Email", "email", type="email", required=True, default_value=SessionState.form_email),
            field("Password", "password", type="password", required=True),
            rx.el.input(type="hidden", name="next", value=SessionState.login_next),
            submit("Sign in", width="100%"),
            id="login-form",
        ),
        rx.link("Forgot your password?", href="/forgot-password", size="2"),
        *(
            [
                native_form(  # a full navigation: the route redirects on to the provider
                    rx.el.input(type="hidden", name="next", value=SessionState.login_next),
                    rx.button("Sign in with Google", variant="outline", size="3", width="100%", type="submit"),
                    action="/auth/google/login",
                    method="get",
                    id="google-login",
                    width="100%",
                )
            ]
            if google_enabled()
            else []
        ),
        rx.text("New here? ", rx.link("Create an account", href="/signup"), size="2"),
    )


@route("/forgot-password", "Reset your password · ClearBG")
def forgot_password() -> rx.Component:
    return narrow_page(
        "Reset your password",
        flash_callout(),
        rx.text("Enter your account's email address; we will send you a link to set a new password.", size="2"),
        post_form(
            "/auth/forgot-password",
            field("Email", "email", type="email", required=True),
            submit("Send the link", width="100%"),
        ),
    )


@route("/reset-password", "New password · ClearBG")
def reset_password() -> rx.Component:
    return narrow_page(
        "Choose a new password",
        flash_callout(),
        post_form(
            "/auth/reset-password",
            field(
                f"New password (at least {MIN_PASSWORD} characters)",
                "password",
                type="password",
                required=True,
                min_length=MIN_PASSWORD,
                max_length=256,
            ),
            submit("Set the new password", width="100%"),
        ),
    )
