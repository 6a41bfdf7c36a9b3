"""Batch jobs: many images with one set of options, processed in the background by the task queue
(`clearbg_app.tasks`: one message per item; the table is the record of each item's state), charged
per item through the same path as single API calls, zipped on request, and announced to a signed
webhook when finished.

Choices (documented in the API docs):
- An item the balance cannot cover fails with `insufficient_credits` (402); the other items go on
  (a cheaper item may still fit, and credits bought meanwhile are used). Failed items cost nothing.
- Items run through the inference pool's low-priority lane, one at a time: an item starts only when
  a worker is idle, so single requests never queue behind a batch.
- Each item is charged with the ledger reference `batch-item:<id>` in the transaction that marks it
  done: an item requeued after a crash is never charged twice. While an item is processed its
  worker holds a lock on it (a PostgreSQL advisory lock: released when the worker dies), so a second
  delivery of its message waits for nothing and does nothing; an item whose workers died
  `queue_max_attempts` times is dead-lettered: failed with `dead_letter`, uncharged.
- `result.zip` holds the items done so far; before any is done (and while some still run) it is
  refused with 409 `batch_not_ready`. A finished batch with no result gives an empty ZIP.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from sqlmodel import Session, col, delete, func, select, update

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.db import get_engine, session_scope
from clearbg_app.inference import InferencePool, ServerBusy
from clearbg_app.log_format import log_context
from clearbg_app.models import Batch, BatchItem, BatchStatus, ItemStatus, WebhookStatus
from clearbg_app.services import credits, holds, removal
from clearbg_app.services.background import announce
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.images import safe_filename
from clearbg_app.services.job_runs import single_runner
from clearbg_app.services.url_fetch import (
    AddressPolicy,
    Timeouts,
    UrlFetchFailed,
    UrlRefused,
    fetch_image,
    parse_url,
    pinned_connection,
    public_only,
    resolve_host,
)
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobStore, StorageUnavailable, deleted_on_failure, get_blob_store

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUTS = Timeouts(5, 10, 15)
WEBHOOK_LEASE = timedelta(minutes=1)  # an attempt in hand: longer than its timeouts add up to
WEBHOOK_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=12))
SIGNATURE_HEADER = "ClearBG-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
FINISHED = (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.CANCELLED)
ErrorFields = tuple[int, str, str, str]  # status, code, title, detail (remove.bg's error shape)
DEAD_LETTER = (500, "dead_letter", "Processing kept failing", "This image stopped its worker several times and was given up; nothing was charged.")


class BatchRefused(ServiceError):
    """The batch as sent is not accepted; `status` and `code` say how, for the API's error shape."""

    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.title = status, code, title


@dataclass(frozen=True)
class Source:
    """One image of a new batch: uploaded bytes, or a URL fetched when the item is processed."""

    filename: str
    data: bytes | None = None
    url: str | None = None


# Names ---------------------------------------------------------------------------------------------------


def url_filename(url: str, fallback: str) -> str:
    return safe_filename(unquote(urlsplit(url).path), fallback)


def zip_names(items: Iterable[BatchItem]) -> dict[uuid.UUID, str]:
    """Each finished item's entry name in result.zip: its original name with the result's extension,
    " (2)", " (3)"... added where names repeat."""
    taken: set[str] = set()
    names = {}
    for item in sorted(items, key=lambda it: it.position):
        if not item.result_key:
            continue
        stem = item.filename.rsplit(".", 1)[0] if "." in item.filename else item.filename
        extension = item.result_key.rsplit(".", 1)[-1]
        name, n = f"{stem}.{extension}", 1
        while name.lower() in taken:
            n += 1
            name = f"{stem} ({n}).{extension}"
        taken.add(name.lower())
        names[item.id] = name
    return names


# Options: the API's parser makes a RemovalOptions; the batch keeps it as JSON ---------------------------


