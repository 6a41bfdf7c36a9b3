"""Credits: pricing, the append-only ledger, charges, grants, reversals, expiry and the monthly allowance.

Every balance change locks the user's `CreditAccount` row (`SELECT ... FOR UPDATE` on PostgreSQL; on
SQLite the first write takes the database's single writer lock), inserts one `LedgerEntry` and moves
the cached balance in the same transaction. Nothing here commits: the caller's transaction holds the
charge and the result it pays for together, so a failure between them leaves no charge behind.

Credits come in lots (`CreditLot`); charges spend the lot that expires soonest first, so expiry and
refunds only ever take back credits that are still unspent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.metrics import count_charge
from clearbg_app.models import Batch, BatchItem, CreditAccount, CreditLot, EntryKind, LedgerEntry, ProcessedImage, User
from clearbg_app.models.billing import UNITS_PER_CREDIT
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings

Channel = Literal["web", "api"]
PREVIEW_API_UNITS = UNITS_PER_CREDIT // 4  # 0.25 credit
FULL_RESOLUTION_UNITS = UNITS_PER_CREDIT  # 1 credit


class InsufficientCredits(ServiceError):
    """The balance does not cover the price."""

    status, code, title = 402, "insufficient_credits", "Insufficient credits"

    def __init__(self, *, needed: int, balance: int) -> None:
        self.needed, self.balance = needed, balance
        super().__init__(
            f"Insufficient credits: this costs {format_credits(needed)} credit"
            f"{'' if needed == UNITS_PER_CREDIT else 's'} and your balance is {format_credits(balance)}."
        )


class CreditError(ServiceError):
    """A grant or adjustment that cannot be made as asked."""


def to_units(credits: Decimal | int | str) -> int:
    """Credits (e.g. "0.25") as whole units; finer fractions are refused, not rounded."""
    try:
        value = Decimal(str(credits)) * UNITS_PER_CREDIT
    except InvalidOperation:
        raise CreditError(f"{credits!r} is not a number of credits.") from None
    if value != value.to_integral_value():
        raise CreditError(f"Credits are counted in steps of {Decimal(1) / UNITS_PER_CREDIT}.")
    return int(value)


def format_credits(units: int) -> str:
    """Units as a credit amount for people: 1250 -> "12.5", 100 -> "1", 25 -> "0.25"."""
    text = f"{Decimal(units) / UNITS_PER_CREDIT:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def price_for(*, channel: Channel, megapixels: float) -> int:
    """The price in units of one successful image: a preview (<= the preview size) is free in the web
    app and 0.25 credit through the API; full resolution is 1 credit. Batches call this per item."""
    if channel not in ("web", "api"):
        raise ValueError(f"unknown channel {channel!r}")
    if megapixels <= 0:
        raise ValueError("megapixels must be positive")
    if megapixels <= get_settings().preview_megapixels:
        return 0 if channel == "web" else PREVIEW_API_UNITS
    return FULL_RESOLUTION_UNITS


# The locked account ------------------------------------------------------------------------------------


def locked_account(session: Session, *, user_id: uuid.UUID) -> CreditAccount:
    """The user's account row, created if missing, locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(CreditAccount).values(user_id=user_id, balance_units=0, updated_at=utcnow()).on_conflict_do_nothing()
    )
    query = select(CreditAccount).where(CreditAccount.user_id == user_id).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).one()


def balance(session: Session, *, user_id: uuid.UUID) -> int:
    """The current balance in units (0 for a user who never had credits)."""
    account = session.get(CreditAccount, user_id, populate_existing=True)
    return account.balance_units if account else 0


def ledger_sum(session: Session, *, user_id: uuid.UUID) -> int:
    """The balance as the ledger derives it (tests and audits compare it with the cached one)."""
    total = session.exec(select(func.coalesce(func.sum(LedgerEntry.amount_units), 0)).where(LedgerEntry.user_id == user_id))
    return int(total.one())


def _existing(session: Session, kind: str, reference: str) -> LedgerEntry | None:
    return session.exec(select(LedgerEntry).where(LedgerEntry.kind == kind, LedgerEntry.reference == reference)).first()


