"""The privacy center and the processing history. Every event re-checks the session on the server;
the state holds ids, URLs and short texts, never image or ZIP bytes."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import reflex as rx

from clearbg_app.clock import as_utc
from clearbg_app.db import session_scope
from clearbg_app.models import ExportStatus
from clearbg_app.services import accounts, billing, consents, credits, exports, images, personal_data, privacy_choices
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState
from clearbg_app.state.display import when
from clearbg_app.storage import get_blob_store
from clearbg_app.wording import plural


@dataclass(frozen=True)
class ConsentRow:
    """One purpose and whether the person consents to it."""

    key: str
    title: str
    description: str
    granted: str


@dataclass(frozen=True)
class ConsentChange:
    """One grant or withdrawal, with the policy version in force."""

    at: str
    purpose: str
    change: str
    policy: str


@dataclass(frozen=True)
class HistoryImage:
    """An image of the processing history, with its links."""

    id: str
    name: str
    uploaded: str
    expires: str
    thumb: str
    download: str
    original: str
    short: str


EXPORT_WATCH_SECONDS = 300  # the page follows a requested export this long; the email arrives either way
CENTER = "/privacy-center"


@dataclass(frozen=True)
class RetentionPeriod:
    """A retention period in force, from the settings (what the privacy policy promises)."""

    what: str
    period: str


def retention_periods() -> list[RetentionPeriod]:
    """The periods in force, from the settings."""
    s = get_settings()
    return [
        RetentionPeriod("Uploads and results", plural(s.retention_minutes, "minute")),
        RetentionPeriod("With the processing-history consent", plural(s.history_retention_days, "day")),
        RetentionPeriod("Data exports", plural(s.export_link_days, "day") + " after they are ready"),
        RetentionPeriod("Request logs: IP prefix", plural(s.request_log_ip_days, "day")),
        RetentionPeriod("Request logs", plural(s.request_log_days, "day")),
        RetentionPeriod("Grace period after a deletion request", plural(s.deletion_grace_days, "day")),
    ]


def deletion_losses(session, *, user_id) -> list[str]:
    """The deletion form's warnings, in plain words."""
    losses = []
    units = credits.balance(session, user_id=user_id)
    if units > 0:
        losses.append(f"Your {plural(credits.format_credits(units), 'credit')} will be lost; they are not refunded.")
    if billing.has_active_subscription(session, user_id=user_id):
        losses.append(
            "Your active subscription ends when you confirm: we cancel it at Stripe at once, so it does not renew "
            "and nothing more is charged. Keeping the account during the grace period does not restart it."
        )
    return losses


class PrivacyState(SessionState):
    consents: list[ConsentRow] = []
    consent_history: list[ConsentChange] = []
    categories: list[personal_data.Kept] = []
    retention: list[RetentionPeriod] = []
    export_status: str = ""
    export_url: str = ""
    export_until: str = ""
    has_password: bool = False
    deletion_losses: list[str] = []  # what deleting loses: the credits, an active subscription
    notice: str = ""
    notice_kind: str = ""

    notice_form: str = ""  # the section the notice answers: "consents" or "export"

    def _say(self, message: str, kind: str = "error", *, form: str) -> None:
        """A message shown in the section (`form`) whose control it answers."""
        self.notice, self.notice_kind, self.notice_form = message, kind, form

    def _refresh(self, signed_in: accounts.SignedIn) -> None:
        user = signed_in.user
        settings = get_settings()
        with session_scope() as session:
            state = consents.current(session, user_id=user.id)
            self.consents = [
                ConsentRow(
                    key=purpose.key,
                    title=purpose.title,
                    description=purpose.description.format(days=settings.history_retention_days, minutes=settings.retention_minutes),
                    granted="yes" if state[purpose.key] else "",
                )
                for purpose in consents.PURPOSES
            ]
            titles = {purpose.key: purpose.title for purpose in consents.PURPOSES}
            self.consent_history = [
                ConsentChange(
                    at=when(event.at),
                    purpose=titles.get(event.purpose, event.purpose),
                    change="granted" if event.granted else "withdrawn",
                    policy=event.policy_version,
                )
                for event in consents.history(session, user_id=user.id)[:20]
            ]
            export = exports.latest(session, user_id=user.id)
            self.deletion_losses = deletion_losses(session, user_id=user.id)
        self.categories = personal_data.categories(settings)
        self.retention = retention_periods()
        self.export_status = export.status if export else ""
        ready = export is not None and export.status == ExportStatus.READY
        self.export_url = f"/api/privacy/exports/{export.id}" if ready else ""
        self.export_until = when(export.expires_at) if ready else ""
        self.has_password = user.password_hash is not None
        self._publish(user)

    def _signed_in_or_login(self):
        signed_in = self._current_session()
        return signed_in, (None if signed_in else rx.redirect(f"/login?next={CENTER}"))

    @rx.event
    def load(self):
        signed_in, go = self._signed_in_or_login()
        if go:
            return go
        self.notice = ""
        self._refresh(signed_in)

    @rx.event
    def set_consent(self, purpose: str, granted: bool):
        """Grant or withdraw one consent: one click either way."""
        signed_in, go = self._signed_in_or_login()
        if go:
            return go
        try:
            with session_scope() as session:
                privacy_choices.set_consent(session, user=signed_in.user, purpose=str(purpose), granted=bool(granted), source="privacy_center")
        except ServiceError as error:
            self._say(str(error), form="consents")
            return
        self._say("Saved: " + ("consent given." if granted else "consent withdrawn."), "info", form="consents")
        self._refresh(signed_in)

    @rx.event(background=True)
    async def request_export(self):
        """Queue an export (the task queue builds it; the scheduled job sweeps up any message lost) and
        follow it: the page shows the link when it is ready, for up to `EXPORT_WATCH_SECONDS`."""
        async with self:
            signed_in, go = self._signed_in_or_login()
            if go:
                return go
            try:
                with session_scope() as session:
                    exports.request_export(session, user=signed_in.user)
            except ServiceError as error:
                self._say(str(error), form="export")
                return
            self._say("We are preparing your export; this page shows the link when it is ready, and we email you.", "info", form="export")
            self._refresh(signed_in)
        for _ in range(EXPORT_WATCH_SECONDS):
            await asyncio.sleep(1)
            async with self:
                self._refresh(signed_in)
                if self.export_url:
                    self._say("Your export is ready.", "info", form="export")
                    return
                if self.export_status == ExportStatus.FAILED:
                    self._say("Your export could not be built; please ask for it again.", form="export")
                    return

    @rx.event
    def refresh(self):
        signed_in, go = self._signed_in_or_login()
        if go:
            return go
        self._refresh(signed_in)


