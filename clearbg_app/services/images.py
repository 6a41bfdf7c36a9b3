"""Uploads and their cut-outs: validate, store, process, serve to their owner, purge when expired."""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.inference import ImageDecodeError, InferencePool, Job, Rendered, ServerBusy, probe_image
from clearbg_app.models import ImageStatus, ProcessedImage
from clearbg_app.models.stats import IMAGES_WEB
from clearbg_app.services import analytics, consents, credits, holds, removal, stats
from clearbg_app.services.errors import NotFound, ServiceError, UploadRejected
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobNotFound, BlobStore, deleted_on_failure

log = logging.getLogger(__name__)


UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe_filename(name: str, fallback: str) -> str:
    """The last path component of `name` without separators or control characters (NUL included: the
    database refuses it); `fallback` if nothing is left."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = UNSAFE_NAME.sub("_", base).strip(" .")
    return base[-200:] or fallback


def too_large_message(size: int) -> str:
    """Sizes in MB, the file's rounded up so it never reads as equal to the limit."""
    limit = get_settings().max_upload_bytes
    return f"The file is {math.ceil(size / 1e5) / 10:g} MB, over the {limit / 1e6:g} MB limit."


def store_upload(
    session: Session,
    *,
    store: BlobStore,
    data: bytes,
    filename: str,
    visitor_hash: str,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> ProcessedImage:
    """Check the upload from its header (size, type, pixel count) and store it, not yet processed."""
    settings = get_settings()
    if len(data) > settings.max_upload_bytes:
        raise UploadRejected(too_large_message(len(data)))
    try:
        info = probe_image(data, max_pixels=settings.max_pixels)
    except ImageDecodeError as error:
        raise UploadRejected(str(error)) from None
    width, height = info.upright_size  # as delivered: EXIF orientation applied
    now = now or utcnow()
    key = store.put(data, suffix="." + info.format.lower())
    image = ProcessedImage(
        visitor_hash=visitor_hash,
        user_id=user_id,
        original_filename=safe_filename(filename, "image"),
        original_key=key,
        original_content_type=info.media_type,
        original_bytes=len(data),
        width=width,
        height=height,
        created_at=now,
        expires_at=now + retention(session, user_id=user_id),
    )
    session.add(image)
    with deleted_on_failure(store, [key], session.rollback):
        session.commit()
    return image


def process_image(
    session: Session,
    *,
    store: BlobStore,
    image_id: uuid.UUID,
    pool: InferencePool,
    max_pixels: int | None,
    now: datetime | None = None,
) -> ProcessedImage:
    """Cut the subject out of a stored upload through the inference pool's web lane; on bad pixels,
    forget the upload entirely. A busy pool raises `Busy` and keeps the upload, for the page's retry."""
    image = session.get(ProcessedImage, image_id)
    if image is None:
        raise NotFound("That image no longer exists.")
    if image.status == ImageStatus.DONE:
        return image
    started = time.perf_counter()
    try:
        rendered = _cut_out(pool, store.get(image.original_key), output_max_pixels=max_pixels)
    except ImageDecodeError as error:
        delete_image(session, store=store, image=image)
        raise UploadRejected(str(error)) from None
    image.result_key = store.put(rendered.content, suffix=".png")
    image.result_width, image.result_height = rendered.size
    image.status = ImageStatus.DONE
    image.processing_ms = round((time.perf_counter() - started) * 1000)
    image.processed_at = now or utcnow()
    image.expires_at = image.processed_at + retention(session, user_id=image.user_id)
    analytics.record_event(session, user_id=image.user_id, name="image_processed", now=image.processed_at)
    stats.count(session, name=IMAGES_WEB, at=image.processed_at)
    session.add(image)
    try:
        session.commit()
    except BaseException:
        store.delete(image.result_key)
        raise
    return image


class Busy(ServiceError):
    """The inference pool's queue is full: try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"ClearBG is busy right now; please try again in {retry_after} seconds.")
        self.retry_after = retry_after


def _cut_out(pool: InferencePool, data: bytes, *, output_max_pixels: int | None) -> Rendered:
    """A transparent PNG of `data` from the pool's web lane (a person is waiting on the page: ahead of
    queued API jobs, in slots API clients cannot fill)."""
    job = Job(data, max_pixels=get_settings().max_pixels, output_max_pixels=output_max_pixels)
    try:
        return pool.process(job, lane="web").rendered
    except ServerBusy as busy:
        raise Busy(busy.retry_after) from None


def full_resolution_price(image: ProcessedImage) -> int:
    """What the full-resolution cut-out of this upload costs in the web app, in credit units."""
    return credits.price_for(channel="web", megapixels=image.width * image.height / 1e6)


def make_full_resolution(
    session: Session,
    *,
    store: BlobStore,
    image: ProcessedImage,
    user_id: uuid.UUID,
    pool: InferencePool,
    now: datetime | None = None,
) -> ProcessedImage:
    """The full-size cut-out, through the one paid path (`removal.remove_paid`): a failure charges
    nothing, and asking again for the same image neither reprocesses nor charges twice."""
    if image.full_result_key:
        return image

    def keep(key: str | None, rendered: Rendered, units: int) -> None:
        image.full_result_key, image.charged_units = key, units
        analytics.record_event(session, user_id=user_id, name="full_resolution", now=now)
        session.add(image)

    payer = removal.Payer(user_id=user_id, channel="web", reference=f"image:{image.id}:full", lane="web")
    try:
        removal.remove_paid(session, pool=pool, payer=payer, data=read_blob(store, image.original_key),
                            options=removal.RemovalOptions(size="full", format="png"), store=store, on_result=keep, now=now)  # fmt: skip
    except ServerBusy as busy:
        raise Busy(busy.retry_after) from None
    return image


def retention(session: Session, *, user_id: uuid.UUID | None) -> timedelta:
    """How long an upload and its results are kept: the processing-history period when the uploader
    consented to it, otherwise the default (an hour)."""
    settings = get_settings()
    if consents.has_consent(session, user_id=user_id, purpose=consents.PROCESSING_HISTORY):
        return timedelta(days=settings.history_retention_days)
    return timedelta(minutes=settings.retention_minutes)


def apply_retention(session: Session, *, user_id: uuid.UUID, now: datetime) -> int:
    """After the history consent changed. Withdrawn: every kept image expires within the default period
    from now (sooner if it was due sooner). Granted: the consent applies to what is uploaded after it;
    earlier images keep their hour unless the person adds them (`keep_in_history`). Adds the changes
    to `session`; returns how many changed."""
    if consents.has_consent(session, user_id=user_id, purpose=consents.PROCESSING_HISTORY):
        return 0
    keep = retention(session, user_id=user_id)
    changed = 0
    for image in user_images(session, user_id=user_id, now=now):
        due = min(as_utc(image.expires_at), now + keep)
        if due != as_utc(image.expires_at):
            image.expires_at = due
            session.add(image)
            changed += 1
    return changed


def history_expiry(image: ProcessedImage) -> datetime:
    """When an image added to the processing history is deleted: the history period from its upload."""
    return as_utc(image.created_at) + timedelta(days=get_settings().history_retention_days)


def keep_in_history(session: Session, *, user_id: uuid.UUID, image_id: uuid.UUID, now: datetime | None = None) -> ProcessedImage:
    """Add an image uploaded before the history consent to the history, at the person's explicit
    request: it is then kept for the history period from its upload. Needs the consent."""
    if not consents.has_consent(session, user_id=user_id, purpose=consents.PROCESSING_HISTORY):
        raise ServiceError("Turn on the processing history first.")
    image = next((row for row in user_images(session, user_id=user_id, now=now) if row.id == image_id), None)
    if image is None:
        raise NotFound("No such image, or it has expired.")
    if as_utc(image.expires_at) < history_expiry(image):
        image.expires_at = history_expiry(image)
        session.add(image)
        session.commit()
    return image


def user_images(session: Session, *, user_id: uuid.UUID, now: datetime | None = None) -> list[ProcessedImage]:
    """The signed-in person's images that have not expired, newest first (the processing history)."""
    return list(
        session.exec(
            select(ProcessedImage)
            .where(ProcessedImage.user_id == user_id, col(ProcessedImage.expires_at) > (now or utcnow()))
            .order_by(col(ProcessedImage.created_at).desc())
        ).all()
    )


