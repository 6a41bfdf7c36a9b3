"""The admin area. Every page load and every event handler of these states starts with `_admin()`,
which resolves the session on the server: a non-admin (or a forged event from one) gets nothing
done, the page turns to 403, and the attempt is written to the audit log."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TypeVar

import reflex as rx
from sqlmodel import Session

from clearbg_app.db import session_scope
from clearbg_app.models import User
from clearbg_app.services import admin as admin_service, audit, batch_worker, credits, deletion, holds
from clearbg_app.services.deletion_lock import completed_deletion, pending_deletion
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.jobs import job_name, scheduled_jobs
from clearbg_app.state.base import SessionState
from clearbg_app.state.display import parse_uuid, when
from clearbg_app.storage import get_blob_store

log = logging.getLogger(__name__)
T = TypeVar("T")
AUDIT_PER_PAGE = 25


class AdminBase(SessionState):
    """What every admin page shares: the 403 flag and one message line."""

    forbidden: bool = False
    admin_notice: str = ""
    admin_notice_kind: str = ""

    def _admin(self, where: str) -> User | None:
        """The signed-in admin, or None after recording the refusal (the handler must then stop)."""
        user = self._current_user()
        if user is not None and user.is_admin:
            self.forbidden = False
            return user
        with session_scope() as session:
            admin_service.record_refusal(session, user=user, where=where)
        log.warning("admin area refused (%s) to %s", where, f"user {user.id}" if user else "an anonymous visitor")
        self.forbidden = True
        self._forget()
        return None

    def _as_admin(self, where: str, work: Callable[[Session, User], T]) -> tuple[bool, T | None]:
        """The admin guard: check the role (a refusal is audited), run `work(session, admin)` in its
        own session and say a service error in the notice line. (True, its result) when it ran."""
        admin = self._admin(where)
        if admin is None:
            return False, None
        try:
            with session_scope() as session:
                return True, work(session, admin)
        except ServiceError as error:
            self._say(str(error))
            return False, None

    def _act_on(self, where: str, target: uuid.UUID | None, missing: str, action, *, errors: tuple = (ServiceError,)) -> User | None:
        """The guard for an action on the open record: check the role, say `missing` without a record,
        run `action(session, admin, target)` and say its message or the error. Returns the admin, for
        the caller to show the record again (None when refused or without a record)."""
        admin = self._admin(where)
        if admin is None:
            return None
        if target is None:
            self._say(missing)
            return None
        try:
            with session_scope() as session:
                message = action(session, admin, target)
        except errors as error:
            self._say(str(error))
        else:
            self._say(message, "info")
        return admin

    def _forget(self) -> None:
        """Drop whatever admin data the state holds (subclasses clear their own)."""

    def _say(self, message: str, kind: str = "error") -> None:
        self.admin_notice, self.admin_notice_kind = message, kind


@dataclass(frozen=True)
class JobRow:
    """A scheduled job's health on the dashboard."""

    name: str
    every: str
    status: str
    alarming: str  # "yes" when it failed or is overdue
    started: str
    finished: str
    counts: str
    error: str
    instance: str  # which instance ran it last


@dataclass(frozen=True)
class DeadItemRow:
    """A batch item the queue gave up on (its workers kept dying on it), uncharged."""

    item: str
    batch: str
    file: str
    attempts: str
    when: str


@dataclass(frozen=True)
class UserRow:
    """An account found by the user lookup."""

    id: str
    email: str
    name: str
    role: str
    verified: str
    status: str
    created: str


@dataclass(frozen=True)
class LedgerRow:
    """One credit ledger entry of the open account."""

    at: str
    kind: str
    amount: str
    balance: str
    reason: str


