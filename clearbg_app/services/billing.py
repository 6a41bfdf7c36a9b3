"""Payments through Stripe: plans and packs, orders, Checkout Sessions, the Customer Portal, and the
webhook events that grant, refuse or take back credits.

Webhook handling is idempotent on the event id (the `StripeEvent` row is claimed first) and on the
credit grants themselves (`(kind, reference)` is unique in the ledger), and it tolerates events that
arrive out of order: an order remembers refunds that came before its payment and settles them then.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from stripe.params import PriceCreateParams
from stripe.params.checkout import SessionCreateParams

from clearbg_app.clock import utcnow
from clearbg_app.db import session_scope
from clearbg_app.models import CreditAccount, EntryKind, Order, OrderStatus, Plan, PlanKind, StripeEvent, User
from clearbg_app.services import analytics, credits
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.settings import get_settings

log = logging.getLogger(__name__)

UNSETTLED = (OrderStatus.PENDING, OrderStatus.PROCESSING)
HANDLED_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "invoice.paid",
    "charge.refunded",
    "customer.subscription.deleted",
)


class BillingError(ServiceError):
    """A purchase that cannot start; the message says why."""


class BillingUnavailable(BillingError):
    """Stripe keys are not configured: purchases are off, everything else works."""

    def __init__(self) -> None:
        super().__init__("Payments are not set up on this ClearBG server, so credits cannot be bought here.")


def client(*, timeout: float | None = None) -> stripe.StripeClient:
    """The Stripe client; with a `timeout` (seconds), one try that gives up after it (for a call made
    while a person waits, whose failure something else retries)."""
    settings = get_settings()
    if not settings.stripe_enabled:
        raise BillingUnavailable()
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        max_network_retries=2 if timeout is None else 0,
        http_client=stripe.new_default_http_client(timeout=timeout) if timeout is not None else None,
    )


# Plans and orders --------------------------------------------------------------------------------------


def list_plans(session: Session, *, kind: PlanKind | None = None) -> list[Plan]:
    query = select(Plan).where(Plan.active == True)  # noqa: E712 - SQL comparison
    if kind:
        query = query.where(Plan.kind == kind)
    return list(session.exec(query.order_by(col(Plan.sort_order))).all())


def plan_by_code(session: Session, code: str) -> Plan:
    plan = session.exec(select(Plan).where(Plan.code == code, Plan.active == True)).first()  # noqa: E712
    if plan is None:
        raise NotFound("That pack or plan is not offered.")
    return plan


def new_order(session: Session, *, user_id: uuid.UUID, plan: Plan, now: datetime | None = None, **fields: Any) -> Order:
    """A pending order for one plan at its current price."""
    order = Order(
        user_id=user_id, plan_id=plan.id, kind=plan.kind,
        credits_units=plan.credits_units, amount_cents=plan.price_cents, currency=plan.currency,
        created_at=now or utcnow(), **fields,
    )  # fmt: skip
    session.add(order)
    session.flush()
    return order


def orders_page(session: Session, *, user_id: uuid.UUID, page: int, per_page: int = 10) -> tuple[list[tuple[Order, Plan]], int]:
    """One page (1-based) of the user's orders with their plans, newest first, and the total count."""
    total = session.exec(select(func.count()).select_from(Order).where(Order.user_id == user_id)).one()
    rows = session.exec(
        select(Order, Plan)
        .join(Plan, col(Plan.id) == col(Order.plan_id))
        .where(Order.user_id == user_id)
        .order_by(col(Order.created_at).desc())
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    ).all()
    return [(order, plan) for order, plan in rows], int(total)


def user_order(session: Session, *, user_id: uuid.UUID, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id, populate_existing=True)
    if order is None or order.user_id != user_id:
        raise NotFound("No such order.")
    return order


# Checkout and the portal -------------------------------------------------------------------------------


def has_active_subscription(session: Session, *, user_id: uuid.UUID) -> bool:
    account = session.get(CreditAccount, user_id)
    return account is not None and account.subscription_status == "active"


def ensure_customer(session: Session, *, user: User) -> str:
    """The user's Stripe customer id, created on first purchase."""
    account = credits.locked_account(session, user_id=user.id)
    if not account.stripe_customer_id:
        customer = client().v1.customers.create(
            params={"email": user.email, "name": user.display_name, "metadata": {"user_id": str(user.id)}},
            options={"idempotency_key": f"customer-{user.id}"},
        )
        account.stripe_customer_id = customer.id
        session.add(account)
        session.flush()
    return account.stripe_customer_id


