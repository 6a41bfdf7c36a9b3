"""Processing batch items: one message per item (`clearbg_app.tasks`), the item locked while it is processed,
charged through `removal.remove_paid` with the reference `batch-item:<id>`, requeued when the pool is busy or
storage is down, dead-lettered after `queue_max_attempts`; the batch finished when no item is left."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from clearbg_app.clock import Clock, utcnow
from clearbg_app.db import get_engine, session_scope
from clearbg_app.inference import InferencePool, Rendered, ServerBusy
from clearbg_app.log_format import log_context
from clearbg_app.models import Batch, BatchItem, ItemStatus, WebhookStatus
from clearbg_app.services import errors, removal
from clearbg_app.services.background import announce
from clearbg_app.services.batch_webhooks import deliver_webhook
from clearbg_app.services.batches import finish_if_complete, options_from_json
from clearbg_app.services.job_runs import single_runner
from clearbg_app.services.url_fetch import (
    AddressPolicy,
    Timeouts,
    fetch_image,
    public_only,
)
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobStore, StorageUnavailable, get_blob_store

log = logging.getLogger(__name__)


DEAD_LETTER = (500, "dead_letter", "Processing kept failing", "This image stopped its worker several times and was given up; nothing was charged.")


STALE_PROCESSING = timedelta(minutes=10)  # far longer than any one item takes
STORAGE_RETRY_SECONDS = 5.0  # the pause before the next item while the blob store is unavailable


def requeue_interrupted(session: Session, *, now: datetime, stale_after: timedelta = STALE_PROCESSING) -> int:
    """Items left `processing` for longer than `stale_after` were interrupted (a crash or a restart) and
    go back to the queue; a younger one may be in the hands of another live instance, so it is left
    alone. Their charge is keyed by the item, so finishing them again never charges twice."""
    stuck = session.exec(
        select(BatchItem).where(BatchItem.status == ItemStatus.PROCESSING, col(BatchItem.started_at) < now - stale_after)
    ).all()
    for item in stuck:
        item.status, item.started_at = ItemStatus.QUEUED, None
        session.add(item)
    session.commit()
    announce("batch_items", [item.id for item in stuck])
    return len(stuck)


def claim_next(session: Session, *, now: datetime) -> BatchItem | None:
    """The oldest queued item, marked processing (skipping items another instance has locked)."""
    query = select(BatchItem).where(BatchItem.status == ItemStatus.QUEUED).order_by(col(BatchItem.created_at), col(BatchItem.position))
    item = session.exec(query.limit(1).with_for_update(skip_locked=True)).first()
    if item is None:
        session.rollback()
        return None
    item.status, item.started_at, item.attempts = ItemStatus.PROCESSING, now, item.attempts + 1
    session.add(item)
    session.commit()
    return item


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one delivery of an item's message, for the task that carried it."""

    batch_id: uuid.UUID | None = None
    requeued: bool = False  # back in the queue, uncharged (busy pool, storage down): send it again later
    webhook_due: bool = False  # the batch finished with this item: its webhook's first attempt is due


def open_item_ids(session: Session) -> list[uuid.UUID]:
    """Items queued or processing, oldest first: what a starting queue is sent again (a message may be
    lost with an in-process queue or a flushed broker; a second message for an item does nothing)."""
    query = select(BatchItem.id).where(col(BatchItem.status).in_([ItemStatus.QUEUED, ItemStatus.PROCESSING]))
    return list(session.exec(query.order_by(col(BatchItem.created_at), col(BatchItem.position))).all())


_in_hand: set[uuid.UUID] = set()  # items this process's threads are processing (SQLite has no advisory lock)
_in_hand_lock = threading.Lock()


@contextmanager
def _held_here(item_id: uuid.UUID) -> Iterator[bool]:
    """True when no other thread of this process holds the item (then it is ours until the block ends)."""
    with _in_hand_lock:
        free = item_id not in _in_hand
        if free:
            _in_hand.add(item_id)
    try:
        yield free
    finally:
        if free:
            with _in_hand_lock:
                _in_hand.discard(item_id)


