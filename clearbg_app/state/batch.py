"""Batch mode on `/`: drop many images, follow each one, retry the failed ones, download all as a ZIP.
It calls the same batch service as `POST /api/v1.0/batches`; the app's batch worker does the work.
Batches charge credits like API calls, so batch mode needs a signed-in account."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import reflex as rx

from clearbg_app.clock import as_utc
from clearbg_app.db import session_scope
from clearbg_app.http.removebg_params import removal_options
from clearbg_app.services import batches, credits
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState
from clearbg_app.state.credits import BalanceState
from clearbg_app.storage import get_blob_store
from clearbg_app.wording import plural


@dataclass(frozen=True)
class ItemRow:
    """One image of the batch being followed, with its thumbnail and download once done."""

    id: str
    name: str
    status: str
    message: str
    retryable: str
    thumb: str
    download: str


@dataclass(frozen=True)
class RecentBatch:
    """A batch of the last 24 hours, with its ZIP."""

    id: str
    when: str
    summary: str
    zip: str


BATCH_UPLOAD_ID = "batch_upload"
POLL_SECONDS = 1.0
SIZES = {"Preview (0.25 credit each)": "preview", "Full resolution (1 credit each)": "full"}
MOST_PER_IMAGE = {"preview": credits.PREVIEW_API_UNITS, "full": credits.FULL_RESOLUTION_UNITS}  # small images cost less
RECENT_HOURS = 24


def cost_line(count: int, each: int, balance: int) -> str:
    """"N images x price = X credits; your balance is Y." (the page shows the same line as photos are chosen)."""
    return (
        f"{plural(count, 'image')} x {plural(credits.format_credits(each), 'credit')} = "
        f"{plural(credits.format_credits(count * each), 'credit')}; your balance is "
        f"{plural(credits.format_credits(balance), 'credit')}."
    )


class BatchState(SessionState):
    """The visitor's current batch: its id and a row per image (name, status, message)."""

    batch_id: str = ""
    items: list[ItemRow] = []
    running: bool = False
    error: str = ""
    uploaded_percent: int = 0
    uploading: bool = False
    size_label: str = next(iter(SIZES))
    credits_charged: str = "0"
    balance_units: int = 0
    short_of_credits: bool = False  # the batch started cost more than the balance: offer "Get credits"
    recent: list[RecentBatch] = []  # the last 24 hours' batches, with their ZIPs

    @rx.var
    def each_units(self) -> int:
        """The most one image of the chosen size costs."""
        return MOST_PER_IMAGE[SIZES[self.size_label]]

    @rx.var
    def each_label(self) -> str:
        return plural(credits.format_credits(self.each_units), "credit")

    @rx.var
    def balance_label(self) -> str:
        return plural(credits.format_credits(self.balance_units), "credit")

    @rx.var
    def price_line(self) -> str:
        """What a batch costs before any photo is chosen, and what the balance covers."""
        enough = self.balance_units // self.each_units
        return f"Each image costs up to {self.each_label}; your balance is {self.balance_label}, enough for {plural(enough, 'image')}."

    @rx.var
    def retryable_count(self) -> int:
        return sum(item.retryable == "yes" for item in self.items)

    @rx.var
    def done_count(self) -> int:
        return sum(item.status == "done" for item in self.items)

    @rx.var
    def failed_count(self) -> int:
        return sum(item.status == "failed" for item in self.items)

    @rx.var
    def finished_percent(self) -> int:
        finished = sum(item.status in ("done", "failed", "cancelled") for item in self.items)
        return round(100 * finished / len(self.items)) if self.items else 0

    @rx.var
    def zip_url(self) -> str:
        return f"/api/batches/{self.batch_id}/result.zip" if self.batch_id else ""

    @rx.event
    def set_size_label(self, label: str) -> None:
        if label in SIZES:
            self.size_label = label

    @rx.event
    def upload_progress(self, progress: dict) -> None:
        fraction = float(progress.get("progress") or 0)
        self.uploading, self.uploaded_percent = fraction < 1, round(100 * fraction)

    @rx.event
    def drop_rejected(self, codes: list[str]) -> None:
        settings = get_settings()
        if "too-many-files" in codes:
            self.error = f"A batch holds at most {settings.batch_max_items} images."
        elif "file-too-large" in codes:
            self.error = f"Each image must be under {settings.max_upload_bytes / 1e6:g} MB."
        else:
            self.error = "Some files are not images and were left out."

    @rx.event
    async def handle_batch_upload(self, files: list[rx.UploadFile]):
        """Queue the chosen files as a new batch (the service checks the limits)."""
        self.uploading, self.error = False, ""
        if not files:
            return
        user = self._current_user()
        if user is None:
            self.error = "Batch mode needs an account (each image is charged like an API call); sign in first."
            return
        with session_scope() as session:
            self.balance_units = credits.balance(session, user_id=user.id)
        if len(files) * self.each_units > self.balance_units:  # the balance changed since the photos were chosen
            self.short_of_credits = True
            self.error = f"{cost_line(len(files), self.each_units, self.balance_units)} Nothing was started."
            return
        self.short_of_credits = False
        limit = get_settings().max_upload_bytes
        sources = [batches.Source(upload.name or "", data=upload.file.read(limit + 1)) for upload in files]
        try:
            with session_scope() as session:
                batch = batches.create_batch(
                    session, store=get_blob_store(), user_id=user.id, sources=sources,
                    options=removal_options({"size": SIZES[self.size_label]}, None),
                )  # fmt: skip
                view = batches.summary(session, batch=batch)
        except ServiceError as error:
            self.error = str(error)
            return
        self._show(view)
        return BatchState.follow

    def _show(self, view: dict) -> None:
        self.batch_id, self.running = view["id"], view["status"] != "done"
        self.credits_charged = view["credits_charged"]
        base = f"/api/batches/{view['id']}/items"
        self.items = [
            ItemRow(
                id=item["id"],
                name=item["filename"],
                status=item["status"],
                message=item["errors"][0]["detail"] if item.get("errors") else "",
                retryable="yes" if item.get("errors") and item["errors"][0]["code"] in batches.RETRYABLE_CODES else "",
                thumb=f"{base}/{item['id']}/result" if item["status"] == "done" else "",
                download=f"{base}/{item['id']}/result?download=1" if item["status"] == "done" else "",
            )
            for item in view["items"]
        ]

    @rx.event(background=True)
    async def follow(self):
        """Publish the batch's progress until every item has finished."""
        while True:
            async with self:
                user, batch_id = self._current_user(), self.batch_id
            if user is None or not batch_id:
                return
            try:
                view = await asyncio.to_thread(_summary, user.id, batch_id)
            except ServiceError as error:
                async with self:
                    self.error, self.running = str(error), False
                return
            async with self:
                if self.batch_id != batch_id:
                    return
                self._show(view)
                if not self.running:
                    self._load_recent(user.id)
                    return BalanceState.refresh_balance
            await asyncio.sleep(POLL_SECONDS)

    def _load_recent(self, user_id: uuid.UUID) -> None:
        with session_scope() as session:
            self.balance_units = credits.balance(session, user_id=user_id)
            rows = batches.recent_batches(session, user_id=user_id, hours=RECENT_HOURS)
        self.recent = [
            RecentBatch(
                id=str(batch.id),
                when=as_utc(batch.created_at).strftime("%Y-%m-%d %H:%M UTC"),
                summary=f"{plural(sum(counts.values()), 'image')}: {counts['done']} done, {counts['failed']} failed",
                zip=f"/api/batches/{batch.id}/result.zip" if counts["done"] else "",
            )
            for batch, counts in rows
        ]

    @rx.event
    def load(self):
        """When the batch tab opens: the balance, the price line and the recent batches."""
        user = self._current_user()
        if user is not None:
            self._load_recent(user.id)

    @rx.event
    def retry_failed(self):
        """Queue again the failed images a retry can fix (they were not charged)."""
        user = self._current_user()
        if user is None or not self.batch_id:
            return
        with session_scope() as session:
            batch = batches.owned_batch(session, batch_id=self.batch_id, user_id=user.id)
            batches.retry_failed(session, batch=batch)
            self._show(batches.summary(session, batch=batch))
        return BatchState.follow

    @rx.event
    def new_batch(self) -> None:
        self.batch_id, self.items, self.running, self.error, self.credits_charged = "", [], False, "", "0"
        self.short_of_credits = False


def _summary(user_id: uuid.UUID, batch_id: str) -> dict:
    with session_scope() as session:
        return batches.summary(session, batch=batches.owned_batch(session, batch_id=batch_id, user_id=user_id))