def options_json(options: removal.RemovalOptions) -> dict:
    data = asdict(options)
    data.pop("background_image")
    return data


def _tuples(value):
    return tuple(_tuples(part) for part in value) if isinstance(value, list) else value


def options_from_json(data: dict, background: bytes | None) -> removal.RemovalOptions:
    return removal.RemovalOptions(**{key: _tuples(value) for key, value in data.items()}, background_image=background)


# Creating, reading, cancelling, retrying ------------------------------------------------------------------


def check_webhook_url(url: str, *, policy: AddressPolicy = public_only) -> str:
    """`url` if it is http(s) to addresses `policy` admits (the same rules as image_url); `BatchRefused`."""
    try:
        parts = parse_url(url.strip(), name="webhook_url")
    except UrlRefused as refused:
        raise BatchRefused(400, "webhook_refused", "Webhook URL refused", str(refused)) from None
    try:
        resolve_host(parts.host, parts.port, policy)
    except (UrlRefused, UrlFetchFailed):
        raise BatchRefused(
            400, "webhook_refused", "Webhook URL refused",
            "webhook_url must resolve to public addresses only (not a private, local or metadata address).",
        ) from None  # fmt: skip
    return url.strip()


def create_batch(
    session: Session,
    *,
    store: BlobStore,
    user_id: uuid.UUID,
    sources: list[Source],
    options: removal.RemovalOptions,
    api_key_id: uuid.UUID | None = None,
    webhook_url: str | None = None,
    url_policy: AddressPolicy = public_only,
    now: datetime | None = None,
) -> Batch:
    """Check the limits and the webhook URL, store the uploads, queue one item per source."""
    settings = get_settings()
    if not sources:
        raise BatchRefused(400, "missing_source", "No images given", "Send at least one image_file, image_url or base64 image.")
    if len(sources) > settings.batch_max_items:
        raise BatchRefused(
            400, "too_many_items", "Too many images", f"A batch holds at most {settings.batch_max_items} images; {len(sources)} were sent."
        )
    total = sum(len(source.data or b"") for source in sources)
    if total > settings.batch_max_bytes:
        raise BatchRefused(413, "file_too_large", "Batch too large", f"The images add up to over the {settings.batch_max_bytes / 1e6:g} MB limit of a batch.")
    for source in sources:
        if source.data is not None and not source.data:
            raise BatchRefused(400, "invalid_image", "Empty image", f"{source.filename or 'An image of the batch'} is empty.")
        if source.data is not None and len(source.data) > settings.max_upload_bytes:
            raise BatchRefused(413, "file_too_large", "File too large", f"{source.filename} is over the {settings.max_upload_bytes / 1e6:g} MB limit.")
        url = source.url or ""
        if source.data is None and not url.strip():
            raise BatchRefused(400, "missing_source", "Empty image URL", "An image_url of the batch is empty.")
        if source.data is None:
            parse_url(url, name=f"image_url {url[:80]!r}")  # UrlRefused before anything is stored
    if webhook_url:
        webhook_url = check_webhook_url(webhook_url, policy=url_policy)
    removal.decoded_background(options)  # a bad background image refuses the batch, not each of its items
    now = now or utcnow()
    keys: list[str] = []
    with deleted_on_failure(store, keys, session.rollback):
        background_key = store.put(options.background_image) if options.background_image is not None else None
        keys += [background_key] if background_key else []
        batch = Batch(
            user_id=user_id, api_key_id=api_key_id, channel="api" if api_key_id else "web",
            params=options_json(options), background_key=background_key,
            webhook_url=webhook_url or None, webhook_status=WebhookStatus.WAITING if webhook_url else WebhookStatus.NONE,
            created_at=now, expires_at=now + timedelta(hours=settings.batch_retention_hours),
        )  # fmt: skip
        session.add(batch)
        for position, source in enumerate(sources, start=1):
            fallback = f"image-{position}"
            key = store.put(source.data) if source.data is not None else None
            keys += [key] if key else []
            name = safe_filename(source.filename, fallback) if source.data is not None else url_filename(source.url or "", fallback)
            session.add(
                BatchItem(batch_id=batch.id, position=position, filename=name, source_key=key, source_url=source.url, created_at=now)
            )
        session.commit()
    log.info("batches: batch %s queued with %d images", batch.id, len(sources))  # links the request's id to batch-<id>
    announce("batch_items", [item.id for item in batch_items(session, batch_id=batch.id)])
    return batch


