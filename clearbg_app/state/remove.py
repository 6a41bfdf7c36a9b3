"""The background-removal page: upload one image, follow its progress, show the result. When the
inference pool is busy the page waits its Retry-After, counting down, and tries again by itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TypeVar

import reflex as rx

from clearbg_app.clock import utcnow
from clearbg_app.db import session_scope
from clearbg_app.inference.decode import SUPPORTED
from clearbg_app.samples import SAMPLES_DIR, sample_named
from clearbg_app.services import credits, images, removal
from clearbg_app.services.batches import url_filename
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.url_fetch import AddressPolicy, Timeouts, fetch_image, public_only
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState
from clearbg_app.state.credits import BalanceState
from clearbg_app.storage import get_blob_store

UPLOAD_ID = "image_upload"
BUSY_RETRIES = 10  # then the page stops trying and shows the busy message
T = TypeVar("T")


async def _second() -> None:
    """One step of the busy countdown."""
    await asyncio.sleep(1)


class RemoveState(SessionState):
    """One image at a time; `stage` is idle, uploading, fetching (an image URL), working, done or error."""

    stage: str = "idle"
    error: str = ""
    image_id: str = ""
    result_size: str = ""
    seconds: str = ""
    uploaded_percent: int = 0
    full_size: str = ""
    full_price: str = ""  # credits, "" when the preview already is full size
    full_stage: str = ""  # "", working, done
    busy_message: str = ""  # "Busy, retrying in 3 s…" while the pool is full
    full_error: str = ""  # why the full-resolution click was refused, shown beside its button
    full_needs_credits: bool = False  # that reason is the balance: offer "Get credits"

    @rx.var
    def original_url(self) -> str:
        return f"/api/images/{self.image_id}/original" if self.image_id else ""

    @rx.var
    def result_url(self) -> str:
        return f"/api/images/{self.image_id}/result" if self.image_id else ""

    @rx.var
    def download_url(self) -> str:
        return f"/api/images/{self.image_id}/result?download=1" if self.image_id else ""

    @rx.var
    def full_download_url(self) -> str:
        return f"/api/images/{self.image_id}/edited?size=full&download=1" if self.image_id else ""  # with the edits

    def _fail(self, message: str) -> None:
        self.stage, self.error, self.image_id, self.full_stage = "error", message, "", ""
        self.full_error, self.full_needs_credits = "", False

    async def _when_not_busy(self, work: Callable[..., T], *args) -> T:
        """`work(*args)` in a thread (background events only). While the pool is busy, count its
        Retry-After down on the page and try again, up to BUSY_RETRIES times."""
        try:
            for _ in range(BUSY_RETRIES):
                try:
                    return await asyncio.to_thread(work, *args)
                except images.Busy as busy:
                    for remaining in range(busy.retry_after, 0, -1):
                        async with self:
                            self.busy_message = f"Busy, retrying in {remaining} s…"
                        await _second()
            return await asyncio.to_thread(work, *args)
        finally:
            if self.busy_message:
                async with self:
                    self.busy_message = ""

    @rx.event
    def upload_progress(self, progress: dict) -> None:
        """Show the transfer while the browser sends the file (the last report may race the result)."""
        fraction = float(progress.get("progress") or 0)
        if fraction < 1:
            self.stage, self.error, self.uploaded_percent = "uploading", "", round(100 * fraction)

    @rx.event
    def drop_rejected(self, codes: list[str]) -> None:
        """The browser refused the drop before uploading (react-dropzone's error codes)."""
        if "file-too-large" in codes:
            limit = get_settings().max_upload_bytes
            self._fail(f"The file is over the {limit / 1e6:g} MB limit; send a smaller image.")
        elif "too-many-files" in codes:
            self._fail("Drop one image at a time.")
        else:
            self._fail(f"That file is not an image; send a {SUPPORTED} file.")

    @rx.event
    async def handle_upload(self, files: list[rx.UploadFile]):
        """Validate and store the dropped file, then process it in the background."""
        if not files:  # the browser refused the drop; `drop_rejected` has said why
            return
        self.error = ""
        if len(files) > 1:
            self._fail("Drop one image at a time, or use the Batch tab for several.")
            return
        upload = files[0]
        limit = get_settings().max_upload_bytes
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            self._fail(images.too_large_message(upload.size or len(data)))
            return
        return self._accept(data, upload.name or "image")

    def _accept(self, data: bytes, filename: str):
        """Store an image however it came in (picked, dropped, pasted, fetched, a sample) and process it."""
        user = self._current_user()
        if self.session_ended:  # signed out at once: nothing is processed for the ended session
            self._fail("You were signed out; nothing was uploaded.")
            return None
        visitor = self._visitor_hash()
        if visitor is None:
            self._fail("ClearBG needs cookies to keep your result private; enable them and reload the page.")
            return None
        try:
            with session_scope() as session:
                image = images.store_upload(
                    session,
                    store=get_blob_store(),
                    data=data,
                    filename=filename,
                    visitor_hash=visitor,
                    user_id=user.id if user else None,
                )
        except ServiceError as error:
            self._fail(str(error))
            return None
        self.stage, self.image_id, self.full_stage, self.full_error = "working", "", "", ""
        return RemoveState.process(str(image.id))

    @rx.event
    def try_sample(self, name: str):
        """One of the sample photos, as if the visitor had dropped it."""
        sample = sample_named(name)
        if sample is None:
            self._fail("There is no such sample photo.")
            return None
        self.error = ""
        return self._accept((SAMPLES_DIR / sample.file).read_bytes(), sample.name)

    @rx.event(background=True)
    async def fetch_url(self, form: dict):
        """The "image URL" field (or a pasted URL): downloaded through the same SSRF-safe fetcher as
        the API's image_url, then handled like an upload."""
        url = str(form.get("image_url", "")).strip()
        async with self:
            if not url:
                self._fail("Paste or type the address of an image first.")
                return None
            self.stage, self.error = "fetching", ""
        try:
            data = await asyncio.to_thread(download, url)
        except ServiceError as error:
            async with self:
                self._fail(for_people(str(error)))
            return None
        async with self:
            return self._accept(data, url_filename(url, "image"))

    @rx.event(background=True)
    async def process(self, image_id: str):
        """Run the model off the event loop; publish only the outcome (and a busy pool's countdown)."""
        try:
            image = await self._when_not_busy(_process, uuid.UUID(image_id), self._visitor_hash())
        except ServiceError as error:
            async with self:
                self._fail(str(error))
            return
        except Exception:
            async with self:
                self._fail("Something went wrong while removing the background; please try again.")
            raise
        async with self:
            self.stage, self.image_id = "done", image_id
            self.result_size = f"{image.result_width}x{image.result_height}"
            self.seconds = f"{(image.processing_ms or 0) / 1000:.1f}"
            self.full_size = f"{image.width}x{image.height}"
            price = images.full_resolution_price(image)
            self.full_price = credits.format_credits(price) if price else ""

    @rx.event(background=True)
    async def get_full_resolution(self):
        """Charge the shown price and make the full-size cut-out (nothing is charged if it fails)."""
        async with self:
            user, image_id = self._current_user(), self.image_id
            if user is None:
                return rx.redirect("/login?next=/")
            if not image_id or self.full_stage:
                return
            self.full_stage, self.error, self.full_error, self.full_needs_credits = "working", "", "", False
        try:
            await self._when_not_busy(_full_resolution, uuid.UUID(image_id), self._visitor_hash(), user.id)
        except credits.InsufficientCredits as short:
            async with self:
                self.full_stage, self.full_error, self.full_needs_credits = "", insufficient_message(short), True
            return
        except ServiceError as error:
            async with self:
                self.full_stage, self.full_error = "", str(error)
            return
        except Exception:
            async with self:
                self.full_stage, self.full_error = "", "Something went wrong; you were not charged. Please try again."
            raise
        async with self:
            self.full_stage = "done"
        return [BalanceState.refresh_balance, rx.download(url=self.full_download_url)]

    @rx.event
    def reset_page(self) -> None:
        self.stage, self.error, self.image_id, self.full_stage = "idle", "", "", ""
        self.full_error, self.full_needs_credits = "", False


def insufficient_message(short: credits.InsufficientCredits) -> str:
    """The refusal, and when the next free credits arrive (when there is an allowance)."""
    monthly = credits.to_units(get_settings().free_monthly_credits)
    if monthly <= 0:
        return str(short)
    arrives = credits.next_month_start(utcnow()).strftime("%Y-%m-%d")
    return f"{short} Your next {credits.format_credits(monthly)} free credits arrive on {arrives}."


def download(url: str, policy: AddressPolicy = public_only) -> bytes:
    """The image at `url`, with the API's limits and address checks."""
    settings = get_settings()
    timeouts = Timeouts(settings.url_fetch_connect_seconds, settings.url_fetch_read_seconds, settings.url_fetch_total_seconds)
    return fetch_image(url, max_bytes=settings.max_upload_bytes, policy=policy, timeouts=timeouts)


def for_people(message: str) -> str:
    """The fetcher speaks of the API's `image_url` field; the page has an "image URL" field."""
    message = message.replace("image_url", "the image URL")
    return message[:1].upper() + message[1:]


def _process(image_id: uuid.UUID, visitor_hash: str | None):
    """Process the visitor's own upload; anonymous visitors get preview-size results."""
    with session_scope() as session:
        images.owned_image(session, image_id=image_id, visitor_hash=visitor_hash)
        return images.process_image(
            session,
            store=get_blob_store(),
            image_id=image_id,
            pool=removal.default_pool(),
            max_pixels=get_settings().preview_pixels,
        )


def _full_resolution(image_id: uuid.UUID, visitor_hash: str | None, user_id: uuid.UUID):
    with session_scope() as session:
        image = images.owned_image(session, image_id=image_id, visitor_hash=visitor_hash, user_id=user_id)
        return images.make_full_resolution(
            session, store=get_blob_store(), image=image, user_id=user_id, pool=removal.default_pool()
        )