class AdminState(AdminBase):
    """`/admin`: the dashboard and the user lookup."""

    stats: dict[str, str] = {}
    jobs: list[JobRow] = []
    dead_items: list[DeadItemRow] = []  # batch items the queue gave up on
    query: str = ""
    users: list[UserRow] = []
    account: dict[str, str] = {}
    ledger: list[LedgerRow] = []
    grant_notice: str = ""  # shown beside the grant form
    grant_notice_kind: str = ""
    confirming_suspension: bool = False  # the confirmation dialog is open

    def _forget(self) -> None:
        self.stats, self.jobs, self.users, self.account, self.ledger, self.dead_items = {}, [], [], {}, [], []

    @rx.event
    def load(self):
        admin = self._admin("load /admin")
        if admin is None:
            return
        self.admin_notice = ""
        self._refresh_dashboard(admin)
        self._search(admin, self.query)

    def _refresh_dashboard(self, admin: User) -> None:
        with session_scope() as session:
            found = admin_service.dashboard(session, admin=admin, jobs={job_name(job): s for job, s in scheduled_jobs()})
        queue = found.queue
        self.stats = {
            "users_total": str(found.users_total),
            "users_new_7d": str(found.users_new_7d),
            "users_suspended": str(found.users_suspended),
            "images_today": str(found.images_today),
            "images_7d": str(found.images_7d),
            "api_images_7d": str(found.api_images_7d),
            "credits_7d": credits.format_credits(found.credits_sold_7d),
            "credits_30d": credits.format_credits(found.credits_sold_30d),
            "revenue_30d": ", ".join(f"{cents / 100:.2f} {currency.upper()}" for currency, cents in sorted(found.revenue_30d.items())) or "none",
            "queue": f"{queue.in_flight} of {queue.capacity} slots in use, {queue.waiting} waiting" if queue else "not loaded in this process",
            "requests_open": str(found.requests_open),
            "requests_overdue": str(found.requests_overdue),
        }
        self.jobs = [
            JobRow(
                name=job.name,
                every=f"{job.interval_seconds // 60} min" if job.interval_seconds else "-",
                status=job.status + (" (overdue)" if job.overdue else ""),
                alarming="yes" if job.alarming else "",
                started=when(job.started_at, "never"),
                finished=when(job.finished_at, "never"),
                counts=", ".join(f"{key} {value}" for key, value in job.counts.items()) or "-",
                error=job.error[:300],
                instance=job.instance or "-",
            )
            for job in found.jobs
        ]
        with session_scope() as session:
            self.dead_items = [
                DeadItemRow(item=str(item.id), batch=str(item.batch_id), file=item.filename, attempts=str(item.attempts),
                            when=when(item.finished_at, "-"))  # fmt: skip
                for item in batch_worker.dead_letters(session)
            ]

    def _search(self, admin: User, query: str) -> None:
        with session_scope() as session:
            found = admin_service.find_users(session, admin=admin, query=query)
        self.users = [
            UserRow(
                id=str(user.id),
                email=user.email,
                name=user.display_name,
                role=user.role,
                verified="yes" if user.is_verified else "no",
                status="suspended" if user.suspended_at else "active",
                created=when(user.created_at, "never"),
            )
            for user in found
        ]

    @rx.event
    def search(self, form: dict):
        admin = self._admin("search users")
        if admin is None:
            return
        self.query = str(form.get("query", ""))[:254]
        self._search(admin, self.query)
        if not self.users:
            self._say("No account matches that email or id.", "info")
        else:
            self.admin_notice = ""

    def _show_account(self, admin: User, user_id: uuid.UUID) -> None:
        with session_scope() as session:
            view = admin_service.account_view(session, admin=admin, user_id=user_id)
            hold = holds.active_hold(session, user_id=user_id)
            pending = pending_deletion(session, user_id=user_id)
            erased = completed_deletion(session, user_id=user_id) is not None
        user = view.user
        self.account = {
            "id": str(user.id),
            "email": user.email,
            "name": user.display_name,
            "role": user.role,
            "created": when(user.created_at, "never"),
            "verified": when(user.email_verified_at, "never") if user.is_verified else "not confirmed",
            "suspended": when(user.suspended_at, "never") if user.suspended_at else "",
            "balance": credits.format_credits(view.balance_units),
            "sessions": str(view.active_sessions),
            "keys": str(view.active_keys),
            "orders": str(view.paid_orders),
            "policy": f"privacy {user.accepted_policy_version}, terms {user.accepted_terms_version}",
            "hold_until": when(hold.until, "never") if hold else "",
            "hold_reason": hold.reason if hold else "",
            "deletion": "anonymized" if erased else ("closed (minor), anonymized at the next run" if pending and pending.reason == "minor"
                                                     else f"scheduled for {when(pending.purge_after, 'never')}" if pending else ""),
        }
        self.ledger = [
            LedgerRow(
                at=when(entry.created_at, "never"),
                kind=entry.kind,
                amount=credits.format_credits(entry.amount_units),
                balance=credits.format_credits(entry.balance_after_units),
                reason=entry.reason,
            )
            for entry in view.ledger
        ]

    @rx.event
    def load_user(self):
        """`/admin/users/{id}`: the account panel on its own, linkable page."""
        admin = self._admin("load /admin/users")
        if admin is None:
            return
        parts = [part for part in self.router.url.path.split("/") if part]  # /admin/users/{id}
        self.grant_notice, self.confirming_suspension = "", False
        self._open(admin, parts[2] if len(parts) > 2 else "")

    @rx.event
    def open_account(self, user_id: str):
        admin = self._admin("open account")
        if admin is None:
            return
        self._open(admin, user_id)

    def _open(self, admin: User, user_id: str) -> None:
        target = parse_uuid(user_id)
        try:
            if target is None:
                raise ServiceError("That account no longer exists.")
            self._show_account(admin, target)
        except ServiceError as error:
            self.account, self.ledger = {}, []
            self._say(str(error))
        else:
            self.admin_notice = ""

    def _account_action(self, where: str, action) -> None:
        """Run `action(session, admin, user_id)` on the open account, then show it again with a message."""
        target = parse_uuid(self.account.get("id", ""))
        admin = self._act_on(where, target, "Open an account first.", action, errors=(ServiceError, PermissionError))
        if admin is None or target is None:
            return
        try:
            self._show_account(admin, target)
        except ServiceError:  # deleted meanwhile
            self.account, self.ledger = {}, []
        self._search(admin, self.query)
        self._refresh_dashboard(admin)

    @rx.event
    def adjust_credits(self, form: dict):
        """Its outcome is shown beside the grant form (`grant_notice`), not at the top of the page."""
        amount, reason = str(form.get("amount", ""))[:20], str(form.get("reason", ""))[:200]

        def action(session, admin, target):
            entry = admin_service.adjust_credits(session, admin=admin, user_id=target, amount=amount, reason=reason)
            verb = "Granted" if entry.amount_units > 0 else "Revoked"
            return f"{verb} {credits.format_credits(abs(entry.amount_units))} credits; the balance is {credits.format_credits(entry.balance_after_units)}."

        self._account_action("adjust credits", action)
        self.grant_notice, self.grant_notice_kind = self.admin_notice, self.admin_notice_kind
        self.admin_notice = ""

    @rx.event
    def place_hold(self, form: dict):
        reason, until = str(form.get("reason", ""))[:400], str(form.get("until", ""))[:20]

        def action(session, admin, target):
            try:
                end = datetime.combine(date.fromisoformat(until), time(23, 59), tzinfo=UTC) if until else None
            except ValueError:
                raise holds.HoldError("Give the end date as a date, like 2027-06-30.") from None
            holds.place_hold(session, admin=admin, user_id=target, reason=reason, until=end)
            return "The legal hold is in place: purge and anonymization leave this account's data alone until it ends. The person is not told."

        self._account_action("place legal hold", action)

    @rx.event
    def lift_hold(self):
        def action(session, admin, target):
            holds.lift_hold(session, admin=admin, user_id=target)
            return "The legal hold is lifted; the jobs proceed at their next run."

        self._account_action("lift legal hold", action)

    @rx.event
    def flag_minor(self, form: dict):
        source, confirmed = str(form.get("source", ""))[:20], form.get("confirm") == "on"

        def action(session, admin, target):
            if not confirmed:
                raise deletion.DeletionError("Tick the box to confirm that this account belongs to a minor.")
            deletion.delete_minor(session, admin=admin, user_id=target, store=get_blob_store(), source=source)
            return "The account is locked and will be anonymized at the next run of the anonymization job, without a grace period."

        self._account_action("flag minor", action)

    @rx.event
    def open_suspension(self):
        if self._admin("confirm suspension") is not None:
            self.confirming_suspension = True

    @rx.event
    def cancel_suspension(self):
        if self._admin("cancel suspension") is not None:
            self.confirming_suspension = False

    @rx.event
    def suspend(self, form: dict):
        reason = str(form.get("reason", ""))[:200]
        self.confirming_suspension = False

        def action(session, admin, target):
            admin_service.suspend(session, admin=admin, user_id=target, reason=reason)
            return "The account is suspended: its sessions are ended and its API keys refused."

        self._account_action("suspend", action)

    @rx.event
    def unsuspend(self):
        def action(session, admin, target):
            admin_service.unsuspend(session, admin=admin, user_id=target)
            return "The account is active again."

        self._account_action("unsuspend", action)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