def charged(session: Session, *, user_id: uuid.UUID, reference: str) -> bool:
    """Whether `reference` was already charged to this user (charging it again costs nothing)."""
    done = _existing(session, EntryKind.USAGE, reference)
    return done is not None and done.user_id == user_id


def _write(session: Session, account: CreditAccount, *, amount: int, kind: str, reason: str, reference: str, now: datetime) -> LedgerEntry:
    account.balance_units += amount
    account.updated_at = now
    entry = LedgerEntry(
        user_id=account.user_id, kind=kind, amount_units=amount, balance_after_units=account.balance_units,
        reason=reason[:200], reference=reference[:120], created_at=now,
    )  # fmt: skip
    session.add(account)
    session.add(entry)
    session.flush()
    return entry


def _spend_lots(session: Session, *, user_id: uuid.UUID, units: int) -> None:
    """Take `units` from the lots, soonest expiry first (lots that never expire last)."""
    lots = session.exec(
        select(CreditLot)
        .where(CreditLot.user_id == user_id, CreditLot.remaining_units > 0)
        .order_by(col(CreditLot.expires_at).asc().nulls_last(), col(CreditLot.created_at))
    ).all()
    for lot in lots:
        if units <= 0:
            break
        taken = min(units, lot.remaining_units)
        lot.remaining_units -= taken
        units -= taken
        session.add(lot)


# Changes -----------------------------------------------------------------------------------------------


def grant(
    session: Session,
    *,
    user_id: uuid.UUID,
    units: int,
    kind: EntryKind,
    reason: str,
    reference: str,
    expires_at: datetime | None = None,
    order_id: uuid.UUID | None = None,
    subscription_id: str | None = None,
    now: datetime | None = None,
) -> LedgerEntry | None:
    """Add credits as a new lot. Returns None (and changes nothing) when (kind, reference) was granted before."""
    if units <= 0:
        raise CreditError("A grant must add a positive number of credits.")
    now = now or utcnow()
    account = locked_account(session, user_id=user_id)
    if _existing(session, kind, reference):
        return None
    entry = _write(session, account, amount=units, kind=kind, reason=reason, reference=reference, now=now)
    session.add(
        CreditLot(
            user_id=user_id, entry_id=entry.id, order_id=order_id, subscription_id=subscription_id,
            units=units, remaining_units=units, expires_at=expires_at, created_at=now,
        )
    )  # fmt: skip
    session.flush()
    return entry


def charge(
    session: Session, *, user_id: uuid.UUID, units: int, reason: str, reference: str, now: datetime | None = None
) -> LedgerEntry | None:
    """Charge `units` for one successful result, inside the caller's transaction (commit them together).

    `reference` names what is paid for (an image id, an API request id); charging the same reference
    again returns the first entry and charges nothing. A price of 0 writes nothing. Raises
    `InsufficientCredits` when the balance is short; the balance never goes below zero.
    """
    if units < 0:
        raise CreditError("A charge cannot be negative.")
    if units == 0:
        return None
    now = now or utcnow()
    account = locked_account(session, user_id=user_id)
    if done := _existing(session, EntryKind.USAGE, reference):
        if done.user_id != user_id:
            raise CreditError("That reference was charged to another account.")
        return done
    if account.balance_units < units:
        raise InsufficientCredits(needed=units, balance=account.balance_units)
    _spend_lots(session, user_id=user_id, units=units)
    count_charge(session, units)
    return _write(session, account, amount=-units, kind=EntryKind.USAGE, reason=reason, reference=reference, now=now)


