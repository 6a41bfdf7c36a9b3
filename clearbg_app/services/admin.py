"""The admin area's domain: dashboard figures, user lookup, credit corrections, suspension, and the
record of refused attempts. Every function takes the acting admin and checks the role itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.models import ApiKey, DailyCount, EntryKind, JobStatus, LedgerEntry, Order, OrderStatus, PrivacyRequest, User
from clearbg_app.models.stats import IMAGES_API, IMAGES_WEB
from clearbg_app.services import accounts, audit, credits, removal, requests
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.job_runs import latest_runs

SOLD = (EntryKind.PURCHASE, EntryKind.SUBSCRIPTION_RENEWAL)
PAID = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
KILLED_AFTER = timedelta(minutes=15)  # a run still "running" this long past its interval was killed


class AdminError(ServiceError):
    """An admin action that cannot be done as asked."""


# Dashboard ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueStats:
    """The inference pool of this process: jobs running or waiting, out of its capacity."""

    in_flight: int
    workers: int
    capacity: int

    @property
    def waiting(self) -> int:
        return max(0, self.in_flight - self.workers)


@dataclass(frozen=True)
class JobHealth:
    name: str
    interval_seconds: int
    status: str  # succeeded, failed, running, killed, never
    started_at: datetime | None = None
    finished_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""
    overdue: bool = False  # no run started within two intervals
    instance: str = ""  # the process that ran it

    @property
    def alarming(self) -> bool:
        return self.status in ("failed", "killed", "never") or self.overdue


@dataclass(frozen=True)
class Dashboard:
    users_total: int
    users_new_7d: int
    users_suspended: int
    images_today: int
    images_7d: int
    api_images_7d: int
    credits_sold_7d: int  # units
    credits_sold_30d: int
    revenue_30d: dict[str, int]  # cents by currency, net of refunds
    queue: QueueStats | None  # None when the pool is not loaded in this process
    jobs: list[JobHealth]
    requests_open: int = 0  # confirmed privacy requests not closed yet
    requests_overdue: int = 0  # of those, past their due date


def queue_stats() -> QueueStats | None:
    """Read-only figures of the process's inference pool; never starts one."""
    if removal.default_pool.cache_info().currsize == 0:
        return None
    pool = removal.default_pool()
    workers = pool.config.worker_count
    return QueueStats(in_flight=pool.in_flight, workers=workers, capacity=workers + pool.config.queue_size)


def job_health(session: Session, *, jobs: dict[str, int], now: datetime) -> list[JobHealth]:
    """The last run of every scheduled job (`jobs`: name -> interval in seconds), and of any other job
    that has run. A run left `running` well past its interval was killed."""
    runs = latest_runs(session)
    found = []
    for name in sorted(set(jobs) | set(runs)):
        interval = jobs.get(name, 0)
        last = runs.get(name, [None])[0]
        if last is None:
            found.append(JobHealth(name=name, interval_seconds=interval, status="never"))
            continue
        started = as_utc(last.started_at)
        status = last.status
        if status == JobStatus.RUNNING and now - started > timedelta(seconds=interval) + KILLED_AFTER:
            status = "killed"
        overdue = bool(interval) and now - started > timedelta(seconds=2 * interval) + KILLED_AFTER
        found.append(
            JobHealth(
                name=name, interval_seconds=interval, status=status, started_at=started,
                finished_at=as_utc(last.finished_at) if last.finished_at else None, counts=last.counts or {},
                error=last.error or "", overdue=overdue, instance=last.instance,
            )  # fmt: skip
        )
    return found


def _count(session: Session, query) -> int:
    return int(session.exec(query).one() or 0)


def dashboard(session: Session, *, admin: User, jobs: dict[str, int], now: datetime | None = None) -> Dashboard:
    accounts.require_admin(admin)
    now = now or utcnow()
    today = now.date()

    def images(names: tuple[str, ...], since) -> int:
        query = select(func.coalesce(func.sum(DailyCount.count), 0)).where(
            col(DailyCount.name).in_(names), col(DailyCount.day) >= since
        )
        return _count(session, query)

    def sold(days: int) -> int:
        query = select(func.coalesce(func.sum(LedgerEntry.amount_units), 0)).where(
            col(LedgerEntry.kind).in_(SOLD), col(LedgerEntry.created_at) >= now - timedelta(days=days)
        )
        return _count(session, query)

    revenue = session.exec(
        select(Order.currency, func.sum(Order.amount_cents - Order.refunded_cents))
        .where(col(Order.status).in_(PAID), col(Order.paid_at) >= now - timedelta(days=30))
        .group_by(Order.currency)
    ).all()
    return Dashboard(
        users_total=_count(session, select(func.count()).select_from(User)),
        users_new_7d=_count(session, select(func.count()).where(col(User.created_at) >= now - timedelta(days=7))),
        users_suspended=_count(session, select(func.count()).where(col(User.suspended_at).is_not(None))),
        images_today=images((IMAGES_WEB, IMAGES_API), today),
        images_7d=images((IMAGES_WEB, IMAGES_API), today - timedelta(days=6)),
        api_images_7d=images((IMAGES_API,), today - timedelta(days=6)),
        credits_sold_7d=sold(7),
        credits_sold_30d=sold(30),
        revenue_30d={currency: int(cents) for currency, cents in revenue},
        queue=queue_stats(),
        jobs=job_health(session, jobs=jobs, now=now),
        requests_open=_count(session, select(func.count()).where(col(PrivacyRequest.status).in_(requests.OPEN_STATUSES))),
        requests_overdue=requests.overdue_count(session, now=now),
    )