def ensure_price(session: Session, *, plan: Plan) -> str:
    """The plan's Stripe price id; a plan without one gets a Price created from its row."""
    if not plan.stripe_price_id:
        params: PriceCreateParams = {
            "currency": plan.currency,
            "unit_amount": plan.price_cents,
            "product_data": {"name": f"ClearBG {plan.name}"},
            "metadata": {"plan_code": plan.code},
        }
        if plan.kind == PlanKind.SUBSCRIPTION:
            params["recurring"] = {"interval": "month"}
        plan.stripe_price_id = client().v1.prices.create(params=params).id
        session.add(plan)
        session.flush()
    return plan.stripe_price_id


def start_checkout(session: Session, *, user: User, plan_code: str, now: datetime | None = None) -> tuple[Order, str]:
    """Open a Checkout Session for a pack or a subscription; returns the pending order and the URL to
    send the browser to. Only confirmed accounts may buy. The order is committed before Stripe is
    called, so every attempt is on record (a failed call marks it failed)."""
    client()  # refuse before anything is written when Stripe is off
    if not user.is_verified:
        raise BillingError("Confirm your email address before buying credits.")
    plan = plan_by_code(session, plan_code)
    customer = ensure_customer(session, user=user)
    price = ensure_price(session, plan=plan)
    order = new_order(session, user_id=user.id, plan=plan, now=now)
    analytics.record_event(session, user_id=user.id, name="checkout_started", now=now)
    session.commit()
    base = get_settings().public_url.rstrip("/")
    metadata = {"order_id": str(order.id), "user_id": str(user.id), "plan_code": plan.code}
    params: SessionCreateParams = {
        "mode": "payment" if plan.kind == PlanKind.PACK else "subscription",
        "customer": customer,
        "client_reference_id": str(order.id),
        "line_items": [{"price": price, "quantity": 1}],
        "metadata": metadata,
        "success_url": f"{base}/credits?order={order.id}",
        "cancel_url": f"{base}/pricing?cancelled=1",
    }
    if plan.kind == PlanKind.PACK:
        params["payment_intent_data"] = {"metadata": metadata}
    else:
        params["subscription_data"] = {"metadata": metadata}
    try:
        checkout = client().v1.checkout.sessions.create(params=params, options={"idempotency_key": f"checkout-{order.id}"})
    except stripe.StripeError as error:
        log.warning("checkout for order %s failed: %s", order.id, type(error).__name__)
        order.status, order.failed_at = OrderStatus.FAILED, utcnow()
        session.add(order)
        session.commit()
        raise BillingError("The payment service could not be reached; nothing was charged. Please try again.") from None
    order.checkout_session_id = checkout.id
    session.add(order)
    session.commit()
    if not checkout.url:
        raise BillingError("The payment service opened no payment page; nothing was charged. Please try again.")
    return order, checkout.url


def _ended_at_stripe(stripe_client: stripe.StripeClient, subscription_id: str) -> bool:
    """Whether Stripe says the subscription is over: canceled, or unknown to it (Stripe answers a cancel
    of an already canceled subscription with "No such subscription")."""
    try:
        return stripe_client.v1.subscriptions.retrieve(subscription_id).status == "canceled"
    except stripe.InvalidRequestError as error:
        return error.http_status == 404


def cancel_subscription(
    session: Session, *, user_id: uuid.UUID, now: datetime | None = None, timeout: float | None = None
) -> str | None:
    """Cancel the user's active subscription at Stripe now (DELETE /v1/subscriptions/{id}: no renewal, no
    refund) and record it (the caller commits); returns the canceled subscription's id, or None when
    there was none. `BillingError` when Stripe cannot be reached or refuses: the subscription stays active here, so
    a later call tries again; a subscription already over at Stripe is recorded as canceled. `timeout`:
    see `client`."""
    account = session.get(CreditAccount, user_id, populate_existing=True)
    if account is None or account.subscription_status != "active" or not account.subscription_id:
        return None
    subscription_id, stripe_client = account.subscription_id, client(timeout=timeout)
    try:
        stripe_client.v1.subscriptions.cancel(subscription_id)
    except stripe.InvalidRequestError as error:
        try:
            ended = _ended_at_stripe(stripe_client, subscription_id)
        except stripe.StripeError:
            ended = False
        if not ended:
            log.warning("cancelling subscription %s refused: %s", subscription_id, error.user_message)
            raise BillingError("Stripe refused to cancel the subscription; it will be tried again.") from None
    except stripe.StripeError as error:
        log.warning("cancelling subscription %s failed: %s", subscription_id, type(error).__name__)
        raise BillingError("The payment service could not be reached; cancelling the subscription is tried again later.") from None
    _subscription_ended(session, user_id=user_id, subscription_id=subscription_id, now=now or utcnow())
    return subscription_id


