"""Batch jobs, the record: many images with one set of options, created, read, cancelled, retried
and purged here; processed in the background by the task queue (`batch_worker.py`: one message per
item, the table is the record of each item's state), charged per item through the same path as
single API calls, zipped on request (`batch_zip.py`) and announced to a signed webhook when finished
(`batch_webhooks.py`).

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

import logging
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from sqlmodel import Session, col, delete, func, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.models import Batch, BatchItem, BatchStatus, ItemStatus, WebhookStatus
from clearbg_app.services import credits, holds, removal
from clearbg_app.services.background import announce
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.images import safe_filename
from clearbg_app.services.url_fetch import (
    AddressPolicy,
    UrlFetchFailed,
    UrlRefused,
    parse_url,
    public_only,
    resolve_host,
)
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobStore, deleted_on_failure

log = logging.getLogger(__name__)

FINISHED = (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.CANCELLED)


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
    finish_if_complete(session, batch_id=batch.id, now=now)
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


def finish_if_complete(session: Session, *, batch_id: uuid.UUID, now: datetime) -> bool:
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
