"""Data exports (access and portability): a request queues an export, a background job builds a ZIP
(a README.html explaining each part, a JSON document of every registry field about the person, the
request logs as CSV, their kept images and batch files under readable names), the person is emailed
and downloads it (signed in) until it expires, then the purge deletes blob and row."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import uuid
import zipfile
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from clearbg_app.clock import Clock, as_utc, utcnow
from clearbg_app.models import Batch, BatchItem, DataExport, ExportStatus, OutboxMail, ProcessedImage, User
from clearbg_app.services import analytics, mail, personal_data
from clearbg_app.services.background import announce
from clearbg_app.services.deletion_lock import is_locked
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.images import safe_filename
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
    analytics.record_event(session, user_id=user.id, name="export_requested", now=now)
    session.commit()
    announce("export", export.id)  # built by the task queue; the scheduled job sweeps up any message lost
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


REQUEST_LOG_CSV = "request-logs.csv"
README = "README.html"
IN_CSV = {"request_log": REQUEST_LOG_CSV}  # tables too long to read as JSON: in full as CSV, summarised in the README


def _rows(session: Session, entry: personal_data.Entry, user: User) -> list[dict[str, Any]]:
    rows = session.exec(select(entry.model).where(entry.where(user))).all()
    return [{name: _jsonable(getattr(row, name)) for name in entry.exported_columns} for row in rows]


def user_data(session: Session, *, user: User, now: datetime) -> dict[str, Any]:
    """Every registry field about the person: for each registry table, their rows (credentials withheld);
    the request logs are counted here and given in full in the CSV file the table names."""
    tables = {}
    for entry in personal_data.entries():
        rows = _rows(session, entry, user)
        if entry.table in IN_CSV:
            tables[entry.table] = {"category": entry.category, "file": IN_CSV[entry.table], "count": len(rows)}
        else:
            tables[entry.table] = {"category": entry.category, "rows": rows}
    return {
        "generated_at": now.isoformat(),
        "account": str(user.id),
        "note": "Passwords, session tokens and API key secrets are stored only as hashes and are not included.",
        "tables": tables,
    }


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class _Names:
    """File names inside the ZIP, made unique with " (2)", " (3)"..."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, folder: str, stem: str, suffix: str) -> str:
        name, number = f"{folder}/{stem}{suffix}", 1
        while name.lower() in self.taken:
            number += 1
            name = f"{folder}/{stem} ({number}){suffix}"
        self.taken.add(name.lower())
        return name


def _stem(filename: str | None) -> str:
    return PurePath(safe_filename(filename or "", "image")).stem or "image"


def _image_files(session: Session, store: BlobStore, user: User, now: datetime, names: _Names) -> list[tuple[str, bytes]]:
    """Kept images, named by their upload date and original file name."""
    files = []
    for image in session.exec(
        select(ProcessedImage).where(ProcessedImage.user_id == user.id, col(ProcessedImage.expires_at) > now)
        .order_by(col(ProcessedImage.created_at))
    ).all():
        label = f"{as_utc(image.created_at):%Y-%m-%d %H%M} {_stem(image.original_filename)}"
        suffix = PurePath(image.original_key).suffix
        blobs = (
            ("", image.original_key, suffix), (" (background removed)", image.result_key, ".png"),
            (" (full resolution)", image.full_result_key, ".png"),
            (" (background photo)", image.background_key, PurePath(image.background_key or "").suffix),
        )  # fmt: skip
        for what, key, ext in blobs:
            if key:
                try:
                    files.append((names("images", label + what, ext), store.get(key)))
                except BlobNotFound:  # purged while we were building
                    continue
    return files


def _batch_files(session: Session, store: BlobStore, user: User, now: datetime, names: _Names) -> list[tuple[str, bytes]]:
    """Batch images and results still kept, one folder per batch named by its date."""
    files = []
    for batch in session.exec(
        select(Batch).where(Batch.user_id == user.id, col(Batch.expires_at) > now).order_by(col(Batch.created_at))
    ).all():
        folder = f"batches/{as_utc(batch.created_at):%Y-%m-%d %H%M%S}"
        for item in session.exec(select(BatchItem).where(BatchItem.batch_id == batch.id).order_by(col(BatchItem.position))).all():
            stem = _stem(item.filename)
            for what, key in (("", item.source_key), (" (background removed)", item.result_key)):
                if not key:
                    continue
                ext = PurePath(key).suffix or (PurePath(item.filename).suffix if not what else ".png")
                try:
                    files.append((names(folder, stem + what, ext), store.get(key)))
                except BlobNotFound:
                    continue
    return files