class HistoryState(SessionState):
    """`/history`: the person's kept images, only with the processing-history consent."""

    enabled: bool = False
    items: list[HistoryImage] = []
    days: int = 30
    notice: str = ""
    notice_kind: str = ""

    def _refresh(self, signed_in: accounts.SignedIn) -> None:
        with session_scope() as session:
            self.enabled = consents.has_consent(session, user_id=signed_in.user.id, purpose=consents.PROCESSING_HISTORY)
            rows = images.user_images(session, user_id=signed_in.user.id) if self.enabled else []
        self.days = get_settings().history_retention_days
        self.items = [
            HistoryImage(
                id=str(image.id),
                name=image.original_filename or "image",
                uploaded=when(image.created_at),
                expires=when(image.expires_at),
                thumb=f"/api/images/{image.id}/result" if image.result_key else f"/api/images/{image.id}/original",
                download=f"/api/images/{image.id}/{'full' if image.full_result_key else 'result'}?download=1" if image.result_key else "",
                original=f"/api/images/{image.id}/original?download=1",
                short="yes" if as_utc(image.expires_at) < images.history_expiry(image) else "",  # from before the consent
            )
            for image in rows
        ]
        self._publish(signed_in.user)

    @rx.event
    def load(self):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/history")
        self.notice = ""
        self._refresh(signed_in)

    @rx.event
    def turn_on(self):
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/history")
        with session_scope() as session:
            privacy_choices.set_consent(session, user=signed_in.user, purpose=consents.PROCESSING_HISTORY, granted=True, source="history")
        self.notice, self.notice_kind = f"Your images are now kept for {plural(self.days, 'day')}.", "info"
        self._refresh(signed_in)

    @rx.event
    def keep(self, image_id: str):
        """Add an image uploaded before the consent to the history (it keeps its hour otherwise)."""
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/history")
        try:
            with session_scope() as session:
                images.keep_in_history(session, user_id=signed_in.user.id, image_id=uuid.UUID(str(image_id)))
        except (ServiceError, ValueError) as error:
            self.notice, self.notice_kind = str(error) if isinstance(error, ServiceError) else "No such image.", "error"
            return None
        self.notice, self.notice_kind = f"Added to your history: kept for {plural(self.days, 'day')} after its upload.", "info"
        self._refresh(signed_in)
        return None

    @rx.event
    def delete(self, image_id: str = ""):
        """Delete one image (`image_id`) or, with none, all of them."""
        signed_in = self._current_session()
        if signed_in is None:
            return rx.redirect("/login?next=/history")
        try:
            target = uuid.UUID(image_id) if image_id else None
            with session_scope() as session:
                count = images.delete_user_images(session, store=get_blob_store(), user_id=signed_in.user.id, image_id=target)
        except (ServiceError, ValueError):
            self.notice, self.notice_kind = "That image was already deleted.", "error"
        else:
            self.notice, self.notice_kind = f"Deleted {count} image{'s' if count != 1 else ''}.", "info"
        self._refresh(signed_in)