def owned_batch(session: Session, *, batch_id: uuid.UUID | str, user_id: uuid.UUID) -> Batch:
    """The user's batch; `NotFound` for another user's, an expired or an unknown one (or a malformed id)."""
    try:
        batch = session.get(Batch, uuid.UUID(str(batch_id)))
    except ValueError:
        batch = None
    if batch is None or batch.user_id != user_id:
        raise NotFound("No such batch, or it has expired.")
    return batch


def batch_items(session: Session, *, batch_id: uuid.UUID) -> list[BatchItem]:
    return list(session.exec(select(BatchItem).where(BatchItem.batch_id == batch_id).order_by(col(BatchItem.position))).all())


def recent_batches(
    session: Session, *, user_id: uuid.UUID, hours: int, now: datetime | None = None
) -> list[tuple[Batch, dict[str, int]]]:
    """The user's batches of the last `hours` that are still kept, newest first, with their item counts."""
    now = now or utcnow()
    rows = session.exec(
        select(Batch)
        .where(Batch.user_id == user_id, col(Batch.created_at) >= now - timedelta(hours=hours), col(Batch.expires_at) > now)
        .order_by(col(Batch.created_at).desc())
        .limit(20)
    ).all()
    counted = []
    for batch in rows:
        statuses = [item.status for item in batch_items(session, batch_id=batch.id)]
        counted.append((batch, {status.value: statuses.count(status) for status in ItemStatus}))
    return counted


def item_result(session: Session, *, store: BlobStore, batch_id: str, item_id: str, user_id: uuid.UUID) -> tuple[bytes, str]:
    """A finished item's result and its name in the ZIP, for the user's own batch (`NotFound` otherwise)."""
    batch = owned_batch(session, batch_id=batch_id, user_id=user_id)
    items = batch_items(session, batch_id=batch.id)
    item = next((row for row in items if str(row.id) == str(item_id)), None)
    if item is None or item.status != ItemStatus.DONE or not item.result_key:
        raise NotFound("No such finished image in this batch.")
    return store.get(item.result_key), zip_names(items)[item.id]


def summary(session: Session, *, batch: Batch) -> dict:
    """The batch as the API shows it (and the webhook sends it)."""
    items = batch_items(session, batch_id=batch.id)
    names = zip_names(items)
    base = f"/api/v1.0/batches/{batch.id}"
    counts = {status.value: sum(item.status == status for item in items) for status in ItemStatus}

    def item_view(item: BatchItem) -> dict:
        view = {
            "id": str(item.id), "position": item.position, "filename": item.filename,
            "source": "url" if item.source_url else "file", "status": item.status,
            "credits_charged": credits.format_credits(item.credits_units),
        }  # fmt: skip
        if item.status == ItemStatus.DONE:
            view |= {"zip_name": names.get(item.id), "width": item.result_width, "height": item.result_height}
        if item.status == ItemStatus.FAILED:
            view["errors"] = [{"title": item.error_title, "code": item.error_code, "detail": item.error_detail}]
        return view

    return {
        "id": str(batch.id),
        "status": batch.status,
        "created_at": as_utc(batch.created_at).isoformat(),
        "finished_at": as_utc(batch.finished_at).isoformat() if batch.finished_at else None,
        "expires_at": as_utc(batch.expires_at).isoformat(),
        "counts": counts,
        "credits_charged": credits.format_credits(sum(item.credits_units for item in items)),
        "result_url": f"{base}/result.zip",
        "webhook": {"url": batch.webhook_url, "status": batch.webhook_status, "attempts": batch.webhook_attempts},
        "items": [item_view(item) for item in items],
    }


