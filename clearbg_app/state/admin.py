"""The admin area. Every page load and every event handler of these states starts with `_admin()`,
which resolves the session on the server: a non-admin (or a forged event from one) gets nothing
done, the page turns to 403, and the attempt is written to the audit log."""

from __future__ import annotations

import json
import logging
import uuid

import reflex as rx
from sqlmodel import select

from clearbg_app.db import session_scope
from clearbg_app.models import User
from clearbg_app.services import admin as admin_service, audit, credits
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.jobs import job_name, scheduled_jobs
from clearbg_app.state.account import _when
from clearbg_app.state.base import SessionState

log = logging.getLogger(__name__)
AUDIT_PER_PAGE = 25


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


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

    def _forget(self) -> None:
        """Drop whatever admin data the state holds (subclasses clear their own)."""

    def _say(self, message: str, kind: str = "error") -> None:
        self.admin_notice, self.admin_notice_kind = message, kind


class AdminState(AdminBase):
    """`/admin`: the dashboard and the user lookup."""

    stats: dict[str, str] = {}
    jobs: list[dict[str, str]] = []
    query: str = ""
    users: list[dict[str, str]] = []
    account: dict[str, str] = {}
    ledger: list[dict[str, str]] = []

    def _forget(self) -> None:
        self.stats, self.jobs, self.users, self.account, self.ledger = {}, [], [], {}, []

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
        }
        self.jobs = [
            {
                "name": job.name,
                "every": f"{job.interval_seconds // 60} min" if job.interval_seconds else "-",
                "status": job.status + (" (overdue)" if job.overdue else ""),
                "alarming": "yes" if job.alarming else "",
                "started": _when(job.started_at),
                "finished": _when(job.finished_at),
                "counts": ", ".join(f"{key} {value}" for key, value in job.counts.items()) or "-",
                "error": job.error[:300],
            }
            for job in found.jobs
        ]

    def _search(self, admin: User, query: str) -> None:
        with session_scope() as session:
            found = admin_service.find_users(session, admin=admin, query=query)
        self.users = [
            {
                "id": str(user.id),
                "email": user.email,
                "name": user.display_name,
                "role": user.role,
                "verified": "yes" if user.is_verified else "no",
                "status": "suspended" if user.suspended_at else "active",
                "created": _when(user.created_at),
            }
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
        user = view.user
        self.account = {
            "id": str(user.id),
            "email": user.email,
            "name": user.display_name,
            "role": user.role,
            "created": _when(user.created_at),
            "verified": _when(user.email_verified_at) if user.is_verified else "not confirmed",
            "suspended": _when(user.suspended_at) if user.suspended_at else "",
            "balance": credits.format_credits(view.balance_units),
            "sessions": str(view.active_sessions),
            "keys": str(view.active_keys),
            "orders": str(view.paid_orders),
            "policy": f"privacy {user.accepted_policy_version}, terms {user.accepted_terms_version}",
        }
        self.ledger = [
            {
                "at": _when(entry.created_at),
                "kind": entry.kind,
                "amount": credits.format_credits(entry.amount_units),
                "balance": credits.format_credits(entry.balance_after_units),
                "reason": entry.reason,
            }
            for entry in view.ledger
        ]

    @rx.event
    def open_account(self, user_id: str):
        admin = self._admin("open account")
        if admin is None:
            return
        target = _uuid(user_id)
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
        admin = self._admin(where)
        if admin is None:
            return
        target = _uuid(self.account.get("id", ""))
        if target is None:
            self._say("Open an account first.")
            return
        try:
            with session_scope() as session:
                message = action(session, admin, target)
        except (ServiceError, PermissionError) as error:
            self._say(str(error))
        else:
            self._say(message, "info")
        try:
            self._show_account(admin, target)
        except ServiceError:  # deleted meanwhile
            self.account, self.ledger = {}, []
        self._search(admin, self.query)
        self._refresh_dashboard(admin)

    @rx.event
    def adjust_credits(self, form: dict):
        amount, reason = str(form.get("amount", ""))[:20], str(form.get("reason", ""))[:200]

        def action(session, admin, target):
            entry = admin_service.adjust_credits(session, admin=admin, user_id=target, amount=amount, reason=reason)
            verb = "Granted" if entry.amount_units > 0 else "Revoked"
            return f"{verb} {credits.format_credits(abs(entry.amount_units))} credits; the balance is {credits.format_credits(entry.balance_after_units)}."

        self._account_action("adjust credits", action)

    @rx.event
    def suspend(self, form: dict):
        reason = str(form.get("reason", ""))[:200]

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


class AuditLogState(AdminBase):
    """`/admin/audit`: every admin action and refused attempt, newest first."""

    events: list[dict[str, str]] = []
    audit_page: int = 1
    audit_pages: int = 1
    total: int = 0

    def _forget(self) -> None:
        self.events, self.total = [], 0

    def _show(self, page: int) -> None:
        with session_scope() as session:
            rows, total = audit.events_page(session, page=page, per_page=AUDIT_PER_PAGE)
            actor_ids = {row.actor_id for row in rows if row.actor_id}
            emails = dict(session.exec(select(User.id, User.email).where(User.id.in_(actor_ids))).all()) if actor_ids else {}
        self.total, self.audit_page = total, page
        self.audit_pages = max(1, -(-total // AUDIT_PER_PAGE))
        self.events = [
            {
                "at": _when(row.at),
                "who": emails.get(row.actor_id, "deleted account") if row.actor_id else row.actor_kind,
                "kind": row.actor_kind,
                "action": row.action,
                "target": f"{row.target_type} {row.target_id}".strip(),
                "before": _json(row.before),
                "after": _json(row.after),
            }
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
