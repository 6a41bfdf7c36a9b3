"""Balance in the header, `/pricing` and `/credits`. Every event re-reads the session on the server."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import reflex as rx

from clearbg_app.clock import as_utc
from clearbg_app.db import session_scope
from clearbg_app.models import PlanKind
from clearbg_app.services import billing, credits
from clearbg_app.services.errors import NotFound
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState

LEDGER_PER_PAGE = 20
ORDERS_PER_PAGE = 10
WATCH_SECONDS = 120
ENTRY_LABELS = {
    "signup_grant": "Welcome credits",
    "monthly_allowance": "Free monthly allowance",
    "purchase": "Credit pack",
    "subscription_renewal": "Subscription",
    "usage": "Used",
    "refund_reversal": "Refund",
    "expiry": "Expired",
    "admin_adjustment": "Adjustment",
}


@dataclass(frozen=True)
class PlanRow:
    """A credit pack or a subscription plan on /pricing."""

    code: str
    kind: str
    name: str
    credits: str
    price: str
    per_credit: str


@dataclass(frozen=True)
class LedgerLine:
    """One line of the person's credit history."""

    when: str
    what: str
    reason: str
    amount: str
    balance: str


@dataclass(frozen=True)
class OrderRow:
    """One of the person's orders, with its receipt link once paid."""

    id: str
    when: str
    plan: str
    credits: str
    price: str
    status: str
    receipt: str


def _day(moment) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency.upper()}"


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


class BalanceState(SessionState):
    """The signed-in user's balance, shown in the header of every page."""

    header_balance: str = ""

    @rx.var
    def header_balance_text(self) -> str:
        return f"{self.header_balance} credit" + ("" if self.header_balance == "1" else "s")

    def _set_balance(self, user_id: uuid.UUID) -> int:
        with session_scope() as session:
            units = credits.balance(session, user_id=user_id)
        self.header_balance = credits.format_credits(units)
        return units

    @rx.event
    def refresh_balance(self) -> None:
        user = self._current_user()
        if user is None:
            self.header_balance = ""
        else:
            self._set_balance(user.id)


class PricingState(BalanceState):
    packs: list[PlanRow] = []
    plans: list[PlanRow] = []
    payments_enabled: bool = False
    free_monthly: str = ""
    expiry_days: int = 0

    @rx.event
    def load(self) -> None:
        settings = get_settings()
        self.payments_enabled = settings.stripe_enabled
        self.free_monthly = credits.format_credits(credits.to_units(settings.free_monthly_credits))
        self.expiry_days = settings.credit_expiry_days
        with session_scope() as session:
            rows = [
                PlanRow(
                    code=plan.code,
                    kind=plan.kind,
                    name=plan.name,
                    credits=credits.format_credits(plan.credits_units),
                    price=_money(plan.price_cents, plan.currency),
                    per_credit=_money(round(plan.price_cents * 100 / plan.credits_units), plan.currency),
                )
                for plan in billing.list_plans(session)
            ]
        self.packs = [row for row in rows if row.kind == PlanKind.PACK]
        self.plans = [row for row in rows if row.kind == PlanKind.SUBSCRIPTION]


def allowance_text(user_id: uuid.UUID, *, verified: bool) -> str:
    """One sentence on the free monthly allowance: what is left, when it lapses, when the next comes."""
    with session_scope() as session:
        status = credits.allowance_status(session, user_id=user_id)
    monthly = credits.format_credits(status["monthly_units"])
    if status["monthly_units"] <= 0:
        return ""
    if not verified:
        return f"Confirm your email address to get {monthly} free credits every month."
    lapses, upcoming = _day(status["lapses_at"]), _day(status["next_at"])
    if status["granted"]:
        return (
            f"Free allowance: {monthly} credits a month. {credits.format_credits(status['remaining_units'])} of this "
            f"month's are left; they lapse on {lapses} and the next {monthly} arrive then."
        )
    return f"Free allowance: {monthly} credits a month; the next arrive on {upcoming}."