def cancel(session: Session, *, batch: Batch, now: datetime | None = None) -> int:
    """Cancel the items not started yet (items being processed finish); returns how many."""
    queued = session.exec(select(BatchItem).where(BatchItem.batch_id == batch.id, BatchItem.status == ItemStatus.QUEUED)).all()
    now = now or utcnow()
    for item in queued:
        item.status, item.finished_at = ItemStatus.CANCELLED, now
        session.add(item)
    session.commit()
    _finish_if_complete(session, batch_id=batch.id, now=now)
    return len(queued)


# Failures that trying again can fix; an unreadable or refused file fails the same way every time.
RETRYABLE_CODES = frozenset({"server_busy", "insufficient_credits", "url_fetch_failed", "internal_error"})


def retry_failed(session: Session, *, batch: Batch, now: datetime | None = None) -> int:
    """Queue again the failed items that a retry can fix (they were not charged); the batch runs until
    they finish. Returns how many."""
    failed = session.exec(
        select(BatchItem).where(
            BatchItem.batch_id == batch.id, BatchItem.status == ItemStatus.FAILED, col(BatchItem.error_code).in_(RETRYABLE_CODES)
        )
    ).all()
    if not failed:
        return 0
    now = now or utcnow()
    for item in failed:
        item.status, item.error_status, item.error_code, item.error_title, item.error_detail = ItemStatus.QUEUED, None, None, None, None
        item.created_at, item.finished_at = now, None
        session.add(item)
    batch.status, batch.finished_at = BatchStatus.RUNNING, None
    batch.expires_at = max(as_utc(batch.expires_at), now + timedelta(hours=get_settings().batch_retention_hours))
    if batch.webhook_url:
        batch.webhook_status, batch.webhook_attempts, batch.webhook_next_at = WebhookStatus.WAITING, 0, None
    session.add(batch)
    session.commit()
    announce("batch_items", [item.id for item in failed])
    return len(failed)


def zip_stream(session: Session, *, store: BlobStore, batch: Batch) -> Iterator[bytes] | None:
    """result.zip, written entry by entry; None while nothing is done and items are still running."""
    items = batch_items(session, batch_id=batch.id)
    names = zip_names(items)
    if not names and batch.status != BatchStatus.DONE:
        return None
    entries = [(names[item.id], item.result_key) for item in items if item.result_key and item.id in names]

    def chunks() -> Iterator[bytes]:
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as archive:
            for name, key in entries:
                archive.writestr(name, store.get(key))
                yield sink.take()
        yield sink.take()

    return chunks()