def portal_url(session: Session, *, user: User) -> str:
    """A Customer Portal link where the user manages subscriptions and cards."""
    account = session.get(CreditAccount, user.id)
    if account is None or not account.stripe_customer_id:
        raise BillingError("You have no subscription or saved card to manage yet.")
    base = get_settings().public_url.rstrip("/")
    portal = client().v1.billing_portal.sessions.create(
        params={"customer": account.stripe_customer_id, "return_url": f"{base}/credits"}
    )
    return portal.url


def receipt_url(session: Session, *, user_id: uuid.UUID, order_id: uuid.UUID) -> str:
    """Stripe's receipt for a paid order (looked up from the payment's charge the first time)."""
    order = user_order(session, user_id=user_id, order_id=order_id)
    if not order.receipt_url and order.payment_intent_id and order.paid_at:
        intent = client().v1.payment_intents.retrieve(order.payment_intent_id)
        charge_id = intent.latest_charge if isinstance(intent.latest_charge, str) else getattr(intent.latest_charge, "id", None)
        if charge_id:
            order.receipt_url = client().v1.charges.retrieve(charge_id).to_dict().get("receipt_url")
            session.add(order)
    if not order.receipt_url:
        raise NotFound("Stripe has no receipt for this order yet.")
    return order.receipt_url


# Webhook events ----------------------------------------------------------------------------------------


class MalformedEvent(ServiceError):
    """A signed webhook event ClearBG cannot read: not JSON, or not shaped as the Stripe objects it handles."""