def adjust(
    session: Session, *, user_id: uuid.UUID, units: int, reason: str, admin: User, now: datetime | None = None
) -> LedgerEntry:
    """An administrator's correction: positive adds a lot that never expires, negative spends like a charge."""
    if not admin.is_admin:
        raise PermissionError("only administrators adjust balances")
    if units == 0 or not reason.strip():
        raise CreditError("An adjustment needs a non-zero amount and a reason.")
    reference = f"adjust:{uuid.uuid4()}"
    full_reason = f"{reason.strip()} (by {admin.email})"
    if units > 0:
        entry = grant(session, user_id=user_id, units=units, kind=EntryKind.ADMIN_ADJUSTMENT, reason=full_reason, reference=reference, now=now)
        assert entry is not None  # a fresh reference
        return entry
    now = now or utcnow()
    account = locked_account(session, user_id=user_id)
    if account.balance_units < -units:
        raise InsufficientCredits(needed=-units, balance=account.balance_units)
    _spend_lots(session, user_id=user_id, units=-units)
    return _write(session, account, amount=units, kind=EntryKind.ADMIN_ADJUSTMENT, reason=full_reason, reference=reference, now=now)


def reverse_unspent(
    session: Session, *, user_id: uuid.UUID, order_id: uuid.UUID, units: int, reason: str, reference: str,
    now: datetime | None = None,
) -> tuple[int, int]:  # fmt: skip
    """Take back up to `units` of an order's credits that are still unspent (a refund). Returns
    (reversed, shortfall): the balance never goes negative, what was already spent is the shortfall.
    The same reference twice reverses nothing more."""
    now = now or utcnow()
    account = locked_account(session, user_id=user_id)
    if _existing(session, EntryKind.REFUND_REVERSAL, reference):
        return 0, 0
    lots = session.exec(select(CreditLot).where(CreditLot.order_id == order_id, CreditLot.remaining_units > 0)).all()
    reversed_units = 0
    for lot in lots:
        taken = min(units - reversed_units, lot.remaining_units)
        lot.remaining_units -= taken
        reversed_units += taken
        session.add(lot)
    shortfall = units - reversed_units
    note = f"{reason}; {format_credits(shortfall)} credits already spent" if shortfall else reason
    _write(session, account, amount=-reversed_units, kind=EntryKind.REFUND_REVERSAL, reason=note, reference=reference, now=now)
    return reversed_units, shortfall


def set_lot_expiry(session: Session, *, user_id: uuid.UUID, subscription_id: str, expires_at: datetime) -> int:
    """Give a subscription's rolled-over lots an expiry date (when the subscription ends)."""
    locked_account(session, user_id=user_id)
    lots = session.exec(
        select(CreditLot).where(
            CreditLot.subscription_id == subscription_id, CreditLot.remaining_units > 0, col(CreditLot.expires_at).is_(None)
        )
    ).all()
    for lot in lots:
        lot.expires_at = expires_at
        session.add(lot)
    return len(lots)


# Scheduled -------------------------------------------------------------------------------------------


def expire_due(session: Session, *, now: datetime | None = None) -> int:
    """Write an expiry entry for the unspent rest of every lot past its date; returns how many."""
    now = now or utcnow()
    due = session.exec(
        select(CreditLot.id, CreditLot.user_id).where(CreditLot.remaining_units > 0, col(CreditLot.expires_at) <= now)
    ).all()
    count = 0
    for lot_id, user_id in due:
        account = locked_account(session, user_id=user_id)
        lot = session.get(CreditLot, lot_id, populate_existing=True)
        if lot is None or lot.remaining_units <= 0:
            continue  # spent meanwhile
        expired, lot.remaining_units = lot.remaining_units, 0
        session.add(lot)
        _write(
            session, account, amount=-expired, kind=EntryKind.EXPIRY,
            reason=f"{format_credits(expired)} unused credits expired", reference=f"lot:{lot.id}", now=now,
        )  # fmt: skip
        count += 1
    return count


def month_start(moment: datetime) -> datetime:
    moment = as_utc(moment)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month_start(moment: datetime) -> datetime:
    return month_start(month_start(moment) + timedelta(days=32))


def allowance_reference(*, user_id: uuid.UUID, now: datetime) -> str:
    return f"allowance:{month_start(now):%Y-%m}:{user_id}"


