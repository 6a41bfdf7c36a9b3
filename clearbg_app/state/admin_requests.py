"""`/admin/requests`: the queue of privacy requests sent by message. Like every admin state, each
handler starts with `_admin()` (the role checked on the server, refusals audited)."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from clearbg_app.db import session_scope
from clearbg_app.models import User
from clearbg_app.services import requests
from clearbg_app.services.errors import ServiceError
from clearbg_app.state.admin import AdminBase
from clearbg_app.state.display import parse_uuid, when
from clearbg_app.storage import get_blob_store

FILTERS = {"open": "Open", "all": "All", **{status.value: requests.STATUS_LABELS[status] for status in requests.QUEUE_STATUSES}}


@dataclass(frozen=True)
class RequestRow:
    """A privacy request in the queue."""

    id: str
    ref: str
    kind: str
    email: str
    account: str
    status: str
    received: str
    due: str
    overdue: str  # "yes" past its due date


@dataclass(frozen=True)
class ReplyRow:
    """A reply sent to the person who asked."""

    at: str
    body: str


class AdminRequestsState(AdminBase):
    status_filter: str = "open"
    rows: list[RequestRow] = []
    current: dict[str, str] = {}
    replies: list[ReplyRow] = []

    def _forget(self) -> None:
        self.rows, self.current, self.replies = [], {}, []

    def _list(self, admin: User) -> None:
        with session_scope() as session:
            found = requests.queue(session, admin=admin, status=self.status_filter)
        self.rows = [
            RequestRow(
                id=str(row.request.id),
                ref=str(row.request.id)[:8],
                kind=requests.KINDS[row.request.kind],
                email=row.request.email,
                account=row.account_email or "no account",
                status=requests.STATUS_LABELS[row.request.status],
                received=when(row.request.confirmed_at, 'never'),
                due=when(row.request.due_at, 'never'),
                overdue="yes" if row.overdue else "",
            )
            for row in found
        ]

    def _open(self, admin: User, request_id) -> None:
        with session_scope() as session:
            request = requests.get(session, admin=admin, request_id=request_id)
            answers = requests.replies(session, admin=admin, request_id=request.id)
            account = session.get(User, request.user_id).email if request.user_id else ""
        self.current = {
            "id": str(request.id), "ref": str(request.id)[:8], "kind": requests.KINDS[request.kind], "email": request.email,
            "account": account, "account_id": str(request.user_id or ""), "message": request.message,
            "status": request.status, "status_label": requests.STATUS_LABELS[request.status],
            "received": when(request.confirmed_at, 'never'), "due": when(request.due_at, 'never'), "refusal": request.refusal_reason,
        }  # fmt: skip
        self.replies = [ReplyRow(at=when(answer.at, "never"), body=answer.body) for answer in answers]

    @rx.event
    def load(self):
        admin = self._admin("load /admin/requests")
        if admin is None:
            return
        self.admin_notice, self.current, self.replies = "", {}, []
        self._list(admin)

    @rx.event
    def filter_by(self, status: str):
        admin = self._admin("filter requests")
        if admin is None:
            return
        self.status_filter = status if status in FILTERS else "open"
        self._list(admin)

    @rx.event
    def open_request(self, request_id: str):
        admin = self._admin("open request")
        if admin is None:
            return
        try:
            self._open(admin, parse_uuid(request_id))
            self.admin_notice = ""
        except ServiceError as error:
            self.current, self.replies = {}, []
            self._say(str(error))

    def _request_action(self, where: str, action) -> None:
        """Run `action(session, admin, request_id)` on the open request, then show it and the queue again."""
        request_id = parse_uuid(self.current.get("id", ""))
        admin = self._act_on(where, request_id, "Open a request first.", action)
        if admin is None or request_id is None:
            return
        self._open(admin, request_id)
        self._list(admin)

    @rx.event
    def set_status(self, form: dict):
        status, reason = str(form.get("status", ""))[:20], str(form.get("reason", ""))[: requests.MAX_REFUSAL + 1]

        def action(session, admin, request_id):
            done = requests.set_status(session, admin=admin, request_id=request_id, status=status, reason=reason)
            return f"The request is now: {requests.STATUS_LABELS[done.status]}."

        self._request_action("request status", action)

    @rx.event
    def reply(self, form: dict):
        body = str(form.get("body", ""))[: requests.MAX_REPLY + 1]

        def action(session, admin, request_id):
            requests.reply(session, admin=admin, request_id=request_id, body=body)
            return "Your reply is on its way to the person."

        self._request_action("reply to request", action)

    @rx.event
    def run_export(self):
        def action(session, admin, request_id):
            requests.run_export(session, admin=admin, request_id=request_id)
            return "The export is being built; the account holder gets the download link by email, as with self-service."

        self._request_action("export for request", action)

    @rx.event
    def run_deletion(self, form: dict):
        confirmed = form.get("confirm") == "on"

        def action(session, admin, request_id):
            if not confirmed:
                raise requests.RequestError("Tick the box to confirm the deletion.")
            scheduled = requests.run_deletion(session, admin=admin, request_id=request_id, store=get_blob_store())
            return f"The account is locked and will be anonymized on {scheduled.purge_after:%Y-%m-%d} (the usual grace period)."

        self._request_action("deletion for request", action)