class CreditsState(BalanceState):
    payments_enabled: bool = False
    allowance: str = ""
    orders: list[OrderRow] = []
    entries: list[LedgerLine] = []
    ledger_page: int = 1
    ledger_pages: int = 1
    orders_page: int = 1
    orders_pages: int = 1
    watched_status: str = ""  # the order just bought: pending, paid, failed...
    watched_credits: str = ""
    _watched_order: str = ""

    def _refresh(self, user_id: uuid.UUID) -> None:
        self._set_balance(user_id)
        self.allowance = allowance_text(user_id, verified=self.email_verified)
        with session_scope() as session:
            entries, entry_count = credits.ledger_page(session, user_id=user_id, page=self.ledger_page, per_page=LEDGER_PER_PAGE)
            labels = credits.reference_labels(session, [entry.reference for entry in entries])
            orders, order_count = billing.orders_page(session, user_id=user_id, page=self.orders_page, per_page=ORDERS_PER_PAGE)
        self.ledger_pages, self.orders_pages = _pages(entry_count, LEDGER_PER_PAGE), _pages(order_count, ORDERS_PER_PAGE)
        self.entries = [
            LedgerLine(
                when=_day(entry.created_at),
                what=ENTRY_LABELS.get(entry.kind, entry.kind),
                reason=labels.get(entry.reference, entry.reason),
                amount=("+" if entry.amount_units > 0 else "") + credits.format_credits(entry.amount_units),
                balance=credits.format_credits(entry.balance_after_units),
            )
            for entry in entries
        ]
        self.orders = [
            OrderRow(
                id=str(order.id),
                when=_day(order.created_at),
                plan=plan.name,
                credits=credits.format_credits(order.credits_units),
                price=_money(order.amount_cents, order.currency),
                status=order.status.replace("_", " "),
                receipt=f"/billing/receipt/{order.id}" if order.paid_at else "",
            )
            for order, plan in orders
        ]

    @rx.event
    def load(self):
        user = self._current_user()
        if user is None:
            return rx.redirect("/login?next=/credits")
        self.payments_enabled = get_settings().stripe_enabled
        self._publish(user)
        self.ledger_page = self.orders_page = 1
        self.watched_status = self.watched_credits = self._watched_order = ""
        self._refresh(user.id)
        order_id = self.router.url.query_parameters.get("order", "")
        try:
            with session_scope() as session:
                order = billing.user_order(session, user_id=user.id, order_id=uuid.UUID(order_id))
        except (ValueError, NotFound):
            return None
        self._watched_order, self.watched_credits = str(order.id), credits.format_credits(order.credits_units)
        self.watched_status = order.status
        if order.status in billing.UNSETTLED:
            return CreditsState.watch_order
        return None

    @rx.event(background=True)
    async def watch_order(self):
        """After Checkout: poll the order until the webhook has landed, then show the new balance."""
        async with self:
            user = self._current_user()
            order_id = self._watched_order
        if user is None or not order_id:
            return
        for _ in range(WATCH_SECONDS):
            await asyncio.sleep(1)
            status = await asyncio.to_thread(_order_status, user.id, uuid.UUID(order_id))
            if status in billing.UNSETTLED:
                continue
            async with self:
                if self._watched_order == order_id:
                    self.watched_status = status
                    self._refresh(user.id)
            return

    def _turn(self, *, ledger: int = 0, orders: int = 0):
        user = self._current_user()
        if user is None:
            return rx.redirect("/login?next=/credits")
        self.ledger_page = min(max(1, self.ledger_page + ledger), self.ledger_pages)
        self.orders_page = min(max(1, self.orders_page + orders), self.orders_pages)
        self._refresh(user.id)
        return None

    @rx.event
    def turn_page(self, table: str, step: int):
        """Move the ledger or the orders table by `step` pages (bounded)."""
        return self._turn(**{table: max(-1, min(1, int(step)))}) if table in ("ledger", "orders") else None


def _order_status(user_id: uuid.UUID, order_id: uuid.UUID) -> str:
    with session_scope() as session:
        return billing.user_order(session, user_id=user_id, order_id=order_id).status

