"""The admin area. The role is checked on the server in every event, never only in the UI."""

from __future__ import annotations

import logging

import reflex as rx

from clearbg_app.db import session_scope
from clearbg_app.services import accounts
from clearbg_app.state.account import _when
from clearbg_app.state.base import SessionState

log = logging.getLogger(__name__)


class AdminState(SessionState):
    forbidden: bool = False
    users: list[dict[str, str]] = []

    @rx.event
    def load(self):
        user = self._current_user()
        if user is None:
            return rx.redirect("/login?next=/admin")
        try:
            with session_scope() as session:
                users = accounts.list_users(session, admin=user)
        except PermissionError:
            log.warning("admin area refused to non-admin user %s", user.id)
            self.forbidden, self.users = True, []
            return
        self.forbidden = False
        self.users = [
            {
                "email": item.email,
                "name": item.display_name,
                "role": item.role,
                "verified": "yes" if item.is_verified else "no",
                "created": _when(item.created_at),
            }
            for item in users
        ]