def _text(limit: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and len(value) <= limit and "\x00" not in value


def _ref(limit: int) -> Callable[[Any], bool]:
    """An id, or the expanded object carrying it (`_id` reads either)."""
    text = _text(limit)
    return lambda value: text(value) or (isinstance(value, dict) and (value.get("id") is None or text(value["id"])))


def _whole(limit: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _is(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, kind)


CENTS, ID, OBJECT = _whole(2**31 - 1), _ref(64), _is(dict)  # the columns: 32-bit cents, ids of 64 characters
_ENVELOPE = {("id",): _text(255), ("type",): _text(255), ("created",): _whole(253402300799), ("data",): OBJECT, ("data", "object"): OBJECT}
_DETAILS = {("subscription",): ID, ("metadata",): OBJECT, ("metadata", "order_id"): _text(64), ("metadata", "plan_code"): _text(32)}
_LINE = {("pricing",): OBJECT, ("pricing", "price_details"): OBJECT, ("pricing", "price_details", "price"): ID, ("price",): ID}
_CHECKOUT = {
    ("id",): _text(255), ("metadata",): OBJECT, ("metadata", "order_id"): _text(64), ("client_reference_id",): _text(200),
    ("payment_intent",): ID, ("subscription",): ID, ("payment_status",): _text(64),
}  # fmt: skip
# Every field a handler reads, and what it must be when present (absent or null is always allowed).
EVENT_FIELDS: dict[str, dict[tuple[str, ...], Callable[[Any], bool]]] = {
    "checkout.session.completed": _CHECKOUT,
    "checkout.session.async_payment_succeeded": _CHECKOUT,
    "checkout.session.async_payment_failed": _CHECKOUT,
    "invoice.paid": {
        ("id",): _text(64), ("customer",): ID, ("subscription",): ID, ("amount_paid",): CENTS, ("payment_intent",): ID,
        ("hosted_invoice_url",): _text(500), ("parent",): OBJECT, ("parent", "subscription_details"): OBJECT,
        **{("parent", "subscription_details", *path): valid for path, valid in _DETAILS.items()},
        ("subscription_details",): OBJECT, **{("subscription_details", *path): valid for path, valid in _DETAILS.items()},
        ("lines",): OBJECT, ("lines", "data"): _is(list), ("lines", "data", "*"): OBJECT,
        **{("lines", "data", "*", *path): valid for path, valid in _LINE.items()},
    },
    "charge.refunded": {("id",): _text(64), ("payment_intent",): ID, ("invoice",): ID, ("amount_refunded",): CENTS},
    "customer.subscription.deleted": {("id",): _text(64), ("customer",): ID},
}  # fmt: skip


def _values_at(data: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """The values at `path` ("*": each item of a list); a step into something that is not an object
    (or list) yields nothing: that value's own entry checks its type."""
    if not path:
        yield data
    elif path[0] == "*" and isinstance(data, list):
        for item in data:
            yield from _values_at(item, path[1:])
    elif isinstance(data, dict) and path[0] in data:
        yield from _values_at(data[path[0]], path[1:])


def _check_fields(data: dict, fields: dict, where: str) -> None:
    for path, valid in fields.items():
        if any(value is not None and not valid(value) for value in _values_at(data, path)):
            raise MalformedEvent(f"{where}{'.'.join(path)} is not what Stripe sends")


def parse_event(payload: bytes) -> dict:
    """The webhook event in a (verified) body, checked before anything is applied: an envelope with
    `id`, `type` and `data.object`, and for the events ClearBG handles, every field read of the right
    type and size. `MalformedEvent` otherwise."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        raise MalformedEvent("the body is not JSON") from None
    if not isinstance(event, dict) or not all(isinstance(event.get(name), str) and event[name] for name in ("id", "type")):
        raise MalformedEvent("an event has a text id and type")
    _check_fields(event, _ENVELOPE, "")
    if not isinstance(event.get("data"), dict) or not isinstance(event["data"].get("object"), dict):
        raise MalformedEvent("data.object is missing")
    if fields := EVENT_FIELDS.get(event["type"]):
        if not event["data"]["object"].get("id"):
            raise MalformedEvent("data.object.id is missing")
        _check_fields(event["data"]["object"], fields, "data.object.")
    return event


def handle_event(session: Session, *, event: dict, now: datetime | None = None) -> str:
    """Apply one verified webhook event; a second delivery of the same event id does nothing.
    Returns a short outcome, also stored with the event."""
    now = now or utcnow()
    if session.get(StripeEvent, event["id"]) is not None:
        return "duplicate"
    record = StripeEvent(
        id=event["id"], type=event["type"][:64], outcome="received", received_at=now,
        created_at=datetime.fromtimestamp(int(event.get("created") or now.timestamp()), UTC),
    )  # fmt: skip
    session.add(record)
    session.flush()  # claims the id: a concurrent delivery waits here, then fails on the primary key
    handler = _HANDLERS.get(event["type"])
    outcome, order = handler(session, event["data"]["object"], now) if handler else ("ignored: not an event ClearBG uses", None)
    record.outcome, record.order_id = outcome[:200], order.id if order else None
    session.add(record)
    if order is None and handler:
        log.warning("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return outcome


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _checkout_order(session: Session, checkout: dict) -> Order | None:
    """The order a Checkout Session belongs to, if its metadata names one of ours and they match."""
    order_id = _uuid((checkout.get("metadata") or {}).get("order_id") or checkout.get("client_reference_id"))
    order = session.get(Order, order_id, with_for_update=True) if order_id else None
    if order is None or (order.checkout_session_id and order.checkout_session_id != checkout.get("id")):
        return None
    return order


def _account_by_customer(session: Session, customer: Any) -> CreditAccount | None:
    if isinstance(customer, dict):
        customer = customer.get("id")
    if not customer:
        return None
    return session.exec(select(CreditAccount).where(CreditAccount.stripe_customer_id == customer)).first()


def _fulfil(session: Session, order: Order, now: datetime) -> str:
    """Grant an order's credits once, then settle any refund that arrived first."""
    if order.paid_at is not None or order.status == OrderStatus.FAILED:
        return f"already {order.status}"
    settings = get_settings()
    plan = session.get_one(Plan, order.plan_id)
    expires_at: datetime | None
    if order.kind == PlanKind.PACK:
        kind, expires_at = EntryKind.PURCHASE, now + timedelta(days=settings.credit_expiry_days)
        reason = f"Pack of {plan.name}"
    else:
        account = session.get(CreditAccount, order.user_id, populate_existing=True)
        ended = account and account.subscription_id == order.subscription_id and account.subscription_status == "canceled"
        kind, expires_at = EntryKind.SUBSCRIPTION_RENEWAL, (now + timedelta(days=settings.credit_expiry_days) if ended else None)
        reason = f"{plan.name} subscription"
    credits.grant(
        session, user_id=order.user_id, units=order.credits_units, kind=kind, reason=reason,
        reference=f"order:{order.id}", expires_at=expires_at, order_id=order.id,
        subscription_id=order.subscription_id, now=now,
    )  # fmt: skip
    order.paid_at = now
    if order.status in UNSETTLED:
        order.status = OrderStatus.PAID
    session.add(order)
    _settle_refunds(session, order, now)
    return f"paid: {credits.format_credits(order.credits_units)} credits granted"


def _settle_refunds(session: Session, order: Order, now: datetime) -> None:
    """Take back the credits matching the refunded share of the payment, as far as they are unspent."""
    if order.paid_at is None or order.refunded_cents <= 0 or order.amount_cents <= 0:
        return
    share = Decimal(min(order.refunded_cents, order.amount_cents)) / Decimal(order.amount_cents)
    target = credits.credit_units_rounded(order.credits_units * share)
    due = target - order.reversed_units - order.refund_shortfall_units
    if due <= 0:
        return
    taken, short = credits.reverse_unspent(
        session, user_id=order.user_id, order_id=order.id, units=due,
        reason=f"Refund of {order.refunded_cents / 100:.2f} {order.currency.upper()}",
        reference=f"refund:{order.id}:{order.refunded_cents}", now=now,
    )  # fmt: skip
    order.reversed_units += taken
    order.refund_shortfall_units += short
    session.add(order)


def _checkout_completed(session: Session, checkout: dict, now: datetime) -> tuple[str, Order | None]:
    order = _checkout_order(session, checkout)
    if order is None:
        return "unknown order", None
    order.checkout_session_id = checkout.get("id")
    order.payment_intent_id = order.payment_intent_id or _id(checkout.get("payment_intent"))
    order.subscription_id = order.subscription_id or _id(checkout.get("subscription"))
    session.add(order)
    if order.kind == PlanKind.SUBSCRIPTION:
        _subscription_started(session, order)
        if order.status == OrderStatus.PENDING:
            order.status = OrderStatus.PROCESSING  # the credits come with the invoice
        return f"subscription {order.status}", order
    if checkout.get("payment_status") in ("paid", "no_payment_required"):
        return _fulfil(session, order, now), order
    if order.status == OrderStatus.PENDING:
        order.status = OrderStatus.PROCESSING
    return "processing: waiting for a delayed payment", order


def _async_succeeded(session: Session, checkout: dict, now: datetime) -> tuple[str, Order | None]:
    order = _checkout_order(session, checkout)
    if order is None:
        return "unknown order", None
    order.payment_intent_id = order.payment_intent_id or _id(checkout.get("payment_intent"))
    return _fulfil(session, order, now), order


def _async_failed(session: Session, checkout: dict, now: datetime) -> tuple[str, Order | None]:
    order = _checkout_order(session, checkout)
    if order is None:
        return "unknown order", None
    if order.paid_at is None and order.status in UNSETTLED:
        order.status, order.failed_at = OrderStatus.FAILED, now
        session.add(order)
        return "failed: no credits granted", order
    return f"already {order.status}", order


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _subscription_started(session: Session, order: Order) -> None:
    account = credits.locked_account(session, user_id=order.user_id)
    if account.subscription_id == order.subscription_id and account.subscription_status == "canceled":
        return  # the deletion was delivered first
    account.subscription_id, account.subscription_plan_id, account.subscription_status = order.subscription_id, order.plan_id, "active"
    session.add(account)


def _invoice_paid(session: Session, invoice: dict, now: datetime) -> tuple[str, Order | None]:
    account = _account_by_customer(session, invoice.get("customer"))
    if account is None:
        return "unknown customer", None
    details = (invoice.get("parent") or {}).get("subscription_details") or invoice.get("subscription_details") or {}
    subscription_id = _id(invoice.get("subscription")) or _id(details.get("subscription"))
    if not subscription_id:
        return "ignored: not a subscription invoice", None
    metadata = details.get("metadata") or {}
    order = session.exec(select(Order).where(Order.invoice_id == invoice["id"]).with_for_update()).first()
    first = session.get(Order, _uuid(metadata.get("order_id")), with_for_update=True) if _uuid(metadata.get("order_id")) else None
    if order is None and first is not None and first.user_id == account.user_id and first.invoice_id is None:
        order = first  # the subscription's first invoice pays the Checkout order
    if order is None:
        plan = _invoice_plan(session, invoice, metadata, account)
        if plan is None:
            return "unknown plan", None
        order = new_order(session, user_id=account.user_id, plan=plan, now=now, status=OrderStatus.PROCESSING)
        order.amount_cents = int(invoice.get("amount_paid") or plan.price_cents)
    order.invoice_id, order.subscription_id = invoice["id"], subscription_id
    order.payment_intent_id = order.payment_intent_id or _id(invoice.get("payment_intent"))
    order.receipt_url = invoice.get("hosted_invoice_url") or order.receipt_url
    session.add(order)
    _subscription_started(session, order)
    return _fulfil(session, order, now), order


def _invoice_plan(session: Session, invoice: dict, metadata: dict, account: CreditAccount) -> Plan | None:
    if code := metadata.get("plan_code"):
        return session.exec(select(Plan).where(Plan.code == code)).first()
    for line in (invoice.get("lines") or {}).get("data") or []:
        price = _id(((line.get("pricing") or {}).get("price_details") or {}).get("price") or line.get("price"))
        if price and (plan := session.exec(select(Plan).where(Plan.stripe_price_id == price)).first()):
            return plan
    return session.get(Plan, account.subscription_plan_id) if account.subscription_plan_id else None


def _charge_refunded(session: Session, charge: dict, now: datetime) -> tuple[str, Order | None]:
    intent = _id(charge.get("payment_intent"))
    order = session.exec(select(Order).where(Order.payment_intent_id == intent).with_for_update()).first() if intent else None
    if order is None and (invoice := _id(charge.get("invoice"))):
        order = session.exec(select(Order).where(Order.invoice_id == invoice).with_for_update()).first()
    if order is None and intent:  # the refund came before the Checkout completion: ask Stripe whose payment it is
        order_id = _uuid(client().v1.payment_intents.retrieve(intent).metadata.to_dict().get("order_id"))
        order = session.get(Order, order_id, with_for_update=True) if order_id else None
        if order is not None:
            order.payment_intent_id = intent
    if order is None:
        return "unknown order", None
    refunded = int(charge.get("amount_refunded") or 0)
    if refunded <= order.refunded_cents:
        return "refund already applied", order
    order.refunded_cents = refunded
    order.status = OrderStatus.REFUNDED if refunded >= order.amount_cents else OrderStatus.PARTIALLY_REFUNDED
    order.refunded_at = now
    session.add(order)
    _settle_refunds(session, order, now)
    return (
        f"refunded {refunded / 100:.2f}: {credits.format_credits(order.reversed_units)} credits reversed, "
        f"{credits.format_credits(order.refund_shortfall_units)} already spent"
    ), order


def _subscription_ended(session: Session, *, user_id: uuid.UUID, subscription_id: str, now: datetime) -> str:
    """Record that a subscription ended (at Stripe): the account's is canceled, its rolled-over lots now expire."""
    account = credits.locked_account(session, user_id=user_id)
    if account.subscription_id in (None, subscription_id):
        account.subscription_id, account.subscription_status = subscription_id, "canceled"
        session.add(account)
    expires_at = now + timedelta(days=get_settings().credit_expiry_days)
    lots = credits.set_lot_expiry(session, user_id=user_id, subscription_id=subscription_id, expires_at=expires_at)
    return f"subscription ended: {lots} credit lots now expire on {expires_at:%Y-%m-%d}"


def _subscription_deleted(session: Session, subscription: dict, now: datetime) -> tuple[str, Order | None]:
    account = _account_by_customer(session, subscription.get("customer"))
    if account is None:
        return "unknown customer", None
    outcome = _subscription_ended(session, user_id=account.user_id, subscription_id=subscription["id"], now=now)
    order = session.exec(
        select(Order).where(Order.subscription_id == subscription["id"]).order_by(col(Order.created_at).desc())
    ).first()
    return outcome, order


_HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _async_succeeded,
    "checkout.session.async_payment_failed": _async_failed,
    "invoice.paid": _invoice_paid,
    "charge.refunded": _charge_refunded,
    "customer.subscription.deleted": _subscription_deleted,
}
assert tuple(_HANDLERS) == HANDLED_EVENTS and set(EVENT_FIELDS) == set(HANDLED_EVENTS)


def apply_event(event: dict) -> str:
    """`handle_event` in its own transaction; a concurrent delivery of the same event id is a duplicate."""
    try:
        with session_scope() as session:
            return handle_event(session, event=event)
    except IntegrityError:
        with session_scope() as session:
            if session.get(StripeEvent, event["id"]) is not None:
                return "duplicate"
        raise