# Users -------------------------------------------------------------------------------------------------


def find_users(session: Session, *, admin: User, query: str, limit: int = 25) -> list[User]:
    """Accounts whose id is `query`, or whose email contains it (case-insensitive); newest first."""
    accounts.require_admin(admin)
    query = (query or "").strip()
    if not query:
        return accounts.list_users(session, admin=admin, limit=limit)
    try:
        return [user] if (user := session.get(User, uuid.UUID(query))) else []
    except ValueError:
        pass
    pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = select(User).where(func.lower(User.email).like(pattern, escape="\\"))
    return list(session.exec(found.order_by(col(User.created_at).desc()).limit(limit)).all())


@dataclass(frozen=True)
class AccountView:
    user: User
    balance_units: int
    ledger: list[LedgerEntry]
    active_sessions: int
    active_keys: int
    paid_orders: int


def _user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id, populate_existing=True)
    if user is None:
        raise NotFound("That account no longer exists.")
    return user


def account_view(session: Session, *, admin: User, user_id: uuid.UUID, now: datetime | None = None) -> AccountView:
    accounts.require_admin(admin)
    user = _user(session, user_id)
    ledger = session.exec(
        select(LedgerEntry).where(LedgerEntry.user_id == user.id).order_by(col(LedgerEntry.created_at).desc()).limit(20)
    ).all()
    keys = select(func.count()).where(ApiKey.user_id == user.id, col(ApiKey.revoked_at).is_(None))
    orders = select(func.count()).where(Order.user_id == user.id, col(Order.status).in_(PAID))
    return AccountView(
        user=user,
        balance_units=credits.balance(session, user_id=user.id),
        ledger=list(ledger),
        active_sessions=len(accounts.active_sessions(session, user=user, now=now)),
        active_keys=_count(session, keys),
        paid_orders=_count(session, orders),
    )


def adjust_credits(
    session: Session, *, admin: User, user_id: uuid.UUID, amount: str, reason: str, now: datetime | None = None
) -> LedgerEntry:
    """Grant (positive `amount` of credits) or revoke (negative) through the ledger, with a reason."""
    accounts.require_admin(admin)
    now = now or utcnow()
    user = _user(session, user_id)
    units = credits.to_units((amount or "").strip() or "0")
    if len(reason.strip()) > 150:
        raise AdminError("Keep the reason under 150 characters.")
    before = credits.balance(session, user_id=user.id)
    entry = credits.adjust(session, user_id=user.id, units=units, reason=reason, admin=admin, now=now)
    audit.record(
        session, action="credits.adjusted", actor=admin, target_type="user", target_id=user.id,
        before={"balance": credits.format_credits(before)},
        after={"balance": credits.format_credits(entry.balance_after_units), "amount": credits.format_credits(units),
               "reason": reason.strip()},
        now=now,
    )  # fmt: skip
    session.commit()
    return entry


def suspend(session: Session, *, admin: User, user_id: uuid.UUID, reason: str, now: datetime | None = None) -> User:
    """Suspend an account: its sessions end now, sign-in and API keys are refused until unsuspended."""
    accounts.require_admin(admin)
    now = now or utcnow()
    user = _user(session, user_id)
    reason = " ".join((reason or "").split())
    if user.id == admin.id:
        raise AdminError("You cannot suspend your own account.")
    if user.suspended_at is not None:
        raise AdminError("That account is already suspended.")
    if not reason or len(reason) > 150:
        raise AdminError("Give a reason for the suspension (at most 150 characters).")
    user.suspended_at = now
    session.add(user)
    audit.record(session, action="user.suspended", actor=admin, target_type="user", target_id=user.id,
                 before={"suspended": False}, after={"suspended": True, "reason": reason}, now=now)  # fmt: skip
    session.commit()
    accounts.revoke_sessions(session, user=user, now=now)
    return user


def unsuspend(session: Session, *, admin: User, user_id: uuid.UUID, now: datetime | None = None) -> User:
    accounts.require_admin(admin)
    now = now or utcnow()
    user = _user(session, user_id)
    if user.suspended_at is None:
        raise AdminError("That account is not suspended.")
    user.suspended_at = None
    session.add(user)
    audit.record(session, action="user.unsuspended", actor=admin, target_type="user", target_id=user.id,
                 before={"suspended": True}, after={"suspended": False}, now=now)  # fmt: skip
    session.commit()
    return user


def record_refusal(session: Session, *, user: User | None, where: str, now: datetime | None = None) -> None:
    """A non-admin (or a visitor, `user=None`) reached for the admin area: a security record."""
    event = audit.record(session, action="admin.access_denied", actor=user, target_type="admin_area", target_id=where[:64], now=now)
    if user is None:
        event.actor_kind = "anonymous"
    session.commit()

