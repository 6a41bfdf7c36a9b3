"""Credits and payments: the append-only ledger, credit lots, plans and packs, orders, Stripe events.

Amounts of credit are integers of a smallest unit (`UNITS_PER_CREDIT` units make one credit), so
0.25 credit is stored exactly as 25."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from clearbg_app.clock import utcnow
from clearbg_app.models.accounts import timestamp

UNITS_PER_CREDIT = 100


def units_column(**kwargs):
    return Field(sa_type=BigInteger, **kwargs)


class EntryKind(StrEnum):
    SIGNUP_GRANT = "signup_grant"
    MONTHLY_ALLOWANCE = "monthly_allowance"
    PURCHASE = "purchase"
    SUBSCRIPTION_RENEWAL = "subscription_renewal"
    USAGE = "usage"
    REFUND_REVERSAL = "refund_reversal"
    EXPIRY = "expiry"
    ADMIN_ADJUSTMENT = "admin_adjustment"


class PlanKind(StrEnum):
    PACK = "pack"
    SUBSCRIPTION = "subscription"


class OrderStatus(StrEnum):
    PENDING = "pending"  # Checkout opened, nothing paid yet
    PROCESSING = "processing"  # Checkout completed, a delayed payment method still settling
    PAID = "paid"  # credits granted
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class CreditAccount(SQLModel, table=True):
    """One per user: the cached balance (kept equal to the ledger's sum), the lock target of every
    balance change, the Stripe customer and the subscription state."""

    __tablename__ = "credit_account"

    user_id: uuid.UUID = Field(primary_key=True, foreign_key="user_account.id", ondelete="CASCADE")
    balance_units: int = units_column(default=0)
    stripe_customer_id: str | None = Field(default=None, max_length=64, unique=True)
    subscription_id: str | None = Field(default=None, max_length=64)
    subscription_plan_id: uuid.UUID | None = Field(default=None, foreign_key="plan.id")
    subscription_status: str | None = Field(default=None, max_length=16)  # active or canceled
    updated_at: datetime = timestamp(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """One balance change; rows are only ever inserted. (kind, reference) is unique, which makes
    grants, charges and reversals idempotent."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("kind", "reference"),
        Index("ix_ledger_entry_user_created", "user_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", ondelete="CASCADE")
    kind: str = Field(max_length=24)
    amount_units: int = units_column()
    balance_after_units: int = units_column()
    reason: str = Field(max_length=200)
    reference: str = Field(max_length=120)
    created_at: datetime = timestamp(default_factory=utcnow)


class CreditLot(SQLModel, table=True):
    """Credits from one grant and how many of them are left; charges spend the soonest-expiring lot
    first. A lot without `expires_at` (a subscription's credits while subscribed) never expires."""

    __tablename__ = "credit_lot"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    entry_id: uuid.UUID = Field(foreign_key="ledger_entry.id")
    order_id: uuid.UUID | None = Field(default=None, foreign_key="credit_order.id", index=True)
    subscription_id: str | None = Field(default=None, max_length=64)
    units: int = units_column()
    remaining_units: int = units_column()
    expires_at: datetime | None = timestamp(default=None)
    created_at: datetime = timestamp(default_factory=utcnow)


class Plan(SQLModel, table=True):
    """A credit pack (one-off) or a monthly subscription; admins edit these rows."""

    __tablename__ = "plan"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=80)
    credits_units: int = units_column()
    price_cents: int
    currency: str = Field(default="eur", max_length=3)
    stripe_price_id: str | None = Field(default=None, max_length=64)
    active: bool = True
    sort_order: int = 0


class Order(SQLModel, table=True):
    """A purchase: a pack, a subscription's first payment, or one renewal invoice. Each state change
    stamps its own time, and `StripeEvent` rows keep every event that touched it."""

    __tablename__ = "credit_order"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    kind: str = Field(max_length=16)
    status: str = Field(default=OrderStatus.PENDING, max_length=20)
    credits_units: int = units_column()
    amount_cents: int
    currency: str = Field(max_length=3)
    refunded_cents: int = 0
    reversed_units: int = units_column(default=0)
    refund_shortfall_units: int = units_column(default=0)
    checkout_session_id: str | None = Field(default=None, max_length=255, unique=True)
    payment_intent_id: str | None = Field(default=None, max_length=64, index=True)
    subscription_id: str | None = Field(default=None, max_length=64)
    invoice_id: str | None = Field(default=None, max_length=64, unique=True)
    receipt_url: str | None = Field(default=None, max_length=500)
    created_at: datetime = timestamp(default_factory=utcnow)
    paid_at: datetime | None = timestamp(default=None)
    failed_at: datetime | None = timestamp(default=None)
    refunded_at: datetime | None = timestamp(default=None)


class StripeEvent(SQLModel, table=True):
    """Every webhook event handled, once: the primary key makes a second delivery a no-op."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=64)
    order_id: uuid.UUID | None = Field(default=None, foreign_key="credit_order.id", index=True)
    outcome: str = Field(max_length=200)
    created_at: datetime = timestamp()  # Stripe's time of the event
    received_at: datetime = timestamp(default_factory=utcnow)
