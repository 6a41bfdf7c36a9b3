"""`/account`: profile, email and password, signed-in browsers, API keys."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import (
    back_field,
    field,
    flash_callout,
    form_flash,
    message_callout,
    native_form,
    post_form,
    revealed_secret,
    submit,
)
from clearbg_app.components.layout import page
from clearbg_app.components.tables import dict_table, rows_table
from clearbg_app.pages.route import route
from clearbg_app.services.accounts import MIN_PASSWORD
from clearbg_app.state.account import KEY_LABEL_FIELD, NEW_KEY_FIELD, WEBHOOK_SECRET_FIELD, AccountState
from clearbg_app.state.base import SessionState


def section(title: str, *children: rx.Component, **props) -> rx.Component:
    return rx.card(rx.vstack(rx.heading(title, size="4"), *children, spacing="3", width="100%"), width="100%", **props)


def notice(form: str) -> rx.Component:
    """The answer of the section's own form (an error or a confirmation), shown beside it."""
    return rx.cond(AccountState.notice_form == form, message_callout(AccountState.notice, AccountState.notice_kind, id=f"{form}-notice"))


def profile() -> rx.Component:
    return section(
        "Profile",
        notice("profile"),
        rx.form(
            rx.hstack(
                rx.input(name="display_name", id="account-display-name", default_value=AccountState.display_name, max_length=80,
                         size="3", width="100%", aria_label="Display name"),  # fmt: skip
                rx.button("Save name", type="submit", size="3", id="save-name"),
                width="100%",
            ),
            on_submit=AccountState.save_display_name,
        ),
        rx.hstack(
            rx.text("Email: ", rx.text.strong(AccountState.email), id="account-email"),
            rx.cond(
                AccountState.email_verified,
                rx.badge("confirmed", color_scheme="green"),
                rx.hstack(
                    rx.badge("not confirmed", color_scheme="orange", id="unverified-badge"),
                    native_form(
                        rx.button("Send the link again", type="submit", variant="ghost", size="1"),
                        action="/auth/verify/resend",
                        method="post",
                    ),
                ),
            ),
            align="center",
        ),
        id="profile",
    )


def credentials(back: str = "/account") -> rx.Component:
    """Change the email or the password; each answer comes back to `back`, beside its form, with the
    new address still typed in (never a password)."""
    return section(
        "Email and password",
        post_form(
            "/auth/email",
            back_field(back),
            form_flash("email"),
            field("New email address", "new_email", type="email", required=True, default_value=SessionState.form_new_email),
            field("Your password", "password", type="password"),
            submit("Change email", variant="soft"),
        ),
        rx.separator(),
        post_form(
            "/auth/password",
            back_field(back),
            form_flash("password"),
            field("Current password", "current_password", type="password", required=True),
            field(f"New password (at least {MIN_PASSWORD} characters)", "new_password", type="password", required=True, min_length=MIN_PASSWORD),
            submit("Change password", variant="soft"),
        ),
    )


def sessions() -> rx.Component:
    return section(
        "Signed-in browsers",
        notice("sessions"),
        rows_table(
            AccountState.sessions,
            ("Browser", "Network", "Signed in", "Last seen", ""),
            lambda item: rx.table.row(
                rx.table.cell(item["device"], rx.cond(item["current"] == "yes", rx.badge("this browser", ml="2"))),
                rx.table.cell(item["network"]),
                rx.table.cell(item["created"]),
                rx.table.cell(item["last_seen"]),
                rx.table.cell(rx.button("Sign out", size="1", variant="soft", on_click=AccountState.revoke_session(item["id"]))),
            ),
            empty="No signed-in browsers.",
        ),
        rx.button("Sign out all other browsers", variant="outline", on_click=AccountState.revoke_other_sessions),
        id="sessions",
    )


def api_keys() -> rx.Component:
    return section(
        "API keys",
        rx.text("Use a key in the X-Api-Key header of API requests. Keys act as you; keep them secret.", size="2"),
        notice("keys"),
        rx.callout.root(  # always in the page, shown with the key: the create event fills its field
            rx.vstack(
                rx.text("Your new key (shown only once):", size="2"),
                revealed_secret(NEW_KEY_FIELD),
                rx.button("I have saved it", size="1", variant="soft", on_click=AccountState.dismiss_secret),
                width="100%",
            ),
            color_scheme="green",
            width="100%",
            display=rx.cond(AccountState.key_shown, "flex", "none"),
            id="new-key",
        ),
        rx.cond(
            AccountState.email_verified,
            rx.form(
                rx.hstack(
                    rx.input(name="label", id=KEY_LABEL_FIELD, placeholder="Label, e.g. Shop importer", max_length=80, required=True,
                             size="3", width="100%", aria_label="Key label"),  # fmt: skip
                    rx.button("Create key", type="submit", size="3", id="create-key"),
                    width="100%",
                ),
                on_submit=AccountState.create_key,
            ),
            rx.text("Confirm your email address to create API keys.", color_scheme="orange", size="2"),
        ),
        rows_table(
            AccountState.keys,
            ("Label", "Key", "Created", "Last used", ""),
            lambda key: rx.table.row(
                rx.table.cell(key["label"]),
                rx.table.cell(rx.code(key["prefix"])),
                rx.table.cell(key["created"]),
                rx.table.cell(key["last_used"]),
                rx.table.cell(rx.button("Revoke", size="1", color_scheme="red", variant="soft", on_click=AccountState.revoke_key(key["id"]))),
            ),
            id="api-keys",
            empty="No API keys yet.",
        ),
        webhook_secret(),
        id="keys",
    )


def webhook_secret() -> rx.Component:
    """API batches with a webhook_url are signed with this secret (see /docs/api#batches)."""
    return rx.vstack(
        rx.text("Batch webhooks are signed with your signing secret:", size="2", weight="medium"),
        rx.hstack(
            rx.box(revealed_secret(WEBHOOK_SECRET_FIELD, placeholder="whsec_…"), flex="1", min_width="0"),
            rx.button("Show", variant="soft", size="1", id="show-webhook-secret", on_click=AccountState.show_webhook_secret),
            align="center",
            width="100%",
        ),
        rx.link("How to verify a webhook", href="/docs/api#batches", size="2"),
        spacing="1",
        width="100%",
        id="webhook-signing",
    )


def api_usage() -> rx.Component:
    return section(
        "API usage",
        rx.text("Your latest API calls and batch images, newest first. Errors are never charged.", size="2"),
        dict_table(
            AccountState.usage,
            (("When", "at"), ("Key or source", "key"), ("Size", "size"), ("Model", "model"), ("Credits", "credits"), ("Latency", "latency"),
             ("Status", "status")),
            id="api-usage",
            empty="No API calls or batch images yet.",
        ),
        rx.link("API documentation", href="/docs/api", size="2"),
    )


@route("/account", "Your account · ClearBG", AccountState.load)
def account() -> rx.Component:
    return page(
        rx.heading("Your account", size="7"),
        rx.text("Consents, a copy of your data, your processing history and account deletion: ", rx.link("privacy center", href="/privacy-center", id="account-privacy-link"), size="2"),
        flash_callout(),
        profile(),
        api_keys(),
        api_usage(),
        sessions(),
        credentials(),
    )