def _request_summary(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No requests are logged for you.</p>"
    times = sorted(str(row["at"]) for row in rows)
    paths = Counter(str(row["path"]) for row in rows).most_common(10)
    statuses = Counter(str(row["status"]) for row in rows).most_common()
    listed = "".join(f"<li><code>{html.escape(path)}</code>: {count}</li>" for path, count in paths)
    results = ", ".join(f"{html.escape(status)}: {count}" for status, count in statuses)
    return (
        f"<p>{len(rows)} requests between {html.escape(times[0][:16])} and {html.escape(times[-1][:16])} (UTC). "
        f"Results (HTTP status): {results}.</p><p>Most requested addresses:</p><ul>{listed}</ul>"
    )


def _readme(document: dict[str, Any], request_rows: list[dict[str, Any]], files: list[str], user: User, now: datetime) -> str:
    """README.html: what each part of the export is, in plain words."""
    counted = "".join(
        f"<tr><td>{html.escape(table['category'])}</td><td>{table.get('count', len(table.get('rows', [])))}</td></tr>"
        for table in document["tables"].values()
    )
    images = [name for name in files if name.startswith("images/")]
    batch_files = [name for name in files if name.startswith("batches/")]
    listing = "".join(f"<li>{html.escape(name)}</li>" for name in images + batch_files) or "<li>none</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your ClearBG data</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;line-height:1.5}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style></head>
<body>
<h1>Your ClearBG data</h1>
<p>Everything ClearBG holds about the account {html.escape(user.email)}, as of {now:%Y-%m-%d %H:%M} UTC.
Passwords, session tokens and API key secrets are stored only as hashes and are not included.</p>
<h2>What is in this file</h2>
<ul>
<li><b>{DOCUMENT}</b>: your account data as JSON: your profile, consents, sign-in identities and browsers, API keys
(labels and prefixes), API usage, credits, orders and the rest, one section per kind of data.</li>
<li><b>{REQUEST_LOG_CSV}</b>: every logged request to ClearBG made by you, in full (a spreadsheet opens it);
summarised below.</li>
<li><b>images/</b>: the images ClearBG still keeps for you, named by upload date and original file name, each with
its cut-out ("background removed") and, where you bought it, the full-resolution cut-out.</li>
<li><b>batches/</b>: the images and results of your batches still kept, one folder per batch, named by its date.</li>
</ul>
<h2>Your data, by kind</h2>
<table><tr><th>Data</th><th>Records</th></tr>{counted}</table>
<h2>Request logs</h2>
{_request_summary(request_rows)}
<h2>Images and batches ({len(images) + len(batch_files)} files)</h2>
<ul>{listing}</ul>
</body></html>
"""


def build_zip(session: Session, *, store: BlobStore, user: User, now: datetime) -> bytes:
    document = user_data(session, user=user, now=now)
    log_entry = next(entry for entry in personal_data.entries() if entry.table == "request_log")
    request_rows = _rows(session, log_entry, user)
    names = _Names()
    files = _image_files(session, store, user, now, names) + _batch_files(session, store, user, now, names)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(README, _readme(document, request_rows, [name for name, _ in files], user, now))
        archive.writestr(DOCUMENT, json.dumps(document, indent=2, ensure_ascii=False))
        archive.writestr(REQUEST_LOG_CSV, _csv(request_rows, log_entry.exported_columns))
        for name, data in files:
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


def build_one(session: Session, *, store: BlobStore, export_id: uuid.UUID, clock: Clock = utcnow) -> bool:
    """Build one export if it is still pending (or its builder died) and no other runner has taken it;
    True when built. A failure marks it failed (it can be asked for again)."""
    now = clock()
    if not _claim(session, export_id, now):
        return False
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
        return False
    return True


def build_pending(session: Session, *, store: BlobStore, clock: Clock = utcnow) -> int:
    """Build every pending export (and any whose builder died); returns how many were built."""
    candidates = session.exec(
        select(DataExport.id).where(col(DataExport.status).in_(IN_PROGRESS)).order_by(col(DataExport.requested_at))
    ).all()
    return sum(build_one(session, store=store, export_id=export_id, clock=clock) for export_id in candidates)


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
