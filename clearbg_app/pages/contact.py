"""`/contact`: privacy requests and complaints by message, for everyone (no account needed)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import flash_callout, message_callout
from clearbg_app.components.layout import narrow_page
from clearbg_app.pages.route import route
from clearbg_app.services.requests import KINDS, MAX_MESSAGE
from clearbg_app.settings import get_settings
from clearbg_app.state.contact import ContactState


@route("/contact", "Contact us about your data · ClearBG", ContactState.load)
def contact() -> rx.Component:
    who = get_settings().operator()
    return narrow_page(
        "Contact us about your data",
        rx.text(
            "Signed in? The ", rx.link("privacy center", href="/privacy-center"), " does most of this at once (export, "
            "correction, deletion, consents). This form is for everything else, and for people without an account or who "
            "lost access. We answer within 30 days.",
            size="2",
        ),
        flash_callout(),
        message_callout(ContactState.contact_notice, ContactState.contact_notice_kind, id="contact-notice"),
        rx.cond(
            ~ContactState.contact_sent,
            rx.form(
                rx.vstack(
                    rx.text("What is your request about?", as_="label", html_for="contact-kind", size="2", weight="medium"),
                    rx.el.select(
                        *(rx.el.option(label, value=key) for key, label in KINDS.items()),
                        name="kind", id="contact-kind", required=True,
                        style={"width": "100%", "padding": "0.5em", "border": "1px solid var(--gray-a7)", "border_radius": "var(--radius-2)",
                               "background": "var(--color-surface)", "font_size": "var(--font-size-2)"},
                    ),  # fmt: skip
                    rx.text("Your email address (we send a link to confirm it is yours)", as_="label", html_for="contact-email",
                            size="2", weight="medium"),  # fmt: skip
                    rx.input(name="email", id="contact-email", type="email", required=True, max_length=254, width="100%", size="3"),
                    rx.text(f"Your message (at most {MAX_MESSAGE} characters)", as_="label", html_for="contact-message", size="2",
                            weight="medium"),  # fmt: skip
                    rx.text_area(name="message", id="contact-message", required=True, max_length=MAX_MESSAGE, rows="7", width="100%"),
                    rx.el.label(
                        rx.hstack(
                            rx.el.input(type="checkbox", name="confirm", id="contact-confirm", value="on", required=True),
                            rx.text("This is my own address, or I am allowed to act for its owner.", size="2"),
                            align="center", spacing="2",
                        ),  # fmt: skip
                    ),
                    rx.button("Send request", type="submit", size="3", id="contact-submit"),
                    spacing="3",
                    width="100%",
                ),
                on_submit=ContactState.send,
                reset_on_submit=False,
                width="100%",
                id="contact-form",
            ),
        ),
        rx.text(
            f"Or write to {who['name']}, {who['address']}; privacy contact: {who['privacy_contact']}.",
            size="1", color_scheme="gray", id="contact-operator",
        ),  # fmt: skip
    )