def delete_user_images(session: Session, *, store: BlobStore, user_id: uuid.UUID, image_id: uuid.UUID | None = None) -> int:
    """Delete one of the person's images (`image_id`), or all of them; returns how many."""
    query = select(ProcessedImage).where(ProcessedImage.user_id == user_id)
    if image_id is not None:
        query = query.where(ProcessedImage.id == image_id)
    rows = session.exec(query).all()
    if image_id is not None and not rows:
        raise NotFound("No such image, or it has expired.")
    for image in rows:
        delete_image(session, store=store, image=image)
    return len(rows)


def owned_image(
    session: Session,
    *,
    image_id: uuid.UUID,
    visitor_hash: str | None,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> ProcessedImage:
    """The image if this browser (`visitor_hash`) or this signed-in user uploaded it and it has not
    expired; `NotFound` otherwise."""
    image = session.get(ProcessedImage, image_id)
    owns = image is not None and (
        (visitor_hash is not None and image.visitor_hash == visitor_hash)
        or (user_id is not None and image.user_id == user_id)
    )
    if image is None or not owns or as_utc(image.expires_at) <= (now or utcnow()):
        raise NotFound("No such image, or it has expired.")
    return image


def delete_image(session: Session, *, store: BlobStore, image: ProcessedImage) -> None:
    """Delete the blobs first, then the row, so an interruption leaves no orphan blob behind a row."""
    for key in image.blob_keys():
        store.delete(key)
    session.delete(image)
    session.commit()


def _expired(now: datetime):
    return col(ProcessedImage.expires_at) <= now


def held_expired(session: Session, *, now: datetime) -> int:
    """Expired images the purge leaves alone because their account is under a legal hold."""
    held = holds.held_user_ids(session, now=now)
    return session.exec(select(func.count()).where(_expired(now), col(ProcessedImage.user_id).in_(held))).one()


def purge_expired(session: Session, *, store: BlobStore, clock: Clock = utcnow, batch: int = 500) -> int:
    """Delete every image (blobs and row) whose `expires_at` has passed, but those of accounts under a
    legal hold (`held_expired` counts them); returns how many."""
    now = clock()
    purged = 0
    held = holds.held_user_ids(session, now=now)
    while True:
        expired = session.exec(
            select(ProcessedImage)
            .where(_expired(now), or_(col(ProcessedImage.user_id).is_(None), col(ProcessedImage.user_id).not_in(held)))
            .limit(batch)
        ).all()
        for image in expired:
            delete_image(session, store=store, image=image)
        purged += len(expired)
        if len(expired) < batch:
            return purged


def read_blob(store: BlobStore, key: str) -> bytes:
    """A blob's bytes, or `NotFound` if it is gone."""
    try:
        return store.get(key)
    except BlobNotFound:
        raise NotFound("No such image, or it has expired.") from None
