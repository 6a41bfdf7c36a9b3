"""`/pricing`: what a credit buys, the credit packs and the monthly plans."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import flash_callout, native_form
from clearbg_app.components.layout import page
from clearbg_app.pages.route import route
from clearbg_app.state.credits import PricingState

PRICES = (
    ("Preview (up to 0.25 megapixels) in the web app", "free"),
    ("Preview through the API", "0.25 credit"),
    ("Full resolution, web app or API", "1 credit"),
    ("Each image of a batch", "charged only when it succeeds"),
    ("A failed or refused image", "never charged"),
)


def buy_button(row: rx.Var, label: str) -> rx.Component:
    """A form posting the plan to our Checkout route; disabled unless the person may buy here."""
    return native_form(
        rx.el.input(type="hidden", name="plan", value=row["code"]),
        rx.button(
            label,
            type="submit",
            width="100%",
            disabled=~(PricingState.payments_enabled & PricingState.email_verified),
            id="buy-" + row["code"].to(str),
        ),
        action="/billing/checkout",
        method="post",
        width="100%",
    )


def offer(row: rx.Var, suffix: str, label: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(row["name"], size="4"),
            rx.text(rx.text.strong(row["price"]), suffix, size="5"),
            rx.text(row["credits"], " credits · ", row["per_credit"], " per credit", size="2", color_scheme="gray"),
            buy_button(row, label),
            spacing="3",
        ),
        width="100%",
    )


def purchase_note() -> rx.Component:
    return rx.cond(
        ~PricingState.payments_enabled,
        rx.callout(
            "Payments are not set up on this ClearBG server, so the buttons below are disabled. "
            "Everything else works, including the free monthly credits.",
            icon="info",
            color_scheme="orange",
            id="payments-off",
            width="100%",
        ),
        rx.cond(
            ~PricingState.signed_in,
            rx.callout(rx.text(rx.link("Sign in", href="/login?next=/pricing"), " to buy credits."), icon="info", width="100%"),
            rx.cond(
                ~PricingState.email_verified,
                rx.callout("Confirm your email address (see your account page) to buy credits.", icon="info", color_scheme="orange", width="100%"),
            ),
        ),
    )


@route("/pricing", "Pricing · ClearBG", PricingState.load)
def pricing() -> rx.Component:
    return page(
        rx.heading("Pricing", size="7"),
        flash_callout(),
        rx.card(
            rx.vstack(
                rx.heading("What a credit buys", size="4"),
                rx.table.root(
                    rx.table.body(*(rx.table.row(rx.table.cell(what), rx.table.cell(rx.text.strong(cost))) for what, cost in PRICES)),
                    width="100%",
                ),
                rx.text(
                    "Every confirmed account gets ", PricingState.free_monthly,
                    " free credits each month (an API preview costs 0.25); unused free credits lapse at the month's end.",
                    size="2",
                ),  # fmt: skip
                rx.text("You always see the cost before you confirm an image.", size="2", color_scheme="gray"),
                width="100%",
            ),
            width="100%",
        ),
        purchase_note(),
        rx.heading("Credit packs", size="5"),
        rx.text("Bought credits last ", PricingState.expiry_days, " days.", size="2", color_scheme="gray"),
        rx.grid(rx.foreach(PricingState.packs, lambda row: offer(row, "", "Buy")), columns="3", spacing="4", width="100%", id="packs"),
        rx.heading("Monthly plans", size="5"),
        rx.text("Credits arrive every month and roll over while you stay subscribed. Cancel any time.", size="2", color_scheme="gray"),
        rx.grid(rx.foreach(PricingState.plans, lambda row: offer(row, " / month", "Subscribe")), columns="3", spacing="4", width="100%", id="plans"),
    )
