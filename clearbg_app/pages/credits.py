"""`/credits`: balance, buying, orders with receipts, and the ledger of every credit movement."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import flash_callout, native_form
from clearbg_app.components.layout import page
from clearbg_app.components.tables import dict_table, rows_table
from clearbg_app.pages.route import route
from clearbg_app.state.credits import CreditsState


def pager(current: rx.Var, total: rx.Var, name: str) -> rx.Component:
    return rx.hstack(
        rx.button("Newer", size="1", variant="soft", disabled=current <= 1, on_click=CreditsState.turn_page(name, -1), id=f"{name}-newer"),
        rx.text("Page ", current, " of ", total, size="2"),
        rx.button("Older", size="1", variant="soft", disabled=current >= total, on_click=CreditsState.turn_page(name, 1), id=f"{name}-older"),
        align="center",
    )


def watched_order() -> rx.Component:
    """After Checkout: the order stays pending until Stripe's webhook lands, then the new balance shows."""
    return rx.match(
        CreditsState.watched_status,
        ("", rx.fragment()),
        (
            "pending",
            rx.callout(
                f"Your order is pending: the {CreditsState.watched_credits} credits arrive as soon as Stripe "
                "confirms the payment (this page updates by itself).",
                icon="loader", id="order-status", width="100%",
            ),  # fmt: skip
        ),
        (
            "processing",
            rx.callout(
                "Your payment is still being processed by the bank; the credits arrive when it clears.",
                icon="loader", id="order-status", width="100%",
            ),  # fmt: skip
        ),
        (
            "paid",
            rx.callout(
                f"Thank you! {CreditsState.watched_credits} credits were added. "
                f"Your balance is now {CreditsState.header_balance} credits.", icon="circle-check", color_scheme="green", id="order-status", width="100%",
            ),  # fmt: skip
        ),
        rx.callout(
            f"This order is {CreditsState.watched_status}: no credits were added for it.",
            icon="triangle-alert", color_scheme="red", id="order-status", width="100%",
        ),  # fmt: skip
    )


@route("/credits", "Your credits · ClearBG", CreditsState.load)
def credits_page() -> rx.Component:
    return page(
        rx.heading("Your credits", size="7"),
        flash_callout(),
        watched_order(),
        rx.card(
            rx.hstack(
                rx.vstack(
                    rx.text("Balance", size="2", color_scheme="gray"),
                    rx.heading(CreditsState.header_balance_text, size="8", id="credits-balance"),
                    spacing="1",
                ),
                rx.spacer(),
                rx.cond(
                    CreditsState.payments_enabled,
                    rx.link(rx.button("Buy credits", size="3"), href="/pricing"),
                    rx.button("Buy credits", size="3", disabled=True, id="buy-credits-disabled"),
                ),
                rx.cond(
                    CreditsState.payments_enabled,
                    native_form(
                        rx.button("Manage subscription and cards", type="submit", size="3", variant="soft"),
                        action="/billing/portal",
                        method="post",
                    ),
                ),
                align="center",
                width="100%",
                wrap="wrap",
            ),
            rx.cond(CreditsState.allowance != "", rx.text(CreditsState.allowance, size="2", id="allowance", margin_top="0.75em")),
            rx.cond(
                ~CreditsState.payments_enabled,
                rx.text(
                    "Buying credits is switched off on this server (payments are not set up); the free monthly "
                    "allowance still arrives.", size="2", color_scheme="gray", id="purchases-off", margin_top="0.5em",
                ),  # fmt: skip
            ),
            width="100%",
        ),
        rx.heading("Orders", size="5"),
        rows_table(
            CreditsState.orders,
            ("Date", "Plan", "Credits", "Price", "Status", "Receipt"),
            lambda row: rx.table.row(
                *(rx.table.cell(row[key]) for key in ("when", "plan", "credits", "price")),
                rx.table.cell(rx.badge(row["status"])),
                rx.table.cell(rx.cond(row["receipt"] != "", rx.link("Receipt", href=row["receipt"], is_external=True))),
            ),
            id="orders",
            empty="No orders yet.",
        ),
        pager(CreditsState.orders_page, CreditsState.orders_pages, "orders"),
        rx.heading("Credit history", size="5"),
        dict_table(
            CreditsState.entries,
            (("Date", "when"), ("What", "what"), ("Details", "reason"), ("Credits", "amount"), ("Balance", "balance")),
            id="ledger",
            empty="No credit movements yet.",
        ),
        pager(CreditsState.ledger_page, CreditsState.ledger_pages, "ledger"),
    )