@dataclass(frozen=True)
class AuditRow:
    """One line of the audit log as the page shows it."""

    at: str
    who: str
    kind: str
    action: str
    target: str
    before: str
    after: str


class AuditLogState(AdminBase):
    """`/admin/audit`: every admin action and refused attempt, newest first."""

    events: list[AuditRow] = []
    audit_page: int = 1
    audit_pages: int = 1
    total: int = 0

    def _forget(self) -> None:
        self.events, self.total = [], 0

    def _show(self, page: int) -> None:
        with session_scope() as session:
            rows, total = audit.events_page(session, page=page, per_page=AUDIT_PER_PAGE)
            account_ids = {row.actor_id for row in rows if row.actor_id} | {
                target for row in rows if row.target_type in ("user", "account") and (target := parse_uuid(row.target_id))
            }
            emails = audit.live_emails(session, user_ids=account_ids)

        def account(user_id: uuid.UUID | None, fallback: str) -> str:
            """Live accounts by email; erased (anonymized) ones only by id."""
            return emails.get(user_id) or (f"erased account {user_id}" if user_id else fallback)

        self.total, self.audit_page = total, page
        self.audit_pages = max(1, -(-total // AUDIT_PER_PAGE))
        self.events = [
            AuditRow(
                at=when(row.at, "never"),
                who=account(row.actor_id, row.actor_kind),
                kind=row.actor_kind,
                action=row.action,
                target=(f"{row.target_type} {account(target, row.target_id)}" if row.target_type in ("user", "account")
                        and (target := parse_uuid(row.target_id)) else f"{row.target_type} {row.target_id}").strip(),  # fmt: skip
                before=_json(row.before),
                after=_json(row.after),
            )
            for row in rows
        ]

    @rx.event
    def load(self):
        if self._admin("load /admin/audit") is not None:
            self._show(1)

    @rx.event
    def go_to(self, page: int):
        if self._admin("audit log page") is not None:
            self._show(min(max(1, int(page)), self.audit_pages))