class BatchWorker:
    """Processes batch items, one per call, through the pool's low-priority lane: `process_item` for
    the item a queue message names, `run_once` for the oldest queued one. A failed item records
    remove.bg's error fields (`services.errors.describe`); unexpected errors fail it as
    `internal_error` and are logged."""

    def __init__(
        self,
        *,
        pool: InferencePool | Callable[[], InferencePool],
        store: BlobStore | None = None,
        url_policy: AddressPolicy = public_only,
        clock: Clock = utcnow,
    ) -> None:
        self._pool, self._store = pool, store
        self.url_policy, self.clock = url_policy, clock
        self._stop = threading.Event()  # set at shutdown: an item waiting for the pool goes back to the queue

    @property
    def pool(self) -> InferencePool:
        return self._pool() if callable(self._pool) else self._pool

    @property
    def store(self) -> BlobStore:
        return self._store or get_blob_store()

    def stop(self) -> None:
        self._stop.set()

    def process_item(self, item_id: uuid.UUID | str) -> ItemOutcome:
        """Process the item a message names, once: an unknown id, a finished item or one another live
        worker holds end here without effect; an item whose workers kept dying is dead-lettered."""
        try:
            item_id = uuid.UUID(str(item_id))
        except ValueError:
            log.warning("batches: a queue message named no item (%r); dropped", str(item_id)[:80])
            return ItemOutcome()
        with _held_here(item_id) as free, single_runner(f"batch-item:{item_id}", get_engine()) as mine:
            if not (free and mine):
                log.info("batches: item %s is being processed by another worker", item_id)
                return ItemOutcome()
            with session_scope() as session:
                item = session.exec(select(BatchItem).where(BatchItem.id == item_id).with_for_update()).first()
                if item is None or item.status not in (ItemStatus.QUEUED, ItemStatus.PROCESSING):
                    session.rollback()
                    return ItemOutcome(batch_id=item.batch_id if item else None)
                if item.status == ItemStatus.PROCESSING and item.attempts >= get_settings().queue_max_attempts:
                    self._dead_letter(session, item)
                    return self._after(session, item)
                item.status, item.started_at, item.attempts = ItemStatus.PROCESSING, self.clock(), item.attempts + 1
                session.add(item)
                session.commit()
                return self._handle(session, item)

    def run_once(self) -> bool:
        """Process the oldest queued item, if any; True when there was one."""
        with session_scope() as session:
            item = claim_next(session, now=self.clock())
            if item is None:
                return False
            outcome = self._handle(session, item)
        if outcome.webhook_due:
            deliver_webhook(item.batch_id, policy=self.url_policy, clock=self.clock)
        return True

    def _handle(self, session: Session, item: BatchItem) -> ItemOutcome:
        with log_context(f"batch-{item.batch_id}"):
            self._process(session, item)
        return self._after(session, item)

    def _after(self, session: Session, item: BatchItem) -> ItemOutcome:
        session.refresh(item)
        requeued = item.status == ItemStatus.QUEUED
        finished = finish_if_complete(session, batch_id=item.batch_id, now=self.clock())
        batch = session.get(Batch, item.batch_id)
        due = finished and batch is not None and batch.webhook_status == WebhookStatus.PENDING and batch.webhook_attempts == 0
        return ItemOutcome(batch_id=item.batch_id, requeued=requeued, webhook_due=due)

    def _dead_letter(self, session: Session, item: BatchItem) -> None:
        status, code, title, detail = DEAD_LETTER
        log.error("batches: item %s dead-lettered after %d attempts", item.id, item.attempts)
        item.status, item.finished_at, item.credits_units, item.result_key = ItemStatus.FAILED, self.clock(), 0, None
        item.error_status, item.error_code, item.error_title, item.error_detail = status, code, title, detail
        session.add(item)
        session.commit()

    def _process(self, session: Session, item: BatchItem) -> None:
        batch = session.get_one(Batch, item.batch_id)
        started = time.perf_counter()
        sized = None

        def done(key: str | None, rendered: Rendered, units: int) -> None:  # committed with the charge
            item.status, item.result_key, item.finished_at = ItemStatus.DONE, key, self.clock()
            item.result_width, item.result_height, item.credits_units = rendered.size[0], rendered.size[1], units
            session.add(item)

        try:
            data = self._source(item)
            background = self.store.get(batch.background_key) if batch.background_key else None
            options = options_from_json(batch.params, background)
            sized = removal.size_for(session, user_id=batch.user_id, data=data, size=options.size)
            payer = removal.Payer(user_id=batch.user_id, channel=_usage_channel(batch), api_key_id=batch.api_key_id,
                                  reference=f"batch-item:{item.id}", lane="batch")  # fmt: skip
            removal.remove_paid(session, pool=self.pool, payer=payer, data=data, options=options, sized=sized,
                                store=self.store, on_result=done, stop=self._stop, now=self.clock())  # fmt: skip
        except (ServerBusy, removal.Interrupted):
            self._requeue(session, item)
        except StorageUnavailable as error:
            self._storage_unavailable(session, item, error)
        except Exception as error:  # noqa: BLE001 - every failure is recorded on the item (e.g. the balance was spent meanwhile)
            self._fail(session, item, batch, error, sized, started)

    def _source(self, item: BatchItem) -> bytes:
        if item.source_key:
            return self.store.get(item.source_key)
        settings = get_settings()
        timeouts = Timeouts(settings.url_fetch_connect_seconds, settings.url_fetch_read_seconds, settings.url_fetch_total_seconds)
        return fetch_image(item.source_url or "", max_bytes=settings.max_upload_bytes, policy=self.url_policy, timeouts=timeouts)

    def _storage_unavailable(self, session: Session, item: BatchItem, error: StorageUnavailable) -> None:
        """The item waits (queued, uncharged) for the blob store to come back; the worker pauses."""
        log.warning("batches: item %s waits for blob storage: %s", item.id, error)
        self._requeue(session, item)
        self._stop.wait(STORAGE_RETRY_SECONDS)

    def _requeue(self, session: Session, item: BatchItem) -> None:
        """Back to the queue, uncharged; the attempt does not count towards dead-lettering."""
        session.rollback()
        item.status, item.started_at, item.attempts = ItemStatus.QUEUED, None, max(0, item.attempts - 1)
        session.add(item)
        session.commit()

    def _fail(self, session: Session, item: BatchItem, batch: Batch, error: Exception, sized, started: float) -> None:
        session.rollback()
        if (found := errors.describe(error)) is not None:
            status, code, title, detail = found.status, found.code, found.title, found.detail
        else:  # not a domain error: a bug, logged with its traceback
            log.exception("batches: item %s failed unexpectedly", item.id, exc_info=error)
            status, code, title, detail = 500, "internal_error", "Processing failed", "Something went wrong with this image; retry it."
        item.status, item.finished_at, item.credits_units, item.result_key = ItemStatus.FAILED, self.clock(), 0, None
        item.error_status, item.error_code, item.error_title, item.error_detail = status, code[:40], title[:100], detail[:500]
        session.add(item)
        session.commit()
        removal.record_failure(
            session, user_id=batch.user_id, api_key_id=batch.api_key_id, sized=sized, status=status, code=code[:40],
            started=started, now=self.clock(), channel=_usage_channel(batch), reference=f"batch-item:{item.id}",
        )  # fmt: skip


def dead_letters(session: Session, *, limit: int = 20) -> list[BatchItem]:
    """The latest dead-lettered items (their workers kept dying on them), newest first: for /admin."""
    query = select(BatchItem).where(BatchItem.status == ItemStatus.FAILED, BatchItem.error_code == DEAD_LETTER[1])
    return list(session.exec(query.order_by(col(BatchItem.finished_at).desc()).limit(limit)).all())


def _usage_channel(batch: Batch) -> removal.Channel:
    return "web_batch" if batch.channel == "web" else "api"


