"""The frame around every page: header with the sign-in state, content, footer."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import native_form
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState
from clearbg_app.state.credits import BalanceState
from clearbg_app.state.policies import PolicyBannerState
from clearbg_app.wording import plural


def account_menu() -> rx.Component:
    """Pricing for everyone; then the balance and account, or sign-in and sign-up."""
    return rx.hstack(
        rx.link("Pricing", href="/pricing", size="2", id="header-pricing"),
        signed_in_menu(),
        align="center",
        spacing="4",
        wrap="wrap",
    )


def signed_in_menu() -> rx.Component:
    return rx.cond(
        SessionState.signed_in,
        rx.hstack(
            rx.cond(SessionState.is_admin, rx.link("Admin", href="/admin", size="2")),
            rx.link(
                rx.badge(BalanceState.header_balance_text, size="2", variant="soft"),
                href="/credits",
                id="header-balance",
                on_mount=BalanceState.refresh_balance,
            ),
            rx.link("Account", href="/account", size="2", weight="medium", id="header-account"),
            native_form(
                rx.button("Sign out", type="submit", variant="soft", size="2", id="sign-out"),
                action="/auth/logout",
                method="post",
            ),
            align="center",
            spacing="4",
            wrap="wrap",
        ),
        rx.hstack(
            rx.link("Sign in", href="/login", size="2"),
            rx.link(rx.button("Sign up", size="2"), href="/signup"),
            align="center",
            spacing="4",
        ),
    )


def header() -> rx.Component:
    return rx.hstack(
        rx.link(rx.heading("ClearBG", size="6"), href="/", underline="none"),
        rx.spacer(),
        account_menu(),
        align="center",
        width="100%",
        padding_y="1em",
        wrap="wrap",
        row_gap="0.5em",
    )


def policy_banner() -> rx.Component:
    """Signed-in users see each material policy change in effect until they acknowledge it."""
    return rx.cond(
        SessionState.signed_in,
        rx.vstack(
            rx.foreach(
                PolicyBannerState.notices,
                lambda notice: rx.callout.root(
                    rx.callout.icon(rx.icon("scroll-text")),
                    rx.callout.text(
                        rx.text.strong("We changed our ", notice["doc"], ". "),
                        "Version ", notice["label"], " ", notice["when"], ". ",
                        notice["summary"], " ",
                        rx.link("Read it", href=notice["path"], weight="medium"),
                    ),
                    rx.button("Got it", size="1", variant="soft", on_click=PolicyBannerState.acknowledge(notice["id"]),
                              width="fit-content", class_name="policy-ack"),  # fmt: skip
                    color_scheme="amber",
                    width="100%",
                    class_name="policy-banner",
                ),
            ),
            width="100%",
            on_mount=PolicyBannerState.load,
            id="policy-banners",
        ),
    )


def retention_notice() -> str:
    """The footer's one-line summary of how long images are kept, from the settings in force."""
    settings = get_settings()
    minutes = settings.retention_minutes
    first = "one hour" if minutes == 60 else plural(minutes, "minute")
    return (
        f"ClearBG deletes uploads and results automatically after {first} "
        f"({plural(settings.batch_retention_hours, 'hour')} for batches, {plural(settings.history_retention_days, 'day')} "
        "if you turn on the processing history)."
    )


def operator_line() -> str:
    """Who runs the site, from the settings in force (production refuses to start without them)."""
    settings = get_settings()
    if not any(value.strip() for value in settings.operator_fields().values()):
        return "The operator of this site has not published its name and address yet (CLEARBG_OPERATOR_*)."
    who = settings.operator()
    return f"Operated by {who['name']}, {who['address']}. {who['email']}"


def footer() -> rx.Component:
    return rx.flex(
        rx.vstack(
            rx.text(retention_notice(), size="1", color_scheme="gray"),
            rx.text(operator_line(), size="1", color_scheme="gray", id="footer-operator"),
            spacing="1",
        ),
        rx.spacer(),
        rx.link("Contact", href="/contact", size="1", color_scheme="gray", id="footer-contact"),
        rx.link("Privacy policy", href="/privacy", size="1", color_scheme="gray"),
        rx.link("Terms", href="/terms", size="1", color_scheme="gray"),
        rx.cond(SessionState.signed_in, rx.link("Privacy center", href="/privacy-center", size="1", color_scheme="gray", id="footer-privacy-center")),
        rx.link("Subprocessors", href="/subprocessors", size="1", color_scheme="gray"),
        width="100%",
        padding_y="2em",
        spacing="4",
        wrap="wrap",
        align="center",
    )


def session_watch() -> rx.Component:
    """When an event found this tab's session gone, go to the sign-in page at once."""
    return rx.cond(SessionState.session_ended, rx.box(on_mount=rx.redirect("/login?ended=1"), id="session-ended"))


def page(*children: rx.Component) -> rx.Component:
    """A centered column with the header and footer."""
    return rx.container(
        rx.vstack(header(), policy_banner(), session_watch(), *children, footer(), spacing="5", width="100%"),
        size="3",
    )


def narrow_page(title: str, *children: rx.Component) -> rx.Component:
    """A page with one narrow column, for forms."""
    return page(
        rx.center(
            rx.card(
                rx.vstack(rx.heading(title, size="6"), *children, spacing="4", width="100%"),
                width="100%",
                max_width="28em",
                size="3",
            ),
            width="100%",
        )
    )
