"""Data exports (access and portability): a request queues an export, a background job builds a ZIP
with a JSON document of every registry field about the person plus their kept images, the person is
emailed and downloads it (signed in) until it expires, then the purge deletes blob and row."""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.models import DataExport, ExportStatus, OutboxMail, ProcessedImage, User
from clearbg_app.services import consents, mail, personal_data
from clearbg_app.services.deletion_lock import is_locked
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobNotFound, BlobStore, deleted_on_failure

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=15)  # a build that ran this long died; the next run takes it over
DOCUMENT = "clearbg-data.json"
IN_PROGRESS = (ExportStatus.PENDING, ExportStatus.BUILDING)


class ExportError(ServiceError):
    """The export cannot be requested now; the message says why."""


def request_export(session: Session, *, user: User, now: datetime | None = None) -> DataExport:
    """Queue an export for the person; at most one is in progress at a time."""
    now = now or utcnow()
    if is_locked(session, user_id=user.id):
        raise ExportError("This account is being deleted; exports are no longer available.")
    if latest(session, user_id=user.id, statuses=IN_PROGRESS) is not None:
        raise ExportError("Your export is already being prepared; we will email you when it is ready.")
    export = DataExport(user_id=user.id, requested_at=now)
    session.add(export)
    consents.record_event(session, user_id=user.id, name="export_requested", now=now)
    session.commit()
    return export


def latest(session: Session, *, user_id: uuid.UUID, statuses: tuple[str, ...] | None = None) -> DataExport | None:
    """The person's newest export (of the given statuses)."""
    query = select(DataExport).where(DataExport.user_id == user_id)
    if statuses:
        query = query.where(col(DataExport.status).in_(statuses))
    return session.exec(query.order_by(col(DataExport.requested_at).desc())).first()


def _claim(session: Session, export_id: uuid.UUID, now: datetime) -> bool:
    """Take a pending (or abandoned) export for building; False when another runner has it."""
    result = session.exec(
        update(DataExport)
        .where(
            col(DataExport.id) == export_id,
            or_(
                col(DataExport.status) == ExportStatus.PENDING,
                (col(DataExport.status) == ExportStatus.BUILDING) & (col(DataExport.claimed_at) < now - STALE_CLAIM),
            ),
        )
        .values(status=ExportStatus.BUILDING, claimed_at=now)
    )
    session.commit()
    return result.rowcount == 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, (date, uuid.UUID)):
        return str(value)
    return value


def user_data(session: Session, *, user: User, now: datetime) -> dict[str, Any]:
    """Every registry field about the person: for each registry table, their rows (credentials withheld)."""
    tables = {}
    for entry in personal_data.entries():
        rows = session.exec(select(entry.model).where(entry.where(user))).all()
        tables[entry.table] = {
            "category": entry.category,
            "rows": [{name: _jsonable(getattr(row, name)) for name in entry.exported_columns} for row in rows],
        }
    return {
        "generated_at": now.isoformat(),
        "account": str(user.id),
        "note": "Passwords, session tokens and API key secrets are stored only as hashes and are not included.",
        "tables": tables,
    }


def _image_files(session: Session, store: BlobStore, user: User, now: datetime) -> list[tuple[str, bytes]]:
    files = []
    for image in session.exec(
        select(ProcessedImage).where(ProcessedImage.user_id == user.id, col(ProcessedImage.expires_at) > now)
    ).all():
        suffix = PurePath(image.original_key).suffix
        for kind, key, ext in (("original", image.original_key, suffix), ("result", image.result_key, ".png"), ("full", image.full_result_key, ".png")):
            if key:
                try:
                    files.append((f"images/{image.id}/{kind}{ext}", store.get(key)))
                except BlobNotFound:  # purged while we were building
                    continue
    return files


