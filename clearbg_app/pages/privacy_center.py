"""`/privacy-center`: every privacy right in one place (consents, access and portability, correction,
restriction and objection, deletion), the data categories held and the retention periods in force;
and `/restore-account`, where signing in during a deletion's grace period offers to cancel it."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import checkbox, flash_callout, form_flash, message_callout, post_form, submit
from clearbg_app.components.layout import narrow_page, page
from clearbg_app.components.tables import dict_table
from clearbg_app.pages.account import credentials, profile, section
from clearbg_app.pages.route import route
from clearbg_app.state.account import AccountState
from clearbg_app.state.privacy import PrivacyState


def consent_switches() -> rx.Component:
    return section(
        "Your consents",
        rx.text("Each is off until you turn it on, and off again with one click. Changes apply at once.", size="2"),
        notice("consents"),
        rx.foreach(
            PrivacyState.consents,
            lambda item: rx.hstack(
                rx.switch(
                    checked=item["granted"] == "yes",
                    on_change=lambda checked: PrivacyState.set_consent(item["key"], checked),
                    id="consent-" + item["key"],
                    size="3",
                ),
                rx.vstack(
                    rx.text(item["title"], weight="medium"),
                    rx.text(item["description"], size="2", color_scheme="gray"),
                    spacing="0",
                ),
                align="start",
                spacing="3",
                width="100%",
            ),
        ),
        rx.text(
            "Turning off “Improve the service” is your objection to analytics: nothing more is recorded and what was "
            "recorded is deleted. Turning off the processing history deletes your kept images within the hour.",
            size="1",
            color_scheme="gray",
        ),
        rx.cond(
            PrivacyState.consent_history.length() > 0,
            rx.vstack(
                rx.text("History of your choices", size="2", weight="medium"),
                dict_table(PrivacyState.consent_history, (("When", "at"), ("Consent", "purpose"), ("Change", "change"), ("Policy version", "policy")), id="consent-history", size="1"),
                width="100%",
            ),
        ),
        id="consents",
    )


def notice(form: str) -> rx.Component:
    """The answer to the section's own control, shown in the section."""
    return rx.cond(PrivacyState.notice_form == form, message_callout(PrivacyState.notice, PrivacyState.notice_kind, id=f"{form}-notice"))


def export_section() -> rx.Component:
    return section(
        "Get a copy of your data",
        rx.text(
            "A ZIP file with everything we hold about you (a JSON document) and the images we still keep. "
            "We email you when it is ready; the download needs you to be signed in and works for "
            "a limited time, then the file is deleted.",
            size="2",
        ),
        notice("export"),
        rx.hstack(
            rx.button(
                "Request my data",
                on_click=PrivacyState.request_export,
                loading=(PrivacyState.export_status == "pending") | (PrivacyState.export_status == "building"),
                id="request-export",
            ),
            rx.cond(
                PrivacyState.export_url != "",
                rx.button("Download ZIP", variant="soft", on_click=rx.download(url=PrivacyState.export_url), id="export-download"),
            ),
            rx.button("Refresh", variant="ghost", on_click=PrivacyState.refresh),
            align="center",
        ),
        rx.cond(
            PrivacyState.export_url != "",
            rx.text("Ready; available until ", PrivacyState.export_until, ".", size="2", id="export-ready"),
            rx.cond(PrivacyState.export_status == "failed", rx.text("The last export failed; request it again.", size="2", color_scheme="red")),
        ),
        id="export",
    )


def delete_section() -> rx.Component:
    return section(
        "Delete your account",
        rx.text(
            "Your account is locked at once: every browser is signed out and your API keys stop working. After the "
            "grace period everything about you is erased; orders and credit records stay for accounting, under a "
            "pseudonym without your name or email. Until then you can cancel by signing in.",
            size="2",
        ),
        rx.foreach(
            PrivacyState.deletion_losses,
            lambda loss: rx.callout(loss, icon="triangle-alert", color_scheme="amber", class_name="deletion-loss", width="100%"),
        ),
        form_flash("delete"),
        rx.cond(
            PrivacyState.has_password,
            post_form(
                "/privacy/delete",
                rx.vstack(
                    rx.text("Your password", as_="label", html_for="delete-password", size="2", weight="medium"),
                    rx.input(name="password", id="delete-password", type="password", required=True, width="100%", size="3"),
                    spacing="1",
                    width="100%",
                ),
                checkbox("confirm", "I want my ClearBG account deleted.", id="delete-confirm"),
                submit("Delete my account", color_scheme="red", id="delete-account"),
            ),
            post_form(
                "/auth/google/login",
                rx.el.input(type="hidden", name="purpose", value="delete"),
                checkbox("confirm", "I want my ClearBG account deleted.", id="delete-confirm"),
                rx.text("Your account has no password: confirm by signing in with Google again.", size="2"),
                submit("Confirm with Google and delete", color_scheme="red", id="delete-account-google"),
            ),
        ),
        id="delete",
    )


def data_held() -> rx.Component:
    return section(
        "What we hold and for how long",
        dict_table(PrivacyState.categories, (("Data", "category"), ("Kept", "retention")), id="data-categories", size="1"),
        rx.text("Retention periods in force", size="2", weight="medium"),
        dict_table(PrivacyState.retention, (("What", "what"), ("Period", "period")), id="retention-periods", size="1"),
        rx.hstack(
            rx.link("Privacy policy", href="/privacy", size="2"),
            rx.link("Subprocessors", href="/subprocessors", size="2"),
            rx.link("Processing history", href="/history", size="2"),
            spacing="4",
        ),
    )


@route("/privacy-center", "Privacy center · ClearBG", PrivacyState.load, AccountState.load)
def privacy_center() -> rx.Component:
    return page(
        rx.heading("Privacy center", size="7"),
        rx.text("Everything about your personal data, in one place, without writing to us.", color_scheme="gray"),
        flash_callout(),
        consent_switches(),
        export_section(),
        rx.heading("Correct your details", size="5", margin_top="0.5em"),
        rx.text("Your display name and email address (a new address is confirmed by email before it is used).", size="2"),
        profile(),  # its answers show inside it
        credentials(back="/privacy-center"),
        data_held(),
        delete_section(),
    )


@route("/restore-account", "Keep your account? · ClearBG")
def restore_account() -> rx.Component:
    return narrow_page(
        "Keep your account?",
        flash_callout(),
        post_form(
            "/privacy/restore",
            submit("Cancel the deletion and sign in", id="restore-account"),
        ),
        rx.link("No, let it be deleted", href="/", size="2"),
    )