def grant_allowance(session: Session, *, user_id: uuid.UUID, now: datetime | None = None) -> LedgerEntry | None:
    """This month's free credits for one verified account, lapsing at month end. The confirmation of
    an email address and the hourly job both call this; the reference makes it once per month, so
    whichever comes first grants and the other changes nothing (None)."""
    now = now or utcnow()
    units = to_units(get_settings().free_monthly_credits)
    if units <= 0:
        return None
    return grant(
        session, user_id=user_id, units=units, kind=EntryKind.MONTHLY_ALLOWANCE,
        reason=f"Free allowance for {month_start(now):%Y-%m}", reference=allowance_reference(user_id=user_id, now=now),
        expires_at=next_month_start(now), now=now,
    )  # fmt: skip


def allowance_status(session: Session, *, user_id: uuid.UUID, now: datetime | None = None) -> dict:
    """What `/credits` and the docs tell a user about the free allowance: the monthly amount, what is
    left of this month's, when that lapses and when the next arrives (units; aware datetimes)."""
    now = now or utcnow()
    entry = _existing(session, EntryKind.MONTHLY_ALLOWANCE, allowance_reference(user_id=user_id, now=now))
    lot = session.exec(select(CreditLot).where(CreditLot.entry_id == entry.id)).first() if entry else None
    return {
        "monthly_units": to_units(get_settings().free_monthly_credits),
        "granted": entry is not None,
        "remaining_units": lot.remaining_units if lot else 0,
        "lapses_at": next_month_start(now),
        "next_at": next_month_start(now),
    }


def grant_monthly_allowance(session: Session, *, now: datetime | None = None) -> int:
    """Give every verified account that has none yet this month's free credits (the hourly job)."""
    now = now or utcnow()
    if to_units(get_settings().free_monthly_credits) <= 0:
        return 0
    done = select(LedgerEntry.user_id).where(
        LedgerEntry.kind == EntryKind.MONTHLY_ALLOWANCE, col(LedgerEntry.reference).startswith(f"allowance:{month_start(now):%Y-%m}:")
    )
    users = session.exec(
        select(User.id).where(col(User.email_verified_at).is_not(None), col(User.id).not_in(done))
    ).all()
    return sum(grant_allowance(session, user_id=user_id, now=now) is not None for user_id in users)


def ledger_page(session: Session, *, user_id: uuid.UUID, page: int, per_page: int = 20) -> tuple[list[LedgerEntry], int]:
    """One page (1-based) of the user's ledger, newest first, and the number of entries in all."""
    page = max(page, 1)
    total = session.exec(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == user_id)).one()
    entries = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user_id)
        .order_by(col(LedgerEntry.created_at).desc(), col(LedgerEntry.id))
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return list(entries), int(total)


def reference_labels(session: Session, references: list[str]) -> dict[str, str]:
    """What a charge paid for, for people: "Web: horse.jpg" (a full-resolution image on the page),
    "Web batch: horse.jpg" or "API batch: horse.jpg", while the image or batch item is still kept
    (file names are not copied into the ledger, which outlives them)."""
    image_ids, item_ids = {}, {}
    for reference in set(references):
        kind, _, rest = reference.partition(":")
        try:
            if kind == "image" and rest.endswith(":full"):
                image_ids[uuid.UUID(rest.removesuffix(":full"))] = reference
            elif kind == "batch-item":
                item_ids[uuid.UUID(rest)] = reference
        except ValueError:
            continue
    labels: dict[str, str] = {}
    if image_ids:
        for image_id, name in session.exec(
            select(ProcessedImage.id, ProcessedImage.original_filename).where(col(ProcessedImage.id).in_(image_ids))
        ).all():
            labels[image_ids[image_id]] = f"Web: {name}"
    if item_ids:
        for item_id, name, channel in session.exec(
            select(BatchItem.id, BatchItem.filename, Batch.channel)
            .join(Batch, col(Batch.id) == col(BatchItem.batch_id))
            .where(col(BatchItem.id).in_(item_ids))
        ).all():
            labels[item_ids[item_id]] = f"{'Web batch' if channel == 'web' else 'API batch'}: {name}"
    return labels


def credit_units_rounded(value: Decimal) -> int:
    """Units for a share of an order (refunds of part of a payment), rounded half up."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