def build_zip(session: Session, *, store: BlobStore, user: User, now: datetime) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(DOCUMENT, json.dumps(user_data(session, user=user, now=now), indent=2, ensure_ascii=False))
        for name, data in _image_files(session, store, user, now):
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def _build(session: Session, store: BlobStore, export: DataExport, now: datetime) -> None:
    """Build one claimed export: the blob is written first and deleted again if the row cannot say so."""
    user = session.get_one(User, export.user_id)
    data = build_zip(session, store=store, user=user, now=now)
    key = store.put(data, suffix=".zip")
    with deleted_on_failure(store, [key], session.rollback):
        export.blob_key, export.size_bytes = key, len(data)
        export.status, export.ready_at = ExportStatus.READY, now
        export.expires_at = now + timedelta(days=get_settings().export_link_days)
        session.add(export)
        mail.enqueue(session, kind="export_ready", user_id=user.id, params={"export_id": str(export.id)}, now=now)
        session.commit()


@mail.renders("export_ready")
def _ready_mail(session: Session, queued: OutboxMail, now: datetime) -> mail.Message | None:
    """Nothing if the export is gone meanwhile (cancelled by a deletion request, or expired)."""
    user, export = mail.recipient(session, queued), session.get(DataExport, uuid.UUID(queued.params["export_id"]))
    if user is None or export is None or export.status != ExportStatus.READY or export.expires_at is None:
        return None
    return mail.Message(
        to=user.email,
        subject="Your ClearBG data export is ready",
        body=f"Hello {user.display_name},\n\nthe copy of your data you asked for is ready. Download it from your "
        f"privacy center (signed in) until {as_utc(export.expires_at):%Y-%m-%d %H:%M} UTC:\n\n"
        f"{get_settings().public_url.rstrip('/')}/privacy-center\n\nAfter that it is deleted.\n",
    )


def build_pending(session: Session, *, store: BlobStore, clock: Clock = utcnow) -> int:
    """Build every pending export (and any whose builder died); returns how many were built."""
    built = 0
    now = clock()
    candidates = session.exec(
        select(DataExport.id).where(col(DataExport.status).in_(IN_PROGRESS)).order_by(col(DataExport.requested_at))
    ).all()
    for export_id in candidates:
        if not _claim(session, export_id, now):
            continue
        export = session.get_one(DataExport, export_id)
        session.refresh(export)
        try:
            _build(session, store, export, now)
        except Exception as error:
            log.exception("export %s failed", export_id)
            session.rollback()
            export.status, export.error = ExportStatus.FAILED, type(error).__name__
            session.add(export)
            session.commit()
            continue
        built += 1
    return built


def _delete(session: Session, store: BlobStore, export: DataExport) -> None:
    """Blob first, then row: an interruption leaves at worst a row whose blob is already gone."""
    if export.blob_key:
        store.delete(export.blob_key)
    session.delete(export)
    session.commit()


def purge_expired(session: Session, *, store: BlobStore, clock: Clock = utcnow) -> int:
    """Delete exports past their download period (and failed ones as old); returns how many."""
    now = clock()
    expired = session.exec(
        select(DataExport).where(
            or_(
                col(DataExport.expires_at) <= now,
                (col(DataExport.status) == ExportStatus.FAILED)
                & (col(DataExport.requested_at) <= now - timedelta(days=get_settings().export_link_days)),
            )
        )
    ).all()
    for export in expired:
        _delete(session, store, export)
    return len(expired)


def cancel_all(session: Session, *, store: BlobStore, user_id: uuid.UUID) -> int:
    """Delete every export of the person, pending or ready (on a deletion request)."""
    exports = session.exec(select(DataExport).where(DataExport.user_id == user_id)).all()
    for export in exports:
        _delete(session, store, export)
    return len(exports)


def download(session: Session, *, store: BlobStore, user_id: uuid.UUID, export_id: uuid.UUID, now: datetime | None = None) -> tuple[DataExport, bytes]:
    """The ZIP of the person's own ready, unexpired export; `NotFound` for anything else."""
    export = session.get(DataExport, export_id)
    now = now or utcnow()
    if (
        export is None
        or export.user_id != user_id
        or export.status != ExportStatus.READY
        or export.expires_at is None
        or as_utc(export.expires_at) <= now
        or export.blob_key is None
    ):
        raise NotFound("No such export, or its download period is over. Request a new one.")
    try:
        return export, store.get(export.blob_key)
    except BlobNotFound:
        raise NotFound("No such export, or its download period is over. Request a new one.") from None