class _Sink:
    """A write-only, unseekable file for ZipFile that hands its bytes out as they are written."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # nothing to release: every byte was handed out by `take`

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


# Processing -----------------------------------------------------------------------------------------------


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
        _in_hand.add(item_id)
    try:
        yield free
    finally:
        if free:
            with _in_hand_lock:
                _in_hand.discard(item_id)


class BatchWorker:
    """Processes batch items, one per call, through the pool's low-priority lane: `process_item` for
    the item a queue message names, `run_once` for the oldest queued one. `describe_error` turns a
    domain error into remove.bg's error fields (the API's vocabulary); unexpected errors fail the item
    as `internal_error` and are logged."""

    def __init__(
        self,
        *,
        pool: InferencePool | Callable[[], InferencePool],
        describe_error: Callable[[Exception], ErrorFields],
        store: BlobStore | None = None,
        url_policy: AddressPolicy = public_only,
        clock: Clock = utcnow,
    ) -> None:
        self._pool, self.describe_error, self._store = pool, describe_error, store
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
        finished = _finish_if_complete(session, batch_id=item.batch_id, now=self.clock())
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
        try:
            data = self._source(item)
            background = self.store.get(batch.background_key) if batch.background_key else None
            options = options_from_json(batch.params, background)
            sized = removal.size_for(session, user_id=batch.user_id, data=data, size=options.size)
            job = removal.plan(session, user_id=batch.user_id, data=data, options=options, sized=sized)
            future = None
            while future is None:  # low priority: wait for an idle worker
                future = self.pool.submit_if_idle(job)
                if future is None and self._stop.wait(0.05):
                    self._requeue(session, item)
                    return
            rendered = future.result().rendered
        except ServerBusy:
            self._requeue(session, item)
            return
        except StorageUnavailable as error:
            self._storage_unavailable(session, item, error)
            return
        except Exception as error:  # noqa: BLE001 - every failure is recorded on the item
            self._fail(session, item, batch, error, sized, started)
            return
        try:
            key = self.store.put(rendered.content, suffix="." + rendered.extension)
        except StorageUnavailable as error:
            self._storage_unavailable(session, item, error)
            return
        item.status, item.result_key, item.finished_at = ItemStatus.DONE, key, self.clock()
        item.result_width, item.result_height, item.credits_units = rendered.size[0], rendered.size[1], sized.units
        session.add(item)
        try:  # the charge, its usage row and the item commit together
            removal.settle(
                session, user_id=batch.user_id, api_key_id=batch.api_key_id, options=options, sized=sized,
                rendered=rendered, started=started, now=self.clock(), reference=f"batch-item:{item.id}",
                channel=_usage_channel(batch),
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - e.g. the balance was spent meanwhile
            self.store.delete(key)
            session.refresh(item)
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
        try:
            status, code, title, detail = self.describe_error(error)
        except Exception:  # noqa: BLE001 - not a domain error: a bug, logged with its traceback
            log.exception("batches: item %s failed unexpectedly", item.id)
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


def _usage_channel(batch: Batch) -> str:
    return "web_batch" if batch.channel == "web" else "api"


def _finish_if_complete(session: Session, *, batch_id: uuid.UUID, now: datetime) -> bool:
    """Mark the batch done once no item is queued or processing; its results are kept from then on
    for `batch_retention_hours`, and its webhook becomes due."""
    batch = session.get(Batch, batch_id)
    if batch is None or batch.status == BatchStatus.DONE:
        return False
    open_items = session.exec(
        select(func.count()).select_from(BatchItem).where(
            BatchItem.batch_id == batch_id, col(BatchItem.status).in_([ItemStatus.QUEUED, ItemStatus.PROCESSING])
        )
    ).one()  # fmt: skip
    if open_items:
        return False
    batch.status, batch.finished_at = BatchStatus.DONE, now
    batch.expires_at = now + timedelta(hours=get_settings().batch_retention_hours)
    if batch.webhook_url:
        batch.webhook_status, batch.webhook_next_at, batch.webhook_attempts = WebhookStatus.PENDING, now, 0
    session.add(batch)
    session.commit()
    return True


# Webhooks ---------------------------------------------------------------------------------------------------


def webhook_secret(user_id: uuid.UUID) -> str:
    """The account's signing secret, derived from the server's secret key and the user id."""
    digest = hmac.new(get_settings().signing_key(), f"batch-webhook:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"whsec_{digest}"


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """Whether `header` signs `body` with `secret` within `tolerance` seconds of `now` (what receivers do)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or abs(now - int(fields["t"])) > tolerance:
        return False
    expected = signature_header(secret, int(fields["t"]), body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def _post(url: str, body: bytes, headers: dict[str, str], *, policy: AddressPolicy, timeouts: Timeouts) -> int:
    """POST to `url` at its checked addresses (no redirects followed); the status answered."""
    connection, target = pinned_connection(url, policy=policy, timeouts=timeouts)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()


def deliver_webhook(
    batch_id: uuid.UUID, *, policy: AddressPolicy = public_only, clock: Clock = utcnow, timeouts: Timeouts = WEBHOOK_TIMEOUTS
) -> bool:
    """One attempt, if it is due: POST the signed summary; 2xx delivers, anything else schedules the
    next attempt (1 min, 5 min, 30 min, 2 h, 12 h after the previous one) or gives up after the last.
    The attempt is claimed first (its due time moves past a lease), so the queue's task and the
    scheduled sweep never make the same attempt twice."""
    now = clock()
    with session_scope() as session:
        claimed = session.exec(
            update(Batch)
            .where(col(Batch.id) == batch_id, col(Batch.webhook_status) == WebhookStatus.PENDING, col(Batch.webhook_next_at) <= now)
            .values(webhook_next_at=now + WEBHOOK_LEASE)
        )  # fmt: skip
        session.commit()
        batch = session.get(Batch, batch_id) if claimed.rowcount == 1 else None
        if batch is None or not batch.webhook_url:
            return False
        body = json.dumps({"type": "batch.completed", "data": summary(session, batch=batch)}, separators=(",", ":")).encode()
        url, user_id = batch.webhook_url, batch.user_id
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ClearBG webhooks",
        SIGNATURE_HEADER: signature_header(webhook_secret(user_id), int(now.timestamp()), body),
    }
    try:
        status = _post(url, body, headers, policy=policy, timeouts=timeouts)
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except (UrlRefused, UrlFetchFailed) as refused:
        error = str(refused)
    except (OSError, http.client.HTTPException) as failed:
        error = f"{type(failed).__name__}: {failed}"
    with session_scope() as session:
        batch = session.get_one(Batch, batch_id)
        batch.webhook_attempts += 1
        batch.webhook_last_error = error[:500] if error else None
        if error is None:
            batch.webhook_status, batch.webhook_delivered_at, batch.webhook_next_at = WebhookStatus.DELIVERED, now, None
        elif batch.webhook_attempts > len(WEBHOOK_BACKOFF):
            batch.webhook_status, batch.webhook_next_at = WebhookStatus.FAILED, None
        else:
            batch.webhook_next_at = now + WEBHOOK_BACKOFF[batch.webhook_attempts - 1]
        session.add(batch)
    if error:
        log.info("batches: webhook of %s failed (attempt %d): %s", batch_id, batch.webhook_attempts, error)
    return error is None


