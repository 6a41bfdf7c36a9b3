"""`/contact`: the privacy-request form. The state holds only the outcome line, never what was typed
(the form keeps its fields in the browser, so an error loses nothing)."""

from __future__ import annotations

import asyncio

import reflex as rx

from clearbg_app.db import session_scope
from clearbg_app.services import requests
from clearbg_app.services.errors import ServiceError
from clearbg_app.state.base import SessionState


def _submit(kind: str, email: str, message: str, ip: str | None) -> None:
    with session_scope() as session:
        requests.submit(session, kind=kind, email=email, message=message, ip=ip)


class ContactState(SessionState):
    contact_notice: str = ""
    contact_notice_kind: str = ""
    contact_sent: bool = False

    @rx.event
    def load(self):
        self.contact_notice, self.contact_sent = "", False

    @rx.event
    async def send(self, form: dict):
        """Sizes are capped here too (the service gives the clear message), so a forged event is cheap."""
        kind, email = str(form.get("kind", ""))[:40], str(form.get("email", ""))[:300]
        message = str(form.get("message", ""))[: requests.MAX_MESSAGE + 1]
        if form.get("confirm") != "on":
            self.contact_notice, self.contact_notice_kind = "Tick the box to confirm that the address is yours.", "error"
            return
        try:
            await asyncio.to_thread(_submit, kind, email, message, self.router.session.client_ip or None)
        except ServiceError as error:
            self.contact_notice, self.contact_notice_kind = str(error), "error"
            return
        self.contact_sent = True
        self.contact_notice, self.contact_notice_kind = (
            "Almost done: we emailed you a link. Open it within 24 hours to confirm your request; only then does it reach us.",
            "info",
        )