def deliver_due_webhooks(*, policy: AddressPolicy = public_only, clock: Clock = utcnow) -> tuple[int, int]:
    """Attempt every webhook whose time has come; (delivered, failed attempts)."""
    with session_scope() as session:
        due = session.exec(
            select(Batch.id).where(Batch.webhook_status == WebhookStatus.PENDING, col(Batch.webhook_next_at) <= clock())
        ).all()
    delivered = sum(deliver_webhook(batch_id, policy=policy, clock=clock) for batch_id in due)
    return delivered, len(due) - delivered


# Retention ----------------------------------------------------------------------------------------------------


def purge_expired(session: Session, *, store: BlobStore, clock: Clock = utcnow) -> int:
    """Delete finished batches past `expires_at` (blobs first, then rows); returns how many. A batch
    still running is kept until it finishes (its expiry then moves forward); one of an account under a
    legal hold until the hold ends."""
    now = clock()
    held = holds.held_user_ids(session, now=now)
    expired = session.exec(
        select(Batch).where(col(Batch.expires_at) <= now, Batch.status == BatchStatus.DONE, col(Batch.user_id).not_in(held))
    ).all()  # fmt: skip
    for batch in expired:
        items = batch_items(session, batch_id=batch.id)
        for key in [key for item in items for key in item.blob_keys()] + ([batch.background_key] if batch.background_key else []):
            store.delete(key)
        session.exec(delete(BatchItem).where(col(BatchItem.batch_id) == batch.id))
        session.delete(batch)
        session.commit()
    return len(expired)
